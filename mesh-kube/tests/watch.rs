//! The Kubernetes source against a loopback API server that speaks the list/watch protocol
//! (`support/apiserver.rs`), through the real kube-rs client: what reaches the per-resource
//! store after lists in pages, watch events, bookmarks, an invalid update, dropped watches, an
//! outage, a 410 relist, a forbidden Node list, `list_once`, the Gateway API's and Istio's
//! security kinds (served, updated, or absent from the cluster), and the TLS Secrets of HTTPS
//! listeners (only those, by field selector; forbidden).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use mesh_config::store::{Origin, Scope, SourceEvent, Sources};
use mesh_config::{CompileOptions, ConfigStore, ResourceRef};
use mesh_kube::{Backoff, KubeSource, WatchOptions};
use serde_json::{Value, json};
use support::apiserver::ApiServer;
use tokio::sync::mpsc;

/// What a consumer of the source holds: the seam and the store over it.
struct Mirror {
    sources: Sources,
    store: ConfigStore,
    pending: BTreeSet<Scope>,
    events: mpsc::Receiver<SourceEvent>,
}

impl Mirror {
    fn new(source: KubeSource) -> Mirror {
        let (scopes, events) = source.into_parts();
        Mirror {
            sources: Sources::new(),
            store: ConfigStore::new(CompileOptions::for_namespace("shop")),
            pending: scopes.into_iter().collect(),
            events,
        }
    }

    /// Take events until `done` holds (a 20 s guard against a hang, not a timing assertion).
    async fn until(&mut self, what: &str, done: impl Fn(&Mirror) -> bool) {
        let guard = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(self) {
            let event = tokio::time::timeout_at(guard, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("never: {what}"))
                .expect("the watches run");
            if let SourceEvent::Replace { scope, .. } = &event {
                self.pending.remove(scope);
            }
            if self.sources.apply(event) {
                self.store.apply(self.sources.merged());
            }
        }
    }

    fn has(&self, kind: &str, name: &str) -> bool {
        self.store.resource_refs().any(|r| &*r.kind == kind && &*r.name == name)
    }

    fn origin(&self, kind: &str, ns: &str, name: &str) -> Option<Origin> {
        self.sources.origin(&ResourceRef { kind: kind.into(), namespace: ns.into(), name: name.into() })
    }

    fn version_of(&self, kind: &str, ns: &str, name: &str) -> Option<String> {
        match self.origin(kind, ns, name) {
            Some(Origin::Kubernetes { resource_version, .. }) => resource_version.map(|v| v.to_string()),
            _ => None,
        }
    }
}

fn virtual_service(name: &str, subset: &str) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}]}})
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
           "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": name}}})
}

fn pod(name: &str, ns: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "reviews"}},
           "spec": {"nodeName": "node-a"}, "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

