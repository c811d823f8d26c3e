//! Path normalization in the four meshConfig modes (Istio's normalization page and the 2021
//! advisories), what it does to a DENY policy, SPIFFE identities, and PeerAuthentication
//! precedence (istio/istio `pilot/pkg/security/authn/policy_applier.go`, and the sets of
//! `pilot/pkg/serviceregistry/ambient/testdata/peer-authn-*`).

use std::collections::BTreeMap;

use mesh_core::authn::{MtlsMode, MtlsSource, PeerAuthentications, PeerAuthn};
use mesh_core::authz::*;
use mesh_core::normalize::{PathNormalization, PathRejected, normalize_path};
use mesh_core::policy::LabelSelector;
use mesh_core::spiffe::SpiffeId;
use mesh_core::workload::Workload;

#[test]
fn normalization_table() {
    use PathNormalization::*;
    // input, NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES
    let table: &[(&str, [&str; 4])] = &[
        (
            "/public/./data/abc/../xyz",
            ["/public/./data/abc/../xyz", "/public/data/xyz", "/public/data/xyz", "/public/data/xyz"],
        ),
        (
            "/some%2fdata/%61%62%63",
            ["/some%2fdata/%61%62%63", "/some%2fdata/abc", "/some%2fdata/abc", "/some/data/abc"],
        ),
        ("/some\\data", ["/some\\data", "/some/data", "/some/data", "/some/data"]),
        ("/some//data///abc", ["/some//data///abc", "/some//data///abc", "/some/data/abc", "/some/data/abc"]),
        ("/admin#fragment", ["/admin", "/admin", "/admin", "/admin"]),
        ("/admin%2F..%2Fpublic", ["/admin%2F..%2Fpublic", "/admin%2F..%2Fpublic", "/admin%2F..%2Fpublic", "/public"]),
        ("/a%5Cb", ["/a%5Cb", "/a%5Cb", "/a%5Cb", "/a/b"]),
        ("/%2e%2E/admin", ["/%2e%2E/admin", "/admin", "/admin", "/admin"]),
        ("/a/%2D%5F%7E%30", ["/a/%2D%5F%7E%30", "/a/-_~0", "/a/-_~0", "/a/-_~0"]),
        ("/a/%21", ["/a/%21", "/a/%21", "/a/%21", "/a/%21"]),
        ("/a/../b?x=/../y", ["/a/../b?x=/../y", "/b?x=/../y", "/b?x=/../y", "/b?x=/../y"]),
        ("/a/b/..", ["/a/b/..", "/a/", "/a/", "/a/"]),
        ("/../../etc", ["/../../etc", "/etc", "/etc", "/etc"]),
        ("//a/./b", ["//a/./b", "//a/b", "/a/b", "/a/b"]),
    ];
    for (input, want) in table {
        for (mode, want) in [None, Base, MergeSlashes, DecodeAndMergeSlashes].into_iter().zip(want) {
            assert_eq!(normalize_path(input, mode).as_deref(), Ok(*want), "{input} under {mode}");
        }
    }
    for mode in [None, Base, MergeSlashes, DecodeAndMergeSlashes] {
        assert_eq!(normalize_path("/a%00b", mode), Err(PathRejected::EncodedNul), "{mode}");
    }
    assert_eq!(normalize_path("*", Base), Err(PathRejected::NotAbsolute));
    assert_eq!("MERGE_SLASHES".parse::<PathNormalization>(), Ok(MergeSlashes));
    assert_eq!("DEFAULT".parse::<PathNormalization>(), Ok(Base));
}

