//! S1: the whole mesh stack (100 rules, metrics on) against the bare hyper-util client, same
//! in-process server, 1 and 16 connections. Run with `cargo bench -p mesh-tower --bench stack`.

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[allow(clippy::disallowed_methods)] // criterion measures wall time
fn timed<F: std::future::Future<Output = ()>>(rt: &tokio::runtime::Runtime, f: F) -> Duration {
    rt.block_on(async {
        let start = std::time::Instant::now();
        f.await;
        start.elapsed()
    })
}

fn s1(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _ = metrics::set_global_recorder(recorder);
    let addr = rt.block_on(common::server());
    let bare = common::bare();
    let url = common::bare_url(addr);
    let meshed = rt.block_on(async { common::meshed(addr) });
    let mut group = c.benchmark_group("s1");
    group.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    for connections in [1usize, 16] {
        group.bench_with_input(BenchmarkId::new("bare", connections), &connections, |b, &n| {
            b.iter_custom(|iters| {
                timed(&rt, async {
                    let tasks: Vec<_> = (0..n)
                        .map(|_| {
                            let (bare, url) = (bare.clone(), url.clone());
                            tokio::spawn(async move {
                                for _ in 0..iters.div_ceil(n as u64) {
                                    common::bare_request(&bare, &url).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("mesh", connections), &connections, |b, &n| {
            b.iter_custom(|iters| {
                timed(&rt, async {
                    let tasks: Vec<_> = (0..n)
                        .map(|_| {
                            let meshed = meshed.clone();
                            tokio::spawn(async move {
                                for _ in 0..iters.div_ceil(n as u64) {
                                    common::meshed_request(&meshed).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, s1);
criterion_main!(benches);
