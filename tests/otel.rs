//! The `otel` feature (`cargo test --features otel --test otel`): the request span joins the
//! caller's trace and is the parent the upstream sees, exported through a real OpenTelemetry
//! SDK (its in-memory exporter).
#![cfg(feature = "otel")]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use meshwork::tower::Endpoint;
use meshwork::{ConfigSource, MeshClient, client};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

const ROUTES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 1, retryOn: 5xx}
"#;

#[tokio::test]
async fn the_request_span_joins_the_callers_trace_and_parents_the_upstream() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("meshwork-test"));
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |headers: http::HeaderMap| {
        let recorded = recorded.clone();
        async move {
            let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            recorded.lock().expect("lock").push(traceparent);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("meshwork-otel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("reviews.yaml"), ROUTES).expect("write");
    let source = ConfigSource::new(vec![dir.clone()], "default").expect("loads");
    source.mesh().registry().register("reviews", Endpoint::new(address, [("version", "v1")]));
    let reviews: MeshClient<Empty<Bytes>> = client(source.mesh());

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let request = http::Request::get("http://reviews:9080/")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .body(Empty::new())
        .expect("request");
    let response = reviews.oneshot(request).await.expect("answered");
    assert_eq!(response.into_body().collect().await.expect("body").to_bytes(), "ok");
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().expect("spans");
    let span = spans.iter().find(|s| s.name == "meshwork.request").expect("the request span was exported");
    assert_eq!(format!("{}", span.span_context.trace_id()), caller_trace, "the caller's trace");
    assert_eq!(format!("{}", span.parent_span_id), caller_span, "the caller's span is the parent");
    let attributes: Vec<String> = span.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    assert!(attributes.iter().any(|a| a == "destination=reviews.default.svc.cluster.local"), "{attributes:?}");
    let upstream = seen.lock().expect("lock").first().cloned().expect("the upstream was called");
    assert_eq!(
        upstream,
        format!("00-{caller_trace}-{}-01", span.span_context.span_id()),
        "the upstream's parent is the request span"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
