//! What a Rust service author does in the first hour, as they would do it: a config directory,
//! endpoints registered by short name, the ready client used by name in a helper, a Prometheus
//! scrape a dashboard can read, a reload, and the errors a typo or a wrong path give.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use meshwork::tower::{BoxError, Endpoint};
use meshwork::{ConfigSource, MeshClient, client, proxy::admin};
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

fn config_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-first-hour-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for (file, contents) in files {
        std::fs::write(dir.join(file), contents).expect("write");
    }
    dir
}

/// Replace a file as editors and ConfigMaps do (a complete new file renamed over it).
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A helper that takes the mesh's client by its name.
async fn body_of(client: MeshClient<Empty<Bytes>>, uri: &str, user: &str) -> Result<String, BoxError> {
    let request = http::Request::get(uri).header("end-user", user).body(Empty::new())?;
    let response = client.oneshot(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn upstream(name: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let app = axum::Router::new().fallback(move || async move { name });
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn a_config_directory_becomes_a_routed_measured_reloading_client() {
    let recorder = admin::prometheus_builder().expect("buckets").build_recorder();
    let prometheus = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);

    let dir = config_dir("routes", &[("reviews.yaml", ROUTES)]);
    let source = ConfigSource::new(vec![dir.clone()], "default").expect("the directory loads");
    for version in ["v1", "v2"] {
        let address = upstream(if version == "v1" { "reviews v1" } else { "reviews v2" }).await;
        let endpoint = Endpoint::new(address, [("app", "reviews"), ("version", version)])
            .with_workload(format!("reviews-{version}"));
        source.mesh().registry().register("reviews", endpoint);
    }
    let reviews: MeshClient<Empty<Bytes>> = client(source.mesh());
    let uri = "http://reviews:9080/reviews/0";
    assert_eq!(body_of(reviews.clone(), uri, "jason").await.expect("jason"), "reviews v2");
    assert_eq!(body_of(reviews.clone(), uri, "alice").await.expect("alice"), "reviews v1");

    // A dashboard's query: Istio's histogram buckets and the destination labels Istio derives
    // from the endpoint's labels (app, version, workload), not `unknown`.
    prometheus.run_upkeep();
    let text = prometheus.render();
    let bucket = text
        .lines()
        .find(|l| {
            l.starts_with("istio_request_duration_milliseconds_bucket") && l.contains("destination_version=\"v2\"")
        })
        .unwrap_or_else(|| panic!("no duration buckets for v2 in:\n{text}"));
    for label in [
        "destination_app=\"reviews\"",
        "destination_workload=\"reviews-v2\"",
        "destination_canonical_service=\"reviews\"",
        "destination_service=\"reviews.default.svc.cluster.local\"",
        "destination_service_name=\"reviews\"",
        "response_code=\"200\"",
        "le=\"",
    ] {
        assert!(bucket.contains(label), "{label} missing from {bucket}");
    }

    // An edit applies on reload; a broken edit keeps the last good routes and says where.
    replace(&dir.join("reviews.yaml"), &ROUTES.replace("subset: v1}}]\n    retries", "subset: v2}}]\n    retries"));
    source.reload();
    assert_eq!(body_of(reviews.clone(), uri, "alice").await.expect("alice"), "reviews v2");
    replace(&dir.join("reviews.yaml"), &ROUTES.replace("attempts: 2", "attempts: -1"));
    let status = source.reload();
    assert!(
        status.rejections.iter().any(|r| r.contains("reviews.yaml:") && r.contains("retries.attempts")),
        "{:?}",
        status.rejections
    );
    assert_eq!(body_of(reviews, uri, "alice").await.expect("alice"), "reviews v2", "the last good version serves");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_wrong_path_or_a_file_that_is_not_yaml_cannot_go_unnoticed() {
    let missing = std::env::temp_dir().join("meshwork-first-hour-no-such-dir/istio");
    let error = ConfigSource::new(vec![missing.clone()], "default").expect_err("a missing directory is an error");
    assert!(error.to_string().contains(&*missing.to_string_lossy()), "{error}");

    let dir = config_dir("not-yaml", &[("reviews.yaml", ROUTES), ("notes.yaml", "this: [is not\n")]);
    let source = ConfigSource::new(vec![dir.clone()], "default").expect("the directory loads");
    let rejections = source.status().rejections;
    assert!(rejections.iter().any(|r| r.contains("notes.yaml")), "{rejections:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
