//! `mesh explain -o json` answers the Bookinfo walkthrough's questions.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn config(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bookinfo/config").join(file)
}

fn explain(files: &[&str], args: &[&str], url: &str) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesh"));
    cmd.arg("explain").args(["-o", "json"]);
    for f in files {
        cmd.arg("-f").arg(config(f));
    }
    let out = cmd.args(args).arg(url).output().expect("run mesh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

const KEYS: [&str; 14] = [
    "host",
    "action",
    "status",
    "route",
    "destinations",
    "redirect",
    "directResponse",
    "rewrite",
    "timeout",
    "retries",
    "fault",
    "mirrors",
    "headers",
    "destinations",
];

fn subsets(v: &Value) -> Vec<(String, u64)> {
    v["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| (d["subset"].as_str().unwrap_or("").to_string(), d["weight"].as_u64().unwrap_or(0)))
        .collect()
}

#[test]
fn reviews_v3() {
    let v = explain(
        &["destination-rule-all.yaml", "virtual-service-reviews-v3.yaml"],
        &[],
        "http://reviews:9080/reviews/0",
    );
    for key in KEYS {
        assert!(v.get(key).is_some(), "key {key} missing: {v}");
    }
    assert_eq!(v["host"], "reviews.default.svc.cluster.local");
    assert_eq!(v["action"], "route");
    assert_eq!(subsets(&v), [("v3".to_string(), 100)]);
    assert_eq!(v["route"]["name"], "reviews");
    assert_eq!(v["route"]["rule"], 0);
    assert_eq!(v["retries"]["attempts"], 2);
    assert_eq!(v["retries"]["retryOn"], "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
}

#[test]
fn jason_with_and_without_the_header() {
    let files = ["virtual-service-reviews-jason-v2-v3.yaml"];
    let jason = explain(&files, &["-H", "end-user: jason"], "http://reviews:9080/reviews/0");
    assert_eq!(subsets(&jason), [("v2".to_string(), 100)]);
    assert_eq!((jason["route"]["rule"].as_u64(), jason["route"]["match"].as_u64()), (Some(0), Some(0)));
    let anon = explain(&files, &[], "http://reviews:9080/reviews/0");
    assert_eq!(subsets(&anon), [("v3".to_string(), 100)]);
    assert_eq!(anon["route"]["rule"], 1);
    assert!(anon["route"]["match"].is_null());
}

#[test]
fn weighted_shifts() {
    let v = explain(&["virtual-service-reviews-90-10.yaml"], &[], "http://reviews/");
    assert_eq!(subsets(&v), [("v1".to_string(), 90), ("v2".to_string(), 10)]);
    let v = explain(&["virtual-service-reviews-80-20.yaml"], &[], "http://reviews/");
    assert_eq!(subsets(&v), [("v1".to_string(), 80), ("v2".to_string(), 20)]);
}

#[test]
fn faults_and_defaults() {
    let files = ["virtual-service-ratings-test-delay.yaml"];
    let v = explain(&files, &["-H", "end-user: jason"], "http://ratings:9080/ratings/0");
    assert_eq!(v["fault"]["delay"]["fixedDelay"], "7s");
    assert_eq!(v["fault"]["delay"]["percentage"], 100.0);
    assert!(v["fault"]["abort"].is_null());
    let v = explain(&["virtual-service-ratings-test-abort.yaml"], &["-H", "end-user: jason"], "http://ratings/");
    assert_eq!(v["fault"]["abort"]["httpStatus"], 500);
    // A host without a VirtualService routes to itself.
    let v = explain(&files, &[], "http://details:9080/details/0");
    assert_eq!((v["action"].as_str(), v["route"].is_null()), (Some("route"), true));
    assert_eq!(v["destinations"][0]["host"], "details.default.svc.cluster.local");
}

#[test]
fn gateway_and_no_route() {
    let gateway = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/conformance/istio-samples/bookinfo/networking/bookinfo-gateway.yaml");
    let run = |url: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["explain", "-o", "json", "--gateway", "default/bookinfo-gateway", "-f"])
            .arg(&gateway)
            .arg(url)
            .output()
            .expect("run");
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let v = run("http://bookinfo.example.com/productpage");
    assert_eq!(v["destinations"][0]["host"], "productpage.default.svc.cluster.local");
    assert_eq!(v["destinations"][0]["port"], 9080);
    let v = run("http://bookinfo.example.com/nothing");
    assert_eq!((v["action"].as_str(), v["status"].as_u64()), (Some("noRoute"), Some(404)));
}

#[test]
fn text_output_says_why() {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["explain", "-f"])
        .arg(config("virtual-service-reviews-jason-v2-v3.yaml"))
        .args(["-H", "end-user: bob", "http://reviews:9080/"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("default/reviews http[0]: no (match[0]: header end-user does not match)"), "{text}");
    assert!(text.contains("=> route to reviews.default.svc.cluster.local subset v3"), "{text}");
}

#[test]
fn explain_answers_in_the_client_namespace_view() {
    // Two teams route the same shared host, each exporting its VirtualService to itself only:
    // `-n` picks whose view `explain` answers in (Istio's `exportTo`).
    let dir = std::env::temp_dir().join(format!("mesh-explain-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("teams.yaml");
    let mut yaml = String::new();
    for (team, subset) in [("team-a", "v1"), ("team-b", "v2")] {
        yaml.push_str(&format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews, namespace: {team}}}\nspec:\n  hosts: [reviews.shared.svc.cluster.local]\n  exportTo: [\".\"]\n  http: [{{route: [{{destination: {{host: reviews.shared.svc.cluster.local, subset: {subset}}}}}]}}]\n---\n"
        ));
    }
    std::fs::write(&file, yaml).expect("write config");
    let run = |namespace: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["explain", "-o", "json", "-n", namespace, "-f"])
            .arg(&file)
            .arg("http://reviews.shared.svc.cluster.local:9080/")
            .output()
            .expect("run mesh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    assert_eq!(subsets(&run("team-a")), [("v1".to_string(), 100)]);
    assert_eq!(subsets(&run("team-b")), [("v2".to_string(), 100)]);
    // Another namespace sees neither: no VirtualService, the host goes to itself.
    let other = run("team-c");
    assert!(other["route"].is_null(), "{other}");
    assert_eq!(subsets(&other), [(String::new(), 100)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tcp_and_tls_connections_through_a_gateway() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/conformance/istio-samples/tcp-echo/tcp-echo-all-v1.yaml")
        .to_string_lossy()
        .into_owned();
    let gateway = ["--gateway", "default/tcp-echo-gateway"];
    let v = explain(&[&sample], &gateway, "tcp://any:31400");
    for key in KEYS {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(
        (v["action"].as_str(), v["route"]["section"].as_str(), v["route"]["name"].as_str()),
        (Some("route"), Some("tcp"), Some("tcp-echo"))
    );
    assert_eq!(subsets(&v), [("v1".to_string(), 100)]);
    assert_eq!(v["destinations"][0]["port"], 9000);
    let closed = explain(&[&sample], &gateway, "tcp://any:31401");
    assert_eq!((closed["action"].as_str(), &closed["route"]), (Some("noRoute"), &Value::Null));

    // TLS passthrough, by server name.
    let dir = std::env::temp_dir().join(format!("meshwork-explain-sni-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("sni.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*.example.com"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sites}
spec:
  hosts: ["*.example.com"]
  gateways: [edge]
  tls:
  - match: [{sniHosts: [a.example.com]}]
    route: [{destination: {host: a.example.com}}]
  - match: [{sniHosts: ["*.example.com"]}]
    route: [{destination: {host: rest.example.com}}]
"#,
    )
    .expect("write");
    let file = file.to_string_lossy().into_owned();
    let edge = ["--gateway", "default/edge"];
    let a = explain(&[&file], &edge, "tls://A.example.com");
    assert_eq!(
        (a["host"].as_str(), a["route"]["section"].as_str(), a["route"]["rule"].as_u64()),
        (Some("a.example.com"), Some("tls"), Some(0))
    );
    assert_eq!(a["destinations"][0]["host"], "a.example.com");
    let other = explain(&[&file], &edge, "tls://b.example.com:443");
    assert_eq!(
        (other["route"]["rule"].as_u64(), other["destinations"][0]["host"].as_str()),
        (Some(1), Some("rest.example.com"))
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Without a Gateway: a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["explain", "-f", &sample, "tcp://any:31400"])
        .output()
        .expect("run mesh");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gateway"));
}

/// The disagreements with `mesh proxy` a held-out run found, as explain now answers them: a host
/// no Gateway server lists, `httpsRedirect`, the listener's port for a URL without one, and a
/// redirect's own response headers.
#[test]
fn explain_decides_gateway_requests_as_the_proxy_serves_them() {
    let dir = std::env::temp_dir().join(format!("mesh-explain-gateway-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("gw.yaml"),
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [a.example.com]
  - port: {number: 8081, name: http-redirect, protocol: HTTP}
    hosts: [a.example.com]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http:
  - match: [{port: 8080, uri: {prefix: /old}}]
    redirect: {uri: /new}
    headers: {response: {set: {x-why: moved}}}
  - match: [{port: 8080}]
    route: [{destination: {host: a.internal}}]
"#,
    )
    .expect("write");
    let run = |url: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["explain", "-o", "json", "--gateway", "default/gw", "-f"])
            .arg(&dir)
            .arg(url)
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let other = run("http://other.example.com:8080/");
    assert_eq!(
        (other["action"].as_str(), other["status"].as_u64(), other["reason"].as_str(), other["flags"].as_str()),
        (Some("noRoute"), Some(404), Some("hostNotExposed"), Some("NR"))
    );
    // No port in the URL: the port of the server that lists the host (8080), as the listener
    // the proxy serves it on, so the `port: 8080` match holds.
    let routed = run("http://a.example.com/page");
    assert_eq!((routed["action"].as_str(), routed["port"].as_u64()), (Some("route"), Some(8080)), "{routed}");
    assert_eq!(routed["destinations"][0]["host"], "a.internal");
    let redirect = run("http://a.example.com:8081/page?x=1");
    assert_eq!(redirect["reason"], "httpsRedirect");
    assert_eq!(redirect["redirect"]["status"], 301);
    assert_eq!(redirect["redirect"]["location"], "https://a.example.com:8081/page?x=1");
    let moved = run("http://a.example.com:8080/old");
    assert_eq!(moved["redirect"]["location"], "http://a.example.com:8080/new");
    assert_eq!(moved["headers"]["response"]["set"]["x-why"], "moved");
    assert!(moved["retries"].is_null() && moved["fault"].is_null());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn default_retries_leave_503_out_and_the_old_default_is_a_flag() {
    let files = ["virtual-service-reviews-v3.yaml"];
    let v = explain(&files, &[], "http://reviews:9080/reviews/0");
    assert_eq!(v["retries"]["retryOn"], "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
    let old = explain(&files, &["--default-retry-503"], "http://reviews:9080/reviews/0");
    assert_eq!(
        old["retries"]["retryOn"],
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503"
    );
}

#[test]
fn explain_prints_the_problems_of_the_config_it_loaded() {
    let dir = std::env::temp_dir().join(format!("mesh-explain-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("reviews.yaml");
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v9}\n";
    std::fs::write(&path, format!("{vs}---\n{vs}---\napiVersion: networking.istio.io/v1\nkind: DestinationRul\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n"))
        .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["explain", "-o", "json", "-f"])
        .arg(&path)
        .arg("http://reviews:9080/")
        .output()
        .expect("run mesh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(stderr.contains(&format!("{file}:22: MW0001 DestinationRul default/reviews: kind: ")), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{file}:11: MW0002 VirtualService default/reviews: warning: defined again (first at {file}:1)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("IST0101 VirtualService default/reviews: http[0].route[0].destination.subset: warning: referenced subset not found: \"v9\""), "{stderr}");
    // The explanation itself is still on standard output, as JSON.
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["destinations"][0]["subset"], "v9");
}
