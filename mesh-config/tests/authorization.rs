//! Istio's documented AuthorizationPolicy examples through the whole path: YAML, validation,
//! compile, and the snapshot's decision for the requests the pages describe.
//!
//! Sources: the AuthorizationPolicy reference (istio/api `security/v1beta1/authorization_policy.proto`,
//! <https://istio.io/latest/docs/reference/config/security/authorization-policy/>) and the
//! authorization tasks (<https://istio.io/latest/docs/tasks/security/authorization/>: authz-http,
//! authz-deny, authz-tcp, authz-ingress, authz-jwt, authz-td-migration, authz-dry-run).

use std::net::IpAddr;
use std::sync::Arc;

use mesh_config::{CompileOptions, LoadOptions, MeshConfig, compile, load_str, parse_mesh_config, validate};
use mesh_core::Snapshot;
use mesh_core::authz::{Action, AuthzDecision, AuthzRequest, ClaimValue, Claims, HttpAttributes};
use mesh_core::workload::Workload;

fn snapshot_with(yaml: &str, mesh: MeshConfig) -> Snapshot {
    let loaded = load_str(yaml, Some("policy.yaml"), &LoadOptions::default()).expect("yaml");
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    for r in &loaded.resources {
        let errors: Vec<String> = validate(r).iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
    compile(&loaded.resources, &CompileOptions { mesh, ..CompileOptions::default() }).snapshot
}

fn snapshot(yaml: &str) -> Snapshot {
    snapshot_with(yaml, MeshConfig::default())
}

/// A request builder.
#[derive(Clone)]
struct Req(AuthzRequest);

fn http(method: &str, path: &str) -> Req {
    Req(AuthzRequest {
        destination_port: 8000,
        source_ip: Some([10, 0, 0, 9].into()),
        http: Some(HttpAttributes {
            method: method.into(),
            host: "httpbin.foo:8000".into(),
            path: path.into(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn tcp(port: u16) -> Req {
    Req(AuthzRequest { destination_port: port, source_ip: Some([10, 0, 0, 9].into()), ..Default::default() })
}

impl Req {
    fn from(mut self, principal: &str) -> Req {
        self.0.peer = Some(Arc::from(format!("spiffe://{principal}")));
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Req {
        if let Some(h) = self.0.http.as_mut() {
            h.headers.append(name, value.parse().expect("header value"));
        }
        self
    }
    fn remote(mut self, ip: &str) -> Req {
        self.0.remote_ip = Some(ip.parse::<IpAddr>().expect("ip"));
        self
    }
    fn port(mut self, port: u16) -> Req {
        self.0.destination_port = port;
        self
    }
    fn jwt(mut self, claims: &[(&str, ClaimValue)]) -> Req {
        let claims: Claims = claims.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        if let Some(h) = self.0.http.as_mut() {
            h.jwt = Some(claims);
        }
        self
    }
}

fn s(v: &str) -> ClaimValue {
    ClaimValue::String(v.into())
}

/// (allowed, deciding policy name).
fn check(snapshot: &Snapshot, workload: &Workload, req: &Req) -> (bool, Option<String>) {
    let d: AuthzDecision = snapshot.authorize(workload, &req.0);
    (d.allowed, d.policy.map(|p| format!("{}[{}]", p.name, p.rule)))
}

fn httpbin() -> Workload {
    Workload::new("foo", [("app", "httpbin"), ("version", "v1")])
}

#[test]
fn reference_allow_example() {
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
"#,
    );
    let google = [("iss", s("https://accounts.google.com")), ("sub", s("u1"))];
    let w = httpbin();
    let yes = (true, Some("httpbin[0]".to_string()));
    let no = (false, None);
    let cases = [
        (http("GET", "/info/x").from("cluster.local/ns/default/sa/sleep").jwt(&google), yes.clone()),
        (http("POST", "/data").from("cluster.local/ns/test/sa/any").jwt(&google), yes.clone()),
        (http("GET", "/info?q=1").from("cluster.local/ns/test/sa/any").jwt(&google), yes.clone()),
        // No token, another issuer, another method/path, another source, plaintext.
        (http("GET", "/info").from("cluster.local/ns/default/sa/sleep"), no.clone()),
        (http("GET", "/info").from("cluster.local/ns/default/sa/sleep").jwt(&[("iss", s("https://evil"))]), no.clone()),
        (http("POST", "/info").from("cluster.local/ns/default/sa/sleep").jwt(&google), no.clone()),
        (http("POST", "/data/x").from("cluster.local/ns/test/sa/any").jwt(&google), no.clone()),
        (http("GET", "/info").from("cluster.local/ns/prod/sa/sleep").jwt(&google), no.clone()),
        (http("GET", "/info").jwt(&google), no.clone()),
    ];
    for (i, (req, want)) in cases.iter().enumerate() {
        assert_eq!(check(&snap, &w, req), *want, "case {i}");
    }
    // Another namespace has no ALLOW policy: allowed.
    assert_eq!(check(&snap, &Workload::new("bar", []), &http("GET", "/")), (true, None));
}

#[test]
fn reference_deny_examples_and_tcp() {
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-dev-post
  namespace: foo
spec:
  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["dev"]
    to:
    - operation:
        methods: ["POST"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-post-8080
  namespace: foo
spec:
  action: DENY
  rules:
  - to:
    - operation:
        methods: ["POST"]
        ports: ["8080"]
"#,
    );
    let w = httpbin();
    let check = |r: &Req| check(&snap, &w, r);
    assert_eq!(check(&http("POST", "/").from("cluster.local/ns/dev/sa/x")), (false, Some("deny-dev-post[0]".into())));
    assert_eq!(check(&http("GET", "/").from("cluster.local/ns/dev/sa/x")), (true, None));
    assert_eq!(check(&http("POST", "/").from("cluster.local/ns/prod/sa/x")), (true, None));
    assert_eq!(check(&http("POST", "/").port(8080)), (false, Some("deny-post-8080[0]".into())));
    // TCP: "missing attributes are treated as matches": all TCP traffic on 8080 denied; the
    // first policy, without its method, denies TCP from namespace dev on any port.
    assert_eq!(check(&tcp(8080)), (false, Some("deny-post-8080[0]".into())));
    assert_eq!(check(&tcp(9000)), (true, None));
    assert_eq!(check(&tcp(9000).from("cluster.local/ns/dev/sa/x")), (false, Some("deny-dev-post[0]".into())));
}

#[test]
fn reference_audit_allow_nothing_allow_all_root_namespace() {
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  namespace: ns1
  name: anyname
spec:
  selector:
    matchLabels:
      app: myapi
  action: AUDIT
  rules:
  - to:
    - operation:
        methods: ["GET"]
        paths: ["/user/profile/*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: foo
spec:
  {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-all
  namespace: bar
spec:
  rules:
  - {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: istio-system
spec:
  selector:
    matchLabels:
      version: v1
"#,
    );
    let api = Workload::new("ns1", [("app", "myapi")]);
    let d = snap.authorize(&api, &http("GET", "/user/profile/7").0);
    assert!(d.allowed);
    assert_eq!(d.audit.map(|a| (a.name.to_string(), a.action)), Some(("anyname".into(), Action::Audit)));
    assert!(snap.authorize(&api, &http("GET", "/user/other").0).audit.is_none());
    // allow-nothing in foo: everything denied, no policy named.
    assert_eq!(check(&snap, &Workload::new("foo", [("app", "x")]), &http("GET", "/")), (false, None));
    // allow-all in bar.
    assert_eq!(
        check(&snap, &Workload::new("bar", [("app", "x")]), &http("GET", "/")),
        (true, Some("allow-all[0]".into()))
    );
    // The root namespace's allow-nothing for version v1, in every namespace.
    assert_eq!(
        check(&snap, &Workload::new("bar", [("version", "v1")]), &http("GET", "/")),
        (true, Some("allow-all[0]".into()))
    );
    assert_eq!(check(&snap, &Workload::new("zzz", [("version", "v1")]), &http("GET", "/")), (false, None));
    assert_eq!(check(&snap, &Workload::new("zzz", [("version", "v2")]), &http("GET", "/")), (true, None));
}

#[test]
fn dry_run_task() {
    // authz-dry-run: a DENY on /headers with istio.io/dry-run: the request passes, the shadow
    // result says it would have been denied.
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-path-headers
  namespace: foo
  annotations:
    "istio.io/dry-run": "true"
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/headers"]
"#,
    );
    let d = snap.authorize(&httpbin(), &http("GET", "/headers").0);
    assert!(d.allowed && d.policy.is_none());
    let dry = d.dry_run.expect("dry run");
    assert!(!dry.allowed);
    assert_eq!(dry.policy.map(|p| p.name.to_string()), Some("deny-path-headers".into()));
    let d = snap.authorize(&httpbin(), &http("GET", "/ip").0);
    assert_eq!(d.dry_run.map(|r| (r.allowed, r.policy)), Some((true, None)));
}

#[test]
fn deny_task_headers_and_not_values() {
    // authz-deny: deny GET unless x-token is admin; then allow only /ip from curl.
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-method-get
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        methods: ["GET"]
    when:
    - key: request.headers[x-token]
      notValues: ["admin"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-path-ip
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - to:
    - operation:
        paths: ["/ip"]
"#,
    );
    let w = httpbin();
    assert_eq!(check(&snap, &w, &http("GET", "/get")), (false, Some("deny-method-get[0]".into())));
    assert_eq!(
        check(&snap, &w, &http("GET", "/get").header("x-token", "guest")),
        (false, Some("deny-method-get[0]".into()))
    );
    // Admin passes the DENY, but only /ip is allowed.
    assert_eq!(check(&snap, &w, &http("GET", "/get").header("x-token", "admin")), (false, None));
    assert_eq!(
        check(&snap, &w, &http("GET", "/ip").header("X-Token", "admin")),
        (true, Some("allow-path-ip[0]".into()))
    );
}

#[test]
fn tcp_task() {
    // authz-tcp: tcp-echo on 9000/9001/9002.
    let allow_ports = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: tcp-policy
  namespace: foo
spec:
  selector:
    matchLabels:
      app: tcp-echo
  action: ALLOW
  rules:
  - to:
    - operation:
        ports: ["9000", "9001"]
"#;
    let w = Workload::new("foo", [("app", "tcp-echo")]);
    let snap = snapshot(allow_ports);
    assert!(check(&snap, &w, &tcp(9000)).0);
    assert!(check(&snap, &w, &tcp(9001)).0);
    assert!(!check(&snap, &w, &tcp(9002)).0);
    // An HTTP-only field in the ALLOW rule: the rule is ignored on TCP, everything denied.
    let snap =
        snapshot(&allow_ports.replace("ports: [\"9000\", \"9001\"]", "methods: [\"GET\"]\n        ports: [\"9000\"]"));
    assert_eq!(check(&snap, &w, &tcp(9000)), (false, None));
    // The same field in a DENY rule: dropped, so every TCP connection (the rule's port) is denied.
    let deny = allow_ports
        .replace("action: ALLOW", "action: DENY")
        .replace("ports: [\"9000\", \"9001\"]", "methods: [\"GET\"]");
    let snap = snapshot(&deny);
    assert_eq!(check(&snap, &w, &tcp(9000)), (false, Some("tcp-policy[0]".into())));
    assert_eq!(check(&snap, &w, &tcp(9001)), (false, Some("tcp-policy[0]".into())));
    let snap = snapshot(&deny.replace("methods: [\"GET\"]", "methods: [\"GET\"]\n        ports: [\"9000\"]"));
    assert!(!check(&snap, &w, &tcp(9000)).0);
    assert!(check(&snap, &w, &tcp(9001)).0);
}

#[test]
fn ingress_task_remote_ip() {
    // authz-ingress: ipBlocks is the connection's peer (the load balancer); remoteIpBlocks the
    // original client (X-Forwarded-For).
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ingress-policy
  namespace: istio-system
spec:
  selector:
    matchLabels:
      app: istio-ingressgateway
  action: ALLOW
  rules:
  - from:
    - source:
        remoteIpBlocks: ["1.2.3.4", "5.6.7.0/24"]
"#,
    );
    let gw = Workload::new("istio-system", [("app", "istio-ingressgateway")]);
    assert!(check(&snap, &gw, &http("GET", "/").remote("5.6.7.8")).0);
    assert!(!check(&snap, &gw, &http("GET", "/").remote("5.6.8.8")).0);
    // Without X-Forwarded-For the remote address is the peer's.
    assert!(!check(&snap, &gw, &http("GET", "/")).0);
    let mut direct = http("GET", "/");
    direct.0.source_ip = Some([1, 2, 3, 4].into());
    assert!(check(&snap, &gw, &direct).0);
}

#[test]
fn jwt_task() {
    // authz-jwt: a request principal, then a groups claim.
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
    when:
    - key: request.auth.claims[groups]
      values: ["group1"]
"#,
    );
    let w = httpbin();
    let me = |groups: ClaimValue| {
        http("GET", "/headers").jwt(&[
            ("iss", s("testing@secure.istio.io")),
            ("sub", s("testing@secure.istio.io")),
            ("groups", groups),
        ])
    };
    assert!(check(&snap, &w, &me(ClaimValue::List(vec![s("group1"), s("group2")]))).0);
    assert!(!check(&snap, &w, &me(ClaimValue::List(vec![s("group2")]))).0);
    assert!(check(&snap, &w, &me(s("group1"))).0);
    assert!(!check(&snap, &w, &http("GET", "/headers")).0);
}

#[test]
fn trust_domain_migration_task() {
    // authz-td-migration: the mesh moved to trust domain old-td -> new-td with old-td as alias;
    // a policy naming old-td (or cluster.local) admits curl from both.
    let policy = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: service-httpbin.default.svc.cluster.local
  namespace: default
spec:
  rules:
  - from:
    - source:
        principals:
        - old-td/ns/default/sa/curl
    to:
    - operation:
        methods:
        - GET
  selector:
    matchLabels:
      app: httpbin
"#;
    let w = Workload::new("default", [("app", "httpbin")]);
    let without = snapshot(policy);
    assert!(!check(&without, &w, &http("GET", "/ip").from("new-td/ns/default/sa/curl")).0);
    let mesh = parse_mesh_config("trustDomain: new-td\ntrustDomainAliases: [old-td]\n", None).expect("yaml").config;
    let with = snapshot_with(policy, mesh.clone());
    assert!(check(&with, &w, &http("GET", "/ip").from("new-td/ns/default/sa/curl")).0);
    assert!(check(&with, &w, &http("GET", "/ip").from("old-td/ns/default/sa/curl")).0);
    assert!(!check(&with, &w, &http("GET", "/ip").from("new-td/ns/default/sa/sleep")).0);
    assert!(!check(&with, &w, &http("GET", "/ip").from("other-td/ns/default/sa/curl")).0);
    let local = snapshot_with(&policy.replace("old-td/ns", "cluster.local/ns"), mesh);
    assert!(check(&local, &w, &http("GET", "/ip").from("new-td/ns/default/sa/curl")).0);
}

#[test]
fn http_task_bookinfo() {
    // authz-http: allow-nothing in default, then GET to productpage from anyone, and GET to
    // details/reviews from the productpage service account only.
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec:
  {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: details-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: details
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
    to:
    - operation:
        methods: ["GET"]
"#,
    );
    let pp = Workload::new("default", [("app", "productpage")]);
    let details = Workload::new("default", [("app", "details")]);
    let ratings = Workload::new("default", [("app", "ratings")]);
    assert_eq!(check(&snap, &pp, &http("GET", "/productpage")), (true, Some("productpage-viewer[0]".into())));
    assert_eq!(check(&snap, &pp, &http("POST", "/productpage")), (false, None));
    assert!(
        check(&snap, &details, &http("GET", "/details/0").from("cluster.local/ns/default/sa/bookinfo-productpage")).0
    );
    assert!(!check(&snap, &details, &http("GET", "/details/0").from("cluster.local/ns/default/sa/bookinfo-reviews")).0);
    assert!(!check(&snap, &details, &http("GET", "/details/0")).0, "plaintext has no principal");
    assert!(!check(&snap, &ratings, &http("GET", "/ratings/0")).0);
}

#[test]
fn request_authentication_rules_per_workload() {
    // authz-jwt's RequestAuthentication, plus one in the root namespace for every workload and a
    // waypoint-attached one (ignored, as sidecars ignore it).
    let snap = snapshot(
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt-example
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/master/security/tools/jwt/samples/jwks.json"
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: mesh-wide
  namespace: istio-system
spec:
  jwtRules:
  - issuer: "https://accounts.example.com"
    fromHeaders:
    - name: X-Jwt
    spaceDelimitedClaims: ["roles"]
    forwardOriginalToken: true
    timeout: 2s
    presence: REQUIRED
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: waypoint
  namespace: foo
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: httpbin
  jwtRules:
  - issuer: "never"
"#,
    );
    let rules = snap.security().jwt_rules(&httpbin());
    let issuers: Vec<&str> = rules.iter().map(|r| &*r.issuer).collect();
    assert_eq!(issuers, ["https://accounts.example.com", "testing@secure.istio.io"]);
    use mesh_core::request_authn::{JwksSource, TokenLocation};
    let mesh = &rules[0];
    assert_eq!(&*mesh.locations, [TokenLocation::Header { name: "x-jwt".into(), prefix: "".into() }]);
    assert_eq!(mesh.space_delimited_claims.iter().map(|c| &**c).collect::<Vec<_>>(), ["permission", "roles", "scope"]);
    assert!(mesh.forward_original_token && mesh.required);
    assert_eq!(mesh.timeout, std::time::Duration::from_secs(2));
    assert_eq!(mesh.jwks, JwksSource::Discovery);
    assert!(matches!(&rules[1].jwks, JwksSource::Uri(u) if u.ends_with("jwks.json")));
    assert_eq!(rules[1].locations.len(), 2, "Envoy's default locations");
    let other = snap.security().jwt_rules(&Workload::new("foo", [("app", "other")]));
    assert_eq!(other.len(), 1);
}
