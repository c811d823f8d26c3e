//! Which EndpointSlices name which Pods, kept beside the store's resources, so that a change of
//! one slice or Pod recompiles only the Kubernetes Services whose endpoints it can change (a
//! slice: the Service in its `kubernetes.io/service-name` label; a Pod: the Services of the
//! slices whose `targetRef` names it, or that list one of its IPs without a `targetRef`), and
//! so that one Service's endpoints are built from its own slices and Pods alone, with the same
//! [`crate::kube::endpoints`] rules as a whole compile.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::compact::{Part, View};
use crate::diag::ResourceRef;
use crate::types::kube::{EndpointSlice, MCS_SERVICE_NAME_LABEL, Node, Pod};
use crate::types::{Kind, Resource};

/// `(namespace, name)`.
pub(super) type Name = (Arc<str>, Arc<str>);

/// The index (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct KubeIndex {
    /// Slices (their names) of each Service (namespace, Service name).
    slices: HashMap<Name, Vec<Arc<str>>>,
    /// The Service each indexed slice (namespace, slice name) belongs to.
    service_of: HashMap<Name, Arc<str>>,
    /// Slices naming a Pod (Pod namespace, Pod name) in a `targetRef`.
    by_pod: HashMap<Name, Vec<Name>>,
    /// Slices listing an address (slice namespace, IP) without a Pod `targetRef`.
    by_ip: HashMap<Name, Vec<Name>>,
    /// Pods (their names, sorted) by (namespace, IP).
    pods_by_ip: HashMap<Name, Vec<Arc<str>>>,
    /// Nodes (namespace as loaded, name).
    nodes: BTreeSet<Name>,
    kinds: Kinds,
}

/// The kinds' names as resource ids spell them, made once.
#[derive(Debug, Clone)]
struct Kinds {
    slice: Arc<str>,
    pod: Arc<str>,
    node: Arc<str>,
}

impl Default for KubeIndex {
    fn default() -> Self {
        KubeIndex {
            slices: HashMap::new(),
            service_of: HashMap::new(),
            by_pod: HashMap::new(),
            by_ip: HashMap::new(),
            pods_by_ip: HashMap::new(),
            nodes: BTreeSet::new(),
            kinds: Kinds {
                slice: Arc::from(Kind::EndpointSlice.as_str()),
                pod: Arc::from(Kind::Pod.as_str()),
                node: Arc::from(Kind::Node.as_str()),
            },
        }
    }
}

fn add<K: std::hash::Hash + Eq, V: PartialEq>(map: &mut HashMap<K, Vec<V>>, key: K, value: V) {
    let list = map.entry(key).or_default();
    if !list.contains(&value) {
        list.push(value);
    }
}

fn take<K: std::hash::Hash + Eq, V: PartialEq>(map: &mut HashMap<K, Vec<V>>, key: &K, value: &V) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|v| v != value);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

/// The slice's Service, when the slice is one the endpoint builder reads.
fn slice_service(slice: &EndpointSlice) -> Option<&str> {
    if slice.metadata.labels.contains_key(MCS_SERVICE_NAME_LABEL) {
        return None;
    }
    slice.service_name()
}

/// Each address of the slice: `Some((Pod namespace, Pod name))` when a `targetRef` names a Pod,
/// `None` with the address otherwise (as [`crate::kube::endpoints`] reads them).
fn references<'s>(slice: &'s EndpointSlice, namespace: &'s str) -> impl Iterator<Item = Reference<'s>> {
    slice.endpoints.iter().flat_map(move |e| {
        let pod = e.target_ref.as_ref().filter(|t| t.kind.as_deref() == Some("Pod")).map(|t| {
            let ns = t.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
            (ns, t.name.as_deref().unwrap_or(""))
        });
        let addresses: Box<dyn Iterator<Item = Reference<'s>>> = match pod {
            Some(p) => Box::new(std::iter::once(Reference::Pod(p.0, p.1))),
            None => Box::new(e.addresses.iter().map(|a| Reference::Ip(a.as_str()))),
        };
        addresses
    })
}

enum Reference<'s> {
    Pod(&'s str, &'s str),
    Ip(&'s str),
}

impl KubeIndex {
    /// The index of these resources.
    pub(super) fn new(resources: &[Resource]) -> Self {
        let mut index = KubeIndex::default();
        for r in resources.iter().filter(|r| r.kind.is_kubernetes()) {
            index.insert(View::of(r));
        }
        index
    }

