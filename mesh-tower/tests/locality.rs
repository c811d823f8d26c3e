//! Locality-aware load balancing through the whole stack: a client that knows its locality
//! prefers the nearest endpoints of a destination with outlier detection, fails over as they are
//! ejected, and follows `localityLbSetting.failover` — real servers on loopback.

mod support;

use std::collections::HashMap;

use mesh_core::ClientIdentity;
use mesh_tower::{Endpoint, Mesh, Registry};
use support::*;

const HOST: &str = "reviews.default.svc.cluster.local";

fn located_mesh(yaml: &str, registry: Registry, locality: &str) -> Mesh {
    Mesh::builder()
        .config(snapshot(yaml))
        .registry(registry)
        .client_identity(ClientIdentity::new("default", [("app", "productpage")]).with_locality(locality))
        .build()
}

/// One endpoint per `(answer, locality)`, answering `answer` (or 503 when `failing`).
async fn endpoints(spec: &[(&'static str, &'static str, bool)]) -> (Registry, Vec<Server>) {
    let registry = Registry::new();
    let mut servers = Vec::new();
    for (answer, locality, failing) in spec {
        let server = fixed(if *failing { 503 } else { 200 }, answer).await;
        registry.register(HOST, Endpoint::new(server.address(), [("app", "reviews")]).with_locality(*locality));
        servers.push(server);
    }
    (registry, servers)
}

async fn tally(stack: &Stack, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let (_, body, _) = send(stack, get("http://reviews:9080/", &[])).await;
        *seen.entry(body).or_default() += 1;
    }
    seen
}

fn rule(traffic_policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy:\n{traffic_policy}\n"
    )
}

const OUTLIERS: &str =
    "    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 5m, maxEjectionPercent: 100}";

#[tokio::test]
async fn the_nearest_endpoints_take_the_traffic_while_healthy() {
    let (registry, _servers) = endpoints(&[
        ("same-zone", "us-east/us-east-1a", false),
        ("same-region", "us-east/us-east-1b", false),
        ("far", "eu-west/eu-west-1a", false),
    ])
    .await;
    let stack = stack(&located_mesh(&rule(OUTLIERS), registry, "us-east/us-east-1a"));
    let seen = tally(&stack, 200).await;
    assert_eq!(seen.get("same-zone"), Some(&200), "{seen:?}");
}

#[tokio::test]
async fn without_outlier_detection_or_when_disabled_locality_does_not_matter() {
    for policy in [
        "    loadBalancer: {simple: ROUND_ROBIN}",
        &format!("{OUTLIERS}\n    loadBalancer: {{simple: ROUND_ROBIN, localityLbSetting: {{enabled: false}}}}"),
    ] {
        let (registry, _servers) =
            endpoints(&[("same-zone", "us-east/us-east-1a", false), ("far", "eu-west/eu-west-1a", false)]).await;
        let stack = stack(&located_mesh(&rule(policy), registry, "us-east/us-east-1a"));
        let seen = tally(&stack, 100).await;
        assert_eq!((seen.get("same-zone"), seen.get("far")), (Some(&50), Some(&50)), "{policy}: {seen:?}");
    }
}

#[tokio::test]
async fn an_ejected_zone_fails_over_to_the_region_then_by_the_failover_setting() {
    // The client's zone fails; the same region has no other zone; the failover setting names
    // ap-south for us-east, so ap-south comes before eu-west.
    let (registry, _servers) = endpoints(&[
        ("same-zone", "us-east/us-east-1a", true),
        ("failover-region", "ap-south/ap-south-1a", false),
        ("other-region", "eu-west/eu-west-1a", false),
    ])
    .await;
    let policy = format!(
        "{OUTLIERS}\n    loadBalancer:\n      simple: ROUND_ROBIN\n      localityLbSetting:\n        failover: [{{from: us-east, to: ap-south}}]"
    );
    let stack = stack(&located_mesh(&rule(&policy), registry, "us-east/us-east-1a"));
    // The first request meets the failing endpoint (retried by Istio's default policy only for
    // connect failures and 503s: it is retried elsewhere), which is then ejected.
    let seen = tally(&stack, 100).await;
    assert_eq!(seen.get("other-region"), None, "{seen:?}");
    assert!(seen.get("failover-region").is_some_and(|n| *n >= 99), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_new_endpoint_warms_up_over_the_slow_start_window() {
    let registry = Registry::new();
    let (a, b, c) = (fixed(200, "a").await, fixed(200, "b").await, fixed(200, "c").await);
    registry.register(HOST, Endpoint::new(a.address(), [("app", "reviews")]));
    registry.register(HOST, Endpoint::new(b.address(), [("app", "reviews")]));
    let policy = "    loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 60s}";
    let stack = stack(&mesh(&rule(policy), registry.clone()));
    tally(&stack, 10).await;
    // Long after a and b joined, c joins: it starts at Envoy's minimum, 10 % of its weight.
    tokio::time::advance(std::time::Duration::from_secs(120)).await;
    registry.register(HOST, Endpoint::new(c.address(), [("app", "reviews")]));
    let share = |seen: &HashMap<String, usize>| seen.get("c").copied().unwrap_or(0);
    let start = tally(&stack, 1000).await;
    // 0.1 / (1 + 1 + 0.1) ≈ 5 %.
    assert!((15..=100).contains(&share(&start)), "{start:?}");
    // Halfway through the window: 0.5 / 2.5 = 20 %.
    tokio::time::advance(std::time::Duration::from_secs(30)).await;
    let halfway = tally(&stack, 1000).await;
    assert!((130..=270).contains(&share(&halfway)), "{halfway:?}");
    // Past the window: an equal third.
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    let warm = tally(&stack, 999).await;
    assert!((300..=366).contains(&share(&warm)), "{warm:?}");
}
