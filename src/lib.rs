//! meshwork: an embeddable service mesh.
pub use mesh_config as config;
pub use mesh_core as core;
pub use mesh_tower as tower;
