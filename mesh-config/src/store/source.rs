//! The config-source seam: every way configuration arrives (files, the Kubernetes API, later an
//! xDS stream) yields **objects**, each with its [`Origin`], as upserts, deletes and whole
//! replacements after a (re)list; [`Sources`] holds what each source holds now and merges it
//! into the one [`Loaded`] that [`ConfigStore::apply`](super::ConfigStore::apply) makes the
//! desired state. Nothing downstream of the store knows where a resource came from except
//! [`Sources::origin`], which `/config_dump` shows.
//!
//! - **Files** are one unit: each reload reads them all again ([`Sources::set_files`]); a file
//!   that does not parse changes nothing (the store keeps what it held).
//! - **Objects** (one API object each: a Kubernetes Service, an Istio VirtualService read from
//!   the API server...) come and go one at a time ([`SourceEvent::Upsert`],
//!   [`SourceEvent::Delete`]) or, after a list, per [`Scope`] ([`SourceEvent::Replace`]: what
//!   the list did not name is gone, so deletions missed while a watch was away disappear). An
//!   object that did not decode carries its diagnostics in its [`Loaded`] and no resource: the
//!   store then keeps its last good version, or leaves it out.
//!
//! An object of the same kind, namespace and name as a file's resource wins over the file's
//! (it comes later in the merge, and the store takes the later of duplicates).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use super::compact::{KubeObject, Sharing};
use super::{Change, HeldObject};
use crate::diag::{Diagnostic, ResourceRef, Severity};
use crate::load::Loaded;
use crate::types::Resource;

