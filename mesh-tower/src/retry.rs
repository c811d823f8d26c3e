//! The retry layer: Istio's `retries` (Envoy's router retry policy).
//!
//! A try is retried when its outcome matches `retryOn` ([`mesh_core::retry`] has Envoy's table)
//! and all of these hold:
//!
//! - fewer than `attempts` retries were made (Istio's default when a route sets none: 2, on
//!   `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`);
//! - the request body can be sent again: it fit the replay buffer
//!   ([`ReplayBody`](crate::replay::ReplayBody), 64 KiB by default) — a larger or streaming body is
//!   sent once and never replayed;
//! - the cluster grants a retry slot: the DestinationRule's `retryBudget`, or
//!   `connectionPool.http.maxRetries`;
//! - the request is not a mirror's copy (Envoy never retries shadows);
//! - the answer is not meshwork's own refusal — a connection-pool overflow or "no healthy
//!   upstream" 503 is returned as is: Envoy never retries after local circuit breaking
//!   (envoyproxy/envoy#1793).
//!
//! When the retry budget (or `maxRetries`) refuses a retry, the response is returned with flag
//! `UO`, as Envoy records retry overflow (envoyproxy/envoy#1588).
//!
//! Before each retry it waits Envoy's jittered exponential backoff (25 ms base unless the route
//! sets one), and the next try avoids the endpoints already tried. When the retries run out on a
//! retriable outcome the last response is returned with flag `URX`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use mesh_core::retry::{DEFAULT_BACKOFF_BASE, TryOutcome, backoff};
use mesh_core::route::{HttpRule, RetryPolicy};
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::cluster::Cluster;
use crate::context::Tried;
use crate::error::{FailedTry, Local, LocalBody, ResponseFlags};
use crate::mirror::Mirrored;
use crate::replay::Replay;
use crate::route::RouteContext;

/// Applies [`Retry`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryLayer {
    _priv: (),
}

impl RetryLayer {
    /// Retry as each request's route says.
    pub fn new() -> Self {
        RetryLayer { _priv: () }
    }
}

impl<S: Clone> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::new(inner)
    }
}

/// The retry service (see the module docs).
///
/// The first try of every request goes to the inner service; later tries go to clones of the
/// inner service as it was when the layer was applied (kept aside, shared by every clone of this
/// service), made only when a retry is sent. So a request that is not retried neither clones the
/// inner service nor carries one in its future.
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    spare: Arc<Mutex<S>>,
}

impl<S: Clone> Retry<S> {
    /// Retry requests to `inner` as their routes say.
    pub fn new(inner: S) -> Self {
        let spare = Arc::new(Mutex::new(inner.clone()));
        Retry { inner, spare }
    }
}

impl<S> Retry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably (first tries; retries use the copy taken by [`Retry::new`]).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn istio_default() -> &'static RetryPolicy {
    static DEFAULT: OnceLock<RetryPolicy> = OnceLock::new();
    DEFAULT.get_or_init(RetryPolicy::istio_default)
}

/// The head of a request for later tries: method, URI, version and headers (other extensions are
/// not carried over, which spares a copy of them on every request; the route decision is kept
/// apart). The headers are kept as a list, one allocation, and become a `HeaderMap` again only
/// when a retry is sent (a `HeaderMap` copy costs two, and every request pays for the template).
#[derive(Debug)]
struct Head {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Head {
    fn of<B>(req: &Request<B>) -> Self {
        Head {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
        }
    }

    fn request<B>(&self, body: B) -> Request<B> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        let headers = req.headers_mut();
        headers.reserve(self.headers.len());
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        req
    }
}

/// How a try ended, read from its response.
fn outcome_of<B>(response: &Response<B>) -> TryOutcome {
    if let Some(FailedTry(outcome)) = response.extensions().get::<FailedTry>() {
        return *outcome;
    }
    let grpc_status =
        response.headers().get(&crate::error::GRPC_STATUS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    TryOutcome::Response { status: response.status().as_u16(), grpc_status }
}

pin_project_lite::pin_project! {
    /// Response future of [`Retry`].
    pub struct RetryFuture<S, B, F> {
        #[pin]
        state: State<F>,
        // Where retries go: the service's spare, cloned (and boxed, so that the future of a
        // request that is never retried stays small) when the first retry is sent.
        spare: Option<Arc<Mutex<S>>>,
        service: Option<Box<S>>,
        // The request head and body for the next try (`None` when retries are off).
        template: Option<(Head, B)>,
        route: Option<RouteContext>,
        rule: Option<Arc<HttpRule>>,
        retries: u32,
        tried: Vec<Arc<str>>,
        // The cluster whose retry slot the current try holds.
        retry_slot: Option<Arc<Cluster>>,
    }

    impl<S, B, F> PinnedDrop for RetryFuture<S, B, F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(c) = this.project().retry_slot.take() {
                c.pool().retry_done();
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        // Boxed: rare, and the timer would make every request's future larger.
        Backoff { sleep: Pin<Box<Sleep>> },
        Ready,
    }
}

impl<S, B, F> std::fmt::Debug for RetryFuture<S, B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture").field("retries", &self.retries).field("tried", &self.tried).finish()
    }
}

