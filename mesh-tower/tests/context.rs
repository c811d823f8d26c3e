//! Each layer of the stack tested alone, with its context built in code (no YAML): a
//! `RouteContext` from `HttpRule::forward` and `Destination::new`, snapshots from
//! `SnapshotBuilder`, endpoints from `Registry::register`, and `tower_test` mocks below.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mesh_core::policy::{ConnectionPool, DestinationPolicy, PolicyParts, TrafficPolicy};
use mesh_core::retry::TryOutcome;
use mesh_core::route::{AbortStatus, Destination, Fault, HttpRule, Mirror, Percentage, RetryOn};
use mesh_core::snapshot::Settings;
use mesh_core::{Binding, ClientIdentity, Snapshot, SnapshotBuilder};
use mesh_tower::cluster::Clusters;
use mesh_tower::context::{FailedTry, Mirrored, RouteContext, Tried};
use mesh_tower::replay::ReplayBody;
use mesh_tower::{Endpoint, MeshBody, Registry, ResponseFlags};
use tower::{Layer, ServiceExt};

const REVIEWS: &str = "reviews.default.svc.cluster.local";

type Body = ReplayBody<Full<Bytes>>;

fn request_with(ctx: RouteContext) -> Request<Body> {
    let mut req = Request::get(format!("http://{REVIEWS}/r"))
        .body(ReplayBody::new(Full::new(Bytes::from_static(b"hi")), 1024))
        .expect("request");
    req.extensions_mut().insert(ctx);
    req
}

/// A context for `rule`, decided with an empty snapshot.
fn context(rule: HttpRule) -> RouteContext {
    let destination = Destination::new(REVIEWS);
    RouteContext::new(Snapshot::empty(), Some(Arc::new(rule)), destination, 0)
}

fn forward() -> HttpRule {
    HttpRule::forward(Destination::new(REVIEWS))
}

fn reply(status: u16) -> Response<String> {
    Response::builder().status(status).body(String::new()).expect("response")
}

#[tokio::test]
async fn route_puts_its_decision_in_a_route_context() {
    let mut rule = HttpRule::forward(Destination::new(REVIEWS).subset("v2"));
    Arc::make_mut(&mut rule.retries).attempts = 5;
    let mut builder = SnapshotBuilder::new(Settings::default());
    builder.add_routes(Binding::Mesh, REVIEWS, "default/reviews", vec![Arc::new(rule)]).expect("no conflict");
    let shared = Arc::new(arc_swap::ArcSwap::from_pointee(builder.build()));
    let layer = mesh_tower::RouteLayer::new(shared, ClientIdentity::new("default", []));
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let call = tokio::spawn(layer.layer(mock).oneshot(request_with(context(forward()))));
    let (req, respond) = handle.next_request().await.expect("forwarded");
    let ctx = req.extensions().get::<RouteContext>().expect("a route context");
    assert_eq!(ctx.destination, Destination::new(REVIEWS).subset("v2"), "the route's own decision replaces any other");
    assert_eq!(ctx.retries().attempts, 5);
    respond.send_response(reply(200));
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}

#[tokio::test]
async fn fault_aborts_as_its_context_says() {
    let mut rule = forward();
    rule.fault = Some(Box::new(Fault { delay: None, abort: Some((AbortStatus::Http(418), Percentage::ALL)) }));
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let svc = mesh_tower::fault::FaultLayer::new().layer(mock);
    let response = svc.oneshot(request_with(context(rule))).await.expect("response");
    assert_eq!(response.status(), 418);
    assert_eq!(ResponseFlags::of(&response), ResponseFlags::FAULT_ABORT);
    assert!(handle.next_request().await.is_none(), "the inner service is never called");
}

