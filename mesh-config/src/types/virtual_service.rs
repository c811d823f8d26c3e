//! `VirtualService` (`networking.istio.io/v1`, same schema in v1beta1 and v1alpha3).
//!
//! Field for field the API in <https://istio.io/latest/docs/reference/config/networking/virtual-service/>.
//! Durations are kept as written (`"1.5s"`, `"100ms"`) and parsed by validation, so errors can say
//! where they are.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `spec` of a VirtualService.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VirtualService {
    /// Destination hosts the rules apply to; empty makes this a delegate VirtualService.
    pub hosts: Vec<String>,
    /// Gateways (and/or `mesh`) the rules apply to; empty means `mesh`.
    pub gateways: Vec<String>,
    /// HTTP rules, evaluated in order: the first match wins.
    pub http: Vec<HttpRoute>,
    /// TLS passthrough rules (parsed and validated; not acted on).
    pub tls: Vec<TlsRoute>,
    /// TCP rules (parsed and validated; not acted on).
    pub tcp: Vec<TcpRoute>,
    /// Namespaces this VirtualService is visible to (`*` = all, `.` = own).
    pub export_to: Vec<String>,
}

/// One `http[]` rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    /// Name for logs and `mesh explain`.
    pub name: Option<String>,
    /// Conditions; entries are ORed, fields within an entry ANDed. Empty matches everything.
    #[serde(rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    /// Weighted destinations.
    pub route: Vec<HttpRouteDestination>,
    /// Answer with a redirect.
    pub redirect: Option<HttpRedirect>,
    /// Answer directly with a fixed response.
    pub direct_response: Option<HttpDirectResponse>,
    /// Hand the rule to a delegate VirtualService.
    pub delegate: Option<Delegate>,
    /// Rewrite the path and/or authority before forwarding.
    pub rewrite: Option<HttpRewrite>,
    /// Overall request timeout (`0s` disables).
    pub timeout: Option<String>,
    /// Retry policy.
    pub retries: Option<HttpRetry>,
    /// Fault injection.
    pub fault: Option<HttpFaultInjection>,
    /// A single mirror destination (see also `mirrors`).
    pub mirror: Option<Destination>,
    /// Mirror destinations, each with its own percentage.
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// Deprecated integer mirror percentage.
    pub mirror_percent: Option<u32>,
    /// The same deprecated setting under its proto name, which the CRD schema also lists.
    #[serde(rename = "mirror_percent")]
    pub mirror_percent_proto: Option<u32>,
    /// Fraction of traffic mirrored to `mirror`.
    pub mirror_percentage: Option<Percent>,
    /// CORS policy.
    pub cors_policy: Option<CorsPolicy>,
    /// Header edits for all destinations of this rule.
    pub headers: Option<Headers>,
}

/// One entry of `http[].match[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMatchRequest {
    /// Name, appended to the rule's name in logs.
    pub name: Option<String>,
    /// URI (path) match.
    pub uri: Option<StringMatch>,
    /// URI scheme match.
    pub scheme: Option<StringMatch>,
    /// Method match.
    pub method: Option<StringMatch>,
    /// Authority (Host) match.
    pub authority: Option<StringMatch>,
    /// Header matches; names are lowercase-compared; `{}` means "present".
    pub headers: BTreeMap<String, Option<StringMatch>>,
    /// Port the request was addressed to.
    pub port: Option<u32>,
    /// Labels the calling workload must carry.
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to (overrides the VirtualService's).
    pub gateways: Vec<String>,
    /// Query parameter matches.
    pub query_params: BTreeMap<String, Option<StringMatch>>,
    /// Match the URI case-insensitively.
    pub ignore_uri_case: bool,
    /// Headers that must *not* match.
    pub without_headers: BTreeMap<String, Option<StringMatch>>,
    /// Namespace of the calling workload.
    pub source_namespace: Option<String>,
    /// Stats prefix (Envoy only).
    pub stat_prefix: Option<String>,
}

/// `exact`, `prefix` or `regex` (RE2, full-string match); exactly one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(default)]
pub struct StringMatch {
    /// Exact string.
    pub exact: Option<String>,
    /// Plain string prefix.
    pub prefix: Option<String>,
    /// RE2 regular expression that must match the whole value.
    pub regex: Option<String>,
}

/// A weighted destination of `http[].route[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteDestination {
    /// Where to send the request.
    pub destination: Option<Destination>,
    /// Relative weight (share = weight / sum of weights).
    pub weight: i32,
    /// Header edits for this destination only.
    pub headers: Option<Headers>,
}

/// A service (and optionally a subset and port) to send traffic to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Destination {
    /// Service host name (short names are relative to the resource's namespace).
    pub host: String,
    /// DestinationRule subset name.
    pub subset: Option<String>,
    /// Port on the destination host.
    pub port: Option<PortSelector>,
}

/// `port: {number: N}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// `{value: 0.0..100.0}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Percent {
    /// Percentage.
    pub value: f64,
}

/// Header operations for requests and responses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Headers {
    /// Operations on the request.
    pub request: Option<HeaderOperations>,
    /// Operations on the response.
    pub response: Option<HeaderOperations>,
}

/// `set`, `add`, `remove`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HeaderOperations {
    /// Overwrite these headers.
    pub set: BTreeMap<String, String>,
    /// Append these headers.
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    pub remove: Vec<String>,
}

