//! Istio's standard metrics, read back through a metrics-util debugging recorder.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_tower::{Endpoint, Registry};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use support::*;

type Series = Vec<(String, BTreeMap<String, String>, DebugValue)>;

fn series(recorder: &DebuggingRecorder) -> Series {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key.key().labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
            (key.key().name().to_string(), labels, value)
        })
        .collect()
}

fn counter(series: &Series, name: &str, want: &[(&str, &str)]) -> u64 {
    series
        .iter()
        .filter(|(n, labels, _)| n == name && want.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn istio_standard_metrics_with_istio_labels() {
    let recorder = Arc::new(DebuggingRecorder::new());
    let _guard = metrics::set_default_local_recorder(&*recorder);

    let v2 = fixed(200, "v2").await;
    let registry = Registry::new();
    registry.register(
        "reviews.default.svc.cluster.local",
        Endpoint::new(v2.address(), [("app", "reviews"), ("version", "v2")]).with_workload("reviews-v2"),
    );
    let config = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews, subset: v2}}]
"#;
    let stack = stack(&mesh(config, registry));
    for _ in 0..3 {
        let (status, _, _) = send(&stack, get("http://reviews:9080/reviews/1", &[])).await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = send(&stack, get("http://reviews:9080/other", &[])).await;
    assert_eq!(status, 404);

    let all = series(&recorder);
    let ok = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "default"),
        ("source_app", "productpage"),
        ("source_version", "v1"),
        ("source_canonical_service", "productpage"),
        ("destination_service", "reviews.default.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "default"),
        ("destination_workload", "reviews-v2"),
        ("destination_app", "reviews"),
        ("destination_version", "v2"),
        ("destination_canonical_service", "reviews"),
        ("destination_canonical_revision", "v2"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("grpc_response_status", ""),
        ("response_flags", "-"),
        ("connection_security_policy", "unknown"),
    ];
    assert_eq!(counter(&all, "istio_requests_total", &ok), 3, "{all:#?}");
    let no_route = [("response_code", "404"), ("response_flags", "NR"), ("destination_service", "reviews")];
    assert_eq!(counter(&all, "istio_requests_total", &no_route), 1, "{all:#?}");
    for histogram in ["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"] {
        let samples: usize = all
            .iter()
            .filter(|(n, l, _)| n == histogram && l.get("response_code").map(String::as_str) == Some("200"))
            .map(|(_, _, v)| match v {
                DebugValue::Histogram(h) => h.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(samples, 3, "{histogram}");
    }
    let response_bytes: f64 = all
        .iter()
        .filter(|(n, l, _)| n == "istio_response_bytes" && l.get("response_code").map(String::as_str) == Some("200"))
        .flat_map(|(_, _, v)| match v {
            DebugValue::Histogram(h) => h.iter().map(|x| x.into_inner()).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .fold(0.0, f64::max);
    assert!(response_bytes > 2.0, "headers and the 2-byte body are counted: {response_bytes}");
}

#[tokio::test]
async fn flags_of_overflow_and_faults_show_in_response_flags() {
    let recorder = Arc::new(DebuggingRecorder::new());
    let _guard = metrics::set_default_local_recorder(&*recorder);
    let server = fixed(200, "ok").await;
    let registry = Registry::new();
    registry.register("ratings.default.svc.cluster.local", Endpoint::new(server.address(), []));
    let config = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
"#;
    let stack = stack(&mesh(config, registry));
    for _ in 0..3 {
        send(&stack, get("http://ratings:9080/", &[])).await;
    }
    // By another name, the same rule: the same series. No endpoint answered, but the route chose
    // the service, and Istio labels the request with it (from the route's cluster), not with the
    // name the caller used.
    send(&stack, get("http://ratings.default:9080/", &[])).await;
    let all = series(&recorder);
    let aborted = counter(
        &all,
        "istio_requests_total",
        &[
            ("response_code", "500"),
            ("response_flags", "FI"),
            ("destination_service", "ratings.default.svc.cluster.local"),
            ("destination_service_name", "ratings"),
            ("destination_service_namespace", "default"),
            ("destination_workload", "unknown"),
        ],
    );
    assert_eq!(aborted, 4, "{all:#?}");
}

/// The stack, with `ratings` served by `server` and routed with `timeout: 1s`.
fn ratings_with_a_1s_timeout(server: &Server) -> Stack {
    let registry = Registry::new();
    registry.register("ratings.default.svc.cluster.local", Endpoint::new(server.address(), []));
    let config = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
    timeout: 1s
"#;
    stack(&mesh(config, registry))
}

#[tokio::test(start_paused = true)]
async fn a_body_cut_off_by_the_route_timeout_is_reported_ut() {
    let recorder = Arc::new(DebuggingRecorder::new());
    let _guard = metrics::set_default_local_recorder(&*recorder);
    let server = serve(|_, _| async { stalling("first;", std::time::Duration::from_secs(10), "rest") }).await;
    let stack = ratings_with_a_1s_timeout(&server);
    let (status, body, _) = send(&stack, get("http://ratings:9080/", &[])).await;
    // The status was sent before the timeout: it stays 200, and the flag says the stream was cut.
    assert_eq!((status, body.as_str()), (200, ""), "the body ends in an error");
    let all = series(&recorder);
    let cut = counter(&all, "istio_requests_total", &[("response_code", "200"), ("response_flags", "UT")]);
    assert_eq!(cut, 1, "{all:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_route_timeout_is_labelled_with_the_routed_service() {
    let recorder = Arc::new(DebuggingRecorder::new());
    let _guard = metrics::set_default_local_recorder(&*recorder);
    let server = serve(|_, _| async {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        text(200, "late")
    })
    .await;
    let stack = ratings_with_a_1s_timeout(&server);
    let (status, _, _) = send(&stack, get("http://ratings:9080/", &[])).await;
    assert_eq!(status, 504);
    let all = series(&recorder);
    let want = [
        ("response_code", "504"),
        ("response_flags", "UT"),
        ("destination_service", "ratings.default.svc.cluster.local"),
        ("destination_service_name", "ratings"),
    ];
    assert_eq!(counter(&all, "istio_requests_total", &want), 1, "{all:#?}");
}
