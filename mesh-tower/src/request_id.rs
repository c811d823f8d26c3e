//! `x-request-id` and sensitive headers, the outermost layers of the stack (tower-http's).
//!
//! - **`x-request-id`**: Envoy gives every request that has none a random UUID (v4) in
//!   `x-request-id` and leaves an existing one as it is; Istio's access logs and traces key on
//!   it, and services pass it on. The stack does the same with tower-http's `SetRequestId`,
//!   generating ids with [`RequestIds`] (the thread's fast random numbers: no system call per
//!   request, as `uuid`'s default generator would make). The id is in the request's headers and
//!   its extensions (`tower_http::request_id::RequestId`), and in the access log line.
//! - **Sensitive headers**: `authorization`, `proxy-authorization` and `cookie` are marked
//!   sensitive (tower-http's `SetSensitiveRequestHeaders`): `http`'s `Debug` prints them as
//!   `Sensitive`, so a `{:?}` of a request in a log or a span never shows a credential.
//!
//! A panic below the stack in `mesh proxy` is answered 500 by the proxy's own request future
//! (`mesh_proxy::server`), not by tower-http's `CatchPanic`, whose boxed response body would be
//! one more allocation per request on the proxy's hot path.

use http::Request;
use http::header::{AUTHORIZATION, COOKIE, HeaderName, PROXY_AUTHORIZATION};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The request headers marked sensitive (see the module docs).
pub const SENSITIVE_HEADERS: [HeaderName; 3] = [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE];

/// Random UUID v4 request ids (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIds;

impl RequestIds {
    /// A new random id, formatted as a UUID v4 (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    pub fn next_id() -> String {
        String::from_utf8_lossy(&Self::next_bytes()).into_owned()
    }

    /// The id's 36 ASCII bytes, formatted on the stack (no allocation).
    fn next_bytes() -> [u8; 36] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let bits = crate::rng::u128();
        // Version 4, variant 10 (RFC 9562 §5.4).
        let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            *slot = DIGITS[((bits >> (124 - 4 * nibble)) & 0xf) as usize];
            nibble += 1;
        }
        out
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        // One allocation: the value owns the array.
        let value = http::HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(Self::next_bytes())).ok()?;
        Some(RequestId::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids_and_differ() {
        let a = RequestIds::next_id();
        let b = RequestIds::next_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('4'), "version 4: {id}");
            assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "variant: {id}");
        }
    }
}
