//! The whole mesh stack around a real hyper-util client, against real servers on loopback.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use mesh_tower::{Endpoint, Mesh, Registry, ReplayBody, ResponseFlags};
use support::*;
use tower::{Layer, ServiceExt};

const REVIEWS: &str = "reviews.default.svc.cluster.local";

const SUBSETS: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"#;

async fn reviews(versions: &[&'static str]) -> (Registry, Vec<Server>) {
    let registry = Registry::new();
    let mut servers = Vec::new();
    for v in versions {
        let s = fixed(200, v).await;
        registry.register(
            REVIEWS,
            Endpoint::new(s.address(), [("app", "reviews"), ("version", *v)]).with_workload(format!("reviews-{v}")),
        );
        servers.push(s);
    }
    (registry, servers)
}

#[tokio::test]
async fn header_match_sends_jason_to_v2_and_everyone_else_to_v1() {
    let (registry, _servers) = reviews(&["v1", "v2"]).await;
    let config = format!(
        "{SUBSETS}\n---\n{}",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"#
    );
    let stack = stack(&mesh(&config, registry));
    for _ in 0..5 {
        let (status, body, _) = send(&stack, get("http://reviews:9080/reviews/0", &[("end-user", "jason")])).await;
        assert_eq!((status, body.as_str()), (200, "v2"));
        let (status, body, _) = send(&stack, get("http://reviews:9080/reviews/0", &[("end-user", "alice")])).await;
        assert_eq!((status, body.as_str()), (200, "v1"));
        let (_, body, _) = send(&stack, get("http://reviews:9080/reviews/0", &[])).await;
        assert_eq!(body, "v1");
    }
}

#[tokio::test]
async fn weighted_split_holds_within_two_percent_over_ten_thousand_requests() {
    let (registry, _servers) = reviews(&["v1", "v3"]).await;
    let config = format!(
        "{SUBSETS}\n---\n{}",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v3}, weight: 20}
"#
    );
    let stack = stack(&mesh(&config, registry));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let stack = stack.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for _ in 0..625 {
                let (status, body, _) = send(&stack, get("http://reviews:9080/", &[])).await;
                assert_eq!(status, 200);
                *counts.entry(body).or_default() += 1;
            }
            counts
        }));
    }
    let mut total: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.expect("task") {
            *total.entry(k).or_default() += v;
        }
    }
    let v3 = total.get("v3").copied().unwrap_or(0) as f64 / 10_000.0;
    assert!((v3 - 0.20).abs() <= 0.02, "v3 share {v3}, counts {total:?}");
    assert_eq!(total.values().sum::<usize>(), 10_000);
}

fn retrying_vs(attempts: u32, retry_on: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: flaky}}
spec:
  hosts: [flaky]
  http:
  - route: [{{destination: {{host: flaky}}}}]
    retries: {{attempts: {attempts}, retryOn: "{retry_on}"}}
"#
    )
}

const FLAKY: &str = "flaky.default.svc.cluster.local";

#[tokio::test]
async fn retries_recover_transient_503s() {
    let server = serve(|_, n| async move { if n < 2 { text(503, "busy") } else { text(200, "ok") } }).await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&retrying_vs(3, "5xx"), registry));
    let (status, body, parts) = send(&stack, get("http://flaky/x", &[])).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(server.hits(), 3, "two failures and the success");
    assert!(!ResponseFlags::of_parts(&parts).contains(ResponseFlags::RETRY_LIMIT));
}

