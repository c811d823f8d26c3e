//! The client under the mesh stack: pooled keep-alive connections to endpoints, plain text or
//! TLS as the DestinationRule says, HTTP/1.1 or HTTP/2 as the request's version says (the proxy's
//! mesh sets it from the service port's protocol: HTTP/2 with prior knowledge for `HTTP2` and
//! `GRPC` ports, else HTTP/1.1, whatever the downstream client spoke).
//!
//! meshwork's balance layer marks a request bound for a cluster whose traffic policy sets
//! `tls.mode: SIMPLE | MUTUAL` with [`UpstreamTls`]. Such requests go through a TLS client built
//! for that setting and SNI (the DestinationRule's `sni`, else the request's host, as Istio's
//! automatic SNI); one hyper-util client (and so one connection pool) per setting and name,
//! created on first use. Plain-text HTTP/1.1 requests that carry a [`ConnectionAffinity`] (the
//! proxy's listener puts one on every request of a downstream HTTP/1.1 connection) reuse the
//! upstream connections that downstream connection opened, without a shared pool: an HTTP/1.1
//! client sends one request at a time, so its upstream connection is free again when its next
//! request arrives (measured: +13 % requests per second for a bare pass-through, see
//! benches/RESULTS.md). Those upstream connections are driven by the downstream connection's
//! task ([`ConnectionAffinity::driving`]), not by tasks of their own, as pingora runs both sides
//! of a proxied request in one task: no task switch between reading the response and writing it
//! on (measured: +0.5 to +5.7 % peak requests per second in six A/B pairs, median +2.8 %, see
//! benches/RESULTS.md). Every other request goes through the plain client — including those the
//! caller marked `https`: the proxy terminated the client's TLS, and the hop to the endpoint is
//! plain text unless the DestinationRule says otherwise. A TLS setting that cannot be built
//! (a missing certificate file) fails the connection, which meshwork answers with 503 `UF`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::policy::ClientTls;
use mesh_tower::ReplayBody;
use mesh_tower::cluster::{UpstreamConnect, UpstreamTls};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use crate::tls::{TlsError, client_config};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = ReplayBody<Incoming>;

/// Idle upstream connections one downstream connection keeps, at most.
const AFFINITY_IDLE: usize = 8;
/// How long a request waits for its downstream connection's upstream connection to finish the
/// previous response before opening another.
const AFFINITY_READY_WAIT: Duration = Duration::from_millis(100);

/// The upstream HTTP/1.1 connections of one downstream connection (see the module docs). Put it
/// in the extensions of that connection's requests, and run that connection's future inside
/// [`ConnectionAffinity::driving`]: the upstream connections are then driven by the downstream
/// connection's own task instead of tasks of their own, so a request and its response cross
/// from one socket to the other without a task switch.
#[derive(Debug, Clone, Default)]
pub struct ConnectionAffinity(Arc<AffinityInner>);

#[derive(Default)]
struct AffinityInner {
    idle: Mutex<IdleConnections>,
    /// The upstream connections' futures (hyper's connection state machines): a handful at
    /// most (one per endpoint in use, more only while a response is still being read), all
    /// polled when one of them is woken.
    driven: Mutex<Vec<DrivenConnection>>,
    wakeups: Arc<Wakeups>,
}

impl AffinityInner {
    /// Poll every upstream connection once; drop those that ended.
    fn poll_driven(&self, waker: &Waker) {
        let mut cx = Context::from_waker(waker);
        let mut driven = self.driven.lock().unwrap_or_else(|p| p.into_inner());
        driven.retain_mut(|connection| connection.as_mut().poll(&mut cx).is_pending());
    }
}

impl std::fmt::Debug for AffinityInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AffinityInner").finish_non_exhaustive()
    }
}

type DrivenConnection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Idle upstream connections, by endpoint authority.
type IdleConnections = Vec<(http::uri::Authority, SendRequest<Body>)>;

