//! Memory per VirtualService rule, part by part (issue 15): the S3 configuration of
//! `benches/run.sh` (one VirtualService whose rules each match a path prefix or a header, as
//! `benches/common.sh` writes it), loaded, applied to a `ConfigStore` and compiled, with the heap
//! bytes live after each step counted exactly by dhat's allocator statistics (requested sizes:
//! the allocator's own rounding and headers are not in these numbers; `benches/rules_memory.sh`
//! measures the whole process).
//!
//! Run with `cargo run -p mesh-tower --example rule_memory [RULES]` (10,000 rules by default).

use std::sync::Arc;

use mesh_config::{CompileOptions, ConfigStore, LoadOptions, compile, load_str};
use mesh_core::route::{HeaderCondition, HttpRule, RequestMatch, RetryPolicy, RouteAction};
use mesh_core::snapshot::{Binding, VirtualHost};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const HOST: &str = "backend.bench.svc.cluster.local";

fn live() -> (i64, i64) {
    let s = dhat::HeapStats::get();
    (s.curr_bytes as i64, s.curr_blocks as i64)
}

/// `mesh_config RULES PORT FILE` of `benches/common.sh`.
fn config(rules: usize) -> String {
    let mut text = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: backend, namespace: bench}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: 8080}}, labels: {{app: backend, version: v1}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: backend, namespace: bench}}
spec:
  hosts: [{HOST}]
  http:
"
    );
    for i in 1..rules {
        text.push_str(&format!(
            "  - match: [{{uri: {{prefix: /r{i}/}}}}, {{headers: {{x-rule: {{exact: \"{i}\"}}}}}}]\n    route: [{{destination: {{host: {HOST}}}}}]\n"
        ));
    }
    text.push_str(&format!("  - route: [{{destination: {{host: {HOST}}}}}]\n    retries: {{attempts: 2}}\n"));
    text
}

struct Report {
    rules: f64,
}

impl Report {
    #[allow(clippy::print_stdout)]
    fn line(&self, what: &str, (bytes, blocks): (i64, i64)) {
        println!(
            "{what:<58} {bytes:>12} B {blocks:>9} blocks  {:>8.0} B/rule {:>6.1} blocks/rule",
            bytes as f64 / self.rules,
            blocks as f64 / self.rules
        );
    }
}

fn delta(before: (i64, i64)) -> (i64, i64) {
    let now = live();
    (now.0 - before.0, now.1 - before.1)
}

#[allow(clippy::print_stdout)]
fn main() {
    let rules: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let _profiler = dhat::Profiler::builder().testing().build();
    let report = Report { rules: rules as f64 };
    println!("{rules} rules; bytes live after each step (dhat, requested sizes)");
    println!(
        "sizes: HttpRule {} B, RequestMatch {} B, HeaderCondition {} B, RetryPolicy {} B, RouteAction {} B",
        std::mem::size_of::<HttpRule>(),
        std::mem::size_of::<RequestMatch>(),
        std::mem::size_of::<HeaderCondition>(),
        std::mem::size_of::<RetryPolicy>(),
        std::mem::size_of::<RouteAction>(),
    );

    let text = config(rules);
    let start = live();
    let options = LoadOptions { default_namespace: "bench".to_string(), ..LoadOptions::default() };
    let Ok(loaded) = load_str(&text, Some("config.yaml"), &options) else {
        println!("the generated config does not load");
        return;
    };
    report.line("load: typed resources + what load keeps beside them", delta(start));

    let before = live();
    let specs: Vec<_> = loaded.resources.iter().map(|r| r.spec.clone()).collect();
    report.line("  of which the typed specs (a clone)", delta(before));
    drop(specs);

    let compile_options = CompileOptions::for_namespace("bench");
    let mut store = ConfigStore::new(compile_options.clone());
    let applied = store.apply(loaded);
    drop(applied);
    let after_apply = delta(start);
    report.line("store after apply: resources kept + snapshot", after_apply);

    let resources = store.resources();
    let before = live();
    let compiled = compile(&resources, &compile_options);
    let snapshot_bytes = delta(before);
    report.line("  snapshot alone (a fresh compile of the store's resources)", snapshot_bytes);
    report.line(
        "  so the store's resources (apply - snapshot)",
        (after_apply.0 - snapshot_bytes.0, after_apply.1 - snapshot_bytes.1),
    );

    if let Some(vh) = compiled.snapshot.virtual_host(&Binding::Mesh, HOST) {
        let rules: Vec<Arc<HttpRule>> = vh.rules.to_vec();
        let before = live();
        let index = VirtualHost::new(vh.pattern.clone(), rules.clone());
        report.line("    the rule index of the virtual host (+ its rule list)", delta(before));
        drop(index);
        let before = live();
        let deep: Vec<HttpRule> = rules.iter().map(|r| (**r).clone()).collect();
        report.line("    HttpRules, deep clone (shared Arc<str>s not counted)", delta(before));
        drop(deep);
        if let Some(rule) = rules.first()
            && let RouteAction::Route(w) = &rule.action
        {
            println!("    rule 0: {} match entries, {} destinations", rule.matches.len(), w.destinations().len());
        }
    }
    drop(compiled);
    drop(resources);

    // A reload with the same files: what the proxy holds afterwards.
    let Ok(again) = load_str(&text, Some("config.yaml"), &options) else { return };
    let applied = store.apply(again);
    drop(applied);
    report.line("store after a second apply of the same files", delta(start));
    drop(store);
    report.line("after dropping the store (leaks)", delta(start));
}