#[tokio::test]
async fn retries_stop_at_attempts_and_flag_urx() {
    let server = fixed(503, "down").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&retrying_vs(2, "5xx"), registry));
    let (status, _, parts) = send(&stack, get("http://flaky/x", &[])).await;
    assert_eq!(status, 503);
    assert_eq!(server.hits(), 3, "the first try and two retries");
    assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::RETRY_LIMIT));
    // Conditions that do not match are not retried.
    let stack2 = support::stack(&mesh(&retrying_vs(2, "gateway-error"), {
        let r = Registry::new();
        r.register(FLAKY, Endpoint::new(server.address(), []));
        r
    }));
    let before = server.hits();
    let server500 = fixed(500, "boom").await;
    let r = Registry::new();
    r.register(FLAKY, Endpoint::new(server500.address(), []));
    let stack3 = support::stack(&mesh(&retrying_vs(2, "gateway-error"), r));
    let (status, _, _) = send(&stack3, get("http://flaky/x", &[])).await;
    assert_eq!((status, server500.hits()), (500, 1), "500 is not a gateway error");
    let (status, _, _) = send(&stack2, get("http://flaky/x", &[])).await;
    assert_eq!((status, server.hits() - before), (503, 3), "503 is");
}

#[tokio::test]
async fn istio_default_retries_connect_failures_on_another_endpoint() {
    // A port nobody listens on: bind, note the port, drop the listener.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr").to_string();
    drop(dead);
    let good = fixed(200, "alive").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(dead_addr, []));
    registry.register(FLAKY, Endpoint::new(good.address(), []));
    let stack = stack(&mesh("", registry));
    for _ in 0..10 {
        let (status, body, _) = send(&stack, get("http://flaky/", &[])).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "alive"),
            "no VirtualService: Istio's default policy retries connect-failure"
        );
    }
}

/// A 2 MB body sent in 64 KiB chunks with no length announced.
struct Streamed {
    left: usize,
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b'x'; n])))))
    }
}

#[tokio::test]
async fn a_two_megabyte_streamed_post_is_sent_once_and_never_retried() {
    use http_body_util::BodyExt;
    let server = fixed(503, "no").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&retrying_vs(3, "5xx"), registry));
    let req = http::Request::post("http://flaky/upload").body(Streamed { left: 2 * 1024 * 1024 }.boxed()).expect("req");
    let (status, _, _) = send(&stack, req).await;
    assert_eq!(status, 503);
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "never replayed");
    assert_eq!(seen[0].body_len, 2 * 1024 * 1024, "never corrupted");
    // A small POST is replayed whole.
    let req = http::Request::post("http://flaky/small").body(body("hello")).expect("req");
    send(&stack, req).await;
    let small: Vec<_> = server.seen().into_iter().filter(|s| s.uri.path() == "/small").collect();
    assert_eq!(small.len(), 4);
    assert!(small.iter().all(|s| s.body_len == 5));
}

#[tokio::test(start_paused = true)]
async fn route_timeout_answers_504() {
    let server = serve(|_, _| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        text(200, "late")
    })
    .await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let vs = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - route: [{destination: {host: flaky}}]
    timeout: 0.5s
"#;
    let stack = stack(&mesh(vs, registry));
    let start = tokio::time::Instant::now();
    let (status, body, parts) = send(&stack, get("http://flaky/", &[])).await;
    assert_eq!((status, body.as_str()), (504, "upstream request timeout"));
    assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::TIMEOUT));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(500) && waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn per_try_timeout_retries_a_slow_try() {
    let server = serve(|_, n| async move {
        if n == 0 {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        text(200, if n == 0 { "slow" } else { "fast" })
    })
    .await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let vs = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - route: [{destination: {host: flaky}}]
    retries: {attempts: 2, perTryTimeout: 1s, retryOn: "5xx"}
"#;
    let stack = stack(&mesh(vs, registry));
    let (status, body, _) = send(&stack, get("http://flaky/", &[])).await;
    assert_eq!((status, body.as_str()), (200, "fast"));
    assert_eq!(server.hits(), 2);
}

/// A VirtualService for `flaky` with `extra` (YAML lines of its one rule).
fn flaky_vs(extra: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: flaky}}\nspec:\n  hosts: [flaky]\n  http:\n  - route: [{{destination: {{host: flaky}}}}]\n{extra}\n"
    )
}

