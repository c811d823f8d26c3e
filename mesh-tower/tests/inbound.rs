//! The inbound layer (issue 19) around an application service: AuthorizationPolicy answers
//! (403 `RBAC: access denied`), path normalization seen by the application, mTLS identities from
//! the connection, PeerAuthentication STRICT without a peer, and RequestAuthentication with a key
//! set fetched from a loopback JWKS server and tokens minted here (valid, bad signature, expired,
//! wrong audience, missing, CORS preflight, token stripped or forwarded, payload and claim
//! headers), plus Istio's inbound metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mesh_config::{ConfigStore, LoadOptions, load_str};
use mesh_core::Snapshot;
use mesh_core::spiffe::SpiffeId;
use mesh_core::workload::Workload;
use mesh_tower::inbound::{ConnectionInfo, ConnectionRefused, InboundLayer};
use serde_json::json;
use tower::{Layer, ServiceExt};

fn snapshot(yaml: &str) -> Snapshot {
    let mut store = ConfigStore::default();
    let report = store.apply(load_str(yaml, None, &LoadOptions::default()).expect("yaml"));
    assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
    store.snapshot().clone()
}

fn httpbin() -> Workload {
    Workload::new("foo", [("app", "httpbin"), ("version", "v1")])
}

/// The application: answers with what it saw (path, then selected headers).
async fn app(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let seen = json!({
        "path": req.uri().path_and_query().map(|p| p.as_str()),
        "authorization": header("authorization"),
        "payload": header("x-jwt-payload"),
        "sub": header("x-sub"),
    });
    Ok(Response::new(Full::new(Bytes::from(seen.to_string()))))
}

struct Answer {
    status: u16,
    body: String,
    www_authenticate: Option<String>,
}

async fn call(layer: &InboundLayer, request: Request<Full<Bytes>>) -> Result<Answer, mesh_tower::BoxError> {
    let service = layer.layer(tower::service_fn(app));
    let response = service.oneshot(request).await?;
    let status = response.status().as_u16();
    let www_authenticate = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    Ok(Answer { status, body: String::from_utf8_lossy(&body).into_owned(), www_authenticate })
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).header("host", "httpbin.foo:8000").body(Full::new(Bytes::new())).expect("request")
}

fn layer(yaml: &str) -> InboundLayer {
    let config = Arc::new(ArcSwap::from_pointee(snapshot(yaml)));
    InboundLayer::builder(config, httpbin()).port(8000).workload_name("httpbin").build()
}

fn from_peer(mut request: Request<Full<Bytes>>, sa: &str) -> Request<Full<Bytes>> {
    let info = ConnectionInfo::plaintext("10.0.0.1:40000".parse().ok(), "10.0.0.2:8000".parse().ok())
        .with_peer(SpiffeId::new("cluster.local", "foo", sa), None);
    request.extensions_mut().insert(info);
    request
}

const DENY_ADMIN: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
"#;

#[tokio::test]
async fn authorization_allow_deny_and_normalized_path() {
    let layer = layer(&format!(
        r#"{DENY_ADMIN}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-get, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  action: ALLOW
  rules:
  - to: [{{operation: {{methods: ["GET"]}}}}]
"#
    ));
    let ok = call(&layer, get("/public/../headers?x=1")).await.expect("answer");
    assert_eq!(ok.status, 200);
    // The application sees the path authorization matched.
    assert!(ok.body.contains(r#""path":"/headers?x=1""#), "{}", ok.body);
    let denied = call(&layer, get("/public/../admin/x")).await.expect("answer");
    assert_eq!((denied.status, denied.body.as_str()), (403, "RBAC: access denied"));
    let post = Request::post("/headers").body(Full::new(Bytes::new())).expect("request");
    assert_eq!(call(&layer, post).await.expect("answer").status, 403, "ALLOW policies exist, POST matches none");
    // A workload no policy selects.
    let config = Arc::new(ArcSwap::from_pointee(snapshot(DENY_ADMIN)));
    let other = InboundLayer::builder(config, Workload::new("foo", [("app", "other")])).build();
    assert_eq!(call(&other, get("/admin")).await.expect("answer").status, 200);
}

#[tokio::test]
async fn peer_identity_and_strict_mtls() {
    let layer = layer(
        r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: foo}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-sleep, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]
"#,
    );
    assert_eq!(call(&layer, from_peer(get("/ip"), "sleep")).await.expect("answer").status, 200);
    let other = call(&layer, from_peer(get("/ip"), "curl")).await.expect("answer");
    assert_eq!((other.status, other.body.as_str()), (403, "RBAC: access denied"));
    // Plaintext on a STRICT port: no HTTP answer, the connection is to be closed.
    let error = call(&layer, get("/ip")).await.err().expect("refused");
    assert!(error.downcast_ref::<ConnectionRefused>().is_some(), "{error}");
}

struct Key {
    encoding: EncodingKey,
    kid: &'static str,
}

impl Key {
    fn new(kid: &'static str) -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        Key { encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem"), kid }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some(self.kid.to_string());
        jwk
    }

    fn mint(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.to_string());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("token")
    }
}

/// A JWKS server on loopback; counts fetches.
async fn jwks_server(keys: &[&Key]) -> (String, Arc<AtomicUsize>) {
    let document = serde_json::to_string(&JwkSet { keys: keys.iter().map(|k| k.jwk()).collect() }).expect("json");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let document = document.clone();
            async move { document }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/jwks"), hits)
}

#[allow(clippy::disallowed_methods)] // tokens are checked against the wall clock
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

fn bearer(path: &str, token: &str) -> Request<Full<Bytes>> {
    let mut request = get(path);
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("value"));
    request
}

