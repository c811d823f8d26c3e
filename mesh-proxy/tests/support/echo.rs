//! An echo backend like the Gateway API conformance suite's `echo-basic`
//! (`kubernetes-sigs/gateway-api-conformance-images`): it answers every request with a JSON
//! object naming the request it saw and who answered it, so a test can check what reached the
//! backend, as `conformance/utils/roundtripper` reads it:
//!
//! ```json
//! {"path": "/p?q", "host": "...", "method": "GET", "proto": "HTTP/1.1",
//!  "headers": {"Name": ["v1", "v2"]}, "namespace": "...", "ingress": "", "service": "...",
//!  "pod": "<deployment>-<suffix>"}
//! ```
//!
//! `path` is the request target as received (path and query). Behaviours the conformance tests
//! ask for through the request:
//! - `X-Echo-Set-Header: Name:value,Name2:value2` sets those headers on the response;
//! - `?delay=1s` (or `500ms`) answers after that long;
//! - `?uuid=U&responseCode=500&succeedAfter=N[&delayRetry=300ms]`: the first N requests with the
//!   same `uuid` answer `responseCode` (after `delayRetry`), later ones succeed (the retry
//!   simulation of `httproute-retry*.go`).
//!
//! Every request is recorded (path and headers) so that mirrored copies can be found.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A request an echo pod received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query, as received.
    pub path: String,
    /// Header names in lower case, values in arrival order.
    pub headers: Vec<(String, String)>,
}

/// One running echo "pod".
#[derive(Clone)]
pub struct EchoPod {
    /// The Deployment's name (pod names start with it).
    pub app: String,
    /// The pod's name, `<app>-<suffix>`.
    pub pod: String,
    pub namespace: String,
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl EchoPod {
    /// Requests seen so far whose header `name` is `value`.
    pub fn seen_with(&self, name: &str, value: &str) -> Vec<Seen> {
        let seen = self.seen.lock().expect("lock");
        seen.iter().filter(|s| s.headers.iter().any(|(k, v)| k == name && v == value)).cloned().collect()
    }
}

fn duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s').and_then(|s| s.parse::<f64>().ok()).map(Duration::from_secs_f64)
}

/// Start an echo pod for Deployment `app` in `namespace`, listening on `ip` (port chosen by the
/// system); HTTP/1.1 and h2c.
pub async fn start(app: &str, namespace: &str, ip: IpAddr) -> EchoPod {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    let pod = EchoPod {
        app: app.to_string(),
        pod: format!("{app}-5d8f9c7b6-x{}", addr.port()),
        namespace: namespace.to_string(),
        addr,
        seen: Arc::default(),
    };
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let me = pod.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let me = me.clone();
            let attempts = attempts.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let me = me.clone();
                    let attempts = attempts.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&me, &attempts, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    pod
}

async fn answer(
    me: &EchoPod,
    attempts: &Mutex<HashMap<String, u32>>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<http_body_util::Full<Bytes>> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    me.seen.lock().expect("lock").push(Seen { path: path.clone(), headers: headers.clone() });

    if let Some(d) = query.get("delay").and_then(|d| duration(d)) {
        tokio::time::sleep(d).await;
    }
    if let (Some(uuid), Some(after)) = (query.get("uuid"), query.get("succeedAfter")) {
        let n = {
            let mut map = attempts.lock().expect("lock");
            let n = map.entry(uuid.clone()).or_default();
            *n += 1;
            *n
        };
        if n <= after.parse().unwrap_or(0) {
            if let Some(d) = query.get("delayRetry").and_then(|d| duration(d)) {
                tokio::time::sleep(d).await;
            }
            let code = query.get("responseCode").and_then(|c| c.parse().ok()).unwrap_or(500);
            let mut response = http::Response::new(http_body_util::Full::new(Bytes::from("simulated failure")));
            *response.status_mut() =
                http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            return response;
        }
    }

    // Go's `http.Header`: canonical names, several values per name.
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &headers {
        by_name.entry(canonical(k)).or_default().push(v.clone());
    }
    let host = req.headers().get("host").and_then(|h| h.to_str().ok()).map(str::to_string);
    let host = host.or_else(|| req.uri().authority().map(|a| a.to_string())).unwrap_or_default();
    let body = serde_json::json!({
        "path": path,
        "host": host,
        "method": req.method().as_str(),
        "proto": format!("{:?}", req.version()),
        "headers": by_name,
        "namespace": me.namespace,
        "ingress": "",
        "service": me.app,
        "pod": me.pod,
    });
    let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(body.to_string())));
    response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    let set = req.headers().get("x-echo-set-header").and_then(|v| v.to_str().ok()).unwrap_or("");
    for pair in set.split(',').filter(|p| !p.is_empty()) {
        if let Some((name, value)) = pair.split_once(':')
            && let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(name.trim().as_bytes()), http::HeaderValue::from_str(value.trim()))
        {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// `x-header-set` -> `X-Header-Set`, as Go's `http.CanonicalHeaderKey`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}
