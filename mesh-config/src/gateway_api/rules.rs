//! An HTTPRoute's rules as compiled rules, and their order.
//!
//! Each `(rule, match)` pair becomes one compiled rule with one match entry, as Istio converts
//! them (`pilot/pkg/config/kube/gateway/conversion.go`, `convertHTTPRoute`: "we always generate
//! only one match"), so that the spec's precedence can order matches of different rules and
//! routes (<https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule>, `matches`):
//!
//! 1. an exact path before a prefix before a regular expression (Istio's `getURIRank`), then the
//!    longer path value (the prefix without its trailing `/`);
//! 2. a method match before none;
//! 3. more header matches first; 4. more query parameter matches first;
//! 5. then the older route (`creationTimestamp`), then namespace and name alphabetically
//!    (`sortRoutesByCreationTime`), then the rule's and the match's order in the route.
//!
//! Matches: `PathPrefix` is a path-segment prefix (`/v2` matches `/v2/x`, not `/v2x`; a
//! trailing `/` ignored; `/` a plain prefix), `Exact`, `RegularExpression` (RE2); header names
//! case-insensitive, query parameter names case-sensitive; `method` exact. Filters as Istio maps
//! them: `RequestHeaderModifier` / `ResponseHeaderModifier` → header edits of the rule (or of one
//! backend), `RequestRedirect` → a redirect (302 by default; without `port`, the request's port,
//! or the scheme's default port when `scheme` is set), `URLRewrite` → a rewrite
//! (`ReplacePrefixMatch` over the matched prefix, `ReplaceFullPath` the whole path, `hostname` the
//! authority), `RequestMirror` → mirrors (`percent` or `fraction`, all when neither). Timeouts
//! (GEP-1742): `request` is the route timeout; `backendRequest` the per-try timeout when `retry`
//! is set, else the route timeout (as Istio). Retries (GEP-1731): `attempts` (2 when absent),
//! `connect-failure,refused-stream,unavailable,cancelled,reset` plus the listed `codes`,
//! `backoff`; a rule without `retry` takes the mesh's default retry policy, as a VirtualService
//! does. `reset` (Envoy's "no response: disconnect, reset, per-try timeout") is one more than
//! Istio's `conversion.go` lists: the API says "Implementations SHOULD retry on connection errors
//! (disconnect, reset, timeout, TCP failure) if a retry stanza is configured" (`HTTPRouteRetry`
//! in `apis/v1/httproute_types.go`), and the conformance test `HTTPRouteRetryWithTimeouts`
//! (feature `HTTPRouteRetryBackendTimeout`) expects a `backendRequest` timeout to be retried
//! without any `codes`; with Istio's four conditions Envoy retries no per-try timeout. No
//! backend with a weight above 0, or none that resolves (and no redirect), answers 500.

use std::sync::Arc;
use std::time::Duration;

use mesh_core::matcher::{Re2, StringMatcher};
use mesh_core::route::{
    self, CorsPolicy, DirectResponse, HeaderCondition, HeaderEdits, HeaderOps, HttpRule, Mirror, Percentage, Redirect,
    RedirectPort, RequestMatch, RetryOn, RetryPolicy, Rewrite, RouteAction, RouteDestination, RouteKind, RuleOrigin,
    WeightedDestinations,
};

use crate::duration::parse_duration;
use crate::types::gateway_api::{
    BackendObjectRef, GrpcRoute, GrpcRouteMatch, GrpcRouteRule, HttpBackendRef, HttpCorsFilter, HttpHeaderFilter,
    HttpHeaderMatch, HttpPathModifier, HttpRequestMirrorFilter, HttpRoute, HttpRouteMatch, HttpRouteRule,
};

/// Why a backend reference does not resolve (the route's `ResolvedRefs` condition reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendProblem {
    /// Not a core `Service` (`InvalidKind`).
    InvalidKind,
    /// No such Service (`BackendNotFound`).
    NotFound,
    /// In another namespace without a ReferenceGrant (`RefNotPermitted`).
    NotPermitted,
    /// A backend's filter other than a header modifier (`InvalidFilter`): Istio's
    /// `buildHTTPDestination` refuses it and leaves the rule out; so does meshwork.
    InvalidFilter,
}

