//! A loopback Kubernetes API server for tests: the list/watch protocol as the real one speaks
//! it, for a real kube-rs client (`server: http://127.0.0.1:PORT` in a kubeconfig).
//!
//! - Collections: core `v1` services, pods, secrets, namespaces, nodes; `discovery.k8s.io/v1`
//!   endpointslices; `networking.istio.io/v1` virtualservices, destinationrules, gateways,
//!   serviceentries, workloadentries; `security.istio.io/v1` peerauthentications,
//!   authorizationpolicies, requestauthentications; `gateway.networking.k8s.io/v1`
//!   gatewayclasses (cluster-scoped), gateways, httproutes, grpcroutes, referencegrants — all
//!   namespaces (`/api/v1/pods`) or one (`/api/v1/namespaces/NS/pods`). Anything else is a 404
//!   `Status`; [`ApiServer::forbid`] makes a collection answer 403, [`ApiServer::unserve`] 404
//!   (a CRD not installed), [`ApiServer::unserve_group`] 404 for a whole API group. A kind is
//!   found by `apiVersion` and `kind` ([`ApiServer::apply`]), so Istio's Gateway and the
//!   Gateway API's are two collections; [`ApiServer::delete`] takes the kind as meshwork names
//!   it (`Gateway.gateway.networking.k8s.io` for the Gateway API's).
//! - **List**: items in namespace/name order with the list's `metadata.resourceVersion`, in
//!   pages (`limit`, `continue`), items without `apiVersion`/`kind` (as the API server sends
//!   them in lists).
//! - **Watch** (`?watch=1&resourceVersion=N`): a chunked stream of JSON lines, `ADDED` /
//!   `MODIFIED` / `DELETED` for every change after N (history replayed, then live), `BOOKMARK`
//!   every [`ApiServer::bookmark_every`] when `allowWatchBookmarks=true`, and an `ERROR` event
//!   with code 410 (Expired) when N is older than the last [`ApiServer::compact`] — as etcd's
//!   compaction makes the real one answer. The stream ends after `timeoutSeconds`.
//! - Faults: [`ApiServer::drop_watches`] ends every watch stream; [`ApiServer::stop`] closes
//!   the port and every connection; [`ApiServer::start`] opens the same port again.
//!
//! Label selectors are accepted and not applied (the tests hold no object they would leave out).
//! Of field selectors only terms on `type` are applied (`type=V`, `type==V`, `type!=V`, as the
//! API server supports for Secrets; an object without `type` has the type `Opaque`), to lists
//! and watches alike; other terms (`status.phase!=Failed`) are accepted and not applied.
//! [`ApiServer::requests`] lists the requests seen, for asserting on the protocol.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, Infallible>;

/// The collections served: (path prefix, plural, kind, apiVersion, cluster-scoped).
const COLLECTIONS: [(&str, &str, &str, &str, bool); 19] = [
    ("api/v1", "services", "Service", "v1", false),
    ("api/v1", "pods", "Pod", "v1", false),
    ("api/v1", "secrets", "Secret", "v1", false),
    ("api/v1", "namespaces", "Namespace", "v1", true),
    ("api/v1", "nodes", "Node", "v1", true),
    ("apis/discovery.k8s.io/v1", "endpointslices", "EndpointSlice", "discovery.k8s.io/v1", false),
    ("apis/networking.istio.io/v1", "virtualservices", "VirtualService", "networking.istio.io/v1", false),
    ("apis/networking.istio.io/v1", "destinationrules", "DestinationRule", "networking.istio.io/v1", false),
    ("apis/networking.istio.io/v1", "gateways", "Gateway", "networking.istio.io/v1", false),
    ("apis/networking.istio.io/v1", "serviceentries", "ServiceEntry", "networking.istio.io/v1", false),
    ("apis/networking.istio.io/v1", "workloadentries", "WorkloadEntry", "networking.istio.io/v1", false),
    ("apis/security.istio.io/v1", "peerauthentications", "PeerAuthentication", "security.istio.io/v1", false),
    ("apis/security.istio.io/v1", "authorizationpolicies", "AuthorizationPolicy", "security.istio.io/v1", false),
    ("apis/security.istio.io/v1", "requestauthentications", "RequestAuthentication", "security.istio.io/v1", false),
    ("apis/gateway.networking.k8s.io/v1", "gatewayclasses", "GatewayClass", "gateway.networking.k8s.io/v1", true),
    ("apis/gateway.networking.k8s.io/v1", "gateways", "Gateway", "gateway.networking.k8s.io/v1", false),
    ("apis/gateway.networking.k8s.io/v1", "httproutes", "HTTPRoute", "gateway.networking.k8s.io/v1", false),
    ("apis/gateway.networking.k8s.io/v1", "grpcroutes", "GRPCRoute", "gateway.networking.k8s.io/v1", false),
    (
        "apis/gateway.networking.k8s.io/v1beta1",
        "referencegrants",
        "ReferenceGrant",
        "gateway.networking.k8s.io/v1beta1",
        false,
    ),
];

