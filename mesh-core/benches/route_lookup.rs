//! Route lookup time against the number of rules on one host.
//!
//! Run with `cargo bench -p mesh-core --bench route_lookup`. For each kind of match (exact path,
//! path prefix, exact header, regex) a virtual host gets N rules, each matching its own value;
//! `worst` asks for the value of the last rule, `miss` for a value no rule has.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_core::matcher::{Re2, StringMatcher};
use mesh_core::route::{
    Destination, HeaderCondition, HeaderEdits, HttpRule, RequestMatch, RetryPolicy, RouteAction, RouteDestination,
    RuleOrigin, WeightedDestinations,
};
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};
use mesh_core::{ClientIdentity, RequestView, RouteDecision, Snapshot};

const HOST: &str = "svc.default.svc.cluster.local";

fn rule(i: usize, m: RequestMatch) -> Arc<HttpRule> {
    Arc::new(HttpRule {
        origin: RuleOrigin {
            kind: Default::default(),
            namespace: Arc::from("default"),
            name: Arc::from("vs"),
            index: i,
        },
        name: None,
        matches: Box::new([m]),
        action: RouteAction::Route(WeightedDestinations::new(vec![RouteDestination {
            destination: Destination { host: Arc::from(HOST), subset: Some(Arc::from("v1")), port: None },
            weight: 100,
            headers: HeaderEdits::default(),
        }])),
        rewrite: None,
        timeout: None,
        retries: Arc::new(RetryPolicy::istio_default()),
        fault: None,
        mirrors: Box::new([]),
        cors: None,
        headers: Arc::default(),
    })
}

fn build(kind: &str, n: usize) -> Snapshot {
    let rules = (0..n)
        .map(|i| {
            let m = match kind {
                "exact" => RequestMatch {
                    uri: Some(StringMatcher::Exact(Arc::from(format!("/api/item{i}")))),
                    ..Default::default()
                },
                "prefix" => RequestMatch {
                    uri: Some(StringMatcher::Prefix(Arc::from(format!("/api/item{i}/")))),
                    ..Default::default()
                },
                "header" => RequestMatch {
                    headers: Box::new([(
                        Arc::from("end-user"),
                        HeaderCondition::Match(StringMatcher::Exact(Arc::from(format!("user{i}")))),
                    )]),
                    ..Default::default()
                },
                _ => RequestMatch {
                    uri: Some(StringMatcher::Regex(Re2::new(&format!("/api/item{i}/[0-9]+")).expect("regex"))),
                    ..Default::default()
                },
            };
            rule(i, m)
        })
        .collect();
    let mut b = SnapshotBuilder::new(Settings::default());
    b.add_routes(Binding::Mesh, HOST, "default/vs", rules).expect("single owner");
    b.build()
}

fn lookup(c: &mut Criterion) {
    let client = ClientIdentity::new("default", []);
    for kind in ["exact", "prefix", "header", "regex"] {
        let mut group = c.benchmark_group(format!("route_lookup/{kind}"));
        group
            .sample_size(20)
            .warm_up_time(std::time::Duration::from_millis(500))
            .measurement_time(std::time::Duration::from_secs(2));
        for n in [10usize, 100, 1_000, 10_000] {
            let snapshot = build(kind, n);
            let last = n - 1;
            for (case, value) in [("worst", last.to_string()), ("miss", "none".to_string())] {
                let (path, headers) = match kind {
                    "exact" => (format!("/api/item{value}"), vec![]),
                    "prefix" | "regex" => (format!("/api/item{value}/42"), vec![]),
                    _ => ("/api/x".to_string(), vec![("end-user".to_string(), format!("user{value}"))]),
                };
                let req = RequestView {
                    method: "GET",
                    scheme: "http",
                    authority: "svc:9080",
                    path: &path,
                    query: None,
                    headers: &headers,
                    listener_port: None,
                };
                let hit = matches!(snapshot.route(&Binding::Mesh, &req, &client), RouteDecision::Matched { .. });
                assert_eq!(hit, case == "worst", "{kind} {n} {case}");
                group.bench_function(BenchmarkId::new(case, n), |b| {
                    b.iter(|| black_box(snapshot.route(&Binding::Mesh, black_box(&req), &client)).host().len())
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, lookup);
criterion_main!(benches);
