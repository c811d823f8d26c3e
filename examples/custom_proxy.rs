//! Run with `cargo run --example custom_proxy`
//!
//! Your own proxy: an axum server that forwards every request it receives through the meshwork
//! stack, which routes it with Istio's VirtualServices — here a canary that sends 20 % of
//! `/api` traffic to v2 and everything under `/legacy` to a redirect. The proxy is the
//! "ingress gateway" of two upstream versions on loopback.

use anyhow::Result;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshwork::config::{ConfigStore, LoadOptions, load_str};
use meshwork::tower::{Endpoint, Mesh, MeshService, Registry, ReplayBody};
use tower::{Layer, ServiceExt};

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.com
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http:
  - match: [{uri: {prefix: /legacy}}]
    redirect: {uri: /api, redirectCode: 308}
  - match: [{uri: {prefix: /api}}]
    route:
    - {destination: {host: api.example.com, subset: v1}, weight: 80}
    - {destination: {host: api.example.com, subset: v2}, weight: 20}
"#;

type Upstream = MeshService<Client<HttpConnector, ReplayBody<Body>>>;

/// Forward one request through the mesh; the mesh's own answers (404, 503, redirects) pass back.
async fn forward(State(mesh): State<Upstream>, req: Request) -> Response {
    match mesh.oneshot(req).await {
        Ok(response) => response.map(Body::new).into_response(),
        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn upstream(text: &'static str) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(move || async move { text })).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<()> {
    let registry = Registry::new();
    registry.register("api.example.com", Endpoint::new(upstream("api v1").await?, [("version", "v1")]));
    registry.register("api.example.com", Endpoint::new(upstream("api v2 (canary)").await?, [("version", "v2")]));
    let mut store = ConfigStore::default();
    store.apply(load_str(CONFIG, None, &LoadOptions::default())?);
    let mesh = Mesh::builder().config(store.snapshot().clone()).registry(registry).workload("edge-proxy").build();
    let stack: Upstream = mesh.layer().layer(Client::builder(TokioExecutor::new()).build_http());

    let proxy = axum::Router::new().fallback(forward).with_state(stack);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let proxy_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, proxy).await });
    println!("proxy listening on {proxy_addr}");

    // Clients talk to the proxy with the public host name.
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let mut canary = 0;
    for _ in 0..50 {
        let req = http::Request::get(format!("http://{proxy_addr}/api/orders"))
            .header("host", "api.example.com")
            .body(Body::empty())?;
        let body = client.request(req).await?.into_body().collect().await?.to_bytes();
        canary += usize::from(body.starts_with(b"api v2"));
    }
    println!("/api/orders x50: {canary} went to the v2 canary (configured 20 %)");
    let req = http::Request::get(format!("http://{proxy_addr}/legacy/orders"))
        .header("host", "api.example.com")
        .body(Body::empty())?;
    let response = client.request(req).await?;
    println!("/legacy/orders -> {} Location: {:?}", response.status(), response.headers().get("location"));
    let req = http::Request::get(format!("http://{proxy_addr}/other"))
        .header("host", "api.example.com")
        .body(Body::empty())?;
    println!("/other -> {} (no rule matches: Istio's 404)", client.request(req).await?.status());
    Ok(())
}
