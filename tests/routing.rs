//! Routing decisions on Istio YAML, table-style: for each config, requests and where they go.

use meshwork::config::{ConfigStore, LoadOptions, load_str};
use meshwork::core::route::RouteAction;
use meshwork::core::router::{redirect_location, rewrite_path};
use meshwork::core::{Binding, ClientIdentity, RequestView, RouteDecision, Snapshot};

fn snapshot(yaml: &str) -> Snapshot {
    let mut store = ConfigStore::default();
    let report = store.apply(load_str(yaml, Some("test.yaml"), &LoadOptions::default()).expect("yaml"));
    let errors: Vec<String> = report.errors().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    store.snapshot().clone()
}

/// A request written as `METHOD scheme://authority/path?query` plus headers.
struct Req {
    method: String,
    scheme: String,
    authority: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
}

fn req(line: &str) -> Req {
    let (method, url) = line.split_once(' ').unwrap_or(("GET", line));
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (path, None),
    };
    Req {
        method: method.into(),
        scheme: scheme.into(),
        authority: authority.into(),
        path: path.into(),
        query,
        headers: Vec::new(),
    }
}

impl Req {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.authority,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            listener_port: None,
        }
    }
}

/// Where a request went, in one word: `subset@host`, `404`, `default:host`, `redirect 301 URL`,
/// `respond 503`.
fn outcome(s: &Snapshot, binding: &Binding, r: &Req, client: &ClientIdentity) -> String {
    match s.route(binding, &r.view(), client) {
        RouteDecision::Default { host } => format!("default:{host}"),
        RouteDecision::NoRoute { .. } => "404".to_string(),
        RouteDecision::Matched { rule, request_match, .. } => match &rule.action {
            RouteAction::Route(w) => w
                .destinations()
                .iter()
                .filter(|d| d.weight > 0)
                .map(|d| format!("{}@{}", d.destination.subset.as_deref().unwrap_or("-"), d.destination.host))
                .collect::<Vec<_>>()
                .join("+"),
            RouteAction::Redirect(rd) => {
                format!("redirect {} {}", rd.code, redirect_location(rd, &r.view(), request_match))
            }
            RouteAction::DirectResponse(d) => format!("respond {}", d.status),
            RouteAction::Delegate { name, .. } => format!("delegate {name}"),
        },
    }
}

fn client(ns: &str) -> ClientIdentity {
    ClientIdentity::new(ns, [])
}

const R: &str = "reviews.default.svc.cluster.local";

#[test]
fn bookinfo_reviews_v3() {
    let s = snapshot(include_str!("../examples/bookinfo/config/virtual-service-reviews-v3.yaml"));
    assert_eq!(
        outcome(&s, &Binding::Mesh, &req("GET http://reviews:9080/reviews/0"), &client("default")),
        format!("v3@{R}")
    );
}

#[test]
fn jason_goes_to_v2_and_header_names_ignore_case() {
    let s = snapshot(include_str!("../examples/bookinfo/config/virtual-service-reviews-jason-v2-v3.yaml"));
    let c = client("default");
    let cases = [
        (req("GET http://reviews:9080/reviews/0").header("end-user", "jason"), "v2"),
        (req("GET http://reviews:9080/reviews/0").header("End-User", "jason"), "v2"),
        (req("GET http://reviews:9080/reviews/0").header("end-user", "Jason"), "v3"),
        (req("GET http://reviews:9080/reviews/0").header("end-user", "jason2"), "v3"),
        (req("GET http://reviews:9080/reviews/0"), "v3"),
    ];
    for (r, want) in cases {
        assert_eq!(outcome(&s, &Binding::Mesh, &r, &c), format!("{want}@{R}"), "{:?}", r.headers);
    }
}

#[test]
fn short_names_resolve_like_kubernetes_dns() {
    let s = snapshot(include_str!("../examples/bookinfo/config/virtual-service-reviews-v3.yaml"));
    let want = format!("v3@{R}");
    for authority in [
        "reviews",
        "reviews:9080",
        "reviews.default",
        "reviews.default.svc",
        "reviews.default.svc.cluster.local",
        "REVIEWS.default.svc.cluster.local.",
    ] {
        let r = req(&format!("GET http://{authority}/"));
        assert_eq!(outcome(&s, &Binding::Mesh, &r, &client("default")), want, "{authority}");
    }
    // From another namespace, `reviews` is that namespace's reviews, which has no VirtualService.
    let r = req("GET http://reviews/");
    assert_eq!(outcome(&s, &Binding::Mesh, &r, &client("shop")), "default:reviews.shop.svc.cluster.local");
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://reviews.default/"), &client("shop")), want);
}

