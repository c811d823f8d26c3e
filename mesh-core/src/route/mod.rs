//! Compiled routing rules: what a VirtualService's `http[]` means, ready for the request path.
//!
//! Semantics (<https://istio.io/latest/docs/reference/config/networking/virtual-service/>):
//! rules are evaluated in order and the first rule with a matching `match[]` entry wins; entries
//! of `match[]` are ORed and the fields of one entry ANDed; a rule without `match` matches every
//! request. Everything here is immutable and built once per snapshot.

use std::sync::Arc;
use std::time::Duration;

use crate::matcher::{Re2, StringMatcher};

mod construct;
mod fault;
mod headers;
mod retry_policy;

pub use fault::{AbortStatus, Fault, GRPC_STATUS_NAMES, Mirror, Percentage, grpc_status_code};
pub use headers::{FormattedHeader, HeaderEdits, HeaderOps};
pub use retry_policy::{RetryOn, RetryPolicy};

/// The host of a destination whose backend does not resolve (a Gateway API `backendRef` to a
/// missing Service, a kind that is not a Service, or another namespace without a
/// ReferenceGrant). The spec wants a 500 for the requests that destination's weight sends there,
/// while the rule's other destinations keep their shares; the decision answers it
/// ([`crate::decision::LocalReason::BackendNotFound`]), as Envoy answers a route to a cluster
/// that does not exist (Istio sets `cluster_not_found_response_code: INTERNAL_SERVER_ERROR`).
/// `.invalid` is reserved (RFC 6761): no registry or resolver can serve it.
pub const UNRESOLVED_BACKEND: &str = "unresolved-backend.invalid";

/// Which resource (and which rule of it) a compiled rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleOrigin {
    /// The kind of the resource.
    pub kind: RouteKind,
    /// Namespace of the resource.
    pub namespace: Arc<str>,
    /// Name of the resource.
    pub name: Arc<str>,
    /// Index of the rule in `http[]` (VirtualService) or `rules[]` (HTTPRoute, GRPCRoute).
    pub index: usize,
}

/// The kinds of resource compiled rules come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteKind {
    /// Istio's VirtualService (`http[]`).
    #[default]
    VirtualService,
    /// A Gateway API HTTPRoute (`rules[]`).
    HttpRoute,
    /// A Gateway API GRPCRoute (`rules[]`).
    GrpcRoute,
}

impl RouteKind {
    /// The Kubernetes kind: `VirtualService`, `HTTPRoute`, `GRPCRoute`.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::VirtualService => "VirtualService",
            RouteKind::HttpRoute => "HTTPRoute",
            RouteKind::GrpcRoute => "GRPCRoute",
        }
    }

    /// The field that lists the rules: `http` or `rules`.
    pub fn rules_field(self) -> &'static str {
        match self {
            RouteKind::VirtualService => "http",
            RouteKind::HttpRoute | RouteKind::GrpcRoute => "rules",
        }
    }
}

/// One compiled `http[]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRule {
    /// Where it came from.
    pub origin: RuleOrigin,
    /// `http[].name`.
    pub name: Option<Arc<str>>,
    /// Match entries (ORed). Empty matches every request.
    pub matches: Box<[RequestMatch]>,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Path / authority rewrite before forwarding (boxed: most rules have none, and the
    /// compiled rule stays small).
    pub rewrite: Option<Box<Rewrite>>,
    /// Overall timeout; `None` means no timeout (Istio's default).
    pub timeout: Option<Duration>,
    /// Retry policy; Istio's default when the rule sets none. Shared: the rules of one
    /// VirtualService that retry alike (most use the default) hold one policy.
    pub retries: Arc<RetryPolicy>,
    /// Fault injection (boxed: rare).
    pub fault: Option<Box<Fault>>,
    /// Mirrors, each with its percentage.
    pub mirrors: Box<[Mirror]>,
    /// CORS policy.
    pub cors: Option<Arc<CorsPolicy>>,
    /// Header edits for every destination of the rule. Shared: rules without edits hold one
    /// empty set.
    pub headers: Arc<HeaderEdits>,
}

/// One `match[]` entry: all present conditions must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestMatch {
    /// Index of this entry in the original `match[]` (for explanations).
    pub index: usize,
    /// `match[].name`.
    pub name: Option<Arc<str>>,
    /// Path condition (without the query string).
    pub uri: Option<StringMatcher>,
    /// Scheme condition.
    pub scheme: Option<StringMatcher>,
    /// Method condition.
    pub method: Option<StringMatcher>,
    /// Authority condition.
    pub authority: Option<StringMatcher>,
    /// Header conditions; names are lower case.
    pub headers: Box<[(Arc<str>, HeaderCondition)]>,
    /// Headers that must not match; names are lower case.
    pub without_headers: Box<[(Arc<str>, HeaderCondition)]>,
    /// Query parameter conditions.
    pub query_params: Box<[(Arc<str>, HeaderCondition)]>,
    /// Compare `uri` ignoring case.
    pub ignore_uri_case: bool,
    /// Destination port condition.
    pub port: Option<u16>,
    /// Labels the client must carry.
    pub source_labels: Box<[(Arc<str>, Arc<str>)]>,
    /// Namespace the client must be in.
    pub source_namespace: Option<Arc<str>>,
}

