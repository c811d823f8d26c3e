//! What the layers of one request share, in one place.
//!
//! The layers talk to each other only through these values, carried in the request's and the
//! response's extensions or in the response body (never through shared state):
//!
//! | value | written by | read by | travels in |
//! |---|---|---|---|
//! | [`RouteContext`] — the decision, the snapshot it was made with, the destination's [`Cluster`] once resolved | route (or a test, [`RouteContext::new`]) | every layer below route | request extensions |
//! | [`Mirrored`] — this request is a mirror's copy | mirror | retry (copies are never retried) | request extensions |
//! | [`Tried`] — endpoints earlier tries went to | retry | balance (skips them) | request extensions |
//! | [`Upstream`] — the endpoint (and cluster) that answered | balance, pool (its own refusals) | retry, route, telemetry | the response body ([`LocalBody::endpoint`]) |
//! | [`LocalReply`] → [`Local`], [`FailedTry`], [`ResponseFlags`] — meshwork answered itself | any layer | retry, outlier detection, telemetry | response extensions |
//! | [`DestinationService`] — the routed service of a local answer no endpoint gave | route | telemetry | response extensions |
//!
//! The answering endpoint travels in the body only: [`crate::MeshBody`] carries it for upstream
//! bodies and for local replies alike ([`LocalBody::set_endpoint`]), so no extension is inserted
//! per response and every reader asks [`LocalBody::endpoint`]. A body type that cannot carry it
//! (such as `Full<Bytes>`, for layers used alone) answers `None`.
//!
//! The destination's cluster is resolved once per request: the first layer below route that needs
//! it (connection-pool admission, else balance) looks it up and keeps it in the [`RouteContext`];
//! retries reuse it (the retry layer takes it from the first try's [`Upstream`]), so a request
//! and all its tries see one cluster even when a config swap rebuilds it meanwhile, as Envoy's
//! router keeps the cluster it resolved for the request.
//!
//! Every value here has public constructors, so a layer below route can be tested with a
//! context built in code, without YAML:
//!
//! ```
//! use std::sync::Arc;
//! use mesh_core::route::{Destination, HttpRule};
//! use mesh_tower::context::RouteContext;
//!
//! let reviews = Destination::new("reviews.default.svc.cluster.local");
//! let mut rule = HttpRule::forward(reviews.clone());
//! rule.timeout = Some(std::time::Duration::from_secs(1));
//! let ctx = RouteContext::new(mesh_core::Snapshot::empty(), Some(Arc::new(rule)), reviews, 0);
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(ctx);
//! // a layer below route (timeout, retry, pool, balance...) now reads this decision
//! ```

use std::sync::Arc;

use mesh_core::Snapshot;
use mesh_core::retry::TryOutcome;
use mesh_core::route::{Destination, HeaderEdits, HttpRule, RetryPolicy, RouteAction};

use crate::cluster::{Cluster, EndpointMeta};
#[doc(no_inline)]
pub use crate::error::{LocalBody, LocalReply, ResponseFlags};

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
    /// A host nothing declares, passed through (see [`mesh_core::Forward::passthrough`]): no
    /// retries, no DestinationRule, one shared cluster.
    pub passthrough: bool,
    /// The destination's cluster, once a layer has resolved it for this request.
    pub(crate) cluster: Option<Arc<Cluster>>,
}

impl RouteContext {
    /// A decision made outside the route layer (or in a test of a layer below it): `destination`
    /// of `rule` (`None`: the default route to the destination's host), index
    /// `destination_index` in its `route[]`, decided with `snapshot`.
    ///
    /// ```
    /// use mesh_core::route::Destination;
    /// let destination = Destination::new("reviews.default.svc.cluster.local");
    /// let ctx = mesh_tower::RouteContext::new(mesh_core::Snapshot::empty(), None, destination, 0);
    /// assert_eq!(ctx.retries().attempts, 2, "Istio's default policy");
    /// ```
    pub fn new(
        snapshot: Snapshot,
        rule: Option<Arc<HttpRule>>,
        destination: Destination,
        destination_index: usize,
    ) -> Self {
        RouteContext {
            snapshot,
            virtual_host: None,
            rule,
            destination,
            destination_index,
            passthrough: false,
            cluster: None,
        }
    }

    /// The same decision, bound for `cluster` (resolved elsewhere: the layers below use it
    /// instead of looking the destination up).
    pub fn with_cluster(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The destination's cluster, when a layer has resolved it for this request.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// The retry policy that applies: the rule's, or the snapshot's default (Istio's); none for
    /// a passthrough.
    pub fn retries(&self) -> &RetryPolicy {
        static NONE: std::sync::LazyLock<RetryPolicy> = std::sync::LazyLock::new(RetryPolicy::none);
        match &self.rule {
            Some(r) => &r.retries,
            None if self.passthrough => &NONE,
            None => self.snapshot.default_retries(),
        }
    }

    /// The header edits of the picked destination, if the rule routes.
    pub fn destination_headers(&self) -> Option<&HeaderEdits> {
        match self.rule.as_deref().map(|r| &r.action) {
            Some(RouteAction::Route(w)) => w.destinations().get(self.destination_index).map(|d| &d.headers),
            _ => None,
        }
    }
}

/// Marks a mirror's copy (in its request extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mirrored;

/// Endpoints earlier tries of this request went to (set by the retry layer, in the request's
/// extensions; the balance layer picks another one when it can).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tried(pub Vec<Arc<str>>);

/// Which endpoint answered a response, and of which cluster: carried by the response body
/// ([`LocalBody::endpoint`]).
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The cluster.
    pub cluster: Option<Arc<Cluster>>,
    /// The endpoint's address (`None` when the request was passed through, or refused before an
    /// endpoint was picked).
    pub address: Option<Arc<str>>,
    /// The endpoint's telemetry labels.
    pub meta: Arc<EndpointMeta>,
}

impl Upstream {
    /// `address` of `cluster` answered, with the endpoint's telemetry labels `meta`.
    pub fn new(cluster: Arc<Cluster>, address: Arc<str>, meta: Arc<EndpointMeta>) -> Self {
        Upstream { cluster: Some(cluster), address: Some(address), meta }
    }

    /// `cluster` answered without an endpoint (a refusal, or a passthrough): every endpoint label
    /// `unknown`.
    pub fn cluster_only(cluster: Arc<Cluster>) -> Self {
        Upstream { cluster: Some(cluster), address: None, meta: EndpointMeta::unknown() }
    }
}

/// Marks a response meshwork produced itself (in its extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local;

/// Marks a local response that stands for a failed try (connect failure, reset, per-try timeout),
/// so the retry layer and outlier detection can classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedTry(pub TryOutcome);

/// The service a rule routed to, in the extensions of a response the mesh answered itself below
/// the route layer (a fault abort, a route timeout): no endpoint answered, but the route had
/// chosen its destination, and Istio labels such a request with that service (its stats read the
/// destination service from the route's cluster, and fall back to the `Host` header only when
/// there is none, as for redirects, direct responses and requests with no route: istio/proxy
/// `source/extensions/filters/http/istio_stats/istio_stats.cc`, `populatePeerInfo`; Envoy sets
/// the upstream cluster info when the route is resolved, before any filter aborts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationService(pub Arc<str>);
