//! `mesh proxy --inbound LISTEN=APP_ADDR` (issue 19) end to end: a client → the proxy's inbound
//! listener → an httpbin-like application on loopback, with the answers Istio's authorization
//! tasks give (HTTP traffic, JWT with a token minted here, deny), and mutual TLS under STRICT
//! with rcgen certificates (a mesh client allowed by its identity, another refused, plaintext
//! refused), and Istio's inbound metrics on `/metrics`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use mesh_core::authz::TrustDomainBundle;
use mesh_core::spiffe::SpiffeId;
use mesh_proxy::identity::{CertFiles, CertSource, OutboundProtocol, connect, istio_sni};
use serde_json::json;
use support::*;

/// httpbin's few routes the tasks use: `/headers` echoes the request headers as JSON, `/ip`,
/// `/get`, `/status/N`.
async fn httpbin() -> SocketAddr {
    use axum::routing::get;
    let echo = |headers: http::HeaderMap| async move {
        let map: serde_json::Map<String, serde_json::Value> =
            headers.iter().map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or("")))).collect();
        axum::Json(json!({"headers": map}))
    };
    let app = axum::Router::new()
        .route("/headers", get(echo))
        .route("/get", get(echo))
        .route("/ip", get(|| async { axum::Json(json!({"origin": "127.0.0.1"})) }))
        .route(
            "/status/{code}",
            get(|axum::extract::Path(code): axum::extract::Path<u16>| async move {
                http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_REQUEST)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn inbound_args(app: SocketAddr) -> Vec<String> {
    let inbound = format!("127.0.0.1:0={app}");
    ["--listen", "127.0.0.1:0", "--inbound", &inbound, "--workload-namespace", "foo", "--workload-label", "app=httpbin"]
        .map(String::from)
        .to_vec()
}

fn start(dir: &Path, args: &[String]) -> Proxy {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_proxy(dir, &args)
}

/// The HTTP-traffic, JWT and deny tasks' policies on one workload, through the proxy.
#[tokio::test]
async fn authorization_tasks_through_the_inbound_listener() {
    let app = httpbin().await;
    let key = JwtKey::new();
    let dir = config_dir("inbound-tasks");
    std::fs::write(
        dir.join("policies.yaml"),
        format!(
            r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt-example, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-method-get, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  action: DENY
  rules:
  - to: [{{operation: {{methods: ["GET"], paths: ["/get"]}}}}]
    when: [{{key: "request.headers[x-token]", notValues: ["admin"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  action: ALLOW
  rules:
  - to: [{{operation: {{methods: ["GET"], paths: ["/ip", "/get", "/status/*"]}}}}]
  - from: [{{source: {{requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}}}]
    to: [{{operation: {{paths: ["/headers"]}}}}]
"#,
            jwks = key.jwks()
        ),
    )
    .expect("write");
    let proxy = start(&dir, &inbound_args(app));
    let inbound = proxy.inbound[0].clone();
    let client = client();
    let call = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let (client, inbound) = (client.clone(), inbound.clone());
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            get(&client, &inbound, "httpbin.foo:8000", path, &headers).await
        }
    };
    // ALLOW rules by path and method.
    assert_eq!(call("/ip", vec![]).await.0, 200);
    assert_eq!(call("/status/418", vec![]).await.0, 418);
    let (status, body, _) = call("/public/../headers", vec![]).await;
    assert_eq!((status, body.as_str()), (403, "RBAC: access denied"), "no token, no principal");
    // The deny task: GET /get without x-token: admin.
    assert_eq!(call("/get", vec![]).await.0, 403);
    assert_eq!(call("/get", vec![("x-token", "admin".into())]).await.0, 200);
    // The JWT task: a valid token reaches /headers, and the application does not see it.
    let token =
        key.mint(json!({"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "exp": 4_000_000_000u64}));
    let (status, body, _) = call("/headers", vec![("authorization", format!("Bearer {token}"))]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_ascii_lowercase().contains("authorization"), "the token is removed: {body}");
    let (status, body, headers) = call("/headers", vec![("authorization", "Bearer invalidToken".into())]).await;
    assert_eq!((status, body.as_str()), (401, "Jwt verification fails"));
    assert!(headers.contains_key("www-authenticate"));
    // Istio's inbound metrics.
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains("response_code=\"403\"")
        })
        .unwrap_or_else(|| panic!("an inbound 403 counted:\n{metrics}"));
    assert!(
        line.contains("destination_workload=\"httpbin\"") && line.contains("connection_security_policy=\"none\""),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS

const HTTPBIN_ID: &str = "spiffe://cluster.local/ns/foo/sa/httpbin";

/// GET `path` over mutual TLS with `certs` to `addr`, expecting the server to be httpbin.
async fn mtls_get(addr: &str, certs: &CertSource, path: &str) -> Result<(u16, String), String> {
    mtls_get_expecting(addr, certs, HTTPBIN_ID, &TrustDomainBundle::default(), path).await
}

/// The same, expecting the server to be `server` (trust domains of `bundle`).
async fn mtls_get_expecting(
    addr: &str,
    certs: &CertSource,
    server: &str,
    bundle: &TrustDomainBundle,
    path: &str,
) -> Result<(u16, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let expected: [SpiffeId; 1] = [server.parse().expect("id")];
    let sni =
        rustls_pki_types::ServerName::try_from(istio_sni("httpbin.foo.svc.cluster.local", 8000, None)).expect("sni");
    let tls = connect(tcp, certs, &expected, bundle, OutboundProtocol::Http11, sni).await.map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls.stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = http::Request::get(path).header("host", "httpbin.foo:8000").body(Empty::<Bytes>::new()).expect("req");
    let response = tokio::time::timeout(Duration::from_secs(10), send.send_request(request))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn strict_mtls_with_identities() {
    let app = httpbin().await;
    let pki = Pki::new();
    let server = pki.workload("httpbin", HTTPBIN_ID);
    let sleep = CertSource::load(CertFiles::in_dir(pki.workload("sleep", "spiffe://cluster.local/ns/foo/sa/sleep")))
        .expect("sleep certs");
    let curl = CertSource::load(CertFiles::in_dir(pki.workload("curl", "spiffe://cluster.local/ns/foo/sa/curl")))
        .expect("curl certs");
    let dir = config_dir("inbound-mtls");
    std::fs::write(
        dir.join("policies.yaml"),
        r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-sleep, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]
"#,
    )
    .expect("write");
    let mut args = inbound_args(app);
    args.extend(["--cert-dir".to_string(), server.display().to_string()]);
    let proxy = start(&dir, &args);
    let inbound = proxy.inbound[0].clone();

    assert_eq!(mtls_get(&inbound, &sleep, "/ip").await, Ok((200, r#"{"origin":"127.0.0.1"}"#.to_string())));
    let refused = mtls_get(&inbound, &curl, "/ip").await.expect("curl is a mesh client: TLS works");
    assert_eq!(refused, (403, "RBAC: access denied".to_string()));
    // Plaintext on a STRICT port: the connection is closed without an answer.
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        client()
            .request(http::Request::get(format!("http://{inbound}/ip")).body(Empty::<Bytes>::new()).expect("request")),
    )
    .await
    .expect("closed in time");
    assert!(plain.is_err(), "plaintext refused: {plain:?}");
    let metrics = admin(&client(), &proxy.admin, "/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("source_principal=\"spiffe://cluster.local/ns/foo/sa/sleep\"")
            && l.contains("connection_security_policy=\"mutual_tls\"")
            && l.contains("destination_principal=\"spiffe://cluster.local/ns/foo/sa/httpbin\"")),
        "{metrics}"
    );
}

/// Istio's TCP authorization task: an ALLOW on the port lets connections through; a DENY whose
/// rule also names an HTTP method still denies every connection to the port (the HTTP-only field
/// is dropped for TCP and the rule matches the rest).
#[tokio::test]
async fn tcp_inbound_authorization() {
    let app = tcp_echo().await;
    let port = app.port();
    let allow = format!(
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: tcp-policy, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: tcp-echo}}}}
  action: ALLOW
  rules:
  - to: [{{operation: {{ports: ["{port}"]}}}}]
"#
    );
    let deny = format!(
        r#"
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: tcp-deny-get, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: tcp-echo}}}}
  action: DENY
  rules:
  - to: [{{operation: {{methods: ["GET"], ports: ["{port}"]}}}}]
"#
    );
    let args = |dir: &Path| {
        let tcp = format!("127.0.0.1:0={app}");
        let args = ["--listen", "127.0.0.1:0", "--inbound-tcp", &tcp, "--workload-namespace", "foo"];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--workload-label".into(), "app=tcp-echo".into()]);
        start(dir, &args)
    };
    let dir = config_dir("inbound-tcp-allow");
    std::fs::write(dir.join("policy.yaml"), &allow).expect("write");
    let proxy = args(&dir);
    assert_eq!(echo_through(&proxy.inbound[0]).await, "hello");
    // Istio's TCP metrics, reported by the destination, once the connection has closed.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = admin(&client(), &proxy.admin, "/metrics").await;
        let closed = metrics.lines().any(|l| {
            l.starts_with("istio_tcp_connections_closed_total{")
                && l.contains("reporter=\"destination\"")
                && l.ends_with(" 1")
        });
        if closed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = metrics
        .lines()
        .find(|l| l.starts_with("istio_tcp_sent_bytes_total{") && l.contains("reporter=\"destination\""))
        .unwrap_or_else(|| panic!("inbound TCP bytes counted:\n{metrics}"));
    assert!(sent.ends_with(" 5") && sent.contains("destination_workload=\"tcp-echo\""), "{sent}");

    let dir = config_dir("inbound-tcp-deny");
    std::fs::write(dir.join("policy.yaml"), format!("{allow}{deny}")).expect("write");
    let proxy = args(&dir);
    assert_eq!(echo_through(&proxy.inbound[0]).await, "", "the connection is closed");
}

