//! Local replies: every response meshwork answers itself, built in one place with Envoy's status
//! codes, bodies and response flags
//! (<https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage#config-access-log-format-response-flags>).
//!
//! | reply | status | flag |
//! |---|---|---|
//! | no rule matched | 404 | `NR` |
//! | fault abort | the fault's | `FI` |
//! | connection-pool overflow | 503 | `UO` |
//! | no healthy endpoint | 503 | `UH` |
//! | connect failure / reset before a response | 503 | `UF` / `UC` |
//! | route timeout, per-try timeout | 504 | `UT` |
//! | CORS preflight answered by the rule's `corsPolicy` | 200 | `-` |
//!
//! Layers add flags to upstream responses too (`DI` after an injected delay, `URX` when retries
//! ran out), through the [`ResponseFlags`] extension.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use mesh_core::retry::TryOutcome;

/// `grpc-status` (a constant, so lookups hash without parsing the name first).
pub(crate) const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

use crate::body::MeshBody;

/// Why meshwork answered a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalReply {
    /// The host has a VirtualService but no rule matched: 404, flag `NR`.
    NoRoute,
    /// A rule redirects: its status and `Location`.
    Redirect {
        /// 3xx status.
        status: u16,
        /// Absolute URL.
        location: String,
    },
    /// A rule's `directResponse`.
    Direct {
        /// Status.
        status: u16,
        /// Body.
        body: Option<Bytes>,
    },
    /// A fault abort: its HTTP status, or a gRPC status (answered as HTTP 200 with `grpc-status`),
    /// flag `FI`.
    FaultAbort {
        /// HTTP status (for gRPC aborts, 200).
        status: u16,
        /// gRPC status code, for gRPC aborts.
        grpc_status: Option<u32>,
    },
    /// The destination's connection pool is full: 503, flag `UO`.
    Overflow,
    /// The destination has no endpoint that may take traffic: 503, flag `UH`.
    NoHealthyUpstream,
    /// The upstream could not be reached or closed before answering: 503, flag `UF` (connect
    /// failure) or `UC` (reset).
    UpstreamFailure {
        /// How the try ended ([`TryOutcome::ConnectFailure`], [`TryOutcome::Reset`] or
        /// [`TryOutcome::RefusedStream`]).
        outcome: TryOutcome,
    },
    /// The route's timeout fired: 504, flag `UT`.
    Timeout,
    /// The per-try timeout fired: 504, flag `UT` (retried when the policy allows).
    PerTryTimeout,
    /// A CORS preflight answered by the rule's `corsPolicy` (Envoy's CORS filter): 200, no body,
    /// no flag, these `access-control-*` headers.
    CorsPreflight {
        /// The headers of the answer (see [`mesh_core::cors`]).
        headers: mesh_core::CorsHeaders,
    },
}

impl LocalReply {
    /// The flag this reply carries.
    pub fn response_flags(&self) -> ResponseFlags {
        match self {
            LocalReply::NoRoute => ResponseFlags::NO_ROUTE,
            LocalReply::FaultAbort { .. } => ResponseFlags::FAULT_ABORT,
            LocalReply::Redirect { .. } | LocalReply::Direct { .. } | LocalReply::CorsPreflight { .. } => {
                ResponseFlags::NONE
            }
            LocalReply::Overflow => ResponseFlags::OVERFLOW,
            LocalReply::NoHealthyUpstream => ResponseFlags::NO_HEALTHY_UPSTREAM,
            LocalReply::UpstreamFailure { outcome: TryOutcome::ConnectFailure } => ResponseFlags::CONNECT_FAILURE,
            LocalReply::UpstreamFailure { .. } => ResponseFlags::CONNECTION_TERMINATED,
            LocalReply::Timeout | LocalReply::PerTryTimeout => ResponseFlags::TIMEOUT,
        }
    }

    /// Envoy's response flag (`-` when none).
    pub fn response_flag(&self) -> String {
        self.response_flags().to_string()
    }

    /// How this reply counts for retries and outlier detection, if it stands for a failed try.
    pub fn try_outcome(&self) -> Option<TryOutcome> {
        match self {
            LocalReply::UpstreamFailure { outcome } => Some(*outcome),
            LocalReply::PerTryTimeout => Some(TryOutcome::PerTryTimeout),
            _ => None,
        }
    }

