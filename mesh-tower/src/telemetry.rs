//! The telemetry layer: Istio's standard metrics, a tracing span per request, W3C trace context
//! and an optional access log — the outermost layer, so it sees every answer, local or not.
//!
//! Metrics go through the [`metrics`] facade under Istio's names and labels, as a client-side
//! (`reporter="source"`) Envoy reports them
//! (<https://istio.io/latest/docs/reference/config/metrics/>), so Istio's Grafana dashboards and
//! Kiali read them unchanged:
//!
//! | metric | kind | value |
//! |---|---|---|
//! | `istio_requests_total` | counter | 1 per request |
//! | `istio_request_duration_milliseconds` | histogram | request start to the end of the response body |
//! | `istio_request_bytes` | histogram | request headers + body size |
//! | `istio_response_bytes` | histogram | response headers + body bytes |
//!
//! Labels: `reporter`, `source_workload`, `source_workload_namespace`, `source_principal`,
//! `source_app`, `source_version`, `source_canonical_service`, `source_canonical_revision`,
//! `source_cluster`, `destination_workload`, `destination_workload_namespace`,
//! `destination_principal`, `destination_app`, `destination_version`, `destination_service`,
//! `destination_service_name`, `destination_service_namespace`, `destination_canonical_service`,
//! `destination_canonical_revision`, `destination_cluster`, `request_protocol`, `response_code`,
//! `grpc_response_status`, `response_flags` (Envoy's letters, `-` when none) and
//! `connection_security_policy` (`unknown` on the source side, as Istio reports it). Destination
//! workload labels come from the endpoint that answered (its registry labels). The destination
//! service is the routed destination's (its cluster's), also when no endpoint answered (a fault
//! abort, a route timeout, a connection-pool overflow), as Istio's stats read it from the route's
//! cluster; only requests with no routed destination (no route, redirects, direct responses) are
//! labelled with the host the caller named.
//!
//! Metrics are recorded when the response body ends (or is dropped), so `grpc-status` in trailers
//! is seen and the duration covers the whole response. Metric handles are cached per label set.
//!
//! Tracing: a span `meshwork.request` per request (and `meshwork.attempt` per try, in the
//! balance layer). The request's `traceparent` is forwarded with a new parent id, or a new trace
//! is started; `tracestate` is kept. With [`TelemetryLayer::access_log`] each request also emits
//! an `info` event on target `meshwork::access` with Envoy's access-log fields.

mod body;
#[cfg(feature = "otel")]
mod otel;
mod trace;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use arc_swap::ArcSwap;
use http::{Request, Response};
use http_body::Body;
use mesh_core::ClientIdentity;
use metrics::{Counter, Histogram, Label};
use rustc_hash::FxHashMap;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

pub use self::body::TelemetryBody;
pub use self::trace::{TraceParent, propagate};
use crate::balance::Upstream;
use crate::cluster::{EndpointMeta, WorkloadLabels, service_namespace};
use crate::error::ResponseFlags;

/// Istio's default cluster name.
const CLUSTER: &str = "Kubernetes";
/// The most label sets whose metric handles are cached.
const CACHE_LIMIT: usize = 4096;

/// How many distinct request-named hosts become metric label values (see `Shared::intern`).
const HOST_LIMIT: usize = 100;

/// Who is calling: the source labels of every metric.
#[derive(Debug, Clone)]
struct Source {
    workload: Arc<str>,
    namespace: Arc<str>,
    app: Arc<str>,
    version: Arc<str>,
    canonical_service: Arc<str>,
    canonical_revision: Arc<str>,
}

impl Source {
    fn new(client: &ClientIdentity, workload: Option<&str>) -> Source {
        let w = WorkloadLabels::of(&client.labels);
        let unknown = || Arc::<str>::from("unknown");
        Source {
            workload: workload.map(Arc::from).unwrap_or_else(unknown),
            namespace: client.namespace.clone(),
            app: w.app.unwrap_or_else(unknown),
            version: w.version.unwrap_or_else(unknown),
            canonical_service: w.canonical_service.or_else(|| workload.map(Arc::from)).unwrap_or_else(unknown),
            canonical_revision: w.canonical_revision,
        }
    }
}

/// Cache key: which destination, and how the request ended. Pointers are pinned by the cached
/// entry holding their `Arc`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HandleKey {
    meta: usize,
    service: usize,
    status: u16,
    grpc: i16,
    flags: ResponseFlags,
    grpc_protocol: bool,
}

