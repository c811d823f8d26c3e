//! `mesh proxy`: the pieces of this crate wired into a running proxy — the configuration source
//! ([`ConfigSource`]) and its mesh, the listener ([`crate::server::serve`]) or a Gateway's
//! listeners ([`GatewayListeners`]), the admin server ([`crate::admin`]) with Istio's Prometheus
//! buckets, reloads (polling the files, and SIGHUP), and a graceful stop on SIGTERM or Ctrl-C.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use mesh_core::ClientIdentity;
use tokio::signal::unix::{SignalKind, signal};

use super::{Error, ProxyArgs, UsageError};
use crate::gateway::{GatewayListeners, PortChange};
use crate::reload::ConfigSource;

/// Where `mesh proxy` listens without `--listen` (and without `--gateway`).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15001);

/// Run the proxy `args` describes on a runtime of its own (`--threads`: one thread is a
/// current-thread runtime, more the multi-thread scheduler) until SIGTERM or Ctrl-C, then drain.
/// See [`serve_proxy`].
pub fn proxy(args: ProxyArgs, out: impl Write) -> Result<(), Error> {
    let runtime = runtime(args.threads)?;
    runtime.block_on(serve_proxy(args, out))
}

/// The runtime `mesh proxy --threads` asks for: `Some(1)` a current-thread runtime (no
/// work-stealing machinery, as an nginx worker), else the multi-thread scheduler with `n` workers
/// (default: one per CPU).
pub fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all().build()
}

/// Run the proxy `args` describes inside the current tokio runtime until SIGTERM or Ctrl-C, then
/// drain in-flight requests and return. Installs the process's global Prometheus recorder (so
/// once per process). Writes `listening on ADDR` (as a Gateway, one line per port opened, now
/// and after reloads: `listening on ADDR port=PORT protocol=PROTOCOL`) and `admin on ADDR` to
/// `out`, flushed once the listeners are open.
pub async fn serve_proxy(args: ProxyArgs, mut out: impl Write) -> Result<(), Error> {
    // Istio's standard histograms are Prometheus histograms with Istio's default buckets (not
    // summaries); the recorder keeps raw samples until upkeep folds them into the buckets, so it
    // runs every few seconds whether or not anyone scrapes /metrics (otherwise memory grows with
    // every request).
    let prometheus = crate::admin::install_prometheus_recorder()?;
    let reload_interval = Duration::from_millis(args.reload_interval_ms.max(10));
    let gateway = match args.gateway.as_deref() {
        Some(g) => Some(g.split_once('/').ok_or_else(|| UsageError::GatewayFlag(g.to_string()))?),
        None => None,
    };
    let compile = args.settings.compile_options(&args.namespace)?;
    let workload = args.workload.workload(&args.namespace)?;
    let inbound = inbound_flags(&args.inbound)?;
    let inbound_tcp = inbound_flags(&args.inbound_tcp)?;
    let auto_mtls = compile.mesh.enable_auto_mtls();
    let source = ConfigSource::with_options(args.files.clone(), compile, |b| {
        let mut b = b.workload(workload_name(&workload)).access_log(args.access_log);
        // One identity both ways: the workload's labels drive `sourceLabels` and the
        // `source_*` metric labels outbound.
        let labels = workload.labels.iter().map(|(k, v)| (&**k, &**v));
        let mut client = ClientIdentity::new(&workload.namespace, labels);
        if let Some(l) = &args.locality {
            client = client.with_locality(l);
        }
        if args.locality.is_some() || !workload.labels.is_empty() || args.workload.workload_namespace.is_some() {
            b = b.client_identity(client);
        }
        match gateway {
            Some((ns, name)) => b.gateway(ns, name),
            None => b,
        }
    })?;
    if args.kube.kubernetes {
        watch_cluster(&source, &args.kube).await?;
        if gateway.is_some() {
            // The Gateway's servers say which ports to open: wait for the cluster's first
            // lists (the Gateway may live there) before opening them.
            tracing::info!(target: "meshwork::proxy", "waiting for the first lists of the cluster");
            source.ready().await;
        }
    }
    let mtls = outbound_mtls(&args, &source, auto_mtls)?;
    let upstream = |mesh: &mesh_tower::Mesh| -> crate::connection::Upstream {
        tower::Layer::layer(&mesh.layer(), crate::upstream::UpstreamClient::new().with_outbound_mtls(mtls.clone()))
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut plain = None;
    let mut gateway_listeners = None;
    match gateway {
        None => {
            let address = args.listen.unwrap_or(DEFAULT_LISTEN);
            let listener =
                tokio::net::TcpListener::bind(address).await.map_err(|error| Error::Listen { address, error })?;
            writeln!(out, "listening on {}", listener.local_addr()?)?;
            plain = Some(listener);
        }
        Some((ns, name)) => {
            if args.listen.is_some() {
                return Err(UsageError::ListenWithGateway.into());
            }
            let stack = upstream(source.mesh());
            let mut listeners = GatewayListeners::new(
                source.mesh().clone(),
                ns,
                name,
                args.gateway_address,
                port_map(&args.port_map)?,
                stack,
            )
            .with_outbound_mtls(mtls.clone());
            if !listeners.declared() {
                return Err(Error::GatewayNotDeclared { namespace: ns.to_string(), name: name.to_string() });
            }
            // The ports declared at start must open; later ones are retried on each reconcile.
            for change in listeners.reconcile(&stopped).await {
                if let PortChange::Failed { port, address, error } = change {
                    return Err(Error::GatewayPort { port, address, error });
                }
                report_port_change(&mut out, change);
            }
            gateway_listeners = Some(listeners);
        }
    }
    if !inbound.is_empty() || !inbound_tcp.is_empty() {
        start_inbound(&args, &source, &workload, (&inbound, &inbound_tcp), &stopped, &mut out).await?;
    }
    if let Some(address) = args.admin {
        let admin = tokio::net::TcpListener::bind(address).await.map_err(|error| Error::Admin { address, error })?;
        writeln!(out, "admin on {}", admin.local_addr()?)?;
        let router = crate::admin::router(source.clone(), Some(prometheus));
        tokio::spawn(async move { axum::serve(admin, router).await });
    }
    out.flush()?;

    tokio::spawn(source.clone().watch(reload_interval));
    let mut hangup = signal(SignalKind::hangup())?;
    let reload_on_hangup = source.clone();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let s = reload_on_hangup.clone();
            let _ = tokio::task::spawn_blocking(move || s.reload()).await;
        }
    });
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!(target: "meshwork::proxy", "shutting down: draining in-flight requests");
        let _ = stop.send(true);
    });
    if let Some(listener) = plain {
        crate::server::serve(listener, upstream(source.mesh()), stopped).await?;
        return Ok(());
    }
    let Some(mut listeners) = gateway_listeners else { return Ok(()) };
    let mut stopping = stopped.clone();
    loop {
        for change in listeners.reconcile(&stopped).await {
            report_port_change(&mut out, change);
        }
        tokio::select! {
            _ = tokio::time::sleep(reload_interval) => {}
            _ = stopping.wait_for(|s| *s) => break,
        }
    }
    listeners.shutdown().await?;
    Ok(())
}

