//! VirtualService `http[]` rules (istio/istio `pkg/config/validation/virtualservice.go`
//! `validateHTTPRoute`, and `validation.go` for its parts: matches, CORS, fault injection,
//! redirects, retries, rewrites, mirrors), and Istio's analyzer warnings for rules that can never
//! match.

use mesh_core::route::GRPC_STATUS_NAMES;

use super::{check_gateway_names, check_weighted_destinations, validate_destination};
use crate::types::virtual_service::*;
use crate::validate::common::*;
use crate::validate::{Ctx, P};

/// Envoy's retry conditions (`x-envoy-retry-on` and `x-envoy-retry-grpc-on`) that Istio accepts.
pub(crate) const RETRY_ON_POLICIES: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

const CORS_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "*"];

/// Status codes Go's `http.StatusText` knows: Istio accepts them in `retryOn`.
fn is_known_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451
        | 500..=508 | 510 | 511)
}

pub(super) fn validate_http_route(
    ctx: &mut Ctx<'_>,
    path: &P,
    http: &HttpRoute,
    is_delegate: bool,
    applies_to_mesh: bool,
) {
    // Conflicts between actions.
    if http.delegate.is_some() && !is_delegate {
        let name = http.name.as_deref().unwrap_or("");
        if http.redirect.is_some() {
            ctx.error(&path.f("redirect"), format!("root HTTP route {name} must not specify redirect"));
        }
        if !http.route.is_empty() {
            ctx.error(&path.f("route"), format!("root HTTP route {name} must not specify route"));
        }
    } else {
        if is_delegate && http.delegate.is_some() {
            ctx.error(&path.f("delegate"), "delegate HTTP route cannot contain delegate");
        }
        if http.redirect.is_some() {
            if !http.route.is_empty() {
                ctx.error(&path.f("route"), "HTTP route cannot contain both route and redirect");
            }
            if http.fault.is_some() {
                ctx.error(&path.f("fault"), "HTTP route cannot contain both fault and redirect");
            }
            if http.rewrite.is_some() {
                ctx.error(&path.f("rewrite"), "HTTP route rule cannot contain both rewrite and redirect");
            }
            if http.direct_response.is_some() {
                ctx.error(
                    &path.f("directResponse"),
                    "HTTP route rule cannot contain both direct_response and redirect",
                );
            }
        } else if http.direct_response.is_some() {
            if !http.route.is_empty() {
                ctx.error(&path.f("route"), "HTTP route cannot contain both route and direct_response");
            }
            if http.fault.is_some() {
                ctx.error(&path.f("fault"), "HTTP route cannot contain both fault and direct_response");
            }
            if http.rewrite.is_some() {
                ctx.error(&path.f("rewrite"), "HTTP route rule cannot contain both rewrite and direct_response");
            }
        } else if http.route.is_empty() {
            ctx.error(path, "HTTP route, redirect or direct_response is required");
        }
    }
    if http.mirror.is_some() && !http.mirrors.is_empty() {
        ctx.error(&path.f("mirrors"), "HTTP route cannot contain both mirror and mirrors");
    }

    for (i, m) in http.matches.iter().enumerate() {
        validate_match(ctx, &path.f("match").i(i), m, applies_to_mesh);
    }

    if let Some(headers) = &http.headers {
        check_header_operations(ctx, &path.f("headers").f("request"), headers.request.as_ref(), true);
        check_header_operations(ctx, &path.f("headers").f("response"), headers.response.as_ref(), false);
    }
    if let Some(cors) = &http.cors_policy {
        validate_cors(ctx, &path.f("corsPolicy"), cors);
    }
    if let Some(fault) = &http.fault {
        validate_fault(ctx, &path.f("fault"), fault);
    }
    for (field, value) in [("mirrorPercent", http.mirror_percent), ("mirror_percent", http.mirror_percent_proto)] {
        if let Some(v) = value {
            if v > 100 {
                ctx.error(&path.f(field), format!("mirror_percent must have a max value of 100 (it has {v})"));
            }
            ctx.warn(&path.f(field), "using deprecated setting \"mirrorPercent\", use \"mirrorPercentage\" instead");
        }
    }
    if let Some(p) = &http.mirror_percentage {
        check_mirror_percentage(ctx, &path.f("mirrorPercentage").f("value"), "mirror_percentage", p.value);
    }
    if let Some(mirror) = &http.mirror {
        validate_destination(ctx, &path.f("mirror"), mirror);
    }
    for (i, mirror) in http.mirrors.iter().enumerate() {
        let p = path.f("mirrors").i(i);
        let Some(dest) = &mirror.destination else {
            ctx.error(&p, "destination is required for mirrors");
            continue;
        };
        validate_destination(ctx, &p.f("destination"), dest);
        if let Some(pc) = &mirror.percentage {
            check_mirror_percentage(ctx, &p.f("percentage").f("value"), "mirror percentage", pc.value);
        }
    }
    if let Some(redirect) = &http.redirect {
        validate_redirect(ctx, &path.f("redirect"), redirect, &http.matches);
    }
    if let Some(dr) = &http.direct_response {
        let p = path.f("directResponse");
        if let Some(body) = &dr.body {
            let size =
                body.string.as_ref().map(String::len).or(body.bytes.as_ref().map(|b| b.len() * 3 / 4)).unwrap_or(0);
            if body.string.is_some() && body.bytes.is_some() {
                ctx.error(&p.f("body"), "only one of string or bytes may be set");
            }
            if size > 1 << 20 {
                ctx.error(
                    &p.f("body"),
                    "large direct_responses may impact control plane performance, must be less than 1MB",
                );
            } else if size > 100 << 10 {
                ctx.warn(&p.f("body"), "large direct_responses may impact control plane performance");
            }
        }
        if !(200..=600).contains(&dr.status) {
            ctx.error(&p.f("status"), format!("HTTP status {} is not in range 200-599", dr.status));
        }
    }
    if let Some(retries) = &http.retries {
        validate_retries(ctx, &path.f("retries"), retries);
    }
    if let Some(rewrite) = &http.rewrite {
        validate_rewrite(ctx, &path.f("rewrite"), rewrite);
    }
    // Authority may be rewritten in one place only.
    let mut authority = http.rewrite.as_ref().and_then(|r| r.authority.clone()).filter(|a| !a.is_empty());
    if let Some(req) = http.headers.as_ref().and_then(|h| h.request.as_ref()) {
        for (name, value) in req.set.iter().chain(req.add.iter()) {
            if name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host") {
                if let Some(current) = &authority {
                    ctx.error(&path.f("headers"), format!("authority header cannot be set multiple times: have {current:?}, attempting to set {value:?}"));
                    break;
                }
                authority = Some(value.clone());
            }
        }
    }
    validate_route_destinations(ctx, &path.f("route"), &http.route);
    if let Some(t) = &http.timeout {
        ctx.check(&path.f("timeout"), parse_ms_duration(t).map(|_| ()));
    }
    if let Some(m) = http.matches.iter().position(|m| m.stat_prefix.is_some()) {
        ctx.unsupported(&path.f("match").i(m).f("statPrefix"), "statPrefix");
    }
}

