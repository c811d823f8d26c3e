//! Cross-resource analysis: what `istioctl analyze` tells an operator about a configuration as a
//! whole, where validation looks at one resource at a time.
//!
//! Validation ([`crate::validate()`]) mirrors Istio's admission: each resource alone. The checks
//! here look across resources, as Istio's analyzers do (istio/istio
//! `pkg/config/analysis/analyzers/`), and report each finding with a stable [`Code`]:
//!
//! | code | check | Istio |
//! |---|---|---|
//! | `IST0101` | a route or mirror destination `subset` that no DestinationRule for the destination's host defines | `virtualservice/destinationrules.go` |
//! | `IST0101` | a `gateways` entry (top level or in a `match`) naming a Gateway the configuration does not hold (`mesh` is always there) | `virtualservice/gateways.go` |
//! | `IST0101` | a route or mirror destination host that no ServiceEntry visible to the VirtualService's namespace declares and that is no Kubernetes Service of the configuration | `virtualservice/destinationhosts.go` |
//! | `MW0003` | DestinationRules for one host in one namespace, without workload selectors and visible to a common namespace, that set the same subset or both a top-level `trafficPolicy` | none: pilot merges them (`model/destination_rule.go`, `mergeDestinationRule`) and only counts duplicate subsets in the `pilot_destrule_subsets` metric |
//! | `MW0002` | the same resource (kind, namespace, name) defined more than once ([`duplicates`]) | none |
//!
//! (`MW0001`, a misspelt `kind`, is found by the loader: [`crate::load`].)
//!
//! Istio rates `IST0101` an error. Here every finding of this module is a
//! [`Severity::Warning`]: meshwork's errors mean *the resource is rejected*, and a reference to
//! something absent is admitted by Kubernetes and by Istio alike (and in process, endpoints and
//! subsets may come from code: a subset no endpoint has answers 503 `UH`). `mesh validate
//! --strict` fails on them.
//!
//! How the references resolve follows Istio's analyzers and pilot:
//!
//! - hosts are qualified as Istio qualifies them (`reviews` in namespace `bookinfo` is
//!   `reviews.bookinfo.svc.cluster.local`); ServiceEntry hosts are qualified the same way for the
//!   comparison, as the analyzer's `ScopedFqdn` does, and a wildcard ServiceEntry host covers the
//!   names below it;
//! - the DestinationRules that answer for a host are those whose host is the same name, else those
//!   with the most specific wildcard covering it (pilot's lookup); any of them, with or without a
//!   workload selector, may define the subset;
//! - gateway names resolve as in routing ([`crate::compile::resolve_gateway`]): `ns/name`,
//!   `./name`, `name` (the VirtualService's namespace), legacy `name.ns`; a Kubernetes Gateway
//!   (`gateway.networking.k8s.io`) of that namespace and name counts too, as in Istio. Istio's
//!   analyzer reads only the top-level `gateways`; meshwork binds rules by `match[].gateways`
//!   too, so those are checked as well;
//! - an undeclared host is reported once per VirtualService (at its first destination), where
//!   Istio reports every destination: a config with no ServiceEntries would otherwise repeat it
//!   for every route.
//!
//! The analysis is a pure function of the resources (and of the documents the loader skipped,
//! for Kubernetes Services and Gateways): [`crate::ConfigStore::apply`] runs it on the resources
//! in force, so the same findings appear on load and in `mesh validate`.

use std::collections::{BTreeSet, HashMap, HashSet};

use mesh_core::host::{is_subset_of, is_wildcard, qualify};
use mesh_core::snapshot::Binding;

use crate::compile::resolve_gateway;
use crate::diag::{Code, Diagnostic, ResourceRef, Severity};
use crate::load::Skipped;
use crate::types::destination_rule as dr;
use crate::types::virtual_service as vs;
use crate::types::{Resource, Spec};
use crate::yaml::{Node, Value};

/// Cross-resource findings over `resources` (the resources in force: one of each id).
///
/// `skipped` are the documents the loader passed over: its Kubernetes `Service`s declare hosts,
/// its Kubernetes `Gateway`s can be named by `gateways`. `domain` is the cluster domain short
/// names are qualified with (`cluster.local`).
pub fn analyze(resources: &[Resource], skipped: &[Skipped], domain: &str) -> Vec<Diagnostic> {
    let index = Index::new(resources, skipped, domain);
    let mut out = Vec::new();
    for r in resources {
        if let Spec::VirtualService(v) = &r.spec {
            index.virtual_service(r, v, &mut out);
        }
    }
    destination_rule_conflicts(resources, domain, &mut out);
    out
}

