//! Kubernetes objects as the store and [`Sources`](super::Sources) keep them: a
//! [`Resource`] is as large as its largest kind (well over a kilobyte, the Istio kinds inline)
//! and holds a Kubernetes object's labels and annotations twice (beside the spec, and in the
//! spec's `metadata`). A [`KubeObject`] keeps the identity and the typed object once, boxed at
//! its own size; [`KubeObject::resource`] gives back the very [`Resource`] it was made from.
//! Kept behind an `Arc`, one copy serves the sources and the store.
//!
//! Pods are most of a cluster's objects (100,000 for 10,000 Services of 10 endpoints), and an
//! API server's Pod, as mesh-kube strips it, is a name, a namespace, labels, a node, a service
//! account and one IP. Such a Pod is kept inline as a [`CompactPod`] of 56 bytes: its name, its
//! node (a shared name), its namespace, service account and labels in one [`PodPlace`] that Pods
//! of the same namespace, service account and labels (the replicas of one workload, on whatever
//! nodes they run) share, the IP as an address rather than text (an IPv6 one in a box of its
//! own), and nothing that every other object of its kind says (its kind, `apiVersion: v1`, no
//! file, line 1, no tree). [`KubeObject::new_shared`] looks a Pod's place up before making one:
//! a Pod whose place is shared already allocates none.
//!
//! The EndpointSlices of those Services list as many endpoints, and an API server's slice, as
//! mesh-kube strips it, is a name, a namespace, labels, an address type, ports, and endpoints of
//! one address, conditions and a Pod `targetRef` each. Such a slice is kept inline as a
//! [`CompactSlice`] of 56 bytes: its endpoints in one block of 40 bytes each (the address as an
//! address, the conditions in one byte, the Pod's name the one block of an endpoint's own), its
//! namespace, address type, ports and node names in one [`SliceShape`] that slices of the same
//! namespace and ports share, and nothing that every other object of its kind says (its kind,
//! `apiVersion: discovery.k8s.io/v1`, no file, line 1, no tree).
//!
//! Any other object, and a Pod or slice the compact form would not give back exactly, is kept
//! whole, boxed (so that the rare whole form does not size every object: a [`KubeObject`] is 64
//! bytes), with its file, line and tree (which objects read from an API server do not have) in
//! a second box of their own.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use crate::diag::ResourceRef;
use crate::types::kube::{
    CompactPod, CompactSlice, DISCOVERY_V1, EndpointSlice, Labels, Name, Namespace, Node, Pod, PodPlace, PodView,
    Secret, Service, SliceShape, SliceView,
};
use crate::types::{Kind, Resource, Spec};
use crate::yaml::Node as Tree;

/// The line of every object read from an API server: `load_json` reads an object as its one
/// line of JSON.
const API_LINE: u32 = 1;

/// The `apiVersion` of a Pod.
const POD_API_VERSION: &str = "v1";

/// `v1`, shared by the Pods [`KubeObject::resource`] gives back.
static V1: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(POD_API_VERSION));

