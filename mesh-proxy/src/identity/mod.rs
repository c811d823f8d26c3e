//! Mutual TLS with workload identities, as Istio's sidecars speak it: a workload certificate
//! read from files, an inbound acceptor that applies the PeerAuthentication mode of each
//! connection, and an outbound client that checks the server's identity (secure naming).
//!
//! - [`certs`]: the workload certificate from Istio's files — `cert-chain.pem`, `key.pem`,
//!   `root-cert.pem` in one directory (istio/istio `pkg/security/security.go`:
//!   `DefaultCertChainFilePath`, `DefaultKeyFilePath`, `DefaultRootCertFilePath` under
//!   `./etc/certs`, and `WorkloadIdentityCertChainPath`, `WorkloadIdentityKeyPath`,
//!   `WorkloadIdentityRootCertPath` under `./var/run/secrets/workload-spiffe-credentials`),
//!   polled for changes; a bad new version is reported and the last good one kept.
//! - [`verify`]: the identity in a certificate — exactly one URI SAN, an Istio SPIFFE id
//!   (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, istio/istio
//!   `pkg/spiffe/spiffe.go`) — and the rustls verifiers that check it on both sides.
//! - [`server`]: [`IdentityAcceptor`], one accepted TCP connection at a time, by its effective
//!   [`MtlsMode`](mesh_core::authn::MtlsMode): `STRICT` mutual TLS only, `PERMISSIVE` mutual TLS
//!   or plaintext on one port (the first byte decides, as Envoy's `tls_inspector` does),
//!   `DISABLE` plaintext only; it yields the stream and a
//!   [`ConnectionInfo`](mesh_tower::inbound::ConnectionInfo).
//! - [`serve`]: serve an accepted connection with hyper, the `ConnectionInfo` in every
//!   request's extensions ([`ConnectionInfoLayer`] for any tower service).
//! - [`client`]: a rustls `ClientConfig` presenting the workload certificate and accepting only
//!   the expected server identities, with Istio's outbound ALPN; [`connect`] over a `TcpStream`.
//!
//! Everything uses the `ring` provider ([`crate::tls::provider`]), passed to every config;
//! nothing installs a process-wide default.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use mesh_core::authn::MtlsMode;
//! use mesh_core::authz::TrustDomainBundle;
//! use mesh_proxy::identity::{CertFiles, CertSource, IdentityAcceptor, serve};
//!
//! let certs = CertSource::load(CertFiles::in_dir("/etc/certs"))?;
//! tokio::spawn(certs.clone().watch(std::time::Duration::from_secs(5)));
//! let acceptor = Arc::new(IdentityAcceptor::new(certs, TrustDomainBundle::default()));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
//! serve::serve(listener, acceptor, |_port| MtlsMode::Permissive, app).await?;
//! # Ok(()) }
//! ```

pub mod certs;
pub mod client;
pub mod serve;
pub mod server;
pub mod verify;

pub use certs::{CertError, CertFiles, CertSource, ReloadOutcome, WorkloadCert};
pub use client::{ConnectError, Connected, OutboundProtocol, client_config, connect, istio_sni};
pub use serve::{ConnectionInfoLayer, WithConnectionInfo};
pub use server::{AcceptError, Accepted, HttpVersion, IdentityAcceptor, InboundStream};
pub use verify::{IdentityError, identity_of, secure_naming_match, uri_sans};

/// The ALPN protocols an inbound mutual TLS listener accepts, in the server's order of
/// preference.
///
/// An Istio sidecar's inbound filter chains match the client's `istio-http/1.0`,
/// `istio-http/1.1`, `istio-h2` (`mtlsHTTPALPNs`) and `istio`, `istio-peer-exchange`
/// (`allIstioMtlsALPNs`; istio/istio `pilot/pkg/networking/core/listener.go`,
/// `filterchain_options.go`), and its TLS context offers `h2`, `http/1.1`
/// (`ALPNDownstream[WithMxc]`, `pilot/pkg/networking/util/util.go`). A sidecar client offers
/// `istio-h2, istio, h2` or `istio-http/1.1, istio, http/1.1` (the ALPN override filter,
/// `pilot/pkg/xds/filters/filters.go`), so the plain HTTP names come first: such a client
/// negotiates `h2` or `http/1.1`, as it does with Envoy. `istio` (opaque in-mesh TCP) is
/// accepted for a client that offers nothing else; `istio-peer-exchange` comes last, because
/// meshwork does not speak Istio's TCP metadata exchange: Istio's clients always offer `istio`
/// beside it (`ALPNInMeshWithMxc`), which is chosen first.
pub const INBOUND_ALPN: [&[u8]; 7] =
    [b"h2", b"http/1.1", b"istio-h2", b"istio-http/1.1", b"istio-http/1.0", b"istio", b"istio-peer-exchange"];