/// Resources defined more than once in one load (same kind, namespace and name), each later
/// definition reported where it is, naming the first ([`Code::DuplicateResource`]).
pub fn duplicates(resources: &[Resource]) -> Vec<Diagnostic> {
    let mut first: HashMap<ResourceRef, &Resource> = HashMap::new();
    let mut out = Vec::new();
    for r in resources {
        let id = r.id();
        match first.get(&id) {
            Some(earlier) => out.push(Diagnostic {
                severity: Severity::Warning,
                code: Some(Code::DuplicateResource),
                file: r.file.clone(),
                line: r.line,
                resource: Some(id),
                path: String::new(),
                message: format!(
                    "defined again (first at {}:{}); the last valid definition is the one in force, as `kubectl apply` of both would leave it",
                    earlier.file.as_deref().unwrap_or("<string>"),
                    earlier.line
                ),
            }),
            None => {
                first.insert(id, r);
            }
        }
    }
    out
}

/// One step of a field path inside a spec (YAML names).
#[derive(Debug, Clone, Copy)]
enum Seg {
    Field(&'static str),
    Index(usize),
}

use Seg::{Field as F, Index as I};

/// The printed path (`http[0].route[1].destination.subset`) and the line of the deepest node of
/// it present in the YAML (a field's key line), or the resource's line.
fn locate(r: &Resource, path: &[Seg]) -> (String, u32) {
    let mut text = String::new();
    for seg in path {
        match seg {
            Seg::Field(name) if text.is_empty() => text.push_str(name),
            Seg::Field(name) => {
                text.push('.');
                text.push_str(name);
            }
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    let Some(mut node) = r.spec_node.as_deref() else {
        return (text, r.line);
    };
    let mut line = node.line;
    for seg in path {
        let next: Option<(&Node, u32)> = match (seg, &node.value) {
            (Seg::Field(name), Value::Map(entries)) => {
                entries.iter().find(|(k, _)| k.name == *name).map(|(k, v)| (v, k.line))
            }
            (Seg::Index(i), Value::Seq(items)) => items.get(*i).map(|n| (n, n.line)),
            _ => None,
        };
        match next {
            Some((n, l)) => {
                node = n;
                line = l;
            }
            None => break,
        }
    }
    (text, line)
}

fn warning(r: &Resource, code: Code, path: &[Seg], message: String) -> Diagnostic {
    let (path, line) = locate(r, path);
    Diagnostic {
        severity: Severity::Warning,
        code: Some(code),
        file: r.file.clone(),
        line,
        resource: Some(r.id()),
        path,
        message,
    }
}

/// Where a resource is, for messages about another one.
fn place(r: &Resource) -> String {
    format!("{}:{}", r.file.as_deref().unwrap_or("<string>"), r.line)
}

/// The namespaces a resource with `export_to` is visible to (`None`: every namespace).
fn visibility(namespace: &str, export_to: &[String]) -> Option<BTreeSet<String>> {
    if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
        return None;
    }
    Some(
        export_to
            .iter()
            .filter(|e| *e != "~")
            .map(|e| if e == "." { namespace.to_string() } else { e.clone() })
            .collect(),
    )
}

fn visible_to(namespace: &str, export_to: &[String], to: &str) -> bool {
    visibility(namespace, export_to).is_none_or(|set| set.contains(to))
}

/// Is some namespace able to see both?
fn share_a_namespace(a: &Option<BTreeSet<String>>, b: &Option<BTreeSet<String>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (None, Some(s)) | (Some(s), None) => !s.is_empty(),
        (Some(a), Some(b)) => !a.is_disjoint(b),
    }
}

/// A ServiceEntry host, qualified, with the namespaces that see it.
struct ServiceHost<'a> {
    host: String,
    namespace: &'a str,
    export_to: &'a [String],
}

/// A DestinationRule by qualified host.
struct Rule<'a> {
    host: String,
    r: &'a Resource,
    rule: &'a dr::DestinationRule,
}

