//! `Snapshot::decide`, table-style: configuration + request → the whole answer as a value
//! (Gateway admission, httpsRedirect, no VirtualService, delegation, redirects, direct responses,
//! rewrites, the weighted pick, the retry policy).

use std::sync::Arc;

use mesh_core::decision::{Listener, accept, listener_port};
use mesh_core::matcher::StringMatcher;
use mesh_core::route::{
    Destination, DirectResponse, HeaderEdits, HeaderOps, HttpRule, Redirect, RedirectPort, RequestMatch, RetryPolicy,
    Rewrite, RouteAction, RouteDestination, RuleOrigin, WeightedDestinations,
};
use mesh_core::service::{GatewayDecl, GatewayServer, ServerTls};
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};
use mesh_core::{ClientIdentity, Decision, RequestView, Snapshot};

fn dest(host: &str, subset: &str, weight: u32) -> RouteDestination {
    RouteDestination {
        destination: Destination { host: Arc::from(host), subset: Some(Arc::from(subset)), port: None },
        weight,
        headers: HeaderEdits::default(),
    }
}

fn rule(index: usize, uri_prefix: Option<&str>, action: RouteAction) -> Arc<HttpRule> {
    let matches: Vec<RequestMatch> = uri_prefix
        .map(|p| RequestMatch { uri: Some(StringMatcher::Prefix(Arc::from(p))), ..RequestMatch::default() })
        .into_iter()
        .collect();
    Arc::new(HttpRule {
        origin: RuleOrigin { kind: Default::default(), namespace: Arc::from("default"), name: Arc::from("vs"), index },
        name: None,
        matches: matches.into_boxed_slice(),
        action,
        rewrite: None,
        timeout: None,
        retries: Arc::new(RetryPolicy::istio_default()),
        fault: None,
        mirrors: Box::new([]),
        cors: None,
        headers: Arc::default(),
    })
}

fn response_set(name: &'static str, value: &'static str) -> HeaderEdits {
    HeaderEdits {
        request: HeaderOps::default(),
        response: HeaderOps {
            set: Box::new([(http::HeaderName::from_static(name), http::HeaderValue::from_static(value))]),
            ..HeaderOps::default()
        },
    }
}

fn server(port: u16, host: &str, tls: Option<ServerTls>, protocol: &str) -> GatewayServer {
    GatewayServer {
        port,
        port_name: Arc::from("p"),
        protocol: Arc::from(protocol),
        hosts: Box::new([(Arc::from("*"), Arc::from(host))]),
        tls,
    }
}

fn https_redirect() -> Option<ServerTls> {
    Some(ServerTls {
        https_redirect: true,
        mode: None,
        server_certificate: None,
        private_key: None,
        ca_certificates: None,
        subject_alt_names: Box::new([]),
        credential: None,
    })
}

const A: &str = "a.example.com";

/// A Gateway `default/gw` (HTTP 8080 for a.example.com and b.example.com, HTTP 8081 with
/// httpsRedirect for a.example.com) and rules for a.example.com under it and under the mesh.
fn snapshot(settings: Settings) -> Snapshot {
    let mut b = SnapshotBuilder::new(settings);
    let mut rewrite = rule(2, Some("/old"), RouteAction::Route(WeightedDestinations::new(vec![dest(A, "v1", 100)])));
    Arc::make_mut(&mut rewrite).rewrite = Some(Box::new(Rewrite {
        uri: Some(Arc::from("/new")),
        uri_regex: None,
        authority: Some(Arc::from("b.internal")),
    }));
    let mut redirect = rule(
        3,
        Some("/moved"),
        RouteAction::Redirect(Redirect {
            uri: Some(Arc::from("/here")),
            prefix_rewrite: None,
            authority: None,
            scheme: None,
            port: RedirectPort::Keep,
            code: 301,
        }),
    );
    Arc::make_mut(&mut redirect).headers = Arc::new(response_set("x-redirected", "yes"));
    let mut direct = rule(
        4,
        Some("/down"),
        RouteAction::DirectResponse(DirectResponse { status: 503, body: Some(Arc::from(&b"down"[..])) }),
    );
    Arc::make_mut(&mut direct).headers = Arc::new(response_set("x-direct", "1"));
    let rules = vec![
        rule(
            0,
            Some("/split"),
            RouteAction::Route(WeightedDestinations::new(vec![dest(A, "v1", 80), dest(A, "v2", 20)])),
        ),
        rule(1, Some("/zero"), RouteAction::Route(WeightedDestinations::new(vec![dest(A, "v1", 0), dest(A, "v2", 0)]))),
        rewrite,
        redirect,
        direct,
        rule(5, Some("/delegated"), RouteAction::Delegate { namespace: Arc::from("default"), name: Arc::from("d") }),
    ];
    for binding in [Binding::Mesh, Binding::gateway("default", "gw")] {
        b.add_routes(binding, A, "default/vs", rules.clone()).expect("one owner");
    }
    b.add_gateway(GatewayDecl {
        namespace: Arc::from("default"),
        name: Arc::from("gw"),
        servers: Box::new([
            server(8080, A, None, "HTTP"),
            server(8080, "b.example.com", None, "HTTP"),
            server(8081, A, https_redirect(), "HTTP"),
        ]),
        selector: Default::default(),
    });
    b.build()
}

