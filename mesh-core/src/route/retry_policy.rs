//! Compiled retry policies: Envoy's retry conditions (`retryOn`) and Istio's defaults.

use std::time::Duration;

/// Retry conditions, as Envoy defines them for `x-envoy-retry-on` and `x-envoy-retry-grpc-on`
/// (<https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on>).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// `5xx`: any 5xx response, reset or connect failure.
    pub server_error: bool,
    /// `gateway-error`: 502, 503, 504.
    pub gateway_error: bool,
    /// `reset`: no response (disconnect, reset, read timeout).
    pub reset: bool,
    /// `connect-failure`: the connection could not be made.
    pub connect_failure: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// `refused-stream`: HTTP/2 REFUSED_STREAM.
    pub refused_stream: bool,
    /// `retriable-status-codes`: the codes in `status_codes`.
    pub retriable_status_codes: bool,
    /// gRPC `cancelled`.
    pub grpc_cancelled: bool,
    /// gRPC `deadline-exceeded`.
    pub grpc_deadline_exceeded: bool,
    /// gRPC `internal`.
    pub grpc_internal: bool,
    /// gRPC `resource-exhausted`.
    pub grpc_resource_exhausted: bool,
    /// gRPC `unavailable`.
    pub grpc_unavailable: bool,
    /// Status codes retried with `retriable-status-codes`.
    pub status_codes: Box<[u16]>,
}

impl RetryOn {
    /// Parse Istio's comma-separated `retryOn`. Numbers become retriable status codes (and turn
    /// on `retriable-status-codes`, as Istio does). Unknown words are returned as errors.
    pub fn parse(text: &str) -> Result<RetryOn, String> {
        let mut on = RetryOn::default();
        let mut codes = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "5xx" => on.server_error = true,
                "gateway-error" => on.gateway_error = true,
                "reset" => on.reset = true,
                "connect-failure" => on.connect_failure = true,
                "retriable-4xx" => on.retriable_4xx = true,
                "refused-stream" => on.refused_stream = true,
                "retriable-status-codes" => on.retriable_status_codes = true,
                "cancelled" => on.grpc_cancelled = true,
                "deadline-exceeded" => on.grpc_deadline_exceeded = true,
                "internal" => on.grpc_internal = true,
                "resource-exhausted" => on.grpc_resource_exhausted = true,
                "unavailable" => on.grpc_unavailable = true,
                other => match other.parse::<u16>() {
                    Ok(code) => {
                        on.retriable_status_codes = true;
                        codes.push(code);
                    }
                    Err(_) => return Err(format!("{other:?} is not a valid retryOn policy")),
                },
            }
        }
        on.status_codes = codes.into_boxed_slice();
        Ok(on)
    }

    /// Istio's default conditions: `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
    /// with no retriable status code — current Istio leaves 503 out
    /// (`EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`, default true; `pilot/pkg/networking/core/route/retry/retry.go`).
    pub fn istio_default() -> RetryOn {
        RetryOn {
            connect_failure: true,
            refused_stream: true,
            grpc_unavailable: true,
            grpc_cancelled: true,
            retriable_status_codes: true,
            status_codes: Box::new([]),
            ..RetryOn::default()
        }
    }

    /// Istio's former default conditions: [`RetryOn::istio_default`] with 503 as a retriable status
    /// code (`EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false`).
    pub fn istio_default_with_503() -> RetryOn {
        RetryOn { status_codes: Box::new([503]), ..RetryOn::istio_default() }
    }

    /// The conditions as Istio spells them, comma-separated.
    pub fn to_istio_string(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        for (on, word) in [
            (self.server_error, "5xx"),
            (self.gateway_error, "gateway-error"),
            (self.reset, "reset"),
            (self.connect_failure, "connect-failure"),
            (self.retriable_4xx, "retriable-4xx"),
            (self.refused_stream, "refused-stream"),
            (self.grpc_unavailable, "unavailable"),
            (self.grpc_cancelled, "cancelled"),
            (self.grpc_deadline_exceeded, "deadline-exceeded"),
            (self.grpc_internal, "internal"),
            (self.grpc_resource_exhausted, "resource-exhausted"),
            (self.retriable_status_codes, "retriable-status-codes"),
        ] {
            if on {
                words.push(word.to_string());
            }
        }
        words.join(",")
    }
}

/// A compiled retry policy. The default is Istio's default policy ([`RetryPolicy::istio_default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try; 0 disables retries.
    pub attempts: u32,
    /// Timeout of each try.
    pub per_try_timeout: Option<Duration>,
    /// Conditions.
    pub retry_on: RetryOn,
    /// Base backoff interval (Envoy's default is 25 ms).
    pub backoff: Option<Duration>,
    /// Whether the route set its own policy (`false` = Istio's default applies).
    pub configured: bool,
}

impl RetryPolicy {
    /// Istio's default when a route sets none: 2 attempts on
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, no
    /// retriable status code ([`RetryOn::istio_default`]).
    pub fn istio_default() -> RetryPolicy {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: RetryOn::istio_default(),
            backoff: None,
            configured: false,
        }
    }

    /// Istio's former default, which also retried 503 ([`RetryOn::istio_default_with_503`]).
    pub fn istio_default_with_503() -> RetryPolicy {
        RetryPolicy { retry_on: RetryOn::istio_default_with_503(), ..RetryPolicy::istio_default() }
    }

    /// No retry policy at all: what a route that sets none gets in Envoy (Istio's passthrough
    /// route). Unlike [`RetryPolicy::disabled`] it is not `configured`.
    pub fn none() -> RetryPolicy {
        RetryPolicy { configured: false, ..RetryPolicy::disabled() }
    }

    /// Retries off (`attempts: 0`).
    pub fn disabled() -> RetryPolicy {
        RetryPolicy {
            attempts: 0,
            per_try_timeout: None,
            retry_on: RetryOn::default(),
            backoff: None,
            configured: true,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::istio_default()
    }
}
