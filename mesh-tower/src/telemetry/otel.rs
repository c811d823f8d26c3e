//! OpenTelemetry (cargo feature `otel`): the request span joins the caller's trace.
//!
//! Without the feature, the telemetry layer forwards W3C `traceparent` by hand (a child id for
//! this hop, or a new trace) and its `tracing` spans stand alone. With it, and a
//! `tracing_opentelemetry` layer installed by the application (which also chooses the SDK and
//! the exporter — meshwork never installs a subscriber), the `meshwork.request` span's parent
//! is the caller's span from the incoming `traceparent`, and the `traceparent` sent upstream
//! names the request span itself, so the upstream's spans hang under it: one trace across the
//! hop, as Envoy's tracing makes it for Istio. The span carries the route, destination, subset
//! and retry count as attributes; each try is a `meshwork.attempt` child span (debug level).

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::trace::TraceParent;

/// Make `incoming` the parent of `span`; this hop's trace context is then `span`'s own, when an
/// OpenTelemetry layer gives it one.
pub(super) fn link(span: &tracing::Span, incoming: Option<TraceParent>) -> Option<TraceParent> {
    if span.is_disabled() {
        return None;
    }
    if let Some(parent) = incoming {
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id.to_be_bytes()),
            SpanId::from_bytes(parent.parent_id.to_be_bytes()),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    own.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(own.trace_id().to_bytes()),
        parent_id: u64::from_be_bytes(own.span_id().to_bytes()),
        flags: own.trace_flags().to_u8(),
    })
}
