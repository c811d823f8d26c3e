//! The authorization decision, table-style: every `from`/`to`/`when` field, each value form
//! (exact, `prefix*`, `*suffix`, `*`, templates, CIDRs), the `not` forms, Istio's order of
//! actions, dry-run and audit, trust-domain aliases, TCP semantics of HTTP-only fields, and the
//! workload index. Expected results follow istio/istio `pilot/pkg/security/authz/` (model,
//! matcher, builder) and the AuthorizationPolicy reference.

use std::sync::Arc;

use mesh_core::authz::*;
use mesh_core::policy::LabelSelector;
use mesh_core::workload::Workload;

fn v(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

fn policy(name: &str, action: Action, rules: Vec<RuleSpec>) -> PolicySpec {
    PolicySpec { rules, ..PolicySpec::new("foo", name, action) }
}

fn from(s: SourceSpec) -> RuleSpec {
    RuleSpec { from: vec![s], ..Default::default() }
}

fn to(o: OperationSpec) -> RuleSpec {
    RuleSpec { to: vec![o], ..Default::default() }
}

fn when(key: &str, values: &[&str], not_values: &[&str]) -> RuleSpec {
    RuleSpec {
        when: vec![ConditionSpec { key: key.into(), values: v(values), not_values: v(not_values) }],
        ..Default::default()
    }
}

fn base() -> AuthzRequest {
    AuthzRequest {
        peer: Some(Arc::from("spiffe://cluster.local/ns/default/sa/sleep")),
        source_ip: Some("10.1.2.3".parse().expect("ip")),
        remote_ip: Some("192.168.7.7".parse().expect("ip")),
        destination_ip: Some("10.9.0.1".parse().expect("ip")),
        destination_port: 8000,
        sni: Some("httpbin.foo.svc.cluster.local".into()),
        http: Some(HttpAttributes {
            method: "GET".into(),
            host: "httpbin.foo:8000".into(),
            path: "/status/200?x=1".into(),
            headers: {
                let mut h = http::HeaderMap::new();
                h.insert("x-token", "admin".parse().expect("value"));
                h.append("x-multi", "a".parse().expect("value"));
                h.append("x-multi", "b".parse().expect("value"));
                h
            },
            jwt: Some(
                [
                    ("iss", ClaimValue::String("https://issuer.example.com".into())),
                    ("sub", ClaimValue::String("alice".into())),
                    ("aud", ClaimValue::List(vec![ClaimValue::String("web".into()), ClaimValue::String("api".into())])),
                    ("azp", ClaimValue::String("frontend".into())),
                    ("groups", ClaimValue::List(vec![ClaimValue::String("dev".into())])),
                    ("exp", ClaimValue::Other),
                    (
                        "nested",
                        ClaimValue::Object(
                            [(
                                "level".to_string(),
                                ClaimValue::Object([("key".to_string(), ClaimValue::String("deep".into()))].into()),
                            )]
                            .into(),
                        ),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
        }),
    }
}

fn w() -> Workload {
    Workload::new("foo", [("app", "httpbin")])
}

/// Does one ALLOW rule admit the request (the only ALLOW policy of the workload)?
fn allows(rule: RuleSpec, req: &AuthzRequest) -> bool {
    let p = AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), [policy("p", Action::Allow, vec![rule])]);
    p.authorize(&w(), req).allowed
}

macro_rules! table {
    ($($name:literal: $rule:expr, $req:expr => $want:expr;)*) => {{
        let mut failed = Vec::new();
        $(
            if allows($rule, &$req) != $want {
                failed.push($name);
            }
        )*
        assert!(failed.is_empty(), "cases failed: {failed:?}");
    }};
}

fn plaintext() -> AuthzRequest {
    AuthzRequest { peer: None, ..base() }
}

fn with_path(path: &str) -> AuthzRequest {
    let mut r = base();
    if let Some(h) = r.http.as_mut() {
        h.path = path.into();
    }
    r
}

fn with_host(host: &str) -> AuthzRequest {
    let mut r = base();
    if let Some(h) = r.http.as_mut() {
        h.host = host.into();
    }
    r
}

fn with_peer(peer: &str) -> AuthzRequest {
    AuthzRequest { peer: Some(Arc::from(peer)), ..base() }
}

fn src(f: impl FnOnce(&mut SourceSpec)) -> RuleSpec {
    let mut s = SourceSpec::default();
    f(&mut s);
    from(s)
}

fn op(f: impl FnOnce(&mut OperationSpec)) -> RuleSpec {
    let mut o = OperationSpec::default();
    f(&mut o);
    to(o)
}

#[test]
fn source_fields() {
    table! {
        "principal exact": src(|s| s.principals = v(&["cluster.local/ns/default/sa/sleep"])), base() => true;
        "principal other": src(|s| s.principals = v(&["cluster.local/ns/default/sa/other"])), base() => false;
        "principal prefix": src(|s| s.principals = v(&["cluster.local/ns/default/*"])), base() => true;
        "principal suffix": src(|s| s.principals = v(&["*/sa/sleep"])), base() => true;
        "principal suffix miss": src(|s| s.principals = v(&["*/sa/curl"])), base() => false;
        "principal any": src(|s| s.principals = v(&["*"])), base() => true;
        "principal any plaintext": src(|s| s.principals = v(&["*"])), plaintext() => false;
        "notPrincipals any plaintext": src(|s| s.not_principals = v(&["*"])), plaintext() => true;
        "notPrincipals any mtls": src(|s| s.not_principals = v(&["*"])), base() => false;
        "namespace": src(|s| s.namespaces = v(&["default"])), base() => true;
        "namespace wildcard": src(|s| s.namespaces = v(&["def*"])), base() => true;
        "namespace suffix": src(|s| s.namespaces = v(&["*ault"])), base() => true;
        "namespace other": src(|s| s.namespaces = v(&["prod"])), base() => false;
        "namespace plaintext": src(|s| s.namespaces = v(&["default"])), plaintext() => false;
        "notNamespaces": src(|s| s.not_namespaces = v(&["default"])), base() => false;
        "notNamespaces plaintext": src(|s| s.not_namespaces = v(&["default"])), plaintext() => true;
        "serviceAccount short (policy ns foo)": src(|s| s.service_accounts = v(&["sleep"])), base() => false;
        "serviceAccount ns/sa": src(|s| s.service_accounts = v(&["default/sleep"])), base() => true;
        "serviceAccount prefix is not a match": src(|s| s.service_accounts = v(&["default/sle"])), base() => false;
        "serviceAccount longer name": src(|s| s.service_accounts = v(&["default/sleep"])), with_peer("spiffe://cluster.local/ns/default/sa/sleep-junk") => false;
        "notServiceAccounts": src(|s| s.not_service_accounts = v(&["default/sleep"])), base() => false;
        "trustDomain": src(|s| s.trust_domains = v(&["cluster.local"])), base() => true;
        "trustDomain other": src(|s| s.trust_domains = v(&["cluster.loc"])), base() => false;
        "trustDomain prefix": src(|s| s.trust_domains = v(&["cluster.*"])), base() => true;
        "trustDomain any": src(|s| s.trust_domains = v(&["*"])), base() => true;
        "notTrustDomains": src(|s| s.not_trust_domains = v(&["cluster.local"])), base() => false;
        "ipBlocks": src(|s| s.ip_blocks = v(&["10.1.0.0/16"])), base() => true;
        "ipBlocks single": src(|s| s.ip_blocks = v(&["10.1.2.3"])), base() => true;
        "ipBlocks miss (remote is not the peer)": src(|s| s.ip_blocks = v(&["192.168.7.7"])), base() => false;
        "notIpBlocks": src(|s| s.not_ip_blocks = v(&["10.0.0.0/8"])), base() => false;
        "remoteIpBlocks": src(|s| s.remote_ip_blocks = v(&["192.168.0.0/16"])), base() => true;
        "remoteIpBlocks is not the peer": src(|s| s.remote_ip_blocks = v(&["10.1.2.3"])), base() => false;
        "notRemoteIpBlocks": src(|s| s.not_remote_ip_blocks = v(&["192.168.7.7"])), base() => false;
        "ipv6 block": src(|s| s.ip_blocks = v(&["2001:db8::/32"])), AuthzRequest { source_ip: Some("2001:db8::1".parse().expect("ip")), ..base() } => true;
        "requestPrincipals exact": src(|s| s.request_principals = v(&["https://issuer.example.com/alice"])), base() => true;
        "requestPrincipals any": src(|s| s.request_principals = v(&["*"])), base() => true;
        "requestPrincipals issuer/*": src(|s| s.request_principals = v(&["https://issuer.example.com/*"])), base() => true;
        "requestPrincipals */sub": src(|s| s.request_principals = v(&["*/alice"])), base() => true;
        "requestPrincipals *suffix/sub": src(|s| s.request_principals = v(&["*.example.com/alice"])), base() => true;
        "requestPrincipals prefix without /: issuer prefix": src(|s| s.request_principals = v(&["https:*"])), base() => true;
        "requestPrincipals prefix with /: split at the last / (Istio)": src(|s| s.request_principals = v(&["https://issuer.*"])),
            base() => false;
        "requestPrincipals other sub": src(|s| s.request_principals = v(&["https://issuer.example.com/bob"])), base() => false;
        "requestPrincipals no token": src(|s| s.request_principals = v(&["*"])), AuthzRequest { http: Some(HttpAttributes { jwt: None, ..base().http.expect("http") }), ..base() } => false;
        "notRequestPrincipals no token": src(|s| s.not_request_principals = v(&["*"])), AuthzRequest { http: Some(HttpAttributes { jwt: None, ..base().http.expect("http") }), ..base() } => true;
        "fields ANDed": src(|s| { s.principals = v(&["*"]); s.ip_blocks = v(&["1.1.1.1"]); }), base() => false;
        "values ORed": src(|s| s.ip_blocks = v(&["1.1.1.1", "10.1.2.3"])), base() => true;
    }
}

#[test]
fn operation_fields() {
    table! {
        "host exact, port as sent": op(|o| o.hosts = v(&["httpbin.foo:8000"])), base() => true;
        "host without port does not match host:port": op(|o| o.hosts = v(&["httpbin.foo"])), base() => false;
        "host without port": op(|o| o.hosts = v(&["httpbin.foo"])), with_host("httpbin.foo") => true;
        "host case-insensitive": op(|o| o.hosts = v(&["HTTPBIN.foo"])), with_host("httpbin.FOO") => true;
        "host prefix for any port": op(|o| o.hosts = v(&["httpbin.foo:*"])), base() => true;
        "host suffix": op(|o| o.hosts = v(&["*.foo:8000"])), base() => true;
        "host any": op(|o| o.hosts = v(&["*"])), base() => true;
        "notHosts": op(|o| o.not_hosts = v(&["*.FOO:8000"])), base() => false;
        "port": op(|o| o.ports = v(&["8000"])), base() => true;
        "port other": op(|o| o.ports = v(&["9000"])), base() => false;
        "notPorts": op(|o| o.not_ports = v(&["8000"])), base() => false;
        "method": op(|o| o.methods = v(&["GET"])), base() => true;
        "method case-sensitive": op(|o| o.methods = v(&["get"])), base() => false;
        "method prefix": op(|o| o.methods = v(&["G*"])), base() => true;
        "notMethods": op(|o| o.not_methods = v(&["GET"])), base() => false;
        "path exact, query ignored": op(|o| o.paths = v(&["/status/200"])), base() => true;
        "path prefix": op(|o| o.paths = v(&["/status/*"])), base() => true;
        "path suffix": op(|o| o.paths = v(&["*/200"])), base() => true;
        "path any": op(|o| o.paths = v(&["*"])), base() => true;
        "path other": op(|o| o.paths = v(&["/status"])), base() => false;
        "notPaths": op(|o| o.not_paths = v(&["/status/*"])), base() => false;
        "template {*}": op(|o| o.paths = v(&["/status/{*}"])), base() => true;
        "template {*} one segment": op(|o| o.paths = v(&["/{*}"])), base() => false;
        "template {**}": op(|o| o.paths = v(&["/{**}"])), base() => true;
        "template {**} needs its slash": op(|o| o.paths = v(&["/status/200/{**}"])), base() => false;
        "template {**} zero segments": op(|o| o.paths = v(&["/store/{**}/cart"])), with_path("/store//cart") => true;
        "template {**} many segments": op(|o| o.paths = v(&["/store/{**}/cart"])), with_path("/store/a/b/cart") => true;
        "template {**} not without the slashes": op(|o| o.paths = v(&["/store/{**}/cart"])), with_path("/store/cart") => false;
        "template {*} not empty": op(|o| o.paths = v(&["/foo/{*}/bar/{**}"])), with_path("/foo//bar/bat.txt") => false;
        "template mixed": op(|o| o.paths = v(&["/foo/{*}/bar/{**}"])), with_path("/foo/buzz/bar/bat/fuzz.txt") => true;
        "to entries ORed": RuleSpec { to: vec![OperationSpec { ports: v(&["1"]), ..Default::default() }, OperationSpec { ports: v(&["8000"]), ..Default::default() }], ..Default::default() }, base() => true;
    }
}

#[test]
fn when_keys() {
    table! {
        "header": when("request.headers[x-token]", &["admin"], &[]), base() => true;
        "header name case-insensitive": when("request.headers[X-Token]", &["admin"], &[]), base() => true;
        "header value case-sensitive": when("request.headers[x-token]", &["Admin"], &[]), base() => false;
        "header presence": when("request.headers[x-token]", &["*"], &[]), base() => true;
        "header absent": when("request.headers[x-none]", &["*"], &[]), base() => false;
        "header absent notValues": when("request.headers[x-none]", &[], &["x"]), base() => true;
        "header duplicates joined": when("request.headers[x-multi]", &["a,b"], &[]), base() => true;
        "header prefix": when("request.headers[x-token]", &["adm*"], &[]), base() => true;
        ":method pseudo-header": when("request.headers[:method]", &["GET"], &[]), base() => true;
        "source.ip": when("source.ip", &["10.1.2.0/24"], &[]), base() => true;
        "remote.ip": when("remote.ip", &["192.168.7.7"], &[]), base() => true;
        "remote.ip not the peer": when("remote.ip", &["10.1.2.3"], &[]), base() => false;
        "source.namespace": when("source.namespace", &["default"], &[]), base() => true;
        "source.namespace notValues": when("source.namespace", &[], &["default"]), base() => false;
        "source.principal": when("source.principal", &["cluster.local/ns/default/sa/sleep"], &[]), base() => true;
        "source.principal plaintext": when("source.principal", &["*"], &[]), plaintext() => false;
        "source.serviceAccount": when("source.serviceAccount", &["default/sleep"], &[]), base() => true;
        "source.trustDomain": when("source.trustDomain", &["cluster.local"], &[]), base() => true;
        "request.auth.principal": when("request.auth.principal", &["https://issuer.example.com/alice"], &[]), base() => true;
        "request.auth.audiences list": when("request.auth.audiences", &["api"], &[]), base() => true;
        "request.auth.audiences miss": when("request.auth.audiences", &["mobile"], &[]), base() => false;
        "request.auth.presenter": when("request.auth.presenter", &["front*"], &[]), base() => true;
        "claims": when("request.auth.claims[iss]", &["https://issuer.example.com"], &[]), base() => true;
        "claims list": when("request.auth.claims[groups]", &["dev"], &[]), base() => true;
        "claims nested": when("request.auth.claims[nested][level][key]", &["deep"], &[]), base() => true;
        "claims nested miss": when("request.auth.claims[nested][level]", &["deep"], &[]), base() => false;
        "claims number never matches": when("request.auth.claims[exp]", &["*"], &[]), base() => false;
        "claims absent notValues": when("request.auth.claims[none]", &[], &["x"]), base() => true;
        "destination.ip": when("destination.ip", &["10.9.0.0/16"], &[]), base() => true;
        "destination.port": when("destination.port", &["8000"], &[]), base() => true;
        "destination.port notValues": when("destination.port", &[], &["8000"]), base() => false;
        "connection.sni": when("connection.sni", &["*.foo.svc.cluster.local"], &[]), base() => true;
        "connection.sni none": when("connection.sni", &["*"], &[]), AuthzRequest { sni: None, ..base() } => false;
        "envoy filter metadata never": when("experimental.envoy.filters.a.b[c]", &["*"], &[]), base() => false;
        "envoy filter notValues always": when("experimental.envoy.filters.a.b[c]", &[], &["x"]), base() => true;
        "unknown key: rule skipped": when("destination.labels[app]", &["httpbin"], &[]), base() => false;
    }
}

#[test]
fn order_of_actions_and_reported_policy() {
    let any = || RuleSpec::default();
    let get = || op(|o| o.methods = v(&["GET"]));
    let set = |policies: Vec<PolicySpec>| AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), policies);
    let named = |d: &AuthzDecision| d.policy.as_ref().map(|p| (p.name.to_string(), p.action, p.rule));

    // CUSTOM (no provider: deny) before DENY before ALLOW.
    let mut custom = policy("ext", Action::Custom, vec![get()]);
    custom.provider = Some(Arc::from("opa"));
    let all = set(vec![
        policy("allow", Action::Allow, vec![any()]),
        policy("deny", Action::Deny, vec![get()]),
        custom.clone(),
    ]);
    let d = all.authorize(&w(), &base());
    assert_eq!((d.allowed, named(&d)), (false, Some(("ext".into(), Action::Custom, 0))));
    let all = set(vec![policy("allow", Action::Allow, vec![any()]), policy("deny", Action::Deny, vec![get()])]);
    let d = all.authorize(&w(), &base());
    assert_eq!((d.allowed, named(&d)), (false, Some(("deny".into(), Action::Deny, 0))));
    // A dry-run CUSTOM is never enforced.
    custom.dry_run = true;
    assert!(set(vec![custom]).authorize(&w(), &base()).allowed);

    // Envoy's order: policy ids sorted, so rule[10] comes before rule[2].
    let mut rules: Vec<RuleSpec> = (0..11).map(|_| op(|o| o.ports = v(&["1"]))).collect();
    rules[2] = any();
    rules[10] = any();
    let d =
        set(vec![policy("b", Action::Deny, rules), policy("a", Action::Deny, vec![get()])]).authorize(&w(), &base());
    assert_eq!(named(&d), Some(("a".into(), Action::Deny, 0)));
    let mut rules: Vec<RuleSpec> = (0..11).map(|_| op(|o| o.ports = v(&["1"]))).collect();
    rules[2] = any();
    rules[10] = any();
    let d = set(vec![policy("b", Action::Deny, rules)]).authorize(&w(), &base());
    assert_eq!(named(&d), Some(("b".into(), Action::Deny, 10)));

    // Audit beside the decision.
    let d = set(vec![policy("audit", Action::Audit, vec![get()])]).authorize(&w(), &base());
    assert!(d.allowed && d.policy.is_none());
    assert_eq!(d.audit.map(|a| a.name.to_string()), Some("audit".into()));

    // Dry-run ALLOW only: enforced nothing (allowed), the shadow says what it would do.
    let mut dry = policy("dry", Action::Allow, vec![op(|o| o.methods = v(&["POST"]))]);
    dry.dry_run = true;
    let d = set(vec![dry.clone()]).authorize(&w(), &base());
    assert!(d.allowed);
    assert_eq!(d.dry_run, Some(DryRun { allowed: false, policy: None }));
    dry.rules = vec![get()];
    let d = set(vec![dry]).authorize(&w(), &base());
    assert_eq!(d.dry_run.map(|r| (r.allowed, r.policy.map(|p| p.name.to_string()))), Some((true, Some("dry".into()))));
}

