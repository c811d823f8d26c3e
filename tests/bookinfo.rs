//! Istio's Bookinfo walkthrough with the example's own services: each step's outcome, as an
//! Istio user sees it.

#[path = "../examples/bookinfo/services.rs"]
mod services;
#[path = "../examples/bookinfo/walkthrough.rs"]
mod walkthrough;

use std::time::Duration;

use walkthrough::{Api, STEPS, Seen, Traffic, api_config_through, config_through, run_traffic};

fn group<'a>(groups: &'a [(&'static str, Seen)], who: &str) -> &'a Seen {
    &groups.iter().find(|(w, _)| *w == who).unwrap_or_else(|| panic!("no {who} traffic")).1
}

fn all(seen: &Seen, map: fn(&Seen) -> &std::collections::BTreeMap<String, usize>, key: &str) {
    assert_eq!(map(seen).get(key).copied(), Some(seen.requests), "expected every request to be {key}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_routes_shifts_aborts_and_breaks_circuits_as_istio_does() {
    let bookinfo = services::start_all(None).await.expect("services");
    let step = |i: usize| {
        bookinfo.apply(config_through(i).expect("config"));
        run_traffic(&bookinfo, STEPS[i].traffic)
    };

    // 1. All to v1: no stars for anyone.
    let g = step(0).await.expect("traffic");
    for who in ["anonymous", "jason"] {
        all(group(&g, who), |s| &s.versions, "reviews-v1");
        all(group(&g, who), |s| &s.stars, "no stars");
        all(group(&g, who), |s| &s.statuses, "200");
    }

    // 2. Reviews to v3: red stars only.
    let g = step(1).await.expect("traffic");
    for who in ["anonymous", "jason"] {
        all(group(&g, who), |s| &s.versions, "reviews-v3");
        all(group(&g, who), |s| &s.stars, "red stars");
    }

    // 3. jason to v2 (black stars), everyone else v3 (red).
    let g = step(2).await.expect("traffic");
    all(group(&g, "jason"), |s| &s.stars, "black stars");
    all(group(&g, "jason"), |s| &s.versions, "reviews-v2");
    all(group(&g, "anonymous"), |s| &s.stars, "red stars");

    // 4, 5. Weighted shifts within ±3 % over 2,000 page views.
    for (i, v2) in [(3, 0.10), (4, 0.20)] {
        let g = step(i).await.expect("traffic");
        let seen = group(&g, "anonymous");
        assert_eq!(seen.requests, 2000);
        assert!((seen.share("v2") - v2).abs() <= 0.03, "{}: v2 share {}", STEPS[i].name, seen.share("v2"));
        assert!((seen.share("v1") - (1.0 - v2)).abs() <= 0.03, "{}: v1 share {}", STEPS[i].name, seen.share("v1"));
        all(seen, |s| &s.statuses, "200");
    }

    // 7. Ratings abort for jason: his page says ratings are unavailable; others are unaffected.
    let g = step(6).await.expect("traffic");
    all(group(&g, "jason"), |s| &s.stars, "ratings unavailable");
    all(group(&g, "jason"), |s| &s.statuses, "200");
    all(group(&g, "anonymous"), |s| &s.stars, "no stars");

    // 8. Circuit breaker: under concurrent load some requests fail fast with 503 UO; alone, a
    //    request goes through again.
    let g = step(7).await.expect("traffic");
    let load = group(&g, "fortio");
    let overflowed = load.statuses.get("503 UO").copied().unwrap_or(0);
    let ok = load.statuses.get("200").copied().unwrap_or(0);
    assert!(overflowed > 0, "the breaker tripped: {load:?}");
    assert!(ok > 0, "but not for everyone: {load:?}");
    assert_eq!(overflowed + ok, load.requests, "nothing but 200s and fast 503 UO: {load:?}");
    all(group(&g, "then 1"), |s| &s.statuses, "200");
}

#[tokio::test(start_paused = true)]
async fn the_ratings_delay_makes_jason_hit_productpages_own_timeout() {
    let bookinfo = services::start_all(None).await.expect("services");
    bookinfo.apply(config_through(5).expect("config"));
    let g = run_traffic(&bookinfo, Traffic::Readers { anonymous: 5, jason: 2 }).await.expect("traffic");
    let jason = group(&g, "jason");
    all(jason, |s| &s.stars, "reviews unavailable");
    assert!(
        jason.latencies.iter().all(|l| *l >= Duration::from_secs(6) && *l < Duration::from_secs(7)),
        "productpage gives reviews 3 s twice before it gives up: {:?}",
        jason.latencies
    );
    let others = group(&g, "anonymous");
    all(others, |s| &s.stars, "no stars");
    assert!(others.latencies.iter().all(|l| *l < Duration::from_secs(1)), "{:?}", others.latencies);
}

/// The walkthrough with Istio's Bookinfo Gateway API samples (`--api gateway-api`): HTTPRoutes
/// whose parent is the reviews Service send all traffic to v1, then v3, then split it 50/50 and
/// 90/10 across the per-version Services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_api_walkthrough_routes_and_shifts_as_istio_does() {
    let bookinfo = services::start_all(None).await.expect("services");
    let steps = Api::GatewayApi.steps();
    let step = |i: usize| {
        bookinfo.apply(api_config_through(Api::GatewayApi, i).expect("config"));
        run_traffic(&bookinfo, steps[i].traffic)
    };
    let g = step(0).await.expect("traffic");
    for who in ["anonymous", "jason"] {
        all(group(&g, who), |s| &s.versions, "reviews-v1");
        all(group(&g, who), |s| &s.statuses, "200");
    }
    let g = step(1).await.expect("traffic");
    for who in ["anonymous", "jason"] {
        all(group(&g, who), |s| &s.stars, "red stars");
    }
    for (i, version, share) in [(2, "v3", 0.5), (3, "v2", 0.1)] {
        let g = step(i).await.expect("traffic");
        let seen = group(&g, "anonymous");
        assert!(
            (seen.share(version) - share).abs() <= 0.05,
            "{}: {version} share {}",
            steps[i].name,
            seen.share(version)
        );
        assert!((seen.share("v1") - (1.0 - share)).abs() <= 0.05, "{}: v1 share {}", steps[i].name, seen.share("v1"));
    }
}
