//! The inbound layer: gathers a request's attributes, verifies its JWT, asks mesh-core for the
//! [`InboundDecision`] and applies it.
//!
//! What it does with the decision, as Istio's sidecar does:
//! - **allow**: the request goes on with its path normalized (the application sees the path
//!   authorization matched), the verified token removed unless the rule says
//!   `forwardOriginalToken` (Envoy's `jwt_authn` `forward: false` removes the header it was read
//!   from; a token in a query parameter stays), and the rule's `outputPayloadToHeader` /
//!   `outputClaimToHeaders` headers set.
//! - **deny** (an AuthorizationPolicy): 403 `RBAC: access denied`, Envoy's RBAC filter's reply.
//! - **reject**: 400 for a path normalization refuses; 401 `Jwt is missing` / `Jwt verification
//!   fails` with Envoy's `www-authenticate: Bearer realm="<url>"` (and `error="invalid_token"`
//!   for a bad token); 403 `Audiences in Jwt are not allowed`. A plaintext request on a `STRICT`
//!   port (or mutual TLS on a `DISABLE` one) has no HTTP answer: the layer fails the request with
//!   [`ConnectionRefused`], and hyper closes the connection. The TLS acceptor refuses such
//!   connections before any request is read; this is the layer's own guard.
//!
//! AUDIT rules that match are logged on target `meshwork::audit`, and dry-run policies' results on
//! `meshwork::authz` (debug), as Envoy's RBAC filter records shadow results.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use http::{HeaderValue, Request, Response, StatusCode};
use mesh_core::authz::{AuthzRequest, HttpAttributes};
use mesh_core::inbound::{InboundDecision, InboundRequest, JwtOutcome, RejectReason, Verdict, remote_ip};
use mesh_core::jwt::{JwtVerification, JwtVerifier};
use mesh_core::request_authn::{JwksSource, JwtRule, TokenLocation};
use mesh_core::security::Security;
use mesh_core::spiffe::SpiffeId;
use mesh_core::workload::Workload;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use super::ConnectionInfo;
use super::jwks::{HttpJwksFetcher, JwksCache, JwksFetcher};
use super::stats::Stats;
use crate::body::MeshBody;
use crate::route::SharedSnapshot;
use crate::{BoxError, telemetry};

/// A request refused before any HTTP answer (plaintext on a `STRICT` port, mutual TLS on a
/// `DISABLE` one): the server closes the connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection refused by PeerAuthentication ({reason:?}, port mode {mode})")]
pub struct ConnectionRefused {
    /// Why.
    pub reason: Option<RejectReason>,
    /// The port's effective mode.
    pub mode: &'static str,
}

/// The JWT rules of this workload under one security configuration, with their key sets.
struct Verifiers {
    security: Arc<Security>,
    jwks_version: u64,
    rules: Vec<Arc<JwtRule>>,
    verifier: JwtVerifier,
}

struct Shared {
    config: SharedSnapshot,
    workload: Workload,
    port: u16,
    jwks: Arc<JwksCache>,
    verifiers: ArcSwapOption<Verifiers>,
    stats: Stats,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundLayer").field("workload", &self.workload).field("port", &self.port).finish()
    }
}

/// Builds an [`InboundLayer`].
#[derive(Debug)]
pub struct InboundLayerBuilder {
    config: SharedSnapshot,
    workload: Workload,
    name: Option<String>,
    identity: Option<SpiffeId>,
    service: Option<String>,
    port: u16,
    fetcher: Option<Arc<dyn JwksFetcher>>,
    refresh: Option<Duration>,
}

impl std::fmt::Debug for dyn JwksFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksFetcher")
    }
}

