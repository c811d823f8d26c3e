//! [`ConfigStore`]: the set of resources in force, with Kubernetes admission semantics.
//!
//! Each [`ConfigStore::apply`] states the whole desired configuration (everything the files hold
//! now); [`ConfigStore::apply_changes`] states what changed. Per resource, as `kubectl apply` behaves against an admission webhook:
//!
//! - a valid new or changed resource is taken;
//! - a resource whose new version is invalid keeps its **last good version**;
//! - a new resource that is invalid is left out;
//! - a file that could not be read or is not YAML changes nothing: what it held before stays;
//! - a resource that is gone from the files is removed.
//!
//! Every rejection is reported in the [`ApplyReport`], and the store always holds a compiled
//! [`Snapshot`] of what is in force. The report also carries the cross-resource findings of
//! [`crate::analyze()`] over what is in force (references to absent subsets, Gateways and hosts,
//! conflicting DestinationRules) and the resources defined twice in the load: warnings with a
//! [`Code`](crate::Code), which reject nothing.
//!
//! Between applies the store keeps what a last good version needs and no more: the compiled
//! snapshot, and per resource its identity, metadata, file and line and its spec's YAML tree
//! packed into a few flat buffers (`packed`; tens of bytes per VirtualService rule where the
//! typed spec and its positioned tree took kilobytes). An apply unpacks a resource only when its
//! old version is needed again (its new version is rejected, its file did not parse, or its new
//! version differs in more than lines and must be compared with the typed old one), and reads it
//! with the loader's own deserializer, so the old version compiles and is reported exactly as
//! before.
//!
//! The store also keeps what validating each resource in force gave (its warnings). A new
//! version equal to the one in force down to its file, line and positioned tree is not validated
//! again: validation reads nothing else, so it would give the same diagnostics, which the report
//! carries as if it had. Only new and changed resources are validated; the compile and the
//! cross-resource analysis of an `apply` still run over everything in force.
//!
//! A watch knows which objects changed: [`ConfigStore::apply_changes`] takes those alone
//! (upserts and deletes by id, [`Change`]) with the same per-resource semantics, and compiles
//! only what they touch — for EndpointSlices and Pods, the Kubernetes Services whose endpoints
//! they can change, handed back for the endpoint registry without a new snapshot (see `delta`).
//! [`Sources::changes`] turns a source's event into those changes.
//!
//! Kubernetes objects are kept compact (`compact`: an API server's Pods and EndpointSlices as
//! what the endpoint builder reads, any other object typed and boxed at its own size, labels
//! once) and, with [`ConfigStore::share_objects`], as one copy shared with the [`Sources`] that
//! hold them. An object from an API server (no file) keeps no positioned tree: its messages are
//! named by kind, namespace, name and field path, never by line. A resource in force costs the
//! store 24 bytes beside its kept form: its id is read from that form (kind, namespace, name),
//! not held a second time, and what validating it gave is boxed (almost always nothing).

mod compact;
mod delta;
mod kube_index;
mod packed;
pub mod source;

pub use delta::{Change, DeltaReport, HeldObject, HostServices, Recompiled};
pub use source::{Delta, Origin, Scope, SourceEvent, SourceObject, Sources, WholeChanges, diagnostic_line};

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use mesh_core::Snapshot;

use crate::analyze::{analyze, duplicates};
use crate::compile::{CompileOptions, compile};
use crate::de;
use crate::diag::{Diagnostic, ResourceRef, Severity};
use crate::load::{LoadError, Loaded, Skipped};
use crate::types::{Kind, Resource, Spec};
use crate::validate::validate;
use crate::yaml::{Node, Value};
use packed::PackedTree;

/// What one apply did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Every problem found (errors, warnings, unsupported fields): load and validation in input
    /// order, then duplicates, compilation notes and the cross-resource analysis.
    pub diagnostics: Vec<Diagnostic>,
    /// Resources whose new version was rejected; the last good version stays in force.
    pub kept_last_good: Vec<ResourceRef>,
    /// New resources rejected and left out.
    pub rejected: Vec<ResourceRef>,
    /// Files that changed nothing because they could not be read or parsed.
    pub failed_files: Vec<LoadError>,
    /// Documents of kinds meshwork does not read.
    pub skipped: Vec<Skipped>,
    /// Resources added.
    pub added: usize,
    /// Resources changed.
    pub updated: usize,
    /// Resources removed.
    pub removed: usize,
}