/// `http[].redirect`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRedirect {
    /// Replace the whole path.
    pub uri: Option<String>,
    /// Replace the authority.
    pub authority: Option<String>,
    /// Redirect to this port.
    pub port: Option<u32>,
    /// Derive the port from the scheme or request.
    pub derive_port: Option<RedirectPortSelection>,
    /// Replace the scheme (`http` or `https`).
    pub scheme: Option<String>,
    /// Status code (default 301).
    pub redirect_code: Option<u32>,
    /// Replace the matched prefix.
    pub prefix_rewrite: Option<String>,
}

/// `derivePort` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum RedirectPortSelection {
    /// 80 for http, 443 for https.
    FROM_PROTOCOL_DEFAULT,
    /// The port the request came in on.
    FROM_REQUEST_PORT,
}

/// `http[].directResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpDirectResponse {
    /// Status code.
    pub status: u32,
    /// Body.
    pub body: Option<HttpBody>,
}

/// A direct response body: `string` or base64 `bytes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpBody {
    /// Text body.
    pub string: Option<String>,
    /// Base64 body.
    pub bytes: Option<String>,
}

/// `http[].delegate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Delegate {
    /// Name of the delegate VirtualService.
    pub name: String,
    /// Its namespace (default: the root VirtualService's).
    pub namespace: Option<String>,
}

/// `http[].rewrite`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRewrite {
    /// Replace the matched prefix (or whole path for exact/regex matches).
    pub uri: Option<String>,
    /// Replace the authority.
    pub authority: Option<String>,
    /// Regex rewrite of the path.
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// `rewrite.uriRegexRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RegexRewrite {
    /// RE2 pattern.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Replacement, with `\1` style capture groups.
    pub rewrite: String,
}

/// `http[].retries`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRetry {
    /// Number of retries (0 disables retries).
    pub attempts: i32,
    /// Timeout of each attempt.
    pub per_try_timeout: Option<String>,
    /// Comma-separated conditions (Envoy's `x-envoy-retry-on` / `x-envoy-retry-grpc-on`).
    pub retry_on: Option<String>,
    /// Retry in other localities.
    pub retry_remote_localities: Option<bool>,
    /// Do not retry on hosts already tried.
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Base interval between retries.
    pub backoff: Option<String>,
}

/// `http[].fault`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpFaultInjection {
    /// Delay injection.
    pub delay: Option<FaultDelay>,
    /// Abort injection.
    pub abort: Option<FaultAbort>,
}

/// `fault.delay`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultDelay {
    /// Fixed delay.
    pub fixed_delay: Option<String>,
    /// Exponential delay (not supported by Istio either).
    pub exponential_delay: Option<String>,
    /// Share of requests delayed.
    pub percentage: Option<Percent>,
    /// Deprecated integer percentage.
    pub percent: Option<i32>,
}

/// `fault.abort`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultAbort {
    /// HTTP status to answer with.
    pub http_status: Option<i32>,
    /// gRPC status name to answer with.
    pub grpc_status: Option<String>,
    /// HTTP/2 error (not supported by Istio either).
    pub http2_error: Option<String>,
    /// Share of requests aborted.
    pub percentage: Option<Percent>,
}

/// `http[].mirrors[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HttpMirrorPolicy {
    /// Where copies go.
    pub destination: Option<Destination>,
    /// Share of requests copied (default 100).
    pub percentage: Option<Percent>,
}

/// `http[].corsPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsPolicy {
    /// Allowed origins.
    pub allow_origins: Vec<StringMatch>,
    /// Deprecated exact origins.
    pub allow_origin: Vec<String>,
    /// Allowed methods.
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    pub allow_headers: Vec<String>,
    /// Headers the browser may read.
    pub expose_headers: Vec<String>,
    /// Preflight cache time.
    pub max_age: Option<String>,
    /// Whether credentials are allowed.
    pub allow_credentials: Option<bool>,
    /// What to do with preflights that do not match.
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

/// `corsPolicy.unmatchedPreflights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum UnmatchedPreflights {
    /// Default: forward.
    UNSPECIFIED,
    /// Forward to the upstream.
    FORWARD,
    /// Answer without CORS headers.
    IGNORE,
}

/// One `tls[]` rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TlsRoute {
    /// Conditions.
    #[serde(rename = "match")]
    pub matches: Vec<TlsMatchAttributes>,
    /// Destinations.
    pub route: Vec<RouteDestination>,
}

/// One `tcp[]` rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TcpRoute {
    /// Conditions.
    #[serde(rename = "match")]
    pub matches: Vec<L4MatchAttributes>,
    /// Destinations.
    pub route: Vec<RouteDestination>,
}

/// `tls[].match[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsMatchAttributes {
    /// SNI names.
    pub sni_hosts: Vec<String>,
    /// Destination subnets.
    pub destination_subnets: Vec<String>,
    /// Port.
    pub port: Option<u32>,
    /// Labels of the caller.
    pub source_labels: BTreeMap<String, String>,
    /// Gateways.
    pub gateways: Vec<String>,
    /// Namespace of the caller.
    pub source_namespace: Option<String>,
}

/// `tcp[].match[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct L4MatchAttributes {
    /// Destination subnets.
    pub destination_subnets: Vec<String>,
    /// Port.
    pub port: Option<u32>,
    /// Source subnet (deprecated upstream).
    pub source_subnet: Option<String>,
    /// Labels of the caller.
    pub source_labels: BTreeMap<String, String>,
    /// Gateways.
    pub gateways: Vec<String>,
    /// Namespace of the caller.
    pub source_namespace: Option<String>,
}

/// A weighted L4 destination.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RouteDestination {
    /// Where to send the connection.
    pub destination: Option<Destination>,
    /// Relative weight.
    pub weight: i32,
}
