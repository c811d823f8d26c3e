//! Real upstream servers on 127.0.0.1:0 and a real hyper-util client under the mesh stack.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_config::{ConfigStore, LoadOptions, load_str};
use mesh_core::{ClientIdentity, Snapshot};
use mesh_tower::{Mesh, MeshService, ReplayBody};
use tower::{Layer, ServiceExt};

/// What a server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: HeaderMap,
    pub body_len: usize,
}

/// A test upstream.
#[derive(Debug, Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub hits: Arc<AtomicUsize>,
}

impl Server {
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Start a server whose handler gets each request (body read) and its 0-based number.
pub async fn serve<F, Fut>(handler: F) -> Server
where
    F: Fn(Seen, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let hits: Arc<AtomicUsize> = Arc::default();
    let (s, h) = (seen.clone(), hits.clone());
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (seen, hits, handler) = (s.clone(), h.clone(), handler.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body_len = body.collect().await.map(|b| b.to_bytes().len()).unwrap_or(usize::MAX);
            let n = hits.fetch_add(1, Ordering::SeqCst);
            let seen_now = Seen { method: parts.method, uri: parts.uri, headers: parts.headers, body_len };
            seen.lock().expect("lock").push(seen_now.clone());
            handler(seen_now, n).await
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, seen, hits }
}

/// A server answering `status` with `body` every time.
pub async fn fixed(status: u16, body: &'static str) -> Server {
    serve(move |_, _| async move { text(status, body) }).await
}

pub fn text(status: u16, body: &'static str) -> Response<Body> {
    Response::builder().status(StatusCode::from_u16(status).expect("status")).body(Body::from(body)).expect("response")
}

/// A 200 whose body sends `first`, then waits `stall` (on tokio's clock) before sending `rest`
/// and ending: an upstream slow in the middle of its body.
pub fn stalling(first: &'static str, stall: std::time::Duration, rest: &'static str) -> Response<Body> {
    let body = Stalling {
        first: Some(Bytes::from(first)),
        stall: Box::pin(tokio::time::sleep(stall)),
        rest: Some(Bytes::from(rest)),
    };
    Response::new(Body::new(body))
}

struct Stalling {
    first: Option<Bytes>,
    stall: std::pin::Pin<Box<tokio::time::Sleep>>,
    rest: Option<Bytes>,
}

impl http_body::Body for Stalling {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first))));
        }
        std::task::ready!(self.stall.as_mut().poll(cx));
        std::task::Poll::Ready(self.rest.take().map(|rest| Ok(http_body::Frame::data(rest))))
    }
}

pub fn snapshot(yaml: &str) -> Snapshot {
    let mut store = ConfigStore::default();
    let report = store.apply(load_str(yaml, None, &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    store.snapshot().clone()
}

pub type TestBody = BoxBody<Bytes, Infallible>;
pub type TestClient = Client<HttpConnector, ReplayBody<TestBody>>;
pub type Stack = MeshService<TestClient>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn mesh(yaml: &str, registry: mesh_tower::Registry) -> Mesh {
    Mesh::builder()
        .config(snapshot(yaml))
        .registry(registry)
        .client_identity(ClientIdentity::new("default", [("app", "productpage"), ("version", "v1")]))
        .workload("productpage-v1")
        .build()
}

pub fn stack(mesh: &Mesh) -> Stack {
    mesh.layer().layer(client())
}

pub fn body(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into()).boxed()
}

pub fn get(uri: &str, headers: &[(&str, &str)]) -> Request<TestBody> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body(Bytes::new())).expect("request")
}

/// Send and read the whole response: status, body, response.
pub async fn send(stack: &Stack, req: Request<TestBody>) -> (u16, String, http::response::Parts) {
    let response = stack.clone().oneshot(req).await.expect("the mesh answers every request");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (parts.status.as_u16(), String::from_utf8_lossy(&bytes).into_owned(), parts)
}
