//! `DestinationRule`: <https://istio.io/latest/docs/reference/config/networking/destination-rule/>.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::virtual_service::PortSelector;

/// The `spec` of a DestinationRule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DestinationRule {
    /// The service this applies to (short names are relative to the namespace).
    pub host: String,
    /// Policy for every subset and port, unless overridden.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named groups of endpoints selected by labels.
    pub subsets: Vec<Subset>,
    /// Namespaces this rule is visible to.
    pub export_to: Vec<String>,
    /// Workloads this rule applies to (client side).
    pub workload_selector: Option<WorkloadSelector>,
}

/// `workloadSelector: {matchLabels: {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    /// Labels the client workload must carry.
    pub match_labels: BTreeMap<String, String>,
}

/// A subset: endpoints whose labels contain `labels`, with an optional policy override.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subset {
    /// Name referenced by `destination.subset`.
    pub name: String,
    /// Label selector.
    pub labels: BTreeMap<String, String>,
    /// Overrides of the top-level policy, field by field.
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Load balancing, connection pool, outlier detection and TLS for a destination.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficPolicy {
    /// Load balancer.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool limits (circuit breaking).
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Passive health checking.
    pub outlier_detection: Option<OutlierDetection>,
    /// Upstream TLS.
    pub tls: Option<ClientTlsSettings>,
    /// Per-port overrides.
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// HTTP CONNECT tunnel.
    pub tunnel: Option<TunnelSettings>,
    /// PROXY protocol towards the upstream.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Retry budget for the destination.
    pub retry_budget: Option<RetryBudget>,
}

/// `portLevelSettings[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortTrafficPolicy {
    /// The port this applies to.
    pub port: Option<PortSelector>,
    /// Load balancer.
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection pool.
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS.
    pub tls: Option<ClientTlsSettings>,
}

/// `loadBalancer`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerSettings {
    /// A simple algorithm.
    pub simple: Option<SimpleLb>,
    /// Consistent hashing.
    pub consistent_hash: Option<ConsistentHashLb>,
    /// Locality-aware load balancing.
    pub locality_lb_setting: Option<LocalityLbSetting>,
    /// Zone-aware load balancing.
    pub zone_aware_lb_setting: Option<ZoneAwareLbSetting>,
    /// Slow start window.
    pub warmup_duration_secs: Option<String>,
    /// Slow start.
    pub warmup: Option<WarmupConfiguration>,
}

/// `loadBalancer.simple`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum SimpleLb {
    /// Istio's default (LEAST_REQUEST).
    UNSPECIFIED,
    /// Deprecated alias of LEAST_REQUEST.
    LEAST_CONN,
    /// Random.
    RANDOM,
    /// Forward to the address the caller asked for.
    PASSTHROUGH,
    /// Round robin.
    ROUND_ROBIN,
    /// Power of two choices on active requests.
    LEAST_REQUEST,
}

/// `loadBalancer.consistentHash`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsistentHashLb {
    /// Hash a header.
    pub http_header_name: Option<String>,
    /// Hash a cookie.
    pub http_cookie: Option<HttpCookie>,
    /// Hash the source IP.
    pub use_source_ip: Option<bool>,
    /// Hash a query parameter.
    pub http_query_parameter_name: Option<String>,
    /// Ring hash.
    pub ring_hash: Option<RingHash>,
    /// Maglev.
    pub maglev: Option<Maglev>,
    /// Deprecated: ring size.
    pub minimum_ring_size: Option<u64>,
}

/// `consistentHash.httpCookie`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpCookie {
    /// Cookie name.
    pub name: String,
    /// Cookie path.
    pub path: Option<String>,
    /// Lifetime of a generated cookie.
    pub ttl: Option<String>,
    /// Extra cookie attributes.
    pub attributes: Vec<CookieAttribute>,
}

/// `httpCookie.attributes[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CookieAttribute {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
}

/// `consistentHash.ringHash`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RingHash {
    /// Minimum ring size.
    pub minimum_ring_size: Option<u64>,
}

/// `consistentHash.maglev`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Maglev {
    /// Lookup table size (prime).
    pub table_size: Option<u64>,
}

/// `localityLbSetting`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityLbSetting {
    /// Weighted distribution between localities.
    pub distribute: Vec<LocalityDistribute>,
    /// Failover between regions.
    pub failover: Vec<LocalityFailover>,
    /// Ordered labels for failover priority.
    pub failover_priority: Vec<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// `localityLbSetting.distribute[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LocalityDistribute {
    /// Origin locality.
    pub from: String,
    /// Destination localities and weights.
    pub to: BTreeMap<String, u32>,
}

/// `localityLbSetting.failover[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LocalityFailover {
    /// Origin region.
    pub from: String,
    /// Failover region.
    pub to: String,
}

/// `zoneAwareLbSetting`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ZoneAwareLbSetting {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Failover between regions.
    pub failover: Vec<LocalityFailover>,
    /// Ordered labels for failover priority.
    pub failover_priority: Vec<String>,
    /// Minimum cluster size.
    pub min_cluster_size: Option<u64>,
}

