//! A Gateway's plain TCP and TLS passthrough servers: connections forwarded by VirtualService
//! `tcp[]` and `tls[]` rules (which rule serves a port is decided in [`mesh_core::l4`]).
//!
//! Per connection: a passthrough server reads the ClientHello (without terminating TLS) for its
//! server name; a `TLS` server in `SIMPLE` or `MUTUAL` mode terminates TLS first (its certificate
//! chosen by SNI, client certificates checked, as for HTTPS servers) and forwards what it
//! decrypts; the route's destination is picked by weight; the destination's cluster picks an
//! endpoint (its load balancer, skipping endpoints outlier detection ejected); the connection is
//! admitted against `connectionPool.tcp.maxConnections` (beyond it, closed: Envoy's `UO`); the
//! endpoint is dialled within `connectionPool.tcp.connectTimeout` (Istio's default 10 s; a
//! failure is closed with `UF` and counted by outlier detection as a local-origin failure), with
//! `tcpKeepalive` when set; then
//! bytes flow both ways — the ClientHello first — until both sides have closed, or until nothing
//! has moved for `connectionPool.tcp.idleTimeout` (Istio's default 1 h). Istio's TCP metrics
//! (`istio_tcp_connections_opened_total`, `..._closed_total`, `istio_tcp_sent_bytes_total`,
//! `istio_tcp_received_bytes_total`) are reported with the HTTP metrics' labels.
//!
//! A connection no rule routes (no `tcp[]` rule holds for the port; no `tls[]` entry lists the
//! server name, or the client sent none) is closed, as Envoy closes a connection that matches no
//! filter chain — except that a passthrough port shared with HTTPS servers hands a ClientHello for
//! their names to them (terminated, then served through the mesh stack like any HTTPS port).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mesh_core::l4::{L4Route, L4Server};
use mesh_core::outlier::Observation;
use mesh_core::pool::{Admission, PoolLimits};
use mesh_core::{Binding, Snapshot};
use mesh_tower::balance::Upstream;
use mesh_tower::cluster::Cluster;
use mesh_tower::{Mesh, ResponseFlags};

use crate::accept::{GatewayPort, accept_tls, next_connection};
use crate::connection::{self, serve_terminated_https};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Istio's default `connectionPool.tcp.idleTimeout`.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long a passthrough server waits for the ClientHello (Envoy's listener filter timeout).
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
/// The most ClientHello bytes read before giving up.
const HELLO_LIMIT: usize = 64 * 1024;
/// How long connections may go on once the listener stops (Istio's default drain duration).
const DRAIN: Duration = Duration::from_secs(5);

/// Serve `listener` as port `port` of Gateway `gateway`, a plain TCP or TLS passthrough server,
/// until `stop` turns true; connections still open then get 5 s (Istio's default drain) to finish.
/// On a passthrough port, a ClientHello for none of the passthrough names goes to the port's HTTPS
/// servers, which `stack` serves (Istio gives each server of a shared port its own filter chain).
pub async fn serve_l4(
    listener: TcpListener,
    mesh: Mesh,
    gateway: Binding,
    port: u16,
    stack: Option<connection::Upstream>,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    serve_l4_with(listener, mesh, gateway, port, stack, None, stop).await
}