impl BackendProblem {
    /// The condition reason the spec gives it.
    pub fn reason(self) -> &'static str {
        match self {
            BackendProblem::InvalidKind => "InvalidKind",
            BackendProblem::NotFound => "BackendNotFound",
            BackendProblem::NotPermitted => "RefNotPermitted",
            BackendProblem::InvalidFilter => "InvalidFilter",
        }
    }

    /// The condition message.
    pub fn message(self) -> &'static str {
        match self {
            BackendProblem::InvalidFilter => {
                "a backendRef filter other than RequestHeaderModifier or ResponseHeaderModifier: the rule is not served"
            }
            _ => "a backend reference does not resolve",
        }
    }
}

/// What the converter needs to know about the world: which backends resolve.
pub trait Backends {
    /// The fully qualified host of `backend` referred to from a route of `route_kind`
    /// (`HTTPRoute`, `GRPCRoute`) in `route_namespace`, or why it does not resolve.
    fn resolve(
        &self,
        route_kind: &str,
        route_namespace: &str,
        backend: &BackendObjectRef,
    ) -> Result<Arc<str>, BackendProblem>;
}

/// One compiled rule with the keys that order it.
#[derive(Debug, Clone)]
pub(crate) struct Ordered {
    pub(crate) key: SortKey,
    pub(crate) rule: Arc<HttpRule>,
}

/// Precedence of one match: smaller sorts first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey {
    /// 0 exact, 1 prefix, 2 regex, 3 none.
    path_rank: u8,
    /// Longer first.
    path_len: std::cmp::Reverse<usize>,
    /// Method match first (false sorts before true, so this is "has no method").
    no_method: bool,
    headers: std::cmp::Reverse<usize>,
    query: std::cmp::Reverse<usize>,
    /// Route age, namespace, name, rule index, match index.
    pub(crate) created: String,
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Arc<str>,
    rule: usize,
    entry: usize,
}

/// The problems found while converting one route (for its `ResolvedRefs` condition).
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub(crate) rules: Vec<Ordered>,
    pub(crate) backend_problem: Option<BackendProblem>,
}

/// Convert every rule of `route` (namespace, name, creation timestamp).
pub(crate) fn convert(
    namespace: &Arc<str>,
    name: &Arc<str>,
    created: &str,
    route: &HttpRoute,
    backends: &dyn Backends,
    default_retries: &Arc<RetryPolicy>,
) -> Converted {
    let mut out = Converted::default();
    let default_rules = [HttpRouteRule::default()];
    let rules: &[HttpRouteRule] = route.rules.as_deref().unwrap_or(&default_rules);
    for (index, r) in rules.iter().enumerate() {
        let default_match = [HttpRouteMatch::default()];
        let matches: &[HttpRouteMatch] = match &r.matches {
            Some(m) if !m.is_empty() => m,
            _ => &default_match,
        };
        let Some(template) =
            rule("HTTPRoute", namespace, name, index, r, backends, default_retries, &mut out.backend_problem)
        else {
            continue;
        };
        for (entry, m) in matches.iter().enumerate() {
            let Some(request_match) = request_match(entry, m) else { continue };
            let key = sort_key(&request_match, created, namespace, name, index, entry);
            let mut compiled = template.clone();
            compiled.matches = Box::new([request_match]);
            out.rules.push(Ordered { key, rule: Arc::new(compiled) });
        }
    }
    out
}

/// Convert every rule of a GRPCRoute, as Istio's `convertGRPCRoute`: a method match becomes a
/// path match (`createGRPCURIMatch`: service and method → exact `/service/method`; service only →
/// the `/service` segment prefix; method only → regex `/[^/]+/method`; `RegularExpression` →
/// regex `/service/method` with `[^/]+` or `.+` for a missing part), headers as for HTTP;
/// header modifiers and mirrors apply, and no timeout or retry field exists.
pub(crate) fn convert_grpc(
    namespace: &Arc<str>,
    name: &Arc<str>,
    created: &str,
    route: &GrpcRoute,
    backends: &dyn Backends,
    default_retries: &Arc<RetryPolicy>,
) -> Converted {
    let mut out = Converted::default();
    let default_rules = [GrpcRouteRule::default()];
    let rules: &[GrpcRouteRule] = if route.rules.is_empty() { &default_rules } else { &route.rules };
    for (index, r) in rules.iter().enumerate() {
        let as_http = HttpRouteRule {
            name: r.name.clone(),
            filters: r.filters.clone(),
            backend_refs: r.backend_refs.clone(),
            ..HttpRouteRule::default()
        };
        let Some(template) =
            rule("GRPCRoute", namespace, name, index, &as_http, backends, default_retries, &mut out.backend_problem)
        else {
            continue;
        };
        let default_match = [GrpcRouteMatch::default()];
        let matches: &[GrpcRouteMatch] = if r.matches.is_empty() { &default_match } else { &r.matches };
        for (entry, m) in matches.iter().enumerate() {
            let Some(request_match) = grpc_match(entry, m) else { continue };
            let key = sort_key(&request_match, created, namespace, name, index, entry);
            let mut compiled = template.clone();
            compiled.matches = Box::new([request_match]);
            out.rules.push(Ordered { key, rule: Arc::new(compiled) });
        }
    }
    out
}

