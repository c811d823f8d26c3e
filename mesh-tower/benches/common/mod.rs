//! S1 setup shared by the timing and the allocation benches: an in-process hyper server with 1 KB
//! responses, a bare hyper-util client, and the same client under the whole mesh stack with a
//! 100-rule VirtualService (the last rule matches) and a metrics recorder installed.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_config::{ConfigStore, LoadOptions, load_str};
use mesh_core::ClientIdentity;
use mesh_tower::{Endpoint, Mesh, MeshService, Registry, ReplayBody};
use tower::{Layer, ServiceExt};

pub type Bare = Client<HttpConnector, Empty<Bytes>>;
pub type Meshed = MeshService<Client<HttpConnector, ReplayBody<Empty<Bytes>>>>;

/// Serve 1 KB bodies on 127.0.0.1:0.
pub async fn server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = Bytes::from(vec![b'x'; 1024]);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

/// A VirtualService with `rules` rules; only the last matches the bench's requests.
pub fn config(rules: usize) -> String {
    let mut http = String::new();
    for i in 0..rules.saturating_sub(1) {
        http.push_str(&format!("  - match: [{{headers: {{x-tenant: {{exact: t{i}}}}}, uri: {{prefix: /t{i}/}}}}]\n    route: [{{destination: {{host: backend, subset: v2}}}}]\n"));
    }
    http.push_str("  - route: [{destination: {host: backend, subset: v1}}]\n");
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: backend}}
spec:
  host: backend
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: backend}}
spec:
  hosts: [backend]
  http:
{http}"#
    )
}

pub fn bare() -> Bare {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn meshed(addr: SocketAddr) -> Meshed {
    let mut store = ConfigStore::default();
    store.apply(load_str(&config(100), None, &LoadOptions::default()).expect("yaml"));
    let registry = Registry::new();
    registry.register("backend.default.svc.cluster.local", Endpoint::new(addr.to_string(), [("version", "v1")]));
    let mesh = Mesh::builder()
        .config(store.snapshot().clone())
        .registry(registry)
        .client_identity(ClientIdentity::new("default", [("app", "bench")]))
        .build();
    mesh.layer().layer(Client::builder(TokioExecutor::new()).build_http())
}

/// The URL the bare client asks for (the server's address: no name to resolve).
pub fn bare_url(addr: SocketAddr) -> String {
    format!("http://{addr}/api/items")
}

/// One request with the bare client. Built as `meshed_request` builds its own (a `Request` from a
/// `&str` URL), so that neither side pays for work the other does not.
pub async fn bare_request(client: &Bare, url: &str) {
    let req = Request::get(url).body(Empty::new()).expect("request");
    let response = client.request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.expect("body");
}

pub async fn meshed_request(stack: &Meshed) {
    let req = Request::get("http://backend:8080/api/items").body(Empty::new()).expect("request");
    let response = stack.clone().oneshot(req).await.expect("response");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.expect("body");
}