/// A header or query-parameter condition.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderCondition {
    /// `{}`: the header is present, whatever its value.
    Present,
    /// The value matches.
    Match(StringMatcher),
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Forward to one of weighted destinations.
    Route(WeightedDestinations),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    DirectResponse(DirectResponse),
    /// Delegate to another VirtualService. mesh-config merges a delegate's rules into the root
    /// when it compiles, so a snapshot built from Istio YAML never holds this; a router that meets
    /// it answers 404.
    Delegate {
        /// Namespace of the delegate.
        namespace: Arc<str>,
        /// Name of the delegate.
        name: Arc<str>,
    },
}

/// A destination service, subset and port. `host` is fully qualified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// FQDN of the service.
    pub host: Arc<str>,
    /// Subset name.
    pub subset: Option<Arc<str>>,
    /// Port.
    pub port: Option<u16>,
}

/// One weighted destination.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDestination {
    /// Where to.
    pub destination: Destination,
    /// Relative weight as written (a single destination with no weight gets 100).
    pub weight: u32,
    /// Header edits for this destination.
    pub headers: HeaderEdits,
}

/// Destinations with their weights as a cumulative table: a pick is one binary search.
///
/// A destination gets `weight / sum(weights)` of requests; weight 0 gets none. The table is
/// shared: a clone is one reference count, and rules that route alike can hold one table.
#[derive(Clone, PartialEq)]
pub struct WeightedDestinations {
    table: Arc<Weighted>,
}

#[derive(PartialEq)]
struct Weighted {
    destinations: Box<[RouteDestination]>,
    /// `cumulative[i]` = sum of weights `0..=i`.
    cumulative: Box<[u64]>,
}

impl std::fmt::Debug for WeightedDestinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightedDestinations")
            .field("destinations", &self.table.destinations)
            .field("cumulative", &self.table.cumulative)
            .finish()
    }
}

impl WeightedDestinations {
    /// Build from destinations. Istio gives a lone destination all traffic whatever its weight;
    /// with several, weights are relative.
    pub fn new(mut destinations: Vec<RouteDestination>) -> Self {
        if destinations.len() == 1 && destinations[0].weight == 0 {
            destinations[0].weight = 100;
        }
        let mut sum = 0u64;
        let cumulative = destinations
            .iter()
            .map(|d| {
                sum += u64::from(d.weight);
                sum
            })
            .collect();
        WeightedDestinations { table: Arc::new(Weighted { destinations: destinations.into_boxed_slice(), cumulative }) }
    }

    /// All destinations, in config order.
    pub fn destinations(&self) -> &[RouteDestination] {
        &self.table.destinations
    }

    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        self.table.cumulative.last().copied().unwrap_or(0)
    }

    /// The destination for a uniform random value `r` (taken modulo `total()`).
    pub fn pick(&self, r: u64) -> Option<&RouteDestination> {
        self.pick_index(r).map(|i| &self.table.destinations[i])
    }

    /// The index of the destination for a uniform random value `r` (taken modulo `total()`);
    /// `None` when every weight is 0.
    pub fn pick_index(&self, r: u64) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let r = r % total;
        Some(self.table.cumulative.partition_point(|&c| c <= r)).filter(|i| *i < self.table.destinations.len())
    }
}

/// Port of a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPort {
    /// Keep whatever the request had.
    Keep,
    /// This port.
    Fixed(u16),
    /// 80 for http, 443 for https.
    FromProtocolDefault,
    /// The port the request came in on.
    FromRequestPort,
}

/// A compiled `redirect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// New path (replaces the whole path).
    pub uri: Option<Arc<str>>,
    /// Replace the matched prefix with this.
    pub prefix_rewrite: Option<Arc<str>>,
    /// New authority.
    pub authority: Option<Arc<str>>,
    /// New scheme.
    pub scheme: Option<Arc<str>>,
    /// Port handling.
    pub port: RedirectPort,
    /// Status code (301 by default).
    pub code: u16,
}

/// A compiled `directResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectResponse {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Option<Arc<[u8]>>,
}

