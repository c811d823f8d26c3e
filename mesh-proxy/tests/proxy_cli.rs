//! `mesh proxy` as a process: real upstreams on loopback, real config files, real signals.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{PlainClient, admin, backend, client, config_dir, start_proxy, write_atomically};

fn services(v1: u16, v2: u16) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {v1}}}, labels: {{app: reviews, version: v1}}}}
  - {{address: 127.0.0.1, ports: {{http: {v2}}}, labels: {{app: reviews, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"#
    )
}

const JASON_TO_V2: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"#;

const ALL_V2: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
"#;

const BROKEN: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}, weight: -10}]
"#;

async fn get(client: &PlainClient, proxy: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, body, _) = support::get(client, proxy, "reviews:9080", path, headers).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_reloads_keeps_the_last_good_config_and_drains_on_sigterm() {
    let (v1, v2) = (backend("v1").await.port, backend("v2").await.port);
    let dir = config_dir("routing");
    std::fs::write(dir.join("services.yaml"), services(v1, v2)).expect("write");
    std::fs::write(dir.join("routes.yaml"), JASON_TO_V2).expect("write");
    let mut proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();

    // Header routing through the proxy.
    assert_eq!(get(&client, proxy.listen(), "/reviews/0", &[("end-user", "jason")]).await, (200, "v2".into()));
    assert_eq!(get(&client, proxy.listen(), "/reviews/0", &[]).await, (200, "v1".into()));
    assert_eq!(admin(&client, &proxy.admin, "/ready").await, "ready\n");
    // A request without Host gets a 400, not a panic or a hang.
    let raw = tokio::task::spawn_blocking({
        let listen = proxy.listen().to_string();
        move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(listen).expect("connect");
            s.write_all(b"GET /reviews/0 HTTP/1.0\r\n\r\n").expect("write");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        }
    })
    .await
    .expect("join");
    assert!(raw.starts_with("HTTP/1.0 400"), "{raw}");

    // Metrics with Istio's names, on the admin port.
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    assert!(metrics.contains("istio_requests_total{"), "{metrics}");
    assert!(metrics.contains("destination_version=\"v2\""), "{metrics}");

    // Hot reload: a changed file takes effect without a restart.
    write_atomically(&dir.join("routes.yaml"), ALL_V2);
    let mut switched = false;
    for _ in 0..100 {
        if get(&client, proxy.listen(), "/reviews/0", &[]).await.1 == "v2" {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(switched, "the new VirtualService was applied");

    // A bad reload keeps the last good version and says why.
    write_atomically(&dir.join("routes.yaml"), BROKEN);
    let mut dump = serde_json::Value::Null;
    for _ in 0..100 {
        dump = serde_json::from_str(&admin(&client, &proxy.admin, "/config_dump").await).expect("config_dump is JSON");
        if dump["rejections"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rejections = dump["rejections"].to_string();
    assert!(rejections.contains("routes.yaml") && rejections.contains("weight"), "{dump}");
    for _ in 0..10 {
        assert_eq!(
            get(&client, proxy.listen(), "/reviews/0", &[]).await,
            (200, "v2".into()),
            "last good config serves"
        );
    }

    // SIGTERM drains: a request in flight completes, then the process exits cleanly.
    let slow = tokio::spawn({
        let (client, listen) = (client.clone(), proxy.listen().to_string());
        async move { get(&client, &listen, "/slow", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = Command::new("kill").args(["-TERM", &proxy.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    assert_eq!(slow.await.expect("task"), (200, "v2".into()));
    let exit = tokio::task::spawn_blocking(move || proxy.child.wait().map(|s| s.success())).await.expect("join");
    assert!(exit.expect("wait"), "exit status 0 after draining");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_concurrent_load_fails_no_request() {
    let (v1, v2) = (backend("v1").await.port, backend("v2").await.port);
    let dir = config_dir("reload-load");
    std::fs::write(dir.join("services.yaml"), services(v1, v2)).expect("write");
    std::fs::write(dir.join("routes.yaml"), JASON_TO_V2).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, listen, stopped) = (client.clone(), proxy.listen().to_string(), stopped.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut versions) = (0usize, Vec::new(), std::collections::BTreeSet::new());
            while !*stopped.borrow() {
                let (status, body) = get(&client, &listen, "/reviews/0", &[]).await;
                if status == 200 {
                    ok += 1;
                    versions.insert(body);
                } else {
                    failed.push((status, body));
                }
            }
            (ok, failed, versions)
        }));
    }
    for i in 0..12 {
        let routes = if i % 2 == 0 { ALL_V2 } else { JASON_TO_V2 };
        std::fs::write(dir.join("routes.yaml"), routes).expect("write");
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let _ = stop.send(true);
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    for task in load {
        let (ok, failed, versions) = task.await.expect("task");
        assert!(failed.is_empty(), "requests failed during reloads: {failed:?}");
        total += ok;
        seen.extend(versions);
    }
    assert!(total > 100, "load ran: {total} requests");
    assert_eq!(seen.len(), 2, "both configurations served during the reloads: {seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
