//! `mesh proxy --gateway NS/NAME` serving a Kubernetes Gateway API Gateway (issue 18), end to
//! end: the Gateway's listener, an HTTPRoute's matches in the spec's precedence, its filters
//! (request and response header modifiers, URLRewrite, RequestRedirect), and backends that are
//! Kubernetes Services with EndpointSlices, all read from files as `kubectl apply` takes them;
//! echo servers on loopback answer with what they saw.

mod support;

use bytes::Bytes;
use support::*;

/// An HTTP server answering `name path host x-added` (what the backend saw).
async fn echo(name: &'static str) -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
                    let header =
                        |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                    let seen = format!("{name} {} {} {}", req.uri().path(), header("host"), header("x-added"));
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from(seen))))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    port
}

fn service_with_slice(name: &str, port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: infra}}
spec:
  ports: [{{name: http, port: 8080}}]
  selector: {{app: {name}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abcde
  namespace: infra
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {{ready: true}}
---
"#
    )
}

const GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.example.com"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v2}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-added, value: "yes"}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-answered-by, value: v2-route}]}
    backendRefs: [{name: v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    backendRefs: [{name: v1, port: 8080}]
  - matches: [{path: {type: Exact, value: /moved}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {hostname: www.example.com, statusCode: 301}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_api_gateway_served_end_to_end() {
    let v1 = echo("v1").await;
    let v2 = echo("v2").await;
    let dir = config_dir("gateway-api-e2e");
    let config = format!("{}{}{GATEWAY}", service_with_slice("v1", v1), service_with_slice("v2", v2));
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--gateway", "infra/gw", "--port-map", "80=127.0.0.1:0"]);
    let addr = proxy.port(80).to_string();
    let client = client();

    // The catch-all rule is listed first, but the /v2 prefix is more specific and wins.
    let (status, body, headers) = get(&client, &addr, "shop.example.com", "/v2/items", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v2 /v2/items shop.example.com yes"));
    assert_eq!(headers.get("x-answered-by").map(|v| v.as_bytes()), Some(&b"v2-route"[..]));

    // A segment prefix: /v2x is not under /v2.
    let (status, body, _) = get(&client, &addr, "shop.example.com", "/v2x", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v1 /v2x shop.example.com -"));

    // URLRewrite: the prefix and the host the backend sees.
    let (status, body, _) = get(&client, &addr, "shop.example.com", "/old/page", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v1 /new/page internal.example.com -"));

    // RequestRedirect: 301 with the new host and the request's path.
    let (status, _, headers) = get(&client, &addr, "shop.example.com", "/moved", &[]).await;
    assert_eq!(status, 301);
    assert_eq!(headers.get("location").and_then(|v| v.to_str().ok()), Some("http://www.example.com/moved"));

    // A host the route does not claim (the listener admits it): no route, 404.
    let (status, _, _) = get(&client, &addr, "other.example.com", "/", &[]).await;
    assert_eq!(status, 404);
    // A host the listener does not admit: 404 as well (Envoy has no virtual host for it).
    let (status, _, _) = get(&client, &addr, "shop.example.org", "/", &[]).await;
    assert_eq!(status, 404);

    // `mesh explain` on the same files says what the proxy did, naming the HTTPRoute's rule.
    let explain = |url: &str| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["explain", "-o", "json", "--gateway", "infra/gw", "-f"])
            .arg(&dir)
            .arg(url)
            .output()
            .expect("mesh explain runs");
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let v = explain("http://shop.example.com:80/v2/items");
    assert_eq!(v["action"], "route", "{v}");
    assert_eq!((v["route"]["kind"].as_str(), v["route"]["name"].as_str()), (Some("HTTPRoute"), Some("web")));
    assert_eq!(v["route"]["rule"], 1, "rules[1] of the HTTPRoute");
    assert_eq!(v["destinations"][0]["host"], "v2.infra.svc.cluster.local");
    let v = explain("http://shop.example.com:80/moved");
    assert_eq!(v["action"], "redirect", "{v}");
    assert_eq!(v["redirect"]["status"], 301);
    assert_eq!(v["redirect"]["location"], "http://www.example.com/moved");
}

/// `mesh validate --status`: the status a controller would write, for the upstream conformance
/// case of a route whose parent Gateway does not allow its namespace, and for the listener it
/// did not attach to.
#[test]
fn validate_prints_gateway_api_status() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/gateway-api");
    let dir = config_dir("gateway-api-status");
    for (from, to) in [
        ("base/manifests.yaml", "base.yaml"),
        ("tests/httproute-invalid-cross-namespace-parent-ref.yaml", "route.yaml"),
        ("tests/httproute-simple-same-namespace.yaml", "simple.yaml"),
    ] {
        let text =
            std::fs::read_to_string(corpus.join(from)).expect("manifest").replace("{GATEWAY_CLASS_NAME}", "istio");
        std::fs::write(dir.join(to), text).expect("write");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["validate", "--status", "-o", "json"])
        .arg(&dir)
        .output()
        .expect("mesh validate runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["valid"], true, "{v}");
    let route = |name: &str| {
        v["routes"].as_array().expect("routes").iter().find(|r| r["name"] == name).cloned().expect("route status")
    };
    let refused = route("invalid-cross-namespace-parent-ref");
    assert_eq!(refused["kind"], "HTTPRoute");
    assert_eq!(refused["parents"][0]["parentRef"]["name"], "same-namespace");
    let accepted = &refused["parents"][0]["conditions"][0];
    assert_eq!((accepted["type"].as_str(), accepted["status"].as_str()), (Some("Accepted"), Some("False")));
    assert_eq!(accepted["reason"], "NotAllowedByListeners");
    let simple = route("gateway-conformance-infra-test");
    assert_eq!(simple["parents"][0]["conditions"][0]["status"], "True", "{simple}");
    let gateway = v["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .find(|g| g["name"] == "same-namespace")
        .cloned()
        .expect("gateway status");
    assert_eq!(gateway["listeners"][0]["attachedRoutes"], 1, "only the accepted route counts: {gateway}");

    let text = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["validate", "--status"])
        .arg(&dir)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("HTTPRoute gateway-conformance-web-backend/invalid-cross-namespace-parent-ref -> Gateway gateway-conformance-infra/same-namespace: Accepted=False (NotAllowedByListeners)"),
        "{text}"
    );
}

/// The mesh (GAMMA) through `mesh proxy` without `--gateway`: an HTTPRoute whose parent is the
/// `echo` Service routes requests for that Service by path to per-version Services, and a
/// request for another Service is not touched by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_http_route_served_by_the_proxy() {
    let v1 = echo("v1").await;
    let v2 = echo("v2").await;
    let dir = config_dir("gateway-api-mesh");
    let route = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo-split, namespace: infra}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2}}]
    backendRefs: [{name: v2, port: 8080}]
  - backendRefs: [{name: v1, port: 8080}]
"#;
    let config = format!(
        "{}{}{}{route}",
        service_with_slice("v1", v1),
        service_with_slice("v2", v2),
        service_with_slice("echo", v1)
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0", "-n", "infra"]);
    let client = client();
    let (status, body, _) = get(&client, proxy.listen(), "echo:8080", "/v2/x", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v2 /v2/x echo:8080 -"));
    let (status, body, _) = get(&client, proxy.listen(), "echo.infra.svc.cluster.local:8080", "/other", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v1 /other echo.infra.svc.cluster.local:8080 -"));
    // v2 itself has no route: requests for it reach it unchanged.
    let (status, body, _) = get(&client, proxy.listen(), "v2:8080", "/other", &[]).await;
    assert_eq!((status, body.as_str()), (200, "v2 /other v2:8080 -"));
}

/// An HTTPS listener whose certificate is a `kubernetes.io/tls` Secret (`certificateRefs`): the
/// proxy terminates TLS with it and routes the HTTPRoute; a listener whose Secret is missing is
/// not programmed (its port is not opened), and `mesh validate --status` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_listener_with_its_certificate_from_a_secret() {
    use hyper_util::rt::TokioIo;
    use rustls::pki_types::ServerName;
    let web = echo("secure-web").await;
    let cert = rcgen::generate_simple_self_signed(vec!["secure.example.com".to_string()]).expect("certificate");
    let indent = |pem: String| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: secure-cert, namespace: infra}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n",
        indent(cert.cert.pem()),
        indent(cert.signing_key.serialize_pem())
    );
    let gateway = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: secure, namespace: infra}
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example.com
    tls: {certificateRefs: [{name: secure-cert}]}
  - name: broken
    port: 8443
    protocol: HTTPS
    tls: {certificateRefs: [{name: no-such-secret}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: secure, namespace: infra}
spec:
  parentRefs: [{name: secure}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
"#;
    let dir = config_dir("gateway-api-https");
    std::fs::write(dir.join("config.yaml"), format!("{secret}{}{gateway}", service_with_slice("web", web)))
        .expect("write");
    let proxy = start_proxy(
        &dir,
        &["--gateway", "infra/secure", "--port-map", "443=127.0.0.1:0", "--port-map", "8443=127.0.0.1:0"],
    );
    assert_eq!(proxy.listeners.len(), 1, "only the programmed listener opens: {:?}", proxy.listeners);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("root");
    let mut config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(proxy.port(443)).await.expect("connect");
    let name = ServerName::try_from("secure.example.com".to_string()).expect("name");
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the handshake verifies the Secret's certificate");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http");
    tokio::spawn(conn);
    let req = http::Request::get("/hello")
        .header("host", "secure.example.com")
        .body(http_body_util::Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    assert_eq!(&body[..], b"secure-web /hello secure.example.com -");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(["validate", "--status"])
        .arg(&dir)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "listener broken: attachedRoutes=1, Accepted=True (Accepted), Conflicted=False (NoConflicts), ResolvedRefs=False (InvalidCertificateRef)"
        ),
        "{text}"
    );
    assert!(text.contains("listener https: attachedRoutes=1, Accepted=True (Accepted), Conflicted=False (NoConflicts), ResolvedRefs=True (ResolvedRefs), Programmed=True"), "{text}");
}

