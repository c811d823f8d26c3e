//! Retry budgets: how many retries a client may add on top of its requests.
//!
//! Two kinds:
//!
//! - [`ConcurrencyBudget`], Istio's `retryBudget` (Envoy's `retry_budget`): retries outstanding at
//!   once may not exceed `percent` of the active requests, but `minRetryConcurrency` are always
//!   allowed (Envoy's defaults: 20 %, 3).
//! - [`RateBudget`], as Finagle and Linkerd budget retries: over a sliding window (`ttl`, 10 s),
//!   retries may not exceed `percent` of the requests made plus a reserve of `min_per_second` per
//!   second of window (20 % + 10/s by default).
//!
//! Both are exact for every percentage: the rate budget counts in parts per million, so 20 % of
//! 7 requests allows 1 retry, never 2 (tower's `TpsBudget` can over-issue for some percentages,
//! tower-rs/tower#857).

use std::collections::VecDeque;
use std::time::Duration;

use crate::policy::RetryBudget;

/// Istio's `retryBudget`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcurrencyBudget {
    /// Percent of active requests.
    pub percent: f64,
    /// Retries always allowed.
    pub min_retry_concurrency: u32,
}

impl From<RetryBudget> for ConcurrencyBudget {
    fn from(b: RetryBudget) -> Self {
        ConcurrencyBudget { percent: b.percent, min_retry_concurrency: b.min_retry_concurrency }
    }
}

impl ConcurrencyBudget {
    /// Envoy's defaults: 20 %, 3.
    pub const DEFAULT: ConcurrencyBudget = ConcurrencyBudget { percent: 20.0, min_retry_concurrency: 3 };

    /// How many retries may be outstanding with `active_requests` in flight.
    pub fn limit(&self, active_requests: u32) -> u32 {
        let share = (f64::from(active_requests) * self.percent.clamp(0.0, 100.0) / 100.0).floor();
        (share as u32).max(self.min_retry_concurrency)
    }

    /// May another retry start, with `active_retries` outstanding and `active_requests` in flight?
    pub fn allows(&self, active_retries: u32, active_requests: u32) -> bool {
        active_retries < self.limit(active_requests)
    }
}

/// A sliding-window rate budget (Finagle / Linkerd).
#[derive(Debug, Clone)]
pub struct RateBudget {
    ttl: Duration,
    reserve: u64,
    percent_ppm: u64,
    /// (time, is a retry) of every event in the window, oldest first.
    window: VecDeque<(Duration, bool)>,
    requests: u64,
    retries: u64,
}

impl RateBudget {
    /// A budget over `ttl` allowing `percent` % of requests as retries plus `min_per_second` × ttl.
    pub fn new(ttl: Duration, min_per_second: u32, percent: f64) -> Self {
        let reserve = u64::from(min_per_second) * ttl.as_secs().max(1);
        let percent_ppm = (percent.clamp(0.0, 1000.0) * 10_000.0).round() as u64;
        RateBudget { ttl, reserve, percent_ppm, window: VecDeque::new(), requests: 0, retries: 0 }
    }

    /// Linkerd's and Finagle's defaults: 10 s window, 10 retries/s, 20 %.
    pub fn default_budget() -> Self {
        RateBudget::new(Duration::from_secs(10), 10, 20.0)
    }

    fn expire(&mut self, now: Duration) {
        while let Some(&(t, retry)) = self.window.front() {
            if now.saturating_sub(t) < self.ttl {
                break;
            }
            self.window.pop_front();
            if retry {
                self.retries -= 1;
            } else {
                self.requests -= 1;
            }
        }
    }

    /// The most retries the window allows right now.
    pub fn bound(&self) -> u64 {
        self.reserve + self.requests * self.percent_ppm / 1_000_000
    }

    /// Record an original request.
    pub fn deposit(&mut self, now: Duration) {
        self.expire(now);
        self.window.push_back((now, false));
        self.requests += 1;
    }

    /// Try to spend one retry; `false` means the budget is exhausted.
    pub fn withdraw(&mut self, now: Duration) -> bool {
        self.expire(now);
        if self.retries < self.bound() {
            self.window.push_back((now, true));
            self.retries += 1;
            true
        } else {
            false
        }
    }

    /// Retries spent in the current window.
    pub fn retries_in_window(&self) -> u64 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_budget() {
        let b = ConcurrencyBudget::DEFAULT;
        assert_eq!(b.limit(0), 3);
        assert_eq!(b.limit(100), 20);
        assert!(b.allows(19, 100) && !b.allows(20, 100));
    }

    #[test]
    fn rate_budget_is_exact() {
        let mut b = RateBudget::new(Duration::from_secs(10), 0, 20.0);
        let t = Duration::from_secs(1);
        for _ in 0..7 {
            b.deposit(t);
        }
        assert!(b.withdraw(t));
        assert!(!b.withdraw(t), "20% of 7 is 1.4: one retry, not two");
        // The window slides: after ttl the spent retry and the requests are gone.
        let later = t + Duration::from_secs(10);
        assert!(!b.withdraw(later));
        for _ in 0..5 {
            b.deposit(later);
        }
        assert!(b.withdraw(later));
    }
}
