//! S1 allocations: heap allocations per request, bare hyper-util client vs the whole mesh stack
//! (100 rules, metrics on), counted exactly with dhat's heap statistics.
//! Run with `cargo bench -p mesh-tower --bench stack_allocs`.

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const REQUESTS: u64 = 2_000;

fn blocks() -> u64 {
    dhat::HeapStats::get().total_blocks
}

#[allow(clippy::print_stdout)]
fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _ = metrics::set_global_recorder(recorder);
    let addr = rt.block_on(common::server());
    let bare = common::bare();
    let url = common::bare_url(addr);
    let meshed = rt.block_on(async { common::meshed(addr) });
    let (bare_per, mesh_per) = rt.block_on(async {
        // Warm up: connections, metric handles, clusters.
        for _ in 0..100 {
            common::bare_request(&bare, &url).await;
            common::meshed_request(&meshed).await;
        }
        let start = blocks();
        for _ in 0..REQUESTS {
            common::bare_request(&bare, &url).await;
        }
        let bare_per = (blocks() - start) as f64 / REQUESTS as f64;
        let start = blocks();
        for _ in 0..REQUESTS {
            common::meshed_request(&meshed).await;
        }
        let mesh_per = (blocks() - start) as f64 / REQUESTS as f64;
        (bare_per, mesh_per)
    });
    println!("allocations per request (client + in-process server, {REQUESTS} requests, 1 connection)");
    println!("  bare hyper-util client: {bare_per:.1}");
    println!("  mesh stack (100 rules, metrics on): {mesh_per:.1}");
    println!("  added by the mesh: {:.1}", mesh_per - bare_per);
}
