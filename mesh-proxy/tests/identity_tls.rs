//! Mutual TLS with SPIFFE identities (issue 19), on loopback with real TLS: certificates made
//! here with rcgen (a root, an intermediate, leaves with one URI SAN each, one of another trust
//! domain, an expired one, one with two URI SANs), written to Istio's file names, served by
//! `IdentityAcceptor` in front of an axum app that echoes the peer identity it finds in the
//! request's `ConnectionInfo`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::authn::MtlsMode;
use mesh_core::authz::TrustDomainBundle;
use mesh_core::spiffe::SpiffeId;
use mesh_proxy::identity::certs::{CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE};
use mesh_proxy::identity::verify::SpiffeServerVerifier;
use mesh_proxy::identity::{
    CertError, CertFiles, CertSource, IdentityAcceptor, IdentityError, OutboundProtocol, ReloadOutcome, connect, serve,
};
use mesh_tower::inbound::ConnectionInfo;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Certificates

/// A root, an intermediate under it, and leaves signed by the intermediate.
struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf's files' contents.
struct Leaf {
    chain: String,
    key: String,
    root: String,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

impl Pki {
    fn new(name: &str) -> Pki {
        let root = CertifiedIssuer::self_signed(ca_params(name), KeyPair::generate().expect("key")).expect("root");
        let intermediate = CertifiedIssuer::signed_by(
            ca_params(&format!("{name} intermediate")),
            KeyPair::generate().expect("key"),
            &root,
        )
        .expect("intermediate");
        Pki { root, intermediate }
    }

    /// A leaf with these URI SANs, valid now unless `expired`.
    fn leaf_with(&self, uris: &[&str], expired: bool) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = uris.iter().map(|u| SanType::URI(Ia5String::try_from(*u).expect("ia5"))).collect();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.intermediate).expect("leaf");
        Leaf {
            chain: format!("{}{}", cert.pem(), self.intermediate.pem()),
            key: key.serialize_pem(),
            root: self.root.pem(),
        }
    }

    fn leaf(&self, uri: &str) -> Leaf {
        self.leaf_with(&[uri], false)
    }
}

/// A fresh directory for one workload's files.
fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-identity-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// Writes a leaf as Istio's three files.
fn write(dir: &Path, leaf: &Leaf) {
    std::fs::write(dir.join(CERT_CHAIN_FILE), &leaf.chain).expect("write");
    std::fs::write(dir.join(KEY_FILE), &leaf.key).expect("write");
    std::fs::write(dir.join(ROOT_CERT_FILE), &leaf.root).expect("write");
}

/// A certificate source for a workload with this leaf.
fn source(name: &str, leaf: &Leaf) -> CertSource {
    let dir = dir(name);
    write(&dir, leaf);
    CertSource::load(CertFiles::in_dir(&dir)).expect("load")
}

fn id(s: &str) -> SpiffeId {
    s.parse().expect("spiffe id")
}

const SERVER: &str = "spiffe://cluster.local/ns/default/sa/server";
const CLIENT: &str = "spiffe://cluster.local/ns/default/sa/client";

// ---------------------------------------------------------------------------------------------
// Servers and clients

/// The app behind the acceptor: echoes the peer identity from `ConnectionInfo`.
fn app() -> Router {
    Router::new().route(
        "/",
        get(|Extension(info): Extension<ConnectionInfo>| async move {
            format!("peer={}", info.peer.map_or("none".to_string(), |p| p.to_string()))
        }),
    )
}

/// What the acceptor made of each connection: its info and ALPN, or why it was refused.
type Results = mpsc::UnboundedReceiver<Result<(ConnectionInfo, Option<Vec<u8>>), String>>;

type ModeFn = Arc<dyn Fn(u16) -> MtlsMode + Send + Sync>;