/// Read a response body frame by frame: the data that came, then how it ended.
async fn read_body<B: http_body::Body<Data = Bytes> + Unpin>(mut body: B) -> (String, Option<B::Error>) {
    use http_body_util::BodyExt;
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => data.extend_from_slice(frame.data_ref().map(|d| &d[..]).unwrap_or_default()),
            Err(err) => return (String::from_utf8_lossy(&data).into_owned(), Some(err)),
        }
    }
    (String::from_utf8_lossy(&data).into_owned(), None)
}

#[tokio::test(start_paused = true)]
async fn route_timeout_covers_the_response_body() {
    // Envoy's route timeout lasts until the response is complete: headers and the first chunk
    // come at once, then the upstream stalls for 10 s; the route allows 1 s.
    let server = serve(|_, n| async move {
        if n == 0 { stalling("first;", Duration::from_secs(10), "rest") } else { text(200, "whole") }
    })
    .await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&flaky_vs("    timeout: 1s"), registry));
    let start = tokio::time::Instant::now();
    let response = tower::ServiceExt::oneshot(stack.clone(), get("http://flaky/", &[])).await.expect("response");
    assert_eq!(response.status(), 200, "the headers came in time");
    let (data, err) = read_body(response.into_body()).await;
    let err = err.expect("the body is cut off");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(data, "first;");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(10), "{waited:?}");
    // The cut-off upstream connection is not reused half-read: the next request is answered whole.
    let (status, body, _) = send(&stack, get("http://flaky/", &[])).await;
    assert_eq!((status, body.as_str()), (200, "whole"));
}

#[tokio::test(start_paused = true)]
async fn a_body_complete_within_the_route_timeout_is_whole() {
    let server = serve(|_, _| async { stalling("first;", Duration::from_secs(2), "rest") }).await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&flaky_vs("    timeout: 5s"), registry));
    let response = tower::ServiceExt::oneshot(stack.clone(), get("http://flaky/", &[])).await.expect("response");
    let (data, err) = read_body(response.into_body()).await;
    assert_eq!((data.as_str(), err.map(|e| e.to_string())), ("first;rest", None));
}

#[tokio::test(start_paused = true)]
async fn per_try_timeout_ends_with_the_headers() {
    // Envoy ignores the per-try timeout once the response has started: no retry is possible.
    let server = serve(|_, _| async { stalling("first;", Duration::from_secs(3), "rest") }).await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&flaky_vs("    retries: {attempts: 2, perTryTimeout: 1s}"), registry));
    let response = tower::ServiceExt::oneshot(stack.clone(), get("http://flaky/", &[])).await.expect("response");
    let (data, err) = read_body(response.into_body()).await;
    assert_eq!((data.as_str(), err.map(|e| e.to_string())), ("first;rest", None));
    assert_eq!(server.hits(), 1);
}

fn fault_vs(fault: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: flaky}}
spec:
  hosts: [flaky]
  http:
  - route: [{{destination: {{host: flaky}}}}]
    fault: {fault}
"#
    )
}

#[tokio::test]
async fn abort_fault_hits_its_percentage() {
    let server = fixed(200, "ok").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&fault_vs("{abort: {httpStatus: 418, percentage: {value: 30}}}"), registry));
    let mut aborted = 0;
    for _ in 0..2000 {
        let (status, body, parts) = send(&stack, get("http://flaky/", &[])).await;
        if status == 418 {
            aborted += 1;
            assert_eq!(body, "fault filter abort");
            assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::FAULT_ABORT));
        } else {
            assert_eq!(status, 200);
        }
    }
    let share = aborted as f64 / 2000.0;
    assert!((share - 0.30).abs() < 0.04, "aborted share {share}");
    assert_eq!(server.hits(), 2000 - aborted, "aborted requests never reach the upstream");
}

