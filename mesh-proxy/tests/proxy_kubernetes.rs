//! Kubernetes objects as the endpoint source (issue 17, part 1): a directory of Services,
//! EndpointSlices and Pods, as `kubectl get -o yaml` prints them, gives a running mesh — in
//! process (`ConfigSource` and the mesh client) and as `mesh proxy -f DIR` — the endpoints Istio
//! would give it: a DestinationRule subset `version: v2` picks only the v2 Pods' addresses, a
//! not-ready address and an address whose Pod is unknown get no traffic, and a port whose
//! `appProtocol` is `kubernetes.io/h2c` is spoken in HTTP/2.
//!
//! Every Pod has its own loopback address (127.0.0.x) and a real HTTP server on it; each slice
//! names the port its Pod's server listens on.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use support::*;
use tower::ServiceExt;

/// An HTTP server on `ip`:0 answering `name` and the HTTP version it received (HTTP/1.1 and
/// h2c both).
async fn pod_server(ip: &str, name: &'static str) -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind a loopback address");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
                    let body = http_body_util::Full::new(Bytes::from(format!("{name} {:?}", req.version())));
                    Ok::<_, std::convert::Infallible>(http::Response::new(body))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    port
}

fn pod(name: &str, ip: &str, version: &str) -> String {
    format!(
        r#"- apiVersion: v1
  kind: Pod
  metadata:
    labels: {{app: reviews, version: {version}, pod-template-hash: 5b7f9c8d6c}}
    name: {name}
    namespace: bookinfo
    resourceVersion: "3001"
  spec:
    containers: [{{name: reviews, image: docker.io/istio/examples-bookinfo-reviews-{version}:1.20.3}}]
    nodeName: node-a
    serviceAccountName: bookinfo-reviews
  status:
    phase: Running
    podIP: {ip}
    podIPs: [{{ip: {ip}}}]
"#
    )
}

fn slice(name: &str, service: &str, port_name: &str, port: u16, endpoints: &[(&str, Option<&str>, bool)]) -> String {
    let mut out = format!(
        r#"- addressType: IPv4
  apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    labels: {{endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io, kubernetes.io/service-name: {service}}}
    name: {name}
    namespace: bookinfo
  ports: [{{name: {port_name}, port: {port}, protocol: TCP}}]
  endpoints:
"#
    );
    for (ip, pod, ready) in endpoints {
        out.push_str(&format!(
            "  - addresses: [{ip}]\n    conditions: {{ready: {ready}, serving: {ready}, terminating: false}}\n"
        ));
        if let Some(pod) = pod {
            out.push_str(&format!("    targetRef: {{kind: Pod, name: {pod}, namespace: bookinfo}}\n"));
        }
    }
    out
}

const ROUTES: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
"#;