fn grpc_match(index: usize, m: &GrpcRouteMatch) -> Option<RequestMatch> {
    let uri = match &m.method {
        None => None,
        Some(method) => {
            let regex = method.kind.as_deref() == Some("RegularExpression");
            let (svc, meth) = (method.service.as_deref(), method.method.as_deref());
            Some(match (regex, svc, meth) {
                (_, None, None) => return None,
                (false, Some(s), None) => StringMatcher::PathPrefix(Arc::from(format!("/{s}"))),
                (false, Some(s), Some(me)) => StringMatcher::Exact(Arc::from(format!("/{s}/{me}"))),
                (_, None, Some(me)) => StringMatcher::Regex(Re2::new(&format!("/[^/]+/{me}")).ok()?),
                (true, Some(s), None) => StringMatcher::Regex(Re2::new(&format!("/{s}/.+")).ok()?),
                (true, Some(s), Some(me)) => StringMatcher::Regex(Re2::new(&format!("/{s}/{me}")).ok()?),
            })
        }
    };
    let as_http = HttpRouteMatch { headers: m.headers.clone(), ..HttpRouteMatch::default() };
    let mut out = request_match(index, &as_http)?;
    out.uri = uri;
    Some(out)
}

fn sort_key(m: &RequestMatch, created: &str, ns: &Arc<str>, name: &Arc<str>, rule: usize, entry: usize) -> SortKey {
    let (path_rank, path_len) = match &m.uri {
        Some(StringMatcher::Exact(p)) => (0, p.len()),
        Some(StringMatcher::Prefix(p) | StringMatcher::PathPrefix(p)) => (1, p.len()),
        Some(StringMatcher::Regex(re)) => (2, re.as_str().len()),
        None => (3, 0),
    };
    SortKey {
        path_rank,
        path_len: std::cmp::Reverse(path_len),
        no_method: m.method.is_none(),
        headers: std::cmp::Reverse(m.headers.len()),
        query: std::cmp::Reverse(m.query_params.len()),
        created: created.to_string(),
        namespace: ns.clone(),
        name: name.clone(),
        rule,
        entry,
    }
}

/// One match entry; `None` when a regular expression does not compile (validation reports it).
fn request_match(index: usize, m: &HttpRouteMatch) -> Option<RequestMatch> {
    let (kind, value) = match &m.path {
        Some(p) => (p.kind.as_deref().unwrap_or("PathPrefix"), p.value.as_deref().unwrap_or("/")),
        None => ("PathPrefix", "/"),
    };
    let uri = match kind {
        "Exact" => StringMatcher::Exact(Arc::from(value)),
        "RegularExpression" => StringMatcher::Regex(Re2::new(value).ok()?),
        _ => {
            let trimmed = value.trim_end_matches('/');
            if trimmed.is_empty() {
                StringMatcher::Prefix(Arc::from("/"))
            } else {
                StringMatcher::PathPrefix(Arc::from(trimmed))
            }
        }
    };
    let condition = |h: &HttpHeaderMatch| -> Option<HeaderCondition> {
        Some(HeaderCondition::Match(match h.kind.as_deref() {
            Some("RegularExpression") => StringMatcher::Regex(Re2::new(&h.value).ok()?),
            _ => StringMatcher::Exact(Arc::from(h.value.as_str())),
        }))
    };
    let mut headers = Vec::new();
    for h in &m.headers {
        let name = h.name.to_ascii_lowercase();
        // The spec: only the first of several matches for one header name counts.
        if headers.iter().any(|(n, _): &(Arc<str>, HeaderCondition)| **n == *name) {
            continue;
        }
        headers.push((Arc::from(name), condition(h)?));
    }
    let mut query_params = Vec::new();
    for q in &m.query_params {
        if query_params.iter().any(|(n, _): &(Arc<str>, HeaderCondition)| **n == *q.name) {
            continue;
        }
        query_params.push((Arc::from(q.name.as_str()), condition(q)?));
    }
    Some(RequestMatch {
        index,
        uri: Some(uri),
        method: m.method.as_deref().map(|v| StringMatcher::Exact(Arc::from(v))),
        headers: headers.into_boxed_slice(),
        query_params: query_params.into_boxed_slice(),
        ..RequestMatch::default()
    })
}