async fn client(server: &ApiServer) -> (kube::Client, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("mesh-kube-{}-{}", std::process::id(), server.addr().port()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = server.kubeconfig(&dir);
    (mesh_kube::client(Some(&kubeconfig)).await.expect("a client from the kubeconfig"), kubeconfig)
}

fn fast() -> WatchOptions {
    WatchOptions {
        backoff: Backoff::Exponential { initial: Duration::from_millis(50), max: Duration::from_millis(400) },
        ..WatchOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_in_pages_then_follows_watch_events_and_faults() {
    let server = ApiServer::start().await;
    server.bookmark_every(Duration::from_millis(100));
    server.forbid("nodes");
    server.apply(service("reviews"));
    server.apply(virtual_service("reviews", "v1"));
    // More Pods than one page (the watcher lists 500 at a time): the list is read in pages.
    for i in 0..1100 {
        server.apply(pod(&format!("bulk-{i}"), "bulk", &format!("10.1.{}.{}", i / 250, i % 250)));
    }
    let (client, _) = client(&server).await;
    let mut mirror = Mirror::new(KubeSource::start(client, &fast()));
    mirror.until("every kind listed", |m| m.pending.is_empty()).await;
    assert_eq!(mirror.sources.objects(), 1102, "the Service, the VirtualService, 1,100 Pods; Nodes forbidden");
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.starts_with("/api/v1/pods?") && r.contains("continue=")), "{requests:?}");
    assert!(requests.iter().any(|r| r.contains("watch=true") && r.contains("allowWatchBookmarks=true")));
    assert!(requests.iter().any(|r| r.starts_with("/api/v1/nodes?")), "Nodes were asked for, and refused");

    // A watch event changes the VirtualService; an invalid version keeps the last good one,
    // whose origin still names the object and the resourceVersion last received.
    let rv = server.apply(virtual_service("reviews", "v2"));
    mirror
        .until("the new version", |m| m.version_of("VirtualService", "shop", "reviews") == Some(rv.to_string()))
        .await;
    let mut bad = virtual_service("reviews", "v3");
    bad["spec"]["http"][0]["timeout"] = json!("soon");
    let bad_rv = server.apply(bad);
    mirror
        .until("the invalid version", |m| m.version_of("VirtualService", "shop", "reviews") == Some(bad_rv.to_string()))
        .await;
    let rejection = mirror.store.rejections().iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(rejection.contains("VirtualService shop/reviews: http[0].timeout"), "{rejection}");
    assert!(mirror.has("VirtualService", "reviews"), "the last good version stays in force");

    // Dropped watches resume from the last resourceVersion: nothing relisted, nothing lost.
    let lists_before = server.requests().iter().filter(|r| !r.contains("watch=")).count();
    server.drop_watches();
    server.apply(virtual_service("ratings", "v1"));
    mirror.until("an object created across the drop", |m| m.has("VirtualService", "ratings")).await;
    let lists_after = server.requests().iter().filter(|r| !r.contains("watch=")).count();
    assert_eq!(lists_before, lists_after, "a resumed watch, not a relist");

    // The API server goes away; while it is down, objects are deleted and created and its
    // history compacted. Back on the same port, the watches get 410 Gone, relist, and converge:
    // the deletion made while away disappears.
    server.stop().await;
    server.delete("VirtualService", "shop", "ratings");
    server.delete("Pod", "bulk", "bulk-7");
    server.apply(pod("late", "shop", "10.2.0.1"));
    server.compact();
    server.restart().await;
    mirror
        .until("converged after the outage", |m| {
            !m.has("VirtualService", "ratings") && !m.has("Pod", "bulk-7") && m.has("Pod", "late")
        })
        .await;
    let relists = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("/apis/networking.istio.io/v1/virtualservices?") && !r.contains("watch="))
        .count();
    assert!(server.gone() > 0, "watches from before the compaction were answered 410 Gone");
    assert!(relists >= 2, "the 410 made the watcher list again: {relists}");
    assert_eq!(
        mirror.sources.objects(),
        1102 - 1 + 1,
        "the ratings VS and bulk-7 gone, `late` added (and reviews kept)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_namespace_lists_only_those_namespaces() {
    let server = ApiServer::start().await;
    server.apply(pod("a", "shop", "10.0.0.1"));
    server.apply(pod("b", "other", "10.0.0.2"));
    let (client, _) = client(&server).await;
    let options = WatchOptions { namespaces: vec!["shop".into()], ..fast() };
    let source = KubeSource::start(client, &options);
    assert!(source.scopes().iter().all(|s| s.namespace.as_deref() == Some("shop")), "no cluster-scoped kind");
    let mut mirror = Mirror::new(source);
    mirror.until("listed", |m| m.pending.is_empty()).await;
    assert!(mirror.has("Pod", "a") && !mirror.has("Pod", "b"));
    assert!(server.requests().iter().all(|r| r.starts_with("/api/v1/namespaces/shop/") || r.starts_with("/apis/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_once_reports_a_bad_object_by_kind_and_name() {
    let server = ApiServer::start().await;
    server.apply(service("reviews"));
    let mut bad = virtual_service("reviews", "v1");
    bad["spec"]["http"][0]["route"][0]["weight"] = json!(-5);
    server.apply(bad);
    let (client, _) = client(&server).await;
    let (events, notes) = mesh_kube::list_once(&client, &WatchOptions::default()).await.expect("lists");
    assert!(notes.is_empty(), "{notes:?}");
    let mut sources = Sources::new();
    for e in events {
        sources.apply(e);
    }
    let mut store = ConfigStore::default();
    let report = store.apply(sources.merged());
    let lines: Vec<String> = report.errors().map(ToString::to_string).collect();
    assert!(lines.iter().any(|l| l.contains("VirtualService shop/reviews: http[0].route[0].weight")), "{lines:?}");
}

/// Istio's kinds are optional (a 404 when the CRDs are not installed lists them as empty);
/// Services, Pods and EndpointSlices are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_istio_crds_is_ready_with_its_services() {
    let server = ApiServer::start().await;
    for plural in ["virtualservices", "destinationrules", "gateways", "serviceentries", "workloadentries"] {
        server.unserve(plural);
    }
    server.apply(service("reviews"));
    let (kube, _) = client(&server).await;
    let mut mirror = Mirror::new(KubeSource::start(kube, &fast()));
    mirror.until("every kind listed (Istio's as empty)", |m| m.pending.is_empty()).await;
    assert!(mirror.has("Service", "reviews"));
    // A required kind that is forbidden holds readiness back: no partial endpoints.
    let server = ApiServer::start().await;
    server.forbid("endpointslices");
    let (kube, _) = client(&server).await;
    let mut mirror = Mirror::new(KubeSource::start(kube, &fast()));
    mirror.until("the other kinds listed", |m| m.pending.len() == 1).await;
    // The slice list is retried (with backoff), and the source stays not ready.
    let guard = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.requests().iter().filter(|r| r.starts_with("/apis/discovery.k8s.io/v1/endpointslices?")).count() < 3 {
        assert!(tokio::time::Instant::now() < guard, "the forbidden list is retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Ok(event) = mirror.events.try_recv() {
        assert!(!matches!(event, SourceEvent::Replace { .. }), "no list of a forbidden required kind: {event:?}");
    }
    let waiting: Vec<String> = mirror.pending.iter().map(ToString::to_string).collect();
    assert_eq!(waiting, ["EndpointSlice"]);
}

fn kube_gateway(name: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"gatewayClassName": "istio",
                    "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})
}

fn http_route(name: &str, gateway: &str, backend: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"parentRefs": [{"name": gateway}], "hostnames": ["reviews.example.com"],
                    "rules": [{"backendRefs": [{"name": backend, "port": 9080}]}]}})
}

/// The condition `kind` of the route `shop/name` on its first parent, as the compile decided it:
/// `(status, reason)`.
fn route_condition(mirror: &Mirror, name: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    let route = mirror.store.compiled_gateway_api().route("shop", name)?;
    let parent = route.parents.first()?;
    parent.conditions.iter().find(|c| c.kind == kind).map(|c| (c.status, c.reason))
}

/// A Gateway API Gateway and HTTPRoute in the API server reach the store and are compiled (the
/// snapshot serves the Gateway, the route attaches to it and resolves its backend); an update
/// of the route is followed; Istio's security kinds are read too; and an Istio Gateway of the
/// same namespace and name is a different object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_and_security_kinds_are_watched() {
    let server = ApiServer::start().await;
    server.apply(service("reviews"));
    server.apply(kube_gateway("web"));
    server.apply(http_route("reviews", "web", "reviews"));
    let mut istio_gateway = json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}});
    server.apply(istio_gateway.clone());
    server.apply(json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "shop"}, "spec": {"mtls": {"mode": "STRICT"}}}));
    server.apply(json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-all", "namespace": "shop"}, "spec": {}}));
    let (kube, _) = client(&server).await;
    let mut mirror = Mirror::new(KubeSource::start(kube, &fast()));
    mirror.until("every kind listed", |m| m.pending.is_empty()).await;
    assert_eq!(mirror.sources.objects(), 6, "the Service, both Gateways, the route, two policies");
    assert!(mirror.has("Gateway.gateway.networking.k8s.io", "web") && mirror.has("Gateway", "web"));
    assert!(mirror.has("HTTPRoute", "reviews"));
    assert!(mirror.has("PeerAuthentication", "default") && mirror.has("AuthorizationPolicy", "deny-all"));
    assert!(matches!(
        mirror.origin("Gateway.gateway.networking.k8s.io", "shop", "web"),
        Some(Origin::Kubernetes { kind, .. }) if &*kind == "Gateway.gateway.networking.k8s.io"
    ));
    assert!(mirror.store.snapshot().gateway("shop", "web").is_some(), "the Gateway API Gateway is served");
    assert_eq!(route_condition(&mirror, "reviews", "Accepted"), Some(("True", "Accepted")));
    assert_eq!(route_condition(&mirror, "reviews", "ResolvedRefs"), Some(("True", "ResolvedRefs")));
    let requests = server.requests();
    for path in ["/apis/gateway.networking.k8s.io/v1/httproutes?", "/apis/gateway.networking.k8s.io/v1/gatewayclasses?"]
    {
        assert!(requests.iter().any(|r| r.starts_with(path)), "{path} listed: {requests:?}");
    }

    // The route now names a backend that does not exist: the store takes the new version and
    // the compile says so.
    let rv = server.apply(http_route("reviews", "web", "details"));
    mirror.until("the route's update", |m| m.version_of("HTTPRoute", "shop", "reviews") == Some(rv.to_string())).await;
    assert_eq!(route_condition(&mirror, "reviews", "ResolvedRefs"), Some(("False", "BackendNotFound")));

    // Deleting Istio's Gateway leaves the Gateway API's of the same name.
    server.delete("Gateway", "shop", "web");
    mirror.until("Istio's Gateway deleted", |m| !m.has("Gateway", "web")).await;
    assert!(mirror.has("Gateway.gateway.networking.k8s.io", "web"));
    istio_gateway["metadata"]["name"] = json!("other");
    server.apply(istio_gateway);
    mirror.until("another Istio Gateway", |m| m.has("Gateway", "other")).await;
    assert!(mirror.store.snapshot().gateway("shop", "web").is_some());
}

