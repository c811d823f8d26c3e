//! Locality-aware load balancing: endpoints near the client first, the others as failover.
//!
//! Istio turns it on by default (mesh-wide `localityLbSetting.enabled: true`), but applies its
//! failover only to destinations whose DestinationRule sets `outlierDetection` — without it a
//! failed locality could not be detected — and only for a client whose own locality is known
//! (`ApplyLocalityLoadBalancer` in Istio's `pilot/pkg/networking/core/loadbalancer`). Each endpoint
//! then gets a priority by how much of its locality `region/zone/subzone` it shares with the
//! client ([`priority`], Istio's `LbPriority` and `applyLocalityFailover`):
//!
//! | shared with the client | priority |
//! |---|---:|
//! | region, zone and subzone | 0 |
//! | region and zone | 1 |
//! | region | 2 |
//! | nothing | 3 |
//! | nothing, and a `failover` entry `from` the client's region names another region `to` | 4 |
//!
//! Priorities are then renumbered without gaps. Envoy sends every request to the best priority
//! while enough of it is healthy, and spills over as its endpoints are ejected, with its
//! overprovisioning factor 1.4: a priority with 80 % of its endpoints healthy still takes all the
//! traffic, one with 50 % takes 70 % of it ([`priority_loads`],
//! <https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/priority>).

use std::sync::Arc;

/// Envoy's default overprovisioning factor, in percent.
const OVERPROVISIONING: u64 = 140;

/// A locality `region/zone/subzone` (each part may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Locality {
    /// Region.
    pub region: Arc<str>,
    /// Zone.
    pub zone: Arc<str>,
    /// Subzone.
    pub subzone: Arc<str>,
}

impl Locality {
    /// Parse `region/zone/subzone` (missing parts are empty), as Istio writes localities.
    ///
    /// ```
    /// let l = mesh_core::locality::Locality::parse("us-east1/us-east1-b");
    /// assert_eq!((&*l.region, &*l.zone, &*l.subzone), ("us-east1", "us-east1-b", ""));
    /// ```
    pub fn parse(text: &str) -> Locality {
        let mut parts = text.splitn(3, '/').map(Arc::<str>::from);
        Locality {
            region: parts.next().unwrap_or_else(|| Arc::from("")),
            zone: parts.next().unwrap_or_else(|| Arc::from("")),
            subzone: parts.next().unwrap_or_else(|| Arc::from("")),
        }
    }
}

/// An endpoint's priority for a client at `client` (see the module docs); `failover` is the
/// DestinationRule's `localityLbSetting.failover` as `(from, to)` regions.
pub fn priority(client: &Locality, endpoint: Option<&Locality>, failover: &[(Arc<str>, Arc<str>)]) -> u8 {
    let base = match endpoint {
        Some(e) if e.region == client.region && e.zone == client.zone && e.subzone == client.subzone => 0,
        Some(e) if e.region == client.region && e.zone == client.zone => 1,
        Some(e) if e.region == client.region => 2,
        _ => 3,
    };
    if base == 3
        && let Some((_, to)) = failover.iter().find(|(from, _)| *from == client.region)
        && endpoint.is_none_or(|e| e.region != *to)
    {
        return 4;
    }
    base
}

/// Renumber priorities without gaps (`[0, 2, 4]` → `[0, 1, 2]`), keeping their order.
pub fn compact(priorities: &mut [u8]) {
    let mut used: Vec<u8> = priorities.to_vec();
    used.sort_unstable();
    used.dedup();
    for p in priorities.iter_mut() {
        *p = used.iter().position(|u| u == p).unwrap_or(0) as u8;
    }
}

