//! Outbound Istio mutual TLS (issue 19) end to end, with real TLS on loopback and rcgen
//! certificates: client → `mesh proxy --cert-dir` (outbound, a `sleep` identity) → `mesh proxy
//! --inbound ... --cert-dir` (an `httpbin` identity; STRICT PeerAuthentication and an
//! AuthorizationPolicy allowing only `sleep`) → an application.
//!
//! - DestinationRule `ISTIO_MUTUAL` to an unlabelled endpoint: mutual TLS, 200, and the server
//!   saw the client's identity (its metrics' `source_principal`; another client identity gets
//!   403 from the same policy).
//! - Auto mTLS: an endpoint labelled `security.istio.io/tlsMode: istio` gets mutual TLS (200
//!   through STRICT); an unlabelled one gets plain text (a plain application answers; STRICT
//!   refuses it: 503).
//! - Kubernetes: a Pod labelled `security.istio.io/tlsMode: istio` gets mutual TLS, another
//!   plain text.
//! - Secure naming: `subjectAltNames` naming another identity refuses the server (503).
//! - A `MESH_EXTERNAL` service, or one in a namespace whose PeerAuthentication says `DISABLE`,
//!   gets no auto mTLS, whatever its endpoints' labels.
//! - Without `--cert-dir`: `ISTIO_MUTUAL` is 503 (no plain text sent), auto mTLS is plain text.
//! - The in-process client (`client_with_mtls`, and `client` without a certificate) alike.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_proxy::client::{OutboundMtls, client_with_mtls};
use mesh_proxy::identity::{CertFiles, CertSource};
use support::*;
use tower::ServiceExt;

/// An application answering `app` on every path.
async fn app() -> SocketAddr {
    let router = axum::Router::new().fallback(|| async { "app" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

fn start(dir: &Path, args: &[&str]) -> Proxy {
    start_proxy(dir, args)
}

/// A MESH_INTERNAL service `NAME.foo.svc.cluster.local:8000` with one endpoint.
fn service(name: &str, port: u16, labels: &str) -> String {
    service_at(name, "MESH_INTERNAL", port, labels)
}

fn service_at(name: &str, location: &str, port: u16, labels: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: foo}}
spec:
  hosts: [{name}.foo.svc.cluster.local]
  location: {location}
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{{labels}}}}}
---
"#
    )
}

fn destination_rule(name: &str, tls: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: foo}}
spec:
  host: {name}.foo.svc.cluster.local
  trafficPolicy:
    tls: {tls}
---
"#
    )
}

async fn status(client: &PlainClient, proxy: &Proxy, service: &str) -> (u16, String) {
    let host = format!("{service}.foo.svc.cluster.local:8000");
    let (status, body, _) = get(client, proxy.listen(), &host, "/ip", &[]).await;
    (status, body)
}

/// A Kubernetes Service `NAME.foo` (port 8000) whose one endpoint is a Pod on 127.0.0.1:`port`
/// with `labels`, running as service account `httpbin` (the inbound listener's identity), as
/// `kubectl get -o yaml` prints them.
fn kube_service(name: &str, port: u16, labels: &str) -> String {
    kube_service_as(name, port, labels, "httpbin")
}

fn kube_service_as(name: &str, port: u16, labels: &str, account: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {{name: {name}, namespace: foo}}
  spec:
    clusterIP: 10.96.0.10
    ports: [{{name: http, port: 8000, protocol: TCP, targetPort: {port}}}]
    selector: {{app: {name}}}
- apiVersion: v1
  kind: Pod
  metadata:
    name: {name}-pod
    namespace: foo
    labels: {{app: {name}, {labels}}}
  spec:
    containers: [{{name: app, image: app}}]
    serviceAccountName: {account}
  status: {{phase: Running, podIP: 127.0.0.1, podIPs: [{{ip: 127.0.0.1}}]}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  addressType: IPv4
  metadata:
    name: {name}-abcde
    namespace: foo
    labels: {{kubernetes.io/service-name: {name}}}
  ports: [{{name: http, port: {port}, protocol: TCP}}]
  endpoints:
  - addresses: [127.0.0.1]
    conditions: {{ready: true}}
    targetRef: {{kind: Pod, name: {name}-pod, namespace: foo}}
"#
    )
}

/// A 503 because the connection failed or was closed (not for want of an endpoint).
async fn refused(client: &PlainClient, proxy: &Proxy, service: &str, why: &str) {
    let (code, body) = status(client, proxy, service).await;
    assert_eq!(code, 503, "{service}: {why}: {body}");
    assert!(body.starts_with("upstream connect error"), "{service}: {why}: {body}");
}

