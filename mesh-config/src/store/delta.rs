//! [`ConfigStore::apply_changes`]: one object at a time, with work proportional to the change.
//!
//! [`ConfigStore::apply`] states the whole desired configuration; a watch instead knows which
//! objects changed. `apply_changes` takes those ([`Change`]: an upsert or a delete of one
//! resource id) with the same per-resource semantics (a valid new version is taken, an invalid
//! one keeps the last good version or stays out, every rejection is reported and logged once),
//! and validates only the changed resources. What it compiles depends on what changed:
//!
//! - only EndpointSlices and Pods: the Kubernetes Services whose endpoints they can change (a
//!   slice's Service; the Services of the slices that name a Pod or list one of its IPs) are
//!   compiled again, each from its own slices and Pods, and handed back as
//!   [`Recompiled::Endpoints`] — every declaration of each such host, ready for the endpoint
//!   registry. The snapshot is **not** rebuilt: routes, policies and every other Service stay
//!   as compiled, and [`ConfigStore::snapshot`] keeps the declarations of the last whole compile
//!   (only the registry reads their endpoints);
//! - anything else: the whole snapshot is compiled again from what is in force
//!   ([`Recompiled::Snapshot`]), with the cross-resource analysis — no merge, no comparison or
//!   validation of unchanged resources;
//! - nothing in force changed (every change rejected, or equal to what is in force):
//!   [`Recompiled::Nothing`].

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use mesh_core::service::ServiceDecl;

use super::compact::{KubeObject, Part};
use super::kube_index::Name;
use super::{ConfigStore, Entry, Kept};
use crate::analyze::analyze;
use crate::compile::{Compiled, compile_with, kubernetes_service};
use crate::diag::{Diagnostic, ResourceRef};
use crate::load::Loaded;
use crate::store::ApplyReport;
use crate::types::{Kind, Resource};
use crate::validate::validate;

/// One change of one resource, for [`ConfigStore::apply_changes`].
#[derive(Debug, Clone)]
pub enum Change {
    /// The resource `key` as loaded now: its one resource, or none and the error diagnostics
    /// that kept it from decoding (then its last good version stays).
    Upsert {
        /// Kind, namespace and name.
        key: ResourceRef,
        /// Its load (boxed: a first load hands the store a list of 100,000 changes).
        loaded: Box<Loaded>,
    },
    /// The object `key` as [`Sources`](super::Sources) holds it ([`Sources::changes`],
    /// [`Sources::whole_changes`](super::Sources::whole_changes)): taken as an upsert of its
    /// load, without a copy (the store keeps the very object the sources hold).
    ///
    /// [`Sources::changes`]: super::Sources::changes
    Held {
        /// Kind, namespace and name.
        key: ResourceRef,
        /// The object.
        object: HeldObject,
    },
    /// The resource `key` is gone.
    Delete {
        /// Kind, namespace and name.
        key: ResourceRef,
    },
}

/// An object as [`Sources`](super::Sources) holds it, for [`Change::Held`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct HeldObject {
    /// Its load, its Kubernetes resource (if it is one) taken out into `object` (`None`:
    /// nothing else, as for every object that loaded as one Kubernetes resource).
    pub(crate) loaded: Option<Box<Loaded>>,
    pub(crate) object: Option<Arc<KubeObject>>,
}

/// A new version: a resource, or a compact Kubernetes object shared with the sources.
enum Version {
    Resource(Box<Resource>),
    Shared(Arc<KubeObject>),
}

/// Every declaration of one host, after an endpoint change: what the registry's endpoints of
/// the host are made from.
#[derive(Debug, Clone)]
pub struct HostServices {
    /// The host (a Kubernetes Service's FQDN).
    pub host: Arc<str>,
    /// Every declaration of the host in force, in config order (the Kubernetes Service's,
    /// compiled again, and any ServiceEntry's of the same host).
    pub services: Vec<Arc<ServiceDecl>>,
}

/// What [`ConfigStore::apply_changes`] compiled.
#[derive(Debug, Clone)]
pub enum Recompiled {
    /// Nothing in force changed: snapshot and endpoints are as they were.
    Nothing,
    /// Only endpoints changed: these hosts' declarations, compiled again. The snapshot was not
    /// rebuilt.
    Endpoints(Vec<HostServices>),
    /// The snapshot was compiled again ([`ConfigStore::snapshot`]).
    Snapshot,
}

