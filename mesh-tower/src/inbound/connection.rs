//! What the server knows about the connection a request arrived on: the contract between a
//! server (or a TLS acceptor) and the [inbound layer](super).
//!
//! A server puts one [`ConnectionInfo`] in every request's extensions; the inbound layer reads
//! the peer identity, the SNI and the addresses from it. A request without one is treated as a
//! plaintext request from an unknown address.

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::spiffe::SpiffeId;

/// The connection a request arrived on.
///
/// ```
/// use mesh_core::spiffe::SpiffeId;
/// use mesh_tower::inbound::ConnectionInfo;
/// let info = ConnectionInfo::plaintext("10.0.0.1:40000".parse().ok(), "10.0.0.2:8000".parse().ok())
///     .with_peer(SpiffeId::new("cluster.local", "default", "sleep"), Some("httpbin".into()));
/// assert!(info.is_mtls());
/// assert_eq!(info.principal().as_deref(), Some("cluster.local/ns/default/sa/sleep"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The peer's identity, verified by mutual TLS (`None`: plaintext).
    pub peer: Option<SpiffeId>,
    /// The SNI the client sent (mutual TLS only).
    pub sni: Option<Arc<str>>,
    /// The client's address (`source.ip`).
    pub source: Option<SocketAddr>,
    /// The address the connection was accepted on (`destination.ip`, `destination.port`).
    pub destination: Option<SocketAddr>,
}

impl ConnectionInfo {
    /// A plaintext connection from `source` accepted on `destination`.
    pub fn plaintext(source: Option<SocketAddr>, destination: Option<SocketAddr>) -> ConnectionInfo {
        ConnectionInfo { peer: None, sni: None, source, destination }
    }

    /// The same connection, over mutual TLS with `peer` (and the client's SNI).
    pub fn with_peer(mut self, peer: SpiffeId, sni: Option<Arc<str>>) -> ConnectionInfo {
        self.peer = Some(peer);
        self.sni = sni;
        self
    }

    /// Did the request arrive over mutual TLS?
    pub fn is_mtls(&self) -> bool {
        self.peer.is_some()
    }

    /// The peer's principal as AuthorizationPolicy `principals` are written
    /// (`cluster.local/ns/default/sa/sleep`).
    pub fn principal(&self) -> Option<String> {
        self.peer.as_ref().map(SpiffeId::principal)
    }
}
