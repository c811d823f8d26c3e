//! `mesh proxy --inbound LISTEN=APP_ADDR`: a sidecar's inbound listener in front of a local
//! application.
//!
//! Every connection accepted on `LISTEN` is taken under the PeerAuthentication mode in force for
//! the workload and the application's port ([`identity::IdentityAcceptor`]: `STRICT` mutual TLS
//! only, `PERMISSIVE` mutual TLS or plaintext, `DISABLE` plaintext), then each request goes
//! through the [inbound layer](mesh_tower::inbound) — path normalization, RequestAuthentication,
//! AuthorizationPolicy, Istio's `reporter="destination"` metrics — and on to `APP_ADDR` over
//! plain HTTP/1.1, its `Host` kept.
//!
//! The port policies name is the application's (`APP_ADDR`'s): an Istio sidecar sees the port the
//! client dialled (the container port) even though its listener is 15006, so `portLevelMtls`,
//! `to.operation.ports` and `destination.port` keep meaning the application's port here.
//!
//! `--inbound-tcp LISTEN=APP_ADDR` serves a TCP application the same way, one decision per
//! connection ([`mesh_tower::inbound::inbound_connection`]: the HTTP-only policy fields never
//! match, as Istio says for TCP): a denied connection is closed, an allowed one is spliced to
//! the application.
//!
//! Without a workload certificate (`--cert-dir`) nothing can be mutual TLS: `PERMISSIVE` and
//! `DISABLE` ports serve plaintext and `STRICT` ones refuse every connection (logged once at
//! start). An application that cannot be reached answers 503 with Envoy's wording
//! (`upstream connect error or disconnect/reset before headers`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use mesh_core::authn::MtlsMode;
use mesh_core::workload::Workload;
use mesh_tower::inbound::{ConnectionInfo, InboundLayer};
use mesh_tower::{BoxError, SharedSnapshot};
use tower::{Layer, Service};

use crate::identity::{self, Accepted, IdentityAcceptor, InboundStream};

/// The body the application's answers (and this module's own 503s) have.
pub type AppBody = BoxBody<Bytes, BoxError>;

/// Forwards requests to the application at one address.
#[derive(Debug, Clone)]
pub struct AppService {
    app: SocketAddr,
    client: Client<HttpConnector, Incoming>,
}

impl AppService {
    /// A service forwarding to `app`.
    pub fn new(app: SocketAddr) -> AppService {
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
        AppService { app, client }
    }
}

impl Service<Request<Incoming>> for AppService {
    type Response = Response<AppBody>;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<AppBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let client = self.client.clone();
        let app = self.app;
        Box::pin(async move {
            let authority = request.uri().authority().map(|a| a.as_str().to_string());
            if !request.headers().contains_key(http::header::HOST)
                && let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a).ok())
            {
                request.headers_mut().insert(http::header::HOST, v);
            }
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            *request.uri_mut() = format!("http://{app}{path}").parse()?;
            *request.version_mut() = http::Version::HTTP_11;
            match client.request(request).await {
                Ok(response) => Ok(response.map(|b| b.map_err(BoxError::from).boxed())),
                Err(error) => {
                    tracing::debug!(target: "meshwork::inbound", %app, %error, "application not reachable");
                    let body = "upstream connect error or disconnect/reset before headers";
                    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed());
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    Ok(response)
                }
            }
        })
    }
}

/// Accept one connection under `mode` (with `acceptor`, or plaintext without one), its
/// destination port set to the application's (`port`).
async fn accept(
    tcp: tokio::net::TcpStream,
    acceptor: Option<&IdentityAcceptor>,
    mode: MtlsMode,
    port: u16,
) -> Option<Accepted> {
    let mut accepted = match acceptor {
        Some(acceptor) => match acceptor.accept(tcp, mode).await {
            Ok(a) => a,
            Err(error) => {
                tracing::debug!(target: "meshwork::inbound", %mode, %error, "inbound connection refused");
                return None;
            }
        },
        None if mode == MtlsMode::Strict => return None,
        None => {
            let info = ConnectionInfo::plaintext(tcp.peer_addr().ok(), tcp.local_addr().ok());
            Accepted { stream: InboundStream::Plain(tcp), info, mode, alpn: None, http: None }
        }
    };
    // Policies name the application's port (see the module docs).
    if let Some(destination) = accepted.info.destination.as_mut() {
        destination.set_port(port);
    }
    Some(accepted)
}