#[derive(Debug)]
struct Handles {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
    _pins: (Arc<EndpointMeta>, Arc<str>),
}

#[derive(Debug)]
pub(crate) struct Shared {
    source: Source,
    cache: ArcSwap<FxHashMap<HandleKey, Arc<Handles>>>,
    /// Hosts of requests answered with no routed destination (no route, redirects, direct responses),
    /// one shared copy each, so that their handles are cached like the others (registering
    /// handles builds 25 labels and looks them up in the recorder).
    hosts: ArcSwap<FxHashMap<Box<str>, Arc<str>>>,
    write: Mutex<()>,
    access_log: bool,
    /// The label value past `HOST_LIMIT` hosts for passthrough requests (`PassthroughCluster`).
    passthrough: Arc<str>,
    /// The label value past `HOST_LIMIT` hosts for local answers, and for upstreams outside any
    /// cluster (`unknown`).
    unknown: Arc<str>,
}

/// What a finished request reports.
#[derive(Debug)]
pub(crate) struct Finished<'a> {
    pub(crate) upstream: Option<&'a Upstream>,
    /// With no upstream: the service the route chose, when it chose one.
    pub(crate) service: Option<&'a Arc<str>>,
    pub(crate) authority: Option<&'a str>,
    /// `x-request-id`, kept only for the access log.
    pub(crate) request_id: Option<&'a http::HeaderValue>,
    pub(crate) status: u16,
    pub(crate) grpc_status: Option<u32>,
    pub(crate) flags: ResponseFlags,
    pub(crate) grpc: bool,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
    pub(crate) millis: f64,
}

fn flags_label(flags: ResponseFlags) -> Label {
    Label::new(
        "response_flags",
        flags.as_static_str().map_or_else(|| metrics::SharedString::from(flags.to_string()), Into::into),
    )
}

fn status_label(status: u16) -> metrics::SharedString {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        301 => "301".into(),
        302 => "302".into(),
        400 => "400".into(),
        404 => "404".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        0 => "0".into(),
        other => other.to_string().into(),
    }
}

/// The host a request named, for a request with no cluster.
fn local_host<'a>(f: &Finished<'a>) -> &'a str {
    f.authority.map(|a| mesh_core::request::split_authority(a).0).unwrap_or("unknown")
}

impl Shared {
    fn labels(&self, f: &Finished<'_>, meta: &EndpointMeta, service: &Arc<str>) -> Vec<Label> {
        let mut labels = self.peer_labels(meta, service);
        labels.extend([
            Label::new("request_protocol", if f.grpc { "grpc" } else { "http" }),
            Label::new("response_code", status_label(f.status)),
            Label::new(
                "grpc_response_status",
                f.grpc_status.map_or_else(|| "".into(), |c| metrics::SharedString::from(c.to_string())),
            ),
            flags_label(f.flags),
            Label::new("connection_security_policy", "unknown"),
        ]);
        labels
    }

    /// The `source_*` and `destination_*` labels (and `reporter`).
    fn peer_labels(&self, meta: &EndpointMeta, service: &Arc<str>) -> Vec<Label> {
        let s = &self.source;
        let service_name: Arc<str> = match service_namespace(service) {
            Some(_) => Arc::from(service.split('.').next().unwrap_or(service)),
            None => service.clone(),
        };
        let service_namespace: Arc<str> = Arc::from(service_namespace(service).unwrap_or("unknown"));
        vec![
            Label::new("reporter", "source"),
            Label::new("source_workload", s.workload.clone()),
            Label::new("source_workload_namespace", s.namespace.clone()),
            Label::new("source_principal", "unknown"),
            Label::new("source_app", s.app.clone()),
            Label::new("source_version", s.version.clone()),
            Label::new("source_canonical_service", s.canonical_service.clone()),
            Label::new("source_canonical_revision", s.canonical_revision.clone()),
            Label::new("source_cluster", CLUSTER),
            Label::new("destination_workload", meta.workload.clone()),
            Label::new("destination_workload_namespace", meta.namespace.clone()),
            Label::new("destination_principal", "unknown"),
            Label::new("destination_app", meta.app.clone()),
            Label::new("destination_version", meta.version.clone()),
            Label::new("destination_service", service.clone()),
            Label::new("destination_service_name", service_name),
            Label::new("destination_service_namespace", service_namespace),
            Label::new("destination_canonical_service", meta.canonical_service.clone()),
            Label::new("destination_canonical_revision", meta.canonical_revision.clone()),
            Label::new("destination_cluster", if meta.workload.as_ref() == "unknown" { "unknown" } else { CLUSTER }),
        ]
    }