    fn status_and_body(&self) -> (u16, Bytes) {
        match self {
            LocalReply::NoRoute => (404, Bytes::new()),
            LocalReply::Redirect { status, .. } => (*status, Bytes::new()),
            LocalReply::Direct { status, body } => (*status, body.clone().unwrap_or_default()),
            LocalReply::FaultAbort { status, .. } => (*status, Bytes::from_static(b"fault filter abort")),
            LocalReply::Overflow => (
                503,
                Bytes::from_static(
                    b"upstream connect error or disconnect/reset before headers. reset reason: overflow",
                ),
            ),
            LocalReply::NoHealthyUpstream => (503, Bytes::from_static(b"no healthy upstream")),
            LocalReply::UpstreamFailure { outcome: TryOutcome::ConnectFailure } => (
                503,
                Bytes::from_static(
                    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                ),
            ),
            LocalReply::UpstreamFailure { .. } => (
                503,
                Bytes::from_static(
                    b"upstream connect error or disconnect/reset before headers. reset reason: connection termination",
                ),
            ),
            LocalReply::Timeout | LocalReply::PerTryTimeout => (504, Bytes::from_static(b"upstream request timeout")),
            LocalReply::CorsPreflight { .. } => (200, Bytes::new()),
        }
    }

    /// The HTTP response, with any body type that can carry a local body.
    pub fn into_response<B: LocalBody>(self) -> Response<B> {
        let (status, body) = self.status_and_body();
        let flags = self.response_flags();
        let outcome = self.try_outcome();
        let mut response = Response::new(B::local(body.clone()));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        match &self {
            LocalReply::Redirect { location, .. } => {
                if let Ok(v) = HeaderValue::from_str(location) {
                    headers.insert(http::header::LOCATION, v);
                }
            }
            LocalReply::Overflow => {
                // Envoy marks its circuit-breaker refusals so callers (and other Envoys) do not
                // retry into the overload (envoyproxy/envoy#1793).
                headers.insert("x-envoy-overloaded", HeaderValue::from_static("true"));
                headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            LocalReply::FaultAbort { grpc_status: Some(code), .. } => {
                headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert(GRPC_STATUS, HeaderValue::from(*code));
            }
            // The filter's reply is its headers only (Envoy's `encodeHeaders(..., end_stream)`).
            LocalReply::CorsPreflight { headers: cors } => cors.apply(headers),
            _ => {
                if !body.is_empty() {
                    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                }
            }
        }
        if !body.is_empty() || status >= 400 {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        response.extensions_mut().insert(flags);
        if let Some(outcome) = outcome {
            response.extensions_mut().insert(FailedTry(outcome));
        }
        response.extensions_mut().insert(Local);
        response
    }
}

#[doc(no_inline)]
pub use crate::context::{FailedTry, Local};

/// Envoy's response flags of a response, as a set (in the response's extensions).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ResponseFlags(u16);

impl ResponseFlags {
    /// No flag (`-`).
    pub const NONE: ResponseFlags = ResponseFlags(0);
    /// `NR`: no route.
    pub const NO_ROUTE: ResponseFlags = ResponseFlags(1);
    /// `UH`: no healthy upstream.
    pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags(1 << 1);
    /// `UF`: upstream connection failure.
    pub const CONNECT_FAILURE: ResponseFlags = ResponseFlags(1 << 2);
    /// `UO`: upstream overflow (circuit breaking).
    pub const OVERFLOW: ResponseFlags = ResponseFlags(1 << 3);
    /// `UT`: upstream request timeout.
    pub const TIMEOUT: ResponseFlags = ResponseFlags(1 << 4);
    /// `URX`: the retry limit was reached.
    pub const RETRY_LIMIT: ResponseFlags = ResponseFlags(1 << 5);
    /// `DI`: the request was delayed by fault injection.
    pub const DELAY_INJECTED: ResponseFlags = ResponseFlags(1 << 6);
    /// `FI`: the request was aborted by fault injection.
    pub const FAULT_ABORT: ResponseFlags = ResponseFlags(1 << 7);
    /// `UC`: upstream connection termination.
    pub const CONNECTION_TERMINATED: ResponseFlags = ResponseFlags(1 << 8);

    const NAMES: [(ResponseFlags, &'static str); 9] = [
        (Self::NO_HEALTHY_UPSTREAM, "UH"),
        (Self::CONNECT_FAILURE, "UF"),
        (Self::OVERFLOW, "UO"),
        (Self::NO_ROUTE, "NR"),
        (Self::RETRY_LIMIT, "URX"),
        (Self::TIMEOUT, "UT"),
        (Self::DELAY_INJECTED, "DI"),
        (Self::FAULT_ABORT, "FI"),
        (Self::CONNECTION_TERMINATED, "UC"),
    ];

    /// Is every flag of `other` set?
    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// No flag set?
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets.
    pub fn union(self, other: ResponseFlags) -> ResponseFlags {
        ResponseFlags(self.0 | other.0)
    }

    /// Add `flags` to a response's flags.
    pub fn add_to<B>(flags: ResponseFlags, response: &mut Response<B>) {
        let current = response.extensions().get::<ResponseFlags>().copied().unwrap_or_default();
        response.extensions_mut().insert(current.union(flags));
    }

    /// The flags of a response.
    pub fn of<B>(response: &Response<B>) -> ResponseFlags {
        response.extensions().get::<ResponseFlags>().copied().unwrap_or_default()
    }

    /// The flags of a response's parts.
    pub fn of_parts(parts: &http::response::Parts) -> ResponseFlags {
        parts.extensions.get::<ResponseFlags>().copied().unwrap_or_default()
    }

    /// A static label for the common cases (no allocation), else `None`.
    pub fn as_static_str(self) -> Option<&'static str> {
        if self.is_empty() {
            return Some("-");
        }
        Self::NAMES.iter().find(|(f, _)| *f == self).map(|(_, n)| *n)
    }
}

impl fmt::Display for ResponseFlags {
    /// Envoy's spelling: comma-separated letters, `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseFlags({self})")
    }
}

/// A response body type that can carry a body meshwork wrote itself.
pub trait LocalBody: Sized {
    /// A complete body with these bytes.
    fn local(bytes: Bytes) -> Self;