/// `--gateway-class` chooses which Gateways are served (Istio's `istio` by default), for
/// `mesh explain` as for `mesh proxy`; a `--mesh-config` file that cannot be read is an error
/// naming the flag.
#[test]
fn gateway_class_and_mesh_config_flags() {
    let dir = config_dir("gateway-api-class");
    let config = format!("{}{GATEWAY}", service_with_slice("v1", 1));
    std::fs::write(dir.join("config.yaml"), config.replace("gatewayClassName: istio", "gatewayClassName: edge"))
        .expect("write");
    let explain = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["explain", "-o", "json", "--gateway", "infra/gw", "-f"])
            .arg(&dir)
            .args(extra)
            .arg("http://shop.example.com:80/")
            .output()
            .expect("mesh explain runs")
    };
    let out = explain(&[]);
    assert!(!out.status.success(), "class edge is not istio's: the Gateway is not served");
    assert!(String::from_utf8_lossy(&out.stderr).contains("infra/gw"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = explain(&["--gateway-class", "edge"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["destinations"][0]["host"], "v1.infra.svc.cluster.local", "{v}");
    let status = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesh"))
            .args(["validate", "--status", "-o", "json"])
            .args(extra)
            .arg(&dir)
            .output()
            .expect("mesh validate runs");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["gateways"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(status(&[]), 0, "no Gateway of class istio");
    assert_eq!(status(&["--gateway-class", "edge"]), 1);
    let out = explain(&["--gateway-class", "edge", "--mesh-config", "/nonexistent/mesh.yaml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mesh-config"), "{}", String::from_utf8_lossy(&out.stderr));
}
