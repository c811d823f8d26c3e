//! The inbound side: requests arriving at a workload, checked against the mesh's security
//! policies (PeerAuthentication, RequestAuthentication, AuthorizationPolicy) as Istio's sidecar
//! checks them. The decision is mesh-core's [`InboundDecision`](mesh_core::inbound::InboundDecision);
//! this module only gathers its inputs and applies it.

mod connection;

pub use connection::ConnectionInfo;
