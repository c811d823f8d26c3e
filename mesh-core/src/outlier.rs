//! Outlier detection: passive health checking that ejects failing endpoints for a while.
//!
//! Istio's `outlierDetection` onto Envoy's detector
//! (<https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/outlier>,
//! <https://istio.io/latest/docs/reference/config/networking/destination-rule/#OutlierDetection>):
//!
//! - `consecutive5xxErrors`: that many 5xx in a row eject the endpoint (502/503/504 included;
//!   codes in `outlierDetectionHttpErrorCodes` count too).
//! - `consecutiveGatewayErrors`: that many 502/503/504 in a row eject it.
//! - Local-origin failures (connect failure, reset, timeout) count as 503s, unless
//!   `splitExternalLocalOriginErrors` is set: then they are counted apart and
//!   `consecutiveLocalOriginFailures` of them eject.
//! - An ejection lasts `baseEjectionTime × n`, n the endpoint's ejection count (capped at 300 s or
//!   the base time if larger); the count decreases by one for every `interval` the endpoint then
//!   stays healthy.
//! - At most `maxEjectionPercent` of endpoints are ejected at once, but one can always be.
//! - Below `minHealthPercent` healthy endpoints (panic threshold), ejections are ignored and
//!   traffic goes to every endpoint.
//!
//! Time is passed in (`now`, a monotonic duration since any fixed origin).

use std::time::Duration;

use crate::policy::OutlierDetection;

/// Envoy's `max_ejection_time` default.
const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// What an endpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A response with this status.
    Status(u16),
    /// A failure before any response: connect failure, reset, timeout.
    LocalOriginFailure,
    /// A connection was made (resets the local-origin count when split).
    LocalOriginSuccess,
}

/// Why an endpoint was ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionReason {
    /// `consecutive5xxErrors`.
    Consecutive5xx,
    /// `consecutiveGatewayErrors`.
    ConsecutiveGateway,
    /// `consecutiveLocalOriginFailures`.
    ConsecutiveLocalOrigin,
}

/// An ejection that just happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// The endpoint.
    pub endpoint: usize,
    /// Until when.
    pub until: Duration,
    /// Why.
    pub reason: EjectionReason,
}

#[derive(Debug, Clone, Default)]
struct Health {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    consecutive_local: u32,
    ejected_until: Option<Duration>,
    returned_at: Duration,
    ejections: u32,
}

/// The detector for one cluster's endpoints.
#[derive(Debug, Clone)]
pub struct OutlierDetector {
    config: OutlierDetection,
    hosts: Vec<Health>,
    last_tick: Duration,
}

impl OutlierDetector {
    /// A detector for `endpoints` endpoints.
    pub fn new(config: OutlierDetection, endpoints: usize) -> Self {
        OutlierDetector { config, hosts: vec![Health::default(); endpoints], last_tick: Duration::ZERO }
    }

    /// The configuration.
    pub fn config(&self) -> &OutlierDetection {
        &self.config
    }

    /// Resize for a changed endpoint set, keeping the state of endpoints `0..min(old, new)`.
    pub fn resize(&mut self, endpoints: usize) {
        self.hosts.resize(endpoints, Health::default());
    }

    /// Is the endpoint ejected at `now`?
    pub fn is_ejected(&self, endpoint: usize, now: Duration) -> bool {
        self.hosts.get(endpoint).and_then(|h| h.ejected_until).is_some_and(|until| now < until)
    }

    /// How many endpoints are ejected at `now`.
    pub fn ejected_count(&self, now: Duration) -> usize {
        (0..self.hosts.len()).filter(|&i| self.is_ejected(i, now)).count()
    }

    /// Below the panic threshold (`minHealthPercent`), ejections are ignored.
    pub fn in_panic(&self, now: Duration) -> bool {
        let n = self.hosts.len();
        if n == 0 || self.config.min_health_percent == 0 {
            return false;
        }
        let healthy = n - self.ejected_count(now);
        (healthy as u64) * 100 < u64::from(self.config.min_health_percent) * n as u64
    }

    /// May the endpoint receive traffic at `now` (not ejected, or the pool is in panic)?
    pub fn eligible(&self, endpoint: usize, now: Duration) -> bool {
        !self.is_ejected(endpoint, now) || self.in_panic(now)
    }

