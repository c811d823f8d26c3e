//! Envoy's `%VARIABLE%` syntax in header values.
//!
//! Istio hands VirtualService `headers` values to Envoy as they are written, and Envoy expands
//! its command operators in them
//! (<https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#custom-request-response-headers>):
//! `%%` is a literal `%`, and `%NAME%` or `%NAME(arg)%` is replaced when the header is added. A
//! header whose value comes out empty is not added (Envoy's `HeaderValueOption.keep_empty_value`
//! defaults to false: "custom headers with empty values are dropped"; Istio never sets it).
//! Expanded here:
//!
//! | variable | value |
//! |---|---|
//! | `DOWNSTREAM_REMOTE_ADDRESS`, `…_WITHOUT_PORT`, `DOWNSTREAM_REMOTE_PORT` | the client connection's peer |
//! | `DOWNSTREAM_LOCAL_ADDRESS`, `…_WITHOUT_PORT`, `DOWNSTREAM_LOCAL_PORT` | the address the client connected to |
//! | `UPSTREAM_REMOTE_ADDRESS`, `…_WITHOUT_PORT`, `UPSTREAM_REMOTE_PORT` | the endpoint that answered (response headers; empty on requests, as in Envoy) |
//! | `HOSTNAME` | the machine's host name |
//! | `PROTOCOL` | `HTTP/1.1`, `HTTP/2`, ... |
//! | `START_TIME` | when the header is added (the caller's clock), `YYYY-MM-DDTHH:MM:SS.mmmZ` (no format argument) |
//! | `REQ(name)` | the request header `name` (request headers: as the request has it then) |
//! | `RESP(name)` | the response header `name` (response headers only) |
//!
//! Anything else is kept as written, and `mesh validate` reports it as unsupported (Envoy would
//! reject the configuration).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// A variable meshwork expands (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderVar {
    /// `DOWNSTREAM_REMOTE_ADDRESS` (and `_WITHOUT_PORT`, `_PORT` by [`AddressPart`]).
    DownstreamRemote(AddressPart),
    /// `DOWNSTREAM_LOCAL_ADDRESS`.
    DownstreamLocal(AddressPart),
    /// `UPSTREAM_REMOTE_ADDRESS`.
    UpstreamRemote(AddressPart),
    /// `HOSTNAME`.
    Hostname,
    /// `PROTOCOL`.
    Protocol,
    /// `START_TIME`.
    StartTime,
    /// `REQ(name)`.
    Request(http::HeaderName),
    /// `RESP(name)`.
    Response(http::HeaderName),
}

/// Which part of an address a variable takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    /// `ip:port`.
    Full,
    /// `ip`.
    WithoutPort,
    /// `port`.
    Port,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Var(HeaderVar),
}

/// A header value with variables, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFormat {
    source: Arc<str>,
    parts: Box<[Part]>,
}

/// What a header value is, once `%%` and variables are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedValue {
    /// No variables: the value with `%%` turned into `%`.
    Literal(String),
    /// Variables to expand when the header is added.
    Format(HeaderFormat),
}

/// The variables in `value` meshwork does not expand (names as written).
pub fn unsupported_variables(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in tokens(value) {
        if let Token::Var(name, arg) = token
            && var(name, arg).is_none()
        {
            out.push(name.to_string());
        }
    }
    out
}

enum Token<'a> {
    Text(&'a str),
    Percent,
    Var(&'a str, Option<&'a str>),
}

/// Split a value into text, `%%` and `%NAME%` / `%NAME(arg)%` (an unterminated `%` is text).
fn tokens(value: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        if at > 0 {
            out.push(Token::Text(&rest[..at]));
        }
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push(Token::Percent);
            rest = tail;
            continue;
        }
        let name_len = after.bytes().take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_').count();
        let name = &after[..name_len];
        let mut tail = &after[name_len..];
        let mut arg = None;
        if let Some(open) = tail.strip_prefix('(')
            && let Some(close) = open.find(")%")
        {
            arg = Some(&open[..close]);
            tail = &open[close + 1..];
        }
        match tail.strip_prefix('%') {
            Some(after_var) if !name.is_empty() => {
                out.push(Token::Var(name, arg));
                rest = after_var;
            }
            _ => {
                out.push(Token::Text(&rest[at..at + 1]));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        out.push(Token::Text(rest));
    }
    out
}