#[tokio::test(start_paused = true)]
async fn the_route_timeout_comes_from_the_context() {
    let mut rule = forward();
    rule.timeout = Some(Duration::from_secs(2));
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let svc = mesh_tower::timeout::TimeoutLayer::route().layer(mock);
    let call = tokio::spawn(svc.oneshot(request_with(context(rule))));
    let (_req, _silent) = handle.next_request().await.expect("called");
    let response = call.await.expect("task").expect("response");
    assert_eq!(response.status(), 504);
    assert_eq!(ResponseFlags::of(&response), ResponseFlags::TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn the_per_try_timeout_is_a_failed_try() {
    let mut rule = forward();
    Arc::make_mut(&mut rule.retries).per_try_timeout = Some(Duration::from_millis(100));
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let svc = mesh_tower::timeout::TimeoutLayer::per_try().layer(mock);
    let call = tokio::spawn(svc.oneshot(request_with(context(rule))));
    let (_req, _silent) = handle.next_request().await.expect("called");
    let response = call.await.expect("task").expect("response");
    assert_eq!(response.status(), 504);
    assert_eq!(response.extensions().get::<FailedTry>(), Some(&FailedTry(TryOutcome::PerTryTimeout)));
}

#[tokio::test(start_paused = true)]
async fn retry_follows_the_contexts_policy_and_carries_it_to_every_try() {
    let mut rule = forward();
    Arc::make_mut(&mut rule.retries).attempts = 1;
    Arc::make_mut(&mut rule.retries).retry_on = RetryOn::parse("5xx").expect("retryOn");
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let svc = mesh_tower::retry::RetryLayer::new().layer(mock);
    let call = tokio::spawn(svc.oneshot(request_with(context(rule))));
    let (_first, respond) = handle.next_request().await.expect("first try");
    respond.send_response(reply(503));
    let (second, respond) = handle.next_request().await.expect("a retry");
    assert!(second.extensions().get::<RouteContext>().is_some(), "the retry carries the decision");
    assert_eq!(second.extensions().get::<Tried>(), Some(&Tried(Vec::new())), "no endpoint recorded by a String body");
    respond.send_response(reply(200));
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}

#[tokio::test]
async fn mirror_copies_to_the_contexts_mirror() {
    let mut rule = forward();
    rule.mirrors = Box::new([Mirror {
        destination: Destination::new("shadow.default.svc.cluster.local"),
        percentage: Percentage::ALL,
    }]);
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let svc = mesh_tower::mirror::MirrorLayer::new().layer(mock);
    let call = tokio::spawn(svc.oneshot(request_with(context(rule))));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (req, respond) = handle.next_request().await.expect("a request");
        respond.send_response(reply(200));
        let ctx = req.extensions().get::<RouteContext>().expect("context");
        seen.push((req.extensions().get::<Mirrored>().is_some(), ctx.destination.host.to_string()));
    }
    seen.sort();
    assert_eq!(
        seen,
        [(false, REVIEWS.to_string()), (true, "shadow.default.svc.cluster.local".to_string())],
        "the original, and a copy marked and bound for the mirror"
    );
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}

/// A snapshot with a DestinationRule for reviews: at most one request running and none waiting.
fn snapshot_with_one_connection() -> Snapshot {
    let pool = ConnectionPool { max_connections: Some(1), http1_max_pending_requests: Some(1), ..Default::default() };
    let mut builder = SnapshotBuilder::new(Settings::default());
    builder.add_destination_rule(DestinationPolicy {
        namespace: Arc::from("default"),
        name: Arc::from("reviews"),
        host: Arc::from(REVIEWS),
        traffic_policy: TrafficPolicy {
            parts: PolicyParts { connection_pool: Some(pool), ..Default::default() },
            ..Default::default()
        },
        subsets: Box::new([]),
        workload_selector: None,
    });
    builder.build()
}

#[tokio::test]
async fn pool_and_balance_use_the_cluster_in_the_context_and_say_it_answered() {
    let registry = Registry::new();
    registry.register(REVIEWS, Endpoint::new("127.0.0.1:9", []));
    let client = ClientIdentity::new("default", []);
    let clusters = Clusters::new(registry, &client);
    let snapshot = snapshot_with_one_connection();
    let cluster = clusters.get(&snapshot, &Destination::new(REVIEWS));
    let ctx = RouteContext::new(snapshot, Some(Arc::new(forward())), Destination::new(REVIEWS), 0)
        .with_cluster(cluster.clone());
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let stack = mesh_tower::pool::PoolLayer::new(clusters.clone())
        .layer(mesh_tower::balance::BalanceLayer::new(clusters).layer(mock));

    let first = tokio::spawn(stack.clone().oneshot(request_with(ctx.clone())));
    let (req, respond) = handle.next_request().await.expect("the endpoint is called");
    assert_eq!(req.uri().authority().map(|a| a.as_str()), Some("127.0.0.1:9"), "sent to the endpoint");
    assert_eq!(req.headers()["host"], REVIEWS, "the Host header keeps the service's name");
    let second = tokio::spawn(stack.clone().oneshot(request_with(ctx.clone())));
    tokio::task::yield_now().await;
    // One running, one waiting: the third overflows, answered by the pool for this cluster.
    let third = stack.clone().oneshot(request_with(ctx)).await.expect("response");
    assert_eq!(
        (third.status(), ResponseFlags::of(&third)),
        (http::StatusCode::SERVICE_UNAVAILABLE, ResponseFlags::OVERFLOW)
    );
    let answered = third.body().endpoint().expect("the refusal names its cluster");
    assert!(answered.cluster.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cluster)));
    assert_eq!(answered.address, None, "no endpoint was picked");

    respond.send_response(reply(200));
    let response = first.await.expect("task").expect("response");
    let answered = response.body().endpoint().expect("the endpoint is recorded in the body");
    assert_eq!(answered.address.as_deref(), Some("127.0.0.1:9"));
    assert!(answered.cluster.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cluster)), "the context's cluster");
    let (_req, respond) = handle.next_request().await.expect("the waiting request goes on");
    respond.send_response(reply(200));
    assert_eq!(second.await.expect("task").expect("response").status(), 200);
}