impl<S, B, RB> Future for RetryFuture<S, B, S::Future>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    B: Replay,
    RB: LocalBody,
{
    type Output = Result<Response<RB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(c) = this.retry_slot.take() {
                        c.pool().retry_done();
                    }
                    let policy: &RetryPolicy = match (this.rule.as_ref(), this.route.as_ref()) {
                        (Some(r), _) => &r.retries,
                        (None, Some(route)) => route.retries(),
                        (None, None) => istio_default(),
                    };
                    let outcome = outcome_of(&response);
                    // Envoy never retries its own refusals (pool overflow, no healthy upstream):
                    // retrying them would only add load where there is none to spare.
                    let refused = response.extensions().get::<Local>().is_some()
                        && response.extensions().get::<FailedTry>().is_none();
                    if refused || !policy.retry_on.should_retry(outcome) {
                        return Poll::Ready(Ok(response));
                    }
                    if *this.retries >= policy.attempts {
                        if policy.attempts > 0 {
                            ResponseFlags::add_to(ResponseFlags::RETRY_LIMIT, &mut response);
                        }
                        return Poll::Ready(Ok(response));
                    }
                    let Some((_, body)) = this.template.as_ref() else { return Poll::Ready(Ok(response)) };
                    let Some(_) = body.replay() else {
                        tracing::debug!(target: "meshwork::retry", "not retried: the request body cannot be sent again");
                        return Poll::Ready(Ok(response));
                    };
                    let upstream = response.body().endpoint();
                    if let Some(cluster) = upstream.and_then(|u| u.cluster.clone()) {
                        if !cluster.try_retry() {
                            tracing::debug!(target: "meshwork::retry", cluster = %cluster.destination().host, "not retried: retry budget exhausted");
                            cluster.count_retry_overflow();
                            ResponseFlags::add_to(ResponseFlags::OVERFLOW, &mut response);
                            return Poll::Ready(Ok(response));
                        }
                        cluster.count_retry();
                        *this.retry_slot = Some(cluster);
                    }
                    let upstream = response.body().endpoint();
                    if let Some(address) = upstream.and_then(|u| u.address.clone()) {
                        this.tried.push(address);
                    }
                    *this.retries += 1;
                    let span = tracing::Span::current();
                    if !span.is_disabled() && tracing::enabled!(target: "meshwork::route", tracing::Level::DEBUG) {
                        span.record("retries", *this.retries);
                    }
                    let base = policy.backoff.unwrap_or(DEFAULT_BACKOFF_BASE);
                    let wait = backoff(*this.retries, base, crate::rng::u64());
                    tracing::debug!(target: "meshwork::retry", retry = *this.retries, ?outcome, backoff_ms = wait.as_millis() as u64, "retrying");
                    if wait == Duration::ZERO {
                        this.state.set(State::Ready);
                    } else {
                        this.state.set(State::Backoff { sleep: Box::pin(tokio::time::sleep(wait)) });
                    }
                }
                StateProj::Backoff { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    if this.service.is_none() {
                        let Some(spare) = this.spare.as_ref() else { return Poll::Pending };
                        let service = spare.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        *this.service = Some(Box::new(service));
                    }
                    let Some(service) = this.service.as_mut() else { return Poll::Pending };
                    ready!(service.poll_ready(cx))?;
                    let Some((head, body)) = this.template.as_ref() else { return Poll::Pending };
                    let Some(body) = body.replay() else { return Poll::Pending };
                    let mut req = head.request(body);
                    if let Some(route) = this.route.as_mut() {
                        // Later tries go to the cluster the first one resolved (once per request:
                        // the cluster whose retry budget this try holds).
                        if route.cluster.is_none() {
                            route.cluster.clone_from(this.retry_slot);
                        }
                        req.extensions_mut().insert(route.clone());
                    }
                    req.extensions_mut().insert(Tried(this.tried.clone()));
                    let future = service.call(req);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

impl<S, B, RB> Service<Request<B>> for Retry<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    B: Replay,
    RB: LocalBody,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = RetryFuture<S, B, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = req.extensions().get::<RouteContext>();
        let rule = route.and_then(|c| c.rule.clone());
        let attempts = route.map_or_else(|| istio_default().attempts, |c| c.retries().attempts);
        let mirrored = req.extensions().get::<Mirrored>().is_some();
        let route = if attempts > 0 && !mirrored { route.cloned() } else { None };
        let template =
            if attempts > 0 && !mirrored { req.body().replay().map(|copy| (Head::of(&req), copy)) } else { None };
        let spare = template.is_some().then(|| self.spare.clone());
        RetryFuture {
            state: State::Calling { future: self.inner.call(req) },
            spare,
            service: None,
            template,
            route,
            rule,
            retries: 0,
            tried: Vec::new(),
            retry_slot: None,
        }
    }
}
