//! Shared by the mutual-TLS and JWT tests: an rcgen CA issuing workload certificates as Istio's
//! three files, ES256 keys minting JWTs, and a TCP echo application.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mesh_proxy::identity::certs::{CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE};
use rcgen::string::Ia5String;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};

/// A root CA issuing workload certificates.
pub struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki { root: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("root") }
    }

    /// Istio's three files for a leaf with the one URI SAN `uri`, in a fresh directory named
    /// after `name` (unique within one test binary).
    pub fn workload(&self, name: &str, uri: &str) -> PathBuf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).expect("ia5"))];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.root).expect("leaf");
        let dir = super::config_dir(&format!("certs-{name}"));
        std::fs::write(dir.join(CERT_CHAIN_FILE), cert.pem()).expect("write");
        std::fs::write(dir.join(KEY_FILE), key.serialize_pem()).expect("write");
        std::fs::write(dir.join(ROOT_CERT_FILE), self.root.pem()).expect("write");
        dir
    }
}

/// An ES256 key: its JWKS (public) and tokens signed with it.
pub struct JwtKey {
    encoding: jsonwebtoken::EncodingKey,
}

impl JwtKey {
    pub fn new() -> JwtKey {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        JwtKey { encoding: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem") }
    }

    pub fn jwks(&self) -> String {
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&self.encoding, jsonwebtoken::Algorithm::ES256).expect("jwk");
        serde_json::to_string(&jsonwebtoken::jwk::JwkSet { keys: vec![jwk] }).expect("json")
    }

    pub fn mint(&self, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &self.encoding)
            .expect("token")
    }
}

/// A TCP echo application on loopback.
pub async fn tcp_echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    address
}

/// Sends `hello` over a new connection to `addr`: what comes back before the connection ends.
pub async fn echo_through(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.write_all(b"hello").await;
    let mut buf = [0u8; 5];
    match tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut buf)).await.expect("in time") {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => String::new(),
    }
}
