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
mod stats;
mod tcp;
mod trace;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use http_body::Body;
use mesh_core::ClientIdentity;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

pub use self::body::TelemetryBody;
pub(crate) use self::stats::{CLUSTER, Source};
pub(crate) use self::stats::{Finished, Shared};
pub use self::tcp::TcpConnection;
pub use self::trace::{TraceParent, propagate};
use crate::error::ResponseFlags;

/// Applies [`Telemetry`].
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    shared: Arc<Shared>,
}

impl TelemetryLayer {
    /// Report as `client` (its namespace and labels are the `source_*` labels).
    pub fn new(client: &ClientIdentity) -> Self {
        Self::build(client, None, false)
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
        TelemetryLayer { shared: Arc::new(Shared::new(source, access_log)) }
    }

    fn build(client: &ClientIdentity, workload: Option<&str>, access_log: bool) -> Self {
        TelemetryLayer { shared: Arc::new(Shared::new(Source::new(client, workload), access_log)) }
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
