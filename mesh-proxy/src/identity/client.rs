//! The outbound side: mutual TLS to a mesh peer, presenting the workload certificate and
//! accepting only the expected server identities (Istio's secure naming; see
//! [`verify`](super::verify)).
//!
//! ALPN is what an Istio sidecar offers upstream for `ISTIO_MUTUAL`: its HCM's ALPN override
//! filter replaces the cluster's list by the request's HTTP version (istio/istio
//! `pilot/pkg/xds/filters/filters.go`, `mtlsHTTP10ALPN`, `mtlsHTTP11ALPN`, `mtlsHTTP2ALPN`:
//! `istio-http/1.0|istio-http/1.1|istio-h2`, then `istio`, then the plain name, the plain name
//! "to ensure that traffic sent out of the mesh has a valid ALPN"). A TCP cluster offers
//! `ALPNInMesh` (`istio`; `pilot/pkg/networking/util/util.go`, chosen in
//! `pilot/pkg/networking/core/cluster_tls.go`): Istio offers `istio-peer-exchange` first
//! (`ALPNInMeshWithMxc`) only when the sidecar runs its TCP metadata exchange filter, which
//! meshwork does not, so it never offers it — a server that picked it would expect that
//! exchange. [`OutboundProtocol`] picks the list.
//!
//! The SNI is Istio's too when the caller uses [`istio_sni`]: the cluster's DNS SRV name
//! `outbound_.<port>_.<subset>_.<host>` (`model.BuildDNSSrvSubsetKey`,
//! `pilot/pkg/model/service.go`; set in `cluster_tls.go` for `ISTIO_MUTUAL`), which an
//! Istio gateway in `AUTO_PASSTHROUGH` routes by.

use std::io;
use std::sync::Arc;

use mesh_core::authz::TrustDomainBundle;
use mesh_core::spiffe::SpiffeId;
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::sign::SingleCertAndKey;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::certs::{CertSource, WorkloadCert};
use super::verify::{IdentityError, SpiffeServerVerifier, identity_of};

/// Why an outbound mutual TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The client config could not be built.
    #[error("outbound TLS configuration: {0}")]
    Config(String),
    /// The handshake failed: the server is not an expected identity, its chain does not verify
    /// against `root-cert.pem`, it refused our certificate, ...
    #[error("mutual TLS handshake: {0}")]
    Handshake(io::Error),
    /// The server's certificate does not name one SPIFFE identity.
    #[error("mutual TLS server: {0}")]
    Identity(#[from] IdentityError),
    /// The server presented no certificate (cannot happen in TLS: one is required).
    #[error("mutual TLS server presented no certificate")]
    NoServerCertificate,
}

/// The application protocol an outbound connection carries, which sets the ALPN offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundProtocol {
    /// HTTP/1.0: `istio-http/1.0`, `istio`, `http/1.0`.
    Http10,
    /// HTTP/1.1: `istio-http/1.1`, `istio`, `http/1.1`.
    Http11,
    /// HTTP/2: `istio-h2`, `istio`, `h2`.
    Http2,
    /// Opaque TCP: `istio`.
    Tcp,
}

impl OutboundProtocol {
    /// The ALPN protocols offered, in order.
    pub fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            OutboundProtocol::Http10 => &[b"istio-http/1.0", b"istio", b"http/1.0"],
            OutboundProtocol::Http11 => &[b"istio-http/1.1", b"istio", b"http/1.1"],
            OutboundProtocol::Http2 => &[b"istio-h2", b"istio", b"h2"],
            OutboundProtocol::Tcp => &[b"istio"],
        }
    }
}

/// Istio's SNI for mutual TLS to `host:port` (and a DestinationRule subset):
/// `outbound_.<port>_.<subset>_.<host>`.
///
/// ```
/// use mesh_proxy::identity::istio_sni;
/// assert_eq!(istio_sni("reviews.default.svc.cluster.local", 9080, Some("v1")), "outbound_.9080_.v1_.reviews.default.svc.cluster.local");
/// assert_eq!(istio_sni("httpbin.foo.svc.cluster.local", 8000, None), "outbound_.8000_._.httpbin.foo.svc.cluster.local");
/// ```
pub fn istio_sni(host: &str, port: u16, subset: Option<&str>) -> String {
    format!("outbound_.{port}_.{}_.{host}", subset.unwrap_or(""))
}

/// A rustls client config presenting `cert` and accepting a server named by one of
/// `expected` (trust-domain aliases of `bundle` honoured; an empty list accepts any identity
/// the root vouches for), offering `protocol`'s ALPN.
pub fn client_config(
    cert: &WorkloadCert,
    expected: &[SpiffeId],
    bundle: &TrustDomainBundle,
    protocol: OutboundProtocol,
    provider: Arc<CryptoProvider>,
) -> Result<ClientConfig, ConnectError> {
    let verifier = SpiffeServerVerifier::new(cert.roots().clone(), expected, bundle.clone(), provider.clone());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(cert.certified_key().clone())));
    config.alpn_protocols = protocol.alpn().iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// An established outbound mutual TLS connection.
#[derive(Debug)]
pub struct Connected<IO> {
    /// The TLS stream.
    pub stream: tokio_rustls::client::TlsStream<IO>,
    /// The server's verified identity.
    pub peer: SpiffeId,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<Vec<u8>>,
}

/// Mutual TLS over `io` (a connected `TcpStream`) with the current workload certificate of
/// `certs`, to a server that must be one of `expected`; `server_name` is sent as SNI (see
/// [`istio_sni`]) and not checked against the certificate. A client config is built per call
/// (from the version in use, so a rotated certificate applies at once); sessions are therefore
/// not resumed across calls — build one with [`client_config`] and a `TlsConnector` to keep it.
pub async fn connect<IO>(
    io: IO,
    certs: &CertSource,
    expected: &[SpiffeId],
    bundle: &TrustDomainBundle,
    protocol: OutboundProtocol,
    server_name: ServerName<'static>,
) -> Result<Connected<IO>, ConnectError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let config = client_config(&certs.current(), expected, bundle, protocol, certs.provider().clone())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, io)
        .await
        .map_err(ConnectError::Handshake)?;
    let (_, conn) = stream.get_ref();
    let leaf = conn.peer_certificates().and_then(|chain| chain.first()).ok_or(ConnectError::NoServerCertificate)?;
    let peer = identity_of(leaf)?;
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    Ok(Connected { stream, peer, alpn })
}
