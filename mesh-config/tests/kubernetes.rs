//! Kubernetes objects as configuration (issue 17): `kubectl get -o yaml` output read and
//! validated with file, line and field path; endpoints built by Istio's rules, one rule per
//! case; and the compiled services the registry reads.

use std::path::{Path, PathBuf};

use mesh_config::kube::{self, Index};
use mesh_config::types::kube::ServicePort;
use mesh_config::{CompileOptions, Kind, LoadOptions, Loaded, Severity, Spec, compile, load_path, load_str, validate};

fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/kubernetes").join(path)
}

/// Every diagnostic of a load and of validating what it loaded, as `file:line: ...` lines with
/// the file name only.
fn diagnostics(loaded: &Loaded) -> Vec<String> {
    let validated = loaded.resources.iter().flat_map(validate);
    loaded
        .diagnostics
        .iter()
        .cloned()
        .chain(validated)
        .map(|d| {
            let line = d.to_string();
            match line.rsplit_once("/testdata/kubernetes/") {
                Some((_, rest)) => rest.to_string(),
                None => line,
            }
        })
        .collect()
}

#[test]
fn a_directory_of_kubectl_output_is_a_valid_configuration() {
    let loaded = load_path(&testdata("bookinfo"), &LoadOptions::default());
    assert!(loaded.failed.is_empty(), "{:?}", loaded.failed);
    assert_eq!(diagnostics(&loaded), Vec::<String>::new());
    let count = |kind: Kind| loaded.resources.iter().filter(|r| r.kind == kind).count();
    assert_eq!(
        [Kind::Service, Kind::EndpointSlice, Kind::Pod, Kind::Namespace, Kind::Node].map(count),
        [4, 7, 6, 1, 2],
        "every item of every `kind: List` is read"
    );
    let skipped: Vec<&str> = loaded.skipped.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        skipped,
        ["ServiceAccount", "Deployment", "ConfigMap", "Endpoints"],
        "other kinds are noted, not errors"
    );

    let reviews = loaded.resources.iter().find(|r| r.kind == Kind::Service && &*r.name == "reviews").expect("reviews");
    assert_eq!((&*reviews.namespace, reviews.line), ("bookinfo", 69));
    let Spec::Service(s) = &reviews.spec else { panic!("a Service") };
    // (Its resourceVersion and creationTimestamp are read past: no rule reads them.)
    assert_eq!((s.metadata.namespace.as_str(), s.metadata.name.as_str()), ("bookinfo", "reviews"));
    assert_eq!(s.spec.cluster_ip.as_deref(), Some("10.96.140.3"));
    assert_eq!(s.spec.selector.get("app").map(String::as_str), Some("reviews"));
    assert_eq!(s.spec.ports[0].name.as_deref(), Some("http"));
    let namespace = loaded.resources.iter().find(|r| r.kind == Kind::Namespace).expect("namespace");
    assert_eq!((&*namespace.namespace, &*namespace.name), ("", "bookinfo"), "cluster-scoped");
    assert_eq!(namespace.labels.get("istio-injection").map(String::as_str), Some("enabled"));
}

