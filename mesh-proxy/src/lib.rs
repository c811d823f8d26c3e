//! The pieces of `mesh proxy`, as a library: build your own proxy binary from them.
//!
//! - [`server`]: accept HTTP/1.1 and HTTP/2 (h2c) connections and forward every request through
//!   the meshwork stack ([`mesh_tower::Mesh`]) around a pooled hyper-util client; graceful drain.
//! - [`server::serve_gateway`]: the same, as one port of an Istio Gateway (hosts, TLS
//!   termination by SNI, `httpsRedirect`).
//! - [`gateway`]: one listener per port of a Gateway, opened and closed as its `servers` change.
//! - [`inbound`]: `mesh proxy --inbound`, a sidecar's inbound listener (mTLS by PeerAuthentication,
//!   the inbound layer) in front of a local application; [`identity`]: the mutual TLS under it.
//! - [`l4`]: a Gateway's plain TCP and TLS passthrough servers (VirtualService `tcp[]`, `tls[]`).
//! - [`upstream`]: the pooled client under the stack, with TLS origination per DestinationRule.
//! - [`tls`]: rustls configs from Istio's TLS settings (ring provider, nothing installed globally).
//! - [`explain`]: `mesh explain`'s output — the JSON of a mesh-core decision — and the JSON of
//!   compiled rules that `/config_dump` shows.
//! - [`admin`]: `/metrics` (Prometheus text), `/config_dump`, `/clusters`, `/ready`, `/healthz`.
//! - [`app`]: the `mesh` command line (`validate`, `explain`, `proxy`) as functions over these
//!   pieces; the `mesh` binary parses its arguments and calls [`app::run`].
//! - [`reload`]: the configuration source — files loaded, validated per resource, applied to the
//!   mesh; reloads on change (polling the files' contents) and on demand (SIGHUP in the binary),
//!   keeping the last good version of every rejected resource.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mesh_proxy::{admin, reload::ConfigSource, server};
//! let source = ConfigSource::new(vec!["istio/".into()], "default")?;
//! let mesh = source.mesh().clone();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:15001").await?;
//! let (_stop, stopped) = tokio::sync::watch::channel(false);
//! tokio::spawn(source.clone().watch(std::time::Duration::from_secs(1)));
//! server::serve(listener, server::upstream(&mesh), stopped).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod accept;
mod connection;

pub mod admin;
pub mod app;
pub mod client;
pub mod explain;
pub mod gateway;
pub mod identity;
pub mod inbound;
pub mod jwks;
pub mod l4;
pub mod reload;
pub mod server;
pub mod tls;
pub mod upstream;
