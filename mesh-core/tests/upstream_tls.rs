//! The outbound TLS decision, table-style: DestinationRule `tls` (after the subset / port merge)
//! and endpoint labels in, the TLS to originate out (istio/istio
//! `pilot/pkg/networking/core/cluster_tls.go` `buildUpstreamTLSSettings`,
//! `applyUpstreamTLSSettings`).

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_core::authn::MtlsMode;
use mesh_core::policy::{ClientTls, DestinationPolicy, PolicyParts, Subset, TlsMode, TrafficPolicy};
use mesh_core::spiffe::SpiffeId;
use mesh_core::upstream_tls::{
    ExpectedIdentities, IstioMutual, MtlsSource, OriginateTls, UpstreamTlsInput, originate_tls,
};

const HOST: &str = "httpbin.foo.svc.cluster.local";

fn tls(mode: TlsMode) -> ClientTls {
    ClientTls {
        mode,
        client_certificate: None,
        private_key: None,
        ca_certificates: None,
        sni: None,
        subject_alt_names: Box::new([]),
        insecure_skip_verify: false,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<Arc<str>, Arc<str>> {
    pairs.iter().map(|(k, v)| (Arc::from(*k), Arc::from(*v))).collect()
}

fn mutual(sni: &str, expected: ExpectedIdentities, source: MtlsSource) -> OriginateTls {
    OriginateTls::IstioMutual(IstioMutual { sni: Arc::from(sni), expected, source })
}

struct Case {
    name: &'static str,
    tls: Option<ClientTls>,
    labels: &'static [(&'static str, &'static str)],
    subset: Option<&'static str>,
    accounts: Vec<SpiffeId>,
    auto_mtls: bool,
    mesh_external: bool,
    namespace_mtls: MtlsMode,
    have_certificate: bool,
    expected: OriginateTls,
}

fn case(name: &'static str, tls: Option<ClientTls>, labels: &'static [(&'static str, &'static str)]) -> Case {
    Case {
        name,
        tls,
        labels,
        subset: None,
        accounts: Vec::new(),
        auto_mtls: true,
        mesh_external: false,
        namespace_mtls: MtlsMode::Permissive,
        have_certificate: true,
        expected: OriginateTls::Plaintext,
    }
}

const ISTIO: &[(&str, &str)] = &[("app", "httpbin"), ("security.istio.io/tlsMode", "istio")];
const PLAIN: &[(&str, &str)] = &[("app", "httpbin")];
const DISABLED_LABEL: &[(&str, &str)] = &[("security.istio.io/tlsMode", "disabled")];
const SNI: &str = "outbound_.8000_._.httpbin.foo.svc.cluster.local";

#[test]
fn decisions() {
    let sa = SpiffeId::new("cluster.local", "foo", "httpbin");
    let with_sans = ClientTls {
        subject_alt_names: Box::new([Arc::from("spiffe://cluster.local/ns/foo/sa/other"), Arc::from("httpbin.foo")]),
        ..tls(TlsMode::IstioMutual)
    };
    let dns_sans_only =
        ClientTls { subject_alt_names: Box::new([Arc::from("httpbin.foo")]), ..tls(TlsMode::IstioMutual) };
    let with_sni = ClientTls { sni: Some(Arc::from("my.sni")), ..tls(TlsMode::IstioMutual) };
    let cases = [
        Case {
            expected: mutual(SNI, ExpectedIdentities::Any, MtlsSource::Auto),
            ..case("auto: labelled endpoint", None, ISTIO)
        },
        case("auto: unlabelled endpoint is plain text", None, PLAIN),
        case("auto: tlsMode other than istio is plain text", None, DISABLED_LABEL),
        Case { auto_mtls: false, ..case("enableAutoMtls: false", None, ISTIO) },
        Case { mesh_external: true, ..case("MESH_EXTERNAL: never auto mTLS", None, ISTIO) },
        Case {
            namespace_mtls: MtlsMode::Disable,
            ..case("namespace PeerAuthentication DISABLE: no auto mTLS", None, ISTIO)
        },
        Case {
            namespace_mtls: MtlsMode::Strict,
            expected: mutual(SNI, ExpectedIdentities::Any, MtlsSource::Auto),
            ..case("namespace PeerAuthentication STRICT: auto mTLS", None, ISTIO)
        },
        Case {
            namespace_mtls: MtlsMode::Disable,
            expected: mutual(SNI, ExpectedIdentities::Any, MtlsSource::DestinationRule),
            ..case("ISTIO_MUTUAL whatever the namespace's PeerAuthentication", Some(tls(TlsMode::IstioMutual)), PLAIN)
        },
        Case { have_certificate: false, ..case("auto without a certificate: plain text", None, ISTIO) },
        Case {
            subset: Some("v1"),
            expected: mutual(
                "outbound_.8000_.v1_.httpbin.foo.svc.cluster.local",
                ExpectedIdentities::Any,
                MtlsSource::Auto,
            ),
            ..case("auto: the subset is in the SNI", None, ISTIO)
        },
        Case {
            accounts: vec![sa.clone()],
            expected: mutual(SNI, ExpectedIdentities::OneOf(Arc::from([sa.clone()])), MtlsSource::Auto),
            ..case("auto: the service's accounts are expected", None, ISTIO)
        },
        case("DISABLE beats the label", Some(tls(TlsMode::Disable)), ISTIO),
        Case {
            expected: OriginateTls::Configured(tls(TlsMode::Simple)),
            ..case("SIMPLE as written", Some(tls(TlsMode::Simple)), ISTIO)
        },
        Case {
            expected: OriginateTls::Configured(tls(TlsMode::Mutual)),
            ..case("MUTUAL as written", Some(tls(TlsMode::Mutual)), PLAIN)
        },
        Case {
            expected: mutual(SNI, ExpectedIdentities::Any, MtlsSource::DestinationRule),
            ..case("ISTIO_MUTUAL to an unlabelled endpoint", Some(tls(TlsMode::IstioMutual)), PLAIN)
        },
        Case {
            auto_mtls: false,
            mesh_external: true,
            have_certificate: false,
            expected: mutual(SNI, ExpectedIdentities::Any, MtlsSource::DestinationRule),
            ..case("ISTIO_MUTUAL whatever auto mTLS and certificates say", Some(tls(TlsMode::IstioMutual)), PLAIN)
        },
        Case {
            expected: mutual("my.sni", ExpectedIdentities::Any, MtlsSource::DestinationRule),
            ..case("ISTIO_MUTUAL: the rule's sni", Some(with_sni), PLAIN)
        },
        Case {
            accounts: vec![sa.clone()],
            expected: mutual(
                SNI,
                ExpectedIdentities::OneOf(Arc::from([SpiffeId::new("cluster.local", "foo", "other")])),
                MtlsSource::DestinationRule,
            ),
            ..case("ISTIO_MUTUAL: subjectAltNames beat the accounts (SPIFFE ones kept)", Some(with_sans), PLAIN)
        },
        Case {
            expected: mutual(
                SNI,
                ExpectedIdentities::Unverifiable(Arc::from([Arc::from("httpbin.foo")])),
                MtlsSource::DestinationRule,
            ),
            ..case("ISTIO_MUTUAL: no SPIFFE subjectAltName refuses every server", Some(dns_sans_only), PLAIN)
        },
    ];
    for c in cases {
        let labels = labels(c.labels);
        let input = UpstreamTlsInput {
            tls: c.tls.as_ref(),
            endpoint_labels: &labels,
            host: HOST,
            port: 8000,
            subset: c.subset,
            service_accounts: &c.accounts,
            auto_mtls: c.auto_mtls,
            mesh_external: c.mesh_external,
            namespace_mtls: c.namespace_mtls,
            have_certificate: c.have_certificate,
        };
        assert_eq!(originate_tls(&input), c.expected, "{}", c.name);
    }
}

/// The `tls` the decision reads is the merged one: a port-level setting replaces the top
/// level's, a subset's replaces the rule's (`MergeTrafficPolicy`).
#[test]
fn merged_settings_decide() {
    let parts = |mode| PolicyParts { tls: Some(tls(mode)), ..PolicyParts::default() };
    let dr = DestinationPolicy {
        namespace: Arc::from("foo"),
        name: Arc::from("httpbin"),
        host: Arc::from(HOST),
        traffic_policy: TrafficPolicy {
            parts: parts(TlsMode::IstioMutual),
            port_level: Box::new([(9000, parts(TlsMode::Disable))]),
            retry_budget: None,
        },
        subsets: Box::new([
            Subset {
                name: Arc::from("plain"),
                labels: Default::default(),
                traffic_policy: Some(TrafficPolicy { parts: parts(TlsMode::Disable), ..TrafficPolicy::default() }),
            },
            Subset { name: Arc::from("inherits"), labels: Default::default(), traffic_policy: None },
        ]),
        workload_selector: None,
    };
    let labels = labels(PLAIN);
    let decide = |subset: Option<&str>, port: u16| {
        let parts = dr.resolve(subset, Some(port));
        originate_tls(&UpstreamTlsInput {
            tls: parts.tls.as_ref(),
            endpoint_labels: &labels,
            host: HOST,
            port,
            subset,
            service_accounts: &[],
            auto_mtls: true,
            mesh_external: false,
            namespace_mtls: MtlsMode::Permissive,
            have_certificate: true,
        })
    };
    assert!(matches!(decide(None, 8000), OriginateTls::IstioMutual(_)), "top level");
    assert_eq!(decide(None, 9000), OriginateTls::Plaintext, "port level replaces the top level");
    assert_eq!(decide(Some("plain"), 8000), OriginateTls::Plaintext, "the subset's replaces the rule's");
    let OriginateTls::IstioMutual(m) = decide(Some("inherits"), 8000) else { panic!("inherited ISTIO_MUTUAL") };
    assert_eq!(&*m.sni, "outbound_.8000_.inherits_.httpbin.foo.svc.cluster.local");
}
