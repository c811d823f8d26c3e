//! Endpoint selection: round robin, random, least request, ring hash and Maglev.
//!
//! Istio's `loadBalancer.simple` and `consistentHash` map onto Envoy's load balancers
//! (<https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/load_balancers>):
//!
//! - `ROUND_ROBIN`: each eligible endpoint in turn, in proportion to its weight.
//! - `RANDOM`: an eligible endpoint at random, in proportion to its weight.
//! - `LEAST_REQUEST` (Istio's default, also `LEAST_CONN`): power of two choices — two random
//!   eligible endpoints, the one with fewer active requests (relative to its weight) wins.
//! - consistent hash, `ringHash`: each endpoint owns `≈ ring size × weight share` points of a
//!   64-bit ring (xxh64 of `address_n`); a key goes to the first point at or after its hash.
//! - consistent hash, `maglev`: Envoy's weighted Maglev table (prime size, 65537 by default);
//!   a key goes to `table[hash % size]`. Removing one of N endpoints moves about 1/N of the keys.
//!
//! Randomness and load come from the caller ([`PickContext`]), so every pick is reproducible in
//! tests. Endpoints that may not be picked (ejected by outlier detection, already tried by this
//! request) are excluded through [`PickContext::eligible`]; hash balancers then walk on to the
//! next eligible endpoint of the ring or table.

use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh64::xxh64;

use crate::policy::{HashAlgorithm, LoadBalancer};

/// A source of uniform random numbers.
pub trait RandomSource {
    /// The next uniform `u64`.
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64: a small, fast, deterministic generator (for tests and seeding).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The stable hash of a consistent-hash key (xxh64, seed 0, as Envoy).
pub fn hash_key(key: &[u8]) -> u64 {
    xxh64(key, 0)
}

/// What one pick needs from the caller.
pub struct PickContext<'a> {
    /// Random numbers.
    pub rng: &'a mut dyn RandomSource,
    /// The consistent-hash key's hash, when the policy hashes.
    pub hash: Option<u64>,
    /// Active requests per endpoint (for least request).
    pub active: &'a dyn Fn(usize) -> u64,
    /// May this endpoint be picked?
    pub eligible: &'a dyn Fn(usize) -> bool,
}

impl std::fmt::Debug for PickContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickContext").field("hash", &self.hash).finish_non_exhaustive()
    }
}

/// A load balancer built for one set of endpoints (rebuilt when the set changes).
#[derive(Debug)]
pub struct Balancer {
    weights: Box<[u32]>,
    cumulative: Box<[u64]>,
    kind: Kind,
    counter: AtomicU64,
}

#[derive(Debug)]
enum Kind {
    RoundRobin,
    Random,
    LeastRequest,
    Ring(Box<[(u64, u32)]>),
    Maglev(Box<[u32]>),
}

