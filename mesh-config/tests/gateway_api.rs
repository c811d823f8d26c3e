//! The Gateway API semantics against the upstream conformance cases (routing decisions and route
//! conditions), from the repository's copy of `kubernetes-sigs/gateway-api`'s manifests and the
//! expectations transcribed from its Go tests (`testdata/conformance/gateway-api/`).
//!
//! This checks the compiled decision (which backend, which local status, which redirect) for
//! every north-south case whose manifests use only what `mesh_config::gateway_api` reads today;
//! the end-to-end run through `mesh proxy` with echo backends comes with the loader wiring.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh_config::gateway_api::{self, Input, Object, Options, ServiceRef};
use mesh_config::types::gateway_api::{Gateway, GatewayClass, GrpcRoute, HttpRoute, ReferenceGrant};
use mesh_core::decision::{Decision, Listener};
use mesh_core::request::{ClientIdentity, RequestView};
use mesh_core::route::RetryPolicy;
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};
use serde::Deserialize;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/gateway-api")
}

#[derive(Deserialize)]
struct Envelope {
    kind: String,
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    name: String,
    namespace: Option<String>,
    creation_timestamp: Option<String>,
    generation: Option<i64>,
    labels: BTreeMap<String, String>,
}

fn object<T: serde::de::DeserializeOwned>(e: &Envelope, order: usize) -> Object<T> {
    Object {
        namespace: Arc::from(e.metadata.namespace.as_deref().unwrap_or("default")),
        name: Arc::from(e.metadata.name.as_str()),
        // Applied in file order, as the conformance suite applies them.
        created: e.metadata.creation_timestamp.clone().unwrap_or_else(|| format!("2026-01-01T00:00:{order:02}Z")),
        generation: e.metadata.generation.unwrap_or(1),
        spec: serde_json::from_value(e.spec.clone()).expect("spec decodes"),
    }
}

fn read(input: &mut Input, file: &Path, order: &mut usize) {
    read_str(input, &std::fs::read_to_string(file).expect("manifest"), order);
}