/// A server on 127.0.0.1:0 accepting with `acceptor` under `mode(port)`, serving [`app`].
async fn start(acceptor: Arc<IdentityAcceptor>, mode: ModeFn) -> (SocketAddr, Results) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, mode, tx) = (acceptor.clone(), mode.clone(), tx.clone());
            tokio::spawn(async move {
                let port = tcp.local_addr().expect("addr").port();
                match acceptor.accept(tcp, mode(port)).await {
                    Ok(accepted) => {
                        let _ = tx.send(Ok((accepted.info.clone(), accepted.alpn.clone())));
                        let _ = serve::serve_connection(accepted, app()).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn fixed(mode: MtlsMode) -> ModeFn {
    Arc::new(move |_| mode)
}

async fn next(results: &mut Results) -> Result<(ConnectionInfo, Option<Vec<u8>>), String> {
    tokio::time::timeout(WAIT, results.recv()).await.expect("the acceptor answers in time").expect("server running")
}

/// An HTTP/1.1 client connection (kept alive for several requests).
struct Http1 {
    send: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl Http1 {
    async fn over<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO) -> Result<Http1, BoxError> {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(conn);
        Ok(Http1 { send })
    }

    async fn get(&mut self) -> Result<String, BoxError> {
        let request = http::Request::get("/").header("host", "server").body(Empty::new())?;
        let response = tokio::time::timeout(WAIT, self.send.send_request(request)).await??;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// One HTTP/1.1 GET over `io`.
async fn get1<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO) -> Result<String, BoxError> {
    Http1::over(io).await?.get().await
}

/// One HTTP/2 GET over `io`.
async fn get2<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: IO) -> Result<String, BoxError> {
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let request = http::Request::get("http://server/").body(Empty::<Bytes>::new())?;
    let response = tokio::time::timeout(WAIT, send.send_request(request)).await??;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn sni() -> ServerName<'static> {
    ServerName::try_from(mesh_proxy::identity::istio_sni("server.default.svc.cluster.local", 8000, None)).expect("sni")
}

/// Mutual TLS from `certs` to `addr`, expecting `expected`.
async fn mtls(
    addr: SocketAddr,
    certs: &CertSource,
    expected: &[SpiffeId],
    bundle: &TrustDomainBundle,
    protocol: OutboundProtocol,
) -> Result<mesh_proxy::identity::Connected<TcpStream>, mesh_proxy::identity::ConnectError> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio::time::timeout(WAIT, connect(tcp, certs, expected, bundle, protocol, sni())).await.expect("handshake in time")
}

/// TLS without a client certificate, trusting the server's root.
async fn tls_without_client_cert(
    addr: SocketAddr,
    certs: &CertSource,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = mesh_proxy::tls::provider();
    let verifier = SpiffeServerVerifier::new(
        certs.current().roots().clone(),
        Vec::new(),
        TrustDomainBundle::default(),
        provider.clone(),
    );
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(sni(), tcp).await
}

fn acceptor(certs: CertSource, bundle: TrustDomainBundle) -> Arc<IdentityAcceptor> {
    Arc::new(IdentityAcceptor::new(certs, bundle))
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn strict_accepts_a_mesh_client_and_refuses_plaintext_and_certificate_less_tls() {
    let pki = Pki::new("strict");
    let server = source("strict-server", &pki.leaf(SERVER));
    let client = source("strict-client", &pki.leaf(CLIENT));
    let bundle = TrustDomainBundle::default();
    let (addr, mut results) = start(acceptor(server, bundle.clone()), fixed(MtlsMode::Strict)).await;

    // HTTP/1.1: the client offers istio-http/1.1, istio, http/1.1; the server picks http/1.1.
    let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await.expect("mTLS");
    assert_eq!(conn.peer, id(SERVER));
    assert_eq!(conn.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(get1(conn.stream).await.expect("GET"), format!("peer={CLIENT}"));
    let (info, alpn) = next(&mut results).await.expect("accepted");
    assert_eq!(info.peer, Some(id(CLIENT)));
    assert_eq!(info.sni.as_deref(), Some("outbound_.8000_._.server.default.svc.cluster.local"));
    assert_eq!(info.destination, Some(addr));
    assert!(info.source.is_some_and(|s| s.ip().is_loopback()));
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));

    // HTTP/2: istio-h2, istio, h2 -> h2, served as HTTP/2.
    let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http2).await.expect("mTLS");
    assert_eq!(conn.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(get2(conn.stream).await.expect("GET over h2"), format!("peer={CLIENT}"));
    next(&mut results).await.expect("accepted");

    // Opaque TCP: `istio` only; no HTTP version implied, hyper detects it.
    let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Tcp).await.expect("mTLS");
    assert_eq!(conn.alpn.as_deref(), Some(&b"istio"[..]));
    assert_eq!(get1(conn.stream).await.expect("GET"), format!("peer={CLIENT}"));
    next(&mut results).await.expect("accepted");

    // Plaintext on a STRICT port: refused.
    let plain = get1(TcpStream::connect(addr).await.expect("connect")).await;
    assert!(plain.is_err(), "plaintext answered on STRICT: {plain:?}");
    let refused = next(&mut results).await.expect_err("plaintext refused");
    assert!(refused.contains("handshake"), "{refused}");

    // TLS without a client certificate: refused.
    let no_cert = match tls_without_client_cert(addr, &client).await {
        Ok(stream) => get1(stream).await.map(|_| ()),
        Err(e) => Err(e.into()),
    };
    assert!(no_cert.is_err(), "certificate-less TLS answered on STRICT");
    let refused = next(&mut results).await.expect_err("no client certificate refused");
    assert!(refused.contains("certificate"), "{refused}");
}

#[tokio::test]
async fn permissive_serves_mutual_tls_and_plaintext_on_one_port() {
    let pki = Pki::new("permissive");
    let server = source("permissive-server", &pki.leaf(SERVER));
    let client = source("permissive-client", &pki.leaf(CLIENT));
    let bundle = TrustDomainBundle::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor =
        Arc::new(IdentityAcceptor::new(server.clone(), bundle.clone()).with_peek_timeout(Duration::from_millis(200)));
    // The library's accept loop, a hyper server and the axum app.
    tokio::spawn(serve::serve(listener, acceptor.clone(), |_| MtlsMode::Permissive, app()));

    let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await.expect("mTLS");
    assert_eq!(get1(conn.stream).await.expect("GET over mTLS"), format!("peer={CLIENT}"));
    let plain = get1(TcpStream::connect(addr).await.expect("connect")).await.expect("plaintext GET");
    assert_eq!(plain, "peer=none");
    let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http2).await.expect("mTLS");
    assert_eq!(get2(conn.stream).await.expect("GET over mTLS h2"), format!("peer={CLIENT}"));
    let plain = get2(TcpStream::connect(addr).await.expect("connect")).await.expect("plaintext h2c GET");
    assert_eq!(plain, "peer=none");

    // TLS on a PERMISSIVE port is mutual TLS: no client certificate, no service.
    let no_cert = match tls_without_client_cert(addr, &client).await {
        Ok(stream) => get1(stream).await.map(|_| ()),
        Err(e) => Err(e.into()),
    };
    assert!(no_cert.is_err(), "certificate-less TLS answered on PERMISSIVE");

    // The peek is bounded: a client that sends nothing is served as plaintext after the timeout;
    // one that closes at once is dropped.
    let (addr, mut results) = start(acceptor, fixed(MtlsMode::Permissive)).await;
    let silent = TcpStream::connect(addr).await.expect("connect");
    let (info, alpn) = next(&mut results).await.expect("served as plaintext");
    assert!(info.peer.is_none() && alpn.is_none());
    drop(silent);
    drop(TcpStream::connect(addr).await.expect("connect"));
    let closed = next(&mut results).await.expect_err("closed before its first byte");
    assert!(closed.contains("closed before"), "{closed}");
}

#[tokio::test]
async fn disable_is_plaintext_only_and_the_mode_is_read_per_connection() {
    let pki = Pki::new("disable");
    let server = source("disable-server", &pki.leaf(SERVER));
    let client = source("disable-client", &pki.leaf(CLIENT));
    let bundle = TrustDomainBundle::default();
    let mode = Arc::new(AtomicU8::new(0));
    let read = mode.clone();
    let mode_fn: ModeFn = Arc::new(move |_| match read.load(Ordering::SeqCst) {
        0 => MtlsMode::Disable,
        _ => MtlsMode::Strict,
    });
    let (addr, mut results) = start(acceptor(server, bundle.clone()), mode_fn).await;

    assert_eq!(get1(TcpStream::connect(addr).await.expect("connect")).await.expect("plaintext"), "peer=none");
    next(&mut results).await.expect("plaintext accepted");
    let tls = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await;
    assert!(tls.is_err(), "TLS handshake answered on a DISABLE port");

    // A reload makes the port STRICT: the next connection is accepted under the new mode.
    mode.store(1, Ordering::SeqCst);
    let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await.expect("mTLS now");
    assert_eq!(get1(conn.stream).await.expect("GET"), format!("peer={CLIENT}"));
    assert!(get1(TcpStream::connect(addr).await.expect("connect")).await.is_err(), "plaintext after STRICT");
}

#[tokio::test]
async fn secure_naming_refuses_an_unexpected_server_and_honours_trust_domain_aliases() {
    let pki = Pki::new("naming");
    let server_id = "spiffe://td-new/ns/default/sa/server";
    let server = source("naming-server", &pki.leaf(server_id));
    let client = source("naming-client", &pki.leaf("spiffe://td-old/ns/default/sa/client"));
    // The mesh migrated from td-old to td-new; both sides keep td-old as an alias.
    let bundle = TrustDomainBundle::new("td-new", ["td-old"]);
    let (addr, mut results) = start(acceptor(server, bundle.clone()), fixed(MtlsMode::Strict)).await;

    // Expected under the old domain, served under the new: the same workload.
    let conn = mtls(addr, &client, &[id("spiffe://td-old/ns/default/sa/server")], &bundle, OutboundProtocol::Http11)
        .await
        .expect("alias honoured");
    assert_eq!(conn.peer, id(server_id));
    assert_eq!(get1(conn.stream).await.expect("GET"), "peer=spiffe://td-old/ns/default/sa/client");
    next(&mut results).await.expect("the client's alias domain is accepted");

    // Another service account: refused by the client before any request.
    let err = mtls(addr, &client, &[id("spiffe://td-new/ns/default/sa/other")], &bundle, OutboundProtocol::Http11)
        .await
        .expect_err("unexpected server refused");
    assert!(err.to_string().contains("not an expected identity"), "{err}");

    // Without the alias, td-old is another mesh: refused.
    let no_alias = TrustDomainBundle::new("td-old", std::iter::empty::<&str>());
    let err = mtls(addr, &client, &[id("spiffe://td-old/ns/default/sa/server")], &no_alias, OutboundProtocol::Http11)
        .await
        .expect_err("no alias, no match");
    assert!(err.to_string().contains("not an expected identity"), "{err}");

    // One of several expected identities is enough.
    let expected = [id("spiffe://td-new/ns/default/sa/other"), id(server_id)];
    mtls(addr, &client, &expected, &bundle, OutboundProtocol::Http11).await.expect("one of the expected");
}

#[tokio::test]
async fn foreign_trust_domains_other_roots_expired_leaves_and_two_uri_sans_are_refused() {
    let pki = Pki::new("refusals");
    let server = source("refusals-server", &pki.leaf(SERVER));
    let bundle = TrustDomainBundle::default();
    let (addr, mut results) = start(acceptor(server.clone(), bundle.clone()), fixed(MtlsMode::Strict)).await;

    // Its chain ends in another root; its root file holds that root (so it loads) and the
    // server's (so it trusts the server). The server trusts only its own.
    let other = Pki::new("other");
    let mut other_root = other.leaf(CLIENT);
    other_root.root = format!("{}{}", pki.root.pem(), other.root.pem());
    let cases: [(&str, Leaf, &str); 3] = [
        // Same root, another trust domain.
        ("foreign", pki.leaf("spiffe://foreign.example/ns/default/sa/client"), "trust domain"),
        ("other-root", other_root, "UnknownIssuer"),
        // Expired (the client's own files still load, with a warning).
        ("expired", pki.leaf_with(&[CLIENT], true), "xpired"),
    ];
    for (name, leaf, reason) in cases {
        let client = source(&format!("refusals-{name}"), &leaf);
        let outcome = match mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await {
            Ok(conn) => get1(conn.stream).await.map(|_| ()),
            Err(e) => Err(e.into()),
        };
        assert!(outcome.is_err(), "{name}: served");
        let refused = next(&mut results).await.expect_err("refused by the server");
        assert!(refused.contains(reason), "{name}: {refused}");
    }

    // A server with an expired leaf is refused by the client.
    let expired_server = source("refusals-expired-server", &pki.leaf_with(&[SERVER], true));
    let (addr2, _results) = start(acceptor(expired_server, bundle.clone()), fixed(MtlsMode::Strict)).await;
    let client = source("refusals-client", &pki.leaf(CLIENT));
    let err = mtls(addr2, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await.expect_err("expired");
    assert!(err.to_string().contains("xpired"), "{err}");

    // Two URI SANs: not a workload certificate, refused when loaded...
    let two = pki.leaf_with(&[CLIENT, "spiffe://cluster.local/ns/default/sa/admin"], false);
    let dir = dir("refusals-two");
    write(&dir, &two);
    let err = CertSource::load(CertFiles::in_dir(&dir)).expect_err("two URI SANs");
    assert!(matches!(err, CertError::Identity { source: IdentityError::UriSanCount(2), .. }), "{err}");
    // ...and when presented by a client (made here without the loader's checks).
    let (addr3, mut results3) = start(acceptor(server, bundle), fixed(MtlsMode::Strict)).await;
    let stream = raw_client(addr3, &two, &pki, &[]).await;
    assert!(match stream {
        Ok(s) => get1(s).await.is_err(),
        Err(_) => true,
    });
    let refused = next(&mut results3).await.expect_err("two URI SANs refused");
    assert!(refused.contains("2 URI SANs"), "{refused}");
}

/// A TLS client presenting `leaf` as is (no identity checks on our side).
async fn raw_client(
    addr: SocketAddr,
    leaf: &Leaf,
    pki: &Pki,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let provider = mesh_proxy::tls::provider();
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(leaf.chain.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root.der().clone()).expect("root");
    let verifier =
        SpiffeServerVerifier::new(Arc::new(roots), Vec::new(), TrustDomainBundle::default(), provider.clone());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .expect("client cert");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(sni(), tcp).await
}

#[tokio::test]
async fn the_server_accepts_istio_alpn_and_says_which_http_version() {
    let pki = Pki::new("alpn");
    let server = source("alpn-server", &pki.leaf(SERVER));
    let client = pki.leaf(CLIENT);
    let (addr, mut results) = start(acceptor(server, TrustDomainBundle::default()), fixed(MtlsMode::Strict)).await;
    // (offered by the client, chosen by the server, HTTP/2?)
    type Case = (&'static [&'static [u8]], &'static [u8], bool);
    let cases: [Case; 6] = [
        (&[b"istio-http/1.0"], b"istio-http/1.0", false),
        (&[b"istio-http/1.1"], b"istio-http/1.1", false),
        (&[b"istio-h2"], b"istio-h2", true),
        // An Envoy sidecar's TCP cluster (ALPNInMeshWithMxc): `istio`, never the exchange.
        (&[b"istio-peer-exchange", b"istio"], b"istio", false),
        (&[b"istio-peer-exchange"], b"istio-peer-exchange", false),
        // ALPNInMeshH2WithMxc: h2.
        (&[b"istio-peer-exchange", b"istio", b"h2"], b"h2", true),
    ];
    for (offered, chosen, http2) in cases {
        let stream = raw_client(addr, &client, &pki, offered).await.expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(chosen));
        let body = if http2 { get2(stream).await } else { get1(stream).await };
        assert_eq!(body.expect("GET"), format!("peer={CLIENT}"), "{:?}", String::from_utf8_lossy(chosen));
        let (_, alpn) = next(&mut results).await.expect("accepted");
        assert_eq!(alpn.as_deref(), Some(chosen));
        let version = mesh_proxy::identity::HttpVersion::from_alpn(chosen);
        let expected = match chosen {
            b"istio" | b"istio-peer-exchange" => None,
            _ if http2 => Some(mesh_proxy::identity::HttpVersion::Http2),
            _ => Some(mesh_proxy::identity::HttpVersion::Http1),
        };
        assert_eq!(version, expected);
    }
    // No protocol in common: refused.
    let refused = match raw_client(addr, &client, &pki, &[b"spdy/3"]).await {
        Ok(stream) => get1(stream).await.map(|_| ()),
        Err(e) => Err(e.into()),
    };
    assert!(refused.is_err());
    let refused = next(&mut results).await.expect_err("no common ALPN");
    assert!(refused.contains("handshake"), "{refused}");
}

/// A bare rustls server presenting `leaf` as is (no identity checks), for one connection.
async fn raw_server(leaf: &Leaf) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(leaf.chain.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(mesh_proxy::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            let _ = tokio_rustls::TlsAcceptor::from(Arc::new(config)).accept(tcp).await;
        }
    });
    addr
}

