//! The Bookinfo services, in Rust: productpage, details, reviews v1/v2/v3, ratings — and the
//! httpbin of Istio's circuit-breaking task. Each runs as an axum server on loopback, registers
//! its endpoint with the labels its Deployment has in Istio's `bookinfo.yaml` (`app`, `version`),
//! and calls the others through its own meshwork client, as its Envoy sidecar would route them.
//!
//! Behaviour follows Istio's Bookinfo sources, including the timeouts the fault-injection task
//! relies on: productpage gives reviews 3 s and tries twice; reviews v2 (black stars) gives
//! ratings 10 s, reviews v3 (red stars) 2.5 s.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use arc_swap::ArcSwap;
use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshwork::core::{ClientIdentity, Snapshot};
use meshwork::tower::{Endpoint, Mesh, MeshService, Registry, ReplayBody, SharedSnapshot};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

/// A service's outbound client: hyper-util inside meshwork.
pub type MeshClient = MeshService<Client<HttpConnector, ReplayBody<Empty<Bytes>>>>;

/// The running Bookinfo.
#[derive(Debug, Clone)]
pub struct Bookinfo {
    /// The config every sidecar reads (store a new snapshot to re-route everything).
    pub config: SharedSnapshot,
    /// Where every instance is registered.
    pub registry: Registry,
    /// productpage's address.
    pub productpage: SocketAddr,
    /// The load generator's client to httpbin (Istio's fortio pod).
    pub fortio: MeshClient,
}

impl Bookinfo {
    /// Swap in a new configuration, as `kubectl apply` does for the sidecars.
    pub fn apply(&self, snapshot: Snapshot) {
        self.registry.sync_from_snapshot(&snapshot);
        self.config.store(Arc::new(snapshot));
    }
}

/// The headers Bookinfo forwards on every call (Istio's "propagate these headers" list).
const FORWARDED: &[&str] =
    &["end-user", "x-request-id", "user-agent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"];

fn client(config: &SharedSnapshot, registry: &Registry, app: &str, version: &str) -> MeshClient {
    let mesh = Mesh::builder()
        .shared_config(config.clone())
        .registry(registry.clone())
        .client_identity(ClientIdentity::new("default", [("app", app), ("version", version)]))
        .workload(&format!("{app}-{version}"))
        .build();
    mesh.layer().layer(Client::builder(TokioExecutor::new()).build_http())
}

/// GET `url` through the mesh with `headers`; `None` on timeout.
async fn call(client: &MeshClient, url: &str, headers: &HeaderMap, timeout: Duration) -> Option<(StatusCode, Bytes)> {
    let mut req = http::Request::get(url).body(Empty::new()).ok()?;
    for name in FORWARDED {
        if let Some(v) = headers.get(*name) {
            req.headers_mut().insert(*name, v.clone());
        }
    }
    let exchange = async {
        let response = client.clone().oneshot(req).await.ok()?;
        let status = response.status();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

async fn bind(addr: Option<SocketAddr>) -> Result<tokio::net::TcpListener> {
    Ok(tokio::net::TcpListener::bind(addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))).await?)
}

/// Start a server and register it as `app`/`version` of `service` on its service port (9080 for
/// Bookinfo, 8000 for httpbin, as in Istio's samples).
async fn start(
    registry: &Registry,
    (service, port): (&str, u16),
    app: &str,
    version: &str,
    router: axum::Router,
    addr: Option<SocketAddr>,
) -> Result<SocketAddr> {
    let listener = bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    let endpoint = Endpoint::new(local.to_string(), [("app", app), ("version", version)])
        .with_workload(format!("{app}-{version}"))
        .with_service_port(port);
    registry.register(&format!("{service}.default.svc.cluster.local"), endpoint.clone());
    // Also as the per-version Service of `bookinfo-versions.yaml` (`reviews-v2`), the backends
    // the Gateway API routes name.
    registry.register(&format!("{service}-{version}.default.svc.cluster.local"), endpoint);
    Ok(local)
}

