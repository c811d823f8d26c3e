//! The authorization decision against the number of AuthorizationPolicies in the workload's
//! namespace (issue 19's speed goal: at most 1 µs median at 1,000, flat in unrelated policies).
//!
//! Run with `cargo bench -p mesh-core --bench authz`. The namespace holds N policies: one
//! `allow-nothing`-free ALLOW policy for the workload (`app: httpbin`, principals + methods +
//! paths), one DENY for it, and N-2 ALLOW policies selecting other apps. `lookup` chooses the
//! workload's policies and decides (what `Snapshot::authorize` does); `cached` decides with a
//! `WorkloadAuthz` chosen once (what an inbound layer keeps per snapshot).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_core::authz::*;
use mesh_core::policy::LabelSelector;
use mesh_core::workload::Workload;

fn selector(app: &str) -> LabelSelector {
    LabelSelector::new(&[("app".to_string(), app.to_string())].into_iter().collect::<BTreeMap<_, _>>())
}

fn policies(n: usize) -> AuthzPolicies {
    let mut all = Vec::with_capacity(n);
    let mut allow = PolicySpec::new("foo", "httpbin-viewer", Action::Allow);
    allow.selector = selector("httpbin");
    allow.rules = vec![RuleSpec {
        from: vec![SourceSpec { principals: vec!["cluster.local/ns/default/sa/sleep".into()], ..Default::default() }],
        to: vec![OperationSpec {
            methods: vec!["GET".into()],
            paths: vec!["/status/*".into(), "/headers".into()],
            ..Default::default()
        }],
        ..Default::default()
    }];
    let mut deny = PolicySpec::new("foo", "httpbin-deny-admin", Action::Deny);
    deny.selector = selector("httpbin");
    deny.rules = vec![RuleSpec {
        to: vec![OperationSpec { paths: vec!["/admin/*".into()], ..Default::default() }],
        ..Default::default()
    }];
    all.push(allow);
    all.push(deny);
    for i in 0..n.saturating_sub(2) {
        let mut p = PolicySpec::new("foo", &format!("app-{i}"), Action::Allow);
        p.selector = selector(&format!("app-{i}"));
        p.rules = vec![RuleSpec {
            from: vec![SourceSpec { namespaces: vec![format!("ns-{i}")], ..Default::default() }],
            ..Default::default()
        }];
        all.push(p);
    }
    AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), all)
}

fn request() -> AuthzRequest {
    AuthzRequest {
        peer: Some(Arc::from("spiffe://cluster.local/ns/default/sa/sleep")),
        source_ip: Some([10, 0, 0, 1].into()),
        destination_port: 8000,
        http: Some(HttpAttributes {
            method: "GET".into(),
            host: "httpbin.foo:8000".into(),
            path: "/status/200".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let workload = Workload::new("foo", [("app", "httpbin"), ("version", "v1")]);
    let req = request();
    let mut group = c.benchmark_group("authz");
    for n in [10, 100, 1000] {
        let all = policies(n);
        assert!(all.authorize(&workload, &req).allowed);
        group.bench_with_input(BenchmarkId::new("lookup", n), &n, |b, _| {
            b.iter(|| black_box(all.authorize(black_box(&workload), black_box(&req))))
        });
        let cached = all.for_workload(&workload);
        group.bench_with_input(BenchmarkId::new("cached", n), &n, |b, _| {
            b.iter(|| black_box(cached.authorize(black_box(&req))))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