/// `--kubernetes`: watch the cluster into `source` (`/ready` waits for the first lists), on a
/// thread of its own (`mesh-config`) with a current-thread runtime: the watches decode each
/// object and the changes are applied there ([`ConfigSource::follow`]), never on the request
/// workers. Returns once the client is built and the scopes are pending, or with the client's
/// error.
#[cfg(feature = "kubernetes")]
async fn watch_cluster(source: &ConfigSource, kube: &super::KubernetesArgs) -> Result<(), Error> {
    let (started, start) = tokio::sync::oneshot::channel::<Result<(), Error>>();
    let source = source.clone();
    let kubeconfig = kube.kubeconfig.clone();
    let options = mesh_kube::WatchOptions { namespaces: kube.watch_namespaces.clone(), ..Default::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("mesh-config".into()).spawn(move || {
        runtime.block_on(async move {
            let client = match mesh_kube::client(kubeconfig.as_deref()).await {
                Ok(client) => client,
                Err(e) => {
                    let _ = started.send(Err(e.into()));
                    return;
                }
            };
            let (scopes, events) = mesh_kube::KubeSource::start(client, &options).into_parts();
            let follow = source.follow(scopes, events);
            let _ = started.send(Ok(()));
            follow.await;
        });
    })?;
    start
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the mesh-config thread stopped before it started").into()))
}

#[cfg(not(feature = "kubernetes"))]
async fn watch_cluster(_: &ConfigSource, _: &super::KubernetesArgs) -> Result<(), Error> {
    Err(UsageError::KubernetesDisabled.into())
}

/// The workload's name for metrics: its `app` label, else `mesh-proxy`.
fn workload_name(workload: &mesh_core::workload::Workload) -> &str {
    workload.labels.get("app").map_or("mesh-proxy", |v| &**v)
}

/// An inbound listener's address and the application's.
type Forwarding = (SocketAddr, SocketAddr);

/// `--inbound LISTEN=APP_ADDR` flags.
fn inbound_flags(flags: &[String]) -> Result<Vec<Forwarding>, UsageError> {
    flags
        .iter()
        .map(|f| {
            let parsed = f.split_once('=').and_then(|(l, a)| Some((l.parse().ok()?, a.parse().ok()?)));
            parsed.ok_or_else(|| UsageError::InboundFlag(f.clone()))
        })
        .collect()
}

/// The outbound mutual TLS settings: the workload certificate of `--cert-dir` (watched for
/// changes), the trust domains, meshConfig `enableAutoMtls`.
fn outbound_mtls(
    args: &ProxyArgs,
    source: &ConfigSource,
    auto_mtls: bool,
) -> Result<crate::upstream::OutboundMtls, Error> {
    use crate::identity::{CertFiles, CertSource};
    let certs = match &args.cert_dir {
        None => None,
        Some(dir) => {
            let certs = CertSource::load(CertFiles::in_dir(dir)).map_err(|e| Error::Certificate(e.to_string()))?;
            tokio::spawn(certs.clone().watch(Duration::from_millis(args.reload_interval_ms.max(10))));
            Some(certs)
        }
    };
    let bundle = source.mesh().config().load().security().mesh().trust_domains.clone();
    Ok(crate::upstream::OutboundMtls::new(certs).trust_domains(bundle).auto_mtls(auto_mtls))
}

/// Open the `--inbound` listeners (with the workload certificate of `--cert-dir`, watched for
/// changes) and serve them until `stopped`.
async fn start_inbound(
    args: &ProxyArgs,
    source: &ConfigSource,
    workload: &mesh_core::workload::Workload,
    (inbound, inbound_tcp): (&[Forwarding], &[Forwarding]),
    stopped: &tokio::sync::watch::Receiver<bool>,
    out: &mut impl Write,
) -> Result<(), Error> {
    use crate::identity::{CertFiles, CertSource, IdentityAcceptor};
    let config = source.mesh().config().clone();
    let bundle = config.load().security().mesh().trust_domains.clone();
    let acceptor = match &args.cert_dir {
        None => None,
        Some(dir) => {
            let certs = CertSource::load(CertFiles::in_dir(dir)).map_err(|e| Error::Certificate(e.to_string()))?;
            tokio::spawn(certs.clone().watch(Duration::from_millis(args.reload_interval_ms.max(10))));
            Some(std::sync::Arc::new(IdentityAcceptor::new(certs, bundle.clone())))
        }
    };
    let identity = match (&acceptor, &args.service_account) {
        (Some(a), _) => Some(a.certs().identity()),
        (None, Some(sa)) => Some(mesh_core::spiffe::SpiffeId::new(bundle.trust_domain(), &workload.namespace, sa)),
        (None, None) => None,
    };
    let fetcher: std::sync::Arc<dyn mesh_tower::inbound::jwks::JwksFetcher> = std::sync::Arc::new(
        crate::jwks::JwksHttpsFetcher::new().map_err(|e| Error::Certificate(format!("JWKS client: {e}")))?,
    );
    for (listen, app) in inbound {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|error| Error::Listen { address: *listen, error })?;
        writeln!(out, "inbound on {} -> {app}", listener.local_addr()?)?;
        let mut layer = mesh_tower::inbound::InboundLayer::builder(config.clone(), workload.clone())
            .port(app.port())
            .workload_name(workload_name(workload))
            .jwks_fetcher(fetcher.clone());
        if let Some(id) = &identity {
            layer = layer.identity(id.clone());
        }
        tokio::spawn(crate::inbound::serve_inbound(
            listener,
            *app,
            config.clone(),
            workload.clone(),
            layer.build(),
            acceptor.clone(),
            stopped.clone(),
        ));
    }
    for (listen, app) in inbound_tcp {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|error| Error::Listen { address: *listen, error })?;
        writeln!(out, "inbound on {} -> {app} (tcp)", listener.local_addr()?)?;
        let mut layer = mesh_tower::inbound::InboundLayer::builder(config.clone(), workload.clone())
            .port(app.port())
            .workload_name(workload_name(workload));
        if let Some(id) = &identity {
            layer = layer.identity(id.clone());
        }
        tokio::spawn(crate::inbound::serve_inbound_tcp(
            listener,
            *app,
            config.clone(),
            workload.clone(),
            layer.build(),
            acceptor.clone(),
            stopped.clone(),
        ));
    }
    Ok(())
}