/// [`serve_l4`], originating Istio's mutual TLS towards endpoints that get it (a DestinationRule
/// `ISTIO_MUTUAL`, or auto mTLS: mesh-core's [`mesh_core::upstream_tls`] decision, as for HTTP)
/// with `mtls`'s workload certificate and the `istio` ALPN of a TCP cluster.
pub async fn serve_l4_with(
    listener: TcpListener,
    mesh: Mesh,
    gateway: Binding,
    port: u16,
    stack: Option<connection::Upstream>,
    mtls: Option<crate::upstream::OutboundMtls>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mtls = mtls.map(|m| Arc::new(crate::upstream::Mtls::new(m)));
    let mut connections = JoinSet::new();
    // TLS-terminating servers' certificates (built once per setting, as the HTTPS servers' are).
    let tls_port = match &gateway {
        Binding::Gateway { namespace, name } => Some(GatewayPort::new(mesh.clone(), namespace, name, port)),
        Binding::Mesh => None,
    };
    // A passthrough port may also have HTTPS servers: connections for their names are served
    // through the mesh stack (see [`serve_terminated_https`]).
    let https = match (&tls_port, stack) {
        (Some(p), Some(stack)) => Some(Https { port: p.clone(), stack, stop: stop.clone() }),
        _ => None,
    };
    loop {
        tokio::select! {
            accepted = next_connection(&listener) => {
                let Some((stream, peer)) = accepted else { continue };
                let tls_port = tls_port.clone();
                let https = https.clone();
                let mtls = mtls.clone();
                connections.spawn(accept(stream, peer, mesh.clone(), gateway.clone(), port, tls_port, (https, mtls)));
            }
            changed = stop.wait_for(|s| *s) => {
                let _ = changed;
                break;
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!(target: "meshwork::proxy", port, connections = connections.len(), "draining TCP connections");
    let drained = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        connections.shutdown().await;
    }
    Ok(())
}

/// Accept one connection and find its route: a passthrough port reads the ClientHello for its
/// server name (a name no `tls[]` rule lists goes to the port's HTTPS servers, if any); a
/// `TLS` server in `SIMPLE` or `MUTUAL` mode terminates TLS first (the certificate by SNI, as for
/// HTTPS); then the connection is forwarded.
async fn accept(
    mut client: TcpStream,
    peer: SocketAddr,
    mesh: Mesh,
    gateway: Binding,
    port: u16,
    tls_port: Option<GatewayPort>,
    (https, mtls): (Option<Https>, Option<Arc<crate::upstream::Mtls>>),
) {
    let snapshot = mesh.snapshot();
    let Some(server) = snapshot.l4_server(&gateway, port) else {
        return;
    };
    match server {
        L4Server::Sni(_) => {
            let Ok(Some((sni, hello))) = tokio::time::timeout(HELLO_TIMEOUT, read_client_hello(&mut client)).await
            else {
                tracing::debug!(target: "meshwork::proxy", %peer, port, "no TLS ClientHello: connection closed");
                return;
            };
            match (server.route(sni.as_deref()), https) {
                (Some(route), _) => {
                    forward(client, hello, route.clone(), peer, &mesh, &snapshot, mtls.as_deref()).await
                }
                // Not one of the passthrough names: the port's HTTPS servers, if any, terminate it.
                (None, Some(h)) => serve_terminated_https(client, hello, peer, h.port, h.stack, h.stop).await,
                (None, None) => {
                    tracing::debug!(target: "meshwork::proxy", %peer, port, sni = sni.as_deref().unwrap_or(""), "no route for the connection: closed");
                }
            }
        }
        L4Server::Tcp(None) => {
            tracing::debug!(target: "meshwork::proxy", %peer, port, "no tcp[] rule for this port: connection closed");
        }
        L4Server::Tcp(Some(route)) => {
            let servers = tls_port.as_ref().map(GatewayPort::servers).unwrap_or_default();
            // The same predicate that made this a TCP port: a TLS server there terminates.
            let terminates = servers
                .iter()
                .any(|s| s.tls.as_ref().is_some_and(|t| mesh_core::l4::is_tcp_server(&s.protocol, t.mode.as_deref())));
            match tls_port {
                Some(tls_port) if terminates => {
                    let local = client.local_addr().ok();
                    if let Some((tls, _)) = accept_tls(client, local, &tls_port, servers, peer).await {
                        forward(tls, Vec::new(), route.clone(), peer, &mesh, &snapshot, mtls.as_deref()).await;
                    }
                }
                _ => forward(client, Vec::new(), route.clone(), peer, &mesh, &snapshot, mtls.as_deref()).await,
            }
        }
    }
}

/// Forward a routed connection (see the module docs); `hello` is what was read from it already
/// (a ClientHello, sent on first).
async fn forward<C>(
    mut client: C,
    hello: Vec<u8>,
    route: Arc<L4Route>,
    peer: SocketAddr,
    mesh: &Mesh,
    snapshot: &Snapshot,
    mtls: Option<&crate::upstream::Mtls>,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Some(destination) = route.destination(snapshot, mesh_tower::random_u64()) else {
        return;
    };
    let cluster = mesh.clusters().get(snapshot, &destination);
    let service = cluster.destination().host.clone();
    let telemetry = mesh.telemetry();
    let fail = |upstream: Option<&Upstream>, flags: ResponseFlags| {
        telemetry.tcp_connection(upstream, &service, flags).closed()
    };

    // Connection-pool admission: active connections up to `tcp.maxConnections`, no queue.
    // (`http.http2MaxRequests` is an HTTP limit: not counted here.)
    let limits = PoolLimits { max_pending: 0, max_requests: u32::MAX, ..*cluster.limits() };
    if cluster.pool().admit(&limits, false) != Admission::Start {
        tracing::debug!(target: "meshwork::proxy", %peer, cluster = %service, "maxConnections reached: connection closed (UO)");
        return fail(None, ResponseFlags::OVERFLOW);
    }
    let _admitted = Admitted(cluster.clone());
    let Some(i) = cluster.pick(None, &[]) else {
        tracing::debug!(target: "meshwork::proxy", %peer, cluster = %service, "no healthy endpoint (UH)");
        return fail(None, ResponseFlags::NO_HEALTHY_UPSTREAM);
    };
    let upstream = Upstream {
        cluster: Some(cluster.clone()),
        address: cluster.endpoints().get(i).map(|e| e.address.clone()),
        meta: cluster.meta(i),
    };
    let Some(address) = upstream.address.clone() else {
        return;
    };
    let pool = cluster.policy().connection_pool.as_ref();
    let idle = pool.and_then(|p| p.tcp_idle_timeout).filter(|d| !d.is_zero()).unwrap_or(IDLE_TIMEOUT);
    cluster.started(i);
    let mut active = Active { cluster: cluster.clone(), endpoint: i, outcome: Observation::LocalOriginSuccess };
    // Within `connectTimeout` (Istio's default 10 s), with `tcpKeepalive`.
    let connected = crate::upstream::connect_tcp(&address, cluster.connect()).await;
    let tcp = match connected {
        Ok(s) => s,
        Err(error) => {
            active.outcome = Observation::LocalOriginFailure;
            tracing::debug!(target: "meshwork::proxy", %peer, endpoint = %address, %error, "upstream connect failed (UF)");
            return fail(Some(&upstream), ResponseFlags::CONNECT_FAILURE);
        }
    };
    // Istio's mutual TLS when the endpoint gets it (as for HTTP: mesh-core's decision).
    let target = mtls.and_then(|m| m.target_for(&cluster, snapshot, &address).map(|t| (m, t)));
    let mut server_side: Box<dyn Stream> = match target {
        None => Box::new(tcp),
        Some((m, target)) => match m.connect_tcp(tcp, &target).await {
            Ok(tls) => Box::new(tls),
            Err(error) => {
                active.outcome = Observation::LocalOriginFailure;
                tracing::debug!(target: "meshwork::proxy", %peer, endpoint = %address, %error, "upstream mutual TLS failed (UF)");
                return fail(Some(&upstream), ResponseFlags::CONNECT_FAILURE);
            }
        },
    };
    let counters = telemetry.tcp_connection(Some(&upstream), &service, ResponseFlags::NONE);
    let mut received = hello.len() as u64;
    let mut sent = 0u64;
    if server_side.write_all(&hello).await.is_ok() {
        let (r, s) = pump(&mut client, &mut server_side, idle).await;
        received += r;
        sent = s;
    }
    drop(active);
    counters.received(received);
    counters.sent(sent);
    counters.closed();
}

/// An upstream connection: plain TCP or Istio's mutual TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Releases a connection-pool slot when the connection ends.
struct Admitted(Arc<Cluster>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.pool().finish();
    }
}

/// An endpoint's connection in progress: counted active (least request) until dropped, when
/// `outcome` goes to outlier detection — also when the task is cancelled (a drain's end).
struct Active {
    cluster: Arc<Cluster>,
    endpoint: usize,
    outcome: Observation,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.cluster.finished(self.endpoint, self.outcome);
    }
}