/// Which parts of a [`Driving`] future were woken: the downstream connection, the upstream ones,
/// the stop signal. Each part is polled with a waker of its own, so one part's wake-up does not
/// poll the others (hyper's connection futures are not cheap to poll for nothing).
const DOWNSTREAM: u8 = 1;
const UPSTREAM: u8 = 2;
const STOP: u8 = 4;

struct Wakeups {
    pending: AtomicU8,
    /// The task is polling now: wake-ups are seen by its loop, the task need not be woken.
    in_poll: AtomicBool,
    task: AtomicWaker,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups {
            pending: AtomicU8::new(DOWNSTREAM | UPSTREAM | STOP),
            in_poll: AtomicBool::new(false),
            task: AtomicWaker::new(),
        }
    }
}

/// The waker of one part of a [`Driving`] future.
struct PartWaker {
    wakeups: Arc<Wakeups>,
    part: u8,
}

impl std::task::Wake for PartWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.pending.fetch_or(self.part, Ordering::SeqCst);
        if !self.wakeups.in_poll.load(Ordering::SeqCst) {
            self.wakeups.task.wake();
        }
    }
}

fn part_waker(wakeups: &Arc<Wakeups>, part: u8) -> Waker {
    Waker::from(Arc::new(PartWaker { wakeups: wakeups.clone(), part }))
}

/// How many rounds one poll of [`Driving`] makes before it yields to the runtime (a part that
/// keeps waking itself, as a future out of its cooperative budget does, must not spin).
const DRIVING_ROUNDS: usize = 16;

impl ConnectionAffinity {
    /// A connection to `authority` this downstream connection opened, ready ones first. One that
    /// is not ready yet is usually finishing the previous response (its connection future has not
    /// run since the body ended).
    fn take(&self, authority: &http::uri::Authority) -> Option<SendRequest<Body>> {
        let mut idle = self.0.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(_, s)| !s.is_closed());
        let i = idle
            .iter()
            .position(|(a, s)| a.as_str() == authority.as_str() && s.is_ready())
            .or_else(|| idle.iter().position(|(a, _)| a.as_str() == authority.as_str()))?;
        Some(idle.swap_remove(i).1)
    }

    fn put(&self, authority: http::uri::Authority, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.0.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= AFFINITY_IDLE {
            idle.remove(0);
        }
        idle.push((authority, sender));
    }

    /// Hand a new upstream connection's future to the downstream connection's task.
    fn drive(&self, connection: DrivenConnection) {
        self.0.driven.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
        // `push` wakes nobody: mark the upstream part woken so that the new future runs.
        part_waker(&self.0.wakeups, UPSTREAM).wake();
    }

    /// Run `connection`, the downstream connection's future, together with the upstream
    /// connections its requests open (one task for both sides). When `stop` resolves,
    /// `on_stop` is called on the connection (a graceful shutdown) and driving goes on until
    /// the connection ends; its upstream connections are dropped (closed) with it.
    pub fn driving<F, S, G>(&self, connection: F, stop: S, on_stop: G) -> Driving<F, S, G>
    where
        F: Future,
        S: Future<Output = ()>,
        G: FnOnce(Pin<&mut F>),
    {
        let wakeups = &self.0.wakeups;
        Driving {
            connection,
            stop: Some(stop),
            on_stop: Some(on_stop),
            affinity: self.clone(),
            downstream_waker: part_waker(wakeups, DOWNSTREAM),
            upstream_waker: part_waker(wakeups, UPSTREAM),
            stop_waker: part_waker(wakeups, STOP),
        }
    }
}

pin_project_lite::pin_project! {
    /// A downstream connection's future run with its upstream connections and a stop signal
    /// (see [`ConnectionAffinity::driving`]).
    pub struct Driving<F, S, G> {
        #[pin]
        connection: F,
        #[pin]
        stop: Option<S>,
        on_stop: Option<G>,
        affinity: ConnectionAffinity,
        downstream_waker: Waker,
        upstream_waker: Waker,
        stop_waker: Waker,
    }
}

