//! `mesh proxy --kubernetes` against a loopback API server that speaks the list/watch protocol
//! (mesh-kube's test harness: resourceVersions, pages, chunked watch streams, bookmarks, 410
//! Gone, dropped connections, restarts), with real HTTP servers for the Pods on 127.0.0.x:
//! readiness, routing that follows VirtualService changes, endpoints that follow EndpointSlice
//! and Pod changes, an invalid update that keeps the last good version, an outage with a 410
//! relist that converges without a failed request, deletions, `/config_dump`'s origins,
//! `mesh validate --kubernetes`, and secure naming that follows a rollout to another service
//! account.

#[path = "../../mesh-kube/tests/support/apiserver.rs"]
mod apiserver;
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use apiserver::ApiServer;
use bytes::Bytes;
use serde_json::{Value, json};
use support::{PlainClient, admin, client, config_dir, get};

/// An HTTP server on `ip`:0 that answers its name.
async fn pod_server(ip: &str, name: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind a loopback address");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_req: http::Request<hyper::body::Incoming>| async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from(
                            name,
                        ))))
                    });
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    port
}

fn pod(name: &str, ip: &str, version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "bookinfo", "labels": {"app": "reviews", "version": version}},
           "spec": {"nodeName": "node-a", "containers": [{"name": "reviews", "image": "reviews"}]},
           "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

/// An EndpointSlice of `reviews` with (address, port, pod, ready) endpoints on port `http`.
fn slice(name: &str, endpoints: &[(&str, u16, &str, bool)]) -> Value {
    // One slice names one port; each address here has its own server port, so one slice
    // per port, as the API server would hold for pods with different target ports.
    let port = endpoints.first().map_or(0, |e| e.1);
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, _, pod, ready)| {
            json!({"addresses": [ip], "conditions": {"ready": ready},
                   "targetRef": {"kind": "Pod", "name": pod, "namespace": "bookinfo"}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
           "metadata": {"name": name, "namespace": "bookinfo",
                        "labels": {"kubernetes.io/service-name": "reviews"}},
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
           "endpoints": endpoints})
}

fn virtual_service(subset: &str) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "reviews", "namespace": "bookinfo"},
           "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": subset}}]}]}})
}

struct Proxy {
    child: Child,
    listen: String,
    admin: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_proxy(kubeconfig: &std::path::Path, files: &std::path::Path) -> Proxy {
    let files = files.display().to_string();
    mesh_proxy_with(kubeconfig, &["-f", &files, "-n", "bookinfo", "--listen", "127.0.0.1:0"])
}

/// `mesh proxy --kubernetes --kubeconfig FILE ARGS... --admin 127.0.0.1:0`, once it has said
/// where it listens (the first `listening on` address).
fn mesh_proxy_with(kubeconfig: &std::path::Path, args: &[&str]) -> Proxy {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["proxy", "--kubernetes", "--kubeconfig"])
        .arg(kubeconfig)
        .args(args)
        .args(["--admin", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mesh proxy starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut listen, mut admin) = (String::new(), String::new());
    while admin.is_empty() {
        let line = lines.next().expect("the proxy prints its addresses").expect("utf-8");
        if let Some(a) = line.strip_prefix("listening on ") {
            listen = a.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(a) = line.strip_prefix("admin on ") {
            admin = a.to_string();
        }
    }
    Proxy { child, listen, admin }
}

async fn status_of(client: &PlainClient, admin: &str, path: &str) -> u16 {
    let response = client.get(format!("http://{admin}{path}").parse().expect("uri")).await.expect("admin answers");
    response.status().as_u16()
}

/// The distinct answers of `n` requests for reviews.
async fn answers(client: &PlainClient, proxy: &Proxy, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let (status, body, _) = get(client, &proxy.listen, "reviews.bookinfo.svc.cluster.local:9080", "/", &[]).await;
        assert_eq!(status, 200, "{body}");
        seen.insert(body);
    }
    seen
}

/// Poll until `check` holds (a 20 s guard against a hang; not a timing assertion).
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let guard = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < guard, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn dump(client: &PlainClient, proxy: &Proxy) -> Value {
    serde_json::from_str(&admin(client, &proxy.admin, "/config_dump").await).expect("config_dump is JSON")
}

fn resource<'a>(dump: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    dump["resources"].as_array()?.iter().find(|r| r["kind"] == kind && r["name"] == name)
}

