//! The watches: one kube-rs [`watcher()`] per kind (and per namespace with
//! [`WatchOptions::namespaces`]), each turned into [`SourceEvent`]s.
//!
//! How a watch behaves, and where that comes from (kube-rs 5.0.0, `kube-runtime/src/watcher.rs`
//! and `utils/stream_backoff.rs`; the `DynamicObject` watch as in kube-rs's
//! `examples/dynamic_watcher.rs`; Istio at `86c9f01`, 2026-08-22):
//!
//! - **List, then watch** (`step_trampolined`): the
//!   watcher lists in pages of 500 (`limit`/`continue`), emitting `Init`, one `InitApply` per
//!   object and `InitDone`; then watches from the list's resourceVersion. The objects of one list
//!   are sent in parts of 500 as they are read ([`SourceEvent::Listing`], held aside and compact
//!   by the config source, not in force) and the rest as one [`SourceEvent::Replace`] of the
//!   scope at `InitDone`, which stands for the whole list: the store takes a complete list at
//!   once, no list of 100,000 Pods is held whole as decoded objects, and an object deleted while
//!   the watch was away disappears (the watcher's docs: objects not listed again "should be assumed to have been
//!   deleted"). The first `Replace` of each scope makes the config source ready — Istio's
//!   informers are `HasSynced` after their first list, and Istiod does not serve before
//!   (`Controller.HasSynced`, `pilot/pkg/serviceregistry/kube/controller/controller.go`).
//! - **Bookmarks** are asked for (`allowWatchBookmarks=true`, kube-rs's default): the watcher
//!   keeps the bookmark's resourceVersion, so a reconnect resumes from there instead of
//!   relisting.
//! - **410 Gone** (the resourceVersion is older than the API server keeps): the watcher relists
//!   from scratch (`err.code == 410` → `State::default()`), and the `Replace` that follows
//!   converges the store. Logged at `info`, not as a failure.
//! - **A dropped connection** or a watch that times out resumes from the last resourceVersion;
//!   **an API server that is down** leaves the store as it is (requests go on with the last
//!   state) while the watcher retries with backoff: kube-rs's
//!   [`WatchStreamExt::default_backoff`] (0.8 s doubling to 30 s with jitter, reset after 120 s
//!   without error), or [`Backoff::Exponential`] when set. A failure is logged once until a list
//!   succeeds again.
//! - **403 or 404 on an optional kind** (Nodes, which a namespaced Role cannot grant and only
//!   locality reads; Istio's networking and security kinds, or the Gateway API's, when their
//!   CRDs are absent — or not served in `v1`, see [`kinds`](crate::kinds()); Secrets, which a
//!   cluster admin may withhold: HTTPS listeners then stay unprogrammed) lists it as empty
//!   once, logged once; Nodes then stop (Istio: the node watch is optional), the others keep
//!   retrying with the backoff, so CRDs installed later are read without a restart. On a
//!   required kind (Services, Pods, EndpointSlices) the source stays not ready and retries:
//!   routing to Kubernetes services without them would be wrong.
//! - **A bad object** (one that does not decode, or whose new version fails validation) is one
//!   object's [`SourceObject`] with error diagnostics: the store keeps its last good version (or
//!   leaves it out) and logs the problem once, when it first appears (not again on each apply
//!   while it stays); `/config_dump` shows it beside the resource. The other objects of the list
//!   are unaffected.
//! - **Secrets** are never logged: the logs here name the scope and the error (an API
//!   `Status` or a transport error), never an object, and a Secret reaches mesh-config cut down
//!   to its TLS keys ([`decode`](crate::decode())), whose `Debug` redacts them.
//! - **Memory**: per scope, the watcher's state, the list being read, and the last error's
//!   text. The store holds one entry per object the API server has; nothing an object names
//!   adds state beyond its own entry.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use mesh_config::ResourceRef;
use mesh_config::store::{Scope, SourceEvent, SourceObject};
use tokio::sync::mpsc;

