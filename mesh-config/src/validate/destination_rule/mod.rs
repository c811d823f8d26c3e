//! DestinationRule rules.
//!
//! Where each rule comes from (istio/istio, unless named otherwise):
//! - `pkg/config/validation/validation.go`: `ValidateDestinationRule`, `validateExportTo` (its
//!   `isDestinationRuleWithSelector` part), `validateWorkloadSelector`, `validateSubset`,
//!   `validateTrafficPolicy`, `validatePortTrafficPolicies`, `validateTunnelSettings`,
//!   `validateProxyProtocol`, `validateOutlierDetection`, `validateConnectionPool`,
//!   `validateLoadBalancer` and `isPrime`;
//! - `pkg/config/validation/agent/validation.go`: `ValidateTLS`, `ValidateLocalityLbSetting`,
//!   `validateLocalities`, `ValidateZoneAwareLbSetting`, `ValidateDuration`, `ValidatePort`,
//!   `ValidateFQDN`, `ValidateIPAddress`;
//! - `pilot/pkg/model/credentials/resource.go`: `ParseResourceName` (`configmap://` names);
//! - the DestinationRule CRD (istio/api `kubernetes/customresourcedefinitions.gen.yaml`): the CEL
//!   duration minimum (1 ms), `portLevelSettings` `maxItems`, the `workloadSelector.matchLabels`
//!   rules, `zoneAwareLbSetting.minClusterSize` `minimum: 1`, enums and one-ofs.
//!
//! Severities are Istio's: what Istio warns about is a warning here, what it rejects an error.

use std::collections::BTreeSet;
use std::time::Duration;

use super::common::*;
use super::virtual_service::validate_subset_name;
use super::{Ctx, P};
use crate::duration::parse_duration;
use crate::types::destination_rule::*;

/// The topology labels `failoverPriority` may not hold next to `failover` (locality LB), nor at all
/// (zone-aware LB): Istio's `label.LabelTopologyRegion`, `LabelTopologyZone`, `LabelTopologySubzone`.
const TOPOLOGY_LABELS: [&str; 3] =
    ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"];

/// The CRD's `maxItems` of `portLevelSettings` and `maxProperties` of `workloadSelector.matchLabels`.
const CRD_MAX_ITEMS: usize = 4096;

/// The CRD's `maxLength` of a `workloadSelector.matchLabels` value.
const SELECTOR_VALUE_MAX_LEN: usize = 63;

/// Maglev table sizes must be below this (`validateLoadBalancer`).
const MAGLEV_TABLE_SIZE_LIMIT: u64 = 5_000_011;

pub(super) fn validate(ctx: &mut Ctx<'_>, dr: &DestinationRule) {
    let root = P::root();
    ctx.check(&root.f("host"), validate_wildcard_domain(&dr.host));
    if let Some(tp) = &dr.traffic_policy {
        validate_traffic_policy(ctx, &root.f("trafficPolicy"), tp);
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, subset) in dr.subsets.iter().enumerate() {
        let p = root.f("subsets").i(i);
        ctx.check(&p.f("name"), validate_subset_name(&subset.name));
        if !subset.name.is_empty() && names.contains(&subset.name.as_str()) {
            ctx.error(&p.f("name"), format!("duplicate subset names: {}", subset.name));
        }
        names.push(&subset.name);
        validate_labels(ctx, &p.f("labels"), &subset.labels);
        if let Some(tp) = &subset.traffic_policy {
            validate_traffic_policy(ctx, &p.f("trafficPolicy"), tp);
        }
    }
    check_export_to(ctx, &root.f("exportTo"), &dr.export_to, false);
    if let Some(sel) = &dr.workload_selector {
        check_selector_export_to(ctx, &root.f("exportTo"), &dr.export_to);
        validate_workload_selector(ctx, &root.f("workloadSelector"), sel);
    }
}

/// A rule with a `workloadSelector` applies in its own namespace only: `exportTo` may hold that
/// namespace (or `.`) and nothing else (`validateExportTo` with `isDestinationRuleWithSelector`).
/// Entries that are not valid `exportTo` values at all are left out, as Istio leaves them out of
/// the set it checks here (they are reported by `check_export_to`).
fn check_selector_export_to(ctx: &mut Ctx<'_>, path: &P, export_to: &[String]) {
    let namespace = ctx.resource.namespace.to_string();
    let mut targets: BTreeSet<&str> = BTreeSet::new();
    for e in export_to {
        let key = if e == "." { namespace.as_str() } else { e.as_str() };
        if key == "*" || is_dns1123_label(key) {
            targets.insert(key);
        }
    }
    if targets.is_empty() {
        return;
    }
    if !targets.contains(namespace.as_str()) {
        ctx.error(path, "destination rule with workload selector cannot have exportTo beyond current namespace");
    } else if targets.len() > 1 {
        ctx.error(path, "destination rule with workload selector cannot have multiple entries in exportTo");
    }
}

