//! Kubernetes objects as the store and [`Sources`](super::Sources) keep them: a
//! [`Resource`] is as large as its largest kind (well over a kilobyte, the Istio kinds inline)
//! and holds a Kubernetes object's labels and annotations twice (beside the spec, and in the
//! spec's `metadata`). A [`KubeObject`] keeps the identity and the typed object once, boxed at
//! its own size; [`KubeObject::resource`] gives back the very [`Resource`] it was made from.
//! Kept behind an `Arc`, one copy serves the sources and the store.
//!
//! Pods are most of a cluster's objects (100,000 for 10,000 Services of 10 endpoints), and an
//! API server's Pod, as mesh-kube strips it, is a name, a namespace, labels, a node, a service
//! account and one IP. Such a Pod is kept inline as a [`CompactPod`]: no box, the IP as an
//! address rather than text, nothing that every other object of its kind says (its kind,
//! `apiVersion: v1`, no file, line 1, no tree). Any other object, and a Pod the compact form
//! would not give back exactly, is kept whole, with its file, line and tree (which objects read
//! from an API server do not have) in one box of their own.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use crate::diag::ResourceRef;
use crate::types::kube::{CompactPod, EndpointSlice, Labels, Name, Namespace, Node, Pod, PodView, Secret, Service};
use crate::types::{Kind, Resource, Spec};
use crate::yaml::Node as Tree;

/// The line of every object read from an API server: `load_json` reads an object as its one
/// line of JSON.
const API_LINE: u32 = 1;

/// The `apiVersion` of a Pod.
const POD_API_VERSION: &str = "v1";

/// `v1`, shared by the Pods [`KubeObject::resource`] gives back.
static V1: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(POD_API_VERSION));

/// The typed object of a Kubernetes kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KubeSpec {
    Service(Box<Service>),
    Pod(Box<Pod>),
    EndpointSlice(Box<EndpointSlice>),
    Node(Box<Node>),
    Namespace(Box<Namespace>),
    Secret(Box<Secret>),
}

/// A Kubernetes object, compact (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KubeObject(Form);

/// How a [`KubeObject`] is kept.
#[derive(Debug, Clone, PartialEq)]
enum Form {
    /// A Pod of kind `Pod`, `apiVersion: v1`, no file, line [`API_LINE`], no tree, whose
    /// compact form gives it back exactly.
    Pod(CompactPod),
    /// Any other object.
    Whole(Whole),
}

/// A [`KubeObject`] kept whole.
#[derive(Debug, Clone, PartialEq)]
struct Whole {
    kind: Kind,
    api_version: Arc<str>,
    name: Arc<str>,
    namespace: Arc<str>,
    spec: KubeSpec,
    /// `None` for an object with no file, on line [`API_LINE`], without a tree (every object
    /// read from an API server).
    place: Option<Box<Place>>,
}

/// Where an object was read from (file and line) and its positioned tree: what an object read
/// from a file has, and an object read from an API server does not.
#[derive(Debug, Clone, PartialEq)]
struct Place {
    file: Option<Arc<str>>,
    line: u32,
    spec_node: Option<Arc<Tree>>,
}

impl KubeObject {
    /// The compact form of `r`, or `r` back when it is not a Kubernetes object whose labels and
    /// annotations are those of its metadata (as the loader makes every one).
    pub(crate) fn new(r: Resource) -> Result<KubeObject, Box<Resource>> {
        let plain = r.creation_timestamp.is_none()
            && r.generation.is_none()
            && r.spec.kube_metadata().is_some_and(|m| m.labels == r.labels && m.annotations == r.annotations);
        if !plain {
            return Err(Box::new(r));
        }
        if let Spec::Pod(pod) = &r.spec
            && r.kind == Kind::Pod
            && *r.api_version == *POD_API_VERSION
            && r.file.is_none()
            && r.line == API_LINE
            && r.spec_node.is_none()
            && let Some(compact) = CompactPod::new(&r.name, &r.namespace, pod)
        {
            return Ok(KubeObject(Form::Pod(compact)));
        }
        let spec = match r.spec {
            Spec::Service(s) => KubeSpec::Service(Box::new(s)),
            Spec::Pod(p) => KubeSpec::Pod(Box::new(p)),
            Spec::EndpointSlice(s) => KubeSpec::EndpointSlice(Box::new(s)),
            Spec::Node(n) => KubeSpec::Node(Box::new(n)),
            Spec::Namespace(n) => KubeSpec::Namespace(Box::new(n)),
            Spec::Secret(s) => KubeSpec::Secret(Box::new(s)),
            spec => return Err(Box::new(Resource { spec, ..r })),
        };
        let usual = r.file.is_none() && r.line == API_LINE && r.spec_node.is_none();
        let place = (!usual).then(|| Box::new(Place { file: r.file, line: r.line, spec_node: r.spec_node }));
        Ok(KubeObject(Form::Whole(Whole {
            kind: r.kind,
            api_version: r.api_version,
            name: r.name,
            namespace: r.namespace,
            spec,
            place,
        })))
    }

