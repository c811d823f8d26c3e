//! Run with `cargo run --example axum_handler`
//!
//! A service written with axum calls another service from inside its handler, through meshwork:
//! the `frontend` handler calls `ratings`, and a VirtualService injects Istio's faults — a 2 s
//! delay for half the calls and an HTTP 503 for a tenth — next to a 1 s route timeout. The handler
//! sees what it would see behind an Envoy sidecar: the injected 503s, and delayed calls that still
//! succeed, because Envoy's fault filter holds the request *before* the router starts the route's
//! timeout (meshwork's fault layer sits above its timeout layer for the same reason).

use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshwork::config::{ConfigStore, LoadOptions, load_str};
use meshwork::tower::{Endpoint, Mesh, MeshService, Registry, ReplayBody};
use tower::{Layer, ServiceExt};

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
    timeout: 1s
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 50}}
      abort: {httpStatus: 503, percentage: {value: 10}}
"#;

/// The client the handlers share: a hyper-util client inside the mesh.
type Ratings = MeshService<Client<HttpConnector, ReplayBody<Empty<Bytes>>>>;

async fn frontend(State(ratings): State<Ratings>) -> (http::StatusCode, String) {
    let req = http::Request::get("http://ratings:9080/ratings/0").body(Empty::new()).expect("static request");
    match ratings.oneshot(req).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            (http::StatusCode::OK, format!("ratings said {status}: {}", String::from_utf8_lossy(&body)))
        }
        Err(e) => (http::StatusCode::BAD_GATEWAY, format!("ratings unreachable: {e}")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let ratings_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ratings_addr = ratings_listener.local_addr()?.to_string();
    tokio::spawn(async move {
        axum::serve(ratings_listener, axum::Router::new().fallback(|| async { r#"{"stars": 5}"# })).await
    });

    let registry = Registry::new();
    registry.register("ratings.default.svc.cluster.local", Endpoint::new(ratings_addr, [("version", "v1")]));
    let mut store = ConfigStore::default();
    store.apply(load_str(CONFIG, None, &LoadOptions::default())?);
    let mesh = Mesh::builder().config(store.snapshot().clone()).registry(registry).workload("frontend").build();
    let ratings: Ratings = mesh.layer().layer(Client::builder(TokioExecutor::new()).build_http());

    let app = axum::Router::new().route("/", axum::routing::get(frontend)).with_state(ratings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let frontend_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Call the frontend ten times, as a browser would.
    let browser: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    for i in 0..10 {
        let started = tokio::time::Instant::now();
        let response = browser.get(format!("http://{frontend_addr}/").parse()?).await?;
        let body = response.into_body().collect().await?.to_bytes();
        let took = started.elapsed();
        println!("call {i}: {:>5} ms  {}", took.as_millis(), String::from_utf8_lossy(&body));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
