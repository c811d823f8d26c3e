//! TLS from Istio's settings, with rustls and its `ring` provider.
//!
//! - [`server_config`]: a Gateway server's `tls` (`SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL`) from
//!   certificate files, offering `h2` and `http/1.1` by ALPN.
//! - [`client_config`]: a DestinationRule's `tls` (`SIMPLE`, `MUTUAL`) towards upstream endpoints.
//!   The server's certificate is verified against `caCertificates`, else the system's roots
//!   (Istio verifies at the client by default, `VERIFY_CERTIFICATE_AT_CLIENT`; `istioctl analyze`
//!   flags a SIMPLE rule without `caCertificates` as IST0128); the name checked is one of
//!   `subjectAltNames` when given, else the SNI. `insecureSkipVerify` turns verification off.
//!
//! The provider is passed to every config ([`provider`]); nothing here installs a process-wide
//! default.

use std::path::Path;
use std::sync::Arc;

use mesh_core::policy::{ClientTls, TlsMode};
use mesh_core::service::ServerTls;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or holds no PEM of the expected kind.
    #[error("{path}: {what}: {message}")]
    File {
        /// The file.
        path: String,
        /// What it should hold (`certificate`, `private key`, `CA certificates`).
        what: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A setting the configuration needs is missing or not supported here.
    #[error("{0}")]
    Setting(String),
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("{context}: {source}")]
    Rustls {
        /// What was being built.
        context: &'static str,
        /// rustls' reason.
        source: rustls::Error,
    },
}

/// The crypto provider every config uses (`ring`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &str, what: &'static str, message: impl ToString) -> TlsError {
    TlsError::File { path: path.to_string(), what, message: message.to_string() }
}