fn read_str(input: &mut Input, text: &str, order: &mut usize) {
    let text = text.replace("{GATEWAY_CLASS_NAME}", "istio");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        let e: Envelope = serde_json::from_value(doc).expect("envelope");
        *order += 1;
        match e.kind.as_str() {
            "GatewayClass" => input.classes.push(object::<GatewayClass>(&e, *order)),
            "Gateway" => input.gateways.push(object::<Gateway>(&e, *order)),
            "HTTPRoute" => {
                // A later document with the same name replaces the earlier one, as `kubectl apply`.
                let route = object::<HttpRoute>(&e, *order);
                input.http_routes.retain(|r| !(r.namespace == route.namespace && r.name == route.name));
                input.http_routes.push(route);
            }
            "GRPCRoute" => input.grpc_routes.push(object::<GrpcRoute>(&e, *order)),
            "ReferenceGrant" => input.grants.push(object::<ReferenceGrant>(&e, *order)),
            "Namespace" => {
                input.namespace_labels.insert(e.metadata.name.clone(), e.metadata.labels.clone());
            }
            "Service" => {
                let ports = e.spec["ports"]
                    .as_array()
                    .map(|p| p.iter().filter_map(|p| p["port"].as_u64()).map(|p| p as u32).collect())
                    .unwrap_or_default();
                input.services.push(ServiceRef {
                    namespace: e.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
                    name: e.metadata.name.clone(),
                    ports,
                });
            }
            _ => {}
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expect {
    test: String,
    source: Source,
    subtests: Vec<Subtest>,
}

#[derive(Deserialize)]
struct Source {
    manifests: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Subtest {
    gateway: Option<NsName>,
    routes_must_be_accepted: Vec<NsName>,
    route_conditions: Vec<RouteCondition>,
    route_must_have_no_accepted_parents: bool,
    gateway_attached_routes: Option<u32>,
    cases: Vec<Case>,
    mutation: Option<serde_json::Value>,
    precondition: Option<Precondition>,
    client: Option<Client>,
}

/// A mesh test's client pod.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Client {
    app: String,
    version: String,
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Precondition {
    delete: Option<Deleted>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Deleted {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NsName {
    name: String,
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RouteCondition {
    route: String,
    route_namespace: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    status: String,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Case {
    gateway_port: Option<u16>,
    tls: Option<serde_json::Value>,
    request: Request,
    response: Option<Response>,
    backend: Option<String>,
    namespace: Option<String>,
    redirect_request: Option<Redirect>,
    expected_request: Option<ExpectedRequest>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ExpectedRequest {
    host: Option<String>,
    path: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Request {
    host: Option<String>,
    method: Option<String>,
    path: String,
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Response {
    status_code: Option<u16>,
    status_codes: Vec<u16>,
    valid_header_values: BTreeMap<String, Vec<String>>,
}

/// The CORS headers a decision adds, against `validHeaderValues` (whitespace ignored, as the
/// cases ask); only `access-control-*` headers are decided here.
fn check_cors(what: &str, cors: Option<&mesh_core::CorsHeaders>, response: Option<&Response>) {
    let Some(r) = response else { return };
    for (name, valid) in r.valid_header_values.iter().filter(|(n, _)| n.starts_with("access-control-")) {
        let got = cors.and_then(|c| c.get(name)).and_then(|v| v.to_str().ok()).map(|v| v.replace(' ', ""));
        let ok = got.as_ref().is_some_and(|g| valid.iter().any(|v| v.replace(' ', "") == *g));
        assert!(ok, "{what}: {name} is {got:?}, wanted one of {valid:?}");
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Redirect {
    scheme: Option<String>,
    host: Option<String>,
    port: Option<String>,
    path: Option<String>,
}

/// The upstream north-south tests decided here: route conditions, `routesMustBeAccepted`,
/// `routeMustHaveNoAcceptedParents`, `gatewayAttachedRoutes`, and per case the status, the
/// backend, the path and host the backend would see, a redirect's Location and the CORS headers.
/// Header edits and mirrors reach the backend only end to end (the proxy run, once it reads these
/// kinds); so do the tests in [`END_TO_END_ONLY`].
const COVERED: &[&str] = &[
    "httproute-303-redirect",
    "httproute-308-redirect",
    "httproute-backend-protocol-h2c",
    "httproute-cors",
    "httproute-cross-namespace",
    "httproute-disallowed-kind",
    "httproute-exact-path-matching",
    "httproute-header-matching",
    "httproute-hostname-intersection",
    "httproute-https-listener",
    "httproute-invalid-backendref-unknown-kind",
    "httproute-invalid-cross-namespace-parent-ref",
    "httproute-invalid-nonexistent-backendref",
    "httproute-invalid-parentref-not-matching-section-name",
    "httproute-listener-port-matching",
    "httproute-matching",
    "httproute-matching-across-routes",
    "httproute-method-matching",
    "httproute-observed-generation-bump",
    "httproute-partially-invalid-via-invalid-reference-grant",
    "httproute-redirect-host-and-status",
    "httproute-redirect-port",
    "httproute-redirect-scheme",
    "httproute-reference-grant",
    "httproute-request-header-modifier",
    "httproute-request-header-modifier-backend-weights",
    "httproute-request-mirror",
    "httproute-request-percentage-mirror",
    "httproute-response-header-modifier",
    "httproute-rewrite-path",
    "httproute-simple-same-namespace",
    "httproute-weight",
    "mesh/httproute-303-redirect",
    "mesh/httproute-308-redirect",
    "mesh/httproute-matching",
    "mesh/httproute-query-param-matching",
    "mesh/httproute-redirect-host-and-status",
    "mesh/httproute-redirect-port",
    "mesh/httproute-request-header-modifier",
    "mesh/httproute-rewrite-path",
    "mesh/httproute-simple-same-namespace",
    "mesh/httproute-weight",
    "mesh/mesh-basic",
    "mesh/mesh-frontend",
    "mesh/mesh-frontend-hostname",
    "mesh/mesh-split",
];

/// Tests a decision cannot show, with why: what they check happens after the decision.
const END_TO_END_ONLY: &[(&str, &str)] = &[
    ("httproute-retry", "retries against a backend that fails a given number of times"),
    ("httproute-retry-with-timeouts", "a backend that answers late, per try"),
    ("httproute-timeout-request", "a backend that answers late (504)"),
    ("httproute-service-types", "which pod answers a Service with hand-made EndpointSlices"),
];

/// Tests meshwork does not pass, as Istio does not: Istio's conversion accepts only header
/// modifiers as per-backend filters (`buildHTTPDestination`: any other filter type is an
/// `InvalidFilter` error), so these extended features are not served.
const NOT_SUPPORTED: &[(&str, &str)] = &[
    ("httproute-backend-request-redirect", "RequestRedirect as a per-backend filter"),
    ("httproute-backend-url-rewrite", "URLRewrite as a per-backend filter"),
];

/// Every upstream north-south test is in exactly one list: a new one cannot be skipped silently.
#[test]
fn every_conformance_test_is_accounted_for() {
    let mut names: Vec<String> = Vec::new();
    for (sub, prefix) in [("tests", ""), ("tests/mesh", "mesh/")] {
        names.extend(std::fs::read_dir(dir().join(sub)).expect("tests dir").filter_map(|e| {
            let file = e.ok()?.file_name().into_string().ok()?;
            file.strip_suffix(".expect.yaml").map(|n| format!("{prefix}{n}"))
        }));
    }
    names.sort();
    for n in &names {
        let lists = usize::from(COVERED.contains(&n.as_str()))
            + usize::from(END_TO_END_ONLY.iter().any(|(t, _)| t == n))
            + usize::from(NOT_SUPPORTED.iter().any(|(t, _)| t == n));
        assert_eq!(lists, 1, "{n} must be in exactly one list");
    }
    assert_eq!(names.len(), COVERED.len() + END_TO_END_ONLY.len() + NOT_SUPPORTED.len());
}

/// Compile `input` with the default options: the status and the snapshot.
fn compiled(input: &Input) -> (gateway_api::Status, mesh_core::Snapshot) {
    let mut builder = SnapshotBuilder::new(Settings::default());
    let status =
        gateway_api::compile(input, &Options::default(), &Arc::new(RetryPolicy::istio_default()), &mut builder);
    (status, builder.build())
}

/// What the snapshot decides for `GET host path` (`headers` lower case) on `binding` and, for a
/// Gateway, its listener on `port`: the destination's Service name, or the local status.
fn decide_short(
    s: &mesh_core::Snapshot,
    binding: &Binding,
    client: &ClientIdentity,
    (host, path, port): (&str, &str, u16),
    headers: &Vec<(String, String)>,
    draw: u64,
) -> String {
    let listener = match binding {
        Binding::Mesh => None,
        Binding::Gateway { namespace, name } => s
            .gateway(namespace, name)
            .map(|g| Listener::plain(port, g.servers.iter().filter(|x| x.port == port).cloned().collect::<Vec<_>>())),
    };
    let view = RequestView {
        method: "GET",
        scheme: "http",
        authority: host,
        path,
        query: None,
        headers,
        listener_port: listener.as_ref().map(|_| port),
    };
    match s.decide(binding, listener.as_ref(), &view, client, draw) {
        Decision::Forward(f) => f.destination.host.split('.').next().unwrap_or("").to_string(),
        Decision::Local(l) => l.status.to_string(),
    }
}

struct Headers(Vec<(String, String)>);

#[test]
fn conformance_routing_and_conditions() {
    let checked: usize = COVERED.iter().map(|name| check(name)).sum();
    assert!(checked > 60, "every covered case ran ({checked})");
}

/// Check one conformance test; the number of cases checked.
fn check(name: &str) -> usize {
    let mut checked = 0;
    {
        // `mesh/...` tests run on the mesh base manifests, from a client pod, on the mesh binding.
        let is_mesh = name.starts_with("mesh/");
        let expect_path = dir().join("tests").join(format!("{name}.expect.yaml"));
        let expect: Expect =
            serde_saphyr::from_str(&std::fs::read_to_string(&expect_path).expect("expect file")).expect("expect yaml");
        let mut input = Input::default();
        let mut order = 0;
        let base = if is_mesh { "mesh-base/manifests.yaml" } else { "base/manifests.yaml" };
        read(&mut input, &dir().join(base), &mut order);
        for m in &expect.source.manifests {
            read(&mut input, &dir().join("tests").join(m), &mut order);
        }
        for sub in expect.subtests.iter().filter(|s| s.mutation.is_none()) {
            // A precondition deletes one object before the subtest's requests.
            let mut input = input.clone();
            if let Some(d) = sub.precondition.as_ref().and_then(|p| p.delete.as_ref()) {
                let gone = |ns: &str, name: &str| ns == d.namespace && name == d.name;
                match d.kind.as_str() {
                    "ReferenceGrant" => input.grants.retain(|g| !gone(&g.namespace, &g.name)),
                    "HTTPRoute" => input.http_routes.retain(|r| !gone(&r.namespace, &r.name)),
                    other => panic!("{}: precondition on {other}", expect.test),
                }
            }
            let mut builder = SnapshotBuilder::new(Settings::default());
            let status = gateway_api::compile(
                &input,
                &Options::default(),
                &Arc::new(RetryPolicy::istio_default()),
                &mut builder,
            );
            let snapshot = builder.build();
            let from_client =
                sub.client.as_ref().map(|c| NsName { name: String::new(), namespace: c.namespace.clone() });
            let Some(gw) = sub.gateway.as_ref().or(from_client.as_ref()) else { continue };
            let client = match &sub.client {
                Some(c) => ClientIdentity {
                    namespace: Arc::from(c.namespace.as_str()),
                    labels: [("app", &c.app), ("version", &c.version)]
                        .into_iter()
                        .map(|(k, v)| (Arc::from(k), Arc::from(v.as_str())))
                        .collect(),
                    locality: None,
                },
                None => ClientIdentity::default(),
            };
            let parent_of = |ns: &str, route: &str| {
                let r =
                    status.route(ns, route).unwrap_or_else(|| panic!("{}: no status for {ns}/{route}", expect.test));
                r.parents
                    .iter()
                    .find(|p| p.parent_ref.name == gw.name && p.parent_ref.namespace == gw.namespace)
                    .unwrap_or_else(|| panic!("{}: {ns}/{route} has no parent {}", expect.test, gw.name))
                    .clone()
            };
            for r in &sub.routes_must_be_accepted {
                let accepted = parent_of(&r.namespace, &r.name).conditions.into_iter().find(|c| c.kind == "Accepted");
                assert_eq!(accepted.map(|c| c.status), Some("True"), "{}: {} accepted", expect.test, r.name);
            }
            if let Some(want) = sub.gateway_attached_routes {
                let total: u32 = status
                    .gateway(&gw.namespace, &gw.name)
                    .map(|g| g.listeners.iter().map(|l| l.attached_routes).sum())
                    .unwrap_or(0);
                assert_eq!(total, want, "{}: attachedRoutes of {}", expect.test, gw.name);
                checked += 1;
            }
            if sub.route_must_have_no_accepted_parents {
                for c in &sub.route_conditions {
                    let ns = c.route_namespace.as_deref().unwrap_or(&gw.namespace);
                    let accepted = status
                        .route(ns, &c.route)
                        .into_iter()
                        .flat_map(|r| &r.parents)
                        .any(|p| p.conditions.iter().any(|x| x.kind == "Accepted" && x.status == "True"));
                    assert!(!accepted, "{}: {} has an accepted parent", expect.test, c.route);
                }
            }
            for c in &sub.route_conditions {
                checked += 1;
                let ns = c
                    .route_namespace
                    .as_deref()
                    .or_else(|| {
                        sub.routes_must_be_accepted.iter().find(|r| r.name == c.route).map(|r| r.namespace.as_str())
                    })
                    .unwrap_or(&gw.namespace);
                let parent = parent_of(ns, &c.route);
                let cond = parent.conditions.iter().find(|x| x.kind == c.kind).expect("condition");
                assert_eq!(cond.status, c.status, "{}: {} {}", expect.test, c.route, c.kind);
                if let Some(reason) = &c.reason {
                    assert_eq!(cond.reason, reason, "{}: {} {} reason", expect.test, c.route, c.kind);
                }
            }
            let binding = if is_mesh { Binding::Mesh } else { Binding::gateway(&gw.namespace, &gw.name) };
            let servers: Vec<_> =
                snapshot.gateway(&gw.namespace, &gw.name).map(|g| g.servers.to_vec()).unwrap_or_default();
            // TLS cases need a handshake (end to end); a pod-IP host is a placeholder the suite
            // fills at run time.
            let decidable = |c: &&Case| c.tls.is_none() && !c.request.host.as_deref().unwrap_or("").contains('<');
            for case in sub.cases.iter().filter(decidable) {
                let port = case.gateway_port.unwrap_or(80);
                let on_port: Vec<_> = servers.iter().filter(|s| s.port == port).cloned().collect();
                let listener = (!is_mesh).then(|| Listener::plain(port, on_port));
                // A request without a path asks for `/`.
                let full_path = if case.request.path.is_empty() { "/" } else { case.request.path.as_str() };
                let (path, query) = match full_path.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (full_path, None),
                };
                let headers =
                    Headers(case.request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect());
                let default_host = if is_mesh { "echo" } else { "gateway.example" };
                let host = case.request.host.clone().unwrap_or_else(|| default_host.into());
                let view = RequestView {
                    method: case.request.method.as_deref().unwrap_or("GET"),
                    scheme: "http",
                    authority: &host,
                    path,
                    query,
                    headers: &headers.0,
                    listener_port: (!is_mesh).then_some(port),
                };
                let d = snapshot.decide(&binding, listener.as_ref(), &view, &client, 0);
                let response = case.response.as_ref();
                let want_status =
                    response.and_then(|r| r.status_code.or(r.status_codes.first().copied())).unwrap_or(200);
                let what = format!("{}: {} {}{}", expect.test, host, case.request.path, "");
                match (&d, want_status) {
                    (Decision::Local(l), 200) if l.reason == mesh_core::LocalReason::CorsPreflight => {
                        check_cors(&what, l.cors_headers.as_ref(), response);
                    }
                    (Decision::Forward(f), 200) => {
                        // The suite checks the serving backend only when the case names it.
                        if let Some(backend) = case.backend.as_deref() {
                            let ns = case.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(&gw.namespace);
                            assert_eq!(&*f.destination.host, format!("{backend}.{ns}.svc.cluster.local"), "{what}");
                        }
                        check_cors(&what, f.cors_headers.as_ref(), response);
                        if let Some(want) = case.expected_request.as_ref() {
                            let rewritten = f.rewrite.as_ref();
                            if let Some(p) = &want.path {
                                let seen = rewritten.and_then(|r| r.path.clone()).unwrap_or_else(|| path.to_string());
                                let seen = match query {
                                    Some(q) => format!("{seen}?{q}"),
                                    None => seen,
                                };
                                assert_eq!(&seen, p, "{what}: path the backend sees");
                            }
                            if let Some(h) = &want.host {
                                let seen = rewritten.and_then(|r| r.authority).unwrap_or(&host);
                                assert_eq!(seen, h, "{what}: host the backend sees");
                            }
                        }
                    }
                    (Decision::Local(l), status) if status != 200 => {
                        assert_eq!(l.status, status, "{what}");
                        if let Some(r) = &case.redirect_request {
                            let location = l.location.as_deref().expect("Location");
                            let url = location.to_string();
                            if let Some(s) = &r.scheme {
                                assert!(url.starts_with(&format!("{s}://")), "{what}: {url}");
                            }
                            if let Some(h) = &r.host {
                                assert!(url.contains(&format!("://{h}")), "{what}: {url}");
                            }
                            if let Some(p) = r.port.as_deref().filter(|p| !p.is_empty()) {
                                assert!(url.contains(&format!(":{p}/")), "{what}: {url}");
                            }
                            if let Some(p) = &r.path {
                                let after_host = url.splitn(4, '/').nth(3).map(|rest| format!("/{rest}"));
                                assert_eq!(
                                    after_host.as_deref().map(|x| x.split('?').next().unwrap_or(x)),
                                    Some(p.as_str()),
                                    "{what}"
                                );
                            }
                        }
                    }
                    (other, status) => panic!("{what}: wanted {status}, decided {other:?}"),
                }
                checked += 1;
            }
        }
    }
    checked
}

/// GEP-1294 consumer and producer routes: a route in the client's namespace replaces the
/// Service's own routes for that namespace's clients only (a request it does not match is a
/// 404 for them, as with Istio's namespace-local VirtualService), and other clients keep the
/// producer's routes.
#[test]
fn consumer_routes_replace_producer_routes_for_their_namespace() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: mesh}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo-v1, namespace: mesh}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo-v2, namespace: mesh}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: producer, namespace: mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - backendRefs: [{name: echo-v1, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: consumer, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, namespace: mesh}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: echo-v2, namespace: mesh, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: shop-to-mesh, namespace: mesh}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
"#;
    let mut input = Input::default();
    read_str(&mut input, yaml, &mut 0);
    let (status, snapshot) = compiled(&input);
    for route in ["producer", "consumer"] {
        let ns = if route == "producer" { "mesh" } else { "shop" };
        let parent = &status.route(ns, route).expect("status").parents[0];
        assert!(parent.conditions.iter().all(|c| c.status == "True"), "{route}: {:?}", parent.conditions);
    }
    let none = Vec::new();
    let decide = |client_ns: &str, path: &str| {
        let client = ClientIdentity { namespace: Arc::from(client_ns), ..ClientIdentity::default() };
        decide_short(&snapshot, &Binding::Mesh, &client, ("echo.mesh", path, 80), &none, 0)
    };
    assert_eq!(decide("shop", "/api/x"), "echo-v2", "the consumer route");
    assert_eq!(decide("shop", "/other"), "404", "consumer clients are off the producer's routes");
    assert_eq!(decide("mesh", "/api/x"), "echo-v1", "other clients: the producer route");
    assert_eq!(decide("default", "/other"), "echo-v1");
}

/// GRPCRoute matches as Istio converts them (`createGRPCURIMatch`): service and method exact,
/// service only, method only, regular expressions; headers; the listener takes GRPCRoutes by
/// default; a more specific match wins over an older, broader route.
#[test]
fn grpc_route_matches() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: broad, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: helloworld.Greeter}}]
    backendRefs: [{name: greeter, port: 50051}]
  - matches: [{method: {type: RegularExpression, service: "echo\\..*"}}]
    backendRefs: [{name: echo, port: 50051}]
  - backendRefs: [{name: fallback, port: 50051}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: narrow, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - method: {service: helloworld.Greeter, method: SayHello}
      headers: [{name: x-canary, value: "yes"}]
    backendRefs: [{name: canary, port: 50051}]
  - matches: [{method: {method: Ping}}]
    backendRefs: [{name: ping, port: 50051}]
"#;
    let mut input = Input::default();
    read_str(&mut input, yaml, &mut 0);
    for svc in ["greeter", "echo", "fallback", "canary", "ping"] {
        input.services.push(ServiceRef { namespace: "infra".into(), name: svc.into(), ports: vec![50051] });
    }
    let (status, snapshot) = compiled(&input);
    for name in ["broad", "narrow"] {
        let route = status.route("infra", name).expect("status");
        assert_eq!(route.kind, "GRPCRoute");
        assert!(route.parents[0].conditions.iter().all(|c| c.status == "True"), "{name}: {:?}", route.parents);
    }
    let decide = |path: &str, canary: bool| {
        let headers = if canary { vec![("x-canary".to_string(), "yes".to_string())] } else { Vec::new() };
        let gw = Binding::gateway("infra", "gw");
        decide_short(&snapshot, &gw, &ClientIdentity::default(), ("grpc.example.com", path, 80), &headers, 0)
    };
    assert_eq!(decide("/helloworld.Greeter/SayHello", true), "canary", "service+method+header beats service only");
    assert_eq!(decide("/helloworld.Greeter/SayHello", false), "greeter");
    assert_eq!(decide("/helloworld.Greeter/SayGoodbye", true), "greeter");
    assert_eq!(decide("/echo.Echo/Say", false), "echo", "a service regex");
    assert_eq!(decide("/other.Svc/Ping", false), "ping", "a method in any service");
    assert_eq!(decide("/other.Svc/Call", false), "fallback", "no method match: the rule without matches");
    assert_eq!(decide("/helloworld.GreeterX/SayHello", false), "fallback", "a service is a whole segment");
}

/// Istio's Bookinfo with its Gateway API samples (`samples/bookinfo/gateway-api/`, the files the
/// Gateway API tabs of Istio's traffic-management tasks apply): the ingress route, all traffic to
/// v1, and the 90/10 reviews split, on the per-version Services of `bookinfo-versions.yaml`.
#[test]
fn bookinfo_gateway_api_samples() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/istio-samples/bookinfo");
    let build = |route_files: &[&str]| {
        let mut input = Input::default();
        let mut order = 0;
        for f in
            ["platform/kube/bookinfo.yaml", "platform/kube/bookinfo-versions.yaml", "gateway-api/bookinfo-gateway.yaml"]
                .iter()
                .chain(route_files)
        {
            read(&mut input, &samples.join(f), &mut order);
        }
        let (status, snapshot) = compiled(&input);
        for r in &status.routes {
            for p in &r.parents {
                assert!(p.conditions.iter().all(|c| c.status == "True"), "{}: {:?}", r.name, p.conditions);
            }
        }
        snapshot
    };
    let none = Vec::new();
    let client = ClientIdentity { namespace: Arc::from("default"), ..ClientIdentity::default() };
    let decide = |s: &mesh_core::Snapshot, binding: &Binding, host: &str, path: &str, draw: u64| {
        decide_short(s, binding, &client, (host, path, 80), &none, draw)
    };
    let gw = Binding::gateway("default", "bookinfo-gateway");
    let ingress = build(&[]);
    for (path, want) in [
        ("/productpage", "productpage"),
        ("/static/img/x.png", "productpage"),
        ("/static", "productpage"),
        ("/staticfiles", "404"),
        ("/login", "productpage"),
        ("/api/v1/products/1/reviews", "productpage"),
        ("/productpage/x", "404"),
        ("/", "404"),
    ] {
        assert_eq!(decide(&ingress, &gw, "bookinfo.example.com", path, 0), want, "{path}");
    }
    let v1 = build(&["gateway-api/route-all-v1.yaml"]);
    for svc in ["reviews", "ratings", "details", "productpage"] {
        assert_eq!(decide(&v1, &Binding::Mesh, &format!("{svc}:9080"), "/", 0), format!("{svc}-v1"));
    }
    let split = build(&["gateway-api/route-all-v1.yaml", "gateway-api/route-reviews-90-10.yaml"]);
    let to_v2 = (0..100).filter(|d| decide(&split, &Binding::Mesh, "reviews:9080", "/", *d) == "reviews-v2").count();
    assert_eq!(to_v2, 10, "10 of 100 draws go to v2");
}

/// Every Gateway API object of the upstream conformance manifests and of Istio's Bookinfo samples
/// is valid (they are what clusters accept); each invalid spec below is refused with the CRD's
/// message at the field that carries it.
#[test]
fn validation_accepts_real_manifests_and_refuses_invalid_specs() {
    use mesh_config::gateway_api::validate;
    let mut files = vec![dir().join("base/manifests.yaml"), dir().join("mesh-base/manifests.yaml")];
    for sub in ["tests", "tests/mesh"] {
        for e in std::fs::read_dir(dir().join(sub)).expect("dir") {
            let path = e.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if name.ends_with(".yaml") && !name.ends_with(".expect.yaml") {
                files.push(path);
            }
        }
    }
    files.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/conformance/istio-samples/bookinfo/gateway-api/bookinfo-gateway.yaml"),
    );
    let mut objects = 0;
    for f in &files {
        let mut input = Input::default();
        read(&mut input, f, &mut 0);
        let findings: Vec<_> = input
            .http_routes
            .iter()
            .flat_map(|r| validate::http_route(&r.spec))
            .chain(input.gateways.iter().flat_map(|g| validate::gateway(&g.spec)))
            .chain(input.grants.iter().flat_map(|g| validate::reference_grant(&g.spec)))
            .chain(input.grpc_routes.iter().flat_map(|g| validate::grpc_route(&g.spec)))
            .collect();
        assert!(findings.is_empty(), "{}: {findings:?}", f.display());
        objects += input.http_routes.len() + input.gateways.len() + input.grants.len();
    }
    assert!(objects > 70, "{objects} objects validated");

    let route = |yaml: &str| -> HttpRoute { serde_saphyr::from_str(yaml).expect("spec") };
    let cases: &[(&str, &str, &str)] = &[
        (
            "rules: [{matches: [{path: {type: PathPrefix, value: foo}}], backendRefs: [{name: a, port: 80}]}]",
            "rules[0].matches[0].path",
            "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
        ),
        (
            "rules: [{matches: [{path: {value: /a//b}}]}]",
            "rules[0].matches[0].path",
            "must not contain '//' when type one of ['Exact', 'PathPrefix']",
        ),
        ("rules: [{backendRefs: [{name: a}]}]", "rules[0].backendRefs[0]", "Must have port for Service reference"),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 302}}], backendRefs: [{name: a, port: 80}]}]",
            "rules[0]",
            "RequestRedirect filter must not be used together with backendRefs",
        ),
        (
            "rules: [{filters: [{type: RequestHeaderModifier}]}]",
            "rules[0].filters[0]",
            "filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type",
        ),
        (
            "rules: [{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]",
            "rules[0]",
            "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified",
        ),
        (
            "rules: [{timeouts: {request: 1s, backendRequest: 2s}}]",
            "rules[0].timeouts",
            "backendRequest timeout cannot be longer than request timeout",
        ),
        (
            "parentRefs: [{name: gw}, {name: gw}]",
            "parentRefs",
            "sectionName must be specified when parentRefs includes 2 or more references to the same parent",
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, percent: 5, fraction: {numerator: 1}}}]}]",
            "rules[0].filters[0].requestMirror",
            "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter",
        ),
        (
            "rules: [{filters: [{type: CORS, cors: {allowOrigins: ['*', 'https://a.example']}}]}]",
            "rules[0].filters[0].cors.allowOrigins",
            "AllowOrigins cannot contain '*' alongside other origins",
        ),
        ("hostnames: ['Foo.example.com']", "hostnames[0]", "\"Foo.example.com\" is not a valid host name"),
        (
            "rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: \"a\\u0001b\"}]}}]}]",
            "rules[0].filters[0].requestHeaderModifier.set[0].value",
            "header \"x-a\" value contains invalid characters",
        ),
    ];
    for (yaml, path, message) in cases {
        let findings = validate::http_route(&route(yaml));
        assert!(
            findings.iter().any(|f| f.path == *path && f.message == *message),
            "{yaml}: wanted {path}: {message}, got {findings:?}"
        );
    }
    let gateway: Gateway = serde_saphyr::from_str(
        "gatewayClassName: istio\nlisteners: [{name: a, port: 80, protocol: HTTP}, {name: a, port: 80, protocol: HTTP}]",
    )
    .expect("gateway");
    let findings = validate::gateway(&gateway);
    for m in [
        "Listener name must be unique within the Gateway",
        "Combination of port, protocol and hostname must be unique for each listener",
    ] {
        assert!(findings.iter().any(|f| f.message == m), "{m}: {findings:?}");
    }
}