/// What the references can point at, indexed by host (exact names hashed; wildcards, usually
/// few, listed), so that a reload with many resources stays linear.
struct Index<'a> {
    domain: &'a str,
    gateways: HashSet<(String, String)>,
    services: HashMap<String, Vec<ServiceHost<'a>>>,
    wildcard_services: Vec<ServiceHost<'a>>,
    kubernetes_services: HashSet<String>,
    rules: HashMap<String, Vec<Rule<'a>>>,
    wildcard_rules: Vec<Rule<'a>>,
}

/// A destination inside a VirtualService, with its path and what it is.
struct Dest<'v> {
    path: Vec<Seg>,
    destination: &'v vs::Destination,
    mirror: bool,
}

impl<'a> Index<'a> {
    fn new(resources: &'a [Resource], skipped: &'a [Skipped], domain: &'a str) -> Self {
        let mut index = Index {
            domain,
            gateways: HashSet::new(),
            services: HashMap::new(),
            wildcard_services: Vec::new(),
            kubernetes_services: HashSet::new(),
            rules: HashMap::new(),
            wildcard_rules: Vec::new(),
        };
        for r in resources {
            match &r.spec {
                Spec::Gateway(_) => {
                    index.gateways.insert((r.namespace.to_string(), r.name.to_string()));
                }
                Spec::ServiceEntry(s) => {
                    for h in &s.hosts {
                        let host = qualify(h, &r.namespace, domain);
                        let entry =
                            ServiceHost { host: host.clone(), namespace: &r.namespace, export_to: &s.export_to };
                        if is_wildcard(&host) {
                            index.wildcard_services.push(entry);
                        } else {
                            index.services.entry(host).or_default().push(entry);
                        }
                    }
                }
                Spec::DestinationRule(d) => {
                    let host = qualify(&d.host, &r.namespace, domain);
                    let rule = Rule { host: host.clone(), r, rule: d };
                    if is_wildcard(&host) {
                        index.wildcard_rules.push(rule);
                    } else {
                        index.rules.entry(host).or_default().push(rule);
                    }
                }
                Spec::VirtualService(_) | Spec::WorkloadEntry(_) => {}
            }
        }
        for s in skipped {
            let Some(name) = s.name.as_deref() else { continue };
            let group = s.api_version.split_once('/').map_or("", |(g, _)| g);
            match (group, s.kind.as_str()) {
                ("", "Service") => {
                    index.kubernetes_services.insert(qualify(name, &s.namespace, domain));
                }
                ("gateway.networking.k8s.io", "Gateway") => {
                    index.gateways.insert((s.namespace.clone(), name.to_string()));
                }
                _ => {}
            }
        }
        index
    }