const ISTIO: &str = "app: httpbin, security.istio.io/tlsMode: istio";
const UNLABELLED: &str = "app: httpbin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_istio_mutual_and_auto_mtls_through_a_strict_inbound_listener() {
    let app = app().await;
    let pki = Pki::new();
    let server = pki.workload("httpbin", "spiffe://cluster.local/ns/foo/sa/httpbin");
    let sleep = pki.workload("sleep", "spiffe://cluster.local/ns/foo/sa/sleep");
    let curl = pki.workload("curl", "spiffe://cluster.local/ns/foo/sa/curl");

    // The server side: STRICT, only `sleep` allowed.
    let inbound_dir = config_dir("outbound-mtls-inbound");
    std::fs::write(
        inbound_dir.join("policies.yaml"),
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
    let inbound_flag = format!("127.0.0.1:0={app}");
    let server_dir = server.display().to_string();
    let inbound = start(
        &inbound_dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--inbound",
            &inbound_flag,
            "--workload-namespace",
            "foo",
            "--workload-label",
            "app=httpbin",
            "--cert-dir",
            &server_dir,
        ],
    );
    let strict: u16 = inbound.inbound[0].rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("inbound port");

    // The client side's services.
    let outbound_dir = config_dir("outbound-mtls-outbound");
    let config = [
        service("dr", strict, UNLABELLED),
        destination_rule("dr", "{mode: ISTIO_MUTUAL}"),
        service("auto", strict, ISTIO),
        service("plain", strict, UNLABELLED),
        service("plain-app", app.port(), UNLABELLED),
        service("auto-app", app.port(), ISTIO),
        service("wrong", strict, UNLABELLED),
        destination_rule("wrong", "{mode: ISTIO_MUTUAL, subjectAltNames: ['spiffe://cluster.local/ns/foo/sa/other']}"),
        service_at("external-app", "MESH_EXTERNAL", app.port(), ISTIO),
        service("disabled", strict, ISTIO),
        destination_rule("disabled", "{mode: DISABLE}"),
    ]
    .concat();
    std::fs::write(outbound_dir.join("services.yaml"), config).expect("write");
    // Namespace `bar` says DISABLE: no auto mTLS to its services, labels or not.
    let bar = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: disabled-ns, namespace: bar}}
spec:
  hosts: [disabled-ns.bar.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{{ISTIO}}}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: bar}}
spec:
  mtls: {{mode: DISABLE}}
