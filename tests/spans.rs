//! The spans a request leaves, in a binary of its own: `tracing` caches whether a callsite is of
//! interest, and a test that installs a subscriber races with tests on other threads that have
//! none.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use meshwork::tower::{BoxError, Endpoint};
use meshwork::{ConfigSource, MeshClient, client};
use tower::ServiceExt;

const ROUTES: &str = r#"
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
    retries: {attempts: 2, retryOn: 5xx}
"#;

async fn body_of(client: MeshClient<Empty<Bytes>>, uri: &str, user: &str) -> Result<String, BoxError> {
    let request = http::Request::get(uri).header("end-user", user).body(Empty::new())?;
    let response = client.oneshot(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A tracing layer that keeps every span's name, target and recorded fields.
#[derive(Clone, Default)]
struct Spans(std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> tracing_subscriber::Layer<S>
    for Spans
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = String::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().expect("lock");
        spans.push((format!("{id:?}"), format!("{} {}", attrs.metadata().target(), attrs.metadata().name()), fields));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut spans = self.0.lock().expect("lock");
        if let Some(span) = spans.iter_mut().find(|s| s.0 == format!("{id:?}")) {
            values.record(&mut Fields(&mut span.2));
        }
    }
}

#[tokio::test]
async fn the_request_span_says_which_route_subset_and_retries() {
    use tracing_subscriber::layer::SubscriberExt;
    let spans = Spans::default();
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    let dir = std::env::temp_dir().join(format!("meshwork-spans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("reviews.yaml"), ROUTES).expect("write");
    let source = ConfigSource::new(vec![dir.clone()], "default").expect("loads");
    // The endpoint fails twice, then answers: alice's rule (http[1]) retries 5xx twice.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let counter = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { if n < 2 { (http::StatusCode::SERVICE_UNAVAILABLE, "busy") } else { (http::StatusCode::OK, "v1") } }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    source.mesh().registry().register("reviews", Endpoint::new(address, [("version", "v1")]));
    let reviews: MeshClient<Empty<Bytes>> = client(source.mesh());
    assert_eq!(body_of(reviews, "http://reviews:9080/", "alice").await.expect("answered"), "v1");
    let spans = spans.0.lock().expect("lock").clone();
    let request = spans.iter().find(|s| s.1 == "meshwork::request meshwork.request").expect("a request span");
    for field in [
        "route=default/reviews http[1]",
        "destination=\"reviews.default.svc.cluster.local\"",
        "subset=\"v1\"",
        "retries=2",
    ] {
        assert!(request.2.contains(field), "{field} not in {}", request.2);
    }
    assert!(spans.iter().filter(|s| s.1 == "meshwork::balance meshwork.attempt").count() >= 3, "{spans:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