use crate::Error;
use crate::kinds::{WatchedKind, kinds};
use crate::object::{decode, object_key};

/// How to retry a failed list or watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backoff {
    /// kube-rs's [`WatchStreamExt::default_backoff`].
    #[default]
    Default,
    /// From `initial`, doubling to `max`, reset by any success (tests use short ones).
    Exponential {
        /// The first delay.
        initial: Duration,
        /// The longest delay.
        max: Duration,
    },
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The namespaces to watch (one watch per kind and namespace, so that a namespaced Role
    /// suffices); empty: all namespaces, with Namespaces and Nodes too (a ClusterRole).
    pub namespaces: Vec<String>,
    /// Watch Nodes (for locality from their labels) when watching all namespaces.
    pub nodes: bool,
    /// How to retry.
    pub backoff: Backoff,
    /// Room for events between the watches and the store (the watches wait when it is full).
    /// Default 16: an event of a list holds up to 500 decoded objects, so this bounds what
    /// waits for the store while a large cluster is listed.
    pub channel: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions { namespaces: Vec::new(), nodes: true, backoff: Backoff::Default, channel: 16 }
    }
}

impl WatchOptions {
    /// The kinds these options watch, each with its scopes.
    pub fn plan(&self) -> Vec<(WatchedKind, Scope)> {
        let mut out = Vec::new();
        for kind in kinds(self.namespaces.is_empty(), self.nodes) {
            let name: std::sync::Arc<str> = kind.kind.as_str().into();
            if kind.cluster_scoped || self.namespaces.is_empty() {
                out.push((kind, Scope { kind: name, namespace: None }));
            } else {
                for ns in &self.namespaces {
                    out.push((kind.clone(), Scope { kind: name.clone(), namespace: Some(ns.as_str().into()) }));
                }
            }
        }
        out
    }
}

/// Running watches: the scopes they list, and the events they send (see the module docs). The
/// watches run on the current tokio runtime and stop when the receiver is dropped.
#[derive(Debug)]
pub struct KubeSource {
    scopes: Vec<Scope>,
    events: mpsc::Receiver<SourceEvent>,
}

impl KubeSource {
    /// Start one watch per kind and scope of `options` (must be called inside a tokio runtime).
    pub fn start(client: kube::Client, options: &WatchOptions) -> KubeSource {
        let (tx, events) = mpsc::channel(options.channel.max(1));
        let mut scopes = Vec::new();
        for (kind, scope) in options.plan() {
            scopes.push(scope.clone());
            let api = api(&client, &kind, &scope);
            tokio::spawn(run(api, kind, scope, options.backoff, tx.clone()));
        }
        KubeSource { scopes, events }
    }

    /// The scopes watched: each is listed once before the source is ready.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The scopes and the events, to hand to a consumer (mesh-proxy's `ConfigSource::attach`).
    pub fn into_parts(self) -> (Vec<Scope>, mpsc::Receiver<SourceEvent>) {
        (self.scopes, self.events)
    }
}

fn api(client: &kube::Client, kind: &WatchedKind, scope: &Scope) -> Api<DynamicObject> {
    match &scope.namespace {
        Some(ns) if !kind.cluster_scoped => Api::namespaced_with(client.clone(), ns, &kind.resource),
        _ => Api::all_with(client.clone(), &kind.resource),
    }
}

fn watcher_config(kind: &WatchedKind) -> watcher::Config {
    let mut config = watcher::Config::default();
    if let Some(l) = kind.label_selector {
        config = config.labels(l);
    }
    if let Some(f) = kind.field_selector {
        config = config.fields(f);
    }
    config
}

/// The HTTP status of a watch error, when the API server answered one.
fn status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