/// Where a resource in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file (or a string, `file` `<string>`), at a line.
    File {
        /// The file.
        file: Arc<str>,
        /// Line of the document.
        line: u32,
    },
    /// The Kubernetes API server.
    Kubernetes {
        /// `kind`.
        kind: Arc<str>,
        /// `metadata.namespace` (empty for cluster-scoped kinds).
        namespace: Arc<str>,
        /// `metadata.name`.
        name: Arc<str>,
        /// `metadata.resourceVersion` of the version last received.
        resource_version: Option<Arc<str>>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "{file}:{line}"),
            Origin::Kubernetes { kind, namespace, name, resource_version } => {
                write!(f, "kubernetes {kind} {namespace}/{name}")?;
                match resource_version {
                    Some(rv) => write!(f, " resourceVersion {rv}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One diagnostic as a line: `FILE:LINE: KIND NAMESPACE/NAME: field.path: message` as
/// [`Diagnostic`]'s `Display` writes it, or without `FILE:LINE: ` when it has no file but names
/// a resource — an object read from an API server, whose kind, namespace and name say where it
/// is (`mesh validate --kubernetes`, logs, `/config_dump`).
pub fn diagnostic_line(d: &Diagnostic) -> String {
    let text = d.to_string();
    match (&d.file, text.split_once(": ")) {
        (None, Some((_, rest))) if d.resource.is_some() => rest.to_string(),
        _ => text,
    }
}

/// Which objects one list covers: a kind, in one namespace or in all (`None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// The kind (`Service`, `VirtualService`...).
    pub kind: Arc<str>,
    /// The namespace listed, or `None` for all namespaces (and for cluster-scoped kinds).
    pub namespace: Option<Arc<str>>,
}

impl Scope {
    fn covers(&self, key: &(impl Keyed + ?Sized)) -> bool {
        let (kind, namespace, _) = key.parts();
        *self.kind == *kind && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} in {ns}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// One object as a source holds it: what loading it gave (its resource, or only diagnostics
/// when it did not decode), and where it came from.
#[derive(Debug, Clone)]
pub struct SourceObject {
    /// Where it came from.
    pub origin: Origin,
    /// Its load: one resource, or none and error diagnostics.
    pub loaded: Loaded,
}

impl SourceObject {
    /// An object that could not be read at all: one error naming it, no resource (the store
    /// keeps its last good version).
    pub fn undecodable(key: &ResourceRef, origin: Origin, message: String) -> SourceObject {
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            code: None,
            file: None,
            line: 0,
            resource: Some(key.clone()),
            path: String::new(),
            message,
        };
        SourceObject { origin, loaded: Loaded { diagnostics: vec![diagnostic], ..Loaded::default() } }
    }

    /// Let go of what only gave lines to messages of a Kubernetes object that has no file (an
    /// API server's, decoded from one line of JSON: its messages are named by kind, namespace,
    /// name and field path, never by line). [`Sources`] does it to every object it takes;
    /// a source that buffers many objects (a list) may do it first.
    pub fn without_lines(mut self) -> Self {
        self.strip_lines();
        self
    }

    fn strip_lines(&mut self) {
        self.loaded.resources.iter_mut().for_each(super::strip_lines);
    }

    fn resource_version(&self) -> Option<&str> {
        match &self.origin {
            Origin::Kubernetes { resource_version, .. } => resource_version.as_deref(),
            Origin::File { .. } => None,
        }
    }
}

/// A change from a source.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// An object was added or changed.
    Upsert {
        /// Its kind, namespace and name.
        key: ResourceRef,
        /// The object.
        object: SourceObject,
    },
    /// An object was deleted.
    Delete {
        /// Its kind, namespace and name.
        key: ResourceRef,
    },
    /// Part of a list of `scope` still being read: held aside, compact and not in force, until
    /// the list's [`SourceEvent::Replace`], which then stands for these parts and its own
    /// objects (a source need not hold a list of 100,000 objects whole to hand it on). `first`:
    /// the first part of a list, which drops any part held from a list that did not finish.
    Listing {
        /// What the list covers.
        scope: Scope,
        /// The first part of this list.
        first: bool,
        /// Objects of the list.
        objects: Vec<(ResourceRef, SourceObject)>,
    },
    /// A list of `scope` finished: these (and the [`SourceEvent::Listing`] parts before) are
    /// all its objects; any other held in the scope is gone.
    Replace {
        /// What the list covered.
        scope: Scope,
        /// Every object it returned.
        objects: Vec<(ResourceRef, SourceObject)>,
    },
}

/// What one [`SourceEvent`] asks of the store ([`Sources::changes`]).
#[derive(Debug, Clone)]
pub enum Delta {
    /// Nothing changed.
    Unchanged,
    /// These changes, for [`ConfigStore::apply_changes`](super::ConfigStore::apply_changes).
    Changes(Vec<Change>),
    /// The event is taken, and the store should take the whole [`Sources::merged`] (a list
    /// replaced a scope, or an object that hid a file's resource of its name is gone).
    Whole,
}

/// One object as [`Sources`] holds it, with its key (kind, namespace and name): its Kubernetes
/// resource, if it is one, compact and shared with the store
/// ([`ConfigStore::share_objects`](super::ConfigStore::share_objects)), and the rest of its load.
/// A cluster's Pods are held one each, so the common case — an API server's object that loaded
/// as one Kubernetes resource of its key's name, at a numeric resourceVersion — is 24 bytes:
/// the object (which holds the key's texts) and the version. Anything else is boxed with its key.
#[derive(Debug, Clone)]
enum Held {
    /// The object is all there is, its kind, namespace and name are the key, and its
    /// resourceVersion is this number ([`HeldOrigin::KubernetesAt`]).
    Object { object: Arc<KubeObject>, version: u64 },
    /// Any other object.
    Other(Box<HeldAny>),
}

/// [`Held::Other`].
#[derive(Debug, Clone)]
struct HeldAny {
    key: ResourceRef,
    origin: HeldOrigin,
    /// What is left of its load besides `object` (`None`: nothing).
    loaded: Option<Box<Loaded>>,
    object: Option<Arc<KubeObject>>,
}

/// An object's [`Origin`], without what its key already says.
#[derive(Debug, Clone)]
enum HeldOrigin {
    /// `Origin::Kubernetes` of the key's kind, namespace and name whose resourceVersion is a
    /// number, written as the number prints (what API servers write): kept as the number.
    KubernetesAt(u64),
    /// `Origin::Kubernetes` of the key's kind, namespace and name.
    Kubernetes { resource_version: Option<Arc<str>> },
    /// Any other origin.
    Other(Box<Origin>),
}

/// `text` as a number, when it is one written as the number prints (no sign, no leading zero).
fn canonical_number(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    (digits && (text == "0" || !text.starts_with('0'))).then(|| text.parse().ok()).flatten()
}

impl HeldOrigin {
    fn new(key: &ResourceRef, origin: Origin) -> HeldOrigin {
        match origin {
            Origin::Kubernetes { kind, namespace, name, resource_version }
                if kind == key.kind && namespace == key.namespace && name == key.name =>
            {
                match resource_version.as_deref().and_then(canonical_number) {
                    Some(n) => HeldOrigin::KubernetesAt(n),
                    None => HeldOrigin::Kubernetes { resource_version },
                }
            }
            other => HeldOrigin::Other(Box::new(other)),
        }
    }

    fn origin(&self, key: ResourceRef) -> Origin {
        let ResourceRef { kind, namespace, name } = key;
        let kubernetes = |resource_version| Origin::Kubernetes { kind, namespace, name, resource_version };
        match self {
            HeldOrigin::KubernetesAt(n) => kubernetes(Some(Arc::from(n.to_string()))),
            HeldOrigin::Kubernetes { resource_version } => kubernetes(resource_version.clone()),
            HeldOrigin::Other(origin) => (**origin).clone(),
        }
    }

    /// Is this the resourceVersion `other` (both known and the same)?
    fn is_version(&self, other: Option<&str>) -> bool {
        let Some(other) = other else { return false };
        match self {
            HeldOrigin::KubernetesAt(n) => canonical_number(other) == Some(*n),
            HeldOrigin::Kubernetes { resource_version } => resource_version.as_deref() == Some(other),
            HeldOrigin::Other(origin) => match &**origin {
                Origin::Kubernetes { resource_version, .. } => resource_version.as_deref() == Some(other),
                Origin::File { .. } => false,
            },
        }
    }
}

/// What a held object is found by: its key's kind, namespace and name, compared as
/// [`ResourceRef`]'s order compares them (so [`Sources`] holds objects in key order, and looks
/// one up by a [`ResourceRef`] without a copy of the key in each).
trait Keyed {
    fn parts(&self) -> (&str, &str, &str);
}

impl Keyed for ResourceRef {
    fn parts(&self) -> (&str, &str, &str) {
        (&self.kind, &self.namespace, &self.name)
    }
}

impl Keyed for Held {
    fn parts(&self) -> (&str, &str, &str) {
        match self {
            Held::Object { object, .. } => (object.kind().as_str(), object.namespace(), object.name()),
            Held::Other(any) => any.key.parts(),
        }
    }
}

impl PartialEq for dyn Keyed + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn Keyed + '_ {}

impl PartialOrd for dyn Keyed + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn Keyed + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl<'a> std::borrow::Borrow<dyn Keyed + 'a> for Held {
    fn borrow(&self) -> &(dyn Keyed + 'a) {
        self
    }
}

/// `key` as [`Sources`]' set of held objects looks it up.
fn by_key(key: &ResourceRef) -> &dyn Keyed {
    key
}

impl Held {
    fn new(key: ResourceRef, mut o: SourceObject, shared: &mut Sharing) -> Held {
        o.strip_lines();
        let mut object = None;
        if o.loaded.resources.len() == 1
            && let Some(r) = o.loaded.resources.pop()
        {
            match KubeObject::new_shared(r, &key, shared) {
                Ok(k) => object = Some(Arc::new(k)),
                Err(r) => o.loaded.resources.push(*r),
            }
        }
        let l = &o.loaded;
        let empty = l.resources.is_empty() && l.diagnostics.is_empty() && l.skipped.is_empty() && l.failed.is_empty();
        let loaded = (!empty).then(|| Box::new(o.loaded));
        let origin = HeldOrigin::new(&key, o.origin);
        match (origin, loaded, object) {
            (HeldOrigin::KubernetesAt(version), None, Some(object))
                if object.kind().as_str() == &*key.kind
                    && *object.namespace() == key.namespace
                    && *object.name() == key.name =>
            {
                Held::Object { object, version }
            }
            (origin, loaded, object) => Held::Other(Box::new(HeldAny { key, origin, loaded, object })),
        }
    }

    /// Its key.
    fn key(&self) -> ResourceRef {
        match self {
            Held::Object { object, .. } => ResourceRef {
                kind: super::kind_text(object.kind()),
                namespace: object.namespace().clone(),
                name: object.name().clone(),
            },
            Held::Other(any) => any.key.clone(),
        }
    }

    fn origin(&self) -> Origin {
        match self {
            Held::Object { version, .. } => HeldOrigin::KubernetesAt(*version).origin(self.key()),
            Held::Other(any) => any.origin.origin(any.key.clone()),
        }
    }

    fn is_version(&self, other: Option<&str>) -> bool {
        match self {
            Held::Object { version, .. } => HeldOrigin::KubernetesAt(*version).is_version(other),
            Held::Other(any) => any.origin.is_version(other),
        }
    }

    fn object(&self) -> Option<&Arc<KubeObject>> {
        match self {
            Held::Object { object, .. } => Some(object),
            Held::Other(any) => any.object.as_ref(),
        }
    }

    fn loaded(&self) -> &Loaded {
        static EMPTY: Loaded =
            Loaded { resources: Vec::new(), diagnostics: Vec::new(), skipped: Vec::new(), failed: Vec::new() };
        match self {
            Held::Other(any) => any.loaded.as_deref().unwrap_or(&EMPTY),
            Held::Object { .. } => &EMPTY,
        }
    }

    fn resources(&self) -> impl Iterator<Item = Resource> + '_ {
        self.loaded().resources.iter().cloned().chain(self.object().map(|o| o.resource()))
    }

    /// As the store takes it, without a copy.
    fn change(&self) -> Change {
        let loaded = match self {
            Held::Other(any) => any.loaded.clone(),
            Held::Object { .. } => None,
        };
        let object = HeldObject { loaded, object: self.object().cloned() };
        Change::Held { key: self.key(), object }
    }
}

