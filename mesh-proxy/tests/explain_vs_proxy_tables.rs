//! Differential over the project's routing tables: every request of `tests/routing.rs` (same
//! YAML, its requests and expected outcomes restated below) and representative requests for
//! the Bookinfo conformance samples (`testdata/conformance/istio-samples/bookinfo/networking/`),
//! each asked of `mesh explain -o json` and sent through a running `mesh proxy` — as the mesh
//! and as the Bookinfo Gateway — whose services are echo backends on loopback (one per subset).
//! They must agree on local answers (status, `Location`, body), on the subset that answered
//! (the shares of weighted splits), on what the backend saw (path, authority, headers) and on
//! the response header edits. See `support/differential.rs` for the machinery.
//! Neither source edits headers: `header_edits_agree`, last, is a small table of its own that does,
//! so that those comparisons are known to run.
//!
//! Differences from `tests/routing.rs`, where the proxy cannot do what the in-process table
//! does:
//! - The Bookinfo VirtualServices route to subsets; `tests/routing.rs` loads them alone (the
//!   decision needs no DestinationRule), but a proxy answers 503 for a subset no
//!   DestinationRule defines (explain warns of it, IST0101), so the tables add Bookinfo's
//!   `destination-rule-all.yaml`.
//! - `every_condition_kind`'s `sourceLabels` row (a client labelled `app: productpage`) is left
//!   out: `mesh proxy` has no flag for the workload's labels. The row for namespace `other`
//!   (whose labels match but namespace does not) is kept, without the labels: 404 either way.
//! - `https://` rows are sent to the plain mesh listener in absolute form (as to a forward
//!   proxy), the only way its requests carry that scheme.
//! - The Bookinfo Gateway test's client namespace is `istio-system` there; here the config is
//!   loaded once for both with namespace `default` (the namespace a file's resources get when
//!   they set none is the client's, for explain and proxy alike), which is what it means.
//! - `destination_rules_by_namespace_precedence` has no requests: its config is exercised with a
//!   request for its host from each of its three client namespaces.
//! - Hosts that the tables route to by default (no VirtualService) are declared by the test's
//!   ServiceEntries (the proxy would otherwise pass them through to the real network).
//! - Of the Bookinfo networking samples, `egress-rule-google-apis.yaml` is left out: it declares
//!   its own DNS ServiceEntry for www.googleapis.com and originates TLS on port 443, which
//!   loopback echo backends cannot stand in for.

#[path = "support/differential.rs"]
mod differential;
mod support;

use differential::{Summary, Table, case, in_namespace};

const R: &str = "reviews.default.svc.cluster.local";

const EX_VS_REVIEWS_V3: &str = include_str!("../../examples/bookinfo/config/virtual-service-reviews-v3.yaml");
const EX_VS_JASON: &str = include_str!("../../examples/bookinfo/config/virtual-service-reviews-jason-v2-v3.yaml");
const EX_DR_ALL: &str = include_str!("../../examples/bookinfo/config/destination-rule-all.yaml");

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../testdata/conformance/istio-samples/bookinfo/networking/", $file))
    };
}

/// Bookinfo's services as the samples' DestinationRules define their subsets.
fn bookinfo(table: Table) -> Table {
    table
        .service("productpage.default.svc.cluster.local", &["v1"])
        .service(R, &["v1", "v2", "v3"])
        .service("ratings.default.svc.cluster.local", &["v1", "v2", "v2-mysql", "v2-mysql-vm"])
        .service("details.default.svc.cluster.local", &["v1", "v2"])
}

fn report(name: &str, s: Summary) {
    eprintln!("{name}: {} rows, {} requests through the proxy", s.cases, s.requests);
}

