//! `mesh explain --inbound -o json` (issue 19): the decision for one request arriving at a
//! workload, with the JSON keys and exit codes the command line promises — authorization
//! (ALLOW/DENY, from/to/when), mTLS modes, tokens verified against an inline key set (minted
//! here), `--jwt-claims`, `--tcp`, AUDIT and dry-run, path normalization.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::JwtKey;

const KEYS: [&str; 7] = ["decision", "status", "policy", "normalizedPath", "audited", "dryRun", "mtls"];

fn write(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write");
    path
}

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meshwork-explain-inbound-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Runs `mesh explain --inbound -o json`; the exit code and the JSON.
fn explain(config: &Path, args: &[&str], url: &str) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["explain", "--inbound", "-o", "json", "-f"])
        .arg(config)
        .args(args)
        .arg(url)
        .output()
        .expect("run mesh");
    let code = out.status.code().unwrap_or(-1);
    if code == 2 {
        return (code, Value::Null);
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    for k in KEYS {
        assert!(v.get(k).is_some(), "key {k} missing in {v}");
    }
    (code, v)
}

fn decision(v: &Value) -> (String, Value) {
    (v["decision"].as_str().unwrap_or("?").to_string(), v["status"].clone())
}

const HTTPBIN: [&str; 4] = ["--workload-namespace", "foo", "--workload-label", "app=httpbin"];