/// The Gateway API kinds through the loader and the store, as `mesh proxy -f` reads them: the
/// upstream base manifests (Deployments and ConfigMaps among them, skipped) plus a test's
/// manifest route as the compiled module does; an invalid route is refused with its file, line
/// and field path and keeps the last good version; an experimental kind is reported by name.
#[test]
fn gateway_api_through_the_loader_and_the_store() {
    use mesh_config::{CompileOptions, ConfigStore, LoadOptions, Severity, load_str};
    let text =
        |f: &str| std::fs::read_to_string(dir().join(f)).expect("manifest").replace("{GATEWAY_CLASS_NAME}", "istio");
    let options = LoadOptions::default();
    let base = load_str(&text("base/manifests.yaml"), Some("base.yaml"), &options).expect("base");
    assert!(base.skipped.iter().any(|s| s.kind == "Deployment"), "other kinds are skipped, not errors");
    let mut store = ConfigStore::new(CompileOptions::default());
    let mut all = base;
    let route = load_str(&text("tests/httproute-matching.yaml"), Some("matching.yaml"), &options).expect("route");
    all.resources.extend(route.resources);
    let report = store.apply(all);
    assert!(!report.has_rejections(), "{:?}", report.errors().collect::<Vec<_>>());
    let status = store.compiled_gateway_api();
    let parent = &status.route("gateway-conformance-infra", "matching").expect("status").parents[0];
    assert!(parent.conditions.iter().all(|c| c.status == "True"), "{:?}", parent.conditions);

    let snapshot = store.snapshot();
    let servers =
        snapshot.gateway("gateway-conformance-infra", "same-namespace").map(|g| g.servers.to_vec()).expect("gateway");
    let listener = Listener::plain(80, servers);
    let none = Vec::new();
    let decide = |s: &mesh_core::Snapshot, path: &str| {
        let view = RequestView {
            method: "GET",
            scheme: "http",
            authority: "gw.example",
            path,
            query: None,
            headers: &none,
            listener_port: Some(80),
        };
        match s.decide(
            &Binding::gateway("gateway-conformance-infra", "same-namespace"),
            Some(&listener),
            &view,
            &ClientIdentity::default(),
            0,
        ) {
            Decision::Forward(f) => f.destination.host.split('.').next().unwrap_or("").to_string(),
            Decision::Local(l) => l.status.to_string(),
        }
    };
    assert_eq!(decide(snapshot, "/v2/x"), "infra-backend-v2");
    assert_eq!(decide(snapshot, "/v2x"), "infra-backend-v1");

    // An invalid update: refused with its position, the last good route keeps serving.
    let bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: matching\n  namespace: gateway-conformance-infra\nspec:\n  parentRefs:\n  - name: same-namespace\n  rules:\n  - matches:\n    - path:\n        type: PathPrefix\n        value: v2\n    backendRefs:\n    - name: infra-backend-v2\n      port: 8080\n";
    let mut update = load_str(&text("base/manifests.yaml"), Some("base.yaml"), &options).expect("base");
    update.resources.extend(load_str(bad, Some("bad.yaml"), &options).expect("bad").resources);
    let report = store.apply(update);
    let errors: Vec<_> = report.errors().collect();
    let e = errors.iter().find(|d| d.resource.as_ref().is_some_and(|r| &*r.name == "matching")).expect("refused");
    assert_eq!(
        (e.file.as_deref(), e.line, e.path.as_str()),
        (Some("bad.yaml"), 11, "rules[0].matches[0].path"),
        "{e:?}"
    );
    assert!(e.message.contains("absolute path"), "{}", e.message);
    assert_eq!(decide(store.snapshot(), "/v2/x"), "infra-backend-v2", "the last good version serves");

    let tls = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: t, namespace: ns}\nspec: {}\n";
    let loaded = load_str(tls, Some("tls.yaml"), &options).expect("tls");
    let d = loaded.diagnostics.first().expect("reported");
    assert_eq!(d.severity, Severity::Unsupported);
    assert!(d.message.contains("TLSRoute"), "{}", d.message);
}

