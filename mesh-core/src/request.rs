//! The parts of a request routing looks at, and who sent it.
//!
//! Routing needs no body and no I/O: [`RequestView`] borrows the method, scheme, authority, path,
//! query and headers of a request (from an `http::Request`, a proxy's parsed request, or the
//! `mesh explain` command line), and [`ClientIdentity`] says which workload sends it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Read access to request headers by lower-case name.
pub trait HeaderSource {
    /// The value of header `name` (lower case). Several values are joined with `,`, as Envoy
    /// does before matching.
    fn header(&self, name: &str) -> Option<Cow<'_, str>>;
}

/// Up to this many header names, [`HeaderSource::header`] finds a name by comparing it with each
/// (a length check, mostly) instead of `HeaderMap::get_all(&str)`, which parses and hashes the
/// name: ~300 instructions per lookup, per request for every header a route matches on
/// (benches/RESULTS.md, session 12). The answer is the same either way.
const HEADER_SCAN_LIMIT: usize = 16;

impl HeaderSource for http::HeaderMap {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let all = if self.keys_len() <= HEADER_SCAN_LIMIT {
            // Stored names are lower case; `get_all(&str)` ignores the case of `name` too.
            let key = self.keys().find(|k| k.as_str().eq_ignore_ascii_case(name))?;
            self.get_all(key)
        } else {
            self.get_all(name)
        };
        let mut values = all.iter().filter_map(|v| v.to_str().ok());
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first},{second}");
                for v in values {
                    joined.push(',');
                    joined.push_str(v);
                }
                Some(Cow::Owned(joined))
            }
        }
    }
}

/// Headers as a list of `(name, value)` pairs (names compared case-insensitively).
impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut values = self.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let first = values.next()?;
        let rest: Vec<&str> = values.collect();
        if rest.is_empty() {
            Some(Cow::Borrowed(first))
        } else {
            Some(Cow::Owned(std::iter::once(first).chain(rest).collect::<Vec<_>>().join(",")))
        }
    }
}

/// What routing reads from a request.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    /// Method (`GET`).
    pub method: &'a str,
    /// Scheme (`http` or `https`).
    pub scheme: &'a str,
    /// Host header / `:authority`, possibly with a port.
    pub authority: &'a str,
    /// Path, without the query string.
    pub path: &'a str,
    /// Query string, without the `?`.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: &'a dyn HeaderSource,
    /// The port the request arrived on, when the receiver knows it better than the authority
    /// does: a Gateway listener's port (`8080` for `Host: bookinfo.example.com`). `port` matches
    /// use it; `None` falls back to the authority's port, then the scheme's.
    pub listener_port: Option<u16>,
}

impl std::fmt::Debug for RequestView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestView")
            .field("method", &self.method)
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestView<'a> {
    /// A view of an `http::Request` (or its parts). The authority comes from the URI, else the
    /// `Host` header; the scheme from the URI, else `http`.
    pub fn from_http(method: &'a http::Method, uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Self {
        let authority = uri
            .authority()
            .map(http::uri::Authority::as_str)
            .or_else(|| headers.get(http::header::HOST).and_then(|h| h.to_str().ok()))
            .unwrap_or("");
        RequestView {
            method: method.as_str(),
            scheme: uri.scheme_str().unwrap_or("http"),
            authority,
            path: uri.path(),
            query: uri.query(),
            headers,
            listener_port: None,
        }
    }

    /// The host part of the authority, lower case, without port or trailing dot.
    pub fn host(&self) -> String {
        let (host, _) = split_authority(self.authority);
        host.trim_end_matches('.').to_ascii_lowercase()
    }

    /// The port: the listener's when known, else the authority's, else the scheme's default
    /// (80 / 443).
    pub fn port(&self) -> u16 {
        if let Some(p) = self.listener_port {
            return p;
        }
        match split_authority(self.authority).1 {
            Some(p) => p,
            None if self.scheme.eq_ignore_ascii_case("https") => 443,
            None => 80,
        }
    }

    /// The first value of query parameter `name` (`Some("")` for a bare `?name`).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// The host of an authority as routing compares it: port and trailing dot removed, lower case
