//! The endpoint pick (`mesh_core::endpoint`): what a request may and may not be sent to, for any
//! health, retry, locality and slow-start state — with time and randomness passed in.

use mesh_core::balance::{Balancer, SplitMix64};
use mesh_core::endpoint::EndpointPick;
use mesh_core::policy::LoadBalancer;
use proptest::prelude::*;

fn policies() -> impl Strategy<Value = Option<LoadBalancer>> {
    prop_oneof![
        Just(None),
        Just(Some(LoadBalancer::RoundRobin)),
        Just(Some(LoadBalancer::Random)),
        Just(Some(LoadBalancer::LeastRequest)),
    ]
}

/// One endpoint's state: healthy, tried by this request, locality level, slow-start factor.
fn endpoints() -> impl Strategy<Value = Vec<(bool, bool, u8, f64)>> {
    prop::collection::vec((any::<bool>(), any::<bool>(), 0u8..3, prop_oneof![Just(0.0), Just(0.5), Just(1.0)]), 1..12)
}

fn balancer(policy: &Option<LoadBalancer>, n: usize) -> Balancer {
    let keys: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:80")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    Balancer::new(policy.as_ref(), &keys, &vec![1; n])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Never an ejected endpoint; never one already tried while an untried healthy one exists;
    /// always some endpoint while any is healthy — with or without locality and slow start.
    #[test]
    fn picks_respect_health_and_retries(
        policy in policies(),
        state in endpoints(),
        locality in any::<bool>(),
        slow_start in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let b = balancer(&policy, state.len());
        let priorities: Vec<u8> = state.iter().map(|s| s.2).collect();
        let healthy = |i: usize| state[i].0;
        let tried = |i: usize| state[i].1;
        let factor = |i: usize| state[i].3;
        let active = |i: usize| i as u64 % 3;
        let pick = EndpointPick {
            balancer: &b,
            hash: None,
            priorities: locality.then_some(&priorities[..]),
            healthy: &healthy,
            tried: &tried,
            warmup: slow_start.then_some(&factor as &dyn Fn(usize) -> f64),
            active: &active,
        };
        let mut rng = SplitMix64(seed);
        for _ in 0..20 {
            let picked = pick.pick(&mut rng);
            let any_healthy = state.iter().any(|s| s.0);
            let any_fresh = state.iter().any(|s| s.0 && !s.1);
            match picked {
                None => prop_assert!(!any_healthy, "nothing picked from {state:?}"),
                Some(i) => {
                    prop_assert!(healthy(i), "picked ejected endpoint {i} of {state:?}");
                    prop_assert!(!any_fresh || !tried(i), "picked tried endpoint {i} of {state:?}");
                }
            }
        }
    }

    /// Slow start (under the policies it applies to: ROUND_ROBIN and LEAST_REQUEST, Istio's
    /// default) never sends to an endpoint at factor 0 while a warm, healthy, untried one exists;
    /// locality keeps every request in the nearest level while all of it is healthy.
    #[test]
    fn slow_start_and_locality_preferences(policy in policies(), state in endpoints(), seed in any::<u64>()) {
        let b = balancer(&policy, state.len());
        let healthy = |i: usize| state[i].0;
        let tried = |_: usize| false;
        let factor = |i: usize| state[i].3;
        let active = |_: usize| 0;
        let pick = EndpointPick {
            balancer: &b, hash: None, priorities: None, healthy: &healthy, tried: &tried,
            warmup: Some(&factor), active: &active,
        };
        let mut rng = SplitMix64(seed);
        let any_warm = b.slow_start_applies() && state.iter().any(|s| s.0 && s.3 >= 1.0);
        for _ in 0..20 {
            if let Some(i) = pick.pick(&mut rng) && any_warm {
                prop_assert!(state[i].3 > 0.0, "picked cold endpoint {i} of {state:?}");
            }
        }
        // Locality: level 0 wholly healthy takes every request.
        let priorities: Vec<u8> = state.iter().map(|s| s.2).collect();
        let level0_healthy = priorities.contains(&0) && state.iter().all(|s| s.2 != 0 || s.0);
        let near = EndpointPick { priorities: Some(&priorities), warmup: None, ..pick };
        for _ in 0..20 {
            if let Some(i) = near.pick(&mut rng) && level0_healthy {
                prop_assert_eq!(priorities[i], 0, "left the nearest level: {:?}", state);
            }
        }
    }
}

/// A warming endpoint at factor 0.25 beside a warm one of the same weight gets Envoy's share,
/// 0.25 / 1.25 = 20 % (its weight scaled), under ROUND_ROBIN and LEAST_REQUEST; under RANDOM,
/// for which Istio configures no slow start, it gets its full half at once; alone, it gets all.
#[test]
fn slow_start_scales_an_endpoints_weight_as_envoy_does() {
    let factor = |i: usize| if i == 0 { 0.25 } else { 1.0 };
    for (policy, want) in [
        (Some(LoadBalancer::RoundRobin), 0.2),
        (None, 0.2),
        (Some(LoadBalancer::LeastRequest), 0.2),
        (Some(LoadBalancer::Random), 0.5),
    ] {
        let b = balancer(&policy, 2);
        let pick = EndpointPick {
            balancer: &b,
            hash: None,
            priorities: None,
            healthy: &|_| true,
            tried: &|_| false,
            warmup: Some(&factor),
            active: &|_| 0,
        };
        let mut rng = SplitMix64(7);
        let n = 100_000;
        let warming = (0..n).filter(|_| pick.pick(&mut rng) == Some(0)).count() as f64 / n as f64;
        assert!((warming - want).abs() < 0.01, "{policy:?}: warming share {warming}, want {want}");
        let alone = EndpointPick { healthy: &|i| i == 0, ..pick };
        assert!((0..100).all(|_| alone.pick(&mut rng) == Some(0)));
    }
}

/// Under LEAST_REQUEST a warming endpoint is compared by active requests per unit of its scaled
/// weight: at factor 0.5 with 1 active request it loses to a warm one with 1 (1/0.5 > 1/1) and
/// wins against a warm one with 3 (1/0.5 < 3/1).
#[test]
fn least_request_compares_load_per_scaled_weight() {
    let b = balancer(&Some(LoadBalancer::LeastRequest), 2);
    let factor = |i: usize| if i == 0 { 0.5 } else { 1.0 };
    for (warm_active, want) in [(1, Some(1)), (3, Some(0))] {
        let active = move |i: usize| if i == 0 { 1 } else { warm_active };
        let pick = EndpointPick {
            balancer: &b,
            hash: None,
            priorities: None,
            healthy: &|_| true,
            tried: &|_| false,
            warmup: Some(&factor),
            active: &active,
        };
        let mut rng = SplitMix64(11);
        assert!((0..200).all(|_| pick.pick(&mut rng) == want), "warm endpoint with {warm_active} active");
    }
}
