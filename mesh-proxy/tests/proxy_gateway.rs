//! `mesh proxy --gateway` as a process: listeners from the Gateway's servers, TLS termination
//! (SIMPLE and MUTUAL, chosen by SNI), `httpsRedirect`, host checks, `port` matches, and mTLS to
//! the upstream from a DestinationRule — with certificates made by rcgen for the test.

mod support;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::*;

/// A test CA that writes PEM files.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "meshwork test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        Pki { ca }
    }

    /// A leaf for `names`, written as `{stem}.pem` and `{stem}-key.pem`.
    fn leaf(&self, dir: &Path, stem: &str, names: &[&str]) {
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf");
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).expect("write");
    }
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path).expect("pem").collect::<Result<_, _>>().expect("certs")
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).expect("key")
}

fn roots(dir: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&dir.join("ca.pem")) {
        roots.add(c).expect("root");
    }
    roots
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS upstream that requires a client certificate from the test CA and echoes headers.
async fn mtls_upstream(dir: &Path) -> u16 {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(dir)), provider())
        .build()
        .expect("verifier");
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&dir.join("reviews.pem")), key(&dir.join("reviews-key.pem")))
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = router("reviews-over-mtls", Arc::default());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

/// Connect with TLS to `addr` sending `sni`, optionally with a client certificate; ALPN `alpn`.
async fn tls_connect(
    dir: &Path,
    addr: &str,
    sni: &str,
    client_cert: impl Into<Option<&str>>,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(dir));
    let mut config = match client_cert.into() {
        Some(stem) => builder
            .with_client_auth_cert(certs(&dir.join(format!("{stem}.pem"))), key(&dir.join(format!("{stem}-key.pem"))))
            .expect("cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}

/// GET `url` over an established TLS stream (HTTP/2 if ALPN chose it).
async fn https_get(
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    url: &str,
) -> Result<(http::Version, u16, String), hyper::Error> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let uri: http::Uri = url.parse().expect("url");
    let host = uri.host().expect("host").to_string();
    let response = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        sender.send_request(http::Request::get(uri).body(Empty::<Bytes>::new()).expect("req")).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let req = http::Request::get(path).header("host", host).body(Empty::<Bytes>::new()).expect("req");
        sender.send_request(req).await?
    };
    let version = response.version();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((version, status, String::from_utf8_lossy(&body).into_owned()))
}

/// The status of `GET /` with `Host: host` on a new connection, or `None` if nothing listens.
async fn try_get(addr: &str, host: &str) -> Option<u16> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    let req = http::Request::get("/").header("host", host).body(Empty::<Bytes>::new()).ok()?;
    Some(sender.send_request(req).await.ok()?.status().as_u16())
}