/// A rule with one resolved and one unresolved backend: the unresolved one's share is answered
/// 500 by the decision (the spec's rule), the other share is forwarded; the route's
/// ResolvedRefs says why.
#[test]
fn an_unresolved_backend_share_is_a_500() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: real, namespace: infra}
spec: {ports: [{port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: half, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: real, port: 8080}, {name: missing, port: 8080}]
"#;
    let mut input = Input::default();
    read_str(&mut input, yaml, &mut 0);
    let (status, snapshot) = compiled(&input);
    let resolved = &status.route("infra", "half").expect("status").parents[0].conditions[1];
    assert_eq!((resolved.status, resolved.reason), ("False", "BackendNotFound"));
    let servers = snapshot.gateway("infra", "gw").map(|g| g.servers.to_vec()).unwrap_or_default();
    let listener = Listener::plain(80, servers);
    let none = Vec::new();
    let mut answers = std::collections::BTreeMap::new();
    for draw in 0..100 {
        let view = RequestView {
            method: "GET",
            scheme: "http",
            authority: "a.example",
            path: "/",
            query: None,
            headers: &none,
            listener_port: Some(80),
        };
        let d =
            snapshot.decide(&Binding::gateway("infra", "gw"), Some(&listener), &view, &ClientIdentity::default(), draw);
        let what = match d {
            Decision::Forward(f) => f.destination.host.to_string(),
            Decision::Local(l) => format!("{} {}", l.status, l.reason.as_str()),
        };
        *answers.entry(what).or_insert(0) += 1;
    }
    assert_eq!(answers.get("real.infra.svc.cluster.local"), Some(&50), "{answers:?}");
    assert_eq!(answers.get("500 backendNotFound"), Some(&50), "{answers:?}");
}