/// (borrowed when already so).
pub fn normalize_host(authority: &str) -> std::borrow::Cow<'_, str> {
    let (host, _) = split_authority(authority);
    let host = host.strip_suffix('.').unwrap_or(host);
    if has_ascii_uppercase(host.as_bytes()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

/// Does `bytes` hold an ASCII upper-case letter? Eight bytes at a time (the request's host, once
/// per request: a byte at a time cost ~280 instructions for a 31-byte name; benches/RESULTS.md,
/// session 12).
fn has_ascii_uppercase(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    if bytes.len() < 8 {
        return bytes.iter().any(u8::is_ascii_uppercase);
    }
    let upper = |chunk: &[u8]| {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or([0; 8]));
        // With each byte's high bit cleared no addition carries into the next byte: the high
        // bit of `y + (0x80 - b'A')` says `b >= b'A'`, of `y + (0x80 - b'Z' - 1)` says
        // `b > b'Z'`. Bytes that are not ASCII (high bit set) are masked out.
        let y = x & !HIGH;
        let at_least_a = y + ONES * u64::from(0x80 - b'A');
        let above_z = y + ONES * u64::from(0x80 - b'Z' - 1);
        at_least_a & !above_z & !x & HIGH != 0
    };
    // The last eight bytes cover the tail the whole chunks leave (overlapping is harmless).
    bytes.chunks_exact(8).any(upper) || upper(&bytes[bytes.len() - 8..])
}

/// Split `host[:port]` (IPv6 in brackets) into host and port. Anything else after a colon (no
/// digits, too large a number, an IPv6 address without brackets) is no port: the whole authority
/// is the host.
pub fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (authority, None);
    }
    // Scan back over the digits of a port (per request: no searching the whole name).
    let bytes = authority.as_bytes();
    let digits = bytes.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let colon = bytes.len() - digits;
    if digits == 0 || colon == 0 || bytes[colon - 1] != b':' {
        return (authority, None);
    }
    let host = &authority[..colon - 1];
    if host.bytes().any(|b| b == b':') {
        return (authority, None);
    }
    // Saturates just above the largest port, however many digits (leading zeros are allowed).
    let port = bytes[colon..].iter().fold(0u32, |port, d| (port * 10 + u32::from(d - b'0')).min(65_536));
    match u16::try_from(port) {
        Ok(port) => (host, Some(port)),
        Err(_) => (authority, None),
    }
}

/// The workload sending requests: its namespace and labels (for `sourceNamespace`,
/// `sourceLabels`, and resolving short host names).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientIdentity {
    /// Namespace (`default` when unset).
    pub namespace: Arc<str>,
    /// Labels (`app`, `version`, ...).
    pub labels: BTreeMap<Arc<str>, Arc<str>>,
    /// Where the client runs (`region/zone/subzone`), for locality-aware load balancing
    /// ([`crate::locality`]); `None`: unknown, every endpoint is as near as any other.
    pub locality: Option<crate::locality::Locality>,
}

