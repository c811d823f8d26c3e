//! Run with `cargo run --release --example bookinfo`
//!
//! Istio's Bookinfo traffic-management walkthrough, end to end, in one process: productpage,
//! details, reviews v1/v2/v3 and ratings (plus httpbin for the circuit breaker) run as Rust
//! services on loopback, every call between them goes through meshwork, and Istio's own YAML
//! files (`examples/bookinfo/config/`) are applied step by step to the running services, as
//! `kubectl apply` would. After each step, traffic is sent as readers would and a table shows
//! what they saw.
//!
//! `--api gateway-api` runs the walkthrough with the Kubernetes Gateway API instead: the
//! HTTPRoutes of Istio's `samples/bookinfo/gateway-api/` (`examples/bookinfo/config/gateway-api/`).
//!
//! `--serve 127.0.0.1:9080 [--step N]` keeps productpage up with step N's config (default 3:
//! jason sees black stars, everyone else red) so you can open it in a browser and sign in as
//! `jason`.

#[path = "services.rs"]
mod services;
#[path = "walkthrough.rs"]
mod walkthrough;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use services::start_all;
use walkthrough::{Api, STEPS, Seen, api_config_through, config_through, run_traffic};

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve =
        args.iter().position(|a| a == "--serve").map(|i| args.get(i + 1).context("--serve ADDR")).transpose()?;
    let step = args.iter().position(|a| a == "--step").map(|i| args.get(i + 1).context("--step N")).transpose()?;
    if let Some(addr) = serve {
        let addr: SocketAddr = addr.parse().context("--serve takes an address such as 127.0.0.1:9080")?;
        let step: usize = step.map(|s| s.parse()).transpose()?.unwrap_or(3).clamp(1, STEPS.len());
        let bookinfo = start_all(Some(addr)).await?;
        bookinfo.apply(config_through(step - 1)?);
        println!(
            "Bookinfo with step {:?} applied: open http://{}/productpage and sign in as jason",
            STEPS[step - 1].name,
            bookinfo.productpage
        );
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    let api = match args.iter().position(|a| a == "--api").map(|i| args.get(i + 1).map(String::as_str)) {
        None | Some(Some("istio")) => Api::Istio,
        Some(Some("gateway-api")) => Api::GatewayApi,
        Some(other) => anyhow::bail!("--api takes istio or gateway-api, not {other:?}"),
    };
    let started = tokio::time::Instant::now();
    let bookinfo = start_all(None).await?;
    println!(
        "Bookinfo on loopback: productpage {}, every call between services through meshwork\n",
        bookinfo.productpage
    );
    println!(
        "{:<20} {:<34} {:<9} {:>5}  {:<16} {:<30} {:<12} {:>8} {:>8}   Istio users see",
        "step",
        "files applied (vs = virtual-service)",
        "who",
        "reqs",
        "reviews answered",
        "reader saw",
        "status",
        "p50",
        "p99"
    );
    println!("{}", "-".repeat(170));
    for (i, step) in api.steps().iter().enumerate() {
        bookinfo.apply(api_config_through(api, i)?);
        let groups = run_traffic(&bookinfo, step.traffic).await?;
        for (g, (who, seen)) in groups.iter().enumerate() {
            let (name, files, expected) =
                if g == 0 { (step.name, step.files.join(" + "), step.expected) } else { ("", String::new(), "") };
            println!(
                "{:<20} {:<34} {:<9} {:>5}  {:<16} {:<30} {:<12} {:>8} {:>8}   {}",
                name,
                files.replace(".yaml", "").replace("virtual-service-", "vs-").replace("destination-rule-", "dr-"),
                who,
                seen.requests,
                Seen::describe(&seen.versions, seen.requests).replace("reviews-", ""),
                Seen::describe(&seen.stars, seen.requests),
                Seen::describe(&seen.statuses, seen.requests),
                ms(seen.percentile(0.5)),
                ms(seen.percentile(0.99)),
                expected
            );
        }
    }
    println!(
        "\nDone in {:.1} s. `--serve 127.0.0.1:9080` keeps productpage up to browse and sign in as jason.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
