//! Clusters: the runtime state of one destination (service FQDN, subset, port).
//!
//! A [`Cluster`] holds what the layers below the route share for a destination: its endpoints
//! (the registry's, filtered by the subset's labels and the port), the load balancer built for
//! them, active-request counts per endpoint, the outlier detector, the connection-pool counters and
//! the limits from the DestinationRule that applies (Istio's namespace precedence, subset policy
//! over the top-level one, port-level over both — [`mesh_core::policy::DestinationPolicy::resolve`]).
//!
//! The cluster keeps only state; what it decides is mesh-core's: the endpoint pick
//! ([`mesh_core::endpoint::EndpointPick`]: locality level, slow start, tried and ejected
//! endpoints), whether the endpoints speak HTTP/2 ([`mesh_core::protocol::upstream_http2`]), the
//! outlier detector's verdicts ([`mesh_core::outlier`], read without a lock on the pick path).
//! HTTP requests (the balance layer) and `mesh proxy`'s TCP connections pick, start and finish
//! through the same [`Cluster::pick`], [`Cluster::started`] and [`Cluster::finished`].
//!
//! [`Clusters`] caches them. A cluster is rebuilt when the registry changes or a new snapshot
//! brings a different DestinationRule; the rebuilt cluster keeps the connection-pool counters and,
//! when its endpoints are the same, the outlier detector and balancer, so a config swap never
//! resets circuit breakers or returns ejected endpoints early. Requests in flight keep the
//! cluster they started with.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use mesh_core::balance::Balancer;
use mesh_core::budget::ConcurrencyBudget;
use mesh_core::endpoint::EndpointPick;
use mesh_core::locality::{self, Locality};
use mesh_core::outlier::{Observation, OutlierDetector};
use mesh_core::policy::{ClientTls, DestinationPolicy, HashKey, LoadBalancer, PolicyParts, TlsMode};
use mesh_core::pool::{PoolLimits, PoolState};
use mesh_core::route::Destination;
use mesh_core::{ClientIdentity, Snapshot};
use rustc_hash::FxHashMap;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::registry::{Endpoint, Registry};

/// The labels telemetry reports for an endpoint (computed once per cluster build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMeta {
    /// `destination_workload`.
    pub workload: Arc<str>,
    /// `destination_workload_namespace`.
    pub namespace: Arc<str>,
    /// `destination_app`.
    pub app: Arc<str>,
    /// `destination_version`.
    pub version: Arc<str>,
    /// `destination_canonical_service`.
    pub canonical_service: Arc<str>,
    /// `destination_canonical_revision`.
    pub canonical_revision: Arc<str>,
}

fn unknown() -> Arc<str> {
    Arc::from("unknown")
}

impl EndpointMeta {
    /// Istio's derivation from pod labels: canonical service from
    /// `service.istio.io/canonical-name`, `app.kubernetes.io/name` or `app`; canonical revision
    /// from `service.istio.io/canonical-revision`, `app.kubernetes.io/version` or `version`
    /// (`latest` when none).
    pub fn from_endpoint(endpoint: &Endpoint, namespace: &Arc<str>) -> EndpointMeta {
        let w = WorkloadLabels::of(&endpoint.labels);
        EndpointMeta {
            workload: endpoint.workload.clone().unwrap_or_else(unknown),
            namespace: namespace.clone(),
            app: w.app.unwrap_or_else(unknown),
            version: w.version.unwrap_or_else(unknown),
            canonical_service: w.canonical_service.unwrap_or_else(unknown),
            canonical_revision: w.canonical_revision,
        }
    }

    /// Every label `unknown` (a destination meshwork has no endpoint for).
    pub fn unknown() -> Arc<EndpointMeta> {
        static UNKNOWN: std::sync::OnceLock<Arc<EndpointMeta>> = std::sync::OnceLock::new();
        UNKNOWN
            .get_or_init(|| {
                Arc::new(EndpointMeta {
                    workload: unknown(),
                    namespace: unknown(),
                    app: unknown(),
                    version: unknown(),
                    canonical_service: unknown(),
                    canonical_revision: unknown(),
                })
            })
            .clone()
    }
}

/// The telemetry labels Istio derives from a workload's labels
/// (<https://istio.io/latest/docs/reference/config/metrics/#labels>,
/// <https://istio.io/latest/docs/ops/deployment/application-requirements/#pod-labels>):
/// canonical service from `service.istio.io/canonical-name`, `app.kubernetes.io/name` or `app`;
/// canonical revision from `service.istio.io/canonical-revision`, `app.kubernetes.io/version` or
/// `version`, `latest` when none.
#[derive(Debug, Clone)]
pub(crate) struct WorkloadLabels {
    pub(crate) app: Option<Arc<str>>,
    pub(crate) version: Option<Arc<str>>,
    pub(crate) canonical_service: Option<Arc<str>>,
    pub(crate) canonical_revision: Arc<str>,
}