/// A VirtualService and an HTTPRoute both routing one host for the mesh: the VirtualService is
/// used, and the compile warns that the HTTPRoute is not.
#[test]
fn a_virtual_service_shadows_an_http_route_with_a_warning() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {ports: [{port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2, namespace: default}
spec: {ports: [{port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews-v2, port: 9080}]}]
"#;
    let loaded = mesh_config::load_str(yaml, Some("both.yaml"), &mesh_config::LoadOptions::default()).expect("yaml");
    let compiled = mesh_config::compile(&loaded.resources, &mesh_config::CompileOptions::default());
    let warning = compiled.diagnostics.iter().find(|d| d.message.contains("reviews.default.svc.cluster.local"));
    assert!(warning.is_some_and(|d| d.severity == mesh_config::Severity::Warning), "{:?}", compiled.diagnostics);
    let none = Vec::new();
    let view = RequestView {
        method: "GET",
        scheme: "http",
        authority: "reviews:9080",
        path: "/",
        query: None,
        headers: &none,
        listener_port: None,
    };
    let client = ClientIdentity { namespace: Arc::from("default"), ..ClientIdentity::default() };
    match compiled.snapshot.decide(&Binding::Mesh, None, &view, &client, 0) {
        Decision::Forward(f) => {
            assert_eq!(f.destination.subset.as_deref(), Some("v1"), "the VirtualService routes: {f:?}")
        }
        Decision::Local(l) => panic!("{l:?}"),
    }
}