fn header_ops(filter: Option<&HttpHeaderFilter>) -> HeaderOps {
    let Some(f) = filter else { return HeaderOps::default() };
    let pair = |name: &str, value: &str| {
        Some((http::HeaderName::from_bytes(name.as_bytes()).ok()?, http::HeaderValue::from_str(value).ok()?))
    };
    HeaderOps {
        set: f.set.iter().filter_map(|h| pair(&h.name, &h.value)).collect(),
        add: f.add.iter().filter_map(|h| pair(&h.name, &h.value)).collect(),
        remove: f.remove.iter().filter_map(|n| http::HeaderName::from_bytes(n.as_bytes()).ok()).collect(),
        formatted: Box::new([]),
    }
}

fn mirror(
    kind: &str,
    ns: &str,
    f: &HttpRequestMirrorFilter,
    backends: &dyn Backends,
    problem: &mut Option<BackendProblem>,
) -> Option<Mirror> {
    let host = match backends.resolve(kind, ns, &f.backend_ref) {
        Ok(h) => h,
        Err(p) => {
            problem.get_or_insert(p);
            return None;
        }
    };
    let percentage = match (&f.percent, &f.fraction) {
        (Some(p), _) => Percentage((*p as f64).clamp(0.0, 100.0)),
        (None, Some(fr)) => {
            let d = fr.denominator.unwrap_or(100).max(1) as f64;
            Percentage((fr.numerator as f64 * 100.0 / d).clamp(0.0, 100.0))
        }
        (None, None) => Percentage::ALL,
    };
    let destination = route::Destination { host, subset: None, port: f.backend_ref.port.and_then(port) };
    Some(Mirror { destination, percentage })
}

fn port(p: u32) -> Option<u16> {
    u16::try_from(p).ok()
}

fn backend_object(b: &HttpBackendRef) -> BackendObjectRef {
    BackendObjectRef {
        group: b.group.clone(),
        kind: b.kind.clone(),
        name: b.name.clone(),
        namespace: b.namespace.clone(),
        port: b.port,
    }
}

fn duration(text: &Option<String>) -> Option<Duration> {
    text.as_deref().and_then(|t| parse_duration(t).ok()).filter(|d| !d.is_zero())
}

