//! [`ConfigStore`]: the set of resources in force, with Kubernetes admission semantics.
//!
//! Each [`ConfigStore::apply`] states the whole desired configuration (everything the files hold
//! now). Per resource, as `kubectl apply` behaves against an admission webhook:
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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mesh_core::Snapshot;

use crate::analyze::{analyze, duplicates};
use crate::compile::{CompileOptions, compile};
use crate::diag::{Diagnostic, ResourceRef, Severity};
use crate::load::{LoadError, Loaded, Skipped};
use crate::types::Resource;
use crate::validate::validate;

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

/// The resources in force and their compiled snapshot.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    options: CompileOptions,
    /// In force, in the order first seen (Istio's "oldest wins" stands in for creation time).
    resources: Vec<Resource>,
    snapshot: Snapshot,
    rejections: Vec<Diagnostic>,
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
            resources: Vec::new(),
            snapshot: Snapshot::empty(),
            rejections: Vec::new(),
            generation: 0,
        }
    }

    /// The snapshot of what is in force.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The resources in force.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
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

        // New versions: validated; later duplicates of one id replace earlier ones.
        let mut incoming: BTreeMap<ResourceRef, Resource> = BTreeMap::new();
        let mut order: Vec<ResourceRef> = Vec::new();
        for r in loaded.resources {
            let id = r.id();
            let diags = validate(&r);
            let invalid = diags.iter().any(Diagnostic::is_error);
            report.diagnostics.extend(diags);
            if invalid {
                broken.insert(id);
                continue;
            }
            if !incoming.contains_key(&id) {
                order.push(id.clone());
            }
            broken.remove(&id);
            incoming.insert(id, r);
        }

        let mut next: Vec<Resource> = Vec::new();
        let mut placed: BTreeSet<ResourceRef> = BTreeSet::new();
        for old in &self.resources {
            let id = old.id();
            if let Some(new) = incoming.remove(&id) {
                if new != *old {
                    report.updated += 1;
                }
                next.push(new);
            } else if broken.contains(&id) {
                report.kept_last_good.push(id.clone());
                next.push(old.clone());
            } else if old.file.as_deref().is_some_and(|f| failed_files.contains(f)) {
                next.push(old.clone());
            } else {
                report.removed += 1;
                continue;
            }
            placed.insert(id);
        }
        for id in order {
            if let Some(new) = incoming.remove(&id) {
                report.added += 1;
                placed.insert(id);
                next.push(new);
            }
        }
        for id in broken {
            if !placed.contains(&id) {
                report.rejected.push(id);
            }
        }

        report.diagnostics.extend(twice);
        let compiled = compile(&next, &self.options);
        report.diagnostics.extend(compiled.diagnostics);
        report.diagnostics.extend(analyze(&next, &skipped, &self.options.domain));
        report.skipped = skipped;
        self.resources = next;
        self.snapshot = compiled.snapshot;
        self.rejections = report.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
        self.generation += 1;
        for d in report.diagnostics.iter().filter(|d| d.is_error()) {
            tracing::warn!(target: "meshwork::config", "{d}");
        }
        for f in &report.failed_files {
            tracing::warn!(target: "meshwork::config", "{f}; the file changes nothing");
        }
        report
    }

    /// Resource ids in force, as `Kind namespace/name`.
    pub fn ids(&self) -> Vec<Arc<str>> {
        self.resources.iter().map(|r| Arc::from(r.id().to_string().as_str())).collect()
    }
}