/// Istio's mirror percentage bounds, with its wording (`what` is how Istio names the field).
fn check_mirror_percentage(ctx: &mut Ctx<'_>, path: &P, what: &str, value: f64) {
    if value > 100.0 {
        ctx.error(path, format!("{what} must have a max value of 100 (it has {value})"));
    }
    if value < 0.0 {
        ctx.error(path, format!("{what} must have a min value of 0 (it has {value})"));
    }
}

fn validate_match(ctx: &mut Ctx<'_>, path: &P, m: &HttpMatchRequest, applies_to_mesh: bool) {
    for (name, hm) in &m.headers {
        let p = path.f("headers").k(name);
        check_header_match_name(ctx, &p, name, applies_to_mesh);
        match hm {
            None => ctx.error(&p, format!("header match {name} cannot be null")),
            Some(hm) => check_string_match(ctx, &p, hm, "headers", false),
        }
    }
    for (name, hm) in &m.without_headers {
        let p = path.f("withoutHeaders").k(name);
        check_header_match_name(ctx, &p, name, applies_to_mesh);
        // `regex: "*"` is not RE2: Istio turns it into a presence match.
        if let Some(hm) = hm
            && hm.regex.as_deref() != Some("*")
        {
            check_string_match(ctx, &p, hm, "withoutHeaders", false);
        }
    }
    if let Some(uri) = &m.uri {
        check_string_match(ctx, &path.f("uri"), uri, "uri", true);
    }
    for (field, sm) in [("scheme", &m.scheme), ("method", &m.method), ("authority", &m.authority)] {
        if let Some(sm) = sm {
            check_string_match(ctx, &path.f(field), sm, field, false);
        }
    }
    for (name, qp) in &m.query_params {
        let p = path.f("queryParams").k(name);
        match qp {
            None => ctx.error(&p, format!("query param match {name} cannot be null")),
            Some(qp) => check_string_match(ctx, &p, qp, "queryParams", false),
        }
    }
    if let Some(port) = m.port
        && port != 0
    {
        ctx.check(&path.f("port"), validate_port(port));
    }
    validate_labels(ctx, &path.f("sourceLabels"), &m.source_labels);
    check_gateway_names(ctx, &path.f("gateways"), &m.gateways);
    if let Some(ns) = &m.source_namespace
        && !ns.is_empty()
        && !is_dns1123_label(ns)
    {
        ctx.error(&path.f("sourceNamespace"), format!("sourceNamespace match {ns} is invalid"));
    }
}

