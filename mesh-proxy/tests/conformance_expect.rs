//! The Gateway API conformance expectation files (`testdata/conformance/gateway-api/tests/
//! *.expect.yaml`, schema in `testdata/conformance/README.md`) and the client side of a case:
//! send the request as `conformance/utils/roundtripper` does and compare what came back as
//! `conformance/utils/http/http.go` (`CompareRoundTrip`) does; and a subtest's status
//! expectations against `mesh validate --status -o json`. Used by `gateway_api_conformance.rs`;
//! as a test target of its own it has no tests.
// Compiled standalone too (every `tests/*.rs` is a test target): the fields are the schema's,
// documented in `testdata/conformance/README.md`.
#![cfg(feature = "kubernetes")]
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::{Value, json};

/// The documents of a multi-document YAML text, as JSON values.
///
/// The test crates of mesh-proxy have no YAML dependency of their own; the kubeconfig reader of
/// `kube` (a dependency with the `kubernetes` feature) parses YAML and keeps a named extension's
/// value as JSON, so each document is read as one.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if current.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
                docs.push(yaml_document(&current));
            }
            current.clear();
        } else {
            current.push_str("    ");
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

fn yaml_document(indented: &str) -> Value {
    let wrapper = format!("extensions:\n- name: doc\n  extension:\n{indented}");
    let config = kube::config::Kubeconfig::from_yaml(&wrapper).expect("a YAML document");
    config.extensions.and_then(|mut e| e.pop()).map(|e| e.extension).unwrap_or(Value::Null)
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct Expect {
    pub test: String,
    pub source: Source,
    pub subtests: Vec<Subtest>,
}

impl Expect {
    pub fn read(path: &Path) -> Expect {
        let text = std::fs::read_to_string(path).expect("expectation file");
        let doc = yaml_documents(&text).into_iter().next().expect("one document");
        serde_json::from_value(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct Source {
    pub manifests: Vec<String>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct Subtest {
    pub gateway: Option<NsName>,
    pub client: Option<ClientPod>,
    pub routes_must_be_accepted: Vec<NsName>,
    pub route_conditions: Vec<RouteCondition>,
    pub route_must_have_no_accepted_parents: bool,
    pub precondition: Option<Precondition>,
    pub expected_weights: BTreeMap<String, f64>,
    pub gateway_attached_routes: Option<u64>,
    pub listener_status: Vec<ListenerStatus>,
    pub cases: Vec<Case>,
}

/// A listener's expected status (`kubernetes.GatewayStatusMustHaveListeners`).
#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenerStatus {
    pub name: String,
    pub supported_kinds: Vec<String>,
    pub accepted: Option<bool>,
    pub resolved_refs: Option<bool>,
    pub attached_routes: Option<u64>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct NsName {
    pub name: String,
    pub namespace: String,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct ClientPod {
    pub app: String,
    pub version: String,
    pub namespace: String,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct Precondition {
    pub delete: Option<Deleted>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct Deleted {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteCondition {
    pub route: String,
    pub route_namespace: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct Case {
    pub test_case_name: Option<String>,
    pub gateway_port: Option<u16>,
    pub tls: Option<Tls>,
    pub backend_simulation: Option<BackendSimulation>,
    pub request: Request,
    pub backend_set_response_headers: BTreeMap<String, String>,
    pub expected_request: Option<ExpectedRequest>,
    pub response: Response,
    pub backend: String,
    pub namespace: String,
    pub redirect_request: Option<Redirect>,
    pub mirrored_to: Vec<Mirror>,
}

impl Case {
    /// The name the Go test gives it (`GetTestCaseName`), for messages.
    pub fn describe(&self) -> String {
        if let Some(n) = &self.test_case_name {
            return n.clone();
        }
        let host = self.request.host.as_deref().unwrap_or("");
        format!("request to '{host}{}'", self.request.path)
    }
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct Tls {
    pub server_name: String,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendSimulation {
    pub response_code: Option<String>,
    pub succeed_after: Option<String>,
    pub delay_retry: Option<String>,
}

impl BackendSimulation {
    /// The query the Go test appends (`url.Values.Encode`: keys sorted), with a fresh `uuid`.
    pub fn query(&self, uuid: &str) -> String {
        let mut q = Vec::new();
        for (k, v) in [
            ("delayRetry", &self.delay_retry),
            ("responseCode", &self.response_code),
            ("succeedAfter", &self.succeed_after),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={v}"));
            }
        }
        q.push(format!("uuid={uuid}"));
        q.join("&")
    }
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct Request {
    pub host: Option<String>,
    pub method: Option<String>,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub unfollow_redirect: bool,
    pub protocol: Option<String>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct ExpectedRequest {
    pub host: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub absent_headers: Vec<String>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "camelCase", default)]
pub struct Response {
    pub status_code: Option<u16>,
    pub status_codes: Vec<u16>,
    pub headers: BTreeMap<String, String>,
    pub valid_header_values: BTreeMap<String, Vec<String>>,
    pub absent_headers: Vec<String>,
    pub ignore_whitespace: bool,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(default)]
pub struct Mirror {
    pub name: String,
    pub namespace: String,
    pub percent: Option<f64>,
}

/// The header that marks a request so its mirrored copies can be found.
pub const ID_HEADER: &str = "x-conformance-request-id";

/// What was sent and what came back.
#[derive(Debug)]
pub struct Sent {
    pub scheme: &'static str,
    pub path: String,
    pub method: String,
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// The request as the echo backend reported it (`roundtripper.CapturedRequest`).
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct Captured {
    pub path: String,
    pub host: String,
    pub method: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub namespace: String,
    pub service: String,
    pub pod: String,
}

impl Captured {
    /// The Deployment that answered.
    pub fn service(&self) -> String {
        self.service.clone()
    }
}

/// Send `case` to the proxy at `addr`: `Host` is `request.host` or `default_host`; HTTP/1.1,
/// h2c with prior knowledge, or HTTPS with the case's SNI (trusting the DER certificate `root`).
pub async fn send(
    addr: &str,
    default_host: &str,
    case: &Case,
    mirror_id: Option<&str>,
    root: &[u8],
) -> Result<Sent, String> {
    let r = &case.request;
    let method = r.method.clone().unwrap_or_else(|| "GET".to_string());
    let path = if r.path.is_empty() { "/".to_string() } else { r.path.clone() };
    let host = r.host.clone().unwrap_or_else(|| default_host.to_string());
    let h2 = r.protocol.as_deref().is_some_and(|p| p.starts_with("H2C") || p == "HTTP/2.0");
    let mut req = http::Request::builder().method(method.as_str());
    req = if h2 {
        // `:authority` carries the host.
        req.uri(format!("http://{host}{path}")).version(http::Version::HTTP_2)
    } else {
        req.uri(path.as_str()).header("host", host.as_str())
    };
    for (k, v) in &r.headers {
        if !k.eq_ignore_ascii_case("host") {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !case.backend_set_response_headers.is_empty() {
        let set: Vec<String> = case.backend_set_response_headers.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        req = req.header("X-Echo-Set-Header", set.join(","));
    }
    if let Some(id) = mirror_id {
        req = req.header(ID_HEADER, id);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let scheme = if case.tls.is_some() { "https" } else { "http" };
    let response = tokio::time::timeout(Duration::from_secs(10), async {
        match &case.tls {
            Some(tls) => {
                let stream = tls_connect(tcp, &tls.server_name, root).await?;
                round_trip(TokioIo::new(stream), req, false).await
            }
            None => round_trip(TokioIo::new(tcp), req, h2).await,
        }
    })
    .await
    .map_err(|_| "no response in 10s".to_string())??;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Sent { scheme, path, method, status, headers, body })
}

async fn round_trip<S>(
    io: TokioIo<S>,
    req: http::Request<Empty<Bytes>>,
    h2: bool,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(req).await.map_err(|e| e.to_string())
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(req).await.map_err(|e| e.to_string())
    }
}

async fn tls_connect(
    tcp: tokio::net::TcpStream,
    server_name: &str,
    root: &[u8],
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(root.to_vec())).map_err(|e| e.to_string())?;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))
}

fn joined(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> =
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn is_timeout(status: u16) -> bool {
    status == 408 || status == 504
}

/// Compare as `CompareRoundTrip`; `mesh`: only what the mesh harness (`utils/echo/pod.go`)
/// checks (status, request and response headers, the serving pod).
pub fn compare(case: &Case, sent: &Sent, mesh: bool) -> Result<Captured, String> {
    let want = &case.response;
    let codes: Vec<u16> =
        if want.status_codes.is_empty() { vec![want.status_code.unwrap_or(200)] } else { want.status_codes.clone() };
    let mut captured = Captured::default();
    let json = sent.headers.get("content-type").is_some_and(|v| v == "application/json");
    if json {
        captured = serde_json::from_slice(&sent.body).map_err(|e| format!("echo body: {e}"))?;
    } else {
        // The gateway answered itself: "assume it made the right request".
        captured.method = sent.method.clone();
    }
    if is_timeout(sent.status) && codes.iter().any(|c| is_timeout(*c)) {
        return Ok(captured);
    }
    if !codes.contains(&sent.status) {
        let body = String::from_utf8_lossy(&sent.body);
        return Err(format!("status {}, wanted one of {codes:?} (body {body:.300})", sent.status));
    }
    if sent.status == 200 || sent.status == 204 {
        let default = ExpectedRequest {
            host: case.request.host.clone(),
            method: case.request.method.clone(),
            path: Some(case.request.path.clone()),
            headers: Some(case.request.headers.clone()).filter(|h| !h.is_empty()),
            absent_headers: Vec::new(),
        };
        let er = case.expected_request.clone().unwrap_or(default);
        let seen: BTreeMap<String, String> =
            captured.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.join(","))).collect();
        if !mesh {
            if let Some(h) = er.host.as_ref().filter(|h| !h.is_empty())
                && *h != captured.host
            {
                return Err(format!("backend saw host {}, wanted {h}", captured.host));
            }
            // A request without a path is sent as `/`, and the backend sees `/`.
            let want_path = er.path.clone().unwrap_or_default();
            let want_path = if want_path.is_empty() && json { "/".to_string() } else { want_path };
            if want_path != captured.path {
                return Err(format!("backend saw path {:?}, wanted {want_path:?}", captured.path));
            }
            let method = er.method.clone().unwrap_or_else(|| "GET".into());
            if method != captured.method {
                return Err(format!("backend saw method {}, wanted {method}", captured.method));
            }
            if case.namespace != captured.namespace {
                return Err(format!("served from namespace {:?}, wanted {:?}", captured.namespace, case.namespace));
            }
        }
        for (name, value) in er.headers.iter().flatten() {
            match seen.get(&name.to_ascii_lowercase()) {
                Some(v) if v == value => {}
                other => return Err(format!("backend saw {name}: {other:?}, wanted {value:?} (all: {seen:?})")),
            }
        }
        let squash = |s: &str| if want.ignore_whitespace { s.replace(' ', "") } else { s.to_string() };
        for (name, valid) in &want.valid_header_values {
            let got = joined(&sent.headers, name).map(|v| squash(&v));
            if !got.as_ref().is_some_and(|g| valid.iter().any(|v| squash(v) == *g)) {
                return Err(format!("response {name}: {got:?}, wanted one of {valid:?}"));
            }
        }
        for (name, value) in &want.headers {
            let got = joined(&sent.headers, name).map(|v| squash(&v));
            if got.as_deref() != Some(squash(value).as_str()) {
                return Err(format!("response {name}: {got:?}, wanted {value:?}"));
            }
        }
        for name in &want.absent_headers {
            if let Some(v) = joined(&sent.headers, name) {
                return Err(format!("response has {name}: {v}, wanted none"));
            }
        }
        for name in &er.absent_headers {
            if let Some(v) = seen.get(&name.to_ascii_lowercase()) {
                return Err(format!("backend saw {name}: {v}, wanted none"));
            }
        }
        if !captured.pod.starts_with(&case.backend) {
            return Err(format!("served by pod {:?}, wanted {:?}", captured.pod, case.backend));
        }
    } else if (300..400).contains(&sent.status) && !mesh {
        let Some(want) = &case.redirect_request else { return Ok(captured) };
        let location =
            sent.headers.get("location").and_then(|v| v.to_str().ok()).ok_or("a redirect without Location")?;
        let (scheme, host, port, path) = split_location(location, sent.scheme);
        let want_scheme = want.scheme.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| sent.scheme.to_string());
        let want_path = want
            .path
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| sent.path.split('?').next().unwrap_or("").to_string());
        if let Some(h) = want.host.as_ref().filter(|h| !h.is_empty())
            && *h != host
        {
            return Err(format!("redirect host {host:?}, wanted {h:?} (Location {location})"));
        }
        match want.port.as_deref().filter(|p| !p.is_empty()) {
            Some(p) if p != port => return Err(format!("redirect port {port:?}, wanted {p:?} (Location {location})")),
            None if (scheme == "http" && !port.is_empty() && port != "80")
                || (scheme == "https" && !port.is_empty() && port != "443") =>
            {
                return Err(format!("redirect port {port:?}, wanted the default for {scheme} (Location {location})"));
            }
            _ => {}
        }
        if want_scheme != scheme {
            return Err(format!("redirect scheme {scheme:?}, wanted {want_scheme:?} (Location {location})"));
        }
        if want_path != path {
            return Err(format!("redirect path {path:?}, wanted {want_path:?} (Location {location})"));
        }
    }
    Ok(captured)
}

/// A `Location` as Go's `resp.Location()` reads it: (scheme, hostname, port, path); a relative
/// one is relative to the request.
fn split_location(location: &str, request_scheme: &str) -> (String, String, String, String) {
    let Some((scheme, rest)) = location.split_once("://") else {
        let path = location.split(['?', '#']).next().unwrap_or("").to_string();
        return (request_scheme.to_string(), String::new(), String::new(), path);
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let path = path.split(['?', '#']).next().unwrap_or("").to_string();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h.to_string(), p.to_string()),
        _ => (authority.to_string(), String::new()),
    };
    (scheme.to_ascii_lowercase(), host.trim_matches(['[', ']']).to_string(), port, path)
}

/// The subtest's route status checks against `mesh validate --status`.
pub fn check_status(test: &str, sub: &Subtest, status: &Value, failures: &mut Vec<String>) {
    let Some(gw) = &sub.gateway else { return };
    let parent = |ns: &str, route: &str| -> Option<Value> {
        let r = status["routes"].as_array()?.iter().find(|r| r["namespace"] == ns && r["name"] == route)?;
        r["parents"]
            .as_array()?
            .iter()
            .find(|p| {
                p["parentRef"]["name"] == gw.name.as_str() && p["parentRef"]["namespace"] == gw.namespace.as_str()
            })
            .cloned()
    };
    let condition = |p: &Value, kind: &str| -> Option<Value> {
        p["conditions"].as_array()?.iter().find(|c| c["type"] == kind).cloned()
    };
    let gateway = status["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["namespace"] == gw.namespace.as_str() && g["name"] == gw.name.as_str());
    let listeners = gateway.and_then(|g| g["listeners"].as_array()).cloned().unwrap_or_default();
    if let Some(want) = sub.gateway_attached_routes {
        let got: u64 = listeners.iter().filter_map(|l| l["attachedRoutes"].as_u64()).sum();
        if got != want {
            failures.push(format!("{test}: {} has {got} attached routes, wanted {want}", gw.name));
        }
    }
    for want in &sub.listener_status {
        let Some(l) = listeners.iter().find(|l| l["name"] == want.name.as_str()) else {
            failures.push(format!("{test}: {} has no listener {}", gw.name, want.name));
            continue;
        };
        let is_true = |kind: &str| condition(l, kind).map(|c| c["status"] == "True");
        let checks = [
            ("attachedRoutes", want.attached_routes.map(|n| json!(n)), Some(l["attachedRoutes"].clone())),
            ("Accepted", want.accepted.map(|b| json!(b)), is_true("Accepted").map(|b| json!(b))),
            ("ResolvedRefs", want.resolved_refs.map(|b| json!(b)), is_true("ResolvedRefs").map(|b| json!(b))),
        ];
        for (what, want, got) in checks {
            if want.is_some() && want != got {
                failures.push(format!("{test}: listener {} {what} is {got:?}, wanted {want:?}", l["name"]));
            }
        }
    }
    for r in &sub.routes_must_be_accepted {
        let accepted = parent(&r.namespace, &r.name).and_then(|p| condition(&p, "Accepted"));
        if accepted.as_ref().map(|c| &c["status"]) != Some(&json!("True")) {
            failures
                .push(format!("{test}: route {}/{} not Accepted by {}: {accepted:?}", r.namespace, r.name, gw.name));
        }
    }
    for c in &sub.route_conditions {
        let ns = c
            .route_namespace
            .clone()
            .or_else(|| sub.routes_must_be_accepted.iter().find(|r| r.name == c.route).map(|r| r.namespace.clone()))
            .unwrap_or_else(|| gw.namespace.clone());
        if sub.route_must_have_no_accepted_parents {
            let accepted = status["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["namespace"] == ns.as_str() && r["name"] == c.route.as_str())
                .flat_map(|r| r["parents"].as_array().cloned().unwrap_or_default())
                .any(|p| condition(&p, "Accepted").is_some_and(|a| a["status"] == "True"));
            if accepted {
                failures.push(format!("{test}: route {ns}/{} has an accepted parent", c.route));
            }
        }
        let got = parent(&ns, &c.route).and_then(|p| condition(&p, &c.kind));
        let ok = got.as_ref().is_some_and(|g| {
            g["status"] == c.status.as_str() && c.reason.as_ref().is_none_or(|r| g["reason"] == r.as_str())
        });
        if !ok {
            failures.push(format!(
                "{test}: route {ns}/{} on {}: wanted {}={} ({:?}), got {got:?}",
                c.route, gw.name, c.kind, c.status, c.reason
            ));
        }
    }
}
