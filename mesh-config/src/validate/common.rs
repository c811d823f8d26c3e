//! Checks shared by every kind: names, hosts, labels, durations, percentages, headers, regexes.

use std::net::IpAddr;
use std::time::Duration;

use mesh_core::matcher::Re2;

use super::{Ctx, P};
use crate::duration::parse_duration;
use crate::types::virtual_service::{HeaderOperations, Percent, StringMatch};

/// RFC 1123 label, as Istio's `labels.IsDNS1123Label` (which also accepts upper case).
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `*`, or a DNS label optionally prefixed by `*` or `*-` (Istio's `IsWildcardDNS1123Label`).
fn is_wildcard_dns1123_label(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let rest = s.strip_prefix("*-").or_else(|| s.strip_prefix('*')).unwrap_or(s);
    s.len() <= 63 && is_dns1123_label(rest)
}

fn dns_preconditions(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err(format!("domain name {name:?} too long (max 255)"));
    }
    if name.is_empty() {
        return Err("empty domain name not allowed".to_string());
    }
    Ok(())
}

fn dns1123_labels(domain: &str) -> Result<(), String> {
    let parts: Vec<&str> = domain.split('.').collect();
    let tld = parts.last().copied().unwrap_or("");
    if !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("domain name {domain:?} invalid (top level domain {tld:?} cannot be all-numeric)"));
    }
    for (i, label) in parts.iter().enumerate() {
        if i == parts.len() - 1 && label.is_empty() && i > 0 {
            return Ok(());
        }
        if !is_dns1123_label(label) {
            return Err(format!("domain name {domain:?} invalid (label {label:?} invalid)"));
        }
    }
    Ok(())
}

/// A fully qualified domain name (Istio's `ValidateFQDN`).
pub(crate) fn validate_fqdn(fqdn: &str) -> Result<(), String> {
    dns_preconditions(fqdn)?;
    dns1123_labels(fqdn)
}

/// A domain whose first label may be a wildcard (Istio's `ValidateWildcardDomain`).
pub(crate) fn validate_wildcard_domain(domain: &str) -> Result<(), String> {
    dns_preconditions(domain)?;
    let (first, rest) = match domain.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (domain, None),
    };
    if !is_wildcard_dns1123_label(first) {
        return Err(format!("domain name {domain:?} invalid (label {first:?} invalid)"));
    }
    match rest {
        Some(rest) => dns1123_labels(rest),
        None => Ok(()),
    }
}

pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// An IP address or a CIDR block.
pub(crate) fn validate_ip_subnet(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        Some((ip, bits)) => {
            let ip: IpAddr = ip.parse().map_err(|_| format!("{s} is not a valid CIDR block"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match bits.parse::<u8>() {
                Ok(b) if b <= max => Ok(()),
                _ => Err(format!("{s} is not a valid CIDR block")),
            }
        }
        None => {
            if is_ip(s) {
                Ok(())
            } else {
                Err(format!("{s} is not a valid IP"))
            }
        }
    }
}

pub(crate) fn validate_port(port: u32) -> Result<(), String> {
    if (1..=65535).contains(&port) { Ok(()) } else { Err(format!("port number {port} must be in the range 1..65535")) }
}

/// Kubernetes label keys and values, as Istio's `labels.Instance.Validate`.
pub(crate) fn validate_labels<'a>(
    ctx: &mut Ctx<'_>,
    path: &P,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    for (k, v) in labels {
        if !valid_label_key(k) {
            ctx.error(&path.k(k), format!("invalid tag key: {k:?}"));
        }
        if !(v.is_empty() || is_qualified_name(v)) {
            ctx.error(&path.k(k), format!("invalid tag value: {v:?}"));
        }
    }
}

fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(prefix) = prefix
        && (prefix.len() > 253 || !prefix.split('.').all(is_dns1123_label))
    {
        return false;
    }
    name.len() <= 63 && is_qualified_name(name)
}

/// Parse a duration and apply Istio's rules: at least 1 ms (the CRD's CEL rule), and a whole
/// number of milliseconds (`only durations to ms precision are supported`).
pub(crate) fn parse_ms_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(1) {
        return Err("duration must be greater than 1ms".to_string());
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err("only durations to ms precision are supported".to_string());
    }
    Ok(d)
}