    /// The DestinationRules that answer for `host`: the same name, else the most specific
    /// wildcard covering it.
    fn rules_for(&self, host: &str) -> Vec<&Rule<'a>> {
        if let Some(exact) = self.rules.get(host) {
            return exact.iter().collect();
        }
        let covering = || self.wildcard_rules.iter().filter(|r| is_subset_of(host, &r.host));
        let longest = covering().map(|r| r.host.len()).max().unwrap_or(0);
        covering().filter(|r| r.host.len() == longest).collect()
    }

    /// Is `host` (qualified) declared for clients in `namespace`?
    fn declared(&self, host: &str, namespace: &str) -> bool {
        let visible = |s: &&ServiceHost<'_>| visible_to(s.namespace, s.export_to, namespace);
        self.kubernetes_services.contains(host)
            || self.services.get(host).is_some_and(|list| list.iter().any(|s| visible(&s)))
            || self.wildcard_services.iter().filter(visible).any(|s| is_subset_of(host, &s.host))
    }

    fn virtual_service(&self, r: &Resource, v: &vs::VirtualService, out: &mut Vec<Diagnostic>) {
        let ns = &*r.namespace;
        self.gateway_references(r, v, out);
        let mut reported_hosts: HashSet<String> = HashSet::new();
        for d in destinations(v) {
            let host = qualify(&d.destination.host, ns, self.domain);
            let what = if d.mirror { "mirror " } else { "" };
            if let Some(subset) = d.destination.subset.as_deref().filter(|s| !s.is_empty()) {
                let rules = self.rules_for(&host);
                if !rules.iter().any(|rule| rule.rule.subsets.iter().any(|s| s.name == subset)) {
                    let why = if rules.is_empty() {
                        format!("no DestinationRule has host {host}")
                    } else {
                        let names: Vec<String> =
                            rules.iter().map(|rule| format!("{}/{}", rule.r.namespace, rule.r.name)).collect();
                        let mut defined: Vec<&str> = Vec::new();
                        for s in rules.iter().flat_map(|rule| rule.rule.subsets.iter()) {
                            if !defined.contains(&s.name.as_str()) {
                                defined.push(&s.name);
                            }
                        }
                        let defined = if defined.is_empty() { "no subsets".to_string() } else { defined.join(", ") };
                        let (noun, verb) = if names.len() == 1 {
                            ("DestinationRule", "defines")
                        } else {
                            ("DestinationRules", "define")
                        };
                        format!("{noun} {} for {host} {verb} {defined}", names.join(", "))
                    };
                    let effect = if d.mirror { "" } else { "; requests routed to it get 503 no healthy upstream (UH)" };
                    let mut path = d.path.clone();
                    path.push(F("subset"));
                    out.push(warning(
                        r,
                        Code::ReferencedResourceNotFound,
                        &path,
                        format!("referenced {what}subset not found: {subset:?} of host {host} ({why}){effect}"),
                    ));
                }
            }
            if !d.destination.host.is_empty() && !self.declared(&host, ns) && reported_hosts.insert(host.clone()) {
                let written = &d.destination.host;
                let named = if *written == host { format!("{host:?}") } else { format!("{written:?} ({host})") };
                let mut path = d.path.clone();
                path.push(F("host"));
                out.push(warning(
                    r,
                    Code::ReferencedResourceNotFound,
                    &path,
                    format!(
                        "referenced {what}host not found: {named}: no ServiceEntry visible to namespace {ns} and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
                    ),
                ));
            }
        }
    }

    fn gateway_references(&self, r: &Resource, v: &vs::VirtualService, out: &mut Vec<Diagnostic>) {
        let mut refs: Vec<(Vec<Seg>, &str)> = Vec::new();
        for (i, g) in v.gateways.iter().enumerate() {
            refs.push((vec![F("gateways"), I(i)], g));
        }
        for (i, h) in v.http.iter().enumerate() {
            for (j, m) in h.matches.iter().enumerate() {
                for (k, g) in m.gateways.iter().enumerate() {
                    refs.push((vec![F("http"), I(i), F("match"), I(j), F("gateways"), I(k)], g));
                }
            }
        }
        for (i, t) in v.tls.iter().enumerate() {
            for (j, m) in t.matches.iter().enumerate() {
                for (k, g) in m.gateways.iter().enumerate() {
                    refs.push((vec![F("tls"), I(i), F("match"), I(j), F("gateways"), I(k)], g));
                }
            }
        }
        for (i, t) in v.tcp.iter().enumerate() {
            for (j, m) in t.matches.iter().enumerate() {
                for (k, g) in m.gateways.iter().enumerate() {
                    refs.push((vec![F("tcp"), I(i), F("match"), I(j), F("gateways"), I(k)], g));
                }
            }
        }
        for (path, reference) in refs {
            let Binding::Gateway { namespace, name } = resolve_gateway(reference, &r.namespace) else { continue };
            if self.gateways.contains(&(namespace.to_string(), name.to_string())) {
                continue;
            }
            out.push(warning(
                r,
                Code::ReferencedResourceNotFound,
                &path,
                format!(
                    "referenced gateway not found: {reference:?} (no Gateway {namespace}/{name} in the configuration); the rules bound to it serve no one"
                ),
            ));
        }
    }
}

