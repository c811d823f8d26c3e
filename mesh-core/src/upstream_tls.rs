//! Which TLS to originate towards one endpoint of a destination: the outbound half of Istio's
//! mutual TLS, decided before any I/O.
//!
//! Istio's rules, as read in istio/istio (`pilot/pkg/networking/core/cluster_tls.go`,
//! `cluster_builder.go`):
//!
//! - The DestinationRule's `tls` applies after the usual merge (port-level settings replace the
//!   top level, a subset's replace the rule's: `applyTrafficPolicy` with `MergeTrafficPolicy`;
//!   here [`DestinationPolicy::resolve`](crate::policy::DestinationPolicy::resolve), whose result
//!   the caller passes as [`UpstreamTlsInput::tls`]).
//! - `buildUpstreamTLSSettings`: `DISABLE` and `SIMPLE` are used as written, so is `MUTUAL`
//!   (without proxy metadata certificates, which meshwork does not have); `ISTIO_MUTUAL` becomes
//!   mutual TLS with the workload certificate, SNI the DestinationRule's `sni` or else the
//!   cluster's name `outbound_.<port>_.<subset>_.<host>` (`buildIstioMutualTLS(sni)`, and
//!   `buildUpstreamClusterTLSContext`: "Set default SNI of cluster name for istio_mutual if sni
//!   is not set"), and the server's SANs the DestinationRule's `subjectAltNames` when set, else
//!   the service's accounts (`subjectAltNamesToUse = serviceAccounts`). With no accounts the
//!   SAN match is empty, so Envoy accepts any certificate the mesh root signs; so does meshwork.
//! - Auto mTLS (meshConfig `enableAutoMtls`, default true): with no `tls` in any DestinationRule
//!   that applies, and a service that is not `MESH_EXTERNAL`, the settings are `ISTIO_MUTUAL`
//!   "auto detected" (`buildUpstreamTLSSettings` returns `autoDetected`), and
//!   `applyUpstreamTLSSettings` turns them into transport socket matches: endpoints whose
//!   metadata carries `tlsMode: istio` (the `security.istio.io/tlsMode` label, which Istio's
//!   sidecar injector puts on every injected pod) get mutual TLS (`istioMtlsTransportSocketMatch`),
//!   every other endpoint plain text (`defaultTransportSocketMatch`, "endpoints that have no
//!   security.istio.io/tlsMode label or those whose label value does not match istio"). Istio
//!   also skips auto mTLS when the service's mTLS mode is `DISABLE` (`serviceMTLSMode`, from
//!   `BestEffortInferServiceMTLSMode` in `pilot/pkg/model/push_context.go`: the mesh- or
//!   namespace-level PeerAuthentication of the service's namespace, PERMISSIVE when none; the
//!   caller passes it as [`UpstreamTlsInput::namespace_mtls`]). Its passthrough-resolution rule
//!   (headless services: every endpoint must carry the label) is not applied here.
//!
//! One deviation, stated: auto mTLS needs a workload certificate; without one (no
//! `--cert-dir`), the labelled endpoint gets plain text ([`UpstreamTlsInput::have_certificate`]),
//! where Envoy would wait for SDS. An explicit `ISTIO_MUTUAL` stays mutual TLS, and the
//! connection fails for want of a certificate (503), as Envoy's handshake does.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::authn::MtlsMode;
use crate::policy::{ClientTls, TlsMode};
use crate::spiffe::SpiffeId;

/// The endpoint label that marks a workload with an Istio sidecar (or a meshwork workload) able
/// to terminate Istio's mutual TLS (istio/api `label.SecurityTlsMode`; Envoy sees it as the
/// endpoint metadata `tlsMode`, `model.TLSModeLabelShortname` in `pilot/pkg/model/service.go`).
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// The [`TLS_MODE_LABEL`] value that enables auto mTLS (`model.IstioMutualTLSModeLabel`,
/// `pilot/pkg/model/service.go`).
pub const TLS_MODE_ISTIO: &str = "istio";

/// What [`originate_tls`] decides from.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTlsInput<'a> {
    /// The DestinationRule `tls` after the merge (`None`: no rule sets it).
    pub tls: Option<&'a ClientTls>,
    /// The picked endpoint's labels.
    pub endpoint_labels: &'a BTreeMap<Arc<str>, Arc<str>>,
    /// The destination's host (FQDN).
    pub host: &'a str,
    /// The destination's service port.
    pub port: u16,
    /// The destination's subset, if any.
    pub subset: Option<&'a str>,
    /// The service's accounts as SPIFFE identities (empty: unknown).
    pub service_accounts: &'a [SpiffeId],
    /// meshConfig `enableAutoMtls` (Istio's default: true).
    pub auto_mtls: bool,
    /// The service is `MESH_EXTERNAL` (a ServiceEntry's `location`): never auto mTLS.
    pub mesh_external: bool,
    /// The mesh- or namespace-level PeerAuthentication mode of the service's namespace
    /// (`PERMISSIVE` when none): `DISABLE` turns auto mTLS off.
    pub namespace_mtls: MtlsMode,
    /// Whether the client has a workload certificate (see the module docs).
    pub have_certificate: bool,
}

/// The TLS to originate towards one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateTls {
    /// Plain text (no `tls`, `DISABLE`, or auto mTLS to an endpoint outside the mesh).
    Plaintext,
    /// The DestinationRule's `SIMPLE` or `MUTUAL` settings, as written.
    Configured(ClientTls),
    /// Istio's mutual TLS with the workload certificate.
    IstioMutual(IstioMutual),
}

