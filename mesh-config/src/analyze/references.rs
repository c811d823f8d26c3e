//! `IST0101`: references that point at nothing, as Istio's analyzers find them (istio/istio
//! `pkg/config/analysis/analyzers/virtualservice/`: `destinationrules.go` for subsets,
//! `gateways.go` for gateways, `destinationhosts.go` for hosts), over an index of what the
//! references can point at.

use std::collections::{HashMap, HashSet};

use mesh_core::host::{is_subset_of, is_wildcard, qualify};
use mesh_core::snapshot::Binding;

use super::Seg::{self, Field as F, Index as I};
use super::{visible_to, warning};
use crate::compile::resolve_gateway;
use crate::diag::{Code, Diagnostic};
use crate::load::Skipped;
use crate::types::destination_rule as dr;
use crate::types::virtual_service as vs;
use crate::types::{Resource, Spec};

/// Every VirtualService's references checked against the index of `resources` and `skipped`.
pub(super) fn check(resources: &[Resource], skipped: &[Skipped], domain: &str, out: &mut Vec<Diagnostic>) {
    let index = Index::new(resources, skipped, domain);
    for r in resources {
        if let Spec::VirtualService(v) = &r.spec {
            index.virtual_service(r, v, out);
        }
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
                // An Istio Gateway, or a Gateway API Gateway of the same namespace and name (as
                // in Istio, a VirtualService may name either).
                Spec::Gateway(_) | Spec::KubeGateway(_) => {
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
                Spec::Service(_) => {
                    index.kubernetes_services.insert(qualify(&r.name, &r.namespace, domain));
                }
                Spec::VirtualService(_)
                | Spec::WorkloadEntry(_)
                | Spec::Pod(_)
                | Spec::Namespace(_)
                | Spec::Secret(_)
                | Spec::Node(_)
                | Spec::EndpointSlice(_)
                | Spec::PeerAuthentication(_)
                | Spec::AuthorizationPolicy(_)
                | Spec::RequestAuthentication(_)
                | Spec::GatewayClass(_)
                | Spec::HttpRoute(_)
                | Spec::GrpcRoute(_)
                | Spec::ReferenceGrant(_) => {}
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
