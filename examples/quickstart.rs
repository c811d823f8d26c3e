//! From a config directory to routed, retried, measured, hot-reloading calls.
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use meshwork::tower::{BoxError, Endpoint};
use meshwork::{ConfigSource, MeshClient, client, proxy::admin};
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let prometheus = admin::install_prometheus_recorder()?; // Istio's metrics, Istio's buckets
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart");
    let source = ConfigSource::new(vec![dir.into()], "default")?; // errors name file and line
    tokio::spawn(source.clone().watch(Duration::from_secs(1))); // edit the YAML: applied live
    for version in ["v1", "v2"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = Endpoint::new(listener.local_addr()?.to_string(), [("app", "reviews"), ("version", version)]);
        source.mesh().registry().register("reviews", endpoint); // = reviews.default.svc.cluster.local
        let app = axum::Router::new().fallback(move || async move { format!("reviews {version}") });
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let reviews: MeshClient<Empty<bytes::Bytes>> = client(source.mesh());
    for user in ["jason", "alice", "bob", "carol", "dave"] {
        let request = http::Request::get("http://reviews:9080/").header("end-user", user).body(Empty::new())?;
        let response = reviews.clone().oneshot(request).await?;
        let body = response.into_body().collect().await?.to_bytes();
        println!("{user:>5} -> {}", String::from_utf8_lossy(&body));
    }
    prometheus.run_upkeep();
    let served = prometheus.render().lines().filter(|l| l.starts_with("istio_requests_total")).count();
    println!("istio_requests_total series: {served}; rejected config: {:?}", source.status().rejections);
    Ok(())
}
