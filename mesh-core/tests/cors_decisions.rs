//! CORS in the decision value, table-style: a rule's `corsPolicy` + a request → the decision
//! (Envoy's CORS filter as Istio configures it; see `mesh_core::cors`).

use std::sync::Arc;
use std::time::Duration;

use mesh_core::matcher::{Re2, StringMatcher};
use mesh_core::route::{
    CorsPolicy, Destination, DirectResponse, HeaderEdits, HeaderOps, HttpRule, Redirect, RedirectPort, RequestMatch,
    RetryPolicy, RouteAction, RouteDestination, RuleOrigin, WeightedDestinations,
};
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};
use mesh_core::{ClientIdentity, Decision, LocalReason, RequestView, Snapshot};

const HOST: &str = "a.example.com";
const APP: &str = "https://app.example";

fn policy(edit: impl FnOnce(&mut CorsPolicy)) -> CorsPolicy {
    let mut p = CorsPolicy {
        allow_origins: Box::new([
            StringMatcher::Exact(Arc::from(APP)),
            StringMatcher::Regex(Re2::new(r"https://.*\.trusted\.example").expect("regex")),
        ]),
        allow_methods: Box::new([Arc::from("GET"), Arc::from("POST")]),
        allow_headers: Box::new([Arc::from("x-token"), Arc::from("content-type")]),
        expose_headers: Box::new([Arc::from("x-trace")]),
        max_age: Some(Duration::from_secs(86400)),
        allow_credentials: Some(true),
        forward_unmatched_preflights: true,
    };
    edit(&mut p);
    p
}

fn rule(index: usize, prefix: &str, action: RouteAction, cors: Option<CorsPolicy>) -> Arc<HttpRule> {
    let response = HeaderOps {
        set: Box::new([(
            http::HeaderName::from_static("access-control-allow-origin"),
            http::HeaderValue::from_static("*"),
        )]),
        ..HeaderOps::default()
    };
    Arc::new(HttpRule {
        origin: RuleOrigin { kind: Default::default(), namespace: Arc::from("default"), name: Arc::from("vs"), index },
        name: None,
        matches: Box::new([RequestMatch { uri: Some(StringMatcher::Prefix(Arc::from(prefix))), ..Default::default() }]),
        action,
        rewrite: None,
        timeout: None,
        retries: Arc::new(RetryPolicy::istio_default()),
        fault: None,
        mirrors: Box::new([]),
        cors: cors.map(Arc::new),
        headers: Arc::new(HeaderEdits { request: HeaderOps::default(), response }),
    })
}

fn to_a() -> RouteAction {
    RouteAction::Route(WeightedDestinations::new(vec![RouteDestination {
        destination: Destination { host: Arc::from(HOST), subset: None, port: None },
        weight: 100,
        headers: HeaderEdits::default(),
    }]))
}

/// Rules by path prefix: `/forward` (FORWARD), `/ignore` (IGNORE), `/star` (`*` methods and
/// headers, any origin, no credentials, no max age, no expose), `/plain` (no policy),
/// `/redirect` and `/direct` (with a policy, but they do not forward).
fn snapshot() -> Snapshot {
    let mut b = SnapshotBuilder::new(Settings::default());
    let redirect = RouteAction::Redirect(Redirect {
        uri: Some(Arc::from("/elsewhere")),
        prefix_rewrite: None,
        authority: None,
        scheme: None,
        port: RedirectPort::Keep,
        code: 301,
    });
    let direct = RouteAction::DirectResponse(DirectResponse { status: 503, body: None });
    let star = policy(|p| {
        p.allow_origins = Box::new([StringMatcher::Exact(Arc::from("*"))]);
        p.allow_methods = Box::new([Arc::from("*")]);
        p.allow_headers = Box::new([Arc::from("*")]);
        p.expose_headers = Box::new([]);
        p.max_age = None;
        p.allow_credentials = Some(false);
    });
    let rules = vec![
        rule(0, "/forward", to_a(), Some(policy(|_| {}))),
        rule(1, "/ignore", to_a(), Some(policy(|p| p.forward_unmatched_preflights = false))),
        rule(2, "/star", to_a(), Some(star)),
        rule(3, "/plain", to_a(), None),
        rule(4, "/redirect", redirect, Some(policy(|_| {}))),
        rule(5, "/direct", direct, Some(policy(|_| {}))),
        rule(6, "/fraction", to_a(), Some(policy(|p| p.max_age = Some(Duration::from_millis(1500))))),
    ];
    b.add_routes(Binding::Mesh, HOST, "default/vs", rules).expect("one owner");
    b.build()
}