    fn register(&self, f: &Finished<'_>, meta: Arc<EndpointMeta>, service: Arc<str>) -> Arc<Handles> {
        let labels = self.labels(f, &meta, &service);
        Arc::new(Handles {
            requests: metrics::counter!("istio_requests_total", labels.clone()),
            duration: metrics::histogram!("istio_request_duration_milliseconds", labels.clone()),
            request_bytes: metrics::histogram!("istio_request_bytes", labels.clone()),
            response_bytes: metrics::histogram!("istio_response_bytes", labels),
            _pins: (meta, service),
        })
    }

    pub(crate) fn record(&self, f: Finished<'_>) {
        let (meta, service) = match f.upstream {
            // A passthrough: the host as the caller named it (Istio's `destination_service` for
            // `PassthroughCluster`), while fewer than `CACHE_LIMIT` are kept.
            Some(u) if u.cluster.as_ref().is_some_and(|c| c.is_passthrough()) => {
                (u.meta.clone(), Some(self.intern(local_host(&f), &self.passthrough)))
            }
            Some(u) => (u.meta.clone(), u.cluster.as_ref().map(|c| c.destination().host.clone())),
            // Answered with no upstream after a route chose its service (fault abort, route
            // timeout): that service, as Istio reads it from the route's cluster.
            None if f.service.is_some() => (EndpointMeta::unknown(), f.service.cloned()),
            // Answered with no upstream and no routed service: the host as the caller named it.
            None => (EndpointMeta::unknown(), Some(self.intern(local_host(&f), &self.unknown))),
        };
        let Some(service) = service else {
            // An upstream outside any cluster (a custom client below the stack): its labels
            // are all `unknown`.
            let handles = self.register(&f, meta, self.unknown.clone());
            return self.update(&handles, &f);
        };
        let key = HandleKey {
            meta: Arc::as_ptr(&meta) as *const u8 as usize,
            service: Arc::as_ptr(&service) as *const u8 as usize,
            status: f.status,
            grpc: f.grpc_status.map_or(-1, |c| c.min(i16::MAX as u32) as i16),
            flags: f.flags,
            grpc_protocol: f.grpc,
        };
        let handles = match self.cache.load().get(&key) {
            Some(h) => h.clone(),
            None => {
                let handles = self.register(&f, meta, service);
                let _guard = self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let current = self.cache.load();
                if current.len() < CACHE_LIMIT {
                    let mut next = FxHashMap::clone(&current);
                    next.insert(key, handles.clone());
                    self.cache.store(Arc::new(next));
                }
                handles
            }
        };
        self.update(&handles, &f);
    }

    /// The shared copy of `host` (see `hosts`); `overflow` once `HOST_LIMIT` hosts are kept: a
    /// label value taken from the request, so bounded — a client naming hosts at will cannot
    /// grow the number of metric series past it.
    fn intern(&self, host: &str, overflow: &Arc<str>) -> Arc<str> {
        if let Some(h) = self.hosts.load().get(host) {
            return h.clone();
        }
        let _guard = self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.hosts.load();
        if let Some(h) = current.get(host) {
            return h.clone();
        }
        if current.len() >= HOST_LIMIT {
            return overflow.clone();
        }
        let interned: Arc<str> = Arc::from(host);
        let mut next = FxHashMap::clone(&current);
        next.insert(Box::from(host), interned.clone());
        self.hosts.store(Arc::new(next));
        interned
    }

    fn update(&self, handles: &Handles, f: &Finished<'_>) {
        handles.requests.increment(1);
        handles.duration.record(f.millis);
        handles.request_bytes.record(f.request_bytes as f64);
        handles.response_bytes.record(f.response_bytes as f64);
        if self.access_log {
            tracing::info!(
                target: "meshwork::access",
                authority = f.authority.unwrap_or("-"),
                request_id = f.request_id.and_then(|v| v.to_str().ok()).unwrap_or("-"),
                response_code = f.status,
                response_flags = %f.flags,
                grpc_status = f.grpc_status,
                bytes_sent = f.request_bytes,
                bytes_received = f.response_bytes,
                duration_ms = f.millis,
                upstream_host = f.upstream.and_then(|u| u.address.as_deref()).unwrap_or("-"),
                upstream_cluster = f.upstream.and_then(|u| u.cluster.as_ref()).map_or("-", |c| &*c.destination().host),
                "request"
            );
        }
    }
}

