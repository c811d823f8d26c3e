//! VirtualService rules (istio/istio `pkg/config/validation/validation.go` `ValidateVirtualService`
//! and `virtualservice.go` `validateHTTPRoute`).
//!
//! This module holds the VirtualService as a whole (delegates, hosts, gateway names) and the
//! destination checks every route shares; `http_route` checks the `http[]` rules, `l4` the
//! `tls[]` and `tcp[]` rules.

mod http_route;
mod l4;

use super::common::*;
use super::{Ctx, P};
use crate::types::virtual_service::*;
use http_route::{validate_http_route, warn_unreachable};
use l4::{validate_tcp_route, validate_tls_route};

pub(super) fn validate(ctx: &mut Ctx<'_>, vs: &VirtualService) {
    let root = P::root();
    let is_delegate = vs.hosts.is_empty();
    if is_delegate {
        if !vs.gateways.is_empty() {
            ctx.error(&root.f("gateways"), "delegate virtual service must have no gateways specified");
        }
        if !vs.tls.is_empty() {
            ctx.error(&root.f("tls"), "delegate virtual service must have no tls route specified");
        }
        if !vs.tcp.is_empty() {
            ctx.error(&root.f("tcp"), "delegate virtual service must have no tcp route specified");
        }
    }
    let applies_to_mesh = vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh");
    check_gateway_names(ctx, &root.f("gateways"), &vs.gateways);

    let mut all_hosts_valid = true;
    for (i, host) in vs.hosts.iter().enumerate() {
        let path = root.f("hosts").i(i);
        if let Err(e) = validate_wildcard_domain(host) {
            if !is_ip(host) {
                ctx.error(&path, e);
                all_hosts_valid = false;
            }
        } else if applies_to_mesh && host == "*" {
            ctx.error(&path, "wildcard host * is not allowed for virtual services bound to the mesh gateway");
            all_hosts_valid = false;
        }
    }
    if all_hosts_valid {
        for i in 0..vs.hosts.len() {
            for j in i + 1..vs.hosts.len() {
                if mesh_core::host::hosts_overlap(&vs.hosts[i], &vs.hosts[j]) {
                    ctx.error(
                        &root.f("hosts").i(j),
                        format!("duplicate hosts in virtual service: {} & {}", vs.hosts[i], vs.hosts[j]),
                    );
                }
            }
        }
    }

    if vs.http.is_empty() && vs.tcp.is_empty() && vs.tls.is_empty() {
        ctx.error(&root, "http, tcp or tls must be provided in virtual service");
    }
    for (i, http) in vs.http.iter().enumerate() {
        validate_http_route(ctx, &root.f("http").i(i), http, is_delegate, applies_to_mesh);
    }
    warn_unreachable(ctx, &root, &vs.http);
    for (i, tls) in vs.tls.iter().enumerate() {
        validate_tls_route(ctx, &root.f("tls").i(i), tls, vs);
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        validate_tcp_route(ctx, &root.f("tcp").i(i), tcp);
    }
    check_export_to(ctx, &root.f("exportTo"), &vs.export_to, false);

    // A Gateway's TCP and TLS passthrough servers route these (`mesh proxy --gateway`); the
    // mesh's clients (sidecars, the in-process stack) route HTTP only.
    if !vs.tls.is_empty() && applies_to_mesh {
        ctx.unsupported(&root.f("tls"), "TLS (SNI) routes for the mesh (a Gateway's PASSTHROUGH servers route them)");
    }
    if !vs.tcp.is_empty() && applies_to_mesh {
        ctx.unsupported(&root.f("tcp"), "TCP routes for the mesh (a Gateway's TCP servers route them)");
    }
}

pub(super) fn check_gateway_names(ctx: &mut Ctx<'_>, path: &P, gateways: &[String]) {
    for (i, name) in gateways.iter().enumerate() {
        let p = path.i(i);
        match name.split_once('/') {
            None => {
                if name != "mesh" && name.contains('.') {
                    let mut parts = name.split('.');
                    let gw = parts.next().unwrap_or("");
                    let ns = parts.next().unwrap_or("");
                    ctx.warn(
                        &p,
                        format!("using legacy gatewayName format {name:?}; prefer the <namespace>/<name> format: \"{ns}/{gw}\""),
                    );
                }
                ctx.check(&p, validate_fqdn(name));
            }
            Some((ns, gw)) => {
                if ns.is_empty() || gw.is_empty() {
                    ctx.error(&p, "config namespace and gateway name cannot be empty");
                }
                if !is_dns1123_label(ns) {
                    ctx.error(&p, format!("invalid value for namespace: {ns:?}"));
                }
                if !is_dns1123_label(gw) {
                    ctx.error(&p, format!("invalid value for gateway name: {gw:?}"));
                }
            }
        }
    }
}

pub(super) fn validate_destination(ctx: &mut Ctx<'_>, path: &P, dest: &Destination) {
    if dest.host == "*" {
        ctx.error(&path.f("host"), format!("invalid destination host {}", dest.host));
    } else {
        ctx.check(&path.f("host"), validate_wildcard_domain(&dest.host));
    }
    if let Some(subset) = &dest.subset
        && !subset.is_empty()
    {
        ctx.check(&path.f("subset"), validate_subset_name(subset));
    }
    if let Some(port) = &dest.port {
        ctx.check(&path.f("port").f("number"), validate_port(port.number));
    }
}

pub(crate) fn validate_subset_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("subset name cannot be empty".to_string());
    }
    if !is_dns1123_label(name) {
        return Err(format!("subset name is invalid: {name}"));
    }
    Ok(())
}

/// Destinations present and valid, weights non-negative, and not all zero when there are several
/// (Istio's `validateHTTPRouteDestinations` / `validateRouteDestinations`).
fn check_weighted_destinations<'a>(
    ctx: &mut Ctx<'_>,
    path: &P,
    route: impl ExactSizeIterator<Item = (Option<&'a Destination>, i32)>,
) {
    let count = route.len();
    let mut total: i64 = 0;
    for (i, (destination, weight)) in route.enumerate() {
        let p = path.i(i);
        match destination {
            None => ctx.error(&p.f("destination"), "destination is required"),
            Some(dest) => validate_destination(ctx, &p.f("destination"), dest),
        }
        if weight < 0 {
            ctx.error(&p.f("weight"), format!("weight {weight} < 0"));
        }
        total += i64::from(weight);
    }
    if count > 1 && total == 0 {
        ctx.error(path, "total destination weight = 0");
    }
}