fn var(name: &str, arg: Option<&str>) -> Option<HeaderVar> {
    let address = |base: &str| -> Option<AddressPart> {
        let rest = name.strip_prefix(base)?;
        match rest {
            "_ADDRESS" => Some(AddressPart::Full),
            "_ADDRESS_WITHOUT_PORT" => Some(AddressPart::WithoutPort),
            "_PORT" => Some(AddressPart::Port),
            _ => None,
        }
    };
    let header =
        |a: Option<&str>| a.and_then(|h| http::HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes()).ok());
    Some(match (name, arg) {
        ("HOSTNAME", None) => HeaderVar::Hostname,
        ("PROTOCOL", None) => HeaderVar::Protocol,
        ("START_TIME", None) => HeaderVar::StartTime,
        ("REQ", a) => HeaderVar::Request(header(a)?),
        ("RESP", a) => HeaderVar::Response(header(a)?),
        (_, None) => {
            if let Some(p) = address("DOWNSTREAM_REMOTE") {
                HeaderVar::DownstreamRemote(p)
            } else if let Some(p) = address("DOWNSTREAM_LOCAL") {
                HeaderVar::DownstreamLocal(p)
            } else if let Some(p) = address("UPSTREAM_REMOTE") {
                HeaderVar::UpstreamRemote(p)
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

/// Read a header value as Envoy does (see the module docs).
///
/// ```
/// use mesh_core::header_format::{ParsedValue, parse};
/// assert_eq!(parse("100%%"), ParsedValue::Literal("100%".into()));
/// assert!(matches!(parse("ip %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"), ParsedValue::Format(_)));
/// ```
pub fn parse(value: &str) -> ParsedValue {
    let mut parts: Vec<Part> = Vec::new();
    let mut literal = String::new();
    let mut has_var = false;
    for token in tokens(value) {
        match token {
            Token::Text(t) => literal.push_str(t),
            Token::Percent => literal.push('%'),
            Token::Var(name, arg) => match var(name, arg) {
                Some(v) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal).into_boxed_str()));
                    }
                    parts.push(Part::Var(v));
                    has_var = true;
                }
                // Not expanded: kept as written.
                None => {
                    literal.push('%');
                    literal.push_str(name);
                    if let Some(a) = arg {
                        literal.push('(');
                        literal.push_str(a);
                        literal.push(')');
                    }
                    literal.push('%');
                }
            },
        }
    }
    if !has_var {
        return ParsedValue::Literal(literal);
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal.into_boxed_str()));
    }
    ParsedValue::Format(HeaderFormat { source: Arc::from(value), parts: parts.into_boxed_slice() })
}

/// What the variables read, for one header edit.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderContext<'a> {
    /// The client connection's peer.
    pub downstream_remote: Option<SocketAddr>,
    /// The address the client connected to.
    pub downstream_local: Option<SocketAddr>,
    /// The endpoint that answered (`host:port`).
    pub upstream: Option<&'a str>,
    /// The request's HTTP version.
    pub version: Option<http::Version>,
    /// The request's headers, when editing the response (`REQ(...)` on requests reads the map
    /// being edited).
    pub request: Option<&'a http::HeaderMap>,
    /// Wall-clock time for `START_TIME` (mesh-core reads no clock; `None` expands to nothing).
    pub now: Option<SystemTime>,
    /// The machine's host name for `HOSTNAME` (mesh-core reads no environment: the caller
    /// passes it; `None` expands to nothing).
    pub hostname: Option<&'a str>,
}

impl HeaderFormat {
    /// The value as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The value for this request: `headers` is the map being edited (requests: the request's;
    /// responses: the response's). `None` when it comes out empty (the header is not added).
    pub fn render(&self, ctx: &HeaderContext<'_>, headers: &http::HeaderMap) -> Option<http::HeaderValue> {
        let mut out = String::new();
        for part in self.parts.iter() {
            match part {
                Part::Literal(t) => out.push_str(t),
                Part::Var(v) => render_var(v, ctx, headers, &mut out),
            }
        }
        if out.is_empty() {
            return None;
        }
        http::HeaderValue::from_str(&out).ok()
    }
}

fn address(addr: Option<SocketAddr>, part: AddressPart, out: &mut String) {
    let Some(a) = addr else { return };
    match part {
        AddressPart::Full => out.push_str(&a.to_string()),
        AddressPart::WithoutPort => out.push_str(&a.ip().to_string()),
        AddressPart::Port => out.push_str(&a.port().to_string()),
    }
}