/// Every route and mirror destination of a VirtualService, with its path.
fn destinations(v: &vs::VirtualService) -> Vec<Dest<'_>> {
    let mut out = Vec::new();
    for (i, h) in v.http.iter().enumerate() {
        for (j, rd) in h.route.iter().enumerate() {
            if let Some(d) = &rd.destination {
                out.push(Dest {
                    path: vec![F("http"), I(i), F("route"), I(j), F("destination")],
                    destination: d,
                    mirror: false,
                });
            }
        }
        if let Some(d) = &h.mirror {
            out.push(Dest { path: vec![F("http"), I(i), F("mirror")], destination: d, mirror: true });
        }
        for (j, m) in h.mirrors.iter().enumerate() {
            if let Some(d) = &m.destination {
                out.push(Dest {
                    path: vec![F("http"), I(i), F("mirrors"), I(j), F("destination")],
                    destination: d,
                    mirror: true,
                });
            }
        }
    }
    for (i, t) in v.tls.iter().enumerate() {
        for (j, rd) in t.route.iter().enumerate() {
            if let Some(d) = &rd.destination {
                out.push(Dest {
                    path: vec![F("tls"), I(i), F("route"), I(j), F("destination")],
                    destination: d,
                    mirror: false,
                });
            }
        }
    }
    for (i, t) in v.tcp.iter().enumerate() {
        for (j, rd) in t.route.iter().enumerate() {
            if let Some(d) = &rd.destination {
                out.push(Dest {
                    path: vec![F("tcp"), I(i), F("route"), I(j), F("destination")],
                    destination: d,
                    mirror: false,
                });
            }
        }
    }
    out
}