#[tokio::test]
async fn request_authentication_with_fetched_jwks() {
    let key = Key::new("k1");
    let stranger = Key::new("k1");
    let (uri, fetches) = jwks_server(&[&key]).await;
    let layer = layer(&format!(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: {uri}
    audiences: [httpbin]
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{{header: x-sub, claim: sub}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{requestPrincipals: ["testing@secure.istio.io/*"]}}}}]
    to: [{{operation: {{paths: ["/headers"]}}}}]
  - to: [{{operation: {{paths: ["/public"]}}}}]
"#
    ));
    let claims =
        |exp: u64, aud: &str| json!({"iss": "testing@secure.istio.io", "sub": "alice", "aud": aud, "exp": exp});
    let valid = key.mint(claims(now() + 600, "httpbin"));

    let ok = call(&layer, bearer("/headers", &valid)).await.expect("answer");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let seen: serde_json::Value = serde_json::from_str(&ok.body).expect("json");
    assert_eq!(seen["authorization"], "-", "the verified token is removed");
    assert_eq!(seen["sub"], "alice");
    assert_eq!(seen["payload"], valid.split('.').nth(1).expect("payload"), "base64url payload, as in the token");

    let bad_signature =
        call(&layer, bearer("/headers", &stranger.mint(claims(now() + 600, "httpbin")))).await.expect("answer");
    assert_eq!((bad_signature.status, bad_signature.body.as_str()), (401, "Jwt verification fails"));
    assert_eq!(
        bad_signature.www_authenticate.as_deref(),
        Some(r#"Bearer realm="http://httpbin.foo:8000/headers", error="invalid_token""#)
    );
    let expired = call(&layer, bearer("/headers", &key.mint(claims(now() - 3600, "httpbin")))).await.expect("answer");
    assert_eq!(expired.status, 401);
    let audience = call(&layer, bearer("/headers", &key.mint(claims(now() + 600, "other")))).await.expect("answer");
    assert_eq!((audience.status, audience.body.as_str()), (403, "Audiences in Jwt are not allowed"));
    // No token: RequestAuthentication lets it through; the policy wants a principal.
    assert_eq!(call(&layer, get("/headers")).await.expect("answer").status, 403);
    assert_eq!(call(&layer, get("/public")).await.expect("answer").status, 200);
    // A bad token is refused even where the policy needs none.
    assert_eq!(call(&layer, bearer("/public", "not.a.token")).await.expect("answer").status, 401);
    // A CORS preflight skips JWT verification (the policy still decides: no rule for it here).
    let mut preflight = bearer("/public", "not.a.token");
    *preflight.method_mut() = http::Method::OPTIONS;
    preflight.headers_mut().insert("origin", "http://example.com".parse().expect("v"));
    preflight.headers_mut().insert("access-control-request-method", "GET".parse().expect("v"));
    assert_eq!(call(&layer, preflight).await.expect("answer").status, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn forward_original_token_and_unreachable_jwks() {
    let key = Key::new("k1");
    let (uri, _) = jwks_server(&[&key]).await;
    let layer = layer(&format!(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: foo}}
spec:
  jwtRules:
  - issuer: forwarded
    jwksUri: {uri}
    forwardOriginalToken: true
  - issuer: unreachable
    jwksUri: http://127.0.0.1:1/jwks
"#
    ));
    let token = key.mint(json!({"iss": "forwarded", "sub": "bob", "exp": now() + 600}));
    let ok = call(&layer, bearer("/x", &token)).await.expect("answer");
    assert_eq!(ok.status, 200);
    let seen: serde_json::Value = serde_json::from_str(&ok.body).expect("json");
    assert_eq!(seen["authorization"], format!("Bearer {token}"), "forwardOriginalToken keeps it");
    // A token of the issuer whose key set cannot be fetched fails, as with istiod's placeholder.
    let other = key.mint(json!({"iss": "unreachable", "sub": "bob", "exp": now() + 600}));
    assert_eq!(call(&layer, bearer("/x", &other)).await.expect("answer").status, 401);
}

#[tokio::test]
async fn inbound_metrics_name_the_peer() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let yaml = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-curl, namespace: foo}
spec:
  action: DENY
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/curl"]}}]
"#;
    // The test runs on one thread (tokio's current-thread test runtime): the handles are
    // registered on first use, with this recorder in scope.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let layer = InboundLayer::builder(Arc::new(ArcSwap::from_pointee(snapshot(yaml))), httpbin())
        .workload_name("httpbin")
        .service("httpbin.foo.svc.cluster.local")
        .build();
    let answers = (
        call(&layer, from_peer(get("/"), "sleep")).await.expect("a").status,
        call(&layer, from_peer(get("/"), "curl")).await.expect("b").status,
        call(&layer, get("/")).await.expect("c").status,
    );
    assert_eq!(answers, (200, 403, 200));
    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != "istio_requests_total" {
            continue;
        }
        let label =
            |n: &str| key.key().labels().find(|l| l.key() == n).map(|l| l.value().to_string()).unwrap_or_default();
        assert_eq!(label("reporter"), "destination");
        assert_eq!(label("destination_workload"), "httpbin");
        assert_eq!(label("destination_service_name"), "httpbin");
        assert_eq!(label("destination_app"), "httpbin");
        let DebugValue::Counter(n) = value else { panic!("counter") };
        seen.push((label("source_principal"), label("response_code"), label("connection_security_policy"), n));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("spiffe://cluster.local/ns/foo/sa/curl".into(), "403".into(), "mutual_tls".into(), 1),
            ("spiffe://cluster.local/ns/foo/sa/sleep".into(), "200".into(), "mutual_tls".into(), 1),
            ("unknown".into(), "200".into(), "none".into(), 1),
        ]
    );
}
