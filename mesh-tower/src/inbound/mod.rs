//! The inbound side: requests arriving at a workload, checked against the mesh's security
//! policies (PeerAuthentication, RequestAuthentication, AuthorizationPolicy) as Istio's sidecar
//! checks them. The decision is mesh-core's [`InboundDecision`](mesh_core::inbound::InboundDecision);
//! this module only gathers its inputs (the [`ConnectionInfo`] a server puts in each request's
//! extensions, the request, the JWT verified against fetched key sets) and applies it
//! ([`InboundLayer`]).

mod connection;
pub mod jwks;
mod layer;
mod stats;

pub use connection::ConnectionInfo;
pub use layer::{ConnectionRefused, Inbound, InboundLayer, InboundLayerBuilder, inbound_connection, inbound_request};
pub use stats::PRINCIPAL_LIMIT;