impl ApplyReport {
    /// True when something was rejected (resource or file).
    pub fn has_rejections(&self) -> bool {
        !self.kept_last_good.is_empty() || !self.rejected.is_empty() || !self.failed_files.is_empty()
    }

    /// Error diagnostics only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

/// A resource in force, as the store keeps it between applies.
#[derive(Debug, Clone)]
enum Kept {
    /// An Istio kind: the resource without its spec, and the spec's YAML tree packed (`None`
    /// when the document had no `spec`). The spec is read again from the tree when needed.
    /// (Boxed: a Kubernetes object, the common case by far, is one pointer, and the store holds
    /// one `Kept` per resource in force.)
    Packed(Box<PackedResource>),
    /// A Kubernetes object, compact and shared with the [`Sources`] that hold it
    /// ([`ConfigStore::share_objects`]).
    Kube(Arc<compact::KubeObject>),
    /// Other kinds (their typed form is not read from the `spec` alone): kept as loaded.
    Whole(Box<Resource>),
}

/// An Istio kind's resource, packed (see [`Kept::Packed`]).
#[derive(Debug, Clone)]
struct PackedResource {
    shell: Shell,
    tree: Option<PackedTree>,
}

/// A resource's identity and metadata.
#[derive(Debug, Clone)]
struct Shell {
    kind: Kind,
    api_version: Arc<str>,
    name: Arc<str>,
    namespace: Arc<str>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    file: Option<Arc<str>>,
    line: u32,
}

impl Kept {
    /// The kind, namespace and name of the resource kept (those of the resource it was made
    /// from: [`Resource::id`] is made of them).
    fn names(&self) -> (Kind, &str, &str) {
        match self {
            Kept::Packed(p) => (p.shell.kind, &p.shell.namespace, &p.shell.name),
            Kept::Kube(o) => (o.kind(), o.namespace(), o.name()),
            Kept::Whole(r) => (r.kind, &r.namespace, &r.name),
        }
    }

    /// [`Kept::names`], as shared text.
    fn name_arcs(&self) -> (Kind, &Arc<str>, &Arc<str>) {
        match self {
            Kept::Packed(p) => (p.shell.kind, &p.shell.namespace, &p.shell.name),
            Kept::Kube(o) => (o.kind(), o.namespace(), o.name()),
            Kept::Whole(r) => (r.kind, &r.namespace, &r.name),
        }
    }

    fn keep(mut r: Resource) -> Kept {
        if !matches!(
            r.kind,
            Kind::VirtualService | Kind::DestinationRule | Kind::Gateway | Kind::ServiceEntry | Kind::WorkloadEntry
        ) {
            strip_lines(&mut r);
            return match compact::KubeObject::new(r) {
                Ok(object) => Kept::Kube(Arc::new(object)),
                Err(r) => Kept::Whole(r),
            };
        }
        let tree = r.spec_node.as_deref().map(PackedTree::pack);
        let shell = Shell {
            kind: r.kind,
            api_version: r.api_version,
            name: r.name,
            namespace: r.namespace,
            labels: r.labels,
            annotations: r.annotations,
            file: r.file,
            line: r.line,
        };
        Kept::Packed(Box::new(PackedResource { shell, tree }))
    }

    /// What the endpoint index reads of a Kubernetes object.
    fn view(&self) -> Option<compact::View<'_>> {
        match self {
            Kept::Kube(o) => Some(o.view()),
            Kept::Whole(r) => r.kind.is_kubernetes().then(|| compact::View::of(r)),
            Kept::Packed(_) => None,
        }
    }

    fn file(&self) -> Option<&str> {
        match self {
            Kept::Whole(r) => r.file.as_deref(),
            Kept::Kube(o) => o.file(),
            Kept::Packed(p) => p.shell.file.as_deref(),
        }
    }

