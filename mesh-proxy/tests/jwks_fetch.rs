//! `jwksUri` key sets fetched over HTTPS (issue 19): a loopback TLS server with an rcgen
//! certificate for `localhost`, trusted through the fetcher's roots; a server the roots do not
//! vouch for is refused; plain `http://` works too; an oversized document is refused.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_proxy::jwks::JwksHttpsFetcher;
use mesh_tower::inbound::jwks::{JwksFetcher, MAX_DOCUMENT};
use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair};

const JWKS: &str = r#"{"keys":[]}"#;

/// A server answering `body` on every path, over TLS when `tls` is given.
async fn server(tls: Option<Arc<rustls::ServerConfig>>, body: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tls, body) = (tls.clone(), body.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(config) => {
                        if let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                }
            });
        }
    });
    port
}

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca") }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("cert");
        let der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
        let config = rustls::ServerConfig::builder_with_provider(mesh_proxy::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .expect("config");
        Arc::new(config)
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).expect("root");
        roots
    }
}

#[tokio::test]
async fn fetches_over_https_and_http() {
    let ca = Ca::new();
    let port = server(Some(ca.server_config()), JWKS.to_string()).await;
    let fetcher = JwksHttpsFetcher::with_roots(ca.roots()).expect("fetcher");
    let document = fetcher.fetch(&format!("https://localhost:{port}/jwks")).await.expect("fetched");
    assert_eq!(document, JWKS);

    let stranger = JwksHttpsFetcher::with_roots(Ca::new().roots()).expect("fetcher");
    let refused = stranger.fetch(&format!("https://localhost:{port}/jwks")).await;
    assert!(refused.is_err(), "a server the roots do not vouch for");

    let plain = server(None, JWKS.to_string()).await;
    assert_eq!(fetcher.fetch(&format!("http://127.0.0.1:{plain}/jwks")).await.expect("fetched"), JWKS);
    assert!(fetcher.fetch("ftp://127.0.0.1/jwks").await.is_err());

    let huge = server(None, "x".repeat(MAX_DOCUMENT + 1)).await;
    assert!(fetcher.fetch(&format!("http://127.0.0.1:{huge}/jwks")).await.is_err(), "oversized document refused");
}
