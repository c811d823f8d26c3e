//! The rule index finds exactly the rule a first-match-wins scan finds.

use std::sync::Arc;

use mesh_core::matcher::{Re2, StringMatcher};
use mesh_core::route::{
    Destination, HeaderCondition, HeaderEdits, HttpRule, RequestMatch, RetryPolicy, RouteAction, RouteDestination,
    RuleOrigin, WeightedDestinations,
};
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};
use mesh_core::{ClientIdentity, RequestView, RouteDecision};
use proptest::prelude::*;

fn path_strategy() -> impl Strategy<Value = String> {
    "/[ab]{0,3}"
}

fn uri_strategy() -> impl Strategy<Value = Option<StringMatcher>> {
    prop_oneof![
        Just(None),
        path_strategy().prop_map(|p| Some(StringMatcher::Exact(Arc::from(p)))),
        path_strategy().prop_map(|p| Some(StringMatcher::Prefix(Arc::from(p)))),
        Just(Some(StringMatcher::Prefix(Arc::from("")))),
        prop::sample::select(vec!["/a.*", "/[ab]b", "/b?"])
            .prop_map(|r| Some(StringMatcher::Regex(Re2::new(r).expect("re")))),
    ]
}

fn match_strategy() -> impl Strategy<Value = RequestMatch> {
    (uri_strategy(), any::<bool>(), prop::option::of(prop::sample::select(vec!["x", "y"])), any::<bool>()).prop_map(
        |(uri, ignore_uri_case, header, present)| RequestMatch {
            uri,
            ignore_uri_case,
            headers: match header {
                None => Box::new([]),
                Some(_) if present => Box::new([(Arc::from("h"), HeaderCondition::Present)]),
                Some(v) => Box::new([(Arc::from("h"), HeaderCondition::Match(StringMatcher::Exact(Arc::from(v))))]),
            },
            ..RequestMatch::default()
        },
    )
}

fn rule(i: usize, matches: Vec<RequestMatch>) -> Arc<HttpRule> {
    let matches: Vec<RequestMatch> =
        matches.into_iter().enumerate().map(|(j, m)| RequestMatch { index: j, ..m }).collect();
    Arc::new(HttpRule {
        origin: RuleOrigin {
            kind: Default::default(),
            namespace: Arc::from("default"),
            name: Arc::from("vs"),
            index: i,
        },
        name: None,
        matches: matches.into_boxed_slice(),
        action: RouteAction::Route(WeightedDestinations::new(vec![RouteDestination {
            destination: Destination { host: Arc::from("svc.default.svc.cluster.local"), subset: None, port: None },
            weight: 100,
            headers: HeaderEdits::default(),
        }])),
        rewrite: None,
        timeout: None,
        retries: Arc::new(RetryPolicy::istio_default()),
        fault: None,
        mirrors: Box::new([]),
        cors: None,
        headers: Arc::default(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn index_agrees_with_linear_scan(
        rules in prop::collection::vec(prop::collection::vec(match_strategy(), 0..3), 1..12),
        path in path_strategy(),
        header in prop::option::of(prop::sample::select(vec!["x", "y", "z"])),
    ) {
        let rules: Vec<Arc<HttpRule>> = rules.into_iter().enumerate().map(|(i, m)| rule(i, m)).collect();
        let mut b = SnapshotBuilder::new(Settings::default());
        b.add_routes(Binding::Mesh, "svc.default.svc.cluster.local", "default/vs", rules.clone()).expect("one owner");
        let snapshot = b.build();
        let headers: Vec<(String, String)> = header.iter().map(|v| ("h".to_string(), v.to_string())).collect();
        let req = RequestView { method: "GET", scheme: "http", authority: "svc", path: &path, query: None, headers: &headers, listener_port: None };
        let client = ClientIdentity::new("default", []);

        let expected = rules.iter().enumerate().find_map(|(i, r)| {
            if r.matches.is_empty() {
                return Some((i, None));
            }
            r.matches.iter().position(|m| m.matches(&req, &client, 80)).map(|j| (i, Some(j)))
        });
        let got = match snapshot.route(&Binding::Mesh, &req, &client) {
            RouteDecision::Matched { rule, request_match, .. } => {
                Some((rule.origin.index, request_match.map(|m| m.index)))
            }
            RouteDecision::NoRoute { .. } => None,
            RouteDecision::Default { .. } => panic!("the host has a VirtualService"),
        };
        prop_assert_eq!(got, expected);
    }
}