/// Serve the TCP inbound listener `listener` for `workload` in front of `app` until `stopped`
/// turns true: each connection is authorized once, then spliced to `app` or closed.
pub async fn serve_inbound_tcp(
    listener: tokio::net::TcpListener,
    app: SocketAddr,
    config: SharedSnapshot,
    workload: Workload,
    layer: InboundLayer,
    acceptor: Option<Arc<IdentityAcceptor>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let port = app.port();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::warn!(target: "meshwork::inbound", %error, "accepting an inbound connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { drop(stopped.wait_for(|s| *s).await) } => return,
        };
        let (acceptor, config, workload, layer) = (acceptor.clone(), config.clone(), workload.clone(), layer.clone());
        tokio::spawn(async move {
            let security = config.load().security_shared().clone();
            let mode = security.mtls(&workload, port).mode;
            let Some(accepted) = accept(tcp, acceptor.as_deref(), mode, port).await else { return };
            let input = mesh_tower::inbound::inbound_connection(&accepted.info, port);
            let decision = security.inbound(&workload, &input);
            if decision.verdict != mesh_core::inbound::Verdict::Allow {
                tracing::debug!(target: "meshwork::inbound", verdict = decision.verdict.as_str(), policy = ?decision.policy, "TCP connection closed");
                return;
            }
            let Ok(mut upstream) = tokio::net::TcpStream::connect(app).await else {
                tracing::debug!(target: "meshwork::inbound", %app, "application not reachable");
                return;
            };
            let metrics = layer.tcp_connection(accepted.info.peer.as_ref());
            let mut downstream = accepted.stream;
            // Bytes are counted whichever way the connection ends (a reset included); idle
            // connections close after Istio's default `idleTimeout` (1 h).
            let (received, sent) = crate::l4::pump(&mut downstream, &mut upstream, crate::l4::IDLE_TIMEOUT).await;
            metrics.received(received);
            metrics.sent(sent);
            metrics.closed();
        });
    }
}

/// Serve the inbound listener `listener` for `workload` in front of `app` until `stopped` turns
/// true. `acceptor`: the workload certificate's acceptor (`None`: plaintext only).
pub async fn serve_inbound(
    listener: tokio::net::TcpListener,
    app: SocketAddr,
    config: SharedSnapshot,
    workload: Workload,
    layer: InboundLayer,
    acceptor: Option<Arc<IdentityAcceptor>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let port = app.port();
    let mode = {
        let (config, workload) = (config.clone(), workload.clone());
        move || config.load().security().mtls(&workload, port).mode
    };
    if acceptor.is_none() && mode() == MtlsMode::Strict {
        tracing::warn!(target: "meshwork::inbound", port, "STRICT mTLS without a workload certificate (--cert-dir): every connection is refused");
    }
    let service = layer.layer(AppService::new(app));
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    tracing::warn!(target: "meshwork::inbound", %error, "accepting an inbound connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { drop(stopped.wait_for(|s| *s).await) } => return,
        };
        let (acceptor, service, mode) = (acceptor.clone(), service.clone(), mode());
        tokio::spawn(async move {
            let Some(accepted) = accept(tcp, acceptor.as_deref(), mode, port).await else { return };
            if let Err(error) = identity::serve::serve_connection(accepted, service).await {
                tracing::debug!(target: "meshwork::inbound", %error, "inbound connection");
            }
        });
    }
}
