//! Istio's mutual TLS towards endpoints: the outbound side of `ISTIO_MUTUAL` and auto mTLS.
//!
//! What to originate is mesh-core's decision ([`mesh_core::upstream_tls::originate_tls`], which
//! cites Istio's `cluster_tls.go`): this module applies it. Per cluster (the mesh-tower cluster
//! the request was balanced over, found in its [`RouteContext`]) the decision is made once for
//! every endpoint, when the cluster is first seen, and kept while that cluster lives: a request
//! then costs a map lookup by the cluster's pointer and one by the endpoint's address, and only
//! for clusters where mutual TLS can apply (a DestinationRule `ISTIO_MUTUAL`, or no `tls` with
//! auto mTLS on and a workload certificate).
//!
//! Requests to an endpoint that gets mutual TLS go through a pooled hyper-util client of their
//! own per (SNI, expected identities, HTTP version, connect settings), whose connector
//! ([`MtlsConnector`]) opens TCP, then TLS with [`identity::client_config`]: the workload
//! certificate, secure naming against the expected identities (trust-domain aliases honoured),
//! Istio's outbound ALPN. The rustls `ClientConfig` is cached per (expected identities,
//! protocol) and rebuilt when the certificate's version changes (a rotation on disk), not per
//! connection; hyper-util pools connections per endpoint authority within each client.
//!
//! Without a workload certificate, an explicit `ISTIO_MUTUAL` fails the connection: 503 `UF`
//! (the connector's error), the reason logged (at `warn` the first time, then `debug`). Envoy
//! in that state has no SDS secret for the cluster and its TLS handshakes fail; answering 503
//! rather than falling back to plain text keeps a DestinationRule that demands mutual TLS from
//! ever sending plain text. Auto mTLS without a certificate is plain text (mesh-core's
//! `have_certificate`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use mesh_core::authz::TrustDomainBundle;
use mesh_core::policy::TlsMode;
use mesh_core::upstream_tls::{ExpectedIdentities, OriginateTls, UpstreamTlsInput, originate_tls};
use mesh_tower::RouteContext;
use mesh_tower::cluster::Cluster;
use rustls_pki_types::ServerName;

use super::BoxError;
use super::tls_connect::TlsConnection;
use crate::identity::{self, CertSource, OutboundProtocol};

/// The outbound mutual TLS settings of an [`UpstreamClient`](super::UpstreamClient): the
/// workload certificate, the trust domains, auto mTLS on or off.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mesh_proxy::identity::{CertFiles, CertSource};
/// use mesh_proxy::upstream::{OutboundMtls, UpstreamClient};
/// let certs = CertSource::load(CertFiles::in_dir("/etc/certs"))?;
/// let client: UpstreamClient = UpstreamClient::new().with_outbound_mtls(OutboundMtls::new(Some(certs)));
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OutboundMtls {
    certs: Option<CertSource>,
    bundle: TrustDomainBundle,
    auto_mtls: bool,
}

impl Default for OutboundMtls {
    fn default() -> Self {
        OutboundMtls::new(None)
    }
}

impl OutboundMtls {
    /// With the workload certificate `certs` (`None`: no certificate — `ISTIO_MUTUAL` fails,
    /// auto mTLS is plain text), the default trust domain (`cluster.local`) and auto mTLS on
    /// (Istio's default).
    pub fn new(certs: Option<CertSource>) -> Self {
        OutboundMtls { certs, bundle: TrustDomainBundle::default(), auto_mtls: true }
    }

    /// The trust domain and its aliases (meshConfig `trustDomain`, `trustDomainAliases`), for
    /// secure naming.
    pub fn trust_domains(mut self, bundle: TrustDomainBundle) -> Self {
        self.bundle = bundle;
        self
    }

    /// meshConfig `enableAutoMtls`.
    pub fn auto_mtls(mut self, enabled: bool) -> Self {
        self.auto_mtls = enabled;
        self
    }

    /// The workload certificate, if any.
    pub fn certs(&self) -> Option<&CertSource> {
        self.certs.as_ref()
    }
}

