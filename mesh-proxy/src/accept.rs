//! What every listener of `mesh proxy` does with a new connection before it serves it, whether
//! as HTTP ([`crate::server`]) or as TCP ([`crate::l4`]): accept it with Nagle off, read which
//! servers of a Gateway port apply ([`GatewayPort`]), terminate TLS with the server the client's
//! SNI names ([`accept_tls`]), and replay bytes read ahead of a handshake ([`Prefixed`]).
//!
//! `server` and `l4` both build on this module and on [`crate::connection`]; neither imports the
//! other.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_core::decision::{Listener, select_tls_server};
use mesh_core::request::normalize_host;
use mesh_core::service::{GatewayServer, ServerTls};
use mesh_tower::Mesh;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::tls::server_config;
use crate::upstream::ConnectionAffinity;

/// A TLS handshake must finish within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One port of a Gateway, served by a listener (see the module docs).
#[derive(Debug, Clone)]
pub struct GatewayPort {
    mesh: Mesh,
    namespace: Arc<str>,
    name: Arc<str>,
    pub(crate) port: u16,
    tls: Arc<Mutex<ServerConfigs>>,
}

/// Server TLS configs built so far, by the setting and the state of the files they were built from.
type ServerConfigs = Vec<(ServerTls, crate::tls::FilesState, Arc<rustls::ServerConfig>)>;

impl GatewayPort {
    /// Port `port` of Gateway `namespace/name`, as configured in `mesh` now and after reloads.
    pub fn new(mesh: Mesh, namespace: &str, name: &str, port: u16) -> Self {
        GatewayPort { mesh, namespace: Arc::from(namespace), name: Arc::from(name), port, tls: Arc::default() }
    }

    /// The servers on this port in the current configuration.
    pub fn servers(&self) -> Vec<GatewayServer> {
        let snapshot = self.mesh.snapshot();
        snapshot
            .gateway(&self.namespace, &self.name)
            .map(|g| g.servers.iter().filter(|s| s.port == self.port).cloned().collect())
            .unwrap_or_default()
    }

    /// The TLS config for `tls`, built once per setting and rebuilt when one of its files changes
    /// (certificates rotated in place, as cert-manager or a Secret mount does).
    fn server_config(&self, tls: &ServerTls) -> Option<Arc<rustls::ServerConfig>> {
        let files = crate::tls::files_state(
            [&tls.server_certificate, &tls.private_key, &tls.ca_certificates].map(|p| p.as_deref()),
        );
        let mut cache = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, config)) = cache.iter().find(|(t, f, _)| t == tls && *f == files) {
            return Some(config.clone());
        }
        match server_config(tls) {
            Ok(config) => {
                let config = Arc::new(config);
                cache.retain(|(t, _, _)| t != tls);
                cache.push((tls.clone(), files, config.clone()));
                Some(config)
            }
            Err(e) => {
                tracing::warn!(
                    target: "meshwork::proxy",
                    gateway = %format_args!("{}/{}", self.namespace, self.name),
                    port = self.port,
                    error = %e,
                    "gateway server TLS cannot be served"
                );
                None
            }
        }
    }
}

/// What a connection knows about how it was accepted.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub(crate) peer: SocketAddr,
    /// The address the client connected to.
    pub(crate) local: Option<SocketAddr>,
    pub(crate) https: bool,
    /// This connection's own upstream HTTP/1.1 connections.
    pub(crate) affinity: ConnectionAffinity,
    /// Gateway listeners: the port and the servers whose hosts this connection may ask for
    /// (the route layer decides admission and `httpsRedirect` from it: [`mesh_core::decision`]).
    pub(crate) listener: Option<Listener>,
}

/// Terminate TLS for a Gateway port: pick the server by SNI, then serve HTTP over it.
pub(crate) async fn accept_tls<IO>(
    stream: IO,
    local: Option<SocketAddr>,
    gateway: &GatewayPort,
    servers: Vec<GatewayServer>,
    peer: SocketAddr,
) -> Option<(tokio_rustls::server::TlsStream<IO>, Accepted)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let handshake = async {
        let start = acceptor.await.ok()?;
        let sni = start.client_hello().server_name().map(|n| normalize_host(n).into_owned());
        let Some(server) = select_tls_server(&servers, sni.as_deref()) else {
            tracing::debug!(target: "meshwork::proxy", %peer, sni = sni.as_deref().unwrap_or(""), "no gateway server for this SNI");
            return None;
        };
        let tls = server.tls.as_ref()?;
        let config = gateway.server_config(tls)?;
        let stream = start.into_stream(config).await.ok()?;
        if let Some(certificate) = stream.get_ref().1.peer_certificates().and_then(|c| c.first())
            && !crate::tls::client_names_allowed(certificate, &tls.subject_alt_names)
        {
            tracing::debug!(target: "meshwork::proxy", %peer, "client certificate names none of the server's subjectAltNames");
            return None;
        }
        let accepted = Accepted {
            peer,
            local,
            https: true,
            affinity: ConnectionAffinity::default(),
            listener: Some(Listener::tls(gateway.port, server.clone())),
        };
        Some((stream, accepted))
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Some(done)) => Some(done),
        Ok(None) => None,
        Err(_) => {
            tracing::debug!(target: "meshwork::proxy", %peer, "TLS handshake timed out");
            None
        }
    }
}

/// The next accepted connection, with Nagle off (`None`: accepting failed, logged; try again).
pub(crate) async fn next_connection(listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok((stream, peer)) => {
            let _ = stream.set_nodelay(true);
            Some((stream, peer))
        }
        Err(e) => {
            tracing::debug!(target: "meshwork::proxy", error = %e, "accept failed");
            None
        }
    }
}

/// A stream whose first bytes were read already (a ClientHello): they are read again first.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `prefix`, then what `inner` reads.
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed { prefix, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let (at, end) = (self.at, self.at + n);
            buf.put_slice(&self.prefix[at..end]);
            self.at = end;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