/// A compiled `rewrite`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    /// Replace the matched prefix (or the whole path for exact/regex matches).
    pub uri: Option<Arc<str>>,
    /// Regex rewrite of the path.
    pub uri_regex: Option<RegexRewrite>,
    /// New authority.
    pub authority: Option<Arc<str>>,
}

/// `uriRegexRewrite`: every match of `pattern` in the path is replaced by the substitution, in
/// which `\1`-style groups refer to captures (Envoy's `regex_rewrite`).
#[derive(Clone)]
pub struct RegexRewrite {
    /// The pattern as written.
    pub pattern_source: Arc<str>,
    /// The substitution as written (`\1/instance/\2`).
    pub rewrite: Arc<str>,
    regex: regex::Regex,
    substitution: Arc<str>,
}

impl RegexRewrite {
    /// Compile a pattern (RE2 syntax, not anchored) and a substitution with `\N` groups.
    pub fn new(pattern: &str, rewrite: &str) -> Result<Self, crate::matcher::Re2Error> {
        let regex = Re2::unanchored(pattern)?;
        let mut substitution = String::with_capacity(rewrite.len() + 8);
        let mut chars = rewrite.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(*d);
                        chars.next();
                    }
                    substitution.push_str(&format!("${{{digits}}}"));
                }
                '$' => substitution.push_str("$$"),
                other => substitution.push(other),
            }
        }
        Ok(RegexRewrite {
            pattern_source: Arc::from(pattern),
            rewrite: Arc::from(rewrite),
            regex,
            substitution: Arc::from(substitution),
        })
    }

    /// Apply to a path.
    pub fn apply(&self, path: &str) -> String {
        self.regex.replace_all(path, &*self.substitution).into_owned()
    }
}

impl std::fmt::Debug for RegexRewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegexRewrite({:?} -> {:?})", &*self.pattern_source, &*self.rewrite)
    }
}

impl PartialEq for RegexRewrite {
    fn eq(&self, other: &Self) -> bool {
        self.pattern_source == other.pattern_source && self.rewrite == other.rewrite
    }
}

/// A compiled `corsPolicy`.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsPolicy {
    /// Allowed origins.
    pub allow_origins: Box<[StringMatcher]>,
    /// Allowed methods.
    pub allow_methods: Box<[Arc<str>]>,
    /// Allowed request headers.
    pub allow_headers: Box<[Arc<str>]>,
    /// Exposed response headers.
    pub expose_headers: Box<[Arc<str>]>,
    /// Preflight cache time.
    pub max_age: Option<Duration>,
    /// Allow credentials.
    pub allow_credentials: Option<bool>,
    /// Forward preflights that do not match (default) or answer them without CORS headers.
    pub forward_unmatched_preflights: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(subset: &str, weight: u32) -> RouteDestination {
        RouteDestination {
            destination: Destination {
                host: Arc::from("reviews.default.svc.cluster.local"),
                subset: Some(Arc::from(subset)),
                port: None,
            },
            weight,
            headers: HeaderEdits::default(),
        }
    }

    #[test]
    fn cumulative_weights() {
        let w = WeightedDestinations::new(vec![rd("v1", 90), rd("v2", 0), rd("v3", 10)]);
        assert_eq!(w.total(), 100);
        let pick = |r| w.pick(r).and_then(|d| d.destination.subset.clone()).map(|s| s.to_string());
        assert_eq!(pick(0).as_deref(), Some("v1"));
        assert_eq!(pick(89).as_deref(), Some("v1"));
        assert_eq!(pick(90).as_deref(), Some("v3"), "weight 0 never gets traffic");
        assert_eq!(pick(99).as_deref(), Some("v3"));
        let single = WeightedDestinations::new(vec![rd("v1", 0)]);
        assert_eq!(single.total(), 100, "a lone destination takes everything");
    }

    #[test]
    fn regex_rewrite_uses_capture_groups() {
        let rw = RegexRewrite::new("^/service/([^/]+)(/.*)$", "\\2/instance/\\1").expect("valid");
        assert_eq!(rw.apply("/service/foo/v1/api"), "/v1/api/instance/foo");
        let rw = RegexRewrite::new("/old", "/new").expect("valid");
        assert_eq!(rw.apply("/a/old/b/old"), "/a/new/b/new", "every match is replaced");
    }

    #[test]
    fn retry_on_round_trip() {
        let on = RetryOn::parse("gateway-error,connect-failure,503,409").expect("valid");
        assert!(on.gateway_error && on.connect_failure && on.retriable_status_codes);
        assert_eq!(&*on.status_codes, &[503, 409]);
        assert!(RetryOn::parse("bogus").is_err());
        assert_eq!(
            RetryOn::istio_default().to_istio_string(),
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
        );
    }
}
