//! The Kubernetes scale benchmark (issue 17): `mesh proxy --kubernetes` against the loopback
//! API server (mesh-kube's test harness) holding SERVICES Services × ENDPOINTS endpoints (one
//! EndpointSlice and ENDPOINTS Pods per Service). Measures time to ready, the proxy's RSS, and
//! the delay from one EndpointSlice change to the request path using it.
//!
//! Run with:
//! ```sh
//! cargo build --release -p mesh-proxy --bin mesh --example kube_scale
//! target/release/examples/kube_scale [SERVICES] [ENDPOINTS] [CHANGES]   # default 10000 10 10
//! ```
//! (`MESH_BIN` names the binary, default `target/release/mesh`.)

#[path = "../../mesh-kube/tests/support/apiserver.rs"]
mod apiserver;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

fn slice(i: usize, endpoints: &[(String, String)], port: u16) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, pod)| {
            json!({"addresses": [ip], "conditions": {"ready": true},
                   "targetRef": {"kind": "Pod", "name": pod, "namespace": "scale"}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
           "metadata": {"name": format!("svc-{i}-abcde"), "namespace": "scale",
                        "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
           "endpoints": endpoints})
}

fn pod(name: &str, ip: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "scale", "labels": {"app": app, "version": "v1"}},
           "spec": {"nodeName": "node-a"},
           "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

async fn answer_server(name: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
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
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let services = args.first().copied().unwrap_or(10_000);
    let per = args.get(1).copied().unwrap_or(10);
    let changes = args.get(2).copied().unwrap_or(10);
    let mesh = std::env::var("MESH_BIN").unwrap_or_else(|_| "target/release/mesh".into());

    let a = answer_server("a").await;
    let b = answer_server("b").await;
    let server = apiserver::ApiServer::start().await;
    let built = Instant::now();
    for i in 0..services {
        server.apply(json!({"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": format!("svc-{i}"), "namespace": "scale"},
                            "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"app": format!("svc-{i}")}}}));
        let mut endpoints = Vec::with_capacity(per);
        for j in 0..per {
            let n = i * per + j;
            let ip =
                if i == 0 { "127.0.0.1".to_string() } else { format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255) };
            let name = format!("svc-{i}-{j}");
            server.apply(pod(&name, &ip, &format!("svc-{i}")));
            endpoints.push((ip, name));
        }
        // svc-0's endpoints are all on 127.0.0.1, the port of server `a` (later `b`).
        server.apply(slice(i, &endpoints, a));
    }
    server.compact(); // the history the harness keeps for watches is not the proxy's memory
    eprintln!(
        "api server: {services} Services, {} Pods, {services} EndpointSlices (built in {:.1?})",
        services * per,
        built.elapsed()
    );

    let dir = std::env::temp_dir().join(format!("kube-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = server.kubeconfig(&dir);
    let started = Instant::now();
    let mut child = Command::new(&mesh)
        .args(["proxy", "--kubernetes", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["-n", "scale", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut listen, mut admin) = (String::new(), String::new());
    while admin.is_empty() {
        let line = lines.next().expect("addresses")?;
        if let Some(a) = line.strip_prefix("listening on ") {
            listen = a.to_string();
        } else if let Some(a) = line.strip_prefix("admin on ") {
            admin = a.to_string();
        }
    }
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let r = client.get(format!("http://{admin}/ready").parse()?).await?;
        if r.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = started.elapsed();
    let rss = rss_kib(child.id());
    println!(
        "time to ready: {ready:.2?}; RSS after ready: {:.1} MiB ({:.0} B per endpoint)",
        rss as f64 / 1024.0,
        rss as f64 * 1024.0 / (services * per) as f64
    );

    let ask = |listen: String| {
        let client = client.clone();
        async move {
            let req = http::Request::get(format!("http://{listen}/"))
                .header("host", "svc-0.scale.svc.cluster.local")
                .body(Empty::new())?;
            let body = client.request(req).await?.into_body().collect().await?.to_bytes();
            anyhow::Ok(String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(ask(listen.clone()).await?, "a", "svc-0 answers from server a");
    // Requests with nothing changing, as the baseline of those asked while changes apply.
    let mut quiet = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        ask(listen.clone()).await?;
        quiet.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    quiet.sort();
    let mut during = Vec::new();
    let mut delays = Vec::new();
    let mut endpoints: Vec<(String, String)> =
        (0..per).map(|j| ("127.0.0.1".to_string(), format!("svc-0-{j}"))).collect();
    for k in 0..changes {
        let (port, want) = if k % 2 == 0 { (b, "b") } else { (a, "a") };
        endpoints.rotate_left(1);
        let t = Instant::now();
        server.apply(slice(0, &endpoints, port));
        // Ask every millisecond (a busy loop would take a core from the proxy it measures).
        loop {
            let asked = Instant::now();
            let answer = ask(listen.clone()).await?;
            during.push(asked.elapsed());
            if answer == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        delays.push(t.elapsed());
    }
    println!("each change, in order: {:.1?}", delays);
    delays.sort();
    during.sort();
    if !during.is_empty() {
        println!(
            "request latency, quiet ({} requests): p50 {:.2?}, p99 {:.2?}, max {:.2?}; while changes apply ({} requests): p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            quiet.len(),
            percentile(&quiet, 0.5),
            percentile(&quiet, 0.99),
            quiet.last().copied().unwrap_or_default(),
            during.len(),
            percentile(&during, 0.5),
            percentile(&during, 0.99),
            during.last().copied().unwrap_or_default()
        );
    }
    println!(
        "one EndpointSlice change to the request path ({changes} changes): p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or_default()
    );
    println!("RSS after the changes: {:.1} MiB", rss_kib(child.id()) as f64 / 1024.0);
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
