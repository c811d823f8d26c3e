//! Loading behaviour users rely on: every typo reported with its line and a suggestion, kinds we
//! do not read skipped, bad YAML contributing nothing.

use mesh_config::{Kind, LoadOptions, Severity, Spec, load_str, validate};

const REVIEWS: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weigth: 50
    - destination:
        host: reviews
        subset: v2
      weight: 50
    timout: 2s
"#;

#[test]
fn unknown_fields_are_errors_with_line_path_and_suggestion() {
    let loaded = load_str(REVIEWS, Some("reviews.yaml"), &LoadOptions::default()).expect("yaml");
    assert!(loaded.resources.is_empty(), "a resource with unknown fields is not admitted");
    let lines: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            r#"reviews.yaml:13: VirtualService default/reviews: http[0].route[0].weigth: unknown field "weigth" (did you mean "weight"?)"#,
            r#"reviews.yaml:18: VirtualService default/reviews: http[0].timout: unknown field "timout" (did you mean "timeout"?)"#,
        ]
    );
}

#[test]
fn type_errors_name_the_field_and_line() {
    let text = REVIEWS.replace("weigth: 50", "weight: fifty").replace("timout", "timeout");
    let loaded = load_str(&text, Some("r.yaml"), &LoadOptions::default()).expect("yaml");
    assert_eq!(loaded.diagnostics.len(), 1);
    let d = &loaded.diagnostics[0];
    assert_eq!((d.line, d.path.as_str()), (13, "http[0].route[0].weight"));
    assert!(d.message.contains("fifty"), "{d}");
}

#[test]
fn validation_errors_point_at_the_line() {
    let text = REVIEWS.replace("weigth: 50", "weight: -5").replace("timout", "timeout");
    let loaded = load_str(&text, Some("r.yaml"), &LoadOptions::default()).expect("yaml");
    let diags = validate(&loaded.resources[0]);
    let errors: Vec<String> = diags.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
    assert_eq!(errors, vec!["r.yaml:13: VirtualService default/reviews: http[0].route[0].weight: weight -5 < 0"]);
}

#[test]
fn other_kinds_are_skipped_not_errors() {
    let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
---
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: s}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
"#;
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.skipped.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["Deployment", "Sidecar"]);
    // The Gateway API's HTTPRoute is a kind meshwork reads.
    let kinds: Vec<Kind> = loaded.resources.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Kind::HttpRoute, Kind::DestinationRule]);
    assert_eq!(&*loaded.resources[1].namespace, "bookinfo");
}

#[test]
fn lists_are_opened_and_namespaces_default() {
    let text = r#"apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: a}
  spec: {host: a}
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: b}
  spec: {host: b}
"#;
    let options = LoadOptions { default_namespace: "shop".into(), ..LoadOptions::default() };
    let loaded = load_str(text, None, &options).expect("yaml");
    let names: Vec<String> = loaded.resources.iter().map(|r| format!("{}/{}", r.namespace, r.name)).collect();
    assert_eq!(names, ["shop/a", "shop/b"]);
}

#[test]
fn text_that_is_not_yaml_contributes_nothing() {
    let err = load_str("spec: [unclosed\n", Some("bad.yaml"), &LoadOptions::default()).expect_err("not yaml");
    assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
}

#[test]
fn served_versions_only() {
    let text = "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n";
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    assert!(loaded.resources.is_empty());
    assert!(loaded.diagnostics[0].message.contains("not served"), "{}", loaded.diagnostics[0]);
}

#[test]
fn yaml_1_1_booleans_read_as_kubectl_reads_them() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: [v]
  http:
  - match:
    - uri: {prefix: /A}
      ignoreUriCase: yes
    route:
    - destination: {host: v}
"#;
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    let Spec::VirtualService(vs) = &loaded.resources[0].spec else { panic!("not a VirtualService") };
    assert!(vs.http[0].matches[0].ignore_uri_case);
}

#[test]
fn unsupported_fields_are_reported_never_silent() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{port: 31400}]
    route:
    - destination: {host: tcp-echo, subset: v1}
"#;
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    let diags = validate(&loaded.resources[0]);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let unsupported: Vec<String> =
        diags.iter().filter(|d| d.severity == Severity::Unsupported).map(ToString::to_string).collect();
    assert_eq!(
        unsupported,
        [
            "<string>:6: VirtualService default/tcp: tcp: unsupported: TCP routes for the mesh (a Gateway's TCP servers route them): read, but not acted on by meshwork yet"
        ]
    );
    // Bound to a Gateway only, the same rules are served (by its TCP servers): nothing to report.
    let gateway_only = text.replace("spec:\n", "spec:\n  gateways: [tcp-gateway]\n");
    let loaded = load_str(&gateway_only, None, &LoadOptions::default()).expect("yaml");
    let diags = validate(&loaded.resources[0]);
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn locality_failover_is_applied_and_distribute_is_reported() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 5}
    loadBalancer:
      localityLbSetting:
        enabled: true
        failover: [{from: us-east, to: us-west}]
"#;
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    let diags = validate(&loaded.resources[0]);
    assert!(diags.is_empty(), "failover is acted on: {diags:?}");
    let distribute = text.replace(
        "failover: [{from: us-east, to: us-west}]",
        "distribute: [{from: \"us-east/*\", to: {\"us-east/*\": 80, \"us-west/*\": 20}}]",
    );
    let loaded = load_str(&distribute, None, &LoadOptions::default()).expect("yaml");
    let unsupported: Vec<String> = validate(&loaded.resources[0])
        .iter()
        .filter(|d| d.severity == Severity::Unsupported)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        unsupported,
        [
            "<string>:11: DestinationRule default/reviews: trafficPolicy.loadBalancer.localityLbSetting.distribute: unsupported: localityLbSetting.distribute: read, but not acted on by meshwork yet"
        ]
    );
}

/// A JSON document (what a Kubernetes source holds) loads as its one line of JSON text does:
/// the same resources, trees, diagnostics and skipped kinds — a valid Pod, an Istio resource
/// with a misspelt field and a wrong type, a `kind: List`, a kind meshwork does not read.
#[test]
fn a_json_document_loads_as_its_text_does() {
    let options = LoadOptions { default_namespace: "shop".into(), ..LoadOptions::default() };
    let documents = [
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "r-1", "labels": {"app": "r", "n": "7"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa"},
            "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}}),
        serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "r", "namespace": "shop"},
            "spec": {"hosts": ["r"], "htpp": [], "http": [{"timeout": 5, "retries": {"attempts": true},
                     "route": [{"destination": {"host": "r", "port": {"number": 9080}}, "weight": 100}]}]}}),
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "r"},
             "spec": {"ports": [{"name": "http", "port": 9080, "appProtocol": null}], "selector": {"app": "r"}}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}]}),
    ];
    for document in documents {
        let text = serde_json::to_string(&document).expect("json");
        let from_text = load_str(&text, None, &options).expect("yaml");
        let from_json = mesh_config::load_json(document, &options);
        assert!(!from_text.resources.is_empty() || !from_text.diagnostics.is_empty(), "{text}");
        assert_eq!(format!("{from_json:?}"), format!("{from_text:?}"), "{text}");
    }
}