/// Routes of equal precedence: the older one wins (`metadata.creationTimestamp`, as
/// `kubectl get -o yaml` prints it and the API server sends it), whatever the names say; without
/// timestamps, namespace and name decide.
#[test]
fn the_older_route_wins_a_tie() {
    let route = |name: &str, created: Option<&str>, backend: &str| {
        let ts = created.map(|c| format!(", creationTimestamp: \"{c}\"")).unwrap_or_default();
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: infra{ts}}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules: [{{backendRefs: [{{name: {backend}, port: 80}}]}}]\n---\n"
        )
    };
    let base = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: infra}\nspec:\n  gatewayClassName: istio\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: one, namespace: infra}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: two, namespace: infra}\nspec: {ports: [{port: 80}]}\n---\n";
    let winner = |yaml: String| {
        let loaded = mesh_config::load_str(&yaml, None, &mesh_config::LoadOptions::default()).expect("yaml");
        let compiled = mesh_config::compile(&loaded.resources, &mesh_config::CompileOptions::default());
        let gw = Binding::gateway("infra", "gw");
        decide_short(&compiled.snapshot, &gw, &ClientIdentity::default(), ("x.example", "/", 80), &Vec::new(), 0)
    };
    let older_b = format!(
        "{base}{}{}",
        route("a", Some("2026-03-01T10:00:00Z"), "one"),
        route("b", Some("2026-01-15T08:30:00Z"), "two")
    );
    assert_eq!(winner(older_b), "two", "b is older");
    let no_times = format!("{base}{}{}", route("b", None, "two"), route("a", None, "one"));
    assert_eq!(winner(no_times), "one", "no timestamps: a before b");
}