impl InboundLayerBuilder {
    /// The port requests arrive on when the request carries no [`ConnectionInfo`] (default 80).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The workload's name (the `destination_workload` metric label).
    pub fn workload_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// The workload's own identity (the `destination_principal` metric label).
    pub fn identity(mut self, identity: SpiffeId) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The service this workload serves, as an FQDN (`httpbin.foo.svc.cluster.local`: the
    /// `destination_service*` metric labels; `unknown` without it).
    pub fn service(mut self, fqdn: &str) -> Self {
        self.service = Some(fqdn.to_string());
        self
    }

    /// Fetch `jwksUri` key sets with `fetcher` (default: [`HttpJwksFetcher`], `http://` only).
    pub fn jwks_fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Fetch key sets again after `interval` (default 20 minutes, as istiod).
    pub fn jwks_refresh(mut self, interval: Duration) -> Self {
        self.refresh = Some(interval);
        self
    }

    /// The layer.
    pub fn build(self) -> InboundLayer {
        let client = mesh_core::ClientIdentity {
            namespace: self.workload.namespace.clone(),
            labels: self.workload.labels.clone(),
            locality: None,
        };
        let destination = telemetry::Source::new(&client, self.name.as_deref());
        let fetcher = self.fetcher.unwrap_or_else(|| Arc::new(HttpJwksFetcher::default()));
        let mut jwks = JwksCache::new(fetcher);
        if let Some(interval) = self.refresh {
            jwks = jwks.with_refresh_interval(interval);
        }
        InboundLayer {
            shared: Arc::new(Shared {
                config: self.config,
                workload: self.workload,
                port: self.port,
                jwks: Arc::new(jwks),
                verifiers: ArcSwapOption::empty(),
                stats: Stats::new(destination, self.identity.as_ref(), self.service.as_deref()),
            }),
        }
    }
}

/// Enforces the mesh's inbound policy on requests arriving at one workload (see the
/// [module docs](self)).
///
/// ```
/// use std::sync::Arc;
/// use arc_swap::ArcSwap;
/// use mesh_core::{Snapshot, workload::Workload};
/// use mesh_tower::inbound::InboundLayer;
/// let config = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
/// let layer = InboundLayer::builder(config, Workload::new("foo", [("app", "httpbin")])).port(8000).build();
/// let _service = tower_layer::Layer::layer(&layer, tower_service_fn());
/// # fn tower_service_fn() -> impl tower_service::Service<http::Request<()>, Response = http::Response<http_body_util::Empty<bytes::Bytes>>, Error = std::convert::Infallible> + Clone {
/// #     #[derive(Clone)] struct S;
/// #     impl tower_service::Service<http::Request<()>> for S {
/// #         type Response = http::Response<http_body_util::Empty<bytes::Bytes>>; type Error = std::convert::Infallible;
/// #         type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
/// #         fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
/// #         fn call(&mut self, _: http::Request<()>) -> Self::Future { std::future::ready(Ok(http::Response::new(http_body_util::Empty::new()))) }
/// #     }
/// #     S
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InboundLayer {
    shared: Arc<Shared>,
}

impl InboundLayer {
    /// A layer for `workload` (namespace and labels: what policies select), reading policy from
    /// `config` on every request.
    pub fn builder(config: SharedSnapshot, workload: Workload) -> InboundLayerBuilder {
        InboundLayerBuilder {
            config,
            workload,
            name: None,
            identity: None,
            service: None,
            port: 80,
            fetcher: None,
            refresh: None,
        }
    }

    /// Istio's TCP metrics of one inbound TCP connection from `peer` (`None`: plaintext),
    /// counted opened now: count its bytes and its end on the returned value.
    pub fn tcp_connection(&self, peer: Option<&SpiffeId>) -> crate::telemetry::TcpConnection {
        self.shared.stats.tcp_connection(peer)
    }

    /// The decision for one request, without calling any service: what the layer would do
    /// (JWT verified against the key sets, fetched if needed). For tests and tools.
    pub async fn decide<B>(&self, request: &Request<B>) -> InboundDecision {
        self.shared.decide(request).await.0
    }
}

impl<S> Layer<S> for InboundLayer {
    type Service = Inbound<S>;