/// What a passthrough port needs to serve its HTTPS servers too.
#[derive(Clone)]
pub(crate) struct Https {
    port: GatewayPort,
    stack: connection::Upstream,
    stop: watch::Receiver<bool>,
}

/// Read the client's first TLS bytes until its ClientHello is whole: the server name it asks for
/// and every byte read (to be sent on first). `None` when it is not a ClientHello.
async fn read_client_hello(client: &mut TcpStream) -> Option<(Option<String>, Vec<u8>)> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut read = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 || read.len() + n > HELLO_LIMIT {
            return None;
        }
        read.extend_from_slice(&chunk[..n]);
        let mut fresh = &chunk[..n];
        while !fresh.is_empty() {
            // Nothing taken (its buffer is full): not a ClientHello meshwork can read.
            if acceptor.read_tls(&mut fresh).ok()? == 0 {
                return None;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(|n| n.to_ascii_lowercase());
                return Some((sni, read));
            }
            Ok(None) => continue,
            Err(_) => return None,
        }
    }
}

/// Copy bytes both ways until both sides have closed, or until nothing has moved for `idle`; a
/// side's end of input is passed on as a half close. The two directions run concurrently (a
/// side that writes without reading cannot stall the other). Returns the bytes (from the client,
/// to the client).
pub(crate) async fn pump<C: AsyncRead + AsyncWrite + Unpin, U: AsyncRead + AsyncWrite + Unpin>(
    client: &mut C,
    upstream: &mut U,
    idle: Duration,
) -> (u64, u64) {
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut upstream_in, mut upstream_out) = tokio::io::split(upstream);
    let start = tokio::time::Instant::now();
    // Milliseconds since `start` of the last byte moved, and the bytes moved each way.
    let last = AtomicU64::new(0);
    let (from_client, to_client) = (AtomicU64::new(0), AtomicU64::new(0));
    let up = one_way(&mut client_in, &mut upstream_out, &from_client, &last, start);
    let down = one_way(&mut upstream_in, &mut client_out, &to_client, &last, start);
    let idle_watch = async {
        loop {
            let moved = start + Duration::from_millis(last.load(Ordering::Relaxed));
            if tokio::time::Instant::now() >= moved + idle {
                return;
            }
            tokio::time::sleep_until(moved + idle).await;
        }
    };
    tokio::pin!(up, down, idle_watch);
    let (mut up_done, mut down_done) = (false, false);
    // Both ends closing ends the connection; so does a failure either way (a reset), or idling.
    while !(up_done && down_done) {
        tokio::select! {
            clean = &mut up, if !up_done => {
                up_done = true;
                if !clean {
                    break;
                }
            }
            clean = &mut down, if !down_done => {
                down_done = true;
                if !clean {
                    break;
                }
            }
            () = &mut idle_watch => {
                tracing::debug!(target: "meshwork::proxy", ?idle, "TCP connection idle: closed");
                break;
            }
        }
    }
    (from_client.load(Ordering::Relaxed), to_client.load(Ordering::Relaxed))
}