#[test]
fn invalid_objects_are_reported_with_file_line_and_field_path() {
    let loaded = load_path(&testdata("invalid"), &LoadOptions::default());
    let bad = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (at most 63 characters)";
    assert_eq!(
        diagnostics(&loaded),
        [
            "invalid/objects.yaml:65: Service bookinfo/ratings: spec.ports[0].port: invalid type: string \"nine-thousand\", expected i64".to_string(),
            format!("invalid/objects.yaml:4: Service bookinfo/Reviews_v2: metadata.name: Invalid value: \"Reviews_v2\": {bad}"),
            "invalid/objects.yaml:7: Service bookinfo/Reviews_v2: spec.type: Unsupported value: \"ClusterIp\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".into(),
            "invalid/objects.yaml:10: Service bookinfo/Reviews_v2: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
            "invalid/objects.yaml:11: Service bookinfo/Reviews_v2: spec.ports[0].targetPort: Invalid value: \"http--web\": must not contain consecutive hyphens".into(),
            "invalid/objects.yaml:12: Service bookinfo/Reviews_v2: spec.ports[1].name: Required value".into(),
            "invalid/objects.yaml:13: Service bookinfo/Reviews_v2: spec.ports[1].protocol: Unsupported value: \"TCPX\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into(),
            "invalid/objects.yaml:22: EndpointSlice bookinfo/reviews-ipv5: addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"".into(),
            "invalid/objects.yaml:35: EndpointSlice bookinfo/reviews-bad-addresses: endpoints[0].addresses[0]: Invalid value: \"10.244.1.300\": must be a valid IPv4 address".into(),
            "invalid/objects.yaml:37: EndpointSlice bookinfo/reviews-bad-addresses: endpoints[1].addresses[0]: Invalid value: \"fd00::7\": must be a valid IPv4 address".into(),
            "invalid/objects.yaml:38: EndpointSlice bookinfo/reviews-bad-addresses: endpoints[2].addresses: Required value: must contain at least 1 address".into(),
            "invalid/objects.yaml:41: EndpointSlice bookinfo/reviews-bad-addresses: ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
            "invalid/objects.yaml:42: EndpointSlice bookinfo/reviews-bad-addresses: ports[1].name: Duplicate value: \"http\"".into(),
            "invalid/objects.yaml:51: Pod bookinfo/reviews-v2-84d8b7c6f9-j2h5k: metadata.labels.version: invalid tag value: \"v2 beta\"".into(),
            "invalid/objects.yaml:55: Pod bookinfo/reviews-v2-84d8b7c6f9-j2h5k: status.podIP: Invalid value: \"10.244.2.x\": must be a valid IP address".into(),
        ]
    );
    assert!(loaded.resources.iter().all(|r| &*r.name != "ratings"), "a document that does not decode is left out");
}

#[test]
fn unknown_fields_are_ignored_but_a_misspelt_one_is_a_warning() {
    let text = r#"apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-abc
  labels: {kubernetes.io/service-name: reviews}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {reday: false}
  hints: {forZones: [{name: a}]}
  someFutureField: 1
ports: [{name: http, port: 9080}]
"#;
    let loaded = load_str(text, Some("s.yaml"), &LoadOptions::default()).expect("yaml");
    let lines: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "s.yaml:9: EndpointSlice default/reviews-abc: endpoints[0].conditions.reday: warning: unknown field \"reday\" (did you mean \"ready\"?): ignored"
        ]
    );
    assert!(loaded.diagnostics.iter().all(|d| d.severity == Severity::Warning));
    assert_eq!(loaded.resources.len(), 1, "a warning does not reject");
}

#[test]
fn a_kubernetes_kind_in_the_istio_group_is_still_a_misspelling() {
    let text = "apiVersion: networking.istio.io/v1\nkind: Service\nmetadata: {name: reviews}\n";
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    assert!(loaded.resources.is_empty());
    assert_eq!(loaded.diagnostics.len(), 1);
    assert!(
        loaded.diagnostics[0].message.contains("no kind \"Service\" in networking.istio.io"),
        "{:?}",
        loaded.diagnostics
    );
    let text = "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: reviews-1}\n";
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    assert_eq!((loaded.resources.len(), loaded.skipped.len()), (0, 1), "v1beta1 (removed in 1.25) is skipped");
}

// ---- Endpoint rules, one per case ----

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  ports:
  - {name: http, port: 9080, targetPort: 8080}
  - {name: grpc-api, port: 9090}
  selector: {app: reviews}
"#;

fn pod(name: &str, ip: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: bookinfo, labels: {{{labels}}}}}\nspec: {{nodeName: node-a, serviceAccountName: reviews}}\nstatus: {{podIP: {ip}}}\n"
    )
}

fn slice(name: &str, labels: &str, address_type: &str, endpoints: &str, ports: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: bookinfo, labels: {{{labels}}}}}\naddressType: {address_type}\nendpoints: [{endpoints}]\nports: [{ports}]\n"
    )
}

const OWNED: &str = "kubernetes.io/service-name: reviews";
const HTTP: &str = "{name: http, port: 8080}";