/// DestinationRules that merge (one host, one namespace, no workload selector, a namespace that
/// sees both) and set what an earlier one set: the later setting is ignored, as pilot ignores it.
fn destination_rule_conflicts(resources: &[Resource], domain: &str, out: &mut Vec<Diagnostic>) {
    // Per (namespace, host), the rules in order, with their visibility.
    type Group<'r> = Vec<(&'r Resource, &'r dr::DestinationRule, Option<BTreeSet<String>>)>;
    let mut groups: Vec<((&str, String), Group<'_>)> = Vec::new();
    let mut position: HashMap<(&str, String), usize> = HashMap::new();
    for r in resources {
        let Spec::DestinationRule(d) = &r.spec else { continue };
        if d.workload_selector.is_some() {
            continue;
        }
        let key = (&*r.namespace, qualify(&d.host, &r.namespace, domain));
        let entry = (r, d, visibility(&r.namespace, &d.export_to));
        match position.get(&key) {
            Some(&at) => groups[at].1.push(entry),
            None => {
                position.insert(key.clone(), groups.len());
                groups.push((key, vec![entry]));
            }
        }
    }
    for ((_, host), group) in &groups {
        for (k, (r, d, seen_by)) in group.iter().enumerate() {
            let earlier: Vec<_> = group[..k].iter().filter(|(_, _, v)| share_a_namespace(v, seen_by)).collect();
            if earlier.is_empty() {
                continue;
            }
            for (i, s) in d.subsets.iter().enumerate() {
                if let Some((first, _, _)) =
                    earlier.iter().find(|(_, e, _)| e.subsets.iter().any(|es| es.name == s.name))
                {
                    out.push(warning(
                        r,
                        Code::ConflictingDestinationRules,
                        &[F("subsets"), I(i)],
                        format!(
                            "subset {:?} of host {host} is already defined by DestinationRule {}/{} ({}); rules for one host in one namespace merge and the first definition of a subset wins, so this one is ignored",
                            s.name,
                            first.namespace,
                            first.name,
                            place(first)
                        ),
                    ));
                }
            }
            if d.traffic_policy.is_some()
                && let Some((first, _, _)) = earlier.iter().find(|(_, e, _)| e.traffic_policy.is_some())
            {
                out.push(warning(
                    r,
                    Code::ConflictingDestinationRules,
                    &[F("trafficPolicy")],
                    format!(
                        "trafficPolicy is ignored: DestinationRule {}/{} ({}) for host {host} sets one first; rules for one host in one namespace merge and only the first top-level trafficPolicy applies",
                        first.namespace,
                        first.name,
                        place(first)
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_str};

    fn run(yaml: &str) -> Vec<Diagnostic> {
        let loaded = load_str(yaml, Some("test.yaml"), &LoadOptions::default()).expect("yaml");
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        analyze(&loaded.resources, &loaded.skipped, mesh_core::host::DEFAULT_DOMAIN)
    }

    fn lines(diags: &[Diagnostic]) -> Vec<String> {
        diags.iter().map(ToString::to_string).collect()
    }

    const REVIEWS_SE: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
"#;

    #[test]
    fn a_subset_no_destination_rule_defines_is_ist0101_with_its_line() {
        let yaml = format!(
            "{REVIEWS_SE}---{}",
            r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
    mirror: {host: reviews, subset: v9}
"#
        );
        let diags = run(&yaml);
        assert_eq!(diags.len(), 2, "{:#?}", lines(&diags));
        let d = &diags[0];
        assert_eq!((d.severity, d.code), (Severity::Warning, Some(Code::ReferencedResourceNotFound)));
        assert_eq!(d.path, "http[0].route[1].destination.subset");
        assert_eq!(d.line, 31, "{d}");
        assert_eq!(
            d.to_string(),
            "test.yaml:31: IST0101 VirtualService default/reviews: http[0].route[1].destination.subset: warning: referenced subset not found: \"v3\" of host reviews.default.svc.cluster.local (DestinationRule default/reviews for reviews.default.svc.cluster.local defines v1, v2); requests routed to it get 503 no healthy upstream (UH)"
        );
        assert_eq!(diags[1].path, "http[0].mirror.subset");
        assert!(diags[1].message.starts_with("referenced mirror subset not found: \"v9\""), "{}", diags[1]);
    }

    #[test]
    fn a_subset_without_any_destination_rule_and_wildcard_rules() {
        let yaml = format!(
            "{REVIEWS_SE}---{}",
            r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
"#
        );
        let diags = run(&yaml);
        assert_eq!(diags.len(), 1, "{:#?}", lines(&diags));
        assert!(
            diags[0].message.contains("(no DestinationRule has host reviews.default.svc.cluster.local)"),
            "{}",
            diags[0]
        );

        // A wildcard rule covering the host answers for it.
        let wildcard = format!(
            "{yaml}---{}",
            r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all}
spec:
  host: "*.default.svc.cluster.local"
  subsets: [{name: v1, labels: {version: v1}}]
"#
        );
        assert_eq!(lines(&run(&wildcard)), Vec::<String>::new());
    }

    #[test]
    fn gateway_references_resolve_as_routing_does() {
        let yaml = format!(
            "{REVIEWS_SE}---{}",
            r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec: {gatewayClassName: istio}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [mesh, istio-system/ingress, ingress.istio-system, waypoint, missing]
  http:
  - match: [{gateways: [istio-system/nope]}]
    route: [{destination: {host: reviews}}]
"#
        );
        let diags = run(&yaml);
        let got: Vec<(&str, &str)> = diags.iter().map(|d| (d.path.as_str(), d.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    "gateways[4]",
                    "referenced gateway not found: \"missing\" (no Gateway default/missing in the configuration); the rules bound to it serve no one"
                ),
                (
                    "http[0].match[0].gateways[0]",
                    "referenced gateway not found: \"istio-system/nope\" (no Gateway istio-system/nope in the configuration); the rules bound to it serve no one"
                ),
            ]
        );
        assert!(diags.iter().all(|d| d.code == Some(Code::ReferencedResourceNotFound)));
    }

    #[test]
    fn destination_hosts_need_a_service_entry_or_a_kubernetes_service() {
        let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec: {ports: [{port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: bookinfo}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: other}
spec:
  hosts: [private.other.svc.cluster.local]
  exportTo: ["."]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
      weight: 50
    - destination: {host: ratngs}
      weight: 25
    - destination: {host: ratngs, port: {number: 8080}}
      weight: 25
    mirrors: [{destination: {host: api.example.com}}, {destination: {host: private.other.svc.cluster.local}}]
  tcp:
  - route: [{destination: {host: db.example.org}}]
"#;
        let diags = run(yaml);
        let got: Vec<(&str, &str)> = diags.iter().map(|d| (d.path.as_str(), d.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    "http[0].route[1].destination.host",
                    "referenced host not found: \"ratngs\" (ratngs.bookinfo.svc.cluster.local): no ServiceEntry visible to namespace bookinfo and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
                ),
                (
                    "http[0].mirrors[1].destination.host",
                    "referenced mirror host not found: \"private.other.svc.cluster.local\": no ServiceEntry visible to namespace bookinfo and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
                ),
                (
                    "tcp[0].route[0].destination.host",
                    "referenced host not found: \"db.example.org\": no ServiceEntry visible to namespace bookinfo and no Kubernetes Service in the configuration declares it (fine if its endpoints are registered in code)"
                ),
            ]
        );
        assert!(diags.iter().all(|d| d.severity == Severity::Warning));
    }

    #[test]
    fn merged_destination_rules_report_what_the_later_one_loses() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-a}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-b}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets:
  - {name: v2, labels: {version: v2}}
  - {name: v1, labels: {version: v1-canary}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-selected}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: productpage}}
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: other}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-private}
spec:
  host: reviews
  exportTo: ["~"]
  subsets: [{name: v1, labels: {version: v1}}]
