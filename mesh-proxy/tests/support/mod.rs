//! Shared by the `mesh proxy` process tests: start the binary, make config directories, run
//! upstream servers on loopback.
#![allow(dead_code, unreachable_pub)]

pub mod echo;
pub mod identities;

#[allow(unused_imports)] // not every test binary uses them
pub use identities::{JwtKey, Pki, echo_through, tcp_echo};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A running `mesh proxy`; killed on drop.
pub struct Proxy {
    pub child: Child,
    /// `listening on` lines: (address, `port=` when a Gateway port).
    pub listeners: Vec<(String, Option<u16>)>,
    /// `inbound on ADDR -> APP` lines: the inbound listeners' addresses.
    pub inbound: Vec<String>,
    pub admin: String,
}

impl Proxy {
    /// The address of the (first) plain listener.
    pub fn listen(&self) -> &str {
        &self.listeners[0].0
    }

    /// The address serving Gateway port `port`.
    pub fn port(&self, port: u16) -> &str {
        &self.listeners.iter().find(|(_, p)| *p == Some(port)).expect("the proxy listens on that gateway port").0
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mesh proxy -f DIR ARGS... --admin 127.0.0.1:0 --reload-interval-ms 50`, once it has said
/// where it listens.
pub fn start_proxy(dir: &Path, args: &[&str]) -> Proxy {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["proxy", "-f"])
        .arg(dir)
        .args(args)
        .args(["--admin", "127.0.0.1:0", "--reload-interval-ms", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mesh proxy starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut listeners = Vec::new();
    let mut inbound = Vec::new();
    let mut admin = String::new();
    while admin.is_empty() {
        let line = lines.next().expect("the proxy prints its addresses").expect("utf-8");
        if let Some(rest) = line.strip_prefix("listening on ") {
            let mut words = rest.split_whitespace();
            let addr = words.next().expect("address").to_string();
            let port = words.find_map(|w| w.strip_prefix("port=")).map(|p| p.parse().expect("port"));
            listeners.push((addr, port));
        } else if let Some(rest) = line.strip_prefix("inbound on ") {
            inbound.push(rest.split_whitespace().next().expect("address").to_string());
        } else if let Some(a) = line.strip_prefix("admin on ") {
            admin = a.to_string();
        }
    }
    Proxy { child, listeners, inbound, admin }
}

/// A fresh directory for one test's config files.
pub fn config_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-proxy-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub type PlainClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> PlainClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// GET `http://{addr}{path}` with `Host: host` and extra headers: status, body, headers.
pub async fn get(
    client: &PlainClient,
    addr: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, http::HeaderMap) {
    let mut req = http::Request::get(format!("http://{addr}{path}")).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client.request(req.body(Empty::new()).expect("request")).await.expect("the proxy answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

/// GET from the admin server.
pub async fn admin(client: &PlainClient, admin: &str, path: &str) -> String {
    let response = client.get(format!("http://{admin}{path}").parse().expect("uri")).await.expect("admin answers");
    let body = response.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// An upstream on 127.0.0.1 that answers `name` on every path, with a few behaviours:
/// `/slow` answers after 300 ms; `/status/N` answers status N; `/flaky` answers 503 to two
/// requests out of three; `/headers` echoes the request headers. It counts its requests.
pub struct Backend {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub async fn backend(name: &'static str) -> Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(AtomicUsize::new(0));
    let app = router(name, requests.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Backend { port, requests }
}

pub fn router(name: &'static str, requests: Arc<AtomicUsize>) -> axum::Router {
    use axum::extract::Path as UrlPath;
    use axum::routing::get;
    let flaky = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    axum::Router::new()
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                name
            }),
        )
        .route(
            "/status/{code}",
            get(move |UrlPath(code): UrlPath<u16>| async move {
                (http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::IM_A_TEAPOT), name)
            }),
        )
        .route(
            "/flaky",
            get(move || {
                let n = flaky.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n % 3 == 2 {
                        (http::StatusCode::OK, name)
                    } else {
                        (http::StatusCode::SERVICE_UNAVAILABLE, name)
                    }
                }
            }),
        )
        .route(
            "/headers",
            get(|headers: http::HeaderMap| async move {
                let mut out = String::new();
                for (k, v) in &headers {
                    out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                }
                out
            }),
        )
        .fallback(move || async move { name })
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(req)
        }))
}

/// A ServiceEntry `HOST` (namespace default, port 80 `http`) with STATIC endpoints
/// `(port, version)` on 127.0.0.1.
pub fn service_entry(name: &str, host: &str, endpoints: &[(u16, &str)]) -> String {
    let mut out = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}}}\nspec:\n  hosts: [{host}]\n  location: MESH_INTERNAL\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  endpoints:\n"
    );
    for (port, version) in endpoints {
        out.push_str(&format!(
            "  - {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{app: {name}, version: {version}}}}}\n"
        ));
    }
    out.push_str("---\n");
    out
}

/// Replace a config file as editors and Kubernetes do, by renaming a complete new file over it:
/// a reload that reads while a plain `fs::write` is under way would see it empty (no resources:
/// the file's VirtualServices deleted) before it sees the new contents.
pub fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}