/// Where mutual TLS goes: what an endpoint's connections share (one per cluster in practice).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct MtlsTarget {
    pub(super) sni: Arc<str>,
    pub(super) expected: ExpectedIdentities,
}

/// The decisions for one cluster's endpoints.
#[derive(Debug)]
struct Decisions {
    cluster: Weak<Cluster>,
    /// Every endpoint gets this (the common case: one lookup less).
    all: Option<Arc<MtlsTarget>>,
    /// Otherwise, by endpoint address, those that get mutual TLS.
    by_address: HashMap<Arc<str>, Arc<MtlsTarget>>,
}

/// The state shared by an [`UpstreamClient`](super::UpstreamClient)'s mutual TLS clients.
#[derive(Debug)]
pub(crate) struct Mtls {
    settings: OutboundMtls,
    decisions: RwLock<HashMap<usize, Decisions>>,
    configs: Arc<ConfigCache>,
}

impl Mtls {
    pub(crate) fn new(settings: OutboundMtls) -> Mtls {
        let configs = Arc::new(ConfigCache {
            certs: settings.certs.clone(),
            bundle: settings.bundle.clone(),
            built: Mutex::default(),
            warned: AtomicBool::new(false),
        });
        Mtls { settings, decisions: RwLock::default(), configs }
    }

    pub(super) fn configs(&self) -> &Arc<ConfigCache> {
        &self.configs
    }

    /// The mutual TLS target of this request's endpoint, if it gets mutual TLS.
    pub(super) fn target<T>(&self, req: &http::Request<T>) -> Option<Arc<MtlsTarget>> {
        let ctx = req.extensions().get::<RouteContext>()?;
        let cluster = ctx.cluster()?;
        let address = req.uri().authority()?.as_str();
        self.target_for(cluster, &ctx.snapshot, address)
    }

    /// The mutual TLS target of endpoint `address` of `cluster`, if it gets mutual TLS (the
    /// same decision for an HTTP request and a TCP connection).
    pub(crate) fn target_for(
        &self,
        cluster: &Arc<Cluster>,
        snapshot: &mesh_core::Snapshot,
        address: &str,
    ) -> Option<Arc<MtlsTarget>> {
        let explicit = match cluster.policy().tls.as_ref().map(|t| t.mode) {
            Some(TlsMode::IstioMutual) => true,
            Some(_) => return None,
            None => false,
        };
        let auto = self.settings.auto_mtls && self.settings.certs.is_some();
        if !(explicit || auto) {
            return None;
        }
        if !cluster.is_known() || cluster.is_passthrough() {
            return None;
        }
        let key = Arc::as_ptr(cluster) as usize;
        {
            let decisions = self.decisions.read().unwrap_or_else(|p| p.into_inner());
            if let Some(d) = decisions.get(&key).filter(|d| d.cluster.strong_count() > 0) {
                return lookup(d, address);
            }
        }
        let d = self.decide(cluster, snapshot);
        let found = lookup(&d, address);
        let mut decisions = self.decisions.write().unwrap_or_else(|p| p.into_inner());
        decisions.retain(|_, d| d.cluster.strong_count() > 0);
        decisions.insert(key, d);
        found
    }

