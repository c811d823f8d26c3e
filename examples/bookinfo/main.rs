//! Run with `cargo run --release --example bookinfo`
//!
//! Istio's Bookinfo traffic-management walkthrough, step by step, with Istio's own YAML files
//! (copied into `examples/bookinfo/config/`).
//!
//! Today this shows what each step's configuration means once meshwork has compiled it: which
//! reviews version each kind of request goes to, with what weight, and which faults apply. The
//! running services (productpage, details, reviews v1/v2/v3, ratings) and real traffic through
//! meshwork come with the Bookinfo issue, on top of the request path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use meshwork::config::{ConfigStore, LoadOptions, Resource, load_paths};
use meshwork::core::matcher::StringMatcher;
use meshwork::core::route::{AbortStatus, HeaderCondition, HttpRule, RouteAction};
use meshwork::core::{Binding, Snapshot};

/// The walkthrough: step name and the files `kubectl apply`'d at that step.
const STEPS: &[(&str, &[&str])] = &[
    ("route everything to v1", &["destination-rule-all.yaml", "virtual-service-all-v1.yaml"]),
    ("route reviews to v3", &["virtual-service-reviews-v3.yaml"]),
    ("user jason to v2, others v3", &["virtual-service-reviews-jason-v2-v3.yaml"]),
    ("shift 90/10 (v1/v2)", &["virtual-service-reviews-90-10.yaml"]),
    ("shift 80/20 (v1/v2)", &["virtual-service-reviews-80-20.yaml"]),
    (
        "jason and v2: 7s ratings delay",
        &["virtual-service-reviews-jason-v2-v3.yaml", "virtual-service-ratings-test-delay.yaml"],
    ),
    ("jason: ratings aborts with 500", &["virtual-service-ratings-test-abort.yaml"]),
    ("circuit breaker (httpbin)", &["circuit-breaker-httpbin.yaml"]),
];

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bookinfo/config");
    let mut applied: Vec<PathBuf> = Vec::new();
    let mut store = ConfigStore::default();
    println!(
        "meshwork Bookinfo walkthrough (configuration view; services and traffic arrive with the Bookinfo issue)\n"
    );
    println!("{:<34} {:<48} ratings.default (mesh)", "step", "reviews.default (mesh)");
    println!("{}", "-".repeat(120));
    for (step, files) in STEPS {
        applied.extend(files.iter().map(|f| dir.join(f)));
        let mut loaded = load_paths(&applied, &LoadOptions::default());
        anyhow::ensure!(loaded.failed.is_empty(), "unreadable config: {:?}", loaded.failed);
        loaded.resources = kubectl_apply_order(loaded.resources);
        let report = store.apply(loaded);
        if let Some(e) = report.errors().next() {
            anyhow::bail!("step {step:?}: {e}");
        }
        let snapshot = store.snapshot();
        println!(
            "{:<34} {:<48} {}",
            step,
            describe(snapshot, "reviews.default.svc.cluster.local"),
            describe(snapshot, "ratings.default.svc.cluster.local")
        );
        if files.iter().any(|f| f.contains("circuit-breaker")) {
            let dr = snapshot
                .destination_rules("httpbin.default.svc.cluster.local")
                .first()
                .context("circuit-breaker DestinationRule")?;
            let p = dr.resolve(None, None);
            let pool = p.connection_pool.unwrap_or_default();
            let od = p.outlier_detection.context("outlier detection")?;
            println!(
                "{:<34} httpbin: maxConnections {:?}, http1MaxPendingRequests {:?}, maxRequestsPerConnection {:?}; eject after {:?} 5xx for {:?}",
                "",
                pool.max_connections.unwrap_or(u32::MAX),
                pool.http1_max_pending_requests.unwrap_or(u32::MAX),
                pool.max_requests_per_connection.unwrap_or(0),
                od.consecutive_5xx.unwrap_or(0),
                od.base_ejection_time
            );
        }
    }
    Ok(())
}

/// `kubectl apply` replaces a resource of the same kind, namespace and name: keep the last
/// version of each, at the position of the first.
fn kubectl_apply_order(resources: Vec<Resource>) -> Vec<Resource> {
    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Resource> = Vec::new();
    for r in resources {
        let id = r.id().to_string();
        match position.get(&id) {
            Some(&i) => out[i] = r,
            None => {
                position.insert(id, out.len());
                out.push(r);
            }
        }
    }
    out
}

fn describe(snapshot: &Snapshot, host: &str) -> String {
    let Some(vh) = snapshot.virtual_host(&Binding::Mesh, host) else {
        return "no VirtualService".to_string();
    };
    vh.rules.iter().map(|r| describe_rule(r)).collect::<Vec<_>>().join("; ")
}

fn describe_rule(rule: &HttpRule) -> String {
    let condition = rule
        .matches
        .iter()
        .map(|m| {
            m.headers
                .iter()
                .map(|(name, c)| match c {
                    HeaderCondition::Present => format!("{name} present"),
                    HeaderCondition::Match(StringMatcher::Exact(v)) => format!("{name}={v}"),
                    HeaderCondition::Match(other) => format!("{name} {other}"),
                })
                .collect::<Vec<_>>()
                .join("&")
        })
        .collect::<Vec<_>>()
        .join("|");
    let condition = if condition.is_empty() { "*".to_string() } else { condition };
    let target = match &rule.action {
        RouteAction::Route(w) => {
            let total = w.total().max(1) as f64;
            w.destinations()
                .iter()
                .map(|d| {
                    let subset = d.destination.subset.as_deref().unwrap_or("-");
                    if w.destinations().len() == 1 {
                        subset.to_string()
                    } else {
                        format!("{subset} {:.0}%", f64::from(d.weight) * 100.0 / total)
                    }
                })
                .collect::<Vec<_>>()
                .join(" + ")
        }
        RouteAction::Redirect(r) => format!("redirect {}", r.code),
        RouteAction::DirectResponse(d) => format!("respond {}", d.status),
        RouteAction::Delegate { name, .. } => format!("delegate {name}"),
    };
    let mut fault = String::new();
    if let Some(f) = &rule.fault {
        if let Some((d, p)) = f.delay {
            fault.push_str(&format!(" [delay {}s {}%]", d.as_secs_f64(), p.0));
        }
        if let Some((status, p)) = &f.abort {
            let s = match status {
                AbortStatus::Http(code) => code.to_string(),
                AbortStatus::Grpc(name) => name.to_string(),
            };
            fault.push_str(&format!(" [abort {s} {}%]", p.0));
        }
    }
    format!("{condition} -> {target}{fault}")
}