#[tokio::test]
async fn balance_answers_no_healthy_upstream_for_a_cluster_without_endpoints() {
    let registry = Registry::new();
    registry.register("other.default.svc.cluster.local", Endpoint::new("127.0.0.1:9", []));
    let clusters = Clusters::new(registry, &ClientIdentity::new("default", []));
    let cluster = clusters.get(&Snapshot::empty(), &Destination::new(REVIEWS).subset("v9"));
    let ctx = context(forward()).with_cluster(cluster.clone());
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let svc = mesh_tower::balance::BalanceLayer::new(clusters).layer(mock);
    let response: Response<MeshBody<String>> = svc.oneshot(request_with(ctx)).await.expect("response");
    assert_eq!(
        (response.status(), ResponseFlags::of(&response)),
        (http::StatusCode::SERVICE_UNAVAILABLE, ResponseFlags::NO_HEALTHY_UPSTREAM)
    );
    let answered = response.body().endpoint().expect("the cluster is recorded in the body");
    assert!(answered.cluster.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cluster)));
    assert!(handle.next_request().await.is_none(), "nothing is sent");
}

#[tokio::test(start_paused = true)]
async fn a_request_resolves_its_cluster_once_and_its_retries_keep_it() {
    let registry = Registry::new();
    registry.register(REVIEWS, Endpoint::new("127.0.0.1:9", []));
    let clusters = Clusters::new(registry.clone(), &ClientIdentity::new("default", []));
    let mut rule = forward();
    Arc::make_mut(&mut rule.retries).attempts = 1;
    Arc::make_mut(&mut rule.retries).retry_on = RetryOn::parse("5xx").expect("retryOn");
    let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<String>>();
    let stack = mesh_tower::retry::RetryLayer::new()
        .layer(mesh_tower::balance::BalanceLayer::new(clusters.clone()).layer(mock));
    let call = tokio::spawn(stack.oneshot(request_with(context(rule))));
    let (first, respond) = handle.next_request().await.expect("first try");
    let resolved = first.extensions().get::<RouteContext>().and_then(|c| c.cluster().cloned()).expect("resolved");
    // The registry changes between the tries: a new request would get a rebuilt cluster...
    registry.register(REVIEWS, Endpoint::new("127.0.0.2:9", []));
    assert!(!Arc::ptr_eq(&clusters.get(&Snapshot::empty(), &Destination::new(REVIEWS)), &resolved));
    respond.send_response(reply(503));
    // ...but the retry stays on the cluster its request resolved (and on the endpoint not tried yet).
    let (second, respond) = handle.next_request().await.expect("a retry");
    let again = second.extensions().get::<RouteContext>().and_then(|c| c.cluster().cloned()).expect("resolved");
    assert!(Arc::ptr_eq(&again, &resolved), "one cluster per request");
    assert_eq!(second.extensions().get::<Tried>(), Some(&Tried(vec![Arc::from("127.0.0.1:9")])));
    respond.send_response(reply(200));
    assert_eq!(call.await.expect("task").expect("response").status(), 200);
}