fn config(dir: &Path, reviews_tls: u16, ratings: u16) -> String {
    let d = dir.display();
    let mut out = service_entry("reviews", "reviews.default.svc.cluster.local", &[(reviews_tls, "v1")]);
    out.push_str(&service_entry("badtls", "badtls.default.svc.cluster.local", &[(reviews_tls, "v1")]));
    out.push_str(&service_entry("ratings", "ratings.default.svc.cluster.local", &[(ratings, "v1")]));
    out.push_str(&format!(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [bookinfo.example.com]
    tls: {{httpsRedirect: true}}
  - port: {{number: 8080, name: http-alt, protocol: HTTP}}
    hosts: [plain.example.com]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [bookinfo.example.com]
    tls: {{mode: SIMPLE, serverCertificate: {d}/gateway.pem, privateKey: {d}/gateway-key.pem}}
  - port: {{number: 443, name: https-secure, protocol: HTTPS}}
    hosts: [secure.example.com]
    tls: {{mode: MUTUAL, serverCertificate: {d}/gateway.pem, privateKey: {d}/gateway-key.pem, caCertificates: {d}/ca.pem, subjectAltNames: [client.example.com]}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bookinfo}}
spec:
  hosts: [bookinfo.example.com, secure.example.com]
  gateways: [edge]
  http:
  - match: [{{uri: {{prefix: /bad}}}}]
    route: [{{destination: {{host: badtls}}}}]
  - route: [{{destination: {{host: reviews}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: plain}}
spec:
  hosts: [plain.example.com]
  gateways: [edge]
  http:
  - match: [{{port: 8080}}]
    route: [{{destination: {{host: ratings}}}}]
  - directResponse: {{status: 418}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: {d}/client.pem
      privateKey: {d}/client-key.pem
      caCertificates: {d}/ca.pem
      sni: reviews.default.svc.cluster.local
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: badtls}}
spec:
  host: badtls
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: {d}/client.pem
      privateKey: {d}/client-key.pem
      caCertificates: {d}/ca.pem
"#
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_terminates_tls_redirects_and_originates_mtls() {
    let dir = config_dir("gateway");
    let pki = Pki::new(&dir);
    pki.leaf(&dir, "gateway", &["bookinfo.example.com", "secure.example.com"]);
    pki.leaf(&dir, "reviews", &["reviews.default.svc.cluster.local"]);
    pki.leaf(&dir, "client", &["client.example.com"]);
    pki.leaf(&dir, "intruder", &["intruder.example.com"]);
    let reviews = mtls_upstream(&dir).await;
    let ratings = backend("ratings").await;
    std::fs::write(dir.join("config.yaml"), config(&dir, reviews, ratings.port)).expect("write");
    let later = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let later_map = format!("9090=127.0.0.1:{later}");
    let proxy = start_proxy(
        &dir,
        &[
            "--gateway",
            "default/edge",
            "--port-map",
            "80=127.0.0.1:0",
            "--port-map",
            "443=127.0.0.1:0",
            "--port-map",
            "8080=127.0.0.1:0",
            "--port-map",
            &later_map,
        ],
    );
    assert_eq!(proxy.listeners.len(), 3, "one listener per Gateway port: {:?}", proxy.listeners);
    let https = proxy.port(443).to_string();

    // TLS termination (SIMPLE) with HTTP/2 by ALPN, then mTLS to the upstream: the upstream
    // requires the DestinationRule's client certificate, so a 200 means the hop was mTLS.
    let stream = tls_connect(&dir, &https, "bookinfo.example.com", None, b"h2").await.expect("TLS to the gateway");
    let (version, status, body) =
        https_get(stream, "https://bookinfo.example.com/headers").await.expect("request over TLS");
    assert_eq!((version, status), (http::Version::HTTP_2, 200), "{body}");
    assert!(body.contains("x-forwarded-proto: https"), "{body}");
    assert!(body.contains("x-forwarded-for: 127.0.0.1"), "{body}");
    // HTTP/1.1 by ALPN works too.
    let stream = tls_connect(&dir, &https, "bookinfo.example.com", None, b"http/1.1").await.expect("TLS");
    let (version, status, body) = https_get(stream, "https://bookinfo.example.com/").await.expect("request");
    assert_eq!((version, status, body.as_str()), (http::Version::HTTP_11, 200, "reviews-over-mtls"));

    // Certificates rotated in place (same paths, new files) are served to new connections.
    let served = |stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec())
    };
    let before = served(&tls_connect(&dir, &https, "bookinfo.example.com", None, b"http/1.1").await.expect("TLS"));
    pki.leaf(&dir, "gateway", &["bookinfo.example.com", "secure.example.com"]);
    let rotated = certs(&dir.join("gateway.pem"))[0].as_ref().to_vec();
    assert_ne!(before.as_deref(), Some(&rotated[..]));
    let mut now_served = None;
    for _ in 0..40 {
        if let Ok(stream) = tls_connect(&dir, &https, "bookinfo.example.com", None, b"http/1.1").await {
            now_served = served(&stream);
            if now_served.as_deref() == Some(&rotated[..]) {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(now_served.as_deref(), Some(&rotated[..]), "the rotated certificate is served");

    // Upstream certificate verification is real: without `sni`, the SNI is the request's host,
    // which the upstream's certificate does not name: 503, never a silent plaintext fallback.
    let stream = tls_connect(&dir, &https, "bookinfo.example.com", None, b"http/1.1").await.expect("TLS");
    let (_, status, _) = https_get(stream, "https://bookinfo.example.com/bad").await.expect("request");
    assert_eq!(status, 503);

    // Same port, another server chosen by SNI: MUTUAL wants a client certificate.
    let stream = tls_connect(&dir, &https, "secure.example.com", "client", b"http/1.1").await.expect("mTLS");
    let (_, status, body) = https_get(stream, "https://secure.example.com/").await.expect("request");
    assert_eq!((status, body.as_str()), (200, "reviews-over-mtls"));
    let refused = match tls_connect(&dir, &https, "secure.example.com", None, b"http/1.1").await {
        Err(_) => true,
        // TLS 1.3: the server's refusal arrives after the client's handshake ends.
        Ok(stream) => https_get(stream, "https://secure.example.com/").await.is_err(),
    };
    assert!(refused, "MUTUAL refuses a client without a certificate");
    // ...and one whose certificate (from the same CA) names none of the server's subjectAltNames.
    let refused = match tls_connect(&dir, &https, "secure.example.com", "intruder", b"http/1.1").await {
        Err(_) => true,
        Ok(stream) => https_get(stream, "https://secure.example.com/").await.is_err(),
    };
    assert!(refused, "subjectAltNames refuses a certificate for another name");
    // An SNI no server lists gets no certificate at all.
    assert!(tls_connect(&dir, &https, "other.example.com", None, b"http/1.1").await.is_err());

    // Port 80: httpsRedirect.
    let client = client();
    let (status, _, headers) = get(&client, proxy.port(80), "bookinfo.example.com", "/productpage?u=1", &[]).await;
    assert_eq!(status, 301);
    assert_eq!(headers["location"], "https://bookinfo.example.com/productpage?u=1");

    // Port 8080: `port: 8080` matches the listener's port (the Host has none); hosts the
    // Gateway does not list get 404.
    let (status, body, _) = get(&client, proxy.port(8080), "plain.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ratings"));
    let (status, _, _) = get(&client, proxy.port(8080), "bookinfo.example.com", "/", &[]).await;
    assert_eq!(status, 404, "bookinfo.example.com is not served on port 8080");
    let (status, _, _) = get(&client, proxy.port(8080), "elsewhere.example.com", "/", &[]).await;
    assert_eq!(status, 404, "a gateway is not an open proxy");

    // A reload that adds a server on a new port opens it (port 9090 is not 8080: the rule for
    // port 8080 does not match there, the direct response does); removing it closes the port.
    let original = std::fs::read_to_string(dir.join("config.yaml")).expect("read");
    let with_9090 = original.replace(
        "  - port: {number: 8080, name: http-alt, protocol: HTTP}\n    hosts: [plain.example.com]\n",
        "  - port: {number: 8080, name: http-alt, protocol: HTTP}\n    hosts: [plain.example.com]\n  - port: {number: 9090, name: http-new, protocol: HTTP}\n    hosts: [plain.example.com]\n",
    );
    assert_ne!(with_9090, original);
    std::fs::write(dir.join("config.yaml"), &with_9090).expect("write");
    let later = format!("127.0.0.1:{later}");
    let mut status = None;
    for _ in 0..100 {
        status = try_get(&later, "plain.example.com").await;
        if status.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some(418), "the new Gateway port serves");
    std::fs::write(dir.join("config.yaml"), &original).expect("write");
    let mut closed = false;
    for _ in 0..100 {
        if try_get(&later, "plain.example.com").await.is_none() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(closed, "the removed Gateway port is closed");
    let _ = std::fs::remove_dir_all(&dir);
}