impl Balancer {
    /// Build for endpoints identified by `keys` (addresses; they seed the hash tables) with
    /// `weights` (0 is treated as 1). `policy` `None` is Istio's default, LEAST_REQUEST.
    pub fn new(policy: Option<&LoadBalancer>, keys: &[&str], weights: &[u32]) -> Balancer {
        let weights: Box<[u32]> = (0..keys.len()).map(|i| weights.get(i).copied().unwrap_or(1).max(1)).collect();
        let mut sum = 0u64;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += u64::from(*w);
                sum
            })
            .collect();
        let kind = match policy {
            None | Some(LoadBalancer::LeastRequest) => Kind::LeastRequest,
            Some(LoadBalancer::RoundRobin) | Some(LoadBalancer::Passthrough) => Kind::RoundRobin,
            Some(LoadBalancer::Random) => Kind::Random,
            Some(LoadBalancer::ConsistentHash(ch)) => match ch.algorithm {
                HashAlgorithm::RingHash { minimum_ring_size } => {
                    Kind::Ring(build_ring(keys, &weights, minimum_ring_size))
                }
                HashAlgorithm::Maglev { table_size } => Kind::Maglev(build_maglev(keys, &weights, table_size)),
            },
        };
        Balancer { weights, cumulative, kind, counter: AtomicU64::new(0) }
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// No endpoints?
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    fn weighted_index(&self, r: u64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        self.cumulative.partition_point(|&c| c <= r % total)
    }

    /// Pick an eligible endpoint, or `None` when none is eligible.
    pub fn pick(&self, ctx: &mut PickContext<'_>) -> Option<usize> {
        let n = self.weights.len();
        if n == 0 {
            return None;
        }
        if n == 1 {
            // Every policy picks the only endpoint when it may serve.
            return (ctx.eligible)(0).then_some(0);
        }
        match &self.kind {
            Kind::RoundRobin => {
                let total = self.cumulative.last().copied().unwrap_or(1);
                for _ in 0..total.min(4 * n as u64 + 16) {
                    let c = self.counter.fetch_add(1, Ordering::Relaxed);
                    let i = self.weighted_index(c);
                    if (ctx.eligible)(i) {
                        return Some(i);
                    }
                }
                (0..n).find(|&i| (ctx.eligible)(i))
            }
            Kind::Random => self.random_eligible(ctx),
            Kind::LeastRequest => {
                let a = self.random_eligible(ctx)?;
                let b = (0..8)
                    .find_map(|_| self.random_eligible(ctx).filter(|&b| b != a))
                    .or_else(|| (0..n).find(|&i| i != a && (ctx.eligible)(i)));
                let Some(b) = b else { return Some(a) };
                // Fewer active requests per unit of weight wins; ties go to the first draw.
                let load =
                    |i: usize| u128::from((ctx.active)(i)) * u128::from(self.weights[if i == a { b } else { a }]);
                Some(if load(b) < load(a) { b } else { a })
            }
            Kind::Ring(ring) => {
                let h = ctx.hash.unwrap_or_else(|| ctx.rng.next_u64());
                let start = ring.partition_point(|(p, _)| *p < h);
                (0..ring.len()).map(|k| ring[(start + k) % ring.len()].1 as usize).find(|&i| (ctx.eligible)(i))
            }
            Kind::Maglev(table) => {
                let h = ctx.hash.unwrap_or_else(|| ctx.rng.next_u64());
                let len = table.len() as u64;
                let start = (h % len) as usize;
                // Walk on through the table, as Envoy's rehash does, to skip ineligible endpoints.
                (0..table.len()).map(|k| table[(start + k) % table.len()] as usize).find(|&i| (ctx.eligible)(i))
            }
        }
    }

    /// Does slow start apply to this policy? Envoy supports it for ROUND_ROBIN and LEAST_REQUEST
    /// only, and Istio sets `slowStartConfig` only in those two cases (istio/istio
    /// `pilot/pkg/networking/core/cluster_traffic_policy.go`, `applyRoundRobinLoadBalancer`,
    /// `applyLeastRequestLoadBalancer`; RANDOM and consistent hashing get none).
    pub fn slow_start_applies(&self) -> bool {
        matches!(self.kind, Kind::RoundRobin | Kind::LeastRequest)
    }

    /// Pick an eligible endpoint with each endpoint's weight scaled by `factor(i)` (slow start:
    /// Envoy multiplies a warming endpoint's load-balancing weight by its time factor, so an
    /// endpoint at factor 0.25 beside a warm one of the same weight gets 0.25 / 1.25 = 20 % of
    /// the requests). ROUND_ROBIN draws by the scaled weights (Envoy's EDF scheduler gives the
    /// same shares); LEAST_REQUEST draws two candidates by the scaled weights and keeps the one
    /// with fewer active requests per unit of scaled weight. Other policies ignore `factor`
    /// (see [`Balancer::slow_start_applies`]).
    pub fn pick_scaled(&self, ctx: &mut PickContext<'_>, factor: &dyn Fn(usize) -> f64) -> Option<usize> {
        if !self.slow_start_applies() || self.weights.len() < 2 {
            return self.pick(ctx);
        }
        let weight = |i: usize| f64::from(self.weights[i]) * factor(i).clamp(0.0, 1.0);
        let a = self.scaled_draw(ctx, &weight, None)?;
        if matches!(self.kind, Kind::RoundRobin) {
            return Some(a);
        }
        let Some(b) = self.scaled_draw(ctx, &weight, Some(a)) else { return Some(a) };
        let load = |i: usize, other: usize| (ctx.active)(i) as f64 * weight(other);
        Some(if load(b, a) < load(a, b) { b } else { a })
    }

    /// One eligible endpoint (other than `except`) drawn in proportion to `weight`; uniformly
    /// when every eligible weight is 0.
    fn scaled_draw(
        &self,
        ctx: &mut PickContext<'_>,
        weight: &dyn Fn(usize) -> f64,
        except: Option<usize>,
    ) -> Option<usize> {
        let candidate = |i: usize| Some(i) != except && (ctx.eligible)(i);
        let n = self.weights.len();
        let total: f64 = (0..n).filter(|&i| candidate(i)).map(weight).sum();
        let unit = (ctx.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        if total <= 0.0 {
            let count = (0..n).filter(|&i| candidate(i)).count();
            let k = (unit * count as f64) as usize;
            return (0..n).filter(|&i| candidate(i)).nth(k.min(count.saturating_sub(1)));
        }
        let mut r = unit * total;
        let mut last = None;
        for i in (0..n).filter(|&i| candidate(i)) {
            let w = weight(i);
            if r < w {
                return Some(i);
            }
            r -= w;
            last = Some(i);
        }
        last
    }

    fn random_eligible(&self, ctx: &mut PickContext<'_>) -> Option<usize> {
        for _ in 0..8 {
            let i = self.weighted_index(ctx.rng.next_u64());
            if (ctx.eligible)(i) {
                return Some(i);
            }
        }
        let eligible: Vec<usize> = (0..self.weights.len()).filter(|&i| (ctx.eligible)(i)).collect();
        if eligible.is_empty() {
            return None;
        }
        let total: u64 = eligible.iter().map(|&i| u64::from(self.weights[i])).sum();
        let mut r = ctx.rng.next_u64() % total;
        for &i in &eligible {
            let w = u64::from(self.weights[i]);
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        eligible.last().copied()
    }
}

/// Ketama-style ring. Each unit of weight owns `minimum_ring_size` points (so the ring has at
/// least that many), scaled down only when the ring would pass 8M points (Envoy's maximum). The
/// number of points an endpoint owns does not depend on the other endpoints, so when one leaves
/// only the keys on its own points move: 1/N of them.
fn build_ring(keys: &[&str], weights: &[u32], minimum_ring_size: u64) -> Box<[(u64, u32)]> {
    const MAX_RING: u64 = 8 << 20;
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum::<u64>().max(1);
    let per_unit = minimum_ring_size.clamp(1, (MAX_RING / total).max(1));
    let mut ring = Vec::with_capacity((per_unit * total) as usize);
    for (i, key) in keys.iter().enumerate() {
        let points = per_unit * u64::from(weights[i]);
        let mut buf = String::with_capacity(key.len() + 12);
        for p in 0..points {
            buf.clear();
            buf.push_str(key);
            buf.push('_');
            buf.push_str(&p.to_string());
            ring.push((hash_key(buf.as_bytes()), i as u32));
        }
    }
    ring.sort_unstable();
    ring.into_boxed_slice()
}

/// Envoy's weighted Maglev table.
/// The smallest prime ≥ `n` (trial division: table sizes stay below a few million).
fn next_prime(n: u64) -> u64 {
    let is_prime = |k: u64| k >= 2 && (2..).take_while(|d| d * d <= k).all(|d| !k.is_multiple_of(d));
    (n.max(2)..).find(|k| is_prime(*k)).unwrap_or(n)
}

fn build_maglev(keys: &[&str], weights: &[u32], table_size: u64) -> Box<[u32]> {
    // The probe sequence (offset + skip * n) mod m visits every slot only when m is prime: a
    // table size made larger than the configured prime by many endpoints is moved up to the
    // next prime, or filling the table could loop forever.
    let m = next_prime(table_size.max(keys.len() as u64).max(1));
    let max_weight = u64::from(weights.iter().copied().max().unwrap_or(1));
    struct Entry {
        offset: u64,
        skip: u64,
        next: u64,
        weight: u64,
        target: u64,
    }
    let mut entries: Vec<Entry> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Entry {
            offset: xxh64(k.as_bytes(), 0) % m,
            skip: if m > 1 { xxh64(k.as_bytes(), 1) % (m - 1) + 1 } else { 1 },
            next: 0,
            weight: u64::from(weights[i]),
            target: 0,
        })
        .collect();
    let mut table = vec![u32::MAX; m as usize];
    if entries.is_empty() {
        return Box::new([]);
    }
    let mut filled = 0u64;
    let mut iteration = 1u64;
    while filled < m {
        for (i, e) in entries.iter_mut().enumerate() {
            if filled >= m {
                break;
            }
            if iteration * e.weight < e.target {
                continue;
            }
            e.target += max_weight;
            let mut c = (e.offset + e.skip * e.next) % m;
            while table[c as usize] != u32::MAX {
                e.next += 1;
                c = (e.offset + e.skip * e.next) % m;
            }
            table[c as usize] = i as u32;
            e.next += 1;
            filled += 1;
        }
        iteration += 1;
    }
    table.into_boxed_slice()
}