#[test]
fn trust_domain_aliases() {
    let bundle = TrustDomainBundle::new("td1", ["old-td", "*-td"]);
    let rule = src(|s| s.principals = v(&["old-td/ns/default/sa/sleep"]));
    let p = AuthzPolicies::new("istio-system", &bundle, [policy("p", Action::Allow, vec![rule])]);
    for (peer, want) in [
        ("spiffe://td1/ns/default/sa/sleep", true),
        ("spiffe://old-td/ns/default/sa/sleep", true),
        ("spiffe://cluster.local/ns/default/sa/sleep", false),
        ("spiffe://td1/ns/default/sa/other", false),
    ] {
        assert_eq!(p.authorize(&w(), &with_peer(peer)).allowed, want, "{peer}");
    }
    // trustDomains values naming a member expand to every member.
    let rule = src(|s| s.trust_domains = v(&["td1"]));
    let p = AuthzPolicies::new("istio-system", &bundle, [policy("p", Action::Allow, vec![rule])]);
    assert!(p.authorize(&w(), &with_peer("spiffe://old-td/ns/x/sa/y")).allowed);
    assert!(!p.authorize(&w(), &with_peer("spiffe://other/ns/x/sa/y")).allowed);
    // Istio's bundle test cases (pilot/pkg/security/trustdomain/bundle_test.go, shape).
    let b = TrustDomainBundle::new("td1", ["cluster.local"]);
    assert_eq!(
        b.replace_aliases(&v(&["cluster.local/ns/foo/sa/bar"])),
        v(&["td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar"])
    );
    assert_eq!(b.replace_aliases(&v(&["*/ns/foo/sa/bar"])), v(&["*/ns/foo/sa/bar"]));
    assert_eq!(b.replace_aliases(&v(&["sa/bar"])), v(&["sa/bar"]));
    assert_eq!(b.expand_aliases(&v(&["td1", "x"])), v(&["td1", "cluster.local", "x"]));
}