/// Copy `from` into `to` until `from` ends (then half-close `to`: true) or either side fails
/// (false), counting bytes in `moved` and the time of the last in `last`.
async fn one_way<R, W>(
    from: &mut R,
    to: &mut W,
    moved: &AtomicU64,
    last: &AtomicU64,
    start: tokio::time::Instant,
) -> bool
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return false,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
        moved.fetch_add(n as u64, Ordering::Relaxed);
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two ends of a loopback TCP connection.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (connected.expect("connect"), accepted.expect("accept").0)
    }

    // On tokio's real clock with a short window: the paused clock needs tokio's `test-util`
    // feature, and as a dev-dependency of this crate cargo would compile it into the `mesh`
    // binary and the benchmark helpers built with it (features unify across one build), which
    // `benches/instructions.sh` measured (+200–500 instructions per request).
    #[tokio::test]
    async fn an_idle_connection_is_closed_once_nothing_moved_for_the_idle_timeout() {
        let ((mut client, mut client_peer), (mut upstream, mut upstream_peer)) = (pair().await, pair().await);
        let idle = Duration::from_millis(300);
        let pumping = tokio::spawn(async move { pump(&mut client, &mut upstream, idle).await });
        client_peer.write_all(b"hi").await.expect("write");
        let mut got = [0u8; 2];
        upstream_peer.read_exact(&mut got).await.expect("forwarded");
        tokio::time::sleep(Duration::from_millis(150)).await;
        upstream_peer.write_all(b"back").await.expect("write");
        let mut back = [0u8; 4];
        client_peer.read_exact(&mut back).await.expect("forwarded back");
        // Nothing more: the idle timer runs from the last byte moved (not from the first).
        let last_byte = tokio::time::Instant::now();
        let counted = pumping.await.expect("pump");
        assert_eq!(counted, (2, 4));
        let idle_for = last_byte.elapsed();
        assert!(idle_for >= Duration::from_millis(250) && idle_for < Duration::from_secs(5), "{idle_for:?}");
        let mut rest = Vec::new();
        assert_eq!(client_peer.read_to_end(&mut rest).await.map(|_| rest.len()).unwrap_or(0), 0, "closed");
    }

    #[tokio::test]
    async fn half_closes_pass_through_and_both_ends_finish() {
        let ((mut client, mut client_peer), (mut upstream, mut upstream_peer)) = (pair().await, pair().await);
        let pumping = tokio::spawn(async move { pump(&mut client, &mut upstream, IDLE_TIMEOUT).await });
        client_peer.write_all(b"request").await.expect("write");
        client_peer.shutdown().await.expect("half close");
        let mut request = Vec::new();
        upstream_peer.read_to_end(&mut request).await.expect("request, then the client's end");
        assert_eq!(request, b"request");
        // The upstream answers after the client stopped sending, then closes.
        upstream_peer.write_all(b"response").await.expect("write");
        drop(upstream_peer);
        let mut response = Vec::new();
        client_peer.read_to_end(&mut response).await.expect("response, then the upstream's end");
        assert_eq!(response, b"response");
        assert_eq!(pumping.await.expect("pump"), (7, 8));
    }
}