/// A cluster without the Gateway API (its group answers 404) and whose RBAC forbids Istio's
/// security kinds (403) is ready with the rest; each absent kind is asked for again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_gateway_api_is_ready() {
    let server = ApiServer::start().await;
    server.unserve_group("gateway.networking.k8s.io");
    for plural in ["peerauthentications", "authorizationpolicies", "requestauthentications"] {
        server.forbid(plural);
    }
    server.apply(service("reviews"));
    server.apply(virtual_service("reviews", "v1"));
    let (kube, _) = client(&server).await;
    let mut mirror = Mirror::new(KubeSource::start(kube, &fast()));
    mirror.until("every kind listed (the absent ones as empty)", |m| m.pending.is_empty()).await;
    assert!(mirror.has("Service", "reviews") && mirror.has("VirtualService", "reviews"));
    assert_eq!(mirror.sources.objects(), 2);
    // Retried slowly (the backoff), so that CRDs installed later are read.
    let guard = tokio::time::Instant::now() + Duration::from_secs(20);
    let asked = |path: &str| server.requests().iter().filter(|r| r.starts_with(path)).count();
    while asked("/apis/gateway.networking.k8s.io/v1/httproutes?") < 2
        || asked("/apis/security.istio.io/v1/authorizationpolicies?") < 2
    {
        assert!(tokio::time::Instant::now() < guard, "the absent kinds are asked for again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Standard base64 (the encoding of a Secret's `data`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB-not-checked-here\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nS3CR3T-KEY-MATERIAL\n-----END PRIVATE KEY-----\n";

fn secret(name: &str, kind: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), base64(v.as_bytes()).into())).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": kind, "data": data,
           "metadata": {"name": name, "namespace": "shop",
                        // What `kubectl apply` leaves: the whole Secret again, key included.
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                        format!("{{\"stringData\":{{\"tls.key\":{:?}}}}}", KEY)}}})
}

