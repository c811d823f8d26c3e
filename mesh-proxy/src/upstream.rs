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
//!
//!
//! Istio's mutual TLS (`ISTIO_MUTUAL`, auto mTLS to endpoints labelled
//! `security.istio.io/tlsMode: istio`) is decided per endpoint by mesh-core
//! ([`mesh_core::upstream_tls`]) and applied by `mtls.rs` with the client's workload
//! certificate ([`UpstreamClient::with_outbound_mtls`], [`OutboundMtls`]); such requests never
//! take the affinity path (its connections are plain text).
//!
//! Here: the client and its pools. Beside it: `affinity.rs` (a downstream connection's own
//! upstream HTTP/1.1 connections, and sending on them), `driving.rs` (the one-task driver,
//! [`Driving`]), `connect.rs` (TCP connections as `connectionPool.tcp` says), `tls_connect.rs`
//! (TLS origination, [`TlsConnector`]) and `mtls.rs` (Istio's mutual TLS).

mod affinity;
mod connect;
mod driving;
mod mtls;
mod tls_connect;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use mesh_core::policy::ClientTls;
use mesh_tower::ReplayBody;
use mesh_tower::cluster::{UpstreamConnect, UpstreamTls};

pub use affinity::ConnectionAffinity;
use affinity::send_with_affinity;
pub(crate) use connect::connect_tcp;
pub use connect::{CONNECT_TIMEOUT, POOL_IDLE_TIMEOUT};
use connect::{http_connector, http_connector_with};
pub use driving::Driving;
pub(crate) use mtls::Mtls;
use mtls::{MtlsConnector, MtlsTarget};
pub use mtls::{MtlsError, OutboundMtls};
pub use tls_connect::{TlsConnection, TlsConnector};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = ReplayBody<Incoming>;

/// One TLS client: a setting, the name it sends, HTTP/2 or not, how it connects, its pool.
#[derive(Debug)]
struct TlsClient<B> {
    tls: Arc<ClientTls>,
    sni: Arc<str>,
    http2: bool,
    connect: Option<UpstreamConnect>,
    client: Client<TlsConnector, ReplayBody<B>>,
}

/// One mutual TLS client: its target (SNI, expected identities), HTTP/2 or not, how it
/// connects, its pool.
#[derive(Debug)]
struct MtlsClient<B> {
    target: Arc<MtlsTarget>,
    http2: bool,
    connect: Option<UpstreamConnect>,
    client: Client<MtlsConnector, ReplayBody<B>>,
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
    mtls: Mtls,
    mtls_clients: RwLock<Vec<MtlsClient<B>>>,
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
    /// A client with empty pools, without a workload certificate (`ISTIO_MUTUAL` destinations
    /// fail with 503; auto mTLS is plain text).
    pub fn new() -> Self {
        Self::build(OutboundMtls::default())
    }

    /// This client (its pools emptied) originating Istio's mutual TLS with `mtls`'s workload
    /// certificate where mesh-core decides so (see the module docs).
    pub fn with_outbound_mtls(self, mtls: OutboundMtls) -> Self {
        Self::build(mtls)
    }

    fn build(mtls: OutboundMtls) -> Self {
        let http1 = Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(http_connector());
        let http2 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .http2_only(true)
            .build(http_connector());
        UpstreamClient {
            clients: Arc::new(Clients {
                http1,
                http2,
                tls: RwLock::default(),
                connect: RwLock::default(),
                mtls: Mtls::new(mtls),
                mtls_clients: RwLock::default(),
            }),
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

    /// The pooled mutual TLS client for `target`.
    fn mtls_client(
        &self,
        target: &Arc<MtlsTarget>,
        http2: bool,
        connect: Option<&UpstreamConnect>,
    ) -> Client<MtlsConnector, ReplayBody<B>> {
        let find = |clients: &[MtlsClient<B>]| {
            clients
                .iter()
                .find(|c| {
                    (Arc::ptr_eq(&c.target, target) || c.target == *target)
                        && c.http2 == http2
                        && c.connect.as_ref() == connect
                })
                .map(|c| c.client.clone())
        };
        if let Some(client) = find(&self.clients.mtls_clients.read().unwrap_or_else(|p| p.into_inner())) {
            return client;
        }
        let mut clients = self.clients.mtls_clients.write().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = find(&clients) {
            return client;
        }
        let connector = MtlsConnector::new(
            http_connector_with(connect),
            target.clone(),
            http2,
            self.clients.mtls.configs().clone(),
        );
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .http2_only(http2)
            .build(connector);
        clients.push(MtlsClient { target: target.clone(), http2, connect: connect.copied(), client: client.clone() });
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
        let connector = TlsConnector::new(http_connector_with(connect), tls.clone(), Arc::from(sni), http2);
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
        if let Some(target) = self.clients.mtls.target(&req) {
            return UpstreamFuture::Pooled(self.mtls_client(&target, http2, connect(&req).as_ref()).request(req));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use std::time::Duration;

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
}
