//! `connectionPool` of a traffic policy (istio/istio `pkg/config/validation/validation.go`
//! `validateConnectionPool`): TCP and HTTP limits, timeouts and keepalives.

use std::time::Duration;

use crate::duration::parse_duration;
use crate::types::destination_rule::*;
use crate::validate::common::*;
use crate::validate::{Ctx, P};

/// `connectionPool.tcp.idleTimeout`: under 1 ms (`0s` disables the timeout) Istio skips the value;
/// from 1 ms on it applies `ValidateDuration` (whole milliseconds). The CRD has no CEL rule here.
fn check_tcp_idle_timeout(ctx: &mut Ctx<'_>, path: &P, value: Option<&String>) {
    let Some(text) = value else { return };
    match parse_duration(text) {
        Err(e) => ctx.error(path, e),
        Ok(d) if d >= Duration::from_millis(1) => ctx.check(path, parse_ms_duration(text).map(|_| ())),
        Ok(_) => {}
    }
}

pub(super) fn validate_connection_pool(ctx: &mut Ctx<'_>, path: &P, pool: &ConnectionPoolSettings) {
    if pool.http.is_none() && pool.tcp.is_none() {
        ctx.error(path, "connection pool must have at least one field");
    }
    if let Some(http) = &pool.http {
        let p = path.f("http");
        for (field, value, what) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests, "http1 max pending requests"),
            ("http2MaxRequests", http.http2_max_requests, "http2 max requests"),
            ("maxRequestsPerConnection", http.max_requests_per_connection, "max requests per connection"),
            ("maxRetries", http.max_retries, "max retries"),
            ("maxConcurrentStreams", http.max_concurrent_streams, "max concurrent streams"),
        ] {
            if value.is_some_and(|v| v < 0) {
                ctx.error(&p.f(field), format!("{what} must be non-negative"));
            }
        }
        check_duration(ctx, &p.f("idleTimeout"), http.idle_timeout.as_ref());
        if http.h2_upgrade_policy == Some(H2UpgradePolicy::UPGRADE) && http.use_client_protocol == Some(true) {
            ctx.error(&p, "use client protocol must not be true when H2UpgradePolicy is UPGRADE");
        }
        if let Some(ka) = &http.http2_keep_alive {
            let kp = p.f("http2KeepAlive");
            if ka.interval.is_none() {
                ctx.error(&kp.f("interval"), "http2 keepalive interval is required");
            }
            check_duration(ctx, &kp.f("interval"), ka.interval.as_ref());
            if ka.timeout.is_none() {
                ctx.error(&kp.f("timeout"), "http2 keepalive timeout is required");
            }
            check_duration(ctx, &kp.f("timeout"), ka.timeout.as_ref());
            ctx.unsupported(&kp, "http2KeepAlive");
        }
    }
    if let Some(tcp) = &pool.tcp {
        let p = path.f("tcp");
        if tcp.max_connections.is_some_and(|v| v < 0) {
            ctx.error(&p.f("maxConnections"), "max connections must be non-negative");
        }
        check_duration(ctx, &p.f("connectTimeout"), tcp.connect_timeout.as_ref());
        check_duration(ctx, &p.f("maxConnectionDuration"), tcp.max_connection_duration.as_ref());
        check_tcp_idle_timeout(ctx, &p.f("idleTimeout"), tcp.idle_timeout.as_ref());
        if let Some(ka) = &tcp.tcp_keepalive {
            check_duration(ctx, &p.f("tcpKeepalive").f("time"), ka.time.as_ref());
            check_duration(ctx, &p.f("tcpKeepalive").f("interval"), ka.interval.as_ref());
        }
        if tcp.max_connection_duration.is_some() {
            ctx.unsupported(&p.f("maxConnectionDuration"), "maxConnectionDuration");
        }
    }
}
