//! `mesh`: meshwork's command line.
//!
//! - `mesh validate PATH...` checks Istio networking YAML the way Istio's admission does.
//! - `mesh explain -f PATH... URL` says what that configuration does with one request.
//! - `mesh proxy -f PATH... --listen ADDR [--admin ADDR] [--gateway NS/NAME]` runs the same layers
//!   as a standalone proxy (a client's outbound proxy, or a Gateway).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use mesh_config::{ConfigStore, LoadOptions, Severity, load_paths};
use mesh_core::{Binding, ClientIdentity, RequestView};

#[derive(Debug, Parser)]
#[command(name = "mesh", version, about = "meshwork: Istio traffic management, in your process or as a proxy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Istio networking YAML (VirtualService, DestinationRule, Gateway, ServiceEntry,
    /// WorkloadEntry) as Istio would before admitting it.
    #[command(after_help = VALIDATE_HELP)]
    Validate {
        /// Files or directories (directories are searched for *.yaml / *.yml).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Namespace for resources that do not set metadata.namespace.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Print errors only (no warnings, no "unsupported" notes).
        #[arg(short, long)]
        quiet: bool,
        /// Treat warnings as errors (exit 1 when there are any).
        #[arg(long)]
        strict: bool,
        /// Output format: `text` (one line per problem) or `json` (one object, for scripts).
        #[arg(short = 'o', long = "output", default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Say what the configuration does with one request: which VirtualService and rule apply
    /// (and why the others do not), where it goes, and with what timeout, retries and faults.
    #[command(after_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Run as a proxy: every request accepted on `--listen` is routed by its Host with the
    /// VirtualServices bound to the mesh (or to `--gateway`) and forwarded to the endpoints that
    /// ServiceEntries and WorkloadEntries declare. Reloads on file change and on SIGHUP; SIGTERM
    /// drains in-flight requests, then exits.
    #[command(after_help = PROXY_HELP)]
    Proxy {
        /// Configuration files or directories (repeatable).
        #[arg(short = 'f', long = "file", required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
        /// Address to accept HTTP/1.1 and HTTP/2 (h2c) on (default 127.0.0.1:15001). With
        /// `--gateway`, the Gateway's servers say where to listen instead.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Address of the admin server (/metrics, /config_dump, /clusters, /ready, /healthz).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Serve as this Gateway (`namespace/name`): one listener per port of its `servers`
        /// (HTTP, or HTTPS terminating TLS), and only VirtualServices bound to it apply.
        #[arg(long, value_name = "NS/NAME")]
        gateway: Option<String>,
        /// With `--gateway`: the IP address the Gateway's ports are opened on.
        #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
        gateway_address: std::net::IpAddr,
        /// With `--gateway`: open Gateway port PORT at ADDR instead (repeatable), e.g.
        /// `--port-map 443=127.0.0.1:8443`; port 0 picks a free one.
        #[arg(long = "port-map", value_name = "PORT=ADDR")]
        port_map: Vec<String>,
        /// The proxy's namespace (short host names resolve in it).
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Where the proxy runs, `region/zone/subzone`: endpoints nearest to it are preferred
        /// for destinations with outlier detection (Istio's locality failover).
        #[arg(long, value_name = "REGION/ZONE/SUBZONE")]
        locality: Option<String>,
        /// How often to check the files for changes (and, as a Gateway, its ports), in
        /// milliseconds.
        #[arg(long, default_value = "1000")]
        reload_interval_ms: u64,
        /// Log every request (target meshwork::access).
        #[arg(long)]
        access_log: bool,
        /// Worker threads (default: one per CPU; 1 runs everything on the calling thread).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        #[command(flatten)]
        settings: MeshSettings,
    },
}