    /// Every endpoint's [`eligible`](Self::eligible) verdict at `now` (the panic check made once,
    /// not per endpoint), in endpoint order.
    pub fn eligibility(&self, now: Duration) -> impl Iterator<Item = bool> + '_ {
        let panic = self.in_panic(now);
        (0..self.hosts.len()).map(move |i| panic || !self.is_ejected(i, now))
    }

    /// Until when the verdicts at `now` hold without a new observation: the earliest end of an
    /// ejection in force (`None`: none is, they hold until something is observed). A caller may
    /// keep [`eligibility`](Self::eligibility) read at `now` and reuse it until then.
    pub fn stable_until(&self, now: Duration) -> Option<Duration> {
        self.hosts.iter().filter_map(|h| h.ejected_until).filter(|until| now < *until).min()
    }

    /// Record what an endpoint did; returns the ejection it caused, if any.
    pub fn observe(&mut self, endpoint: usize, observation: Observation, now: Duration) -> Option<Ejection> {
        let split = self.config.split_external_local_origin_errors;
        let status = match observation {
            Observation::Status(s) => Some(s),
            Observation::LocalOriginFailure if !split => Some(503),
            Observation::LocalOriginFailure => None,
            Observation::LocalOriginSuccess => {
                if let Some(h) = self.hosts.get_mut(endpoint) {
                    h.consecutive_local = 0;
                }
                return None;
            }
        };
        let cfg = &self.config;
        let h = self.hosts.get_mut(endpoint)?;
        let mut reason = None;
        match status {
            Some(code) => {
                let error = code >= 500 || cfg.http_error_codes.contains(&code);
                let gateway = matches!(code, 502..=504);
                h.consecutive_5xx = if error { h.consecutive_5xx + 1 } else { 0 };
                h.consecutive_gateway = if gateway { h.consecutive_gateway + 1 } else { 0 };
                if cfg.consecutive_gateway.is_some_and(|t| h.consecutive_gateway >= t) {
                    reason = Some(EjectionReason::ConsecutiveGateway);
                } else if cfg.consecutive_5xx.is_some_and(|t| h.consecutive_5xx >= t) {
                    reason = Some(EjectionReason::Consecutive5xx);
                }
            }
            None => {
                h.consecutive_local += 1;
                if cfg.consecutive_local_origin.is_some_and(|t| h.consecutive_local >= t) {
                    reason = Some(EjectionReason::ConsecutiveLocalOrigin);
                }
            }
        }
        let reason = reason?;
        if self.is_ejected(endpoint, now) {
            return None;
        }
        let ejected = self.ejected_count(now) as u64;
        let total = self.hosts.len() as u64;
        if ejected > 0 && ejected * 100 >= u64::from(self.config.max_ejection_percent) * total {
            return None;
        }
        let base = self.config.base_ejection_time;
        let h = &mut self.hosts[endpoint];
        h.ejections += 1;
        let time = base.saturating_mul(h.ejections).min(MAX_EJECTION_TIME.max(base));
        let until = now + time;
        h.ejected_until = Some(until);
        h.consecutive_5xx = 0;
        h.consecutive_gateway = 0;
        h.consecutive_local = 0;
        Some(Ejection { endpoint, until, reason })
    }

    /// Run the interval sweeps due by `now`, in order: ejections that have ended are lifted, and
    /// an endpoint back and healthy for a whole interval has its ejection count decreased. Returns
    /// the endpoints whose ejection ended since the last call.
    pub fn tick(&mut self, now: Duration) -> Vec<usize> {
        let interval = self.config.interval.max(Duration::from_millis(1));
        let mut returned = Vec::new();
        let lift = |hosts: &mut Vec<Health>, t: Duration, returned: &mut Vec<usize>| {
            for (i, h) in hosts.iter_mut().enumerate() {
                if let Some(until) = h.ejected_until
                    && t >= until
                {
                    h.ejected_until = None;
                    h.returned_at = until;
                    returned.push(i);
                }
            }
        };
        while now >= self.last_tick + interval {
            self.last_tick += interval;
            let t = self.last_tick;
            lift(&mut self.hosts, t, &mut returned);
            for h in &mut self.hosts {
                if h.ejected_until.is_none() && h.ejections > 0 && t >= h.returned_at + interval {
                    h.ejections -= 1;
                }
            }
        }
        lift(&mut self.hosts, now, &mut returned);
        returned
    }

    /// The ejection count of an endpoint (multiplies its next ejection time).
    pub fn ejections(&self, endpoint: usize) -> u32 {
        self.hosts.get(endpoint).map_or(0, |h| h.ejections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: Some(3),
            consecutive_gateway: None,
            consecutive_local_origin: None,
            split_external_local_origin_errors: false,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 100,
            min_health_percent: 0,
            http_error_codes: Box::new([]),
        }
    }

    const T0: Duration = Duration::from_secs(100);

    #[test]
    fn the_eligibility_view_holds_until_the_first_ejection_ends_and_honours_panic() {
        let mut d = OutlierDetector::new(OutlierDetection { max_ejection_percent: 100, ..config() }, 3);
        assert_eq!(d.stable_until(T0), None);
        assert!(d.eligibility(T0).all(|e| e));
        for _ in 0..3 {
            d.observe(1, Observation::Status(500), T0);
        }
        assert_eq!(d.eligibility(T0).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(d.stable_until(T0), Some(T0 + Duration::from_secs(30)));
        // At the end of the ejection the view no longer holds; after it, the endpoint is back.
        assert_eq!(d.stable_until(T0 + Duration::from_secs(30)), None);
        assert!(d.eligibility(T0 + Duration::from_secs(30)).all(|e| e));
        // Below minHealthPercent every endpoint is eligible again (panic), as `eligible` says.
        let mut p = OutlierDetector::new(OutlierDetection { min_health_percent: 90, ..config() }, 3);
        for _ in 0..3 {
            p.observe(0, Observation::Status(500), T0);
        }
        assert!(p.eligibility(T0).all(|e| e));
        assert!((0..3).all(|i| p.eligible(i, T0)));
    }

    #[test]
    fn consecutive_5xx_eject_and_return_after_base_time() {
        let mut d = OutlierDetector::new(config(), 2);
        assert_eq!(d.observe(0, Observation::Status(500), T0), None);
        assert_eq!(d.observe(0, Observation::Status(200), T0), None, "a success resets the count");
        d.observe(0, Observation::Status(503), T0);
        d.observe(0, Observation::LocalOriginFailure, T0);
        let e = d.observe(0, Observation::Status(500), T0).expect("third consecutive error ejects");
        assert_eq!((e.reason, e.until), (EjectionReason::Consecutive5xx, T0 + Duration::from_secs(30)));
        assert!(!d.eligible(0, T0 + Duration::from_secs(29)));
        assert!(d.eligible(0, T0 + Duration::from_secs(30)));
        assert_eq!(d.tick(T0 + Duration::from_secs(30)), vec![0]);
        // A second ejection lasts twice as long.
        for _ in 0..3 {
            d.observe(0, Observation::Status(500), T0 + Duration::from_secs(31));
        }
        assert!(d.is_ejected(0, T0 + Duration::from_secs(31 + 59)));
        assert!(!d.is_ejected(0, T0 + Duration::from_secs(31 + 60)));
    }

    #[test]
    fn gateway_errors_and_split_local_origin() {
        let mut cfg = config();
        cfg.consecutive_5xx = None;
        cfg.consecutive_gateway = Some(2);
        let mut d = OutlierDetector::new(cfg.clone(), 1);
        assert_eq!(d.observe(0, Observation::Status(500), T0), None);
        d.observe(0, Observation::Status(502), T0);
        assert_eq!(
            d.observe(0, Observation::Status(504), T0).map(|e| e.reason),
            Some(EjectionReason::ConsecutiveGateway)
        );

        cfg.split_external_local_origin_errors = true;
        cfg.consecutive_local_origin = Some(2);
        let mut d = OutlierDetector::new(cfg, 1);
        assert_eq!(d.observe(0, Observation::LocalOriginFailure, T0), None);
        assert_eq!(d.observe(0, Observation::LocalOriginSuccess, T0), None);
        assert_eq!(d.observe(0, Observation::LocalOriginFailure, T0), None);
        let e = d.observe(0, Observation::LocalOriginFailure, T0).expect("ejected");
        assert_eq!(e.reason, EjectionReason::ConsecutiveLocalOrigin);
    }

    #[test]
    fn max_ejection_percent_and_panic() {
        let mut cfg = config();
        cfg.max_ejection_percent = 10;
        let mut d = OutlierDetector::new(cfg.clone(), 5);
        for host in 0..5 {
            for _ in 0..3 {
                d.observe(host, Observation::Status(500), T0);
            }
        }
        assert_eq!(d.ejected_count(T0), 1, "10% of 5 rounds down, but one can always be ejected");

        cfg.max_ejection_percent = 100;
        cfg.min_health_percent = 50;
        let mut d = OutlierDetector::new(cfg, 2);
        for _ in 0..3 {
            d.observe(0, Observation::Status(500), T0);
        }
        assert!(!d.eligible(0, T0), "1 of 2 healthy is not below 50%");
        for _ in 0..3 {
            d.observe(1, Observation::Status(500), T0);
        }
        assert!(d.in_panic(T0) && d.eligible(0, T0) && d.eligible(1, T0), "panic: every endpoint serves");
    }

    #[test]
    fn ejection_count_decays_while_healthy() {
        let mut d = OutlierDetector::new(config(), 1);
        for _ in 0..3 {
            d.observe(0, Observation::Status(500), T0);
        }
        assert_eq!(d.ejections(0), 1);
        d.tick(T0 + Duration::from_secs(30));
        d.tick(T0 + Duration::from_secs(200));
        assert_eq!(d.ejections(0), 0);
    }
}