/// The compiled rule for `r` of a route of `kind`, without its match entries; `None` when the
/// rule is not served (a backend filter Istio refuses, [`BackendProblem::InvalidFilter`]).
#[allow(clippy::too_many_arguments)]
fn rule(
    kind: &str,
    ns: &Arc<str>,
    name: &Arc<str>,
    index: usize,
    r: &HttpRouteRule,
    backends: &dyn Backends,
    default_retries: &Arc<RetryPolicy>,
    problem: &mut Option<BackendProblem>,
) -> Option<HttpRule> {
    let mut headers = HeaderEdits::default();
    let mut redirect = None;
    let mut rewrite = None;
    let mut mirrors = Vec::new();
    let mut cors = None;
    for f in &r.filters {
        match f.kind.as_str() {
            "RequestHeaderModifier" => headers.request = header_ops(f.request_header_modifier.as_ref()),
            "ResponseHeaderModifier" => headers.response = header_ops(f.response_header_modifier.as_ref()),
            "RequestRedirect" => {
                if let Some(rr) = &f.request_redirect {
                    let (uri, prefix_rewrite) = path_modifier(rr.path.as_ref(), false);
                    redirect = Some(Redirect {
                        uri,
                        prefix_rewrite,
                        authority: rr.hostname.as_deref().map(Arc::from),
                        scheme: rr.scheme.as_deref().map(Arc::from),
                        port: match (rr.port.and_then(port), &rr.scheme) {
                            (Some(p), _) => RedirectPort::Fixed(p),
                            (None, Some(_)) => RedirectPort::FromProtocolDefault,
                            (None, None) => RedirectPort::FromRequestPort,
                        },
                        code: rr.status_code.unwrap_or(302),
                    });
                }
            }
            "URLRewrite" => {
                if let Some(u) = &f.url_rewrite {
                    let (uri, _) = path_modifier(u.path.as_ref(), true);
                    let uri_regex = u.path.as_ref().filter(|p| p.kind == "ReplaceFullPath").and_then(|p| {
                        route::RegexRewrite::new("/.*", p.replace_full_path.as_deref().unwrap_or("/")).ok()
                    });
                    let authority = u.hostname.as_deref().map(Arc::from);
                    if uri.is_some() || uri_regex.is_some() || authority.is_some() {
                        rewrite = Some(Box::new(Rewrite { uri, uri_regex, authority }));
                    }
                }
            }
            "RequestMirror" => {
                if let Some(m) = &f.request_mirror {
                    mirrors.extend(mirror(kind, ns, m, backends, problem));
                }
            }
            "CORS" => cors = f.cors.as_ref().map(|c| Arc::new(cors_policy(c))),
            // ExtensionRef and others: reported by validation, not applied.
            _ => {}
        }
    }
    let action = match redirect {
        Some(r) => RouteAction::Redirect(r),
        None => destinations(kind, ns, r, backends, problem)?,
    };
    let timeout = duration(&r.timeouts.as_ref().and_then(|t| t.request.clone()));
    let backend_timeout = duration(&r.timeouts.as_ref().and_then(|t| t.backend_request.clone()));
    let (retries, timeout) = match &r.retry {
        Some(retry) => {
            let attempts = retry.attempts.unwrap_or(2).clamp(0, i64::from(u32::MAX)) as u32;
            let mut on = String::from("connect-failure,refused-stream,unavailable,cancelled,reset");
            for c in &retry.codes {
                on.push_str(&format!(",{c}"));
            }
            let policy = RetryPolicy {
                attempts,
                per_try_timeout: backend_timeout,
                retry_on: RetryOn::parse(&on).unwrap_or_else(|_| RetryOn::istio_default()),
                backoff: duration(&retry.backoff),
                configured: true,
            };
            (Arc::new(policy), timeout)
        }
        // Istio: without `retry`, `backendRequest` becomes the route timeout.
        None => (default_retries.clone(), backend_timeout.or(timeout)),
    };
    Some(HttpRule {
        origin: RuleOrigin {
            kind: if kind == "GRPCRoute" { RouteKind::GrpcRoute } else { RouteKind::HttpRoute },
            namespace: ns.clone(),
            name: name.clone(),
            index,
        },
        name: r.name.as_deref().map(Arc::from),
        matches: Box::new([]),
        action,
        rewrite,
        timeout,
        retries,
        fault: None,
        mirrors: mirrors.into_boxed_slice(),
        cors,
        headers: Arc::new(headers),
    })
}