fn view<'a>(authority: &'a str, path: &'a str, headers: &'a Vec<(String, String)>) -> RequestView<'a> {
    RequestView { method: "GET", scheme: "http", authority, path, query: Some("q=1"), headers, listener_port: None }
}

/// One word for a decision: `local REASON STATUS [LOCATION]` or `forward HOST/SUBSET #INDEX`.
fn word(d: &Decision<'_>) -> String {
    match d {
        Decision::Local(l) => match &l.location {
            Some(location) => format!("local {} {} {location}", l.reason.as_str(), l.status),
            None => format!("local {} {}", l.reason.as_str(), l.status),
        },
        Decision::Forward(f) => format!(
            "forward {}/{} #{}",
            f.destination.host,
            f.destination.subset.as_deref().unwrap_or("-"),
            f.destination_index
        ),
    }
}

#[test]
fn decisions_table() {
    let s = snapshot(Settings::default());
    let gw = Binding::gateway("default", "gw");
    let gateway = s.gateway("default", "gw").expect("gateway").servers.clone();
    let plain_8080 = accept(&gateway, 8080, None).expect("plain port");
    let redirecting_8081 = accept(&gateway, 8081, None).expect("plain port");
    let client = ClientIdentity::new("default", []);
    let none = Vec::new();
    let cases: Vec<(&Binding, Option<&Listener>, &str, &str, &str)> = vec![
        // Under the mesh a host with no VirtualService goes to itself.
        (&Binding::Mesh, None, "reviews", "/", "forward reviews.default.svc.cluster.local/- #0"),
        (&Binding::Mesh, None, A, "/nothing", "local noRule 404"),
        (&Binding::Mesh, None, A, "/split", "forward a.example.com/v1 #0"),
        (&Binding::Mesh, None, A, "/zero", "local noDestination 404"),
        (&Binding::Mesh, None, A, "/delegated", "local delegate 404"),
        (&Binding::Mesh, None, A, "/moved/x", "local redirect 301 http://a.example.com/here?q=1"),
        (&Binding::Mesh, None, A, "/down", "local directResponse 503"),
        // Under a Gateway: admission by the listener's servers, then no VirtualService is a 404.
        (&gw, Some(&plain_8080), "other.example.com", "/split", "local hostNotExposed 404"),
        (&gw, Some(&plain_8080), "b.example.com", "/split", "local noVirtualHost 404"),
        (&gw, Some(&plain_8080), A, "/split", "forward a.example.com/v1 #0"),
        (&gw, Some(&plain_8080), "A.Example.COM.", "/split", "forward a.example.com/v1 #0"),
        (&gw, Some(&redirecting_8081), A, "/split", "local httpsRedirect 301 https://a.example.com/split?q=1"),
        (&gw, Some(&redirecting_8081), "other.example.com", "/", "local hostNotExposed 404"),
        // Without a listener (no admission), a gateway binding still refuses unknown hosts.
        (&gw, None, "other.example.com", "/split", "local noVirtualHost 404"),
    ];
    for (binding, listener, authority, path, want) in cases {
        let d = s.decide(binding, listener, &view(authority, path, &none), &client, 0);
        assert_eq!(word(&d), want, "{binding} {authority}{path}");
    }
}

#[test]
fn weighted_pick_follows_the_draw() {
    let s = snapshot(Settings::default());
    let client = ClientIdentity::new("default", []);
    let none = Vec::new();
    let pick = |draw| word(&s.decide(&Binding::Mesh, None, &view(A, "/split", &none), &client, draw));
    assert_eq!(pick(0), "forward a.example.com/v1 #0");
    assert_eq!(pick(79), "forward a.example.com/v1 #0");
    assert_eq!(pick(80), "forward a.example.com/v2 #1");
    assert_eq!(pick(99), "forward a.example.com/v2 #1");
    assert_eq!(pick(100), "forward a.example.com/v1 #0", "the draw is taken modulo the total weight");
}

#[test]
fn rewrite_and_local_reply_headers_are_part_of_the_value() {
    let s = snapshot(Settings::default());
    let client = ClientIdentity::new("default", []);
    let none = Vec::new();
    let Decision::Forward(f) = s.decide(&Binding::Mesh, None, &view(A, "/old/page", &none), &client, 0) else {
        panic!("forwarded")
    };
    let rewrite = f.rewrite.expect("rewrite");
    assert_eq!((rewrite.path.as_deref(), rewrite.authority), (Some("/new/page"), Some("b.internal")));
    let Decision::Local(l) = s.decide(&Binding::Mesh, None, &view(A, "/moved", &none), &client, 0) else {
        panic!("local")
    };
    let edits = l.response_headers().expect("a redirect carries its rule's response edits");
    assert_eq!(edits.set[0].0.as_str(), "x-redirected");
    assert_eq!(l.flags(), "-");
    let Decision::Local(l) = s.decide(&Binding::Mesh, None, &view(A, "/down", &none), &client, 0) else {
        panic!("local")
    };
    assert_eq!(l.body.map(|b| &b[..]), Some(&b"down"[..]));
    assert!(l.response_headers().is_some());
    let Decision::Local(l) = s.decide(&Binding::Mesh, None, &view(A, "/nothing", &none), &client, 0) else {
        panic!("local")
    };
    assert_eq!((l.flags(), l.response_headers().is_none()), ("NR", true));
}