struct Exponential {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Iterator for Exponential {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for Exponential {
    fn reset(&mut self) {
        self.next = self.initial;
    }
}

fn stream(
    api: Api<DynamicObject>,
    config: watcher::Config,
    backoff: Backoff,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send>> {
    let events = watcher(api, config);
    match backoff {
        Backoff::Default => events.default_backoff().boxed(),
        Backoff::Exponential { initial, max } => {
            events.backoff(Exponential { initial, max: max.max(initial), next: initial }).boxed()
        }
    }
}

/// How many objects of a list are handed on together while the list is read
/// ([`SourceEvent::Listing`]): the config side keeps them compact at once, so a list of 100,000
/// Pods is never held whole as decoded objects (a watcher's list page is 500).
const LIST_PART: usize = 500;

async fn run(
    api: Api<DynamicObject>,
    kind: WatchedKind,
    scope: Scope,
    backoff: Backoff,
    tx: mpsc::Sender<SourceEvent>,
) {
    let mut events = stream(api, watcher_config(&kind), backoff);
    let mut listing: Option<Vec<(ResourceRef, SourceObject)>> = None;
    // Parts of this list sent already; parts of a list that did not finish may be held.
    let mut parts_sent = false;
    let mut stale_parts = false;
    let mut listed = 0usize;
    let mut listed_once = false;
    let mut last_error: Option<String> = None;
    loop {
        let item = tokio::select! {
            item = events.next() => item,
            () = tx.closed() => return,
        };
        let Some(item) = item else { return };
        let out = match item {
            Ok(Event::Init) => {
                listing = Some(Vec::new());
                parts_sent = false;
                listed = 0;
                None
            }
            Ok(Event::InitApply(object)) => {
                let decoded = decode(&kind, object);
                match &mut listing {
                    Some(list) => {
                        list.push(decoded);
                        listed += 1;
                        // A long list goes on in parts (see `LIST_PART`).
                        (list.len() >= LIST_PART).then(|| {
                            let first = !parts_sent;
                            parts_sent = true;
                            stale_parts = true;
                            SourceEvent::Listing { scope: scope.clone(), first, objects: std::mem::take(list) }
                        })
                    }
                    None => Some(SourceEvent::Upsert { key: decoded.0, object: decoded.1 }),
                }
            }
            Ok(Event::InitDone) => {
                let objects = listing.take().unwrap_or_default();
                tracing::info!(target: "meshwork::kubernetes", %scope, objects = listed, "listed");
                listed_once = true;
                last_error = None;
                // Parts held from a list that did not finish are dropped by a first part.
                if stale_parts
                    && !parts_sent
                    && tx
                        .send(SourceEvent::Listing { scope: scope.clone(), first: true, objects: Vec::new() })
                        .await
                        .is_err()
                {
                    return;
                }
                stale_parts = false;
                Some(SourceEvent::Replace { scope: scope.clone(), objects })
            }
            Ok(Event::Apply(object)) => {
                let (key, object) = decode(&kind, object);
                Some(SourceEvent::Upsert { key, object })
            }
            Ok(Event::Delete(object)) => Some(SourceEvent::Delete { key: object_key(&kind, &object) }),
            Err(error) => {
                let code = status_code(&error);
                let message = error.to_string();
                if code == Some(410) {
                    tracing::info!(target: "meshwork::kubernetes", %scope, "resourceVersion expired (410): relisting");
                } else if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(target: "meshwork::kubernetes", %scope, error = %message, "watch failed; retrying with backoff, serving the last state");
                    last_error = Some(message);
                }
                if kind.optional && matches!(code, Some(403 | 404)) {
                    let nodes = kind.kind == mesh_config::Kind::Node;
                    if !listed_once {
                        listed_once = true;
                        tracing::warn!(
                            target: "meshwork::kubernetes",
                            %scope,
                            code,
                            "{}",
                            match kind.kind {
                                mesh_config::Kind::Node => "Nodes cannot be read: locality from Node labels is off",
                                mesh_config::Kind::Secret => {
                                    "TLS Secrets cannot be read: HTTPS listeners stay unprogrammed; retrying slowly"
                                }
                                _ => "kind not served or not allowed: read as empty, retrying slowly",
                            }
                        );
                        let reset = SourceEvent::Listing { scope: scope.clone(), first: true, objects: Vec::new() };
                        if (stale_parts && tx.send(reset).await.is_err())
                            || tx
                                .send(SourceEvent::Replace { scope: scope.clone(), objects: Vec::new() })
                                .await
                                .is_err()
                        {
                            return;
                        }
                        stale_parts = false;
                    }
                    if nodes && code == Some(403) {
                        return;
                    }
                }
                None
            }
        };
        if let Some(event) = out
            && tx.send(event).await.is_err()
        {
            return;
        }
    }
}

/// List every kind of `options` once, without watching (`mesh validate --kubernetes`): one
/// [`SourceEvent::Replace`] per scope. An optional kind that is forbidden or not served is
/// left out with a note (the second part of the answer); any other failure is an error.
pub async fn list_once(
    client: &kube::Client,
    options: &WatchOptions,
) -> Result<(Vec<SourceEvent>, Vec<String>), Error> {
    let mut events = Vec::new();
    let mut notes = Vec::new();
    for (kind, scope) in options.plan() {
        let api = api(client, &kind, &scope);
        let mut params = ListParams::default().limit(500);
        if let Some(l) = kind.label_selector {
            params = params.labels(l);
        }
        if let Some(f) = kind.field_selector {
            params = params.fields(f);
        }
        let mut objects = Vec::new();
        loop {
            match api.list(&params).await {
                Ok(list) => {
                    objects.extend(list.items.into_iter().map(|o| decode(&kind, o)));
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(token) => params.continue_token = Some(token),
                        None => break,
                    }
                }
                Err(kube::Error::Api(s)) if kind.optional && matches!(s.code, 403 | 404) => {
                    notes.push(format!("{scope}: not read ({} {})", s.code, s.reason));
                    break;
                }
                Err(source) => return Err(Error::List { kind: scope.to_string(), source }),
            }
        }
        events.push(SourceEvent::Replace { scope, objects });
    }
    Ok((events, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff as _;

    #[test]
    fn exponential_backoff_doubles_to_its_cap_and_resets() {
        let (initial, max) = (Duration::from_millis(50), Duration::from_millis(300));
        let mut b = Exponential { initial, max, next: initial };
        let delays: Vec<u128> = (&mut b).take(5).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 300, 300]);
        b.reset();
        assert_eq!(b.next().map(|d| d.as_millis()), Some(50));
    }

