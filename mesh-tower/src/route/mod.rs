//! The route layer: the VirtualService decision for each request.
//!
//! For every request it loads the current [`Snapshot`] (one atomic load), routes the request (see
//! [`mesh_core::router`]), and then:
//!
//! - asks mesh-core for the whole decision ([`Snapshot::decide`], see [`mesh_core::decision`]:
//!   Gateway admission from the [`Listener`] in the extensions, `httpsRedirect`, the rule, the
//!   weighted pick, the rewrite) — nothing about the decision is finished here;
//! - answers local decisions (redirects, direct responses, "no route": 404, flag `NR`) with the
//!   rule's response header edits, as Envoy applies them to its own replies, and CORS preflights
//!   the rule's `corsPolicy` answers ([`LocalReply::CorsPreflight`]: 200 with its
//!   `access-control-*` headers, no rule edits: Envoy's CORS filter answers before the router);
//! - otherwise applies the rewrite (path, authority) and request header edits (destination level,
//!   then rule level), records the decision as a [`RouteContext`] in the request's extensions
//!   for the layers below, calls the inner service, and applies the response header edits, then
//!   the CORS headers of a request from an allowed origin
//!   ([`mesh_core::decision::Forward::cors_headers`]) — on the upstream's response and on local
//!   replies made below (fault abort, 503, 504) alike, as Envoy's CORS `encodeHeaders` runs on
//!   both, after the router's edits. A request without `Origin`, or a rule without a policy,
//!   costs nothing here (mesh-core looks the header up only when the rule has a policy).
//!
//! A host with no VirtualService goes to the host itself (under a Gateway: 404), with the
//! snapshot's default retry policy when the mesh knows the service, or by the outbound traffic
//! policy when it does not (passthrough with no retries, or 502).

mod future;
mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::{Request, Response};
use mesh_core::route::HttpRule;
use mesh_core::{Binding, ClientIdentity, Decision, LocalReason, RequestView, Snapshot};
use tower_service::Service;

pub use self::future::RouteFuture;
pub use self::layer::RouteLayer;
#[doc(no_inline)]
pub use crate::context::{DestinationService, RouteContext};
use crate::error::LocalReply;

/// The shared, swappable configuration: writers `store` a new snapshot, every request `load`s it.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// The addresses of the connection a request came in on, for Envoy's `%DOWNSTREAM_...%`
/// variables in header values: put it in the request's extensions, or make the stack's `call`
/// while [`DownstreamAddresses::enter`]ed (what `mesh proxy` does: no extension per request).
/// Without either, those variables expand to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownstreamAddresses {
    /// The client's address.
    pub remote: std::net::SocketAddr,
    /// The address the client connected to.
    pub local: Option<std::net::SocketAddr>,
}

/// The guard of [`DownstreamAddresses::enter`]: restores the previous addresses when dropped.
#[derive(Debug)]
pub struct DownstreamScope {
    previous: Option<DownstreamAddresses>,
}

impl Drop for DownstreamScope {
    fn drop(&mut self) {
        CURRENT_DOWNSTREAM.with(|c| c.set(self.previous));
    }
}

thread_local! {
    static CURRENT_DOWNSTREAM: std::cell::Cell<Option<DownstreamAddresses>> = const { std::cell::Cell::new(None) };
}

impl DownstreamAddresses {
    /// Make these the current connection's addresses until the returned guard is dropped, for
    /// requests that carry none in their extensions: enter, then make a synchronous call into
    /// the stack such as `Service::call` (the route layer edits request headers there, not in the
    /// future), as a tracing span is entered.
    ///
    /// ```
    /// let remote = std::net::SocketAddr::from(([10, 0, 0, 7], 5000));
    /// let addresses = mesh_tower::DownstreamAddresses { remote, local: None };
    /// let _current = addresses.enter();
    /// // stack.call(request) — its header edits read 10.0.0.7 for %DOWNSTREAM_REMOTE_ADDRESS%
    /// ```
    #[must_use = "the addresses are current only while the guard lives"]
    pub fn enter(self) -> DownstreamScope {
        DownstreamScope { previous: CURRENT_DOWNSTREAM.with(|c| c.replace(Some(self))) }
    }

    fn current() -> Option<DownstreamAddresses> {
        CURRENT_DOWNSTREAM.with(std::cell::Cell::get)
    }
}

/// The route service (see the module docs).
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    config: SharedSnapshot,
    client: Arc<ClientIdentity>,
    binding: Binding,
    registry: Option<crate::registry::Registry>,
}

