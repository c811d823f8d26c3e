//! Validation of Gateway API objects as the API server validates them: the CRDs' OpenAPI schema
//! (enums, bounds, patterns, list sizes) and their CEL rules (`x-kubernetes-validations`), from
//! the standard-channel CRDs (`testdata/conformance/gateway-api/crds/`). Messages are the CRDs'
//! own, so that a user who has seen `kubectl apply` refuse an object recognises them; paths are
//! field paths under `spec` (`rules[0].filters[1].requestRedirect.path`).
//!
//! A file meshwork reads is checked as the API server would have checked it before storing it;
//! an object that fails is refused as a whole, as the API server refuses it.

mod filters;

use filters::{backend_refs, filters};

use crate::types::gateway_api::{
    Gateway, GrpcRoute, HttpHeaderMatch, HttpRoute, HttpRouteFilter, ParentRef, ReferenceGrant,
};

/// One problem: where (a field path under `spec`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Field path under `spec`.
    pub path: String,
    /// The message (the CRD's own where it has one).
    pub message: String,
}

#[derive(Default)]
struct Out(Vec<Finding>);

impl Out {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding { path: path.into(), message: message.into() });
    }

    fn max_items<T>(&mut self, path: &str, items: &[T], max: usize) {
        if items.len() > max {
            self.push(path, format!("must have at most {max} items"));
        }
    }
}

/// `^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, at most 253
/// characters: a host name, optionally with a leading wildcard label.
pub fn valid_hostname(h: &str) -> bool {
    let name = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// A Gateway API duration (GEP-2257): `^([0-9]{1,5}(h|m|s|ms)){1,4}$`.
pub fn valid_duration(d: &str) -> bool {
    let mut rest = d;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return false;
        }
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") { 2 } else { usize::from(rest.starts_with(['h', 'm', 's'])) };
        if unit == 0 {
            return false;
        }
        rest = &rest[unit..];
        parts += 1;
    }
    (1..=4).contains(&parts)
}

/// A Gateway API duration in milliseconds (after [`valid_duration`]).
fn duration_ms(d: &str) -> Option<u128> {
    let mut total = 0u128;
    let mut rest = d;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else {
            (3_600_000, 1)
        };
        total += n * unit;
        rest = &rest[len..];
    }
    Some(total)
}

fn valid_header_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 256 && n.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn path_chars_ok(p: &str) -> bool {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&c)) {
            return false;
        }
        i += 1;
    }
    !p.is_empty()
}

fn parent_refs(out: &mut Out, refs: &[ParentRef]) {
    out.max_items("parentRefs", refs, 32);
    for (i, a) in refs.iter().enumerate() {
        let path = format!("parentRefs[{i}]");
        if a.name.is_empty() {
            out.push(format!("{path}.name"), "Required value");
        }
        if let Some(p) = a.port
            && !(1..=65535).contains(&p)
        {
            out.push(format!("{path}.port"), "must be between 1 and 65535");
        }
    }
    // The CRD's rule: two references to the same parent need distinct sectionNames.
    let same = |a: &ParentRef, b: &ParentRef| {
        a.group.as_deref().unwrap_or("gateway.networking.k8s.io")
            == b.group.as_deref().unwrap_or("gateway.networking.k8s.io")
            && a.kind.as_deref().unwrap_or("Gateway") == b.kind.as_deref().unwrap_or("Gateway")
            && a.namespace == b.namespace
            && a.name == b.name
    };
    for (i, a) in refs.iter().enumerate() {
        for b in &refs[..i] {
            if !same(a, b) {
                continue;
            }
            if a.section_name.is_none() || b.section_name.is_none() {
                out.push(
                    "parentRefs",
                    "sectionName must be specified when parentRefs includes 2 or more references to the same parent",
                );
            } else if a.section_name == b.section_name && a.port == b.port {
                out.push(
                    "parentRefs",
                    "sectionName must be unique when parentRefs includes 2 or more references to the same parent",
                );
            }
        }
    }
}

fn hostnames(out: &mut Out, names: &[String]) {
    out.max_items("hostnames", names, 16);
    for (i, h) in names.iter().enumerate() {
        if !valid_hostname(h) {
            out.push(format!("hostnames[{i}]"), format!("{h:?} is not a valid host name"));
        }
    }
}