/// Check an optional duration field with [`parse_ms_duration`].
pub(crate) fn check_duration(ctx: &mut Ctx<'_>, path: &P, value: Option<&String>) {
    if let Some(text) = value {
        ctx.check(path, parse_ms_duration(text).map(|_| ()));
    }
}

/// A duration field without a minimum (e.g. `tcp.idleTimeout`, where `0s` disables).
pub(crate) fn check_duration_any(ctx: &mut Ctx<'_>, path: &P, value: Option<&String>) {
    if let Some(text) = value {
        ctx.check(path, parse_duration(text).map(|_| ()));
    }
}

/// `{value: x}`: 0, or 0.0001..=100 (Istio's `validatePercentage`).
pub(crate) fn check_percentage(ctx: &mut Ctx<'_>, path: &P, p: Option<&Percent>) {
    if let Some(p) = p {
        let v = p.value;
        if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
            ctx.error(&path.f("value"), format!("percentage {v} is neither 0.0, nor in range [0.0001, 100.0]"));
        }
    }
}

/// `exact` / `prefix` / `regex`: exactly one set; prefixes non-empty unless `allow_empty_prefix`
/// (Envoy allows an empty path prefix, not an empty header prefix); regexes valid RE2, at most
/// 1024 bytes, as Istio's `validateStringMatch`.
pub(crate) fn check_string_match(ctx: &mut Ctx<'_>, path: &P, m: &StringMatch, where_: &str, allow_empty_prefix: bool) {
    let set = usize::from(m.exact.is_some()) + usize::from(m.prefix.is_some()) + usize::from(m.regex.is_some());
    if set > 1 {
        ctx.error(path, "only one of exact, prefix or regex may be set");
    }
    if let Some(prefix) = &m.prefix
        && prefix.is_empty()
        && !allow_empty_prefix
    {
        ctx.error(&path.f("prefix"), format!("{where_:?}: prefix string match should not be empty"));
    }
    if let Some(re) = &m.regex {
        ctx.check(&path.f("regex"), check_regex(re, where_));
    }
}

/// RE2 syntax, non-empty, at most 1024 bytes.
pub(crate) fn check_regex(re: &str, where_: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err(format!("{where_:?}: regex string match should not be empty"));
    }
    if re.len() > 1024 {
        return Err(format!("{where_:?}: regex is too large, max length allowed is 1024"));
    }
    Re2::new(re).map(|_| ()).map_err(|e| format!("{where_:?}: {e}; Istio uses RE2 style regex-based match"))
}

/// RFC 7230 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header name in a match (`header name cannot be empty`).
pub(crate) fn validate_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    Ok(())
}

/// A header name in a header operation: a token, not a pseudo-header nor `Host`, unless
/// `allow_authority` and it is `:authority` / `host` (Istio's
/// `ValidateHTTPHeaderWithAuthorityOperationName`).
pub(crate) fn validate_header_operation_name(name: &str, allow_authority: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    let lower = name.to_ascii_lowercase();
    if allow_authority && (lower == ":authority" || lower == "host") {
        return Ok(());
    }
    if lower.starts_with(':') || lower == "host" {
        return Err(format!("invalid header {name:?}: pseudo-headers and Host cannot be modified"));
    }
    if !is_token(name) {
        return Err(format!("header name {name:?} is not a valid header name"));
    }
    Ok(())
}

/// A header value: `%` must start `%%` or an Envoy `%VARIABLE%` / `%VARIABLE(args)%`
/// (Istio's `ValidateHTTPHeaderValue`).
pub(crate) fn validate_header_value(value: &str) -> Result<(), String> {
    let bad =
        || format!("header value configuration {value:?} is invalid: a '%' must be '%%' or start an Envoy %VARIABLE%");
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            i += 2;
            continue;
        }
        let rest = &value[i + 1..];
        let close = match rest.find('(') {
            Some(open) if rest[..open].bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_') => {
                let after = &rest[open..];
                after.find(")%").map(|p| open + p + 1)
            }
            _ => rest.find('%'),
        };
        let Some(close) = close else {
            return Err(bad());
        };
        let name = rest[..close].split('(').next().unwrap_or("");
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_') {
            return Err(bad());
        }
        i += 1 + close + 1;
    }
    Ok(())
}