/// `validateWorkloadSelector`, plus the CRD's rules on `matchLabels`: keys neither empty nor with
/// `*`, values without `*` and at most 63 characters, at most 4096 labels. Istio does not apply
/// the Kubernetes label syntax to a selector, so neither does this.
fn validate_workload_selector(ctx: &mut Ctx<'_>, path: &P, sel: &WorkloadSelector) {
    let p = path.f("matchLabels");
    if sel.match_labels.is_empty() {
        ctx.warn(path, "workload selector specified without labels, will be applied to all workloads in the namespace");
    }
    if sel.match_labels.len() > CRD_MAX_ITEMS {
        ctx.error(&p, format!("must have at most {CRD_MAX_ITEMS} labels, has {}", sel.match_labels.len()));
    }
    for (k, v) in &sel.match_labels {
        if k.is_empty() {
            ctx.error(&p.k(k), format!("empty key is not supported in selector: \"{k}={v}\""));
        }
        if k.contains('*') || v.contains('*') {
            ctx.error(&p.k(k), format!("wildcard is not supported in selector: \"{k}={v}\""));
        }
        if v.chars().count() > SELECTOR_VALUE_MAX_LEN {
            ctx.error(&p.k(k), format!("label value {v:?} is longer than {SELECTOR_VALUE_MAX_LEN} characters"));
        }
    }
}

fn validate_traffic_policy(ctx: &mut Ctx<'_>, path: &P, tp: &TrafficPolicy) {
    if tp.load_balancer.is_none()
        && tp.connection_pool.is_none()
        && tp.outlier_detection.is_none()
        && tp.tls.is_none()
        && tp.port_level_settings.is_empty()
        && tp.tunnel.is_none()
        && tp.proxy_protocol.is_none()
        && tp.retry_budget.is_none()
    {
        ctx.error(path, "traffic policy must have at least one field");
    }
    if tp.tunnel.is_some() && tp.proxy_protocol.is_some() {
        ctx.error(path, "tunnel and proxyProtocol must not be set together");
    }
    validate_policy_parts(
        ctx,
        path,
        tp.load_balancer.as_ref(),
        tp.connection_pool.as_ref(),
        tp.outlier_detection.as_ref(),
        tp.tls.as_ref(),
    );
    if tp.port_level_settings.len() > CRD_MAX_ITEMS {
        ctx.error(
            &path.f("portLevelSettings"),
            format!("must have at most {CRD_MAX_ITEMS} items, has {}", tp.port_level_settings.len()),
        );
    }
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let p = path.f("portLevelSettings").i(i);
        // Istio requires the port selector, not a port number in 1..65535: the CRD allows any
        // uint32, and `validatePortTrafficPolicies` does not look at the number.
        if pl.port.is_none() {
            ctx.error(&p, "portTrafficPolicy must have valid port");
        }
        if pl.load_balancer.is_none()
            && pl.connection_pool.is_none()
            && pl.outlier_detection.is_none()
            && pl.tls.is_none()
        {
            ctx.error(&p, "port traffic policy must have at least one field");
        } else {
            validate_policy_parts(
                ctx,
                &p,
                pl.load_balancer.as_ref(),
                pl.connection_pool.as_ref(),
                pl.outlier_detection.as_ref(),
                pl.tls.as_ref(),
            );
        }
    }
    if let Some(t) = &tp.tunnel {
        let p = path.f("tunnel");
        if let Some(proto) = &t.protocol
            && proto != "CONNECT"
            && proto != "POST"
        {
            ctx.error(&p.f("protocol"), format!("tunnel protocol must be \"CONNECT\" or \"POST\", got {proto:?}"));
        }
        if let Err(e) = validate_fqdn(&t.target_host)
            && !is_ip(&t.target_host)
        {
            ctx.error(
                &p.f("targetHost"),
                format!(
                    "tunnel target host must be valid FQDN or IP address: {e}; {} is not a valid IP",
                    t.target_host
                ),
            );
        }
        if let Err(e) = validate_port(t.target_port) {
            ctx.error(&p.f("targetPort"), format!("tunnel target port is invalid: {e}"));
        }
        ctx.unsupported(&p, "tunnel settings");
    }
    if let Some(pp) = &tp.proxy_protocol {
        if let Some(v) = &pp.version
            && v != "V1"
            && v != "V2"
        {
            ctx.error(&path.f("proxyProtocol").f("version"), format!("unknown PROXY protocol version {v:?}"));
        }
        ctx.unsupported(&path.f("proxyProtocol"), "proxyProtocol");
    }
    if let Some(rb) = &tp.retry_budget {
        let p = path.f("retryBudget");
        if let Some(percent) = rb.percent
            && !(0.0..=100.0).contains(&percent)
        {
            ctx.error(&p.f("percent"), format!("retry budget percent {percent} is not in range 0..100"));
        }
        check_duration_any(ctx, &p.f("budgetInterval"), rb.budget_interval.as_ref());
    }
}

