//! What a proxy forwards of a connection's own headers: hop-by-hop headers and upgrades.
//!
//! One decision for both directions and both HTTP versions, applied by `mesh proxy` to every
//! request before routing and to every response before it goes back (in-process clients are the
//! origin of their own headers and need none of it):
//!
//! - **Hop-by-hop headers go** (RFC 9110 §7.6.1): `Connection` and every header it names,
//!   `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding` (each side frames its own message),
//!   `TE` unless it is `trailers` (the only value HTTP/2 allows, and what gRPC sends), and
//!   `Upgrade` unless the upgrade is one the proxy carries. HTTP/2 forbids these headers on the
//!   wire (RFC 9113 §8.2.2), so a request or response that crosses from HTTP/1.1 to HTTP/2 would
//!   otherwise be malformed.
//! - **Upgrades** ([`upgrade`]), as Istio configures Envoy's HTTP connection manager
//!   (`upgrade_configs`: `websocket`; istio/istio `pilot/pkg/networking/core/listener.go`):
//!   - `websocket` passes (with `Connection: upgrade`), and the proxy joins the two upgraded
//!     connections when the upstream answers 101;
//!   - `h2c` is ignored: `Upgrade`, `HTTP2-Settings` and the `Connection` tokens go and the
//!     request is served as plain HTTP/1.1 (Envoy since envoyproxy/envoy#7981, after
//!     istio/istio#16391: Java 11+ clients send it on every request; RFC 9113 §3.1 dropped the
//!     upgrade, and a proxy that forwarded it would let the client tunnel raw HTTP/2 past every
//!     routing rule);
//!   - any other protocol is refused with 403 (Envoy's `upgrade_failed`).

use http::HeaderMap;
use http::header::{CONNECTION, HeaderName, TE, TRANSFER_ENCODING, UPGRADE};

/// What to do with a request's `Upgrade` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// No upgrade asked.
    None,
    /// A WebSocket upgrade: forwarded, joined on 101.
    Websocket,
    /// An HTTP/2 cleartext upgrade: dropped, the request served as HTTP/1.1.
    IgnoreH2c,
    /// Any other protocol: 403.
    Refuse,
}

/// The upgrade a request asks for (see the module docs). Several protocols in one `Upgrade`
/// header: the first decides, as Envoy reads it.
pub fn upgrade(headers: &HeaderMap) -> Upgrade {
    let Some(value) = headers.get(UPGRADE) else { return Upgrade::None };
    let first = value.to_str().ok().and_then(|v| v.split(',').next()).map(str::trim).unwrap_or("");
    let protocol = first.split('/').next().unwrap_or("");
    if protocol.eq_ignore_ascii_case("websocket") {
        Upgrade::Websocket
    } else if protocol.eq_ignore_ascii_case("h2c") {
        Upgrade::IgnoreH2c
    } else {
        Upgrade::Refuse
    }
}

const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Remove the hop-by-hop headers of a message (see the module docs). `websocket` keeps
/// `Upgrade` and `Connection: upgrade` (a WebSocket upgrade request, or the 101 answering it).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, websocket: bool) {
    // The common case in one pass over the names, without allocating: none of them is there.
    let hop = |name: &HeaderName| {
        *name == CONNECTION
            || *name == TRANSFER_ENCODING
            || *name == TE
            || (*name == UPGRADE && !websocket)
            || *name == KEEP_ALIVE
            || *name == PROXY_CONNECTION
            || *name == HTTP2_SETTINGS
    };
    if !headers.keys().any(hop) {
        return;
    }
    let te_trailers_only = headers.get_all(TE).iter().all(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    // Headers the `Connection` header names (never the ones a WebSocket upgrade needs).
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .filter(|n| !(websocket && *n == UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, KEEP_ALIVE, PROXY_CONNECTION, TRANSFER_ENCODING, HTTP2_SETTINGS] {
        headers.remove(name);
    }
    if !te_trailers_only {
        headers.remove(TE);
    }
    if websocket {
        headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut n: Vec<String> = h.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
        n.sort();
        n
    }

    #[test]
    fn upgrades_are_websocket_ignored_h2c_or_refused() {
        for (value, expected) in [
            ("websocket", Upgrade::Websocket),
            ("WebSocket", Upgrade::Websocket),
            ("h2c", Upgrade::IgnoreH2c),
            ("H2C", Upgrade::IgnoreH2c),
            ("TLS/1.2", Upgrade::Refuse),
            ("h2", Upgrade::Refuse),
            ("foo, websocket", Upgrade::Refuse),
            ("", Upgrade::Refuse),
        ] {
            assert_eq!(upgrade(&headers(&[("upgrade", value)])), expected, "{value:?}");
        }
        assert_eq!(upgrade(&HeaderMap::new()), Upgrade::None);
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a [&'a str]);
        let table: &[Case<'_>] = &[
            // Nothing to do: untouched.
            (&[("host", "a"), ("te", "trailers")], false, &["host: a", "te: trailers"]),
            // RFC 9110 §7.6.1: Connection and what it names.
            (
                &[
                    ("connection", "x-secret, keep-alive"),
                    ("x-secret", "1"),
                    ("keep-alive", "timeout=5"),
                    ("x-kept", "1"),
                ],
                false,
                &["x-kept: 1"],
            ),
            // The h2c upgrade, as curl --http2 sends it: all of it goes.
            (
                &[
                    ("connection", "Upgrade, HTTP2-Settings"),
                    ("upgrade", "h2c"),
                    ("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"),
                ],
                false,
                &[],
            ),
            // A WebSocket upgrade keeps Upgrade and Connection: upgrade, nothing else it names.
            (
                &[
                    ("connection", "keep-alive, Upgrade, x-hop"),
                    ("upgrade", "websocket"),
                    ("x-hop", "1"),
                    ("sec-websocket-key", "k"),
                ],
                true,
                &["connection: upgrade", "sec-websocket-key: k", "upgrade: websocket"],
            ),
            // TE other than trailers, Transfer-Encoding, Proxy-Connection.
            (&[("te", "gzip"), ("transfer-encoding", "chunked"), ("proxy-connection", "keep-alive")], false, &[]),
            // Connection naming a header that is not a valid name: ignored, the rest goes.
            (&[("connection", "bad header, x-a"), ("x-a", "1"), ("x-b", "2")], false, &["x-b: 2"]),
        ];
        for (input, websocket, expected) in table {
            let mut h = headers(input);
            strip_hop_by_hop(&mut h, *websocket);
            assert_eq!(names(&h), expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{input:?}");
        }
    }
}
