//! Compiled DestinationRules: subsets as label selectors and traffic policies.
//!
//! A subset's policy overrides the top-level one **field by field** (load balancer, connection
//! pool, outlier detection, TLS each replaced whole when the subset sets it); a `portLevelSettings`
//! entry for the request's port replaces all four and does not inherit
//! (<https://istio.io/latest/docs/reference/config/networking/destination-rule/>; istio/istio
//! `networking/util.MergeTrafficPolicy`). [`DestinationPolicy::resolve`] applies that order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A label selector: an endpoint is selected when its labels contain every pair.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct LabelSelector(pub Box<[(Arc<str>, Arc<str>)]>);

impl LabelSelector {
    /// Build from pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        LabelSelector(pairs.into_iter().map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))).collect())
    }

    /// Do `labels` contain every pair of the selector? (An empty selector selects everything.)
    pub fn matches(&self, labels: &BTreeMap<Arc<str>, Arc<str>>) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

/// A compiled DestinationRule.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationPolicy {
    /// Namespace of the rule.
    pub namespace: Arc<str>,
    /// Name of the rule.
    pub name: Arc<str>,
    /// Host pattern (qualified; may be a wildcard).
    pub host: Arc<str>,
    /// Top-level policy.
    pub traffic_policy: TrafficPolicy,
    /// Subsets.
    pub subsets: Box<[Subset]>,
    /// `workloadSelector`: the rule applies only to clients of its own namespace carrying these
    /// labels (`None`: to every client that may use it).
    pub workload_selector: Option<LabelSelector>,
}

/// A compiled subset.
#[derive(Debug, Clone, PartialEq)]
pub struct Subset {
    /// Name.
    pub name: Arc<str>,
    /// Selector.
    pub labels: LabelSelector,
    /// The subset's own policy (not yet merged with the top level).
    pub traffic_policy: Option<TrafficPolicy>,
}

/// A traffic policy as written (port-level entries kept apart).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficPolicy {
    /// The four policy parts.
    pub parts: PolicyParts,
    /// `portLevelSettings`, by port.
    pub port_level: Box<[(u16, PolicyParts)]>,
    /// Istio's `retryBudget`.
    pub retry_budget: Option<RetryBudget>,
}

/// Load balancer, connection pool, outlier detection and TLS: the parts that merge.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyParts {
    /// Load balancer.
    pub load_balancer: Option<LoadBalancer>,
    /// Connection pool limits.
    pub connection_pool: Option<ConnectionPool>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS.
    pub tls: Option<ClientTls>,
    /// `loadBalancer.localityLbSetting` (part of the load balancer: merged with it).
    pub locality: Option<LocalitySetting>,
    /// `loadBalancer.warmup` / `warmupDurationSecs` (part of the load balancer).
    pub warmup: Option<Warmup>,
}

/// Slow start (`loadBalancer.warmup`, or the older `warmupDurationSecs`): an endpoint that joined
/// less than `duration` ago gets a share of requests growing from `minimum_percent` to its full
/// weight, as Envoy's slow start does for round robin and least request
/// (<https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/slow_start>).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup {
    /// The window.
    pub duration: Duration,
    /// The share at the start, percent (Istio's default 10).
    pub minimum_percent: f64,
    /// The curve: 1.0 linear, higher ramps faster at first (Istio's default 1.0).
    pub aggression: f64,
}

impl Warmup {
    /// The weight factor (0..=1) of an endpoint that joined `age` ago: `(age / duration) ^
    /// (1 / aggression)`, at least `minimum_percent`, 1 once the window has passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = mesh_core::policy::Warmup { duration: Duration::from_secs(60), minimum_percent: 10.0, aggression: 1.0 };
    /// assert_eq!(w.factor(Duration::from_secs(30)), 0.5);
    /// assert_eq!(w.factor(Duration::ZERO), 0.1);
    /// assert_eq!(w.factor(Duration::from_secs(61)), 1.0);
    /// ```
    pub fn factor(&self, age: Duration) -> f64 {
        if age >= self.duration || self.duration.is_zero() {
            return 1.0;
        }
        let progress = age.as_secs_f64() / self.duration.as_secs_f64();
        let aggression = if self.aggression > 0.0 { self.aggression } else { 1.0 };
        progress.powf(1.0 / aggression).max(self.minimum_percent / 100.0).min(1.0)
    }
}