impl<F, S, G> Future for Driving<F, S, G>
where
    F: Future,
    S: Future<Output = ()>,
    G: FnOnce(Pin<&mut F>),
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let inner = &this.affinity.0;
        let wakeups = &inner.wakeups;
        wakeups.task.register(cx.waker());
        wakeups.in_poll.store(true, Ordering::SeqCst);
        for _ in 0..DRIVING_ROUNDS {
            let mut pending = wakeups.pending.swap(0, Ordering::SeqCst);
            if pending == 0 {
                // Leave, unless a wake-up came in while leaving.
                wakeups.in_poll.store(false, Ordering::SeqCst);
                pending = wakeups.pending.swap(0, Ordering::SeqCst);
                if pending == 0 {
                    return Poll::Pending;
                }
                wakeups.in_poll.store(true, Ordering::SeqCst);
            }
            // Upstream first: a response that arrived is then seen downstream in this round.
            if pending & UPSTREAM != 0 {
                inner.poll_driven(this.upstream_waker);
            }
            if pending & STOP != 0
                && let Some(stop) = this.stop.as_mut().as_pin_mut()
                && stop.poll(&mut Context::from_waker(this.stop_waker)).is_ready()
            {
                this.stop.set(None);
                if let Some(on_stop) = this.on_stop.take() {
                    on_stop(this.connection.as_mut());
                }
                pending |= DOWNSTREAM;
            }
            if pending & DOWNSTREAM != 0
                && let Poll::Ready(out) = this.connection.as_mut().poll(&mut Context::from_waker(this.downstream_waker))
            {
                wakeups.in_poll.store(false, Ordering::SeqCst);
                // One last turn for the upstream side: an upgrade hands its connection over when
                // that connection's future runs (the tunnel task takes it from there).
                inner.poll_driven(this.upstream_waker);
                return Poll::Ready(out);
            }
        }
        // Still woken after every round: yield, and come back.
        wakeups.in_poll.store(false, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Open a plain HTTP/1.1 connection to `authority` (upgrades allowed), driven by `affinity`'s
/// downstream connection.
async fn connect_http1(
    affinity: &ConnectionAffinity,
    authority: &http::uri::Authority,
    connect: Option<UpstreamConnect>,
) -> Result<SendRequest<Body>, BoxError> {
    let tcp = connect_tcp(authority.as_str(), connect.as_ref()).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    affinity.drive(Box::pin(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(target: "meshwork::proxy", error = %e, "upstream connection ended with an error");
        }
    }));
    Ok(sender)
}

/// Send on this downstream connection's own upstream connection (opened if needed); a request
/// the idle connection could not take (closed meanwhile) goes on a new one.
async fn send_with_affinity(
    affinity: ConnectionAffinity,
    authority: http::uri::Authority,
    mut req: http::Request<Body>,
) -> Result<http::Response<Incoming>, BoxError> {
    // On a connection of its own the request-target is origin-form (`/path?query`), as a client
    // sends it to an origin server (RFC 9112 §3.2.1); the authority stays in `Host`.
    if req.method() != http::Method::CONNECT {
        let origin = req.uri().path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *req.uri_mut() = http::Uri::from(origin);
    }
    // The common case inline: the idle connection is ready. Waiting for one and connecting are
    // boxed, so this future (boxed once per request) stays small.
    let idle = match affinity.take(&authority) {
        Some(mut sender) if sender.is_ready() => match sender.try_send_request(req).await {
            Ok(response) => {
                affinity.put(authority, sender);
                return Ok(response);
            }
            Err(mut e) => match e.take_message() {
                Some(back) => {
                    req = back;
                    None
                }
                None => return Err(e.into_error().into()),
            },
        },
        other => other,
    };
    Box::pin(send_after_wait(affinity, authority, req, idle)).await
}

