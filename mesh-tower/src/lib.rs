//! Tower layers that put meshwork on the request path of an HTTP client.
//!
//! The stack, outermost first (each layer is its own module and usable alone; [`Mesh`] assembles
//! them in this order around any HTTP client service):
//!
//! | layer | module | does |
//! |---|---|---|
//! | telemetry | [`telemetry`] | Istio's metrics, a span per request, `traceparent`, access log |
//! | route | [`route`] | VirtualService decision; redirects, direct responses, 404; rewrites, header edits |
//! | fault | [`fault`] | delay / abort at their percentages |
//! | replay | [`replay`] | keeps a bounded copy of the request body for mirrors and retries |
//! | mirror | [`mirror`] | fire-and-forget copies to the mirror destinations |
//! | timeout | [`timeout`] | the route's overall timeout (504 `UT`) |
//! | retry | [`retry`] | `retries`: attempts, `retryOn`, budget, backoff, another endpoint each try |
//! | per-try timeout | [`timeout`] | `perTryTimeout` |
//! | connection pool | [`pool`] | `connectionPool` admission: fail fast with 503 `UO` |
//! | balance | [`balance`] | endpoint pick, outlier detection, URI set to the endpoint |
//!
//! The route's decision travels down in the request's extensions as a [`RouteContext`]; the
//! destination's runtime state (balancer, outlier detector, pool counters) is a
//! [`Cluster`](cluster::Cluster), cached in [`Clusters`](cluster::Clusters) and kept across config
//! swaps. Every response meshwork writes itself is a [`LocalReply`], with Envoy's status codes and
//! [`ResponseFlags`].

#![forbid(unsafe_code)]

pub mod balance;
pub mod body;
mod builder;
pub mod cluster;
pub mod context;
pub mod error;
pub mod fault;
pub mod inbound;
pub mod mirror;
pub mod pool;
pub mod registry;
pub mod replay;
pub mod request_id;
pub mod retry;
mod rng;
pub mod route;
pub mod telemetry;
pub mod timeout;

pub use body::MeshBody;
pub use builder::{Mesh, MeshBuilder, MeshLayer, MeshService, MeshStack};
pub use context::RouteContext;
pub use error::{LocalBody, LocalReply, ResponseFlags};
pub use registry::{Endpoint, IntoAddress, Registry};
pub use replay::ReplayBody;
pub use route::{DownstreamAddresses, DownstreamScope, Listener, RouteLayer, SharedSnapshot};

/// A uniform random `u64` from the generator the request path draws from (this thread's wyrand,
/// seeded from the OS): for weighted picks made outside the stack, such as a proxy's TCP routes.
/// Not for secrets.
pub fn random_u64() -> u64 {
    rng::u64()
}

/// A boxed error, as tower uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
