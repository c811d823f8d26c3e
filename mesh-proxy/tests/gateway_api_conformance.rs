//! The upstream Gateway API conformance cases (`testdata/conformance/gateway-api/`, copied from
//! `kubernetes-sigs/gateway-api` with expectations transcribed from its Go tests) run end to end
//! through `mesh proxy` (issue 18), as the upstream suite runs them against a cluster:
//!
//! - **Cluster stand-in.** The base manifests (`base/` for north-south tests, `mesh-base/` for the
//!   mesh ones) plus the test's manifests are written to one config directory per test. Every
//!   Deployment becomes one echo "pod" on loopback ([`support::echo`], answering JSON with the
//!   request it saw and its pod and namespace, as the suite's `echo-basic` does), shared by all
//!   tests; every Service with a selector gets one EndpointSlice per selected pod (its ports,
//!   by name, at the pod's port), as the endpoints controller would write. North-south pods
//!   listen on 127.0.0.1; mesh pods each on their own loopback address (127.0.0.2...), because a
//!   mesh Service (`echo`) selects two pods and a request may name a pod IP. Objects are given
//!   `creationTimestamp`s in file order (the suite applies them in that order). The EndpointSlices
//!   a test leaves empty (`httproute-service-types`) are filled with the `infra-backend-v1` pod,
//!   as the Go test does; `{GATEWAY_CLASS_NAME}` is `istio`. The HTTPS listeners' certificate
//!   Secret (`tls-validity-checks-certificate`, which the suite creates at start) is generated.
//! - **Status.** `mesh validate --status -o json` on that directory must report each subtest's
//!   `routesMustBeAccepted`, `routeConditions` (type, status, reason),
//!   `routeMustHaveNoAcceptedParents`, `gatewayAttachedRoutes` and `listenerStatus` (attached
//!   routes, Accepted, ResolvedRefs) for the subtest's Gateway.
//! - **Requests.** One `mesh proxy --gateway NS/NAME` per Gateway a test sends to (each listener
//!   port mapped with `--port-map PORT=127.0.0.1:0`), or one `mesh proxy --listen` in the
//!   client's namespace for a mesh test; tests run concurrently, and so do a test's cases. Each
//!   case is sent once and compared as `conformance/utils/http/http.go` (`CompareRoundTrip`)
//!   compares it: the status (one of `statusCodes`; a 408/504 matches any expected timeout);
//!   for 200/204 the request the backend saw (`expectedRequest` defaults to the request sent:
//!   path with query, method, host when given, headers joined with `,`, absent headers), the
//!   serving pod's name prefix (`backend`) and namespace, response headers (`headers`,
//!   `validHeaderValues`, `absentHeaders`, `ignoreWhitespace`); a body that is not JSON means the
//!   gateway answered itself (a CORS preflight): only the method is assumed. For a 3xx, the
//!   `Location`'s scheme and path (default: the request's), host (when given) and port (when
//!   not given: absent or the scheme's default). The default `Host` is the Gateway's address as
//!   `CalculateHost` writes it (`127.0.0.1`, with `:PORT` unless the port is 80); a mesh request
//!   goes to `request.host` (default `echo`). Mirrors (`mirroredTo`) must reach the named pods;
//!   with `percent`, their share of 500 requests must be within 3 standard deviations
//!   (`mirrorDistributionCheck`); `expectedWeights` is checked as `utils/weight` does (500
//!   requests, 5% tolerance, a zero weight gets nothing). Retry cases append the
//!   `backendSimulation` query (`delayRetry`, `responseCode`, `succeedAfter`, a fresh `uuid`).
//!   Mesh cases are checked as the mesh harness (`utils/echo/pod.go`) checks them: status,
//!   request and response headers, serving pod. HTTPS cases connect with the case's SNI and
//!   trust the generated certificate.
//!
//! Where this differs from the Go harness: a case is sent once, not until consistent (the proxy
//! has read its config when it prints its address); `X-Echo-Set-Header` is sent only when the
//! case sets response headers, and mirrored cases carry an `x-conformance-request-id` header so
//! their copies can be found in the echo pod's log; the mesh pod-IP placeholder
//! (`<pod IP of the echo-v2 pod>:8080`) is that pod's loopback address and its own port. The file
//! needs the `kubernetes` feature (on by default): YAML is read with `kube`'s reader, as
//! mesh-proxy's tests have no YAML dependency of their own.
//!
//! Not run end to end, with why (every other test in the directory runs):
//! - `httproute-backend-request-redirect`, `httproute-backend-url-rewrite`: RequestRedirect and
//!   URLRewrite as per-backend filters, which Istio does not serve (`buildHTTPDestination` in
//!   `pilot/pkg/config/kube/gateway/conversion.go` accepts only header modifiers there), nor
//!   does meshwork: as Istio, the rule is left out and the route's `ResolvedRefs` is `False`
//!   (`InvalidFilter`), which `per_backend_filters_are_reported_not_served` checks.
//! - `mesh/mesh-frontend-hostname`: `SupportMeshClusterIPMatching`: the request is sent to one
//!   Service's ClusterIP with another Service's name as `Host`; `mesh proxy` is an explicit proxy
//!   that routes by `Host` and has no ClusterIPs to intercept.
//!
//! Also not checked here: `routeListeners` (which listener a route attached to) and a listener's
//! `supportedKinds`, which `mesh validate --status` does not print; the `mutation` of
//! `httproute-observed-generation-bump` (a patch, then `observedGeneration` on every condition:
//! status history, checked in `mesh-config`'s status tests): its conditions before the patch are.