/// The slow path of [`send_with_affinity`]: wait (briefly) for a busy idle connection, else open
/// a new one.
async fn send_after_wait(
    affinity: ConnectionAffinity,
    authority: http::uri::Authority,
    req: http::Request<Body>,
    idle: Option<SendRequest<Body>>,
) -> Result<http::Response<Incoming>, BoxError> {
    let ready = match idle {
        // Wait for the previous response to finish (it resolves at once, or with an error when
        // that response was abandoned and the connection closes); give up after a moment.
        Some(mut sender) => match tokio::time::timeout(AFFINITY_READY_WAIT, sender.ready()).await {
            Ok(Ok(())) => Some(sender),
            _ => None,
        },
        None => None,
    };
    let (mut sender, req) = match ready {
        Some(mut sender) => match sender.try_send_request(req).await {
            Ok(response) => {
                affinity.put(authority, sender);
                return Ok(response);
            }
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    let connect = req.extensions().get::<UpstreamConnect>().copied();
                    (connect_http1(&affinity, &authority, connect).await?, req)
                }
                None => return Err(e.into_error().into()),
            },
        },
        None => {
            let connect = req.extensions().get::<UpstreamConnect>().copied();
            (connect_http1(&affinity, &authority, connect).await?, req)
        }
    };
    let response = sender.send_request(req).await?;
    affinity.put(authority, sender);
    Ok(response)
}

/// Open a TCP connection to `address` as the cluster's DestinationRule says: within its
/// `connectTimeout` (else [`CONNECT_TIMEOUT`], Istio's default), with its `tcpKeepalive`, and
/// with Nagle off.
pub(crate) async fn connect_tcp(address: &str, connect: Option<&UpstreamConnect>) -> std::io::Result<TcpStream> {
    let timeout = connect.and_then(|c| c.timeout).unwrap_or(CONNECT_TIMEOUT);
    let connecting = async {
        // A name that does not resolve is a failure to connect (Envoy's `UF`), not a reset.
        let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(address)
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::HostUnreachable, format!("{address}: {e}")))?
            .collect();
        TcpStream::connect(&addresses[..]).await
    };
    let tcp = tokio::time::timeout(timeout, connecting).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))
    })??;
    let _ = tcp.set_nodelay(true);
    if let Some(keepalive) = connect.and_then(|c| c.keepalive) {
        set_keepalive(&tcp, &keepalive)?;
    }
    Ok(tcp)
}

/// SO_KEEPALIVE with the policy's time, interval and probes (the system's defaults for the rest).
pub(crate) fn set_keepalive(tcp: &TcpStream, keepalive: &mesh_core::policy::TcpKeepalive) -> std::io::Result<()> {
    let mut settings = socket2::TcpKeepalive::new();
    if let Some(time) = keepalive.time {
        settings = settings.with_time(time);
    }
    if let Some(interval) = keepalive.interval {
        settings = settings.with_interval(interval);
    }
    if let Some(probes) = keepalive.probes {
        settings = settings.with_retries(probes);
    }
    socket2::SockRef::from(tcp).set_tcp_keepalive(&settings)
}

/// Connections idle this long are closed.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// A TCP connect must finish within this time.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    // The URI may say https (a request that came in over TLS); the TLS decision is ours.
    connector.enforce_http(false);
    connector
}

/// A connector that opens connections as a DestinationRule's `connectTimeout` and
/// `tcpKeepalive` say (hyper-util cannot turn keepalive on with the system's idle time: an unset
/// `time` is Linux's default, 7200 s).
fn http_connector_with(connect: Option<&UpstreamConnect>) -> HttpConnector {
    let mut connector = http_connector();
    if let Some(connect) = connect {
        if let Some(timeout) = connect.timeout {
            connector.set_connect_timeout(Some(timeout));
        }
        if let Some(keepalive) = connect.keepalive {
            connector.set_keepalive(Some(keepalive.time.unwrap_or(Duration::from_secs(7200))));
            connector.set_keepalive_interval(keepalive.interval);
            connector.set_keepalive_retries(keepalive.probes);
        }
    }
    connector
}

/// One TLS client: a setting, the name it sends, HTTP/2 or not, how it connects, its pool.
#[derive(Debug)]
struct TlsClient<B> {
    tls: Arc<ClientTls>,
    sni: Arc<str>,
    http2: bool,
    connect: Option<UpstreamConnect>,
    client: Client<TlsConnector, ReplayBody<B>>,
}

