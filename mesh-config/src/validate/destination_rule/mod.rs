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
//!
//! This module holds the rule as a whole (host, subsets, `exportTo`, `workloadSelector`) and the
//! traffic policy's structure (port-level settings, tunnel, PROXY protocol, retry budget); the
//! parts a policy and each of its port-level settings hold are checked in `load_balancer`,
//! `connection_pool`, `outlier_detection` and `tls`.

mod connection_pool;
mod load_balancer;
mod outlier_detection;
mod tls;

use std::collections::BTreeSet;

use super::common::*;
use super::virtual_service::validate_subset_name;
use super::{Ctx, P};
use crate::types::destination_rule::*;
use connection_pool::validate_connection_pool;
use load_balancer::validate_load_balancer;
use outlier_detection::validate_outlier_detection;
use tls::validate_tls;

/// The CRD's `maxItems` of `portLevelSettings` and `maxProperties` of `workloadSelector.matchLabels`.
const CRD_MAX_ITEMS: usize = 4096;

/// The CRD's `maxLength` of a `workloadSelector.matchLabels` value.
const SELECTOR_VALUE_MAX_LEN: usize = 63;
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