/// Has the proxy applied version `rv` of the object?
async fn applied(client: &PlainClient, proxy: &Proxy, kind: &str, name: &str, rv: u64) -> bool {
    let dump = dump(client, proxy).await;
    resource(&dump, kind, name).is_some_and(|r| r["resourceVersion"].as_str() == Some(rv.to_string().as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_proxy_follows_the_cluster() {
    let v1 = pod_server("127.0.0.41", "v1").await;
    let v2 = pod_server("127.0.0.42", "v2").await;
    let not_ready = pod_server("127.0.0.43", "not-ready").await;
    let late = pod_server("127.0.0.44", "v2-late").await;

    let server = ApiServer::start().await;
    server.bookmark_every(Duration::from_millis(100));
    server.apply(json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": "reviews"}}}));
    server.apply(pod("reviews-v1", "127.0.0.41", "v1"));
    server.apply(pod("reviews-v2", "127.0.0.42", "v2"));
    server.apply(pod("reviews-v2-starting", "127.0.0.43", "v2"));
    server.apply(slice("reviews-1", &[("127.0.0.41", v1, "reviews-v1", true)]));
    server.apply(slice("reviews-2", &[("127.0.0.42", v2, "reviews-v2", true)]));
    server.apply(slice("reviews-3", &[("127.0.0.43", not_ready, "reviews-v2-starting", false)]));
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                                {"name": "v2", "labels": {"version": "v2"}}]}}));
    server.apply(virtual_service("v1"));

    // A file beside the cluster: merged, and shown with its own origin.
    let files = config_dir("kube-watch");
    let entry = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: external, namespace: bookinfo}\nspec:\n  hosts: [api.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n";
    std::fs::write(files.join("entry.yaml"), entry).expect("write");
    let kubeconfig = server.kubeconfig(&files);

    // The API server is down when the proxy starts: /ready says 503 until every kind has
    // listed once.
    server.stop().await;
    let proxy = start_proxy(&kubeconfig, &files);
    let client = client();
    assert_eq!(status_of(&client, &proxy.admin, "/ready").await, 503);
    let not_ready_text = admin(&client, &proxy.admin, "/ready").await;
    assert!(not_ready_text.contains("VirtualService") && not_ready_text.contains("EndpointSlice"), "{not_ready_text}");
    server.restart().await;
    until("/ready", || async { status_of(&client, &proxy.admin, "/ready").await == 200 }).await;

    // Routing as the cluster's VirtualService says; the not-ready address gets nothing.
    assert_eq!(answers(&client, &proxy, 20).await, BTreeSet::from(["v1".to_string()]));
    let d = dump(&client, &proxy).await;
    let vs = resource(&d, "VirtualService", "reviews").expect("the VirtualService is in force");
    assert_eq!((vs["source"].as_str(), vs["namespace"].as_str()), (Some("kubernetes"), Some("bookinfo")), "{vs}");
    assert!(vs["resourceVersion"].is_string(), "{vs}");
    let se = resource(&d, "ServiceEntry", "external").expect("the file's ServiceEntry is in force");
    assert_eq!((se["source"].as_str(), se["line"].as_u64()), (Some("file"), Some(1)), "{se}");
    assert!(se["file"].as_str().is_some_and(|f| f.ends_with("entry.yaml")), "{se}");

    // Routing follows a VirtualService change.
    server.apply(virtual_service("v2"));
    until("the v2 route", || async { answers(&client, &proxy, 4).await == BTreeSet::from(["v2".to_string()]) }).await;
    assert_eq!(answers(&client, &proxy, 20).await, BTreeSet::from(["v2".to_string()]), "never the not-ready v2 Pod");

    // An address whose Pod is not known yet stays out, even once its slice is applied...
    let rv = server.apply(slice("reviews-4", &[("127.0.0.44", late, "reviews-v2-late", true)]));
    until("the slice applied", || applied(&client, &proxy, "EndpointSlice", "reviews-4", rv)).await;
    assert_eq!(answers(&client, &proxy, 20).await, BTreeSet::from(["v2".to_string()]));
    // ...and joins its subset when the Pod arrives.
    server.apply(pod("reviews-v2-late", "127.0.0.44", "v2"));
    until("the late Pod's address gets traffic", || async { answers(&client, &proxy, 4).await.contains("v2-late") })
        .await;

    // An invalid update keeps the last good version, and says why in /config_dump.
    let mut bad = virtual_service("v1");
    bad["spec"]["http"][0]["timeout"] = json!("soon");
    let bad_rv = server.apply(bad);
    until("the invalid version seen", || applied(&client, &proxy, "VirtualService", "reviews", bad_rv)).await;
    let d = dump(&client, &proxy).await;
    let vs = resource(&d, "VirtualService", "reviews").expect("still in force");
    assert!(vs["rejected"].to_string().contains("http[0].timeout"), "{vs}");
    assert!(answers(&client, &proxy, 10).await.iter().all(|a| a.starts_with("v2")), "the last good route (v2)");

    // The API server goes away; while it is down the route is fixed, the late Pod's slice is
    // deleted, and history is compacted. Requests flow all along; once the server is back
    // the watches get 410 Gone, relist and converge.
    let failures = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let (failures, sent, running) = (failures.clone(), sent.clone(), running.clone());
        let listen = proxy.listen.clone();
        tokio::spawn(async move {
            let client = support::client();
            while running.load(Ordering::Relaxed) {
                let (status, _, _) = get(&client, &listen, "reviews.bookinfo.svc.cluster.local:9080", "/", &[]).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    server.stop().await;
    let rv = server.apply(virtual_service("v1"));
    server.delete("EndpointSlice", "bookinfo", "reviews-4");
    server.compact();
    tokio::time::sleep(Duration::from_millis(200)).await; // let requests flow while it is down
    server.restart().await;
    until("converged after the outage", || async {
        applied(&client, &proxy, "VirtualService", "reviews", rv).await
            && resource(&dump(&client, &proxy).await, "EndpointSlice", "reviews-4").is_none()
    })
    .await;
    running.store(false, Ordering::Relaxed);
    load.await.expect("load");
    assert!(server.gone() > 0, "the watches came back to a compacted history: 410 Gone");
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent > 10, "requests flowed through the outage and the relist: {sent}");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "of {sent} requests during the outage");
    assert_eq!(answers(&client, &proxy, 20).await, BTreeSet::from(["v1".to_string()]));

    // Deletions remove: without the VirtualService, the Service's ready endpoints share the
    // traffic (v1, v2 and the late Pod is gone with its slice).
    server.delete("VirtualService", "bookinfo", "reviews");
    until("the VirtualService removed", || async {
        resource(&dump(&client, &proxy).await, "VirtualService", "reviews").is_none()
    })
    .await;
    until("the default route", || async {
        answers(&client, &proxy, 20).await == BTreeSet::from(["v1".to_string(), "v2".to_string()])
    })
    .await;
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.contains("watch=true") && r.contains("allowWatchBookmarks=true")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_validate_kubernetes_reports_a_bad_resource_by_kind_and_name() {
    let server = ApiServer::start().await;
    server.apply(virtual_service("v1"));
    let mut bad = virtual_service("v1");
    bad["metadata"]["name"] = json!("ratings");
    bad["spec"]["http"][0]["route"][0]["weight"] = json!(-5);
    server.apply(bad);
    let dir = config_dir("kube-validate");
    let kubeconfig = server.kubeconfig(&dir);
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_mesh")).args(args).output().expect("mesh validate runs")
        })
        .await
        .expect("join")
    };
    let kubeconfig = kubeconfig.display().to_string();
    let out = run(vec!["validate".into(), "--kubernetes".into(), "--kubeconfig".into(), kubeconfig.clone()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("VirtualService bookinfo/ratings: http[0].route[0].weight: ")),
        "{stdout}"
    );
    // The same cluster without the bad one, in one namespace: valid.
    server.delete("VirtualService", "bookinfo", "ratings");
    let out = run(vec![
        "validate".into(),
        "--kubernetes".into(),
        "--kubeconfig".into(),
        kubeconfig,
        "--watch-namespace".into(),
        "bookinfo".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(server.requests().iter().all(|r| !r.contains("watch=")), "one list, no watch");
}

/// The in-process one-liner: `ConfigSource::new(...)?.kubernetes(client, &options)`, then
/// `ready().await`, and the mesh client routes as the cluster says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_source_from_the_cluster() {
    use http_body_util::{BodyExt, Empty};
    use tower::ServiceExt;

    let v1 = pod_server("127.0.0.51", "v1").await;
    let v2 = pod_server("127.0.0.52", "v2").await;
    let server = ApiServer::start().await;
    server.apply(json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"ports": [{"name": "http", "port": 9080}]}}));
    server.apply(pod("reviews-v1", "127.0.0.51", "v1"));
    server.apply(pod("reviews-v2", "127.0.0.52", "v2"));
    server.apply(slice("reviews-1", &[("127.0.0.51", v1, "reviews-v1", true)]));
    server.apply(slice("reviews-2", &[("127.0.0.52", v2, "reviews-v2", true)]));
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                                {"name": "v2", "labels": {"version": "v2"}}]}}));
    server.apply(virtual_service("v2"));
    let dir = config_dir("kube-in-process");
    let client = mesh_kube::client(Some(&server.kubeconfig(&dir))).await.expect("client");
    let options = mesh_kube::WatchOptions {
        namespaces: vec!["bookinfo".into()],
        backoff: mesh_kube::Backoff::Exponential {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        ..Default::default()
    };

    let source =
        mesh_proxy::reload::ConfigSource::new(vec![], "bookinfo").expect("source").kubernetes(client, &options);
    assert!(!source.pending().is_empty(), "not ready before the first lists");
    tokio::time::timeout(Duration::from_secs(20), source.ready()).await.expect("ready");
    assert!(source.is_ready());

    let mesh_client = mesh_proxy::client::client::<Empty<Bytes>>(source.mesh());
    let ask = || async {
        let request = http::Request::get("http://reviews:9080/").body(Empty::new()).expect("request");
        let response = mesh_client.clone().oneshot(request).await.expect("the mesh answers");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    };
    for _ in 0..10 {
        assert_eq!(ask().await, "v2");
    }
    server.apply(virtual_service("v1"));
    until("the v1 route", || async { ask().await == "v1" }).await;
}

