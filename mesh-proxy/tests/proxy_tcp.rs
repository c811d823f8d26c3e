//! `mesh proxy --gateway` with plain TCP and TLS passthrough servers: Istio's TCP traffic
//! shifting task (the `tcp-echo` sample's own Gateway, DestinationRule and VirtualService files)
//! and SNI routing of TLS the proxy does not terminate — real processes, real TCP, real TLS.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A TCP echo server as Istio's `tcp-echo` sample: each line comes back prefixed with `prefix`.
async fn tcp_echo(prefix: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write.write_all(format!("{prefix} {line}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Send one line through `addr` on a new connection; the line that comes back.
async fn echo_through(addr: &str, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut reply = String::new();
    let mut reader = BufReader::new(&mut stream);
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut reply))
        .await
        .map_err(|_| std::io::Error::other("no reply within 5 s"))??;
    Ok(reply.trim_end().to_string())
}

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/istio-samples/tcp-echo").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `tcp-echo` service with one endpoint per version (ports 9000 `tcp` and 9001 `tcp-other`).
fn tcp_echo_service(v1: u16, v2: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: tcp-echo}}
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{{number: 9000, name: tcp, protocol: TCP}}, {{number: 9001, name: tcp-other, protocol: TCP}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{tcp: {v1}, tcp-other: {v1}}}, labels: {{app: tcp-echo, version: v1}}}}
  - {{address: 127.0.0.1, ports: {{tcp: {v2}, tcp-other: {v2}}}, labels: {{app: tcp-echo, version: v2}}}}
"#
    )
}

/// `mesh proxy` as the sample's `tcp-echo-gateway` (port 31400 on a free local port), over a
/// config directory `name` holding `service` and `routes`; the directory, for later rewrites.
fn tcp_echo_gateway(name: &str, service: String, routes: &str) -> (Proxy, std::path::PathBuf) {
    let dir = config_dir(name);
    std::fs::write(dir.join("service.yaml"), service).expect("write");
    std::fs::write(dir.join("routes.yaml"), routes).expect("write");
    let proxy = start_proxy(&dir, &["--gateway", "default/tcp-echo-gateway", "--port-map", "31400=127.0.0.1:0"]);
    (proxy, dir)
}