fn check_header_match_name(ctx: &mut Ctx<'_>, path: &P, name: &str, applies_to_mesh: bool) {
    ctx.check(path, validate_header_name(name));
    if name.starts_with("@request.auth.claims") && applies_to_mesh {
        ctx.error(path, format!("JWT claim based routing ({name}) is only supported for gateways, not for the mesh"));
    }
}

fn validate_cors(ctx: &mut Ctx<'_>, path: &P, cors: &CorsPolicy) {
    for (i, origin) in cors.allow_origins.iter().enumerate() {
        let p = path.f("allowOrigins").i(i);
        let value = origin.exact.as_deref().or(origin.prefix.as_deref()).or(origin.regex.as_deref()).unwrap_or("");
        if value.is_empty() {
            ctx.error(&p, format!("'{value}' is not a valid match type for CORS allow origins"));
        } else {
            check_string_match(ctx, &p, origin, "corsPolicy.allowOrigins", false);
        }
    }
    for (i, method) in cors.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&method.as_str()) {
            ctx.error(&path.f("allowMethods").i(i), format!("{method:?} is not a supported HTTP method"));
        }
    }
    for (field, names) in [("allowHeaders", &cors.allow_headers), ("exposeHeaders", &cors.expose_headers)] {
        for (i, name) in names.iter().enumerate() {
            ctx.check(&path.f(field).i(i), validate_header_name(name));
        }
    }
    if let Some(max_age) = &cors.max_age {
        match parse_ms_duration(max_age) {
            Ok(d) if d.subsec_nanos() != 0 => {
                ctx.error(&path.f("maxAge"), "max_age duration is accurate only to seconds precision")
            }
            Ok(_) => {}
            Err(e) => ctx.error(&path.f("maxAge"), e),
        }
    }
    if !cors.allow_origin.is_empty() {
        ctx.warn(&path.f("allowOrigin"), "allowOrigin is deprecated, use allowOrigins");
    }
}

