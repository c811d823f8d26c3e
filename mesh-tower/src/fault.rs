//! Fault injection: Istio's `fault.delay` and `fault.abort`.
//!
//! Each request of a rule with a fault draws once for the delay and once for the abort, each
//! against its own percentage (Istio: `percentage.value`, default 100 when unset). A delayed
//! request waits `fixedDelay` before it goes on (its response gets flag `DI`); an aborted request
//! is answered here with the configured HTTP status, or for `grpcStatus` with HTTP 200 and that
//! `grpc-status` (flag `FI`) — after the delay, when both apply, as Envoy's fault filter does.
//! (<https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPFaultInjection>)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use mesh_core::route::AbortStatus;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{LocalBody, LocalReply, ResponseFlags};
use crate::route::RouteContext;

/// The code of a gRPC status name (`UNAVAILABLE` → 14), as gRPC defines them.
pub fn grpc_code(name: &str) -> Option<u32> {
    mesh_core::route::grpc_status_code(name)
}

fn abort_reply(status: &AbortStatus) -> LocalReply {
    match status {
        AbortStatus::Http(code) => LocalReply::FaultAbort { status: *code, grpc_status: None },
        AbortStatus::Grpc(name) => {
            LocalReply::FaultAbort { status: 200, grpc_status: Some(grpc_code(name).unwrap_or(2)) }
        }
    }
}

/// Applies [`Fault`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultLayer {
    _priv: (),
}

impl FaultLayer {
    /// Inject the faults of each request's route.
    pub fn new() -> Self {
        FaultLayer { _priv: () }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = Fault<S>;

    fn layer(&self, inner: S) -> Fault<S> {
        Fault { inner }
    }
}

/// The fault service (see the module docs).
#[derive(Debug, Clone)]
pub struct Fault<S> {
    inner: S,
}

impl<S> Fault<S> {
    /// Inject faults before calling `inner`.
    pub fn new(inner: S) -> Self {
        Fault { inner }
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

pin_project_lite::pin_project! {
    /// Response future of [`Fault`]: the inner call as it is when the route injects nothing
    /// (the common case, kept as small as the inner future), or the boxed fault in progress.
    #[project = FaultFutureProj]
    #[allow(missing_docs)] // pin-project-lite does not take docs on variant fields
    pub enum FaultFuture<S, B, F> {
        /// No fault: the inner call.
        Passthrough { #[pin] future: F },
        /// A delay and/or an abort (boxed: rare, and the delay's timer is large).
        Injected { future: Pin<Box<Injected<S, B, F>>> },
    }
}

pin_project_lite::pin_project! {
    /// A request with an injected delay and/or abort.
    pub struct Injected<S, B, F> {
        #[pin]
        state: State<F>,
        service: Option<S>,
        request: Option<Request<B>>,
        abort: Option<LocalReply>,
        delayed: bool,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Delaying { #[pin] sleep: Sleep },
        Aborting,
    }
}

impl<S, B, F> std::fmt::Debug for FaultFuture<S, B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultFuture::Passthrough { .. } => f.write_str("FaultFuture::Passthrough"),
            FaultFuture::Injected { future } => f.debug_tuple("FaultFuture::Injected").field(&**future).finish(),
        }
    }
}

impl<S, B, F> std::fmt::Debug for Injected<S, B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injected").field("abort", &self.abort).field("delayed", &self.delayed).finish()
    }
}

impl<S, B, RB> Future for FaultFuture<S, B, S::Future>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: LocalBody,
{
    type Output = Result<Response<RB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FaultFutureProj::Passthrough { future } => future.poll(cx),
            FaultFutureProj::Injected { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, B, RB> Future for Injected<S, B, S::Future>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: LocalBody,
{
    type Output = Result<Response<RB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    if *this.delayed {
                        ResponseFlags::add_to(ResponseFlags::DELAY_INJECTED, &mut response);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Aborting => {
                    let reply = this.abort.take().unwrap_or(LocalReply::FaultAbort { status: 503, grpc_status: None });
                    let mut response = reply.into_response();
                    if *this.delayed {
                        ResponseFlags::add_to(ResponseFlags::DELAY_INJECTED, &mut response);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Delaying { sleep } => {
                    ready!(sleep.poll(cx));
                    if this.abort.is_some() {
                        this.state.set(State::Aborting);
                        continue;
                    }
                    let (Some(service), Some(request)) = (this.service.as_mut(), this.request.take()) else {
                        this.state.set(State::Aborting);
                        continue;
                    };
                    ready!(service.poll_ready(cx))?;
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

impl<S, B, RB> Service<Request<B>> for Fault<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    RB: LocalBody,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = FaultFuture<S, B, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let fault =
            req.extensions().get::<RouteContext>().and_then(|c| c.rule.as_ref()).and_then(|r| r.fault.as_deref());
        let (delay, abort) = match fault {
            Some(f) => {
                let (d, a) = f.decide(crate::rng::f64(), crate::rng::f64());
                (d, a.map(abort_reply))
            }
            None => (None, None),
        };
        let injected = |i: Injected<S, B, S::Future>| FaultFuture::Injected { future: Box::pin(i) };
        match (delay, abort) {
            (None, None) => FaultFuture::Passthrough { future: self.inner.call(req) },
            (None, Some(abort)) => injected(Injected {
                state: State::Aborting,
                service: None,
                request: None,
                abort: Some(abort),
                delayed: false,
            }),
            (Some(delay), abort) => {
                tracing::debug!(target: "meshwork::fault", delay_ms = delay.as_millis() as u64, abort = abort.is_some(), "injecting delay");
                let (service, request) = if abort.is_none() {
                    let clone = self.inner.clone();
                    (Some(std::mem::replace(&mut self.inner, clone)), Some(req))
                } else {
                    (None, None)
                };
                injected(Injected {
                    state: State::Delaying { sleep: tokio::time::sleep(delay) },
                    service,
                    request,
                    abort,
                    delayed: true,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_names_map_to_codes() {
        assert_eq!(grpc_code("UNAVAILABLE"), Some(14));
        assert_eq!(grpc_code("cancelled"), Some(1));
        assert_eq!(grpc_code("14"), Some(14));
        assert_eq!(grpc_code("NOPE"), None);
    }
}