#![cfg(feature = "kubernetes")]

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Value, json};
use support::echo::{self, EchoPod};
use support::*;

#[path = "conformance_expect.rs"]
mod expect;

use expect::{Captured, Case, Expect, Sent, Subtest};

/// Tests not run end to end, with why (see the module docs).
const NOT_RUN: &[(&str, &str)] = &[
    ("httproute-backend-request-redirect", "RequestRedirect as a per-backend filter: not served by Istio or meshwork"),
    ("httproute-backend-url-rewrite", "URLRewrite as a per-backend filter: not served by Istio or meshwork"),
    ("mesh/mesh-frontend-hostname", "SupportMeshClusterIPMatching: needs ClusterIP interception"),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/gateway-api")
}

/// Every expectation file, as `name` (`mesh/...` for the mesh ones).
fn all_tests() -> Vec<String> {
    let mut names = Vec::new();
    for (sub, prefix) in [("tests", ""), ("tests/mesh", "mesh/")] {
        for e in std::fs::read_dir(corpus().join(sub)).expect("tests dir") {
            let file = e.expect("entry").file_name().into_string().expect("utf-8");
            if let Some(n) = file.strip_suffix(".expect.yaml") {
                names.push(format!("{prefix}{n}"));
            }
        }
    }
    names.sort();
    names
}

/// The manifests' documents (`{GATEWAY_CLASS_NAME}` is `istio`).
fn manifest(relative: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(corpus().join(relative)).expect("manifest");
    expect::yaml_documents(&text.replace("{GATEWAY_CLASS_NAME}", "istio"))
}

fn meta<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc["metadata"][key].as_str().unwrap_or("")
}

/// The echo pods of every Deployment in the corpus, started once.
struct Pods {
    pods: Vec<(EchoPod, BTreeMap<String, String>)>,
}

impl Pods {
    async fn start(docs: &[Value]) -> Pods {
        let mut pods: Vec<(EchoPod, BTreeMap<String, String>)> = Vec::new();
        let mut mesh_ip = 1u8;
        for d in docs.iter().filter(|d| d["kind"] == "Deployment") {
            let (ns, name) = (meta(d, "namespace"), meta(d, "name"));
            if pods.iter().any(|(p, _)| p.namespace == ns && p.app == name) {
                continue;
            }
            let labels: BTreeMap<String, String> =
                serde_json::from_value(d["spec"]["template"]["metadata"]["labels"].clone()).unwrap_or_default();
            let ip = if ns.starts_with("gateway-conformance-mesh") {
                mesh_ip += 1;
                Ipv4Addr::new(127, 0, 0, mesh_ip)
            } else {
                Ipv4Addr::LOCALHOST
            };
            pods.push((echo::start(name, ns, IpAddr::V4(ip)).await, labels));
        }
        Pods { pods }
    }