/// `set` / `add` / `remove` header edits.
pub(crate) fn check_header_operations(ctx: &mut Ctx<'_>, path: &P, ops: Option<&HeaderOperations>, request: bool) {
    let Some(ops) = ops else { return };
    for (field, map) in [("set", &ops.set), ("add", &ops.add)] {
        for (name, value) in map {
            ctx.check(&path.f(field).k(name), validate_header_operation_name(name, request));
            ctx.check(&path.f(field).k(name), validate_header_value(value));
            for variable in mesh_core::header_format::unsupported_variables(value) {
                ctx.unsupported(
                    &path.f(field).k(name),
                    &format!("Envoy variable %{variable}% in a header value (sent as written)"),
                );
            }
        }
    }
    for (i, name) in ops.remove.iter().enumerate() {
        ctx.check(&path.f("remove").i(i), validate_header_operation_name(name, false));
    }
}

/// `exportTo`: `*`, `.`, `~` (ServiceEntry only) or namespace names; no duplicates; `*` alone.
pub(crate) fn check_export_to(ctx: &mut Ctx<'_>, path: &P, export_to: &[String], service_entry: bool) {
    let namespace = ctx.resource.namespace.to_string();
    let mut seen: Vec<String> = Vec::new();
    for (i, e) in export_to.iter().enumerate() {
        let key = if e == "." { namespace.clone() } else { e.clone() };
        if seen.contains(&key) {
            if key != *e {
                ctx.error(&path.i(i), format!("duplicate entries in exportTo: . and current namespace {namespace}"));
            } else {
                ctx.error(&path.i(i), format!("duplicate entries in exportTo for entry {e}"));
            }
            continue;
        }
        let valid = e == "*" || e == "." || (e == "~" && service_entry) || is_dns1123_label(e);
        if !valid {
            ctx.error(&path.i(i), format!("invalid exportTo value {e:?}"));
        }
        seen.push(key);
    }
    if export_to.len() > 1 && export_to.iter().any(|e| e == "*") {
        ctx.error(path, "cannot have both public (*) and non-public exportTo values for a resource");
    }
    if export_to.len() > 1 && export_to.iter().any(|e| e == "~") {
        ctx.error(path, "cannot export service entry to no one (~) and someone");
    }
}

/// Port protocols Istio knows (`protocol.Parse`), case-insensitively.
pub(crate) fn is_known_protocol(p: &str) -> bool {
    matches!(
        p.to_ascii_uppercase().as_str(),
        "TCP"
            | "UDP"
            | "GRPC"
            | "GRPC-WEB"
            | "HTTP"
            | "HTTP_PROXY"
            | "HTTP2"
            | "HTTPS"
            | "TLS"
            | "MONGO"
            | "REDIS"
            | "MYSQL"
            | "HBONE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(validate_wildcard_domain("*.foo.bar").is_ok());
        assert!(validate_wildcard_domain("*foo.baz").is_ok());
        assert!(validate_wildcard_domain("reviews").is_ok());
        assert!(validate_wildcard_domain("foo.ba!r").is_err());
        assert!(validate_wildcard_domain("foo.*").is_err());
        assert!(validate_wildcard_domain("").is_err());
        assert!(validate_fqdn("istio.io.").is_ok());
        assert!(validate_fqdn("1.2.3.4").is_err());
    }

    #[test]
    fn header_values() {
        assert!(validate_header_value("plain").is_ok());
        assert!(validate_header_value("100%%").is_ok());
        assert!(validate_header_value("%HOSTNAME%").is_ok());
        assert!(validate_header_value("%REQ(x-foo)%").is_ok());
        assert!(validate_header_value("abcd%oijasodifj").is_err());
    }

    #[test]
    fn label_keys() {
        assert!(valid_label_key("app"));
        assert!(valid_label_key("topology.istio.io/network"));
        assert!(!valid_label_key("-app"));
        assert!(!valid_label_key(""));
    }
}
