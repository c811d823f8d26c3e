//! Differential tables: one configuration, many requests, each asked of `mesh explain -o json`
//! and sent through a running `mesh proxy` whose destinations are echo backends on loopback;
//! the two must agree (see [`Table::run`] for what is compared).
//!
//! Every service a table names is declared by a generated ServiceEntry (STATIC, 127.0.0.1) with
//! one endpoint per version label: each endpoint is its own echo backend, so the backend that
//! answers tells which subset the proxy picked. The tables' DestinationRules name each subset
//! after its `version` label (`v1` -> `version: v1`), as Bookinfo's do.
//!
//! Included with `#[path]` by the test files that use it (it needs `super::support`).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::support::{Proxy, config_dir, start_proxy};

/// The ports every generated ServiceEntry declares, all served by the backend's one port: the
/// request ports the tables use (a request's port must be a port of the service, or the proxy
/// has no endpoint for it).
pub const SERVICE_PORTS: [u16; 6] = [80, 81, 443, 8080, 8443, 9080];

/// Requests per weighted split: each destination's share must be within [`SPLIT_TOLERANCE`]
/// points of its weight's share. For 200 draws at 50%, ±15 points is over 4 standard deviations
/// (at 10%: 7); a destination of weight 10 is missed by all 200 with probability 0.9^200 ≈ 7e-10.
pub const SPLIT_REQUESTS: usize = 200;
/// See [`SPLIT_REQUESTS`].
pub const SPLIT_TOLERANCE: f64 = 15.0;

/// One row of a table: a request line `METHOD scheme://authority/path?query` (as in
/// `tests/routing.rs`), its headers, and the outcome `tests/routing.rs` expects, written as it
/// writes them: `subset@host` (`-` for no subset, `+` between weighted destinations), `404`,
/// `default:host`, `redirect CODE LOCATION`, `respond STATUS`.
#[derive(Debug, Clone)]
pub struct Case {
    pub line: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    pub want: String,
    /// The path (and query) the backend must see, when the row says (rewrites).
    pub path: Option<&'static str>,
}

/// A row: `line` is expected to have outcome `want`.
pub fn case(line: &'static str, want: impl Into<String>) -> Case {
    Case { line, headers: Vec::new(), want: want.into(), path: None }
}

impl Case {
    /// With request header `name: value`.
    pub fn header(mut self, name: &'static str, value: &'static str) -> Case {
        self.headers.push((name, value));
        self
    }

    /// The backend sees `path` (after a rewrite).
    pub fn path(mut self, path: &'static str) -> Case {
        self.path = Some(path);
        self
    }
}

/// A request line, parsed.
#[derive(Debug, Clone)]
struct Line {
    method: String,
    scheme: String,
    authority: String,
    /// Path and query, as sent.
    target: String,
}

fn parse(line: &str) -> Line {
    let (method, url) = line.split_once(' ').unwrap_or(("GET", line));
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Line { method: method.into(), scheme: scheme.into(), authority: authority.into(), target: target.into() }
}

/// A configuration under test: YAML files, the services to back with echo servers, the client
/// namespace, and the binding (the mesh, or a Gateway and its ports).
#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    files: Vec<(String, String)>,
    services: Vec<(String, Vec<String>)>,
    namespace: String,
    gateway: Option<(String, Vec<u16>)>,
}

/// What a table run did (for the test's own summary).
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Rows checked.
    pub cases: usize,
    /// Requests sent through the proxy (splits send many per row).
    pub requests: usize,
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, other: Summary) {
        self.cases += other.cases;
        self.requests += other.requests;
    }
}

impl Table {
    /// A table named `name` (its config directory's name), client namespace `default`, the mesh.
    pub fn new(name: &str) -> Table {
        Table {
            name: name.to_string(),
            files: Vec::new(),
            services: Vec::new(),
            namespace: "default".into(),
            gateway: None,
        }
    }