/// Applies [`Telemetry`].
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    shared: Arc<Shared>,
}

/// Istio's TCP metrics of one proxied connection, labelled as the HTTP ones are (with
/// `request_protocol="tcp"` and no response code): `istio_tcp_connections_opened_total` when it is
/// made, `istio_tcp_sent_bytes_total` (towards the client) and `istio_tcp_received_bytes_total`
/// (from the client) as bytes pass, `istio_tcp_connections_closed_total` when it ends.
#[derive(Debug)]
pub struct TcpConnection {
    sent: Counter,
    received: Counter,
    closed: Counter,
}

impl TcpConnection {
    /// Count `n` bytes sent to the client.
    pub fn sent(&self, n: u64) {
        self.sent.increment(n);
    }

    /// Count `n` bytes received from the client.
    pub fn received(&self, n: u64) {
        self.received.increment(n);
    }

    /// The connection closed.
    pub fn closed(self) {
        self.closed.increment(1);
    }
}

impl TelemetryLayer {
    /// Report as `client` (its namespace and labels are the `source_*` labels).
    pub fn new(client: &ClientIdentity) -> Self {
        Self::build(client, None, false)
    }

    /// A connection proxied to `upstream` (the endpoint and its cluster; `None` when none was
    /// reached) of `service`, ended or going on with `flags`: counts it opened and returns its
    /// counters (see [`TcpConnection`]).
    pub fn tcp_connection(
        &self,
        upstream: Option<&Upstream>,
        service: &Arc<str>,
        flags: ResponseFlags,
    ) -> TcpConnection {
        let meta = upstream.map_or_else(EndpointMeta::unknown, |u| u.meta.clone());
        let mut labels = self.shared.peer_labels(&meta, service);
        labels.extend([
            Label::new("request_protocol", "tcp"),
            flags_label(flags),
            Label::new("connection_security_policy", "unknown"),
        ]);
        metrics::counter!("istio_tcp_connections_opened_total", labels.clone()).increment(1);
        TcpConnection {
            sent: metrics::counter!("istio_tcp_sent_bytes_total", labels.clone()),
            received: metrics::counter!("istio_tcp_received_bytes_total", labels.clone()),
            closed: metrics::counter!("istio_tcp_connections_closed_total", labels),
        }
    }

    /// Name the calling workload (`source_workload`).
    pub fn workload(self, name: &str) -> Self {
        Self::build_from(&self, Some(name), self.shared.access_log)
    }

    /// Emit an access-log event per request (target `meshwork::access`).
    pub fn access_log(self, on: bool) -> Self {
        let workload = self.shared.source.workload.clone();
        let workload = (&*workload != "unknown").then_some(workload);
        Self::build_from(&self, workload.as_deref(), on)
    }

    fn build_from(&self, workload: Option<&str>, access_log: bool) -> Self {
        let mut source = self.shared.source.clone();
        if let Some(w) = workload {
            source.workload = Arc::from(w);
            if &*source.canonical_service == "unknown" {
                source.canonical_service = Arc::from(w);
            }
        }
        TelemetryLayer {
            shared: Arc::new(Shared {
                source,
                cache: ArcSwap::default(),
                hosts: ArcSwap::default(),
                write: Mutex::new(()),
                access_log,
                passthrough: Arc::from(crate::cluster::PASSTHROUGH_CLUSTER),
                unknown: Arc::from("unknown"),
            }),
        }
    }

