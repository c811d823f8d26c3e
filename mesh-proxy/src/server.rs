//! The proxy listener: every request it accepts goes through the meshwork stack.
//!
//! Connections are served with hyper-util's auto builder (HTTP/1.1 with keep-alive and upgrades,
//! and HTTP/2 with prior knowledge, or chosen by ALPN over TLS). Requests are routed by their
//! `Host` / `:authority` (the mesh's VirtualServices, or a Gateway's), and forwarded with a pooled
//! client ([`UpstreamClient`]) to the endpoint meshwork picks. hyper answers malformed requests
//! with 400 itself; the request head is capped at [`MAX_HEADER_BYTES`], and on Gateway listeners
//! (the edge) it must arrive within [`HEADER_READ_TIMEOUT`]. The outbound listener, which serves
//! the local application as a sidecar does, sets no header timeout, as Istio leaves Envoy's
//! `request_headers_timeout` unset on sidecars (istio/istio#44329 proposed it for gateways only;
//! Envoy's edge best practices ask for it where downstreams are untrusted): the timer hyper arms
//! for every request cost ~1,400 instructions per request there (benches/RESULTS.md). When `stop` turns true the listener stops accepting, every
//! connection finishes its in-flight requests (HTTP/2 gets GOAWAY), then `serve` returns.
//!
//! Hop-by-hop headers are removed from requests and responses and upgrades are decided in one
//! place, [`mesh_core::hop`]: a WebSocket upgrade is passed through (when the endpoint answers
//! `101 Switching Protocols`, the two upgraded connections are joined and bytes copied both
//! ways), `Upgrade: h2c` is ignored (served as HTTP/1.1), any other upgrade is refused with 403.
//!
//! A malformed HTTP/2 request (a pseudo-header missing or repeated, a connection-specific
//! header, `te` other than `trailers`) resets its own stream; the connection's other requests go
//! on (RFC 9113 §8.1.1). One exception comes from the h2 crate: a field value with a byte no
//! header value may hold (CR, LF, NUL) fails its HPACK decoding and closes the connection
//! (GOAWAY), where RFC 9113 §8.2.1 asks for a stream error — such a request is never forwarded
//! either way (Envoy, too, closed the connection by default until
//! `stream_error_on_invalid_http_message`; envoyproxy/envoy#20575).
//!
//! # Gateway listeners
//!
//! [`GatewayPort`] makes a listener serve one port of an Istio Gateway, as Envoy's listener for
//! that port in an ingress gateway does:
//!
//! - the servers on that port are read from the current configuration for every new connection
//!   (a reload that changes hosts or certificates applies to new connections);
//! - `HTTPS` servers terminate TLS (`SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL`), chosen by the SNI the
//!   client sends among the servers' `hosts`; ALPN offers `h2` and `http/1.1`; a client
//!   certificate must name one of the server's `subjectAltNames` when it lists any;
//! - each request carries the connection's [`Listener`] (port and admitting servers) to the route
//!   layer, whose decision ([`mesh_core::decision`], the same `mesh explain` prints) answers a
//!   host none of the servers lists with 404 (`NR`), as Envoy answers a request with no virtual
//!   host, and plain HTTP to a server with `tls.httpsRedirect: true` with 301 to the `https` URL
//!   (Istio's `ServerTLSSettings.httpsRedirect`); `port` matches see the listener's port;
//! - `x-forwarded-proto` is set to the scheme the client used and the client's address is
//!   appended to `x-forwarded-for` (an edge proxy's duty, as Envoy with `use_remote_address`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mesh_core::decision::{Listener, select_tls_server, terminates_tls};
use mesh_core::service::{GatewayServer, ServerTls};
use mesh_tower::{DownstreamAddresses, LocalReply, Mesh, MeshBody, MeshService};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::tls::server_config;
use crate::upstream::ConnectionAffinity;
pub use crate::upstream::UpstreamClient;
use mesh_core::request::normalize_host;

/// On a Gateway listener, a client request head must arrive within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted (HTTP/1.1 read buffer), as Envoy's default 60 KiB.
pub const MAX_HEADER_BYTES: usize = 60 * 1024;
/// A TLS handshake must finish within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The stack the proxy forwards through.
pub type Upstream = MeshService<UpstreamClient>;

