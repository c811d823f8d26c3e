//! Which EndpointSlices name which Pods, kept beside the store's resources, so that a change of
//! one slice or Pod recompiles only the Kubernetes Services whose endpoints it can change (a
//! slice: the Service in its `kubernetes.io/service-name` label; a Pod: the Services of the
//! slices whose `targetRef` names it, or that list one of its IPs without a `targetRef`), and
//! so that one Service's endpoints are built from its own slices and Pods alone, with the same
//! [`crate::kube::endpoints`] rules as a whole compile.
//!
//! The layout is made for clusters of many small slices (a Service's one slice of a few Pods):
//! the index is grouped by namespace first, so that no entry repeats its namespace; names are
//! the objects' own `Arc<str>`s, shared rather than copied where the object is at hand (a Pod
//! name a slice's `targetRef` gives is the Pod's own once the Pod is indexed); lists that
//! almost always hold one item (`Few`) take no allocation of their own; and IPs printed as
//! Rust prints them are keyed by their bits, other spellings by their text (lookups stay by
//! exact text). An endpoint (a Pod of one IP, named by one slice) costs under 100 bytes, and no
//! allocation of its own once its Pod is indexed.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use super::compact::{Part, View};
use crate::diag::ResourceRef;
use crate::types::kube::{EndpointView, IpKey, MCS_SERVICE_NAME_LABEL, Node, PodView, SliceView};
use crate::types::{Kind, Resource};

/// `(namespace, name)`.
pub(super) type Name = (Arc<str>, Arc<str>);

/// The index (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct KubeIndex {
    /// The slices and Pods of each namespace (none empty).
    namespaces: HashMap<Arc<str>, Namespace>,
    /// Nodes (namespace as loaded, name).
    nodes: BTreeSet<Name>,
    kinds: Kinds,
}

/// What the index knows of one namespace: its slices, and its Pods.
#[derive(Debug, Clone, Default)]
struct Namespace {
    /// Slices (their names) of each Service of the namespace (by Service name).
    slices: HashMap<Arc<str>, Few<Arc<str>>>,
    /// The Service each indexed slice of the namespace (by slice name) belongs to.
    service_of: HashMap<Arc<str>, Arc<str>>,
    /// Slices (their names) of the namespace naming a Pod of the namespace (by Pod name) in a
    /// `targetRef`.
    by_pod: HashMap<Arc<str>, Few<Arc<str>>>,
    /// Slices (namespace, name) of other namespaces naming a Pod of this one (by Pod name) in a
    /// `targetRef`.
    by_pod_elsewhere: HashMap<Arc<str>, Few<Name>>,
    /// Slices (their names) of the namespace listing an address (by IP) without a Pod
    /// `targetRef`.
    by_ip: IpMap<Arc<str>>,
    /// Pods (their names, sorted) of the namespace, by IP.
    pods_by_ip: IpMap<Arc<str>>,
}

impl Namespace {
    fn is_empty(&self) -> bool {
        self.slices.is_empty()
            && self.service_of.is_empty()
            && self.by_pod.is_empty()
            && self.by_pod_elsewhere.is_empty()
            && self.by_ip.is_empty()
            && self.pods_by_ip.is_empty()
    }

    /// Key the lists of slices naming the Pod `name` by the Pod's own name.
    fn share_pod_name(&mut self, name: &Arc<str>) {
        share_key(&mut self.by_pod, name);
        share_key(&mut self.by_pod_elsewhere, name);
    }
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
            namespaces: HashMap::new(),
            nodes: BTreeSet::new(),
            kinds: Kinds {
                slice: Arc::from(Kind::EndpointSlice.as_str()),
                pod: Arc::from(Kind::Pod.as_str()),
                node: Arc::from(Kind::Node.as_str()),
            },
        }
    }
}

/// A list without duplicates that almost always holds one item, and then takes no allocation.
/// Never empty: a list that would be is taken out of its map.
#[derive(Debug, Clone)]
enum Few<T> {
    One(T),
    #[allow(clippy::box_collection)] // a thin pointer: `Few<Arc<str>>` is no bigger than an `Arc<str>`
    Many(Box<Vec<T>>),
}