/// The share of requests (percent, summing to 100 when any endpoint is healthy, else all 0) each
/// priority gets, written into `loads` (as long as `counts`; nothing is allocated: the request
/// path calls it), from `(healthy, total)` endpoints per priority — Envoy's priority load with
/// overprovisioning: a priority's availability is `min(100, 1.4 × healthy / total)`; priorities
/// take load in order up to their availability, scaled up when the sum of availabilities is
/// under 100.
pub fn priority_loads(counts: &[(u32, u32)], loads: &mut [u64]) {
    let availability = |&(healthy, total): &(u32, u32)| {
        if total == 0 { 0 } else { (OVERPROVISIONING * u64::from(healthy) / u64::from(total)).min(100) }
    };
    let sum: u64 = counts.iter().map(availability).sum::<u64>().min(100);
    loads.fill(0);
    if sum == 0 {
        return;
    }
    let mut remaining = 100u64;
    for (load, c) in loads.iter_mut().zip(counts) {
        *load = (availability(c) * 100 / sum).min(remaining);
        remaining -= *load;
    }
    // Rounding: what is left goes to the first priority with any availability.
    if remaining > 0
        && let Some(i) = counts.iter().position(|c| availability(c) > 0)
        && let Some(load) = loads.get_mut(i)
    {
        *load += remaining;
    }
}

/// Priorities after [`compact`]: at most five levels (0 to 4).
pub const MAX_LEVELS: usize = 5;

/// The priority a request goes to, for a uniform random `r`, given the [`priority_loads`].
pub fn choose(loads: &[u64], r: u64) -> Option<usize> {
    let total: u64 = loads.iter().sum();
    if total == 0 {
        return None;
    }
    let mut x = r % total;
    for (i, l) in loads.iter().enumerate() {
        if x < *l {
            return Some(i);
        }
        x -= l;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_istios_table() {
        let client = Locality::parse("us-east/us-east-1a/rack1");
        let p = |e: &str| priority(&client, Some(&Locality::parse(e)), &[]);
        assert_eq!(p("us-east/us-east-1a/rack1"), 0);
        assert_eq!(p("us-east/us-east-1a/rack2"), 1);
        assert_eq!(p("us-east/us-east-1b"), 2);
        assert_eq!(p("eu-west/eu-west-1a"), 3);
        assert_eq!(priority(&client, None, &[]), 3);
        // A failover region comes before every other region.
        let failover = [(Arc::from("us-east"), Arc::from("us-west"))];
        assert_eq!(priority(&client, Some(&Locality::parse("us-west/a")), &failover), 3);
        assert_eq!(priority(&client, Some(&Locality::parse("eu-west/a")), &failover), 4);
        assert_eq!(priority(&client, None, &failover), 4);
        // A failover entry for another region does not apply.
        let other = [(Arc::from("eu-west"), Arc::from("us-west"))];
        assert_eq!(priority(&client, Some(&Locality::parse("ap-south/a")), &other), 3);
        let mut ps = [4, 0, 2, 2, 4];
        compact(&mut ps);
        assert_eq!(ps, [2, 0, 1, 1, 2]);
    }

    fn priority_loads(counts: &[(u32, u32)]) -> Vec<u64> {
        let mut loads = vec![0; counts.len()];
        super::priority_loads(counts, &mut loads);
        loads
    }

    #[test]
    fn load_spills_over_as_a_priority_loses_health() {
        // All healthy: everything to priority 0.
        assert_eq!(priority_loads(&[(4, 4), (4, 4)]), [100, 0]);
        // 3 of 4 healthy: 1.4 × 75 % = 105 % → still all of it.
        assert_eq!(priority_loads(&[(3, 4), (4, 4)]), [100, 0]);
        // Half healthy: 70 % stays, 30 % spills.
        assert_eq!(priority_loads(&[(2, 4), (4, 4)]), [70, 30]);
        // None healthy in priority 0: all to priority 1.
        assert_eq!(priority_loads(&[(0, 4), (4, 4)]), [0, 100]);
        // Everything degraded: scaled up to 100 in proportion.
        assert_eq!(priority_loads(&[(1, 4), (1, 4)]), [50, 50]);
        assert_eq!(priority_loads(&[(0, 4), (0, 2)]), [0, 0]);
        assert_eq!(choose(&[70, 30], 69), Some(0));
        assert_eq!(choose(&[70, 30], 70), Some(1));
        assert_eq!(choose(&[0, 0], 5), None);
    }
}