#[test]
fn authorization_policies_from_the_tasks() {
    let d = dir("authz");
    let config = write(
        &d,
        "policies.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-method-get, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {methods: ["GET"], paths: ["/get"]}}]
    when: [{key: "request.headers[x-token]", notValues: ["admin"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]
  - to: [{operation: {paths: ["/ip"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-headers, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: AUDIT
  rules:
  - to: [{operation: {paths: ["/headers"]}}]
"#,
    );
    let sleep = ["--peer", "spiffe://cluster.local/ns/foo/sa/sleep"];
    let url = "http://httpbin.foo:8000";

    // DENY first: GET /get without the admin token, from anyone.
    let (code, v) = explain(&config, &[&HTTPBIN[..], &sleep[..]].concat(), &format!("{url}/get"));
    assert_eq!(code, 0);
    assert_eq!(decision(&v), ("deny".into(), json!(403)));
    assert_eq!(v["policy"], json!({"namespace": "foo", "name": "deny-method-get", "action": "DENY", "rule": 0}));
    let (_, v) =
        explain(&config, &[&HTTPBIN[..], &sleep[..], &["-H", "x-token: admin"]].concat(), &format!("{url}/get"));
    assert_eq!(decision(&v), ("allow".into(), Value::Null));
    assert_eq!(v["policy"]["name"], "allow-sleep");
    // ALLOW from sleep's identity only; a plaintext request reaches /ip alone.
    let (_, v) = explain(&config, &HTTPBIN, &format!("{url}/status/200"));
    assert_eq!(decision(&v), ("deny".into(), json!(403)));
    assert!(v["policy"].is_null(), "denied because no ALLOW policy matched: {v}");
    let (_, v) = explain(&config, &HTTPBIN, &format!("{url}/public/../ip"));
    assert_eq!(decision(&v), ("allow".into(), Value::Null));
    assert_eq!(v["normalizedPath"], "/ip");
    assert_eq!((v["mtls"].as_str(), v["audited"].as_bool()), (Some("PERMISSIVE"), Some(false)));
    // AUDIT alongside.
    let (_, v) = explain(&config, &[&HTTPBIN[..], &sleep[..]].concat(), &format!("{url}/headers"));
    assert_eq!((decision(&v).0.as_str(), v["audited"].as_bool()), ("allow", Some(true)));
    // A workload none of them selects.
    let (_, v) = explain(&config, &["--workload-namespace", "foo"], &format!("{url}/get"));
    assert_eq!(decision(&v), ("allow".into(), Value::Null));
}

#[test]
fn mtls_modes_tcp_and_dry_run() {
    let d = dir("mtls");
    let config = write(
        &d,
        "policies.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec:
  mtls: {mode: STRICT}
  selector: {matchLabels: {app: httpbin}}
  portLevelMtls:
    "9000": {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-deny
  namespace: foo
  annotations: {istio.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {ports: ["8000"]}}]
"#,
    );
    let (_, v) = explain(&config, &HTTPBIN, "http://httpbin.foo:8000/get");
    assert_eq!(decision(&v), ("reject".into(), Value::Null), "plaintext on STRICT: the connection is refused");
    assert_eq!(v["mtls"], "STRICT");
    let peer = ["--peer", "spiffe://cluster.local/ns/foo/sa/sleep"];
    let (_, v) = explain(&config, &[&HTTPBIN[..], &peer[..]].concat(), "http://httpbin.foo:8000/get");
    assert_eq!(decision(&v), ("allow".into(), Value::Null));
    assert_eq!(v["dryRun"], "deny", "the dry-run DENY would have refused it");
    let (_, v) = explain(&config, &[&HTTPBIN[..], &["--port", "9000"]].concat(), "http://httpbin.foo/get");
    assert_eq!((v["mtls"].as_str(), v["decision"].as_str()), (Some("PERMISSIVE"), Some("allow")));
    assert_eq!(v["dryRun"], "allow", "the dry-run DENY applies but does not match port 9000: {v}");
    let (_, v) = explain(&config, &[&HTTPBIN[..], &peer[..], &["--tcp"]].concat(), "tcp://httpbin.foo:8000");
    assert_eq!((decision(&v), v["normalizedPath"].clone()), (("allow".into(), Value::Null), Value::Null));
}

#[test]
fn tokens_and_claims() {
    let key = JwtKey::new();
    let d = dir("jwt");
    let config = write(
        &d,
        "policies.yaml",
        &format!(
            r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt-example, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}}}]
    when: [{{key: "request.auth.claims[groups]", values: ["group1"]}}]
"#,
            jwks = key.jwks()
        ),
    );
    let url = "http://httpbin.foo:8000/headers";
    let claims = |groups: &[&str]| json!({"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "groups": groups, "exp": 4_000_000_000u64});
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let good = bearer(&key.mint(claims(&["group1", "group2"])));
    let (_, v) = explain(&config, &[&HTTPBIN[..], &["-H", &good]].concat(), url);
    assert_eq!(decision(&v), ("allow".into(), Value::Null));
    let other_group = bearer(&key.mint(claims(&["group2"])));
    let (_, v) = explain(&config, &[&HTTPBIN[..], &["-H", &other_group]].concat(), url);
    assert_eq!(decision(&v), ("deny".into(), json!(403)));
    let (_, v) = explain(&config, &[&HTTPBIN[..], &["-H", "Authorization: Bearer not.a.token"]].concat(), url);
    assert_eq!(decision(&v), ("reject".into(), json!(401)));
    let expired = bearer(&key.mint(json!({"iss": "testing@secure.istio.io", "sub": "x", "exp": 1_000_000_000u64})));
    let (_, v) = explain(&config, &[&HTTPBIN[..], &["-H", &expired]].concat(), url);
    assert_eq!(decision(&v), ("reject".into(), json!(401)));
    let (_, v) = explain(&config, &HTTPBIN, url);
    assert_eq!(decision(&v), ("deny".into(), json!(403)), "no token: authentication passes, the policy wants one");
    let given = claims(&["group1"]).to_string();
    let (_, v) = explain(&config, &[&HTTPBIN[..], &["--jwt-claims", &given]].concat(), url);
    assert_eq!(decision(&v), ("allow".into(), Value::Null));
}

#[test]
fn exit_codes() {
    let d = dir("exit");
    let invalid = write(
        &d,
        "bad.yaml",
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {methods: ["GET"]}}]
    when: [{key: "request.nonsense", values: ["x"]}]
"#,
    );
    let (code, v) = explain(&invalid, &HTTPBIN, "http://httpbin.foo:8000/");
    assert_eq!(code, 1, "an invalid configuration: {v}");
    let (code, _) = explain(&invalid, &["--peer", "not-a-spiffe-id"], "http://httpbin.foo:8000/");
    assert_eq!(code, 2);
    let (code, _) = explain(&invalid, &["--workload-label", "novalue"], "http://httpbin.foo:8000/");
    assert_eq!(code, 2);
}