/// Mesh-wide settings Istio keeps in meshConfig and pilot's environment (the same flags for
/// `mesh proxy` and `mesh explain`, so that both decide alike).
#[derive(clap::Args, Debug, Clone)]
struct MeshSettings {
    /// Retry 503 in the default retry policy, as Istio did before 1.24 (Istio's
    /// `EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false`). By default 503 is not retried unless a
    /// route's `retryOn` says so.
    #[arg(long)]
    default_retry_503: bool,
    /// What happens to a request for a host no VirtualService routes and no ServiceEntry
    /// declares (Istio's meshConfig `outboundTrafficPolicy.mode`): ALLOW_ANY passes it through
    /// to the host as named (no retries; one shared cluster, no state per host), REGISTRY_ONLY
    /// answers 502.
    #[arg(long, value_name = "MODE", default_value = "ALLOW_ANY")]
    outbound_traffic_policy: mesh_core::snapshot::OutboundTrafficPolicy,
}

impl MeshSettings {
    /// Compile options for a client in `namespace` under these settings.
    fn compile_options(&self, namespace: &str) -> mesh_config::CompileOptions {
        mesh_config::CompileOptions {
            exclude_503_from_default_retries: !self.default_retry_503,
            outbound_traffic_policy: self.outbound_traffic_policy,
            ..mesh_config::CompileOptions::for_namespace(namespace)
        }
    }
}

const PROXY_HELP: &str = "\
On start it prints `listening on ADDR` (and `admin on ADDR`) to standard output; as a
Gateway, one line per port: `listening on ADDR port=PORT protocol=PROTOCOL`.

Example, in front of a service on 127.0.0.1:8080:
  mesh proxy -f istio/ --listen 127.0.0.1:15001 --admin 127.0.0.1:15000
  curl -H 'Host: reviews' http://127.0.0.1:15001/reviews/0

As the Bookinfo ingress gateway (its server is port 8080, HTTP):
  mesh proxy -f bookinfo/ --gateway default/bookinfo-gateway --port-map 8080=127.0.0.1:8080

Logs go to standard error, filtered by RUST_LOG (default `meshwork=info,meshwork::request=warn`).
RUST_LOG=meshwork=info,meshwork::request=info adds each request's span (method, uri, route,
destination, status) to the lines logged while it runs; it costs CPU on every request.";

const EXPLAIN_HELP: &str = "\
The JSON output (-o json) has every key always present, null where it does not apply:
host, action (route | redirect | directResponse | noRoute), status, route, destinations,
redirect, directResponse, rewrite, timeout, retries, fault, mirrors, headers.

Problems in the configuration (errors and warnings, as `mesh validate` prints them) go to
standard error; the request is explained with what is in force (invalid resources left out).

Examples:
  mesh explain -f bookinfo/ http://reviews:9080/reviews/0
  mesh explain -f bookinfo/ -H 'end-user: jason' -o json http://reviews:9080/reviews/0
  mesh explain -f gateway.yaml --gateway default/bookinfo-gateway http://bookinfo.example.com/productpage";

const VALIDATE_HELP: &str = "\
Each problem prints as one line:
  FILE:LINE: KIND NAMESPACE/NAME: field.path: message
Warnings are prefixed `warning:`; fields meshwork reads but does not act on yet are
prefixed `unsupported:`. Documents of other kinds (Deployments, Services, Gateway API
routes) are skipped; a misspelt networking.istio.io kind is an error (MW0001).