/// One plain pooled client for clusters with connect settings: the settings, HTTP/2 or not, its
/// pool.
#[derive(Debug)]
struct ConnectClient<B> {
    connect: UpstreamConnect,
    http2: bool,
    client: Client<HttpConnector, ReplayBody<B>>,
}

/// The client under the mesh stack (see the module docs), for request bodies of type `B` (the
/// proxy's: hyper's `Incoming`; an in-process caller's: any `http_body::Body<Data = Bytes>`,
/// e.g. `Full<Bytes>` or a `BoxBody`). Cheap to clone (one shared `Arc`).
pub struct UpstreamClient<B = Incoming> {
    clients: Arc<Clients<B>>,
}

impl<B> Clone for UpstreamClient<B> {
    fn clone(&self) -> Self {
        UpstreamClient { clients: self.clients.clone() }
    }
}

impl<B> std::fmt::Debug for UpstreamClient<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Clients<B> {
    http1: Client<HttpConnector, ReplayBody<B>>,
    http2: Client<HttpConnector, ReplayBody<B>>,
    tls: RwLock<Vec<TlsClient<B>>>,
    connect: RwLock<Vec<ConnectClient<B>>>,
}

/// What a request body must be for [`UpstreamClient`] (hyper's client sends it from its own
/// task): `Full<Bytes>`, `Empty<Bytes>`, `BoxBody<Bytes, E>` with `E` an error type
/// (`Infallible`, `hyper::Error`, ...), hyper's `Incoming`.
pub trait RequestBody: http_body::Body<Data = bytes::Bytes, Error = Self::BodyError> + Send + Unpin + 'static {
    /// The body's error.
    type BodyError: std::error::Error + Send + Sync + 'static;
}

impl<B> RequestBody for B
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type BodyError = B::Error;
}

impl<B: RequestBody> Default for UpstreamClient<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: RequestBody> UpstreamClient<B> {
    /// A client with empty pools.
    pub fn new() -> Self {
        let http1 = Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(http_connector());
        let http2 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .http2_only(true)
            .build(http_connector());
        UpstreamClient {
            clients: Arc::new(Clients { http1, http2, tls: RwLock::default(), connect: RwLock::default() }),
        }
    }

