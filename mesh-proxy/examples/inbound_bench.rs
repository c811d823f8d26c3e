//! The inbound side's cost (issue 19), measured in one run so that the ratios compare like with
//! like on a shared machine:
//!
//! - **requests**: HTTP/1.1 keep-alive requests per second through four servers of the same
//!   trivial application — plain hyper; hyper + the inbound layer (an ALLOW policy with
//!   principals, methods and paths, a DENY policy, and 100 policies of other workloads);
//!   bare rustls with client certificates (webpki's verifier) + hyper; the identity acceptor
//!   (`STRICT`, SPIFFE verification) + the inbound layer + hyper.
//! - **handshakes**: new mutual-TLS connections per second (one request each) against the bare
//!   rustls server and the identity acceptor.
//!
//! Run with:
//! ```sh
//! cargo run --release -p mesh-proxy --example inbound_bench [SECONDS] [CONNECTIONS]   # default 5 16
//! ```
//! The rows take turns (each measured twice, interleaved) and the best of the two is printed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_config::{ConfigStore, LoadOptions, load_str};
use mesh_core::authn::MtlsMode;
use mesh_core::authz::TrustDomainBundle;
use mesh_core::spiffe::SpiffeId;
use mesh_core::workload::Workload;
use mesh_proxy::identity::certs::{CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE};
use mesh_proxy::identity::{CertFiles, CertSource, IdentityAcceptor, OutboundProtocol, client_config};
use mesh_tower::inbound::{ConnectionInfo, InboundLayer};
use rcgen::string::Ia5String;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tower::Layer;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn app(_: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    Ok(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn policies() -> String {
    let mut yaml = String::from(
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin-viewer, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/status/*", "/headers"]}}]
  - to: [{operation: {methods: ["GET"], paths: ["/plain"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]
"#,
    );
    for i in 0..100 {
        yaml.push_str(&format!(
            "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: other-{i}, namespace: foo}}\nspec:\n  selector: {{matchLabels: {{app: other-{i}}}}}\n  rules:\n  - to: [{{operation: {{paths: [\"/x\"]}}}}]\n"
        ));
    }
    yaml
}

struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn leaf(&self, uri: &str) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).expect("ia5"))];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.root).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }

    fn source(&self, name: &str, uri: &str) -> CertSource {
        let dir = std::env::temp_dir().join(format!("meshwork-inbound-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (chain, key) = self.leaf(uri);
        std::fs::write(dir.join(CERT_CHAIN_FILE), chain).expect("write");
        std::fs::write(dir.join(KEY_FILE), key).expect("write");
        std::fs::write(dir.join(ROOT_CERT_FILE), self.root.pem()).expect("write");
        CertSource::load(CertFiles::in_dir(&dir)).expect("certs")
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Plain,
    Inbound,
    Rustls,
    MtlsInbound,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Plain => "plain hyper",
            Server::Inbound => "hyper + inbound layer",
            Server::Rustls => "bare rustls mTLS + hyper",
            Server::MtlsInbound => "identity acceptor (STRICT) + inbound layer",
        }
    }
}

/// Starts `kind` on 127.0.0.1:0.
async fn start(kind: Server, layer: InboundLayer, acceptor: Arc<IdentityAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bare = bare_rustls(&acceptor);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (layer, acceptor, bare) = (layer.clone(), acceptor.clone(), bare.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = match kind {
                    Server::Plain => builder.serve_connection(TokioIo::new(tcp), hyper::service::service_fn(app)).await,
                    Server::Inbound => {
                        let info = ConnectionInfo::plaintext(tcp.peer_addr().ok(), tcp.local_addr().ok());
                        let service =
                            mesh_proxy::identity::WithConnectionInfo::new(layer.layer(tower::service_fn(app)), info);
                        builder
                            .serve_connection(TokioIo::new(tcp), hyper_util::service::TowerToHyperService::new(service))
                            .await
                    }
                    Server::Rustls => {
                        let Ok(tls) = tokio_rustls::TlsAcceptor::from(bare).accept(tcp).await else {
                            return;
                        };
                        builder.serve_connection(TokioIo::new(tls), hyper::service::service_fn(app)).await
                    }
                    Server::MtlsInbound => {
                        let Ok(accepted) = acceptor.accept(tcp, MtlsMode::Strict).await else { return };
                        let _ = mesh_proxy::identity::serve::serve_connection(
                            accepted,
                            layer.layer(tower::service_fn(app)),
                        )
                        .await;
                        Ok(())
                    }
                };
            });
        }
    });
    addr
}

/// A rustls server with webpki's client verifier and the same certificate: what a TLS server
/// without SPIFFE checks costs.
fn bare_rustls(acceptor: &IdentityAcceptor) -> Arc<rustls::ServerConfig> {
    let cert = acceptor.certs().current();
    let provider = mesh_proxy::tls::provider();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(cert.roots().clone(), provider.clone())
        .build()
        .expect("verifier");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(cert.certified_key().clone())));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Sender, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let send = match tls {
        None => {
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            send
        }
        Some(config) => {
            let name = ServerName::try_from("outbound_.8000_._.httpbin.foo.svc.cluster.local")?;
            let stream = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            send
        }
    };
    Ok(send)
}

async fn request(send: &mut Sender) -> Result<(), BoxError> {
    send.ready().await?;
    let request = http::Request::get("/plain").header("host", "httpbin.foo:8000").body(Empty::new())?;
    let response = send.send_request(request).await?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()).into());
    }
    response.into_body().collect().await?;
    Ok(())
}

/// Requests per second over `connections` keep-alive connections for `seconds`
/// (`handshakes`: a new connection per request).
async fn load(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    connections: usize,
    seconds: u64,
    handshakes: bool,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (done, tls) = (done.clone(), tls.clone());
        tasks.push(tokio::spawn(async move {
            let mut send = None;
            while Instant::now() < deadline {
                if send.is_none() || handshakes {
                    send = connect(addr, tls.as_ref()).await.ok();
                }
                let Some(s) = send.as_mut() else { continue };
                match request(s).await {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        send = None;
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);

    let mut store = ConfigStore::default();
    store.apply(load_str(&policies(), None, &LoadOptions::default())?);
    let config = mesh_tower::Mesh::builder().config(store.snapshot().clone()).build().config().clone();
    let layer = InboundLayer::builder(config, Workload::new("foo", [("app", "httpbin")])).port(8000).build();

    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pki = Pki { root: CertifiedIssuer::self_signed(params, KeyPair::generate()?)? };
    let server = pki.source("httpbin", "spiffe://cluster.local/ns/foo/sa/httpbin");
    let client = pki.source("sleep", "spiffe://cluster.local/ns/foo/sa/sleep");
    let acceptor = Arc::new(IdentityAcceptor::new(server, TrustDomainBundle::default()));
    let expected: [SpiffeId; 1] = ["spiffe://cluster.local/ns/foo/sa/httpbin".parse()?];
    let tls = Arc::new(client_config(
        &client.current(),
        &expected,
        &TrustDomainBundle::default(),
        OutboundProtocol::Http11,
        mesh_proxy::tls::provider(),
    )?);

    let kinds = [Server::Plain, Server::Inbound, Server::Rustls, Server::MtlsInbound];
    let mut addrs = Vec::new();
    for kind in kinds {
        addrs.push(start(kind, layer.clone(), acceptor.clone()).await);
    }
    let tls_for = |kind: Server| matches!(kind, Server::Rustls | Server::MtlsInbound).then(|| tls.clone());
    let mut best = [0f64; 4];
    let mut handshakes = [0f64; 2];
    for _round in 0..2 {
        for (i, kind) in kinds.into_iter().enumerate() {
            let rps = load(addrs[i], tls_for(kind), connections, seconds, false).await;
            best[i] = best[i].max(rps);
        }
        for (j, i) in [2usize, 3].into_iter().enumerate() {
            let hs = load(addrs[i], tls_for(kinds[i]), connections, seconds, true).await;
            handshakes[j] = handshakes[j].max(hs);
        }
    }
    println!("requests per second ({connections} keep-alive connections, {seconds} s, best of 2):");
    for (i, kind) in kinds.into_iter().enumerate() {
        println!("  {:<45} {:>10.0}", kind.name(), best[i]);
    }
    println!("  inbound layer / plain hyper:                  {:.3}", best[1] / best[0]);
    println!("  identity+inbound / bare rustls:               {:.3}", best[3] / best[2]);
    println!(
        "  inverse throughput added: {:.2} µs per request over plain, {:.2} µs over rustls",
        1e6 / best[1] - 1e6 / best[0],
        1e6 / best[3] - 1e6 / best[2]
    );
    println!("mutual-TLS handshakes per second (one request each, {connections} clients):");
    println!("  {:<45} {:>10.0}", "bare rustls (webpki client verifier)", handshakes[0]);
    println!("  {:<45} {:>10.0}", "identity acceptor (SPIFFE verifier)", handshakes[1]);
    println!("  identity / bare:                              {:.3}", handshakes[1] / handshakes[0]);
    Ok(())
}