/// `discovery.k8s.io/v1`, shared by the EndpointSlices [`KubeObject::resource`] gives back.
static DISCOVERY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(DISCOVERY_V1));

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
    /// An EndpointSlice of kind `EndpointSlice`, `apiVersion: discovery.k8s.io/v1`, no file,
    /// line [`API_LINE`], no tree, whose compact form gives it back exactly.
    Slice(CompactSlice),
    /// Any other object (boxed: it is larger than the compact forms, and rare).
    Whole(Box<Whole>),
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
    /// annotations are those of its metadata (as the loader makes every one). A compact Pod's
    /// place is its own (see [`KubeObject::share`]).
    pub(crate) fn new(r: Resource) -> Result<KubeObject, Box<Resource>> {
        KubeObject::make(r, Arc::new)
    }

    /// [`KubeObject::new`] and then [`KubeObject::share`] with `key` through `shared`, without
    /// making a compact Pod's place when `shared` holds one of its value already (one Pod in
    /// many, the others of its workload having come before it).
    pub(crate) fn new_shared(
        r: Resource,
        key: &ResourceRef,
        shared: &mut Sharing,
    ) -> Result<KubeObject, Box<Resource>> {
        let mut o = KubeObject::make(r, |place| shared.place(place, key))?;
        match &mut o.0 {
            // Its place is the shared one already.
            Form::Pod(pod) => share_pod_own(pod, key, shared),
            _ => o.share(key, shared),
        }
        Ok(o)
    }

    /// [`KubeObject::new`], a compact Pod's place what `place` makes of it.
    fn make(r: Resource, place: impl FnOnce(PodPlace) -> Arc<PodPlace>) -> Result<KubeObject, Box<Resource>> {
        let plain = r.creation_timestamp.is_none()
            && r.generation.is_none()
            && r.spec.kube_metadata().is_some_and(|m| m.labels == r.labels && m.annotations == r.annotations);
        if !plain {
            return Err(Box::new(r));
        }
        // What every object read from an API server has: no file, its first line, no tree.
        let from_api = r.file.is_none() && r.line == API_LINE && r.spec_node.is_none();
        if let Spec::Pod(pod) = &r.spec
            && from_api
            && r.kind == Kind::Pod
            && *r.api_version == *POD_API_VERSION
            && let Some(compact) = CompactPod::new(&r.name, &r.namespace, pod, place)
        {
            return Ok(KubeObject(Form::Pod(compact)));
        }
        if let Spec::EndpointSlice(slice) = &r.spec
            && from_api
            && r.kind == Kind::EndpointSlice
            && *r.api_version == *DISCOVERY_V1
            && let Some(compact) = CompactSlice::new(&r.name, &r.namespace, slice)
        {
            return Ok(KubeObject(Form::Slice(compact)));
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
        Ok(KubeObject(Form::Whole(Box::new(Whole {
            kind: r.kind,
            api_version: r.api_version,
            name: r.name,
            namespace: r.namespace,
            spec,
            place,
        }))))
    }

    /// Share what this object spells as others do: its namespace and name as `key` holds them
    /// (when they are the same text), its apiVersion, a Pod's labels, node and service account,
    /// a compact Pod's node and place (namespace, service account, labels; the first place of
    /// its value with its parts each shared first), a whole slice's `targetRef` kinds and
    /// namespaces, and a compact slice's shape (namespace, address type, ports, node names; the
    /// names each shared first) through `shared`.
    pub(crate) fn share(&mut self, key: &ResourceRef, shared: &mut Sharing) {
        let w = match &mut self.0 {
            Form::Pod(pod) => {
                share_pod_own(pod, key, shared);
                match shared.places.get(&*pod.place) {
                    Some(place) => pod.place = place.clone(),
                    None => {
                        // A new object's place is its own (`make_mut` copies one that is not).
                        share_place_parts(Arc::make_mut(&mut pod.place), key, shared);
                        shared.places.insert(pod.place.clone());
                    }
                }
                return;
            }
            Form::Slice(slice) => {
                own(&mut slice.name, &key.name);
                // A new object's shape is its own, as a Pod's place is.
                let shape = Arc::make_mut(&mut slice.shape);
                own(&mut shape.namespace, &key.namespace);
                for name in shape.node_names.iter_mut() {
                    shared.names.share(name.arc_mut());
                }
                shared.shapes.share(&mut slice.shape);
                return;
            }
            Form::Whole(w) => w,
        };
        own(&mut w.name, &key.name);
        own(&mut w.namespace, &key.namespace);
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
                    namespace: pod.place.namespace.clone(),
                    labels: pod.place.labels.to_map(),
                    annotations: Default::default(),
                    creation_timestamp: None,
                    generation: None,
                    file: None,
                    line: API_LINE,
                    spec: Spec::Pod(pod.to_pod()),
                    spec_node: None,
                };
            }
            Form::Slice(slice) => {
                return Resource {
                    kind: Kind::EndpointSlice,
                    api_version: DISCOVERY.clone(),
                    name: slice.name.clone(),
                    namespace: slice.shape.namespace.clone(),
                    labels: slice.labels.to_map(),
                    annotations: Default::default(),
                    creation_timestamp: None,
                    generation: None,
                    file: None,
                    line: API_LINE,
                    spec: Spec::EndpointSlice(slice.to_slice()),
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
            Form::Pod(_) | Form::Slice(_) => None,
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
                    && r.namespace == pod.place.namespace
            }
            Form::Slice(slice) => {
                matches!(&r.spec, Spec::EndpointSlice(b) if slice.is(b))
                    && r.kind == Kind::EndpointSlice
                    && *r.api_version == *DISCOVERY_V1
                    && r.name == slice.name
                    && r.namespace == slice.shape.namespace
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
            Form::Slice(_) => Kind::EndpointSlice,
            Form::Whole(w) => w.kind,
        }
    }

    /// `metadata.name`.
    pub(crate) fn name(&self) -> &Arc<str> {
        match &self.0 {
            Form::Pod(pod) => &pod.name,
            Form::Slice(slice) => &slice.name,
            Form::Whole(w) => &w.name,
        }
    }

    /// `metadata.namespace`.
    pub(crate) fn namespace(&self) -> &Arc<str> {
        match &self.0 {
            Form::Pod(pod) => &pod.place.namespace,
            Form::Slice(slice) => &slice.shape.namespace,
            Form::Whole(w) => &w.namespace,
        }
    }

    /// What the endpoint index reads.
    pub(crate) fn view(&self) -> View<'_> {
        let w = match &self.0 {
            Form::Pod(pod) => {
                return View {
                    kind: Kind::Pod,
                    namespace: &pod.place.namespace,
                    name: &pod.name,
                    spec: Part::Pod(pod.view()),
                };
            }
            Form::Slice(slice) => {
                return View {
                    kind: Kind::EndpointSlice,
                    namespace: &slice.shape.namespace,
                    name: &slice.name,
                    spec: Part::Slice(slice.view()),
                };
            }
            Form::Whole(w) => w,
        };
        let spec = match &w.spec {
            KubeSpec::EndpointSlice(s) => Part::Slice(SliceView::from(&**s)),
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

/// `text` as `key` holds it, when it is the same text (so that an object and its key hold one
/// copy of a name, and the objects of a namespace one copy of its name).
fn own(text: &mut Arc<str>, key: &Arc<str>) {
    if *text == *key {
        *text = key.clone();
    }
}

/// Share a Pod's labels (a workload's Pods carry the same) and its node and service account
/// (a cluster has few nodes and service accounts, and many Pods) through `shared`.
fn share_pod<const N: usize>(labels: &mut Labels, names: [&mut Option<Name>; N], shared: &mut Sharing) {
    if !labels.is_empty() {
        shared.labels.share(labels);
    }
    for name in names.into_iter().flatten() {
        shared.names.share(name.arc_mut());
    }
}

/// Share what a compact Pod holds beside its place: its name as `key` holds it, and its node.
fn share_pod_own(pod: &mut CompactPod, key: &ResourceRef, shared: &mut Sharing) {
    own(&mut pod.name, &key.name);
    if let Some(node) = &mut pod.node_name {
        shared.names.share(node.arc_mut());
    }
}

/// Share the parts of the first place of its value, before it is shared: its namespace as `key`
/// holds it, its labels and its service account.
fn share_place_parts(place: &mut PodPlace, key: &ResourceRef, shared: &mut Sharing) {
    own(&mut place.namespace, &key.namespace);
    share_pod(&mut place.labels, [&mut place.service_account_name], shared);
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

impl<T: ?Sized + Eq + std::hash::Hash> Sharable for Arc<T> {
    fn is_only_copy(&self) -> bool {
        Arc::strong_count(self) == 1
    }
}

impl<T: Sharable> Shared<T> {
    /// Make `value` the shared copy of its value (the first of its kind becomes that copy).
    pub(crate) fn share(&mut self, value: &mut T) {
        match self.values.get(value) {
            Some(shared) => *value = shared.clone(),
            None => self.insert(value.clone()),
        }
    }

    /// The shared copy of `value`'s value, if there is one (`value` may be what the copy
    /// borrows as: a `T` of an `Arc<T>`).
    pub(crate) fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: std::borrow::Borrow<Q>,
        Q: ?Sized + Eq + std::hash::Hash,
    {
        self.values.get(value)
    }

    /// Make `value`, of a value not shared yet, the shared copy of it.
    pub(crate) fn insert(&mut self, value: T) {
        if self.values.len() >= self.sweep_at {
            self.values.retain(|v| !v.is_only_copy());
            self.sweep_at = (self.values.len() * 2).max(64);
        }
        self.values.insert(value);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// What [`KubeObject::share`] shares objects' values through.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sharing {
    /// Pod label sets (a whole Pod's, a compact Pod place's).
    pub(crate) labels: Shared<Labels>,
    /// Kinds, namespaces, apiVersions, a Pod's node and service account, a `targetRef`'s kind
    /// and namespace, a compact slice's node names.
    pub(crate) names: Shared<Arc<str>>,
    /// Compact slices' namespaces, address types, ports and node names.
    pub(crate) shapes: Shared<Arc<SliceShape>>,
    /// Compact Pods' namespaces, service accounts and labels.
    pub(crate) places: Shared<Arc<PodPlace>>,
}

impl Sharing {
    /// The shared place of `place`'s value: the one there is, or else `place` itself (made an
    /// `Arc` only then), its parts shared first (see [`share_place_parts`]).
    fn place(&mut self, mut place: PodPlace, key: &ResourceRef) -> Arc<PodPlace> {
        if let Some(shared) = self.places.get(&place) {
            return shared.clone();
        }
        share_place_parts(&mut place, key, self);
        let place = Arc::new(place);
        self.places.insert(place.clone());
        place
    }
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
    Slice(SliceView<'a>),
    Pod(PodView<'a>),
    Node(&'a Node),
    Other,
}

impl<'a> View<'a> {
    /// The view of a resource.
    pub(crate) fn of(r: &'a Resource) -> View<'a> {
        let spec = match &r.spec {
            Spec::EndpointSlice(s) => Part::Slice(SliceView::from(s)),
            Spec::Pod(p) => Part::Pod(PodView::from(p)),
            Spec::Node(n) => Part::Node(n),
            _ => Part::Other,
        };
        View { kind: r.kind, namespace: &r.namespace, name: &r.name, spec }
    }
}

#[cfg(test)]
mod tests;
