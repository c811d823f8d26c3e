//! Compile time of VirtualServices: 1, 100 and 10,000 resources, YAML text to snapshot.
//!
//! Run with `cargo bench --bench compile`. Figures go to `benches/RESULTS.md`.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshwork::config::{ConfigStore, LoadOptions, load_str};

/// `n` VirtualServices in one YAML stream, each with a header match, a prefix match, a regex match
/// and a weighted split, for `n` different hosts.
fn virtual_services(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            r#"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-{i}
spec:
  hosts: [svc-{i}]
  http:
  - match:
    - headers:
        end-user: {{exact: jason}}
    route:
    - destination: {{host: svc-{i}, subset: v2}}
  - match:
    - uri: {{prefix: /api/v1/}}
    - uri: {{regex: "/items/[0-9]+"}}
    route:
    - destination: {{host: svc-{i}, subset: v1}}
      weight: 90
    - destination: {{host: svc-{i}, subset: v3}}
      weight: 10
    timeout: 2s
    retries: {{attempts: 3, perTryTimeout: 500ms, retryOn: "gateway-error,503"}}
  - route:
    - destination: {{host: svc-{i}, subset: v1}}
"#
        );
    }
    text
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for n in [1usize, 100, 10_000] {
        let text = virtual_services(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("load+validate+compile", n), &text, |b, text| {
            b.iter(|| {
                let loaded = load_str(black_box(text), None, &LoadOptions::default()).expect("yaml");
                let mut store = ConfigStore::default();
                let report = store.apply(loaded);
                assert_eq!(report.errors().count(), 0);
                black_box(store.snapshot().rule_count())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compile);
criterion_main!(benches);