    /// Share what this object spells as others do: its namespace and name as `key` holds them
    /// (when they are the same text), its apiVersion, a Pod's labels, node and service account,
    /// and a slice's `targetRef` kinds and namespaces through `shared`.
    pub(crate) fn share(&mut self, key: &ResourceRef, shared: &mut Sharing) {
        let (name, namespace) = match &mut self.0 {
            Form::Pod(pod) => (&mut pod.name, &mut pod.namespace),
            Form::Whole(w) => (&mut w.name, &mut w.namespace),
        };
        if *name == key.name {
            *name = key.name.clone();
        }
        if *namespace == key.namespace {
            *namespace = key.namespace.clone();
        }
        let w = match &mut self.0 {
            Form::Pod(pod) => {
                share_pod(&mut pod.labels, [&mut pod.node_name, &mut pod.service_account_name], shared);
                return;
            }
            Form::Whole(w) => w,
        };
        shared.names.share(&mut w.api_version);
        let metadata = match &mut w.spec {
            KubeSpec::Service(o) => &mut o.metadata,
            KubeSpec::Pod(o) => &mut o.metadata,
            KubeSpec::EndpointSlice(o) => &mut o.metadata,
            KubeSpec::Node(o) => &mut o.metadata,
            KubeSpec::Namespace(o) => &mut o.metadata,
            KubeSpec::Secret(o) => &mut o.metadata,
        };
        if *metadata.name == *w.name {
            metadata.name = Name::from(w.name.clone());
        }
        if *metadata.namespace == *w.namespace {
            metadata.namespace = Name::from(w.namespace.clone());
        }
        match &mut w.spec {
            KubeSpec::Pod(pod) => {
                let names = [&mut pod.spec.node_name, &mut pod.spec.service_account_name];
                share_pod(&mut pod.metadata.labels, names, shared);
            }
            KubeSpec::EndpointSlice(slice) => {
                for target in slice.endpoints.iter_mut().filter_map(|e| e.target_ref.as_mut()) {
                    for name in [&mut target.kind, &mut target.namespace].into_iter().flatten() {
                        shared.names.share(name.arc_mut());
                    }
                }
            }
            _ => {}
        }
    }

    /// The resource this was made from.
    pub(crate) fn resource(&self) -> Resource {
        let w = match &self.0 {
            Form::Pod(pod) => {
                return Resource {
                    kind: Kind::Pod,
                    api_version: V1.clone(),
                    name: pod.name.clone(),
                    namespace: pod.namespace.clone(),
                    labels: pod.labels.to_map(),
                    annotations: Default::default(),
                    creation_timestamp: None,
                    generation: None,
                    file: None,
                    line: API_LINE,
                    spec: Spec::Pod(pod.to_pod()),
                    spec_node: None,
                };
            }
            Form::Whole(w) => w,
        };
        let spec = match &w.spec {
            KubeSpec::Service(s) => Spec::Service((**s).clone()),
            KubeSpec::Pod(p) => Spec::Pod((**p).clone()),
            KubeSpec::EndpointSlice(s) => Spec::EndpointSlice((**s).clone()),
            KubeSpec::Node(n) => Spec::Node((**n).clone()),
            KubeSpec::Namespace(n) => Spec::Namespace((**n).clone()),
            KubeSpec::Secret(s) => Spec::Secret((**s).clone()),
        };
        let (labels, annotations) =
            spec.kube_metadata().map(|m| (m.labels.to_map(), m.annotations.to_map())).unwrap_or_default();
        Resource {
            kind: w.kind,
            api_version: w.api_version.clone(),
            name: w.name.clone(),
            namespace: w.namespace.clone(),
            labels,
            annotations,
            creation_timestamp: None,
            generation: None,
            file: self.place().and_then(|p| p.file.clone()),
            line: self.line(),
            spec,
            spec_node: self.spec_node().cloned(),
        }
    }