impl<S> Route<S> {
    /// Route requests with `config`, as `client`, under `binding`, before calling `inner`.
    pub fn new(inner: S, config: SharedSnapshot, client: Arc<ClientIdentity>, binding: Binding) -> Self {
        Route { inner, config, client, binding, registry: None }
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

/// How a request reached a Gateway listener, put in its extensions by the server that accepted
/// it (`mesh proxy` does): the port (`port` matches see it) and the servers that admit the
/// connection (hosts none of them lists get 404 `NR`; `tls.httpsRedirect` answers plain HTTP
/// with 301). See [`mesh_core::decision`].
pub use mesh_core::decision::Listener;

/// Outcome of routing, before the inner call.
enum Routed {
    Local(LocalReply, Option<Arc<HttpRule>>),
    Forward(RouteContext, Option<mesh_core::CorsHeaders>),
}

/// The reply for a local decision.
fn local_reply(local: mesh_core::Local<'_>) -> LocalReply {
    match local.reason {
        LocalReason::CorsPreflight => LocalReply::CorsPreflight { headers: local.cors_headers.unwrap_or_default() },
        LocalReason::Redirect | LocalReason::HttpsRedirect => {
            LocalReply::Redirect { status: local.status, location: local.location.unwrap_or_default() }
        }
        // The snapshot's body, shared (a reference count, not a copy per request).
        _ if local.is_direct() => {
            LocalReply::Direct { status: local.status, body: local.body.map(|b| bytes::Bytes::from_owner(b.clone())) }
        }
        _ => LocalReply::NoRoute,
    }
}

/// Apply the decision of [`Snapshot::decide`] to the request: a local reply, or the rewrite and
/// request header edits done and the [`RouteContext`] for the layers below.
fn decide<B>(
    req: &mut Request<B>,
    snapshot: Snapshot,
    client: &ClientIdentity,
    binding: &Binding,
    registry: Option<&crate::registry::Registry>,
) -> Routed {
    let view = RequestView::from_http(req.method(), req.uri(), req.headers());
    let listener = req.extensions().get::<Listener>();
    let known = |host: &str| registry.is_some_and(|r| r.contains(host));
    let forward = match snapshot.decide_with(binding, listener, &view, client, crate::rng::u64(), &known) {
        Decision::Local(local) => {
            let rule = local.response_headers().and(local.rule.cloned());
            return Routed::Local(local_reply(local), rule);
        }
        Decision::Forward(forward) => forward,
    };
    if let Some(rewrite) = &forward.rewrite {
        rewrite_uri(req, rewrite.path.as_deref(), rewrite.authority);
    }
    if let Some(rule) = forward.rule {
        let dest_edits = forward.destination_headers();
        let formatted =
            dest_edits.is_some_and(|d| !d.request.formatted.is_empty()) || !rule.headers.request.formatted.is_empty();
        if formatted {
            // Values with `%VARIABLES%`: read the connection's addresses (when the caller put
            // them in the extensions) and the request's version.
            let addresses =
                req.extensions().get::<DownstreamAddresses>().copied().or_else(DownstreamAddresses::current);
            let ctx = mesh_core::header_format::HeaderContext {
                downstream_remote: addresses.map(|a| a.remote),
                downstream_local: addresses.and_then(|a| a.local),
                version: Some(req.version()),
                now: Some(wall_clock()),
                hostname: Some(hostname()),
                ..Default::default()
            };
            if let Some(d) = dest_edits {
                d.request.apply_with(req.headers_mut(), &ctx);
            }
            rule.headers.request.apply_with(req.headers_mut(), &ctx);
        } else {
            if let Some(d) = dest_edits {
                d.request.apply(req.headers_mut());
            }
            rule.headers.request.apply(req.headers_mut());
        }
    }
    let virtual_host = forward.virtual_host.cloned();
    let rule = forward.rule.cloned();
    let index = forward.destination_index;
    let passthrough = forward.passthrough;
    let cors = forward.cors_headers;
    let destination = forward.destination.into_owned();
    let ctx = RouteContext {
        snapshot,
        virtual_host,
        rule,
        destination,
        destination_index: index,
        passthrough,
        cluster: None,
    };
    Routed::Forward(ctx, cors)
}

/// Wall-clock time, for Envoy's `%START_TIME%` in header values: a date by definition, so not
/// tokio's (monotonic, pausable) clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The machine's host name, for Envoy's `%HOSTNAME%` in header values: `$HOSTNAME`, else the
/// kernel's (read once; mesh-core reads no environment, so the layer passes it in).
pub(crate) fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
            .unwrap_or_default()
    })
}

/// Replace the path (keeping the query) and/or the authority of a request.
fn rewrite_uri<B>(req: &mut Request<B>, path: Option<&str>, authority: Option<&str>) {
    let mut parts = req.uri().clone().into_parts();
    if let Some(path) = path {
        let pq = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
        }
    }
    if let Some(authority) = authority {
        if parts.authority.is_some()
            && let Ok(a) = authority.parse()
        {
            parts.authority = Some(a);
        }
        if let Ok(v) = http::HeaderValue::from_str(authority) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

impl<S, B, RB> Service<Request<B>> for Route<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: crate::error::LocalBody,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = RouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let snapshot = Snapshot::clone(&self.config.load());
        match decide(&mut req, snapshot, &self.client, &self.binding, self.registry.as_ref()) {
            Routed::Local(reply, rule) => {
                tracing::debug!(target: "meshwork::route", uri = %req.uri(), flags = %reply.response_flags(), "answered locally");
                RouteFuture::local(reply, rule)
            }
            Routed::Forward(ctx, cors) => {
                // The request span (telemetry's, entered around this call) says where it went.
                // Recorded only when asked for (`meshwork::route` at debug, or no filter, as an
                // OpenTelemetry setup has): a formatting subscriber re-formats the span on every
                // record, which costs more than the whole route decision.
                // The level check first: a static comparison, where the current span is a
                // look-up in the subscriber (~70 instructions per request).
                if tracing::enabled!(target: "meshwork::route", tracing::Level::DEBUG) {
                    let span = tracing::Span::current();
                    if !span.is_disabled() {
                        if let Some(r) = &ctx.rule {
                            span.record(
                                "route",
                                tracing::field::display(format_args!(
                                    "{}/{} http[{}]",
                                    r.origin.namespace, r.origin.name, r.origin.index
                                )),
                            );
                        }
                        span.record("destination", &*ctx.destination.host);
                        if let Some(subset) = &ctx.destination.subset {
                            span.record("subset", &**subset);
                        }
                    }
                }
                let rule = ctx.rule.clone();
                let index = ctx.destination_index;
                req.extensions_mut().insert(ctx);
                RouteFuture::inner(self.inner.call(req), rule, index, cors)
            }
        }
    }
}
