//! The identity in a certificate, and the rustls verifiers that check it.
//!
//! An Istio workload certificate names its workload with exactly one URI SAN, a SPIFFE id
//! (istio/istio `pkg/spiffe/spiffe.go`; Envoy matches it as `principal_name` and Istio's
//! authorization reads `source.principal` from it). A leaf with no URI SAN, with two, or with
//! one that is not `spiffe://<td>/ns/<ns>/sa/<sa>` names nobody and is refused here, on both
//! sides. (ztunnel, `src/tls/workload.rs`, checks the same two things — `TrustDomainVerifier`
//! on the server, `IdentityVerifier` on the client — but accepts a leaf when any of its URI
//! SANs fits; meshwork refuses a leaf with two: a workload has one identity.)
//!
//! - Server side ([`SpiffeClientVerifier`]): rustls' webpki verifier checks the chain to
//!   `root-cert.pem` (signatures, validity period, key usage); then the identity's trust domain
//!   must be the mesh's `trustDomain` or one of its `trustDomainAliases`. Istio's inbound TLS
//!   context matches the peer's URI SAN against the prefixes `spiffe://<td>/` of exactly those
//!   domains unless `PILOT_SKIP_VALIDATE_TRUST_DOMAIN` is set (istio/istio
//!   `pilot/pkg/networking/plugin/authn/util.go`, `TrustDomainsForValidation`, applied in
//!   `pilot/pkg/security/authn/utils/utils.go`).
//! - Client side ([`SpiffeServerVerifier`]): the chain to the root, then Istio's *secure
//!   naming*: the server's identity must be one of the identities expected for the
//!   destination (the service's accounts; Envoy's `match_subject_alt_names`, built in
//!   `pilot/pkg/networking/core/cluster_tls.go` for `ISTIO_MUTUAL`). Istio expands the expected
//!   identities with every trust-domain alias (`pilot/pkg/model/push_context.go` calls
//!   `spiffe.ExpandWithTrustDomains(accounts, mesh.TrustDomainAliases)`), so an expected
//!   `spiffe://td-old/ns/x/sa/y` accepts a peer `spiffe://td-new/ns/x/sa/y` when both domains are
//!   in the bundle ([`secure_naming_match`]). The DNS name of the server is not checked: Istio
//!   sets the SNI to the cluster's name, and its certificates carry no DNS SAN. An empty list
//!   of expected identities accepts any identity the root vouches for, as Envoy does when a
//!   service has no accounts.

use std::sync::Arc;