/// The endpoints of `reviews` given these other documents, as `address:port portName
/// labels... @locality`.
fn endpoints(docs: &[String]) -> Vec<String> {
    let text = std::iter::once(SERVICE.to_string()).chain(docs.iter().cloned()).collect::<Vec<_>>().join("---\n");
    let loaded = load_str(&text, None, &LoadOptions::default()).expect("yaml");
    let errors: Vec<String> =
        loaded.resources.iter().flat_map(validate).filter(|d| d.is_error()).map(|d| d.to_string()).collect();
    assert!(loaded.diagnostics.is_empty() && errors.is_empty(), "{:?} {errors:?}", loaded.diagnostics);
    let index = Index::from_resources(&loaded.resources);
    let service = loaded
        .resources
        .iter()
        .find_map(|r| match &r.spec {
            Spec::Service(s) => Some(s),
            _ => None,
        })
        .expect("the service");
    kube::endpoints(service, &index)
        .into_iter()
        .map(|e| {
            let mut line = format!("{}:{} {}", e.address, e.port, e.port_name);
            for (k, v) in &e.labels {
                if !k.contains('/') || k.starts_with("topology.") {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            if let Some(l) = e.locality {
                line.push_str(&format!(" @{l}"));
            }
            line
        })
        .collect()
}

fn ep(address: &str, pod: Option<&str>, conditions: &str) -> String {
    let target = pod.map(|p| format!(", targetRef: {{kind: Pod, name: {p}, namespace: bookinfo}}")).unwrap_or_default();
    format!("{{addresses: [{address}], conditions: {{{conditions}}}{target}}}")
}

#[test]
fn endpoint_rules() {
    let v1 = || pod("reviews-v1", "10.0.0.1", "app: reviews, version: v1");
    let v2 = || pod("reviews-v2", "10.0.0.2", "app: reviews, version: v2");
    let with_pods = |slices: Vec<String>| {
        let mut docs = vec![v1(), v2()];
        docs.extend(slices);
        docs
    };
    let ready_v1 = ep("10.0.0.1", Some("reviews-v1"), "ready: true");
    let ready_v2 = ep("10.0.0.2", Some("reviews-v2"), "ready: true");
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "a slice belongs to the Service its kubernetes.io/service-name label names; the slice's port is where traffic goes",
            with_pods(vec![slice("reviews-a", OWNED, "IPv4", &ready_v1, HTTP)]),
            vec!["10.0.0.1:8080 http app=reviews version=v1"],
        ),
        (
            "a slice of another Service, or of none, gives nothing",
            with_pods(vec![
                slice("ratings-a", "kubernetes.io/service-name: ratings", "IPv4", &ready_v1, HTTP),
                slice("loose-a", "app: reviews", "IPv4", &ready_v2, HTTP),
            ]),
            vec![],
        ),
        (
            "a slice of a multi-cluster import (multicluster.kubernetes.io/service-name) is not read",
            with_pods(vec![slice(
                "imported-a",
                "kubernetes.io/service-name: reviews, multicluster.kubernetes.io/service-name: reviews",
                "IPv4",
                &ready_v1,
                HTTP,
            )]),
            vec![],
        ),
        (
            "an FQDN slice is not read",
            with_pods(vec![slice("reviews-f", OWNED, "FQDN", "{addresses: [reviews.example.com]}", HTTP)]),
            vec![],
        ),
        (
            "an address whose Pod is not known yet is left out",
            vec![v2(), slice("reviews-a", OWNED, "IPv4", &format!("{ready_v1}, {ready_v2}"), HTTP)],
            vec!["10.0.0.2:8080 http app=reviews version=v2"],
        ),
        (
            "... and joins with its labels when the Pod arrives",
            vec![v2(), slice("reviews-a", OWNED, "IPv4", &format!("{ready_v1}, {ready_v2}"), HTTP), v1()],
            vec!["10.0.0.1:8080 http app=reviews version=v1", "10.0.0.2:8080 http app=reviews version=v2"],
        ),
        (
            "an address without targetRef is kept, with the labels of the namespace's Pod of that IP, else none",
            with_pods(vec![slice(
                "reviews-a",
                OWNED,
                "IPv4",
                &format!("{}, {}", ep("10.0.0.1", None, ""), ep("10.0.0.9", None, "")),
                HTTP,
            )]),
            vec!["10.0.0.1:8080 http app=reviews version=v1", "10.0.0.9:8080 http"],
        ),
        (
            "ready: false is left out; ready absent (and conditions absent) count as ready",
            with_pods(vec![slice(
                "reviews-a",
                OWNED,
                "IPv4",
                &format!(
                    "{}, {}, {{addresses: [10.0.0.7]}}",
                    ep("10.0.0.1", Some("reviews-v1"), "ready: false, serving: true, terminating: true"),
                    ep("10.0.0.2", Some("reviews-v2"), "serving: true"),
                ),
                HTTP,
            )]),
            vec!["10.0.0.2:8080 http app=reviews version=v2", "10.0.0.7:8080 http"],
        ),
        (
            "every address of an endpoint is an endpoint",
            with_pods(vec![slice("reviews-a", OWNED, "IPv4", "{addresses: [10.0.0.5, 10.0.0.6]}", HTTP)]),
            vec!["10.0.0.5:8080 http", "10.0.0.6:8080 http"],
        ),
        (
            "slice ports match Service ports by name; a port the Service does not name, or without a number, gives nothing",
            with_pods(vec![slice(
                "reviews-a",
                OWNED,
                "IPv4",
                &ready_v1,
                "{name: http, port: 8080}, {name: grpc-api, port: 7070}, {name: metrics, port: 15020}, {name: debug}",
            )]),
            vec!["10.0.0.1:8080 http app=reviews version=v1", "10.0.0.1:7070 grpc-api app=reviews version=v1"],
        ),
        (
            "the same address and port in two slices counts once (the first slice by name wins)",
            with_pods(vec![
                slice("reviews-b", OWNED, "IPv4", &format!("{ready_v1}, {ready_v2}"), "{name: http, port: 8081}"),
                slice("reviews-a", OWNED, "IPv4", &ready_v1, HTTP),
            ]),
            vec!["10.0.0.1:8080 http app=reviews version=v1", "10.0.0.2:8081 http app=reviews version=v2"],
        ),
        (
            "slices of the Service's name in another namespace are not its",
            with_pods(vec![
                slice("reviews-a", OWNED, "IPv4", &ready_v1, HTTP).replace("namespace: bookinfo", "namespace: other"),
            ]),
            vec![],
        ),
    ];
    for (rule, docs, want) in cases {
        assert_eq!(endpoints(&docs), want, "{rule}");
    }
}