// ---- tests/routing.rs -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookinfo_reviews_v3() {
    let table = Table::new("reviews-v3")
        .file("vs.yaml", EX_VS_REVIEWS_V3)
        .file("dr.yaml", EX_DR_ALL)
        .service(R, &["v1", "v2", "v3"]);
    report("bookinfo_reviews_v3", table.run(&[case("GET http://reviews:9080/reviews/0", format!("v3@{R}"))]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jason_goes_to_v2_and_header_names_ignore_case() {
    let table =
        Table::new("jason").file("vs.yaml", EX_VS_JASON).file("dr.yaml", EX_DR_ALL).service(R, &["v1", "v2", "v3"]);
    let line = "GET http://reviews:9080/reviews/0";
    let cases = [
        case(line, format!("v2@{R}")).header("end-user", "jason"),
        case(line, format!("v2@{R}")).header("End-User", "jason"),
        case(line, format!("v3@{R}")).header("end-user", "Jason"),
        case(line, format!("v3@{R}")).header("end-user", "jason2"),
        case(line, format!("v3@{R}")),
    ];
    report("jason_goes_to_v2_and_header_names_ignore_case", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_names_resolve_like_kubernetes_dns() {
    let want = format!("v3@{R}");
    let table = Table::new("short-names")
        .file("vs.yaml", EX_VS_REVIEWS_V3)
        .file("dr.yaml", EX_DR_ALL)
        .service(R, &["v1", "v2", "v3"]);
    let cases = [
        case("GET http://reviews/", &want),
        case("GET http://reviews:9080/", &want),
        case("GET http://reviews.default/", &want),
        case("GET http://reviews.default.svc/", &want),
        case("GET http://reviews.default.svc.cluster.local/", &want),
        case("GET http://REVIEWS.default.svc.cluster.local./", &want),
    ];
    let mut s = table.run(&cases).await;
    // From another namespace, `reviews` is that namespace's reviews, which has no
    // VirtualService. The config's resources stay in `default` (they set no namespace: a
    // client in `shop` would load them into `shop`).
    let table = Table::new("short-names-shop")
        .namespace("shop")
        .file("vs.yaml", in_namespace(EX_VS_REVIEWS_V3, "default"))
        .file("dr.yaml", in_namespace(EX_DR_ALL, "default"))
        .service(R, &["v1", "v2", "v3"])
        .service("reviews.shop.svc.cluster.local", &[]);
    let cases = [
        case("GET http://reviews/", "default:reviews.shop.svc.cluster.local"),
        case("GET http://reviews.default/", &want),
    ];
    s += table.run(&cases).await;
    report("short_names_resolve_like_kubernetes_dns", s);
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

fn matching(name: &str, ns: &str) -> Table {
    let mut table = Table::new(name).namespace(ns).file("vs.yaml", MATCHING);
    for host in ["exact", "static", "items", "case", "canary", "v2", "secure", "from-productpage", "port81"] {
        table = table.service(&format!("{host}.shop.svc.cluster.local"), &[]);
    }
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_condition_kind() {
    let h = |n: &str| format!("-@{n}.shop.svc.cluster.local");
    let cases = [
        case("GET http://api.example.com/exact", h("exact")),
        case("GET http://api.example.com/exact/more", "404"),
        case("GET http://api.example.com/staticfile", h("static")),
        case("POST http://api.example.com/static/x", "404"),
        case("POST http://api.example.com/assets/x", h("static")),
        case("GET http://api.example.com/items/42", h("items")),
        case("GET http://api.example.com/items/42/x", "404"),
        case("GET http://api.example.com/case/1", h("case")),
        case("GET http://api.example.com/x", h("canary")).header("x-canary", ""),
        case("GET http://api.example.com/x", "404").header("x-canary", "y").header("x-debug", "1"),
        case("GET http://api.example.com/x", h("canary")).header("x-canary", "y").header("x-debug", "2"),
        case("GET http://api.example.com/x?a=1&version=2", h("v2")),
        case("GET http://api.example.com/x?version=22", "404"),
        case("GET https://api.example.com:8443/x", h("secure")),
        case("GET https://api.example.com/x", "404"),
        // (The `sourceLabels` row needs a labelled client: see the module docs.)
        case("GET http://api.example.com:81/x", h("port81")),
    ];
    let mut s = matching("matching", "shop").run(&cases).await;
    // A client in `other` (routing.rs also labels it app=productpage: sourceNamespace fails).
    s += matching("matching-other", "other").run(&[case("GET http://api.example.com/x", "404")]).await;
    report("every_condition_kind", s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_match_wins_across_indexed_and_unindexed_rules() {
    let mut table = Table::new("first-match").file(
        "vs.yaml",
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
    for host in ["first", "second", "third", "never"] {
        table = table.service(&format!("{host}.default.svc.cluster.local"), &[]);
    }
    let cases = [
        case("GET http://svc/abc", "-@first.default.svc.cluster.local"),
        case("GET http://svc/b", "-@third.default.svc.cluster.local"),
    ];
    report("first_match_wins_across_indexed_and_unindexed_rules", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_exact_beats_wildcard_longest_wildcard_wins() {
    let mut table = Table::new("wildcards")
        .file(
            "vs.yaml",
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
        )
        .service("example.com", &[]);
    for host in ["wide", "narrow", "exact"] {
        table = table.service(&format!("{host}.default.svc.cluster.local"), &[]);
    }
    let h = |n: &str| format!("-@{n}.default.svc.cluster.local");
    let cases = [
        case("GET http://v1.api.example.com/", h("exact")),
        case("GET http://v2.api.example.com/", h("narrow")),
        case("GET http://www.example.com/", h("wide")),
        case("GET http://example.com/", "default:example.com"),
    ];
    report("wildcards_exact_beats_wildcard_longest_wildcard_wins", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_routes_apply_only_on_their_gateway() {
    let config = |name: &str| {
        Table::new(name)
            .file("gateway.yaml", sample!("bookinfo-gateway.yaml"))
            .service("productpage.default.svc.cluster.local", &[])
            .service("bookinfo.example.com", &[])
    };
    let pp = "-@productpage.default.svc.cluster.local";
    let cases = [
        case("GET http://bookinfo.example.com/productpage", pp),
        case("GET http://1.2.3.4:8080/api/v1/products/1", pp),
        case("GET http://bookinfo.example.com/admin", "404"),
    ];
    let mut s = config("gateway").gateway("default/bookinfo-gateway", &[8080]).run(&cases).await;
    let cases = [case("GET http://bookinfo.example.com/productpage", "default:bookinfo.example.com")];
    s += config("gateway-mesh").run(&cases).await;
    report("gateway_routes_apply_only_on_their_gateway", s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_build_envoy_locations() {
    let table = Table::new("redirects").file(
        "vs.yaml",
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
    let cases = [
        case("GET http://web.example.com/old/page?x=1", "redirect 301 http://web.example.com/new/page?x=1"),
        case("GET http://web.example.com:8080/moved?q", "redirect 308 http://other.example.com/here?q"),
        case("GET http://web.example.com/secure", "redirect 301 https://web.example.com/secure"),
        case("GET http://web.example.com:80/secure", "redirect 301 https://web.example.com/secure"),
        case("GET http://web.example.com/port", "redirect 301 https://web.example.com:8443/port"),
        case("GET http://web.example.com:8080/derive", "redirect 301 https://web.example.com/derive"),
    ];
    report("redirects_build_envoy_locations", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_replace_the_matched_prefix_or_the_path() {
    let table = Table::new("rewrites")
        .file(
            "vs.yaml",
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
        )
        .service("svc.default.svc.cluster.local", &[]);
    let svc = "-@svc.default.svc.cluster.local";
    let cases = [
        case("GET http://svc/api/v1/items", svc).path("/v1/items"),
        case("GET http://svc/health", svc).path("/healthz"),
        case("GET http://svc/service/foo/bar", svc).path("/bar/instance/foo"),
    ];
    report("rewrites_replace_the_matched_prefix_or_the_path", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_responses_and_no_route() {
    let table = Table::new("direct").file(
        "vs.yaml",
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
    let cases = [case("GET http://svc/maintenance", "respond 503"), case("GET http://svc/other", "404")];
    report("direct_responses_and_no_route", table.run(&cases).await);
}

const DR_PRECEDENCE: &str = r#"
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
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_rules_by_namespace_precedence() {
    let host = "reviews.bookinfo.svc.cluster.local";
    let mut s = Summary::default();
    for ns in ["shop", "bookinfo", "elsewhere"] {
        let table = Table::new(&format!("dr-precedence-{ns}"))
            .namespace(ns)
            .file("dr.yaml", DR_PRECEDENCE)
            .service(host, &["v1", "v2", "other"]);
        s += table.run(&[case("GET http://reviews.bookinfo.svc.cluster.local/", format!("default:{host}"))]).await;
    }
    report("destination_rules_by_namespace_precedence", s);
}

// ---- Bookinfo conformance samples (mesh) ------------------------------------------------------

/// A Bookinfo table: `files` (sample names) with the subsets of `destination-rule-all.yaml`
/// unless a file brings its own.
fn sample_table(name: &str, files: &[(&str, &str)]) -> Table {
    let mut table = bookinfo(Table::new(name));
    for (file, yaml) in files {
        table = table.file(file, *yaml);
    }
    table
}

/// Rows for `line` without and with `end-user: jason`.
fn both(line: &'static str, anon: &str, jason: &str) -> [differential::Case; 2] {
    [case(line, anon), case(line, jason).header("end-user", "jason")]
}

const PP: &str = "productpage.default.svc.cluster.local";
const RATINGS: &str = "ratings.default.svc.cluster.local";
const DETAILS: &str = "details.default.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_all_v1() {
    let table = sample_table(
        "all-v1",
        &[("dr.yaml", sample!("destination-rule-all.yaml")), ("vs.yaml", sample!("virtual-service-all-v1.yaml"))],
    );
    let mut cases = Vec::new();
    cases.extend(both("GET http://productpage:9080/productpage", &format!("v1@{PP}"), &format!("v1@{PP}")));
    cases.extend(both("GET http://reviews:9080/reviews/0", &format!("v1@{R}"), &format!("v1@{R}")));
    cases.extend(both("GET http://ratings:9080/ratings/0", &format!("v1@{RATINGS}"), &format!("v1@{RATINGS}")));
    cases.extend(both("GET http://details:9080/details/0", &format!("v1@{DETAILS}"), &format!("v1@{DETAILS}")));
    report("sample_virtual_service_all_v1", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_reviews_v3() {
    let table = sample_table(
        "sample-reviews-v3",
        &[("dr.yaml", sample!("destination-rule-all.yaml")), ("vs.yaml", sample!("virtual-service-reviews-v3.yaml"))],
    );
    let cases = both("GET http://reviews:9080/reviews/0", &format!("v3@{R}"), &format!("v3@{R}"));
    report("sample_virtual_service_reviews_v3", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_reviews_jason_v2_v3_with_destination_rule_reviews() {
    // Bookinfo's reviews-only DestinationRule (RANDOM load balancing) this time.
    let table = sample_table(
        "sample-jason-v2-v3",
        &[
            ("dr.yaml", sample!("destination-rule-reviews.yaml")),
            ("vs.yaml", sample!("virtual-service-reviews-jason-v2-v3.yaml")),
        ],
    );
    let mut cases = Vec::from(both("GET http://reviews:9080/reviews/0", &format!("v3@{R}"), &format!("v2@{R}")));
    cases.push(case("GET http://reviews:9080/reviews/0", format!("v3@{R}")).header("end-user", "mallory"));
    report("sample_virtual_service_reviews_jason_v2_v3_with_destination_rule_reviews", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_reviews_test_v2() {
    let table = sample_table(
        "sample-test-v2",
        &[
            ("dr.yaml", sample!("destination-rule-all.yaml")),
            ("vs.yaml", sample!("virtual-service-reviews-test-v2.yaml")),
        ],
    );
    let cases = both("GET http://reviews:9080/reviews/0", &format!("v1@{R}"), &format!("v2@{R}"));
    report("sample_virtual_service_reviews_test_v2", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_reviews_80_20() {
    let table = sample_table(
        "sample-80-20",
        &[
            ("dr.yaml", sample!("destination-rule-all.yaml")),
            ("vs.yaml", sample!("virtual-service-reviews-80-20.yaml")),
        ],
    );
    let split = format!("v1@{R}+v2@{R}");
    let cases = both("GET http://reviews:9080/reviews/0", &split, &split);
    report("sample_virtual_service_reviews_80_20", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_reviews_90_10() {
    let table = sample_table(
        "sample-90-10",
        &[
            ("dr.yaml", sample!("destination-rule-all.yaml")),
            ("vs.yaml", sample!("virtual-service-reviews-90-10.yaml")),
        ],
    );
    let split = format!("v1@{R}+v2@{R}");
    let cases = both("GET http://reviews:9080/reviews/0", &split, &split);
    report("sample_virtual_service_reviews_90_10", table.run(&cases).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_ratings_db_and_mysql() {
    let mut s = Summary::default();
    for (name, file, subset) in [
        ("sample-ratings-db", sample!("virtual-service-ratings-db.yaml"), "v2"),
        ("sample-ratings-mysql", sample!("virtual-service-ratings-mysql.yaml"), "v2-mysql"),
    ] {
        let table = sample_table(name, &[("dr.yaml", sample!("destination-rule-all.yaml")), ("vs.yaml", file)]);
        let mut cases = Vec::from(both("GET http://reviews:9080/reviews/0", &format!("v3@{R}"), &format!("v3@{R}")));
        let ratings = format!("{subset}@{RATINGS}");
        cases.extend(both("GET http://ratings:9080/ratings/0", &ratings, &ratings));
        s += table.run(&cases).await;
    }
    report("sample_virtual_service_ratings_db_and_mysql", s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_ratings_test_abort() {
    // jason: the rule's fault aborts all of his requests with 500 before any backend.
    let table = sample_table(
        "sample-ratings-abort",
        &[
            ("dr.yaml", sample!("destination-rule-all.yaml")),
            ("vs.yaml", sample!("virtual-service-ratings-test-abort.yaml")),
        ],
    );
    let v1 = format!("v1@{RATINGS}");
    report(
        "sample_virtual_service_ratings_test_abort",
        table.run(&both("GET http://ratings:9080/ratings/0", &v1, &v1)).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_virtual_service_ratings_test_delay() {
    // jason: delayed 7 s (the sample's fixedDelay), then answered by v1. The slowest row here.
    let table = sample_table(
        "sample-ratings-delay",
        &[
            ("dr.yaml", sample!("destination-rule-all.yaml")),
            ("vs.yaml", sample!("virtual-service-ratings-test-delay.yaml")),
        ],
    );
    let v1 = format!("v1@{RATINGS}");
    report(
        "sample_virtual_service_ratings_test_delay",
        table.run(&both("GET http://ratings:9080/ratings/0", &v1, &v1)).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_fault_injection_details_v1() {
    // The file brings its own DestinationRule for details (subset v1): no destination-rule-all.
    let table = sample_table("sample-details-fault", &[("fault.yaml", sample!("fault-injection-details-v1.yaml"))]);
    let v1 = format!("v1@{DETAILS}");
    report("sample_fault_injection_details_v1", table.run(&both("GET http://details:9080/details/0", &v1, &v1)).await);
}

// ---- Bookinfo conformance samples (Gateway) ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_bookinfo_gateway() {
    let files = [
        ("gateway.yaml", sample!("bookinfo-gateway.yaml")),
        ("dr.yaml", sample!("destination-rule-all.yaml")),
        ("vs.yaml", sample!("virtual-service-all-v1.yaml")),
    ];
    // As the gateway: its VirtualService routes to productpage (port 9080, no subset: any
    // productpage endpoint); the mesh's VirtualServices do not apply.
    let pp = format!("-@{PP}");
    let mut cases = Vec::new();
    for line in [
        "GET http://bookinfo.example.com/productpage",
        "GET http://bookinfo.example.com/static/css/app.css",
        "GET http://bookinfo.example.com/login",
        "POST http://bookinfo.example.com/login",
        "GET http://bookinfo.example.com/logout",
        "GET http://bookinfo.example.com/api/v1/products/0/reviews",
        "GET http://bookinfo.example.com:8080/productpage?u=normal",
    ] {
        cases.extend(both(line, &pp, &pp));
    }
    for line in [
        "GET http://bookinfo.example.com/productpage/x",
        "GET http://bookinfo.example.com/reviews/0",
        // The mesh's reviews VirtualService is not bound to the gateway.
        "GET http://reviews.default.svc.cluster.local/reviews/0",
    ] {
        cases.push(case(line, "404"));
    }
    let gateway = sample_table("sample-gateway", &files)
        .service("bookinfo.example.com", &[])
        .gateway("default/bookinfo-gateway", &[8080]);
    let mut s = gateway.run(&cases).await;
    // As the mesh, on the same configuration: the Gateway's VirtualService does not apply.
    let mesh = sample_table("sample-gateway-mesh", &files).service("bookinfo.example.com", &[]);
    let mut cases = Vec::from(both("GET http://reviews:9080/reviews/0", &format!("v1@{R}"), &format!("v1@{R}")));
    cases.push(case("GET http://productpage:9080/productpage", format!("v1@{PP}")));
    cases.push(case("GET http://bookinfo.example.com/productpage", "default:bookinfo.example.com"));
    s += mesh.run(&cases).await;
    report("sample_bookinfo_gateway", s);
}

// ---- The machinery's own check -----------------------------------------------------------------

/// Neither source table edits headers; this one does (rule and destination level, request and
/// response, set/add/remove, on a split and on local answers), so that the comparisons of
/// header edits above are known to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_edits_agree() {
    let table = Table::new("header-edits")
        .file(
            "vs.yaml",
            r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc}
spec:
  host: svc
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edits}
spec:
  hosts: [svc]
  http:
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new}
    headers: {response: {set: {x-redirected: "yes"}}}
  - match: [{uri: {prefix: /down}}]
    directResponse: {status: 503, body: {string: down}}
    headers: {response: {add: {x-down: "true"}}}
  - headers:
      request: {set: {x-set: one}, add: {x-add: two}, remove: [x-drop]}
      response: {set: {x-resp: three}, remove: [content-type]}
    rewrite: {authority: rewritten.example.com}
    route:
    - destination: {host: svc, subset: v1}
      weight: 50
      headers: {request: {set: {x-dest: v1}}, response: {add: {x-dest-resp: v1}}}
    - destination: {host: svc, subset: v2}
      weight: 50
"#,
        )
        .service("svc.default.svc.cluster.local", &["v1", "v2"]);
    let split = "v1@svc.default.svc.cluster.local+v2@svc.default.svc.cluster.local";
    let cases = [
        case("GET http://svc/x", split).header("x-drop", "gone").header("x-add", "one").header("x-keep", "kept"),
        case("GET http://svc/old/a?q=1", "redirect 301 http://svc/new?q=1"),
        case("GET http://svc/down", "respond 503"),
    ];
    report("header_edits_agree", table.run(&cases).await);
}
