//! `loadBalancer` of a traffic policy (istio/istio `pkg/config/validation/validation.go`
//! `validateLoadBalancer` and `isPrime`; `agent/validation.go` `ValidateLocalityLbSetting`,
//! `validateLocalities`, `ValidateZoneAwareLbSetting`): simple and consistent-hash balancing,
//! locality and zone-aware settings, and slow start (`warmup`).

use std::time::Duration;

use crate::duration::parse_duration;
use crate::types::destination_rule::*;
use crate::validate::common::*;
use crate::validate::{Ctx, P};

/// The topology labels `failoverPriority` may not hold next to `failover` (locality LB), nor at all
/// (zone-aware LB): Istio's `label.LabelTopologyRegion`, `LabelTopologyZone`, `LabelTopologySubzone`.
const TOPOLOGY_LABELS: [&str; 3] =
    ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"];
/// Maglev table sizes must be below this (`validateLoadBalancer`).
const MAGLEV_TABLE_SIZE_LIMIT: u64 = 5_000_011;
/// Envoy's primality test, which Istio copies (`isPrime`) so that both agree: 1, 2 and 3 pass.
fn is_prime(n: u64) -> bool {
    if n != 0 && n < 4 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut factor = 3u64;
    while factor.saturating_mul(factor) <= n {
        if n.is_multiple_of(factor) {
            return false;
        }
        factor += 2;
    }
    true
}

/// `validateLoadBalancer`. `has_outlier`: the same policy (not an enclosing one) sets
/// `outlierDetection`, which failover needs.
pub(super) fn validate_load_balancer(ctx: &mut Ctx<'_>, path: &P, lb: &LoadBalancerSettings, has_outlier: bool) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        ctx.error(path, "only one of simple or consistentHash may be set");
    }
    if let Some(ch) = &lb.consistent_hash {
        validate_consistent_hash(ctx, &path.f("consistentHash"), ch);
    }
    if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
        ctx.error(path, "only one of localityLbSetting and zoneAwareLbSetting can be set");
    }
    if let Some(l) = &lb.locality_lb_setting {
        validate_locality_lb(ctx, &path.f("localityLbSetting"), l, has_outlier);
    }
    if let Some(z) = &lb.zone_aware_lb_setting {
        validate_zone_aware_lb(ctx, &path.f("zoneAwareLbSetting"), z, has_outlier);
        ctx.unsupported(&path.f("zoneAwareLbSetting"), "zoneAwareLbSetting");
    }
    if let Some(w) = &lb.warmup {
        let p = path.f("warmup");
        if w.duration.is_none() {
            ctx.error(&p.f("duration"), "duration: Required value");
        }
        check_duration(ctx, &p.f("duration"), w.duration.as_ref());
        if let Some(mp) = w.minimum_percent
            && !(0.0..=100.0).contains(&mp)
        {
            ctx.error(&p.f("minimumPercent"), "minimumPercent must be in range 0..100");
        }
        if let Some(a) = w.aggression
            && a <= 0.0
        {
            ctx.error(&p.f("aggression"), "aggression should be greater than 0");
        }
    }
    check_duration_cel_min(ctx, &path.f("warmupDurationSecs"), lb.warmup_duration_secs.as_ref());
    if lb.simple == Some(SimpleLb::PASSTHROUGH) {
        ctx.unsupported(&path.f("simple"), "PASSTHROUGH load balancing");
    }
}