fn https_gateway(name: &str, certificates: &[&str]) -> Value {
    let listeners: Vec<Value> = certificates
        .iter()
        .enumerate()
        .map(|(i, cert)| {
            json!({"name": format!("https-{cert}"), "port": 443 + i, "protocol": "HTTPS",
                   "tls": {"mode": "Terminate", "certificateRefs": [{"name": cert}]}})
        })
        .collect();
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"gatewayClassName": "istio", "listeners": listeners}})
}

/// The condition `kind` of the listener `listener` of the Gateway `shop/gateway`: `(status, reason)`.
fn listener_condition(
    mirror: &Mirror,
    gateway: &str,
    listener: &str,
    kind: &str,
) -> Option<(&'static str, &'static str)> {
    let status = mirror.store.compiled_gateway_api().gateway("shop", gateway)?;
    let listener = status.listeners.iter().find(|l| l.name == listener)?;
    listener.conditions.iter().find(|c| c.kind == kind).map(|c| (c.status, c.reason))
}

/// Is the Gateway `shop/name` served with a TLS server whose certificate came from `secret`?
fn served_with_certificate(mirror: &Mirror, name: &str, secret: &str) -> bool {
    let snapshot = mirror.store.snapshot();
    let Some(gateway) = snapshot.gateway("shop", name) else { return false };
    gateway.servers.iter().any(|s| {
        s.tls
            .as_ref()
            .and_then(|t| t.credential.as_ref())
            .is_some_and(|c| *c.source == format!("Secret shop/{secret}") && &*c.certificate_chain == CERT.as_bytes())
    })
}

