//! `security.istio.io` resources: Istio's own valid and invalid cases (`testdata/security/`, copied
//! from istio/istio; see its README) load and validate as Istio says, and invalid configurations
//! are reported with file, line and field path.

use std::path::{Path, PathBuf};

use mesh_config::{Diagnostic, Kind, LoadOptions, Severity, load_path, load_str, validate};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/security")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(testdata().join(dir))
        .expect("testdata dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Load and validate: every diagnostic, load and validation alike.
fn diagnostics(text: &str, file: &str) -> (usize, Vec<Diagnostic>) {
    let loaded = load_str(text, Some(file), &LoadOptions::default()).expect("yaml");
    let mut out = loaded.diagnostics.clone();
    for r in &loaded.resources {
        out.extend(validate(r));
    }
    (loaded.resources.len(), out)
}

fn errors(d: &[Diagnostic]) -> Vec<String> {
    d.iter().filter(|d| d.is_error()).map(ToString::to_string).collect()
}

#[test]
fn istio_builder_and_ambient_inputs_validate() {
    let mut count = 0;
    for dir in ["authz-builder/http", "authz-builder/tcp", "peer-authn"] {
        for file in files(dir) {
            let loaded = load_path(&file, &LoadOptions::default());
            assert!(loaded.failed.is_empty() && loaded.skipped.is_empty(), "{}: {loaded:?}", file.display());
            assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
            for r in &loaded.resources {
                assert!(r.kind.is_security(), "{}", r.kind);
                let e = errors(&validate(r));
                assert!(e.is_empty(), "{}", e.join("\n"));
                count += 1;
            }
        }
    }
    assert!(count >= 50, "only {count} resources");
}

/// Istio's CRD cases: documents with an `_err:` key are invalid (the key is the API server's
/// message), the others valid. The `_err` line is taken out before loading.
fn crd_cases(file: &str) -> Vec<(Option<String>, String)> {
    let text = std::fs::read_to_string(testdata().join("istio-validation").join(file)).expect("case file");
    text.split("\n---")
        .filter(|doc| doc.contains("kind:"))
        .map(|doc| {
            let err = doc
                .lines()
                .find_map(|l| l.strip_prefix("_err:"))
                .map(|e| e.trim().trim_matches(['\'', '"']).to_string());
            let body: Vec<&str> = doc.lines().filter(|l| !l.starts_with("_err:")).collect();
            (err, body.join("\n"))
        })
        .collect()
}

#[test]
fn istio_crd_cases() {
    let mut checked = 0;
    for kind in ["authz", "peerauth", "reqauth"] {
        for (validity, file) in [("valid", format!("{kind}-valid.yaml")), ("invalid", format!("{kind}-invalid.yaml"))] {
            for (err, doc) in crd_cases(&file) {
                let (resources, diags) = diagnostics(&doc, &file);
                let errs = errors(&diags);
                match (&err, validity) {
                    (None, "valid") => {
                        assert_eq!(resources, 1, "{doc}");
                        assert!(errs.is_empty(), "{file}: valid case refused:\n{}\n{doc}", errs.join("\n"));
                    }
                    (Some(message), "invalid") => {
                        assert!(!errs.is_empty(), "{file}: invalid case accepted ({message}):\n{doc}");
                    }
                    _ => panic!("{file}: a case without _err in an invalid file, or the reverse"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} cases");
}

const INVALID: &str = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: bad
  namespace: foo
spec:
  action: DENY
  rules:
  - from:
    - source:
        ipBlocks: ["10.0.0.0/33"]
        serviceAccounts: ["a/b/c"]
    to:
    - operation:
        ports: ["http"]
        paths: ["/{**}/x/{*}"]
    when:
    - key: request.headers
      values: ["x"]
    - key: destination.labels[app]
      values: ["x"]
    - key: source.ip
  - to:
    - operation:
        method: ["GET"]
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: ports
  namespace: foo
spec:
  mtls:
    mode: STRICT
  portLevelMtls:
    "8080":
      mode: DISABLE
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: "*"
  jwtRules:
  - issuer: ""
    jwksUri: ftp://example.com/jwks
    outputClaimToHeaders:
    - header: ":authority"
      claim: sub
"#;

#[test]
fn invalid_policies_are_located() {
    let (_, diags) = diagnostics(INVALID, "bad.yaml");
    let errs = errors(&diags);
    let expected = [
        "bad.yaml:25: AuthorizationPolicy foo/bad: rules[1].to[0].operation.method: unknown field \"method\" (did you mean \"methods\"?)",
        "bad.yaml:35: PeerAuthentication foo/ports: portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS",
        "bad.yaml:47: RequestAuthentication foo/jwt: selector.matchLabels.app: wildcard is not supported in selector: \"app=*\"",
        "bad.yaml:50: RequestAuthentication foo/jwt: jwtRules[0].jwksUri: URI scheme \"ftp\" is not supported; url must have scheme http:// or https://",
        "bad.yaml:52: RequestAuthentication foo/jwt: jwtRules[0].outputClaimToHeaders[0].header: header name \":authority\" is not a valid header name",
    ];
    assert_eq!(errs, expected, "\n{}", errs.join("\n"));
    // The AuthorizationPolicy with the unknown field is not a resource; without it, every rule
    // error is located.
    let fixed = INVALID.replace("        method: [\"GET\"]", "        methods: [\"GET\"]");
    let (_, diags) = diagnostics(&fixed, "bad.yaml");
    let errs: Vec<String> = errors(&diags).into_iter().filter(|e| e.contains("AuthorizationPolicy")).collect();
    let expected = [
        "bad.yaml:11: AuthorizationPolicy foo/bad: rules[0].from[0].source.ipBlocks: bad CIDR range (10.0.0.0/33): prefix length \"33\" is not valid for the address",
        "bad.yaml:12: AuthorizationPolicy foo/bad: rules[0].from[0].source.serviceAccounts: expected format 'serviceAccount' or 'namespace/serviceAccount', found \"a/b/c\" in ServiceAccounts",
        "bad.yaml:15: AuthorizationPolicy foo/bad: rules[0].to[0].operation.ports: bad port (http)",
        "bad.yaml:16: AuthorizationPolicy foo/bad: rules[0].to[0].operation.paths: invalid or unsupported path {**}/x/{*}, found in Paths. {**} is not the last operator",
        "bad.yaml:18: AuthorizationPolicy foo/bad: rules[0].when[0].key: invalid `key` request.headers: bad key (request.headers): should have format a[b]",
        "bad.yaml:20: AuthorizationPolicy foo/bad: rules[0].when[1].key: invalid `key` destination.labels[app]: attribute destination.labels[app] is replaced by the workload selector",
        "bad.yaml:22: AuthorizationPolicy foo/bad: rules[0].when[2]: at least one of `values` or `notValues` must be set for key source.ip",
    ];
    assert_eq!(errs, expected, "\n{}", errs.join("\n"));
}

#[test]
fn unsupported_parts_are_named() {
    let text = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext
  namespace: foo
spec:
  action: CUSTOM
  provider:
    name: my-ext-authz
  rules:
  - when:
    - key: experimental.envoy.filters.network.mysql_proxy[db.table]
      values: ["[update]"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: waypoint
  namespace: foo
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: reviews
  rules:
  - {}
"#;
    let (n, diags) = diagnostics(text, "u.yaml");
    assert_eq!(n, 2);
    assert!(errors(&diags).is_empty(), "{:?}", errors(&diags));
    let unsupported: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Unsupported)
        .map(|d| format!("{} {}", d.line, d.path))
        .collect();
    assert!(unsupported.contains(&"7 action".to_string()), "{unsupported:?}");
    assert!(unsupported.contains(&"12 rules[0].when[0].key".to_string()), "{unsupported:?}");
    assert!(unsupported.contains(&"21 targetRefs".to_string()), "{unsupported:?}");
    let custom = diags.iter().find(|d| d.path == "action").expect("custom");
    assert!(custom.message.contains("my-ext-authz"), "{custom}");
}

#[test]
fn null_rule_is_refused() {
    let text = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: n\n  namespace: foo\nspec:\n  rules:\n  - ~\n";
    let (_, diags) = diagnostics(text, "n.yaml");
    assert_eq!(
        errors(&diags),
        ["n.yaml:8: AuthorizationPolicy foo/n: rules[0]: `rule` must not be nil, found at rule 0"]
    );
}

#[test]
fn security_kinds_and_versions() {
    let doc = |api: &str, kind: &str| format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: x\nspec: {{}}\n");
    for (api, kind) in [
        ("security.istio.io/v1", "PeerAuthentication"),
        ("security.istio.io/v1beta1", "AuthorizationPolicy"),
        ("security.istio.io/v1", "RequestAuthentication"),
    ] {
        let loaded = load_str(&doc(api, kind), None, &LoadOptions::default()).expect("yaml");
        assert_eq!(loaded.resources.len(), 1, "{api} {kind}: {:?}", loaded.diagnostics);
        assert_eq!(Some(loaded.resources[0].kind), Kind::parse(kind));
    }
    let loaded = load_str(&doc("security.istio.io/v1alpha1", "PeerAuthentication"), None, &LoadOptions::default())
        .expect("yaml");
    assert_eq!(
        loaded.diagnostics[0].message,
        "apiVersion \"security.istio.io/v1alpha1\" is not served; use security.istio.io/v1 or v1beta1"
    );
    let loaded =
        load_str(&doc("security.istio.io/v1", "AuthorisationPolicy"), None, &LoadOptions::default()).expect("yaml");
    assert_eq!(
        loaded.diagnostics[0].message,
        "no kind \"AuthorisationPolicy\" in security.istio.io (did you mean \"AuthorizationPolicy\"?)"
    );
    // DENY on HTTP-only attributes: Istio's warning.
    let deny = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: d\nspec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: [POST]\n";
    let (_, diags) = diagnostics(deny, "d.yaml");
    let warning = diags.iter().find(|d| d.severity == Severity::Warning).expect("warning");
    assert_eq!(warning.path, "rules[0]");
    assert!(warning.message.starts_with("configured AuthorizationPolicy will deny all traffic to TCP ports"));
}

/// Every invalid CRD case is refused for the reason Istio gives (first error of each, in file
/// order; `_err` holds the API server's wording, these are ours).
#[test]
fn istio_crd_invalid_cases_exact() {
    let mut firsts = Vec::new();
    for file in ["authz-invalid.yaml", "peerauth-invalid.yaml", "reqauth-invalid.yaml"] {
        for (_, doc) in crd_cases(file) {
            let (_, diags) = diagnostics(&doc, file);
            firsts.push(errors(&diags).into_iter().next().unwrap_or_default());
        }
    }
    let expected = [
        r#"authz-invalid.yaml:8: AuthorizationPolicy default/service-account-and-namespace: rules[0].from[0].source: cannot set serviceAccounts with namespaces or principals, found at rule 0"#,
        r#"authz-invalid.yaml:9: AuthorizationPolicy default/service-account-and-namespace-principal: rules[0].from[0].source: cannot set serviceAccounts with namespaces or principals, found at rule 0"#,
        r#"peerauth-invalid.yaml:7: PeerAuthentication default/bad-mode: mtls.mode: unknown variant `BLAH`, expected one of `UNSET`, `DISABLE`, `PERMISSIVE`, `STRICT`"#,
        r#"peerauth-invalid.yaml:11: PeerAuthentication default/bad-port: portLevelMtls.acd: type conversion error from "acd" to a port number"#,
        r#"peerauth-invalid.yaml:7: PeerAuthentication default/port-level-global: portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"#,
        r#"peerauth-invalid.yaml:10: PeerAuthentication default/empty-port-level: portLevelMtls: port level mTLS, if defined, must have at least one element"#,
        r#"peerauth-invalid.yaml:11: PeerAuthentication default/zero-port: portLevelMtls.0: port must be in range 1..65535"#,
        r#"peerauth-invalid.yaml:11: PeerAuthentication default/high-port: portLevelMtls.42949672: port must be in range 1..65535"#,
        r#"reqauth-invalid.yaml:9: RequestAuthentication default/multi-refs: only one of targetRefs or workloadSelector can be set"#,
        r#"reqauth-invalid.yaml:7: RequestAuthentication default/ref-and-selector: only one of targetRefs or workloadSelector can be set"#,
        r#"reqauth-invalid.yaml:7: RequestAuthentication default/bad-target-name: targetRef.name: targetRef name must be set"#,
        r#"reqauth-invalid.yaml:11: RequestAuthentication default/bad-target-namespace: targetRef.namespace: targetRef namespace must not be set; cross namespace referencing is not supported"#,
        r#"reqauth-invalid.yaml:11: RequestAuthentication default/bad-target-group: targetRef.namespace: targetRef namespace must not be set; cross namespace referencing is not supported"#,
        r#"reqauth-invalid.yaml:11: RequestAuthentication default/bad-target-kind: targetRef.namespace: targetRef namespace must not be set; cross namespace referencing is not supported"#,
        r#"reqauth-invalid.yaml:8: RequestAuthentication default/no-issuer: jwtRules[0]: issuer or jwksUri must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/empty-aud: jwtRules[0].audiences[0]: audience must be non-empty string"#,
        r#"reqauth-invalid.yaml:9: RequestAuthentication default/invalid-jwks: jwtRules[0].jwksUri: url must have scheme http:// or https://"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-from-headers-no-name: jwtRules[0].fromHeaders[0].name: location header name must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-from-headers-empty-name: jwtRules[0].fromHeaders[0].name: location header name must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-from-params: jwtRules[0].fromParams[0]: location query must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-from-cookies: jwtRules[0].fromCookies[0]: cookie name must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-claim-to-header-unset: jwtRules[0].outputClaimToHeaders[0]: outputClaimToHeaders header and claim value must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-claim-to-header-claim-empty: jwtRules[0].outputClaimToHeaders[0]: outputClaimToHeaders header and claim value must be non-empty string"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-claim-to-header-header-empty: jwtRules[0].outputClaimToHeaders[0]: outputClaimToHeaders header and claim value must be non-empty string"#,
        r#"reqauth-invalid.yaml:11: RequestAuthentication default/invalid-claim-to-header-bad-header: jwtRules[0].outputClaimToHeaders[0].header: header name ":authority" is not a valid header name"#,
        r#"reqauth-invalid.yaml:9: RequestAuthentication default/bad-timeout: jwtRules[0].timeout: must be a valid duration greater than 1ms: "apple" is not a duration (expected a number with a unit, e.g. "1.5s", "100ms", "1m")"#,
        r#"reqauth-invalid.yaml:10: RequestAuthentication default/invalid-space-delimited-claims: jwtRules[0].spaceDelimitedClaims[0]: claim name must be non-empty string"#,
        r#"reqauth-invalid.yaml:9: RequestAuthentication default/invalid-presence-value: jwtRules[0].presence: unknown variant `MANDATORY`, expected `OPTIONAL` or `REQUIRED`"#,
    ];
    assert_eq!(firsts, expected, "\n{}", firsts.join("\n"));
}