impl WorkloadLabels {
    pub(crate) fn of(labels: &std::collections::BTreeMap<Arc<str>, Arc<str>>) -> WorkloadLabels {
        let label = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).cloned());
        WorkloadLabels {
            app: label(&["app"]),
            version: label(&["version"]),
            canonical_service: label(&["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"]),
            canonical_revision: label(&["service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"])
                .unwrap_or_else(|| Arc::from("latest")),
        }
    }
}

/// The namespace of a Kubernetes service FQDN (`reviews.default.svc.cluster.local` → `default`).
pub(crate) fn service_namespace(host: &str) -> Option<&str> {
    let (_, rest) = host.split_once('.')?;
    let (ns, rest) = rest.split_once('.')?;
    rest.starts_with("svc.").then_some(ns)
}

/// One destination's runtime state (see the module docs).
#[derive(Debug)]
pub struct Cluster {
    destination: Destination,
    known: bool,
    endpoints: Arc<[Endpoint]>,
    authorities: Box<[Option<http::uri::Authority>]>,
    meta: Box<[Arc<EndpointMeta>]>,
    balancer: Arc<Balancer>,
    load_balancer: Option<LoadBalancer>,
    active: Box<[AtomicU64]>,
    outlier: Option<Arc<Outlier>>,
    pool: Arc<PoolState>,
    released: Arc<Notify>,
    limits: PoolLimits,
    retry_budget: Option<ConcurrencyBudget>,
    policy: Option<Arc<DestinationPolicy>>,
    parts: PolicyParts,
    /// Each endpoint's locality priority (0 nearest), when locality-aware load balancing applies
    /// and the endpoints are not all equally near (see [`mesh_core::locality`]).
    priorities: Option<Box<[u8]>>,
    /// When each endpoint joined (kept across rebuilds by address), for slow start.
    joined: Box<[Instant]>,
    connect: Option<UpstreamConnect>,
    tls: Option<UpstreamTls>,
    http2: bool,
    registry_version: u64,
    /// The generation of the last snapshot under which this cluster was found current (its
    /// DestinationRule, protocol): [`Clusters::get`] skips the lookup while it stays the same.
    checked_generation: AtomicU64,
    epoch: Instant,
    /// The `Host` value of the first caller authority seen (`reviews:9080`), shared by later
    /// requests that name the cluster the same way instead of each copying it.
    host_header: arc_swap::ArcSwapOption<http::HeaderValue>,
    /// Is this [`Clusters::passthrough`]?
    passthrough: bool,
    /// Istio's name for the cluster, `outbound|<port>|<subset>|<host>`: the `cluster_name` label
    /// of the Envoy-named counters (see [`Cluster::stats_name`]).
    stats_name: Arc<str>,
    /// Why the cluster has no endpoints, if it has none (logged once, by [`Cluster::report_empty`]).
    empty_reason: Option<String>,
    reported_empty: std::sync::atomic::AtomicBool,
}

/// How to open connections to a cluster's endpoints, when its DestinationRule says
/// (`connectionPool.tcp.connectTimeout`, `tcpKeepalive`). Like [`UpstreamTls`], the balance layer
/// puts it in the extensions of each request bound for such a cluster, for the client below to
/// act on (`mesh proxy`'s own connections do; a client that opens connections its own way may
/// ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamConnect {
    /// `connectTimeout` (Istio's default is 10 s).
    pub timeout: Option<Duration>,
    /// `tcpKeepalive`.
    pub keepalive: Option<mesh_core::policy::TcpKeepalive>,
}

/// TLS to originate towards a cluster's endpoints (DestinationRule `tls` in mode `SIMPLE` or
/// `MUTUAL`). The balance layer puts it in the extensions of each request bound for such a
/// cluster, and gives the request an `https` URI, for the client below to act on: meshwork's
/// layers never open connections themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls(pub Arc<ClientTls>);

