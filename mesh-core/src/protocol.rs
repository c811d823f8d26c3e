//! Which protocol a cluster's endpoints speak: HTTP/2 or HTTP/1.1.
//!
//! Istio decides per cluster when it builds it (`shouldH2Upgrade` and the cluster's protocol in
//! istio/istio `pilot/pkg/networking/core/cluster_builder.go`): a DestinationRule's
//! `connectionPool.http.useClientProtocol` keeps the client's version (no upgrade);
//! `h2UpgradePolicy: UPGRADE` upgrades; otherwise the service port's protocol decides —
//! `HTTP2`, `GRPC` and `GRPC-WEB` speak HTTP/2, and a port without a protocol is read by its
//! name, `<protocol>[-<suffix>]` (istio.io, "Protocol Selection": `grpc-api` is gRPC, `grpcapi`
//! is not).

use crate::Snapshot;
use crate::policy::PolicyParts;
use crate::route::Destination;

/// HTTP/2 to the destination's endpoints? (see the module docs). `parts` is the policy that
/// applies to the destination (its DestinationRule's, resolved for subset and port).
pub fn upstream_http2(parts: &PolicyParts, snapshot: &Snapshot, destination: &Destination) -> bool {
    let pool = parts.connection_pool.as_ref();
    !pool.is_some_and(|p| p.use_client_protocol)
        && (pool.is_some_and(|p| p.h2_upgrade) || port_speaks_http2(snapshot, destination))
}

/// Does the destination's service port speak HTTP/2? The port the destination names, else the
/// service's first port; `false` for a host no service declares.
pub fn port_speaks_http2(snapshot: &Snapshot, destination: &Destination) -> bool {
    let port = snapshot
        .services(&destination.host)
        .iter()
        .flat_map(|s| s.ports.iter())
        .find(|p| destination.port.is_none_or(|d| d == p.number));
    port.is_some_and(|p| speaks_http2(&p.protocol, &p.name))
}

/// Does a service port with this protocol (upper case, empty if unset) and name speak HTTP/2?
///
/// ```
/// use mesh_core::protocol::speaks_http2;
/// assert!(speaks_http2("GRPC", "tcp"));
/// assert!(speaks_http2("", "grpc-api"));
/// assert!(!speaks_http2("", "grpcapi"));
/// assert!(!speaks_http2("HTTP", "http2"));
/// ```
pub fn speaks_http2(protocol: &str, name: &str) -> bool {
    match protocol {
        "HTTP2" | "GRPC" | "GRPC-WEB" => true,
        "" => matches!(name.split('-').next().map(str::to_ascii_lowercase).as_deref(), Some("http2" | "grpc")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_by_protocol_or_port_name() {
        assert!(speaks_http2("GRPC", "anything"));
        assert!(speaks_http2("HTTP2", ""));
        assert!(!speaks_http2("HTTP", "grpc"));
        assert!(speaks_http2("", "grpc"));
        assert!(speaks_http2("", "grpc-web"));
        assert!(speaks_http2("", "http2-api"));
        assert!(!speaks_http2("", "grpcapi"));
        assert!(!speaks_http2("", "http-grpc"));
    }
}