    /// Take a resource now in force into the index (other kinds are not indexed).
    pub(super) fn insert(&mut self, r: View<'_>) {
        match r.spec {
            Part::Slice(slice) => {
                let Some(service) = slice_service(slice) else { return };
                let service: Arc<str> = Arc::from(service);
                let me: Name = (r.namespace.clone(), r.name.clone());
                add(&mut self.slices, (r.namespace.clone(), service.clone()), r.name.clone());
                self.service_of.insert(me.clone(), service);
                for reference in references(slice, r.namespace) {
                    match reference {
                        Reference::Pod(ns, name) => add(&mut self.by_pod, (Arc::from(ns), Arc::from(name)), me.clone()),
                        Reference::Ip(ip) => add(&mut self.by_ip, (r.namespace.clone(), Arc::from(ip)), me.clone()),
                    }
                }
            }
            Part::Pod(pod) => {
                for ip in pod.ips() {
                    let list = self.pods_by_ip.entry((r.namespace.clone(), Arc::from(ip))).or_default();
                    if let Err(at) = list.binary_search(r.name) {
                        list.insert(at, r.name.clone());
                    }
                }
            }
            Part::Node(_) => {
                self.nodes.insert((r.namespace.clone(), r.name.clone()));
            }
            Part::Other => {}
        }
    }

    /// Let go of a resource no longer in force (the version that was inserted).
    pub(super) fn remove(&mut self, r: View<'_>) {
        match r.spec {
            Part::Slice(slice) => {
                let Some(service) = slice_service(slice) else { return };
                let me: Name = (r.namespace.clone(), r.name.clone());
                take(&mut self.slices, &(r.namespace.clone(), Arc::from(service)), r.name);
                self.service_of.remove(&me);
                for reference in references(slice, r.namespace) {
                    match reference {
                        Reference::Pod(ns, name) => take(&mut self.by_pod, &(Arc::from(ns), Arc::from(name)), &me),
                        Reference::Ip(ip) => take(&mut self.by_ip, &(r.namespace.clone(), Arc::from(ip)), &me),
                    }
                }
            }
            Part::Pod(pod) => {
                for ip in pod.ips() {
                    take(&mut self.pods_by_ip, &(r.namespace.clone(), Arc::from(ip)), r.name);
                }
            }
            Part::Node(_) => {
                self.nodes.remove(&(r.namespace.clone(), r.name.clone()));
            }
            Part::Other => {}
        }
    }

    /// The Services (namespace, name) whose endpoints this version of a slice or Pod can
    /// change (for a Pod, as the slices in force name it).
    pub(super) fn services_of(&self, r: View<'_>, out: &mut BTreeSet<Name>) {
        match r.spec {
            Part::Slice(slice) => {
                if let Some(service) = slice_service(slice) {
                    out.insert((r.namespace.clone(), Arc::from(service)));
                }
            }
            Part::Pod(pod) => {
                let by_name = self.by_pod.get(&(r.namespace.clone(), r.name.clone()));
                let by_ip = pod.ips().filter_map(|ip| self.by_ip.get(&(r.namespace.clone(), Arc::from(ip))));
                for slice in by_name.into_iter().chain(by_ip).flatten() {
                    if let Some(service) = self.service_of.get(slice) {
                        out.insert((slice.0.clone(), service.clone()));
                    }
                }
            }
            Part::Node(_) | Part::Other => {}
        }
    }

    /// What the endpoints of the Service `(namespace, name)` are built from: its slices, the
    /// Pods they name (or that have an address they list without naming a Pod), and the Nodes,
    /// read through `get` (the store's resources in force).
    pub(super) fn parts<'r>(
        &self,
        service: &Name,
        get: impl Fn(&ResourceRef) -> Option<View<'r>>,
    ) -> (Vec<&'r EndpointSlice>, Vec<&'r Pod>, Vec<&'r Node>) {
        let id = |kind: &Arc<str>, namespace: &Arc<str>, name: &Arc<str>| ResourceRef {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let mut slices = Vec::new();
        let mut pods = Vec::new();
        for name in self.slices.get(service).into_iter().flatten() {
            let Some(Part::Slice(slice)) = get(&id(&self.kinds.slice, &service.0, name)).map(|r| r.spec) else {
                continue;
            };
            slices.push(slice);
            for reference in references(slice, &service.0) {
                let names: Vec<(Arc<str>, Arc<str>)> = match reference {
                    Reference::Pod(ns, name) => vec![(Arc::from(ns), Arc::from(name))],
                    Reference::Ip(ip) => (self.pods_by_ip.get(&(service.0.clone(), Arc::from(ip))).into_iter())
                        .flatten()
                        .map(|name| (service.0.clone(), name.clone()))
                        .collect(),
                };
                for (ns, name) in names {
                    if let Some(Part::Pod(pod)) = get(&id(&self.kinds.pod, &ns, &name)).map(|r| r.spec) {
                        pods.push(pod);
                    }
                }
            }
        }
        let nodes = (self.nodes.iter())
            .filter_map(|(ns, name)| match get(&id(&self.kinds.node, ns, name)).map(|r| r.spec) {
                Some(Part::Node(node)) => Some(node),
                _ => None,
            })
            .collect();
        (slices, pods, nodes)
    }
}