/// The `consistentHash` part of `validateLoadBalancer`, and the CRD's one-ofs.
fn validate_consistent_hash(ctx: &mut Ctx<'_>, p: &P, ch: &ConsistentHashLb) {
    let keys = usize::from(ch.http_header_name.is_some())
        + usize::from(ch.http_cookie.is_some())
        + usize::from(ch.use_source_ip.is_some())
        + usize::from(ch.http_query_parameter_name.is_some());
    if keys > 1 {
        ctx.error(p, "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName may be set");
    }
    if let Some(cookie) = &ch.http_cookie {
        let cp = p.f("httpCookie");
        if cookie.name.is_empty() {
            ctx.error(&cp.f("name"), "name required for HttpCookie");
        }
        check_duration_any(ctx, &cp.f("ttl"), cookie.ttl.as_ref());
        let mut seen: Vec<&str> = Vec::new();
        for (i, attr) in cookie.attributes.iter().enumerate() {
            let ap = cp.f("attributes").i(i).f("name");
            if attr.name.is_empty() {
                ctx.error(&ap, "cookie attribute name cannot be empty");
            } else if seen.contains(&attr.name.as_str()) {
                ctx.error(&ap, format!("duplicate cookie attribute name: {}", attr.name));
            } else {
                seen.push(&attr.name);
            }
        }
    }
    if ch.ring_hash.is_some() && ch.maglev.is_some() {
        ctx.error(p, "only one of ringHash or maglev may be set");
    }
    if ch.minimum_ring_size.is_some_and(|n| n != 0) {
        ctx.warn(
            &p.f("minimumRingSize"),
            "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
        );
        if ch.ring_hash.is_some() || ch.maglev.is_some() {
            ctx.error(&p.f("minimumRingSize"), "only one of MinimumRingSize or Maglev/Ringhash can be specified");
        }
    }
    if let Some(m) = &ch.maglev {
        let tp = p.f("maglev").f("tableSize");
        match m.table_size.unwrap_or(0) {
            0 => ctx.error(&tp, "tableSize must be set for maglev"),
            size => {
                if size >= MAGLEV_TABLE_SIZE_LIMIT {
                    ctx.error(&tp, format!("tableSize must be less than {MAGLEV_TABLE_SIZE_LIMIT} for maglev"));
                }
                if !is_prime(size) {
                    ctx.error(&tp, "tableSize must be a prime number for maglev");
                }
            }
        }
    }
}

/// `ValidateLocalityLbSetting`.
fn validate_locality_lb(ctx: &mut Ctx<'_>, p: &P, l: &LocalityLbSetting, has_outlier: bool) {
    if !l.distribute.is_empty() && !l.failover.is_empty() {
        // Istio stops at this error.
        ctx.error(p, "can not simultaneously specify 'distribute' and 'failover'");
        return;
    }
    if !l.failover.is_empty() {
        for (i, label) in l.failover_priority.iter().enumerate() {
            if TOPOLOGY_LABELS.contains(&label.as_str()) {
                ctx.error(
                    &p.f("failoverPriority").i(i),
                    format!(
                        "can not simultaneously set 'failover' and topology label '{label}' in 'failover_priority'"
                    ),
                );
            }
        }
    }
    let mut sources: Vec<(P, &str)> = Vec::new();
    for (i, d) in l.distribute.iter().enumerate() {
        let dp = p.f("distribute").i(i);
        let mut total: u64 = 0;
        for (to, weight) in &d.to {
            if !(1..=100).contains(weight) {
                ctx.error(&dp.f("to").k(to), "locality weight must be in range [1, 100]");
            }
            total += u64::from(*weight);
        }
        if total != 100 {
            ctx.error(&dp.f("to"), format!("total locality weight {total} != 100"));
        }
        check_locality_map(ctx, &dp.f("to"), &d.to.keys().map(String::as_str).collect::<Vec<_>>());
        sources.push((dp.f("from"), d.from.as_str()));
    }
    check_locality_list(ctx, &sources);
    if (!l.failover.is_empty() || !l.failover_priority.is_empty()) && !has_outlier {
        ctx.warn(p, "outlier detection policy must be provided for failover");
    }
    check_failover(ctx, &p.f("failover"), &l.failover, false);
    if !l.distribute.is_empty() {
        ctx.unsupported(&p.f("distribute"), "localityLbSetting.distribute");
    }
    if !l.failover_priority.is_empty() {
        ctx.unsupported(&p.f("failoverPriority"), "localityLbSetting.failoverPriority");
    }
}

/// `ValidateZoneAwareLbSetting`, plus the CRD's `minClusterSize` minimum of 1.
fn validate_zone_aware_lb(ctx: &mut Ctx<'_>, p: &P, z: &ZoneAwareLbSetting, has_outlier: bool) {
    for (i, label) in z.failover_priority.iter().enumerate() {
        if TOPOLOGY_LABELS.contains(&label.as_str()) {
            ctx.error(
                &p.f("failoverPriority").i(i),
                format!(
                    "'failover_priority' for zone aware lb must not use topology label '{label}'; region- and zone-level routing are handled automatically"
                ),
            );
        }
    }
    if (!z.failover.is_empty() || !z.failover_priority.is_empty()) && !has_outlier {
        ctx.warn(p, "outlier detection policy must be provided for failover");
    }
    check_failover(ctx, &p.f("failover"), &z.failover, true);
    if z.min_cluster_size == Some(0) {
        ctx.error(&p.f("minClusterSize"), "minClusterSize must be at least 1");
    }
}

