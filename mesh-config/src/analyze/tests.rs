//! End-to-end tests of the analysis: YAML loaded, then analyzed (and, for `MW0001` and the store,
//! the loader and [`crate::ConfigStore`]).

use super::*;
use crate::diag::Code;
use crate::load::{LoadOptions, load_str};

fn run(yaml: &str) -> Vec<Diagnostic> {
    let loaded = load_str(yaml, Some("test.yaml"), &LoadOptions::default()).expect("yaml");
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    analyze(&loaded.resources, &loaded.skipped, mesh_core::host::DEFAULT_DOMAIN)
}

fn lines(diags: &[Diagnostic]) -> Vec<String> {
    diags.iter().map(ToString::to_string).collect()
}

const REVIEWS_SE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
"#;

#[test]
fn a_subset_no_destination_rule_defines_is_ist0101_with_its_line() {
    let yaml = format!(
        "{REVIEWS_SE}---{}",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
    mirror: {host: reviews, subset: v9}
"#
    );
    let diags = run(&yaml);
    assert_eq!(diags.len(), 2, "{:#?}", lines(&diags));
    let d = &diags[0];
    assert_eq!((d.severity, d.code), (Severity::Warning, Some(Code::ReferencedResourceNotFound)));
    assert_eq!(d.path, "http[0].route[1].destination.subset");
    assert_eq!(d.line, 31, "{d}");
    assert_eq!(
        d.to_string(),
        "test.yaml:31: IST0101 VirtualService default/reviews: http[0].route[1].destination.subset: warning: referenced subset not found: \"v3\" of host reviews.default.svc.cluster.local (DestinationRule default/reviews for reviews.default.svc.cluster.local defines v1, v2); requests routed to it get 503 no healthy upstream (UH)"
    );
    assert_eq!(diags[1].path, "http[0].mirror.subset");
    assert!(diags[1].message.starts_with("referenced mirror subset not found: \"v9\""), "{}", diags[1]);
}

#[test]
fn a_subset_without_any_destination_rule_and_wildcard_rules() {
    let yaml = format!(
        "{REVIEWS_SE}---{}",
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
"#
    );
    let diags = run(&yaml);
    assert_eq!(diags.len(), 1, "{:#?}", lines(&diags));
    assert!(
        diags[0].message.contains("(no DestinationRule has host reviews.default.svc.cluster.local)"),
        "{}",
        diags[0]
    );

    // A wildcard rule covering the host answers for it.
    let wildcard = format!(
        "{yaml}---{}",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all}
spec:
  host: "*.default.svc.cluster.local"
  subsets: [{name: v1, labels: {version: v1}}]
"#
    );
    assert_eq!(lines(&run(&wildcard)), Vec::<String>::new());
}

#[test]
fn gateway_references_resolve_as_routing_does() {
    let yaml = format!(
        "{REVIEWS_SE}---{}",
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec: {gatewayClassName: istio}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [mesh, istio-system/ingress, ingress.istio-system, waypoint, missing]
  http:
  - match: [{gateways: [istio-system/nope]}]
    route: [{destination: {host: reviews}}]
"#
    );
    let diags = run(&yaml);
    let got: Vec<(&str, &str)> = diags.iter().map(|d| (d.path.as_str(), d.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                "gateways[4]",
                "referenced gateway not found: \"missing\" (no Gateway default/missing in the configuration); the rules bound to it serve no one"
            ),
            (
                "http[0].match[0].gateways[0]",
                "referenced gateway not found: \"istio-system/nope\" (no Gateway istio-system/nope in the configuration); the rules bound to it serve no one"
            ),
        ]
    );
    assert!(diags.iter().all(|d| d.code == Some(Code::ReferencedResourceNotFound)));
}

#[test]
fn destination_hosts_need_a_service_entry_or_a_kubernetes_service() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec: {ports: [{port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: bookinfo}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: other}
spec:
  hosts: [private.other.svc.cluster.local]
  exportTo: ["."]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
      weight: 50
    - destination: {host: ratngs}
      weight: 25
    - destination: {host: ratngs, port: {number: 8080}}
      weight: 25
    mirrors: [{destination: {host: api.example.com}}, {destination: {host: private.other.svc.cluster.local}}]
  tcp:
  - route: [{destination: {host: db.example.org}}]
"#;
    let diags = run(yaml);
    let got: Vec<(&str, &str)> = diags.iter().map(|d| (d.path.as_str(), d.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                "http[0].route[1].destination.host",
                "referenced host not found: \"ratngs\" (ratngs.bookinfo.svc.cluster.local): no ServiceEntry visible to namespace bookinfo and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
            ),
            (
                "http[0].mirrors[1].destination.host",
                "referenced mirror host not found: \"private.other.svc.cluster.local\": no ServiceEntry visible to namespace bookinfo and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
            ),
            (
                "tcp[0].route[0].destination.host",
                "referenced host not found: \"db.example.org\": no ServiceEntry visible to namespace bookinfo and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
            ),
        ]
    );
    assert!(diags.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn merged_destination_rules_report_what_the_later_one_loses() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-a}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-b}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets:
  - {name: v2, labels: {version: v2}}
  - {name: v1, labels: {version: v1-canary}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-selected}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: other}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-private}