/// Mutual TLS with the workload certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioMutual {
    /// The SNI sent.
    pub sni: Arc<str>,
    /// Whose certificate the server may present (Istio's secure naming).
    pub expected: ExpectedIdentities,
    /// Why: an explicit `ISTIO_MUTUAL`, or auto mTLS.
    pub source: MtlsSource,
}

/// Why mutual TLS applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MtlsSource {
    /// A DestinationRule says `ISTIO_MUTUAL`.
    DestinationRule,
    /// Auto mTLS: the endpoint carries `security.istio.io/tlsMode: istio`.
    Auto,
}

/// The server identities accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExpectedIdentities {
    /// Any identity the mesh root vouches for (no subject alt names, no known accounts).
    Any,
    /// One of these.
    OneOf(Arc<[SpiffeId]>),
    /// `subjectAltNames` were given but none is a SPIFFE identity: no server can match (a
    /// workload certificate names exactly one SPIFFE identity), so connections are refused.
    Unverifiable(Arc<[Arc<str>]>),
}

impl ExpectedIdentities {
    /// The accepted identities as a list (empty for [`ExpectedIdentities::Any`]).
    pub fn as_slice(&self) -> &[SpiffeId] {
        match self {
            ExpectedIdentities::OneOf(ids) => ids,
            ExpectedIdentities::Any | ExpectedIdentities::Unverifiable(_) => &[],
        }
    }
}

/// Istio's SNI for mutual TLS to a cluster: its DNS SRV name
/// `outbound_.<port>_.<subset>_.<host>` (`model.BuildDNSSrvSubsetKey`).
///
/// ```
/// assert_eq!(mesh_core::upstream_tls::istio_sni("a.b.svc.cluster.local", 80, None), "outbound_.80_._.a.b.svc.cluster.local");
/// ```
pub fn istio_sni(host: &str, port: u16, subset: Option<&str>) -> String {
    format!("outbound_.{port}_.{}_.{host}", subset.unwrap_or(""))
}

/// Does an endpoint with these labels terminate Istio's mutual TLS (`tlsMode: istio`)?
pub fn endpoint_speaks_istio_mtls(labels: &BTreeMap<Arc<str>, Arc<str>>) -> bool {
    labels.get(TLS_MODE_LABEL).is_some_and(|v| &**v == TLS_MODE_ISTIO)
}

/// The TLS to originate towards one endpoint (see the module docs).
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::Arc;
/// use mesh_core::authn::MtlsMode;
/// use mesh_core::upstream_tls::{OriginateTls, UpstreamTlsInput, originate_tls};
/// let labels: BTreeMap<Arc<str>, Arc<str>> =
///     [(Arc::from("security.istio.io/tlsMode"), Arc::from("istio"))].into_iter().collect();
/// let input = UpstreamTlsInput {
///     tls: None, endpoint_labels: &labels, host: "httpbin.foo.svc.cluster.local", port: 8000,
///     subset: None, service_accounts: &[], auto_mtls: true, mesh_external: false,
///     namespace_mtls: MtlsMode::Permissive, have_certificate: true,
/// };
/// let OriginateTls::IstioMutual(m) = originate_tls(&input) else { panic!("auto mTLS") };
/// assert_eq!(&*m.sni, "outbound_.8000_._.httpbin.foo.svc.cluster.local");
/// ```
pub fn originate_tls(input: &UpstreamTlsInput<'_>) -> OriginateTls {
    match input.tls {
        Some(tls) => match tls.mode {
            TlsMode::Disable => OriginateTls::Plaintext,
            TlsMode::Simple | TlsMode::Mutual => OriginateTls::Configured(tls.clone()),
            TlsMode::IstioMutual => OriginateTls::IstioMutual(IstioMutual {
                sni: tls.sni.clone().unwrap_or_else(|| Arc::from(istio_sni(input.host, input.port, input.subset))),
                expected: expected(&tls.subject_alt_names, input.service_accounts),
                source: MtlsSource::DestinationRule,
            }),
        },
        None if input.auto_mtls
            && !input.mesh_external
            && input.namespace_mtls != MtlsMode::Disable
            && input.have_certificate
            && endpoint_speaks_istio_mtls(input.endpoint_labels) =>
        {
            OriginateTls::IstioMutual(IstioMutual {
                sni: Arc::from(istio_sni(input.host, input.port, input.subset)),
                expected: expected(&[], input.service_accounts),
                source: MtlsSource::Auto,
            })
        }
        None => OriginateTls::Plaintext,
    }
}

/// `subjectAltNames` when given (the SPIFFE ones; see [`ExpectedIdentities::Unverifiable`]),
/// else the service's accounts, else any identity.
fn expected(subject_alt_names: &[Arc<str>], service_accounts: &[SpiffeId]) -> ExpectedIdentities {
    if subject_alt_names.is_empty() {
        return if service_accounts.is_empty() {
            ExpectedIdentities::Any
        } else {
            ExpectedIdentities::OneOf(service_accounts.into())
        };
    }
    let ids: Vec<SpiffeId> = subject_alt_names.iter().filter_map(|s| s.parse().ok()).collect();
    if ids.is_empty() {
        ExpectedIdentities::Unverifiable(subject_alt_names.into())
    } else {
        ExpectedIdentities::OneOf(ids.into())
    }
}