/// A DestinationRule's `localityLbSetting`, as far as meshwork acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalitySetting {
    /// `enabled` (unset: Istio's mesh-wide default, on).
    pub enabled: Option<bool>,
    /// `failover` as `(from, to)` regions.
    pub failover: Box<[(Arc<str>, Arc<str>)]>,
    /// `distribute` or `failoverPriority` is set: modes meshwork does not apply (reported by
    /// validation); endpoints are then balanced without regard to locality.
    pub unapplied_mode: bool,
}

impl DestinationPolicy {
    /// The subset named `name`.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| &*s.name == name)
    }

    /// The effective policy for a subset (or none) and a port, merged as Istio merges.
    pub fn resolve(&self, subset: Option<&str>, port: Option<u16>) -> PolicyParts {
        let for_port = |tp: &TrafficPolicy| {
            port.and_then(|p| tp.port_level.iter().find(|(n, _)| *n == p)).map(|(_, parts)| parts.clone())
        };
        let mut merged = for_port(&self.traffic_policy).unwrap_or_else(|| self.traffic_policy.parts.clone());
        if let Some(sp) = subset.and_then(|s| self.subset(s)).and_then(|s| s.traffic_policy.as_ref()) {
            let own = &sp.parts;
            if own.load_balancer.is_some() || own.locality.is_some() || own.warmup.is_some() {
                merged.load_balancer = own.load_balancer.clone();
                merged.locality = own.locality.clone();
                merged.warmup = own.warmup;
            }
            if own.connection_pool.is_some() {
                merged.connection_pool = own.connection_pool.clone();
            }
            if own.outlier_detection.is_some() {
                merged.outlier_detection = own.outlier_detection.clone();
            }
            if own.tls.is_some() {
                merged.tls = own.tls.clone();
            }
            if let Some(parts) = for_port(sp) {
                merged = parts;
            }
        }
        merged
    }

    /// The retry budget for a subset (the subset's own, else the top level's).
    pub fn retry_budget(&self, subset: Option<&str>) -> Option<RetryBudget> {
        subset
            .and_then(|s| self.subset(s))
            .and_then(|s| s.traffic_policy.as_ref())
            .and_then(|tp| tp.retry_budget)
            .or(self.traffic_policy.retry_budget)
    }
}

/// Which endpoint gets the next request.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadBalancer {
    /// Rotate through endpoints.
    RoundRobin,
    /// Pick uniformly at random.
    Random,
    /// Power of two choices on active requests (Istio's default, also `LEAST_CONN`).
    LeastRequest,
    /// Send to the address the caller asked for.
    Passthrough,
    /// Consistent hashing.
    ConsistentHash(ConsistentHash),
}

/// A consistent-hash policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsistentHash {
    /// What to hash.
    pub key: HashKey,
    /// Ring or Maglev.
    pub algorithm: HashAlgorithm,
}

/// The request attribute a consistent hash uses.
#[derive(Debug, Clone, PartialEq)]
pub enum HashKey {
    /// A header (lower-case name).
    Header(Arc<str>),
    /// A cookie; generated with `ttl` when absent and a ttl is set.
    Cookie {
        /// Cookie name.
        name: Arc<str>,
        /// Cookie path.
        path: Option<Arc<str>>,
        /// Lifetime of a generated cookie.
        ttl: Option<Duration>,
    },
    /// The client's IP address.
    SourceIp,
    /// A query parameter.
    QueryParameter(Arc<str>),
}

/// Consistent-hash table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// Ketama-style ring with at least this many entries.
    RingHash {
        /// Minimum ring size (Envoy default 1024).
        minimum_ring_size: u64,
    },
    /// Maglev with this (prime) table size (Envoy default 65537).
    Maglev {
        /// Table size.
        table_size: u64,
    },
}

/// Connection-pool limits (circuit breaking). `None` means Envoy's default (effectively
/// unlimited, 2^32-1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionPool {
    /// `tcp.maxConnections`.
    pub max_connections: Option<u32>,
    /// `tcp.connectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// `tcp.idleTimeout`.
    pub tcp_idle_timeout: Option<Duration>,
    /// `tcp.tcpKeepalive`: SO_KEEPALIVE on connections to the endpoints.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// `http.http1MaxPendingRequests`.
    pub http1_max_pending_requests: Option<u32>,
    /// `http.http2MaxRequests`.
    pub http2_max_requests: Option<u32>,
    /// `http.maxRequestsPerConnection` (0 = unlimited).
    pub max_requests_per_connection: Option<u32>,
    /// `http.maxRetries`.
    pub max_retries: Option<u32>,
    /// `http.idleTimeout`.
    pub idle_timeout: Option<Duration>,
    /// `http.h2UpgradePolicy: UPGRADE`: HTTP/2 to the destination whatever its port declares
    /// (`DEFAULT` and `DO_NOT_UPGRADE` leave it to the port; the mesh default does not upgrade).
    pub h2_upgrade: bool,
    /// `http.useClientProtocol`: the upstream request keeps the client's HTTP version (and no
    /// upgrade happens).
    pub use_client_protocol: bool,
}