    fn selected<'a>(
        &'a self,
        ns: &'a str,
        selector: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a EchoPod> {
        self.pods
            .iter()
            .filter(move |(p, labels)| {
                p.namespace == ns && !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(p, _)| p)
    }

    fn find(&self, ns: &str, app: &str) -> &EchoPod {
        self.pods.iter().map(|(p, _)| p).find(|p| p.namespace == ns && p.app == app).expect("pod")
    }
}

/// An EndpointSlice for `service` (its `ports`) with one pod.
fn slice(service: &Value, name: &str, pod: &EchoPod) -> Value {
    let ports: Vec<Value> = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let mut port = json!({"port": pod.addr.port(), "protocol": p["protocol"].as_str().unwrap_or("TCP")});
            if let Some(n) = p["name"].as_str() {
                port["name"] = json!(n);
            }
            if let Some(a) = p["appProtocol"].as_str() {
                port["appProtocol"] = json!(a);
            }
            port
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": meta(service, "namespace"),
                     "labels": {"kubernetes.io/service-name": meta(service, "name")}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": [{"addresses": [pod.addr.ip().to_string()], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "name": pod.pod, "namespace": pod.namespace}}],
    })
}

/// The listener certificate the suite creates (`MustCreateSelfSignedCertSecret`), for `names`.
fn certificate(names: Vec<String>) -> (Value, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(names).expect("certificate");
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "tls-validity-checks-certificate", "namespace": "gateway-conformance-infra"},
        "stringData": {"tls.crt": cert.cert.pem(), "tls.key": cert.signing_key.serialize_pem()},
    });
    (secret, cert.cert.der().to_vec())
}

/// One test's config directory: its documents as the cluster would hold them.
fn write_config(name: &str, docs: Vec<Value>, pods: &Pods, secret: &Value) -> PathBuf {
    let mut out: Vec<Value> = Vec::new();
    for (i, mut d) in docs.into_iter().enumerate() {
        if d["kind"] == "Deployment" || d["kind"] == "ConfigMap" {
            continue;
        }
        if d["metadata"]["creationTimestamp"].is_null() {
            d["metadata"]["creationTimestamp"] = json!(format!("2026-01-01T{:02}:{:02}:00Z", i / 60, i % 60));
        }
        if d["kind"] == "Service" {
            let ns = meta(&d, "namespace").to_string();
            let selector: BTreeMap<String, String> =
                serde_json::from_value(d["spec"]["selector"].clone()).unwrap_or_default();
            for (n, pod) in pods.selected(&ns, &selector).enumerate() {
                out.push(slice(&d, &format!("{}-{n}", meta(&d, "name")), pod));
            }
        }
        if d["kind"] == "EndpointSlice" && d["endpoints"].is_null() {
            if d["addressType"] != "IPv4" {
                continue; // an IPv4 cluster's pods have no IPv6 addresses
            }
            let pod = pods.find("gateway-conformance-infra", "infra-backend-v1");
            for p in d["ports"].as_array_mut().into_iter().flatten() {
                p["port"] = json!(pod.addr.port());
            }
            d["endpoints"] = json!([{"addresses": [pod.addr.ip().to_string()], "conditions": {"ready": true}}]);
        }
        out.push(d);
    }
    // The Pods the endpoints name (their labels are the endpoints' labels).
    for (pod, labels) in &pods.pods {
        out.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.pod, "namespace": pod.namespace, "labels": labels},
            "spec": {"containers": [{"name": "echo", "image": "echo-basic"}]},
            "status": {"phase": "Running", "podIP": pod.addr.ip().to_string(),
                       "podIPs": [{"ip": pod.addr.ip().to_string()}]},
        }));
    }
    if secret["kind"].is_string() {
        out.push(secret.clone());
    }
    let dir = config_dir(&format!("conformance-{}", name.replace('/', "-")));
    let text: String =
        out.iter().map(|d| format!("---\n{}\n", serde_json::to_string_pretty(d).expect("json"))).collect();
    std::fs::write(dir.join("manifests.yaml"), text).expect("write");
    dir
}