    fn build(client: &ClientIdentity, workload: Option<&str>, access_log: bool) -> Self {
        TelemetryLayer {
            shared: Arc::new(Shared {
                source: Source::new(client, workload),
                cache: ArcSwap::default(),
                hosts: ArcSwap::default(),
                write: Mutex::new(()),
                access_log,
                passthrough: Arc::from(crate::cluster::PASSTHROUGH_CLUSTER),
                unknown: Arc::from("unknown"),
            }),
        }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = Telemetry<S>;

    fn layer(&self, inner: S) -> Telemetry<S> {
        Telemetry { inner, shared: self.shared.clone() }
    }
}

/// The telemetry service (see the module docs).
#[derive(Debug, Clone)]
pub struct Telemetry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Telemetry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The authority a request named: its URI's, else its `Host` header, kept as it came (a clone of
/// shared bytes; read as text only when a metric or log line needs it).
#[derive(Debug, Clone)]
pub(crate) enum RequestAuthority {
    Uri(http::uri::Authority),
    Host(http::HeaderValue),
}

impl RequestAuthority {
    fn of<B>(req: &Request<B>) -> Option<Self> {
        match req.uri().authority() {
            Some(a) => Some(RequestAuthority::Uri(a.clone())),
            None => req.headers().get(http::header::HOST).cloned().map(RequestAuthority::Host),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            RequestAuthority::Uri(a) => Some(a.as_str()),
            RequestAuthority::Host(h) => h.to_str().ok(),
        }
    }
}

/// What the response future carries until the body ends.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: Instant,
    pub(crate) authority: Option<RequestAuthority>,
    /// `x-request-id` (only with the access log on).
    pub(crate) request_id: Option<http::HeaderValue>,
    pub(crate) grpc: bool,
    pub(crate) request_bytes: u64,
}

fn headers_size(headers: &http::HeaderMap) -> u64 {
    headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum()
}

pin_project_lite::pin_project! {
    /// Response future of [`Telemetry`].
    #[derive(Debug)]
    pub struct TelemetryFuture<F> {
        #[pin]
        future: F,
        pending: Option<Pending>,
        span: tracing::Span,
    }
}

impl<F, B, E> Future for TelemetryFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body + crate::error::LocalBody,
{
    type Output = Result<Response<TelemetryBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = ready!(this.future.poll(cx));
        let Some(pending) = this.pending.take() else {
            return Poll::Ready(result.map(|r| r.map(TelemetryBody::passthrough)));
        };
        match result {
            Ok(response) => {
                this.span.record("status", response.status().as_u16());
                let flags = ResponseFlags::of(&response);
                if !flags.is_empty() {
                    this.span.record("flags", tracing::field::display(flags));
                }
                Poll::Ready(Ok(TelemetryBody::wrap(response, pending)))
            }
            Err(e) => {
                pending.shared.record(Finished {
                    upstream: None,
                    service: None,
                    authority: pending.authority.as_ref().and_then(RequestAuthority::as_str),
                    request_id: pending.request_id.as_ref(),
                    status: 0,
                    grpc_status: None,
                    flags: ResponseFlags::NONE,
                    grpc: pending.grpc,
                    request_bytes: pending.request_bytes,
                    response_bytes: 0,
                    millis: pending.start.elapsed().as_secs_f64() * 1000.0,
                });
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<S, B, RB> Service<Request<B>> for Telemetry<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    B: Body,
    RB: Body + crate::error::LocalBody,
{
    type Response = Response<TelemetryBody<RB>>;
    type Error = S::Error;
    type Future = TelemetryFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let span = tracing::info_span!(
            target: "meshwork::request",
            "meshwork.request",
            method = %req.method(),
            uri = %req.uri(),
            trace_id = tracing::field::Empty,
            route = tracing::field::Empty,
            destination = tracing::field::Empty,
            subset = tracing::field::Empty,
            retries = tracing::field::Empty,
            status = tracing::field::Empty,
            flags = tracing::field::Empty,
        );
        // With OpenTelemetry, the span joins the caller's trace and is the parent sent on.
        #[cfg(feature = "otel")]
        let trace = self::trace::propagate_with(req.headers_mut(), |incoming| otel::link(&span, incoming));
        #[cfg(not(feature = "otel"))]
        let trace = propagate(req.headers_mut());
        let grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let body_size = req.body().size_hint();
        let request_bytes = headers_size(req.headers()) + body_size.exact().unwrap_or(body_size.lower());
        let authority = RequestAuthority::of(&req);
        if !span.is_disabled() {
            span.record("trace_id", tracing::field::display(trace.trace_id_hex()));
        }
        let request_id = if self.shared.access_log { req.headers().get("x-request-id").cloned() } else { None };
        let pending = Pending { shared: self.shared.clone(), start, authority, request_id, grpc, request_bytes };
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        TelemetryFuture { future, pending: Some(pending), span }
    }
}
