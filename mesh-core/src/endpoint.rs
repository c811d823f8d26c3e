//! The endpoint pick of a cluster, as a pure function: which endpoint one request (or one TCP
//! connection) goes to, given what the caller knows at that moment.
//!
//! The tower cluster (`mesh_tower::Cluster`) keeps the state — active requests, the outlier
//! detector's verdicts, when each endpoint joined — and passes it in as functions; randomness
//! comes from a [`RandomSource`]. The order of preferences is Envoy's:
//!
//! 1. **Locality** (when [`EndpointPick::priorities`] is set — Istio's locality failover, see
//!    [`crate::locality`]): a priority level is chosen by how healthy each level is
//!    ([`locality::priority_loads`], Envoy's priority load with the 1.4 overprovisioning
//!    factor), and the balancer picks within it.
//! 2. **Slow start** (`warmup` / `warmupDurationSecs`): an endpoint still warming up has its
//!    weight scaled by its factor ([`crate::policy::Warmup::factor`]), as Envoy scales it, under
//!    ROUND_ROBIN and LEAST_REQUEST only (see [`Balancer::pick_scaled`]; Istio configures slow
//!    start for no other policy).
//! 3. **Retries avoid the endpoints already tried** (Envoy's `previous_hosts` retry predicate,
//!    which Istio sets on every route): skipped while another healthy endpoint remains, taken
//!    again when none does.
//! 4. **Ejected endpoints are never picked** ([`EndpointPick::healthy`] is the outlier
//!    detector's verdict, which already accounts for panic mode).
//!

use crate::balance::{Balancer, PickContext, RandomSource};
use crate::locality;

/// What one pick reads (see the module docs).
pub struct EndpointPick<'a> {
    /// The cluster's load balancer.
    pub balancer: &'a Balancer,
    /// The consistent-hash key's hash, when the policy hashes.
    pub hash: Option<u64>,
    /// Each endpoint's locality priority (0 nearest), when locality failover applies.
    pub priorities: Option<&'a [u8]>,
    /// May the endpoint receive traffic (not ejected, or the pool is in panic)?
    pub healthy: &'a dyn Fn(usize) -> bool,
    /// Has this request tried the endpoint already?
    pub tried: &'a dyn Fn(usize) -> bool,
    /// Slow start: each endpoint's weight factor in `0.0..=1.0` (1 when warm); `None` without
    /// slow start.
    pub warmup: Option<&'a dyn Fn(usize) -> f64>,
    /// Active requests per endpoint (least request).
    pub active: &'a dyn Fn(usize) -> u64,
}

impl std::fmt::Debug for EndpointPick<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPick")
            .field("hash", &self.hash)
            .field("priorities", &self.priorities)
            .field("slow_start", &self.warmup.is_some())
            .finish_non_exhaustive()
    }
}

impl EndpointPick<'_> {
    /// The endpoint for this request, or `None` when no healthy endpoint is left.
    pub fn pick(&self, rng: &mut dyn RandomSource) -> Option<usize> {
        let healthy = self.healthy;
        let fresh = |i: usize| healthy(i) && !(self.tried)(i);
        if let Some(priorities) = self.priorities {
            // No allocation: at most five levels.
            let mut counts = [(0u32, 0u32); locality::MAX_LEVELS];
            for (i, p) in priorities.iter().enumerate() {
                if let Some(c) = counts.get_mut(usize::from(*p)) {
                    c.1 += 1;
                    c.0 += u32::from(healthy(i));
                }
            }
            let mut loads = [0u64; locality::MAX_LEVELS];
            locality::priority_loads(&counts, &mut loads);
            if let Some(level) = locality::choose(&loads, rng.next_u64()) {
                let at_level = |i: usize| priorities.get(i).is_some_and(|p| usize::from(*p) == level);
                if let Some(i) = self.balance(rng, &|i: usize| at_level(i) && fresh(i)) {
                    return Some(i);
                }
            }
        }
        if let Some(i) = self.balance(rng, &fresh) {
            return Some(i);
        }
        self.balance(rng, healthy)
    }

    fn balance(&self, rng: &mut dyn RandomSource, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let mut ctx = PickContext { rng, hash: self.hash, active: self.active, eligible };
        match self.warmup {
            Some(factor) => self.balancer.pick_scaled(&mut ctx, factor),
            None => self.balancer.pick(&mut ctx),
        }
    }
}
