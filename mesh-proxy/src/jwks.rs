//! Fetching RequestAuthentication key sets (`jwksUri`) over `https://` as well as `http://`,
//! for the inbound layer ([`mesh_tower::inbound::jwks`]): the server's certificate is verified
//! against the system's roots (or the roots given), as istiod verifies the JWKS servers it
//! fetches from. Bodies over [`mesh_tower::inbound::jwks::MAX_DOCUMENT`] are refused; one
//! connection per fetch (fetches are rare: once, then every 20 minutes).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use mesh_tower::BoxError;
use mesh_tower::inbound::jwks::{FetchFuture, JwksFetcher, MAX_DOCUMENT};
use rustls::RootCertStore;
use rustls_pki_types::ServerName;

/// How long connecting, the TLS handshake and the whole exchange may take (the rule's own
/// `timeout` bounds the first fetch as well).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches key sets over HTTP and HTTPS.
#[derive(Debug, Clone)]
pub struct JwksHttpsFetcher {
    tls: Arc<rustls::ClientConfig>,
}

impl JwksHttpsFetcher {
    /// A fetcher trusting the system's CA certificates.
    pub fn new() -> Result<JwksHttpsFetcher, rustls::Error> {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(target: "meshwork::inbound", added, ignored, "system CA certificates for JWKS fetches");
        JwksHttpsFetcher::with_roots(roots)
    }

    /// A fetcher trusting `roots` only.
    pub fn with_roots(roots: RootCertStore) -> Result<JwksHttpsFetcher, rustls::Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(JwksHttpsFetcher { tls: Arc::new(config) })
    }
}

async fn fetch(tls: Arc<rustls::ClientConfig>, uri: String) -> Result<String, BoxError> {
    let parsed: http::Uri = uri.parse()?;
    let https = match parsed.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{uri}: not an http:// or https:// URI").into()),
    };
    let host = parsed.host().ok_or_else(|| format!("{uri}: no host"))?.to_string();
    let port = parsed.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
    let request = http::Request::get(parsed.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, parsed.authority().map_or(host.as_str(), |a| a.as_str()))
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())?;
    let response = if https {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        send.send_request(request).await?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        send.send_request(request).await?
    };
    if !response.status().is_success() {
        return Err(format!("{uri}: status {}", response.status()).into());
    }
    let body = Limited::new(response.into_body(), MAX_DOCUMENT).collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}

impl JwksFetcher for JwksHttpsFetcher {
    fn fetch(&self, uri: &str) -> FetchFuture {
        let (tls, uri) = (self.tls.clone(), uri.to_string());
        Box::pin(async move {
            tokio::time::timeout(FETCH_TIMEOUT, fetch(tls, uri.clone()))
                .await
                .unwrap_or_else(|_| Err(format!("{uri}: no answer within {FETCH_TIMEOUT:?}").into()))
        })
    }
}
