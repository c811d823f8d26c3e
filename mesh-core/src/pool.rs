//! Connection-pool accounting (circuit breaking), per cluster or per endpoint.
//!
//! Istio's `connectionPool` onto Envoy's circuit breakers
//! (<https://istio.io/latest/docs/reference/config/networking/destination-rule/#ConnectionPoolSettings>,
//! <https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/circuit_breaking>):
//!
//! - HTTP/1.1 carries one request per connection, so at most `tcp.maxConnections` requests run at
//!   once; up to `http.http1MaxPendingRequests` more wait for a connection; beyond that a request
//!   fails at once with 503 (Envoy flag `UO`).
//! - HTTP/2 multiplexes: at most `http.http2MaxRequests` requests run at once; beyond that, 503 UO.
//! - At most `http.maxRetries` retries are outstanding at once.
//! - A connection serves at most `http.maxRequestsPerConnection` requests
//!   ([`PoolLimits::connection_exhausted`] tells the connector when to close it).
//!
//! Unset limits are Istio's defaults, 2^32-1. The counters are atomics; reserving and releasing
//! is the caller's job (mesh-tower holds the reservation in a guard).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::policy::ConnectionPool;

/// Limits with Istio's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Requests running at once over HTTP/1.1 (`tcp.maxConnections`).
    pub max_connections: u32,
    /// Requests waiting for a connection (`http.http1MaxPendingRequests`).
    pub max_pending: u32,
    /// Requests running at once over HTTP/2 (`http.http2MaxRequests`).
    pub max_requests: u32,
    /// Retries outstanding at once (`http.maxRetries`).
    pub max_retries: u32,
    /// Requests one upstream connection serves before it is closed
    /// (`http.maxRequestsPerConnection`; 0 = unlimited).
    pub max_requests_per_connection: u32,
}

impl PoolLimits {
    /// No limits (Istio's defaults).
    pub const UNLIMITED: PoolLimits = PoolLimits {
        max_connections: u32::MAX,
        max_pending: u32::MAX,
        max_requests: u32::MAX,
        max_retries: u32::MAX,
        max_requests_per_connection: 0,
    };

    /// From a DestinationRule's `connectionPool`.
    pub fn from_policy(pool: Option<&ConnectionPool>) -> PoolLimits {
        let Some(p) = pool else { return PoolLimits::UNLIMITED };
        PoolLimits {
            max_connections: p.max_connections.unwrap_or(u32::MAX).max(1),
            max_pending: p.http1_max_pending_requests.unwrap_or(u32::MAX),
            max_requests: p.http2_max_requests.unwrap_or(u32::MAX).max(1),
            max_retries: p.max_retries.unwrap_or(u32::MAX),
            max_requests_per_connection: p.max_requests_per_connection.unwrap_or(0),
        }
    }

    /// Must a connection that has served `served` requests be closed rather than reused?
    pub fn connection_exhausted(&self, served: u32) -> bool {
        self.max_requests_per_connection != 0 && served >= self.max_requests_per_connection
    }
}

/// What to do with a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it now (an active slot was taken: call [`PoolState::finish`] when done).
    Start,
    /// Wait for a slot (a pending slot was taken: call [`PoolState::promote`] or
    /// [`PoolState::abandon`]).
    Queue,
    /// Fail fast: 503 with Envoy's `UO` flag.
    Overflow,
}

/// The live counters of one pool.
#[derive(Debug, Default)]
pub struct PoolState {
    active: AtomicU32,
    pending: AtomicU32,
    retries: AtomicU32,
}

fn try_increment(counter: &AtomicU32, limit: u32) -> bool {
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| (v < limit).then_some(v + 1)).is_ok()
}

impl PoolState {
    /// A pool with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    fn active_limit(limits: &PoolLimits, http2: bool) -> u32 {
        if http2 { limits.max_requests } else { limits.max_connections.min(limits.max_requests) }
    }

    /// Admit a new request.
    pub fn admit(&self, limits: &PoolLimits, http2: bool) -> Admission {
        if try_increment(&self.active, Self::active_limit(limits, http2)) {
            return Admission::Start;
        }
        if !http2 && try_increment(&self.pending, limits.max_pending) {
            return Admission::Queue;
        }
        Admission::Overflow
    }

    /// A queued request tries to take an active slot; on success its pending slot is released.
    pub fn promote(&self, limits: &PoolLimits, http2: bool) -> bool {
        if try_increment(&self.active, Self::active_limit(limits, http2)) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            true
        } else {
            false
        }
    }

    /// A queued request gave up (timeout, cancellation).
    pub fn abandon(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// An admitted request finished.
    pub fn finish(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    /// Take a retry slot (`maxRetries`); `false` means the retry must not be made.
    pub fn try_retry(&self, limits: &PoolLimits) -> bool {
        try_increment(&self.retries, limits.max_retries)
    }

    /// A retry finished.
    pub fn retry_done(&self) {
        self.retries.fetch_sub(1, Ordering::AcqRel);
    }

    /// Requests running now.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Acquire)
    }

    /// Requests waiting now.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }

    /// Retries outstanding now.
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_circuit_breaking_task_limits() {
        // maxConnections: 1, http1MaxPendingRequests: 1 (Istio's circuit-breaking task).
        let limits = PoolLimits::from_policy(Some(&ConnectionPool {
            max_connections: Some(1),
            http1_max_pending_requests: Some(1),
            max_requests_per_connection: Some(1),
            ..ConnectionPool::default()
        }));
        let pool = PoolState::new();
        assert_eq!(pool.admit(&limits, false), Admission::Start);
        assert_eq!(pool.admit(&limits, false), Admission::Queue);
        assert_eq!(pool.admit(&limits, false), Admission::Overflow, "the third concurrent request fails fast");
        assert!(limits.connection_exhausted(1), "maxRequestsPerConnection: 1 closes after one request");
        assert!(!pool.promote(&limits, false));
        pool.finish();
        assert!(pool.promote(&limits, false));
        assert_eq!((pool.active(), pool.pending()), (1, 0));
        assert_eq!(pool.admit(&limits, false), Admission::Queue);
        pool.abandon();
        pool.finish();
        assert_eq!((pool.active(), pool.pending()), (0, 0));
    }

    #[test]
    fn http2_and_retries() {
        let limits = PoolLimits { max_requests: 2, max_retries: 1, ..PoolLimits::UNLIMITED };
        let pool = PoolState::new();
        assert_eq!(pool.admit(&limits, true), Admission::Start);
        assert_eq!(pool.admit(&limits, true), Admission::Start);
        assert_eq!(pool.admit(&limits, true), Admission::Overflow, "HTTP/2 does not queue");
        assert!(pool.try_retry(&limits));
        assert!(!pool.try_retry(&limits));
        pool.retry_done();
        assert!(pool.try_retry(&limits));
        assert_eq!(PoolLimits::from_policy(None), PoolLimits::UNLIMITED);
    }
}