/// Every certificate in a PEM file.
pub fn load_certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| file_error(path, "certificate", e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(path, "certificate", e))?;
    if certs.is_empty() {
        return Err(file_error(path, "certificate", "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(Path::new(path)).map_err(|e| file_error(path, "private key", e))
}

/// The certificate chain and key of an inline credential (PEM in memory).
fn credential(
    c: &mesh_core::service::PemCredential,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&c.certificate_chain)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&c.source, "tls.crt", e))?;
    if chain.is_empty() {
        return Err(file_error(&c.source, "tls.crt", "no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&c.private_key).map_err(|e| file_error(&c.source, "tls.key", e))?;
    Ok((chain, key))
}

fn load_roots(path: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|e| file_error(path, "CA certificates", e))?;
    }
    Ok(roots)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(target: "meshwork::tls", error = %e, "reading the system's CA certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(target: "meshwork::tls", added, ignored, "system CA certificates");
    roots
}

/// The ALPN protocols offered and accepted: HTTP/2 first, then HTTP/1.1.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A rustls server config for a Gateway server's `tls`.
pub fn server_config(tls: &ServerTls) -> Result<ServerConfig, TlsError> {
    let mode = tls.mode.as_deref().unwrap_or("PASSTHROUGH");
    let (client_auth, optional) = match mode {
        "SIMPLE" => (false, false),
        "MUTUAL" => (true, false),
        "OPTIONAL_MUTUAL" => (true, true),
        other => {
            return Err(TlsError::Setting(format!(
                "tls.mode {other} is not served by meshwork (SIMPLE, MUTUAL and OPTIONAL_MUTUAL are)"
            )));
        }
    };
    let (chain, key) = match &tls.credential {
        // Inline (a Gateway API listener's Secret).
        Some(c) => credential(c)?,
        None => {
            let cert = tls
                .server_certificate
                .as_deref()
                .ok_or_else(|| TlsError::Setting(format!("tls.mode {mode} needs tls.serverCertificate")))?;
            let key = tls
                .private_key
                .as_deref()
                .ok_or_else(|| TlsError::Setting(format!("tls.mode {mode} needs tls.privateKey")))?;
            (load_certificates(cert)?, load_private_key(key)?)
        }
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls { context: "server TLS versions", source })?;
    let builder = if client_auth {
        let ca = tls
            .ca_certificates
            .as_deref()
            .ok_or_else(|| TlsError::Setting(format!("tls.mode {mode} needs tls.caCertificates")))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(ca)?), provider());
        let verifier = if optional { verifier.allow_unauthenticated() } else { verifier };
        let verifier = verifier.build().map_err(|e| TlsError::Setting(format!("tls.caCertificates: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Rustls { context: "server certificate and key", source })?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A rustls client config for a DestinationRule's `tls` (`SIMPLE` or `MUTUAL`).
pub fn client_config(tls: &ClientTls) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls { context: "client TLS versions", source })?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(NoVerification(provider))
    } else {
        let roots = match tls.ca_certificates.as_deref() {
            Some(ca) => load_roots(ca)?,
            None => system_roots(),
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Setting(format!("tls.caCertificates: {e}")))?;
        if tls.subject_alt_names.is_empty() {
            webpki
        } else {
            let names = tls
                .subject_alt_names
                .iter()
                .map(|n| ServerName::try_from(n.to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Setting(format!("tls.subjectAltNames: {e}")))?;
            Arc::new(SubjectAltNames { inner: webpki, names })
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match tls.mode {
        TlsMode::Mutual => {
            let cert = tls
                .client_certificate
                .as_deref()
                .ok_or_else(|| TlsError::Setting("tls.mode MUTUAL needs tls.clientCertificate".into()))?;
            let key = tls
                .private_key
                .as_deref()
                .ok_or_else(|| TlsError::Setting("tls.mode MUTUAL needs tls.privateKey".into()))?;
            builder
                .with_client_auth_cert(load_certificates(cert)?, load_private_key(key)?)
                .map_err(|source| TlsError::Rustls { context: "client certificate and key", source })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Accepts a server certificate valid for any of `names` (DestinationRule `subjectAltNames`)
/// instead of the SNI.
#[derive(Debug)]
struct SubjectAltNames {
    inner: Arc<WebPkiServerVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for SubjectAltNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut last = rustls::Error::General("no subjectAltNames".into());
        for name in &self.names {
            match self.inner.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
                Ok(ok) => return Ok(ok),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecureSkipVerify: true`: any certificate is accepted (signatures are still checked, so
/// the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Does a client certificate name one of `allowed` (a Gateway server's `subjectAltNames`)? An
/// empty list allows any certificate the CA vouches for. DNS names and IP addresses are checked
/// against the certificate's subject alternative names; a name of another kind (a SPIFFE URI)
/// cannot be checked here and matches nothing, so such a list refuses every certificate rather
/// than admitting one unchecked.
pub fn client_names_allowed(certificate: &CertificateDer<'_>, allowed: &[std::sync::Arc<str>]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(certificate) else { return false };
    allowed.iter().any(|name| {
        ServerName::try_from(name.as_ref()).is_ok_and(|name| rustls::client::verify_server_name(&parsed, &name).is_ok())
    })
}

/// The state of a TLS setting's files (size and modification time of each): it changes when a
/// file is replaced, so a config built from them is rebuilt for the next connection (certificates
/// rotated in place, as cert-manager or a Secret mount does).
pub type FilesState = Vec<Option<(u64, std::time::SystemTime)>>;

/// The [`FilesState`] of `paths` (missing paths and unreadable files are `None`).
pub fn files_state<'a>(paths: impl IntoIterator<Item = Option<&'a str>>) -> FilesState {
    paths
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(path?).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_host_patterns() {
        // Gateway listeners select servers with mesh-core's Istio host matching.
        use mesh_core::host::is_subset_of;
        assert!(is_subset_of("a.example.com", "*"));
        assert!(is_subset_of("bookinfo.example.com", "bookinfo.example.com"));
        assert!(is_subset_of("a.example.com", "*.example.com"));
        assert!(!is_subset_of("example.com", "*.example.com"));
        assert!(!is_subset_of("b.example.com", "a.example.com"));
        assert!(is_subset_of("x.y.example.com", "*.example.com"));
    }

    #[test]
    fn files_state_changes_when_a_file_is_replaced() {
        let dir = std::env::temp_dir().join(format!("meshwork-tls-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cert.pem");
        std::fs::write(&path, "one").expect("write");
        let p = path.to_str().expect("utf-8");
        let before = files_state([Some(p), None]);
        assert_eq!(before.len(), 2);
        assert!(before[0].is_some() && before[1].is_none());
        std::fs::write(&path, "longer contents").expect("write");
        assert_ne!(files_state([Some(p), None]), before);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_name_the_file() {
        let tls = ServerTls {
            https_redirect: false,
            mode: Some("SIMPLE".into()),
            server_certificate: Some("/nonexistent/cert.pem".into()),
            private_key: Some("/nonexistent/key.pem".into()),
            ca_certificates: None,
            subject_alt_names: Box::new([]),
            credential: None,
        };
        let err = server_config(&tls).expect_err("no such file");
        assert!(err.to_string().starts_with("/nonexistent/cert.pem: certificate:"), "{err}");
        let passthrough = ServerTls { mode: Some("PASSTHROUGH".into()), ..tls };
        assert!(server_config(&passthrough).expect_err("unsupported").to_string().contains("PASSTHROUGH"));
    }
}