    /// The pooled plain client for clusters with these connect settings.
    fn connect_client(&self, connect: &UpstreamConnect, http2: bool) -> Client<HttpConnector, ReplayBody<B>> {
        let find = |clients: &[ConnectClient<B>]| {
            clients.iter().find(|c| c.connect == *connect && c.http2 == http2).map(|c| c.client.clone())
        };
        if let Some(client) = find(&self.clients.connect.read().unwrap_or_else(|p| p.into_inner())) {
            return client;
        }
        let mut clients = self.clients.connect.write().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = find(&clients) {
            return client;
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .http2_only(http2)
            .build(http_connector_with(Some(connect)));
        clients.push(ConnectClient { connect: *connect, http2, client: client.clone() });
        client
    }

    fn tls_client(
        &self,
        tls: &Arc<ClientTls>,
        sni: &str,
        http2: bool,
        connect: Option<&UpstreamConnect>,
    ) -> Client<TlsConnector, ReplayBody<B>> {
        let find = |clients: &[TlsClient<B>]| {
            clients
                .iter()
                .find(|c| {
                    (Arc::ptr_eq(&c.tls, tls) || c.tls == *tls)
                        && &*c.sni == sni
                        && c.http2 == http2
                        && c.connect.as_ref() == connect
                })
                .map(|c| c.client.clone())
        };
        if let Some(client) = find(&self.clients.tls.read().unwrap_or_else(|p| p.into_inner())) {
            return client;
        }
        let mut clients = self.clients.tls.write().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = find(&clients) {
            return client;
        }
        let connector = TlsConnector {
            http: http_connector_with(connect),
            tls: tls.clone(),
            sni: Arc::from(sni),
            http2,
            config: Arc::default(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .http2_only(http2)
            .build(connector);
        clients.push(TlsClient {
            tls: tls.clone(),
            sni: Arc::from(sni),
            http2,
            connect: connect.copied(),
            client: client.clone(),
        });
        client
    }
}

/// The SNI for a request: the DestinationRule's `sni`, else the host of `Host` / `:authority` —
/// Istio's automatic SNI (`ENABLE_AUTO_SNI`, on by default; istio/istio#27847), which also makes
/// the certificate check use that name unless `subjectAltNames` are given.
fn sni_of<T>(tls: &ClientTls, req: &http::Request<T>) -> String {
    if let Some(sni) = &tls.sni {
        return sni.to_string();
    }
    let authority = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    mesh_core::request::normalize_host(authority).into_owned()
}

/// Take the request out of `slot` if it is the proxy's own (body `Incoming`): only those can use
/// a [`ConnectionAffinity`] (one `TypeId` comparison, no copy).
fn take_proxy_request<B: 'static>(slot: &mut Option<http::Request<ReplayBody<B>>>) -> Option<http::Request<Body>> {
    (slot as &mut dyn std::any::Any).downcast_mut::<Option<http::Request<Body>>>()?.take()
}

impl<B: RequestBody> tower::Service<http::Request<ReplayBody<B>>> for UpstreamClient<B> {
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = UpstreamFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<ReplayBody<B>>) -> Self::Future {
        let http2 = req.version() == http::Version::HTTP_2;
        // (The connect settings are looked up only off the common path, the downstream
        // connection's own HTTP/1.1 upstream connection.)
        let connect = |req: &http::Request<ReplayBody<B>>| req.extensions().get::<UpstreamConnect>().copied();
        let pooled = match req.extensions().get::<UpstreamTls>() {
            Some(UpstreamTls(tls)) => {
                let sni = sni_of(tls, &req);
                self.tls_client(tls, &sni, http2, connect(&req).as_ref()).request(req)
            }
            None if http2 => match connect(&req) {
                Some(c) => self.connect_client(&c, true).request(req),
                None => self.clients.http2.request(req),
            },
            None => match (req.extensions().get::<ConnectionAffinity>(), req.uri().authority()) {
                (Some(affinity), Some(authority)) => {
                    let (affinity, authority) = (affinity.clone(), authority.clone());
                    let mut slot = Some(req);
                    if let Some(req) = take_proxy_request(&mut slot) {
                        return UpstreamFuture::Own(Box::pin(send_with_affinity(affinity, authority, req)));
                    }
                    match slot {
                        Some(req) => self.clients.http1.request(req),
                        None => return UpstreamFuture::Own(Box::pin(async { Err("request already taken".into()) })),
                    }
                }
                _ => match connect(&req) {
                    Some(c) => self.connect_client(&c, false).request(req),
                    None => self.clients.http1.request(req),
                },
            },
        };
        UpstreamFuture::Pooled(pooled)
    }
}

/// The response future of [`UpstreamClient`].
pub enum UpstreamFuture {
    /// Through a pooled hyper-util client.
    Pooled(ResponseFuture),
    /// On the downstream connection's own upstream connection.
    Own(Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, BoxError>> + Send>>),
}

impl std::fmt::Debug for UpstreamFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamFuture::Pooled(_) => "UpstreamFuture::Pooled",
            UpstreamFuture::Own(_) => "UpstreamFuture::Own",
        })
    }
}

impl Future for UpstreamFuture {
    type Output = Result<http::Response<Incoming>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            UpstreamFuture::Pooled(f) => Pin::new(f).poll(cx).map_err(Into::into),
            UpstreamFuture::Own(f) => f.as_mut().poll(cx),
        }
    }
}

/// Connects with TCP, then TLS with one setting and server name.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    http: HttpConnector,
    tls: Arc<ClientTls>,
    sni: Arc<str>,
    http2: bool,
    config: Arc<Mutex<Option<BuiltConfig>>>,
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

/// A TLS connection to an endpoint.
#[derive(Debug)]
pub struct TlsConnection(TokioIo<tokio_rustls::client::TlsStream<TcpStream>>);