/// The 2021 bypasses: a DENY on `/admin*` and requests that reach `/admin` by another spelling.
#[test]
fn normalization_closes_deny_bypasses() {
    let mut deny = PolicySpec::new("foo", "deny-admin", Action::Deny);
    deny.rules = vec![RuleSpec {
        to: vec![OperationSpec { paths: vec!["/admin".into(), "/admin/*".into()], ..Default::default() }],
        ..Default::default()
    }];
    let policies = AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), [deny]);
    let w = Workload::new("foo", []);
    let denied = |raw: &str, mode| {
        let path = normalize_path(raw, mode).expect("path");
        let req = AuthzRequest {
            http: Some(HttpAttributes { method: "GET".into(), host: "h".into(), path, ..Default::default() }),
            ..Default::default()
        };
        !policies.authorize(&w, &req).allowed
    };
    use PathNormalization::*;
    for (raw, none, base, merge, decode) in [
        ("/admin", true, true, true, true),
        ("/admin#x", true, true, true, true),
        ("/public/../admin", false, true, true, true),
        ("/%61dmin", false, true, true, true),
        ("//admin", false, false, true, true),
        ("/public%2F..%2Fadmin", false, false, false, true),
        ("/public%5C..%5Cadmin", false, false, false, true),
    ] {
        assert_eq!(
            [denied(raw, None), denied(raw, Base), denied(raw, MergeSlashes), denied(raw, DecodeAndMergeSlashes)],
            [none, base, merge, decode],
            "{raw}"
        );
    }
}

#[test]
fn spiffe_identities() {
    let id: SpiffeId = "spiffe://td/ns/foo/sa/bar".parse().expect("valid");
    assert_eq!(id, SpiffeId::new("td", "foo", "bar"));
    assert_eq!(id.principal(), "td/ns/foo/sa/bar");
    for bad in [
        "td/ns/foo/sa/bar",
        "spiffe://td/ns/foo/sa",
        "spiffe://td/ns//sa/bar",
        "spiffe://td/sa/bar/ns/foo",
        "spiffe://td/ns/foo/sa/bar/x",
    ] {
        assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
    }
}

fn pa(
    ns: &str,
    name: &str,
    selector: &[(&str, &str)],
    mode: Option<MtlsMode>,
    ports: &[(u16, Option<MtlsMode>)],
) -> PeerAuthn {
    let labels: BTreeMap<String, String> = selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    PeerAuthn {
        namespace: ns.into(),
        name: name.into(),
        selector: LabelSelector::new(&labels),
        mode,
        port_level: ports.iter().copied().collect(),
    }
}

#[test]
fn peer_authentication_precedence() {
    use MtlsMode::*;
    let a = Workload::new("foo", [("app", "a")]);
    let b = Workload::new("foo", [("app", "b")]);
    let mode = |set: &PeerAuthentications, w: &Workload, port| set.effective(w, port).mode;

    // No policy: Istio's default PERMISSIVE.
    let none = PeerAuthentications::new("istio-system", []);
    assert_eq!(
        none.effective(&a, 80),
        mesh_core::authn::EffectiveMtls { mode: Permissive, source: MtlsSource::Default }
    );

    // peer-authn-permissive-root-strict-namespace-permissive-workload: the workload's UNSET mode
    // inherits the namespace's STRICT; its port 9090 is PERMISSIVE.
    let set = PeerAuthentications::new(
        "istio-system",
        [
            pa("istio-system", "default-mesh", &[], Some(Permissive), &[]),
            pa("foo", "default-foo", &[], Some(Strict), &[]),
            pa("foo", "workload", &[("app", "a")], None, &[(9090, Some(Permissive))]),
        ],
    );
    assert_eq!(mode(&set, &a, 8080), Strict);
    assert_eq!(mode(&set, &a, 9090), Permissive);
    assert_eq!(mode(&set, &b, 9090), Strict, "portLevelMtls only for the selected workload");
    assert_eq!(mode(&set, &Workload::new("bar", []), 80), Permissive, "the mesh policy");
    let source = set.effective(&a, 9090).source;
    assert_eq!(source, MtlsSource::Policy { namespace: "foo".into(), name: "workload".into(), port_level: true });

    // Mesh STRICT, namespace UNSET: inherits; a port UNSET inherits the workload's mode.
    let set = PeerAuthentications::new(
        "istio-system",
        [
            pa("istio-system", "mesh", &[], Some(Strict), &[]),
            pa("foo", "ns", &[], None, &[]),
            pa("foo", "wl", &[("app", "a")], Some(Disable), &[(8080, None), (9090, Some(Strict))]),
        ],
    );
    assert_eq!(mode(&set, &b, 80), Strict);
    assert_eq!(mode(&set, &a, 80), Disable);
    assert_eq!(mode(&set, &a, 8080), Disable);
    assert_eq!(mode(&set, &a, 9090), Strict);

    // The oldest (first) namespace-level and workload-level policies win; a selector in the root
    // namespace is ignored; a workload in the root namespace sees the mesh policy only.
    let set = PeerAuthentications::new(
        "istio-system",
        [
            pa("istio-system", "mesh-old", &[], Some(Disable), &[]),
            pa("istio-system", "mesh-new", &[], Some(Strict), &[]),
            pa("istio-system", "root-selector", &[("app", "a")], Some(Strict), &[]),
            pa("foo", "ns-old", &[], Some(Permissive), &[]),
            pa("foo", "ns-new", &[], Some(Strict), &[]),
            pa("foo", "wl-old", &[("app", "a")], Some(Strict), &[]),
            pa("foo", "wl-new", &[("app", "a")], Some(Disable), &[]),
        ],
    );
    assert_eq!(
        mode(&set, &Workload::new("bar", [("app", "a")]), 80),
        Disable,
        "oldest mesh policy; root selector ignored"
    );
    assert_eq!(mode(&set, &b, 80), Permissive);
    assert_eq!(mode(&set, &a, 80), Strict);
    assert_eq!(mode(&set, &Workload::new("istio-system", [("app", "a")]), 80), Disable);
}

