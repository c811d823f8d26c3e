//! What compiled snapshots mean, on Istio's own Bookinfo files, and the store's admission rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mesh_config::{
    CompileOptions, Compiled, ConfigStore, LoadOptions, Severity, compile, load_path, load_paths, load_str,
};
use mesh_core::Binding;
use mesh_core::matcher::StringMatcher;
use mesh_core::route::{HeaderCondition, RouteAction};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/istio-samples")
}

fn snapshot_of(files: &[&str]) -> mesh_core::Snapshot {
    let paths: Vec<PathBuf> = files.iter().map(|f| samples().join(f)).collect();
    let loaded = load_paths(&paths, &LoadOptions::default());
    assert!(loaded.diagnostics.is_empty() && loaded.failed.is_empty());
    let mut store = ConfigStore::default();
    let report = store.apply(loaded);
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    store.snapshot().clone()
}

const REVIEWS: &str = "reviews.default.svc.cluster.local";

fn subsets(snapshot: &mesh_core::Snapshot, rule: usize) -> Vec<(String, u32)> {
    let vh = snapshot.virtual_host(&Binding::Mesh, REVIEWS).expect("reviews is routed");
    let RouteAction::Route(w) = &vh.rules[rule].action else { panic!("not a route") };
    w.destinations().iter().map(|d| (d.destination.subset.as_deref().unwrap_or("").to_string(), d.weight)).collect()
}

#[test]
fn bookinfo_all_v1() {
    let s = snapshot_of(&[
        "bookinfo/networking/destination-rule-all.yaml",
        "bookinfo/networking/virtual-service-all-v1.yaml",
    ]);
    for host in ["productpage", "reviews", "ratings", "details"] {
        let fqdn = format!("{host}.default.svc.cluster.local");
        let vh = s.virtual_host(&Binding::Mesh, &fqdn).expect("routed");
        let RouteAction::Route(w) = &vh.rules[0].action else { panic!("route") };
        assert_eq!(w.destinations()[0].destination.subset.as_deref(), Some("v1"), "{host}");
        assert_eq!(&*w.destinations()[0].destination.host, fqdn.as_str());
    }
    let dr = &s.destination_rules(REVIEWS)[0];
    let names: Vec<&str> = dr.subsets.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["v1", "v2", "v3"]);
    let v2 = dr.subset("v2").expect("v2");
    let labels =
        [(Arc::from("app"), Arc::from("reviews")), (Arc::from("version"), Arc::from("v2"))].into_iter().collect();
    assert!(v2.labels.matches(&labels));
    assert!(!dr.subset("v3").expect("v3").labels.matches(&labels));
}

#[test]
fn bookinfo_jason_and_weights() {
    let s = snapshot_of(&["bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml"]);
    let vh = s.virtual_host(&Binding::Mesh, REVIEWS).expect("routed");
    assert_eq!(vh.rules.len(), 2);
    let m = &vh.rules[0].matches[0];
    assert_eq!(&*m.headers[0].0, "end-user");
    assert_eq!(m.headers[0].1, HeaderCondition::Match(StringMatcher::Exact(Arc::from("jason"))));
    assert_eq!(subsets(&s, 0), [("v2".to_string(), 100)]);
    assert_eq!(subsets(&s, 1), [("v3".to_string(), 100)]);
    assert!(vh.rules[1].matches.is_empty(), "the last rule takes everything else");

    let s = snapshot_of(&["bookinfo/networking/virtual-service-reviews-90-10.yaml"]);
    assert_eq!(subsets(&s, 0), [("v1".to_string(), 90), ("v2".to_string(), 10)]);
    let vh = s.virtual_host(&Binding::Mesh, REVIEWS).expect("routed");
    let RouteAction::Route(w) = &vh.rules[0].action else { panic!("route") };
    let v2 = (0..w.total()).filter(|r| w.pick(*r).and_then(|d| d.destination.subset.as_deref()) == Some("v2")).count();
    assert_eq!(v2, 10);
}