/// The mesh stack around the proxy's pooled client.
pub fn upstream(mesh: &Mesh) -> Upstream {
    tower::Layer::layer(&mesh.layer(), UpstreamClient::new())
}

type ProxyBody = mesh_tower::telemetry::TelemetryBody<MeshBody<Incoming>>;
type ProxyResponse = http::Response<ProxyBody>;

fn local(reply: LocalReply) -> ProxyResponse {
    let response: http::Response<MeshBody<Incoming>> = reply.into_response();
    response.map(mesh_tower::telemetry::TelemetryBody::unrecorded)
}

/// One port of a Gateway, served by a listener (see the module docs).
#[derive(Debug, Clone)]
pub struct GatewayPort {
    mesh: Mesh,
    namespace: Arc<str>,
    name: Arc<str>,
    port: u16,
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

/// Serve, as port `gateway` of a Gateway whose other servers pass TLS through, a connection
/// whose ClientHello (`hello`, already read) names none of the passthrough hosts: its HTTPS
/// servers terminate it and the mesh stack serves the requests, as on an HTTPS-only port
/// (Istio gives each server of a shared port its own SNI filter chain).
pub(crate) async fn serve_terminated_https(
    client: TcpStream,
    hello: Vec<u8>,
    peer: SocketAddr,
    gateway: GatewayPort,
    stack: Upstream,
    stop: watch::Receiver<bool>,
) {
    let local = client.local_addr().ok();
    let servers: Vec<GatewayServer> =
        gateway.servers().into_iter().filter(|s| &*s.protocol == "HTTPS" && terminates_tls(s)).collect();
    if servers.is_empty() {
        return;
    }
    let replayed = crate::l4::Prefixed::new(hello, client);
    if let Some((tls, accepted)) = accept_tls(replayed, local, &gateway, servers, peer).await {
        serve_connection(tls, stack, accepted, connection_builder(Some(HEADER_READ_TIMEOUT)), stop).await;
    }
}

/// What a connection knows about how it was accepted.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    peer: SocketAddr,
    /// The address the client connected to.
    local: Option<SocketAddr>,
    https: bool,
    /// This connection's own upstream HTTP/1.1 connections.
    affinity: ConnectionAffinity,
    /// Gateway listeners: the port and the servers whose hosts this connection may ask for
    /// (the route layer decides admission and `httpsRedirect` from it: [`mesh_core::decision`]).
    listener: Option<Listener>,
}

fn request_host<B>(req: &http::Request<B>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()))
}

/// Gateway duties before routing: the scheme of a TLS connection's requests, the listener (for
/// the decision: admission, `httpsRedirect`, `port` matches), forwarded headers.
fn admit<B>(accepted: &Accepted, req: &mut http::Request<B>) {
    let Some(listener) = &accepted.listener else { return };
    if accepted.https && req.uri().scheme().is_none() {
        let authority = request_host(req).and_then(|a| http::uri::Authority::try_from(a).ok());
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTPS);
        if parts.authority.is_none() {
            parts.authority = authority;
        }
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(listener.clone());
    let headers = req.headers_mut();
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static(if accepted.https { "https" } else { "http" }));
    let peer = accepted.peer.ip().to_string();
    let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {peer}"),
        None => peer,
    };
    if let Ok(v) = http::HeaderValue::from_str(&forwarded) {
        headers.insert("x-forwarded-for", v);
    }
}

type StackFuture = <Upstream as tower::Service<http::Request<Incoming>>>::Future;
type Upgrade = Option<hyper::upgrade::OnUpgrade>;

