//! S1 on both tokio runtimes: the bare hyper-util client against the whole mesh stack (the setup
//! of `common`: in-process server, 100 rules, metrics on) on a `current_thread` runtime and on
//! the 2-worker `multi_thread` runtime, at 1 and 16 connections. For each case it reports, from
//! fixed-duration closed loops (not criterion's inverse throughput only):
//!
//! - throughput and its inverse (µs per request),
//! - the latency of each request (timed one by one): p50 and p99,
//! - the process's CPU time per request (user + system from `/proc/self/stat`; client, server
//!   and runtime threads together, so the mesh's extra CPU is the difference of the two sides).
//!
//! Bare and mesh runs alternate, `ROUNDS` times, and the medians are printed with the spread.
//!
//! ```text
//! cargo bench -p mesh-tower --bench stack_runtimes                      # 3 rounds × 2 s each
//! SECS=4 ROUNDS=5 cargo bench -p mesh-tower --bench stack_runtimes
//! cargo bench -p mesh-tower --bench stack_runtimes -- multi 16          # one runtime, one load
//! ONLY=mesh cargo bench -p mesh-tower --bench stack_runtimes -- multi 16 # one side (for perf record)
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // a bench: it prints and reads the wall clock

mod common;

use std::time::{Duration, Instant};

/// One measured run of one side.
#[derive(Debug, Clone, Copy)]
struct Run {
    requests: u64,
    wall: Duration,
    cpu: Duration,
    p50: Duration,
    p99: Duration,
}

impl Run {
    fn inverse_throughput_us(&self) -> f64 {
        self.wall.as_secs_f64() * 1e6 / self.requests as f64
    }
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests as f64
    }
}

/// User + system CPU time of this process (`/proc/self/stat` fields 14 and 15, in clock ticks
/// of 1/100 s on Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After the name: state is field 3, so utime (14) is index 11 and stime (15) index 12.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Bare,
    Mesh,
}

struct Setup {
    rt: tokio::runtime::Runtime,
    bare: common::Bare,
    url: String,
    meshed: common::Meshed,
}

impl Setup {
    fn new(multi: bool) -> Setup {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        }
        .expect("runtime");
        let addr = rt.block_on(common::server());
        let meshed = rt.block_on(async { common::meshed(addr) });
        Setup { bare: common::bare(), url: common::bare_url(addr), meshed, rt }
    }

    /// `connections` loops of requests for `length`; each request timed.
    fn run(&self, side: Side, connections: usize, length: Duration) -> Run {
        let cpu = process_cpu();
        let start = Instant::now();
        let deadline = start + length;
        let mut latencies: Vec<u32> = self.rt.block_on(async {
            let tasks: Vec<_> = (0..connections)
                .map(|_| {
                    let (bare, url, meshed) = (self.bare.clone(), self.url.clone(), self.meshed.clone());
                    tokio::spawn(async move {
                        let mut times = Vec::with_capacity(1 << 16);
                        loop {
                            let t = Instant::now();
                            if t >= deadline {
                                break;
                            }
                            match side {
                                Side::Bare => common::bare_request(&bare, &url).await,
                                Side::Mesh => common::meshed_request(&meshed).await,
                            }
                            times.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        }
                        times
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("task"));
            }
            all
        });
        let wall = start.elapsed();
        let cpu = process_cpu().saturating_sub(cpu);
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
            Duration::from_nanos(latencies.get(i).copied().unwrap_or(0).into())
        };
        Run { requests: latencies.len() as u64, wall, cpu, p50: at(0.50), p99: at(0.99) }
    }
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let m = v.get(v.len() / 2).copied().unwrap_or(0.0);
    (m, v.first().copied().unwrap_or(0.0), v.last().copied().unwrap_or(0.0))
}

fn show(label: &str, runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let (m, lo, hi) = median(runs.iter().map(f).collect());
    print!(" {label} {m:7.2} [{lo:.2}–{hi:.2}]");
    m
}

fn main() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _ = metrics::set_global_recorder(recorder);
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let length = Duration::from_millis(env("SECS", 2) * 1000);
    let rounds = env("ROUNDS", 3) as usize;
    let only = match std::env::var("ONLY").as_deref() {
        Ok("bare") => Some(Side::Bare),
        Ok("mesh") => Some(Side::Mesh),
        _ => None,
    };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let runtimes: Vec<bool> = match args.first().map(String::as_str) {
        Some("current") => vec![false],
        Some("multi") => vec![true],
        _ => vec![false, true],
    };
    let loads: Vec<usize> = match args.get(1).and_then(|a| a.parse().ok()) {
        Some(n) => vec![n],
        None => vec![1, 16],
    };
    println!("S1 on both runtimes: {rounds} rounds × {} s per side; medians [min–max]; µs", length.as_secs_f64());
    for multi in runtimes {
        let setup = Setup::new(multi);
        let name = if multi { "multi_thread(2)" } else { "current_thread" };
        for &n in &loads {
            // Warm both sides up (connections, handle caches, allocator).
            for side in [Side::Bare, Side::Mesh] {
                setup.run(side, n, Duration::from_millis(300));
            }
            let mut bare = Vec::new();
            let mut mesh = Vec::new();
            for _ in 0..rounds {
                if only != Some(Side::Mesh) {
                    bare.push(setup.run(Side::Bare, n, length));
                }
                if only != Some(Side::Bare) {
                    mesh.push(setup.run(Side::Mesh, n, length));
                }
            }
            let mut medians = Vec::new();
            for (side, runs) in [("bare", &bare), ("mesh", &mesh)] {
                if runs.is_empty() {
                    continue;
                }
                print!("{name:>15} conns={n:<2} {side}:");
                medians.push((
                    show("inv.tput", runs, Run::inverse_throughput_us),
                    show("p50", runs, |r| r.p50.as_secs_f64() * 1e6),
                    show("p99", runs, |r| r.p99.as_secs_f64() * 1e6),
                    show("cpu/req", runs, Run::cpu_us),
                ));
                println!(" (requests/run {})", runs.iter().map(|r| r.requests).sum::<u64>() / runs.len() as u64);
            }
            if let [b, m] = medians[..] {
                println!(
                    "{name:>15} conns={n:<2} mesh/bare: throughput {:.2}×  added: inv.tput {:+.2}  p50 {:+.2}  p99 {:+.2}  cpu/req {:+.2}",
                    b.0 / m.0,
                    m.0 - b.0,
                    m.1 - b.1,
                    m.2 - b.2,
                    m.3 - b.3
                );
            }
        }
    }
}
