//! The route layer: the VirtualService decision for each request.
//!
//! For every request it loads the current [`Snapshot`] (one atomic load), routes the request (see
//! [`mesh_core::router`]), and then:
//!
//! - answers redirects, direct responses and "no route" (404, flag `NR`) itself;
//! - otherwise picks the destination by weight, applies the rule's rewrite (path, authority) and
//!   header edits (destination level, then rule level), records the decision as a
//!   [`RouteContext`] in the request's extensions for the layers below, calls the inner service,
//!   and applies the response header edits.
//!
//! A host with no VirtualService goes to the host itself, with Istio's default retry policy.

mod future;
mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::{Request, Response};
use mesh_core::route::{Destination, HeaderEdits, HttpRule, RetryPolicy, RouteAction};
use mesh_core::router::{redirect_location, rewrite_path};
use mesh_core::{Binding, ClientIdentity, RequestView, RouteDecision, Snapshot};
use tower_service::Service;

pub use self::future::RouteFuture;
pub use self::layer::RouteLayer;
use crate::error::LocalReply;

/// The shared, swappable configuration: writers `store` a new snapshot, every request `load`s it.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// The service a rule routed to, in the extensions of a response the mesh answered itself below
/// the route layer (a fault abort, a route timeout): no endpoint answered, but the route had
/// chosen its destination, and Istio labels such a request with that service (its stats read the
/// destination service from the route's cluster, and fall back to the `Host` header only when
/// there is none, as for redirects, direct responses and requests with no route: istio/proxy
/// `source/extensions/filters/http/istio_stats/istio_stats.cc`, `populatePeerInfo`; Envoy sets
/// the upstream cluster info when the route is resolved, before any filter aborts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationService(pub Arc<str>);

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

/// What the route layer decided, for the layers below it (in the request's extensions).
#[derive(Debug, Clone)]
pub struct RouteContext {
    /// The snapshot the decision was made with (layers below read policies from the same one).
    pub snapshot: Snapshot,
    /// The VirtualService host entry that matched (`None`: no VirtualService, the request goes
    /// to `destination.host`, the host it resolved to).
    pub virtual_host: Option<Arc<mesh_core::snapshot::VirtualHost>>,
    /// The matching rule, or `None` when the host has no VirtualService.
    pub rule: Option<Arc<HttpRule>>,
    /// The destination picked.
    pub destination: Destination,
    /// Index of the destination in the rule's `route[]` (0 for the default route).
    pub destination_index: usize,
    /// The destination's cluster, once a layer below has looked it up for this try.
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl RouteContext {
    /// The retry policy that applies: the rule's, or Istio's default.
    pub fn retries(&self) -> RetryPolicy {
        self.rule.as_ref().map_or_else(RetryPolicy::istio_default, |r| r.retries.clone())
    }

    /// The header edits of the picked destination, if the rule routes.
    pub fn destination_headers(&self) -> Option<&HeaderEdits> {
        match self.rule.as_deref().map(|r| &r.action) {
            Some(RouteAction::Route(w)) => w.destinations().get(self.destination_index).map(|d| &d.headers),
            _ => None,
        }
    }
}

/// The route service (see the module docs).
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    config: SharedSnapshot,
    client: Arc<ClientIdentity>,
    binding: Binding,
}

impl<S> Route<S> {
    /// Route requests with `config`, as `client`, under `binding`, before calling `inner`.
    pub fn new(inner: S, config: SharedSnapshot, client: Arc<ClientIdentity>, binding: Binding) -> Self {
        Route { inner, config, client, binding }
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

/// The port a request arrived on, put in its extensions by a server that knows it (a Gateway
/// listener): `port` matches use it instead of the authority's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerPort(pub u16);

/// Outcome of routing, before the inner call.
enum Routed {
    Local(LocalReply),
    Forward(RouteContext),
}

fn decide<B>(req: &mut Request<B>, snapshot: Snapshot, client: &ClientIdentity, binding: &Binding) -> Routed {
    let mut view = RequestView::from_http(req.method(), req.uri(), req.headers());
    view.listener_port = req.extensions().get::<ListenerPort>().map(|p| p.0);
    let decision = snapshot.route(binding, &view, client);
    let (virtual_host, rule, request_match, index, destination) = match decision {
        // A Gateway serves only the hosts its VirtualServices name: Envoy has no virtual host
        // for any other, and answers 404 (a gateway is not an open proxy).
        RouteDecision::Default { .. } if *binding != Binding::Mesh => return Routed::Local(LocalReply::NoRoute),
        RouteDecision::Default { host } => {
            let destination = Destination { host: Arc::from(&*host), subset: None, port: None };
            (None, None, None, 0, destination)
        }
        RouteDecision::NoRoute { .. } => return Routed::Local(LocalReply::NoRoute),
        RouteDecision::Matched { virtual_host, rule, request_match, .. } => match &rule.action {
            RouteAction::Redirect(r) => {
                let location = redirect_location(r, &view, request_match);
                return Routed::Local(LocalReply::Redirect { status: r.code, location });
            }
            RouteAction::DirectResponse(d) => {
                // The snapshot's body, shared (a reference count, not a copy per request).
                let body = d.body.as_ref().map(|b| bytes::Bytes::from_owner(b.clone()));
                return Routed::Local(LocalReply::Direct { status: d.status, body });
            }
            RouteAction::Delegate { .. } => return Routed::Local(LocalReply::NoRoute),
            RouteAction::Route(w) => {
                let Some(picked) = w.pick(crate::rng::u64()) else { return Routed::Local(LocalReply::NoRoute) };
                let index = w.destinations().iter().position(|d| std::ptr::eq(d, picked)).unwrap_or(0);
                (Some(virtual_host.clone()), Some(rule.clone()), request_match, index, picked.destination.clone())
            }
        },
    };
    if let Some(rule) = &rule {
        if let Some(rewrite) = &rule.rewrite {
            let new_path = rewrite_path(rewrite, req.uri().path(), request_match);
            rewrite_uri(req, new_path.as_deref(), rewrite.authority.as_deref());
        }
        let dest_edits = match &rule.action {
            RouteAction::Route(w) => w.destinations().get(index).map(|d| &d.headers),
            _ => None,
        };
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
    Routed::Forward(RouteContext { snapshot, virtual_host, rule, destination, destination_index: index, cluster: None })
}

/// Wall-clock time, for Envoy's `%START_TIME%` in header values: a date by definition, so not
/// tokio's (monotonic, pausable) clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
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
        match decide(&mut req, snapshot, &self.client, &self.binding) {
            Routed::Local(reply) => {
                tracing::debug!(target: "meshwork::route", uri = %req.uri(), flags = %reply.response_flags(), "answered locally");
                RouteFuture::local(reply)
            }
            Routed::Forward(ctx) => {
                let rule = ctx.rule.clone();
                let index = ctx.destination_index;
                req.extensions_mut().insert(ctx);
                RouteFuture::inner(self.inner.call(req), rule, index)
            }
        }
    }
}
