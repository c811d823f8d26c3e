#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Compiled model and decisions (`mesh-core`).
pub use mesh_core as core;

/// Istio YAML loading, validation and compilation (`mesh-config`).
pub use mesh_config as config;

/// Tower layers for the request path (`mesh-tower`).
pub use mesh_tower as tower;

/// The ready client, the reloading config source, the admin endpoints and `mesh proxy`'s
/// server (`mesh-proxy`).
pub use mesh_proxy as proxy;

/// A ready client in one line: the mesh's layers over pooled HTTP/1.1 and HTTP/2 connections,
/// TLS where a DestinationRule asks (see [`proxy::client`]).
pub use mesh_proxy::client::{MeshClient, MeshResponse, MeshResponseBody, client};

/// A configuration directory applied to a mesh, reloading when its files change, keeping the
/// last good version of each resource (see [`proxy::reload`]).
pub use mesh_proxy::reload::ConfigSource;