/// `loadBalancer.warmup`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WarmupConfiguration {
    /// Window.
    pub duration: Option<String>,
    /// Starting percentage.
    pub minimum_percent: Option<f64>,
    /// Curve.
    pub aggression: Option<f64>,
}

/// `connectionPool`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConnectionPoolSettings {
    /// TCP-level limits.
    pub tcp: Option<TcpSettings>,
    /// HTTP-level limits.
    pub http: Option<HttpSettings>,
}

/// `connectionPool.tcp`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpSettings {
    /// Maximum connections to the destination.
    pub max_connections: Option<i32>,
    /// Connect timeout.
    pub connect_timeout: Option<String>,
    /// TCP keepalive.
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Maximum connection lifetime.
    pub max_connection_duration: Option<String>,
    /// Idle timeout for TCP connections.
    pub idle_timeout: Option<String>,
}

/// `tcp.tcpKeepalive`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TcpKeepalive {
    /// Probes before the connection is dead.
    pub probes: Option<u32>,
    /// Idle time before probing.
    pub time: Option<String>,
    /// Interval between probes.
    pub interval: Option<String>,
}

/// `connectionPool.http`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpSettings {
    /// Maximum requests queued waiting for a connection.
    pub http1_max_pending_requests: Option<i32>,
    /// Maximum active requests to the destination.
    pub http2_max_requests: Option<i32>,
    /// Requests per connection before it is closed.
    pub max_requests_per_connection: Option<i32>,
    /// Maximum outstanding retries to the destination.
    pub max_retries: Option<i32>,
    /// Idle timeout for upstream connections.
    pub idle_timeout: Option<String>,
    /// Upgrade HTTP/1.1 to HTTP/2.
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Use the client's protocol upstream.
    pub use_client_protocol: Option<bool>,
    /// Maximum concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: Option<i32>,
    /// HTTP/2 keepalive pings.
    pub http2_keep_alive: Option<Http2KeepAlive>,
}

/// `http.h2UpgradePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum H2UpgradePolicy {
    /// Mesh default.
    DEFAULT,
    /// Never upgrade.
    DO_NOT_UPGRADE,
    /// Upgrade.
    UPGRADE,
}

/// `http.http2KeepAlive`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Http2KeepAlive {
    /// Ping interval.
    pub interval: Option<String>,
    /// Ping timeout.
    pub timeout: Option<String>,
}

/// `outlierDetection`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutlierDetection {
    /// Separate local-origin (connect) failures from upstream errors.
    pub split_external_local_origin_errors: Option<bool>,
    /// Consecutive local-origin failures before ejection.
    pub consecutive_local_origin_failures: Option<u32>,
    /// Consecutive 502/503/504 (and connect errors) before ejection.
    pub consecutive_gateway_errors: Option<u32>,
    /// Consecutive 5xx before ejection.
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    /// Deprecated.
    pub consecutive_errors: Option<i32>,
    /// Analysis interval.
    pub interval: Option<String>,
    /// Base ejection time, multiplied by the number of ejections.
    pub base_ejection_time: Option<String>,
    /// Maximum share of endpoints ejected.
    pub max_ejection_percent: Option<i32>,
    /// Below this share of healthy endpoints, ejection is disabled.
    pub min_health_percent: Option<i32>,
    /// Extra status codes that count as errors.
    pub outlier_detection_http_error_codes: Vec<u32>,
}

/// Upstream TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTlsSettings {
    /// TLS mode.
    pub mode: Option<ClientTlsMode>,
    /// Client certificate file (MUTUAL).
    pub client_certificate: Option<String>,
    /// Private key file (MUTUAL).
    pub private_key: Option<String>,
    /// CA bundle file.
    pub ca_certificates: Option<String>,
    /// Secret name holding the credentials.
    pub credential_name: Option<String>,
    /// Accepted server SANs.
    pub subject_alt_names: Vec<String>,
    /// SNI to send.
    pub sni: Option<String>,
    /// Skip server verification.
    pub insecure_skip_verify: Option<bool>,
    /// Certificate revocation list file.
    pub ca_crl: Option<String>,
}

/// `tls.mode` for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum ClientTlsMode {
    /// Plain text.
    DISABLE,
    /// TLS, server verified.
    SIMPLE,
    /// mTLS with given certificates.
    MUTUAL,
    /// mTLS with mesh certificates.
    ISTIO_MUTUAL,
}

/// `tunnel`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TunnelSettings {
    /// `CONNECT` or `POST`.
    pub protocol: Option<String>,
    /// Target host.
    pub target_host: String,
    /// Target port.
    pub target_port: u32,
}

/// `proxyProtocol`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProxyProtocol {
    /// `V1` or `V2`.
    pub version: Option<String>,
}

/// `retryBudget`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryBudget {
    /// Percentage of active requests that may be retries.
    pub percent: Option<f64>,
    /// Retries always allowed regardless of the percentage.
    pub min_retry_concurrency: Option<u32>,
    /// Window (not used by Envoy; accepted).
    pub budget_interval: Option<String>,
}