impl ClientIdentity {
    /// A client in `namespace` with `labels`.
    pub fn new<'a>(namespace: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        ClientIdentity {
            namespace: Arc::from(if namespace.is_empty() { "default" } else { namespace }),
            labels: labels.into_iter().map(|(k, v)| (Arc::from(k), Arc::from(v))).collect(),
            locality: None,
        }
    }

    /// Place the client at `locality` (`region/zone/subzone`, as Istio writes it; Kubernetes
    /// takes it from the node's `topology.kubernetes.io/region` and `zone` labels).
    ///
    /// ```
    /// let client = mesh_core::ClientIdentity::new("default", []).with_locality("us-east1/us-east1-b");
    /// assert_eq!(client.locality.map(|l| l.zone.to_string()).as_deref(), Some("us-east1-b"));
    /// ```
    pub fn with_locality(mut self, locality: &str) -> Self {
        self.locality = Some(crate::locality::Locality::parse(locality));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(split_authority("reviews:9080"), ("reviews", Some(9080)));
        assert_eq!(split_authority("reviews"), ("reviews", None));
        assert_eq!(split_authority("[::1]:8080"), ("::1", Some(8080)));
        assert_eq!(split_authority("::1"), ("::1", None));
        assert_eq!(split_authority("1.2.3.4"), ("1.2.3.4", None));
        assert_eq!(split_authority("1.2.3.4:80"), ("1.2.3.4", Some(80)));
        assert_eq!(split_authority("host:"), ("host:", None));
        assert_eq!(split_authority("host:http"), ("host:http", None));
        assert_eq!(split_authority("host:99999"), ("host:99999", None));
        assert_eq!(split_authority(":80"), ("", Some(80)));
        assert_eq!(split_authority("fe80::1:80"), ("fe80::1:80", None));
        assert_eq!(split_authority("80"), ("80", None));
        assert_eq!(split_authority("host:65535"), ("host", Some(65535)));
        assert_eq!(split_authority("host:65536"), ("host:65536", None));
        assert_eq!(split_authority("host:000080"), ("host", Some(80)));
        assert_eq!(split_authority("host:99999999999"), ("host:99999999999", None));
        assert_eq!(split_authority("host:0080"), ("host", Some(80)));
    }

    #[test]
    fn views() {
        let headers: Vec<(String, String)> = vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())];
        let v = RequestView {
            method: "GET",
            scheme: "https",
            authority: "Reviews.Default.",
            path: "/p",
            query: Some("a=1&b&c=3"),
            headers: &headers,
            listener_port: None,
        };
        assert_eq!(v.host(), "reviews.default");
        assert_eq!(v.port(), 443);
        assert_eq!(v.query_param("b"), Some(""));
        assert_eq!(v.query_param("c"), Some("3"));
        assert_eq!(v.query_param("d"), None);
        assert_eq!(v.headers.header("x-a").as_deref(), Some("1,2"));
    }

    #[test]
    fn uppercase_found_eight_bytes_at_a_time_as_one_at_a_time() {
        for len in 0..40 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    if at + 1 < len {
                        bytes[at + 1] = b.wrapping_add(0x80);
                    }
                    let expected = bytes.iter().any(u8::is_ascii_uppercase);
                    assert_eq!(has_ascii_uppercase(&bytes), expected, "{bytes:?}");
                }
            }
        }
        assert_eq!(normalize_host("Reviews.Default.svc.cluster.local:9080"), "reviews.default.svc.cluster.local");
        assert!(matches!(normalize_host("reviews.default.svc.cluster.local."), Cow::Borrowed(_)));
    }

    /// `HeaderMap`'s lookup scans the names of a small map and hashes in a large one: the same
    /// answers either way (any case of the name, several values joined, absent, not a header name).
    #[test]
    fn header_map_lookups_small_and_large() {
        for extra in [0, HEADER_SCAN_LIMIT + 4] {
            let mut map = http::HeaderMap::new();
            map.append("x-a", http::HeaderValue::from_static("1"));
            map.append("x-b", http::HeaderValue::from_static("b"));
            map.append("x-a", http::HeaderValue::from_static("2"));
            map.append("x-a", http::HeaderValue::from_static("3"));
            map.append("x-bin", http::HeaderValue::from_bytes(b"\xff").expect("a header value"));
            for i in 0..extra {
                map.insert(
                    http::HeaderName::try_from(format!("x-pad-{i}")).expect("a header name"),
                    http::HeaderValue::from(i),
                );
            }
            assert_eq!(map.keys_len() > HEADER_SCAN_LIMIT, extra > 0);
            assert_eq!(map.header("x-a").as_deref(), Some("1,2,3"));
            assert_eq!(map.header("X-A").as_deref(), Some("1,2,3"));
            assert_eq!(map.header("x-b").as_deref(), Some("b"));
            assert_eq!(map.header("x-c"), None);
            assert_eq!(map.header("x-bin"), None, "a value that is not text is skipped");
            assert_eq!(map.header("x a"), None);
            assert_eq!(map.header(""), None);
        }
    }
}
