//! The inbound side: accept one TCP connection by its PeerAuthentication mode.
//!
//! The mode is passed per connection, because a configuration reload changes it between two
//! connections (mesh-core's [`PeerAuthentications::effective`](mesh_core::authn::PeerAuthentications::effective)
//! gives it for the workload and the port):
//!
//! - `STRICT`: a TLS handshake that requires a client certificate chaining to `root-cert.pem`
//!   and naming one SPIFFE id in the mesh's trust domain or one of its aliases
//!   ([`SpiffeClientVerifier`]). Plaintext, and TLS without
//!   a client certificate, fail the handshake and the connection is closed.
//! - `PERMISSIVE`: the first byte decides, as the `tls_inspector` listener filter an Istio
//!   sidecar's inbound listener runs (istio/istio `pilot/pkg/networking/core/listener_inbound.go`):
//!   `0x16`, a TLS handshake record, is mutual TLS exactly as `STRICT`; anything else is
//!   plaintext on the same port. The peek waits at most [`IdentityAcceptor::with_peek_timeout`]
//!   (5 s by default); a client that sends nothing by then is served as plaintext, as Istio's
//!   inbound listener sets `continue_on_listener_filters_timeout: true` (a server-first
//!   protocol). A connection closed before its first byte is dropped.
//! - `DISABLE`: plaintext only; a TLS client's handshake is never answered with TLS.
//!
//! A TLS connection negotiates one of [`INBOUND_ALPN`]; [`Accepted::http`] says which HTTP
//! version it implies (`h2`, `istio-h2`: HTTP/2; `http/1.1`, `istio-http/1.1`,
//! `istio-http/1.0`: HTTP/1; otherwise unknown — sniff, as hyper-util's auto server does).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use mesh_core::authn::MtlsMode;
use mesh_core::authz::TrustDomainBundle;
use mesh_tower::inbound::ConnectionInfo;
use rustls::ServerConfig;
use rustls::sign::SingleCertAndKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::INBOUND_ALPN;
use super::certs::CertSource;
use super::verify::{IdentityError, SpiffeClientVerifier, client_identity};

/// The first byte of a TLS handshake record (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// Why an inbound connection was not accepted. The connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Reading the socket (addresses, the first byte) failed.
    #[error("inbound connection: {0}")]
    Io(#[from] io::Error),
    /// The client closed the connection before sending anything.
    #[error("inbound connection closed before its first byte")]
    Closed,
    /// The TLS handshake failed: plaintext on a mutual TLS port, no client certificate, a
    /// certificate of another root or trust domain, an expired one, no common ALPN, ...
    #[error("mutual TLS handshake: {0}")]
    Handshake(io::Error),
    /// The TLS handshake did not finish in time.
    #[error("mutual TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The client's certificate does not name an acceptable identity.
    #[error("mutual TLS peer: {0}")]
    Identity(#[from] IdentityError),
    /// The client presented no certificate (cannot happen: one is required).
    #[error("mutual TLS peer presented no certificate")]
    NoClientCertificate,
    /// The server's TLS configuration could not be built from the workload certificate.
    #[error("inbound TLS configuration: {0}")]
    Config(String),
}

/// The HTTP version a TLS connection's ALPN implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.0 or HTTP/1.1 (`http/1.1`, `istio-http/1.1`, `istio-http/1.0`).
    Http1,
    /// HTTP/2 (`h2`, `istio-h2`).
    Http2,
}

impl HttpVersion {
    /// The HTTP version of a negotiated ALPN protocol, if it names one.
    pub fn from_alpn(protocol: &[u8]) -> Option<HttpVersion> {
        match protocol {
            b"h2" | b"istio-h2" => Some(HttpVersion::Http2),
            b"http/1.1" | b"istio-http/1.1" | b"istio-http/1.0" | b"http/1.0" => Some(HttpVersion::Http1),
            _ => None,
        }
    }
}