/// `connectionPool.tcp.tcpKeepalive`: TCP keepalive on, with the system's defaults for what is
/// not set (Linux: 7200 s idle, 75 s between 9 probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpKeepalive {
    /// `probes`.
    pub probes: Option<u32>,
    /// `time`: idle time before the first probe.
    pub time: Option<Duration>,
    /// `interval`: between probes.
    pub interval: Option<Duration>,
}

/// Outlier detection with Istio/Envoy defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Consecutive 5xx before ejection (`None` = disabled).
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502/503/504 before ejection (`None` = disabled).
    pub consecutive_gateway: Option<u32>,
    /// Consecutive local-origin failures before ejection, when split.
    pub consecutive_local_origin: Option<u32>,
    /// Separate local-origin failures from upstream responses.
    pub split_external_local_origin_errors: bool,
    /// Sweep interval (default 10 s).
    pub interval: Duration,
    /// Base ejection time, multiplied by the ejection count (default 30 s).
    pub base_ejection_time: Duration,
    /// Most endpoints ejected at once, in percent (default 10).
    pub max_ejection_percent: u32,
    /// Ejection stops when fewer than this percent of endpoints are healthy (default 0).
    pub min_health_percent: u32,
    /// Extra status codes counted as errors.
    pub http_error_codes: Box<[u16]>,
}

/// Upstream TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// Mode.
    pub mode: TlsMode,
    /// Client certificate file.
    pub client_certificate: Option<Arc<str>>,
    /// Private key file.
    pub private_key: Option<Arc<str>>,
    /// CA bundle file.
    pub ca_certificates: Option<Arc<str>>,
    /// SNI.
    pub sni: Option<Arc<str>>,
    /// Accepted server SANs.
    pub subject_alt_names: Box<[Arc<str>]>,
    /// Skip verification.
    pub insecure_skip_verify: bool,
}

/// Upstream TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text.
    Disable,
    /// TLS.
    Simple,
    /// mTLS with given certificates.
    Mutual,
    /// mTLS with mesh certificates.
    IstioMutual,
}

/// Istio's `retryBudget`: retries allowed as a share of active requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Percent of active requests (Envoy default 20).
    pub percent: f64,
    /// Retries always allowed (Envoy default 3).
    pub min_retry_concurrency: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(lb: LoadBalancer) -> PolicyParts {
        PolicyParts { load_balancer: Some(lb), ..PolicyParts::default() }
    }

    #[test]
    fn subset_and_port_overrides() {
        let pool = ConnectionPool { max_connections: Some(1), ..ConnectionPool::default() };
        let dr = DestinationPolicy {
            namespace: Arc::from("default"),
            name: Arc::from("reviews"),
            host: Arc::from("reviews.default.svc.cluster.local"),
            traffic_policy: TrafficPolicy {
                parts: PolicyParts { connection_pool: Some(pool.clone()), ..parts(LoadBalancer::Random) },
                port_level: Box::new([(9080, parts(LoadBalancer::LeastRequest))]),
                retry_budget: None,
            },
            subsets: Box::new([Subset {
                name: Arc::from("v2"),
                labels: LabelSelector::default(),
                traffic_policy: Some(TrafficPolicy {
                    parts: parts(LoadBalancer::RoundRobin),
                    ..TrafficPolicy::default()
                }),
            }]),
            workload_selector: None,
        };
        let top = dr.resolve(None, None);
        assert_eq!(top.load_balancer, Some(LoadBalancer::Random));
        let v2 = dr.resolve(Some("v2"), None);
        assert_eq!(v2.load_balancer, Some(LoadBalancer::RoundRobin));
        assert_eq!(v2.connection_pool, Some(pool), "fields the subset does not set are inherited");
        let port = dr.resolve(None, Some(9080));
        assert_eq!(port.load_balancer, Some(LoadBalancer::LeastRequest));
        assert_eq!(port.connection_pool, None, "port-level settings do not inherit");
    }
}