#[tokio::test(start_paused = true)]
async fn delay_fault_waits_and_flags_di() {
    let server = fixed(200, "ok").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&fault_vs("{delay: {fixedDelay: 7s, percentage: {value: 50}}}"), registry));
    let mut delayed = 0;
    for _ in 0..400 {
        let start = tokio::time::Instant::now();
        let (status, _, parts) = send(&stack, get("http://flaky/", &[])).await;
        assert_eq!(status, 200);
        let flagged = ResponseFlags::of_parts(&parts).contains(ResponseFlags::DELAY_INJECTED);
        assert_eq!(flagged, start.elapsed() >= Duration::from_secs(7));
        delayed += usize::from(flagged);
    }
    let share = delayed as f64 / 400.0;
    assert!((share - 0.5).abs() < 0.08, "delayed share {share}");
}

#[tokio::test]
async fn a_mirror_gets_a_copy_while_the_caller_sees_only_the_primary() {
    let primary = fixed(200, "primary").await;
    let mirror = serve(|_, _| async { text(500, "mirror") }).await;
    let registry = Registry::new();
    registry.register("httpbin.default.svc.cluster.local", Endpoint::new(primary.address(), [("version", "v1")]));
    registry.register("mirror.default.svc.cluster.local", Endpoint::new(mirror.address(), []));
    let vs = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route: [{destination: {host: httpbin}}]
    mirror: {host: mirror}
    mirrorPercentage: {value: 100}
"#;
    let stack = stack(&mesh(vs, registry));
    let req = http::Request::post("http://httpbin:8000/anything").body(body("payload")).expect("req");
    let (status, body, _) = send(&stack, req).await;
    assert_eq!((status, body.as_str()), (200, "primary"));
    for _ in 0..200 {
        if mirror.hits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let copies = mirror.seen();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].headers["host"], "httpbin-shadow:8000");
    assert_eq!(copies[0].body_len, 7, "the copy carries the body");
    assert_eq!(primary.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn outlier_detection_ejects_a_failing_endpoint_and_returns_it_after_base_ejection_time() {
    let good = fixed(200, "good").await;
    let bad = fixed(503, "bad").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(good.address(), []));
    registry.register(FLAKY, Endpoint::new(bad.address(), []));
    let config = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky}
spec:
  host: flaky
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - route: [{destination: {host: flaky}}]
    retries: {attempts: 0}
"#;
    let stack = stack(&mesh(config, registry));
    for _ in 0..4 {
        send(&stack, get("http://flaky/", &[])).await;
    }
    assert_eq!(bad.hits(), 2, "round robin alternates until two 503s in a row eject it");
    for _ in 0..20 {
        let (status, body, _) = send(&stack, get("http://flaky/", &[])).await;
        assert_eq!((status, body.as_str()), (200, "good"));
    }
    assert_eq!(bad.hits(), 2);
    tokio::time::advance(Duration::from_secs(31)).await;
    for _ in 0..4 {
        send(&stack, get("http://flaky/", &[])).await;
    }
    assert!(bad.hits() > 2, "back after baseEjectionTime");
}

#[tokio::test]
async fn connection_pool_overflow_fails_fast_with_503_uo() {
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let gate = release.clone();
    let server = serve(move |_, _| {
        let gate = gate.clone();
        async move {
            let _permit = gate.acquire().await.expect("gate");
            text(200, "done")
        }
    })
    .await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let config = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky}
spec:
  host: flaky
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
"#;
    let stack = stack(&mesh(config, registry));
    let first = tokio::spawn({
        let s = stack.clone();
        async move { send(&s, get("http://flaky/1", &[])).await.0 }
    });
    while server.hits() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = tokio::spawn({
        let s = stack.clone();
        async move { send(&s, get("http://flaky/2", &[])).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, body, parts) = send(&stack, get("http://flaky/3", &[])).await;
    assert_eq!(status, 503);
    assert!(body.contains("overflow"), "{body}");
    assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::OVERFLOW));
    assert_eq!(parts.headers["x-envoy-overloaded"], "true", "marked as Envoy marks its refusals");
    assert_eq!(server.hits(), 1, "the queued request waits, the overflowing one never leaves");
    release.add_permits(10);
    assert_eq!(first.await.expect("first"), 200);
    assert_eq!(second.await.expect("second"), 200, "the queued request goes on when a slot frees");
}