/// What [`ConfigStore::apply_changes`] did.
#[derive(Debug, Clone)]
pub struct DeltaReport {
    /// As [`ConfigStore::apply`] reports, for the changed resources (their load and validation
    /// diagnostics; compile and analysis diagnostics when the snapshot was compiled again).
    pub report: ApplyReport,
    /// What was compiled.
    pub recompiled: Recompiled,
}

/// Is this a kind whose change only moves endpoints (see the module docs)?
fn endpoint_kind(kind: Kind) -> bool {
    matches!(kind, Kind::EndpointSlice | Kind::Pod)
}

/// What the changes of one apply touched.
#[derive(Default)]
struct Touched {
    /// Work out `services` (else the whole snapshot is compiled when anything changed).
    track: bool,
    any: bool,
    /// Something other than an EndpointSlice or a Pod changed.
    other: bool,
    services: BTreeSet<Name>,
}

impl ConfigStore {
    /// Take `changes` (see the module docs), in order. (Any iterator of them: a first load of
    /// 100,000 objects need not be a list of 100,000 changes first;
    /// [`Sources::whole_changes`](super::Sources::whole_changes) makes them one at a time.)
    pub fn apply_changes(&mut self, changes: impl IntoIterator<Item = Change>) -> DeltaReport {
        let changes = changes.into_iter();
        let mut report = ApplyReport::default();
        // (Only needed to drop the earlier errors of the changed ids.)
        let track_named = !self.input_errors.is_empty();
        let mut named: HashSet<ResourceRef> = HashSet::new();
        let mut errors: Vec<Diagnostic> = Vec::new();
        // A batch with another kind (a first load, a relist) is likely to compile everything:
        // from the first change of another kind on, which Services its endpoint changes touch is
        // not worked out, and if in the end nothing else changed, everything is compiled all the
        // same.
        let mut touched = Touched { track: true, ..Touched::default() };
        // A first load (nothing in force): room for its resources, where pushing them one by
        // one would leave up to as much again unused (the room left goes back at the end).
        let first = self.index.is_empty();
        if first {
            self.kept.reserve_exact(changes.size_hint().0);
        }
        for change in changes {
            let (Change::Upsert { key, .. } | Change::Held { key, .. } | Change::Delete { key }) = &change;
            if touched.track && !matches!(&*key.kind, "EndpointSlice" | "Pod") {
                touched.track = false;
                touched.services.clear();
            }
            match change {
                Change::Delete { key } => {
                    if let Some(old) = self.take_entry(&key) {
                        report.removed += 1;
                        self.note_gone(old, &mut touched);
                    }
                    if track_named {
                        named.insert(key);
                    }
                }
                Change::Upsert { key, loaded } => {
                    self.upsert(&key, *loaded, None, &mut report, &mut errors, &mut touched);
                    if track_named {
                        named.insert(key);
                    }
                }
                Change::Held { key, object } => {
                    let loaded = object.loaded.map(|l| *l).unwrap_or_default();
                    self.upsert(&key, loaded, object.object, &mut report, &mut errors, &mut touched);
                    if track_named {
                        named.insert(key);
                    }
                }
            }
        }
        self.compact();
        if first {
            // The room reserved for resources rejected or given twice goes back (one pass over
            // the list, once).
            self.kept.shrink_to_fit();
        }
        self.input_errors.retain(|d| d.resource.as_ref().is_none_or(|r| !named.contains(r)));
        self.input_errors.extend(errors);
        let recompiled = if !touched.any {
            Recompiled::Nothing
        } else if touched.other || !touched.track {
            let (compiled, analysis) = self.compile_in_force();
            let from = report.diagnostics.len();
            report.diagnostics.extend(compiled.diagnostics);
            report.diagnostics.extend(analysis);
            self.derived_errors = report.diagnostics[from..].iter().filter(|d| d.is_error()).cloned().collect();
            self.snapshot = compiled.snapshot;
            self.gateway_api = compiled.gateway_api;
            Recompiled::Snapshot
        } else {
            Recompiled::Endpoints(self.recompile_services(&touched.services))
        };
        self.publish_rejections();
        DeltaReport { report, recompiled }
    }

