//! Local replies: every response meshwork answers itself, built in one place with Envoy's
//! status codes and response flags
//! (<https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage#config-access-log-format-response-flags>).

use http::{HeaderValue, Response, StatusCode};

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
        body: Option<bytes::Bytes>,
    },
    /// A fault abort: its HTTP status, or a gRPC status (answered as HTTP 200 with `grpc-status`),
    /// flag `FI`.
    FaultAbort {
        /// HTTP status (for gRPC aborts, 200).
        status: u16,
        /// gRPC status code, for gRPC aborts.
        grpc_status: Option<u32>,
    },
}

impl LocalReply {
    /// Envoy's response flag for the access log and `response_flags` metric label (`-` when none).
    pub fn response_flag(&self) -> &'static str {
        match self {
            LocalReply::NoRoute => "NR",
            LocalReply::FaultAbort { .. } => "FI",
            LocalReply::Redirect { .. } | LocalReply::Direct { .. } => "-",
        }
    }

    /// The HTTP response.
    pub fn into_response<B>(self) -> Response<MeshBody<B>> {
        let flag = self.response_flag();
        let (status, body, extra): (u16, MeshBody<B>, Vec<(&'static str, HeaderValue)>) = match self {
            LocalReply::NoRoute => (404, MeshBody::empty(), Vec::new()),
            LocalReply::Redirect { status, location } => {
                let headers = HeaderValue::from_str(&location).map(|v| vec![("location", v)]).unwrap_or_default();
                (status, MeshBody::empty(), headers)
            }
            LocalReply::Direct { status, body } => {
                (status, body.map_or_else(MeshBody::empty, MeshBody::local), Vec::new())
            }
            LocalReply::FaultAbort { status, grpc_status } => {
                let mut headers = Vec::new();
                if let Some(code) = grpc_status {
                    headers.push(("content-type", HeaderValue::from_static("application/grpc")));
                    headers.push(("grpc-status", HeaderValue::from(code)));
                }
                (status, MeshBody::local("fault filter abort"), headers)
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in extra {
            response.headers_mut().insert(name, value);
        }
        if flag != "-" {
            response.extensions_mut().insert(ResponseFlag(flag));
        }
        response
    }
}

/// Envoy's response flag of a response meshwork produced or shaped, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFlag(pub &'static str);
