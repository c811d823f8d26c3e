//! Tower layers that put meshwork on the request path of an HTTP client.
//!
//! Built so far:
//! - [`Registry`]: endpoints by service, from code or from ServiceEntries / WorkloadEntries.
//! - [`route`]: the VirtualService decision per request — local answers (redirect, direct
//!   response, 404), weighted destination pick, rewrites and header edits, and a [`RouteContext`]
//!   in the request's extensions for the layers below.
//! - [`LocalReply`] and [`MeshBody`]: responses meshwork writes itself, built in one place.
//!
//! Coming with the rest of the mesh-tower issue: telemetry, fault, mirror, timeout, retry,
//! per-try timeout, connection-pool admission and balance layers, and the builder that stacks
//! them around a hyper-util `Client` in one line.

#![forbid(unsafe_code)]

pub mod body;
pub mod error;
pub mod registry;
pub mod route;

pub use body::MeshBody;
pub use error::{LocalReply, ResponseFlag};
pub use registry::{Endpoint, Registry};
pub use route::{RouteContext, RouteLayer, SharedSnapshot};
