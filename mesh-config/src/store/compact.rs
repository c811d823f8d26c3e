//! Kubernetes objects as the store and [`Sources`](super::Sources) keep them: a
//! [`Resource`] is as large as its largest kind (well over a kilobyte, the Istio kinds inline)
//! and holds a Kubernetes object's labels and annotations twice (beside the spec, and in the
//! spec's `metadata`). A [`KubeObject`] keeps the identity, the file and line, and the typed
//! object once, boxed at its own size; [`KubeObject::resource`] gives back the very
//! [`Resource`] it was made from. Kept behind an `Arc`, one copy serves the sources and the
//! store.

use std::collections::HashSet;
use std::sync::Arc;

use crate::diag::ResourceRef;
use crate::types::kube::{EndpointSlice, Labels, Name, Namespace, Node, Pod, Secret, Service};
use crate::types::{Kind, Resource, Spec};
use crate::yaml::Node as Tree;

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
pub(crate) struct KubeObject {
    pub(crate) kind: Kind,
    api_version: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) namespace: Arc<str>,
    file: Option<Arc<str>>,
    line: u32,
    pub(crate) spec: KubeSpec,
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
        let spec = match r.spec {
            Spec::Service(s) => KubeSpec::Service(Box::new(s)),
            Spec::Pod(p) => KubeSpec::Pod(Box::new(p)),
            Spec::EndpointSlice(s) => KubeSpec::EndpointSlice(Box::new(s)),
            Spec::Node(n) => KubeSpec::Node(Box::new(n)),
            Spec::Namespace(n) => KubeSpec::Namespace(Box::new(n)),
            Spec::Secret(s) => KubeSpec::Secret(Box::new(s)),
            spec => return Err(Box::new(Resource { spec, ..r })),
        };
        Ok(KubeObject {
            kind: r.kind,
            api_version: r.api_version,
            name: r.name,
            namespace: r.namespace,
            file: r.file,
            line: r.line,
            spec,
            spec_node: r.spec_node,
        })
    }

    /// Share what this object spells as others do: its namespace and name as `key` holds them
    /// (when they are the same text), its apiVersion and a Pod's labels through `shared`.
    pub(crate) fn share(&mut self, key: &ResourceRef, shared: &mut Sharing) {
        if self.name == key.name {
            self.name = key.name.clone();
        }
        if self.namespace == key.namespace {
            self.namespace = key.namespace.clone();
        }
        shared.names.share(&mut self.api_version);
        let metadata = match &mut self.spec {
            KubeSpec::Service(o) => &mut o.metadata,
            KubeSpec::Pod(o) => &mut o.metadata,
            KubeSpec::EndpointSlice(o) => &mut o.metadata,
            KubeSpec::Node(o) => &mut o.metadata,
            KubeSpec::Namespace(o) => &mut o.metadata,
            KubeSpec::Secret(o) => &mut o.metadata,
        };
        if *metadata.name == *self.name {
            metadata.name = Name::from(self.name.clone());
        }
        if *metadata.namespace == *self.namespace {
            metadata.namespace = Name::from(self.namespace.clone());
        }
        match &mut self.spec {
            KubeSpec::Pod(pod) => {
                if !pod.metadata.labels.is_empty() {
                    shared.labels.share(&mut pod.metadata.labels);
                }
                // A cluster has few nodes and service accounts, and many Pods.
                for name in [&mut pod.spec.node_name, &mut pod.spec.service_account_name].into_iter().flatten() {
                    shared.names.share(name.arc_mut());
                }
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
        let spec = match &self.spec {
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
            kind: self.kind,
            api_version: self.api_version.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            labels,
            annotations,
            creation_timestamp: None,
            generation: None,
            file: self.file.clone(),
            line: self.line,
            spec,
            spec_node: self.spec_node.clone(),
        }
    }

    pub(crate) fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// Is `r` this object, as `Resource`'s `==` says?
    pub(crate) fn same_as(&self, r: &Resource) -> bool {
        let spec = match (&self.spec, &r.spec) {
            (KubeSpec::Service(a), Spec::Service(b)) => **a == *b,
            (KubeSpec::Pod(a), Spec::Pod(b)) => **a == *b,
            (KubeSpec::EndpointSlice(a), Spec::EndpointSlice(b)) => **a == *b,
            (KubeSpec::Node(a), Spec::Node(b)) => **a == *b,
            (KubeSpec::Namespace(a), Spec::Namespace(b)) => **a == *b,
            (KubeSpec::Secret(a), Spec::Secret(b)) => **a == *b,
            _ => false,
        };
        spec && self.kind == r.kind
            && self.api_version == r.api_version
            && self.name == r.name
            && self.namespace == r.namespace
            && r.spec.kube_metadata().is_some_and(|m| m.labels == r.labels && m.annotations == r.annotations)
    }

    /// Is `r` this object down to what validation reads and reports (file, line, the tree)?
    pub(crate) fn unchanged(&self, r: &Resource) -> bool {
        self.file == r.file
            && self.line == r.line
            && r.creation_timestamp.is_none()
            && r.generation.is_none()
            && match (&self.spec_node, &r.spec_node) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (None, None) => true,
                // Its tree was let go: its messages name no line (`strip_lines`).
                (None, Some(_)) => self.file.is_none(),
                _ => false,
            }
            && self.same_as(r)
    }

    /// What the endpoint index reads.
    pub(crate) fn view(&self) -> View<'_> {
        let spec = match &self.spec {
            KubeSpec::EndpointSlice(s) => Part::Slice(s),
            KubeSpec::Pod(p) => Part::Pod(p),
            KubeSpec::Node(n) => Part::Node(n),
            _ => Part::Other,
        };
        View { kind: self.kind, namespace: &self.namespace, name: &self.name, spec }
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
    Pod(&'a Pod),
    Node(&'a Node),
    Other,
}

impl<'a> View<'a> {
    /// The view of a resource.
    pub(crate) fn of(r: &'a Resource) -> View<'a> {
        let spec = match &r.spec {
            Spec::EndpointSlice(s) => Part::Slice(s),
            Spec::Pod(p) => Part::Pod(p),
            Spec::Node(n) => Part::Node(n),
            _ => Part::Other,
        };
        View { kind: r.kind, namespace: &r.namespace, name: &r.name, spec }
    }
}