"#;
        let diags = run(yaml);
        let got: Vec<String> = lines(&diags);
        assert_eq!(
            got,
            [
                "test.yaml:18: MW0003 DestinationRule default/reviews-b: subsets[1]: warning: subset \"v1\" of host reviews.default.svc.cluster.local is already defined by DestinationRule default/reviews-a (test.yaml:2); rules for one host in one namespace merge and the first definition of a subset wins, so this one is ignored",
                "test.yaml:15: MW0003 DestinationRule default/reviews-b: trafficPolicy: warning: trafficPolicy is ignored: DestinationRule default/reviews-a (test.yaml:2) for host reviews.default.svc.cluster.local sets one first; rules for one host in one namespace merge and only the first top-level trafficPolicy applies",
            ]
        );
    }

    #[test]
    fn duplicates_name_both_places() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: other}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews.default.svc.cluster.local}
"#;
        let loaded = load_str(yaml, Some("b.yaml"), &LoadOptions::default()).expect("yaml");
        assert_eq!(
            lines(&duplicates(&loaded.resources)),
            [
                "b.yaml:12: MW0002 DestinationRule default/reviews: warning: defined again (first at b.yaml:2); the last valid definition is the one in force, as `kubectl apply` of both would leave it"
            ]
        );
    }

    #[test]
    fn a_misspelt_kind_is_an_error_with_a_suggestion_not_a_skip() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualSevice
metadata: {name: reviews, namespace: bookinfo}
spec: {hosts: [reviews]}
---
apiVersion: networking.istio.oi/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: default}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: filter}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
"#;
        let loaded = load_str(yaml, Some("kinds.yaml"), &LoadOptions::default()).expect("yaml");
        assert_eq!(
            lines(&loaded.diagnostics),
            [
                "kinds.yaml:3: MW0001 VirtualSevice bookinfo/reviews: kind: no kind \"VirtualSevice\" in networking.istio.io (did you mean \"VirtualService\"?)",
                "kinds.yaml:7: MW0001 DestinationRule default/reviews: apiVersion: no API group \"networking.istio.oi\" (did you mean \"networking.istio.io\"?); DestinationRule is not read",
            ]
        );
        assert!(loaded.diagnostics.iter().all(Diagnostic::is_error));
        assert!(loaded.resources.is_empty());
        let skipped: Vec<&str> = loaded.skipped.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(skipped, ["Sidecar", "EnvoyFilter", "Gateway"]);
    }

    #[test]
    fn the_store_reports_the_findings_and_rejects_nothing_for_them() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
"#;
        let mut store = crate::ConfigStore::default();
        let report = store.apply(load_str(yaml, Some("s.yaml"), &LoadOptions::default()).expect("yaml"));
        assert_eq!(report.errors().count(), 0);
        assert!(!report.has_rejections());
        let codes: Vec<(Option<Code>, &str)> = report.diagnostics.iter().map(|d| (d.code, d.path.as_str())).collect();
        assert_eq!(
            codes,
            [
                (Some(Code::DuplicateResource), ""),
                (Some(Code::ReferencedResourceNotFound), "http[0].route[0].destination.subset"),
                (Some(Code::ReferencedResourceNotFound), "http[0].route[0].destination.host"),
            ]
        );
        // The later definition is the one in force, and the one analyzed.
        assert!(report.diagnostics[1].message.contains("\"v2\""), "{}", report.diagnostics[1]);
        assert_eq!(store.resources().len(), 1);
    }

    #[test]
    fn a_complete_configuration_has_no_findings() {
        let yaml = format!(
            "{REVIEWS_SE}---{}",
            r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]
"#
        );
        assert_eq!(lines(&run(&yaml)), Vec::<String>::new());
    }
}
