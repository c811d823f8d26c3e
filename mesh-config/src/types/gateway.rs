//! `Gateway`: <https://istio.io/latest/docs/reference/config/networking/gateway/>.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `spec` of a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Gateway {
    /// Listeners.
    pub servers: Vec<Server>,
    /// Labels of the gateway workloads this applies to.
    pub selector: BTreeMap<String, String>,
}

/// `servers[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Server {
    /// Port and protocol.
    pub port: Option<ServerPort>,
    /// Address to bind to.
    pub bind: Option<String>,
    /// Hosts exposed, optionally `namespace/host`.
    pub hosts: Vec<String>,
    /// TLS settings.
    pub tls: Option<ServerTlsSettings>,
    /// Default endpoint (sidecar ingress only).
    pub default_endpoint: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// `servers[].port`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerPort {
    /// Port number.
    pub number: u32,
    /// `HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `TLS`, `TCP`, ...
    pub protocol: String,
    /// Port name.
    pub name: String,
    /// Target port (deprecated).
    pub target_port: Option<u32>,
}

/// `servers[].tls`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTlsSettings {
    /// Redirect plain HTTP to HTTPS.
    pub https_redirect: Option<bool>,
    /// TLS mode.
    pub mode: Option<ServerTlsMode>,
    /// Server certificate file.
    pub server_certificate: Option<String>,
    /// Private key file.
    pub private_key: Option<String>,
    /// CA bundle for client certificates.
    pub ca_certificates: Option<String>,
    /// CRL file.
    pub ca_crl: Option<String>,
    /// Secret name.
    pub credential_name: Option<String>,
    /// Several secret names.
    pub credential_names: Vec<String>,
    /// Inline certificate pairs.
    pub tls_certificates: Vec<TlsCertificate>,
    /// Accepted client SANs.
    pub subject_alt_names: Vec<String>,
    /// Accepted client SPKI hashes.
    pub verify_certificate_spki: Vec<String>,
    /// Accepted client certificate hashes.
    pub verify_certificate_hash: Vec<String>,
    /// Minimum TLS version.
    pub min_protocol_version: Option<TlsProtocol>,
    /// Maximum TLS version.
    pub max_protocol_version: Option<TlsProtocol>,
    /// Cipher suites.
    pub cipher_suites: Vec<String>,
    /// Secret name of the client CA.
    pub ca_cert_credential_name: Option<String>,
    /// Skip client certificate verification.
    pub insecure_skip_verify: Option<bool>,
}

/// `tls.tlsCertificates[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsCertificate {
    /// Certificate file.
    pub server_certificate: Option<String>,
    /// Key file.
    pub private_key: Option<String>,
    /// CA file.
    pub ca_certificates: Option<String>,
}

/// Server TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum ServerTlsMode {
    /// Forward TLS untouched, routed by SNI.
    PASSTHROUGH,
    /// Terminate TLS.
    SIMPLE,
    /// Terminate TLS and require client certificates.
    MUTUAL,
    /// Passthrough with SNI-encoded destinations.
    AUTO_PASSTHROUGH,
    /// mTLS with mesh certificates.
    ISTIO_MUTUAL,
    /// Client certificates optional.
    OPTIONAL_MUTUAL,
}

/// TLS protocol versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum TlsProtocol {
    /// Automatic.
    TLS_AUTO,
    /// TLS 1.0.
    TLSV1_0,
    /// TLS 1.1.
    TLSV1_1,
    /// TLS 1.2.
    TLSV1_2,
    /// TLS 1.3.
    TLSV1_3,
}