/// Istio's trust-domain migration task: the mesh moved from `old-td` to `new-td`
/// (`trustDomainAliases: [old-td]`); a policy written for `old-td/ns/foo/sa/sleep` still lets
/// sleep in — with a certificate of either domain — and keeps curl out.
#[tokio::test]
async fn trust_domain_migration_end_to_end() {
    let app = httpbin().await;
    let pki = Pki::new();
    let server = pki.workload("td-httpbin", "spiffe://new-td/ns/foo/sa/httpbin");
    let certs = |name: &str, uri: &str| CertSource::load(CertFiles::in_dir(pki.workload(name, uri))).expect("certs");
    let new_sleep = certs("td-new-sleep", "spiffe://new-td/ns/foo/sa/sleep");
    let old_sleep = certs("td-old-sleep", "spiffe://old-td/ns/foo/sa/sleep");
    let curl = certs("td-curl", "spiffe://new-td/ns/foo/sa/curl");
    let dir = config_dir("inbound-td");
    std::fs::write(
        dir.join("policy.yaml"),
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: service-httpbin.default.svc.cluster.local, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  rules:
  - from: [{source: {principals: ["old-td/ns/foo/sa/sleep"]}}]
    to: [{operation: {methods: ["GET"]}}]
"#,
    )
    .expect("write");
    let mesh = config_dir("inbound-td-mesh").join("mesh.yaml");
    std::fs::write(&mesh, "trustDomain: new-td\ntrustDomainAliases: [old-td]\n").expect("write");
    let mut args = inbound_args(app);
    args.extend([
        "--cert-dir".into(),
        server.display().to_string(),
        "--mesh-config".into(),
        mesh.display().to_string(),
    ]);
    let proxy = start(&dir, &args);
    let inbound = proxy.inbound[0].clone();
    let bundle = TrustDomainBundle::new("new-td", ["old-td"]);
    let server_id = "spiffe://new-td/ns/foo/sa/httpbin";
    assert_eq!(mtls_get_expecting(&inbound, &new_sleep, server_id, &bundle, "/ip").await.map(|r| r.0), Ok(200));
    assert_eq!(mtls_get_expecting(&inbound, &old_sleep, server_id, &bundle, "/ip").await.map(|r| r.0), Ok(200));
    assert_eq!(mtls_get_expecting(&inbound, &curl, server_id, &bundle, "/ip").await.map(|r| r.0), Ok(403));
}

