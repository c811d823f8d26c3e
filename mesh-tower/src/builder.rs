//! [`Mesh`]: the whole stack from one config handle and one registry, as one layer.

use std::sync::Arc;

use arc_swap::ArcSwap;
use mesh_core::{Binding, ClientIdentity, Snapshot};
use tower_http::request_id::SetRequestId;
use tower_http::sensitive_headers::SetSensitiveRequestHeaders;
use tower_layer::Layer;

use crate::balance::{Balance, BalanceLayer};
use crate::cluster::Clusters;
use crate::fault::{Fault, FaultLayer};
use crate::mirror::{MirrorLayer, MirrorService};
use crate::pool::{PoolAdmission, PoolLayer};
use crate::registry::Registry;
use crate::replay::{DEFAULT_REPLAY_LIMIT, ReplayLayer, ReplayService};
use crate::request_id::{RequestIds, SENSITIVE_HEADERS};
use crate::retry::{Retry, RetryLayer};
use crate::route::{Route, RouteLayer, SharedSnapshot};
use crate::telemetry::{Telemetry, TelemetryLayer};
use crate::timeout::{Timeout, TimeoutLayer};

/// The full stack around a client `C`, outermost first: `x-request-id` and sensitive headers
/// ([`crate::request_id`]), telemetry, route, fault, replay, mirror, timeout, retry, per-try
/// timeout, connection-pool admission, balance.
pub type MeshService<C> = SetRequestId<SetSensitiveRequestHeaders<MeshStack<C>>, RequestIds>;

/// [`MeshService`] below the request-id and sensitive-header layers: telemetry first.
pub type MeshStack<C> =
    Telemetry<Route<Fault<ReplayService<MirrorService<Timeout<Retry<Timeout<PoolAdmission<Balance<C>>>>>>>>>>;

/// A service mesh inside the process: config, endpoints and per-destination state, shared by
/// every client it wraps. Cheap to clone.
///
/// ```
/// use mesh_tower::{Endpoint, Mesh, Registry};
/// use mesh_core::ClientIdentity;
///
/// let registry = Registry::new();
/// registry.register("reviews.default.svc.cluster.local", Endpoint::new("127.0.0.1:9080", [("version", "v1")]));
/// let mesh = Mesh::builder()
///     .registry(registry)
///     .client_identity(ClientIdentity::new("default", [("app", "productpage")]))
///     .build();
/// // Wrap any HTTP client service: `ServiceBuilder::new().layer(mesh.layer()).service(client)`.
/// let _layer = mesh.layer();
/// ```
#[derive(Debug, Clone)]
pub struct Mesh {
    config: SharedSnapshot,
    registry: Registry,
    client: ClientIdentity,
    clusters: Clusters,
    binding: Binding,
    telemetry: TelemetryLayer,
    replay_limit: usize,
    select_protocol: bool,
}

impl Mesh {
    /// Start building a mesh.
    pub fn builder() -> MeshBuilder {
        MeshBuilder::default()
    }

    /// The telemetry layer of the stack (for Istio's TCP metrics of connections a proxy forwards
    /// itself: [`TelemetryLayer::tcp_connection`]).
    pub fn telemetry(&self) -> &TelemetryLayer {
        &self.telemetry
    }

    /// The layer that wraps a client in the whole stack.
    pub fn layer(&self) -> MeshLayer {
        MeshLayer { mesh: self.clone() }
    }

    /// The config handle (`store` a new snapshot to reconfigure every wrapped client at once).
    pub fn config(&self) -> &SharedSnapshot {
        &self.config
    }

    /// The snapshot in use now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::clone(&self.config.load())
    }

    /// Swap in a new snapshot: requests already on their way finish with the one they started
    /// with, the next ones use this one. Endpoints declared by its ServiceEntries and
    /// WorkloadEntries replace the previously declared ones in the registry.
    pub fn update(&self, snapshot: Snapshot) {
        self.registry.sync_from_snapshot(&snapshot);
        let previous = self.config.swap(Arc::new(snapshot));
        self.clusters.sweep(previous.generation());
    }

    /// The endpoint registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Per-destination runtime state (endpoints, ejections, pool counters).
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// Who this mesh's clients are.
    pub fn client_identity(&self) -> &ClientIdentity {
        &self.client
    }

    /// The inbound side for a server of this workload, with the same identity the clients use
    /// outbound (namespace and labels: what security policies select) and the same
    /// configuration: wrap an axum or hyper service in
    /// `mesh.inbound_layer().port(8080).build()`; a server that puts a
    /// [`ConnectionInfo`](crate::inbound::ConnectionInfo) in each request's extensions (the
    /// mutual-TLS acceptor of `meshwork::proxy::identity` does) gives it the peer's identity.
    ///
    /// ```
    /// use mesh_core::ClientIdentity;
    /// use mesh_tower::Mesh;
    /// let mesh = Mesh::builder().client_identity(ClientIdentity::new("foo", [("app", "httpbin")])).build();
    /// let _layer = mesh.inbound_layer().port(8000).build();
    /// ```
    pub fn inbound_layer(&self) -> crate::inbound::InboundLayerBuilder {
        let workload = mesh_core::workload::Workload {
            namespace: self.client.namespace.clone(),
            labels: self.client.labels.clone(),
        };
        crate::inbound::InboundLayer::builder(self.config.clone(), workload)
    }
}