/// `mesh proxy --kubernetes --gateway NS/NAME`: the Gateway lives in the cluster, so the proxy
/// opens its ports once the first lists are in, and routes by the VirtualServices bound to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_gateway_from_the_cluster() {
    let v1 = pod_server("127.0.0.61", "v1").await;
    let server = ApiServer::start().await;
    server.apply(json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"ports": [{"name": "http", "port": 9080}]}}));
    server.apply(pod("reviews-v1", "127.0.0.61", "v1"));
    server.apply(slice("reviews-1", &[("127.0.0.61", v1, "reviews-v1", true)]));
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                        "metadata": {"name": "bookinfo-gateway", "namespace": "bookinfo"},
                        "spec": {"selector": {"istio": "ingressgateway"},
                                 "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}));
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                        "metadata": {"name": "bookinfo", "namespace": "bookinfo"},
                        "spec": {"hosts": ["bookinfo.example.com"], "gateways": ["bookinfo-gateway"],
                                 "http": [{"route": [{"destination": {"host": "reviews", "port": {"number": 9080}}}]}]}}));
    let dir = config_dir("kube-gateway");
    let kubeconfig = server.kubeconfig(&dir);
    let proxy = mesh_proxy_with(
        &kubeconfig,
        &["-n", "bookinfo", "--gateway", "bookinfo/bookinfo-gateway", "--port-map", "80=127.0.0.1:0"],
    );
    let client = client();
    assert_eq!(status_of(&client, &proxy.admin, "/ready").await, 200);
    let (status, body, _) = get(&client, &proxy.listen, "bookinfo.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v1"));
}