    /// The place this object was read from, when it was a file's.
    fn place(&self) -> Option<&Place> {
        match &self.0 {
            Form::Whole(w) => w.place.as_deref(),
            Form::Pod(_) => None,
        }
    }

    /// The file it was read from.
    pub(crate) fn file(&self) -> Option<&str> {
        self.place()?.file.as_deref()
    }

    fn line(&self) -> u32 {
        self.place().map_or(API_LINE, |p| p.line)
    }

    fn spec_node(&self) -> Option<&Arc<Tree>> {
        self.place()?.spec_node.as_ref()
    }

    /// Is `r` this object, as `Resource`'s `==` says?
    pub(crate) fn same_as(&self, r: &Resource) -> bool {
        let same = match &self.0 {
            Form::Pod(pod) => {
                matches!(&r.spec, Spec::Pod(b) if pod.is(b))
                    && r.kind == Kind::Pod
                    && *r.api_version == *POD_API_VERSION
                    && r.name == pod.name
                    && r.namespace == pod.namespace
            }
            Form::Whole(w) => {
                let spec = match (&w.spec, &r.spec) {
                    (KubeSpec::Service(a), Spec::Service(b)) => **a == *b,
                    (KubeSpec::Pod(a), Spec::Pod(b)) => **a == *b,
                    (KubeSpec::EndpointSlice(a), Spec::EndpointSlice(b)) => **a == *b,
                    (KubeSpec::Node(a), Spec::Node(b)) => **a == *b,
                    (KubeSpec::Namespace(a), Spec::Namespace(b)) => **a == *b,
                    (KubeSpec::Secret(a), Spec::Secret(b)) => **a == *b,
                    _ => false,
                };
                spec && w.kind == r.kind
                    && w.api_version == r.api_version
                    && w.name == r.name
                    && w.namespace == r.namespace
            }
        };
        same && r.spec.kube_metadata().is_some_and(|m| m.labels == r.labels && m.annotations == r.annotations)
    }

    /// Is `r` this object down to what validation reads and reports (file, line, the tree)?
    pub(crate) fn unchanged(&self, r: &Resource) -> bool {
        self.file() == r.file.as_deref()
            && self.line() == r.line
            && r.creation_timestamp.is_none()
            && r.generation.is_none()
            && match (self.spec_node(), &r.spec_node) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (None, None) => true,
                // Its tree was let go: its messages name no line (`strip_lines`).
                (None, Some(_)) => self.file().is_none(),
                _ => false,
            }
            && self.same_as(r)
    }

    /// Its kind.
    pub(crate) fn kind(&self) -> Kind {
        match &self.0 {
            Form::Pod(_) => Kind::Pod,
            Form::Whole(w) => w.kind,
        }
    }

    /// `metadata.name`.
    pub(crate) fn name(&self) -> &Arc<str> {
        match &self.0 {
            Form::Pod(pod) => &pod.name,
            Form::Whole(w) => &w.name,
        }
    }

    /// `metadata.namespace`.
    pub(crate) fn namespace(&self) -> &Arc<str> {
        match &self.0 {
            Form::Pod(pod) => &pod.namespace,
            Form::Whole(w) => &w.namespace,
        }
    }

    /// What the endpoint index reads.
    pub(crate) fn view(&self) -> View<'_> {
        let w = match &self.0 {
            Form::Pod(pod) => {
                return View {
                    kind: Kind::Pod,
                    namespace: &pod.namespace,
                    name: &pod.name,
                    spec: Part::Pod(pod.view()),
                };
            }
            Form::Whole(w) => w,
        };
        let spec = match &w.spec {
            KubeSpec::EndpointSlice(s) => Part::Slice(s),
            KubeSpec::Pod(p) => Part::Pod(PodView::from(&**p)),
            KubeSpec::Node(n) => Part::Node(n),
            _ => Part::Other,
        };
        View { kind: w.kind, namespace: &w.namespace, name: &w.name, spec }
    }

    /// The Pod, when this is one.
    #[cfg(test)]
    pub(crate) fn pod(&self) -> Option<PodView<'_>> {
        match self.view().spec {
            Part::Pod(pod) => Some(pod),
            _ => None,
        }
    }
}