/// Builds a [`Mesh`].
#[derive(Debug, Default)]
pub struct MeshBuilder {
    config: Option<SharedSnapshot>,
    registry: Option<Registry>,
    client: Option<ClientIdentity>,
    binding: Option<Binding>,
    workload: Option<String>,
    access_log: bool,
    replay_limit: Option<usize>,
    select_protocol: bool,
}

impl MeshBuilder {
    /// Start from this snapshot (default: empty — every host goes to itself).
    pub fn config(mut self, snapshot: Snapshot) -> Self {
        self.config = Some(Arc::new(ArcSwap::from_pointee(snapshot)));
        self
    }

    /// Share a config handle that something else updates.
    pub fn shared_config(mut self, config: SharedSnapshot) -> Self {
        self.config = Some(config);
        self
    }

    /// Endpoints (default: an empty registry).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The client's namespace and labels (for `sourceLabels`, `sourceNamespace`, DestinationRule
    /// choice and the `source_*` metric labels). Default: namespace `default`, no labels.
    pub fn client_identity(mut self, client: ClientIdentity) -> Self {
        self.client = Some(client);
        self
    }

    /// The client workload's name (`source_workload`).
    pub fn workload(mut self, name: &str) -> Self {
        self.workload = Some(name.to_string());
        self
    }

    /// Route as this Gateway (only VirtualServices bound to it) instead of the mesh.
    pub fn gateway(mut self, namespace: &str, name: &str) -> Self {
        self.binding = Some(Binding::gateway(namespace, name));
        self
    }

    /// Emit an access-log event per request (target `meshwork::access`).
    pub fn access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// How much of each request body is kept for retries and mirrors (default 64 KiB).
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        self.replay_limit = Some(bytes);
        self
    }

    /// Set each forwarded request's HTTP version from the destination's service port (HTTP/2
    /// for `HTTP2`/`GRPC` ports, else HTTP/1.1), as a proxy must (see
    /// [`BalanceLayer::select_protocol`]). Off by default.
    pub fn upstream_protocol_by_port(mut self, on: bool) -> Self {
        self.select_protocol = on;
        self
    }

    /// Build the mesh.
    pub fn build(self) -> Mesh {
        let config = self.config.unwrap_or_else(|| Arc::new(ArcSwap::from_pointee(Snapshot::empty())));
        let registry = self.registry.unwrap_or_default();
        registry.sync_from_snapshot(&config.load());
        let client = self.client.unwrap_or_else(|| ClientIdentity::new("default", []));
        let mut telemetry = TelemetryLayer::new(&client);
        if let Some(w) = &self.workload {
            telemetry = telemetry.workload(w);
        }
        if self.access_log {
            telemetry = telemetry.access_log(true);
        }
        Mesh {
            clusters: Clusters::new(registry.clone(), &client),
            config,
            registry,
            client,
            binding: self.binding.unwrap_or(Binding::Mesh),
            telemetry,
            replay_limit: self.replay_limit.unwrap_or(DEFAULT_REPLAY_LIMIT),
            select_protocol: self.select_protocol,
        }
    }
}

/// The whole stack as one layer (see [`MeshService`]).
#[derive(Debug, Clone)]
pub struct MeshLayer {
    mesh: Mesh,
}

impl MeshLayer {
    /// Set each request's HTTP version to what its destination's service port speaks (HTTP/2
    /// for `GRPC` and `HTTP2` ports; see [`crate::cluster::Cluster::http2`]), whatever the
    /// mesh's own setting ([`MeshBuilder::upstream_protocol_by_port`]): for a client that
    /// speaks both and should let the mesh choose.
    pub fn upstream_protocol_by_port(mut self, on: bool) -> Self {
        self.mesh.select_protocol = on;
        self
    }
}

impl<C: Clone> Layer<C> for MeshLayer {
    type Service = MeshService<C>;

    fn layer(&self, client: C) -> MeshService<C> {
        let m = &self.mesh;
        let s = BalanceLayer::new(m.clusters.clone()).select_protocol(m.select_protocol).layer(client);
        let s = PoolLayer::new(m.clusters.clone()).layer(s);
        let s = TimeoutLayer::per_try().layer(s);
        let s = RetryLayer::new().layer(s);
        let s = TimeoutLayer::route().layer(s);
        let s = MirrorLayer::new().layer(s);
        let s = ReplayLayer::new(m.replay_limit).layer(s);
        let s = FaultLayer::new().layer(s);
        let s = RouteLayer::new(m.config.clone(), m.client.clone())
            .with_binding(m.binding.clone())
            .with_registry(m.registry.clone())
            .layer(s);
        let s = m.telemetry.layer(s);
        let s = SetSensitiveRequestHeaders::new(s, SENSITIVE_HEADERS);
        SetRequestId::x_request_id(s, RequestIds)
    }
}