#[tokio::test]
async fn an_unknown_subset_answers_no_healthy_upstream() {
    let (registry, _s) = reviews(&["v1"]).await;
    let vs = format!(
        "{SUBSETS}\n---\n{}",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
"#
    );
    let stack = stack(&mesh(&vs, registry));
    let (status, body, parts) = send(&stack, get("http://reviews:9080/", &[])).await;
    assert_eq!((status, body.as_str()), (503, "no healthy upstream"));
    assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::NO_HEALTHY_UPSTREAM));
}

#[tokio::test]
async fn traceparent_is_forwarded_with_a_new_parent_and_started_when_missing() {
    let server = fixed(200, "ok").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh("", registry));
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    send(&stack, get("http://flaky/", &[("traceparent", incoming), ("tracestate", "congo=t61rcWkgMzE")])).await;
    send(&stack, get("http://flaky/", &[])).await;
    let seen = server.seen();
    let forwarded = seen[0].headers["traceparent"].to_str().expect("ascii");
    assert!(forwarded.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert_ne!(forwarded, incoming);
    assert_eq!(seen[0].headers["tracestate"], "congo=t61rcWkgMzE");
    let started = seen[1].headers["traceparent"].to_str().expect("ascii");
    assert!(mesh_tower::telemetry::TraceParent::parse(started).is_some(), "{started}");
}

#[tokio::test]
async fn the_host_header_keeps_the_service_name_while_the_uri_points_at_the_endpoint() {
    let (registry, servers) = reviews(&["v1"]).await;
    let stack = stack(&mesh(SUBSETS, registry));
    send(&stack, get("http://reviews:9080/ratings?x=1", &[])).await;
    let seen = servers[0].seen();
    assert_eq!(seen[0].headers["host"], "reviews:9080");
    assert_eq!(seen[0].uri.path_and_query().map(|p| p.as_str()), Some("/ratings?x=1"));
}

