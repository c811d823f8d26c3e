//! Timeouts: the route's overall `timeout` and the retry policy's `perTryTimeout`.
//!
//! The same service serves both, placed at two heights of the stack: [`TimeoutLayer::route`]
//! above the retry layer bounds the whole exchange, all tries included, and answers 504
//! `upstream request timeout` (flag `UT`); [`TimeoutLayer::per_try`] below it bounds each try,
//! and its 504 is marked as a failed try so the retry layer may try again (Envoy retries a
//! per-try timeout under `5xx`, `gateway-error` and `reset`). Istio's default is no timeout.
//!
//! The route timeout, as Envoy's, lasts until the response is complete: when the headers come in
//! time, its timer moves into the response body ([`LocalBody::set_deadline`]), and a body still
//! arriving when it fires ends with [`BodyError::timeout`](crate::body::BodyError::timeout) (the
//! status is sent already, so the stream is cut, as Envoy resets it). The per-try timeout ends
//! with the headers: Envoy ignores it once the response has started downstream, when no retry
//! is possible any more.
//!
//! The route timeout starts when the request leaves the fault layer: Envoy's route `timeout`
//! "spans between the point at which the entire downstream request has been processed" by the
//! router and the response
//! (<https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#envoy-v3-api-field-config-route-v3-routeaction-timeout>),
//! and the fault filter sits before the router, so an injected delay is not counted.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{LocalBody, LocalReply};
use crate::route::RouteContext;

/// Which timeout a [`Timeout`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The route's `timeout`.
    Route,
    /// The retry policy's `perTryTimeout`.
    PerTry,
}

/// Applies [`Timeout`].
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    kind: TimeoutKind,
}

impl TimeoutLayer {
    /// The route's overall timeout.
    pub fn route() -> Self {
        TimeoutLayer { kind: TimeoutKind::Route }
    }

    /// The per-try timeout.
    pub fn per_try() -> Self {
        TimeoutLayer { kind: TimeoutKind::PerTry }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout { inner, kind: self.kind }
    }
}

/// The timeout service (see the module docs).
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    kind: TimeoutKind,
}

impl<S> Timeout<S> {
    /// Apply the `kind` timeout of each request's route around `inner`.
    pub fn new(inner: S, kind: TimeoutKind) -> Self {
        Timeout { inner, kind }
    }

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

fn timeout_of<B>(req: &Request<B>, kind: TimeoutKind) -> Option<Duration> {
    let rule = req.extensions().get::<RouteContext>()?.rule.as_ref()?;
    match kind {
        TimeoutKind::Route => rule.timeout,
        TimeoutKind::PerTry => rule.retries.per_try_timeout,
    }
    .filter(|d| !d.is_zero())
}

pin_project_lite::pin_project! {
    /// Response future of [`Timeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        future: F,
        // Boxed: most routes set no timeout, and an inline timer would make every enclosing
        // future larger (and each of them is moved when the stack builds its futures).
        sleep: Option<Pin<Box<Sleep>>>,
        kind: TimeoutKind,
    }
}

impl<F, B, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: LocalBody,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(mut out) = this.future.poll(cx) {
            // The route timeout goes on into the body (changed in place: a response is not small).
            if *this.kind == TimeoutKind::Route
                && let Ok(response) = &mut out
                && let Some(sleep) = this.sleep.take()
            {
                response.body_mut().set_deadline(sleep);
            }
            return Poll::Ready(out);
        }
        let fired = this.sleep.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if !fired {
            return Poll::Pending;
        }
        let reply = match this.kind {
            TimeoutKind::Route => LocalReply::Timeout,
            TimeoutKind::PerTry => LocalReply::PerTryTimeout,
        };
        tracing::debug!(target: "meshwork::timeout", kind = ?this.kind, "upstream request timeout");
        Poll::Ready(Ok(reply.into_response()))
    }
}

impl<S, B, RB> Service<Request<B>> for Timeout<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: LocalBody,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let sleep = timeout_of(&req, self.kind).map(|d| Box::pin(tokio::time::sleep(d)));
        TimeoutFuture { future: self.inner.call(req), sleep, kind: self.kind }
    }
}