/// Start every service; productpage listens on `productpage_addr` (default: any free port).
pub async fn start_all(productpage_addr: Option<SocketAddr>) -> Result<Bookinfo> {
    let config: SharedSnapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
    let registry = Registry::new();

    start(
        &registry,
        ("details", 9080),
        "details",
        "v1",
        axum::Router::new().route("/details/{id}", get(details)),
        None,
    )
    .await?;
    start(
        &registry,
        ("ratings", 9080),
        "ratings",
        "v1",
        axum::Router::new().route("/ratings/{id}", get(ratings)),
        None,
    )
    .await?;
    for (version, stars) in [("v1", None), ("v2", Some("black")), ("v3", Some("red"))] {
        let state = ReviewsState { version, stars, ratings: client(&config, &registry, "reviews", version) };
        let router = axum::Router::new().route("/reviews/{id}", get(reviews)).with_state(Arc::new(state));
        start(&registry, ("reviews", 9080), "reviews", version, router, None).await?;
    }
    start(&registry, ("httpbin", 8000), "httpbin", "v1", axum::Router::new().route("/get", get(httpbin)), None).await?;
    let state = Arc::new(client(&config, &registry, "productpage", "v1"));
    let router = axum::Router::new()
        .route("/", get(|| async { Redirect::to("/productpage") }))
        .route("/productpage", get(productpage))
        .route("/login", post(login))
        .route("/logout", get(logout))
        .with_state(state);
    let productpage = start(&registry, ("productpage", 9080), "productpage", "v1", router, productpage_addr).await?;
    let fortio = client(&config, &registry, "fortio", "v1");
    Ok(Bookinfo { config, registry, productpage, fortio })
}

async fn details(Path(id): Path<u32>) -> axum::Json<Value> {
    axum::Json(json!({
        "id": id, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
        "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"
    }))
}

async fn ratings(Path(id): Path<u32>) -> axum::Json<Value> {
    axum::Json(json!({"id": id, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}))
}

/// httpbin's `/get`, a little slow so concurrent clients overlap (as fortio's do in Istio's task).
async fn httpbin(headers: HeaderMap) -> axum::Json<Value> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    axum::Json(json!({"headers": {"Host": host}, "url": format!("http://{host}/get")}))
}

struct ReviewsState {
    version: &'static str,
    stars: Option<&'static str>,
    ratings: MeshClient,
}

async fn reviews(State(s): State<Arc<ReviewsState>>, Path(id): Path<u32>, headers: HeaderMap) -> axum::Json<Value> {
    let rating = |r: &str| -> Value { json!({"stars": if r == "Reviewer1" { 5 } else { 4 }, "color": s.stars}) };
    let mut list = vec![
        json!({"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"}),
        json!({"reviewer": "Reviewer2", "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."}),
    ];
    if let Some(color) = s.stars {
        // v2 (black) waits 10 s for ratings, v3 (red) 2.5 s: the bug the fault-injection task finds.
        let timeout = if color == "black" { Duration::from_secs(10) } else { Duration::from_millis(2500) };
        let answer = call(&s.ratings, &format!("http://ratings:9080/ratings/{id}"), &headers, timeout).await;
        let parsed: Option<Value> =
            answer.filter(|(status, _)| status.is_success()).and_then(|(_, body)| serde_json::from_slice(&body).ok());
        for review in &mut list {
            let reviewer = review["reviewer"].as_str().unwrap_or("").to_string();
            review["rating"] = match &parsed {
                Some(r) => {
                    let mut v = rating(&reviewer);
                    v["stars"] = r["ratings"][&reviewer].clone();
                    v
                }
                None => json!({"error": "Ratings service is currently unavailable"}),
            };
        }
    }
    axum::Json(json!({"id": id, "podname": format!("reviews-{}", s.version), "clustername": "null", "reviews": list}))
}

fn user_of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get("cookie")?.to_str().ok()?;
    cookies.split(';').find_map(|c| c.trim().strip_prefix("session=")).map(str::to_string).filter(|u| !u.is_empty())
}

async fn productpage(State(client): State<Arc<MeshClient>>, incoming: HeaderMap) -> Response {
    let user = user_of(&incoming);
    let mut headers = HeaderMap::new();
    for name in FORWARDED {
        if let Some(v) = incoming.get(*name) {
            headers.insert(*name, v.clone());
        }
    }
    if let Some(u) = &user
        && let Ok(v) = HeaderValue::from_str(u)
    {
        headers.insert("end-user", v);
    }
    let details = call(&client, "http://details:9080/details/0", &headers, Duration::from_secs(3)).await;
    // productpage tries reviews twice with a 3 s timeout each (Istio's Bookinfo does the same).
    let mut reviews = None;
    for _ in 0..2 {
        reviews = call(&client, "http://reviews:9080/reviews/0", &headers, Duration::from_secs(3)).await;
        if matches!(&reviews, Some((s, _)) if *s == StatusCode::OK) {
            break;
        }
    }
    Html(render(user.as_deref(), details, reviews)).into_response()
}