    fn layer(&self, inner: S) -> Inbound<S> {
        Inbound { inner, shared: self.shared.clone() }
    }
}

/// The service [`InboundLayer`] makes.
#[derive(Debug, Clone)]
pub struct Inbound<S> {
    inner: S,
    shared: Arc<Shared>,
}

fn now() -> u64 {
    crate::route::wall_clock().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn missing() -> JwtVerification {
    JwtVerification {
        outcome: JwtOutcome::Missing,
        claims: None,
        rule: None,
        location: None,
        output_headers: Vec::new(),
    }
}

impl Shared {
    /// This workload's JWT verifiers for `security`, rebuilt when the configuration or a fetched
    /// key set changes.
    async fn verifiers(&self, security: &Arc<Security>) -> Arc<Verifiers> {
        if let Some(v) = self.verifiers.load_full()
            && Arc::ptr_eq(&v.security, security)
            && v.jwks_version == self.jwks.version()
            && v.rules.iter().all(|r| !matches!(&r.jwks, JwksSource::Uri(u) if self.jwks.needs_fetch(u)))
        {
            for rule in &v.rules {
                if let JwksSource::Uri(uri) = &rule.jwks {
                    self.jwks.refresh_if_stale(uri);
                }
            }
            return v;
        }
        let rules = security.jwt_rules(&self.workload);
        let uris: Vec<(Arc<str>, Duration)> = rules
            .iter()
            .filter_map(|r| match &r.jwks {
                JwksSource::Uri(u) => Some((u.clone(), r.timeout)),
                _ => None,
            })
            .collect();
        self.jwks.ensure(&uris).await;
        let jwks_version = self.jwks.version();
        let (verifier, errors) = JwtVerifier::new(&rules, &|uri| self.jwks.get(uri));
        for e in errors {
            tracing::warn!(target: "meshwork::inbound", error = %e, "RequestAuthentication key set not usable; its tokens fail");
        }
        let v = Arc::new(Verifiers { security: security.clone(), jwks_version, rules, verifier });
        self.verifiers.store(Some(v.clone()));
        v
    }

    async fn decide<B>(&self, request: &Request<B>) -> (InboundDecision, JwtVerification, Option<ConnectionInfo>) {
        let security = self.config.load().security_shared().clone();
        let verifiers = self.verifiers(&security).await;
        self.decide_with(&security, &verifiers, request)
    }

    fn decide_with<B>(
        &self,
        security: &Security,
        verifiers: &Verifiers,
        request: &Request<B>,
    ) -> (InboundDecision, JwtVerification, Option<ConnectionInfo>) {
        let connection = request.extensions().get::<ConnectionInfo>();
        let jwt = if verifiers.rules.is_empty() {
            missing()
        } else {
            verifiers.verifier.verify(request.headers(), request.uri().query(), now())
        };
        let inbound = inbound_request(request, connection, self.port, &jwt);
        let decision = security.inbound(&self.workload, &inbound);
        if let Some(audit) = &decision.audit {
            tracing::info!(target: "meshwork::audit", policy = %format_args!("{}/{}", audit.namespace, audit.name), rule = audit.rule, path = decision.normalized_path.as_deref().unwrap_or(""), "AUDIT policy matched");
        }
        if let Some(dry) = &decision.dry_run {
            tracing::debug!(target: "meshwork::authz", allowed = dry.allowed, policy = ?dry.policy, "dry-run policy result");
        }
        (decision, jwt, connection.cloned())
    }
}

/// What mesh-core's inbound decision reads of one request: its attributes (method, authority,
/// path with query, headers, the verified JWT's claims) and its connection's (peer identity,
/// SNI, addresses; `default_port` when the request carries no [`ConnectionInfo`]), with
/// `remote.ip` as a sidecar's Envoy derives it ([`remote_ip`]). The layer and
/// `mesh explain --inbound` both build their input here.
///
/// ```
/// use mesh_core::inbound::JwtOutcome;
/// use mesh_core::jwt::JwtVerification;
/// use mesh_tower::inbound::{ConnectionInfo, inbound_request};
/// let request = http::Request::get("/a?b=1").header("host", "httpbin:8000").body(()).expect("request");
/// let jwt = JwtVerification { outcome: JwtOutcome::Missing, claims: None, rule: None, location: None, output_headers: vec![] };
/// let input = inbound_request(&request, None, 8000, &jwt);
/// assert!(!input.mtls);
/// assert_eq!(input.attributes.destination_port, 8000);
/// assert_eq!(input.attributes.http.as_ref().map(|h| h.path.as_str()), Some("/a?b=1"));
/// ```
pub fn inbound_request<B>(
    request: &Request<B>,
    connection: Option<&ConnectionInfo>,
    default_port: u16,
    jwt: &JwtVerification,
) -> InboundRequest {
    let port = connection.and_then(|c| c.destination).map_or(default_port, |a| a.port());
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| request.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    let source_ip = connection.and_then(|c| c.source).map(|a| a.ip());
    let xff = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let attributes = AuthzRequest {
        peer: connection.and_then(|c| c.peer.as_ref()).map(|p| Arc::from(p.to_string())),
        source_ip,
        remote_ip: remote_ip(xff, source_ip),
        destination_ip: connection.and_then(|c| c.destination).map(|a| a.ip()),
        destination_port: port,
        sni: connection.and_then(|c| c.sni.as_deref()).map(str::to_string),
        http: Some(HttpAttributes {
            method: request.method().as_str().to_string(),
            host: host.to_string(),
            path: request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string(),
            headers: request.headers().clone(),
            jwt: jwt.claims.clone(),
        }),
    };
    InboundRequest { mtls: connection.is_some_and(ConnectionInfo::is_mtls), jwt: jwt.outcome.clone(), attributes }
}

/// What mesh-core's inbound decision reads of one TCP connection (no HTTP attributes: the
/// HTTP-only policy fields behave as Istio says for TCP). `default_port` when the connection
/// has no destination address.
///
/// ```
/// use mesh_tower::inbound::{ConnectionInfo, inbound_connection};
/// let info = ConnectionInfo::plaintext("10.0.0.1:4000".parse().ok(), "10.0.0.2:9000".parse().ok());
/// let input = inbound_connection(&info, 0);
/// assert!(input.attributes.http.is_none());
/// assert_eq!(input.attributes.destination_port, 9000);
/// ```
pub fn inbound_connection(connection: &ConnectionInfo, default_port: u16) -> InboundRequest {
    let source_ip = connection.source.map(|a| a.ip());
    let attributes = AuthzRequest {
        peer: connection.peer.as_ref().map(|p| Arc::from(p.to_string())),
        source_ip,
        remote_ip: source_ip,
        destination_ip: connection.destination.map(|a| a.ip()),
        destination_port: connection.destination.map_or(default_port, |a| a.port()),
        sni: connection.sni.as_deref().map(str::to_string),
        http: None,
    };
    InboundRequest { mtls: connection.is_mtls(), jwt: JwtOutcome::Missing, attributes }
}

/// The refusal's HTTP answer.
fn refusal<B>(decision: &InboundDecision, status: u16, request_url: &str) -> Response<MeshBody<B>> {
    let (body, bearer): (&'static str, Option<&str>) = match decision.reject {
        Some(RejectReason::MissingToken) => ("Jwt is missing", Some("")),
        Some(RejectReason::InvalidToken) => ("Jwt verification fails", Some(", error=\"invalid_token\"")),
        Some(RejectReason::AudienceNotAllowed) => ("Audiences in Jwt are not allowed", None),
        Some(RejectReason::BadPath) => ("", None),
        _ => ("RBAC: access denied", None),
    };
    let mut response = Response::new(MeshBody::local(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let headers = response.headers_mut();
    if !body.is_empty() {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Some(error) = bearer
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{request_url}\"{error}"))
    {
        headers.insert(http::header::WWW_AUTHENTICATE, v);
    }
    response
}

/// The request as the application receives it.
fn forward<B>(request: &mut Request<B>, decision: &InboundDecision, jwt: JwtVerification, rules: &[Arc<JwtRule>]) {
    if let Some(path) = &decision.forwarded_path
        && request.uri().path_and_query().map(|p| p.as_str()) != Some(path.as_str())
    {
        let mut parts = request.uri().clone().into_parts();
        if let Ok(pq) = path.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    let rule = jwt.rule.and_then(|i| rules.get(i));
    if let (Some(rule), Some(TokenLocation::Header { name, .. })) = (rule, &jwt.location)
        && !rule.forward_original_token
    {
        request.headers_mut().remove(&**name);
    }
    for (name, value) in jwt.output_headers {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(&*name), HeaderValue::try_from(value)) {
            request.headers_mut().insert(name, value);
        }
    }
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    request.headers().get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn request_url<B>(request: &Request<B>) -> String {
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| request.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    let scheme = request.uri().scheme_str().unwrap_or("http");
    format!("{scheme}://{host}{}", request.uri().path())
}

impl<S, B, RB> Service<Request<B>> for Inbound<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<MeshBody<RB>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<MeshBody<RB>>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let start = Instant::now();
            let grpc = is_grpc(&request);
            let security = shared.config.load().security_shared().clone();
            let verifiers = shared.verifiers(&security).await;
            let (decision, jwt, connection) = shared.decide_with(&security, &verifiers, &request);
            let peer = connection.as_ref().and_then(|c| c.peer.as_ref());
            match (decision.verdict, decision.status) {
                (Verdict::Allow, _) => {
                    forward(&mut request, &decision, jwt, &verifiers.rules);
                    let response = inner.call(request).await.map_err(Into::into)?;
                    shared.stats.record(peer, response.status().as_u16(), grpc, start.elapsed());
                    Ok(response.map(MeshBody::upstream))
                }
                (_, Some(status)) => {
                    tracing::debug!(target: "meshwork::inbound", verdict = decision.verdict.as_str(), reason = ?decision.reject, policy = ?decision.policy, "request refused");
                    shared.stats.record(peer, status, grpc, start.elapsed());
                    Ok(refusal(&decision, status, &request_url(&request)))
                }
                (_, None) => {
                    Err(Box::new(ConnectionRefused { reason: decision.reject, mode: decision.mtls.as_str() })
                        as BoxError)
                }
            }
        })
    }
}