spec:
  host: reviews
  exportTo: ["~"]
  subsets: [{name: v1, labels: {version: v1}}]
"#;
    let diags = run(yaml);
    let got: Vec<String> = lines(&diags);
    assert_eq!(
        got,
        [
            "test.yaml:18: MW0003 DestinationRule default/reviews-b: subsets[1]: warning: subset \"v1\" of host reviews.default.svc.cluster.local is already defined by DestinationRule default/reviews-a (test.yaml:2); rules for one host in one namespace merge and the first definition of a subset wins, so this one is ignored",
            "test.yaml:15: MW0003 DestinationRule default/reviews-b: trafficPolicy: warning: trafficPolicy is ignored: DestinationRule default/reviews-a (test.yaml:2) for host reviews.default.svc.cluster.local sets one first; rules for one host in one namespace merge and only the first top-level trafficPolicy applies",
        ]
    );
}

#[test]
fn duplicates_name_both_places() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: other}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews.default.svc.cluster.local}
"#;
    let loaded = load_str(yaml, Some("b.yaml"), &LoadOptions::default()).expect("yaml");
    assert_eq!(
        lines(&duplicates(&loaded.resources)),
        [
            "b.yaml:12: MW0002 DestinationRule default/reviews: warning: defined again (first at b.yaml:2); the last valid definition is the one in force, as `kubectl apply` of both would leave it"
        ]
    );
}

#[test]
fn a_misspelt_kind_is_an_error_with_a_suggestion_not_a_skip() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualSevice
metadata: {name: reviews, namespace: bookinfo}
spec: {hosts: [reviews]}
---
apiVersion: networking.istio.oi/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: default}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: filter}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
"#;
    let loaded = load_str(yaml, Some("kinds.yaml"), &LoadOptions::default()).expect("yaml");
    assert_eq!(
        lines(&loaded.diagnostics),
        [
            "kinds.yaml:3: MW0001 VirtualSevice bookinfo/reviews: kind: no kind \"VirtualSevice\" in networking.istio.io (did you mean \"VirtualService\"?)",
            "kinds.yaml:7: MW0001 DestinationRule default/reviews: apiVersion: no API group \"networking.istio.oi\" (did you mean \"networking.istio.io\"?); DestinationRule is not read",
        ]
    );
    assert!(loaded.diagnostics.iter().all(Diagnostic::is_error));
    // The Gateway API Gateway is read (it is a kind meshwork serves); the others are skipped.
    let read: Vec<&str> = loaded.resources.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(read, ["Gateway.gateway.networking.k8s.io"]);
    let skipped: Vec<&str> = loaded.skipped.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(skipped, ["Sidecar", "EnvoyFilter"]);
}

#[test]
fn the_store_reports_the_findings_and_rejects_nothing_for_them() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
"#;
    let mut store = crate::ConfigStore::default();
    let report = store.apply(load_str(yaml, Some("s.yaml"), &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0);
    assert!(!report.has_rejections());
    let codes: Vec<(Option<Code>, &str)> = report.diagnostics.iter().map(|d| (d.code, d.path.as_str())).collect();
    assert_eq!(
        codes,
        [
            (Some(Code::DuplicateResource), ""),
            (Some(Code::ReferencedResourceNotFound), "http[0].route[0].destination.subset"),
            (Some(Code::ReferencedResourceNotFound), "http[0].route[0].destination.host"),
        ]
    );
    // The later definition is the one in force, and the one analyzed.
    assert!(report.diagnostics[1].message.contains("\"v2\""), "{}", report.diagnostics[1]);
    assert_eq!(store.resources().len(), 1);
}

#[test]
fn a_complete_configuration_has_no_findings() {
    let yaml = format!(
        "{REVIEWS_SE}---{}",
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]
"#
    );
    assert_eq!(lines(&run(&yaml)), Vec::<String>::new());
}