Checks across resources (as `istioctl analyze`) print their code before the kind:
  FILE:LINE: CODE KIND NAMESPACE/NAME: field.path: warning: message
  IST0101  a subset no DestinationRule defines, a Gateway or a destination host the
           configuration does not hold (Istio's ReferencedResourceNotFound)
  MW0002   a resource defined twice (both places named)
  MW0003   DestinationRules for one host whose later settings are ignored when merged
They are warnings: --strict fails on them.

With -o json, one object:
  {\"valid\": bool, \"diagnostics\": [{\"severity\", \"code\", \"file\", \"line\", \"kind\",
   \"namespace\", \"name\", \"path\", \"message\"}]}
(severity: error | warning | unsupported; code, file, kind, namespace, name may be null;
files that cannot be read or parsed are errors with no resource).

Exit status: 0 when every resource is valid (warnings allowed), 1 when any resource or
file is invalid, 2 on usage errors (such as a path that does not exist).

Examples:
  mesh validate samples/bookinfo/networking/
  mesh validate -n bookinfo reviews.yaml ratings.yaml";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The proxy logs meshwork's events at info; the per-request span (`meshwork::request`) stays
    // off unless RUST_LOG asks for it: a formatting subscriber renders every enabled span's fields
    // for each request (~5,000 instructions, a third of what the whole mesh adds per request).
    let default_filter =
        if matches!(cli.command, Command::Proxy { .. }) { "meshwork=info,meshwork::request=warn" } else { "off" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only for a terminal: logs redirected to a file or a collector stay plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mesh: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { paths, namespace, quiet, strict, output } => {
            validate(&paths, namespace, quiet, strict, output == "json")
        }
        Command::Explain(args) => explain(args),
        Command::Proxy {
            files,
            listen,
            admin,
            gateway,
            gateway_address,
            port_map,
            namespace,
            locality,
            reload_interval_ms,
            access_log,
            threads,
            settings,
        } => {
            // One thread: a current-thread runtime (no work-stealing machinery, as an nginx
            // worker); more: the multi-thread scheduler.
            let mut runtime = match threads {
                Some(1) => tokio::runtime::Builder::new_current_thread(),
                Some(n) => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(n.max(1));
                    b
                }
                None => tokio::runtime::Builder::new_multi_thread(),
            };
            let runtime = runtime.enable_all().build()?;
            runtime.block_on(proxy(ProxyArgs {
                files,
                listen,
                admin,
                gateway,
                gateway_address,
                port_map,
                namespace,
                locality,
                reload_interval: std::time::Duration::from_millis(reload_interval_ms.max(10)),
                access_log,
                settings,
            }))
        }
    }
}

struct ProxyArgs {
    files: Vec<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    admin: Option<std::net::SocketAddr>,
    gateway: Option<String>,
    gateway_address: std::net::IpAddr,
    port_map: Vec<String>,
    namespace: String,
    locality: Option<String>,
    reload_interval: std::time::Duration,
    access_log: bool,
    settings: MeshSettings,
}