/// Listener conditions: a TCP listener is not served (`UnsupportedProtocol`), HTTP and HTTPS on
/// one port conflict (`ProtocolConflict`) and neither is programmed nor given a server; a plain
/// HTTP listener elsewhere is.
#[test]
fn listener_conditions() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: istio
  listeners:
  - {name: web, port: 80, protocol: HTTP}
  - {name: tcp, port: 9000, protocol: TCP}
  - {name: plain, port: 8443, protocol: HTTP}
  - {name: secure, port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: c}]}}
"#;
    let mut input = Input::default();
    read_str(&mut input, yaml, &mut 0);
    let (status, snapshot) = compiled(&input);
    let gw = status.gateway("infra", "gw").expect("status");
    let condition = |listener: &str, kind: &str| {
        let l = gw.listeners.iter().find(|l| l.name == listener).expect("listener");
        let c = l.conditions.iter().find(|c| c.kind == kind).expect("condition");
        (c.status, c.reason)
    };
    assert_eq!(condition("web", "Programmed"), ("True", "Programmed"));
    assert_eq!(condition("tcp", "Accepted"), ("False", "UnsupportedProtocol"));
    assert_eq!(condition("plain", "Conflicted"), ("True", "ProtocolConflict"));
    assert_eq!(condition("secure", "Conflicted"), ("True", "ProtocolConflict"));
    assert_eq!(condition("secure", "Programmed"), ("False", "Invalid"));
    let ports: Vec<u16> = snapshot.gateway("infra", "gw").expect("gateway").servers.iter().map(|s| s.port).collect();
    assert_eq!(ports, [80], "only the programmed listener gets a server");
}