/// The config directory: Services, slices and Pods as `kind: List` files, and the routes.
async fn kubernetes_config(name: &str) -> std::path::PathBuf {
    // v1 and two v2 Pods, a v2 Pod that is not ready, and an address whose Pod is unknown.
    let v1 = pod_server("127.0.0.11", "v1").await;
    let v2a = pod_server("127.0.0.12", "v2a").await;
    let v2b = pod_server("127.0.0.13", "v2b").await;
    let starting = pod_server("127.0.0.14", "not-ready").await;
    let unknown = pod_server("127.0.0.15", "pod-unknown").await;
    let h2 = pod_server("127.0.0.16", "echo").await;
    let dir = config_dir(name);
    let services = r#"apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: v1
  kind: Service
  metadata: {name: reviews, namespace: bookinfo, labels: {app: reviews}, resourceVersion: "2003"}
  spec:
    clusterIP: 10.96.140.3
    ports: [{name: http, port: 9080, protocol: TCP, targetPort: 9080}]
    selector: {app: reviews}
    type: ClusterIP
- apiVersion: v1
  kind: Service
  metadata: {name: echo, namespace: bookinfo}
  spec:
    clusterIP: 10.96.7.7
    ports: [{name: web, port: 8080, appProtocol: kubernetes.io/h2c}]
    selector: {app: echo}
"#;
    let pods = [
        pod("reviews-v1-a", "127.0.0.11", "v1"),
        pod("reviews-v2-a", "127.0.0.12", "v2"),
        pod("reviews-v2-b", "127.0.0.13", "v2"),
        pod("reviews-v2-c", "127.0.0.14", "v2"),
        pod("echo-1", "127.0.0.16", "v1"),
    ]
    .concat();
    let slices = [
        slice("reviews-1", "reviews", "http", v1, &[("127.0.0.11", Some("reviews-v1-a"), true)]),
        slice("reviews-2", "reviews", "http", v2a, &[("127.0.0.12", Some("reviews-v2-a"), true)]),
        slice("reviews-3", "reviews", "http", v2b, &[("127.0.0.13", Some("reviews-v2-b"), true)]),
        slice("reviews-4", "reviews", "http", starting, &[("127.0.0.14", Some("reviews-v2-c"), false)]),
        slice("reviews-5", "reviews", "http", unknown, &[("127.0.0.15", Some("reviews-v2-zzz"), true)]),
        slice("echo-1", "echo", "web", h2, &[("127.0.0.16", Some("echo-1"), true)]),
    ]
    .concat();
    let list =
        |items: String| format!("apiVersion: v1\nkind: List\nmetadata: {{resourceVersion: \"\"}}\nitems:\n{items}");
    std::fs::write(dir.join("services.yaml"), services).expect("write");
    std::fs::write(dir.join("pods.yaml"), list(pods)).expect("write");
    std::fs::write(dir.join("endpointslices.yaml"), list(slices)).expect("write");
    std::fs::write(dir.join("routes.yaml"), ROUTES).expect("write");
    let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\n  labels: {topology.kubernetes.io/region: us-east1, topology.kubernetes.io/zone: us-east1-b}\n";
    std::fs::write(dir.join("nodes.yaml"), node).expect("write");
    dir
}

fn tally(answers: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for a in answers {
        *seen.entry(a).or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_subset_of_a_kubernetes_service_through_mesh_proxy() {
    let dir = kubernetes_config("kubernetes-proxy").await;
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let mut answers = Vec::new();
    for _ in 0..40 {
        let (status, body, _) = get(&client, proxy.listen(), "reviews.bookinfo.svc.cluster.local", "/", &[]).await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    let seen = tally(answers);
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["v2a HTTP/1.1", "v2b HTTP/1.1"], "only the ready v2 Pods: {seen:?}");

    let (status, body, _) = get(&client, proxy.listen(), "echo.bookinfo.svc.cluster.local:8080", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "echo HTTP/2.0"), "appProtocol kubernetes.io/h2c is HTTP/2");

    let dump = admin(&client, &proxy.admin, "/config_dump").await;
    assert!(dump.contains("127.0.0.12"), "the registry shows the Kubernetes endpoints: {dump}");

    // The Pod of the slice's third v2 address arrives (a new file): the address joins the
    // subset, with the Pod's labels, on the next reload.
    let late = format!("apiVersion: v1\nkind: List\nitems:\n{}", pod("reviews-v2-zzz", "127.0.0.15", "v2"));
    std::fs::write(dir.join("late-pod.yaml"), late).expect("write");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body, _) = get(&client, proxy.listen(), "reviews.bookinfo.svc.cluster.local", "/", &[]).await;
        if body == "pod-unknown HTTP/1.1" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the late Pod's address never got traffic");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_subset_of_a_kubernetes_service_in_process() {
    let dir = kubernetes_config("kubernetes-in-process").await;
    let source = mesh_proxy::reload::ConfigSource::new(vec![dir], "bookinfo").expect("the directory loads");
    let status = source.reload();
    assert!(status.rejections.is_empty(), "{:?}", status.rejections);
    let registry = source.mesh().registry();
    let mut endpoints: Vec<String> = registry
        .endpoints("reviews.bookinfo.svc.cluster.local")
        .iter()
        .map(|e| format!("{} {}", e.address, e.labels.get("version").map_or("-", |v| &**v)))
        .collect();
    endpoints.sort();
    assert_eq!(
        endpoints.len(),
        3,
        "v1, v2a, v2b; not the not-ready one nor the one whose Pod is unknown: {endpoints:?}"
    );
    assert!(
        endpoints
            .iter()
            .all(|e| e.starts_with("127.0.0.11:") || e.starts_with("127.0.0.12:") || e.starts_with("127.0.0.13:"))
    );

    let localities: Vec<String> = registry
        .endpoints("reviews.bookinfo.svc.cluster.local")
        .iter()
        .map(|e| e.locality.as_deref().unwrap_or("-").to_string())
        .collect();
    assert_eq!(localities, ["us-east1/us-east1-b/"; 3], "the locality of the Pods' Node, for locality load balancing");

    let mesh_client = mesh_proxy::client::client::<Empty<Bytes>>(source.mesh());
    let mut answers = Vec::new();
    for _ in 0..40 {
        let request = http::Request::get("http://reviews:9080/").body(Empty::new()).expect("request");
        let response = mesh_client.clone().oneshot(request).await.expect("the mesh answers");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        answers.push(String::from_utf8_lossy(&body).into_owned());
    }
    let seen = tally(answers);
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["v2a HTTP/1.1", "v2b HTTP/1.1"], "only the ready v2 Pods: {seen:?}");
}