#[derive(Debug)]
struct Record {
    rv: u64,
    collection: String,
    namespace: String,
    /// The object's `type` (Secrets), for field selectors.
    object_type: String,
    line: Bytes,
}

#[derive(Debug, Default)]
struct Inner {
    rv: u64,
    compacted: u64,
    /// (collection, namespace, name) -> object (with apiVersion and kind).
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<Arc<Record>>,
    forbidden: BTreeSet<String>,
    unserved: BTreeSet<String>,
    unserved_groups: BTreeSet<String>,
    requests: Vec<String>,
    /// 410 Gone answers sent.
    gone: usize,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Record>>,
    drops: watch::Sender<u64>,
    bookmark_every: Mutex<Duration>,
}

/// The server (see the module docs).
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ApiServer {
    /// Start on a free loopback port, empty at resourceVersion 1.
    pub async fn start() -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner { rv: 1, ..Inner::default() }),
            events: broadcast::channel(65536).0,
            drops: watch::Sender::new(0),
            bookmark_every: Mutex::new(Duration::from_millis(200)),
        });
        let server = ApiServer { addr, shared, task: Mutex::new(None) };
        server.serve(listener);
        server
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                // As the real API server: no Nagle delay on watch events.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.task.lock().expect("lock") = Some(task);
    }

    /// The address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Close the port and every connection (the API server is down).
    pub async fn stop(&self) {
        let task = self.task.lock().expect("lock").take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Open the same port again, with the same objects and history.
    pub async fn restart(&self) {
        self.stop().await;
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// A kubeconfig file in `dir` pointing at this server (plain HTTP, no credentials).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: http://{}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\nusers:\n- name: test\n  user: {{}}\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Send a BOOKMARK this often on watches that ask for them.
    pub fn bookmark_every(&self, every: Duration) {
        *self.shared.bookmark_every.lock().expect("lock") = every;
    }

    /// Make a collection (its plural: `nodes`) answer 403 Forbidden.
    pub fn forbid(&self, plural: &str) {
        self.shared.inner.lock().expect("lock").forbidden.insert(plural.to_string());
    }

    /// Make a collection (its plural) answer 404, as for a CRD that is not installed.
    pub fn unserve(&self, plural: &str) {
        self.shared.inner.lock().expect("lock").unserved.insert(plural.to_string());
    }

    /// Make every collection of an API group (`gateway.networking.k8s.io`) answer 404, as a
    /// cluster without that group's CRDs does.
    pub fn unserve_group(&self, group: &str) {
        self.shared.inner.lock().expect("lock").unserved_groups.insert(group.to_string());
    }

    /// Create or replace an object: it gets the next
    /// resourceVersion and an `ADDED` or `MODIFIED` event. Returns the resourceVersion.
    pub fn apply(&self, object: Value) -> u64 {
        let kind = object["kind"].as_str().expect("kind").to_string();
        let api_version = object["apiVersion"].as_str().unwrap_or("");
        let (collection, cluster) = collection_of(api_version, &kind);
        let namespace = if cluster {
            String::new()
        } else {
            object["metadata"]["namespace"].as_str().unwrap_or("default").to_string()
        };
        let name = object["metadata"]["name"].as_str().expect("name").to_string();
        let mut inner = self.shared.inner.lock().expect("lock");
        inner.rv += 1;
        let rv = inner.rv;
        let mut object = object;
        object["metadata"]["resourceVersion"] = Value::from(rv.to_string());
        if !cluster {
            object["metadata"]["namespace"] = Value::from(namespace.clone());
        }
        let key = (collection.clone(), namespace.clone(), name);
        let kind = if inner.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
        inner.objects.insert(key, object.clone());
        self.record(&mut inner, rv, collection, namespace, kind, object);
        rv
    }

    /// Delete an object: a `DELETED` event at the next resourceVersion.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let (collection, cluster) = match kind.split_once('.') {
            Some((kind, group)) => collection_of(&format!("{group}/v1"), kind),
            None => collection_of("", kind),
        };
        let namespace = if cluster { String::new() } else { namespace.to_string() };
        let mut inner = self.shared.inner.lock().expect("lock");
        let Some(mut object) = inner.objects.remove(&(collection.clone(), namespace.clone(), name.to_string())) else {
            return;
        };
        inner.rv += 1;
        let rv = inner.rv;
        object["metadata"]["resourceVersion"] = Value::from(rv.to_string());
        self.record(&mut inner, rv, collection, namespace, "DELETED", object);
    }

    fn record(&self, inner: &mut Inner, rv: u64, collection: String, namespace: String, kind: &str, object: Value) {
        let object_type = type_of(&object).to_string();
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("json");
        line.push(b'\n');
        let record = Arc::new(Record { rv, collection, namespace, object_type, line: Bytes::from(line) });
        inner.history.push(record.clone());
        let _ = self.shared.events.send(record);
    }

    /// Forget history up to now, as etcd's compaction does: a watch from an older
    /// resourceVersion gets `410 Gone` and must list again.
    pub fn compact(&self) {
        let mut inner = self.shared.inner.lock().expect("lock");
        inner.compacted = inner.rv;
        let compacted = inner.compacted;
        inner.history.retain(|r| r.rv > compacted);
    }

    /// End every open watch stream (the client resumes from its last resourceVersion).
    pub fn drop_watches(&self) {
        self.shared.drops.send_modify(|n| *n += 1);
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.inner.lock().expect("lock").rv
    }

    /// How many watches were answered 410 Gone.
    pub fn gone(&self) -> usize {
        self.shared.inner.lock().expect("lock").gone
    }

    /// Every request seen, as `PATH?QUERY`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().expect("lock").requests.clone()
    }
}