    /// Compile everything in force: the resources other than EndpointSlices, Pods and Nodes
    /// read back, and the endpoints of each Kubernetes Service from what the store's index
    /// says they are built from (no [`Resource`] made for each slice or Pod, and no index of
    /// every slice and Pod built for the compile: one Service's at a time, as an endpoint
    /// change recompiles it); with the cross-resource analysis (which reads none of those
    /// three kinds).
    fn compile_in_force(&self) -> (Compiled, Vec<Diagnostic>) {
        let resources: Vec<Resource> = (self.entries())
            .filter(|e| e.kept.view().is_none_or(|v| matches!(v.spec, Part::Other)))
            .filter_map(|e| e.kept.resource())
            .collect();
        let parts = |namespace: &Arc<str>, name: &Arc<str>| {
            let (slices, pods, nodes) = self.kube.parts(&(namespace.clone(), name.clone()), |id| self.view(id));
            crate::kube::Index::new(slices, pods, nodes)
        };
        let index = crate::kube::Index::per_service(&parts);
        let compiled = compile_with(&resources, &index, &self.options);
        let analysis = analyze(&resources, &self.skipped, &self.options.domain);
        (compiled, analysis)
    }

    fn upsert(
        &mut self,
        key: &ResourceRef,
        loaded: Loaded,
        shared: Option<Arc<KubeObject>>,
        report: &mut ApplyReport,
        errors: &mut Vec<Diagnostic>,
        touched: &mut Touched,
    ) {
        let Loaded { resources, diagnostics, skipped, failed } = loaded;
        let broken = diagnostics.iter().any(|d| d.is_error() && d.resource.as_ref() == Some(key));
        errors.extend(diagnostics.iter().filter(|d| d.is_error()).cloned());
        report.diagnostics.extend(diagnostics);
        report.skipped.extend(skipped);
        report.failed_files.extend(failed);
        let new = match shared {
            Some(object) => Some(Version::Shared(object)),
            None => resources.into_iter().rev().find(|r| r.id() == *key).map(|r| Version::Resource(Box::new(r))),
        };
        let Some(new) = new else {
            if broken {
                self.refuse(key, report);
            } else if let Some(old) = self.take_entry(key) {
                // Nothing of that id any more, and nothing wrong: gone.
                report.removed += 1;
                self.note_gone(old, touched);
            }
            return;
        };
        let at = self.index.get(&self.kept, key);
        let old = at.and_then(|i| self.kept.get(i)).and_then(Option::as_ref);
        // The very object in force (or an equal one): nothing to validate or compile.
        if let (Version::Shared(object), Some(old @ Entry { kept: Kept::Kube(mine), .. })) = (&new, old)
            && (Arc::ptr_eq(mine, object) || **mine == **object)
        {
            report.diagnostics.extend(old.validation().iter().cloned());
            // One copy: the sources' (its content is the same, so the index holds).
            if let Some(Some(Entry { kept: Kept::Kube(mine), .. })) = at.and_then(|i| self.kept.get_mut(i)) {
                *mine = object.clone();
            }
            return;
        }
        let (shared, new) = match new {
            Version::Resource(r) => (None, *r),
            Version::Shared(object) => {
                let r = object.resource();
                (Some(object), r)
            }
        };
        let (validation, unchanged) = match old {
            Some(e) if e.kept.unchanged(&new) => (e.validation().to_vec(), true),
            _ => (validate(&new), false),
        };
        report.diagnostics.extend(validation.iter().cloned());
        if validation.iter().any(Diagnostic::is_error) {
            errors.extend(validation.into_iter().filter(Diagnostic::is_error));
            self.refuse(key, report);
            return;
        }
        if unchanged {
            return;
        }
        let same = old.is_some_and(|e| e.kept.same_as(&new));
        let kept = match shared {
            Some(object) => Kept::Kube(object),
            None => Kept::keep(new),
        };
        let entry = Entry::new(key, kept, validation);
        match at {
            Some(i) => {
                let Some(slot) = self.kept.get_mut(i) else { return };
                let old = slot.replace(entry);
                if same {
                    // The same content on other lines: nothing compiled changes.
                    if let Some(r) = old.as_ref().and_then(|e| e.kept.view()) {
                        self.kube.remove(r);
                    }
                    if let Some(r) = self.kept.get(i).and_then(Option::as_ref).and_then(|e| e.kept.view()) {
                        self.kube.insert(r);
                    }
                    return;
                }
                report.updated += 1;
                if let Some(old) = old {
                    self.note_gone(old, touched);
                }
            }
            None => {
                report.added += 1;
                self.kept.push(Some(entry));
                self.index.insert(&self.kept, self.kept.len() - 1);
            }
        }
        self.note_new(key, touched);
    }