/// Istio's `tcp/deny-both-http-tcp-in.yaml` and `tcp/allow-both-http-tcp-in.yaml` rules, on a TCP
/// connection: DENY rules lose their HTTP-only fields (and match more), ALLOW rules with one are
/// skipped.
#[test]
fn tcp_semantics() {
    let tcp = AuthzRequest { http: None, destination_port: 80, ..base() };
    let rp = || src(|s| s.request_principals = v(&["id-1"]));
    let get = OperationSpec { methods: v(&["GET"]), ..Default::default() };
    let ns1 = SourceSpec { namespaces: v(&["ns-1"]), ..Default::default() };
    let cases: Vec<(&str, RuleSpec, bool)> = vec![
        // (rule, does the DENY rule match the TCP connection?)
        ("from http, to http", RuleSpec { from: rp().from, to: vec![get.clone()], ..Default::default() }, true),
        ("to http", RuleSpec { to: vec![get.clone()], ..Default::default() }, true),
        ("from http", rp(), true),
        (
            "from tcp (ns-1, not ours), to http",
            RuleSpec { from: vec![ns1.clone()], to: vec![get.clone()], ..Default::default() },
            false,
        ),
        (
            "from http, to port 80",
            RuleSpec {
                from: rp().from,
                to: vec![OperationSpec { ports: v(&["80"]), ..Default::default() }],
                ..Default::default()
            },
            true,
        ),
        (
            "from http, to port 8080 + http",
            RuleSpec {
                from: rp().from,
                to: vec![OperationSpec { ports: v(&["8080"]), methods: v(&["GET"]), ..Default::default() }],
                ..Default::default()
            },
            false,
        ),
        ("when http header", when("request.headers[:method]", &["GET"], &[]), true),
        ("when destination.port 80", when("destination.port", &["80"], &[]), true),
        ("when destination.port 81", when("destination.port", &["81"], &[]), false),
    ];
    for (name, rule, deny_matches) in cases {
        let p = AuthzPolicies::new(
            "istio-system",
            &TrustDomainBundle::default(),
            [policy("d", Action::Deny, vec![rule.clone()])],
        );
        assert_eq!(!p.authorize(&w(), &tcp).allowed, deny_matches, "DENY {name}");
        // The same rule as ALLOW: any HTTP-only field makes it match nothing on TCP.
        let http_only = name.contains("http");
        let p =
            AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), [policy("a", Action::Allow, vec![rule])]);
        assert_eq!(p.authorize(&w(), &tcp).allowed, !http_only && deny_matches, "ALLOW {name}");
    }
}

