//! The proxy listener: every request it accepts goes through the meshwork stack.
//!
//! Connections are served with hyper-util's auto builder (HTTP/1.1 with keep-alive and upgrades,
//! and HTTP/2 with prior knowledge, or chosen by ALPN over TLS). Requests are routed by their
//! `Host` / `:authority` (the mesh's VirtualServices, or a Gateway's), and forwarded with a pooled
//! client ([`UpstreamClient`]) to the endpoint meshwork picks. hyper answers malformed requests
//! with 400 itself; the request head is capped at [`MAX_HEADER_BYTES`], and on Gateway listeners
//! (the edge) it must arrive within [`HEADER_READ_TIMEOUT`]. The outbound listener, which serves
//! the local application as a sidecar does, sets no header timeout, as Istio leaves Envoy's
//! `request_headers_timeout` unset on sidecars (istio/istio#44329 proposed it for gateways only;
//! Envoy's edge best practices ask for it where downstreams are untrusted): the timer hyper arms
//! for every request cost ~1,400 instructions per request there (benches/RESULTS.md). When `stop` turns true the listener stops accepting, every
//! connection finishes its in-flight requests (HTTP/2 gets GOAWAY), then `serve` returns.
//!
//! Hop-by-hop headers are removed from requests and responses and upgrades are decided in one
//! place, [`mesh_core::hop`]: a WebSocket upgrade is passed through (when the endpoint answers
//! `101 Switching Protocols`, the two upgraded connections are joined and bytes copied both
//! ways), `Upgrade: h2c` is ignored (served as HTTP/1.1), any other upgrade is refused with 403.
//!
//! A malformed HTTP/2 request (a pseudo-header missing or repeated, a connection-specific
//! header, `te` other than `trailers`) resets its own stream; the connection's other requests go
//! on (RFC 9113 §8.1.1). One exception comes from the h2 crate: a field value with a byte no
//! header value may hold (CR, LF, NUL) fails its HPACK decoding and closes the connection
//! (GOAWAY), where RFC 9113 §8.2.1 asks for a stream error — such a request is never forwarded
//! either way (Envoy, too, closed the connection by default until
//! `stream_error_on_invalid_http_message`; envoyproxy/envoy#20575).
//!
//! # One stack per connection
//!
//! Each connection gets its own clone of the mesh stack ([`Upstream`]), made once when the
//! connection is accepted; cloning it per request would copy every layer's shared handles (one
//! atomic increment each). hyper calls a connection's service with `&self` and tower's
//! `Service::call` takes `&mut self`, so the stack sits in a `Mutex` that is never contended:
//! only the connection's own task calls the service, one request at a time and never from inside
//! another call, so the lock is one uncontended lock and unlock per request, and a lock poisoned
//! by a panicking call (answered 500) is taken as is. A `RefCell` in a service type of its own
//! (`Send`, not `Sync`) says the same without atomics, but was measured at 50 to 180 more
//! instructions per request (`benches/instructions.sh`: hyper's dispatcher is inlined
//! differently for that service type), so the lock stays.
//!
//! Before each call the stack's `poll_ready` is asked once with a no-op waker. That is sound
//! because the answer is always `Ready`, which registers no waker: every meshwork layer forwards
//! `poll_ready` to the one below and [`UpstreamClient`] is always ready. The invariant is checked
//! by a unit test on the stack [`upstream`] builds and by a `debug_assert!` on every request in
//! debug builds. Should a layer ever answer `Pending`, release builds still keep tower's contract:
//! that stack is not polled again with the no-op waker; the request goes through a clone of the
//! stack, readied and called with the task's own waker (`tower::ServiceExt::oneshot`).
//!
//! Connection-pool admission (Istio's `connectionPool`, Envoy's circuit breakers) is not in
//! `poll_ready`, where tower's contract would reserve capacity: it is in `call`, in mesh-tower's
//! pool layer ([`mesh_tower::pool`], just
//! above the balance layer that picks the endpoint). Which pool applies depends on the cluster,
//! which is known only once the route layer has decided the request's destination — something
//! `poll_ready`, which sees no request, cannot know. A request beyond `maxConnections` /
//! `http2MaxRequests` waits inside its own future while fewer than `http1MaxPendingRequests`
//! wait, and is otherwise answered 503 `UO`; the stack as a whole never applies backpressure to
//! the connection. (Gateway TCP and TLS passthrough connections are admitted per connection in
//! [`crate::l4`].)
//!
//! # Gateway listeners
//!
//! [`GatewayPort`] makes a listener serve one port of an Istio Gateway, as Envoy's listener for
//! that port in an ingress gateway does:
//!
//! - the servers on that port are read from the current configuration for every new connection
//!   (a reload that changes hosts or certificates applies to new connections);
//! - `HTTPS` servers terminate TLS (`SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL`), chosen by the SNI the
//!   client sends among the servers' `hosts`; ALPN offers `h2` and `http/1.1`; a client
//!   certificate must name one of the server's `subjectAltNames` when it lists any;
//! - each request carries the connection's [`Listener`] (port and admitting servers) to the route
//!   layer, whose decision ([`mesh_core::decision`], the same `mesh explain` prints) answers a
//!   host none of the servers lists with 404 (`NR`), as Envoy answers a request with no virtual
//!   host, and plain HTTP to a server with `tls.httpsRedirect: true` with 301 to the `https` URL
//!   (Istio's `ServerTLSSettings.httpsRedirect`); `port` matches see the listener's port;
//! - `x-forwarded-proto` is set to the scheme the client used and the client's address is
//!   appended to `x-forwarded-for` (an edge proxy's duty, as Envoy with `use_remote_address`).

