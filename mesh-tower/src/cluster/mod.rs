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

use mesh_core::balance::Balancer;
use mesh_core::budget::ConcurrencyBudget;
use mesh_core::endpoint::EndpointPick;
use mesh_core::outlier::{Observation, OutlierDetector};
use mesh_core::policy::{ClientTls, DestinationPolicy, HashKey, LoadBalancer, PolicyParts};
use mesh_core::pool::{PoolLimits, PoolState};
use mesh_core::route::Destination;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::registry::Endpoint;

mod cache;
mod meta;

pub use cache::{Clusters, PASSTHROUGH_CLUSTER};
pub use meta::EndpointMeta;
pub(crate) use meta::{WorkloadLabels, service_namespace};

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
    /// The identities the service's workloads run as, as the registry had them at
    /// `registry_version` ([`crate::Registry::service_accounts`]).
    service_accounts: Option<Arc<[Arc<str>]>>,
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

    /// The identities the service's workloads run as (the `service_accounts` of its
    /// declarations, as the registry had them when this cluster was built: an endpoint change
    /// that brings workloads of another service account builds a new cluster); empty when
    /// unknown.
    pub fn service_accounts(&self) -> &[Arc<str>] {
        self.service_accounts.as_deref().unwrap_or(&[])
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