/// Istio's `tcp-echo-20-v2.yaml`: 80 % of connections to v1, 20 % to v2.
const SHIFT_20_V2: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tcp-echo
spec:
  hosts:
  - "*"
  gateways:
  - tcp-echo-gateway
  tcp:
  - match:
    - port: 31400
    route:
    - destination:
        host: tcp-echo
        port:
          number: 9000
        subset: v1
      weight: 80
    - destination:
        host: tcp-echo
        port:
          number: 9000
        subset: v2
      weight: 20
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_traffic_shifting_as_istios_task() {
    let (v1, v2) = (tcp_echo("one").await, tcp_echo("two").await);
    let (proxy, dir) = tcp_echo_gateway("tcp-echo", tcp_echo_service(v1, v2), &sample("tcp-echo-all-v1.yaml"));
    let gateway = proxy.port(31400).to_string();

    // All to v1.
    for i in 0..20 {
        assert_eq!(echo_through(&gateway, &format!("hello {i}")).await.expect("echo"), format!("one hello {i}"));
    }

    // What the port does, in the config dump.
    let dump: serde_json::Value =
        serde_json::from_str(&admin(&client(), &proxy.admin, "/config_dump").await).expect("json");
    let server = &dump["l4Servers"][0];
    assert_eq!((server["port"].as_u64(), server["kind"].as_str()), (Some(31400), Some("tcp")), "{dump}");
    assert_eq!(server["route"]["virtualService"], "default/tcp-echo");
    assert_eq!(server["route"]["destinations"][0]["subset"], "v1");

    // 80/20: the VirtualService is replaced, the listener stays; new connections follow the new
    // weights.
    let all_v1 = sample("tcp-echo-all-v1.yaml");
    let own_vs =
        all_v1.find("apiVersion: networking.istio.io/v1\nkind: VirtualService").expect("the sample's VirtualService");
    std::fs::write(dir.join("routes.yaml"), format!("{}{SHIFT_20_V2}", &all_v1[..own_vs])).expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if echo_through(&gateway, "probe").await.expect("echo").starts_with("two ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the 80/20 VirtualService never applied");
    }
    let mut v2_share = 0;
    for i in 0..500 {
        let reply = echo_through(&gateway, &format!("n{i}")).await.expect("echo");
        match reply.split_once(' ') {
            Some(("one", rest)) | Some(("two", rest)) => assert_eq!(rest, format!("n{i}")),
            _ => panic!("unexpected reply {reply:?}"),
        }
        v2_share += usize::from(reply.starts_with("two "));
    }
    assert!((60..=140).contains(&v2_share), "20 % to v2: {v2_share} of 500");

    // Istio's TCP metrics, with the destination's labels.
    let client = client();
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    let opened = metrics
        .lines()
        .filter(|l| {
            l.starts_with("istio_tcp_connections_opened_total{")
                && l.contains("destination_service=\"tcp-echo.default.svc.cluster.local\"")
                && l.contains("request_protocol=\"tcp\"")
        })
        .map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        .sum::<f64>();
    assert!(opened >= 520.0, "every connection counted: {opened}\n{metrics}");
    assert!(metrics.contains("istio_tcp_received_bytes_total{"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("istio_tcp_sent_bytes_total{") && l.contains("destination_version=\"v2\""))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_port_with_no_rule_for_it_closes_connections() {
    let v1 = tcp_echo("one").await;
    let dir = config_dir("tcp-norule");
    std::fs::write(dir.join("service.yaml"), tcp_echo_service(v1, v1)).expect("write");
    // The sample's rule matches port 31400 only; the Gateway also declares 31401.
    let routes = sample("tcp-echo-all-v1.yaml").replace(
        "  servers:\n  - port:\n      number: 31400\n      name: tcp\n      protocol: TCP\n    hosts:\n    - \"*\"\n",
        "  servers:\n  - port:\n      number: 31400\n      name: tcp\n      protocol: TCP\n    hosts:\n    - \"*\"\n  - port:\n      number: 31401\n      name: tcp-2\n      protocol: TCP\n    hosts:\n    - \"*\"\n",
    );
    assert!(routes.contains("31401"), "the sample's Gateway changed shape");
    std::fs::write(dir.join("routes.yaml"), routes).expect("write");
    let proxy = start_proxy(
        &dir,
        &[
            "--gateway",
            "default/tcp-echo-gateway",
            "--port-map",
            "31400=127.0.0.1:0",
            "--port-map",
            "31401=127.0.0.1:0",
        ],
    );
    assert_eq!(echo_through(proxy.port(31400), "a").await.expect("echo"), "one a");
    let mut stream = TcpStream::connect(proxy.port(31401)).await.expect("connect");
    let _ = stream.write_all(b"a\n").await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("closed, not left open");
    assert_eq!(n.unwrap_or(0), 0, "no rule: the connection is closed without an answer");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA and leaves for the passthrough test.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "meshwork passthrough test CA");
        Pki { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA") }
    }

    fn server_config(&self, name: &str) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("key");
        let cert =
            CertificateParams::new(vec![name.to_string()]).expect("params").signed_by(&key, &self.ca).expect("leaf");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server config");
        Arc::new(config)
    }

    /// A leaf for `name`, written as `{stem}.pem` and `{stem}-key.pem` in `dir`.
    fn leaf_files(&self, dir: &Path, stem: &str, name: &str) {
        let key = KeyPair::generate().expect("key");
        let cert =
            CertificateParams::new(vec![name.to_string()]).expect("params").signed_by(&key, &self.ca).expect("leaf");
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).expect("write");
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca.der().to_vec())).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// A TLS server for `name` that answers every connection with `name` and closes.
async fn tls_server(pki: &Pki, name: &'static str) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config(name));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(name.as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

/// What a TLS connection to `addr` with server name `sni` reads, once the handshake (with the
/// backend: the proxy holds no certificate) succeeds.
async fn read_over_tls(pki: &Pki, addr: &str, sni: &str) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(pki.client_config()).connect(name, tcp).await?;
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out).await;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_passthrough_routes_by_sni_without_terminating() {
    let pki = Pki::new();
    let (a, b) = (tls_server(&pki, "a.example.com").await, tls_server(&pki, "b.example.com").await);
    let dir = config_dir("sni");
    let config = format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: sites}}
