#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Compiled model and decisions (`mesh-core`).
pub use mesh_core as core;

/// Istio YAML loading, validation and compilation (`mesh-config`).
pub use mesh_config as config;

/// Tower layers for the request path (`mesh-tower`).
pub use mesh_tower as tower;
