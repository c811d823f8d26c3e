//! The configuration source of a proxy: files → validated resources → the mesh's snapshot.
//!
//! Each reload reads every file again and applies them to a [`ConfigStore`] with Kubernetes
//! admission semantics, per resource: a resource whose new version is invalid keeps its last
//! good version, a new invalid resource is left out, a file that does not parse changes nothing.
//! Every rejection is logged (`warn`, target `meshwork::config`), counted
//! (`meshwork_config_rejections_total`) and listed in `/config_dump`. The new snapshot is swapped
//! in atomically ([`Mesh::update`]): requests in flight finish with the old one.
//!
//! [`ConfigSource::watch`] polls the files' contents (so editors' rename-on-save and Kubernetes
//! ConfigMap symlink swaps are seen) and reloads when they change.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesh_config::{ConfigStore, LoadOptions, load_paths};
use mesh_core::ClientIdentity;
use mesh_tower::{Mesh, Registry};

/// What the last reload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Reloads so far (the first load included).
    pub generation: u64,
    /// Resources added, changed, removed by the last reload.
    pub added: usize,
    /// Changed.
    pub updated: usize,
    /// Removed.
    pub removed: usize,
    /// Every rejection in force: resources whose last good version is kept, new resources left
    /// out, files that did not parse — one line each, as `mesh validate` prints them.
    pub rejections: Vec<String>,
}

#[derive(Debug)]
struct State {
    store: ConfigStore,
    fingerprint: u64,
    status: ReloadStatus,
}

/// Files applied to a [`Mesh`] (see the module docs). Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ConfigSource {
    paths: Arc<[PathBuf]>,
    options: Arc<LoadOptions>,
    mesh: Mesh,
    state: Arc<Mutex<State>>,
}

/// Why a config source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A configured path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
}

fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(entries) = std::fs::read_dir(p) {
                files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

impl ConfigSource {
    /// Load `paths` for a proxy in `namespace` and build its mesh (routing as the mesh).
    pub fn new(paths: Vec<PathBuf>, namespace: &str) -> Result<ConfigSource, SourceError> {
        Self::with_mesh(paths, namespace, |b| b)
    }

    /// As [`ConfigSource::new`], with a chance to adjust the mesh builder (gateway binding,
    /// workload name, access log).
    pub fn with_mesh(
        paths: Vec<PathBuf>,
        namespace: &str,
        configure: impl FnOnce(mesh_tower::MeshBuilder) -> mesh_tower::MeshBuilder,
    ) -> Result<ConfigSource, SourceError> {
        Self::with_options(paths, mesh_config::CompileOptions::for_namespace(namespace), configure)
    }

    /// As [`ConfigSource::with_mesh`], compiling with `compile` (its `client_namespace` is the
    /// proxy's namespace; `default` when unset).
    pub fn with_options(
        paths: Vec<PathBuf>,
        compile: mesh_config::CompileOptions,
        configure: impl FnOnce(mesh_tower::MeshBuilder) -> mesh_tower::MeshBuilder,
    ) -> Result<ConfigSource, SourceError> {
        let namespace = compile.client_namespace.clone().unwrap_or_else(|| "default".to_string());
        let namespace = namespace.as_str();
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            return Err(SourceError::Missing(missing.clone()));
        }
        let options = LoadOptions { default_namespace: namespace.to_string(), ..LoadOptions::default() };
        let builder = Mesh::builder()
            .registry(Registry::new())
            .client_identity(ClientIdentity::new(namespace, []))
            .upstream_protocol_by_port(true);
        let mesh = configure(builder).build();
        // The proxy's own view: resources not exported to its namespace are left out (Istio's
        // `exportTo`).
        let store =
            ConfigStore::new(mesh_config::CompileOptions { client_namespace: Some(namespace.to_string()), ..compile });
        let state = State { store, fingerprint: 0, status: ReloadStatus::default() };
        let source =
            ConfigSource { paths: paths.into(), options: Arc::new(options), mesh, state: Arc::new(Mutex::new(state)) };
        source.reload();
        Ok(source)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The mesh this source configures.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// What the last reload did.
    pub fn status(&self) -> ReloadStatus {
        self.lock().status.clone()
    }

    /// Read the files again and apply them now.
    pub fn reload(&self) -> ReloadStatus {
        let mut state = self.lock();
        state.fingerprint = fingerprint(&self.paths);
        let loaded = load_paths(&self.paths[..], &self.options);
        // (The store logs each rejection once; this only counts them.)
        let report = state.store.apply(loaded);
        let rejected = report.kept_last_good.len() + report.rejected.len() + report.failed_files.len();
        if rejected > 0 {
            metrics::counter!("meshwork_config_rejections_total").increment(rejected as u64);
        }
        let mut rejections: Vec<String> = state.store.rejections().iter().map(ToString::to_string).collect();
        rejections.extend(report.failed_files.iter().map(ToString::to_string));
        state.status = ReloadStatus {
            generation: state.store.generation(),
            added: report.added,
            updated: report.updated,
            removed: report.removed,
            rejections,
        };
        self.mesh.update(state.store.snapshot().clone());
        metrics::gauge!("meshwork_config_generation").set(state.store.generation() as f64);
        tracing::info!(
            target: "meshwork::config",
            generation = state.status.generation,
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            rejected,
            "configuration applied"
        );
        state.status.clone()
    }

    /// Reload whenever the files' contents change, checking every `interval` (runs forever).
    pub async fn watch(self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            let paths = self.paths.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&paths)).await else { continue };
            if now != self.lock().fingerprint {
                let source = self.clone();
                let _ = tokio::task::spawn_blocking(move || source.reload()).await;
            }
        }
    }

    /// The store's resources as `kind namespace/name` lines (for `/config_dump`).
    pub fn resources(&self) -> Vec<String> {
        self.lock().store.ids().iter().map(ToString::to_string).collect()
    }
}
