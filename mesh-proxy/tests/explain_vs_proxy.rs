//! Differential: the same requests through `mesh explain -o json` and through a running
//! `mesh proxy` (mesh and gateway modes) with echo upstreams on loopback must agree — on the
//! action (route, redirect, direct response, no route), status, Location, body, response
//! headers, which subset answered, the weighted split, rewrites and request headers.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;

const HOST: &str = "svc-a.example.com";

/// A request path, its extra headers, and the action the config means it to get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

fn mesh_config(v1: u16, v2: u16) -> String {
    let mut out = service_entry("svc-a", HOST, &[(v1, "v1"), (v2, "v2")]);
    out.push_str(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-a}
spec:
  host: svc-a.example.com
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-a}
spec:
  hosts: [svc-a.example.com]
  http:
  - match: [{uri: {prefix: /split}}]
    route:
    - {destination: {host: svc-a.example.com, subset: v1}, weight: 50}
    - {destination: {host: svc-a.example.com, subset: v2}, weight: 50}
  - match: [{uri: {prefix: /echo}}]
    rewrite: {uri: /headers, authority: rewritten.example.com}
    headers:
      request: {set: {x-req-set: hello}}
      response: {set: {x-resp-set: world}}
    route: [{destination: {host: svc-a.example.com, subset: v2}}]
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: moved.example.com}
    headers:
      response: {set: {x-redirected: "yes"}}
  - match: [{uri: {prefix: /down}}]
    directResponse: {status: 503, body: {string: down}}
    headers:
      response: {set: {x-down: "true"}}
  - match: [{uri: {prefix: /app}, headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: svc-a.example.com, subset: v2}}]
  - match: [{uri: {prefix: /app}}]
    route: [{destination: {host: svc-a.example.com, subset: v1}}]
---
"#,
    );
    out
}

const GATEWAY: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [a.example.com]
  - port: {number: 8081, name: http-redirect, protocol: HTTP}
    hosts: [r.example.com]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-a}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: svc-a.example.com, subset: v1}}]
---
"#;

/// `mesh explain -o json -f DIR ARGS... -H ... URL`.
fn explain(dir: &Path, args: &[&str], headers: &[(&str, &str)], url: &str) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesh"));
    cmd.args(["explain", "-o", "json", "-f"]).arg(dir).args(args);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    let out = cmd.arg(url).output().expect("run mesh explain");
    assert!(out.status.success(), "explain {url}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("explain prints JSON")
}

/// The backends of the test: subset `v1` is served by `a-v1`, `v2` by `a-v2`.
struct Backends {
    v1: Backend,
    v2: Backend,
}

impl Backends {
    fn hits(&self) -> [usize; 2] {
        [self.v1.hits(), self.v2.hits()]
    }

    /// Which backend answered, from the hit counters before and after one request.
    fn answered(&self, before: [usize; 2]) -> Vec<&'static str> {
        let after = self.hits();
        let mut out = Vec::new();
        if after[0] > before[0] {
            out.push("a-v1");
        }
        if after[1] > before[1] {
            out.push("a-v2");
        }
        out
    }
}