/// `--port-map PORT=ADDR` flags as a map.
fn port_map(flags: &[String]) -> Result<HashMap<u16, SocketAddr>, UsageError> {
    let mut map = HashMap::new();
    for m in flags {
        let (port, addr) = m.split_once('=').ok_or_else(|| UsageError::PortMap(m.clone()))?;
        let port: u16 = port.parse().map_err(|_| UsageError::PortMapPort(port.to_string()))?;
        let addr: SocketAddr = addr.parse().map_err(|_| UsageError::PortMapAddress(addr.to_string()))?;
        map.insert(port, addr);
    }
    Ok(map)
}

/// Print (opened ports, on `out`, as the first ones) or log what a Gateway reconcile did.
fn report_port_change(out: &mut impl Write, change: PortChange) {
    match change {
        PortChange::Opened { port, protocol, address } => {
            let _ = writeln!(out, "listening on {address} port={port} protocol={protocol}");
            let _ = out.flush();
            tracing::info!(target: "meshwork::proxy", port, %protocol, %address, "gateway port opened");
        }
        PortChange::Closed { port } => {
            tracing::info!(target: "meshwork::proxy", port, "gateway port closing (draining)")
        }
        PortChange::Failed { port, address, error } => {
            tracing::warn!(target: "meshwork::proxy", port, %address, %error, "gateway port cannot be opened")
        }
        PortChange::Skipped { port, protocol } => tracing::warn!(
            target: "meshwork::proxy",
            port,
            %protocol,
            "gateway port not opened: meshwork serves HTTP, HTTPS, HTTP2 and GRPC servers"
        ),
    }
}