mod whole_inbound {
    use std::sync::Arc;

    use mesh_core::authn::{MtlsMode, PeerAuthn};
    use mesh_core::authz::*;
    use mesh_core::inbound::{InboundRequest, JwtOutcome, RejectReason, Verdict};
    use mesh_core::normalize::PathNormalization;
    use mesh_core::policy::LabelSelector;
    use mesh_core::request_authn::{JwtRule, JwtRuleSpec, RequestAuthn};
    use mesh_core::security::{MeshSecurity, Security};
    use mesh_core::workload::Workload;

    fn security(mode: MtlsMode, normalization: PathNormalization, required_jwt: bool) -> Security {
        let peer = PeerAuthn {
            namespace: "foo".into(),
            name: "default".into(),
            selector: LabelSelector::default(),
            mode: Some(mode),
            port_level: [(9000, Some(MtlsMode::Permissive))].into_iter().collect(),
        };
        // portLevelMtls only counts with a selector: this one is ignored on purpose.
        let mut deny = PolicySpec::new("foo", "deny-admin", Action::Deny);
        deny.rules = vec![RuleSpec {
            to: vec![OperationSpec { paths: vec!["/admin".into()], ..Default::default() }],
            ..Default::default()
        }];
        let mut allow = PolicySpec::new("foo", "allow-sleep", Action::Allow);
        allow.rules = vec![RuleSpec {
            from: vec![SourceSpec {
                principals: vec!["cluster.local/ns/default/sa/sleep".into()],
                ..Default::default()
            }],
            ..Default::default()
        }];
        let mesh = MeshSecurity { path_normalization: normalization, ..MeshSecurity::default() };
        let jwt = RequestAuthn {
            namespace: "foo".into(),
            name: "jwt".into(),
            selector: LabelSelector::default(),
            rules: vec![Arc::new(JwtRule::new(
                "foo",
                "jwt",
                &JwtRuleSpec { issuer: "iss".into(), required: required_jwt, ..Default::default() },
            ))],
        };
        Security::new(mesh, [peer], [deny, allow]).with_request_authentications([jwt])
    }