/// The backends explain's destinations (with weight > 0) allow.
fn allowed(v: &Value) -> Vec<String> {
    v["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .filter(|d| d["weight"].as_u64().unwrap_or(0) > 0)
        .map(|d| format!("a-{}", d["subset"].as_str().unwrap_or("")))
        .collect()
}

/// One request, asked of `explain` (`url`, `args`) and sent to the proxy at `addr` with
/// `Host: host`: assert they agree. Returns explain's answer and the proxy's body.
#[allow(clippy::too_many_arguments)]
async fn agree(
    client: &PlainClient,
    dir: &Path,
    args: &[&str],
    url: &str,
    addr: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    backends: &Backends,
) -> (Value, String) {
    let v = explain(dir, args, headers, url);
    let before = backends.hits();
    let (status, body, response_headers) = get(client, addr, host, path, headers).await;
    let answered = backends.answered(before);
    let ctx = format!("{url} {headers:?}\nexplain: {v}\nproxy: {status} {response_headers:?} {body:?}");
    match v["action"].as_str().expect("action") {
        "noRoute" => {
            assert_eq!(Some(u64::from(status)), v["status"].as_u64(), "status: {ctx}");
            assert!(answered.is_empty(), "no upstream is called: {ctx}");
        }
        "redirect" => {
            assert_eq!(Some(u64::from(status)), v["redirect"]["status"].as_u64(), "status: {ctx}");
            let location = response_headers.get("location").and_then(|l| l.to_str().ok());
            assert_eq!(location, v["redirect"]["location"].as_str(), "Location: {ctx}");
            assert!(answered.is_empty(), "no upstream is called: {ctx}");
        }
        "directResponse" => {
            assert_eq!(Some(u64::from(status)), v["directResponse"]["status"].as_u64(), "status: {ctx}");
            assert_eq!(body.as_str(), v["directResponse"]["body"].as_str().unwrap_or(""), "body: {ctx}");
            assert!(answered.is_empty(), "no upstream is called: {ctx}");
        }
        "route" => {
            assert_eq!(status, 200, "status: {ctx}");
            let allowed = allowed(&v);
            assert_eq!(answered.len(), 1, "exactly one backend answered: {ctx}");
            assert!(allowed.iter().any(|a| a == answered[0]), "{} is not among {allowed:?}: {ctx}", answered[0]);
            if let Some(authority) = v["rewrite"]["authority"].as_str() {
                assert!(body.contains(&format!("host: {authority}\n")), "rewritten authority: {ctx}");
            }
            if v["rewrite"]["path"].as_str() == Some("/headers") {
                assert!(body.contains("host: "), "the backend saw /headers (it echoed headers): {ctx}");
            }
            for (k, val) in v["headers"]["request"]["set"].as_object().expect("request set") {
                let val = val.as_str().expect("string");
                assert!(body.contains(&format!("{k}: {val}\n")), "request header {k} arrives: {ctx}");
            }
        }
        other => panic!("unexpected action {other}: {ctx}"),
    }
    for (k, val) in v["headers"]["response"]["set"].as_object().expect("response set") {
        let got = response_headers.get(k.as_str()).and_then(|h| h.to_str().ok());
        assert_eq!(got, val.as_str(), "response header {k}: {ctx}");
    }
    (v, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_agrees_with_the_mesh_proxy() {
    let backends = Backends { v1: backend("a-v1").await, v2: backend("a-v2").await };
    let dir = config_dir("explain-vs-proxy-mesh");
    std::fs::write(dir.join("config.yaml"), mesh_config(backends.v1.port, backends.v2.port)).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let listen = proxy.listen().to_string();

    let cases: [Case; 7] = [
        ("/app", &[], "route"),
        ("/app/x", &[("x-canary", "1")], "route"),
        ("/echo", &[], "route"),
        ("/old/p?q=1", &[], "redirect"),
        ("/down", &[], "directResponse"),
        ("/none", &[], "noRoute"),
        ("/split", &[], "route"),
    ];
    for (path, headers, action) in cases {
        let url = format!("http://{HOST}{path}");
        let (v, _) = agree(&client, &dir, &[], &url, &listen, HOST, path, headers, &backends).await;
        // The config exercises what it means to: explain says so.
        assert_eq!(v["action"].as_str(), Some(action), "{url}: {v}");
    }

    // The weighted split: each subset's share within ±15 points of its weight's share.
    let url = format!("http://{HOST}/split");
    let v = explain(&dir, &[], &[], &url);
    let weights: Vec<(String, u64)> = v["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| (format!("a-{}", d["subset"].as_str().unwrap_or("")), d["weight"].as_u64().unwrap_or(0)))
        .collect();
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    assert!(weights.len() == 2 && total > 0, "{v}");
    const N: usize = 200;
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for _ in 0..N {
        let (status, body, _) = get(&client, &listen, HOST, "/split", &[]).await;
        assert_eq!(status, 200, "{body}");
        *counts.entry(body).or_default() += 1;
    }
    for body in counts.keys() {
        assert!(weights.iter().any(|(b, _)| b == body), "{body} answered, explain says {weights:?}");
    }
    for (name, weight) in &weights {
        let expected = *weight as f64 * 100.0 / total as f64;
        let got = counts.get(name).copied().unwrap_or(0) as f64 * 100.0 / N as f64;
        assert!((got - expected).abs() <= 15.0, "{name}: {got}% of requests, explain's weight share {expected}%");
    }
    drop(proxy);

    // Hosts nothing declares, under REGISTRY_ONLY: 502 from both; a declared host still routes.
    let flags = ["--outbound-traffic-policy", "REGISTRY_ONLY"];
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0", flags[0], flags[1]]);
    let listen = proxy.listen().to_string();
    for (host, action) in [("nobody.example.com", "directResponse"), (HOST, "route")] {
        let url = format!("http://{host}/app");
        let (v, _) = agree(&client, &dir, &flags, &url, &listen, host, "/app", &[], &backends).await;
        assert_eq!(v["action"].as_str(), Some(action), "{url}: {v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_agrees_with_the_gateway_proxy() {
    let backends = Backends { v1: backend("a-v1").await, v2: backend("a-v2").await };
    let dir = config_dir("explain-vs-proxy-gateway");
    let mut config = mesh_config(backends.v1.port, backends.v2.port);
    config.push_str(GATEWAY);
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(
        &dir,
        &["--gateway", "default/gw", "--port-map", "8080=127.0.0.1:0", "--port-map", "8081=127.0.0.1:0"],
    );
    let client = client();
    let gateway = ["--gateway", "default/gw"];

    let cases = [
        (8080, "a.example.com:8080", "/x", "route"),
        (8080, "other.example.com:8080", "/x", "noRoute"),
        (8081, "r.example.com:8081", "/x?q=1", "redirect"),
    ];
    for (port, authority, path, action) in cases {
        let url = format!("http://{authority}{path}");
        let addr = proxy.port(port).to_string();
        let (v, _) = agree(&client, &dir, &gateway, &url, &addr, authority, path, &[], &backends).await;
        assert_eq!(v["action"].as_str(), Some(action), "{url}: {v}");
        assert_eq!(v["port"].as_u64(), Some(u64::from(port)), "{url}: {v}");
        match action {
            "noRoute" => assert_eq!(v["reason"].as_str(), Some("hostNotExposed"), "{url}: {v}"),
            "redirect" => assert_eq!(v["redirect"]["status"].as_u64(), Some(301), "{url}: {v}"),
            _ => {}
        }
    }
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
