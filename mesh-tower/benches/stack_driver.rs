//! S1 instruction counts: a driver for callgrind, not a timing bench. It sets up the S1 client,
//! server and mesh stack (see `common`), warms both up, then sends N requests with one of them.
//! With a third argument `wait` it prints `ready` after the warm-up and waits for a line on
//! stdin, then prints `done` after the N requests and waits for another line: between the two,
//! `benches/instructions.sh` zeroes and dumps callgrind's counters.
//!
//! ```text
//! cargo bench -p mesh-tower --bench stack_driver -- mesh 2000    # or: bare 2000
//! cargo bench -p mesh-tower --bench stack_driver -- sizes        # the stack's and its future's sizes
//! ```

mod common;

use tower::Service;

#[allow(clippy::print_stderr, clippy::print_stdout)]
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _ = metrics::set_global_recorder(recorder);
    let addr = rt.block_on(common::server());
    let meshed = rt.block_on(async { common::meshed(addr) });
    let bare = common::bare();
    let url = common::bare_url(addr);
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let which = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    if which == "sizes" {
        let mut stack = meshed.clone();
        let req = http::Request::get("http://backend:8080/api/items").body(http_body_util::Empty::new()).expect("req");
        // Inside the runtime: the telemetry layer reads the clock when called.
        let _runtime = rt.enter();
        let future = stack.call(req);
        eprintln!("mesh stack: {} bytes, its future: {} bytes", size_of_val(&stack), size_of_val(&future));
        return;
    }
    rt.block_on(async {
        for _ in 0..200 {
            common::meshed_request(&meshed).await;
            common::bare_request(&bare, &url).await;
        }
    });
    let wait = args.next().as_deref() == Some("wait");
    let step = |word: &str| {
        if wait {
            println!("{word}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
    };
    step("ready");
    measured(&rt, which == "bare", n, &bare, &url, &meshed);
    step("done");
}

/// The requests counted.
fn measured(
    rt: &tokio::runtime::Runtime,
    bare: bool,
    n: usize,
    client: &common::Bare,
    url: &str,
    meshed: &common::Meshed,
) {
    rt.block_on(async {
        for _ in 0..n {
            if bare {
                common::bare_request(client, url).await;
            } else {
                common::meshed_request(meshed).await;
            }
        }
    });
}