fn validate_fault(ctx: &mut Ctx<'_>, path: &P, fault: &HttpFaultInjection) {
    if fault.abort.is_none() && fault.delay.is_none() {
        ctx.error(path, "HTTP fault injection must have an abort and/or a delay");
    }
    if let Some(abort) = &fault.abort {
        let p = path.f("abort");
        check_percentage(ctx, &p.f("percentage"), abort.percentage.as_ref());
        let kinds = usize::from(abort.http_status.is_some())
            + usize::from(abort.grpc_status.is_some())
            + usize::from(abort.http2_error.is_some());
        if kinds > 1 {
            ctx.error(&p, "only one of httpStatus, grpcStatus or http2Error may be set");
        }
        if let Some(status) = abort.grpc_status.as_deref() {
            if !GRPC_STATUS_NAMES.contains(&status) {
                ctx.error(&p.f("grpcStatus"), format!("gRPC status {status:?} is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'"));
            }
        } else if abort.http2_error.is_some() {
            ctx.error(&p.f("http2Error"), "HTTP/2 abort fault injection not supported yet");
        } else if let Some(status) = abort.http_status {
            if !(200..=600).contains(&status) {
                ctx.error(&p.f("httpStatus"), format!("HTTP status {status} is not in range 200-599"));
            }
        } else {
            ctx.warn(&p, "abort configured, but error type not set");
        }
    }
    if let Some(delay) = &fault.delay {
        let p = path.f("delay");
        check_percentage(ctx, &p.f("percentage"), delay.percentage.as_ref());
        if let Some(percent) = delay.percent
            && !(0..=100).contains(&percent)
        {
            ctx.error(&p.f("percent"), format!("percentage {percent} is not in range 0..100"));
        }
        check_duration(ctx, &p.f("fixedDelay"), delay.fixed_delay.as_ref());
        if delay.exponential_delay.is_some() {
            check_duration(ctx, &p.f("exponentialDelay"), delay.exponential_delay.as_ref());
            ctx.error(&p.f("exponentialDelay"), "exponentialDelay not supported yet");
        }
        if delay.fixed_delay.is_none() && delay.exponential_delay.is_none() {
            ctx.error(&p, "delay must set fixedDelay");
        }
    }
}

fn validate_route_destinations(ctx: &mut Ctx<'_>, path: &P, route: &[HttpRouteDestination]) {
    for (i, rd) in route.iter().enumerate() {
        if let Some(headers) = &rd.headers {
            let p = path.i(i).f("headers");
            check_header_operations(ctx, &p.f("request"), headers.request.as_ref(), true);
            check_header_operations(ctx, &p.f("response"), headers.response.as_ref(), false);
        }
    }
    check_weighted_destinations(ctx, path, route.iter().map(|rd| (rd.destination.as_ref(), rd.weight)));
}

fn validate_redirect(ctx: &mut Ctx<'_>, path: &P, r: &HttpRedirect, matches: &[HttpMatchRequest]) {
    let empty = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
    if empty(&r.uri)
        && empty(&r.authority)
        && r.port.is_none()
        && r.derive_port.is_none()
        && empty(&r.scheme)
        && empty(&r.prefix_rewrite)
    {
        ctx.error(path, "redirect must specify URI, authority, scheme, or port");
    }
    if r.port.is_some() && r.derive_port.is_some() {
        ctx.error(&path.f("derivePort"), "only one of port or derivePort may be set");
    }
    if let Some(code) = r.redirect_code
        && code != 0
        && !(300..=399).contains(&code)
    {
        ctx.error(&path.f("redirectCode"), format!("{code} is not a valid redirect code, must be 3xx"));
    }
    if let Some(scheme) = &r.scheme
        && !scheme.is_empty()
        && scheme != "http"
        && scheme != "https"
    {
        ctx.error(&path.f("scheme"), "invalid redirect scheme, must be \"http\" or \"https\"");
    }
    if let Some(port) = r.port
        && port > 0
    {
        ctx.check(&path.f("port"), validate_port(port));
    }
    if !empty(&r.uri) && !empty(&r.prefix_rewrite) {
        ctx.error(&path.f("prefixRewrite"), "redirect may only contain one of uri or prefixRewrite");
    }
    if !empty(&r.prefix_rewrite) && matches.iter().any(|m| m.uri.as_ref().is_some_and(|u| u.prefix.is_none())) {
        ctx.error(
            &path.f("prefixRewrite"),
            "redirect prefix_rewrite requires all URI matches to use prefix match type",
        );
    }
}