#[test]
fn selection_by_namespace_and_labels() {
    let mut selected = policy("only-v2", Action::Allow, vec![]);
    selected.selector = LabelSelector::new(
        &[("app".to_string(), "httpbin".to_string()), ("version".to_string(), "v2".to_string())]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
    );
    let mut root = PolicySpec::new("istio-system", "root-deny", Action::Deny);
    root.rules = vec![op(|o| o.paths = v(&["/admin"]))];
    let mut other_ns = PolicySpec::new("bar", "allow-nothing", Action::Allow);
    other_ns.rules = vec![];
    // 1,000 unrelated policies with selectors on other apps.
    let mut unrelated: Vec<PolicySpec> = (0..1000)
        .map(|i| {
            let mut p = policy(&format!("app-{i}"), Action::Allow, vec![]);
            p.selector = LabelSelector::new(
                &[("app".to_string(), format!("app-{i}"))].into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            );
            p
        })
        .collect();
    unrelated.extend([selected, root, other_ns]);
    let all = AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), unrelated);
    assert_eq!(all.len(), 1003);
    let v1 = Workload::new("foo", [("app", "httpbin"), ("version", "v1")]);
    let v2 = Workload::new("foo", [("app", "httpbin"), ("version", "v2")]);
    assert!(all.authorize(&v1, &base()).allowed, "no ALLOW policy selects v1");
    assert!(!all.authorize(&v2, &base()).allowed, "allow-nothing for v2");
    assert!(!all.authorize(&v1, &with_path("/admin")).allowed, "the root namespace's DENY");
    assert!(!all.authorize(&Workload::new("bar", []), &base()).allowed);
    assert!(all.for_workload(&Workload::new("baz", [("app", "app-7")])).authorize(&base()).policy.is_none());
    assert!(!all.authorize(&Workload::new("foo", [("app", "app-7")]), &base()).allowed, "app-7's allow-nothing");
    assert!(all.authorize(&Workload::new("baz", [("app", "app-7")]), &base()).allowed, "other namespace");
}
