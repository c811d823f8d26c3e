//! The configuration source of a proxy: files and other sources → validated resources → the
//! mesh's snapshot.
//!
//! Files and the objects of other sources (the Kubernetes API: [`ConfigSource::attach`], or
//! [`ConfigSource::kubernetes`] with the `kubernetes` feature) meet in one
//! [`Sources`] — the config-source seam — and reach one [`ConfigStore`] with Kubernetes
//! admission semantics. A file reload, a list and the first load apply the whole of it; once
//! every attached scope has listed, a watch's upserts and deletes are applied one object at a
//! time ([`ConfigStore::apply_changes`]): only they are validated, and an EndpointSlice or Pod
//! change recompiles only the Services whose endpoints it moves and patches those hosts in the
//! endpoint [`Registry`] ([`Registry::sync_hosts`]) without a new snapshot — requests keep
//! reading theirs, lock-free. Per resource: a
//! resource whose new version is invalid keeps its last good version, a new invalid resource is
//! left out, a file that does not parse changes nothing. Every rejection is logged once when it
//! appears (`warn`, target `meshwork::config`), counted (`meshwork_config_rejections_total`) and
//! listed in `/config_dump`, where each resource also shows its [`Origin`]. The new snapshot is
//! swapped in atomically ([`Mesh::update`]): requests in flight finish with the old one.
//!
//! [`ConfigSource::watch`] polls the contents of the files the loader reads (`*.yaml` and
//! `*.yml`, not hidden, below each directory; so editors' rename-on-save and Kubernetes ConfigMap
//! symlink swaps are seen, and a log file written beside the configuration is not) and reloads
//! when they change.
//!
//! Readiness: a source attached with a list of [`Scope`]s makes the config source not
//! [ready](ConfigSource::is_ready) until each scope's first list has been applied
//! ([`SourceEvent::Replace`]).

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesh_config::store::{Change, Delta, DeltaReport, Origin, Recompiled, Scope, SourceEvent, Sources};
use mesh_config::{ConfigStore, LoadOptions, ResourceRef, load_paths};
use mesh_core::ClientIdentity;
use mesh_tower::{Mesh, Registry};
use tokio::sync::{mpsc, watch};

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
    sources: Sources,
    /// Changes taken but not applied yet (held until every attached scope has listed).
    held: bool,
    /// The files that did not parse at the last whole apply (still shown as rejections).
    failed_files: Vec<String>,
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
    /// Scopes of attached sources not listed yet.
    pending: Arc<watch::Sender<BTreeSet<Scope>>>,
}

/// Why a config source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A configured path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
}

/// The files under `paths` that the loader reads (`mesh_config::load_path`'s rule: a named file
/// always; below a directory, `*.yaml` and `*.yml`, recursively, skipping hidden entries such as
/// a ConfigMap mount's `..data` folders).
fn config_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                if depth < 32 {
                    walk(&path, out, depth + 1);
                }
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files, 0);
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files
}

fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in config_files(paths) {
        f.hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

/// One resource in force and where it came from (`/config_dump`'s `resources`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceOrigin {
    /// Kind, namespace and name.
    pub id: ResourceRef,
    /// Its source (`None` only if no source holds it any more, which an apply rules out).
    pub origin: Option<Origin>,
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
        let state = State {
            store,
            sources: Sources::new(),
            held: false,
            failed_files: Vec::new(),
            fingerprint: 0,
            status: ReloadStatus::default(),
        };
        let source = ConfigSource {
            paths: paths.into(),
            options: Arc::new(options),
            mesh,
            state: Arc::new(Mutex::new(state)),
            pending: Arc::new(watch::Sender::new(BTreeSet::new())),
        };
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

    /// Read the files again and apply them now (with what the other sources hold).
    pub fn reload(&self) -> ReloadStatus {
        let started = tokio::time::Instant::now();
        let mut state = self.lock();
        state.fingerprint = fingerprint(&self.paths);
        let loaded = load_paths(&self.paths[..], &self.options);
        state.sources.set_files(loaded);
        state.held = false;
        self.apply_locked(&mut state, started)
    }

    /// Take changes from another source and apply them (one apply for the lot; nothing is
    /// applied when nothing changed). A [`SourceEvent::Replace`] marks its scope listed. While
    /// some attached scope has not listed yet, the changes are held and applied at once when the
    /// last one lists (Istio's informers sync before istiod serves): the first load is one
    /// apply, not one per kind. A file reload meanwhile applies what is held so far.
    pub fn apply_events(&self, events: impl IntoIterator<Item = SourceEvent>) -> ReloadStatus {
        let started = tokio::time::Instant::now();
        let mut state = self.lock();
        let mut changed = false;
        let mut listed = Vec::new();
        // Once every scope has listed and nothing is held, upserts and deletes are applied one
        // object at a time (`ConfigStore::apply_changes`); a list, or an object that hid a
        // file's resource going away, makes it one whole apply again.
        let mut whole = state.held || !self.pending.borrow().is_empty();
        let mut changes = Vec::new();
        for event in events {
            if let SourceEvent::Replace { scope, .. } = &event {
                listed.push(scope.clone());
            }
            if whole {
                changed |= state.sources.apply(event);
                continue;
            }
            match state.sources.changes(event) {
                Delta::Unchanged => {}
                Delta::Changes(c) => changes.extend(c),
                Delta::Whole => {
                    changed = true;
                    whole = true;
                }
            }
        }
        state.held |= changed;
        let still_pending = {
            let pending = self.pending.borrow();
            pending.iter().any(|scope| !listed.contains(scope))
        };
        let status = if state.held && !still_pending {
            state.held = false;
            self.apply_locked(&mut state, started)
        } else if !state.held && !changes.is_empty() {
            self.apply_changes_locked(&mut state, changes, started)
        } else {
            state.status.clone()
        };
        // Published after the apply (ready means applied) and before the lock is released (so
        // that the next call sees it).
        if !listed.is_empty() {
            self.pending.send_if_modified(|pending| {
                let before = pending.len();
                for scope in &listed {
                    pending.remove(scope);
                }
                pending.len() != before
            });
        }
        drop(state);
        status
    }

    /// Apply changes of single objects: the store validates and compiles only what they touch;
    /// an endpoint-only change patches the registry's endpoints of the hosts it touched and
    /// leaves the snapshot (and so every route) as it is.
    fn apply_changes_locked(
        &self,
        state: &mut State,
        changes: Vec<Change>,
        started: tokio::time::Instant,
    ) -> ReloadStatus {
        let delta = state.store.apply_changes(changes);
        self.changes_applied(state, delta, started)
    }

    /// Publish what [`ConfigStore::apply_changes`](mesh_config::ConfigStore::apply_changes) did.
    fn changes_applied(&self, state: &mut State, delta: DeltaReport, started: tokio::time::Instant) -> ReloadStatus {
        let DeltaReport { report, recompiled } = delta;
        match &recompiled {
            Recompiled::Nothing => {}
            Recompiled::Endpoints(hosts) => {
                let snapshot = self.mesh.config().load();
                self.mesh.registry().sync_hosts(hosts.iter().map(|h| (&h.host, &h.services[..])), snapshot.workloads());
            }
            Recompiled::Snapshot => self.mesh.update(state.store.snapshot().clone()),
        }
        self.finish(state, &report, started, "configuration changes applied")
    }

    /// Feed the changes `events` brings into this source, from a task of the current tokio
    /// runtime, until the sender is dropped. Until a [`SourceEvent::Replace`] of each of
    /// `scopes` has been applied, the source is not [ready](ConfigSource::is_ready). Changes
    /// that arrive together are applied at once.
    pub fn attach(&self, scopes: impl IntoIterator<Item = Scope>, mut events: mpsc::Receiver<SourceEvent>) {
        self.pending.send_modify(|pending| pending.extend(scopes));
        let source = self.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while events.recv_many(&mut batch, 4096).await > 0 {
                let source = source.clone();
                let events = std::mem::take(&mut batch);
                let _ = tokio::task::spawn_blocking(move || source.apply_events(events)).await;
            }
        });
    }

    /// As [`ConfigSource::attach`], but the changes are applied by the returned future itself,
    /// on the thread that polls it, not on tokio's blocking pool: for a thread kept for the
    /// configuration, where nothing else waits while a batch applies. The scopes count as
    /// pending from this call on; the future ends when the sender is dropped.
    ///
    /// `mesh proxy --kubernetes` runs its watches and this on a thread of its own (as Envoy's
    /// main thread takes xDS updates while its workers serve): the objects a watch decodes and
    /// the configuration made from them are allocated by that one thread, not spread over the
    /// request workers, which keeps the process smaller (benches/RESULTS.md, session 15).
    pub fn follow(
        &self,
        scopes: impl IntoIterator<Item = Scope>,
        mut events: mpsc::Receiver<SourceEvent>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.pending.send_modify(|pending| pending.extend(scopes));
        let source = self.clone();
        async move {
            let mut batch = Vec::new();
            while events.recv_many(&mut batch, 4096).await > 0 {
                source.apply_events(std::mem::take(&mut batch));
            }
        }
    }

    /// Has every attached source listed each of its scopes once (and is that applied)?
    pub fn is_ready(&self) -> bool {
        self.pending.borrow().is_empty()
    }

    /// The scopes not listed yet.
    pub fn pending(&self) -> Vec<Scope> {
        self.pending.borrow().iter().cloned().collect()
    }

    /// Wait until [`ConfigSource::is_ready`].
    pub async fn ready(&self) {
        let mut pending = self.pending.subscribe();
        let _ = pending.wait_for(BTreeSet::is_empty).await;
    }

    fn apply_locked(&self, state: &mut State, started: tokio::time::Instant) -> ReloadStatus {
        // Without files, everything the sources hold goes to the store object by object, each
        // the very object the sources hold (no merged copy of everything, no second copy kept).
        let known =
            state.store.resource_refs().chain(state.store.rejections().iter().filter_map(|d| d.resource.clone()));
        if let Some(changes) = state.sources.whole_changes(known) {
            let delta = state.store.apply_changes(changes);
            state.failed_files.clear();
            return self.changes_applied(state, delta, started);
        }
        let loaded = state.sources.merged();
        // (The store logs each rejection once; this only counts them.)
        let report = state.store.apply(loaded);
        state.store.share_objects(&state.sources, None);
        state.failed_files = report.failed_files.iter().map(ToString::to_string).collect();
        self.mesh.update(state.store.snapshot().clone());
        self.finish(state, &report, started, "configuration applied")
    }

    /// Count, log and publish what an apply did.
    fn finish(
        &self,
        state: &mut State,
        report: &mesh_config::ApplyReport,
        started: tokio::time::Instant,
        what: &'static str,
    ) -> ReloadStatus {
        let rejected = report.kept_last_good.len() + report.rejected.len() + report.failed_files.len();
        if rejected > 0 {
            metrics::counter!("meshwork_config_rejections_total").increment(rejected as u64);
        }
        let mut rejections: Vec<String> =
            state.store.rejections().iter().map(mesh_config::store::diagnostic_line).collect();
        rejections.extend(state.failed_files.iter().cloned());
        state.status = ReloadStatus {
            generation: state.store.generation(),
            added: report.added,
            updated: report.updated,
            removed: report.removed,
            rejections,
        };
        metrics::gauge!("meshwork_config_generation").set(state.store.generation() as f64);
        tracing::info!(
            target: "meshwork::config",
            generation = state.status.generation,
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            rejected,
            elapsed_us = started.elapsed().as_micros() as u64,
            "{what}"
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

    /// The resources in force, each with its origin (a file and line, or the Kubernetes object
    /// and its resourceVersion).
    pub fn origins(&self) -> Vec<ResourceOrigin> {
        let state = self.lock();
        state
            .store
            .resource_refs()
            .map(|id| {
                let origin = state.sources.origin(&id);
                ResourceOrigin { id, origin }
            })
            .collect()
    }

    /// The error diagnostics in force (each rejected resource's, with its kind, namespace and
    /// name).
    pub fn rejected(&self) -> Vec<mesh_config::Diagnostic> {
        self.lock().store.rejections().to_vec()
    }
}

#[cfg(feature = "kubernetes")]
impl ConfigSource {
    /// Also take configuration from the Kubernetes cluster `client` reaches: Istio's
    /// networking resources, Services, EndpointSlices, Pods (and, watching all namespaces,
    /// Namespaces and Nodes), watched as [`mesh_kube::watch`] describes, merged with the
    /// files (an object wins over a file's resource of the same kind, namespace and name). The
    /// source is not [ready](ConfigSource::is_ready) until each watched kind has listed once.
    /// Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use mesh_proxy::reload::ConfigSource;
    /// let client = mesh_kube::client(None).await?; // kubeconfig, $KUBECONFIG or in-cluster
    /// let source = ConfigSource::new(vec![], "default")?.kubernetes(client, &Default::default());
    /// source.ready().await;
    /// # Ok(()) }
    /// ```
    pub fn kubernetes(self, client: kube::Client, options: &mesh_kube::WatchOptions) -> Self {
        let (scopes, events) = mesh_kube::KubeSource::start(client, options).into_parts();
        self.attach(scopes, events);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_config::store::{Origin, SourceObject};

    fn vs_object(name: &str, subset: &str, rv: &str) -> (ResourceRef, SourceObject) {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: default}}\nspec: {{hosts: [{name}], http: [{{route: [{{destination: {{host: {name}, subset: {subset}}}}}]}}]}}\n"
        );
        let key = ResourceRef { kind: "VirtualService".into(), namespace: "default".into(), name: name.into() };
        let origin = Origin::Kubernetes {
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            resource_version: Some(rv.into()),
        };
        let loaded = mesh_config::load_str(&text, None, &LoadOptions::default()).expect("yaml");
        (key, SourceObject { origin, loaded })
    }

    fn vs_event(name: &str, subset: &str, rv: &str) -> SourceEvent {
        let (key, object) = vs_object(name, subset, rv);
        SourceEvent::Upsert { key, object }
    }

    fn scope(kind: &str) -> Scope {
        Scope { kind: kind.into(), namespace: None }
    }

    #[tokio::test]
    async fn changes_are_held_until_every_scope_has_listed_then_applied_at_once() {
        let source = ConfigSource::new(vec![], "default").expect("source");
        let (tx, rx) = mpsc::channel(16);
        source.attach([scope("VirtualService"), scope("Service")], rx);
        assert!(!source.is_ready());
        let generation = source.status().generation;
        // (applied directly, as the attach task would)
        let objects = vec![vs_object("a", "v1", "1")];
        source.apply_events([SourceEvent::Replace { scope: scope("VirtualService"), objects }]);
        assert_eq!(source.status().generation, generation, "held: Services have not listed yet");
        assert_eq!(source.pending(), [scope("Service")]);
        source.apply_events([SourceEvent::Replace { scope: scope("Service"), objects: vec![] }]);
        assert!(source.is_ready());
        assert_eq!(source.status().generation, generation + 1, "one apply for the first load");
        assert_eq!(source.resources(), ["VirtualService default/a"]);
        // After ready, each batch applies; an upsert of the version held changes nothing.
        tx.send(vs_event("a", "v2", "2")).await.expect("send");
        source.ready().await;
        let guard = tokio::time::Instant::now() + Duration::from_secs(10);
        while source.status().generation < generation + 2 {
            assert!(tokio::time::Instant::now() < guard, "the attached event is applied");
            tokio::task::yield_now().await;
        }
        assert_eq!(source.apply_events([vs_event("a", "v2", "2")]).generation, generation + 2);
        let origins = source.origins();
        assert!(
            matches!(&origins[0].origin, Some(Origin::Kubernetes { resource_version: Some(rv), .. }) if &**rv == "2")
        );
    }

    #[tokio::test]
    async fn a_followed_source_applies_each_batch_on_the_polling_task() {
        let source = ConfigSource::new(vec![], "default").expect("source");
        let (tx, rx) = mpsc::channel(16);
        let follow = source.follow([scope("VirtualService")], rx);
        assert_eq!(source.pending(), [scope("VirtualService")], "pending from the call, before any poll");
        let generation = source.status().generation;
        let objects = vec![vs_object("a", "v1", "1")];
        tx.send(SourceEvent::Replace { scope: scope("VirtualService"), objects }).await.expect("send");
        tx.send(vs_event("a", "v2", "2")).await.expect("send");
        drop(tx);
        // Nothing else runs the changes: they are applied while this task polls the future,
        // which ends when the sender is gone.
        assert_eq!(source.status().generation, generation, "nothing applied before the future runs");
        follow.await;
        assert!(source.is_ready());
        assert_eq!(source.resources(), ["VirtualService default/a"]);
        let origins = source.origins();
        assert!(
            matches!(&origins[0].origin, Some(Origin::Kubernetes { resource_version: Some(rv), .. }) if &**rv == "2")
        );
    }

    #[test]
    fn only_files_the_loader_reads_are_fingerprinted() {
        let dir = std::env::temp_dir().join(format!("meshwork-fp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("..data")).expect("dir");
        std::fs::write(dir.join("vs.yaml"), "a: 1\n").expect("write");
        let paths = vec![dir.clone()];
        let before = fingerprint(&paths);
        std::fs::write(dir.join("proxy.log"), "a line\n").expect("write");
        std::fs::write(dir.join("notes.json"), "{}").expect("write");
        std::fs::write(dir.join("..data").join("old.yaml"), "b: 2\n").expect("write");
        assert_eq!(fingerprint(&paths), before, "a log file, a .json and hidden folders change nothing");
        std::fs::write(dir.join("vs.yaml"), "a: 2\n").expect("write");
        assert_ne!(fingerprint(&paths), before);
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        let nested = fingerprint(&paths);
        std::fs::write(dir.join("sub").join("dr.yml"), "c: 3\n").expect("write");
        assert_ne!(fingerprint(&paths), nested, "nested .yml files are loaded, so they count");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