fn validate_policy_parts(
    ctx: &mut Ctx<'_>,
    path: &P,
    lb: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    tls: Option<&ClientTlsSettings>,
) {
    if let Some(lb) = lb {
        validate_load_balancer(ctx, &path.f("loadBalancer"), lb, outlier.is_some());
    }
    if let Some(pool) = pool {
        validate_connection_pool(ctx, &path.f("connectionPool"), pool);
    }
    if let Some(o) = outlier {
        validate_outlier_detection(ctx, &path.f("outlierDetection"), o);
    }
    if let Some(tls) = tls {
        validate_tls(ctx, &path.f("tls"), tls);
    }
}

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
fn validate_load_balancer(ctx: &mut Ctx<'_>, path: &P, lb: &LoadBalancerSettings, has_outlier: bool) {
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

/// `connectionPool.tcp.idleTimeout`: under 1 ms (`0s` disables the timeout) Istio skips the value;
/// from 1 ms on it applies `ValidateDuration` (whole milliseconds). The CRD has no CEL rule here.
fn check_tcp_idle_timeout(ctx: &mut Ctx<'_>, path: &P, value: Option<&String>) {
    let Some(text) = value else { return };
    match parse_duration(text) {
        Err(e) => ctx.error(path, e),
        Ok(d) if d >= Duration::from_millis(1) => ctx.check(path, parse_ms_duration(text).map(|_| ())),
        Ok(_) => {}
    }
}

fn validate_connection_pool(ctx: &mut Ctx<'_>, path: &P, pool: &ConnectionPoolSettings) {
    if pool.http.is_none() && pool.tcp.is_none() {
        ctx.error(path, "connection pool must have at least one field");
    }
    if let Some(http) = &pool.http {
        let p = path.f("http");
        for (field, value, what) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests, "http1 max pending requests"),
            ("http2MaxRequests", http.http2_max_requests, "http2 max requests"),
            ("maxRequestsPerConnection", http.max_requests_per_connection, "max requests per connection"),
            ("maxRetries", http.max_retries, "max retries"),
            ("maxConcurrentStreams", http.max_concurrent_streams, "max concurrent streams"),
        ] {
            if value.is_some_and(|v| v < 0) {
                ctx.error(&p.f(field), format!("{what} must be non-negative"));
            }
        }
        check_duration(ctx, &p.f("idleTimeout"), http.idle_timeout.as_ref());
        if http.h2_upgrade_policy == Some(H2UpgradePolicy::UPGRADE) && http.use_client_protocol == Some(true) {
            ctx.error(&p, "use client protocol must not be true when H2UpgradePolicy is UPGRADE");
        }
        if let Some(ka) = &http.http2_keep_alive {
            let kp = p.f("http2KeepAlive");
            if ka.interval.is_none() {
                ctx.error(&kp.f("interval"), "http2 keepalive interval is required");
            }
            check_duration(ctx, &kp.f("interval"), ka.interval.as_ref());
            if ka.timeout.is_none() {
                ctx.error(&kp.f("timeout"), "http2 keepalive timeout is required");
            }
            check_duration(ctx, &kp.f("timeout"), ka.timeout.as_ref());
            ctx.unsupported(&kp, "http2KeepAlive");
        }
    }
    if let Some(tcp) = &pool.tcp {
        let p = path.f("tcp");
        if tcp.max_connections.is_some_and(|v| v < 0) {
            ctx.error(&p.f("maxConnections"), "max connections must be non-negative");
        }
        check_duration(ctx, &p.f("connectTimeout"), tcp.connect_timeout.as_ref());
        check_duration(ctx, &p.f("maxConnectionDuration"), tcp.max_connection_duration.as_ref());
        check_tcp_idle_timeout(ctx, &p.f("idleTimeout"), tcp.idle_timeout.as_ref());
        if let Some(ka) = &tcp.tcp_keepalive {
            check_duration(ctx, &p.f("tcpKeepalive").f("time"), ka.time.as_ref());
            check_duration(ctx, &p.f("tcpKeepalive").f("interval"), ka.interval.as_ref());
        }
        if tcp.max_connection_duration.is_some() {
            ctx.unsupported(&p.f("maxConnectionDuration"), "maxConnectionDuration");
        }
    }
}