    /// The resource as it was loaded (`None` only if the kept form cannot be read back, which
    /// the packing's tests rule out).
    fn resource(&self) -> Option<Resource> {
        let (shell, tree) = match self {
            Kept::Whole(r) => return Some((**r).clone()),
            Kept::Kube(o) => return Some(o.resource()),
            Kept::Packed(p) => (&p.shell, &p.tree),
        };
        let node = match tree {
            Some(t) => Some(t.unpack()?),
            None => None,
        };
        let null = Node { line: shell.line, value: Value::Null };
        let spec_node = node.as_ref().unwrap_or(&null);
        let unknown = RefCell::new(Vec::new());
        let path = de::Path::Root;
        let spec = match shell.kind {
            Kind::VirtualService => de::from_node(spec_node, path, &unknown).map(Spec::VirtualService),
            Kind::DestinationRule => de::from_node(spec_node, path, &unknown).map(Spec::DestinationRule),
            Kind::Gateway => de::from_node(spec_node, path, &unknown).map(Spec::Gateway),
            Kind::ServiceEntry => de::from_node(spec_node, path, &unknown).map(Spec::ServiceEntry),
            Kind::WorkloadEntry => de::from_node(spec_node, path, &unknown).map(Spec::WorkloadEntry),
            _ => return None,
        }
        .ok()?;
        Some(Resource {
            kind: shell.kind,
            api_version: shell.api_version.clone(),
            name: shell.name.clone(),
            namespace: shell.namespace.clone(),
            labels: shell.labels.clone(),
            annotations: shell.annotations.clone(),
            // Istio's kinds, packed: their creation time is not kept (nothing reads it yet).
            creation_timestamp: None,
            generation: None,
            file: shell.file.clone(),
            line: shell.line,
            spec,
            spec_node: node.map(Arc::new),
        })
    }

    /// Is `new` (of the same id) this very resource, down to what validation reads and reports
    /// (file, line, the tree with its lines)? Then its validation gives what it gave this one,
    /// and this kept form serves for it as well.
    fn unchanged(&self, new: &Resource) -> bool {
        match self {
            Kept::Kube(old) => old.unchanged(new),
            Kept::Whole(old) => {
                old.file == new.file
                    && old.line == new.line
                    && old.creation_timestamp == new.creation_timestamp
                    && match (&old.spec_node, &new.spec_node) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                        (None, None) => true,
                        // Its tree was let go ([`strip_lines`]): its messages name no line.
                        (None, Some(_)) => lines_unused(old),
                        _ => false,
                    }
                    && **old == *new
            }
            Kept::Packed(p) => {
                let (shell, tree) = (&p.shell, &p.tree);
                // The same tree, lines included, gives the same spec (the loader reads the spec
                // from it) and the same validation messages at the same lines.
                shell.kind == new.kind
                    && shell.file == new.file
                    && shell.line == new.line
                    && shell.api_version == new.api_version
                    && shell.labels == new.labels
                    && shell.annotations == new.annotations
                    && match (tree, new.spec_node.as_deref()) {
                        (Some(old), Some(node)) => *old == PackedTree::pack(node),
                        (None, None) => true,
                        _ => false,
                    }
            }
        }
    }

    /// Is `new` (of the same id) the same resource, as `Resource`'s `==` says?
    fn same_as(&self, new: &Resource) -> bool {
        let (shell, tree) = match self {
            Kept::Packed(p) => (&p.shell, &p.tree),
            Kept::Kube(old) => return old.same_as(new),
            Kept::Whole(old) => return **old == *new,
        };
        if shell.api_version != new.api_version || shell.labels != new.labels || shell.annotations != new.annotations {
            return false;
        }
        // The same tree gives the same spec; another tree may still give it (`80` or `"80"`).
        let same_tree = match (tree, new.spec_node.as_deref()) {
            (Some(old), Some(node)) => old.same_content(&PackedTree::pack(node)),
            (None, None) => true,
            _ => false,
        };
        same_tree || self.resource().is_some_and(|old| old == *new)
    }
}

/// A Kubernetes object that came from no file (an API server's, decoded from one line of
/// JSON): its diagnostics are named by kind, namespace, name and field path and show no line
/// ([`diagnostic_line`]), so its positioned tree (kept only to give lines to messages) is let go.
/// Every line in it is the document's first anyway.
fn lines_unused(r: &Resource) -> bool {
    r.file.is_none() && r.kind.is_kubernetes()
}

/// Let go of the positioned tree of a resource whose messages name no line ([`lines_unused`]).
pub(crate) fn strip_lines(r: &mut Resource) {
    if lines_unused(r) {
        r.spec_node = None;
    }
}

/// A resource in force and what validating it gave (warnings only: it is valid).
///
/// Its id is not held a second time: it is the kept form's kind (as [`Kind::as_str`] spells it,
/// as [`Resource::id`] does), namespace and name. Only an entry whose id is not that (a
/// [`Change::Held`] object under a key other than its own id) holds its id, beside its
/// validation in `rare`. The store holds one entry per resource in force (100,000 Pods in a
/// cluster): 24 bytes, where the id and an empty `Vec` took 72 more.
#[derive(Debug, Clone)]
struct Entry {
    kept: Kept,
    /// `None` (no allocation) for the common entry: no diagnostics, its id its kept form's.
    rare: Option<Box<Rare>>,
}