    /// A rejected new version: the last good one stays, or nothing.
    fn refuse(&self, key: &ResourceRef, report: &mut ApplyReport) {
        if self.index.contains(&self.kept, key) {
            report.kept_last_good.push(key.clone());
        } else {
            report.rejected.push(key.clone());
        }
    }

    fn take_entry(&mut self, key: &ResourceRef) -> Option<Entry> {
        let i = self.index.remove(&self.kept, key)?;
        self.holes += 1;
        self.kept.get_mut(i)?.take()
    }

    /// Close the holes left by removals once they are half of the list, and give back the room
    /// they took (this pass is over the whole list already).
    fn compact(&mut self) {
        if self.holes < 64 || self.holes * 2 < self.kept.len() {
            return;
        }
        self.kept.retain(Option::is_some);
        self.kept.shrink_to_fit();
        self.index.rebuild(&self.kept);
        self.holes = 0;
    }

    /// A version that was in force is gone (removed or replaced).
    fn note_gone(&mut self, old: Entry, touched: &mut Touched) {
        touched.any = true;
        match old.kept.view() {
            Some(r) if endpoint_kind(r.kind) => {
                if touched.track {
                    self.kube.services_of(r, &mut touched.services);
                }
                self.kube.remove(r);
            }
            Some(r) => {
                self.kube.remove(r);
                touched.other = true;
            }
            None => touched.other = true,
        }
    }

    /// The version in force as `key` is new.
    fn note_new(&mut self, key: &ResourceRef, touched: &mut Touched) {
        touched.any = true;
        let Some(r) = self.index.get(&self.kept, key).and_then(|i| self.kept.get(i)).and_then(Option::as_ref) else {
            return;
        };
        match r.kept.view() {
            Some(r) => {
                self.kube.insert(r);
                if !endpoint_kind(r.kind) {
                    touched.other = true;
                } else if touched.track {
                    self.kube.services_of(r, &mut touched.services);
                }
            }
            None => touched.other = true,
        }
    }

    /// Compile these Kubernetes Services again, each from its own slices and Pods, and give
    /// every declaration of each one's host: the snapshot's, with the Service's own replaced.
    fn recompile_services(&self, services: &BTreeSet<Name>) -> Vec<HostServices> {
        let kind: Arc<str> = Arc::from(Kind::Service.as_str());
        let mut out = Vec::new();
        for service in services {
            let id = ResourceRef { kind: kind.clone(), namespace: service.0.clone(), name: service.1.clone() };
            // A slice of a Service that is not in force belongs to nothing.
            let Some(r) = self.entry(&id).and_then(|e| e.kept.resource()) else { continue };
            let (slices, pods, nodes) = self.kube.parts(service, |id| self.view(id));
            let index = crate::kube::Index::new(slices, pods, nodes);
            let Some(decls) = kubernetes_service(&r, &index, &self.options) else { continue };
            let Some(host) = decls.first().and_then(|d| d.hosts.first()).cloned() else { continue };
            let ours = |d: &ServiceDecl| d.namespace == service.0 && d.name == service.1 && d.hosts.len() == 1;
            let mut fresh = Some(decls);
            let mut services = Vec::new();
            for d in self.snapshot.services(&host) {
                if !ours(d) {
                    services.push(d.clone());
                } else if let Some(decls) = fresh.take() {
                    services.extend(decls.into_iter().map(Arc::new));
                }
            }
            services.extend(fresh.into_iter().flatten().map(Arc::new));
            out.push(HostServices { host, services });
        }
        out
    }
}
