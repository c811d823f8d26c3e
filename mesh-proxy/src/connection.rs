//! One HTTP connection of `mesh proxy`, served through the mesh stack: the hyper-util
//! connection, the per-request handling in front of the stack (hop-by-hop headers, upgrades,
//! Gateway admission, a panic answered 500) and the upgraded tunnel. What it does is described in
//! [`crate::server`]'s module docs; the listeners of [`crate::server`] and the TLS passthrough
//! ports of [`crate::l4`] hand their connections to it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mesh_core::decision::terminates_tls;
use mesh_core::service::GatewayServer;
use mesh_tower::{DownstreamAddresses, LocalReply, Mesh, MeshBody, MeshService};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::accept::{Accepted, GatewayPort, Prefixed, accept_tls};
use crate::upstream::UpstreamClient;

/// On a Gateway listener, a client request head must arrive within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted (HTTP/1.1 read buffer), as Envoy's default 60 KiB.
pub const MAX_HEADER_BYTES: usize = 60 * 1024;

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
    let replayed = Prefixed::new(hello, client);
    if let Some((tls, accepted)) = accept_tls(replayed, local, &gateway, servers, peer).await {
        serve_connection(tls, stack, accepted, connection_builder(Some(HEADER_READ_TIMEOUT)), stop).await;
    }
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
    // Call the connection's stack without cloning it (see "One stack per connection" in
    // `server`'s module docs): the lock is never contended, and a poisoned one is taken as is.
    use tower::Service;
    let mut stack = stack.lock().unwrap_or_else(|p| p.into_inner());
    // Every layer forwards `poll_ready` to the client, which is always ready: the answer is
    // `Ready` and registers no waker (tested below for the stack `upstream()` builds). A stack
    // that is not ready is never polled again with this waker: it is cloned and the clone
    // awaited with the task's own, as `oneshot` does.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // Header values with `%DOWNSTREAM_...%` variables read the connection's addresses: current
    // during the call (nothing per request for configurations that do not read them), or, for a
    // call made later, in the request's extensions.
    let addresses = DownstreamAddresses { remote: accepted.peer, local: accepted.local };
    let ready = stack.poll_ready(&mut cx);
    debug_assert!(ready.is_ready(), "invariant: the proxy's mesh stack is always ready (see `server`'s module docs)");
    match ready {
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
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub(crate) fn connection_builder(
    header_read_timeout: Option<Duration>,
) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
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

pub(crate) async fn serve_connection<IO>(
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

    /// The invariant `handle` relies on (see "One stack per connection" in `server`'s module
    /// docs): the proxy's stack answers `poll_ready` with `Ready` at once, so a no-op waker is
    /// never left registered. A layer that starts to answer `Pending` fails this test.
    #[tokio::test]
    async fn the_proxy_stack_is_always_ready() {
        use tower::Service;
        let mut stack = upstream(&Mesh::builder().build());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..3 {
            assert!(matches!(stack.poll_ready(&mut cx), std::task::Poll::Ready(Ok(()))));
        }
    }
}