#[test]
fn locality_rules() {
    let node = |name: &str, labels: &str| {
        format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n")
    };
    let ready = ep("10.0.0.1", Some("reviews-v1"), "");
    let zoned = "{addresses: [10.0.0.1], zone: slice-zone, targetRef: {kind: Pod, name: reviews-v1}}".to_string();
    let cases: Vec<(&str, &str, Vec<String>, Vec<&str>)> = vec![
        (
            "istio-locality: region.zone.subzone, dots become slashes; labels augmented as Istio's AugmentLabels",
            "istio-locality: us-west1.us-west1-a.rack1",
            vec![],
            vec![
                "10.0.0.1:8080 http istio-locality=us-west1.us-west1-a.rack1 topology.istio.io/subzone=rack1 topology.kubernetes.io/region=us-west1 topology.kubernetes.io/zone=us-west1-a @us-west1/us-west1-a/rack1",
            ],
        ),
        (
            "topology.istio.io/locality comes first",
            "topology.istio.io/locality: eu.eu-a, istio-locality: us.us-a",
            vec![],
            vec![
                "10.0.0.1:8080 http istio-locality=us.us-a topology.istio.io/locality=eu.eu-a topology.kubernetes.io/region=eu topology.kubernetes.io/zone=eu-a @eu/eu-a",
            ],
        ),
        (
            "without a locality label, the Node's topology labels, as region/zone/subzone",
            "",
            vec![node(
                "node-a",
                "topology.kubernetes.io/region: us-east1, topology.kubernetes.io/zone: us-east1-b, topology.istio.io/subzone: r7",
            )],
            vec![
                "10.0.0.1:8080 http topology.istio.io/subzone=r7 topology.kubernetes.io/region=us-east1 topology.kubernetes.io/zone=us-east1-b @us-east1/us-east1-b/r7",
            ],
        ),
        (
            "the Node's beta failure-domain labels when the GA ones are absent",
            "",
            vec![node(
                "node-a",
                "failure-domain.beta.kubernetes.io/region: r, failure-domain.beta.kubernetes.io/zone: z",
            )],
            vec!["10.0.0.1:8080 http topology.kubernetes.io/region=r topology.kubernetes.io/zone=z @r/z/"],
        ),
        (
            "no label and no Node: no locality (the slice endpoint's zone is not read, as in Istio)",
            "",
            vec![],
            vec!["10.0.0.1:8080 http"],
        ),
    ];
    for (rule, labels, nodes, want) in cases {
        for endpoint in [&ready, &zoned] {
            let mut docs =
                vec![pod("reviews-v1", "10.0.0.1", labels), slice("reviews-a", OWNED, "IPv4", endpoint, HTTP)];
            docs.extend(nodes.iter().cloned());
            assert_eq!(endpoints(&docs), want, "{rule}");
        }
    }
}