async fn proxy(args: ProxyArgs) -> Result<ExitCode> {
    use std::io::Write;
    use tokio::signal::unix::{SignalKind, signal};

    // Istio's standard histograms are Prometheus histograms with Istio's default buckets (not
    // summaries); the recorder keeps raw samples until upkeep folds them into the buckets, so it
    // runs every few seconds whether or not anyone scrapes /metrics (otherwise memory grows with
    // every request).
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_milliseconds".into()),
            &mesh_proxy::admin::ISTIO_DURATION_BUCKETS_MS,
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_bytes".into()),
            &mesh_proxy::admin::ISTIO_SIZE_BUCKETS_BYTES,
        )?
        .install_recorder()?;
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let gateway = match args.gateway.as_deref() {
        Some(g) => Some(g.split_once('/').ok_or_else(|| anyhow::anyhow!("--gateway takes NAMESPACE/NAME, got {g:?}"))?),
        None => None,
    };
    let compile = args.settings.compile_options(&args.namespace);
    let source = mesh_proxy::reload::ConfigSource::with_options(args.files, compile, |b| {
        let mut b = b.workload("mesh-proxy").access_log(args.access_log);
        if let Some(l) = &args.locality {
            b = b.client_identity(ClientIdentity::new(&args.namespace, []).with_locality(l));
        }
        match gateway {
            Some((ns, name)) => b.gateway(ns, name),
            None => b,
        }
    })?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut out = std::io::stdout();
    let mut plain = None;
    let mut gateway_listeners = None;
    match gateway {
        None => {
            let addr = args.listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 15001)));
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            writeln!(out, "listening on {}", listener.local_addr()?)?;
            plain = Some(listener);
        }
        Some((ns, name)) => {
            if args.listen.is_some() {
                anyhow::bail!(
                    "--listen does not apply with --gateway: the Gateway's servers say where to listen (see --port-map)"
                );
            }
            let mut map = std::collections::HashMap::new();
            for m in &args.port_map {
                let (port, addr) =
                    m.split_once('=').ok_or_else(|| anyhow::anyhow!("--port-map takes PORT=ADDR, got {m:?}"))?;
                let port: u16 = port.parse().map_err(|_| anyhow::anyhow!("--port-map: {port:?} is not a port"))?;
                let addr: std::net::SocketAddr =
                    addr.parse().map_err(|_| anyhow::anyhow!("--port-map: {addr:?} is not an address"))?;
                map.insert(port, addr);
            }
            let stack = mesh_proxy::server::upstream(source.mesh());
            let mut listeners = mesh_proxy::gateway::GatewayListeners::new(
                source.mesh().clone(),
                ns,
                name,
                args.gateway_address,
                map,
                stack,
            );
            if !listeners.declared() {
                anyhow::bail!("Gateway {ns}/{name} is not in the configuration");
            }
            // The ports declared at start must open; later ones are retried on each reconcile.
            for change in listeners.reconcile(&stopped).await {
                if let mesh_proxy::gateway::PortChange::Failed { port, address, error } = &change {
                    anyhow::bail!("gateway port {port} at {address}: {error}");
                }
                report_port_change(change);
            }
            gateway_listeners = Some(listeners);
        }
    }
    if let Some(addr) = args.admin {
        let admin = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot serve the admin endpoints on {addr}: {e}"))?;
        writeln!(out, "admin on {}", admin.local_addr()?)?;
        let router = mesh_proxy::admin::router(source.clone(), Some(prometheus));
        tokio::spawn(async move { axum::serve(admin, router).await });
    }
    out.flush()?;

    tokio::spawn(source.clone().watch(args.reload_interval));
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
        mesh_proxy::server::serve(listener, mesh_proxy::server::upstream(source.mesh()), stopped).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(mut listeners) = gateway_listeners else { return Ok(ExitCode::SUCCESS) };
    let mut stopping = stopped.clone();
    loop {
        for change in listeners.reconcile(&stopped).await {
            report_port_change(change);
        }
        tokio::select! {
            _ = tokio::time::sleep(args.reload_interval) => {}
            _ = stopping.wait_for(|s| *s) => break,
        }
    }
    listeners.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Print (opened ports, on standard output, as the first ones) or log what a Gateway reconcile did.
