//! A ready client: the whole mesh stack over [`UpstreamClient`], built in one line.
//!
//! ```no_run
//! # async fn demo(mesh: &mesh_tower::Mesh) -> Result<(), mesh_tower::BoxError> {
//! use http_body_util::{BodyExt, Full};
//! use mesh_proxy::client::{MeshClient, client};
//! use tower::ServiceExt;
//!
//! let reviews: MeshClient<Full<bytes::Bytes>> = client(mesh);
//! let request = http::Request::get("http://reviews:9080/reviews/0").body(Full::default())?;
//! let response = reviews.oneshot(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! # let _ = body; Ok(()) }
//! ```
//!
//! What the client does below the mesh's layers ([`UpstreamClient`]): pooled keep-alive
//! connections per endpoint; HTTP/2 with prior knowledge to service ports that speak it
//! (`GRPC`, `HTTP2`, a DestinationRule's `h2UpgradePolicy: UPGRADE`; `useClientProtocol` keeps
//! the request's own version), HTTP/1.1 to the others; TLS to the endpoints when the
//! DestinationRule's `tls.mode` is `SIMPLE` or `MUTUAL` (SNI and certificate checks as Istio's
//! sidecar makes them); Istio's mutual TLS with the workload certificate given to
//! [`client_with_mtls`] (`ISTIO_MUTUAL`, and auto mTLS to endpoints labelled
//! `security.istio.io/tlsMode: istio`; [`mesh_core::upstream_tls`] decides, per endpoint);
//! `connectTimeout` and `tcpKeepalive`. The types have names, so a helper
//! can take the client as a parameter:
//!
//! ```
//! use http_body_util::Full;
//! use mesh_proxy::client::{MeshClient, MeshResponse};
//! use tower::ServiceExt;
//!
//! async fn fetch(client: MeshClient<Full<bytes::Bytes>>, uri: &str) -> Result<MeshResponse, mesh_tower::BoxError> {
//!     let request = http::Request::get(uri).body(Full::default())?;
//!     Ok(client.oneshot(request).await?)
//! }
//! ```

use hyper::body::Incoming;
use mesh_tower::{Mesh, MeshBody, MeshService};
use tower::Layer;

pub use crate::upstream::{OutboundMtls, RequestBody, UpstreamClient};

/// The mesh stack over the ready client, for request bodies of type `B`: a
/// `tower::Service<http::Request<B>>` answering [`MeshResponse`]. Cheap to clone.
pub type MeshClient<B> = MeshService<UpstreamClient<B>>;

/// The body of a [`MeshResponse`]: the endpoint's body (or the mesh's own reply), measured for
/// Istio's metrics as it is read. Read it with `http_body_util::BodyExt::collect`; its error is
/// [`mesh_tower::BoxError`]-compatible (a timeout is a `mesh_tower::body::BodyError`).
pub type MeshResponseBody = mesh_tower::telemetry::TelemetryBody<MeshBody<Incoming>>;

/// What a [`MeshClient`] answers.
pub type MeshResponse = http::Response<MeshResponseBody>;

/// The mesh's layers over a new [`UpstreamClient`], choosing each request's HTTP version by
/// its destination's port (see the module docs).
pub fn client<B: RequestBody>(mesh: &Mesh) -> MeshClient<B> {
    mesh.layer().upstream_protocol_by_port(true).layer(UpstreamClient::new())
}

/// [`client`] with a workload certificate: Istio's mutual TLS where mesh-core decides so
/// (`ISTIO_MUTUAL`, auto mTLS), as a sidecar would originate it.
///
/// ```no_run
/// # fn demo(mesh: &mesh_tower::Mesh) -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::Full;
/// use mesh_proxy::client::{MeshClient, OutboundMtls, client_with_mtls};
/// use mesh_proxy::identity::{CertFiles, CertSource};
///
/// let certs = CertSource::load(CertFiles::in_dir("/etc/certs"))?;
/// tokio::spawn(certs.clone().watch(std::time::Duration::from_secs(5)));
/// let reviews: MeshClient<Full<bytes::Bytes>> = client_with_mtls(mesh, OutboundMtls::new(Some(certs)));
/// # let _ = reviews; Ok(()) }
/// ```
pub fn client_with_mtls<B: RequestBody>(mesh: &Mesh, mtls: OutboundMtls) -> MeshClient<B> {
    mesh.layer().upstream_protocol_by_port(true).layer(UpstreamClient::new().with_outbound_mtls(mtls))
}
