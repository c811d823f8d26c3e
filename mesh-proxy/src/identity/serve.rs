//! Serving accepted connections with hyper, the [`ConnectionInfo`] in every request.
//!
//! The inbound layer (`mesh_tower::inbound`) reads the peer identity, the SNI and the addresses
//! from a [`ConnectionInfo`] in the request's extensions. [`ConnectionInfoLayer`] puts a clone
//! in every request of one connection, in front of any tower service (an axum `Router`, the
//! inbound layer itself); [`serve_connection`] serves one [`Accepted`] connection with
//! hyper-util's HTTP/1 + HTTP/2 server (the version fixed by ALPN when TLS negotiated one);
//! [`serve`] is the accept loop around both.

use std::error::Error as StdError;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use mesh_core::authn::MtlsMode;
use mesh_tower::inbound::ConnectionInfo;
use tokio::net::TcpListener;
use tower::{Layer, Service};

use super::server::{Accepted, HttpVersion, IdentityAcceptor};

/// A boxed error, as hyper returns them.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Inserts a clone of one connection's [`ConnectionInfo`] in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfoLayer {
    info: ConnectionInfo,
}

impl ConnectionInfoLayer {
    /// A layer for the connection described by `info`.
    pub fn new(info: ConnectionInfo) -> ConnectionInfoLayer {
        ConnectionInfoLayer { info }
    }
}

impl<S> Layer<S> for ConnectionInfoLayer {
    type Service = WithConnectionInfo<S>;

    fn layer(&self, inner: S) -> WithConnectionInfo<S> {
        WithConnectionInfo { inner, info: self.info.clone() }
    }
}

/// The service of [`ConnectionInfoLayer`].
#[derive(Debug, Clone)]
pub struct WithConnectionInfo<S> {
    inner: S,
    info: ConnectionInfo,
}

impl<S> WithConnectionInfo<S> {
    /// `inner`, its requests carrying `info`.
    pub fn new(inner: S, info: ConnectionInfo) -> WithConnectionInfo<S> {
        WithConnectionInfo { inner, info }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for WithConnectionInfo<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        request.extensions_mut().insert(self.info.clone());
        self.inner.call(request)
    }
}

/// Serves one accepted connection with `service` until the client closes it; every request
/// carries the connection's [`ConnectionInfo`].
pub async fn serve_connection<S, B>(accepted: Accepted, service: S) -> Result<(), BoxError>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let service = TowerToHyperService::new(WithConnectionInfo::new(service, accepted.info));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let builder = match accepted.http {
        Some(HttpVersion::Http1) => builder.http1_only(),
        Some(HttpVersion::Http2) => builder.http2_only(),
        None => builder,
    };
    builder.serve_connection_with_upgrades(TokioIo::new(accepted.stream), service).await
}

/// Accepts connections on `listener` forever, each under the mode `mode_for_port` gives for
/// the port it arrived on (called per connection, so a configuration reload applies to the
/// next one), and serves them with `service`. A refused connection is logged at debug level
/// and closed.
pub async fn serve<F, S, B>(
    listener: TcpListener,
    acceptor: Arc<IdentityAcceptor>,
    mode_for_port: F,
    service: S,
) -> std::io::Result<()>
where
    F: Fn(u16) -> MtlsMode + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mode_for_port = Arc::new(mode_for_port);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(target: "meshwork::identity", error = %e, "accepting an inbound connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, mode_for_port, service) = (acceptor.clone(), mode_for_port.clone(), service.clone());
        tokio::spawn(async move {
            let port = tcp.local_addr().map(|a| a.port()).unwrap_or_default();
            let mode = mode_for_port(port);
            match acceptor.accept(tcp, mode).await {
                Ok(accepted) => {
                    if let Err(e) = serve_connection(accepted, service).await {
                        tracing::debug!(target: "meshwork::identity", error = %e, "inbound connection");
                    }
                }
                Err(e) => {
                    tracing::debug!(target: "meshwork::identity", %mode, error = %e, "inbound connection refused")
                }
            }
        });
    }
}