fn render_var(v: &HeaderVar, ctx: &HeaderContext<'_>, headers: &http::HeaderMap, out: &mut String) {
    let header_value = |map: &http::HeaderMap, name: &http::HeaderName| {
        map.get(name).and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_default()
    };
    match v {
        HeaderVar::DownstreamRemote(p) => address(ctx.downstream_remote, *p, out),
        HeaderVar::DownstreamLocal(p) => address(ctx.downstream_local, *p, out),
        HeaderVar::UpstreamRemote(p) => {
            let Some(up) = ctx.upstream else { return };
            match (up.parse::<SocketAddr>(), p) {
                (Ok(a), _) => address(Some(a), *p, out),
                (Err(_), AddressPart::Full) => out.push_str(up),
                (Err(_), AddressPart::WithoutPort) => out.push_str(up.rsplit_once(':').map_or(up, |(h, _)| h)),
                (Err(_), AddressPart::Port) => out.push_str(up.rsplit_once(':').map_or("", |(_, p)| p)),
            }
        }
        HeaderVar::Hostname => out.push_str(ctx.hostname.unwrap_or_default()),
        HeaderVar::Protocol => out.push_str(match ctx.version {
            Some(http::Version::HTTP_10) => "HTTP/1.0",
            Some(http::Version::HTTP_11) => "HTTP/1.1",
            Some(http::Version::HTTP_2) => "HTTP/2",
            Some(http::Version::HTTP_3) => "HTTP/3",
            _ => "",
        }),
        HeaderVar::StartTime => {
            if let Some(now) = ctx.now {
                out.push_str(&iso8601(now));
            }
        }
        HeaderVar::Request(name) => out.push_str(&header_value(ctx.request.unwrap_or(headers), name)),
        HeaderVar::Response(name) => {
            if ctx.request.is_some() {
                out.push_str(&header_value(headers, name));
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, Envoy's default `START_TIME` format.
fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(value: &str, ctx: &HeaderContext<'_>, headers: &http::HeaderMap) -> Option<String> {
        match parse(value) {
            ParsedValue::Literal(l) => Some(l),
            ParsedValue::Format(f) => f.render(ctx, headers).map(|v| v.to_str().unwrap_or("?").to_string()),
        }
    }

    #[test]
    fn variables_expand_and_percent_signs_unescape() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-user", http::HeaderValue::from_static("jason"));
        let ctx = HeaderContext {
            downstream_remote: "10.0.0.7:51234".parse().ok(),
            downstream_local: "10.0.0.1:8080".parse().ok(),
            upstream: Some("10.1.2.3:9080"),
            version: Some(http::Version::HTTP_11),
            request: None,
            now: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(951_782_400_005)),
            hostname: Some("node-7"),
        };
        let r = |v: &str| render(v, &ctx, &headers);
        assert_eq!(r("on %HOSTNAME%").as_deref(), Some("on node-7"));
        assert_eq!(r("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%").as_deref(), Some("10.0.0.7"));
        assert_eq!(r("%DOWNSTREAM_REMOTE_ADDRESS%").as_deref(), Some("10.0.0.7:51234"));
        assert_eq!(r("port %DOWNSTREAM_LOCAL_PORT%!").as_deref(), Some("port 8080!"));
        assert_eq!(r("%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%").as_deref(), Some("10.1.2.3"));
        assert_eq!(r("%PROTOCOL%").as_deref(), Some("HTTP/1.1"));
        assert_eq!(r("user=%REQ(X-User)%").as_deref(), Some("user=jason"));
        assert_eq!(r("100%%").as_deref(), Some("100%"));
        assert_eq!(r("%UNKNOWN_THING% and %%").as_deref(), Some("%UNKNOWN_THING% and %"));
        assert_eq!(
            unsupported_variables("%UNKNOWN_THING% %HOSTNAME% %START_TIME(%s)%"),
            ["UNKNOWN_THING", "START_TIME"]
        );
        // Empty values: not added.
        assert_eq!(r("%REQ(x-missing)%"), None);
        assert_eq!(render("%DOWNSTREAM_REMOTE_ADDRESS%", &HeaderContext::default(), &headers), None);
        assert_eq!(r("at %START_TIME%").as_deref(), Some("at 2000-02-29T00:00:00.005Z"));
    }

    #[test]
    fn civil_dates() {
        let at = |secs: u64, millis: u64| {
            iso8601(
                SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_secs(secs)
                    + std::time::Duration::from_millis(millis),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_000_000, 0), "2026-11-18T11:06:40.000Z");
    }
}