use mesh_core::authz::TrustDomainBundle;
use mesh_core::spiffe::{SpiffeError, SpiffeId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// Why a certificate does not name an acceptable workload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate is not DER X.509 that can be read.
    #[error("certificate cannot be parsed: {0}")]
    Parse(String),
    /// The leaf carries no URI SAN, or more than one.
    #[error("certificate has {0} URI SANs; an Istio workload certificate has exactly one (its SPIFFE id)")]
    UriSanCount(usize),
    /// The one URI SAN is not an Istio SPIFFE id.
    #[error("certificate URI SAN: {0}")]
    NotSpiffe(#[from] SpiffeError),
    /// The identity's trust domain is neither the mesh's nor one of its aliases.
    #[error("peer {identity} is not in an accepted trust domain ({domains})")]
    UntrustedDomain {
        /// The peer's identity.
        identity: String,
        /// The accepted trust domains, comma-separated.
        domains: String,
    },
    /// Secure naming: the server is not one of the identities expected for the destination.
    #[error("server {identity} is not an expected identity ({expected})")]
    NotExpected {
        /// The server's identity.
        identity: String,
        /// The expected identities, comma-separated.
        expected: String,
    },
}

/// Every URI SAN of a certificate, in order.
pub fn uri_sans(cert: &CertificateDer<'_>) -> Result<Vec<String>, IdentityError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| IdentityError::Parse(e.to_string()))?;
    let san = parsed.subject_alternative_name().map_err(|e| IdentityError::Parse(e.to_string()))?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::URI(uri) => Some((*uri).to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The SPIFFE identity a leaf certificate names: its one URI SAN, parsed.
pub fn identity_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, IdentityError> {
    let sans = uri_sans(cert)?;
    match sans.as_slice() {
        [one] => Ok(one.parse()?),
        _ => Err(IdentityError::UriSanCount(sans.len())),
    }
}

/// Is `domain` the mesh's trust domain or one of its aliases?
fn trusted(bundle: &TrustDomainBundle, domain: &str) -> bool {
    bundle.domains().iter().any(|d| &**d == domain)
}

/// Istio's secure naming: does the server's identity `peer` satisfy the `expected` ones?
///
/// Equal identities match; so do identities with the same namespace and service account whose
/// trust domains are both in `bundle` (the trust domain and its aliases). An empty `expected`
/// accepts any peer.
///
/// ```
/// use mesh_core::authz::TrustDomainBundle;
/// use mesh_core::spiffe::SpiffeId;
/// use mesh_proxy::identity::secure_naming_match;
/// let bundle = TrustDomainBundle::new("td-new", ["td-old"]);
/// let expected = [SpiffeId::new("td-old", "x", "y")];
/// assert!(secure_naming_match(&SpiffeId::new("td-new", "x", "y"), &expected, &bundle));
/// assert!(!secure_naming_match(&SpiffeId::new("other", "x", "y"), &expected, &bundle));
/// assert!(!secure_naming_match(&SpiffeId::new("td-new", "x", "z"), &expected, &bundle));
/// ```
pub fn secure_naming_match(peer: &SpiffeId, expected: &[SpiffeId], bundle: &TrustDomainBundle) -> bool {
    expected.is_empty()
        || expected.iter().any(|e| {
            e == peer
                || (e.namespace == peer.namespace
                    && e.service_account == peer.service_account
                    && trusted(bundle, &e.trust_domain)
                    && trusted(bundle, &peer.trust_domain))
        })
}

fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// A verification failure as rustls carries it (the handshake fails with `bad_certificate`).
fn refuse(e: IdentityError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(Refusal(e)))))
}

/// rustls prints an `OtherError` with `Debug`: this one's `Debug` is the readable message.
struct Refusal(IdentityError);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The identity of a verified client, checked against the accepted trust domains.
pub(crate) fn client_identity(
    cert: &CertificateDer<'_>,
    bundle: &TrustDomainBundle,
) -> Result<SpiffeId, IdentityError> {
    let id = identity_of(cert)?;
    if !trusted(bundle, &id.trust_domain) {
        return Err(IdentityError::UntrustedDomain { identity: id.to_string(), domains: join(bundle.domains()) });
    }
    Ok(id)
}

/// Verifies a client certificate for an inbound mutual TLS listener: the chain to the root
/// (rustls' webpki verifier), then one SPIFFE id in an accepted trust domain. A client
/// certificate is mandatory.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    bundle: TrustDomainBundle,
}

impl SpiffeClientVerifier {
    /// A verifier trusting `roots`, accepting identities of `bundle`'s trust domains.
    pub fn new(
        roots: Arc<RootCertStore>,
        bundle: TrustDomainBundle,
        provider: Arc<CryptoProvider>,
    ) -> Result<SpiffeClientVerifier, rustls::server::VerifierBuilderError> {
        let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
        Ok(SpiffeClientVerifier { inner, bundle })
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        client_identity(end_entity, &self.bundle).map_err(refuse)?;
        Ok(verified)
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

/// Verifies a server certificate for an outbound mutual TLS connection: the chain to the root,
/// then secure naming against the expected identities. The server name (SNI) is not checked.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    expected: Arc<[SpiffeId]>,
    bundle: TrustDomainBundle,
}

impl SpiffeServerVerifier {
    /// A verifier trusting `roots` and accepting a server named by one of `expected` (see
    /// [`secure_naming_match`]).
    pub fn new(
        roots: Arc<RootCertStore>,
        expected: impl Into<Arc<[SpiffeId]>>,
        bundle: TrustDomainBundle,
        provider: Arc<CryptoProvider>,
    ) -> SpiffeServerVerifier {
        SpiffeServerVerifier { roots, provider, expected: expected.into(), bundle }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let id = identity_of(end_entity).map_err(refuse)?;
        if !secure_naming_match(&id, &self.expected, &self.bundle) {
            return Err(refuse(IdentityError::NotExpected {
                identity: id.to_string(),
                expected: join(self.expected.iter()),
            }));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