/// Which request attribute a consistent hash reads; returns the key bytes' hash.
pub fn request_hash(
    key: &crate::policy::HashKey,
    req: &crate::request::RequestView<'_>,
    source_ip: Option<&str>,
) -> Option<u64> {
    use crate::policy::HashKey;
    match key {
        HashKey::Header(name) => req.headers.header(name).map(|v| hash_key(v.as_bytes())),
        HashKey::Cookie { name, .. } => req.headers.header("cookie").and_then(|c| {
            c.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == &**name).then(|| hash_key(v.as_bytes()))
            })
        }),
        HashKey::SourceIp => source_ip.map(|ip| hash_key(ip.as_bytes())),
        HashKey::QueryParameter(name) => req.query_param(name).map(|v| hash_key(v.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ConsistentHash;
    use crate::policy::HashKey;

    fn ctx<'a>(
        rng: &'a mut SplitMix64,
        active: &'a dyn Fn(usize) -> u64,
        eligible: &'a dyn Fn(usize) -> bool,
        hash: Option<u64>,
    ) -> PickContext<'a> {
        PickContext { rng, hash, active, eligible }
    }

    #[test]
    fn maglev_tables_smaller_than_the_endpoints_fill_without_looping() {
        // tableSize 1 or 3 (accepted by Istio) with more endpoints: the table grows to a prime.
        let keys: Vec<String> = (0..12).map(|i| format!("10.0.0.{i}:80")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        for size in [1, 3, 7] {
            let table = build_maglev(&keys, &[1; 12], size);
            assert_eq!(table.len(), 13, "the next prime above 12 endpoints");
            assert!(table.iter().all(|e| (*e as usize) < keys.len()));
        }
        assert_eq!(next_prime(65_537), 65_537);
        assert_eq!(next_prime(12), 13);
    }

    #[test]
    fn round_robin_cycles_by_weight() {
        let b = Balancer::new(Some(&LoadBalancer::RoundRobin), &["a", "b", "c"], &[1, 1, 2]);
        let mut rng = SplitMix64(1);
        let idle = |_: usize| 0u64;
        let all = |_: usize| true;
        let picks: Vec<usize> = (0..8).filter_map(|_| b.pick(&mut ctx(&mut rng, &idle, &all, None))).collect();
        assert_eq!(picks, [0, 1, 2, 2, 0, 1, 2, 2]);
        let not_b = |i: usize| i != 1;
        assert!((0..20).all(|_| b.pick(&mut ctx(&mut rng, &idle, &not_b, None)) != Some(1)));
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let b = Balancer::new(None, &["a", "b"], &[1, 1]);
        let mut rng = SplitMix64(7);
        let busy_a = |i: usize| if i == 0 { 10 } else { 0 };
        let all = |_: usize| true;
        assert!((0..100).all(|_| b.pick(&mut ctx(&mut rng, &busy_a, &all, None)) == Some(1)));
    }

    #[test]
    fn nothing_eligible_means_none() {
        for policy in [None, Some(LoadBalancer::Random), Some(LoadBalancer::RoundRobin)] {
            let b = Balancer::new(policy.as_ref(), &["a", "b"], &[1, 1]);
            let mut rng = SplitMix64(3);
            assert_eq!(b.pick(&mut ctx(&mut rng, &|_| 0, &|_| false, None)), None);
        }
    }

    #[test]
    fn hash_keys_from_requests() {
        let headers: Vec<(String, String)> =
            vec![("x-user".into(), "bob".into()), ("cookie".into(), "a=1; session=xyz".into())];
        let req = crate::request::RequestView {
            method: "GET",
            scheme: "http",
            authority: "s",
            path: "/",
            query: Some("u=7"),
            headers: &headers,
            listener_port: None,
        };
        assert_eq!(request_hash(&HashKey::Header("x-user".into()), &req, None), Some(hash_key(b"bob")));
        let cookie = HashKey::Cookie { name: "session".into(), path: None, ttl: None };
        assert_eq!(request_hash(&cookie, &req, None), Some(hash_key(b"xyz")));
        assert_eq!(request_hash(&HashKey::QueryParameter("u".into()), &req, None), Some(hash_key(b"7")));
        assert_eq!(request_hash(&HashKey::SourceIp, &req, Some("10.0.0.1")), Some(hash_key(b"10.0.0.1")));
        let _ = ConsistentHash { key: HashKey::SourceIp, algorithm: HashAlgorithm::Maglev { table_size: 65537 } };
    }
}