#[tokio::test]
async fn grpc_unavailable_is_retried_by_name() {
    let server = serve(|_, n| async move {
        let code = if n == 0 { "14" } else { "0" };
        http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", code)
            .body(axum::body::Body::empty())
            .expect("response")
    })
    .await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let stack = stack(&mesh(&retrying_vs(2, "unavailable"), registry));
    let req = http::Request::post("http://flaky/pkg.Service/Method")
        .header("content-type", "application/grpc")
        .body(body(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("req");
    let (status, _, parts) = send(&stack, req).await;
    assert_eq!(status, 200);
    assert_eq!(parts.headers["grpc-status"], "0");
    assert_eq!(server.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_swap_keeps_in_flight_requests_and_cluster_state() {
    let slow_v1 = serve(|_, _| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        text(200, "v1")
    })
    .await;
    let v2 = fixed(200, "v2").await;
    let bad = fixed(503, "bad").await;
    let registry = Registry::new();
    registry.register(REVIEWS, Endpoint::new(slow_v1.address(), [("version", "v1")]));
    registry.register(REVIEWS, Endpoint::new(v2.address(), [("version", "v2")]));
    registry.register(REVIEWS, Endpoint::new(bad.address(), [("version", "v2")]));
    let rules = |subset: &str| {
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
    outlierDetection: {{consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - route: [{{destination: {{host: reviews, subset: {subset}}}}}]
    retries: {{attempts: 0}}
"#
        )
    };
    let mesh = mesh(&rules("v2"), registry);
    let stack = stack(&mesh);
    // Eject the bad v2 endpoint.
    for _ in 0..2 {
        send(&stack, get("http://reviews/", &[])).await;
    }
    assert_eq!(bad.hits(), 1);
    mesh.update(snapshot(&rules("v1")));
    let in_flight = tokio::spawn({
        let s = stack.clone();
        async move { send(&s, get("http://reviews/", &[])).await }
    });
    while slow_v1.hits() == 0 {
        tokio::task::yield_now().await;
    }
    // Swap back while the v1 request is in flight: it still completes.
    mesh.update(snapshot(&rules("v2")));
    let (status, body, _) = in_flight.await.expect("task");
    assert_eq!((status, body.as_str()), (200, "v1"));
    for _ in 0..10 {
        let (status, body, _) = send(&stack, get("http://reviews/", &[])).await;
        assert_eq!((status, body.as_str()), (200, "v2"));
    }
    assert_eq!(bad.hits(), 1, "the ejection survived two config swaps");
}

#[tokio::test]
async fn http2_clients_work_through_the_stack() {
    let (registry, servers) = reviews(&["v1", "v2"]).await;
    let config = format!(
        "{SUBSETS}\n---\n{}",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"#
    );
    let mesh = mesh(&config, registry);
    let h2: TestClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build_http();
    let stack = tower::Layer::layer(&mesh.layer(), h2);
    let mut req = get("http://reviews:9080/reviews/0", &[("end-user", "jason")]);
    *req.version_mut() = http::Version::HTTP_2;
    let (status, body, parts) = send(&stack, req).await;
    assert_eq!((status, body.as_str(), parts.version), (200, "v2", http::Version::HTTP_2));
    let (_, body, _) = send(&stack, get("http://reviews:9080/reviews/0", &[])).await;
    assert_eq!(body, "v1");
    assert_eq!(
        servers[1].seen()[0].headers["host"],
        "reviews:9080",
        "the service name reaches the upstream over h2 too"
    );
}

#[tokio::test]
async fn a_retry_refused_by_max_retries_returns_the_response_flagged_uo() {
    let server = fixed(503, "down").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let config = format!(
        "{}\n---\n{}",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky}
spec:
  host: flaky
  trafficPolicy:
    connectionPool: {http: {maxRetries: 0}}
"#,
        retrying_vs(3, "5xx")
    );
    let stack = stack(&mesh(&config, registry));
    let (status, _, parts) = send(&stack, get("http://flaky/", &[])).await;
    assert_eq!((status, server.hits()), (503, 1), "no retry slot, no retry");
    assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::OVERFLOW));
}

#[tokio::test]
async fn resolution_none_goes_where_the_authority_resolves() {
    // `resolution: NONE`: no endpoints; the request goes to the address its own authority
    // resolves to (as Istio forwards to the original destination), with the default route's
    // retries (the host is declared: not a passthrough). A VirtualService cannot name this
    // host: a dotless name there is a Kubernetes short name (`localhost.default.svc...`).
    let origin = fixed(200, "origin").await;
    let port = origin.address().rsplit_once(':').map(|(_, p)| p.to_string()).expect("port");
    let config = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: local-origin}}
spec:
  hosts: [localhost]
  location: MESH_EXTERNAL
  ports: [{{number: {port}, name: http, protocol: HTTP}}]
  resolution: NONE
"#
    );
    let stack = stack(&mesh(&config, Registry::new()));
    let uri = format!("http://localhost:{port}/");
    let (status, body, _) = send(&stack, get(&uri, &[])).await;
    assert_eq!((status, body.as_str()), (200, "origin"));
}