/// The collection of `kind` in `api_version`, or (with no such pair) the first of `kind`.
fn collection_of(api_version: &str, kind: &str) -> (String, bool) {
    let (prefix, plural, _, _, cluster) = (COLLECTIONS.iter().find(|c| c.2 == kind && c.3 == api_version))
        .or_else(|| COLLECTIONS.iter().find(|c| c.2 == kind))
        .unwrap_or_else(|| panic!("no collection for kind {kind}"));
    (format!("{prefix}/{plural}"), *cluster)
}

/// An object's `type` for field selectors (`Opaque` when absent, as the API server defaults a
/// Secret's).
fn type_of(object: &Value) -> &str {
    object["type"].as_str().unwrap_or("Opaque")
}

/// The `type` terms of a `fieldSelector`: (value, equal?) each; other terms are left out.
fn type_terms(query: &BTreeMap<String, String>) -> Vec<(String, bool)> {
    let Some(selector) = query.get("fieldSelector") else { return Vec::new() };
    selector
        .split(',')
        .filter_map(|term| {
            if let Some(v) = term.strip_prefix("type!=") {
                Some((v.to_string(), false))
            } else {
                term.strip_prefix("type==").or_else(|| term.strip_prefix("type=")).map(|v| (v.to_string(), true))
            }
        })
        .collect()
}

fn selected(terms: &[(String, bool)], object_type: &str) -> bool {
    terms.iter().all(|(v, equal)| (v == object_type) == *equal)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn reply(code: u16, body: Value) -> http::Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(&body).expect("json"));
    http::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(bytes).map_err(|never| match never {}).boxed())
        .expect("response")
}

/// `(collection, namespace)` of a request path, if it names a served collection.
fn route(path: &str) -> Option<(String, Option<String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix_len, rest) = match *segments.first()? {
        "api" => (2, &segments[2.min(segments.len())..]),
        "apis" => (3, &segments[3.min(segments.len())..]),
        _ => return None,
    };
    let prefix = segments.get(..prefix_len)?.join("/");
    match rest {
        [plural] => Some((format!("{prefix}/{plural}"), None)),
        ["namespaces", ns, plural] => Some((format!("{prefix}/{plural}"), Some(ns.to_string()))),
        _ => None,
    }
}