/// Status conditions carry the object's `metadata.generation` as `observedGeneration` (1 for a
/// file's object without one), as the conformance suite's generation-bump test reads them; a
/// Gateway none of whose listeners is programmed is not programmed either.
#[test]
fn conditions_observe_the_generation() {
    let yaml = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: infra, generation: 4}\nspec:\n  gatewayClassName: istio\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: tcp-only, namespace: infra}\nspec:\n  gatewayClassName: istio\n  listeners: [{name: tcp, port: 9000, protocol: TCP}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: infra, generation: 7}\nspec:\n  parentRefs: [{name: gw}]\n";
    let loaded = mesh_config::load_str(yaml, None, &mesh_config::LoadOptions::default()).expect("yaml");
    let compiled = mesh_config::compile(&loaded.resources, &mesh_config::CompileOptions::default());
    let status = &compiled.gateway_api;
    let gw = status.gateway("infra", "gw").expect("gateway");
    assert!(
        gw.conditions.iter().chain(gw.listeners.iter().flat_map(|l| &l.conditions)).all(|c| c.observed_generation == 4)
    );
    let route = status.route("infra", "r").expect("route");
    assert!(route.parents[0].conditions.iter().all(|c| c.observed_generation == 7), "{route:?}");
    let tcp = status.gateway("infra", "tcp-only").expect("gateway");
    let programmed = tcp.conditions.iter().find(|c| c.kind == "Programmed").expect("programmed");
    assert_eq!((programmed.status, programmed.reason, programmed.observed_generation), ("False", "Invalid", 1));
}