pin_project_lite::pin_project! {
    /// One request's way through the proxy: answered at once, or the stack's call (plus the
    /// client's upgrade, joined to the upstream's when it answers 101). Written by hand rather
    /// than as an `async fn`, whose state machine copied the stack's large future several times
    /// per request.
    #[project = HandleProj]
    enum Handle {
        Ready { response: Option<ProxyResponse> },
        Now { #[pin] future: StackFuture, upgrade: Upgrade },
        Later { #[pin] future: tower::util::Oneshot<Upstream, http::Request<Incoming>>, upgrade: Upgrade },
    }
}

impl std::future::Future for Handle {
    type Output = Result<ProxyResponse, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let (result, upgrade) = match self.project() {
            HandleProj::Ready { response } => {
                let response = response.take().unwrap_or_else(|| local(LocalReply::NoRoute));
                return std::task::Poll::Ready(Ok(response));
            }
            HandleProj::Now { future, upgrade } => (std::task::ready!(poll_guarded(future, cx)), upgrade),
            HandleProj::Later { future, upgrade } => (std::task::ready!(poll_guarded(future, cx)), upgrade),
        };
        let Some(result) = result else {
            return std::task::Poll::Ready(Ok(panicked()));
        };
        let response = match result {
            Ok(mut response) => {
                let switching = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                if let Some(client_upgrade) = upgrade.take()
                    && switching
                {
                    let upstream_upgrade = hyper::upgrade::on(&mut response);
                    tokio::spawn(tunnel(client_upgrade, upstream_upgrade));
                }
                mesh_core::hop::strip_hop_by_hop(response.headers_mut(), switching);
                response
            }
            Err(e) => {
                // The stack answers upstream failures itself; an error here is a client bug.
                tracing::warn!(target: "meshwork::proxy", error = %e, "request failed");
                local(LocalReply::UpstreamFailure { outcome: mesh_core::retry::TryOutcome::Reset })
            }
        };
        std::task::Poll::Ready(Ok(response))
    }
}

fn handle(stack: &Mutex<Upstream>, accepted: &Accepted, mut req: http::Request<Incoming>) -> Handle {
    if request_host(&req).is_none() {
        // Nothing to route by: HTTP/1.1 requires Host (RFC 9112 §3.2), as Envoy answers it.
        let reply = LocalReply::Direct { status: 400, body: Some(bytes::Bytes::from_static(b"missing host header")) };
        return Handle::Ready { response: Some(local(reply)) };
    }
    // Hop-by-hop headers and upgrades: one decision (mesh_core::hop), before routing.
    let websocket = match mesh_core::hop::upgrade(req.headers()) {
        mesh_core::hop::Upgrade::Refuse => {
            let reply = LocalReply::Direct { status: 403, body: Some(bytes::Bytes::from_static(b"upgrade_failed")) };
            return Handle::Ready { response: Some(local(reply)) };
        }
        mesh_core::hop::Upgrade::Websocket => true,
        mesh_core::hop::Upgrade::None | mesh_core::hop::Upgrade::IgnoreH2c => false,
    };
    mesh_core::hop::strip_hop_by_hop(req.headers_mut(), websocket);
    admit(accepted, &mut req);
    if req.version() <= http::Version::HTTP_11 {
        req.extensions_mut().insert(accepted.affinity.clone());
    }
    let upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    // Call the connection's stack without cloning it: every meshwork layer is ready when the
    // client below is, and [`UpstreamClient`] always is, so `poll_ready` answers at once (a stack
    // that is not ready is cloned and awaited, as `oneshot` would).
    use tower::Service;
    let mut stack = stack.lock().unwrap_or_else(|p| p.into_inner());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // Header values with `%DOWNSTREAM_...%` variables read the connection's addresses: current
    // during the call (nothing per request for configurations that do not read them), or, for a
    // call made later, in the request's extensions.
    let addresses = DownstreamAddresses { remote: accepted.peer, local: accepted.local };
    match stack.poll_ready(&mut cx) {
        std::task::Poll::Ready(Ok(())) => {
            let current = addresses.enter();
            let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stack.call(req)));
            drop(current);
            match called {
                Ok(future) => Handle::Now { future, upgrade },
                Err(_) => Handle::Ready { response: Some(panicked()) },
            }
        }
        _ => {
            req.extensions_mut().insert(addresses);
            Handle::Later { future: stack.clone().oneshot(req), upgrade }
        }
    }
}

/// Poll a request's future, catching a panic below the stack: `None` if it panicked (the
/// request is answered 500, the connection and its other requests go on; see the module docs of
/// `mesh_tower::request_id` for why not tower-http's `CatchPanic`).
fn poll_guarded<F: std::future::Future>(
    future: std::pin::Pin<&mut F>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<F::Output>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(cx))) {
        Ok(std::task::Poll::Ready(out)) => std::task::Poll::Ready(Some(out)),
        Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            tracing::error!(target: "meshwork::proxy", panic = message, "a request panicked below the proxy: answered 500");
            std::task::Poll::Ready(None)
        }
    }
}