    /// A configuration file (its contents written as `name` in the config directory).
    pub fn file(mut self, name: &str, yaml: impl Into<String>) -> Table {
        self.files.push((name.to_string(), yaml.into()));
        self
    }

    /// Service `fqdn` with one endpoint (its own echo backend) per `version` label; none: one
    /// endpoint without labels.
    pub fn service(mut self, fqdn: &str, versions: &[&str]) -> Table {
        self.services.push((fqdn.to_string(), versions.iter().map(|v| v.to_string()).collect()));
        self
    }

    /// The client's namespace (`mesh proxy -n`, `mesh explain --namespace`; also the namespace
    /// of resources that set none, for both).
    pub fn namespace(mut self, ns: &str) -> Table {
        self.namespace = ns.to_string();
        self
    }

    /// Serve as Gateway `ns/name` (`--gateway`), opening `ports` on loopback.
    pub fn gateway(mut self, gateway: &str, ports: &[u16]) -> Table {
        self.gateway = Some((gateway.to_string(), ports.to_vec()));
        self
    }

    /// Start the backends and ONE proxy for this configuration, then for every row: ask explain,
    /// check its outcome is the row's `want`, send the request through the proxy and assert they
    /// agree (see [`agree`]). A row explain routes to several weighted destinations is sent
    /// [`SPLIT_REQUESTS`] times: every destination answers some, each within
    /// [`SPLIT_TOLERANCE`] points of its weight's share.
    pub async fn run(&self, cases: &[Case]) -> Summary {
        let backends = Backends::start(&self.services).await;
        let dir = config_dir(&format!("tables-{}", self.name));
        for (name, yaml) in &self.files {
            std::fs::write(dir.join(name), yaml).expect("write config");
        }
        std::fs::write(dir.join("zz-test-endpoints.yaml"), backends.service_entries()).expect("write endpoints");
        let ns = self.namespace.as_str();
        let mut proxy_args: Vec<String> = vec!["-n".into(), ns.into()];
        let mut explain_args: Vec<String> = vec!["--namespace".into(), ns.into()];
        match &self.gateway {
            None => proxy_args.extend(["--listen".into(), "127.0.0.1:0".into()]),
            Some((gw, ports)) => {
                proxy_args.extend(["--gateway".into(), gw.clone()]);
                for p in ports {
                    proxy_args.extend(["--port-map".into(), format!("{p}=127.0.0.1:0")]);
                }
                explain_args.extend(["--gateway".into(), gw.clone()]);
            }
        }
        let proxy = start_proxy(&dir, &proxy_args.iter().map(String::as_str).collect::<Vec<_>>());
        // Explain every row first (one process each, run side by side).
        let explained = explain_all(&dir, &explain_args, cases).await;
        let mut summary = Summary::default();
        for (case, v) in cases.iter().zip(explained) {
            let ctx = format!("[{}] {} {:?}", self.name, case.line, case.headers);
            assert_eq!(outcome(&v), case.want, "explain's outcome is the table's: {ctx}\nexplain: {v:#}");
            if let Some(path) = case.path {
                assert_eq!(v["rewrite"]["path"].as_str(), Some(path), "explain's rewrite: {ctx}\nexplain: {v:#}");
            }
            let line = parse(case.line);
            let addr = self.address(&proxy, &v, &ctx);
            let weighted = backends.weighted(&v, &ctx);
            let aborted = v["fault"]["abort"]["percentage"].as_f64() == Some(100.0);
            let draws = if weighted.len() > 1 && !aborted { SPLIT_REQUESTS } else { 1 };
            let mut answered: BTreeMap<String, usize> = BTreeMap::new();
            for _ in 0..draws {
                let before = backends.hits();
                let reply = send(&addr, &line, &case.headers).await;
                let after = backends.hits();
                if let Some(backend) = agree(&backends, &v, &line, &case.headers, &reply, after - before, &ctx) {
                    *answered.entry(backend).or_default() += 1;
                }
                summary.requests += 1;
            }
            if draws > 1 {
                check_shares(&weighted, &answered, draws, &ctx);
            }
            summary.cases += 1;
        }
        drop(proxy);
        let _ = std::fs::remove_dir_all(&dir);
        summary
    }