#[tokio::test]
async fn header_values_expand_envoys_variables() {
    let server = fixed(200, "ok").await;
    let registry = Registry::new();
    registry.register(FLAKY, Endpoint::new(server.address(), []));
    let vs = flaky_vs(
        r#"    headers:
      request:
        set: {x-client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", x-pct: "100%%", x-user: "user=%REQ(end-user)%", x-proto: "%PROTOCOL%", x-none: "%UPSTREAM_REMOTE_ADDRESS%"}
      response:
        add: {x-upstream: "%UPSTREAM_REMOTE_ADDRESS%", x-status-copy: "%RESP(content-length)%"}"#,
    );
    let stack = stack(&mesh(&vs, registry));
    let mut req = get("http://flaky/", &[("end-user", "jason")]);
    req.extensions_mut().insert(mesh_tower::DownstreamAddresses {
        remote: "10.0.0.7:51234".parse().expect("addr"),
        local: "10.0.0.1:8080".parse().ok(),
    });
    let (status, _, parts) = send(&stack, req).await;
    assert_eq!(status, 200);
    let seen = &server.seen()[0].headers;
    let h = |name: &str| seen.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(h("x-client").as_deref(), Some("10.0.0.7"));
    assert_eq!(h("x-pct").as_deref(), Some("100%"), "%% is a literal %");
    assert_eq!(h("x-user").as_deref(), Some("user=jason"));
    assert_eq!(h("x-proto").as_deref(), Some("HTTP/1.1"));
    assert_eq!(h("x-none"), None, "no upstream is known on the request: empty, so not added (as Envoy)");
    assert_eq!(parts.headers.get("x-upstream").and_then(|v| v.to_str().ok()), Some(server.address().as_str()));
    assert_eq!(parts.headers.get("x-status-copy").and_then(|v| v.to_str().ok()), Some("2"));
}

#[tokio::test]
async fn the_default_retry_policy_does_not_retry_503() {
    // Istio's current default (EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=true): no `retries`, or
    // `attempts` without `retryOn`, leaves a 503 unretried.
    let server = fixed(503, "busy").await;
    let registry = || {
        let r = Registry::new();
        r.register(FLAKY, Endpoint::new(server.address(), []));
        r
    };
    let (status, _, _) = send(&stack(&mesh("", registry())), get("http://flaky/x", &[])).await;
    assert_eq!((status, server.hits()), (503, 1), "no VirtualService: one try");
    let attempts_only = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - route: [{destination: {host: flaky}}]
    retries: {attempts: 3}
"#;
    let (status, _, _) = send(&stack(&mesh(attempts_only, registry())), get("http://flaky/x", &[])).await;
    assert_eq!((status, server.hits()), (503, 2), "attempts without retryOn: the default conditions, no 503");
    // The former default, on request.
    let snapshot = {
        let mut store = mesh_config::ConfigStore::new(mesh_config::CompileOptions {
            exclude_503_from_default_retries: false,
            ..mesh_config::CompileOptions::default()
        });
        store.apply(mesh_config::load_str("", Some("empty.yaml"), &mesh_config::LoadOptions::default()).expect("yaml"));
        store.snapshot().clone()
    };
    let legacy = Mesh::builder().config(snapshot).registry(registry()).build();
    let (status, _, _) = send(&stack(&legacy), get("http://flaky/x", &[])).await;
    assert_eq!((status, server.hits()), (503, 5), "the former default retries 503 twice");
}

#[tokio::test]
async fn redirects_and_direct_responses_carry_the_rules_response_headers() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new}
    headers: {response: {set: {x-why: moved}}}
  - directResponse: {status: 503, body: {string: down}}
    headers: {response: {add: {x-why: maintenance}}}
"#;
    let stack = stack(&mesh(yaml, Registry::new()));
    let (status, _, parts) = send(&stack, get("http://flaky/old", &[])).await;
    assert_eq!(status, 301);
    assert_eq!(parts.headers.get("location").and_then(|v| v.to_str().ok()), Some("http://flaky/new"));
    assert_eq!(parts.headers.get("x-why").and_then(|v| v.to_str().ok()), Some("moved"));
    let (status, body, parts) = send(&stack, get("http://flaky/x", &[])).await;
    assert_eq!((status, body.as_str()), (503, "down"));
    assert_eq!(parts.headers.get("x-why").and_then(|v| v.to_str().ok()), Some("maintenance"));
}