/// What few entries hold beside their kept form (see [`Entry`]).
#[derive(Debug, Clone)]
struct Rare {
    /// What validating the resource gave.
    validation: Vec<Diagnostic>,
    /// The entry's id, when it is not its kept form's kind, namespace and name.
    id: Option<ResourceRef>,
}

impl Entry {
    /// The entry of the resource `id`, kept as `kept`, whose validation gave `validation`.
    fn new(id: &ResourceRef, kept: Kept, validation: Vec<Diagnostic>) -> Entry {
        let (kind, namespace, name) = kept.names();
        let own = (kind.as_str(), namespace, name) == (&*id.kind, &*id.namespace, &*id.name);
        let rare =
            (!own || !validation.is_empty()).then(|| Box::new(Rare { validation, id: (!own).then(|| id.clone()) }));
        Entry { kept, rare }
    }

    /// The entry's id as text: kind, namespace, name.
    fn names(&self) -> (&str, &str, &str) {
        if let Some(id) = self.rare.as_ref().and_then(|r| r.id.as_ref()) {
            return (&id.kind, &id.namespace, &id.name);
        }
        let (kind, namespace, name) = self.kept.names();
        (kind.as_str(), namespace, name)
    }

    /// Is this the entry of `id`? (Compares the text, makes nothing.)
    fn is(&self, id: &ResourceRef) -> bool {
        self.names() == (&*id.kind, &*id.namespace, &*id.name)
    }

    /// The entry's id (its namespace and name shared with the kept form, its kind text with
    /// every other id of that kind: [`kind_text`]).
    fn id(&self) -> ResourceRef {
        if let Some(id) = self.rare.as_ref().and_then(|r| r.id.as_ref()) {
            return id.clone();
        }
        let (kind, namespace, name) = self.kept.name_arcs();
        ResourceRef { kind: kind_text(kind), namespace: namespace.clone(), name: name.clone() }
    }

    /// What validating the resource gave.
    fn validation(&self) -> &[Diagnostic] {
        self.rare.as_ref().map_or(&[], |r| &r.validation)
    }

    /// The id, the kept form and the validation.
    fn into_parts(self) -> (ResourceRef, Kept, Vec<Diagnostic>) {
        let id = self.id();
        let validation = self.rare.map(|r| r.validation).unwrap_or_default();
        (id, self.kept, validation)
    }
}

/// The ids of the entries in force ([`ConfigStore::resource_refs`]), made one at a time.
struct Refs<'a> {
    entries: std::slice::Iter<'a, Option<Entry>>,
    /// How many are still to come.
    left: usize,
}