    /// The proxy address a request goes to: the mesh listener, or the listener of the Gateway
    /// port explain decided it on.
    fn address(&self, proxy: &Proxy, v: &Value, ctx: &str) -> String {
        match &self.gateway {
            None => proxy.listen().to_string(),
            Some(_) => {
                let port = v["port"].as_u64().unwrap_or_else(|| panic!("explain names the gateway port: {ctx}\n{v:#}"));
                proxy.port(u16::try_from(port).expect("port")).to_string()
            }
        }
    }
}

/// `mesh explain -o json` for every row, side by side.
async fn explain_all(dir: &Path, args: &[String], cases: &[Case]) -> Vec<Value> {
    let mut running = Vec::new();
    for case in cases {
        let line = parse(case.line);
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesh"));
        cmd.args(["explain", "-o", "json", "-f"]).arg(dir).args(args).args(["-X", &line.method]);
        for (k, v) in &case.headers {
            cmd.args(["-H", &format!("{k}: {v}")]);
        }
        cmd.arg(format!("{}://{}{}", line.scheme, line.authority, line.target));
        running.push((case.line, cmd.output()));
    }
    let mut out = Vec::new();
    for (line, output) in running {
        let output = output.await.expect("run mesh explain");
        assert!(output.status.success(), "explain {line}: {}", String::from_utf8_lossy(&output.stderr));
        out.push(serde_json::from_slice(&output.stdout).expect("explain prints JSON"));
    }
    out
}

