//! Kubernetes Services compiled into [`mesh_core::service::ServiceDecl`]s, their endpoints built
//! from EndpointSlices and Pods ([`crate::kube::endpoints`]), so that they reach the endpoint
//! registry the way a ServiceEntry's endpoints do.
//!
//! A Service becomes a declaration with the host `<name>.<namespace>.svc.<domain>`, the
//! Service's ports (protocol by Istio's `ConvertProtocol`, [`crate::kube::protocol`]),
//! `resolution: STATIC` and one endpoint per address, its `ports` mapping each Service port name
//! to the slice's port number — what a `MESH_INTERNAL` ServiceEntry listing those endpoints
//! gives. The endpoints with the same labels, locality and ports (those of one workload on one
//! node) share one [`EndpointMeta`], and their label and port maps are shared too. Two cases
//! differ from that:
//!
//! - An address that serves only some of the Service's ports (its slices list fewer ports, as
//!   when a Pod lacks a named `targetPort`) goes into a second declaration of the same host with
//!   only those ports, so it never receives traffic for a port it does not serve.
//! - `type: ExternalName` becomes `resolution: DNS` with the external name as its one endpoint
//!   and `MESH_EXTERNAL`, as Istio's `ConvertService` makes it an alias of that name.
//!
//! A headless Service (`clusterIP: None`) is, in Istio, a passthrough: clients resolve the name
//! to Pod IPs themselves. meshwork balances over the same endpoints instead.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use mesh_core::service::{EndpointDecl, EndpointLabels, EndpointMeta, Resolution, ServiceDecl, ServicePort};

use super::{Ctx, arc};
use crate::kube::{self, Index};
use crate::types::kube::Service;