/// The `CORS` filter as Istio's `createCorsFilter` translates it: an origin `*` is any origin of
/// the form `scheme://host[:port]`, an origin without `*` exact, one trailing `*` a prefix, other
/// wildcards a regex; `maxAge` (5 s when absent, the CRD's default) only when positive;
/// preflights that do not match are answered without CORS headers (`IGNORE`).
fn cors_policy(c: &HttpCorsFilter) -> CorsPolicy {
    let origins = c
        .allow_origins
        .iter()
        .filter(|o| !o.is_empty())
        .filter_map(|o| {
            if o == "*" {
                return Re2::new(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s?#]+$").ok().map(StringMatcher::Regex);
            }
            if !o.contains('*') {
                return Some(StringMatcher::Exact(Arc::from(o.as_str())));
            }
            if o.matches('*').count() == 1
                && let Some(prefix) = o.strip_suffix('*')
            {
                return Some(StringMatcher::Prefix(Arc::from(prefix)));
            }
            let pattern: String = o
                .chars()
                .map(|ch| match ch {
                    '*' => ".*".to_string(),
                    c if c.is_ascii_punctuation() && !matches!(c, '-' | '_' | ':' | '/') => format!("\\{c}"),
                    c => c.to_string(),
                })
                .collect();
            Re2::new(&format!("^{pattern}$")).ok().map(StringMatcher::Regex)
        })
        .collect();
    let list = |items: &[String]| items.iter().map(|s| Arc::from(s.as_str())).collect();
    CorsPolicy {
        allow_origins: origins,
        allow_methods: list(&c.allow_methods),
        allow_headers: list(&c.allow_headers),
        expose_headers: list(&c.expose_headers),
        max_age: Some(c.max_age.unwrap_or(5)).filter(|s| *s > 0).map(|s| Duration::from_secs(s as u64)),
        allow_credentials: c.allow_credentials.filter(|b| *b),
        forward_unmatched_preflights: false,
    }
}

/// `(uri, prefix)` of a path modifier: `ReplaceFullPath` → the whole path (redirects only; a
/// rewrite takes it as a regex), `ReplacePrefixMatch` → the new prefix (for a rewrite without its
/// trailing `/`, `/` when that leaves nothing, as Istio's `createRewriteFilter`).
fn path_modifier(p: Option<&HttpPathModifier>, rewrite: bool) -> (Option<Arc<str>>, Option<Arc<str>>) {
    let Some(p) = p else { return (None, None) };
    match p.kind.as_str() {
        "ReplaceFullPath" if !rewrite => (p.replace_full_path.as_deref().map(Arc::from), None),
        "ReplacePrefixMatch" => {
            let value = p.replace_prefix_match.as_deref().unwrap_or("/");
            if rewrite {
                let trimmed = value.trim_end_matches('/');
                (Some(Arc::from(if trimmed.is_empty() { "/" } else { trimmed })), None)
            } else {
                (None, Some(Arc::from(value)))
            }
        }
        _ => (None, None),
    }
}

fn destinations(
    kind: &str,
    ns: &str,
    r: &HttpRouteRule,
    backends: &dyn Backends,
    problem: &mut Option<BackendProblem>,
) -> Option<RouteAction> {
    let weighted: Vec<&HttpBackendRef> = r.backend_refs.iter().filter(|b| b.weight.unwrap_or(1) > 0).collect();
    if weighted.is_empty() {
        return Some(RouteAction::DirectResponse(DirectResponse { status: 500, body: None }));
    }
    let mut out = Vec::new();
    for b in weighted {
        let weight = u32::try_from(b.weight.unwrap_or(1)).unwrap_or(u32::MAX);
        let host = match backends.resolve(kind, ns, &backend_object(b)) {
            Ok(h) => h,
            Err(p) => {
                problem.get_or_insert(p);
                // The spec: requests for an unresolved backend's share get a 500. Its share is kept
                // (pointing at a host nothing serves) so that the other backends keep theirs.
                Arc::from(UNRESOLVED_HOST)
            }
        };
        let mut edits = HeaderEdits::default();
        for f in &b.filters {
            match f.kind.as_str() {
                "RequestHeaderModifier" => edits.request = header_ops(f.request_header_modifier.as_ref()),
                "ResponseHeaderModifier" => edits.response = header_ops(f.response_header_modifier.as_ref()),
                // Istio's `buildHTTPDestination`: "unsupported filter type" (InvalidFilter), and
                // `convertHTTPRoute`'s caller yields no route for the rule.
                _ => {
                    *problem = Some(BackendProblem::InvalidFilter);
                    return None;
                }
            }
        }
        let destination = route::Destination { host, subset: None, port: b.port.and_then(port) };
        out.push(RouteDestination { destination, weight, headers: edits });
    }
    if out.iter().all(|d| &*d.destination.host == UNRESOLVED_HOST) {
        // Every backend unresolved: every request gets the spec's 500.
        return Some(RouteAction::DirectResponse(DirectResponse { status: 500, body: None }));
    }
    Some(RouteAction::Route(WeightedDestinations::new(out)))
}

/// The host an unresolved backend's share is sent to when other backends of the rule resolve:
/// mesh-core's [`mesh_core::route::UNRESOLVED_BACKEND`], which the decision answers with 500 (a
/// rule whose backends are all unresolved is a direct 500 response).
pub const UNRESOLVED_HOST: &str = mesh_core::route::UNRESOLVED_BACKEND;