fn report_port_change(change: mesh_proxy::gateway::PortChange) {
    use mesh_proxy::gateway::PortChange;
    use std::io::Write;
    match change {
        PortChange::Opened { port, protocol, address } => {
            let mut out = std::io::stdout();
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

fn validate(paths: &[PathBuf], namespace: String, quiet: bool, strict: bool, json: bool) -> Result<ExitCode> {
    for p in paths {
        if !p.exists() {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let options = LoadOptions { default_namespace: namespace, ..LoadOptions::default() };
    let loaded = load_paths(paths, &options);
    let documents = loaded.resources.len() + loaded.skipped.len();
    let mut store = ConfigStore::default();
    let report = store.apply(loaded);

    if !json {
        for f in &report.failed_files {
            println!("{f}");
        }
    }
    let mut errors = 0;
    let mut warnings = 0;
    let mut shown = Vec::new();
    for d in &report.diagnostics {
        match d.severity {
            Severity::Error => errors += 1,
            Severity::Warning | Severity::Unsupported => warnings += 1,
        }
        if d.severity == Severity::Error || !quiet {
            shown.push(d);
        }
    }
    let failed = errors > 0 || !report.failed_files.is_empty() || (strict && warnings > 0);
    if json {
        let mut diagnostics: Vec<DiagnosticJson<'_>> =
            report.failed_files.iter().map(DiagnosticJson::of_file).collect();
        diagnostics.extend(shown.iter().map(|d| DiagnosticJson::of(d)));
        println!("{}", serde_json::to_string_pretty(&ValidateJson { valid: !failed, diagnostics })?);
    } else {
        for d in shown {
            println!("{d}");
        }
    }
    let invalid = report.rejected.len() + report.kept_last_good.len();
    eprintln!(
        "{} valid, {invalid} invalid, {} skipped (other kinds); {errors} errors, {warnings} warnings{}",
        store.resources().len(),
        report.skipped.len(),
        if report.failed_files.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable files", report.failed_files.len())
        }
    );
    if documents == 0 && report.failed_files.is_empty() && errors == 0 {
        eprintln!("note: no resources found");
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `mesh validate -o json`: the whole answer, for scripts.
#[derive(serde::Serialize)]
struct ValidateJson<'a> {
    valid: bool,
    diagnostics: Vec<DiagnosticJson<'a>>,
}

/// One problem in `mesh validate -o json` (every key present, null when unknown).
#[derive(serde::Serialize)]
struct DiagnosticJson<'a> {
    severity: &'static str,
    code: Option<&'static str>,
    file: Option<&'a str>,
    line: Option<u32>,
    kind: Option<&'a str>,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    path: &'a str,
    message: String,
}

impl<'a> DiagnosticJson<'a> {
    fn of(d: &'a mesh_config::Diagnostic) -> Self {
        let r = d.resource.as_ref();
        DiagnosticJson {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Unsupported => "unsupported",
            },
            code: d.code.map(|c| c.as_str()),
            file: d.file.as_deref(),
            line: Some(d.line),
            kind: r.map(|r| &*r.kind),
            namespace: r.map(|r| &*r.namespace),
            name: r.map(|r| &*r.name),
            path: &d.path,
            message: d.message.clone(),
        }
    }

    /// A file that could not be read or parsed: an error with no resource.
    fn of_file(e: &'a mesh_config::LoadError) -> Self {
        let (line, message) = match e {
            mesh_config::LoadError::Io { message, .. } => (None, message.clone()),
            mesh_config::LoadError::Yaml { error, .. } => {
                (Some(error.line), format!("not valid YAML: {}", error.message))
            }
        };
        DiagnosticJson {
            severity: "error",
            code: None,
            file: Some(e.file()),
            line,
            kind: None,
            namespace: None,
            name: None,
            path: "",
            message,
        }
    }
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// Configuration files or directories (repeatable).
    #[arg(short = 'f', long = "file", required = true, value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Request method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// A label of the client workload, `key=value` (repeatable), for `sourceLabels`.
    #[arg(long = "source-label", value_name = "KEY=VALUE")]
    source_labels: Vec<String>,
    /// Evaluate as this Gateway (`namespace/name`): only VirtualServices bound to it apply.
    /// Without it, those bound to `mesh` apply.
    #[arg(long, value_name = "NS/NAME")]
    gateway: Option<String>,
    /// The client's namespace (short host names resolve in it); also the namespace of
    /// resources that set none.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Output format: `text` or `json`.
    #[arg(short = 'o', long = "output", default_value = "text")]
    output: String,
    #[command(flatten)]
    settings: MeshSettings,
    /// The request URL, e.g. `http://reviews:9080/reviews/0`; with `--gateway`, the URL's
    /// port is the Gateway port the request arrives on (without one: the port of the first
    /// server whose hosts admit the URL's host — TLS servers for `https`, plain ones for
    /// `http` — 80 or 443 first; else 80 or 443), as `mesh proxy` takes it from its listener;
    /// with `--gateway`, also a
    /// connection to one of its TCP servers, `tcp://any:31400`, or TLS passthrough servers,
    /// `tls://SERVER-NAME:443`.
    url: String,
}

fn explain(args: ExplainArgs) -> Result<ExitCode> {
    use mesh_proxy::explain;
    let ExplainArgs { files, method, headers, source_labels, gateway, namespace, output, settings, url } = args;
    let (namespace, output, url) = (namespace.as_str(), output.as_str(), url.as_str());
    for p in &files {
        if !p.exists() {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    if output != "json" && output != "text" {
        anyhow::bail!("unknown output format {output:?} (use text or json)");
    }
    let uri: http::Uri = url.parse().map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
    if uri.authority().is_none() {
        anyhow::bail!("{url:?} needs a host, e.g. http://reviews:9080/");
    }
    let mut header_list: Vec<(String, String)> = Vec::new();
    for h in &headers {
        let (name, value) = h.split_once(':').ok_or_else(|| anyhow::anyhow!("header {h:?} is not `Name: value`"))?;
        header_list.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut labels = Vec::new();
    for l in &source_labels {
        let (k, v) = l.split_once('=').ok_or_else(|| anyhow::anyhow!("source label {l:?} is not `key=value`"))?;
        labels.push((k.to_string(), v.to_string()));
    }
    let binding = match gateway.as_deref() {
        None => Binding::Mesh,
        Some(g) => {
            let (ns, name) = g.split_once('/').ok_or_else(|| anyhow::anyhow!("gateway {g:?} is not NS/NAME"))?;
            Binding::gateway(ns, name)
        }
    };
    let options = LoadOptions { default_namespace: namespace.to_string(), ..LoadOptions::default() };
    // The client's view: resources not exported to its namespace do not apply to it.
    let mut store = ConfigStore::new(settings.compile_options(namespace));
    let report = store.apply(load_paths(&files, &options));
    // What `mesh validate` would say (errors and warnings), so that an invalid, misspelt or
    // duplicated config is never explained silently.
    for f in &report.failed_files {
        eprintln!("{f}");
    }
    for d in report.diagnostics.iter().filter(|d| d.severity != Severity::Unsupported) {
        eprintln!("{d}");
    }
    let snapshot = store.snapshot();
    // A connection to a Gateway's TCP or TLS passthrough server: `tcp://ANY:PORT`,
    // `tls://SERVER-NAME[:PORT]` (443 by default).
    if let Some(scheme @ ("tcp" | "tls")) = uri.scheme_str() {
        if binding == Binding::Mesh {
            anyhow::bail!("{scheme}:// routes are served by a Gateway's servers: pass --gateway NS/NAME");
        }
        let port = match (uri.port_u16(), scheme) {
            (Some(p), _) => p,
            (None, "tls") => 443,
            (None, _) => anyhow::bail!("{url:?} needs a port, e.g. tcp://any:31400"),
        };
        let sni = (scheme == "tls").then(|| uri.host().unwrap_or("").to_ascii_lowercase());
        if output == "json" {
            let value = explain::explain_l4_json(snapshot, &binding, port, sni.as_deref());
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            print!("{}", explain::explain_l4_text(snapshot, &binding, port, sni.as_deref()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let client = ClientIdentity::new(namespace, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let scheme = uri.scheme_str().unwrap_or("http");
    let req = RequestView {
        method: &method,
        scheme,
        authority,
        path: uri.path(),
        query: uri.query(),
        headers: &header_list,
        listener_port: None,
    };
    // Under a Gateway, the connection is accepted as `mesh proxy` accepts it: the port the
    // request arrives on, then the servers that admit it (by SNI for TLS).
    let listener = match &binding {
        Binding::Mesh => None,
        Binding::Gateway { namespace: gw_ns, name } => {
            let Some(gw) = snapshot.gateway(gw_ns, name) else {
                anyhow::bail!("no Gateway {gw_ns}/{name} in the configuration");
            };
            let https = scheme.eq_ignore_ascii_case("https");
            let port = mesh_core::decision::listener_port(&gw.servers, authority, https);
            let host = mesh_core::request::normalize_host(authority);
            let sni = https.then_some(Some(&*host));
            match mesh_core::decision::accept(&gw.servers, port, sni) {
                Ok(listener) => Some(listener),
                Err(why) => {
                    if output == "json" {
                        println!("{}", serde_json::to_string_pretty(&explain::closed_json(&host, port))?);
                    } else {
                        println!("{scheme}://{authority} via {binding}, port {port}\n=> connection closed: {why}");
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    if output == "json" {
        let value = explain::explain_json(snapshot, &binding, listener.as_ref(), &req, &client);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", explain::explain_text(snapshot, &binding, listener.as_ref(), &req, &client));
    }
    Ok(ExitCode::SUCCESS)
}