fn validate_outlier_detection(ctx: &mut Ctx<'_>, path: &P, o: &OutlierDetection) {
    check_duration(ctx, &path.f("baseEjectionTime"), o.base_ejection_time.as_ref());
    check_duration(ctx, &path.f("interval"), o.interval.as_ref());
    if o.consecutive_errors.is_some_and(|v| v != 0) {
        ctx.warn(
            &path.f("consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        );
    }
    for (field, value) in [("maxEjectionPercent", o.max_ejection_percent), ("minHealthPercent", o.min_health_percent)] {
        if let Some(v) = value
            && !(0..=100).contains(&v)
        {
            ctx.error(&path.f(field), format!("percentage {v} is not in range 0..100"));
        }
    }
    // `0` turns the check off, so Istio accepts it without the split.
    if o.consecutive_local_origin_failures.is_some_and(|n| n > 0) && o.split_external_local_origin_errors != Some(true)
    {
        ctx.error(
            &path.f("consecutiveLocalOriginFailures"),
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
        );
    }
    for (i, code) in o.outlier_detection_http_error_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            ctx.error(
                &path.f("outlierDetectionHttpErrorCodes").i(i),
                format!("HTTP status {code} is not in range 100-599"),
            );
        }
    }
}

/// `credentialName: configmap://<namespace>/<name>` must name a ConfigMap in the rule's own
/// namespace (`ValidateTLS`, parsing as `credentials.ParseResourceName`).
fn check_configmap_credential(ctx: &mut Ctx<'_>, path: &P, credential: &str, rest: &str) {
    let namespace = ctx.resource.namespace.to_string();
    let problem = match rest.split_once('/') {
        None => Some(format!("invalid resource name {credential:?}. Expected namespace and name")),
        Some(("", _)) => Some(format!("invalid resource name {credential:?}. Expected namespace")),
        Some((_, name)) if name.split('/').next().unwrap_or("").is_empty() => {
            Some(format!("invalid resource name {credential:?}. Expected name"))
        }
        Some((ns, _)) if ns != namespace || namespace.is_empty() => {
            Some(format!("namespace must match the configuration namespace {namespace:?}"))
        }
        Some(_) => None,
    };
    if let Some(problem) = problem {
        ctx.error(path, format!("invalid configmap:// credentialName: {problem}"));
    }
}

/// `ValidateTLS`.
fn validate_tls(ctx: &mut Ctx<'_>, path: &P, tls: &ClientTlsSettings) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
    let mode = tls.mode.unwrap_or(ClientTlsMode::DISABLE);
    if let Some(credential) = tls.credential_name.as_deref()
        && let Some(rest) = credential.strip_prefix("configmap://")
    {
        check_configmap_credential(ctx, &path.f("credentialName"), credential, rest);
    }
    if tls.insecure_skip_verify == Some(true) {
        // Only SIMPLE and MUTUAL are checked: with DISABLE or ISTIO_MUTUAL Istio ignores these.
        match mode {
            ClientTlsMode::SIMPLE => {
                let message = "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true";
                if set(&tls.ca_certificates) {
                    ctx.error(&path.f("caCertificates"), message);
                }
                if set(&tls.credential_name) {
                    ctx.error(&path.f("credentialName"), message);
                }
                if !tls.subject_alt_names.is_empty() {
                    ctx.error(&path.f("subjectAltNames"), message);
                }
            }
            ClientTlsMode::MUTUAL => {
                // In MUTUAL mode a credentialName may carry the client certificate alone.
                let message = "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true";
                if set(&tls.ca_certificates) {
                    ctx.error(&path.f("caCertificates"), message);
                }
                if !tls.subject_alt_names.is_empty() {
                    ctx.error(&path.f("subjectAltNames"), message);
                }
            }
            ClientTlsMode::DISABLE | ClientTlsMode::ISTIO_MUTUAL => {}
        }
    }
    let simple_or_mutual = matches!(mode, ClientTlsMode::SIMPLE | ClientTlsMode::MUTUAL);
    if simple_or_mutual && set(&tls.credential_name) {
        for (field, value) in [
            ("clientCertificate", &tls.client_certificate),
            ("caCertificates", &tls.ca_certificates),
            ("privateKey", &tls.private_key),
            ("caCrl", &tls.ca_crl),
        ] {
            if set(value) {
                ctx.error(
                    &path.f(field),
                    "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
                );
            }
        }
    } else if mode == ClientTlsMode::MUTUAL {
        if !set(&tls.client_certificate) {
            ctx.error(&path.f("clientCertificate"), "client certificate required for mutual tls");
        }
        if !set(&tls.private_key) {
            ctx.error(&path.f("privateKey"), "private key required for mutual tls");
        }
    }
    if mode == ClientTlsMode::ISTIO_MUTUAL {
        ctx.unsupported(&path.f("mode"), "ISTIO_MUTUAL (mesh certificates)");
    }
    if set(&tls.credential_name) {
        ctx.unsupported(&path.f("credentialName"), "credentialName (Kubernetes secrets); use certificate files");
    }
}
