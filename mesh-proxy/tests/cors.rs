//! Istio's `corsPolicy` end to end: a VirtualService with CORS policies, served by a running
//! `mesh proxy` in front of an upstream on loopback, and asked of `mesh explain -o json` — the
//! two must agree on every `access-control-*` header, and the proxy must behave as Envoy's CORS
//! filter: preflights answered without calling the upstream (unless unmatched and forwarded),
//! responses to allowed origins (upstream's and local replies alike) carrying the CORS headers.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;
use support::*;

const HOST: &str = "web.example.com";
const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

fn config(port: u16) -> String {
    let mut out = service_entry("web", HOST, &[(port, "v1")]);
    out.push_str(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web.example.com]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: web.example.com}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example"}, {regex: "https://.*\\.trusted\\.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token, content-type]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
  - match: [{uri: {prefix: /strict}}]
    route: [{destination: {host: web.example.com}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
      allowMethods: [GET]
      maxAge: 10m
      unmatchedPreflights: IGNORE
  - match: [{uri: {prefix: /edited}}]
    route: [{destination: {host: web.example.com}}]
    headers:
      response: {set: {access-control-allow-origin: "*", x-edited: "yes"}}
    corsPolicy:
      allowOrigin: ["https://app.example"]
      exposeHeaders: [x-a, x-b]
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: web.example.com}}]
    corsPolicy:
      allowOrigins: [{prefix: "https://app."}]
      allowCredentials: true
  - match: [{uri: {prefix: /slow}}]
    timeout: 0.1s
    route: [{destination: {host: web.example.com}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
      exposeHeaders: [x-trace]
  - match: [{uri: {prefix: /both}}]
    route: [{destination: {host: web.example.com}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
      allowOrigin: ["https://evil.example"]
  - match: [{uri: {prefix: /moved}}]
    redirect: {uri: /api}
    corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
---
"#,
    );
    out
}

/// `mesh explain -o json -f DIR -X METHOD -H ... URL`.
fn explain(dir: &Path, method: &str, headers: &[(&str, &str)], url: &str) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesh"));
    cmd.args(["explain", "-o", "json", "-f"]).arg(dir).args(["-X", method]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    let out = cmd.arg(url).output().expect("run mesh explain");
    assert!(out.status.success(), "explain {url}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("explain prints JSON")
}

/// One request to the proxy: status, body, headers.
async fn send(
    client: &PlainClient,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, http::HeaderMap) {
    let mut req = http::Request::builder().method(method).uri(format!("http://{addr}{path}")).header("host", HOST);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client.request(req.body(Empty::<Bytes>::new()).expect("request")).await.expect("the proxy answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

/// The `access-control-*` headers of a response.
fn cors_of(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("access-control-"))
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect()
}

/// The `access-control-*` headers explain says the response gets: the rule's response edits,
/// then CORS's (which replace them).
fn cors_explained(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(set) = v["headers"]["response"]["set"].as_object() {
        for (k, val) in set.iter().filter(|(k, _)| k.starts_with("access-control-")) {
            out.insert(k.clone(), val.as_str().unwrap_or("").to_string());
        }
    }
    if let Some(h) = v["cors"]["headers"].as_object() {
        for (k, val) in h {
            out.insert(k.clone(), val.as_str().unwrap_or("").to_string());
        }
    }
    out
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_policies_through_the_proxy_agree_with_explain() {
    let upstream = backend("web").await;
    let dir = config_dir("cors");
    std::fs::write(dir.join("config.yaml"), config(upstream.port)).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let listen = proxy.listen().to_string();

    fn preflight(origin: &str) -> Vec<(&str, &str)> {
        vec![("origin", origin), ("access-control-request-method", "POST")]
    }
    let api_preflight = map(&[
        ("access-control-allow-origin", APP),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "GET,POST"),
        ("access-control-allow-headers", "x-token,content-type"),
        ("access-control-max-age", "86400"),
        ("access-control-expose-headers", "x-trace"),
    ]);
    let api_response = map(&[
        ("access-control-allow-origin", APP),
        ("access-control-allow-credentials", "true"),
        ("access-control-expose-headers", "x-trace"),
    ]);
    // (method, path, request headers, status, upstream called, reason, access-control-* headers)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16, bool, Option<&'a str>, BTreeMap<String, String>);
    let cases: Vec<Case> = vec![
        // A preflight from an allowed origin: answered 200 here, the upstream never called.
        ("OPTIONS", "/api", preflight(APP), 200, false, Some("corsPreflight"), api_preflight.clone()),
        (
            "OPTIONS",
            "/api/x",
            preflight("https://www.trusted.example"),
            200,
            false,
            Some("corsPreflight"),
            api_preflight.iter().map(|(k, v)| (k.clone(), v.replace(APP, "https://www.trusted.example"))).collect(),
        ),
        // An unmatched preflight, FORWARD (the default): the upstream answers, no CORS headers.
        ("OPTIONS", "/api", preflight(EVIL), 200, true, None, map(&[])),
        // IGNORE: answered 200 without access-control-allow-origin.
        (
            "OPTIONS",
            "/strict",
            preflight(EVIL),
            200,
            false,
            Some("corsPreflight"),
            map(&[("access-control-allow-methods", "GET"), ("access-control-max-age", "600")]),
        ),
        // An actual request from an allowed origin: the upstream's response plus CORS headers.
        ("GET", "/api", vec![("origin", APP)], 200, true, None, api_response.clone()),
        // From another origin, or without one: nothing added.
        ("GET", "/api", vec![("origin", EVIL)], 200, true, None, map(&[])),
        ("GET", "/api", vec![], 200, true, None, map(&[])),
        // OPTIONS without Access-Control-Request-Method is no preflight: forwarded, CORS headers.
        ("OPTIONS", "/api", vec![("origin", APP)], 200, true, None, api_response.clone()),
        // CORS's values win over the rule's response edit of the same header (deprecated
        // allowOrigin compiled as exact origins).
        (
            "GET",
            "/edited",
            vec![("origin", APP)],
            200,
            true,
            None,
            map(&[("access-control-allow-origin", APP), ("access-control-expose-headers", "x-a,x-b")]),
        ),
        ("GET", "/edited", vec![("origin", EVIL)], 200, true, None, map(&[("access-control-allow-origin", "*")])),
        // A local reply made below the route (fault abort) gets the CORS headers too.
        (
            "GET",
            "/abort",
            vec![("origin", APP)],
            503,
            false,
            None,
            map(&[("access-control-allow-origin", APP), ("access-control-allow-credentials", "true")]),
        ),
        // And the route timeout's 504 (the upstream was called, too slow).
        (
            "GET",
            "/slow",
            vec![("origin", APP)],
            504,
            true,
            None,
            map(&[("access-control-allow-origin", APP), ("access-control-expose-headers", "x-trace")]),
        ),
        // The deprecated allowOrigin counts only without allowOrigins (Istio's translation).
        ("GET", "/both", vec![("origin", APP)], 200, true, None, map(&[("access-control-allow-origin", APP)])),
        ("GET", "/both", vec![("origin", EVIL)], 200, true, None, map(&[])),
        // Routes that do not forward get no CORS processing.
        ("OPTIONS", "/moved", preflight(APP), 301, false, Some("redirect"), map(&[])),
        ("OPTIONS", "/nowhere", preflight(APP), 404, false, Some("noRule"), map(&[])),
    ];
    for (method, path, headers, status, upstream_called, reason, want) in cases {
        let v = explain(&dir, method, &headers, &format!("http://{HOST}{path}"));
        let before = upstream.hits();
        let (got_status, body, response_headers) = send(&client, &listen, method, path, &headers).await;
        let called = upstream.hits() > before;
        let ctx =
            format!("{method} {path} {headers:?}\nexplain: {v}\nproxy: {got_status} {response_headers:?} {body:?}");
        assert_eq!(got_status, status, "status: {ctx}");
        assert_eq!(called, upstream_called, "upstream called: {ctx}");
        assert_eq!(v["reason"].as_str(), reason, "explain's reason: {ctx}");
        assert_eq!(cors_of(&response_headers), want, "the proxy's access-control-* headers: {ctx}");
        assert_eq!(cors_explained(&v), want, "explain's access-control-* headers: {ctx}");
        if reason == Some("corsPreflight") {
            assert_eq!(v["action"], "directResponse", "{ctx}");
            assert_eq!(v["directResponse"]["status"], 200, "{ctx}");
            assert_eq!(
                (v["cors"]["preflight"].as_bool(), v["cors"]["status"].as_u64()),
                (Some(true), Some(200)),
                "{ctx}"
            );
            assert!(body.is_empty(), "the preflight answer has no body: {ctx}");
        } else if v["cors"].is_object() {
            assert_eq!(v["cors"]["preflight"], false, "{ctx}");
        }
        if path == "/edited" {
            assert_eq!(response_headers.get("x-edited").map(|h| h.as_bytes()), Some(&b"yes"[..]), "{ctx}");
        }
    }

    // `/config_dump` shows the compiled policy.
    let dump = admin(&client, &proxy.admin, "/config_dump").await;
    assert!(dump.contains("unmatchedPreflights") && dump.contains("IGNORE"), "{dump}");
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