/// `failover[]`: two different regions, each a bare region name (no `/`, no `*`).
fn check_failover(ctx: &mut Ctx<'_>, path: &P, failover: &[LocalityFailover], zone_aware: bool) {
    let what = if zone_aware { "zone aware lb" } else { "locality lb" };
    for (i, f) in failover.iter().enumerate() {
        let p = path.i(i);
        if f.from == f.to {
            ctx.error(&p, format!("{what} failover settings must specify different regions"));
        }
        for (field, region) in [("from", &f.from), ("to", &f.to)] {
            if region.contains('/') {
                let message = if zone_aware {
                    "zone aware lb failover only specifies region; zone and subzone failover are handled automatically"
                } else {
                    "locality lb failover only specify region"
                };
                ctx.error(&p.f(field), message);
            }
            if region.contains('*') {
                ctx.error(&p.f(field), format!("{what} failover region should not contain '*' wildcard"));
            }
        }
    }
}

/// A locality `region[/zone[/subzone]]`, split as Istio's `getLocalityParam` splits it (into at
/// most three parts), with the per-entry rules of `validateLocalities`: at most one `*`, at the
/// end, and no empty part.
fn parse_locality(locality: &str) -> Result<Vec<&str>, String> {
    let stars = locality.matches('*').count();
    if stars > 1 || (stars == 1 && !locality.ends_with('*')) {
        return Err(format!("locality {locality} wildcard '*' number can not exceed 1 and must be in the end"));
    }
    let parts: Vec<&str> = locality.splitn(3, '/').collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err(format!("locality {locality} must not contain empty region/zone/subzone info"));
    }
    Ok(parts)
}

/// Whether `validateLocalities`, having accepted `earlier`, rejects `later` as an overlap. `*` as
/// a whole locality, a region (`r` or `r/*`), a zone (`r/z` or `r/z/*`) cover what lies under
/// them; a wildcard that comes *after* a narrower locality is not noticed by Istio's walk.
fn overlaps(earlier: &[&str], later: &[&str]) -> bool {
    match (earlier, later) {
        (["*"], _) => true,
        ([r1, ..], [r2, ..]) if r1 != r2 => false,
        (_, [_]) | ([_] | [_, "*"], _) => true,
        ([_, z1, ..], [_, z2, ..]) if z1 != z2 => false,
        (_, [_, _]) | ([_, _], [_, _, _]) => true,
        ([_, _, s1], [_, _, s2]) => *s1 == "*" || s1 == s2,
        _ => false,
    }
}

/// `distribute[].from`, in order, as `validateLocalities` walks them.
fn check_locality_list(ctx: &mut Ctx<'_>, localities: &[(P, &str)]) {
    let mut accepted: Vec<(&str, Vec<&str>)> = Vec::new();
    for (path, locality) in localities {
        match parse_locality(locality) {
            Err(e) => ctx.error(path, e),
            Ok(parts) => match accepted.iter().find(|(_, earlier)| overlaps(earlier, &parts)) {
                Some((other, _)) => {
                    ctx.error(path, format!("locality {locality} overlap with previous specified ones ({other})"))
                }
                None => accepted.push((locality, parts)),
            },
        }
    }
}

/// The keys of a `distribute[].to` map. Istio walks a Go map, in an order that changes from run
/// to run, so whether it notices a wildcard that covers another key depends on the run; any pair
/// that some order rejects is rejected here.
fn check_locality_map(ctx: &mut Ctx<'_>, path: &P, localities: &[&str]) {
    let mut accepted: Vec<(&str, Vec<&str>)> = Vec::new();
    for locality in localities {
        match parse_locality(locality) {
            Err(e) => ctx.error(&path.k(locality), e),
            Ok(parts) => match accepted.iter().find(|(_, other)| overlaps(other, &parts) || overlaps(&parts, other)) {
                Some((other, _)) => ctx.error(
                    &path.k(locality),
                    format!("locality {locality} overlap with previous specified ones ({other})"),
                ),
                None => accepted.push((locality, parts)),
            },
        }
    }
}

/// A duration field whose only rule is the CRD's CEL `duration(self) >= duration('1ms')`:
/// `validateLoadBalancer` does not look at `warmupDurationSecs`, so it has no millisecond
/// precision rule.
fn check_duration_cel_min(ctx: &mut Ctx<'_>, path: &P, value: Option<&String>) {
    let Some(text) = value else { return };
    match parse_duration(text) {
        Err(e) => ctx.error(path, e),
        Ok(d) if d < Duration::from_millis(1) => ctx.error(path, "must be a valid duration greater than 1ms"),
        Ok(_) => {}
    }
}