fn handle(shared: &Arc<Shared>, req: http::Request<hyper::body::Incoming>) -> http::Response<Body> {
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    shared.inner.lock().expect("lock").requests.push(format!("{}?{}", path, req.uri().query().unwrap_or("")));
    let Some((collection, namespace)) = route(&path) else {
        return reply(404, status(404, "NotFound", "the server could not find the requested resource"));
    };
    let Some(&(_, plural, kind, api_version, _)) =
        COLLECTIONS.iter().find(|c| format!("{}/{}", c.0, c.1) == collection)
    else {
        return reply(404, status(404, "NotFound", "the server could not find the requested resource"));
    };
    let group = collection.strip_prefix("apis/").and_then(|g| g.split('/').next()).unwrap_or("");
    let unserved = {
        let inner = shared.inner.lock().expect("lock");
        inner.unserved.contains(plural) || inner.unserved_groups.contains(group)
    };
    if unserved {
        return reply(404, status(404, "NotFound", "the server could not find the requested resource"));
    }
    if shared.inner.lock().expect("lock").forbidden.contains(plural) {
        let message = format!("{plural} is forbidden: User \"system:serviceaccount:test:mesh\" cannot list resource");
        return reply(403, status(403, "Forbidden", &message));
    }
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    if is_watch {
        return watch_response(shared, collection, namespace, kind, api_version, &query);
    }
    // List, in pages: the continue token is the last key returned and the list's
    // resourceVersion, so each page costs its own size.
    let inner = shared.inner.lock().expect("lock");
    let (after, rv) = match query.get("continue").and_then(|c| c.rsplit_once('@')) {
        Some((key, rv)) => {
            (key.split_once('/').map(|(ns, n)| (ns.to_string(), n.to_string())), rv.parse().unwrap_or(inner.rv))
        }
        None => (None, inner.rv),
    };
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let start = match &after {
        Some((ns, name)) => std::ops::Bound::Excluded((collection.clone(), ns.clone(), name.clone())),
        None => std::ops::Bound::Included((collection.clone(), String::new(), String::new())),
    };
    let terms = type_terms(&query);
    let mut page = Vec::new();
    let mut last = None;
    let mut more = false;
    for ((c, ns, name), v) in inner.objects.range((start, std::ops::Bound::Unbounded)) {
        if *c != collection {
            break;
        }
        if namespace.as_ref().is_some_and(|n| n != ns) || !selected(&terms, type_of(v)) {
            continue;
        }
        if page.len() == limit {
            more = true;
            break;
        }
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
        }
        page.push(v);
        last = Some(format!("{ns}/{name}"));
    }
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let (true, Some(last)) = (more, last) {
        metadata["continue"] = Value::from(format!("{last}@{rv}"));
    }
    reply(200, json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": metadata, "items": page}))
}

fn percent_decode(v: &str) -> String {
    let mut out = Vec::new();
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn watch_response(
    shared: &Arc<Shared>,
    collection: String,
    namespace: Option<String>,
    kind: &str,
    api_version: &str,
    query: &BTreeMap<String, String>,
) -> http::Response<Body> {
    let from: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1");
    let timeout = query.get("timeoutSeconds").and_then(|t| t.parse().ok()).map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1024);
    let matches = {
        let namespace = namespace.clone();
        let collection = collection.clone();
        let terms = type_terms(query);
        move |r: &Record| {
            r.collection == collection
                && namespace.as_ref().is_none_or(|n| *n == r.namespace)
                && selected(&terms, &r.object_type)
        }
    };
    let (backlog, mut live, gone) = {
        let inner = shared.inner.lock().expect("lock");
        let mut inner = inner;
        let gone = from != 0 && from < inner.compacted;
        inner.gone += usize::from(gone);
        let backlog: Vec<Arc<Record>> = inner.history.iter().filter(|r| r.rv > from && matches(r)).cloned().collect();
        (backlog, shared.events.subscribe(), gone)
    };
    let shared = shared.clone();
    let kind = kind.to_string();
    let api_version = api_version.to_string();
    tokio::spawn(async move {
        let send = |line: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(Frame::data(line))).await.is_ok() }
        };
        if gone {
            let event = json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")});
            let mut line = serde_json::to_vec(&event).expect("json");
            line.push(b'\n');
            let _ = send(Bytes::from(line)).await;
            return;
        }
        let mut last = from;
        for r in backlog {
            last = last.max(r.rv);
            if !send(r.line.clone()).await {
                return;
            }
        }
        let mut drops = shared.drops.subscribe();
        drops.borrow_and_update();
        let every = *shared.bookmark_every.lock().expect("lock");
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(r) => {
                        if r.rv > last && matches(&r) {
                            last = r.rv;
                            if !send(r.line.clone()).await { return; }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    // Every event up to `now` is already in `live` (events are sent under
                    // the lock): deliver those, then the bookmark.
                    let now = shared.inner.lock().expect("lock").rv;
                    while let Ok(r) = live.try_recv() {
                        if r.rv > last && matches(&r) {
                            last = r.rv;
                            if !send(r.line.clone()).await { return; }
                        }
                    }
                    let event = json!({"type": "BOOKMARK", "object": {"kind": &kind, "apiVersion": &api_version,
                                       "metadata": {"resourceVersion": now.to_string()}}});
                    let mut line = serde_json::to_vec(&event).expect("json");
                    line.push(b'\n');
                    last = last.max(now);
                    if !send(Bytes::from(line)).await { return; }
                }
                _ = drops.changed() => return,
                () = &mut deadline => return,
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("response")
}