/// Share a Pod's labels (a workload's Pods carry the same) and its node and service account
/// (a cluster has few nodes and service accounts, and many Pods) through `shared`.
fn share_pod(labels: &mut Labels, names: [&mut Option<Name>; 2], shared: &mut Sharing) {
    if !labels.is_empty() {
        shared.labels.share(labels);
    }
    for name in names.into_iter().flatten() {
        shared.names.share(name.arc_mut());
    }
}

/// One shared copy of each distinct value (a Pod label set, a namespace's name) that objects
/// hold. The values no object holds any more are let go when the count has doubled since the
/// last sweep, so it holds at most about twice the values in use, and each sweep is paid for by
/// the insertions before it.
#[derive(Debug, Clone)]
pub(crate) struct Shared<T> {
    values: HashSet<T>,
    sweep_at: usize,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared { values: HashSet::new(), sweep_at: 0 }
    }
}

/// A value [`Shared`] keeps: cheap to clone, and able to say when no one else holds it.
pub(crate) trait Sharable: Clone + Eq + std::hash::Hash {
    /// Is this the only handle on the value?
    fn is_only_copy(&self) -> bool;
}

impl Sharable for Labels {
    fn is_only_copy(&self) -> bool {
        Labels::is_only_copy(self)
    }
}

impl Sharable for Arc<str> {
    fn is_only_copy(&self) -> bool {
        Arc::strong_count(self) == 1
    }
}

impl<T: Sharable> Shared<T> {
    /// Make `value` the shared copy of its value (the first of its kind becomes that copy).
    pub(crate) fn share(&mut self, value: &mut T) {
        if let Some(shared) = self.values.get(value) {
            *value = shared.clone();
            return;
        }
        if self.values.len() >= self.sweep_at {
            self.values.retain(|v| !v.is_only_copy());
            self.sweep_at = (self.values.len() * 2).max(64);
        }
        self.values.insert(value.clone());
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// What [`KubeObject::share`] shares objects' values through.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sharing {
    /// Pod label sets.
    pub(crate) labels: Shared<Labels>,
    /// Kinds, namespaces, apiVersions, a Pod's node and service account, a `targetRef`'s kind
    /// and namespace.
    pub(crate) names: Shared<Arc<str>>,
}

/// A Kubernetes object's identity and the part the endpoint index reads, from a [`Resource`] or
/// a [`KubeObject`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) kind: Kind,
    pub(crate) namespace: &'a Arc<str>,
    pub(crate) name: &'a Arc<str>,
    pub(crate) spec: Part<'a>,
}

