use std::sync::Arc;

use mesh_core::{Binding, ClientIdentity};
use tower_layer::Layer;

use super::{Route, SharedSnapshot};

/// Applies [`Route`] to a service.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    config: SharedSnapshot,
    client: Arc<ClientIdentity>,
    binding: Binding,
}

impl RouteLayer {
    /// Route with `config` as `client`, for the mesh binding.
    pub fn new(config: SharedSnapshot, client: ClientIdentity) -> Self {
        RouteLayer { config, client: Arc::new(client), binding: Binding::Mesh }
    }

    /// Route as a Gateway instead of the mesh.
    pub fn with_binding(mut self, binding: Binding) -> Self {
        self.binding = binding;
        self
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        Route::new(inner, self.config.clone(), self.client.clone(), self.binding.clone())
    }
}