const MATCHING: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  http:
  - match:
    - uri: {exact: /exact}
    route: [{destination: {host: exact}}]
  - match:
    - uri: {prefix: /static}
      method: {exact: GET}
    - uri: {prefix: /assets}
    route: [{destination: {host: static}}]
  - match:
    - uri: {regex: "/items/[0-9]+"}
    route: [{destination: {host: items}}]
  - match:
    - uri: {prefix: /CaSe}
      ignoreUriCase: true
    route: [{destination: {host: case}}]
  - match:
    - headers:
        x-canary: {}
      withoutHeaders:
        x-debug: {exact: "1"}
    route: [{destination: {host: canary}}]
  - match:
    - queryParams:
        version: {exact: "2"}
    route: [{destination: {host: v2}}]
  - match:
    - scheme: {exact: https}
      port: 8443
    route: [{destination: {host: secure}}]
  - match:
    - sourceLabels: {app: productpage}
      sourceNamespace: shop
    route: [{destination: {host: from-productpage}}]
  - match:
    - authority: {prefix: api.example.com:81}
    route: [{destination: {host: port81}}]
"#;

#[test]
fn every_condition_kind() {
    let s = snapshot(MATCHING);
    let c = client("shop");
    let pp = ClientIdentity::new("shop", [("app", "productpage"), ("version", "v1")]);
    let other = ClientIdentity::new("other", [("app", "productpage")]);
    let h = |n: &str| format!("-@{n}.shop.svc.cluster.local");
    let cases: Vec<(Req, &ClientIdentity, String)> = vec![
        (req("GET http://api.example.com/exact"), &c, h("exact")),
        (req("GET http://api.example.com/exact/more"), &c, "404".into()),
        (req("GET http://api.example.com/staticfile"), &c, h("static")),
        (req("POST http://api.example.com/static/x"), &c, "404".into()),
        (req("POST http://api.example.com/assets/x"), &c, h("static")),
        (req("GET http://api.example.com/items/42"), &c, h("items")),
        (req("GET http://api.example.com/items/42/x"), &c, "404".into()),
        (req("GET http://api.example.com/case/1"), &c, h("case")),
        (req("GET http://api.example.com/x").header("x-canary", ""), &c, h("canary")),
        (req("GET http://api.example.com/x").header("x-canary", "y").header("x-debug", "1"), &c, "404".into()),
        (req("GET http://api.example.com/x").header("x-canary", "y").header("x-debug", "2"), &c, h("canary")),
        (req("GET http://api.example.com/x?a=1&version=2"), &c, h("v2")),
        (req("GET http://api.example.com/x?version=22"), &c, "404".into()),
        (req("GET https://api.example.com:8443/x"), &c, h("secure")),
        (req("GET https://api.example.com/x"), &c, "404".into()),
        (req("GET http://api.example.com/x"), &pp, h("from-productpage")),
        (req("GET http://api.example.com/x"), &other, "404".into()),
        (req("GET http://api.example.com:81/x"), &c, h("port81")),
    ];
    for (r, who, want) in cases {
        assert_eq!(
            outcome(&s, &Binding::Mesh, &r, who),
            want,
            "{} {}{}?{:?} {:?}",
            r.method,
            r.authority,
            r.path,
            r.query,
            r.headers
        );
    }
}

#[test]
fn first_match_wins_across_indexed_and_unindexed_rules() {
    let s = snapshot(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: order}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {regex: "/a.*"}}]
    route: [{destination: {host: first}}]
  - match: [{uri: {exact: /abc}}]
    route: [{destination: {host: second}}]
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: third}}]
  - route: [{destination: {host: never}}]
"#,
    );
    let c = client("default");
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://svc/abc"), &c), "-@first.default.svc.cluster.local");
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://svc/b"), &c), "-@third.default.svc.cluster.local");
}

