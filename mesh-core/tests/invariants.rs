//! Invariants of outlier detection and retry budgets under arbitrary traffic, and of reading
//! header values of any shape.

use std::time::Duration;

use mesh_core::budget::{ConcurrencyBudget, RateBudget};
use mesh_core::outlier::{Observation, OutlierDetector};
use mesh_core::policy::OutlierDetection;
use proptest::prelude::*;

fn observation() -> impl Strategy<Value = Observation> {
    prop_oneof![
        prop::sample::select(vec![200u16, 404, 500, 502, 503, 504]).prop_map(Observation::Status),
        Just(Observation::LocalOriginFailure),
        Just(Observation::LocalOriginSuccess),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// However endpoints fail, no more than maxEjectionPercent of them are ejected at once (one
    /// ejection is always allowed).
    #[test]
    fn ejections_respect_max_ejection_percent(
        endpoints in 1usize..20,
        max_percent in 0u32..=100,
        split in any::<bool>(),
        events in prop::collection::vec((any::<prop::sample::Index>(), observation(), 0u64..5_000), 1..400),
    ) {
        let config = OutlierDetection {
            consecutive_5xx: Some(2),
            consecutive_gateway: Some(1),
            consecutive_local_origin: split.then_some(1),
            split_external_local_origin_errors: split,
            interval: Duration::from_secs(1),
            base_ejection_time: Duration::from_secs(3),
            max_ejection_percent: max_percent,
            min_health_percent: 0,
            http_error_codes: Box::new([]),
        };
        let mut d = OutlierDetector::new(config, endpoints);
        let mut now = Duration::ZERO;
        for (who, what, step_ms) in events {
            now += Duration::from_millis(step_ms);
            d.tick(now);
            d.observe(who.index(endpoints), what, now);
            let ejected = d.ejected_count(now) as u64;
            prop_assert!(
                ejected <= 1 || (ejected - 1) * 100 < u64::from(max_percent) * endpoints as u64,
                "{ejected} of {endpoints} ejected with maxEjectionPercent {max_percent}"
            );
        }
    }

    /// When the rate budget grants a retry, the retries of the window ending then do not exceed
    /// the reserve plus percent of that window's requests.
    #[test]
    fn rate_budget_never_exceeds_its_bound(
        percent in 0.0f64..100.0,
        min_per_second in 0u32..5,
        events in prop::collection::vec((any::<bool>(), 0u64..700), 1..600),
    ) {
        let ttl = Duration::from_secs(2);
        let mut b = RateBudget::new(ttl, min_per_second, percent);
        let mut now = Duration::ZERO;
        let mut log: Vec<(Duration, bool)> = Vec::new();
        for (retry, step_ms) in events {
            now += Duration::from_millis(step_ms);
            if !retry {
                b.deposit(now);
                log.push((now, false));
                continue;
            }
            if !b.withdraw(now) {
                continue;
            }
            log.push((now, true));
            let in_window: Vec<&(Duration, bool)> = log.iter().filter(|(t, _)| now.saturating_sub(*t) < ttl).collect();
            let requests = in_window.iter().filter(|(_, r)| !r).count() as f64;
            let retries = in_window.iter().filter(|(_, r)| *r).count() as f64;
            let bound = f64::from(min_per_second) * 2.0 + (requests * percent / 100.0).floor();
            prop_assert!(retries <= bound, "{retries} retries > {bound} ({requests} requests at {percent}%)");
        }
    }

    /// The concurrency budget's limit is floor(percent × active) but never below the minimum.
    #[test]
    fn concurrency_budget_bound(percent in 0.0f64..=100.0, min in 0u32..10, active in 0u32..10_000) {
        let b = ConcurrencyBudget { percent, min_retry_concurrency: min };
        let limit = b.limit(active);
        prop_assert!(limit >= min);
        prop_assert!(f64::from(limit) <= (f64::from(active) * percent / 100.0).max(f64::from(min)) + 1e-9);
        prop_assert!(!b.allows(limit, active));
    }
}

proptest! {
    /// Any header value — stray `%`, unclosed `(`, empty names — is read without a panic; a
    /// value without `%` is its own literal, and what is expanded is a valid header value or
    /// nothing.
    #[test]
    fn header_values_of_any_shape_are_read_safely(value in "[%A-Z_()a-z0-9 .:-]{0,40}") {
        use mesh_core::header_format::{HeaderContext, ParsedValue, parse, unsupported_variables};
        let _ = unsupported_variables(&value);
        match parse(&value) {
            ParsedValue::Literal(l) => {
                if !value.contains('%') {
                    prop_assert_eq!(l, value.clone());
                }
            }
            ParsedValue::Format(f) => {
                let ctx = HeaderContext {
                    downstream_remote: "10.0.0.7:5000".parse().ok(),
                    upstream: Some("10.0.0.8:80"),
                    version: Some(http::Version::HTTP_11),
                    ..Default::default()
                };
                let _ = f.render(&ctx, &http::HeaderMap::new());
                prop_assert_eq!(f.source(), value.as_str());
            }
        }
    }
}