/// [`Sources::whole_changes`]: the changes, one at a time.
#[derive(Debug)]
pub struct WholeChanges<'a> {
    objects: std::collections::btree_set::Iter<'a, Held>,
    gone: std::collections::btree_set::IntoIter<ResourceRef>,
}

impl Iterator for WholeChanges<'_> {
    type Item = Change;

    fn next(&mut self) -> Option<Change> {
        match self.objects.next() {
            Some(held) => Some(held.change()),
            None => self.gone.next().map(|key| Change::Delete { key }),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.objects.len() + self.gone.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for WholeChanges<'_> {}

/// What every source holds now (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Loaded,
    /// The objects, in key order (found by key: [`by_key`]).
    objects: BTreeSet<Held>,
    /// Parts of lists still being read.
    listing: BTreeMap<Scope, Vec<Held>>,
    /// One copy of each Pod label set, kind, namespace and apiVersion the objects hold.
    shared: Sharing,
}

impl Sources {
    /// No files, no objects.
    pub fn new() -> Self {
        Sources::default()
    }

    /// The files, as read now.
    pub fn set_files(&mut self, loaded: Loaded) {
        self.files = loaded;
    }

    /// Take one change. Returns whether anything changed (an upsert of the resourceVersion
    /// already held changes nothing).
    pub fn apply(&mut self, event: SourceEvent) -> bool {
        match event {
            SourceEvent::Upsert { key, object } => {
                let old = self.objects.get(by_key(&key));
                if old.is_some_and(|old| old.is_version(object.resource_version())) {
                    return false;
                }
                let held = self.hold(key, object);
                self.objects.replace(held);
                true
            }
            SourceEvent::Delete { key } => self.objects.remove(by_key(&key)),
            SourceEvent::Listing { scope, first, objects } => {
                let held: Vec<Held> = objects
                    .into_iter()
                    .filter(|(key, _)| {
                        let inside = scope.covers(key);
                        if !inside {
                            tracing::debug!(target: "meshwork::config", %key, %scope, "object outside its list's scope: ignored");
                        }
                        inside
                    })
                    .map(|(key, object)| self.hold(key, object))
                    .collect();
                match self.listing.get_mut(&scope) {
                    Some(parts) if !first => parts.extend(held),
                    _ => {
                        self.listing.insert(scope, held);
                    }
                }
                false
            }
            SourceEvent::Replace { scope, objects } => {
                let parts = self.listing.remove(&scope).unwrap_or_default();
                let before = self.objects.len();
                self.objects.retain(|h| !scope.covers(h));
                let mut changed = self.objects.len() != before || !objects.is_empty() || !parts.is_empty();
                let mut listed = parts;
                for (key, object) in objects {
                    if scope.covers(&key) {
                        listed.push(self.hold(key, object));
                    } else {
                        changed = true;
                        tracing::debug!(target: "meshwork::config", %key, %scope, "object outside its list's scope: ignored");
                    }
                }
                // Built again from a sorted list (the later of one key winning, as inserting
                // them in turn would): its nodes full, where inserting a list's keys in order
                // leaves each node half empty.
                let others = std::mem::take(&mut self.objects);
                self.objects = others.into_iter().chain(listed).collect();
                changed
            }
        }
    }

    /// `object` as held, its key's kind and namespace spelled as every other key spells them
    /// (one copy each).
    fn hold(&mut self, mut key: ResourceRef, object: SourceObject) -> Held {
        self.shared.names.share(&mut key.kind);
        self.shared.names.share(&mut key.namespace);
        Held::new(key, object, &mut self.shared)
    }

    /// Take one change, as [`Sources::apply`] does, and say what the store must take for it: the
    /// changed object alone when it can ([`Delta::Changes`]), so that a watch event costs the
    /// store one resource's work.
    pub fn changes(&mut self, event: SourceEvent) -> Delta {
        match event {
            SourceEvent::Upsert { key, object } => {
                if !self.apply(SourceEvent::Upsert { key: key.clone(), object }) {
                    return Delta::Unchanged;
                }
                match self.objects.get(by_key(&key)) {
                    Some(object) => Delta::Changes(vec![object.change()]),
                    None => Delta::Whole,
                }
            }
            SourceEvent::Delete { key } => {
                if !self.objects.remove(by_key(&key)) {
                    return Delta::Unchanged;
                }
                let in_files = self.files.resources.iter().any(|r| r.id() == key)
                    || self.files.diagnostics.iter().any(|d| d.resource.as_ref() == Some(&key));
                if in_files { Delta::Whole } else { Delta::Changes(vec![Change::Delete { key }]) }
            }
            listing @ SourceEvent::Listing { .. } => {
                self.apply(listing);
                Delta::Unchanged
            }
            replace @ SourceEvent::Replace { .. } => {
                if self.apply(replace) {
                    Delta::Whole
                } else {
                    Delta::Unchanged
                }
            }
        }
    }

    /// Everything the sources hold, as changes that make a store that holds `known` (the ids
    /// it has in force or has rejections for) hold it: every object ([`Change::Held`], no copy)
    /// and a delete of every other known id, made one at a time as
    /// [`ConfigStore::apply_changes`](super::ConfigStore::apply_changes) takes them. `None`
    /// when files hold anything: the whole [`Sources::merged`] must be applied then (files have
    /// their own rules: a file that does not parse changes nothing, duplicates are reported).
    pub fn whole_changes(&self, known: impl IntoIterator<Item = ResourceRef>) -> Option<WholeChanges<'_>> {
        let files = &self.files;
        if !(files.resources.is_empty()
            && files.diagnostics.is_empty()
            && files.failed.is_empty()
            && files.skipped.is_empty())
        {
            return None;
        }
        let gone: BTreeSet<ResourceRef> = known.into_iter().filter(|k| !self.objects.contains(by_key(k))).collect();
        Some(WholeChanges { objects: self.objects.iter(), gone: gone.into_iter() })
    }

    /// How many objects the sources other than files hold.
    pub fn objects(&self) -> usize {
        self.objects.len()
    }

    /// Everything, as one load: the files' resources, then every object's (in kind, namespace,
    /// name order).
    pub fn merged(&self) -> Loaded {
        let mut out = self.files.clone();
        for object in &self.objects {
            out.resources.extend(object.resources());
            let loaded = object.loaded();
            out.diagnostics.extend(loaded.diagnostics.iter().cloned());
            out.skipped.extend(loaded.skipped.iter().cloned());
            out.failed.extend(loaded.failed.iter().cloned());
        }
        out
    }

    /// The compact Kubernetes object held as `key`.
    pub(crate) fn kube_object(&self, key: &ResourceRef) -> Option<&Arc<KubeObject>> {
        self.objects.get(by_key(key))?.object()
    }

    /// The keys of the objects held.
    pub(crate) fn keys(&self) -> impl Iterator<Item = ResourceRef> + '_ {
        self.objects.iter().map(|held| held.key())
    }

    /// Where the resource `id` comes from: an object of that kind, namespace and name, else the
    /// file that holds it (its last occurrence), else `None`.
    pub fn origin(&self, id: &ResourceRef) -> Option<Origin> {
        if let Some(object) = self.objects.get(by_key(id)) {
            return Some(object.origin());
        }
        (self.files.resources.iter().rev())
            .find(|r| r.id() == *id)
            .map(|r| Origin::File { file: r.file.clone().unwrap_or_else(|| Arc::from("<string>")), line: r.line })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load_str};

    fn object(kind: &str, ns: &str, name: &str, rv: &str, text: &str) -> (ResourceRef, SourceObject) {
        let key = ResourceRef { kind: kind.into(), namespace: ns.into(), name: name.into() };
        let origin = Origin::Kubernetes {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            resource_version: Some(rv.into()),
        };
        let loaded = load_str(text, None, &LoadOptions::default()).expect("yaml");
        (key, SourceObject { origin, loaded })
    }

    fn vs(name: &str, ns: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{hosts: [{name}], http: [{{route: [{{destination: {{host: {name}}}}}]}}]}}\n"
        )
    }

    #[test]
    fn upserts_deletes_and_replaces_per_scope() {
        let mut sources = Sources::new();
        let (a, oa) = object("VirtualService", "x", "a", "1", &vs("a", "x"));
        let (b, ob) = object("VirtualService", "y", "b", "2", &vs("b", "y"));
        assert!(sources.apply(SourceEvent::Upsert { key: a.clone(), object: oa.clone() }));
        assert!(!sources.apply(SourceEvent::Upsert { key: a.clone(), object: oa }), "same resourceVersion");
        assert!(sources.apply(SourceEvent::Upsert { key: b.clone(), object: ob }));
        assert_eq!(sources.merged().resources.len(), 2);
        // A relist of namespace x that no longer names `a`: `a` is gone, `b` (namespace y) stays.
        let scope = Scope { kind: "VirtualService".into(), namespace: Some("x".into()) };
        assert!(sources.apply(SourceEvent::Replace { scope, objects: vec![] }));
        assert_eq!(sources.origin(&a), None);
        assert!(
            matches!(sources.origin(&b), Some(Origin::Kubernetes { resource_version: Some(rv), .. }) if &*rv == "2")
        );
        assert!(sources.apply(SourceEvent::Delete { key: b }));
        assert_eq!(sources.objects(), 0);
    }

    #[test]
    fn a_list_in_parts_is_held_aside_until_its_replace() {
        let mut sources = Sources::new();
        let scope = Scope { kind: "VirtualService".into(), namespace: None };
        let (a, oa) = object("VirtualService", "x", "a", "1", &vs("a", "x"));
        let (b, ob) = object("VirtualService", "x", "b", "2", &vs("b", "x"));
        let (c, oc) = object("VirtualService", "x", "c", "3", &vs("c", "x"));
        assert!(sources.apply(SourceEvent::Upsert { key: c.clone(), object: oc }));
        // A list that does not finish, then a new one: its first part drops the old part.
        let part = |first, objects| SourceEvent::Listing { scope: scope.clone(), first, objects };
        assert!(!sources.apply(part(true, vec![(b.clone(), ob.clone())])));
        assert!(!sources.apply(part(true, vec![(a.clone(), oa)])));
        assert_eq!(sources.objects(), 1, "parts are not in force");
        assert!(matches!(sources.changes(part(false, vec![])), Delta::Unchanged));
        assert!(sources.apply(SourceEvent::Replace { scope: scope.clone(), objects: vec![] }));
        assert_eq!(sources.merged().resources.iter().map(|r| r.name.to_string()).collect::<Vec<_>>(), ["a"]);
        // A list without parts takes no part held before.
        assert!(!sources.apply(part(true, vec![(b.clone(), ob)])));
        assert!(!sources.apply(part(true, vec![])));
        assert!(sources.apply(SourceEvent::Replace { scope, objects: vec![] }));
        assert_eq!(sources.objects(), 0);
    }

    #[test]
    fn a_resource_version_is_compared_as_the_api_server_wrote_it() {
        let mut sources = Sources::new();
        for rv in ["12", "007", "abc", "0"] {
            let (key, held) = object("VirtualService", "x", "a", rv, &vs("a", "x"));
            assert!(sources.apply(SourceEvent::Upsert { key: key.clone(), object: held.clone() }), "{rv}: new");
            assert!(!sources.apply(SourceEvent::Upsert { key: key.clone(), object: held }), "{rv}: the same version");
            assert!(
                matches!(sources.origin(&key), Some(Origin::Kubernetes { resource_version: Some(v), .. }) if &*v == rv),
                "{rv}: shown as written"
            );
        }
        // "7" is not "007", nor "+12" "12".
        for (held, other) in [("007", "7"), ("12", "+12"), ("12", "012")] {
            let (key, first) = object("VirtualService", "x", "b", held, &vs("b", "x"));
            sources.apply(SourceEvent::Upsert { key, object: first });
            let (key, second) = object("VirtualService", "x", "b", other, &vs("b", "x"));
            assert!(sources.apply(SourceEvent::Upsert { key, object: second }), "{held} then {other}");
        }
    }

    fn pod(name: &str, app: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: x, labels: {{app: {app}, version: v1}}}}\nstatus: {{podIP: 10.0.0.1}}\n"
        )
    }

    fn labels_of(sources: &Sources, key: &ResourceRef) -> crate::types::kube::Labels {
        match sources.kube_object(key).and_then(|o| o.pod()) {
            Some(p) => p.labels().clone(),
            None => panic!("{key}: not a Pod"),
        }
    }

    #[test]
    fn pods_of_one_workload_share_one_label_map_and_unused_maps_go() {
        let mut sources = Sources::new();
        let upsert = |sources: &mut Sources, name: &str, app: &str, rv: &str| {
            let (key, object) = object("Pod", "x", name, rv, &pod(name, app));
            assert!(sources.apply(SourceEvent::Upsert { key: key.clone(), object }));
            key
        };
        let keys: Vec<ResourceRef> = (0..10).map(|i| upsert(&mut sources, &format!("a-{i}"), "a", "1")).collect();
        let shared = labels_of(&sources, &keys[0]);
        assert_eq!(shared.get("app").map(String::as_str), Some("a"));
        assert!(keys.iter().all(|k| labels_of(&sources, k).ptr_eq(&shared)));
        // Held as the object alone, whose name and namespace are its key's (one namespace name
        // for all), not copies.
        let held = sources.objects.get(by_key(&keys[3])).expect("held");
        assert!(matches!(held, Held::Object { version: 1, .. }), "{held:?}");
        let object = sources.kube_object(&keys[3]).expect("held");
        let Some(pod) = object.pod() else { panic!("a Pod") };
        assert!(Arc::ptr_eq(pod.name_arc(), object.name()));
        assert!(Arc::ptr_eq(pod.namespace_arc(), object.namespace()));
        let first = sources.kube_object(&keys[0]).expect("held");
        assert!(Arc::ptr_eq(first.namespace(), object.namespace()), "one namespace name for all keys");
        let key = sources.keys().nth(3).expect("a key");
        assert_eq!(key, keys[3], "keys given back as they were");
        assert!(Arc::ptr_eq(&key.kind, &sources.keys().next().expect("a key").kind));
        // Relabelled: its own labels, as written; the others keep theirs.
        upsert(&mut sources, "a-0", "b", "2");
        assert_eq!(labels_of(&sources, &keys[0]).get("app").map(String::as_str), Some("b"));
        assert!(labels_of(&sources, &keys[1]).ptr_eq(&shared));
        // Pods that come and go, each with labels of its own, leave no maps behind them.
        for i in 0..1000 {
            let key = upsert(&mut sources, &format!("c-{i}"), &format!("c{i}"), "1");
            assert!(sources.apply(SourceEvent::Delete { key }));
        }
        assert!(sources.shared.labels.len() <= 64, "{} label sets held for 2 in use", sources.shared.labels.len());
        assert_eq!(sources.merged().resources.len(), 10);
    }

    #[test]
    fn an_object_held_alone_is_24_bytes_and_any_other_keeps_its_key_and_version() {
        assert!(std::mem::size_of::<Held>() <= 24, "{} bytes", std::mem::size_of::<Held>());
        let mut sources = Sources::new();
        // A key the object does not spell (another namespace), and versions that are not
        // numbers as they print: held boxed, with the key and the version as given.
        for (key_ns, rv) in [("elsewhere", "3"), ("x", "007"), ("x", "abc")] {
            let (_, object) = object("Pod", key_ns, "p", rv, &pod("p", "a"));
            let key = ResourceRef { kind: "Pod".into(), namespace: key_ns.into(), name: "p".into() };
            assert!(sources.apply(SourceEvent::Upsert { key: key.clone(), object: object.clone() }));
            assert!(!sources.apply(SourceEvent::Upsert { key: key.clone(), object }), "{rv}: the same version");
            assert!(matches!(sources.objects.get(by_key(&key)), Some(Held::Other(_))));
            assert!(
                matches!(sources.origin(&key), Some(Origin::Kubernetes { resource_version: Some(v), namespace, .. })
                    if &*v == rv && *namespace == *key_ns)
            );
            assert!(sources.keys().any(|k| k == key));
        }
        let merged = sources.merged();
        assert_eq!(merged.resources.len(), 2, "elsewhere/p and x/p");
        assert!(sources.apply(SourceEvent::Delete {
            key: ResourceRef { kind: "Pod".into(), namespace: "elsewhere".into(), name: "p".into() }
        }));
        assert_eq!(sources.objects(), 1);
    }

    #[test]
    fn an_api_objects_diagnostic_has_no_file_and_line() {
        let bad = vs("a", "x").replace("http: [", "http: [{timeout: soon}, ");
        let (_, object) = object("VirtualService", "x", "a", "1", &bad);
        let mut store = crate::ConfigStore::default();
        let report = store.apply(object.loaded);
        let lines: Vec<String> = report.errors().map(diagnostic_line).collect();
        assert!(lines.iter().any(|l| l.starts_with("VirtualService x/a: http[0]")), "{lines:?}");
        let from_file = load_str(&bad, Some("a.yaml"), &LoadOptions::default()).expect("yaml");
        let report = store.apply(from_file);
        assert!(report.errors().map(diagnostic_line).all(|l| l.starts_with("a.yaml:")));
    }

    #[test]
    fn an_object_wins_over_a_file_of_the_same_name() {
        let mut sources = Sources::new();
        sources.set_files(load_str(&vs("a", "x"), Some("a.yaml"), &LoadOptions::default()).expect("yaml"));
        let (a, oa) = object("VirtualService", "x", "a", "7", &vs("a", "x"));
        assert!(matches!(sources.origin(&a), Some(Origin::File { line: 1, .. })));
        sources.apply(SourceEvent::Upsert { key: a.clone(), object: oa });
        assert!(matches!(sources.origin(&a), Some(Origin::Kubernetes { .. })));
        let merged = sources.merged();
        assert_eq!(merged.resources.len(), 2, "both reach the store, which takes the later");
        assert_eq!(merged.resources[1].file, None);
    }
}
