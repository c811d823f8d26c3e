//! TLS origination to endpoints ([`TlsConnector`]): TCP, then TLS with one DestinationRule
//! setting and server name, the rustls config rebuilt when its certificate files change.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use mesh_core::policy::ClientTls;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::BoxError;
use crate::tls::{TlsError, client_config};

/// Connects with TCP, then TLS with one setting and server name.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    http: HttpConnector,
    tls: Arc<ClientTls>,
    sni: Arc<str>,
    http2: bool,
    config: Arc<Mutex<Option<BuiltConfig>>>,
}

impl TlsConnector {
    /// Connections opened by `http`, then TLS with `tls`, sending `sni`, offering ALPN `h2` or
    /// `http/1.1` as `http2` says.
    pub(super) fn new(http: HttpConnector, tls: Arc<ClientTls>, sni: Arc<str>, http2: bool) -> Self {
        TlsConnector { http, tls, sni, http2, config: Arc::default() }
    }
}

/// A client config (or why it could not be built), with the state of the files it came from.
type BuiltConfig = (crate::tls::FilesState, Result<Arc<rustls::ClientConfig>, Arc<TlsError>>);

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TlsConnection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsConnection, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<http::Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let http2 = self.http2;
        let tls = &self.tls;
        let files = crate::tls::files_state(
            [&tls.client_certificate, &tls.private_key, &tls.ca_certificates].map(|p| p.as_deref()),
        );
        let config = {
            let mut built = self.config.lock().unwrap_or_else(|p| p.into_inner());
            match &*built {
                Some((f, config)) if *f == files => config.clone(),
                _ => {
                    let alpn: &[u8] = if http2 { b"h2" } else { b"http/1.1" };
                    let config = client_config(&self.tls)
                        .map(|mut c| {
                            c.alpn_protocols = vec![alpn.to_vec()];
                            Arc::new(c)
                        })
                        .map_err(|e| {
                            tracing::warn!(target: "meshwork::tls", error = %e, "upstream TLS settings cannot be used");
                            Arc::new(e)
                        });
                    *built = Some((files, config.clone()));
                    config
                }
            }
        };
        let sni = self.sni.clone();
        let tcp = tower::Service::call(&mut self.http, uri);
        Box::pin(async move {
            let config = config.map_err(|e| -> BoxError { Box::new(ConfigError(e)) })?;
            let name = ServerName::try_from(sni.to_string())?;
            let tcp = tcp.await?.into_inner();
            let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
            Ok(TlsConnection(TokioIo::new(stream)))
        })
    }
}

/// A TLS setting that could not be built (the connection attempt fails with it).
#[derive(Debug, thiserror::Error)]
#[error("upstream TLS: {0}")]
struct ConfigError(Arc<TlsError>);

/// A TLS connection to an endpoint (a DestinationRule's `SIMPLE`/`MUTUAL`, or Istio's mutual
/// TLS).
#[derive(Debug)]
pub struct TlsConnection(pub(super) TokioIo<tokio_rustls::client::TlsStream<TcpStream>>);

impl Connection for TlsConnection {
    fn connected(&self) -> Connected {
        let (tcp, session) = self.0.inner().get_ref();
        let connected = tcp.connected();
        // `istio-h2`: an Istio server (a sidecar's inbound listener) that took Istio's name for h2.
        match session.alpn_protocol() {
            Some(b"h2" | b"istio-h2") => connected.negotiated_h2(),
            _ => connected,
        }
    }
}

impl hyper::rt::Read for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsConnection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}
