//! The explain-vs-proxy differential (see `support/differential.rs`) over Gateway API routes:
//! one configuration of a Gateway API Gateway with HTTPRoutes (precedence across routes,
//! segment prefixes, header and query matches, filters, a weighted split, an unresolved
//! backend), and HTTPRoutes on the mesh (GAMMA), each request asked of `mesh explain -o json`
//! and sent through a running `mesh proxy`; they must agree on the local answers, the backend
//! that answered (shares for the split), what it saw and the response headers.
//!
//! The backends are the Services the routes name (Kubernetes Service objects, which the Gateway
//! API needs to resolve a `backendRef`), with endpoints from the tables' generated
//! ServiceEntries for the same hosts.

#[path = "support/differential.rs"]
mod differential;
mod support;

use differential::{Table, case};

/// Kubernetes Services for the backends (the Gateway API resolves `backendRefs` to them).
fn services(ns: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {n}, namespace: {ns}}}\nspec:\n  ports: [{{name: http, port: 8080}}]\n---\n"))
        .collect()
}

const GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 8080, protocol: HTTP, hostname: "*.example.com"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs: [{name: web, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-api, value: "1"}], remove: [x-drop]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-served-by, value: api}]}
    backendRefs: [{name: api, port: 8080}]
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /new}}
    backendRefs: [{name: web, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /legacy}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
    backendRefs: [{name: web, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /moved}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {hostname: www.example.com, statusCode: 301}
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs: [{name: web, port: 8080, weight: 3}, {name: api, port: 8080, weight: 1}]
  - matches: [{path: {type: PathPrefix, value: /broken}}]
    backendRefs: [{name: missing, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: canary, namespace: default, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{name: x-canary, value: "yes"}]
    - path: {type: PathPrefix, value: /api}
      queryParams: [{name: canary, value: "1"}]
    backendRefs: [{name: canary, port: 8080}]
"#;

const WEB: &str = "web.default.svc.cluster.local";
const API: &str = "api.default.svc.cluster.local";
const CANARY: &str = "canary.default.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_gateway_explain_and_proxy_agree() {
    let table = Table::new("gateway-api")
        .file("services.yaml", services("default", &["web", "api", "canary"]))
        .file("gateway.yaml", GATEWAY)
        .service(WEB, &[])
        .service(API, &[])
        .service(CANARY, &[])
        .gateway("default/gw", &[8080]);
    let cases = [
        case("GET http://shop.example.com:8080/", format!("-@{WEB}")),
        // The later route's /api match has a header (more matches), so it wins over the
        // earlier route's plain /api prefix; without the header the earlier route answers.
        case("GET http://shop.example.com:8080/api/items", format!("-@{API}")).header("x-drop", "gone"),
        case("GET http://shop.example.com:8080/api/items", format!("-@{CANARY}")).header("x-canary", "yes"),
        case("GET http://shop.example.com:8080/api/items?canary=1", format!("-@{CANARY}")),
        // A segment prefix: /apix is not under /api.
        case("GET http://shop.example.com:8080/apix", format!("-@{WEB}")),
        case("GET http://shop.example.com:8080/old", format!("-@{WEB}")).path("/new"),
        case("GET http://shop.example.com:8080/legacy/page?x=1", format!("-@{WEB}")).path("/page?x=1"),
        case("GET http://shop.example.com:8080/moved/here", "redirect 301 http://www.example.com:8080/moved/here"),
        case("GET http://shop.example.com:8080/split", format!("-@{WEB}+-@{API}")),
        case("GET http://shop.example.com:8080/broken", "respond 500"),
        // Hosts the route does not claim, and one the listener does not take.
        case("GET http://other.example.com:8080/", "404"),
        case("GET http://shop.example.org:8080/", "404"),
    ];
    let summary = table.run(&cases).await;
    assert_eq!(summary.cases, cases.len());
}

const MESH: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules:
  - matches: [{headers: [{name: end-user, value: jason}]}]
    backendRefs: [{name: reviews-v2, port: 8080}]
  - backendRefs: [{name: reviews-v1, port: 8080, weight: 1}, {name: reviews-v3, port: 8080, weight: 1}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_mesh_routes_explain_and_proxy_agree() {
    let v = |n: &str| format!("{n}.default.svc.cluster.local");
    let table = Table::new("gateway-api-mesh")
        .file("services.yaml", services("default", &["reviews", "reviews-v1", "reviews-v2", "reviews-v3"]))
        .file("route.yaml", MESH)
        .service(&v("reviews"), &[])
        .service(&v("reviews-v1"), &[])
        .service(&v("reviews-v2"), &[])
        .service(&v("reviews-v3"), &[]);
    let cases = [
        case("GET http://reviews:8080/reviews/0", format!("-@{}", v("reviews-v2"))).header("end-user", "jason"),
        case("GET http://reviews:8080/reviews/0", format!("-@{}+-@{}", v("reviews-v1"), v("reviews-v3"))),
        // Another Service: no route, its own endpoints.
        case("GET http://reviews-v1:8080/x", format!("default:{}", v("reviews-v1"))),
    ];
    let summary = table.run(&cases).await;
    assert_eq!(summary.cases, cases.len());
}