spec:
  hosts: [a.example.com, b.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - {{address: 127.0.0.1, ports: {{tls: {a}}}, labels: {{site: a}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: site-b}}
spec:
  hosts: [b.internal]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - {{address: 127.0.0.1, ports: {{tls: {b}}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: tls, protocol: TLS}}
    hosts: ["*.example.com"]
    tls: {{mode: PASSTHROUGH}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: sites}}
spec:
  hosts: ["*.example.com"]
  gateways: [edge]
  tls:
  - match: [{{port: 443, sniHosts: [a.example.com]}}]
    route: [{{destination: {{host: a.example.com, port: {{number: 443}}}}}}]
  - match: [{{port: 443, sniHosts: [b.example.com]}}]
    route: [{{destination: {{host: b.internal}}}}]
"#
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--gateway", "default/edge", "--port-map", "443=127.0.0.1:0"]);
    let edge = proxy.port(443).to_string();
    // The handshakes succeed against each backend's own certificate, through the proxy.
    assert_eq!(read_over_tls(&pki, &edge, "a.example.com").await.expect("a"), "a.example.com");
    assert_eq!(read_over_tls(&pki, &edge, "b.example.com").await.expect("b"), "b.example.com");
    // A server name no rule lists: closed during the handshake.
    assert!(read_over_tls(&pki, &edge, "c.example.com").await.is_err(), "no route for c.example.com");
    // Not TLS at all: closed.
    let mut plain = TcpStream::connect(&edge).await.expect("connect");
    let _ = plain.write_all(b"GET / HTTP/1.1\r\nhost: a.example.com\r\n\r\n").await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(20), plain.read(&mut buf)).await.expect("closed");
    assert_eq!(n.unwrap_or(0), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_obey_max_connections_and_report_connect_failures() {
    let v1 = tcp_echo("one").await;
    // v2's endpoint listens nowhere.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let limits = "  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: 1\n  subsets:\n";
    let all_v1 = sample("tcp-echo-all-v1.yaml").replacen("  subsets:\n", limits, 1);
    assert!(all_v1.contains("maxConnections"), "the sample's DestinationRule changed shape");
    let (proxy, dir) = tcp_echo_gateway("tcp-limits", tcp_echo_service(v1, nowhere), &all_v1);
    let gateway = proxy.port(31400).to_string();

    // One connection open and answered: the only one the pool allows.
    let mut held = TcpStream::connect(&gateway).await.expect("connect");
    held.write_all(b"first\n").await.expect("write");
    let mut reply = [0u8; 10];
    held.read_exact(&mut reply).await.expect("the first connection is served");
    assert_eq!(&reply, b"one first\n");
    // A second is closed at once (UO) while the first stays open...
    let mut second = TcpStream::connect(&gateway).await.expect("connect");
    let _ = second.write_all(b"second\n").await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf)).await.expect("closed");
    assert_eq!(n.unwrap_or(0), 0, "over maxConnections: closed unanswered");
    // ...and served once the first has closed.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while echo_through(&gateway, "third").await.map_or(true, |r| r != "one third") {
        assert!(tokio::time::Instant::now() < deadline, "the pool slot was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // All to v2, whose endpoint refuses connections: closed, counted with UF.
    std::fs::write(dir.join("routes.yaml"), all_v1.replace("subset: v1", "subset: v2")).expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = admin(&client(), &proxy.admin, "/metrics").await;
        if metrics
            .lines()
            .any(|l| l.starts_with("istio_tcp_connections_opened_total{") && l.contains("response_flags=\"UF\""))
        {
            assert!(
                metrics.lines().any(
                    |l| l.starts_with("istio_tcp_connections_opened_total{") && l.contains("response_flags=\"UO\"")
                )
            );
            let reply = echo_through(&gateway, "y").await;
            assert!(reply.as_deref().is_ok_and(str::is_empty) || reply.is_err(), "closed unanswered: {reply:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no connect failure reported:\n{metrics}");
        // Until the reload lands, v1 still answers; then nothing does.
        let _ = echo_through(&gateway, "x").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_echo_flows_both_ways_at_once() {
    // The client writes 64 MiB without waiting while the echo comes back: a proxy that copied
    // one way at a time would stop once both directions' socket buffers were full.
    let v1 = tcp_echo("one").await;
    let (proxy, dir) = tcp_echo_gateway("tcp-large", tcp_echo_service(v1, v1), &sample("tcp-echo-all-v1.yaml"));
    let stream = TcpStream::connect(proxy.port(31400)).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let line = format!("{}\n", "x".repeat(1023));
    let lines = 64 * 1024;
    let writer = tokio::spawn(async move {
        for _ in 0..lines {
            write.write_all(line.as_bytes()).await.expect("write");
        }
        write.shutdown().await.expect("half close");
    });
    let mut echoed = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut echoed))
        .await
        .expect("the echo completes")
        .expect("read");
    writer.await.expect("writer");
    assert_eq!(echoed.len(), lines * ("one ".len() + 1024), "every line echoed, then the half close passed on");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_terminates_and_forwards_by_tcp_rules() {
    let pki = Pki::new();
    let v1 = tcp_echo("one").await;
    let dir = config_dir("tls-tcp");
    pki.leaf_files(&dir, "echo", "echo.example.com");
    std::fs::write(dir.join("service.yaml"), tcp_echo_service(v1, v1)).expect("write");
    let config = format!(
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: secure-echo}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 31443, name: tls, protocol: TLS}}
    hosts: [echo.example.com]
    tls: {{mode: SIMPLE, serverCertificate: {cert}, privateKey: {key}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: secure-echo}}
spec:
  hosts: [echo.example.com]
  gateways: [secure-echo]
  tcp:
  - route: [{{destination: {{host: tcp-echo, port: {{number: 9000}}}}}}]
"#,
        cert = dir.join("echo.pem").display(),
        key = dir.join("echo-key.pem").display(),
    );
    std::fs::write(dir.join("routes.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--gateway", "default/secure-echo", "--port-map", "31443=127.0.0.1:0"]);
    // The client speaks TLS to the gateway (its certificate, from the files); the echo server
    // gets plain text.
    let tcp = TcpStream::connect(proxy.port(31443)).await.expect("connect");
    let name = ServerName::try_from("echo.example.com".to_string()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(pki.client_config()).connect(name, tcp).await.expect("handshake");
    tls.write_all(b"over tls\n").await.expect("write");
    let mut reply = String::new();
    BufReader::new(&mut tls).read_line(&mut reply).await.expect("read");
    assert_eq!(reply, "one over tls\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_shared_by_passthrough_and_https_servers_serves_each_by_sni() {
    let pki = Pki::new();
    let passed = tls_server(&pki, "a.example.com").await;
    let web = backend("web").await;
    let dir = config_dir("sni-mixed");
    pki.leaf_files(&dir, "web", "web.example.com");
    let config = format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: a}}