#[test]
fn port_protocol_as_istio_converts_it() {
    let port = |name: &str, number: i64, protocol: Option<&str>, app: Option<&str>| ServicePort {
        name: Some(name.to_string()),
        port: number,
        protocol: protocol.map(str::to_string),
        app_protocol: app.map(str::to_string),
        ..ServicePort::default()
    };
    let cases = [
        (port("http", 80, None, None), "HTTP"),
        (port("http-web", 80, None, None), "HTTP"),
        (port("HTTP2-x", 80, None, None), "HTTP2"),
        (port("grpc", 80, None, None), "GRPC"),
        (port("grpc-web", 80, None, None), "GRPC-WEB"),
        (port("grpc-web-x", 80, None, None), "GRPC-WEB"),
        (port("grpcweb", 80, None, None), ""),
        (port("https", 443, None, None), "HTTPS"),
        (port("tls-passthrough", 443, None, None), "TLS"),
        (port("tcp-db", 5432, None, None), "TCP"),
        (port("mongo", 27017, None, None), "MONGO"),
        (port("redis", 6379, None, None), "REDIS"),
        (port("mysql-primary", 3306, None, None), "MYSQL"),
        (port("http_proxy", 3128, None, None), "HTTP_PROXY"),
        (port("web", 80, None, None), ""),
        (port("db", 3306, None, None), "TCP"),
        (port("dns", 53, None, None), "TCP"),
        (port("http", 53, Some("UDP"), None), "UDP"),
        (port("tcp", 80, None, Some("http")), "HTTP"),
        (port("http", 80, None, Some("kubernetes.io/h2c")), "HTTP2"),
        (port("http", 80, None, Some("kubernetes.io/ws")), "HTTP"),
        (port("http", 443, None, Some("kubernetes.io/wss")), "HTTPS"),
        (port("grpc", 80, None, Some("custom.io/thing")), ""),
    ];
    for (p, want) in cases {
        assert_eq!(kube::protocol(&p), want, "{p:?}");
    }
}

// ---- Into the snapshot ----

#[test]
fn kubernetes_services_compile_to_the_services_the_registry_reads() {
    let loaded = load_path(&testdata("bookinfo"), &LoadOptions::default());
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    assert!(compiled.diagnostics.is_empty(), "{:?}", compiled.diagnostics);
    let decls = compiled.snapshot.services("reviews.bookinfo.svc.cluster.local");
    assert_eq!(decls.len(), 1);
    let reviews = &decls[0];
    assert_eq!((&*reviews.namespace, &*reviews.name), ("bookinfo", "reviews"));
    assert_eq!(
        reviews.ports.iter().map(|p| (p.number, &*p.name, &*p.protocol)).collect::<Vec<_>>(),
        [(9080, "http", "HTTP")]
    );
    assert!(reviews.mesh_internal);
    assert_eq!(reviews.resolution, mesh_core::service::Resolution::Static);
    let endpoints: Vec<String> = reviews
        .endpoints
        .iter()
        .map(|e| {
            let version = e.labels().get("version").map_or("-", |v| &**v);
            format!("{} {:?} {version} {}", e.address(), e.ports().get("http"), e.locality().map_or("-", |l| &**l))
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            "10.244.1.8 Some(9080) v1 us-east1/us-east1-b/",
            "10.244.2.9 Some(9080) v2 us-east1/us-east1-c/",
            "10.244.3.12 Some(9080) - -",
        ],
        "v3 is not ready, v4's pod is unknown, v2's second listing, the MCS and FQDN slices do not count"
    );
    for name in ["details", "ratings", "productpage"] {
        let host = format!("{name}.bookinfo.svc.cluster.local");
        assert_eq!(compiled.snapshot.services(&host)[0].endpoints.len(), 1, "{host}");
    }
}