#[test]
fn mesh_validate_reads_kubectl_output() {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/kubernetes");
    let run = |dir: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
            .arg("validate")
            .arg(testdata.join(dir))
            .output()
            .expect("mesh validate runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = run("bookinfo");
    assert_eq!(code, Some(0), "{stdout}");
    let (code, stdout) = run("invalid");
    assert_eq!(code, Some(1), "{stdout}");
    for want in [
        "invalid/objects.yaml:10: Service bookinfo/Reviews_v2: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "invalid/objects.yaml:22: EndpointSlice bookinfo/reviews-ipv5: addressType: Unsupported value: \"IPv5\"",
        "invalid/objects.yaml:55: Pod bookinfo/reviews-v2-84d8b7c6f9-j2h5k: status.podIP: Invalid value: \"10.244.2.x\"",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locality_failover_prefers_the_pods_near_the_proxy() {
    // ratings-east's locality comes from its Node's topology labels, ratings-west's from its
    // `istio-locality` label; locality load balancing applies with outlier detection, as in Istio.
    let east = pod_server("127.0.0.21", "east").await;
    let west = pod_server("127.0.0.22", "west").await;
    let dir = config_dir("kubernetes-locality");
    let pods = [pod("ratings-east", "127.0.0.21", "v1"), pod("ratings-west", "127.0.0.22", "v1")]
        .concat()
        .replace(
            "app: reviews, version: v1, pod-template-hash: 5b7f9c8d6c}\n    name: ratings-west",
            "app: ratings, istio-locality: us-west1.us-west1-a}\n    name: ratings-west",
        )
        .replace("nodeName: node-a", "nodeName: node-east");
    let slices = [
        slice("ratings-1", "ratings", "http", east, &[("127.0.0.21", Some("ratings-east"), true)]),
        slice("ratings-2", "ratings", "http", west, &[("127.0.0.22", Some("ratings-west"), true)]),
    ]
    .concat();
    let config = format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: ratings, namespace: bookinfo}}
spec:
  ports: [{{name: http, port: 9080}}]
  selector: {{app: ratings}}
---
apiVersion: v1
kind: Node
metadata:
  name: node-east
  labels: {{topology.kubernetes.io/region: us-east1, topology.kubernetes.io/zone: us-east1-b}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ratings, namespace: bookinfo}}
spec:
  host: ratings
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}
---
apiVersion: v1
kind: List
items:
{pods}{slices}"#
    );
    std::fs::write(dir.join("ratings.yaml"), config).expect("write");
    for (locality, want) in [("us-east1/us-east1-b", "east HTTP/1.1"), ("us-west1/us-west1-a", "west HTTP/1.1")] {
        let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0", "-n", "bookinfo", "--locality", locality]);
        let client = client();
        let mut answers = Vec::new();
        for _ in 0..20 {
            let (status, body, _) = get(&client, proxy.listen(), "ratings:9080", "/", &[]).await;
            assert_eq!(status, 200, "{body}");
            answers.push(body);
        }
        let seen = tally(answers);
        assert_eq!(seen.keys().collect::<Vec<_>>(), [want], "a proxy in {locality}: {seen:?}");
    }
}
