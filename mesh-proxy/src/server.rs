//! The proxy listener: every request it accepts goes through the meshwork stack.
//!
//! Connections are served with hyper-util's auto builder (HTTP/1.1 with keep-alive and upgrades,
//! and HTTP/2 with prior knowledge). Requests are routed by their `Host` / `:authority` (the
//! mesh's VirtualServices, or a Gateway's), and forwarded with a pooled hyper-util client to the
//! endpoint meshwork picks. hyper answers malformed requests with 400 itself; header reads time
//! out after [`HEADER_READ_TIMEOUT`] and the request head is capped at [`MAX_HEADER_BYTES`].
//! When `stop` turns true the listener stops accepting, every connection finishes its in-flight
//! requests (HTTP/2 gets GOAWAY), then `serve` returns.

use std::convert::Infallible;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mesh_tower::{LocalReply, Mesh, MeshBody, MeshService, ReplayBody};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// A client request head must arrive within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted (HTTP/1.1 read buffer), as Envoy's default 60 KiB.
pub const MAX_HEADER_BYTES: usize = 60 * 1024;

/// The stack the proxy forwards through.
pub type Upstream = MeshService<Client<HttpConnector, ReplayBody<Incoming>>>;

/// The mesh stack around a pooled hyper-util client (HTTP/1.1 keep-alive; HTTP/2 requests stay
/// HTTP/2 when the client sent HTTP/2).
pub fn upstream(mesh: &Mesh) -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
    tower::Layer::layer(&mesh.layer(), client)
}

type ProxyResponse = http::Response<mesh_tower::telemetry::TelemetryBody<MeshBody<Incoming>>>;

async fn handle(stack: Upstream, req: http::Request<Incoming>) -> Result<ProxyResponse, Infallible> {
    if req.uri().authority().is_none() && !req.headers().contains_key(http::header::HOST) {
        // Nothing to route by: HTTP/1.1 requires Host (RFC 9112 §3.2), as Envoy answers it.
        let reply: http::Response<MeshBody<Incoming>> =
            LocalReply::Direct { status: 400, body: Some(bytes::Bytes::from_static(b"missing host header")) }
                .into_response();
        return Ok(reply.map(mesh_tower::telemetry::TelemetryBody::unrecorded));
    }
    match stack.oneshot(req).await {
        Ok(response) => Ok(response),
        Err(e) => {
            // The stack answers upstream failures itself; an error here is a client bug.
            tracing::warn!(target: "meshwork::proxy", error = %e, "request failed");
            let reply: http::Response<MeshBody<Incoming>> =
                LocalReply::UpstreamFailure { outcome: mesh_core::retry::TryOutcome::Reset }.into_response();
            Ok(reply.map(mesh_tower::telemetry::TelemetryBody::unrecorded))
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serve `listener` until `stop` turns true, then drain (see the module docs).
pub async fn serve(listener: TcpListener, stack: Upstream, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!(target: "meshwork::proxy", error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let stack = stack.clone();
                let builder = builder.clone();
                let mut stop = stop.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(stack.clone(), req));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        result = conn.as_mut() => {
                            if let Err(e) = result {
                                tracing::debug!(target: "meshwork::proxy", %peer, error = %e, "connection ended with an error");
                            }
                        }
                        _ = stopped(&mut stop) => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
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