/// The answer to a request whose handling panicked.
fn panicked() -> ProxyResponse {
    local(LocalReply::Direct { status: 500, body: Some(bytes::Bytes::from_static(b"internal error")) })
}

/// Join an upgraded client connection with the upgraded upstream one.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(target: "meshwork::proxy", error = %e, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => tracing::debug!(target: "meshwork::proxy", up, down, "upgraded connection closed"),
        Err(e) => tracing::debug!(target: "meshwork::proxy", error = %e, "upgraded connection ended with an error"),
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn connection_builder(header_read_timeout: Option<Duration>) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    builder
}

async fn serve_connection<IO>(
    io: IO,
    stack: Upstream,
    accepted: Accepted,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = accepted.peer;
    let accepted = Arc::new(accepted);
    let stack = Arc::new(Mutex::new(stack));
    let affinity = accepted.affinity.clone();
    let service = hyper::service::service_fn(move |req| handle(&stack, &accepted, req));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    // The connection and the upstream connections its requests open run in this one task; the
    // stop signal starts a graceful shutdown (answer what is in flight, then close).
    let stop = async move { stopped(&mut stop).await };
    let driving = affinity.driving(conn, stop, |conn| conn.graceful_shutdown());
    if let Err(e) = driving.await {
        tracing::debug!(target: "meshwork::proxy", %peer, error = %e, "connection ended with an error");
    }
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

/// Serve `listener` until `stop` turns true, then drain (see the module docs).
pub async fn serve(listener: TcpListener, stack: Upstream, stop: watch::Receiver<bool>) -> std::io::Result<()> {
    serve_listener(listener, stack, None, stop).await
}

/// Serve `listener` as one port of a Gateway (see the module docs) until `stop` turns true.
pub async fn serve_gateway(
    listener: TcpListener,
    stack: Upstream,
    gateway: GatewayPort,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_listener(listener, stack, Some(gateway), stop).await
}

async fn serve_listener(
    listener: TcpListener,
    stack: Upstream,
    gateway: Option<GatewayPort>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    let builder = connection_builder(gateway.is_some().then_some(HEADER_READ_TIMEOUT));
    loop {
        tokio::select! {
            accepted = next_connection(&listener) => {
                let Some((stream, peer)) = accepted else { continue };
                let local = stream.local_addr().ok();
                let stack = stack.clone();
                let builder = builder.clone();
                let stop = stop.clone();
                let gateway = gateway.clone();
                connections.spawn(async move {
                    let Some(gateway) = gateway else {
                        let accepted = Accepted {
                            peer,
                            local,
                            https: false,
                            affinity: ConnectionAffinity::default(),
                            listener: None,
                        };
                        return serve_connection(stream, stack, accepted, builder, stop).await;
                    };
                    let servers = gateway.servers();
                    if servers.iter().any(terminates_tls) {
                        if let Some((tls, accepted)) = accept_tls(stream, local, &gateway, servers, peer).await {
                            serve_connection(tls, stack, accepted, builder, stop).await;
                        }
                    } else {
                        let accepted = Accepted {
                            peer,
                            local,
                            https: false,
                            affinity: ConnectionAffinity::default(),
                            listener: Some(Listener::plain(gateway.port, servers)),
                        };
                        serve_connection(stream, stack, accepted, builder, stop).await;
                    }
                });
            }
            _ = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!(target: "meshwork::proxy", connections = connections.len(), "draining");
    while connections.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_request_future_is_answered_500() {
        let mut future = std::pin::pin!(async {
            if std::hint::black_box(true) {
                panic!("a bug below the stack");
            }
            7
        });
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(matches!(poll_guarded(future.as_mut(), &mut cx), std::task::Poll::Ready(None)));
        let mut fine = std::pin::pin!(async { 7 });
        assert!(matches!(poll_guarded(fine.as_mut(), &mut cx), std::task::Poll::Ready(Some(7))));
        assert_eq!(panicked().status(), 500);
    }
}