fn lock(m: &Mutex<OutlierDetector>) -> MutexGuard<'_, OutlierDetector> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cluster's outlier detector and a lock-free copy of its verdicts for picks.
///
/// A pick reads which endpoints are eligible from `eligible` without locking the detector,
/// while the copy is current: until `stable_until`, the earliest end of an ejection in force
/// (verdicts change only when an ejection ends or a new observation ejects, and ejections are
/// written under the lock, which refreshes the copy). The first pick after that moment locks,
/// runs the detector's sweeps and refreshes the copy. Envoy's workers read ejections from their
/// own copy of the host set the same way; the detector itself runs on the main thread.
#[derive(Debug)]
struct Outlier {
    detector: Mutex<OutlierDetector>,
    /// Nanoseconds since the clusters' epoch until which `eligible` holds (`u64::MAX`: until an
    /// observation changes it).
    stable_until: AtomicU64,
    /// Is any endpoint ineligible? `false` (the common case): no per-endpoint reads.
    any_ineligible: AtomicBool,
    eligible: Box<[AtomicBool]>,
}

impl Outlier {
    fn new(detector: OutlierDetector, endpoints: usize) -> Outlier {
        Outlier {
            detector: Mutex::new(detector),
            stable_until: AtomicU64::new(u64::MAX),
            any_ineligible: AtomicBool::new(false),
            eligible: (0..endpoints).map(|_| AtomicBool::new(true)).collect(),
        }
    }

    /// Copy the detector's verdicts at `now` (called with the detector locked).
    fn refresh(&self, d: &OutlierDetector, now: Duration) {
        let mut any = false;
        for (slot, e) in self.eligible.iter().zip(d.eligibility(now)) {
            slot.store(e, Ordering::Relaxed);
            any |= !e;
        }
        self.any_ineligible.store(any, Ordering::Relaxed);
        let until = d.stable_until(now).map_or(u64::MAX, |u| u64::try_from(u.as_nanos()).unwrap_or(u64::MAX));
        self.stable_until.store(until, Ordering::Release);
    }

    /// Is the copy current at `now`?
    fn current(&self, now: Duration) -> bool {
        u64::try_from(now.as_nanos()).is_ok_and(|n| n < self.stable_until.load(Ordering::Acquire))
    }

    fn eligible(&self, i: usize) -> bool {
        !self.any_ineligible.load(Ordering::Relaxed) || self.eligible.get(i).is_none_or(|e| e.load(Ordering::Relaxed))
    }
}

impl Cluster {
    /// A `Host` header value for `authority`: the cluster's shared copy when callers name it
    /// this way (the common case: one client, one spelling), else a new one.
    pub(crate) fn host_header(&self, authority: &str) -> Option<http::HeaderValue> {
        let cached = self.host_header.load();
        if let Some(v) = cached.as_deref()
            && v.as_bytes() == authority.as_bytes()
        {
            return Some(v.clone());
        }
        let value = http::HeaderValue::from_str(authority).ok()?;
        if cached.is_none() {
            self.host_header.store(Some(Arc::new(value.clone())));
        }
        Some(value)
    }

    /// The destination this cluster serves.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Does the mesh know the service (endpoints in the registry, or a Kubernetes service name
    /// `name.ns.svc.<domain>`, whose endpoints only the registry can give)? Other services are
    /// passed through to the request's own authority.
    pub fn is_known(&self) -> bool {
        self.known
    }