impl<T: Clone + PartialEq> Few<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Few::One(v) => std::slice::from_ref(v),
            Few::Many(list) => list,
        }
    }

    /// Add `value` at the end, unless it is there.
    fn push_new(&mut self, value: T) {
        match self {
            Few::One(v) if *v == value => {}
            Few::One(v) => *self = Few::Many(Box::new(vec![v.clone(), value])),
            Few::Many(list) => {
                if !list.contains(&value) {
                    list.push(value);
                }
            }
        }
    }

    /// Add `value` in order, unless it is there.
    fn insert_sorted(&mut self, value: T)
    where
        T: Ord,
    {
        match self {
            Few::One(v) if *v == value => {}
            Few::One(v) => {
                let pair = if *v < value { vec![v.clone(), value] } else { vec![value, v.clone()] };
                *self = Few::Many(Box::new(pair));
            }
            Few::Many(list) => {
                if let Err(at) = list.binary_search(&value) {
                    list.insert(at, value);
                }
            }
        }
    }

    /// Take `value` out; `false` when nothing would be left.
    fn keep_others(&mut self, value: &T) -> bool {
        match self {
            Few::One(v) => v != value,
            Few::Many(list) => {
                list.retain(|v| v != value);
                if let [only] = list.as_slice() {
                    *self = Few::One(only.clone());
                    return true;
                }
                !list.is_empty()
            }
        }
    }
}

/// Add `value` to the list of `key` (made by `make_key` when there is none) with `put`.
fn add<K, Q, V>(map: &mut HashMap<K, Few<V>>, key: &Q, make_key: impl FnOnce() -> K, value: V, put: fn(&mut Few<V>, V))
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    match map.get_mut(key) {
        Some(list) => put(list, value),
        None => {
            map.insert(make_key(), Few::One(value));
        }
    }
}

/// Take `value` out of the list of `key`, and the list out of the map when it is empty.
fn take<K, Q, V>(map: &mut HashMap<K, Few<V>>, key: &Q, value: &V)
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
    V: Clone + PartialEq,
{
    if let Some(list) = map.get_mut(key)
        && !list.keep_others(value)
    {
        map.remove(key);
    }
}

/// Key the entry of `name` by that very `Arc` (letting go of an equal copy).
fn share_key<V>(map: &mut HashMap<Arc<str>, V>, name: &Arc<str>) {
    if map.get_key_value(&**name).is_some_and(|(key, _)| !Arc::ptr_eq(key, name))
        && let Some(value) = map.remove(&**name)
    {
        map.insert(name.clone(), value);
    }
}

/// Lists of values by IP text, which is looked up exactly as written: IPs spelled as Rust
/// prints them are kept as their bits, others as their text.
#[derive(Debug, Clone)]
struct IpMap<V> {
    v4: HashMap<u32, Few<V>>,
    v6: HashMap<u128, Few<V>>,
    text: HashMap<Box<str>, Few<V>>,
}

impl<V> Default for IpMap<V> {
    fn default() -> Self {
        IpMap { v4: HashMap::new(), v6: HashMap::new(), text: HashMap::new() }
    }
}

impl<V: Clone + PartialEq> IpMap<V> {
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.text.is_empty()
    }

    fn get(&self, ip: IpKey<'_>) -> &[V] {
        let list = match ip {
            IpKey::Addr(IpAddr::V4(ip)) => self.v4.get(&ip.to_bits()),
            IpKey::Addr(IpAddr::V6(ip)) => self.v6.get(&ip.to_bits()),
            IpKey::Text(text) => self.text.get(text),
        };
        list.map_or(&[], Few::as_slice)
    }

    fn add(&mut self, ip: IpKey<'_>, value: V, put: fn(&mut Few<V>, V)) {
        match ip {
            IpKey::Addr(IpAddr::V4(ip)) => add(&mut self.v4, &ip.to_bits(), || ip.to_bits(), value, put),
            IpKey::Addr(IpAddr::V6(ip)) => add(&mut self.v6, &ip.to_bits(), || ip.to_bits(), value, put),
            IpKey::Text(text) => add(&mut self.text, text, || Box::from(text), value, put),
        }
    }

    fn take(&mut self, ip: IpKey<'_>, value: &V) {
        match ip {
            IpKey::Addr(IpAddr::V4(ip)) => take(&mut self.v4, &ip.to_bits(), value),
            IpKey::Addr(IpAddr::V6(ip)) => take(&mut self.v6, &ip.to_bits(), value),
            IpKey::Text(text) => take(&mut self.text, text, value),
        }
    }
}