#[tokio::test]
async fn short_names_register_as_the_virtual_service_names_them_and_an_empty_service_says_uh() {
    let (v1, v2) = (fixed(200, "v1").await, fixed(200, "v2").await);
    let config = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{headers: {end-user: {exact: nobody}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
"#;
    // The short name a new user writes, as the VirtualService writes it.
    let registry = Registry::new();
    registry.register("reviews", Endpoint::new(v1.address(), [("version", "v1")]));
    registry.register("reviews", Endpoint::new(v2.address(), [("version", "v2")]));
    let stack = stack(&mesh(config, registry));
    assert_eq!(send(&stack, get("http://reviews:9080/", &[])).await.1, "v1");
    assert_eq!(send(&stack, get("http://reviews:9080/", &[("end-user", "jason")])).await.1, "v2");
    // A subset no endpoint has, and a service nothing is registered for: Envoy's answer for a
    // cluster with no endpoints, at once, without a connection attempt or retries.
    for (uri, user) in [("http://reviews:9080/", "nobody"), ("http://ratings:9080/", "")] {
        let (status, body, parts) = send(&stack, get(uri, &[("end-user", user)])).await;
        assert_eq!((status, body.as_str()), (503, "no healthy upstream"), "{uri}");
        assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::NO_HEALTHY_UPSTREAM), "{uri}");
    }
    assert_eq!(v1.hits() + v2.hits(), 2);
}

#[tokio::test]
async fn request_named_hosts_make_no_clusters_in_process() {
    let origin = fixed(200, "origin").await;
    let mesh = mesh("", Registry::new());
    let stack = stack(&mesh);
    // Hosts nothing declares (ALLOW_ANY): passed through to the authority as named.
    let (status, body, _) = send(&stack, get(&format!("http://{}/", origin.address()), &[])).await;
    assert_eq!((status, body.as_str()), (200, "origin"));
    for i in 0..300 {
        let (status, _, parts) =
            send(&stack, get(&format!("http://127.0.{}.{}:9/", 1 + i / 250, 1 + i % 250), &[])).await;
        assert_eq!(status, 503);
        assert!(ResponseFlags::of_parts(&parts).contains(ResponseFlags::CONNECT_FAILURE));
    }
    let clusters = mesh.clusters().all();
    assert!(clusters.is_empty(), "{:?}", clusters.iter().map(|c| c.destination().host.clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn every_request_carries_an_x_request_id_and_credentials_are_never_printed() {
    let origin = fixed(200, "origin").await;
    let mesh = mesh("", Registry::new());
    let stack = stack(&mesh);
    let uri = format!("http://{}/", origin.address());
    // None given: one is made (a UUID v4, as Envoy makes them), a new one for each request.
    send(&stack, get(&uri, &[("authorization", "Bearer secret-token")])).await;
    send(&stack, get(&uri, &[])).await;
    // One given: kept as it is (services pass theirs on).
    send(&stack, get(&uri, &[("x-request-id", "from-the-caller")])).await;
    let ids: Vec<String> = origin
        .seen()
        .iter()
        .map(|s| s.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0].len(), 36, "{ids:?}");
    assert_eq!(ids[0].as_bytes()[14], b'4', "version 4: {ids:?}");
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[2], "from-the-caller");

    // The layers below see credentials marked sensitive: a `{:?}` of the request hides them.
    let client = tower::service_fn(|req: http::Request<ReplayBody<TestBody>>| async move {
        let printed = format!("{:?}", req.headers());
        assert!(!printed.contains("secret-token"), "{printed}");
        assert!(req.headers()["authorization"].is_sensitive() && req.headers()["cookie"].is_sensitive());
        Ok::<_, std::convert::Infallible>(http::Response::new(body("ok")))
    });
    let stack = mesh.layer().layer(client);
    let request = get(&uri, &[("authorization", "Bearer secret-token"), ("cookie", "session=secret-token")]);
    let response = stack.oneshot(request).await.expect("answered");
    assert_eq!(response.status(), 200);
}