/// Istio's dry-run task (a DENY marked `istio.io/dry-run` only records what it would do) and the
/// ingress task's `remoteIpBlocks` (the original client address from `x-forwarded-for`).
#[tokio::test]
async fn dry_run_and_remote_ip_end_to_end() {
    let app = httpbin().await;
    let dir = config_dir("inbound-dry-run");
    std::fs::write(
        dir.join("policy.yaml"),
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-path-headers
  namespace: foo
  annotations: {"istio.io/dry-run": "true"}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/headers"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - from: [{source: {remoteIpBlocks: ["1.2.3.0/24"]}}]
"#,
    )
    .expect("write");
    let proxy = start(&dir, &inbound_args(app));
    let client = client();
    let inbound = proxy.inbound[0].clone();
    let (status, _, _) = get(&client, &inbound, "httpbin.foo:8000", "/headers", &[]).await;
    assert_eq!(status, 200, "a dry-run DENY does not deny");
    let (status, body, _) =
        get(&client, &inbound, "httpbin.foo:8000", "/ip", &[("x-forwarded-for", "9.9.9.9, 1.2.3.4")]).await;
    assert_eq!((status, body.as_str()), (403, "RBAC: access denied"), "the original client is in 1.2.3.0/24");
    let (status, _, _) =
        get(&client, &inbound, "httpbin.foo:8000", "/ip", &[("x-forwarded-for", "1.2.3.4, 5.6.7.8")]).await;
    assert_eq!(status, 200, "the rightmost address is the one trusted");
}