fn header_matches(out: &mut Out, path: &str, matches: &[HttpHeaderMatch], what: &str) {
    out.max_items(path, matches, 16);
    for (i, h) in matches.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match h.kind.as_deref() {
            None | Some("Exact") => {}
            Some("RegularExpression") => {
                if let Err(e) = mesh_core::matcher::Re2::new(&h.value) {
                    out.push(format!("{p}.value"), format!("invalid regular expression: {e}"));
                }
            }
            Some(other) => out.push(
                format!("{p}.type"),
                format!("Unsupported value: {other:?}: supported values: \"Exact\", \"RegularExpression\""),
            ),
        }
        if what == "header" && !valid_header_name(&h.name) {
            out.push(format!("{p}.name"), format!("{:?} is not a valid {what} name", h.name));
        }
        if h.name.is_empty() {
            out.push(format!("{p}.name"), "Required value");
        }
    }
}

/// Check an HTTPRoute's spec.
pub fn http_route(route: &HttpRoute) -> Vec<Finding> {
    let mut out = Out::default();
    parent_refs(&mut out, &route.parent_refs);
    hostnames(&mut out, &route.hostnames);
    let rules = route.rules.as_deref().unwrap_or(&[]);
    out.max_items("rules", rules, 16);
    let total: usize = rules.iter().map(|r| r.matches.as_ref().map_or(1, Vec::len)).sum();
    if total > 128 {
        out.push(
            "rules",
            "While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128",
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let p = format!("rules[{i}]");
        let matches = r.matches.as_deref().unwrap_or(&[]);
        out.max_items(&format!("{p}.matches"), matches, 64);
        for (j, m) in matches.iter().enumerate() {
            let mp = format!("{p}.matches[{j}]");
            if let Some(path) = &m.path {
                let kind = path.kind.as_deref().unwrap_or("PathPrefix");
                let value = path.value.as_deref().unwrap_or("/");
                match kind {
                    "Exact" | "PathPrefix" => {
                        let checks: [(bool, &str); 10] = [
                            (
                                !value.starts_with('/'),
                                "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
                            ),
                            (value.contains("//"), "must not contain '//' when type one of ['Exact', 'PathPrefix']"),
                            (value.contains("/./"), "must not contain '/./' when type one of ['Exact', 'PathPrefix']"),
                            (
                                value.contains("/../"),
                                "must not contain '/../' when type one of ['Exact', 'PathPrefix']",
                            ),
                            (value.contains("%2f"), "must not contain '%2f' when type one of ['Exact', 'PathPrefix']"),
                            (value.contains("%2F"), "must not contain '%2F' when type one of ['Exact', 'PathPrefix']"),
                            (value.contains('#'), "must not contain '#' when type one of ['Exact', 'PathPrefix']"),
                            (
                                value.ends_with("/.."),
                                "must not end with '/..' when type one of ['Exact', 'PathPrefix']",
                            ),
                            (value.ends_with("/."), "must not end with '/.' when type one of ['Exact', 'PathPrefix']"),
                            (
                                !path_chars_ok(value),
                                "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']",
                            ),
                        ];
                        for (bad, message) in checks {
                            if bad {
                                out.push(format!("{mp}.path"), message);
                            }
                        }
                    }
                    "RegularExpression" => {
                        if let Err(e) = mesh_core::matcher::Re2::new(value) {
                            out.push(format!("{mp}.path.value"), format!("invalid regular expression: {e}"));
                        }
                    }
                    _ => out
                        .push(format!("{mp}.path"), "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']"),
                }
            }
            header_matches(&mut out, &format!("{mp}.headers"), &m.headers, "header");
            header_matches(&mut out, &format!("{mp}.queryParams"), &m.query_params, "query parameter");
            if let Some(method) = &m.method
                && !["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
                    .contains(&method.as_str())
            {
                out.push(format!("{mp}.method"), format!("Unsupported value: {method:?}"));
            }
        }
        filters(&mut out, &format!("{p}.filters"), &r.filters);
        backend_refs(&mut out, &format!("{p}.backendRefs"), &r.backend_refs);
        let has = |t: &str| r.filters.iter().any(|f| f.kind == t);
        if has("RequestRedirect") && !r.backend_refs.is_empty() {
            out.push(&p, "RequestRedirect filter must not be used together with backendRefs");
        }
        let one_prefix_match = matches.len() == 1
            && matches[0].path.as_ref().is_none_or(|p| p.kind.as_deref().unwrap_or("PathPrefix") == "PathPrefix");
        let prefix_modifier = |f: &HttpRouteFilter| {
            f.request_redirect
                .as_ref()
                .and_then(|r| r.path.as_ref())
                .or(f.url_rewrite.as_ref().and_then(|u| u.path.as_ref()))
                .is_some_and(|m| m.kind == "ReplacePrefixMatch")
        };
        for f in r.filters.iter().filter(|f| prefix_modifier(f)) {
            if !one_prefix_match {
                let which = if f.kind == "RequestRedirect" { "RequestRedirect" } else { "URLRewrite" };
                out.push(&p, format!("When using {which} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"));
            }
        }
        if let Some(t) = &r.timeouts {
            for (field, value) in [("request", &t.request), ("backendRequest", &t.backend_request)] {
                if let Some(v) = value
                    && !valid_duration(v)
                {
                    out.push(
                        format!("{p}.timeouts.{field}"),
                        format!("{v:?} is not a valid duration (e.g. 10s, 500ms, 1h30m)"),
                    );
                }
            }
            if let (Some(req), Some(backend)) = (
                t.request.as_deref().filter(|v| valid_duration(v)).and_then(duration_ms),
                t.backend_request.as_deref().filter(|v| valid_duration(v)).and_then(duration_ms),
            ) && req != 0
                && backend > req
            {
                out.push(format!("{p}.timeouts"), "backendRequest timeout cannot be longer than request timeout");
            }
        }
        if let Some(retry) = &r.retry {
            if let Some(b) = &retry.backoff
                && !valid_duration(b)
            {
                out.push(format!("{p}.retry.backoff"), format!("{b:?} is not a valid duration"));
            }
            for (j, c) in retry.codes.iter().enumerate() {
                if !(400..=599).contains(c) {
                    out.push(format!("{p}.retry.codes[{j}]"), "must be between 400 and 599");
                }
            }
        }
        if r.session_persistence.is_some() {
            out.push(format!("{p}.sessionPersistence"), "unsupported: meshwork does not implement session persistence");
        }
    }
    out.0
}

/// Check a GRPCRoute's spec.
pub fn grpc_route(route: &GrpcRoute) -> Vec<Finding> {
    let mut out = Out::default();
    parent_refs(&mut out, &route.parent_refs);
    hostnames(&mut out, &route.hostnames);
    out.max_items("rules", &route.rules, 16);
    for (i, r) in route.rules.iter().enumerate() {
        let p = format!("rules[{i}]");
        for (j, m) in r.matches.iter().enumerate() {
            let mp = format!("{p}.matches[{j}]");
            if let Some(method) = &m.method {
                if method.service.is_none() && method.method.is_none() {
                    out.push(format!("{mp}.method"), "One or both of 'service' or 'method' must be specified");
                }
                if !matches!(method.kind.as_deref(), None | Some("Exact" | "RegularExpression")) {
                    out.push(
                        format!("{mp}.method.type"),
                        "Unsupported value: supported values: \"Exact\", \"RegularExpression\"",
                    );
                }
            }
            header_matches(&mut out, &format!("{mp}.headers"), &m.headers, "header");
        }
        for (j, f) in r.filters.iter().enumerate() {
            if matches!(f.kind.as_str(), "RequestRedirect" | "URLRewrite" | "CORS") {
                out.push(
                    format!("{p}.filters[{j}].type"),
                    format!("Unsupported value: {:?} is not a GRPCRoute filter", f.kind),
                );
            }
        }
        filters(&mut out, &format!("{p}.filters"), &r.filters);
        backend_refs(&mut out, &format!("{p}.backendRefs"), &r.backend_refs);
    }
    out.0
}

/// Check a Gateway's spec.
pub fn gateway(g: &Gateway) -> Vec<Finding> {
    let mut out = Out::default();
    if g.gateway_class_name.is_empty() {
        out.push("gatewayClassName", "Required value");
    }
    out.max_items("listeners", &g.listeners, 64);
    for (i, l) in g.listeners.iter().enumerate() {
        let p = format!("listeners[{i}]");
        if l.name.is_empty() {
            out.push(format!("{p}.name"), "Required value");
        }
        if !(1..=65535).contains(&l.port) {
            out.push(format!("{p}.port"), "must be between 1 and 65535");
        }
        if let Some(h) = &l.hostname
            && !valid_hostname(h)
        {
            out.push(format!("{p}.hostname"), format!("{h:?} is not a valid host name"));
        }
        let protocol = l.protocol.as_str();
        if l.tls.is_some() && matches!(protocol, "HTTP" | "TCP" | "UDP") {
            out.push("listeners", "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']");
        }
        if protocol == "HTTPS" && l.tls.as_ref().and_then(|t| t.mode.as_deref()).is_some_and(|m| m != "Terminate") {
            out.push("listeners", "tls mode must be Terminate for protocol HTTPS");
        }
        if protocol == "TLS" && l.tls.as_ref().and_then(|t| t.mode.as_deref()).is_none() {
            out.push("listeners", "tls mode must be set for protocol TLS");
        }
        if l.hostname.is_some() && matches!(protocol, "TCP" | "UDP") {
            out.push("listeners", "hostname must not be specified for protocols ['TCP', 'UDP']");
        }
        if let Some(t) = &l.tls
            && t.mode.as_deref().unwrap_or("Terminate") == "Terminate"
            && t.certificate_refs.is_empty()
            && t.options.is_empty()
        {
            out.push(format!("{p}.tls"), "certificateRefs or options must be specified when mode is Terminate");
        }
        if let Some(from) =
            l.allowed_routes.as_ref().and_then(|a| a.namespaces.as_ref()).and_then(|n| n.from.as_deref())
            && !matches!(from, "All" | "Same" | "Selector")
        {
            out.push(
                format!("{p}.allowedRoutes.namespaces.from"),
                format!("Unsupported value: {from:?}: supported values: \"All\", \"Selector\", \"Same\""),
            );
        }
        for earlier in &g.listeners[..i] {
            if earlier.name == l.name {
                out.push("listeners", "Listener name must be unique within the Gateway");
            }
            if earlier.port == l.port && earlier.protocol == l.protocol && earlier.hostname == l.hostname {
                out.push("listeners", "Combination of port, protocol and hostname must be unique for each listener");
            }
        }
    }
    out.0
}

/// Check a ReferenceGrant's spec.
pub fn reference_grant(g: &ReferenceGrant) -> Vec<Finding> {
    let mut out = Out::default();
    if g.from.is_empty() {
        out.push("from", "must have at least 1 items");
    }
    if g.to.is_empty() {
        out.push("to", "must have at least 1 items");
    }
    out.max_items("from", &g.from, 16);
    out.max_items("to", &g.to, 16);
    for (i, f) in g.from.iter().enumerate() {
        if f.kind.is_empty() {
            out.push(format!("from[{i}].kind"), "Required value");
        }
        if f.namespace.is_empty() {
            out.push(format!("from[{i}].namespace"), "Required value");
        }
    }
    for (i, t) in g.to.iter().enumerate() {
        if t.kind.is_empty() {
            out.push(format!("to[{i}].kind"), "Required value");
        }
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["1h", "10s", "500ms", "1h30m", "0s", "99999ms", "1h1m1s1ms"] {
            assert!(valid_duration(ok), "{ok}");
        }
        for bad in ["", "1", "1d", "1.5s", "-1s", "100000s", "1h1m1s1ms1h", "10 s"] {
            assert!(!valid_duration(bad), "{bad}");
        }
        assert_eq!(duration_ms("1m30s"), Some(90_000));
    }

    #[test]
    fn hostnames_and_paths() {
        for ok in ["example.com", "*.example.com", "a-b.c", "x"] {
            assert!(valid_hostname(ok), "{ok}");
        }
        for bad in ["", "Example.com", "*", "a..b", "-a.com", "a_b.com", "*.*.com", "foo.*.com"] {
            assert!(!valid_hostname(bad), "{bad}");
        }
        assert!(path_chars_ok("/a/b%20c"));
        assert!(!path_chars_ok("/a b"));
        assert!(!path_chars_ok("/a%2"));
        assert!(!path_chars_ok("/a%zz"));
    }
}