impl IpMap<Arc<str>> {
    /// The Pod name `name` as a key: the indexed Pod's own, when one of these Pods (by IP) has
    /// one of `addresses`, else a new one.
    fn pod_key<'k>(&self, name: &str, mut addresses: impl Iterator<Item = IpKey<'k>>) -> Arc<str> {
        addresses
            .find_map(|ip| {
                let pods = self.get(ip);
                pods.binary_search_by(|p| (**p).cmp(name)).ok().and_then(|at| pods.get(at))
            })
            .map_or_else(|| Arc::from(name), Arc::clone)
    }
}

/// The slice's Service, when the slice is one the endpoint builder reads.
fn slice_service(slice: SliceView<'_>) -> Option<&str> {
    if slice.labels().contains_key(MCS_SERVICE_NAME_LABEL) {
        return None;
    }
    slice.service_name()
}

/// Each address of the slice: the Pod (namespace, name) when a `targetRef` names a Pod (once
/// for the endpoint), the address otherwise (as [`crate::kube::endpoints`] reads them).
fn references<'s>(slice: SliceView<'s>, namespace: &'s str) -> impl Iterator<Item = Reference<'s>> {
    slice.endpoints().flat_map(move |e| {
        let pod =
            e.target_pod().map(|(ns, name)| Reference::Pod { namespace: ns.unwrap_or(namespace), name, endpoint: e });
        let addresses = pod.is_none().then(|| e.addresses()).into_iter().flatten();
        pod.into_iter().chain(addresses.map(Reference::Ip))
    })
}