    fn request(mtls: bool, path: &str) -> InboundRequest {
        InboundRequest {
            mtls,
            jwt: JwtOutcome::Missing,
            attributes: AuthzRequest {
                peer: Some(Arc::from("spiffe://cluster.local/ns/default/sa/sleep")),
                destination_port: 8000,
                http: Some(HttpAttributes {
                    method: "GET".into(),
                    host: "httpbin".into(),
                    path: path.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn steps_in_order() {
        let w = Workload::new("foo", [("app", "httpbin")]);
        let strict = security(MtlsMode::Strict, PathNormalization::Base, false);
        let d = strict.inbound(&w, &request(false, "/"));
        assert_eq!((d.verdict, d.status, d.reject), (Verdict::Reject, None, Some(RejectReason::PlaintextOnStrict)));
        assert_eq!(d.mtls, MtlsMode::Strict);
        let d = strict.inbound(&w, &request(true, "/ok?x=1"));
        assert_eq!((d.verdict, d.status), (Verdict::Allow, None));
        assert_eq!(d.policy.map(|p| p.name.to_string()), Some("allow-sleep".into()));
        assert_eq!((d.normalized_path.as_deref(), d.forwarded_path.as_deref()), (Some("/ok"), Some("/ok?x=1")));

        let permissive = security(MtlsMode::Permissive, PathNormalization::Base, false);
        // Plaintext: the claimed peer is not an identity; the ALLOW on a principal refuses it.
        let d = permissive.inbound(&w, &request(false, "/ok"));
        assert_eq!((d.verdict, d.status, d.policy), (Verdict::Deny, Some(403), None));
        // The path is normalized before authorization: the DENY catches /x/../admin.
        let d = permissive.inbound(&w, &request(true, "/x/../admin"));
        assert_eq!((d.verdict, d.status), (Verdict::Deny, Some(403)));
        assert_eq!(d.policy.map(|p| p.name.to_string()), Some("deny-admin".into()));
        let d = permissive.inbound(&w, &request(true, "/%00"));
        assert_eq!((d.verdict, d.status, d.reject), (Verdict::Reject, Some(400), Some(RejectReason::BadPath)));
        // TCP: a denial closes the connection (no status).
        let mut tcp = request(false, "/");
        tcp.attributes.http = None;
        let d = permissive.inbound(&w, &tcp);
        assert_eq!((d.verdict, d.status, d.normalized_path), (Verdict::Deny, None, None));

        let disable = security(MtlsMode::Disable, PathNormalization::Base, false);
        let d = disable.inbound(&w, &request(true, "/"));
        assert_eq!(d.reject, Some(RejectReason::MtlsOnDisabled));
    }

    #[test]
    fn jwt_outcomes() {
        let w = Workload::new("foo", [("app", "httpbin")]);
        let optional = security(MtlsMode::Permissive, PathNormalization::Base, false);
        let required = security(MtlsMode::Permissive, PathNormalization::Base, true);
        let with = |jwt| InboundRequest { jwt, ..request(true, "/ok") };
        assert_eq!(optional.inbound(&w, &with(JwtOutcome::Missing)).verdict, Verdict::Allow);
        let d = optional.inbound(&w, &with(JwtOutcome::Invalid));
        assert_eq!((d.verdict, d.status, d.reject), (Verdict::Reject, Some(401), Some(RejectReason::InvalidToken)));
        let d = optional.inbound(&w, &with(JwtOutcome::AudienceNotAllowed));
        assert_eq!((d.status, d.reject), (Some(403), Some(RejectReason::AudienceNotAllowed)));
        let d = required.inbound(&w, &with(JwtOutcome::Missing));
        assert_eq!((d.status, d.reject), (Some(401), Some(RejectReason::MissingToken)));
        assert_eq!(required.inbound(&w, &with(JwtOutcome::Valid)).verdict, Verdict::Allow);
        // A CORS preflight skips JWT (Istio sets bypass_cors_preflight).
        let mut preflight = with(JwtOutcome::Invalid);
        if let Some(h) = preflight.attributes.http.as_mut() {
            h.method = "OPTIONS".into();
            h.headers.insert("origin", "https://a.example".parse().expect("value"));
            h.headers.insert("access-control-request-method", "GET".parse().expect("value"));
        }
        assert_eq!(optional.inbound(&w, &preflight).verdict, Verdict::Allow);
    }
}
