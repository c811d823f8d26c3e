//! The balance layer: picks the endpoint of the destination's cluster, sends the request there,
//! and reports how it went to outlier detection.
//!
//! - The cluster comes from the connection-pool layer above (in the request's extensions) or is
//!   looked up from the [`RouteContext`] (or, used alone, the request's own
//!   authority).
//! - The pick follows the DestinationRule's `loadBalancer` (Istio's default: least request),
//!   skips endpoints ejected by outlier detection and, on a retry, endpoints this request already
//!   tried (Istio configures Envoy's `previous_hosts` retry predicate the same way).
//! - The URI's authority becomes the endpoint's address, so a pooling client (hyper-util's
//!   `Client` pools per authority) keeps connections per endpoint; the `Host` header keeps the
//!   name the caller used.
//! - Responses count for outlier detection by status; client errors count as local-origin
//!   failures and become 503 responses (flag `UF` when the connection could not be made, `UC`
//!   otherwise), in one place: [`LocalReply`].
//! - A cluster with no endpoint to pick answers 503 `no healthy upstream` (flag `UH`). A service
//!   the registry does not know is passed through to the request's authority unchanged (Istio's
//!   default `ALLOW_ANY` outbound traffic policy).

mod future;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_core::RequestView;
use mesh_core::Snapshot;
use mesh_core::balance::request_hash;
use mesh_core::route::Destination;
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::BalanceFuture;
use crate::cluster::{Cluster, Clusters, EndpointMeta};
use crate::error::LocalReply;
use crate::route::RouteContext;

#[doc(no_inline)]
pub use crate::context::{Tried, Upstream};

/// Resolve the cluster of a request: from its route (looked up once per request: the first
/// layer to ask keeps it in the route context, which the retry layer carries to later tries),
/// else from its authority.
pub(crate) fn cluster_of<B>(req: &mut Request<B>, clusters: &Clusters) -> Arc<Cluster> {
    let port = req.uri().port_u16();
    if let Some(ctx) = req.extensions_mut().get_mut::<RouteContext>() {
        if let Some(c) = &ctx.cluster {
            return c.clone();
        }
        if ctx.passthrough {
            let cluster = clusters.passthrough();
            ctx.cluster = Some(cluster.clone());
            return cluster;
        }
        let d = &ctx.destination;
        // The request's port picks the service port when the service has it; every port it
        // does not have shares one cluster (port 0: no endpoint serves it), so that ports a
        // client makes up cannot make a cluster each.
        let port = port.filter(|_| d.port.is_none());
        let port = port.map(|p| if serves_port(&ctx.snapshot, clusters, &d.host, p) { p } else { 0 });
        let cluster = if port.is_some() {
            let d = Destination { host: d.host.clone(), subset: d.subset.clone(), port };
            clusters.get(&ctx.snapshot, &d)
        } else {
            clusters.get(&ctx.snapshot, d)
        };
        ctx.cluster = Some(cluster.clone());
        return cluster;
    }
    let view = RequestView::from_http(req.method(), req.uri(), req.headers());
    let host = mesh_core::request::split_authority(view.authority).0;
    if !clusters.registry().contains(host) {
        return clusters.passthrough();
    }
    let snapshot = Snapshot::empty();
    let port = port.map(|p| if serves_port(&snapshot, clusters, host, p) { p } else { 0 });
    let d = Destination { host: Arc::from(host), subset: None, port };
    clusters.get(&snapshot, &d)
}

/// Does `host` have service port `port` (a ServiceEntry port, or an endpoint registered for it)?
/// Endpoints registered for every port make any port the service's.
fn serves_port(snapshot: &Snapshot, clusters: &Clusters, host: &str, port: u16) -> bool {
    snapshot.services(host).iter().any(|s| s.ports.iter().any(|p| p.number == port))
        || clusters.registry().serves_port(host, port)
}