spec:
  hosts: [a.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {passed}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: web}}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: {web_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: tls-passthrough, protocol: TLS}}
    hosts: [a.example.com]
    tls: {{mode: PASSTHROUGH}}
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [web.example.com]
    tls: {{mode: SIMPLE, serverCertificate: {cert}, privateKey: {key}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: passed}}
spec:
  hosts: [a.example.com]
  gateways: [edge]
  tls:
  - match: [{{sniHosts: [a.example.com]}}]
    route: [{{destination: {{host: a.example.com, port: {{number: 443}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web}}
spec:
  hosts: [web.example.com]
  gateways: [edge]
  http:
  - route: [{{destination: {{host: web, port: {{number: 80}}}}}}]
"#,
        web_port = web.port,
        cert = dir.join("web.pem").display(),
        key = dir.join("web-key.pem").display(),
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--gateway", "default/edge", "--port-map", "443=127.0.0.1:0"]);
    let edge = proxy.port(443).to_string();
    // a.example.com passes through to its own TLS server...
    assert_eq!(read_over_tls(&pki, &edge, "a.example.com").await.expect("a"), "a.example.com");
    // ...web.example.com is terminated by the gateway (its certificate) and routed over HTTP.
    let tcp = TcpStream::connect(&edge).await.expect("connect");
    let name = ServerName::try_from("web.example.com".to_string()).expect("name");
    let tls = tokio_rustls::TlsConnector::from(pki.client_config()).connect(name, tcp).await.expect("handshake");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.expect("http");
    tokio::spawn(connection);
    let req = http::Request::get("/")
        .header("host", "web.example.com")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    assert_eq!(body, "web");
    let _ = std::fs::remove_dir_all(&dir);
}
