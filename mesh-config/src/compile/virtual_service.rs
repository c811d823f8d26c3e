//! VirtualServices: `http[]` rules split per binding (the mesh, or each Gateway) honouring
//! `match[].gateways`, delegate rules merged in, each host bound under the names a Gateway's
//! servers expose to the VirtualService's namespace (Istio's `pickMatchingGatewayHosts`) and,
//! when a host is exposed on some of the Gateway's ports only, under rules restricted to those
//! ports; and the `tcp[]` and `tls[]` rules as one L4 VirtualService.

use std::sync::Arc;

use mesh_core::l4;
use mesh_core::route::{self, HttpRule};
use mesh_core::snapshot::{Binding, SnapshotBuilder};

use super::http_route::Strings;
use super::{Ctx, exported_to, port16};
use crate::diag::Severity;
use crate::types::virtual_service as vs;

/// The names under which a VirtualService host of `namespace` is served by a Gateway whose
/// servers expose `server_hosts` (see the `compile` module docs), each with the ports it is
/// served on, or `None` for every port of the Gateway; empty when no server exposes it.
fn gateway_virtual_hosts(
    host: &str,
    namespace: &str,
    server_hosts: &[(Arc<str>, Arc<str>, u16)],
) -> Vec<(Arc<str>, Option<Vec<u16>>)> {
    let mut out: Vec<(Arc<str>, Vec<u16>)> = Vec::new();
    for (ns, server_host, port) in server_hosts {
        if &**ns != "*" && &**ns != namespace {
            continue;
        }
        if !mesh_core::host::hosts_overlap(server_host, host) {
            continue;
        }
        let name: Arc<str> =
            if mesh_core::host::is_subset_of(host, server_host) { Arc::from(host) } else { server_host.clone() };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, ports)) if !ports.contains(port) => ports.push(*port),
            Some(_) => {}
            None => out.push((name, vec![*port])),
        }
    }
    let mut all: Vec<u16> = server_hosts.iter().map(|(_, _, p)| *p).collect();
    all.sort_unstable();
    all.dedup();
    out.into_iter()
        .map(|(name, mut ports)| {
            ports.sort_unstable();
            let restrict = ports != all;
            (name, restrict.then_some(ports))
        })
        .collect()
}