#[test]
fn timeouts_faults_mirrors_and_retries() {
    let s = snapshot_of(&["istio-io-tasks/request-timeouts/request-timeouts-3.yaml"]);
    let rule = &s.virtual_host(&Binding::Mesh, REVIEWS).expect("routed").rules[0];
    assert_eq!(rule.timeout, Some(Duration::from_millis(500)));
    assert!(!rule.retries.configured, "no retries block: Istio's default policy");
    assert_eq!(rule.retries.attempts, 2);

    let s = snapshot_of(&["bookinfo/networking/virtual-service-ratings-test-delay.yaml"]);
    let vh = s.virtual_host(&Binding::Mesh, "ratings.default.svc.cluster.local").expect("routed");
    let (delay, pct) = vh.rules[0].fault.as_ref().and_then(|f| f.delay).expect("delay");
    assert_eq!((delay, pct.0), (Duration::from_secs(7), 100.0));

    let s = snapshot_of(&["istio-io-tasks/mirroring/mirroring-traffic-to-v2-1.yaml"]);
    let vh = s.virtual_host(&Binding::Mesh, "httpbin.default.svc.cluster.local").expect("routed");
    let mirror = &vh.rules[0].mirrors[0];
    assert_eq!((mirror.destination.subset.as_deref(), mirror.percentage.0), (Some("v2"), 100.0));
}

#[test]
fn gateway_bound_routes_stay_on_their_gateway() {
    let s = snapshot_of(&["bookinfo/networking/bookinfo-gateway.yaml"]);
    let gw = Binding::gateway("default", "bookinfo-gateway");
    let vh = s.virtual_host(&gw, "bookinfo.example.com").expect("* matches any host");
    assert_eq!(vh.rules[0].matches.len(), 5);
    assert!(s.virtual_host(&Binding::Mesh, "bookinfo.example.com").is_none());
    assert_eq!(s.gateway("default", "bookinfo-gateway").expect("gateway").servers[0].port, 8080);
}

#[test]
fn match_level_gateways_override_the_virtual_service() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split, namespace: shop}
spec:
  hosts: [api.example.com]
  gateways: [mesh, edge]
  http:
  - match:
    - uri: {prefix: /admin}
      gateways: [edge]
    route:
    - destination: {host: admin}
  - match:
    - uri: {regex: "/v[0-9]+/.*"}
    route:
    - destination: {host: api}
"#;
    let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
    let s = compile(&loaded.resources, &CompileOptions::default()).snapshot;
    let mesh = s.virtual_host(&Binding::Mesh, "api.example.com").expect("mesh");
    assert_eq!(mesh.rules.len(), 1, "the /admin rule is for the edge gateway only");
    let edge = s.virtual_host(&Binding::gateway("shop", "edge"), "api.example.com").expect("edge");
    assert_eq!(edge.rules.len(), 2);
    let StringMatcher::Regex(re) = edge.rules[1].matches[0].uri.as_ref().expect("uri") else { panic!("regex") };
    assert!(re.is_match("/v2/items") && !re.is_match("/x/v2/items"), "regexes match the whole path");
    let RouteAction::Route(w) = &edge.rules[0].action else { panic!("route") };
    assert_eq!(&*w.destinations()[0].destination.host, "admin.shop.svc.cluster.local");
}

#[test]
fn first_virtual_service_wins_a_mesh_host() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: first}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: second}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
"#;
    let loaded = load_str(text, Some("two.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    assert_eq!(subsets(&compiled.snapshot, 0), [("v1".to_string(), 100)]);
    assert_eq!(compiled.diagnostics.len(), 1);
    assert_eq!(compiled.diagnostics[0].severity, Severity::Warning);
    assert!(
        compiled.diagnostics[0].to_string().contains("VirtualService default/second"),
        "{}",
        compiled.diagnostics[0]
    );
}

#[test]
fn service_entry_hosts_stay_as_written() {
    // Istio takes a ServiceEntry's hosts as written: `legacy` is the service `legacy`, reached as
    // `Host: legacy` from any namespace; it is not `legacy.apps.svc.cluster.local`.
    let text = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: apps}
spec:
  hosts: [Legacy]
  location: MESH_INTERNAL
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.7}]
"#;
    let loaded = load_str(text, Some("legacy.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    assert!(compiled.diagnostics.iter().all(|d| d.severity != Severity::Error), "{:?}", compiled.diagnostics);
    let s = compiled.snapshot;
    assert_eq!(s.services("legacy").len(), 1);
    assert!(s.services("legacy.apps.svc.cluster.local").is_empty());
    match decide(&s, &Binding::Mesh, "http://legacy:8080/", &[], None) {
        mesh_core::RouteDecision::Default { host } => assert_eq!(host, "legacy"),
        other => panic!("expected the default route to `legacy`, got {other:?}"),
    }
}

/// A GET of `url` with `headers` (arriving on listener `port`, if given), from a client in
/// `default`, as `binding` routes it.
fn decide<'s>(
    s: &'s mesh_core::Snapshot,
    binding: &Binding,
    url: &str,
    headers: &[(&str, &str)],
    port: Option<u16>,
) -> mesh_core::RouteDecision<'s> {
    let method = http::Method::GET;
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.insert(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
    }
    let uri: http::Uri = url.parse().expect("uri");
    let mut view = mesh_core::RequestView::from_http(&method, &uri, &map);
    view.listener_port = port;
    s.route(binding, &view, &mesh_core::ClientIdentity::new("default", []))
}

