//! Retry decisions: which outcomes are retried, and how long to wait before the next try.
//!
//! Envoy's conditions (<https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on>),
//! which Istio's `retryOn` names:
//!
//! | condition | retried outcomes |
//! |---|---|
//! | `5xx` | any 5xx response, connect failure, reset, refused stream, per-try timeout |
//! | `gateway-error` | 502, 503, 504 (a per-try timeout counts as 504) |
//! | `reset` | no response: reset, disconnect, per-try timeout |
//! | `connect-failure` | the connection could not be made |
//! | `retriable-4xx` | 409 |
//! | `refused-stream` | HTTP/2 `REFUSED_STREAM` |
//! | `retriable-status-codes` | the configured status codes |
//! | `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable` | that `grpc-status` (1, 4, 13, 8, 14) |
//!
//! Backoff is Envoy's fully jittered exponential backoff: before retry *n* (1-based) wait a
//! uniformly random time in `[0, min(base × 2^(n-1), 10 × base))`, with a 25 ms base by default.

use std::time::Duration;

use crate::route::RetryOn;

/// Envoy's default base backoff interval.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);

/// How one try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryOutcome {
    /// A response arrived, with its status and (for gRPC) its `grpc-status`.
    Response {
        /// HTTP status.
        status: u16,
        /// gRPC status code from headers or trailers, if any.
        grpc_status: Option<u32>,
    },
    /// The connection could not be made.
    ConnectFailure,
    /// The stream or connection was reset or closed before a response.
    Reset,
    /// HTTP/2 `REFUSED_STREAM`.
    RefusedStream,
    /// The per-try timeout fired.
    PerTryTimeout,
}

impl TryOutcome {
    /// Did this try fail from the caller's point of view (anything but a non-5xx response)?
    pub fn is_failure(&self) -> bool {
        !matches!(self, TryOutcome::Response { status, .. } if *status < 500)
    }
}

impl RetryOn {
    /// Should a try that ended with `outcome` be retried?
    pub fn should_retry(&self, outcome: TryOutcome) -> bool {
        match outcome {
            TryOutcome::ConnectFailure => self.connect_failure || self.server_error || self.reset,
            TryOutcome::Reset => self.reset || self.server_error,
            TryOutcome::RefusedStream => self.refused_stream || self.server_error,
            TryOutcome::PerTryTimeout => self.server_error || self.gateway_error || self.reset,
            TryOutcome::Response { status, grpc_status } => {
                if let Some(code) = grpc_status {
                    let hit = match code {
                        1 => self.grpc_cancelled,
                        4 => self.grpc_deadline_exceeded,
                        8 => self.grpc_resource_exhausted,
                        13 => self.grpc_internal,
                        14 => self.grpc_unavailable,
                        _ => false,
                    };
                    if hit {
                        return true;
                    }
                }
                (self.server_error && (500..600).contains(&status))
                    || (self.gateway_error && matches!(status, 502..=504))
                    || (self.retriable_4xx && status == 409)
                    || (self.retriable_status_codes && self.status_codes.contains(&status))
            }
        }
    }
}

/// The wait before retry number `retry` (1 for the first retry), given a uniform random `r`.
pub fn backoff(retry: u32, base: Duration, r: u64) -> Duration {
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1);
    let max_ms = base_ms.saturating_mul(10);
    let shift = retry.saturating_sub(1).min(32);
    let ceiling = base_ms.saturating_mul(1u64 << shift).min(max_ms);
    Duration::from_millis(r % ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16) -> TryOutcome {
        TryOutcome::Response { status, grpc_status: None }
    }

    #[test]
    fn conditions_follow_envoy() {
        let on = |s: &str| RetryOn::parse(s).expect("valid");
        let table: &[(&str, TryOutcome, bool)] = &[
            ("5xx", resp(500), true),
            ("5xx", resp(503), true),
            ("5xx", resp(404), false),
            ("5xx", TryOutcome::Reset, true),
            ("5xx", TryOutcome::ConnectFailure, true),
            ("5xx", TryOutcome::PerTryTimeout, true),
            ("gateway-error", resp(502), true),
            ("gateway-error", resp(504), true),
            ("gateway-error", resp(500), false),
            ("gateway-error", TryOutcome::Reset, false),
            ("gateway-error", TryOutcome::PerTryTimeout, true),
            ("reset", TryOutcome::Reset, true),
            ("reset", resp(503), false),
            ("connect-failure", TryOutcome::ConnectFailure, true),
            ("connect-failure", resp(503), false),
            ("retriable-4xx", resp(409), true),
            ("retriable-4xx", resp(400), false),
            ("refused-stream", TryOutcome::RefusedStream, true),
            ("503", resp(503), true),
            ("503", resp(502), false),
            ("unavailable", TryOutcome::Response { status: 200, grpc_status: Some(14) }, true),
            ("unavailable", TryOutcome::Response { status: 200, grpc_status: Some(13) }, false),
            (
                "cancelled,deadline-exceeded,internal,resource-exhausted",
                TryOutcome::Response { status: 200, grpc_status: Some(4) },
                true,
            ),
        ];
        for (text, outcome, want) in table {
            assert_eq!(on(text).should_retry(*outcome), *want, "{text} {outcome:?}");
        }
        let istio = RetryOn::istio_default();
        assert!(!istio.should_retry(resp(503)), "current Istio's default leaves 503 out");
        assert!(RetryOn::istio_default_with_503().should_retry(resp(503)), "the former default retried 503");
        assert!(istio.should_retry(TryOutcome::ConnectFailure));
        assert!(!istio.should_retry(resp(500)));
    }

    #[test]
    fn backoff_is_jittered_exponential_capped_at_ten_times_base() {
        let base = DEFAULT_BACKOFF_BASE;
        assert_eq!(backoff(1, base, u64::MAX), Duration::from_millis(u64::MAX % 25));
        for r in [0u64, 7, 24, 1_000_003, u64::MAX] {
            assert!(backoff(1, base, r) < Duration::from_millis(25));
            assert!(backoff(2, base, r) < Duration::from_millis(50));
            assert!(backoff(3, base, r) < Duration::from_millis(100));
            assert!(backoff(10, base, r) < Duration::from_millis(250));
        }
        assert_eq!(backoff(10, base, 249), Duration::from_millis(249));
    }
}