/// Point the request at `address`, keeping the caller's authority in `Host`; `tls` makes the URI
/// `https` (the client below originates TLS).
fn set_endpoint<B>(req: &mut Request<B>, cluster: &Cluster, address: &http::uri::Authority, tls: bool) {
    if !req.headers().contains_key(http::header::HOST)
        && let Some(a) = req.uri().authority()
        && let Some(v) = cluster.host_header(a.as_str())
    {
        req.headers_mut().insert(http::header::HOST, v);
    }
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    if tls {
        parts.scheme = Some(http::uri::Scheme::HTTPS);
    } else if parts.scheme.is_none() {
        parts.scheme = Some(http::uri::Scheme::HTTP);
    }
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.authority = Some(address.clone());
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// Applies [`Balance`].
#[derive(Debug, Clone)]
pub struct BalanceLayer {
    clusters: Clusters,
    select_protocol: bool,
}

impl BalanceLayer {
    /// Balance over the endpoints of `clusters`' registry.
    pub fn new(clusters: Clusters) -> Self {
        BalanceLayer { clusters, select_protocol: false }
    }

    /// Also set each request's HTTP version to what the destination's service port speaks
    /// ([`Cluster::http2`]): what a proxy does, whose clients' protocol says nothing about the
    /// upstream's. Off by default: in a process, the client decides.
    pub fn select_protocol(mut self, on: bool) -> Self {
        self.select_protocol = on;
        self
    }
}

impl<S> Layer<S> for BalanceLayer {
    type Service = Balance<S>;

    fn layer(&self, inner: S) -> Balance<S> {
        Balance { inner, clusters: self.clusters.clone(), select_protocol: self.select_protocol }
    }
}

/// The balance service (see the module docs).
#[derive(Debug, Clone)]
pub struct Balance<S> {
    inner: S,
    clusters: Clusters,
    select_protocol: bool,
}

impl<S> Balance<S> {
    /// Balance requests over `clusters` before calling `inner`.
    pub fn new(inner: S, clusters: Clusters) -> Self {
        Balance { inner, clusters, select_protocol: false }
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

impl<S, B, RB> Service<Request<B>> for Balance<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<crate::BoxError>,
{
    type Response = Response<crate::MeshBody<RB>>;
    type Error = S::Error;
    type Future = BalanceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let cluster = cluster_of(&mut req, &self.clusters);
        if !cluster.is_known() {
            // Passed through to the authority the request names: a request in origin form (as a
            // proxy receives it) takes it from `Host`.
            if req.uri().authority().is_none()
                && let Some(authority) = req.headers().get(http::header::HOST).and_then(|h| {
                    http::uri::Authority::from_maybe_shared(bytes::Bytes::copy_from_slice(h.as_bytes())).ok()
                })
            {
                set_endpoint(&mut req, &cluster, &authority, false);
            }
            let upstream = Upstream { cluster: Some(cluster), address: None, meta: EndpointMeta::unknown() };
            return BalanceFuture::upstream(self.inner.call(req), upstream, None);
        }
        let hash = cluster.hash_key().and_then(|key| {
            let view = RequestView::from_http(req.method(), req.uri(), req.headers());
            request_hash(key, &view, None)
        });
        let avoid = req.extensions().get::<Tried>().map_or(&[][..], |t| &t.0[..]);
        let Some(index) = cluster.pick(hash, avoid) else {
            cluster.report_empty();
            tracing::debug!(target: "meshwork::balance", cluster = %cluster.destination().host, "no healthy upstream");
            return BalanceFuture::local(LocalReply::NoHealthyUpstream, cluster);
        };
        let endpoint = &cluster.endpoints()[index];
        match cluster.authority(index) {
            Some(authority) => {
                let tls = cluster.tls();
                set_endpoint(&mut req, &cluster, authority, tls.is_some());
                if let Some(tls) = tls {
                    req.extensions_mut().insert(tls.clone());
                }
                if let Some(connect) = cluster.connect() {
                    req.extensions_mut().insert(*connect);
                }
                if self.select_protocol && !cluster.use_client_protocol() {
                    *req.version_mut() = if cluster.http2() { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
                }
            }
            None => return BalanceFuture::local(LocalReply::NoHealthyUpstream, cluster),
        }
        let upstream = Upstream {
            cluster: Some(cluster.clone()),
            address: Some(endpoint.address.clone()),
            meta: cluster.meta(index),
        };
        cluster.started(index);
        let span = tracing::debug_span!(target: "meshwork::balance", "meshwork.attempt", endpoint = %endpoint.address);
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        BalanceFuture::upstream(future, upstream, Some(index)).in_span(span)
    }
}