    /// mesh-core's decision for every endpoint of `cluster`; `snapshot` says whether its service
    /// is `MESH_EXTERNAL` (a ServiceEntry's `location`, unset meaning external as in Istio;
    /// Kubernetes Services and services registered in code are in the mesh) and the
    /// PeerAuthentication mode of its namespace (mesh- or namespace-level policies only, as
    /// Istio's `BestEffortInferServiceMTLSMode`).
    fn decide(&self, cluster: &Arc<Cluster>, snapshot: &mesh_core::Snapshot) -> Decisions {
        let destination = cluster.destination();
        let declared = snapshot.services(&destination.host).first();
        let mesh_external = declared.is_some_and(|s| !s.mesh_internal);
        let only_port = match declared.map(|s| &s.ports[..]) {
            Some([only]) => Some(only.number),
            _ => None,
        };
        // The service's namespace: its ServiceEntry's, else the host's (`name.namespace.svc...`).
        let namespace = declared
            .map(|s| s.namespace.clone())
            .or_else(|| destination.host.split('.').nth(1).map(Arc::from))
            .unwrap_or_else(|| Arc::from("default"));
        let namespace_workload = mesh_core::workload::Workload::new(&namespace, []);
        // Secure naming without `subjectAltNames`: the identities of every declaration of the
        // host (Pods' service accounts, a ServiceEntry's names), as the registry has them with
        // the cluster's endpoints (an endpoint-only change, which leaves the snapshot as it
        // was, may bring Pods of another service account); ones that are not SPIFFE
        // identities cannot match a peer and are left out.
        let mut accounts: Vec<mesh_core::spiffe::SpiffeId> = Vec::new();
        for id in cluster.service_accounts().iter().filter_map(|a| a.parse().ok()) {
            if !accounts.contains(&id) {
                accounts.push(id);
            }
        }
        let tls = cluster.policy().tls.as_ref();
        let mut targets: Vec<Arc<MtlsTarget>> = Vec::new();
        let mut by_address = HashMap::new();
        let mut plain = 0usize;
        for endpoint in cluster.endpoints() {
            // The service port names the cluster (and so the SNI): the destination's, else the
            // one this endpoint serves, else the service's only port, else the endpoint's own.
            let port = destination
                .port
                .or(endpoint.service_port)
                .or(only_port)
                .or_else(|| endpoint.address.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                .unwrap_or(0);
            let decision = originate_tls(&UpstreamTlsInput {
                tls,
                endpoint_labels: &endpoint.labels,
                host: &destination.host,
                port,
                subset: destination.subset.as_deref(),
                service_accounts: &accounts,
                auto_mtls: self.settings.auto_mtls,
                mesh_external,
                namespace_mtls: snapshot.security().mtls(&namespace_workload, port).mode,
                have_certificate: self.settings.certs.is_some(),
            });
            match decision {
                OriginateTls::IstioMutual(m) => {
                    let target = MtlsTarget { sni: m.sni, expected: m.expected };
                    let target = match targets.iter().find(|t| ***t == target) {
                        Some(t) => t.clone(),
                        None => {
                            let t = Arc::new(target);
                            targets.push(t.clone());
                            t
                        }
                    };
                    by_address.insert(endpoint.address.clone(), target);
                }
                OriginateTls::Plaintext | OriginateTls::Configured(_) => plain += 1,
            }
        }
        tracing::debug!(
            target: "meshwork::tls",
            cluster = %cluster.stats_name(),
            mutual_tls = by_address.len(),
            plain_text = plain,
            "outbound mutual TLS decided per endpoint"
        );
        let all = match &targets[..] {
            [only] if plain == 0 => Some(only.clone()),
            _ => None,
        };
        if all.is_some() {
            by_address.clear();
        }
        Decisions { cluster: Arc::downgrade(cluster), all, by_address }
    }
}

fn lookup(d: &Decisions, address: &str) -> Option<Arc<MtlsTarget>> {
    match &d.all {
        Some(all) => Some(all.clone()),
        None => d.by_address.get(address).cloned(),
    }
}

/// A client config and the certificate version it was built from.
type Built = (u64, Arc<rustls::ClientConfig>);

/// rustls client configs by (expected identities, protocol), each with the certificate version
/// it was built from.
#[derive(Debug)]
pub(super) struct ConfigCache {
    certs: Option<CertSource>,
    bundle: TrustDomainBundle,
    built: Mutex<HashMap<(ExpectedIdentities, OutboundProtocol), Built>>,
    warned: AtomicBool,
}

/// Why an outbound mutual TLS connection was not attempted.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    /// `ISTIO_MUTUAL` applies but the client has no workload certificate.
    #[error("ISTIO_MUTUAL to {sni}: no workload certificate (give mesh proxy --cert-dir, or the client a CertSource)")]
    NoCertificate {
        /// The SNI the connection was for.
        sni: Arc<str>,
    },
    /// `subjectAltNames` name no SPIFFE identity: no server can satisfy secure naming.
    #[error("ISTIO_MUTUAL to {sni}: subjectAltNames {names:?} name no SPIFFE identity, no server can match")]
    Unverifiable {
        /// The SNI the connection was for.
        sni: Arc<str>,
        /// The names.
        names: Arc<[Arc<str>]>,
    },
    /// The client config could not be built, or the SNI is not a valid server name.
    #[error("ISTIO_MUTUAL to {sni}: {message}")]
    Config {
        /// The SNI the connection was for.
        sni: Arc<str>,
        /// Why.
        message: String,
    },
}