/// Secure naming follows the Pods: a Service's Pods roll out under another service account (an
/// EndpointSlice and Pod change only, which reaches the registry without a new snapshot), and a
/// client whose DestinationRule says `ISTIO_MUTUAL` expects the new Pods' identity from then on
/// (as Istio's secure naming: the service's service accounts are its Pods').
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_naming_follows_a_rollout_to_another_service_account() {
    let pki = support::Pki::new();
    let v1_identity = pki.workload("rollout-v1", "spiffe://cluster.local/ns/bookinfo/sa/reviews");
    let v2_identity = pki.workload("rollout-v2", "spiffe://cluster.local/ns/bookinfo/sa/reviews-v2");
    let sleep = pki.workload("rollout-sleep", "spiffe://cluster.local/ns/bookinfo/sa/sleep");
    // Each Pod is an inbound listener (STRICT mutual TLS, its own identity) before its app.
    let strict = config_dir("rollout-inbound");
    std::fs::write(
        strict.join("strict.yaml"),
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: bookinfo}\nspec: {mtls: {mode: STRICT}}\n",
    )
    .expect("write");
    let pod_port = |proxy: &support::Proxy| -> u16 {
        proxy.inbound[0].rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("inbound port")
    };
    let inbound = |app: u16, certs: &std::path::Path| {
        let app = format!("127.0.0.1:0=127.0.0.1:{app}");
        let certs = certs.display().to_string();
        support::start_proxy(
            &strict,
            &["--listen", "127.0.0.1:0", "--inbound", &app, "--workload-namespace", "bookinfo", "--cert-dir", &certs],
        )
    };
    let v1 = inbound(pod_server("127.0.0.1", "v1").await, &v1_identity);
    let v2 = inbound(pod_server("127.0.0.1", "v2").await, &v2_identity);

    let server = ApiServer::start().await;
    server.apply(json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": "reviews"}}}));
    let pod_as = |name: &str, account: &str| {
        let mut p = pod(name, "127.0.0.1", "v1");
        p["spec"]["serviceAccountName"] = json!(account);
        p
    };
    server.apply(pod_as("reviews-v1", "reviews"));
    server.apply(slice("reviews-1", &[("127.0.0.1", pod_port(&v1), "reviews-v1", true)]));
    server.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                        "metadata": {"name": "reviews", "namespace": "bookinfo"},
                        "spec": {"host": "reviews", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}}));
    let files = config_dir("rollout-outbound");
    let kubeconfig = server.kubeconfig(&files);
    let sleep = sleep.display().to_string();
    let proxy = mesh_proxy_with(&kubeconfig, &["-n", "bookinfo", "--listen", "127.0.0.1:0", "--cert-dir", &sleep]);
    let client = client();
    until("/ready", || async { status_of(&client, &proxy.admin, "/ready").await == 200 }).await;
    assert_eq!(answers(&client, &proxy, 4).await, BTreeSet::from(["v1".to_string()]), "mutual TLS to the v1 Pod");

    // The rollout: a Pod of the new service account, the slice moved to it, the old Pod gone.
    server.apply(pod_as("reviews-v2", "reviews-v2"));
    server.apply(slice("reviews-1", &[("127.0.0.1", pod_port(&v2), "reviews-v2", true)]));
    server.delete("Pod", "bookinfo", "reviews-v1");
    until("the v2 Pod answers through mutual TLS", || async {
        let (status, body, _) = get(&client, &proxy.listen, "reviews.bookinfo.svc.cluster.local:9080", "/", &[]).await;
        status == 200 && body == "v2"
    })
    .await;
    assert_eq!(answers(&client, &proxy, 10).await, BTreeSet::from(["v2".to_string()]));
}