/// The decision in one line: `forward [H: v; ...]` or `local REASON STATUS [H: v; ...]`, the
/// CORS headers in their order (`-` for none).
fn word(d: &Decision<'_>) -> String {
    let headers = |h: Option<&mesh_core::CorsHeaders>| match h {
        None => "-".to_string(),
        Some(h) => h.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect::<Vec<_>>().join("; "),
    };
    match d {
        Decision::Local(l) => format!("local {} {} {}", l.reason.as_str(), l.status, headers(l.cors_headers.as_ref())),
        Decision::Forward(f) => format!("forward {}", headers(f.cors_headers.as_ref())),
    }
}

fn decide(s: &Snapshot, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let view = RequestView {
        method,
        scheme: "http",
        authority: HOST,
        path,
        query: None,
        headers: &headers,
        listener_port: None,
    };
    word(&s.decide(&Binding::Mesh, None, &view, &ClientIdentity::new("default", []), 0))
}

const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const REQUEST_METHOD: &str = "access-control-request-method";
const REQUEST_HEADERS: &str = "access-control-request-headers";

#[test]
fn cors_decisions_table() {
    let s = snapshot();
    let origin = ("Origin", APP);
    let evil = ("origin", "https://evil.example");
    let trusted = ("origin", "https://api.trusted.example");
    let acrm = (REQUEST_METHOD, "POST");
    let all = "access-control-allow-origin: https://app.example; access-control-allow-credentials: true; \
               access-control-allow-methods: GET,POST; access-control-allow-headers: x-token,content-type; \
               access-control-max-age: 86400; access-control-expose-headers: x-trace";
    let all_but_origin = "access-control-allow-credentials: true; access-control-allow-methods: GET,POST; \
                          access-control-allow-headers: x-token,content-type; access-control-max-age: 86400";
    let response = "access-control-allow-origin: https://app.example; access-control-allow-credentials: true; \
                    access-control-expose-headers: x-trace";
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        // No Origin, or an empty one: nothing, preflight or not.
        ("GET", "/forward", vec![], "forward -".into()),
        ("OPTIONS", "/forward", vec![acrm], "forward -".into()),
        ("OPTIONS", "/forward", vec![("origin", ""), acrm], "forward -".into()),
        ("GET", "/forward", vec![("origin", "")], "forward -".into()),
        // A request from an allowed origin: forwarded, CORS headers for its responses.
        ("GET", "/forward", vec![origin], format!("forward {response}")),
        (
            "POST",
            "/forward",
            vec![trusted],
            format!("forward {}", response.replace(APP, "https://api.trusted.example")),
        ),
        // From another origin: forwarded untouched.
        ("GET", "/forward", vec![evil], "forward -".into()),
        // A preflight from an allowed origin: answered 200 (expose-headers from the filter's
        // own encodeHeaders), never forwarded.
        ("OPTIONS", "/forward", vec![origin, acrm], format!("local corsPreflight 200 {all}")),
        ("OPTIONS", "/ignore", vec![origin, acrm], format!("local corsPreflight 200 {all}")),
        // Unmatched preflight: FORWARD (the default) sends it on; IGNORE answers 200 with
        // everything but allow-origin (and expose-headers, which only allowed origins get).
        ("OPTIONS", "/forward", vec![evil, acrm], "forward -".into()),
        ("OPTIONS", "/ignore", vec![evil, acrm], format!("local corsPreflight 200 {all_but_origin}")),
        // Not a preflight: OPTIONS without (or with an empty) Access-Control-Request-Method, or
        // a method that is not exactly OPTIONS.
        ("OPTIONS", "/forward", vec![origin], format!("forward {response}")),
        ("OPTIONS", "/forward", vec![origin, (REQUEST_METHOD, "")], format!("forward {response}")),
        ("options", "/forward", vec![origin, acrm], format!("forward {response}")),
        ("OPTIONS", "/ignore", vec![evil], "forward -".into()),
        // `*` methods and headers echo the request's; a matcher that matches "*" allows any
        // origin; credentials false and no max-age or expose-headers set nothing.
        (
            "OPTIONS",
            "/star",
            vec![evil, (REQUEST_METHOD, "DELETE"), (REQUEST_HEADERS, "x-a, x-b")],
            "local corsPreflight 200 access-control-allow-origin: https://evil.example; \
             access-control-allow-methods: DELETE; access-control-allow-headers: x-a, x-b"
                .into(),
        ),
        (
            "OPTIONS",
            "/star",
            vec![evil, (REQUEST_METHOD, "DELETE")],
            "local corsPreflight 200 access-control-allow-origin: https://evil.example; \
             access-control-allow-methods: DELETE; access-control-allow-headers: "
                .into(),
        ),
        ("GET", "/star", vec![evil], "forward access-control-allow-origin: https://evil.example".into()),
        // maxAge in whole seconds, as Istio translates it.
        ("OPTIONS", "/fraction", vec![origin, acrm], format!("local corsPreflight 200 {}", all.replace("86400", "1"))),
        // No policy; and only routes that forward are processed.
        ("OPTIONS", "/plain", vec![origin, acrm], "forward -".into()),
        ("GET", "/plain", vec![origin], "forward -".into()),
        ("OPTIONS", "/redirect", vec![origin, acrm], "local redirect 301 -".into()),
        ("GET", "/direct", vec![origin], "local directResponse 503 -".into()),
        ("OPTIONS", "/nothing", vec![origin, acrm], "local noRule 404 -".into()),
    ];
    for (method, path, headers, want) in cases {
        assert_eq!(decide(&s, method, path, &headers), want, "{method} {path} {headers:?}");
    }
}