    /// The endpoint (or cluster) that answered, when the body records it ([`MeshBody`] does;
    /// see [`crate::context`]).
    fn endpoint(&self) -> Option<&crate::context::Upstream> {
        None
    }

    /// Record the endpoint (or cluster) that answered; a body that cannot carry it drops it.
    fn set_endpoint(&mut self, endpoint: crate::context::Upstream) {
        drop(endpoint);
    }

    /// Bound the rest of this body by the route's timeout, which Envoy applies until the response
    /// is complete ([`MeshBody`] does; by default the timer is dropped and the timeout covers
    /// the time to the response headers only).
    fn set_deadline(&mut self, deadline: std::pin::Pin<Box<tokio::time::Sleep>>) {
        drop(deadline);
    }

    /// Whether the route's timeout cut this body off (see [`LocalBody::set_deadline`]).
    fn timed_out(&self) -> bool {
        false
    }
}

impl<B> LocalBody for MeshBody<B> {
    fn local(bytes: Bytes) -> Self {
        MeshBody::local(bytes)
    }

    fn endpoint(&self) -> Option<&crate::context::Upstream> {
        MeshBody::endpoint(self)
    }

    fn set_endpoint(&mut self, endpoint: crate::context::Upstream) {
        MeshBody::set_endpoint(self, endpoint);
    }

    fn set_deadline(&mut self, deadline: std::pin::Pin<Box<tokio::time::Sleep>>) {
        MeshBody::set_deadline(self, deadline);
    }

    fn timed_out(&self) -> bool {
        MeshBody::timed_out(self)
    }
}

impl LocalBody for Full<Bytes> {
    fn local(bytes: Bytes) -> Self {
        Full::new(bytes)
    }
}

impl LocalBody for String {
    fn local(bytes: Bytes) -> Self {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// How a client error ended the try: a failure to connect, or a reset / closed connection.
///
/// Walks the error's source chain: hyper-util's connect errors and `io::ErrorKind`s that mean
/// the connection was never made (refused, unreachable, timed out) are connect failures; an
/// HTTP/2 `REFUSED_STREAM` is a refused stream; anything else is a reset.
pub fn classify_error(error: &(dyn StdError + 'static)) -> TryOutcome {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && client.is_connect()
        {
            return TryOutcome::ConnectFailure;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable | TimedOut => {
                    return TryOutcome::ConnectFailure;
                }
                _ => {}
            }
        }
        if e.to_string().contains("REFUSED_STREAM") {
            return TryOutcome::RefusedStream;
        }
        current = e.source();
    }
    TryOutcome::Reset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_as_envoy_does() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::OVERFLOW.to_string(), "UO");
        assert_eq!(ResponseFlags::DELAY_INJECTED.union(ResponseFlags::FAULT_ABORT).to_string(), "DI,FI");
        assert_eq!(ResponseFlags::RETRY_LIMIT.as_static_str(), Some("URX"));
        assert_eq!(ResponseFlags::RETRY_LIMIT.union(ResponseFlags::TIMEOUT).as_static_str(), None);
    }

    #[test]
    fn local_replies_carry_status_flag_and_outcome() {
        let r: Response<Full<Bytes>> = LocalReply::Overflow.into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(ResponseFlags::of(&r), ResponseFlags::OVERFLOW);
        let r: Response<Full<Bytes>> = LocalReply::PerTryTimeout.into_response();
        assert_eq!(r.status(), 504);
        assert_eq!(r.extensions().get::<FailedTry>(), Some(&FailedTry(TryOutcome::PerTryTimeout)));
        let r: Response<Full<Bytes>> = LocalReply::FaultAbort { status: 200, grpc_status: Some(14) }.into_response();
        assert_eq!(r.headers()["grpc-status"], "14");
    }

    #[test]
    fn refused_connections_are_connect_failures() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_error(&e), TryOutcome::ConnectFailure);
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify_error(&e), TryOutcome::Reset);
    }
}