fn render(user: Option<&str>, details: Option<(StatusCode, Bytes)>, reviews: Option<(StatusCode, Bytes)>) -> String {
    let mut page = String::from("<!DOCTYPE html>\n<html><head><title>Simple Bookstore App</title></head><body>\n");
    match user {
        Some(u) => page.push_str(&format!("<p>signed in as <b>{u}</b> <a href=\"/logout\">sign out</a></p>\n")),
        None => page.push_str("<form method=\"post\" action=\"/login\">User <input name=\"username\"> <input type=\"password\" name=\"passwd\"> <button>Sign in</button></form>\n"),
    }
    page.push_str("<h2>The Comedy of Errors</h2>\n");
    match details.filter(|(s, _)| s.is_success()).and_then(|(_, b)| serde_json::from_slice::<Value>(&b).ok()) {
        Some(d) => page.push_str(&format!(
            "<h4>Book Details</h4><dl><dt>Type:</dt><dd>{}</dd><dt>Pages:</dt><dd>{}</dd><dt>Publisher:</dt><dd>{}</dd><dt>ISBN-10:</dt><dd>{}</dd></dl>\n",
            d["type"].as_str().unwrap_or(""), d["pages"], d["publisher"].as_str().unwrap_or(""), d["ISBN-10"].as_str().unwrap_or("")
        )),
        None => page.push_str("<h4>Error fetching product details!</h4><p>Sorry, product details are currently unavailable for this book.</p>\n"),
    }
    match reviews.filter(|(s, _)| *s == StatusCode::OK).and_then(|(_, b)| serde_json::from_slice::<Value>(&b).ok()) {
        Some(r) => {
            page.push_str(&format!("<h4>Book Reviews</h4>\n<!-- served by {} -->\n", r["podname"].as_str().unwrap_or("?")));
            for review in r["reviews"].as_array().into_iter().flatten() {
                page.push_str(&format!("<blockquote><p>{}</p><small>{}</small>", review["text"].as_str().unwrap_or(""), review["reviewer"].as_str().unwrap_or("")));
                let rating = &review["rating"];
                if let Some(e) = rating["error"].as_str() {
                    page.push_str(&format!("<p><i>{e}</i></p>"));
                } else if let Some(color) = rating["color"].as_str() {
                    let n = rating["stars"].as_u64().unwrap_or(0) as usize;
                    page.push_str(&format!("<p><font color=\"{color}\">{}{}</font></p>", "★".repeat(n), "☆".repeat(5 - n.min(5))));
                }
                page.push_str("</blockquote>\n");
            }
        }
        None => page.push_str("<h4>Error fetching product reviews!</h4><p>Sorry, product reviews are currently unavailable for this book.</p>\n"),
    }
    page.push_str("</body></html>\n");
    page
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: String,
}

async fn login(Form(form): Form<LoginForm>) -> Response {
    let mut response = Redirect::to("/productpage").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("session={}; Path=/", form.username.trim())) {
        response.headers_mut().insert("set-cookie", v);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/productpage").into_response();
    response.headers_mut().insert("set-cookie", HeaderValue::from_static("session=; Path=/; Max-Age=0"));
    response
}

/// What a reader sees on the product page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// HTTP status of the page.
    pub status: u16,
    /// Which reviews instance answered (`reviews-v2`), if reviews were shown.
    pub reviews: Option<String>,
    /// Star colour (`black`, `red`), `None` for no stars.
    pub stars: Option<String>,
    /// "Ratings service is currently unavailable" was shown.
    pub ratings_unavailable: bool,
    /// "Sorry, product reviews are currently unavailable" was shown.
    pub reviews_unavailable: bool,
}

impl Page {
    /// Read a rendered page.
    pub fn parse(status: u16, html: &str) -> Page {
        let reviews = html.split("<!-- served by ").nth(1).and_then(|r| r.split(" -->").next()).map(str::to_string);
        let stars = html.split("<font color=\"").nth(1).and_then(|r| r.split('"').next()).map(str::to_string);
        Page {
            status,
            reviews,
            stars,
            ratings_unavailable: html.contains("Ratings service is currently unavailable"),
            reviews_unavailable: html.contains("product reviews are currently unavailable"),
        }
    }
}

/// A browser: GET /productpage, as `user` when given (productpage's session cookie).
pub async fn browse(
    browser: &Client<HttpConnector, Empty<Bytes>>,
    productpage: SocketAddr,
    user: Option<&str>,
) -> Result<Page> {
    let mut req = http::Request::get(format!("http://{productpage}/productpage")).body(Empty::new())?;
    if let Some(u) = user {
        req.headers_mut().insert("cookie", HeaderValue::from_str(&format!("session={u}"))?);
    }
    let response = browser.request(req).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Page::parse(status, &String::from_utf8_lossy(&body)))
}