"#,
        port = app.port()
    );
    std::fs::write(outbound_dir.join("bar.yaml"), bar).expect("write");
    // Kubernetes: the Pod's `security.istio.io/tlsMode` label reaches the decision.
    std::fs::write(
        outbound_dir.join("kube-mtls.yaml"),
        kube_service("kube-mtls", strict, "security.istio.io/tlsMode: istio"),
    )
    .expect("write");
    std::fs::write(outbound_dir.join("kube-plain.yaml"), kube_service("kube-plain", strict, "version: v1"))
        .expect("write");
    // Secure naming by the Pods' service accounts: a server whose certificate is not the Pod's
    // account is refused.
    std::fs::write(
        outbound_dir.join("kube-other-sa.yaml"),
        kube_service_as("kube-other-sa", strict, "security.istio.io/tlsMode: istio", "reviews"),
    )
    .expect("write");
    let outbound_args = |certs: Option<&Path>| -> Vec<String> {
        let mut args: Vec<String> = ["--listen", "127.0.0.1:0", "--namespace", "foo"].map(String::from).to_vec();
        if let Some(dir) = certs {
            args.extend(["--cert-dir".to_string(), dir.display().to_string()]);
        }
        args
    };
    let with = |certs: Option<&Path>| {
        let args = outbound_args(certs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        start(&outbound_dir, &args)
    };
    let client = client();

    // With the `sleep` certificate.
    let proxy = with(Some(&sleep));
    assert_eq!(status(&client, &proxy, "dr").await, (200, "app".into()), "ISTIO_MUTUAL through STRICT");
    assert_eq!(status(&client, &proxy, "auto").await, (200, "app".into()), "auto mTLS to a labelled endpoint");
    assert_eq!(status(&client, &proxy, "plain-app").await, (200, "app".into()), "unlabelled: plain text");
    refused(&client, &proxy, "plain", "unlabelled: plain text, which STRICT refuses").await;
    refused(&client, &proxy, "disabled", "DISABLE beats the label: STRICT refuses").await;
    refused(&client, &proxy, "auto-app", "auto mTLS to a plain application fails").await;
    let (code, body, _) = get(&client, proxy.listen(), "disabled-ns.bar.svc.cluster.local:8000", "/", &[]).await;
    assert_eq!((code, body.as_str()), (200, "app"), "PeerAuthentication DISABLE in the namespace: no auto mTLS");
    assert_eq!(status(&client, &proxy, "external-app").await, (200, "app".into()), "MESH_EXTERNAL: no auto mTLS");
    refused(&client, &proxy, "wrong", "secure naming refuses an unexpected server").await;
    assert_eq!(status(&client, &proxy, "kube-mtls").await, (200, "app".into()), "auto mTLS to a labelled Pod");
    refused(&client, &proxy, "kube-plain", "an unlabelled Pod gets plain text").await;
    refused(&client, &proxy, "kube-other-sa", "the server is not the Pod's service account (secure naming)").await;
    // The server saw the client's identity.
    let metrics = admin(&client, &inbound.admin, "/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("reporter=\"destination\"")
            && l.contains("source_principal=\"spiffe://cluster.local/ns/foo/sa/sleep\"")
            && l.contains("connection_security_policy=\"mutual_tls\"")
            && l.contains("response_code=\"200\"")),
        "{metrics}"
    );
    drop(proxy);

    // Another identity: mutual TLS works, the policy refuses it.
    let proxy = with(Some(&curl));
    assert_eq!(status(&client, &proxy, "dr").await, (403, "RBAC: access denied".into()), "curl is not allowed");
    drop(proxy);

    // No certificate: ISTIO_MUTUAL fails (never plain text), auto mTLS is plain text.
    let proxy = with(None);
    refused(&client, &proxy, "dr", "ISTIO_MUTUAL without a certificate").await;
    assert_eq!(status(&client, &proxy, "auto-app").await, (200, "app".into()), "auto mTLS without a certificate");
    refused(&client, &proxy, "auto", "plain text to STRICT").await;
    drop(proxy);

    // The in-process client, given the `sleep` certificate, decides and connects alike.
    let source = mesh_proxy::reload::ConfigSource::new(vec![outbound_dir.clone()], "foo").expect("loads");
    let certs = CertSource::load(CertFiles::in_dir(&sleep)).expect("sleep certs");
    let with_certs = client_with_mtls::<Empty<Bytes>>(source.mesh(), OutboundMtls::new(Some(certs)));
    let without = mesh_proxy::client::client::<Empty<Bytes>>(source.mesh());
    for (client, service, want) in [
        (&with_certs, "dr", (200, "app")),
        (&with_certs, "auto", (200, "app")),
        (&with_certs, "plain", (503, "")),
        (&with_certs, "wrong", (503, "")),
        (&without, "dr", (503, "")),
        (&without, "auto-app", (200, "app")),
    ] {
        let uri = format!("http://{service}.foo.svc.cluster.local:8000/ip");
        let request = http::Request::get(uri).body(Empty::<Bytes>::new()).expect("request");
        let response = client.clone().oneshot(request).await.expect("answered");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let got = (status, String::from_utf8_lossy(&body).into_owned());
        if want.0 == 200 {
            assert_eq!(got, (want.0, want.1.to_string()), "in process: {service}");
        } else {
            assert_eq!(got.0, want.0, "in process: {service}: {}", got.1);
        }
    }
}

/// An in-process STRICT server with the `httpbin` identity answering what it saw of each
/// request's connection: the peer identity, the SNI, the HTTP version.
async fn identity_echo(certs: &Path) -> SocketAddr {
    use axum::Extension;
    use mesh_core::authn::MtlsMode;
    use mesh_proxy::identity::{IdentityAcceptor, serve};
    use mesh_tower::inbound::ConnectionInfo;
    let certs = CertSource::load(CertFiles::in_dir(certs)).expect("server certs");
    let acceptor = std::sync::Arc::new(IdentityAcceptor::new(certs, Default::default()));
    let app = axum::Router::new().fallback(
        |Extension(info): Extension<ConnectionInfo>, req: http::Request<axum::body::Body>| async move {
            format!(
                "peer={} sni={} version={:?}",
                info.peer.map_or("none".to_string(), |p| p.to_string()),
                info.sni.as_deref().unwrap_or("none"),
                req.version()
            )
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(serve::serve(listener, acceptor, |_| MtlsMode::Strict, app));
    address
}

/// On the wire: Istio's SNI `outbound_.<port>_.<subset>_.<host>` (the subset of the route),
/// HTTP/2 negotiated by ALPN for an `HTTP2` port, the client's certificate presented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_alpn_and_identity_on_the_wire() {
    let pki = Pki::new();
    let server = pki.workload("echo-server", "spiffe://cluster.local/ns/foo/sa/httpbin");
    let sleep = pki.workload("echo-sleep", "spiffe://cluster.local/ns/foo/sa/sleep");
    let echo = identity_echo(&server).await;
    let dir = config_dir("outbound-mtls-wire");
    let config = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: foo}}
