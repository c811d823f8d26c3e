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
mod retry_policy;

pub use retry_policy::{RetryOn, RetryPolicy};

/// Which VirtualService (and which rule of it) a compiled rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleOrigin {
    /// Namespace of the VirtualService.
    pub namespace: Arc<str>,
    /// Name of the VirtualService.
    pub name: Arc<str>,
    /// Index of the rule in `http[]`.
    pub index: usize,
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
    /// Path / authority rewrite before forwarding.
    pub rewrite: Option<Rewrite>,
    /// Overall timeout; `None` means no timeout (Istio's default).
    pub timeout: Option<Duration>,
    /// Retry policy; Istio's default when the rule sets none.
    pub retries: RetryPolicy,
    /// Fault injection.
    pub fault: Option<Fault>,
    /// Mirrors, each with its percentage.
    pub mirrors: Box<[Mirror]>,
    /// CORS policy.
    pub cors: Option<Arc<CorsPolicy>>,
    /// Header edits for every destination of the rule.
    pub headers: HeaderEdits,
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

/// A percentage in 0..=100, as configured.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percentage(pub f64);

impl Percentage {
    /// Everything.
    pub const ALL: Percentage = Percentage(100.0);

    /// Does a uniform random `r` in `0.0..1.0` fall within this percentage?
    pub fn hit(self, r: f64) -> bool {
        r * 100.0 < self.0
    }
}

/// gRPC status names in code order (`OK` is 0, `UNAVAILABLE` 14), as gRPC defines them
/// (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>); Istio's `fault.abort.grpcStatus`
/// takes one of these names.
pub const GRPC_STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code of a gRPC status name (`UNAVAILABLE` → 14; any case; a number stands for itself).
pub fn grpc_status_code(name: &str) -> Option<u32> {
    GRPC_STATUS_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| i as u32).or_else(|| name.parse().ok())
}

/// How a fault abort answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortStatus {
    /// An HTTP status.
    Http(u16),
    /// A gRPC status name (`UNAVAILABLE`).
    Grpc(Arc<str>),
}

/// A compiled `fault`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Fixed delay and the share of requests delayed.
    pub delay: Option<(Duration, Percentage)>,
    /// Abort status and the share of requests aborted.
    pub abort: Option<(AbortStatus, Percentage)>,
}

impl Fault {
    /// What to inject for one request, given two uniform randoms in `0.0..1.0` (one per fault kind).
    pub fn decide(&self, r_delay: f64, r_abort: f64) -> (Option<Duration>, Option<&AbortStatus>) {
        let delay = self.delay.filter(|(_, p)| p.hit(r_delay)).map(|(d, _)| d);
        let abort = self.abort.as_ref().filter(|(_, p)| p.hit(r_abort)).map(|(s, _)| s);
        (delay, abort)
    }
}

/// One mirror.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// Where copies go.
    pub destination: Destination,
    /// Share of requests copied.
    pub percentage: Percentage,
}

impl Mirror {
    /// Is this request copied, given a uniform random in `0.0..1.0`?
    pub fn selected(&self, r: f64) -> bool {
        self.percentage.hit(r)
    }
}

/// Header edits for requests and responses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderEdits {
    /// Request edits.
    pub request: HeaderOps,
    /// Response edits.
    pub response: HeaderOps,
}

impl HeaderEdits {
    /// No edits at all?
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// `set` / `add` / `remove`, with names and values parsed once at compile time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderOps {
    /// Overwrite (or add).
    pub set: Box<[(http::HeaderName, http::HeaderValue)]>,
    /// Append (or add).
    pub add: Box<[(http::HeaderName, http::HeaderValue)]>,
    /// Remove.
    pub remove: Box<[http::HeaderName]>,
    /// `set` and `add` entries whose values hold Envoy `%VARIABLES%`, expanded per request
    /// ([`crate::header_format`]); `append` for `add`.
    pub formatted: Box<[FormattedHeader]>,
}

/// A `set` or `add` entry whose value is expanded per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormattedHeader {
    /// The header.
    pub name: http::HeaderName,
    /// The value.
    pub format: crate::header_format::HeaderFormat,
    /// `add` (append) rather than `set` (overwrite).
    pub append: bool,
}

impl HeaderOps {
    /// No operations?
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty() && self.formatted.is_empty()
    }

    /// Apply to a header map as Envoy does: removals first, then `set` (overwrite) and `add`
    /// (append); values with variables are expanded with nothing known about the connection
    /// (see [`HeaderOps::apply_with`]).
    #[inline]
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        if !self.is_empty() {
            self.apply_with(headers, &crate::header_format::HeaderContext::default());
        }
    }

    /// [`HeaderOps::apply`], expanding `%VARIABLES%` from `ctx` (an empty expansion adds
    /// nothing, as in Envoy).
    pub fn apply_with(&self, headers: &mut http::HeaderMap, ctx: &crate::header_format::HeaderContext<'_>) {
        for name in self.remove.iter() {
            headers.remove(name);
        }
        for (name, value) in self.set.iter() {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in self.add.iter() {
            headers.append(name.clone(), value.clone());
        }
        for f in self.formatted.iter() {
            let Some(value) = f.format.render(ctx, headers) else { continue };
            if f.append {
                headers.append(f.name.clone(), value);
            } else {
                headers.insert(f.name.clone(), value);
            }
        }
    }
}

impl HeaderEdits {
    /// Apply request edits of a destination and then of its rule (the rule's win on conflicts,
    /// as Envoy applies the less specific level last).
    pub fn apply_request(destination: &HeaderEdits, rule: &HeaderEdits, headers: &mut http::HeaderMap) {
        destination.request.apply(headers);
        rule.request.apply(headers);
    }

    /// Apply response edits, in the same order.
    pub fn apply_response(destination: &HeaderEdits, rule: &HeaderEdits, headers: &mut http::HeaderMap) {
        destination.response.apply(headers);
        rule.response.apply(headers);
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

#[cfg(test)]
mod fault_tests {
    use super::*;

    #[test]
    fn header_edits_remove_then_set_then_add() {
        let name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).expect("name");
        let value = |v: &str| http::HeaderValue::from_str(v).expect("value");
        let ops = HeaderOps {
            set: Box::new([(name("x-set"), value("new"))]),
            add: Box::new([(name("x-add"), value("two"))]),
            remove: Box::new([name("x-gone")]),
            formatted: Box::new([]),
        };
        let mut h = http::HeaderMap::new();
        h.insert("x-set", value("old"));
        h.insert("x-add", value("one"));
        h.insert("x-gone", value("bye"));
        ops.apply(&mut h);
        assert_eq!(h.get("x-set"), Some(&value("new")));
        assert_eq!(h.get_all("x-add").iter().count(), 2);
        assert!(h.get("x-gone").is_none());
    }

    #[test]
    fn faults_and_mirrors_by_percentage() {
        let f = Fault {
            delay: Some((Duration::from_secs(7), Percentage(100.0))),
            abort: Some((AbortStatus::Http(500), Percentage(10.0))),
        };
        assert_eq!(f.decide(0.999, 0.5), (Some(Duration::from_secs(7)), None));
        assert_eq!(f.decide(0.0, 0.05).1, Some(&AbortStatus::Http(500)));
        let m = Mirror {
            destination: Destination { host: Arc::from("h"), subset: None, port: None },
            percentage: Percentage(0.0),
        };
        assert!(!m.selected(0.0), "0% mirrors nothing");
    }
}