#[test]
fn wildcards_exact_beats_wildcard_longest_wildcard_wins() {
    let s = snapshot(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wide}
spec:
  hosts: ["*.example.com"]
  http: [{route: [{destination: {host: wide}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: narrow}
spec:
  hosts: ["*.api.example.com"]
  http: [{route: [{destination: {host: narrow}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: exact}
spec:
  hosts: [v1.api.example.com]
  http: [{route: [{destination: {host: exact}}]}]
"#,
    );
    let c = client("default");
    let h = |n: &str| format!("-@{n}.default.svc.cluster.local");
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://v1.api.example.com/"), &c), h("exact"));
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://v2.api.example.com/"), &c), h("narrow"));
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://www.example.com/"), &c), h("wide"));
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://example.com/"), &c), "default:example.com");
}

#[test]
fn gateway_routes_apply_only_on_their_gateway() {
    let s = snapshot(include_str!("../testdata/conformance/istio-samples/bookinfo/networking/bookinfo-gateway.yaml"));
    let gw = Binding::gateway("default", "bookinfo-gateway");
    let c = client("istio-system");
    let pp = "-@productpage.default.svc.cluster.local";
    assert_eq!(outcome(&s, &gw, &req("GET http://bookinfo.example.com/productpage"), &c), pp);
    assert_eq!(outcome(&s, &gw, &req("GET http://1.2.3.4:8080/api/v1/products/1"), &c), pp);
    assert_eq!(outcome(&s, &gw, &req("GET http://bookinfo.example.com/admin"), &c), "404");
    assert_eq!(
        outcome(&s, &Binding::Mesh, &req("GET http://bookinfo.example.com/productpage"), &c),
        "default:bookinfo.example.com"
    );
}

#[test]
fn redirects_build_envoy_locations() {
    let s = snapshot(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: redir}
spec:
  hosts: [web.example.com]
  http:
  - match: [{uri: {prefix: /old}}]
    redirect: {prefixRewrite: /new}
  - match: [{uri: {exact: /moved}}]
    redirect: {uri: /here, authority: other.example.com, redirectCode: 308}
  - match: [{uri: {exact: /secure}}]
    redirect: {scheme: https}
  - match: [{uri: {exact: /port}}]
    redirect: {port: 8443, scheme: https}
  - match: [{uri: {exact: /derive}}]
    redirect: {derivePort: FROM_PROTOCOL_DEFAULT, scheme: https}
"#,
    );
    let c = client("default");
    let cases = [
        ("GET http://web.example.com/old/page?x=1", "redirect 301 http://web.example.com/new/page?x=1"),
        ("GET http://web.example.com:8080/moved?q", "redirect 308 http://other.example.com/here?q"),
        ("GET http://web.example.com/secure", "redirect 301 https://web.example.com/secure"),
        ("GET http://web.example.com:80/secure", "redirect 301 https://web.example.com/secure"),
        ("GET http://web.example.com/port", "redirect 301 https://web.example.com:8443/port"),
        ("GET http://web.example.com:8080/derive", "redirect 301 https://web.example.com/derive"),
    ];
    for (line, want) in cases {
        assert_eq!(outcome(&s, &Binding::Mesh, &req(line), &c), want, "{line}");
    }
}

#[test]
fn rewrites_replace_the_matched_prefix_or_the_path() {
    let s = snapshot(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: rw}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {prefix: /api/v1/}}]
    rewrite: {uri: /v1/}
    route: [{destination: {host: svc}}]
  - match: [{uri: {exact: /health}}]
    rewrite: {uri: /healthz}
    route: [{destination: {host: svc}}]
  - match: [{uri: {prefix: /service/}}]
    rewrite:
      uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\2/instance/\\1"}
    route: [{destination: {host: svc}}]
"#,
    );
    let c = client("default");
    for (path, want) in
        [("/api/v1/items", "/v1/items"), ("/health", "/healthz"), ("/service/foo/bar", "/bar/instance/foo")]
    {
        let r = req(&format!("GET http://svc{path}"));
        let RouteDecision::Matched { rule, request_match, .. } = s.route(&Binding::Mesh, &r.view(), &c) else {
            panic!("{path}")
        };
        let rewrite = rule.rewrite.as_ref().expect("rewrite");
        assert_eq!(rewrite_path(rewrite, &r.path, request_match).as_deref(), Some(want));
    }
}

#[test]
fn direct_responses_and_no_route() {
    let s = snapshot(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: dr}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {exact: /maintenance}}]
    directResponse: {status: 503, body: {string: "down for maintenance"}}
"#,
    );
    let c = client("default");
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://svc/maintenance"), &c), "respond 503");
    assert_eq!(outcome(&s, &Binding::Mesh, &req("GET http://svc/other"), &c), "404");
}

#[test]
fn destination_rules_by_namespace_precedence() {
    let s = snapshot(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: root, namespace: istio-system}
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service-ns, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: more-subsets, namespace: bookinfo}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: client-ns, namespace: shop}
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
"#,
    );
    let host = "reviews.bookinfo.svc.cluster.local";
    assert_eq!(s.destination_policy(host, "shop").map(|d| &*d.name), Some("client-ns"));
    let own = s.destination_policy(host, "bookinfo").expect("service namespace");
    assert_eq!(&*own.name, "service-ns");
    let subsets: Vec<(&str, &str)> = own.subsets.iter().map(|s| (&*s.name, &*s.labels.0[0].1)).collect();
    assert_eq!(subsets, [("v1", "v1"), ("v2", "v2")], "same-namespace rules merge; the first subset of a name wins");
    assert_eq!(s.destination_policy(host, "elsewhere").map(|d| &*d.name), Some("service-ns"));
    assert!(s.destination_policy("ratings.bookinfo.svc.cluster.local", "x").is_none());
}