/// An accepted connection's stream: plaintext or server-side TLS.
#[derive(Debug)]
pub enum InboundStream {
    /// Plaintext.
    Plain(TcpStream),
    /// Mutual TLS, the handshake done.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for InboundStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            InboundStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            InboundStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for InboundStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            InboundStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            InboundStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            InboundStream::Plain(s) => Pin::new(s).poll_flush(cx),
            InboundStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            InboundStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            InboundStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            InboundStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            InboundStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            InboundStream::Plain(s) => s.is_write_vectored(),
            InboundStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// An accepted connection.
#[derive(Debug)]
pub struct Accepted {
    /// The stream to serve.
    pub stream: InboundStream,
    /// What the inbound layer needs to know about it (peer identity, SNI, addresses).
    pub info: ConnectionInfo,
    /// The mode it was accepted under.
    pub mode: MtlsMode,
    /// The ALPN protocol negotiated (TLS only).
    pub alpn: Option<Vec<u8>>,
    /// The HTTP version the ALPN protocol implies (`None`: plaintext, no ALPN, or an opaque
    /// protocol such as `istio` — detect it from the bytes).
    pub http: Option<HttpVersion>,
}

/// Accepts inbound connections as an Istio sidecar's inbound listener does, by the
/// PeerAuthentication mode of each (see the module docs).
#[derive(Debug)]
pub struct IdentityAcceptor {
    certs: CertSource,
    bundle: TrustDomainBundle,
    peek_timeout: Duration,
    handshake_timeout: Duration,
    /// The server config of the certificate version it was built from.
    config: Mutex<Option<(u64, Arc<ServerConfig>)>>,
}

impl IdentityAcceptor {
    /// An acceptor presenting the workload certificate of `certs`, accepting peers of
    /// `bundle`'s trust domains.
    pub fn new(certs: CertSource, bundle: TrustDomainBundle) -> IdentityAcceptor {
        IdentityAcceptor {
            certs,
            bundle,
            peek_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            config: Mutex::new(None),
        }
    }

    /// How long `PERMISSIVE` waits for a client's first byte before serving plaintext (5 s).
    pub fn with_peek_timeout(mut self, timeout: Duration) -> IdentityAcceptor {
        self.peek_timeout = timeout;
        self
    }

    /// How long a TLS handshake may take (10 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> IdentityAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The workload certificate source.
    pub fn certs(&self) -> &CertSource {
        &self.certs
    }

    /// The accepted trust domains.
    pub fn bundle(&self) -> &TrustDomainBundle {
        &self.bundle
    }

    /// The rustls server config for the certificate version in use (built once per version).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, AcceptError> {
        let cert = self.certs.current();
        let mut cached = self.config.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((version, config)) = cached.as_ref()
            && *version == cert.version()
        {
            return Ok(config.clone());
        }
        let provider = self.certs.provider().clone();
        let verifier = SpiffeClientVerifier::new(cert.roots().clone(), self.bundle.clone(), provider.clone())
            .map_err(|e| AcceptError::Config(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AcceptError::Config(e.to_string()))?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(cert.certified_key().clone())));
        config.alpn_protocols = INBOUND_ALPN.iter().map(|p| p.to_vec()).collect();
        let config = Arc::new(config);
        *cached = Some((cert.version(), config.clone()));
        Ok(config)
    }

    /// Accepts `tcp` under `mode`.
    pub async fn accept(&self, tcp: TcpStream, mode: MtlsMode) -> Result<Accepted, AcceptError> {
        let info = ConnectionInfo::plaintext(tcp.peer_addr().ok(), tcp.local_addr().ok());
        let tls = match mode {
            MtlsMode::Strict => true,
            MtlsMode::Disable => false,
            MtlsMode::Permissive => {
                let mut first = [0u8; 1];
                match tokio::time::timeout(self.peek_timeout, tcp.peek(&mut first)).await {
                    // Nothing yet: served as plaintext (continue_on_listener_filters_timeout).
                    Err(_elapsed) => false,
                    Ok(Err(e)) => return Err(AcceptError::Io(e)),
                    Ok(Ok(0)) => return Err(AcceptError::Closed),
                    Ok(Ok(_)) => first[0] == TLS_HANDSHAKE,
                }
            }
        };
        if !tls {
            return Ok(Accepted { stream: InboundStream::Plain(tcp), info, mode, alpn: None, http: None });
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server_config()?);
        let stream = tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| AcceptError::HandshakeTimeout(self.handshake_timeout))?
            .map_err(AcceptError::Handshake)?;
        let (_, conn) = stream.get_ref();
        let leaf = conn.peer_certificates().and_then(|chain| chain.first()).ok_or(AcceptError::NoClientCertificate)?;
        let peer = client_identity(leaf, &self.bundle)?;
        let sni = conn.server_name().map(Arc::from);
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let http = alpn.as_deref().and_then(HttpVersion::from_alpn);
        tracing::debug!(target: "meshwork::identity", %peer, ?sni, ?http, "inbound mutual TLS");
        Ok(Accepted { stream: InboundStream::Tls(Box::new(stream)), info: info.with_peer(peer, sni), mode, alpn, http })
    }
}