    /// Log, once per cluster build, why a request found no endpoint to pick (a warning: a
    /// registration or config mistake more often than an outage).
    pub(crate) fn report_empty(&self) {
        if let Some(why) = &self.empty_reason
            && !self.reported_empty.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                target: "meshwork::cluster",
                host = %self.destination.host,
                subset = self.destination.subset.as_deref().unwrap_or(""),
                port = self.destination.port.unwrap_or(0),
                "no healthy upstream: {why}"
            );
        }
    }

    /// The cluster's name in the counters operators look for when things go wrong, named as
    /// Istio's sidecars export Envoy's cluster stats to Prometheus (`envoy_cluster_<stat>` with
    /// label `cluster_name="outbound|9080|v1|reviews.default.svc.cluster.local"`), so existing
    /// dashboards and alerts read them: `envoy_cluster_upstream_rq_retry` (retries),
    /// `envoy_cluster_upstream_rq_retry_overflow` (retries refused by the budget or
    /// `maxRetries`), `envoy_cluster_upstream_rq_pending_overflow` (requests refused by the
    /// connection pool, 503 `UO`) and `envoy_cluster_outlier_detection_ejections_active`
    /// (endpoints ejected now; `meshwork_outlier_ejections_total` counts ejections).
    pub fn stats_name(&self) -> &Arc<str> {
        &self.stats_name
    }

    /// Count a retry (`envoy_cluster_upstream_rq_retry`).
    pub(crate) fn count_retry(&self) {
        metrics::counter!("envoy_cluster_upstream_rq_retry", "cluster_name" => self.stats_name.clone()).increment(1);
    }

    /// Count a retry refused for want of a retry slot (`envoy_cluster_upstream_rq_retry_overflow`).
    pub(crate) fn count_retry_overflow(&self) {
        metrics::counter!("envoy_cluster_upstream_rq_retry_overflow", "cluster_name" => self.stats_name.clone())
            .increment(1);
    }

    /// Count a request refused by the connection pool (`envoy_cluster_upstream_rq_pending_overflow`).
    pub(crate) fn count_pending_overflow(&self) {
        metrics::counter!("envoy_cluster_upstream_rq_pending_overflow", "cluster_name" => self.stats_name.clone())
            .increment(1);
    }

    fn report_ejections_active(&self, detector: &OutlierDetector, now: Duration) {
        metrics::gauge!("envoy_cluster_outlier_detection_ejections_active", "cluster_name" => self.stats_name.clone())
            .set(detector.ejected_count(now) as f64);
    }

    /// Is this the passthrough cluster ([`Clusters::passthrough`])?
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// The endpoints, in balancer order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The URI authority of endpoint `i` (parsed once per cluster build).
    pub fn authority(&self, i: usize) -> Option<&http::uri::Authority> {
        self.authorities.get(i).and_then(Option::as_ref)
    }

    /// Telemetry labels of endpoint `i`.
    pub fn meta(&self, i: usize) -> Arc<EndpointMeta> {
        self.meta.get(i).cloned().unwrap_or_else(EndpointMeta::unknown)
    }

    /// The connection-pool limits.
    pub fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    /// The connection-pool counters (shared by every build of this cluster).
    pub fn pool(&self) -> &PoolState {
        &self.pool
    }

    /// Take a retry slot: the retry budget when the DestinationRule sets one, else
    /// `http.maxRetries`. Release it with [`PoolState::retry_done`].
    pub fn try_retry(&self) -> bool {
        match &self.retry_budget {
            Some(budget) => {
                budget.allows(self.pool.retries(), self.pool.active()) && self.pool.try_retry(&PoolLimits::UNLIMITED)
            }
            None => self.pool.try_retry(&self.limits),
        }
    }

    /// Notified whenever a pool slot is released (queued requests wait on it).
    pub(crate) fn released(&self) -> &Notify {
        &self.released
    }

    /// The consistent-hash key of the load-balancing policy, if it hashes.
    pub fn hash_key(&self) -> Option<&HashKey> {
        match &self.load_balancer {
            Some(LoadBalancer::ConsistentHash(ch)) => Some(&ch.key),
            _ => None,
        }
    }

    /// The resolved traffic policy.
    pub fn policy(&self) -> &PolicyParts {
        &self.parts
    }

    /// Does the service port ask for HTTP/2 to the endpoints? Istio's protocol selection: a port
    /// with protocol `HTTP2`, `GRPC` or `GRPC-WEB` (or, without a protocol, named `http2`, `grpc`
    /// or `grpc-web`, alone or followed by `-suffix`) is spoken in HTTP/2; every other HTTP port in
    /// HTTP/1.1 — unless the DestinationRule's `connectionPool.http` says `h2UpgradePolicy:
    /// UPGRADE` (HTTP/2) or `useClientProtocol: true` (the client's version; `false` here).
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Does the DestinationRule ask to keep the client's HTTP version upstream
    /// (`connectionPool.http.useClientProtocol`)?
    pub fn use_client_protocol(&self) -> bool {
        self.parts.connection_pool.as_ref().is_some_and(|p| p.use_client_protocol)
    }

    /// How to open connections to the endpoints, if the traffic policy says (see
    /// [`UpstreamConnect`]).
    pub fn connect(&self) -> Option<&UpstreamConnect> {
        self.connect.as_ref()
    }

    /// The TLS to originate, if the traffic policy asks for `SIMPLE` or `MUTUAL`.
    /// (`ISTIO_MUTUAL` needs mesh certificates meshwork does not issue: plain text is sent, and
    /// `mesh validate` reports the mode as unsupported.)
    pub fn tls(&self) -> Option<&UpstreamTls> {
        self.tls.as_ref()
    }

    /// Monotonic time for the outlier detector.
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    /// Pick an endpoint, skipping ejected ones and those in `avoid` (already tried by this
    /// request; ignored when nothing else is left, as Envoy's previous-hosts predicate).
    pub fn pick(&self, hash: Option<u64>, avoid: &[Arc<str>]) -> Option<usize> {
        // The clock is read only when outlier detection needs it.
        let now = if self.outlier.is_some() { self.now() } else { Duration::ZERO };
        if let Some(o) = &self.outlier
            && !o.current(now)
        {
            let mut d = lock(&o.detector);
            if !d.tick(now).is_empty() {
                self.report_ejections_active(&d, now);
            }
            o.refresh(&d, now);
        }
        let outlier = self.outlier.as_deref();
        let healthy = |i: usize| outlier.is_none_or(|o| o.eligible(i));
        let tried = |i: usize| !avoid.is_empty() && self.endpoints.get(i).is_some_and(|e| avoid.contains(&e.address));
        let active = |i: usize| self.active.get(i).map_or(0, |a| a.load(Ordering::Relaxed));
        // Slow start: each endpoint's weight factor by how long it has been in the cluster.
        let warmup = self.parts.warmup.map(|w| (w, Instant::now()));
        let factor = |i: usize| {
            warmup.map_or(1.0, |(w, at)| {
                w.factor(self.joined.get(i).map_or(Duration::MAX, |j| at.saturating_duration_since(*j)))
            })
        };
        let pick = EndpointPick {
            balancer: &self.balancer,
            hash,
            priorities: self.priorities.as_deref(),
            healthy: &healthy,
            tried: &tried,
            warmup: warmup.is_some().then_some(&factor as &dyn Fn(usize) -> f64),
            active: &active,
        };
        pick.pick(&mut crate::rng::ThreadRandom)
    }

    /// An endpoint starts a request.
    pub fn started(&self, i: usize) {
        if let Some(a) = self.active.get(i) {
            a.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An endpoint finished a request, with what happened (fed to outlier detection).
    pub fn finished(&self, i: usize, observation: Observation) {
        if let Some(a) = self.active.get(i) {
            a.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(o) = &self.outlier {
            let now = self.now();
            let mut d = lock(&o.detector);
            // The sweeps due first (picks run them only when their copy expires), so that an
            // ejection's length counts the ejections a sweep would have forgiven by now.
            if !d.tick(now).is_empty() {
                o.refresh(&d, now);
            }
            if let Some(ejection) = d.observe(i, observation, now) {
                tracing::info!(
                    target: "meshwork::outlier",
                    cluster = %self.destination.host,
                    subset = self.destination.subset.as_deref().unwrap_or(""),
                    endpoint = %self.endpoints.get(i).map_or("", |e| &e.address),
                    reason = ?ejection.reason,
                    ejected_for_ms = ejection.until.saturating_sub(now).as_millis() as u64,
                    "endpoint ejected"
                );
                metrics::counter!("meshwork_outlier_ejections_total", "cluster" => self.destination.host.clone())
                    .increment(1);
                self.report_ejections_active(&d, now);
                o.refresh(&d, now);
            }
        }
    }

    /// A request to endpoint `i` was cancelled before it was answered.
    pub fn cancelled(&self, i: usize) {
        if let Some(a) = self.active.get(i) {
            a.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Is endpoint `i` ejected now?
    pub fn is_ejected(&self, i: usize) -> bool {
        let now = self.now();
        self.outlier.as_ref().is_some_and(|o| lock(&o.detector).is_ejected(i, now))
    }
}

/// Each endpoint's locality priority for a client at `client`, when Istio would apply locality
/// failover to this cluster: the policy leaves locality load balancing on (Istio's default), sets
/// no mode meshwork does not apply (`distribute`, `failoverPriority`), and has outlier detection
/// (Istio's condition: without it a failed locality is never detected). `None` also when every
/// endpoint is as near as the others (nothing to prefer).
fn locality_priorities(client: &Locality, parts: &PolicyParts, endpoints: &[Endpoint]) -> Option<Box<[u8]>> {
    let setting = parts.locality.as_ref();
    if parts.outlier_detection.is_none()
        || setting.is_some_and(|s| s.enabled == Some(false) || s.unapplied_mode)
        || endpoints.is_empty()
    {
        return None;
    }
    let failover = setting.map_or(&[][..], |s| &s.failover[..]);
    let mut priorities: Vec<u8> = endpoints
        .iter()
        .map(|e| locality::priority(client, e.locality.as_deref().map(Locality::parse).as_ref(), failover))
        .collect();
    locality::compact(&mut priorities);
    priorities.iter().any(|p| *p != 0).then(|| priorities.into_boxed_slice())
}

/// Clusters by service FQDN (each with its subsets and ports).
type ClusterMap = FxHashMap<Arc<str>, Vec<Arc<Cluster>>>;

/// The cache of clusters (see the module docs). Cheap to clone: one shared `Arc` (the stack
/// holds it twice and a caller may clone the stack per request).
#[derive(Debug, Clone)]
pub struct Clusters {
    inner: Arc<ClustersInner>,
}

#[derive(Debug)]
struct ClustersInner {
    registry: Registry,
    client_namespace: Arc<str>,
    client_labels: std::collections::BTreeMap<Arc<str>, Arc<str>>,
    client_locality: Option<Locality>,
    map: ArcSwap<ClusterMap>,
    write: Mutex<()>,
    epoch: Instant,
    /// The one cluster of every passthrough request (see [`Clusters::passthrough`]).
    passthrough: std::sync::OnceLock<Arc<Cluster>>,
}

/// The name of the passthrough cluster, as Istio names Envoy's (`PassthroughCluster`).
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

impl Clusters {
    /// Clusters over `registry`, for a client in `client`'s namespace (DestinationRule choice).
    pub fn new(registry: Registry, client: &ClientIdentity) -> Self {
        Clusters {
            inner: Arc::new(ClustersInner {
                registry,
                client_namespace: client.namespace.clone(),
                client_labels: client.labels.clone(),
                client_locality: client.locality.clone(),
                map: ArcSwap::default(),
                write: Mutex::default(),
                epoch: Instant::now(),
                passthrough: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The cluster every request for a host nothing declares goes through under `ALLOW_ANY`
    /// (Envoy's `PassthroughCluster`): no endpoints (the request keeps its own authority), no
    /// DestinationRule, one set of counters. Such requests never create a cluster of their own,
    /// so a client naming hosts at will cannot grow the mesh's state.
    pub fn passthrough(&self) -> Arc<Cluster> {
        self.inner
            .passthrough
            .get_or_init(|| {
                let destination = Destination { host: Arc::from(PASSTHROUGH_CLUSTER), subset: None, port: None };
                let mut cluster = self.build(&destination, None, self.inner.registry.version(), None);
                cluster.known = false;
                cluster.passthrough = true;
                cluster.stats_name = Arc::from(PASSTHROUGH_CLUSTER);
                Arc::new(cluster)
            })
            .clone()
    }

    /// Drop the clusters a configuration swap left idle: those no request has used since the
    /// snapshot before `previous_generation`'s (not looked up under it or a later one), that no
    /// request holds, and whose host the registry no longer has (a registered service keeps its
    /// cluster — ejections and circuit-breaker counts — however long it is idle). Called by
    /// [`crate::Mesh::update`]: clusters of removed config do not outlive it.
    pub fn sweep(&self, previous_generation: u64) {
        let _guard = self.inner.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.inner.map.load();
        let keep = |c: &Arc<Cluster>| {
            Arc::strong_count(c) > 1
                || c.checked_generation.load(Ordering::Acquire) >= previous_generation
                || self.inner.registry.contains(&c.destination.host)
        };
        if current.values().flatten().all(keep) {
            return;
        }
        // Decided on the current map before anything is cloned (a clone counts as a holder).
        let next: ClusterMap = current
            .iter()
            .filter_map(|(host, list)| {
                let kept: Vec<Arc<Cluster>> = list.iter().filter(|c| keep(c)).cloned().collect();
                (!kept.is_empty()).then(|| (host.clone(), kept))
            })
            .collect();
        tracing::debug!(
            target: "meshwork::cluster",
            before = current.values().map(Vec::len).sum::<usize>(),
            after = next.values().map(Vec::len).sum::<usize>(),
            "idle clusters dropped"
        );
        self.inner.map.store(Arc::new(next));
    }

    /// Every cluster built so far.
    pub fn all(&self) -> Vec<Arc<Cluster>> {
        self.inner.map.load().values().flatten().cloned().collect()
    }

    /// The cluster for `destination` under `snapshot` (built or refreshed when needed).
    pub fn get(&self, snapshot: &Snapshot, destination: &Destination) -> Arc<Cluster> {
        let version = self.inner.registry.version();
        let generation = snapshot.generation();
        let same =
            |c: &Arc<Cluster>| c.destination.subset == destination.subset && c.destination.port == destination.port;
        let map = self.inner.map.load();
        let cached = map.get(&*destination.host).and_then(|l| l.iter().find(|c| same(c)));
        // Checked against this very snapshot already (it never changes), and the registry has not
        // changed since it was built: no DestinationRule lookup on the request path.
        if let Some(c) = cached
            && c.registry_version == version
            && c.checked_generation.load(Ordering::Acquire) == generation
        {
            return c.clone();
        }
        let policy =
            snapshot.destination_policy_for(&destination.host, &self.inner.client_namespace, &self.inner.client_labels);
        // The same rule, and the service port still speaks what it spoke (a reload may change it).
        let fresh = |c: &Arc<Cluster>| {
            c.registry_version == version
                && match (&c.policy, policy) {
                    (None, None) => true,
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    _ => false,
                }
                && c.http2 == mesh_core::protocol::upstream_http2(&c.parts, snapshot, destination)
        };
        if let Some(c) = cached
            && fresh(c)
        {
            c.checked_generation.store(generation, Ordering::Release);
            return c.clone();
        }
        drop(map);
        let _guard = self.inner.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let map = self.inner.map.load();
        let previous = map.get(&*destination.host).and_then(|l| l.iter().find(|c| same(c)));
        if let Some(c) = previous
            && fresh(c)
        {
            c.checked_generation.store(generation, Ordering::Release);
            return c.clone();
        }
        let mut cluster = self.build(destination, policy.cloned(), version, previous.map(|c| &**c));
        cluster.http2 = mesh_core::protocol::upstream_http2(&cluster.parts, snapshot, destination);
        cluster.checked_generation = AtomicU64::new(generation);
        let cluster = Arc::new(cluster);
        let mut next = FxHashMap::clone(&map);
        let list = next.entry(destination.host.clone()).or_default();
        list.retain(|c| !same(c));
        list.push(cluster.clone());
        self.inner.map.store(Arc::new(next));
        cluster
    }

    fn build(
        &self,
        destination: &Destination,
        policy: Option<Arc<DestinationPolicy>>,
        version: u64,
        previous: Option<&Cluster>,
    ) -> Cluster {
        let parts =
            policy.as_ref().map(|p| p.resolve(destination.subset.as_deref(), destination.port)).unwrap_or_default();
        // A Kubernetes service name (`name.ns.svc.<domain>`) is the mesh's own: with nothing
        // registered it has no endpoints (503 `UH`), rather than being dialled by DNS.
        let known = self.inner.registry.contains(&destination.host) || service_namespace(&destination.host).is_some();
        let mut endpoints: Vec<Endpoint> = self.inner.registry.endpoints(&destination.host);
        let mut empty_reason = endpoints.is_empty().then(|| "no endpoint is registered for the service".to_string());
        if let Some(subset) = &destination.subset {
            match policy.as_ref().and_then(|p| p.subset(subset)) {
                Some(s) => endpoints.retain(|e| s.labels.matches(&e.labels)),
                // A subset no DestinationRule defines has no endpoints (Istio answers 503).
                None => {
                    endpoints.clear();
                    empty_reason = Some(format!("no DestinationRule for the host defines subset `{subset}`"));
                }
            }
            if empty_reason.is_none() && endpoints.is_empty() {
                empty_reason = Some(format!("no endpoint has the labels of subset `{subset}`"));
            }
        }
        if let Some(port) = destination.port {
            endpoints.retain(|e| e.service_port.is_none_or(|p| p == port));
            if empty_reason.is_none() && endpoints.is_empty() {
                empty_reason = Some(if port == 0 {
                    "the request's port is not a port of the service".to_string()
                } else {
                    format!("no endpoint serves service port {port}")
                });
            }
        }
        let endpoints: Arc<[Endpoint]> = endpoints.into();
        // The service port for the stats name: the destination's, else the one port every
        // endpoint serves (Istio's cluster names always carry the port).
        let stats_port = destination.port.filter(|p| *p != 0).or_else(|| {
            let first = endpoints.first()?.service_port?;
            endpoints.iter().all(|e| e.service_port == Some(first)).then_some(first)
        });
        let namespace: Arc<str> = Arc::from(service_namespace(&destination.host).unwrap_or("unknown"));
        let meta = endpoints.iter().map(|e| Arc::new(EndpointMeta::from_endpoint(e, &namespace))).collect();
        let same_endpoints = previous.is_some_and(|p| p.endpoints == endpoints);
        let balancer = match previous {
            Some(p) if same_endpoints && p.load_balancer == parts.load_balancer => p.balancer.clone(),
            _ => {
                let keys: Vec<&str> = endpoints.iter().map(|e| &*e.address).collect();
                let weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
                Arc::new(Balancer::new(parts.load_balancer.as_ref(), &keys, &weights))
            }
        };
        let outlier = parts.outlier_detection.clone().map(|config| match previous.and_then(|p| p.outlier.as_ref()) {
            Some(o) if same_endpoints && *lock(&o.detector).config() == config => o.clone(),
            _ => Arc::new(Outlier::new(OutlierDetector::new(config, endpoints.len()), endpoints.len())),
        });
        let active = (0..endpoints.len())
            .map(|i| {
                let carried = previous
                    .filter(|_| same_endpoints)
                    .and_then(|p| p.active.get(i))
                    .map_or(0, |a| a.load(Ordering::Relaxed));
                AtomicU64::new(carried)
            })
            .collect();
        let priorities =
            self.inner.client_locality.as_ref().and_then(|client| locality_priorities(client, &parts, &endpoints));
        // An endpoint the previous build had keeps its joining time; a new one joins now.
        let now = Instant::now();
        let before: FxHashMap<&str, Instant> = previous
            .map(|p| p.endpoints.iter().zip(p.joined.iter()).map(|(e, j)| (&*e.address, *j)).collect())
            .unwrap_or_default();
        let joined = endpoints.iter().map(|e| before.get(&*e.address).copied().unwrap_or(now)).collect();
        tracing::debug!(
            target: "meshwork::cluster",
            host = %destination.host,
            subset = destination.subset.as_deref().unwrap_or(""),
            endpoints = endpoints.len(),
            locality_levels = priorities.as_deref().map_or(1, |p| p.iter().max().map_or(1, |m| usize::from(*m) + 1)),
            "cluster built"
        );
        Cluster {
            destination: destination.clone(),
            known,
            limits: PoolLimits::from_policy(parts.connection_pool.as_ref()),
            retry_budget: policy
                .as_ref()
                .and_then(|p| p.retry_budget(destination.subset.as_deref()))
                .map(ConcurrencyBudget::from),
            pool: previous.map_or_else(Arc::default, |p| p.pool.clone()),
            released: previous.map_or_else(Arc::default, |p| p.released.clone()),
            authorities: endpoints
                .iter()
                .map(|e| http::uri::Authority::from_maybe_shared(bytes::Bytes::from(e.address.to_string())).ok())
                .collect(),
            endpoints,
            meta,
            balancer,
            load_balancer: parts.load_balancer.clone(),
            active,
            outlier,
            policy,
            tls: parts
                .tls
                .as_ref()
                .filter(|t| matches!(t.mode, TlsMode::Simple | TlsMode::Mutual))
                .map(|t| UpstreamTls(Arc::new(t.clone()))),
            http2: false,
            priorities,
            joined,
            connect: parts
                .connection_pool
                .as_ref()
                .map(|p| UpstreamConnect { timeout: p.connect_timeout, keepalive: p.tcp_keepalive })
                .filter(|c| c.timeout.is_some() || c.keepalive.is_some()),
            parts,
            registry_version: version,
            checked_generation: AtomicU64::new(u64::MAX),
            epoch: self.inner.epoch,
            host_header: arc_swap::ArcSwapOption::empty(),
            passthrough: false,
            stats_name: Arc::from(format!(
                "outbound|{}|{}|{}",
                stats_port.map(|p| p.to_string()).unwrap_or_default(),
                destination.subset.as_deref().unwrap_or(""),
                destination.host
            )),
            empty_reason,
            reported_empty: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(yaml: &str) -> Snapshot {
        let mut store = mesh_config::ConfigStore::default();
        let loaded = mesh_config::load_str(yaml, None, &mesh_config::LoadOptions::default()).expect("yaml");
        let report = store.apply(loaded);
        assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
        store.snapshot().clone()
    }

    #[test]
    fn a_cluster_is_reused_within_a_snapshot_and_follows_a_new_one() {
        let service_entry = |protocol: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: api, namespace: default}}\n\
                 spec:\n  hosts: [api.example.com]\n  ports: [{{number: 80, name: web, protocol: {protocol}}}]\n  \
                 resolution: DNS\n"
            )
        };
        let http = snapshot(&service_entry("HTTP"));
        let grpc = snapshot(&service_entry("GRPC"));
        assert_ne!(http.generation(), grpc.generation());
        let clusters = Clusters::new(Registry::new(), &ClientIdentity::new("default", []));
        let d = Destination { host: Arc::from("api.example.com"), subset: None, port: Some(80) };
        let first = clusters.get(&http, &d);
        assert!(!first.http2());
        assert!(Arc::ptr_eq(&first, &clusters.get(&http, &d)), "same snapshot, same cluster");
        assert!(Arc::ptr_eq(&first, &clusters.get(&http.clone(), &d)), "a clone is the same snapshot");
        assert!(clusters.get(&grpc, &d).http2(), "the port became gRPC: the cluster speaks HTTP/2");
        assert!(!clusters.get(&http, &d).http2(), "and back");
    }

    #[test]
    fn kubernetes_namespaces_come_from_the_fqdn() {
        assert_eq!(service_namespace("reviews.default.svc.cluster.local"), Some("default"));
        assert_eq!(service_namespace("httpbin.org"), None);
    }
}