/// `mesh validate --status -o json DIR`.
fn status(dir: &Path) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["validate", "--status", "-o", "json"])
        .arg(dir)
        .output()
        .expect("mesh validate runs");
    serde_json::from_slice(&out.stdout).expect("status json")
}

/// Where a subtest's requests go: a Gateway's listeners or the mesh.
struct Target {
    proxy: Proxy,
    mesh: bool,
}

/// Start the proxy a subtest sends to.
fn start_target(dir: &Path, sub: &Subtest, docs: &[Value]) -> Target {
    if let Some(c) = &sub.client {
        let proxy = start_proxy(dir, &["--listen", "127.0.0.1:0", "-n", &c.namespace]);
        return Target { proxy, mesh: true };
    }
    let gw = sub.gateway.as_ref().expect("a gateway or a client");
    let gateway = docs
        .iter()
        .find(|d| d["kind"] == "Gateway" && meta(d, "name") == gw.name && meta(d, "namespace") == gw.namespace)
        .expect("the subtest's Gateway is in the manifests");
    let mut ports: Vec<u64> =
        gateway["spec"]["listeners"].as_array().into_iter().flatten().filter_map(|l| l["port"].as_u64()).collect();
    ports.sort();
    ports.dedup();
    let name = format!("{}/{}", gw.namespace, gw.name);
    let mut args = vec!["--gateway".to_string(), name];
    for p in ports {
        args.extend(["--port-map".to_string(), format!("{p}=127.0.0.1:0")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Target { proxy: start_proxy(dir, &args), mesh: false }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Cases compared (a distribution check counts once), so that a harness that runs nothing fails.
static CASES_RUN: AtomicU64 = AtomicU64::new(0);

/// Send one case to `target` and compare; the first difference, if any.
async fn run_case(
    test: &str,
    target: &Target,
    case: &Case,
    pods: &Pods,
    roots: &[u8],
) -> Result<(Sent, Captured), String> {
    let mut case = case.clone();
    if let Some(sim) = &case.backend_simulation {
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        case.request.path = format!("{}?{}", case.request.path, sim.query(&format!("{test}-{id}")));
    }
    if let Some(h) = case.request.host.as_mut().filter(|h| h.contains('<')) {
        // `<pod IP of the echo-v2 pod>:8080`: that pod's address (its port is the pod's own).
        let pod = pods.find("gateway-conformance-mesh", "echo-v2");
        *h = pod.addr.to_string();
    }
    let port = case.gateway_port.unwrap_or(if case.tls.is_some() { 443 } else { 80 });
    let (addr, default_host) = if target.mesh {
        (target.proxy.listen().to_string(), "echo".to_string())
    } else {
        let addr = target
            .proxy
            .listeners
            .iter()
            .find(|(_, p)| *p == Some(port))
            .map(|(a, _)| a.clone())
            .ok_or_else(|| format!("{test}: the proxy does not listen on gateway port {port}"))?;
        let host = if port == 80 || (port == 443 && case.tls.is_some()) {
            "127.0.0.1".to_string()
        } else {
            format!("127.0.0.1:{port}")
        };
        (addr, host)
    };
    let mirror_id = (!case.mirrored_to.is_empty()).then(|| NEXT_ID.fetch_add(1, Ordering::SeqCst).to_string());
    let sent = expect::send(&addr, &default_host, &case, mirror_id.as_deref(), roots).await?;
    let captured = expect::compare(&case, &sent, target.mesh)?;
    if let Some(id) = &mirror_id {
        for m in case.mirrored_to.iter().filter(|m| m.percent.is_none()) {
            let pod = pods.find(&m.namespace, &m.name);
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let copies = pod.seen_with(expect::ID_HEADER, id);
                if let Some(c) = copies.first() {
                    let want = case.expected_request.as_ref().and_then(|r| r.path.clone());
                    let want = want.unwrap_or_else(|| case.request.path.clone());
                    if c.path != want {
                        return Err(format!("mirror to {} saw path {}, wanted {want}", m.name, c.path));
                    }
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("no mirrored request reached {}/{}", m.namespace, m.name));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok((sent, captured))
}

/// `expectedWeights`: 500 requests, 10 at a time; each backend's share within 5% (`utils/weight`);
/// up to three tries, as the suite retries the whole check.
async fn check_weights(
    test: &str,
    target: &Target,
    case: &Case,
    weights: &BTreeMap<String, f64>,
    pods: &Pods,
    roots: &[u8],
) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..3 {
        let mut seen: BTreeMap<String, f64> = BTreeMap::new();
        for _ in 0..50 {
            let batch = (0..10).map(|_| run_case(test, target, case, pods, roots));
            for r in futures_util::future::join_all(batch).await {
                let (_, captured) = r?;
                *seen.entry(captured.service()).or_default() += 1.0;
            }
        }
        let total: f64 = seen.values().sum();
        let bad: Vec<String> = weights
            .iter()
            .filter_map(|(backend, want)| {
                let got = seen.get(backend).copied().unwrap_or(0.0) / total;
                let ok = if *want == 0.0 { got == 0.0 } else { (got - want).abs() <= 0.05 };
                (!ok).then(|| format!("{backend}: {got:.3} of the requests, wanted {want}"))
            })
            .collect();
        if bad.is_empty() && seen.keys().all(|k| weights.contains_key(k)) {
            return Ok(());
        }
        last = format!("{bad:?} (seen {seen:?})");
    }
    Err(last)
}

/// `mirrorDistributionCheck`: of 500 requests, the share mirrored to each `mirroredTo` with a
/// `percent` is within 3 standard deviations of it; up to 5 rounds, as the Go test
/// (`numDistributionChecks`) tries.
async fn check_mirror_share(test: &str, target: &Target, case: &Case, pods: &Pods, roots: &[u8]) -> Result<(), String> {
    const N: usize = 500;
    let mut plain = case.clone();
    let mirrors = std::mem::take(&mut plain.mirrored_to);
    let path = plain.request.path.clone();
    let copies = |m: &expect::Mirror, from: usize| {
        let pod = pods.find(&m.namespace, &m.name);
        pod.seen.lock().expect("lock")[from..].iter().filter(|s| s.path == path).count()
    };
    let mut last = String::new();
    for _ in 0..5 {
        let before: Vec<usize> =
            mirrors.iter().map(|m| pods.find(&m.namespace, &m.name).seen.lock().expect("lock").len()).collect();
        for _ in 0..N / 10 {
            let batch = (0..10).map(|_| run_case(test, target, &plain, pods, roots));
            for r in futures_util::future::join_all(batch).await {
                r?;
            }
        }
        // Copies are fire-and-forget: wait until no more arrive.
        let mut counts: Vec<usize> = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let now: Vec<usize> = mirrors.iter().zip(&before).map(|(m, b)| copies(m, *b)).collect();
            if now == counts {
                break;
            }
            counts = now;
        }
        let bad: Vec<String> = mirrors
            .iter()
            .zip(counts)
            .filter_map(|(m, got)| {
                let p = m.percent? / 100.0;
                let (mean, sd) = (N as f64 * p, (N as f64 * p * (1.0 - p)).sqrt());
                ((got as f64 - mean).abs() > 3.0 * sd)
                    .then(|| format!("{got} of {N} mirrored to {}, wanted {mean} +/- {:.1}", m.name, 3.0 * sd))
            })
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        last = bad.join("; ");
    }
    Err(last)
}

/// Run one conformance test end to end; its failures.
async fn run_test(
    name: String,
    pods: Arc<Pods>,
    base: Arc<Vec<Value>>,
    mesh_base: Arc<Vec<Value>>,
    secret: Arc<(Value, Vec<u8>)>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let expect = Expect::read(&corpus().join("tests").join(format!("{name}.expect.yaml")));
    let mut docs: Vec<Value> = if name.starts_with("mesh/") { mesh_base.to_vec() } else { base.to_vec() };
    for m in &expect.source.manifests {
        docs.extend(manifest(&format!("tests/{m}")));
    }
    for (i, sub) in expect.subtests.iter().enumerate() {
        let mut docs = docs.clone();
        if let Some(d) = sub.precondition.as_ref().and_then(|p| p.delete.as_ref()) {
            docs.retain(|x| {
                !(x["kind"] == d.kind.as_str() && meta(x, "name") == d.name && meta(x, "namespace") == d.namespace)
            });
        }
        let dir = write_config(&format!("{name}-{i}"), docs.clone(), &pods, &secret.0);
        let status = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || status(&dir)
        })
        .await
        .expect("status");
        expect::check_status(&name, sub, &status, &mut failures);
        if sub.cases.is_empty() {
            continue;
        }
        let target = tokio::task::spawn_blocking({
            let (dir, sub, docs) = (dir.clone(), sub.clone(), docs.clone());
            move || start_target(&dir, &sub, &docs)
        })
        .await
        .expect("proxy");
        if !sub.expected_weights.is_empty() {
            CASES_RUN.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = check_weights(&name, &target, &sub.cases[0], &sub.expected_weights, &pods, &secret.1).await
            {
                failures.push(format!("{name}: weights: {e}"));
            }
            continue;
        }
        let runs = sub.cases.iter().enumerate().map(|(n, case)| {
            let (name, target, pods, roots) = (&name, &target, &pods, &secret.1);
            async move {
                CASES_RUN.fetch_add(1, Ordering::SeqCst);
                let what = format!("{name} case {n} ({})", case.describe());
                let result = if case.mirrored_to.iter().any(|m| m.percent.is_some()) {
                    check_mirror_share(name, target, case, pods, roots).await
                } else {
                    run_case(name, target, case, pods, roots).await.map(|_| ())
                };
                result.err().map(|e| format!("{what}: {e}"))
            }
        });
        failures.extend(futures_util::future::join_all(runs).await.into_iter().flatten());
    }
    failures
}

/// The comparison finds what differs (a harness that passes everything proves nothing): the
/// wrong backend, a header the backend did not see, a wrong redirect port.
#[test]
fn the_comparison_catches_differences() {
    let echoed = |pod: &str, headers: Value| Sent {
        scheme: "http",
        path: "/".into(),
        method: "GET".into(),
        status: 200,
        headers: [(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"))]
            .into_iter()
            .collect(),
        body: json!({"path": "/", "host": "x", "method": "GET", "headers": headers,
                     "namespace": "gateway-conformance-infra", "pod": pod})
        .to_string()
        .into(),
    };
    let mut case =
        Case { backend: "infra-backend-v1".into(), namespace: "gateway-conformance-infra".into(), ..Case::default() };
    case.request.path = "/".into();
    assert!(expect::compare(&case, &echoed("infra-backend-v1-abc", json!({})), false).is_ok());
    assert!(expect::compare(&case, &echoed("infra-backend-v2-abc", json!({})), false).is_err());
    case.expected_request = Some(expect::ExpectedRequest {
        path: Some("/".into()),
        headers: Some([("X-Header-Add".to_string(), "a,b".to_string())].into()),
        ..Default::default()
    });
    assert!(
        expect::compare(&case, &echoed("infra-backend-v1-abc", json!({"X-Header-Add": ["a", "b"]})), false).is_ok()
    );
    assert!(expect::compare(&case, &echoed("infra-backend-v1-abc", json!({"X-Header-Add": ["a"]})), false).is_err());
    let mut redirect = echoed("", json!({}));
    redirect.status = 302;
    redirect.headers.insert(http::header::LOCATION, http::HeaderValue::from_static("http://example.org:8080/"));
    case.response.status_code = Some(302);
    case.redirect_request = Some(expect::Redirect { port: Some("8083".into()), ..Default::default() });
    assert!(expect::compare(&case, &redirect, false).is_err());
    case.redirect_request = Some(expect::Redirect { port: Some("8080".into()), ..Default::default() });
    assert!(expect::compare(&case, &redirect, false).is_ok());
}

/// The two per-backend filter tests are not served, and not silently: the rule is left out and
/// the route's `ResolvedRefs` says why, as Istio reports it.
#[test]
fn per_backend_filters_are_reported_not_served() {
    for test in ["httproute-backend-request-redirect", "httproute-backend-url-rewrite"] {
        let expect = Expect::read(&corpus().join("tests").join(format!("{test}.expect.yaml")));
        let mut docs = manifest("base/manifests.yaml");
        for m in &expect.source.manifests {
            docs.extend(manifest(&format!("tests/{m}")));
        }
        let route = docs.iter().rev().find(|d| d["kind"] == "HTTPRoute").map(|d| meta(d, "name").to_string());
        let dir = write_config(&format!("{test}-status"), docs, &Pods { pods: Vec::new() }, &json!({}));
        let status = status(&dir);
        let parent = status["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| Some(r["name"].as_str().unwrap_or("").to_string()) == route)
            .map(|r| r["parents"][0]["conditions"].clone())
            .expect("route status");
        let resolved = parent.as_array().into_iter().flatten().find(|c| c["type"] == "ResolvedRefs").cloned();
        let resolved = resolved.expect("ResolvedRefs");
        assert_eq!((&resolved["status"], &resolved["reason"]), (&json!("False"), &json!("InvalidFilter")), "{test}");
    }
}

#[test]
fn every_conformance_test_runs_or_is_listed() {
    for n in NOT_RUN {
        assert!(all_tests().iter().any(|t| t == n.0), "{} is listed but has no expectation file", n.0);
    }
    assert!(all_tests().len() >= 50, "the corpus is there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_conformance_end_to_end() {
    let started = Instant::now();
    let base = Arc::new(manifest("base/manifests.yaml"));
    let mesh_base = Arc::new(manifest("mesh-base/manifests.yaml"));
    let tests: Vec<String> = all_tests().into_iter().filter(|t| !NOT_RUN.iter().any(|(n, _)| n == t)).collect();
    let mut deployments: Vec<Value> = base.iter().chain(mesh_base.iter()).cloned().collect();
    let mut server_names = vec!["*.org".to_string(), "*.wildcard.org".to_string()];
    for t in &tests {
        let e = Expect::read(&corpus().join("tests").join(format!("{t}.expect.yaml")));
        for m in &e.source.manifests {
            deployments.extend(manifest(&format!("tests/{m}")));
        }
        for c in e.subtests.iter().flat_map(|s| &s.cases) {
            server_names.extend(c.tls.as_ref().map(|t| t.server_name.clone()));
        }
    }
    let pods = Arc::new(Pods::start(&deployments).await);
    let secret = Arc::new(certificate(server_names));
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let runs = tests.iter().map(|t| {
        let (t, pods, base, mesh_base, secret, limit) =
            (t.clone(), pods.clone(), base.clone(), mesh_base.clone(), secret.clone(), limit.clone());
        tokio::spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            run_test(t, pods, base, mesh_base, secret).await
        })
    });
    let mut failures: Vec<String> = Vec::new();
    for r in futures_util::future::join_all(runs).await {
        failures.extend(r.expect("test task"));
    }
    let cases = CASES_RUN.load(Ordering::SeqCst);
    eprintln!("{} conformance tests, {cases} cases, end to end in {:?}", tests.len(), started.elapsed());
    assert!(cases >= 200, "every runnable case ran ({cases})");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