spec:
  hosts: [echo.foo.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{app: echo, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: foo}}
spec:
  host: echo.foo.svc.cluster.local
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
  subsets: [{{name: v1, labels: {{version: v1}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: foo}}
spec:
  hosts: [echo.foo.svc.cluster.local]
  http: [{{route: [{{destination: {{host: echo.foo.svc.cluster.local, subset: v1}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo-h2, namespace: foo}}
spec:
  hosts: [echo-h2.foo.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{{number: 9000, name: grpc-ish, protocol: HTTP2}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc-ish: {port}}}, labels: {{app: echo, security.istio.io/tlsMode: istio}}}}
"#,
        port = echo.port()
    );
    std::fs::write(dir.join("echo.yaml"), config).expect("write");
    let sleep_dir = sleep.display().to_string();
    let proxy = start(&dir, &["--listen", "127.0.0.1:0", "--namespace", "foo", "--cert-dir", &sleep_dir]);
    let client = client();
    let (code, body, _) = get(&client, proxy.listen(), "echo.foo.svc.cluster.local:8000", "/", &[]).await;
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            "peer=spiffe://cluster.local/ns/foo/sa/sleep sni=outbound_.8000_.v1_.echo.foo.svc.cluster.local version=HTTP/1.1"
        )
    );
    let (code, body, _) = get(&client, proxy.listen(), "echo-h2.foo.svc.cluster.local:9000", "/", &[]).await;
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            "peer=spiffe://cluster.local/ns/foo/sa/sleep sni=outbound_.9000_._.echo-h2.foo.svc.cluster.local version=HTTP/2.0"
        )
    );
}

/// A Gateway's TCP route to a mesh service: `ISTIO_MUTUAL` (and auto mTLS) apply to the TCP hop
/// as to HTTP — the connection reaches a STRICT `--inbound-tcp` listener with the gateway's
/// identity; without mutual TLS, STRICT refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_tcp_routes_originate_mutual_tls() {
    let echo = tcp_echo().await;
    let pki = Pki::new();
    let server = pki.workload("tcp-echo", "spiffe://cluster.local/ns/foo/sa/tcp-echo");
    let gateway_id = pki.workload("gateway", "spiffe://cluster.local/ns/istio-system/sa/ingressgateway");
    let inbound_dir = config_dir("outbound-mtls-tcp-inbound");
    std::fs::write(
        inbound_dir.join("policies.yaml"),
        r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec:
  mtls: {mode: STRICT}
"#,
    )
    .expect("write");
    let tcp_flag = format!("127.0.0.1:0={echo}");
    let server_dir = server.display().to_string();
    let inbound = start(
        &inbound_dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--inbound-tcp",
            &tcp_flag,
            "--workload-namespace",
            "foo",
            "--cert-dir",
            &server_dir,
        ],
    );
    let strict_port: u16 = inbound.inbound[0].rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("port");

    let outbound_dir = config_dir("outbound-mtls-tcp-gateway");
    let config = |name: &str, tls: &str| {
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-gw, namespace: foo}}
spec:
  servers:
  - port: {{number: 31400, name: tcp, protocol: TCP}}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: tcp, namespace: foo}}
spec:
  hosts: ["*"]
  gateways: [tcp-gw]
  tcp:
  - route: [{{destination: {{host: {name}.foo.svc.cluster.local, port: {{number: 9000}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: foo}}
spec:
  hosts: [{name}.foo.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{tcp: {strict_port}}}}}]
---
{tls}"#
        )
    };
    std::fs::write(
        outbound_dir.join("config.yaml"),
        config(
            "tcp-echo",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: tcp-echo, namespace: foo}\nspec:\n  host: tcp-echo.foo.svc.cluster.local\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
        ),
    )
    .expect("write");
    let gateway_dir = gateway_id.display().to_string();
    let args = ["--gateway", "foo/tcp-gw", "--port-map", "31400=127.0.0.1:0", "--cert-dir", &gateway_dir];
    let proxy = start(&outbound_dir, &args);
    assert_eq!(echo_through(proxy.port(31400)).await, "hello", "ISTIO_MUTUAL on the TCP hop through STRICT");

    // Without the DestinationRule (and an unlabelled endpoint): plain text, which STRICT refuses.
    let plain_dir = config_dir("outbound-mtls-tcp-plain");
    std::fs::write(plain_dir.join("config.yaml"), config("tcp-echo", "")).expect("write");
    let plain = start(&plain_dir, &args);
    // (STRICT answers plain text with a TLS alert and closes: never the echo.)
    assert_ne!(echo_through(plain.port(31400)).await, "hello", "plain text to STRICT is refused");
}
