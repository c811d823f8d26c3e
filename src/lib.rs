//! An embeddable service mesh for Rust: Istio's traffic management as a library inside your
//! process, configured with the YAML Istio users already write.
//!
//! # Entry points
//!
//! - [`ConfigSource`]: a directory of Istio YAML applied to a mesh, validated (errors name the
//!   file, line, resource and field), reloaded when the files change, the last good version of
//!   each resource kept.
//! - [`client`] / [`MeshClient`]: the ready client — routing, retries, timeouts, faults,
//!   mirrors, circuit breaking, load balancing and Istio's metrics over pooled HTTP/1.1 and
//!   HTTP/2 connections, TLS where a DestinationRule asks. It is also a tonic transport.
//! - [`tower::Mesh`]: the same layers around a client of your own
//!   ([`tower::Mesh::layer`]); [`tower::Registry`] says where services run.
//! - [`proxy::admin`]: Prometheus with Istio's buckets
//!   ([`proxy::admin::install_prometheus_recorder`]) and the admin routes (`/metrics`,
//!   `/config_dump`, `/ready`) to mount in an axum app ([`proxy::admin::router`]).
//! - `kubernetes` (cargo feature `kubernetes`): the Kubernetes API as a config and endpoint
//!   source, in one line: `ConfigSource::new(vec![], "default")?.kubernetes(client, &options)`,
//!   then `source.ready().await`.
//! - [`config`]: loading and validation alone ([`config::ConfigStore`], [`config::load_path`]).
//! - [`core`]: the decisions as plain values — [`core::Snapshot::decide`] answers what happens to
//!   a request, as `mesh explain` prints it and `mesh proxy` serves it.
//!
//! The `mesh` binary (`cargo run -p mesh-proxy -- --help`) validates config (`mesh validate`),
//! explains a request (`mesh explain`) and runs the same core as a proxy (`mesh proxy`). The
//! repository's README walks through all of it with runnable examples.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshwork::tower::BoxError> {
//! use http_body_util::Empty;
//! use tower::ServiceExt;
//!
//! let source = meshwork::ConfigSource::new(vec!["istio/".into()], "default")?;
//! let reviews: meshwork::MeshClient<Empty<bytes::Bytes>> = meshwork::client(source.mesh());
//! let response = reviews.oneshot(http::Request::get("http://reviews:9080/").body(Empty::new())?).await?;
//! # let _ = response; Ok(()) }
//! ```
#![forbid(unsafe_code)]

/// The README's code blocks, compiled and run as doc tests (its links point into the
/// repository, so it is not the rendered front page).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

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
/// last good version of each resource (see [`proxy::reload`]); with the `kubernetes` feature,
/// also fed by the Kubernetes API ([`ConfigSource::kubernetes`](proxy::reload::ConfigSource)).
pub use mesh_proxy::reload::ConfigSource;

/// Kubernetes as the config and endpoint source (`mesh-kube`, with the `kubernetes` feature):
/// kube-rs watches of Istio's resources, Services, EndpointSlices and Pods.
///
/// ```text
/// // In an async fn; `source.mesh()` routes as the cluster's Istio config says.
/// let client = meshwork::kubernetes::client(None).await?; // kubeconfig, $KUBECONFIG or in-cluster
/// let source = meshwork::ConfigSource::new(vec![], "default")?.kubernetes(client, &Default::default());
/// source.ready().await; // every watched kind listed once
/// ```
#[cfg(feature = "kubernetes")]
pub use mesh_kube as kubernetes;