/// Explain's answer in the words of `tests/routing.rs`'s `outcome`.
pub fn outcome(v: &Value) -> String {
    match v["action"].as_str().expect("action") {
        "noRoute" => v["status"].to_string(),
        "redirect" => {
            format!("redirect {} {}", v["redirect"]["status"], v["redirect"]["location"].as_str().unwrap_or(""))
        }
        "directResponse" => format!("respond {}", v["directResponse"]["status"]),
        "route" if v["route"].is_null() => {
            format!("default:{}", v["destinations"][0]["host"].as_str().unwrap_or(""))
        }
        "route" => v["destinations"]
            .as_array()
            .expect("destinations")
            .iter()
            .filter(|d| d["weight"].as_u64().unwrap_or(0) > 0)
            .map(|d| format!("{}@{}", d["subset"].as_str().unwrap_or("-"), d["host"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("+"),
        other => panic!("unexpected action {other}: {v}"),
    }
}

/// The echo backends of a table, by name (`fqdn/version`, or `fqdn` for an unlabelled endpoint),
/// sharing one hit counter.
struct Backends {
    /// (service FQDN, version label or None, name, port).
    endpoints: Vec<(String, Option<String>, String, u16)>,
    hits: Arc<AtomicUsize>,
}

impl Backends {
    async fn start(services: &[(String, Vec<String>)]) -> Backends {
        let hits = Arc::new(AtomicUsize::new(0));
        let mut endpoints = Vec::new();
        for (fqdn, versions) in services {
            let versions: Vec<Option<String>> =
                if versions.is_empty() { vec![None] } else { versions.iter().cloned().map(Some).collect() };
            for version in versions {
                let name = match &version {
                    Some(v) => format!("{fqdn}/{v}"),
                    None => fqdn.clone(),
                };
                let port = echo(name.clone(), hits.clone()).await;
                endpoints.push((fqdn.clone(), version, name, port));
            }
        }
        Backends { endpoints, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// One ServiceEntry per service (namespace `default`, exported everywhere), ports
    /// [`SERVICE_PORTS`], one STATIC endpoint on 127.0.0.1 per backend.
    fn service_entries(&self) -> String {
        let mut out = String::new();
        let mut services: Vec<&str> = self.endpoints.iter().map(|e| e.0.as_str()).collect();
        services.dedup();
        for (i, fqdn) in services.iter().enumerate() {
            let ports: Vec<String> =
                SERVICE_PORTS.iter().map(|p| format!("{{number: {p}, name: http-{p}, protocol: HTTP}}")).collect();
            let _ = write!(
                out,
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: test-backends-{i}, namespace: default}}\nspec:\n  hosts: [\"{fqdn}\"]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{}]\n  endpoints:\n",
                ports.join(", ")
            );
            for (_, version, _, port) in self.endpoints.iter().filter(|e| e.0 == *fqdn) {
                let ports: Vec<String> = SERVICE_PORTS.iter().map(|p| format!("http-{p}: {port}")).collect();
                let labels = match version {
                    Some(v) => format!(", labels: {{version: \"{v}\"}}"),
                    None => String::new(),
                };
                let _ = writeln!(out, "  - {{address: 127.0.0.1, ports: {{{}}}{labels}}}", ports.join(", "));
            }
            out.push_str("---\n");
        }
        out
    }

    /// The backends a destination may be answered by: its subset's (named after the version
    /// label), or every endpoint of the host when it names no subset.
    fn of_destination(&self, d: &Value, ctx: &str) -> Vec<String> {
        let host = d["host"].as_str().expect("destination host");
        let subset = d["subset"].as_str();
        let names: Vec<String> = self
            .endpoints
            .iter()
            .filter(|(fqdn, version, _, _)| fqdn == host && (subset.is_none() || version.as_deref() == subset))
            .map(|e| e.2.clone())
            .collect();
        // A destination the table does not back would send the proxy to the real network.
        assert!(!names.is_empty(), "table bug: no test backend for {d} (add it with .service()): {ctx}");
        names
    }

    /// Explain's weighted destinations (weight > 0) as (weight, backends that may answer), for a
    /// forwarded request; empty for a local answer.
    fn weighted(&self, v: &Value, ctx: &str) -> Vec<(u64, Vec<String>)> {
        if v["action"] != "route" {
            return Vec::new();
        }
        assert_eq!(v["passthrough"], json!(false), "a test request must not leave loopback: {ctx}\n{v:#}");
        v["destinations"]
            .as_array()
            .expect("destinations")
            .iter()
            .filter(|d| d["weight"].as_u64().unwrap_or(0) > 0)
            .map(|d| (d["weight"].as_u64().unwrap_or(0), self.of_destination(d, ctx)))
            .collect()
    }
}

/// An echo backend named `name` on 127.0.0.1: it answers every request 200 with JSON
/// `{"backend", "method", "uri" (path and query), "headers": [[name, value], ...]}`.
async fn echo(name: String, hits: Arc<AtomicUsize>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let name = name.clone();
        hits.fetch_add(1, Ordering::SeqCst);
        async move {
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let uri = req.uri().path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_default();
            axum::Json(json!({"backend": name, "method": req.method().as_str(), "uri": uri, "headers": headers}))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// What the client got from the proxy.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
    pub elapsed: Duration,
}

/// Send `line` to the proxy at `addr` on a new HTTP/1.1 connection: `http` requests in origin
/// form with `Host: authority` (as a sidecar's application sends them); `https` ones in absolute
/// form (the only way a plain listener sees that scheme), with the same `Host`.
async fn send(addr: &str, line: &Line, headers: &[(&str, &str)]) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the proxy");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let uri = if line.scheme == "http" {
        line.target.clone()
    } else {
        format!("{}://{}{}", line.scheme, line.authority, line.target)
    };
    let mut req = http::Request::builder().method(line.method.as_str()).uri(uri).header("host", &line.authority);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let start = tokio::time::Instant::now();
    let response =
        sender.send_request(req.body(Empty::<Bytes>::new()).expect("request")).await.expect("the proxy answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned(), elapsed: start.elapsed() }
}

/// Header edits `{"set": {}, "add": {}, "remove": []}` as lists.
struct Ops {
    set: Vec<(String, String)>,
    add: Vec<(String, String)>,
    remove: Vec<String>,
}

fn ops(v: &Value) -> Ops {
    let pairs = |m: &Value| -> Vec<(String, String)> {
        m.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string())).collect())
            .unwrap_or_default()
    };
    Ops {
        set: pairs(&v["set"]),
        add: pairs(&v["add"]),
        remove: v["remove"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r.as_str()).map(str::to_ascii_lowercase).collect())
            .unwrap_or_default(),
    }
}