/// A `kubernetes.io/tls` Secret in the API server reaches the store and an HTTPS listener naming
/// it is programmed with its certificate; the watch asks only for TLS Secrets (the field
/// selector, which the fake API server applies), so an Opaque Secret is neither sent nor
/// stored and a listener naming it stays unresolved; what is stored holds the TLS keys only
/// (not the `last-applied-configuration` annotation); a deleted Secret unprograms its listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_secrets_are_watched_for_https_listeners() {
    let server = ApiServer::start().await;
    server.apply(secret("web-cert", "kubernetes.io/tls", &[("tls.crt", CERT), ("tls.key", KEY), ("ca.crt", CERT)]));
    server.apply(secret("db-password", "Opaque", &[("tls.crt", CERT), ("tls.key", KEY)]));
    server.apply(https_gateway("web", &["web-cert", "db-password"]));
    let (kube, _) = client(&server).await;
    let mut mirror = Mirror::new(KubeSource::start(kube, &fast()));
    mirror.until("every kind listed", |m| m.pending.is_empty()).await;
    assert!(mirror.has("Secret", "web-cert"), "the TLS Secret is stored");
    assert!(!mirror.has("Secret", "db-password"), "the Opaque Secret is not");
    assert_eq!(mirror.sources.objects(), 2, "the Gateway and the TLS Secret");
    let requests = server.requests();
    let secret_requests: Vec<&String> = requests.iter().filter(|r| r.starts_with("/api/v1/secrets?")).collect();
    assert!(!secret_requests.is_empty(), "{requests:?}");
    assert!(
        secret_requests.iter().all(|r| r.contains("fieldSelector=type%3Dkubernetes.io%2Ftls")),
        "every Secret list and watch sends the selector: {secret_requests:?}"
    );
    assert_eq!(listener_condition(&mirror, "web", "https-web-cert", "ResolvedRefs"), Some(("True", "ResolvedRefs")));
    assert_eq!(
        listener_condition(&mirror, "web", "https-db-password", "ResolvedRefs"),
        Some(("False", "InvalidCertificateRef"))
    );
    assert!(served_with_certificate(&mirror, "web", "web-cert"));
    // Neither the key nor the annotation repeating it is held, printed or in a diagnostic.
    let held = format!("{:?} {:?}", mirror.sources.merged(), mirror.store.snapshot().gateway("shop", "web"));
    for needle in ["S3CR3T", &base64(KEY.as_bytes()), "last-applied", &base64(CERT.as_bytes())] {
        assert!(!held.contains(needle), "{needle:?} printed: {held}");
    }

    // A Secret created later is followed by the watch (an Opaque one is not sent at all).
    server.apply(secret("late", "Opaque", &[("password", "hunter2")]));
    server.apply(secret("web-cert-2", "kubernetes.io/tls", &[("tls.crt", CERT), ("tls.key", KEY)]));
    server.apply(https_gateway("web", &["web-cert-2"]));
    mirror.until("the new Secret and Gateway", |m| served_with_certificate(m, "web", "web-cert-2")).await;
    assert!(!mirror.has("Secret", "late"));
    assert_eq!(listener_condition(&mirror, "web", "https-web-cert-2", "ResolvedRefs"), Some(("True", "ResolvedRefs")));
    // Deleting the Secret unprograms the listener.
    server.delete("Secret", "shop", "web-cert-2");
    mirror.until("the Secret deleted", |m| !m.has("Secret", "web-cert-2")).await;
    assert_eq!(
        listener_condition(&mirror, "web", "https-web-cert-2", "ResolvedRefs"),
        Some(("False", "InvalidCertificateRef"))
    );
    assert!(!served_with_certificate(&mirror, "web", "web-cert-2"));
}

/// A role without `secrets` (403) is ready with the rest: HTTPS listeners stay unprogrammed,
/// and the Secrets are asked for again later. `--watch-namespace` watches them per namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_secrets_leave_https_listeners_unprogrammed() {
    let server = ApiServer::start().await;
    server.forbid("secrets");
    server.apply(secret("web-cert", "kubernetes.io/tls", &[("tls.crt", CERT), ("tls.key", KEY)]));
    server.apply(https_gateway("web", &["web-cert"]));
    server.apply(service("reviews"));
    let (kube, _) = client(&server).await;
    let options = WatchOptions { namespaces: vec!["shop".into()], ..fast() };
    let source = KubeSource::start(kube, &options);
    assert!(source.scopes().iter().any(|s| &*s.kind == "Secret" && s.namespace.as_deref() == Some("shop")));
    let mut mirror = Mirror::new(source);
    mirror.until("every kind listed (Secrets as empty)", |m| m.pending.is_empty()).await;
    assert!(mirror.has("Service", "reviews") && !mirror.has("Secret", "web-cert"));
    assert_eq!(
        listener_condition(&mirror, "web", "https-web-cert", "ResolvedRefs"),
        Some(("False", "InvalidCertificateRef"))
    );
    let guard = tokio::time::Instant::now() + Duration::from_secs(20);
    let asked = || server.requests().iter().filter(|r| r.starts_with("/api/v1/namespaces/shop/secrets?")).count();
    while asked() < 2 {
        assert!(tokio::time::Instant::now() < guard, "the forbidden Secrets are asked for again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