fn validate_retries(ctx: &mut Ctx<'_>, path: &P, r: &HttpRetry) {
    if r.attempts < 0 {
        ctx.error(&path.f("attempts"), "attempts cannot be negative");
    }
    if r.attempts == 0
        && (r.per_try_timeout.is_some()
            || r.retry_on.as_deref().is_some_and(|s| !s.is_empty())
            || r.retry_remote_localities.is_some())
    {
        ctx.error(path, "http retry policy configured when attempts are set to 0 (disabled)");
    }
    check_duration(ctx, &path.f("perTryTimeout"), r.per_try_timeout.as_ref());
    if let Some(on) = &r.retry_on
        && !on.is_empty()
    {
        for policy in on.split(',') {
            let known_status = policy.parse::<u32>().is_ok_and(is_known_status);
            if !known_status && !RETRY_ON_POLICIES.contains(&policy) {
                ctx.error(&path.f("retryOn"), format!("{policy:?} is not a valid retryOn policy"));
            }
        }
    }
    check_duration(ctx, &path.f("backoff"), r.backoff.as_ref());
    if r.retry_remote_localities.is_some() {
        ctx.unsupported(&path.f("retryRemoteLocalities"), "retryRemoteLocalities");
    }
}

fn validate_rewrite(ctx: &mut Ctx<'_>, path: &P, r: &HttpRewrite) {
    let uri = r.uri.as_deref().is_some_and(|u| !u.is_empty());
    let authority = r.authority.as_deref().is_some_and(|a| !a.is_empty());
    if uri && r.uri_regex_rewrite.is_some() {
        ctx.error(path, "rewrite may only contain one of URI or UriRegexRewrite");
        return;
    }
    if !uri && r.uri_regex_rewrite.is_none() && !authority {
        ctx.error(path, "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified");
        return;
    }
    if let Some(rr) = &r.uri_regex_rewrite {
        let p = path.f("uriRegexRewrite");
        if rr.pattern.is_empty() || rr.rewrite.is_empty() {
            ctx.error(&p, "UriRegexRewrite requires both Rewrite and Match fields to be specified");
        } else {
            ctx.check(&p.f("match"), check_regex(&rr.pattern, "HTTPRewrite.UriRegexRewrite.Match"));
        }
    }
}

/// Istio's analyzer warnings for rules that can never match (`analyzeUnreachableHTTPRules`), in
/// their simple forms: a rule after a catch-all, and a match identical to an earlier one. Matches
/// seen are kept in a hash map, so the check is linear in the number of matches.
pub(super) fn warn_unreachable(ctx: &mut Ctx<'_>, root: &P, http: &[HttpRoute]) {
    let mut catch_all: Option<usize> = None;
    let mut seen: std::collections::HashMap<HttpMatchRequest, usize> = std::collections::HashMap::new();
    for (i, rule) in http.iter().enumerate() {
        let name = rule.name.as_ref().map_or_else(|| format!("#{i}"), |n| format!("{n:?}"));
        if let Some(first) = catch_all {
            ctx.warn(
                &root.f("http").i(i),
                format!("rule {name} is unreachable: rule #{first} before it has no matches and takes every request"),
            );
            continue;
        }
        if rule.matches.is_empty() {
            catch_all = Some(i);
            continue;
        }
        let mut duplicates = 0;
        for (j, m) in rule.matches.iter().enumerate() {
            let mut unnamed = m.clone();
            unnamed.name = None;
            if let Some(earlier) = seen.get(&unnamed) {
                ctx.warn(
                    &root.f("http").i(i).f("match").i(j),
                    format!("match #{j} of rule {name} is not used: rule #{earlier} has the same match"),
                );
                duplicates += 1;
            } else {
                seen.insert(unnamed, i);
            }
        }
        if duplicates == rule.matches.len() {
            ctx.warn(
                &root.f("http").i(i),
                format!("rule {name} is unreachable: all its matches are used by prior rules"),
            );
        }
    }
}