#[test]
fn a_preflight_answer_is_a_direct_answer_without_rule_edits() {
    let s = snapshot();
    let headers = vec![("origin".to_string(), APP.to_string()), (REQUEST_METHOD.to_string(), "GET".to_string())];
    let view = RequestView {
        method: "OPTIONS",
        scheme: "http",
        authority: HOST,
        path: "/forward",
        query: None,
        headers: &headers,
        listener_port: None,
    };
    let Decision::Local(local) = s.decide(&Binding::Mesh, None, &view, &ClientIdentity::new("default", []), 0) else {
        panic!("answered")
    };
    assert_eq!(local.reason, LocalReason::CorsPreflight);
    assert!(local.is_direct() && !local.reason.is_no_route());
    assert_eq!(local.flags(), "-");
    assert!(local.body.is_none());
    assert!(local.response_headers().is_none(), "the filter answers before the router's edits");
    assert_eq!(local.rule.map(|r| r.origin.index), Some(0), "the rule whose policy answered");
    let cors = local.cors_headers.expect("headers");
    assert_eq!(cors.get(ALLOW_ORIGIN).map(|v| v.as_bytes()), Some(APP.as_bytes()));
    // Applied over a header map, CORS's values replace what is there.
    let mut response = http::HeaderMap::new();
    response.insert(ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
    cors.apply(&mut response);
    assert_eq!(response.get_all(ALLOW_ORIGIN).iter().count(), 1);
    assert_eq!(response[ALLOW_ORIGIN], APP);
}