impl Ops {
    fn touches(&self, name: &str) -> bool {
        self.set.iter().any(|(k, _)| k == name)
            || self.add.iter().any(|(k, _)| k == name)
            || self.remove.iter().any(|k| k == name)
    }

    /// Assert `values(name)` shows these edits applied.
    fn check(&self, values: impl Fn(&str) -> Vec<String>, what: &str, ctx: &str) {
        for (k, v) in &self.set {
            // `%VARIABLE%` values are expanded per request: only their presence is comparable.
            if v.contains('%') {
                assert!(!values(k).is_empty(), "{what} header {k} is set: {ctx}");
            } else {
                assert_eq!(values(k), std::slice::from_ref(v), "{what} header {k} set to {v:?}: {ctx}");
            }
        }
        for (k, v) in &self.add {
            let got = values(k);
            assert!(v.contains('%') && !got.is_empty() || got.contains(v), "{what} header {k} gets {v:?}: {ctx}");
        }
        for k in &self.remove {
            assert!(values(k).is_empty(), "{what} header {k} removed: {ctx}");
        }
    }
}

/// One request's agreement (explain's `v`, the proxy's `reply`, `hits` backend requests made
/// while it ran): for a local answer, the status, `Location`, body, and that no backend was
/// called; for a forwarded one, that one backend among explain's destinations answered, with
/// the method, path (after any rewrite), authority and request headers (after the rule's and
/// the destination's edits) explain says; a fault abort of 100% answers its status without a
/// backend, a delay of 100% takes at least its time; the response header edits, either way.
/// Returns the backend that answered.
fn agree(
    backends: &Backends,
    v: &Value,
    line: &Line,
    headers: &[(&str, &str)],
    reply: &Reply,
    hits: usize,
    ctx: &str,
) -> Option<String> {
    let ctx = format!("{ctx}\nexplain: {v:#}\nproxy: {} {:?} {:?}", reply.status, reply.headers, reply.body);
    let response_values = |name: &str| -> Vec<String> {
        reply.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    };
    let response = ops(&v["headers"]["response"]);
    let status = Some(u64::from(reply.status));
    let answered = match v["action"].as_str().expect("action") {
        "noRoute" => {
            assert_eq!(status, v["status"].as_u64(), "status: {ctx}");
            None
        }
        "redirect" => {
            assert_eq!(status, v["redirect"]["status"].as_u64(), "status: {ctx}");
            assert_eq!(
                response_values("location"),
                [v["redirect"]["location"].as_str().unwrap_or("")],
                "Location: {ctx}"
            );
            None
        }
        "directResponse" => {
            assert_eq!(status, v["directResponse"]["status"].as_u64(), "status: {ctx}");
            assert_eq!(reply.body, v["directResponse"]["body"].as_str().unwrap_or(""), "body: {ctx}");
            None
        }
        "route" if v["fault"]["abort"]["percentage"].as_f64() == Some(100.0) => {
            assert_eq!(status, v["fault"]["abort"]["httpStatus"].as_u64(), "fault abort status: {ctx}");
            None
        }
        "route" => Some(forwarded(backends, v, line, headers, reply, &ctx)),
        other => panic!("unexpected action {other}: {ctx}"),
    };
    match &answered {
        None => assert_eq!(hits, 0, "no backend is called for a local answer: {ctx}"),
        Some(_) => assert_eq!(hits, 1, "one backend request: {ctx}"),
    }
    response.check(response_values, "response", &ctx);
    answered
}

