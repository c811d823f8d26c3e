//! The route layer in front of a mock client: decisions, local answers, rewrites, header edits
//! and snapshot swaps.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use mesh_config::{ConfigStore, LoadOptions, load_str};
use mesh_core::{ClientIdentity, Snapshot};
use mesh_tower::{ResponseFlags, RouteContext, RouteLayer, SharedSnapshot};
use tower::{Layer, Service, ServiceExt};

fn snapshot(yaml: &str) -> Snapshot {
    let mut store = ConfigStore::default();
    let report = store.apply(load_str(yaml, None, &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    store.snapshot().clone()
}

const REVIEWS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route:
    - destination: {host: reviews, subset: v2}
      headers:
        request: {set: {x-destination: v2}}
  - match: [{uri: {prefix: /old/}}]
    redirect: {uri: /new}
  - match: [{uri: {prefix: /api/v1/}}]
    rewrite: {uri: /v1/}
    headers:
      request: {add: {x-rewritten: "yes"}}
      response: {set: {x-served-by: meshwork}}
    route:
    - destination: {host: reviews, subset: v1}
  - match: [{uri: {prefix: /}}]
    route:
    - destination: {host: reviews, subset: v3}
"#;

type Mock = tower_test::mock::Mock<Request<String>, Response<String>>;
type Handle = tower_test::mock::Handle<Request<String>, Response<String>>;

fn stack(config: SharedSnapshot) -> (mesh_tower::route::Route<Mock>, Handle) {
    let (mock, handle) = tower_test::mock::pair::<Request<String>, Response<String>>();
    (RouteLayer::new(config, ClientIdentity::new("default", [])).layer(mock), handle)
}

fn get(uri: &str, headers: &[(&str, &str)]) -> Request<String> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(String::new()).expect("request")
}

/// Send one request; return what the upstream saw (if it was called) and the response.
async fn send(
    svc: &mut mesh_tower::route::Route<Mock>,
    handle: &mut Handle,
    req: Request<String>,
) -> (Option<Request<String>>, http::response::Parts, String) {
    let fut = svc.ready().await.expect("ready").call(req);
    tokio::pin!(fut);
    let seen = tokio::select! {
        biased;
        res = &mut fut => {
            let (parts, body) = res.expect("response").into_parts();
            let body = String::from_utf8(body.collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
            return (None, parts, body);
        }
        next = handle.next_request() => next,
    };
    let (req, respond) = seen.expect("upstream called");
    respond.send_response(Response::new("upstream".to_string()));
    let (parts, body) = fut.await.expect("response").into_parts();
    let body = String::from_utf8(body.collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
    (Some(req), parts, body)
}

fn subset(req: &Request<String>) -> String {
    let ctx = req.extensions().get::<RouteContext>().expect("route context");
    ctx.destination.subset.as_deref().unwrap_or("-").to_string()
}

#[tokio::test]
async fn header_routing_and_destination_headers() {
    let (mut svc, mut handle) = stack(Arc::new(ArcSwap::from_pointee(snapshot(REVIEWS))));
    let (seen, parts, _) = send(&mut svc, &mut handle, get("http://reviews:9080/r/1", &[("end-user", "jason")])).await;
    let seen = seen.expect("forwarded");
    assert_eq!(subset(&seen), "v2");
    assert_eq!(seen.headers()["x-destination"], "v2");
    assert_eq!(parts.status, StatusCode::OK);
    let (seen, _, _) = send(&mut svc, &mut handle, get("http://reviews:9080/r/1", &[])).await;
    assert_eq!(subset(&seen.expect("forwarded")), "v3");
}

#[tokio::test]
async fn redirects_and_no_route_are_answered_locally() {
    let (mut svc, mut handle) = stack(Arc::new(ArcSwap::from_pointee(snapshot(REVIEWS))));
    let (seen, parts, _) = send(&mut svc, &mut handle, get("http://reviews:9080/old/page?x=1", &[])).await;
    assert!(seen.is_none(), "the upstream is not called for a redirect");
    assert_eq!(parts.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(parts.headers["location"], "http://reviews:9080/new?x=1");

    let only_api = REVIEWS
        .replace("  - match: [{uri: {prefix: /}}]\n    route:\n    - destination: {host: reviews, subset: v3}\n", "");
    let (mut svc, mut handle) = stack(Arc::new(ArcSwap::from_pointee(snapshot(&only_api))));
    let (seen, parts, _) = send(&mut svc, &mut handle, get("http://reviews/other", &[])).await;
    assert!(seen.is_none());
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    assert_eq!(parts.extensions.get::<ResponseFlags>(), Some(&ResponseFlags::NO_ROUTE));
}

#[tokio::test]
async fn rewrites_and_rule_header_edits() {
    let (mut svc, mut handle) = stack(Arc::new(ArcSwap::from_pointee(snapshot(REVIEWS))));
    let (seen, parts, body) = send(&mut svc, &mut handle, get("http://reviews/api/v1/items?page=2", &[])).await;
    let seen = seen.expect("forwarded");
    assert_eq!(seen.uri().path_and_query().map(|p| p.as_str()), Some("/v1/items?page=2"));
    assert_eq!(seen.headers()["x-rewritten"], "yes");
    assert_eq!(parts.headers["x-served-by"], "meshwork");
    assert_eq!(body, "upstream");
}

#[tokio::test]
async fn hosts_without_virtual_service_go_to_themselves_and_swaps_apply_to_the_next_request() {
    let config: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
    // `reviews` has endpoints registered in code: the mesh knows it, and routes it by default.
    let registry = mesh_tower::Registry::new();
    registry.register("reviews", mesh_tower::Endpoint::new("127.0.0.1:9080", [("version", "v1")]));
    let (mock, mut handle) = tower_test::mock::pair::<Request<String>, Response<String>>();
    let mut svc =
        RouteLayer::new(config.clone(), ClientIdentity::new("default", [])).with_registry(registry).layer(mock);
    let (seen, _, _) = send(&mut svc, &mut handle, get("http://reviews:9080/", &[])).await;
    let seen = seen.expect("forwarded");
    let ctx = seen.extensions().get::<RouteContext>().expect("context");
    assert_eq!(&*ctx.destination.host, "reviews.default.svc.cluster.local");
    assert!(ctx.rule.is_none() && !ctx.passthrough);
    assert_eq!(ctx.retries().attempts, 2, "Istio's default retry policy");
    // A host nothing declares is passed through, with no retries (Istio's `allow_any` route).
    let (seen, _, _) = send(&mut svc, &mut handle, get("http://ratings:9080/", &[])).await;
    let seen = seen.expect("forwarded");
    let ctx = seen.extensions().get::<RouteContext>().expect("context");
    assert!(ctx.passthrough);
    assert_eq!(ctx.retries().attempts, 0, "no retries for a passthrough");

    config.store(Arc::new(snapshot(REVIEWS)));
    let (seen, _, _) = send(&mut svc, &mut handle, get("http://reviews:9080/", &[])).await;
    assert_eq!(subset(&seen.expect("forwarded")), "v3");
}