#[test]
fn endpoints_of_one_workload_share_one_meta_and_label_map() {
    let docs = [
        pod("r1-a", "10.0.0.1", "app: reviews, version: v1"),
        pod("r1-b", "10.0.0.2", "app: reviews, version: v1"),
        pod("r2-a", "10.0.0.3", "app: reviews, version: v2"),
        slice(
            "reviews-x",
            OWNED,
            "IPv4",
            &[ep("10.0.0.1", Some("r1-a"), ""), ep("10.0.0.2", Some("r1-b"), ""), ep("10.0.0.3", Some("r2-a"), "")]
                .join(", "),
            HTTP,
        ),
    ];
    let text = std::iter::once(SERVICE.to_string()).chain(docs).collect::<Vec<_>>().join("---\n");
    let loaded = load_str(&text, None, &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    let decls = compiled.snapshot.services("reviews.bookinfo.svc.cluster.local");
    let endpoints: Vec<&mesh_core::service::EndpointDecl> = decls.iter().flat_map(|d| d.endpoints.iter()).collect();
    let [v1a, v1b, v2] = endpoints[..] else { panic!("{endpoints:?}") };
    assert_eq!(v1a.labels().get("version").map(|v| &**v), Some("v1"));
    assert_eq!(v2.labels().get("version").map(|v| &**v), Some("v2"));
    assert!(v1a.labels().ptr_eq(v1b.labels()), "one map for the v1 Pods");
    assert!(!v1a.labels().ptr_eq(v2.labels()) && v1a.labels() != v2.labels());
    assert!(std::sync::Arc::ptr_eq(v1a.ports(), v2.ports()), "one port map for the endpoints");
    assert_eq!(v2.ports().get("http"), Some(&8080));
    // Ports, labels, weight and locality alike: one meta for the v1 Pods, another for v2.
    assert!(std::sync::Arc::ptr_eq(v1a.meta(), v1b.meta()), "one meta for the v1 Pods");
    assert!(!std::sync::Arc::ptr_eq(v1a.meta(), v2.meta()) && v1a.meta() != v2.meta());
    assert_eq!([v1a.address(), v1b.address(), v2.address()], ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
}

#[test]
fn partial_ports_external_names_and_export_to() {
    let text = format!(
        "{SERVICE}---\n{}---\n{}---\n{}---\n{}",
        pod("reviews-v1", "10.0.0.1", "version: v1"),
        pod("reviews-v2", "10.0.0.2", "version: v2"),
        slice(
            "reviews-a",
            OWNED,
            "IPv4",
            &ep("10.0.0.1", Some("reviews-v1"), ""),
            "{name: http, port: 8080}, {name: grpc-api, port: 7070}"
        ),
        slice("reviews-b", OWNED, "IPv4", &ep("10.0.0.2", Some("reviews-v2"), ""), HTTP),
    ) + r#"---
apiVersion: v1
kind: Service
metadata:
  name: legacy
  namespace: bookinfo
  annotations: {networking.istio.io/exportTo: "bookinfo"}
spec:
  type: ExternalName
  externalName: legacy.example.com
  ports: [{name: https, port: 443}]
"#;
    let loaded = load_str(&text, None, &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    let decls = compiled.snapshot.services("reviews.bookinfo.svc.cluster.local");
    let summary: Vec<(Vec<&str>, Vec<&str>)> = decls
        .iter()
        .map(|d| (d.ports.iter().map(|p| &*p.name).collect(), d.endpoints.iter().map(|e| e.address()).collect()))
        .collect();
    assert_eq!(
        summary,
        [(vec!["http", "grpc-api"], vec!["10.0.0.1"]), (vec!["http"], vec!["10.0.0.2"])],
        "an address serving only some ports is declared for those ports only"
    );
    assert_eq!(decls[0].ports[1].protocol.as_ref(), "GRPC");

    let legacy = &compiled.snapshot.services("legacy.bookinfo.svc.cluster.local")[0];
    assert_eq!(legacy.resolution, mesh_core::service::Resolution::Dns);
    assert!(!legacy.mesh_internal);
    assert_eq!(legacy.endpoints[0].address(), "legacy.example.com");

    let elsewhere = compile(&loaded.resources, &CompileOptions::for_namespace("other"));
    assert!(elsewhere.snapshot.services("legacy.bookinfo.svc.cluster.local").is_empty(), "exportTo annotation");
    assert_eq!(elsewhere.snapshot.services("reviews.bookinfo.svc.cluster.local").len(), 2);
}
