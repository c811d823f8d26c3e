//! Distributions and invariants of the load-balancing and weighting decisions.

use std::sync::Arc;

use mesh_core::balance::{Balancer, PickContext, RandomSource, SplitMix64, hash_key};
use mesh_core::policy::{ConsistentHash, HashAlgorithm, HashKey, LoadBalancer};
use mesh_core::route::{Destination, HeaderEdits, RouteDestination, WeightedDestinations};
use proptest::prelude::*;

fn dest(i: usize, weight: u32) -> RouteDestination {
    RouteDestination {
        destination: Destination { host: Arc::from(format!("d{i}")), subset: None, port: None },
        weight,
        headers: HeaderEdits::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Each destination gets weight / sum(weights) of 100,000 picks, within one percentage point;
    /// a weight of 0 gets nothing.
    #[test]
    fn weighted_route_picks_follow_weights(weights in prop::collection::vec(0u32..=100, 1..6), seed in any::<u64>()) {
        prop_assume!(weights.iter().any(|w| *w > 0) || weights.len() == 1);
        let w = WeightedDestinations::new(weights.iter().enumerate().map(|(i, w)| dest(i, *w)).collect());
        let mut rng = SplitMix64(seed);
        let mut counts = vec![0u64; weights.len()];
        for _ in 0..100_000 {
            let d = w.pick(rng.next_u64()).expect("pick");
            let i: usize = d.destination.host[1..].parse().expect("index");
            counts[i] += 1;
        }
        let total = w.total() as f64;
        for (i, c) in counts.iter().enumerate() {
            let want = if weights.len() == 1 { 1.0 } else { f64::from(weights[i]) / total };
            let got = *c as f64 / 100_000.0;
            prop_assert!((got - want).abs() <= 0.01, "destination {i}: {got} vs {want}");
            if weights.len() > 1 && weights[i] == 0 {
                prop_assert_eq!(*c, 0);
            }
        }
    }

    /// RANDOM and ROUND_ROBIN follow endpoint weights too.
    #[test]
    fn weighted_balancers_follow_weights(weights in prop::collection::vec(1u32..=10, 2..6), seed in any::<u64>(), rr in any::<bool>()) {
        let keys: Vec<String> = (0..weights.len()).map(|i| format!("10.0.0.{i}:80")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let policy = if rr { LoadBalancer::RoundRobin } else { LoadBalancer::Random };
        let b = Balancer::new(Some(&policy), &keys, &weights);
        let mut rng = SplitMix64(seed);
        let mut counts = vec![0u64; weights.len()];
        for _ in 0..100_000 {
            let mut ctx = PickContext { rng: &mut rng, hash: None, active: &|_| 0, eligible: &|_| true };
            counts[b.pick(&mut ctx).expect("pick")] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, c) in counts.iter().enumerate() {
            let want = f64::from(weights[i]) / f64::from(total);
            prop_assert!((*c as f64 / 100_000.0 - want).abs() <= 0.01);
        }
    }

    /// Removing one of N endpoints moves about 1/N of the keys (ring hash and Maglev).
    #[test]
    fn consistent_hashes_move_about_one_nth(n in 3usize..16, removed in any::<prop::sample::Index>(), maglev in any::<bool>()) {
        let algorithm = if maglev { HashAlgorithm::Maglev { table_size: 65537 } } else { HashAlgorithm::RingHash { minimum_ring_size: 1024 } };
        let policy = LoadBalancer::ConsistentHash(ConsistentHash { key: HashKey::SourceIp, algorithm });
        let all: Vec<String> = (0..n).map(|i| format!("10.1.{i}.7:9080")).collect();
        let gone = removed.index(n);
        let rest: Vec<String> = all.iter().enumerate().filter(|(i, _)| *i != gone).map(|(_, k)| k.clone()).collect();
        let before = Balancer::new(Some(&policy), &all.iter().map(String::as_str).collect::<Vec<_>>(), &vec![1; n]);
        let after = Balancer::new(Some(&policy), &rest.iter().map(String::as_str).collect::<Vec<_>>(), &vec![1; n - 1]);
        let mut rng = SplitMix64(0);
        let keys = 20_000;
        let mut moved = 0;
        for k in 0..keys {
            let h = hash_key(format!("client-{k}").as_bytes());
            let mut c1 = PickContext { rng: &mut rng, hash: Some(h), active: &|_| 0, eligible: &|_| true };
            let a = &all[before.pick(&mut c1).expect("pick")];
            let mut c2 = PickContext { rng: &mut rng, hash: Some(h), active: &|_| 0, eligible: &|_| true };
            let b = &rest[after.pick(&mut c2).expect("pick")];
            if a != b {
                moved += 1;
            }
        }
        let share = f64::from(moved) / f64::from(keys);
        let ideal = 1.0 / n as f64;
        prop_assert!(share >= ideal * 0.7 && share <= ideal * 1.3 + 0.01, "moved {share:.3}, ideal {ideal:.3}");
    }
}

#[test]
fn maglev_respects_weights() {
    let policy = LoadBalancer::ConsistentHash(ConsistentHash {
        key: HashKey::SourceIp,
        algorithm: HashAlgorithm::Maglev { table_size: 65537 },
    });
    let b = Balancer::new(Some(&policy), &["a", "b", "c"], &[1, 2, 1]);
    let mut rng = SplitMix64(9);
    let mut counts = [0u32; 3];
    for k in 0..40_000u32 {
        let mut ctx =
            PickContext { rng: &mut rng, hash: Some(hash_key(&k.to_le_bytes())), active: &|_| 0, eligible: &|_| true };
        counts[b.pick(&mut ctx).expect("pick")] += 1;
    }
    let share_b = f64::from(counts[1]) / 40_000.0;
    assert!((share_b - 0.5).abs() < 0.03, "{counts:?}");
}