/// The checks of a forwarded request (see [`agree`]); returns the backend that answered.
fn forwarded(
    backends: &Backends,
    v: &Value,
    line: &Line,
    headers: &[(&str, &str)],
    reply: &Reply,
    ctx: &str,
) -> String {
    assert_eq!(reply.status, 200, "status: {ctx}");
    let echo: Value = serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("a backend answered: {ctx}"));
    let backend = echo["backend"].as_str().expect("backend").to_string();
    // Which destination answered: the one whose backends include this one.
    let destinations = v["destinations"].as_array().expect("destinations");
    let destination = destinations
        .iter()
        .filter(|d| d["weight"].as_u64().unwrap_or(0) > 0)
        .find(|d| backends.of_destination(d, ctx).contains(&backend))
        .unwrap_or_else(|| panic!("{backend} is none of explain's destinations: {ctx}"));
    assert_eq!(echo["method"].as_str(), Some(line.method.as_str()), "method: {ctx}");
    let path = v["rewrite"]["path"].as_str().unwrap_or(&line.target);
    assert_eq!(echo["uri"].as_str(), Some(path), "the path the backend saw: {ctx}");
    let seen = |name: &str| -> Vec<String> {
        echo["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .filter(|h| h[0].as_str() == Some(name))
            .map(|h| h[1].as_str().unwrap_or("").to_string())
            .collect()
    };
    let authority = v["rewrite"]["authority"].as_str().unwrap_or(&line.authority);
    assert_eq!(seen("host"), [authority.to_string()], "the authority the backend saw: {ctx}");
    let rule = ops(&v["headers"]["request"]);
    let dest = ops(&destination["headers"]["request"]);
    for (k, val) in headers {
        let k = k.to_ascii_lowercase();
        if !rule.touches(&k) && !dest.touches(&k) && k != "host" {
            assert!(seen(&k).contains(&val.to_string()), "request header {k}: {val:?} arrives unchanged: {ctx}");
        }
    }
    dest.check(seen, "request (destination)", ctx);
    rule.check(seen, "request", ctx);
    let response_values = |name: &str| -> Vec<String> {
        reply.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    };
    ops(&destination["headers"]["response"]).check(response_values, "response (destination)", ctx);
    if v["fault"]["delay"]["percentage"].as_f64() == Some(100.0) {
        let delay = v["fault"]["delay"]["fixedDelay"].as_str().expect("fixedDelay");
        let secs: f64 = delay.trim_end_matches('s').parse().expect("seconds");
        assert!(
            reply.elapsed >= Duration::from_secs_f64(secs),
            "delayed {delay}, answered in {:?}: {ctx}",
            reply.elapsed
        );
    }
    backend
}

/// Each weighted destination answered some of `draws` requests, within [`SPLIT_TOLERANCE`]
/// points of its weight's share.
fn check_shares(weighted: &[(u64, Vec<String>)], answered: &BTreeMap<String, usize>, draws: usize, ctx: &str) {
    let total: u64 = weighted.iter().map(|(w, _)| w).sum();
    for (weight, names) in weighted {
        let got: usize = answered.iter().filter(|(b, _)| names.contains(b)).map(|(_, n)| n).sum();
        let expected = *weight as f64 * 100.0 / total as f64;
        let share = got as f64 * 100.0 / draws as f64;
        assert!(got > 0, "{names:?} (weight {weight}) never answered in {draws} requests: {ctx} {answered:?}");
        assert!(
            (share - expected).abs() <= SPLIT_TOLERANCE,
            "{names:?}: {share}% of {draws} requests, explain's weight share {expected}%: {ctx} {answered:?}"
        );
    }
}

/// A fresh copy of `yaml` whose resources named `name` (`metadata:\n  name: NAME`) get
/// `namespace: ns` (for a client in another namespace than the config's).
pub fn in_namespace(yaml: &str, ns: &str) -> String {
    yaml.replace("metadata:\n  name: ", &format!("metadata:\n  namespace: {ns}\n  name: "))
}
