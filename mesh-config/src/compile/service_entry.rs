//! ServiceEntries compiled into [`mesh_core::service::ServiceDecl`] (hosts kept as written, as
//! Istio keeps them), and the endpoints of ServiceEntries and WorkloadEntries.

use std::sync::Arc;

use mesh_core::policy::LabelSelector;
use mesh_core::service;

use super::{Ctx, arc, opt_arc, port16};
use crate::types::service_entry as se;

impl Ctx<'_> {
    pub(super) fn service_entry(&mut self, s: &se::ServiceEntry) -> service::ServiceDecl {
        service::ServiceDecl {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            // Istio keeps a ServiceEntry's hosts as written (`convertServices`: `host.Name(h)`), so
            // `hosts: [mongo]` is the service `mongo`, not `mongo.<ns>.svc.<domain>` (istio/istio#13447).
            hosts: s.hosts.iter().map(|h| Arc::from(h.to_ascii_lowercase())).collect(),
            ports: s
                .ports
                .iter()
                .filter_map(|p| {
                    Some(service::ServicePort {
                        number: port16(p.number)?,
                        name: arc(&p.name),
                        protocol: arc(&p.protocol.as_deref().unwrap_or("").to_ascii_uppercase()),
                        target_port: p.target_port.and_then(port16),
                    })
                })
                .collect(),
            resolution: match s.resolution.unwrap_or(se::Resolution::NONE) {
                se::Resolution::NONE => service::Resolution::None,
                se::Resolution::STATIC => service::Resolution::Static,
                se::Resolution::DNS => service::Resolution::Dns,
                se::Resolution::DNS_ROUND_ROBIN => service::Resolution::DnsRoundRobin,
                se::Resolution::DYNAMIC_DNS => service::Resolution::DynamicDns,
            },
            mesh_internal: s.location == Some(se::Location::MESH_INTERNAL),
            endpoints: s.endpoints.iter().map(endpoint).collect(),
            workload_selector: s.workload_selector.as_ref().map(|w| LabelSelector::new(&w.labels)),
            service_accounts: service_accounts(s, &self.r.namespace, self.trust_domain),
        }
    }
}

/// A ServiceEntry's identities, as Istio's `convertServices` gathers them: `subjectAltNames` as
/// written, then each endpoint's `serviceAccount` as the SPIFFE identity of that account in the
/// ServiceEntry's namespace (`spiffe.MustGenSpiffeURIForTrustDomain`); distinct, in order.
fn service_accounts(s: &se::ServiceEntry, namespace: &str, trust_domain: &str) -> Box<[Arc<str>]> {
    let mut out: Vec<Arc<str>> = Vec::new();
    let accounts = s.endpoints.iter().filter_map(|e| e.service_account.as_deref()).filter(|a| !a.is_empty());
    let all = s
        .subject_alt_names
        .iter()
        .cloned()
        .chain(accounts.map(|a| format!("spiffe://{trust_domain}/ns/{namespace}/sa/{a}")));
    for name in all {
        if !out.iter().any(|o| **o == *name) {
            out.push(Arc::from(name));
        }
    }
    out.into_boxed_slice()
}

pub(super) fn endpoint(w: &se::WorkloadEntry) -> service::EndpointDecl {
    let meta = service::EndpointMeta {
        ports: Arc::new(w.ports.iter().filter_map(|(k, v)| Some((arc(k), port16(*v)?))).collect()),
        labels: w.labels.iter().map(|(k, v)| (arc(k), arc(v))).collect(),
        weight: w.weight.filter(|w| *w > 0).unwrap_or(1),
        locality: opt_arc(&w.locality),
        network: opt_arc(&w.network),
    };
    service::EndpointDecl::new(w.address.as_str(), Arc::new(meta))
}