enum Reference<'s> {
    /// A Pod named in a `targetRef`, with its endpoint (whose addresses are only a hint of the
    /// Pod's).
    Pod {
        namespace: &'s str,
        name: &'s str,
        endpoint: EndpointView<'s>,
    },
    Ip(IpKey<'s>),
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
                let home = self.namespaces.entry(r.namespace.clone()).or_default();
                let service = home.slices.get_key_value(service).map_or_else(|| Arc::from(service), |(s, _)| s.clone());
                add(&mut home.slices, &*service, || service.clone(), r.name.clone(), Few::push_new);
                home.service_of.insert(r.name.clone(), service);
                for reference in references(slice, r.namespace) {
                    match reference {
                        Reference::Pod { namespace, name, endpoint } if namespace == &**r.namespace => {
                            let key = || home.pods_by_ip.pod_key(name, endpoint.addresses());
                            add(&mut home.by_pod, name, key, r.name.clone(), Few::push_new);
                        }
                        Reference::Pod { .. } => {}
                        Reference::Ip(ip) => home.by_ip.add(ip, r.name.clone(), Few::push_new),
                    }
                }
                for reference in references(slice, r.namespace) {
                    let Reference::Pod { namespace, name, endpoint } = reference else { continue };
                    if namespace == &**r.namespace {
                        continue;
                    }
                    let ns = self
                        .namespaces
                        .get_key_value(namespace)
                        .map_or_else(|| Arc::from(namespace), |(n, _)| n.clone());
                    let pods = self.namespaces.entry(ns).or_default();
                    let me: Name = (r.namespace.clone(), r.name.clone());
                    let key = || pods.pods_by_ip.pod_key(name, endpoint.addresses());
                    add(&mut pods.by_pod_elsewhere, name, key, me, Few::push_new);
                }
            }
            Part::Pod(pod) => {
                let mut ips = pod.ips().peekable();
                if ips.peek().is_some() {
                    let home = self.namespaces.entry(r.namespace.clone()).or_default();
                    for ip in ips {
                        home.pods_by_ip.add(ip, r.name.clone(), Few::insert_sorted);
                    }
                }
                if let Some(home) = self.namespaces.get_mut(&**r.namespace) {
                    home.share_pod_name(r.name);
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
                if let Some(home) = self.namespaces.get_mut(&**r.namespace) {
                    take(&mut home.slices, service, r.name);
                    home.service_of.remove(&**r.name);
                    for reference in references(slice, r.namespace) {
                        match reference {
                            Reference::Pod { namespace, name, .. } if namespace == &**r.namespace => {
                                take(&mut home.by_pod, name, r.name);
                            }
                            Reference::Pod { .. } => {}
                            Reference::Ip(ip) => home.by_ip.take(ip, r.name),
                        }
                    }
                    self.forget_if_empty(r.namespace);
                }
                for reference in references(slice, r.namespace) {
                    let Reference::Pod { namespace, name, .. } = reference else { continue };
                    if namespace == &**r.namespace {
                        continue;
                    }
                    if let Some(pods) = self.namespaces.get_mut(namespace) {
                        take(&mut pods.by_pod_elsewhere, name, &(r.namespace.clone(), r.name.clone()));
                        self.forget_if_empty(namespace);
                    }
                }
            }
            Part::Pod(pod) => {
                if let Some(home) = self.namespaces.get_mut(&**r.namespace) {
                    for ip in pod.ips() {
                        home.pods_by_ip.take(ip, r.name);
                    }
                    self.forget_if_empty(r.namespace);
                }
            }
            Part::Node(_) => {
                self.nodes.remove(&(r.namespace.clone(), r.name.clone()));
            }
            Part::Other => {}
        }
    }

    /// Drop a namespace the index no longer knows anything of.
    fn forget_if_empty(&mut self, namespace: &str) {
        if self.namespaces.get(namespace).is_some_and(Namespace::is_empty) {
            self.namespaces.remove(namespace);
        }
    }

    /// The Services (namespace, name) whose endpoints this version of a slice or Pod can
    /// change (for a Pod, as the slices in force name it).
    pub(super) fn services_of(&self, r: View<'_>, out: &mut BTreeSet<Name>) {
        match r.spec {
            Part::Slice(slice) => {
                if let Some(service) = slice_service(slice) {
                    let known = self.namespaces.get(&**r.namespace).and_then(|home| home.slices.get_key_value(service));
                    let service = known.map_or_else(|| Arc::from(service), |(s, _)| s.clone());
                    out.insert((r.namespace.clone(), service));
                }
            }
            Part::Pod(pod) => {
                let Some(home) = self.namespaces.get(&**r.namespace) else { return };
                let mut note = |namespace: &Arc<str>, slices: &Namespace, slice: &str| {
                    if let Some(service) = slices.service_of.get(slice) {
                        out.insert((namespace.clone(), service.clone()));
                    }
                };
                let by_name = home.by_pod.get(&**r.name).map_or(&[][..], Few::as_slice);
                let by_ip = pod.ips().flat_map(|ip| home.by_ip.get(ip));
                for slice in by_name.iter().chain(by_ip) {
                    note(r.namespace, home, slice);
                }
                for (namespace, slice) in home.by_pod_elsewhere.get(&**r.name).map_or(&[][..], Few::as_slice) {
                    if let Some(slices) = self.namespaces.get(&**namespace) {
                        note(namespace, slices, slice);
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
    ) -> (Vec<SliceView<'r>>, Vec<PodView<'r>>, Vec<&'r Node>) {
        let id = |kind: &Arc<str>, namespace: &Arc<str>, name: &Arc<str>| ResourceRef {
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let pod = |namespace: &Arc<str>, name: &Arc<str>| match get(&id(&self.kinds.pod, namespace, name)) {
            Some(View { spec: Part::Pod(pod), .. }) => Some(pod),
            _ => None,
        };
        let mut slices = Vec::new();
        let mut pods = Vec::new();
        let home = self.namespaces.get(&*service.0);
        let names = home.and_then(|home| home.slices.get(&*service.1)).map_or(&[][..], Few::as_slice);
        for name in names {
            let Some(Part::Slice(slice)) = get(&id(&self.kinds.slice, &service.0, name)).map(|r| r.spec) else {
                continue;
            };
            slices.push(slice);
            for reference in references(slice, &service.0) {
                match reference {
                    Reference::Pod { namespace, name, .. } => {
                        let (namespace, name) = self.pod_name(namespace, name);
                        pods.extend(pod(&namespace, &name));
                    }
                    Reference::Ip(ip) => {
                        let names = home.map_or(&[][..], |home| home.pods_by_ip.get(ip));
                        pods.extend(names.iter().filter_map(|name| pod(&service.0, name)));
                    }
                }
            }
        }
        // The Nodes those Pods run on (what locality reads), each once.
        // (Nodes are cluster-scoped: every one's namespace is the same, empty, text.)
        let mut nodes: Vec<&'r Node> = Vec::new();
        if let Some((cluster, _)) = self.nodes.first() {
            let mut seen: Vec<&Arc<str>> = Vec::new();
            for name in pods.iter().filter_map(|p| p.node_arc()) {
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                if let Some(Part::Node(node)) = get(&id(&self.kinds.node, cluster, name)).map(|r| r.spec) {
                    nodes.push(node);
                }
            }
        }
        (slices, pods, nodes)
    }

    /// The Pod `(namespace, name)` a `targetRef` names, in the index's own names (new ones when
    /// the index has none: a slice read from the store that is not the indexed version).
    fn pod_name(&self, namespace: &str, name: &str) -> Name {
        let Some((ns, pods)) = self.namespaces.get_key_value(namespace) else {
            return (Arc::from(namespace), Arc::from(name));
        };
        let key = (pods.by_pod.get_key_value(name).map(|(k, _)| k))
            .or_else(|| pods.by_pod_elsewhere.get_key_value(name).map(|(k, _)| k));
        (ns.clone(), key.map_or_else(|| Arc::from(name), Arc::clone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_str};

    fn objects(text: &str) -> Vec<Resource> {
        load_str(text, None, &LoadOptions::default()).expect("yaml").resources
    }

    fn pod(namespace: &str, name: &str, ips: &[&str]) -> String {
        let ips: Vec<String> = ips.iter().map(|ip| format!("{{ip: \"{ip}\"}}")).collect();
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\nstatus: {{podIPs: [{}]}}\n",
            ips.join(", ")
        )
    }

    /// A slice with these labels and endpoints (`{addresses: [...], targetRef: ...}`).
    fn slice(namespace: &str, name: &str, labels: &str, endpoints: &[&str]) -> String {
        format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}\nports: [{{name: http, port: 80}}]\nendpoints: [{}]\n",
            endpoints.join(", ")
        )
    }

    fn name(namespace: &str, name: &str) -> Name {
        (Arc::from(namespace), Arc::from(name))
    }

    fn find<'r>(all: &'r [Resource], kind: Kind, namespace: &str, name: &str) -> View<'r> {
        let found = all.iter().find(|r| r.kind == kind && &*r.namespace == namespace && &*r.name == name);
        View::of(found.expect("object"))
    }

    fn services(index: &KubeIndex, r: View<'_>) -> Vec<Name> {
        let mut out = BTreeSet::new();
        index.services_of(r, &mut out);
        out.into_iter().collect()
    }

    /// The names of the slices, Pods (namespace/name) and Nodes `parts` gives for `service`.
    fn parts(index: &KubeIndex, all: &[Resource], service: &Name) -> (Vec<String>, Vec<String>, usize) {
        let get = |id: &ResourceRef| all.iter().find(|r| r.id() == *id).map(View::of);
        let (slices, pods, nodes) = index.parts(service, get);
        let slices = slices.iter().map(|s| s.name().to_string()).collect();
        let pods = pods.iter().map(|p| format!("{}/{}", p.namespace(), p.name())).collect();
        (slices, pods, nodes.len())
    }

    /// Take every object out again: nothing is left behind.
    fn remove_all(mut index: KubeIndex, all: &[Resource]) {
        for r in all {
            index.remove(View::of(r));
        }
        assert!(index.namespaces.is_empty(), "{:?}", index.namespaces);
        assert!(index.nodes.is_empty());
    }

    #[test]
    fn a_pod_of_another_namespace_named_in_a_target_ref() {
        let text = [
            slice(
                "a",
                "s",
                "kubernetes.io/service-name: svc",
                &["{addresses: [10.0.0.1], targetRef: {kind: Pod, name: p, namespace: b}}"],
            ),
            pod("b", "p", &["10.0.0.1"]),
            pod("a", "p", &["10.0.0.1"]),
        ]
        .concat();
        let all = objects(&text);
        let index = KubeIndex::new(&all);
        assert_eq!(services(&index, find(&all, Kind::Pod, "b", "p")), [name("a", "svc")]);
        assert_eq!(services(&index, find(&all, Kind::Pod, "a", "p")), [], "the namesake in the slice's namespace");
        assert_eq!(parts(&index, &all, &name("a", "svc")), (vec!["s".into()], vec!["b/p".into()], 0));
        let mut gone = index.clone();
        gone.remove(find(&all, Kind::EndpointSlice, "a", "s"));
        assert_eq!(services(&gone, find(&all, Kind::Pod, "b", "p")), []);
        remove_all(index, &all);
    }

    #[test]
    fn an_address_without_a_target_ref_names_the_pods_with_that_ip_text() {
        let text = [
            slice(
                "a",
                "s",
                "kubernetes.io/service-name: svc",
                &["{addresses: [10.0.0.1]}", "{addresses: [\"0::1\"], targetRef: {kind: Node, name: n}}"],
            ),
            pod("a", "q", &["10.0.0.1"]),
            pod("a", "p", &["10.0.0.1", "fd00::1"]),
            pod("a", "v6", &["::1"]),
            pod("a", "v6-long", &["0::1"]),
            pod("b", "elsewhere", &["10.0.0.1"]),
        ]
        .concat();
        let all = objects(&text);
        let index = KubeIndex::new(&all);
        for p in ["p", "q", "v6-long"] {
            assert_eq!(services(&index, find(&all, Kind::Pod, "a", p)), [name("a", "svc")], "{p}");
        }
        assert_eq!(services(&index, find(&all, Kind::Pod, "a", "v6")), [], "`::1` is not the text `0::1`");
        assert_eq!(services(&index, find(&all, Kind::Pod, "b", "elsewhere")), []);
        let pods = ["a/p", "a/q", "a/v6-long"].map(String::from).to_vec();
        assert_eq!(parts(&index, &all, &name("a", "svc")), (vec!["s".into()], pods, 0));
        let mut one_less = index.clone();
        one_less.remove(find(&all, Kind::Pod, "a", "p"));
        let pods = ["a/q", "a/v6-long"].map(String::from).to_vec();
        assert_eq!(parts(&one_less, &all, &name("a", "svc")).1, pods);
        remove_all(index, &all);
    }

    #[test]
    fn slices_of_other_clusters_are_not_indexed_and_nodes_are() {
        let text = [
            slice(
                "a",
                "mcs",
                "kubernetes.io/service-name: svc, multicluster.kubernetes.io/service-name: svc",
                &["{addresses: [10.0.0.1], targetRef: {kind: Pod, name: p}}"],
            ),
            slice("a", "s1", "kubernetes.io/service-name: svc", &[]),
            slice("a", "s2", "kubernetes.io/service-name: svc", &["{addresses: [10.0.0.2], targetRef: {kind: Pod, name: q}}"]),
            pod("a", "p", &["10.0.0.1"]),
            "---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: a}\nspec: {nodeName: n2}\nstatus: {podIP: 10.0.0.2}\n".to_string(),
            "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n".to_string(),
            "---\napiVersion: v1\nkind: Node\nmetadata: {name: n2}\n".to_string(),
        ]
        .concat();
        let all = objects(&text);
        let index = KubeIndex::new(&all);
        assert_eq!(services(&index, find(&all, Kind::EndpointSlice, "a", "mcs")), []);
        assert_eq!(services(&index, find(&all, Kind::EndpointSlice, "a", "s1")), [name("a", "svc")]);
        assert_eq!(services(&index, find(&all, Kind::Pod, "a", "p")), []);
        // The Node its Pod runs on (what locality reads), not every Node.
        assert_eq!(parts(&index, &all, &name("a", "svc")), (vec!["s1".into(), "s2".into()], vec!["a/q".into()], 1));
        let mut one_less = index.clone();
        one_less.remove(find(&all, Kind::EndpointSlice, "a", "s1"));
        assert_eq!(parts(&one_less, &all, &name("a", "svc")).0, ["s2"]);
        remove_all(index, &all);
    }

    #[test]
    fn a_target_ref_keeps_the_pods_own_name_in_either_order() {
        let slice = slice(
            "a",
            "s",
            "kubernetes.io/service-name: svc",
            &["{addresses: [10.0.0.1], targetRef: {kind: Pod, name: p}}"],
        );
        let pod = pod("a", "p", &["10.0.0.1"]);
        for text in [[&slice, &pod].map(String::as_str).concat(), [&pod, &slice].map(String::as_str).concat()] {
            let all = objects(&text);
            let index = KubeIndex::new(&all);
            let (key, _) = index.namespaces["a"].by_pod.get_key_value("p").expect("indexed");
            assert!(Arc::ptr_eq(key, find(&all, Kind::Pod, "a", "p").name));
            assert_eq!(parts(&index, &all, &name("a", "svc")).1, ["a/p"]);
            remove_all(index, &all);
        }
    }

    #[test]
    fn ips_are_keyed_by_bits_only_when_they_print_as_written() {
        for (text, bits) in [("10.0.0.1", true), ("::1", true), ("fe80::1", true), ("0::1", false), ("FE80::1", false)]
        {
            assert_eq!(!matches!(IpKey::of(text), IpKey::Text(_)), bits, "{text}");
        }
    }
}
