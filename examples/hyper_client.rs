//! Run with `cargo run --example hyper_client`
//!
//! Wrap a hyper-util `Client` in meshwork with one line, and route with an Istio
//! VirtualService: requests from user `jason` go to reviews v2, everyone else to v1. Both
//! "reviews" versions are tiny axum servers on loopback, registered with their labels.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshwork::config::{ConfigStore, LoadOptions, load_str};
use meshwork::core::ClientIdentity;
use meshwork::tower::{Endpoint, Mesh, Registry};
use tower::{ServiceBuilder, ServiceExt};

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"#;

/// A one-route server answering `text`.
async fn upstream(text: &'static str) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let app = axum::Router::new().fallback(move || async move { text });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<()> {
    // Endpoints: where each version of reviews runs, with its labels.
    let registry = Registry::new();
    let reviews = "reviews.default.svc.cluster.local";
    registry.register(reviews, Endpoint::new(upstream("reviews v1: no stars").await?, [("version", "v1")]));
    registry.register(reviews, Endpoint::new(upstream("reviews v2: black stars").await?, [("version", "v2")]));

    // Config: the same YAML you would `kubectl apply`.
    let mut store = ConfigStore::default();
    let report = store.apply(load_str(CONFIG, None, &LoadOptions::default())?);
    anyhow::ensure!(report.errors().count() == 0, "invalid config: {:?}", report.diagnostics);

    let mesh = Mesh::builder()
        .config(store.snapshot().clone())
        .registry(registry)
        .client_identity(ClientIdentity::new("default", [("app", "productpage")]))
        .build();

    // The one line: any hyper-util client, wrapped.
    let client = ServiceBuilder::new().layer(mesh.layer()).service(Client::builder(TokioExecutor::new()).build_http());

    for user in ["jason", "alice"] {
        let req =
            http::Request::get("http://reviews:9080/reviews/0").header("end-user", user).body(Empty::<Bytes>::new())?;
        let response = client.clone().oneshot(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("{user:>6} -> {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