impl Connection for TlsConnection {
    fn connected(&self) -> Connected {
        let (tcp, session) = self.0.inner().get_ref();
        let connected = tcp.connected();
        if session.alpn_protocol() == Some(b"h2") { connected.negotiated_h2() } else { connected }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pooled_requests_with_connect_settings_use_a_client_of_their_own() {
        // A plain HTTP/1.1 server answering every request with its path.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: http::Request<Incoming>| async move {
                        let path = req.uri().path().to_string();
                        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(path),
                        )))
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        });
        let mut client = UpstreamClient::new();
        let connect = UpstreamConnect {
            timeout: Some(Duration::from_secs(2)),
            keepalive: Some(mesh_core::policy::TcpKeepalive { probes: Some(3), time: None, interval: None }),
        };
        for path in ["/a", "/b"] {
            let mut req = http::Request::get(format!("http://{address}{path}"))
                .body(Body::from_bytes(bytes::Bytes::new()))
                .expect("request");
            req.extensions_mut().insert(connect);
            let response = tower::ServiceExt::oneshot(&mut client, req).await.expect("answered");
            let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
            assert_eq!(body, path.as_bytes());
        }
        assert_eq!(client.clients.connect.read().map(|c| c.len()).unwrap_or(0), 1, "one client for one setting");
    }

    #[tokio::test]
    async fn connections_get_the_destination_rules_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let keepalive = mesh_core::policy::TcpKeepalive {
            probes: Some(4),
            time: Some(Duration::from_secs(600)),
            interval: Some(Duration::from_secs(30)),
        };
        let connect = UpstreamConnect { timeout: Some(Duration::from_secs(1)), keepalive: Some(keepalive) };
        let tcp = connect_tcp(&address, Some(&connect)).await.expect("connected");
        let socket = socket2::SockRef::from(&tcp);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"), Duration::from_secs(600));
        assert_eq!(socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"), Duration::from_secs(30));
        assert_eq!(socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"), 4);
        assert!(tcp.nodelay().expect("TCP_NODELAY"));
        // Without a policy: no keepalive, as Istio leaves it unless tcpKeepalive is set.
        let plain = connect_tcp(&address, None).await.expect("connected");
        assert!(!socket2::SockRef::from(&plain).keepalive().expect("SO_KEEPALIVE"));
    }

    /// The upstream side of a driven connection runs in the downstream connection's task (no
    /// spawn): here the "downstream" future finishes only when a "connection" handed to the
    /// driver has run, and the stop signal asks for a graceful shutdown without cutting it short.
    #[tokio::test]
    async fn driving_runs_handed_connections_and_stops_gracefully() {
        let affinity = ConnectionAffinity::default();
        let (ran_tx, ran_rx) = tokio::sync::oneshot::channel::<()>();
        let handed = affinity.clone();
        let downstream = async move {
            // A request opens an upstream connection: its future only runs if the driver runs it.
            handed.drive(Box::pin(async move {
                tokio::task::yield_now().await;
                let _ = ran_tx.send(());
            }));
            ran_rx.await.is_ok()
        };
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        let driving = affinity.driving(downstream, std::future::ready(()), move |_| flag.store(true, Ordering::SeqCst));
        let ran = tokio::time::timeout(Duration::from_secs(5), driving).await.expect("the driven connection ran");
        assert!(ran, "the handed connection ran to its end");
        assert!(stopped.load(Ordering::SeqCst), "the stop signal called the graceful shutdown");
    }

    /// A part that wakes itself at every poll (as a future out of its cooperative budget does)
    /// does not hold the thread: the driver yields between rounds.
    #[tokio::test]
    async fn a_busy_part_does_not_starve_other_tasks() {
        let affinity = ConnectionAffinity::default();
        let spinning = std::future::poll_fn(|cx: &mut Context<'_>| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let driving = affinity.driving(spinning, std::future::pending::<()>(), |_| {});
        let other = tokio::spawn(async {});
        let race = async {
            tokio::select! {
                _ = driving => false,
                done = other => done.is_ok(),
            }
        };
        assert!(tokio::time::timeout(Duration::from_secs(5), race).await.expect("not starved"));
    }
}