impl ConfigCache {
    /// The client config for `target` and `protocol` with the current certificate.
    fn config(&self, target: &MtlsTarget, protocol: OutboundProtocol) -> Result<Arc<rustls::ClientConfig>, MtlsError> {
        let Some(certs) = &self.certs else {
            let error = MtlsError::NoCertificate { sni: target.sni.clone() };
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(target: "meshwork::tls", %error, "outbound mutual TLS refused (503)");
            } else {
                tracing::debug!(target: "meshwork::tls", %error, "outbound mutual TLS refused (503)");
            }
            return Err(error);
        };
        if let ExpectedIdentities::Unverifiable(names) = &target.expected {
            return Err(MtlsError::Unverifiable { sni: target.sni.clone(), names: names.clone() });
        }
        let cert = certs.current();
        let key = (target.expected.clone(), protocol);
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, config)) = built.get(&key)
            && *version == cert.version()
        {
            return Ok(config.clone());
        }
        let config = identity::client_config(
            &cert,
            target.expected.as_slice(),
            &self.bundle,
            protocol,
            certs.provider().clone(),
        )
        .map_err(|e| MtlsError::Config { sni: target.sni.clone(), message: e.to_string() })?;
        let config = Arc::new(config);
        built.insert(key, (cert.version(), config.clone()));
        Ok(config)
    }
}

impl Mtls {
    /// Istio's mutual TLS over an open TCP connection to `target`, for a TCP route (ALPN
    /// `istio`, as a sidecar's TCP cluster offers).
    pub(crate) async fn connect_tcp(
        &self,
        tcp: tokio::net::TcpStream,
        target: &MtlsTarget,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, BoxError> {
        let config = self.configs.config(target, OutboundProtocol::Tcp)?;
        let name = ServerName::try_from(target.sni.to_string())
            .map_err(|e| MtlsError::Config { sni: target.sni.clone(), message: e.to_string() })?;
        Ok(tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?)
    }
}

/// Connects with TCP, then Istio's mutual TLS to one target (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct MtlsConnector {
    http: HttpConnector,
    target: Arc<MtlsTarget>,
    protocol: OutboundProtocol,
    configs: Arc<ConfigCache>,
}

impl MtlsConnector {
    pub(super) fn new(
        http: HttpConnector,
        target: Arc<MtlsTarget>,
        http2: bool,
        configs: Arc<ConfigCache>,
    ) -> MtlsConnector {
        let protocol = if http2 { OutboundProtocol::Http2 } else { OutboundProtocol::Http11 };
        MtlsConnector { http, target, protocol, configs }
    }
}

impl tower::Service<http::Uri> for MtlsConnector {
    type Response = TlsConnection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsConnection, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<http::Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let config = self.configs.config(&self.target, self.protocol);
        let sni = self.target.sni.clone();
        let tcp = tower::Service::call(&mut self.http, uri);
        Box::pin(async move {
            let config = config?;
            let name = ServerName::try_from(sni.to_string())
                .map_err(|e| MtlsError::Config { sni: sni.clone(), message: e.to_string() })?;
            let tcp = tcp.await?.into_inner();
            let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
                tracing::debug!(target: "meshwork::tls", sni = %sni, error = %e, "outbound mutual TLS handshake failed");
                e
            })?;
            Ok(TlsConnection(TokioIo::new(stream)))
        })
    }
}
