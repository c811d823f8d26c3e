use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use mesh_core::CorsHeaders;
use mesh_core::route::{HttpRule, RouteAction};

use crate::context::DestinationService;
use crate::error::{LocalBody, LocalReply};

pin_project_lite::pin_project! {
    /// Response future of [`super::Route`]: a local reply, or the inner call whose response gets
    /// the rule's response header edits, then the CORS headers of a request from an allowed
    /// origin.
    #[project = RouteFutureProj]
    #[allow(missing_docs)] // pin-project-lite does not take docs on variant fields
    pub enum RouteFuture<F> {
        /// Answered by meshwork (with the response header edits of the rule that answered).
        Local { reply: Option<LocalReply>, rule: Option<Arc<HttpRule>> },
        /// Waiting for the inner service; response header edits (then CORS headers) applied when
        /// it answers.
        Inner { #[pin] future: F, rule: Option<Arc<HttpRule>>, index: usize, cors: Option<CorsHeaders> },
    }
}

impl<F> std::fmt::Debug for RouteFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteFuture::Local { reply, .. } => f.debug_struct("RouteFuture::Local").field("reply", reply).finish(),
            RouteFuture::Inner { .. } => f.write_str("RouteFuture::Inner"),
        }
    }
}

impl<F> RouteFuture<F> {
    pub(super) fn local(reply: LocalReply, rule: Option<Arc<HttpRule>>) -> Self {
        RouteFuture::Local { reply: Some(reply), rule }
    }

    pub(super) fn inner(future: F, rule: Option<Arc<HttpRule>>, index: usize, cors: Option<CorsHeaders>) -> Self {
        RouteFuture::Inner { future, rule, index, cors }
    }
}

/// Response header edits; values with `%VARIABLES%` read the endpoint that answered
/// (`UPSTREAM_REMOTE_ADDRESS`) and the response's own headers (`RESP(...)`).
#[inline]
fn apply_response<B: LocalBody>(ops: &mesh_core::route::HeaderOps, parts: &mut http::response::Parts, body: &B) {
    if ops.formatted.is_empty() {
        ops.apply(&mut parts.headers);
        return;
    }
    let upstream = body.endpoint().and_then(|u| u.address.clone());
    // No request headers are kept for the response: `REQ(...)` expands to nothing here.
    let request = http::HeaderMap::new();
    let ctx = mesh_core::header_format::HeaderContext {
        upstream: upstream.as_deref(),
        version: Some(parts.version),
        request: Some(&request),
        now: Some(super::wall_clock()),
        hostname: Some(super::hostname()),
        ..Default::default()
    };
    ops.apply_with(&mut parts.headers, &ctx);
}

impl<F, B, E> Future for RouteFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: LocalBody,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RouteFutureProj::Local { reply, rule } => {
                let reply = reply.take().unwrap_or(LocalReply::NoRoute);
                let response: Response<B> = reply.into_response();
                let Some(rule) = rule.take() else { return Poll::Ready(Ok(response)) };
                // A redirect's or direct response's own reply gets the rule's response edits
                // (Envoy's router finalizes the headers of a direct response with them).
                let (mut parts, body) = response.into_parts();
                apply_response(&rule.headers.response, &mut parts, &body);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            RouteFutureProj::Inner { future, rule, index, cors } => {
                let response = ready!(future.poll(cx))?;
                let (mut parts, body) = response.into_parts();
                if let Some(rule) = rule.as_deref() {
                    if let RouteAction::Route(w) = &rule.action
                        && let Some(d) = w.destinations().get(*index)
                    {
                        apply_response(&d.headers.response, &mut parts, &body);
                        // Answered below without an endpoint (fault abort, route timeout): the
                        // request still went to this destination's service, for telemetry.
                        if body.endpoint().is_none() {
                            parts.extensions.insert(DestinationService(d.destination.host.clone()));
                        }
                    }
                    apply_response(&rule.headers.response, &mut parts, &body);
                }
                // Envoy's CORS encodeHeaders, after the router's edits: its values win. Local
                // replies from below (fault abort, 503, 504) get them too.
                if let Some(cors) = cors.take() {
                    cors.apply(&mut parts.headers);
                }
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
        }
    }
}