#[tokio::test]
async fn the_client_refuses_a_server_leaf_without_exactly_one_uri_san() {
    let pki = Pki::new("server-sans");
    let client = source("server-sans-client", &pki.leaf(CLIENT));
    let bundle = TrustDomainBundle::default();
    let two = pki.leaf_with(&[SERVER, "spiffe://cluster.local/ns/default/sa/admin"], false);
    let none = pki.leaf_with(&[], false);
    for (name, leaf, reason) in [("two", two, "2 URI SANs"), ("none", none, "0 URI SANs")] {
        let addr = raw_server(&leaf).await;
        // Refused even with no expected identity (any identity the root vouches for).
        let err = mtls(addr, &client, &[], &bundle, OutboundProtocol::Http11).await.expect_err(name);
        assert!(err.to_string().contains(reason), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_rotated_certificate_is_used_for_new_connections_while_old_ones_continue() {
    let pki = Pki::new("rotation");
    let server_dir = dir("rotation-server");
    write(&server_dir, &pki.leaf(SERVER));
    let server = CertSource::load(CertFiles::in_dir(&server_dir)).expect("load");
    let client_dir = dir("rotation-client");
    write(&client_dir, &pki.leaf(CLIENT));
    let client = CertSource::load(CertFiles::in_dir(&client_dir)).expect("load");
    let bundle = TrustDomainBundle::default();
    let (addr, mut results) = start(acceptor(server.clone(), bundle.clone()), fixed(MtlsMode::Strict)).await;
    let server_v2 = "spiffe://cluster.local/ns/default/sa/server-v2";
    let client_v2 = "spiffe://cluster.local/ns/default/sa/client-v2";
    let expected = [id(SERVER), id(server_v2)];

    let old = mtls(addr, &client, &expected, &bundle, OutboundProtocol::Http11).await.expect("mTLS");
    assert_eq!(old.peer, id(SERVER));
    let mut old_conn = Http1::over(old.stream).await.expect("h1");
    assert_eq!(old_conn.get().await.expect("GET"), format!("peer={CLIENT}"));
    next(&mut results).await.expect("accepted");

    // Both sides rotate on disk; nothing changes until the files are read again.
    write(&server_dir, &pki.leaf(server_v2));
    write(&client_dir, &pki.leaf(client_v2));
    assert_eq!(server.identity(), id(SERVER));
    assert_eq!(server.reload_now(), ReloadOutcome::Reloaded(id(server_v2)));
    assert_eq!(client.reload_now(), ReloadOutcome::Reloaded(id(client_v2)));
    assert_eq!(server.reload_now(), ReloadOutcome::Unchanged);
    assert_eq!(server.identity(), id(server_v2));

    let new = mtls(addr, &client, &expected, &bundle, OutboundProtocol::Http11).await.expect("mTLS");
    assert_eq!(new.peer, id(server_v2), "a new connection gets the new server certificate");
    assert_eq!(get1(new.stream).await.expect("GET"), format!("peer={client_v2}"));
    // The old connection continues, with the identities it was made with.
    assert_eq!(old_conn.get().await.expect("GET on the old connection"), format!("peer={CLIENT}"));
}

/// Captures formatted log output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

#[tokio::test]
async fn corrupt_or_mismatched_files_are_refused_and_reported_and_the_last_good_is_kept() {
    let pki = Pki::new("corrupt");
    let server_dir = dir("corrupt-server");
    let good = pki.leaf(SERVER);
    write(&server_dir, &good);
    let server = CertSource::load(CertFiles::in_dir(&server_dir)).expect("load");
    let client = source("corrupt-client", &pki.leaf(CLIENT));
    let bundle = TrustDomainBundle::default();
    let (addr, _results) = start(acceptor(server.clone(), bundle.clone()), fixed(MtlsMode::Strict)).await;
    let new_id = "spiffe://cluster.local/ns/default/sa/server-v2";
    let other = pki.leaf(new_id);

    let logs = Logs::default();
    // (what, how the files are broken, the error expected)
    type Case<'a> = (&'a str, &'a dyn Fn(), fn(&CertError) -> bool);
    let cases: [Case<'_>; 4] = [
        (
            "corrupt PEM",
            &|| {
                std::fs::write(
                    server_dir.join(CERT_CHAIN_FILE),
                    "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                )
                .expect("write")
            },
            |e| matches!(e, CertError::Pem { .. }),
        ),
        (
            "key of another leaf",
            &|| {
                std::fs::write(server_dir.join(CERT_CHAIN_FILE), &good.chain).expect("write");
                std::fs::write(server_dir.join(KEY_FILE), &other.key).expect("write");
            },
            |e| matches!(e, CertError::KeyMismatch { .. }),
        ),
        (
            "leaf of another root",
            &|| write(&server_dir, &Leaf { root: good.root.clone(), ..Pki::new("stranger").leaf(new_id) }),
            |e| matches!(e, CertError::Chain { .. }),
        ),
        (
            "missing key",
            &|| {
                write(&server_dir, &good);
                std::fs::remove_file(server_dir.join(KEY_FILE)).expect("remove");
            },
            |e| matches!(e, CertError::Read { .. }),
        ),
    ];
    for (name, break_files, expected) in cases {
        break_files();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            match server.reload_now() {
                ReloadOutcome::Rejected(e) => assert!(expected(&e), "{name}: {e}"),
                other => panic!("{name}: {other:?}"),
            }
            // Reported once per bad version.
            assert_eq!(server.reload_now(), ReloadOutcome::Unchanged, "{name}");
        });
        let error = server.last_error().expect("reported");
        assert!(expected(&error), "{name}: {error}");
        assert_eq!(server.identity(), id(SERVER), "{name}: the last good version is kept");
        // The last good certificate still serves new connections.
        let conn = mtls(addr, &client, &[id(SERVER)], &bundle, OutboundProtocol::Http11).await.expect(name);
        assert_eq!(conn.peer, id(SERVER), "{name}");
    }
    let text = logs.text();
    assert_eq!(text.matches("workload certificate files refused").count(), 4, "{text}");
    assert!(text.contains("private key does not match"), "{text}");

    // Good files again: accepted, the error cleared.
    write(&server_dir, &other);
    assert_eq!(server.reload_now(), ReloadOutcome::Reloaded(id(new_id)));
    assert_eq!(server.last_error(), None);
    let conn = mtls(addr, &client, &[id(new_id)], &bundle, OutboundProtocol::Http11).await.expect("rotated");
    assert_eq!(conn.peer, id(new_id));
}

#[tokio::test]
async fn watch_polls_the_files_on_its_interval() {
    let pki = Pki::new("watch");
    let dir = dir("watch");
    write(&dir, &pki.leaf(SERVER));
    let certs = CertSource::load(CertFiles::in_dir(&dir)).expect("load");
    let task = tokio::spawn(certs.clone().watch(Duration::from_millis(10)));
    let v2 = "spiffe://cluster.local/ns/default/sa/server-v2";
    write(&dir, &pki.leaf(v2));
    tokio::time::timeout(WAIT, async {
        while certs.identity() != id(v2) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the watcher reloads the rotated files");
    task.abort();
}

#[test]
fn istio_file_names() {
    let files = CertFiles::etc_certs();
    assert_eq!(files.cert_chain, Path::new("/etc/certs/cert-chain.pem"));
    assert_eq!(files.key, Path::new("/etc/certs/key.pem"));
    assert_eq!(files.root_cert, Path::new("/etc/certs/root-cert.pem"));
    let files = CertFiles::workload_spiffe_credentials();
    assert_eq!(files.cert_chain, Path::new("/var/run/secrets/workload-spiffe-credentials/cert-chain.pem"));
}
