//! Invariants of the inbound pieces under arbitrary input: path normalization is idempotent and
//! never leaves a dot segment (or, with merging, a double slash) behind; authorization decisions
//! do not change when policies of other namespaces or for other workloads are added; a DENY
//! policy never turns a denial into an allow.

use std::collections::BTreeMap;

use mesh_core::authz::*;
use mesh_core::normalize::{PathNormalization, normalize_path, path_without_query};
use mesh_core::policy::LabelSelector;
use mesh_core::workload::Workload;
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec![
        "a", "b", ".", "..", "", "%2e", "%2E%2e", "%2f", "%5C", "%61", "x\\y", "%25", "c.d", "~",
    ]);
    (prop::collection::vec(segment, 0..8), any::<bool>())
        .prop_map(|(segs, query)| format!("/{}{}", segs.join("/"), if query { "?q=/../x" } else { "" }))
}

fn mode() -> impl Strategy<Value = PathNormalization> {
    prop::sample::select(vec![
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ])
}

fn policy(i: usize, ns: &str, app: &str, action: Action, path: &str) -> PolicySpec {
    let mut p = PolicySpec::new(ns, &format!("p{i}"), action);
    p.selector = LabelSelector::new(&[("app".to_string(), app.to_string())].into_iter().collect::<BTreeMap<_, _>>());
    p.rules = vec![RuleSpec {
        to: vec![OperationSpec { paths: vec![path.to_string()], ..Default::default() }],
        ..Default::default()
    }];
    p
}

fn req(path: &str) -> AuthzRequest {
    AuthzRequest {
        http: Some(HttpAttributes { method: "GET".into(), host: "h".into(), path: path.into(), ..Default::default() }),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn normalization_is_idempotent(p in path(), m in mode()) {
        let once = normalize_path(&p, m).expect("no %00 generated");
        let twice = normalize_path(&once, m).expect("normalized");
        // Decoding is done once (no double decoding): %25 stays, so a second pass may only decode
        // what the first produced; with the segments above it never does.
        prop_assert_eq!(&once, &twice);
        let path = path_without_query(&once);
        prop_assert!(!path.split('/').any(|s| s == "." || s == ".."), "{}", once);
        prop_assert!(!path.contains('\\'), "{}", once);
        if m != PathNormalization::Base {
            prop_assert!(!path.contains("//"), "{}", once);
        }
    }

    #[test]
    fn unrelated_policies_change_nothing(
        relevant in prop::collection::vec((any::<bool>(), prop::sample::select(vec!["/a", "/b/*", "*", "/{*}"])), 0..4),
        unrelated in prop::collection::vec((any::<bool>(), 0usize..3), 0..20),
        p in prop::sample::select(vec!["/a", "/b/c", "/c", "/"]),
    ) {
        let w = Workload::new("foo", [("app", "httpbin")]);
        let action = |deny: bool| if deny { Action::Deny } else { Action::Allow };
        let mine: Vec<PolicySpec> =
            relevant.iter().enumerate().map(|(i, (d, path))| policy(i, "foo", "httpbin", action(*d), path)).collect();
        let others: Vec<PolicySpec> = unrelated
            .iter()
            .enumerate()
            .map(|(i, (d, kind))| match kind {
                0 => policy(100 + i, "bar", "httpbin", action(*d), "*"),
                1 => policy(100 + i, "foo", "other", action(*d), "*"),
                _ => policy(100 + i, "istio-system", "other", action(*d), "*"),
            })
            .collect();
        let bundle = TrustDomainBundle::default();
        let alone = AuthzPolicies::new("istio-system", &bundle, mine.clone());
        let with_others = AuthzPolicies::new("istio-system", &bundle, mine.into_iter().chain(others));
        prop_assert_eq!(alone.authorize(&w, &req(p)), with_others.authorize(&w, &req(p)));
    }

    #[test]
    fn deny_never_allows_more(
        allows in prop::collection::vec(prop::sample::select(vec!["/a", "/b/*", "*"]), 0..3),
        deny in prop::sample::select(vec!["/a", "/b/*", "*", "/x"]),
        p in prop::sample::select(vec!["/a", "/b/c", "/c"]),
    ) {
        let w = Workload::new("foo", [("app", "httpbin")]);
        let base: Vec<PolicySpec> =
            allows.iter().enumerate().map(|(i, path)| policy(i, "foo", "httpbin", Action::Allow, path)).collect();
        let bundle = TrustDomainBundle::default();
        let before = AuthzPolicies::new("istio-system", &bundle, base.clone()).authorize(&w, &req(p)).allowed;
        let with_deny = base.into_iter().chain([policy(99, "foo", "httpbin", Action::Deny, deny)]);
        let after = AuthzPolicies::new("istio-system", &bundle, with_deny).authorize(&w, &req(p)).allowed;
        prop_assert!(!after || before);
    }
}
