use std::sync::Arc;

use mesh_core::{Binding, ClientIdentity};
use tower_layer::Layer;

use super::{Route, SharedSnapshot};
use crate::registry::Registry;

/// Applies [`Route`] to a service.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    config: SharedSnapshot,
    client: Arc<ClientIdentity>,
    binding: Binding,
    registry: Option<Registry>,
}

impl RouteLayer {
    /// Route with `config` as `client`, for the mesh binding.
    pub fn new(config: SharedSnapshot, client: ClientIdentity) -> Self {
        RouteLayer { config, client: Arc::new(client), binding: Binding::Mesh, registry: None }
    }

    /// Route as a Gateway instead of the mesh.
    pub fn with_binding(mut self, binding: Binding) -> Self {
        self.binding = binding;
        self
    }

    /// Services with endpoints in `registry` are known to the mesh (routed by default, with
    /// Istio's default retries), besides those the snapshot declares; a host neither knows gets
    /// the snapshot's outbound traffic policy (see [`mesh_core::decision`]). [`crate::Mesh`]
    /// passes its own registry.
    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        let mut route = Route::new(inner, self.config.clone(), self.client.clone(), self.binding.clone());
        route.registry = self.registry.clone();
        route
    }
}