/// A rule's matches (with their `match[]` index; none for a rule without conditions) restricted
/// to the listener `ports` (Istio builds a Gateway's routes per port, from the servers on that
/// port): a match without a port is repeated per port, a match for another port dropped. `None`
/// when nothing is left.
fn restrict_to_ports(
    matches: Vec<(usize, vs::HttpMatchRequest)>,
    ports: &[u16],
) -> Option<Vec<(usize, vs::HttpMatchRequest)>> {
    let matches = if matches.is_empty() { vec![(0, vs::HttpMatchRequest::default())] } else { matches };
    let mut out = Vec::new();
    for (j, m) in matches {
        match m.port.filter(|p| *p > 0) {
            Some(p) if ports.iter().any(|q| u32::from(*q) == p) => out.push((j, m)),
            Some(_) => {}
            None => {
                for p in ports {
                    out.push((j, vs::HttpMatchRequest { port: Some(u32::from(*p)), ..m.clone() }));
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Resolve a gateway reference written in a VirtualService of `namespace`, as Istio does:
/// `mesh`, `ns/name` (`./name` = own namespace), legacy `name.ns[.svc.domain]`, or `name`.
pub fn resolve_gateway(reference: &str, namespace: &str) -> Binding {
    if reference == "mesh" {
        return Binding::Mesh;
    }
    if let Some((ns, name)) = reference.split_once('/') {
        let ns = if ns == "." { namespace } else { ns };
        return Binding::gateway(ns, name);
    }
    let mut parts = reference.split('.');
    match (parts.next(), parts.next()) {
        (Some(name), Some(ns)) => Binding::gateway(ns, name),
        _ => Binding::gateway(namespace, reference),
    }
}

impl Ctx<'_> {
    pub(super) fn virtual_service(&mut self, builder: &mut SnapshotBuilder, v: &vs::VirtualService) {
        if v.hosts.is_empty() {
            // A delegate: reachable only through a root VirtualService's `delegate`.
            return;
        }
        let ns = self.r.namespace.to_string();
        let own: Vec<Binding> = if v.gateways.is_empty() {
            vec![Binding::Mesh]
        } else {
            v.gateways.iter().map(|g| resolve_gateway(g, &ns)).collect()
        };
        // Rules with their `http[]` index; a rule that delegates is replaced by the delegate's
        // rules merged with it (see `crate::delegate`).
        let mut http: Vec<(usize, std::borrow::Cow<'_, vs::HttpRoute>)> = Vec::new();
        for (i, h) in v.http.iter().enumerate() {
            match &h.delegate {
                None => http.push((i, std::borrow::Cow::Borrowed(h))),
                Some(d) => {
                    let dns = d.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(&ns).to_string();
                    match self.delegates.get(&(dns.as_str(), d.name.as_str())) {
                        Some((dr, dv)) if exported_to(&dr.namespace, &dv.export_to, &ns) => {
                            let merged = crate::delegate::merge_routes(h, dv, &dr.namespace, self.domain);
                            http.extend(merged.into_iter().map(|m| (i, std::borrow::Cow::Owned(m))));
                        }
                        _ => self.note(
                            Severity::Warning,
                            format!("http[{i}].delegate"),
                            format!(
                                "VirtualService {dns}/{} is not a delegate visible to namespace {ns} (it must exist, have no hosts, and be exported here); as in Istio, this rule is left out",
                                d.name
                            ),
                        ),
                    }
                }
            }
        }
        let mut bindings = own.clone();
        for (_, h) in &http {
            for m in &h.matches {
                for g in &m.gateways {
                    let b = resolve_gateway(g, &ns);
                    if !bindings.contains(&b) {
                        bindings.push(b);
                    }
                }
            }
        }
        if !v.tcp.is_empty() || !v.tls.is_empty() {
            builder.add_l4_virtual_service(self.l4_virtual_service(v, &own, &ns));
        }
        let owner = format!("{}/{}", self.r.namespace, self.r.name);
        let mut strings = Strings::default();
        for binding in bindings {
            let rules = self.binding_rules(&http, &binding, &own, &ns, None, &mut strings);
            // Rules restricted to some of a Gateway's ports, per port set.
            let mut restricted: Vec<(Vec<u16>, Vec<Arc<HttpRule>>)> = Vec::new();
            for (i, host) in v.hosts.iter().enumerate() {
                let host = self.host(host);
                let names: Vec<(Arc<str>, Option<Vec<u16>>)> = match self.gateways.get(&binding) {
                    Some(server_hosts) => {
                        let names = gateway_virtual_hosts(&host, &self.r.namespace, server_hosts);
                        if names.is_empty() {
                            self.note(
                                Severity::Warning,
                                format!("hosts[{i}]"),
                                format!(
                                    "host {host} is not among the hosts Gateway {binding} exposes to namespace {}; that gateway does not serve it",
                                    self.r.namespace
                                ),
                            );
                        }
                        names
                    }
                    // The mesh, or a Gateway this config does not define (a library user may
                    // route as a gateway without one): the host as written.
                    None => vec![(host.clone(), None)],
                };
                for (name, ports) in names {
                    match ports {
                        None => self.bind(builder, &binding, &name, &owner, &rules),
                        Some(ports) => {
                            if !restricted.iter().any(|(p, _)| *p == ports) {
                                let r = self.binding_rules(&http, &binding, &own, &ns, Some(&ports), &mut strings);
                                restricted.push((ports.clone(), r));
                            }
                            if let Some((_, r)) = restricted.iter().find(|(p, _)| *p == ports) {
                                let r = r.clone();
                                self.bind(builder, &binding, &name, &owner, &r);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The `tcp[]` and `tls[]` rules of a VirtualService (see [`mesh_core::l4`]).
    fn l4_virtual_service(&self, v: &vs::VirtualService, own: &[Binding], ns: &str) -> l4::L4VirtualService {
        let rule = |index: usize, matches: Vec<l4::L4Match>, route: &[vs::RouteDestination]| l4::L4Rule {
            index,
            matches: matches.into_boxed_slice(),
            destinations: route::WeightedDestinations::new(
                route
                    .iter()
                    .filter_map(|rd| {
                        Some(route::RouteDestination {
                            destination: self.destination(rd.destination.as_ref()?),
                            weight: u32::try_from(rd.weight).unwrap_or(0),
                            headers: route::HeaderEdits::default(),
                        })
                    })
                    .collect(),
            ),
        };
        // A `tls[]` match is an L4 match with SNI names (Istio's `convertTLSMatchToL4Match`).
        let l4_match = |port: Option<u32>, gateways: &[String], sni_hosts: &[String]| l4::L4Match {
            port: port.and_then(port16).filter(|p| *p != 0),
            gateways: gateways.iter().map(|g| resolve_gateway(g, ns)).collect(),
            sni_hosts: sni_hosts.iter().map(|h| self.host(h)).collect(),
        };
        let tcp = (v.tcp.iter().enumerate())
            .map(|(i, t)| {
                let matches = t.matches.iter().map(|m| l4_match(m.port, &m.gateways, &[])).collect();
                rule(i, matches, &t.route)
            })
            .collect();
        let tls = (v.tls.iter().enumerate())
            .map(|(i, t)| {
                let matches = t.matches.iter().map(|m| l4_match(m.port, &m.gateways, &m.sni_hosts)).collect();
                rule(i, matches, &t.route)
            })
            .collect();
        l4::L4VirtualService {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            hosts: v.hosts.iter().map(|h| self.host(h)).collect(),
            gateways: own.to_vec().into_boxed_slice(),
            tcp,
            tls,
        }
    }

    /// The compiled rules of `http` that apply under `binding` (restricted to listener `ports`
    /// when given).
    fn binding_rules(
        &mut self,
        http: &[(usize, std::borrow::Cow<'_, vs::HttpRoute>)],
        binding: &Binding,
        own: &[Binding],
        ns: &str,
        ports: Option<&[u16]>,
        strings: &mut Strings,
    ) -> Vec<Arc<HttpRule>> {
        let mut rules = Vec::new();
        for (i, h) in http {
            let (i, h) = (*i, &**h);
            let applies = |m: &vs::HttpMatchRequest| {
                if m.gateways.is_empty() {
                    own.contains(binding)
                } else {
                    m.gateways.iter().any(|g| resolve_gateway(g, ns) == *binding)
                }
            };
            let kept: Vec<(usize, vs::HttpMatchRequest)> = if h.matches.is_empty() {
                if !own.contains(binding) {
                    continue;
                }
                Vec::new()
            } else {
                let kept: Vec<(usize, vs::HttpMatchRequest)> =
                    h.matches.iter().enumerate().filter(|(_, m)| applies(m)).map(|(j, m)| (j, m.clone())).collect();
                if kept.is_empty() {
                    continue;
                }
                kept
            };
            let kept = match ports {
                None => kept,
                Some(ports) => match restrict_to_ports(kept, ports) {
                    Some(restricted) => restricted,
                    None => continue,
                },
            };
            let matches = kept
                .iter()
                .map(|(j, m)| self.request_match(*j, m, &format!("http[{i}].match[{j}]"), strings))
                .collect();
            rules.push(Arc::new(self.http_rule(i, h, matches, strings)));
        }
        rules
    }

    fn bind(
        &mut self,
        builder: &mut SnapshotBuilder,
        binding: &Binding,
        host: &str,
        owner: &str,
        rules: &[Arc<HttpRule>],
    ) {
        if let Err(conflict) = builder.add_routes(binding.clone(), host, owner, rules.to_vec()) {
            self.note(
                Severity::Warning,
                "hosts".to_string(),
                format!(
                    "host {} is already routed by VirtualService {} for the mesh; as in Istio, only the first one applies",
                    conflict.host, conflict.kept
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_references() {
        assert_eq!(resolve_gateway("mesh", "ns"), Binding::Mesh);
        assert_eq!(resolve_gateway("bookinfo-gateway", "bookinfo"), Binding::gateway("bookinfo", "bookinfo-gateway"));
        assert_eq!(resolve_gateway("istio-system/gw", "bookinfo"), Binding::gateway("istio-system", "gw"));
        assert_eq!(resolve_gateway("./gw", "bookinfo"), Binding::gateway("bookinfo", "gw"));
        assert_eq!(resolve_gateway("gw.istio-system.svc.cluster.local", "x"), Binding::gateway("istio-system", "gw"));
    }
}