    #[test]
    fn plan_per_namespace_leaves_out_cluster_scoped_kinds() {
        let all = WatchOptions::default().plan();
        let kinds: Vec<&str> = all.iter().map(|(k, _)| k.kind.as_str()).collect();
        for cluster_scoped in ["Node", "Namespace", "GatewayClass"] {
            assert!(kinds.contains(&cluster_scoped), "{kinds:?}");
        }
        assert!(all.iter().all(|(_, s)| s.namespace.is_none()));
        // Istio's Gateway and the Gateway API's are two scopes: a list of one never replaces
        // the other's objects.
        let gateways: Vec<String> =
            all.iter().filter(|(k, _)| k.resource.plural == "gateways").map(|(_, s)| s.to_string()).collect();
        assert_eq!(gateways, ["Gateway", "Gateway.gateway.networking.k8s.io"]);
        let some = WatchOptions { namespaces: vec!["a".into(), "b".into()], ..WatchOptions::default() }.plan();
        assert_eq!(some.len(), 2 * 16, "16 namespaced kinds in each namespace");
        let secrets: Vec<_> = some.iter().filter(|(k, _)| k.kind == mesh_config::Kind::Secret).collect();
        assert_eq!(secrets.len(), 2, "Secrets in each watched namespace");
        assert!(secrets.iter().all(|(k, _)| k.optional && k.field_selector == Some("type=kubernetes.io/tls")));
        assert!(some.iter().all(|(k, s)| !k.cluster_scoped && s.namespace.is_some()));
        let no_nodes = WatchOptions { nodes: false, ..WatchOptions::default() }.plan();
        assert!(no_nodes.iter().all(|(k, _)| k.kind != mesh_config::Kind::Node));
    }
}
