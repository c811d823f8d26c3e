//! `ConfigStore::apply` validates only the resources that changed since the last apply (issue
//! 17): a resource equal to the version in force, down to its lines, keeps the validation it had.
//! The reports must be exactly those of validating everything: here each apply of a sequence is
//! compared with the same load applied to a fresh store.

use mesh_config::{ApplyReport, ConfigStore, LoadOptions, Loaded, ResourceRef, Severity, load_str};

const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    timeout: 1s
";

const DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
";

/// Valid, with a warning (a selector without labels).
const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [ext.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {}}
";

/// Valid, with a warning (no `kubernetes.io/service-name` label); a kind kept whole.
const SLICE: &str = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orphan-abcde, namespace: shop}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
  selector: {app: reviews}
";

fn load(docs: &[&str]) -> Loaded {
    load_str(&docs.join("---\n"), Some("mesh.yaml"), &LoadOptions::default()).expect("yaml")
}

/// The parts of a report that depend on the load alone, not on what was in force before.
fn load_dependent(r: &ApplyReport) -> (Vec<mesh_config::Diagnostic>, Vec<ResourceRef>, Vec<mesh_config::Skipped>) {
    let mut refused: Vec<ResourceRef> = r.rejected.iter().chain(&r.kept_last_good).cloned().collect();
    refused.sort();
    (r.diagnostics.clone(), refused, r.skipped.clone())
}

#[test]
fn reports_equal_those_of_validating_everything() {
    let dr2 =
        DR.replace("subsets: [{name: v1, labels: {version: v1}}]", "subsets: [{name: v2, labels: {version: v2}}]");
    let bad_vs = VS.replace("timeout: 1s", "timeout: 1x");
    let moved_slice = format!("\n\n{SLICE}");
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("initial load", vec![VS, DR, SE, SLICE, SERVICE]),
        ("one resource changed", vec![VS, &dr2, SE, SLICE, SERVICE]),
        ("one made invalid", vec![&bad_vs, &dr2, SE, SLICE, SERVICE]),
        ("one deleted", vec![&bad_vs, &dr2, SLICE, SERVICE]),
        ("unchanged re-apply", vec![&bad_vs, &dr2, SLICE, SERVICE]),
        ("the same content on other lines", vec![&bad_vs, &dr2, &moved_slice, SERVICE]),
        ("valid again as the last good, a warning back", vec![VS, &dr2, SE, SLICE, SERVICE]),
        ("unchanged re-apply", vec![VS, &dr2, SE, SLICE, SERVICE]),
    ];
    let mut store = ConfigStore::default();
    let mut reports = Vec::new();
    for (what, docs) in &steps {
        let report = store.apply(load(docs));
        let fresh = ConfigStore::default().apply(load(docs));
        assert_eq!(load_dependent(&report), load_dependent(&fresh), "{what}");
        assert!(report.diagnostics.iter().any(|d| d.severity == Severity::Warning), "{what}: the warnings are kept");
        reports.push(report);
    }
    let counts: Vec<_> =
        reports.iter().map(|r| (r.added, r.updated, r.removed, r.kept_last_good.len(), r.rejected.len())).collect();
    assert_eq!(
        counts,
        vec![
            (5, 0, 0, 0, 0),
            (0, 1, 0, 0, 0),
            (0, 0, 0, 1, 0),
            (0, 0, 1, 1, 0),
            (0, 0, 0, 1, 0),
            (0, 0, 0, 1, 0),
            (1, 0, 0, 0, 0),
            (0, 0, 0, 0, 0)
        ]
    );
    // The invalid version's error is reported on every apply while it stays, at its line.
    for r in &reports[2..6] {
        let e: Vec<_> = r.errors().collect();
        assert_eq!(e.len(), 1, "{:?}", r.diagnostics);
        assert!(e[0].path.contains("timeout"), "{}", e[0]);
    }
    // The warning of the moved slice names its new line.
    let line = |r: &ApplyReport| {
        r.diagnostics.iter().find(|d| d.path.contains("labels") && d.severity == Severity::Warning).map(|d| d.line)
    };
    assert_eq!(line(&reports[5]), line(&reports[4]).map(|l| l + 2));
    // What is in force at the end is the last load (the ServiceEntry, removed and added again,
    // comes last in the store's order).
    let by_id = |mut v: Vec<mesh_config::Resource>| {
        v.sort_by_key(|r| r.id());
        v
    };
    assert_eq!(by_id(store.resources()), by_id(load(&steps[7].1).resources));
}