/// The first destination of the matched rule (host, subset) and the rule's timeout; `None` when
/// no rule matched or the rule does not route.
fn destination(decision: &mesh_core::RouteDecision<'_>) -> Option<(String, String, Option<Duration>)> {
    let mesh_core::RouteDecision::Matched { rule, .. } = decision else { return None };
    let RouteAction::Route(w) = &rule.action else { return None };
    let d = &w.destinations()[0].destination;
    Some((d.host.to_string(), d.subset.as_deref().unwrap_or("").to_string(), rule.timeout))
}

/// The destination host a request for `authority` is routed to under `binding`.
fn routed_host(s: &mesh_core::Snapshot, binding: &Binding, authority: &str) -> Option<String> {
    destination(&decide(s, binding, &format!("http://{authority}/"), &[], None)).map(|d| d.0)
}

#[test]
fn gateway_hosts_limit_which_namespaces_bind() {
    // `prod/*.example.com` exposes that name to VirtualServices of `prod` only; `shop.example.org`
    // (no namespace) to all. The Gateway comes last: binding does not depend on file order.
    let text = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: prod}
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  http: [{route: [{destination: {host: web}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: dev}
spec:
  hosts: [api.example.com]
  gateways: [istio-system/edge]
  http: [{route: [{destination: {host: api}}]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["prod/*.example.com", "shop.example.org"]
"#;
    let loaded = load_str(text, Some("edge.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    let edge = Binding::gateway("istio-system", "edge");
    let s = &compiled.snapshot;
    // dev's api.example.com is not exposed to dev: prod's `*` (served as `*.example.com`) answers.
    assert_eq!(routed_host(s, &edge, "api.example.com").as_deref(), Some("web.prod.svc.cluster.local"));
    assert_eq!(routed_host(s, &edge, "shop.example.org").as_deref(), Some("web.prod.svc.cluster.local"));
    // prod's `*` is narrowed to the server hosts: other names are not routed on this gateway.
    assert_eq!(routed_host(s, &edge, "other.test"), None);
    assert!(s.virtual_host(&edge, "*").is_none());
    let warnings: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("VirtualService dev/api") && warnings[0].contains("hosts[0]"), "{}", warnings[0]);
}

const EXPORTED: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: team-a}
spec:
  hosts: [reviews.shared.svc.cluster.local]
  exportTo: ["."]
  http: [{route: [{destination: {host: reviews.shared.svc.cluster.local, subset: v1}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: team-b}
spec:
  hosts: [reviews.shared.svc.cluster.local]
  exportTo: [team-b]
  http: [{route: [{destination: {host: reviews.shared.svc.cluster.local, subset: v2}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: team-a}
spec:
  host: reviews.shared.svc.cluster.local
  exportTo: ["."]
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: team-a}
spec:
  hosts: [legacy.internal]
  exportTo: ["."]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.9}]
"#;

/// The subset the first rule for the shared reviews host routes to, in `options`' view.
fn exported_view(options: &CompileOptions) -> (Option<String>, Compiled) {
    let loaded = load_str(EXPORTED, Some("exported.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, options);
    let subset = compiled.snapshot.virtual_host(&Binding::Mesh, "reviews.shared.svc.cluster.local").map(|vh| {
        let RouteAction::Route(w) = &vh.rules[0].action else { panic!("not a route") };
        w.destinations()[0].destination.subset.as_deref().unwrap_or("").to_string()
    });
    (subset, compiled)
}

#[test]
fn export_to_decides_who_sees_a_resource() {
    let host = "reviews.shared.svc.cluster.local";
    // team-a sees its own VirtualService, DestinationRule and ServiceEntry (exported to ".").
    let (subset, a) = exported_view(&CompileOptions::for_namespace("team-a"));
    assert_eq!(subset.as_deref(), Some("v1"));
    assert_eq!(a.snapshot.destination_rules(host).len(), 1);
    assert_eq!(a.snapshot.services("legacy.internal").len(), 1);
    assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
    // team-b sees only its own VirtualService: no conflict, none of team-a's resources.
    let (subset, b) = exported_view(&CompileOptions::for_namespace("team-b"));
    assert_eq!(subset.as_deref(), Some("v2"));
    assert!(b.snapshot.destination_rules(host).is_empty());
    assert!(b.snapshot.services("legacy.internal").is_empty());
    assert!(b.diagnostics.is_empty(), "{:?}", b.diagnostics);
    // Another namespace sees neither VirtualService.
    let (subset, _) = exported_view(&CompileOptions::for_namespace("team-c"));
    assert_eq!(subset, None);
    // The shared view (no client namespace) does not apply exportTo: the first one wins.
    let (subset, all) = exported_view(&CompileOptions::default());
    assert_eq!(subset.as_deref(), Some("v1"));
    assert_eq!(all.diagnostics.len(), 1, "{:?}", all.diagnostics);
}

#[test]
fn a_service_entrys_namespace_is_the_services_namespace_for_destination_rules() {
    // An egress ServiceEntry and its DestinationRule live in `egress`; a client in `default`
    // gets that rule, as Istio looks in the service's namespace after the client's own.
    let text = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: egress}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: egress}
spec:
  host: api.example.com
  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 7}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: elsewhere}
spec:
  host: api.example.com
"#;
    let loaded = load_str(text, Some("egress.yaml"), &LoadOptions::default()).expect("yaml");
    let s = compile(&loaded.resources, &CompileOptions::default()).snapshot;
    let picked = s.destination_policy("api.example.com", "default").expect("the egress rule applies");
    assert_eq!(&*picked.namespace, "egress");
    // A rule in the client's own namespace still comes first.
    assert_eq!(s.destination_policy("api.example.com", "elsewhere").map(|p| &*p.namespace), Some("elsewhere"));
}

#[test]
fn delegation_merges_the_delegates_rules_into_the_root() {
    // The root hands `/productpage` to a team's delegate (in its own namespace) and keeps a
    // catch-all. The delegate's rules are narrowed by the root's match and inherit its timeout;
    // its rule outside `/productpage` (`/admin`) conflicts with the root match and is dropped.
    let text = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: istio-system}
spec:
  hosts: [bookinfo.example.com]
  http:
  - name: pages
    match: [{uri: {prefix: /productpage}}]
    timeout: 3s
    delegate: {name: productpage, namespace: bookinfo}
  - name: missing
    delegate: {name: nowhere}
  - route: [{destination: {host: fallback.istio-system.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: bookinfo}
spec:
  http:
  - name: v2
    match: [{uri: {prefix: /productpage/v2}, headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: productpage, subset: v2}}]
  - name: admin
    match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: admin}}]
  - route: [{destination: {host: productpage, subset: v1}}]
"#;
    let loaded = load_str(text, Some("delegation.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    let s = &compiled.snapshot;
    let decide = |path: &str, user: Option<&str>| {
        let headers: Vec<(&str, &str)> = user.map(|u| ("end-user", u)).into_iter().collect();
        let url = format!("http://bookinfo.example.com{path}");
        destination(&decide(s, &Binding::Mesh, &url, &headers, None)).expect("routed")
    };
    let three = Some(std::time::Duration::from_secs(3));
    // Short hosts in the delegate are its own namespace's.
    let pp = "productpage.bookinfo.svc.cluster.local".to_string();
    assert_eq!(decide("/productpage/v2/x", Some("jason")), (pp.clone(), "v2".to_string(), three));
    assert_eq!(decide("/productpage/v2/x", None), (pp.clone(), "v1".to_string(), three));
    assert_eq!(decide("/productpage", None), (pp, "v1".to_string(), three));
    // Outside the root's match the delegate does not apply, `/admin` included.
    let fallback = ("fallback.istio-system.svc.cluster.local".to_string(), String::new(), None);
    assert_eq!(decide("/admin", None), fallback);
    assert_eq!(decide("/", None), fallback);
    // The rule naming a delegate that does not exist is left out, with a warning.
    let warnings: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("http[1].delegate") && warnings[0].contains("istio-system/nowhere"),
        "{}",
        warnings[0]
    );
}

#[test]
fn workload_selectors_pick_a_destination_rule_for_their_own_workloads() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-canary-clients}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: productpage, version: v2}}
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
"#;
    let loaded = load_str(text, Some("selectors.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    let s = &compiled.snapshot;
    // Kept apart, not merged into one rule.
    assert_eq!(s.destination_rules(REVIEWS).len(), 2);
    let labels = |version: &str| {
        [(Arc::from("app"), Arc::from("productpage")), (Arc::from("version"), Arc::from(version))].into_iter().collect()
    };
    let pick =
        |ns: &str, version: &str| s.destination_policy_for(REVIEWS, ns, &labels(version)).map(|p| p.name.to_string());
    assert_eq!(pick("default", "v2").as_deref(), Some("reviews-canary-clients"));
    assert_eq!(pick("default", "v1").as_deref(), Some("reviews"));
    // Selectors select workloads of the rule's own namespace only.
    assert_eq!(pick("shop", "v2").as_deref(), Some("reviews"));
    assert_eq!(s.destination_policy(REVIEWS, "default").map(|p| p.name.to_string()).as_deref(), Some("reviews"));
}

#[test]
fn gateway_hosts_bind_per_port() {
    // Port 80 exposes *.example.com to `web` only, port 8080 to every namespace: `dev`'s
    // api.example.com is served on 8080 and not on 80; `web`'s site on both.
    let text = r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["web/*.example.com"]
  - port: {number: 8080, name: http-alt, protocol: HTTP}
    hosts: ["*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: dev}
spec:
  hosts: [api.example.com]
  gateways: [istio-system/edge]
  http:
  - match: [{uri: {prefix: /v1}}, {uri: {prefix: /v2}}]
    route: [{destination: {host: api}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: site, namespace: web}
spec:
  hosts: [site.example.com]
  gateways: [istio-system/edge]
  http: [{route: [{destination: {host: site}}]}]
"#;
    let loaded = load_str(text, Some("ports.yaml"), &LoadOptions::default()).expect("yaml");
    let compiled = compile(&loaded.resources, &CompileOptions::default());
    assert!(compiled.diagnostics.is_empty(), "{:?}", compiled.diagnostics);
    let s = &compiled.snapshot;
    let edge = Binding::gateway("istio-system", "edge");
    let routed = |authority: &str, path: &str, port: u16| {
        destination(&decide(s, &edge, &format!("http://{authority}{path}"), &[], Some(port))).map(|d| d.0)
    };
    let api = Some("api.dev.svc.cluster.local".to_string());
    assert_eq!(routed("api.example.com", "/v1/x", 8080), api);
    assert_eq!(routed("api.example.com", "/v2/x", 8080), api);
    assert_eq!(routed("api.example.com", "/v1/x", 80), None);
    assert_eq!(routed("api.example.com", "/v3/x", 8080), None);
    let site = Some("site.web.svc.cluster.local".to_string());
    assert_eq!(routed("site.example.com", "/", 80), site);
    assert_eq!(routed("site.example.com", "/", 8080), site);
}

const GOOD: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn invalid_new_version_keeps_last_good() {
    let dir = temp_dir("last-good");
    let file = dir.join("reviews.yaml");
    std::fs::write(&file, GOOD).expect("write");
    let mut store = ConfigStore::default();
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!(report.added, 1);

    // A bad weight: rejected, the v1 route stays in force.
    std::fs::write(&file, GOOD.replace("subset: v1}", "subset: v3}, weight: -1")).expect("write");
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!(report.kept_last_good.len(), 1, "{:?}", report.diagnostics);
    assert_eq!(subsets(store.snapshot(), 0), [("v1".to_string(), 100)]);
    assert!(
        report
            .errors()
            .next()
            .expect("reported")
            .to_string()
            .contains("reviews.yaml:6: VirtualService default/reviews: http[0].route[0].weight")
    );

    // A typo'd field is rejected the same way.
    std::fs::write(&file, GOOD.replace("subset: v1", "subst: v3")).expect("write");
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!(report.kept_last_good.len(), 1);
    assert_eq!(subsets(store.snapshot(), 0), [("v1".to_string(), 100)]);

    // Not YAML at all: nothing changes, the file is reported.
    std::fs::write(&file, "http: [unclosed").expect("write");
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!(report.failed_files.len(), 1);
    assert_eq!(store.resources().len(), 1);

    // A valid change is taken.
    std::fs::write(&file, GOOD.replace("subset: v1", "subset: v2")).expect("write");
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!((report.updated, report.has_rejections()), (1, false));
    assert_eq!(subsets(store.snapshot(), 0), [("v2".to_string(), 100)]);

    // A new invalid resource is left out; removing the file removes its resources.
    std::fs::write(
        dir.join("extra.yaml"),
        GOOD.replace("name: reviews", "name: other")
            .replace("hosts: [reviews]", "hosts: []")
            .replace("http: [", "gateways: [gw]\n  http: ["),
    )
    .expect("write");
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!(report.rejected.len(), 1, "{:?}", report.diagnostics);
    assert_eq!(store.resources().len(), 1);
    std::fs::remove_file(&file).expect("rm");
    let report = store.apply(load_path(&dir, &LoadOptions::default()));
    assert_eq!(report.removed, 1);
    assert!(store.snapshot().virtual_host(&Binding::Mesh, REVIEWS).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tcp_echo_sample_routes_its_gateway_port_to_v1() {
    // The sample also holds a Kubernetes Service and Deployments (other kinds): loaded alone.
    let loaded = load_path(&samples().join("tcp-echo/tcp-echo-all-v1.yaml"), &LoadOptions::default());
    let mut store = ConfigStore::default();
    let report = store.apply(loaded);
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    let s = store.snapshot();
    let gateway = Binding::gateway("default", "tcp-echo-gateway");
    let server = s.l4_server(&gateway, 31400).expect("a TCP server on 31400");
    let route = server.route(None).expect("routed by the tcp rule");
    assert_eq!((&*route.virtual_service, route.rule), ("default/tcp-echo", 0));
    let d = &route.destinations.destinations()[0].destination;
    assert_eq!((&*d.host, d.subset.as_deref(), d.port), ("tcp-echo.default.svc.cluster.local", Some("v1"), Some(9000)));
    // The mesh binding has no TCP servers; the Gateway has no other port.
    assert!(s.l4_server(&gateway, 31401).is_none());
}

/// The identities a client's secure naming expects (Istio's `Service.ServiceAccounts`): a
/// ServiceEntry's `subjectAltNames` and its endpoints' `serviceAccount`s in its namespace, and a
/// Kubernetes Service's Pods' service accounts, in meshConfig's trust domain.
#[test]
fn service_accounts_of_declarations() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: data}
spec:
  hosts: [db.example.internal]
  location: MESH_INTERNAL
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  subjectAltNames: ["spiffe://cluster.local/ns/data/sa/db-admin"]
  endpoints:
  - {address: 10.0.0.1, serviceAccount: db}
  - {address: 10.0.0.2, serviceAccount: db}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-abc, namespace: default, labels: {app: reviews}}
spec: {serviceAccountName: bookinfo-reviews, containers: [{name: r, image: r}]}
status: {podIP: 10.1.0.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-x, namespace: default, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
- addresses: [10.1.0.1]
  targetRef: {kind: Pod, name: reviews-v1-abc, namespace: default}
"#;
    let mut options = CompileOptions::default();
    options.mesh.trust_domain = Some("example.org".into());
    let mut store = ConfigStore::new(options);
    let report = store.apply(load_str(yaml, None, &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    let accounts = |host: &str| -> Vec<String> {
        store.snapshot().services(host).iter().flat_map(|d| d.service_accounts.iter().map(|a| a.to_string())).collect()
    };
    assert_eq!(
        accounts("db.example.internal"),
        ["spiffe://cluster.local/ns/data/sa/db-admin", "spiffe://example.org/ns/data/sa/db"]
    );
    assert_eq!(accounts("reviews.default.svc.cluster.local"), ["spiffe://example.org/ns/default/sa/bookinfo-reviews"]);
}