use mesh_core::decision::{Listener, terminates_tls};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::accept::{Accepted, accept_tls, next_connection};
pub use crate::accept::{GatewayPort, TLS_HANDSHAKE_TIMEOUT};
pub use crate::connection::{HEADER_READ_TIMEOUT, MAX_HEADER_BYTES, Upstream, upstream};
use crate::connection::{connection_builder, serve_connection, stopped};
use crate::upstream::ConnectionAffinity;
pub use crate::upstream::UpstreamClient;

/// Serve `listener` until `stop` turns true, then drain (see the module docs).
pub async fn serve(listener: TcpListener, stack: Upstream, stop: watch::Receiver<bool>) -> std::io::Result<()> {
    serve_listener(listener, stack, None, stop).await
}

/// Serve `listener` as one port of a Gateway (see the module docs) until `stop` turns true.
pub async fn serve_gateway(
    listener: TcpListener,
    stack: Upstream,
    gateway: GatewayPort,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_listener(listener, stack, Some(gateway), stop).await
}

async fn serve_listener(
    listener: TcpListener,
    stack: Upstream,
    gateway: Option<GatewayPort>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    let builder = connection_builder(gateway.is_some().then_some(HEADER_READ_TIMEOUT));
    loop {
        tokio::select! {
            accepted = next_connection(&listener) => {
                let Some((stream, peer)) = accepted else { continue };
                let local = stream.local_addr().ok();
                let stack = stack.clone();
                let builder = builder.clone();
                let stop = stop.clone();
                let gateway = gateway.clone();
                connections.spawn(async move {
                    let Some(gateway) = gateway else {
                        let accepted = Accepted {
                            peer,
                            local,
                            https: false,
                            affinity: ConnectionAffinity::default(),
                            listener: None,
                        };
                        return serve_connection(stream, stack, accepted, builder, stop).await;
                    };
                    let servers = gateway.servers();
                    if servers.iter().any(terminates_tls) {
                        if let Some((tls, accepted)) = accept_tls(stream, local, &gateway, servers, peer).await {
                            serve_connection(tls, stack, accepted, builder, stop).await;
                        }
                    } else {
                        let accepted = Accepted {
                            peer,
                            local,
                            https: false,
                            affinity: ConnectionAffinity::default(),
                            listener: Some(Listener::plain(gateway.port, servers)),
                        };
                        serve_connection(stream, stack, accepted, builder, stop).await;
                    }
                });
            }
            _ = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!(target: "meshwork::proxy", connections = connections.len(), "draining");
    while connections.join_next().await.is_some() {}
    Ok(())
}