impl Ctx<'_> {
    pub(super) fn kubernetes_service(&mut self, s: &Service, index: &Index<'_>) -> Vec<ServiceDecl> {
        let host: Arc<str> =
            Arc::from(kube::hostname(&s.metadata.name, &self.r.namespace, self.domain).to_ascii_lowercase());
        let ports: Vec<ServicePort> = s
            .spec
            .ports
            .iter()
            .filter_map(|p| {
                Some(ServicePort {
                    number: u16::try_from(p.port).ok().filter(|n| *n != 0)?,
                    name: arc(p.name.as_deref().unwrap_or("")),
                    protocol: arc(kube::protocol(p)),
                    target_port: None,
                })
            })
            .collect();
        let trust_domain = self.trust_domain;
        let decl = |ports: Vec<ServicePort>,
                    endpoints: Vec<EndpointDecl>,
                    resolution,
                    mesh_internal,
                    service_accounts: &[Arc<str>]| ServiceDecl {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            hosts: Box::new([host.clone()]),
            ports: ports.into_boxed_slice(),
            resolution,
            mesh_internal,
            endpoints: endpoints.into_boxed_slice(),
            workload_selector: None,
            service_accounts: service_accounts.into(),
        };
        if s.is_external_name() {
            let name = s.spec.external_name.as_deref().unwrap_or("").trim_end_matches('.');
            let endpoint = EndpointDecl::new(name, Arc::default());
            return vec![decl(ports, vec![endpoint], Resolution::Dns, false, &[])];
        }

        // One endpoint per address, its ports by Service port name. Label keys and values,
        // port names and localities repeat across a Service's endpoints: each text is one
        // shared `Arc<str>`.
        let endpoints = kube::endpoints(s, index);
        // The Pods' service accounts as SPIFFE identities (Istio's kube `SecureNamingSAN`), for
        // clients' secure naming.
        let mut accounts: Vec<Arc<str>> = Vec::new();
        for e in &endpoints {
            if let Some(sa) = e.service_account.as_deref().filter(|a| !a.is_empty()) {
                let ns = e.pod.as_deref().and_then(|p| p.split_once('/')).map_or(&*self.r.namespace, |(ns, _)| ns);
                let id = format!("spiffe://{trust_domain}/ns/{ns}/sa/{sa}");
                if !accounts.iter().any(|a| **a == *id) {
                    accounts.push(Arc::from(id));
                }
            }
        }
        accounts.sort();
        let mut texts: HashMap<&str, Arc<str>> = HashMap::new();
        // Endpoints of one workload (on one node) have the same labels: one map for them all.
        let mut label_maps: HashMap<&BTreeMap<String, String>, EndpointLabels> = HashMap::new();
        // Each address once, in order of first listing, with the ports its listings give it.
        let mut by_address: Vec<Address<'_>> = Vec::new();
        let mut position: HashMap<&str, usize> = HashMap::new();
        for e in &endpoints {
            let i = *position.entry(e.address.as_str()).or_insert_with(|| {
                let labels = match label_maps.get(&e.labels) {
                    Some(shared) => shared.clone(),
                    None => {
                        let labels: EndpointLabels =
                            e.labels.iter().map(|(k, v)| (intern(&mut texts, k), intern(&mut texts, v))).collect();
                        label_maps.insert(&e.labels, labels.clone());
                        labels
                    }
                };
                let locality = e.locality.as_deref().map(|l| intern(&mut texts, l));
                by_address.push(Address { address: &e.address, labels, locality, ports: BTreeMap::new() });
                by_address.len() - 1
            });
            let port_name = intern(&mut texts, &e.port_name);
            if let Some(a) = by_address.get_mut(i) {
                a.ports.entry(port_name).or_insert(e.port);
            }
        }
        // One port map for the endpoints that map the ports alike, and one meta for those with
        // the same labels, locality and port map.
        let mut port_maps: HashSet<Arc<BTreeMap<Arc<str>, u16>>> = HashSet::new();
        let mut metas: HashSet<Arc<EndpointMeta>> = HashSet::new();
        let by_address = by_address.into_iter().map(|a| {
            let ports = match port_maps.get(&a.ports) {
                Some(shared) => shared.clone(),
                None => {
                    let ports = Arc::new(a.ports);
                    port_maps.insert(ports.clone());
                    ports
                }
            };
            let meta = EndpointMeta { ports, labels: a.labels, weight: 1, locality: a.locality, network: None };
            let meta = match metas.get(&meta) {
                Some(shared) => shared.clone(),
                None => {
                    let meta = Arc::new(meta);
                    metas.insert(meta.clone());
                    meta
                }
            };
            EndpointDecl::new(a.address, meta)
        });
        // Addresses serving every port in the main declaration; the others grouped by the ports
        // they serve.
        let mut full = Vec::new();
        let mut partial: BTreeMap<Vec<Arc<str>>, Vec<EndpointDecl>> = BTreeMap::new();
        for e in by_address {
            if ports.iter().all(|p| e.ports().contains_key(&p.name)) {
                full.push(e);
            } else {
                partial.entry(e.ports().keys().cloned().collect()).or_default().push(e);
            }
        }
        let mut out = vec![decl(ports.clone(), full, Resolution::Static, true, &accounts)];
        for (names, endpoints) in partial {
            let some: Vec<ServicePort> = ports.iter().filter(|p| names.contains(&p.name)).cloned().collect();
            out.push(decl(some, endpoints, Resolution::Static, true, &accounts));
        }
        out
    }
}

/// An address of a Service's endpoints, while its listings are gathered.
struct Address<'e> {
    /// The address.
    address: &'e str,
    /// Its Pod's labels.
    labels: EndpointLabels,
    /// Its locality.
    locality: Option<Arc<str>>,
    /// Service port name to the port number its listings give.
    ports: BTreeMap<Arc<str>, u16>,
}

/// One shared `Arc<str>` per distinct text of a Service's endpoints.
fn intern<'e>(texts: &mut HashMap<&'e str, Arc<str>>, text: &'e str) -> Arc<str> {
    texts.entry(text).or_insert_with(|| arc(text)).clone()
}