#[test]
fn default_retries_leave_503_out_unless_asked() {
    let client = ClientIdentity::new("default", []);
    let none = Vec::new();
    // `reviews` is a service the mesh knows (endpoints registered in code): its default route.
    let known = |h: &str| h == "reviews.default.svc.cluster.local";
    let current = snapshot(Settings::default());
    let req = view("reviews", "/", &none);
    let Decision::Forward(f) = current.decide_with(&Binding::Mesh, None, &req, &client, 0, &known) else {
        panic!("forwarded")
    };
    assert!(!f.passthrough);
    assert_eq!(f.retries.attempts, 2);
    assert!(f.retries.retry_on.status_codes.is_empty(), "Istio's current default retries no status code");
    let legacy = snapshot(Settings { exclude_503_from_default_retries: false, ..Settings::default() });
    let Decision::Forward(f) = legacy.decide_with(&Binding::Mesh, None, &req, &client, 0, &known) else {
        panic!("forwarded")
    };
    assert_eq!(&*f.retries.retry_on.status_codes, &[503]);
}

#[test]
fn hosts_nothing_declares_follow_the_outbound_traffic_policy() {
    use mesh_core::LocalReason;
    use mesh_core::snapshot::OutboundTrafficPolicy;
    let client = ClientIdentity::new("default", []);
    let none = Vec::new();
    let nothing = |_: &str| false;
    // ALLOW_ANY (the default): passed through to the host as named, with no retries (Istio's
    // `allow_any` route sets no retry policy).
    let allow = snapshot(Settings::default());
    for host in ["unknown.example.com", "10.1.2.3:8080", "reviews"] {
        let Decision::Forward(f) =
            allow.decide_with(&Binding::Mesh, None, &view(host, "/", &none), &client, 0, &nothing)
        else {
            panic!("{host}: forwarded")
        };
        assert!(f.passthrough, "{host}");
        assert_eq!((f.retries.attempts, f.timeout()), (0, None), "{host}");
    }
    // REGISTRY_ONLY: 502 without connecting (the `block_all` route), no `NR` flag.
    let only =
        snapshot(Settings { outbound_traffic_policy: OutboundTrafficPolicy::RegistryOnly, ..Settings::default() });
    let Decision::Local(l) = only.decide(&Binding::Mesh, None, &view("unknown.example.com", "/", &none), &client, 0)
    else {
        panic!("local")
    };
    assert_eq!((l.status, l.reason, l.flags()), (502, LocalReason::BlockAll, "-"));
    // A known service is routed under either policy; so is a host a VirtualService routes.
    let known = |h: &str| h == "reviews.default.svc.cluster.local";
    for s in [&allow, &only] {
        let Decision::Forward(f) =
            s.decide_with(&Binding::Mesh, None, &view("reviews:9080", "/", &none), &client, 0, &known)
        else {
            panic!("forwarded")
        };
        assert_eq!((&*f.destination.host, f.passthrough), ("reviews.default.svc.cluster.local", false));
        let Decision::Forward(f) = s.decide(&Binding::Mesh, None, &view(A, "/old/x", &none), &client, 0) else {
            panic!("a VirtualService host is routed")
        };
        assert!(!f.passthrough);
    }
    // `reviews.default` finds the registered `reviews.default.svc.cluster.local`.
    let Decision::Forward(f) =
        only.decide_with(&Binding::Mesh, None, &view("reviews.default", "/", &none), &client, 0, &known)
    else {
        panic!("forwarded")
    };
    assert_eq!(&*f.destination.host, "reviews.default.svc.cluster.local");
    // No host at all: 400 under any binding.
    for s in [&allow, &only] {
        let Decision::Local(l) = s.decide(&Binding::Mesh, None, &view("", "/", &none), &client, 0) else {
            panic!("local")
        };
        assert_eq!((l.status, l.reason), (400, LocalReason::MissingHost));
    }
}

#[test]
fn explain_takes_the_listener_port_as_the_proxy_does() {
    let s = snapshot(Settings::default());
    let servers = &s.gateway("default", "gw").expect("gateway").servers;
    assert_eq!(listener_port(servers, "a.example.com:9999", false), 9999, "an explicit port wins");
    assert_eq!(listener_port(servers, "b.example.com", false), 8080, "the port of the server for the host");
    assert_eq!(listener_port(servers, "a.example.com", false), 8080, "the first server that admits it");
    assert_eq!(listener_port(servers, "nobody.example.com", false), 80, "else the scheme's port");
    assert!(accept(servers, 8080, Some(Some(A))).is_err(), "TLS to a plain port is no HTTP at all");
    assert!(accept(servers, 9, None).is_err(), "no server on the port");
}