/// See [`View`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    Slice(&'a EndpointSlice),
    Pod(PodView<'a>),
    Node(&'a Node),
    Other,
}

impl<'a> View<'a> {
    /// The view of a resource.
    pub(crate) fn of(r: &'a Resource) -> View<'a> {
        let spec = match &r.spec {
            Spec::EndpointSlice(s) => Part::Slice(s),
            Spec::Pod(p) => Part::Pod(PodView::from(p)),
            Spec::Node(n) => Part::Node(n),
            _ => Part::Other,
        };
        View { kind: r.kind, namespace: &r.namespace, name: &r.name, spec }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_json, load_str};
    use crate::types::kube::IpKey;

    /// A Pod as an API server gives it (through `load_json`, its tree let go as the store and
    /// the sources let it go).
    fn api_pod(metadata: serde_json::Value, status: serde_json::Value) -> Resource {
        let value = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"nodeName": "node-1", "serviceAccountName": "reviews"}, "status": status,
        });
        let mut r = load_json(value, &LoadOptions::default()).resources.pop().expect("a Pod");
        crate::store::strip_lines(&mut r);
        r
    }

    fn meta() -> serde_json::Value {
        serde_json::json!({"name": "p", "namespace": "x", "labels": {"app": "reviews", "version": "v1"}})
    }

    fn is_compact(o: &KubeObject) -> bool {
        matches!(o.0, Form::Pod(_))
    }

    /// `r` kept, and what that gives back: the very same resource, equal to and unchanged from
    /// `r`, read as `r` is.
    fn keep(r: &Resource) -> KubeObject {
        let o = KubeObject::new(r.clone()).expect("a Kubernetes object");
        let back = o.resource();
        assert_eq!(back, *r);
        assert_eq!(*back.api_version, *r.api_version);
        assert_eq!((&back.file, back.line, &back.spec_node), (&r.file, r.line, &r.spec_node));
        assert!(o.same_as(r) && o.unchanged(r), "{r:?}");
        assert_eq!(o.file(), r.file.as_deref());
        assert_eq!(KubeObject::new(back).expect("again"), o);
        let (mine, theirs) = (o.view(), View::of(r));
        assert_eq!((mine.kind, mine.namespace, mine.name), (theirs.kind, theirs.namespace, theirs.name));
        if let (Part::Pod(a), Part::Pod(b)) = (mine.spec, theirs.spec) {
            assert_eq!((a.name(), a.namespace(), a.labels()), (b.name(), b.namespace(), b.labels()));
            assert_eq!((a.node_name(), a.service_account()), (b.node_name(), b.service_account()));
            assert!(a.ips().eq(b.ips()));
        }
        o
    }

    #[test]
    fn a_pod_of_one_ip_from_an_api_server_is_compact_and_given_back_exactly() {
        let statuses = [
            serde_json::json!({"podIP": "10.0.0.1"}),
            serde_json::json!({"podIP": "fd00::1"}),
            serde_json::json!({"podIP": "::ffff:10.0.0.1"}),
            serde_json::json!({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}),
            serde_json::json!({"podIPs": [{"ip": "fd00::1"}]}),
            serde_json::json!({}),
        ];
        for status in statuses {
            let r = api_pod(meta(), status.clone());
            assert!(is_compact(&keep(&r)), "{status}");
        }
        let o = keep(&api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"})));
        let ips: Vec<IpKey<'_>> = o.pod().expect("a Pod").ips().collect();
        assert_eq!(ips, [IpKey::Addr([10, 0, 0, 1].into())]);
    }

    #[test]
    fn other_pods_are_kept_whole_and_given_back_exactly() {
        let whole = |r: &Resource, why: &str| assert!(!is_compact(&keep(r)), "{why}");
        let two = serde_json::json!({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]});
        whole(&api_pod(meta(), two), "two IPs");
        let other = serde_json::json!({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.2"}]});
        whole(&api_pod(meta(), other), "podIPs is not podIP");
        for odd in ["010.0.0.1", "0::1", "FD00::1", "", "pending"] {
            whole(&api_pod(meta(), serde_json::json!({"podIP": odd})), odd);
            whole(&api_pod(meta(), serde_json::json!({"podIPs": [{"ip": odd}]})), odd);
        }
        let annotated = serde_json::json!({"name": "p", "namespace": "x", "annotations": {"a": "b"}});
        whole(&api_pod(annotated, serde_json::json!({"podIP": "10.0.0.1"})), "annotations");
        let mut renamed = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
        renamed.name = Arc::from("q");
        whole(&renamed, "metadata names another object");
        let mut beta = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
        beta.api_version = Arc::from("v1beta1");
        whole(&beta, "another apiVersion");
        let mut placed = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
        placed.line = 7;
        whole(&placed, "another line");
    }

    #[test]
    fn an_object_of_a_file_keeps_its_file_line_and_tree() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n";
        let loaded = load_str(text, Some("pods.yaml"), &LoadOptions::default()).expect("yaml").resources;
        assert_eq!(loaded.len(), 2);
        for r in &loaded {
            assert!(r.file.is_some() && r.spec_node.is_some());
            assert!(!is_compact(&keep(r)), "{}", r.kind);
        }
        assert_eq!(loaded[1].line, 6);
        let mut moved = loaded[1].clone();
        moved.line = 9;
        let o = KubeObject::new(loaded[1].clone()).expect("a Pod");
        assert!(o.same_as(&moved) && !o.unchanged(&moved));
    }

    #[test]
    fn a_changed_pod_is_not_the_same() {
        let r = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
        let o = keep(&r);
        let mut other = [r.clone(), r.clone(), r.clone(), r.clone(), r.clone()];
        let Spec::Pod(p) = &mut other[0].spec else { panic!("a Pod") };
        p.status.pod_ip = Some("10.0.0.2".into());
        let Spec::Pod(p) = &mut other[1].spec else { panic!("a Pod") };
        p.status.pod_ips = vec![crate::types::kube::PodIp { ip: "10.0.0.1".into() }];
        let Spec::Pod(p) = &mut other[2].spec else { panic!("a Pod") };
        p.spec.node_name = None;
        other[3].api_version = Arc::from("v2");
        other[4].namespace = Arc::from("y");
        for r in &other {
            assert!(!o.same_as(r), "{r:?}");
        }
    }

    #[test]
    fn shared_parts_stay_the_same_resource() {
        let mut sharing = Sharing::default();
        let r = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
        let mut objects: Vec<KubeObject> = (0..2).map(|_| keep(&r)).collect();
        let key = r.id();
        for o in &mut objects {
            o.share(&key, &mut sharing);
            assert_eq!(o.resource(), r);
        }
        let [a, b] = [&objects[0], &objects[1]].map(|o| o.pod().expect("a Pod"));
        assert!(a.labels().ptr_eq(b.labels()));
        assert!(Arc::ptr_eq(a.name_arc(), &key.name) && Arc::ptr_eq(a.namespace_arc(), &key.namespace));
        assert!(std::ptr::eq(a.node_name().expect("node"), b.node_name().expect("node")));
    }

    #[test]
    fn compact_pods_give_the_endpoints_their_resources_give() {
        let objects = serde_json::json!([
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "x"},
             "spec": {"ports": [{"name": "http", "port": 80}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": "s", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
             "ports": [{"name": "http", "port": 8080}],
             "endpoints": [{"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "p", "namespace": "x"}},
                           {"addresses": ["10.0.0.2"]}, {"addresses": ["fd00::3"]}, {"addresses": ["010.0.0.4"]}]},
            {"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}},
        ]);
        let serde_json::Value::Array(objects) = objects else { panic!("a list") };
        let mut resources: Vec<Resource> =
            objects.into_iter().flat_map(|o| load_json(o, &LoadOptions::default()).resources).collect();
        for (name, ip) in [("p", "10.0.0.1"), ("q", "10.0.0.2"), ("v6", "fd00::3"), ("odd", "010.0.0.4")] {
            let metadata = serde_json::json!({"name": name, "namespace": "x", "labels": {"app": name}});
            resources.push(api_pod(metadata, serde_json::json!({"podIP": ip})));
        }
        let kept: Vec<KubeObject> = resources.iter().map(keep).collect();
        assert_eq!(kept.iter().filter(|o| is_compact(o)).count(), 3);
        let Some(Spec::Service(service)) = resources.first().map(|r| &r.spec) else { panic!("a Service") };
        let views: Vec<View<'_>> = kept.iter().map(KubeObject::view).collect();
        let slices = views.iter().filter_map(|v| if let Part::Slice(s) = v.spec { Some(s) } else { None });
        let pods = views.iter().filter_map(|v| if let Part::Pod(p) = v.spec { Some(p) } else { None });
        let nodes = views.iter().filter_map(|v| if let Part::Node(n) = v.spec { Some(n) } else { None });
        let mine = crate::kube::endpoints(service, &crate::kube::Index::new(slices, pods, nodes));
        let theirs = crate::kube::endpoints(service, &crate::kube::Index::from_resources(&resources));
        assert_eq!(mine, theirs);
        let described: Vec<String> =
            mine.iter().map(|e| format!("{} {:?} {:?}", e.address, e.pod, e.locality)).collect();
        assert_eq!(
            described,
            [
                "10.0.0.1 Some(\"x/p\") Some(\"r/z/\")",
                "10.0.0.2 Some(\"x/q\") Some(\"r/z/\")",
                "fd00::3 Some(\"x/v6\") Some(\"r/z/\")",
                "010.0.0.4 Some(\"x/odd\") Some(\"r/z/\")",
            ]
        );
    }

    /// An API server's Pod is its `KubeObject` alone: 104 bytes, no other block (before: 96
    /// bytes, plus a 144-byte boxed `Pod` and its IP's text).
    #[test]
    fn a_kube_object_is_small() {
        assert!(std::mem::size_of::<KubeObject>() <= 104, "{}", std::mem::size_of::<KubeObject>());
    }
}
