//! Single layers under the route layer, against tower-test mocks.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mesh_config::{ConfigStore, LoadOptions, load_str};
use mesh_core::{ClientIdentity, Snapshot};
use mesh_tower::fault::FaultLayer;
use mesh_tower::replay::ReplayBody;
use mesh_tower::retry::RetryLayer;
use mesh_tower::timeout::TimeoutLayer;
use mesh_tower::{ResponseFlags, RouteLayer};
use tower::{Layer, ServiceExt};

type Body = ReplayBody<Full<Bytes>>;
type Mock = tower_test::mock::Mock<Request<Body>, Response<String>>;
type Handle = tower_test::mock::Handle<Request<Body>, Response<String>>;

fn route(yaml: &str) -> RouteLayer {
    let mut store = ConfigStore::default();
    let report = store.apply(load_str(yaml, None, &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    let snapshot: Snapshot = store.snapshot().clone();
    RouteLayer::new(Arc::new(ArcSwap::from_pointee(snapshot)), ClientIdentity::new("default", []))
}

fn vs(extra: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc}}\nspec:\n  hosts: [svc]\n  http:\n  - route: [{{destination: {{host: svc}}}}]\n{extra}"
    )
}

fn request() -> Request<Body> {
    Request::get("http://svc/").body(ReplayBody::new(Full::new(Bytes::from_static(b"hi")), 1024)).expect("request")
}

fn reply(status: u16) -> Response<String> {
    Response::builder().status(status).body(String::new()).expect("response")
}

#[tokio::test]
async fn retry_sends_the_request_again_with_its_body() {
    let (mock, mut handle): (Mock, Handle) = tower_test::mock::pair();
    let svc =
        route(&vs("    retries: {attempts: 2, retryOn: 5xx, perTryTimeout: 1s}")).layer(RetryLayer::new().layer(mock));
    let call = tokio::spawn(svc.oneshot(request()));
    let (first, send) = handle.next_request().await.expect("first try");
    assert_eq!(first.uri(), "http://svc/");
    send.send_response(reply(503));
    let (second, send) = handle.next_request().await.expect("retry");
    let body = http_body_util::BodyExt::collect(second.into_body()).await.expect("body").to_bytes();
    assert_eq!(body, "hi");
    send.send_response(reply(200));
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}

#[tokio::test]
async fn a_retry_carries_the_method_uri_and_every_header_value_in_order() {
    let (mock, mut handle): (Mock, Handle) = tower_test::mock::pair();
    let svc = route(&vs("    retries: {attempts: 1, retryOn: 5xx}")).layer(RetryLayer::new().layer(mock));
    let req = Request::post("http://svc/items?page=2")
        .header("x-tag", "a")
        .header("x-tag", "b")
        .header("cookie", "one=1")
        .header("x-tag", "c")
        .body(ReplayBody::new(Full::new(Bytes::from_static(b"hi")), 1024))
        .expect("request");
    let call = tokio::spawn(svc.oneshot(req));
    let (first, send) = handle.next_request().await.expect("first try");
    let first_head = (first.method().clone(), first.uri().clone(), first.headers().clone());
    send.send_response(reply(503));
    let (second, send) = handle.next_request().await.expect("retry");
    assert_eq!((second.method(), second.uri()), (&first_head.0, &first_head.1));
    let tags: Vec<_> = second.headers().get_all("x-tag").iter().collect();
    assert_eq!(tags, ["a", "b", "c"]);
    assert_eq!(second.headers(), &first_head.2);
    send.send_response(reply(200));
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}

#[tokio::test(start_paused = true)]
async fn route_timeout_answers_504_when_the_inner_service_is_silent() {
    let (mock, mut handle): (Mock, Handle) = tower_test::mock::pair();
    let svc = route(&vs("    timeout: 2s")).layer(TimeoutLayer::route().layer(mock));
    let call = tokio::spawn(svc.oneshot(request()));
    let (_req, _never_answered) = handle.next_request().await.expect("request");
    let response = call.await.expect("task").expect("response");
    assert_eq!(response.status(), 504);
    assert_eq!(ResponseFlags::of(&response), ResponseFlags::TIMEOUT);
}

#[tokio::test]
async fn fault_abort_never_reaches_the_inner_service() {
    let (mock, mut handle): (Mock, Handle) = tower_test::mock::pair();
    let svc = route(&vs("    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}"))
        .layer(FaultLayer::new().layer(mock));
    let response = svc.oneshot(request()).await.expect("response");
    assert_eq!(response.status(), 503);
    assert_eq!(ResponseFlags::of(&response), ResponseFlags::FAULT_ABORT);
    assert!(handle.next_request().await.is_none(), "no request went through");
}

#[tokio::test]
async fn the_balance_layer_hands_connect_settings_to_the_client() {
    let mut store = ConfigStore::default();
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc}
spec:
  host: svc
  trafficPolicy:
    connectionPool:
      tcp: {connectTimeout: 250ms, tcpKeepalive: {time: 600s, interval: 30s, probes: 4}}
"#;
    let report = store.apply(load_str(yaml, None, &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    let registry = mesh_tower::Registry::new();
    registry.register("svc.default.svc.cluster.local", mesh_tower::Endpoint::new("127.0.0.1:9", []));
    let mesh = mesh_tower::Mesh::builder().config(store.snapshot().clone()).registry(registry).build();
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Full<Bytes>>>();
    let call = tokio::spawn(
        mesh.layer().layer(mock).oneshot(Request::get("http://svc/").body(Full::new(Bytes::new())).expect("request")),
    );
    let (req, respond) = handle.next_request().await.expect("the client is called");
    let connect = req.extensions().get::<mesh_tower::cluster::UpstreamConnect>().copied();
    let keepalive = mesh_core::policy::TcpKeepalive {
        probes: Some(4),
        time: Some(std::time::Duration::from_secs(600)),
        interval: Some(std::time::Duration::from_secs(30)),
    };
    assert_eq!(
        connect,
        Some(mesh_tower::cluster::UpstreamConnect {
            timeout: Some(std::time::Duration::from_millis(250)),
            keepalive: Some(keepalive)
        })
    );
    respond.send_response(Response::new(Full::new(Bytes::new())));
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}
