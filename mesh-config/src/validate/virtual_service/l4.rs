//! VirtualService `tls[]` and `tcp[]` rules (istio/istio `pkg/config/validation/validation.go`
//! `validateTLSRoute`, `validateTCPRoute` and their matches).

use super::{check_gateway_names, check_weighted_destinations};
use crate::types::virtual_service::*;
use crate::validate::common::*;
use crate::validate::{Ctx, P};

pub(super) fn validate_tls_route(ctx: &mut Ctx<'_>, path: &P, tls: &TlsRoute, vs: &VirtualService) {
    if tls.matches.is_empty() {
        ctx.error(&path.f("match"), "TLS route must have at least one match condition");
    }
    for (i, m) in tls.matches.iter().enumerate() {
        let p = path.f("match").i(i);
        if m.sni_hosts.is_empty() {
            ctx.error(&p.f("sniHosts"), "TLS match must have at least one SNI host");
        }
        for (j, sni) in m.sni_hosts.iter().enumerate() {
            let sp = p.f("sniHosts").i(j);
            if let Err(e) = validate_wildcard_domain(sni) {
                if is_ip(sni) {
                    ctx.warn(
                        &sp,
                        format!(
                            "using an IP address ({sni:?}) goes against SNI spec and most clients do not support this"
                        ),
                    );
                } else {
                    ctx.error(&sp, e);
                }
                continue;
            }
            if !vs.hosts.iter().any(|h| mesh_core::host::is_subset_of(sni, h)) {
                ctx.error(
                    &sp,
                    format!(
                        "SNI host {sni:?} is not a compatible subset of any of the virtual service hosts: [{}]",
                        vs.hosts.join(", ")
                    ),
                );
            }
        }
        check_l4_match(ctx, &p, &m.destination_subnets, m.port, &m.source_labels, &m.gateways);
    }
    if tls.route.is_empty() {
        ctx.error(&path.f("route"), "TLS route is required");
    }
    validate_l4_destinations(ctx, &path.f("route"), &tls.route);
}

pub(super) fn validate_tcp_route(ctx: &mut Ctx<'_>, path: &P, tcp: &TcpRoute) {
    for (i, m) in tcp.matches.iter().enumerate() {
        let p = path.f("match").i(i);
        check_l4_match(ctx, &p, &m.destination_subnets, m.port, &m.source_labels, &m.gateways);
    }
    if tcp.route.is_empty() {
        ctx.error(&path.f("route"), "TCP route is required");
    }
    validate_l4_destinations(ctx, &path.f("route"), &tcp.route);
}

/// The conditions TLS and TCP matches share (Istio's `validateTLSMatch` / `validateTCPMatch`).
fn check_l4_match(
    ctx: &mut Ctx<'_>,
    p: &P,
    subnets: &[String],
    port: Option<u32>,
    source_labels: &std::collections::BTreeMap<String, String>,
    gateways: &[String],
) {
    for (j, s) in subnets.iter().enumerate() {
        ctx.check(&p.f("destinationSubnets").i(j), validate_ip_subnet(s));
    }
    if let Some(port) = port
        && port != 0
    {
        ctx.check(&p.f("port"), validate_port(port));
    }
    validate_labels(ctx, &p.f("sourceLabels"), source_labels);
    check_gateway_names(ctx, &p.f("gateways"), gateways);
}

fn validate_l4_destinations(ctx: &mut Ctx<'_>, path: &P, route: &[RouteDestination]) {
    check_weighted_destinations(ctx, path, route.iter().map(|rd| (rd.destination.as_ref(), rd.weight)));
}