impl Iterator for Refs<'_> {
    type Item = ResourceRef;

    fn next(&mut self) -> Option<ResourceRef> {
        let entry = self.entries.by_ref().flatten().next()?;
        self.left = self.left.saturating_sub(1);
        Some(entry.id())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Refs<'_> {}

/// A kind's text ([`Kind::as_str`]), one copy per kind for every id made by [`Entry::id`].
fn kind_text(kind: Kind) -> Arc<str> {
    static TEXTS: [OnceLock<Arc<str>>; 32] = [const { OnceLock::new() }; 32];
    match TEXTS.get(kind as usize) {
        Some(text) => text.get_or_init(|| Arc::from(kind.as_str())).clone(),
        None => Arc::from(kind.as_str()),
    }
}

/// Where each resource in force is in the store's list: the positions alone, found by the id
/// of the entry there ([`Entry::is`]). (A map keyed by id would hold every id: 48 bytes a
/// resource, and a cluster has 100,000 Pods.)
#[derive(Debug, Clone, Default)]
struct Positions {
    table: hashbrown::HashTable<usize>,
    hasher: std::hash::RandomState,
}

/// The entry at `i`, if there is one.
fn entry_at(kept: &[Option<Entry>], i: usize) -> Option<&Entry> {
    kept.get(i).and_then(Option::as_ref)
}

/// The hash of an id given as its kind, namespace and name: the same for an id
/// ([`Positions::hash`]) and for the entry of that id ([`Entry::names`]).
fn hash_names(hasher: &std::hash::RandomState, (kind, namespace, name): (&str, &str, &str)) -> u64 {
    let mut h = hasher.build_hasher();
    kind.hash(&mut h);
    namespace.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

impl Positions {
    fn hash(&self, id: &ResourceRef) -> u64 {
        hash_names(&self.hasher, (&id.kind, &id.namespace, &id.name))
    }

    /// Where `id` is in `kept`.
    fn get(&self, kept: &[Option<Entry>], id: &ResourceRef) -> Option<usize> {
        self.table.find(self.hash(id), |&i| entry_at(kept, i).is_some_and(|e| e.is(id))).copied()
    }

    fn contains(&self, kept: &[Option<Entry>], id: &ResourceRef) -> bool {
        self.get(kept, id).is_some()
    }

    /// Note the entry at `i` of `kept` (its id not noted yet).
    fn insert(&mut self, kept: &[Option<Entry>], i: usize) {
        let Some(entry) = entry_at(kept, i) else { return };
        let hasher = &self.hasher;
        let rehash = |&j: &usize| entry_at(kept, j).map_or(0, |e| hash_names(hasher, e.names()));
        self.table.insert_unique(hash_names(hasher, entry.names()), i, rehash);
    }

    /// Forget `id` (its entry still in `kept`), saying where it was.
    fn remove(&mut self, kept: &[Option<Entry>], id: &ResourceRef) -> Option<usize> {
        let found = |&i: &usize| entry_at(kept, i).is_some_and(|e| e.is(id));
        let entry = self.table.find_entry(self.hash(id), found).ok()?;
        Some(entry.remove().0)
    }

    /// The positions of every entry of `kept`.
    fn rebuild(&mut self, kept: &[Option<Entry>]) {
        self.table.clear();
        self.table.reserve(kept.len(), |_| 0);
        for i in 0..kept.len() {
            self.insert(kept, i);
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn clear(&mut self) {
        self.table.clear();
    }
}

/// A valid new version in an apply, with what validating it gave.
struct Incoming {
    resource: Resource,
    validation: Vec<Diagnostic>,
    /// Equal to the version in force in everything validation reads ([`Kept::unchanged`]).
    unchanged: bool,
}

/// The resources in force and their compiled snapshot.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    options: CompileOptions,
    /// In force, in the order first seen (Istio's "oldest wins" stands in for creation time);
    /// `None` where a resource was removed by [`ConfigStore::apply_changes`] (compacted when
    /// such holes are half of it).
    kept: Vec<Option<Entry>>,
    /// Where each resource in force is in `kept`.
    index: Positions,
    holes: usize,
    /// Which slices name which Pods, for recompiling only the Services a change touches.
    kube: kube_index::KubeIndex,
    snapshot: Snapshot,
    /// The Gateway API status of the last compile.
    gateway_api: crate::gateway_api::Status,
    /// Error diagnostics of loading and validation in force (each names its resource, or a file).
    input_errors: Vec<Diagnostic>,
    /// Error diagnostics of the last compile and analysis.
    derived_errors: Vec<Diagnostic>,
    rejections: Vec<Diagnostic>,
    /// Documents of kinds meshwork does not read, as of the last whole apply (the analysis
    /// reads them).
    skipped: Vec<Skipped>,
    generation: u64,
}

impl Default for ConfigStore {
    fn default() -> Self {
        ConfigStore::new(CompileOptions::default())
    }
}

impl ConfigStore {
    /// An empty store.
    pub fn new(options: CompileOptions) -> Self {
        ConfigStore {
            options,
            kept: Vec::new(),
            index: Positions::default(),
            holes: 0,
            kube: kube_index::KubeIndex::default(),
            snapshot: Snapshot::empty(),
            gateway_api: crate::gateway_api::Status::default(),
            input_errors: Vec::new(),
            derived_errors: Vec::new(),
            rejections: Vec::new(),
            skipped: Vec::new(),
            generation: 0,
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.kept.iter().flatten()
    }

    fn entry(&self, id: &ResourceRef) -> Option<&Entry> {
        let i = self.index.get(&self.kept, id)?;
        self.kept.get(i)?.as_ref()
    }

    /// What the endpoint index reads of the Kubernetes object in force as `id`.
    fn view(&self, id: &ResourceRef) -> Option<compact::View<'_>> {
        self.entry(id)?.kept.view()
    }

    /// The status of the Gateway API objects in force (Gateway and listener conditions,
    /// `attachedRoutes`, route parent conditions), as of the last apply.
    pub fn compiled_gateway_api(&self) -> &crate::gateway_api::Status {
        &self.gateway_api
    }

    /// The snapshot of what is in force.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The resources in force, read back from what the store keeps (see the module docs: each
    /// call reads every spec again).
    pub fn resources(&self) -> Vec<Resource> {
        self.entries().filter_map(|e| e.kept.resource()).collect()
    }

    /// How many resources are in force.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No resource in force?
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Error diagnostics of the last apply (for `/config_dump`).
    pub fn rejections(&self) -> &[Diagnostic] {
        &self.rejections
    }

    /// How many applies have been made.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Make `loaded` (everything the configuration sources hold now) the desired state.
    pub fn apply(&mut self, loaded: Loaded) -> ApplyReport {
        let mut report = ApplyReport {
            diagnostics: loaded.diagnostics.clone(),
            failed_files: loaded.failed.clone(),
            ..ApplyReport::default()
        };
        let skipped = loaded.skipped;
        let twice = duplicates(&loaded.resources);
        let failed_files: BTreeSet<&str> = loaded.failed.iter().map(LoadError::file).collect();
        let mut broken: BTreeSet<ResourceRef> =
            loaded.diagnostics.iter().filter(|d| d.is_error()).filter_map(|d| d.resource.clone()).collect();

        // New versions: validated, unless equal to the version in force down to their lines
        // (then validating would give what it gave that version, which is kept); later
        // duplicates of one id replace earlier ones.
        // The entries in force, found by id through their positions (no map of ids made).
        let in_force: Vec<Option<Entry>> = std::mem::take(&mut self.kept);
        let mut index = std::mem::take(&mut self.index);
        self.holes = 0;
        // Each id's latest valid version, as a place in `versions` (the map moves no resources).
        let mut incoming: BTreeMap<ResourceRef, usize> = BTreeMap::new();
        let mut versions: Vec<Option<Incoming>> = Vec::with_capacity(loaded.resources.len());
        let mut order: Vec<ResourceRef> = Vec::new();
        for r in loaded.resources {
            let id = r.id();
            let old = index.get(&in_force, &id).and_then(|i| entry_at(&in_force, i));
            let (validation, unchanged) = match old {
                Some(old) if old.kept.unchanged(&r) => (old.validation().to_vec(), true),
                _ => (validate(&r), false),
            };
            let invalid = validation.iter().any(Diagnostic::is_error);
            report.diagnostics.extend(validation.iter().cloned());
            if invalid {
                broken.insert(id);
                continue;
            }
            if !incoming.contains_key(&id) {
                order.push(id.clone());
            }
            broken.remove(&id);
            incoming.insert(id, versions.len());
            versions.push(Some(Incoming { resource: r, validation, unchanged }));
        }
        // (Its table serves again, rebuilt below.)
        index.clear();
        self.index = index;

        // What will be in force: the resources to compile, and beside each its id, its kept
        // form when the one in force serves (unchanged, or kept as last good), its validation.
        let mut next: Vec<Resource> = Vec::with_capacity(versions.len() + in_force.len());
        let mut beside: Vec<(ResourceRef, Option<Kept>, Vec<Diagnostic>)> = Vec::with_capacity(next.capacity());
        let mut placed: BTreeSet<ResourceRef> = BTreeSet::new();
        for (id, old, validation) in in_force.into_iter().flatten().map(Entry::into_parts) {
            if let Some(new) = incoming.remove(&id).and_then(|i| versions.get_mut(i)).and_then(Option::take) {
                if !new.unchanged && !old.same_as(&new.resource) {
                    report.updated += 1;
                }
                next.push(new.resource);
                beside.push((id.clone(), new.unchanged.then_some(old), new.validation));
            } else if broken.contains(&id) || old.file().is_some_and(|f| failed_files.contains(f)) {
                if broken.contains(&id) {
                    report.kept_last_good.push(id.clone());
                }
                if let Some(r) = old.resource() {
                    next.push(r);
                    beside.push((id.clone(), Some(old), validation));
                }
            } else {
                report.removed += 1;
                continue;
            }
            placed.insert(id);
        }
        for id in order {
            if let Some(new) = incoming.remove(&id).and_then(|i| versions.get_mut(i)).and_then(Option::take) {
                report.added += 1;
                placed.insert(id.clone());
                next.push(new.resource);
                beside.push((id, None, new.validation));
            }
        }
        for id in broken {
            if !placed.contains(&id) {
                report.rejected.push(id);
            }
        }

        report.diagnostics.extend(twice);
        let input = report.diagnostics.len();
        let compiled = compile(&next, &self.options);
        report.diagnostics.extend(compiled.diagnostics);
        report.diagnostics.extend(analyze(&next, &skipped, &self.options.domain));
        self.skipped.clone_from(&skipped);
        report.skipped = skipped;
        self.kube = kube_index::KubeIndex::new(&next);
        self.kept = (next.into_iter().zip(beside))
            .map(|(r, (id, kept, validation))| Some(Entry::new(&id, kept.unwrap_or_else(|| Kept::keep(r)), validation)))
            .collect();
        // Exactly what is in force (a collect may keep the capacity of the list it read).
        self.kept.shrink_to_fit();
        self.index.rebuild(&self.kept);
        self.snapshot = compiled.snapshot;
        self.gateway_api = compiled.gateway_api;
        let (input, derived) = report.diagnostics.split_at(input);
        self.input_errors = input.iter().filter(|d| d.is_error()).cloned().collect();
        self.derived_errors = derived.iter().filter(|d| d.is_error()).cloned().collect();
        self.publish_rejections();
        for f in &report.failed_files {
            tracing::warn!(target: "meshwork::config", "{f}; the file changes nothing");
        }
        report
    }

    /// Gather the rejections in force, log those that are new, count the apply. Each rejection
    /// is logged when it first appears, not again on every apply while it stays (a watch
    /// applies often; a bad object must not flood the log).
    fn publish_rejections(&mut self) {
        let before: BTreeSet<String> = self.rejections.iter().map(diagnostic_line).collect();
        self.rejections = self.input_errors.iter().chain(&self.derived_errors).cloned().collect();
        self.generation += 1;
        for d in &self.rejections {
            let line = diagnostic_line(d);
            if !before.contains(&line) {
                tracing::warn!(target: "meshwork::config", "{line}");
            }
        }
    }

    /// Hold the Kubernetes objects in force that `sources` also holds, equal, as one copy shared
    /// with it instead of two: those named by `keys`, or every object `sources` holds (after a
    /// whole [`ConfigStore::apply`] of its [`Sources::merged`]). Nothing else changes.
    pub fn share_objects(&mut self, sources: &Sources, keys: Option<&[ResourceRef]>) {
        let all: Vec<ResourceRef>;
        let keys: Vec<&ResourceRef> = match keys {
            Some(keys) => keys.iter().collect(),
            None => {
                all = sources.keys().collect();
                all.iter().collect()
            }
        };
        for key in keys {
            let Some(theirs) = sources.kube_object(key) else { continue };
            let Some(i) = self.index.get(&self.kept, key) else { continue };
            if let Some(Some(Entry { kept: Kept::Kube(mine), .. })) = self.kept.get_mut(i)
                && !Arc::ptr_eq(mine, theirs)
                && **mine == **theirs
            {
                *mine = theirs.clone();
            }
        }
    }

    /// The kind, namespace and name of each resource in force, in the order first seen.
    pub fn resource_refs(&self) -> impl ExactSizeIterator<Item = ResourceRef> + '_ {
        Refs { entries: self.kept.iter(), left: self.index.len() }
    }

    /// Resource ids in force, as `Kind namespace/name`.
    pub fn ids(&self) -> Vec<Arc<str>> {
        self.entries().map(|e| Arc::from(e.id().to_string().as_str())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_str};

    const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop, labels: {app: reviews}}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}}, {headers: {x-v: {exact: \"2\"}}}]
    route: [{destination: {host: reviews, subset: v2, port: {number: 80}}}]
  - route: [{destination: {host: reviews}}]
    timeout: 1s
";

    fn load(text: &str) -> Loaded {
        load_str(text, Some("vs.yaml"), &LoadOptions::default()).expect("yaml")
    }

    #[test]
    fn kubernetes_objects_are_kept_compact_and_shared_with_the_sources() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n";
        let key = ResourceRef { kind: "Pod".into(), namespace: "shop".into(), name: "p".into() };
        let loaded = load_str(pod, None, &LoadOptions::default()).expect("yaml");
        let origin = Origin::Kubernetes {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "p".into(),
            resource_version: Some("1".into()),
        };
        let mut sources = Sources::new();
        sources.apply(SourceEvent::Upsert { key: key.clone(), object: SourceObject { origin, loaded } });
        let mut store = ConfigStore::default();
        let merged = sources.merged();
        let original = merged.resources.clone();
        store.apply(merged);
        store.share_objects(&sources, None);
        let shared = match store.entry(&key).map(|e| &e.kept) {
            Some(Kept::Kube(o)) => Arc::strong_count(o),
            other => panic!("kept as {other:?}"),
        };
        assert_eq!(shared, 2, "one copy, held by the sources and the store");
        let back = store.resources();
        assert_eq!(back, original);
        assert!(back[0].spec_node.is_none(), "an API object's tree (lines only) is let go");
        let report = store.apply(sources.merged());
        assert_eq!((report.added, report.updated, report.removed), (0, 0, 0));
    }

    #[test]
    fn an_entry_takes_24_bytes() {
        // One per resource in force: 100,000 Pods in a cluster (the id and an empty `Vec` of
        // diagnostics took 64 more bytes each).
        assert!(std::mem::size_of::<Option<Entry>>() <= 24, "{} bytes", std::mem::size_of::<Option<Entry>>());
    }

    #[test]
    fn an_object_held_under_another_key_is_in_force_under_that_key() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nstatus: {podIP: 10.0.0.1}\n";
        let key = ResourceRef { kind: "Pod".into(), namespace: "shop".into(), name: "q".into() };
        let origin = Origin::Kubernetes {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "q".into(),
            resource_version: Some("1".into()),
        };
        let loaded = load_str(pod, None, &LoadOptions::default()).expect("yaml");
        let mut sources = Sources::new();
        let event = SourceEvent::Upsert { key: key.clone(), object: SourceObject { origin, loaded } };
        let Delta::Changes(changes) = sources.changes(event) else { panic!("one change") };
        let mut store = ConfigStore::default();
        let report = store.apply_changes(changes.clone()).report;
        assert_eq!((report.added, store.resource_refs().collect::<Vec<_>>()), (1, vec![key.clone()]));
        assert!(store.entry(&key).is_some());
        assert_eq!(store.ids(), [Arc::from("Pod shop/q")]);
        let report = store.apply_changes(changes).report;
        assert_eq!((report.added, report.updated, store.len()), (0, 0, 1));
        let report = store.apply_changes(vec![Change::Delete { key }]).report;
        assert_eq!((report.removed, store.len()), (1, 0));
    }

    #[test]
    fn ids_of_entries_are_those_of_their_resources() {
        let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\nspec: {gatewayClassName: c, listeners: [{name: http, port: 80, protocol: HTTP}]}\n";
        let text = format!("{VS}---\n{gateway}");
        let loaded = load(&text);
        let ids: Vec<ResourceRef> = loaded.resources.iter().map(Resource::id).collect();
        assert_eq!(ids.len(), 2);
        let mut store = ConfigStore::default();
        store.apply(loaded);
        assert_eq!(store.resource_refs().collect::<Vec<_>>(), ids);
        for id in &ids {
            assert!(store.entry(id).is_some_and(|e| e.is(id) && e.id() == *id), "{id}");
        }
    }

    #[test]
    fn kept_resources_read_back_as_loaded() {
        let mut store = ConfigStore::default();
        let loaded = load(VS);
        let original = loaded.resources.clone();
        store.apply(loaded);
        let back = store.resources();
        assert_eq!(back, original);
        assert_eq!(back[0].spec_node, original[0].spec_node, "the tree, lines included");
        assert_eq!((store.len(), store.is_empty()), (1, false));
    }

    #[test]
    fn moved_lines_are_no_update_and_last_good_keeps_its_lines() {
        let mut store = ConfigStore::default();
        store.apply(load(VS));
        let moved = format!("\n\n{}", VS.replace("subset: v2", "subset: \"v2\""));
        let report = store.apply(load(&moved));
        assert_eq!((report.updated, report.has_rejections()), (0, false), "same content on other lines, quoted");
        let report = store.apply(load(&VS.replace("timeout: 1s", "timeout: 1s\n    subset: x")));
        assert_eq!(report.updated, 0);
        assert_eq!(report.kept_last_good.len(), 1, "{:?}", report.diagnostics);
        // The DestinationRule with subset v2 is missing: the analysis names the kept version's
        // line, which is that of the load before (two lines down).
        let missing =
            (report.diagnostics.iter()).find(|d| d.code.is_some() && d.path.ends_with("subset")).expect("analysed");
        assert_eq!(missing.line, 10, "{missing}");
        let report = store.apply(load(&VS.replace("timeout: 1s", "timeout: 2s")));
        assert_eq!((report.updated, report.has_rejections()), (1, false));
    }
}
