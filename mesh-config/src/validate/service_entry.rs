//! ServiceEntry and WorkloadEntry rules (istio/istio `pkg/config/validation/validation.go`
//! `ValidateServiceEntry`, `ValidateWorkloadEntry`).

use std::collections::BTreeSet;

use super::common::*;
use super::{Ctx, P};
use crate::types::service_entry::*;

pub(super) fn validate(ctx: &mut Ctx<'_>, se: &ServiceEntry) {
    let root = P::root();
    if let Some(sel) = &se.workload_selector {
        let p = root.f("workloadSelector").f("labels");
        for (k, v) in &sel.labels {
            if k.is_empty() {
                ctx.error(&p.k(k), format!("empty key is not supported in selector: \"{k}={v}\""));
            }
            if k.contains('*') || v.contains('*') {
                ctx.error(&p.k(k), format!("wildcard is not supported in selector: \"{k}={v}\""));
            }
        }
        if sel.labels.is_empty() {
            ctx.warn(&root.f("workloadSelector"), "service entry: workload selector specified without labels, will be applied to all services in namespace");
        }
        if !se.endpoints.is_empty() {
            ctx.error(&root, "only one of WorkloadSelector or Endpoints is allowed in Service Entry");
        }
    }
    if se.hosts.is_empty() {
        ctx.error(&root.f("hosts"), "service entry must have at least one host");
    }
    for (i, host) in se.hosts.iter().enumerate() {
        let p = root.f("hosts").i(i);
        if host == "*" {
            ctx.error(&p, format!("invalid host {host}"));
        } else {
            ctx.check(&p, validate_wildcard_domain(host));
            if let Some(rest) = host.strip_prefix('*')
                && !rest.is_empty()
                && !rest.starts_with('.')
            {
                ctx.warn(&p, format!("partial wildcard {host:?} not allowed"));
            }
        }
    }
    let mut cidr = false;
    for (i, addr) in se.addresses.iter().enumerate() {
        cidr |= addr.contains('/');
        ctx.check(&root.f("addresses").i(i), validate_ip_subnet(addr));
    }
    let resolution = se.resolution.unwrap_or(Resolution::NONE);
    if cidr && !matches!(resolution, Resolution::NONE | Resolution::STATIC) {
        ctx.error(&root.f("addresses"), "CIDR addresses are allowed only for NONE/STATIC resolution types");
    }
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in se.ports.iter().enumerate() {
        let p = root.f("ports").i(i);
        if !names.insert(port.name.as_str()) {
            ctx.error(&p.f("name"), format!("service entry port name {:?} already defined", port.name));
        }
        if !numbers.insert(port.number) {
            ctx.error(&p.f("number"), format!("service entry port {} already defined", port.number));
        }
        if let Some(tp) = port.target_port
            && tp != 0
        {
            ctx.check(&p.f("targetPort"), validate_port(tp));
        }
        if !is_dns1123_label(&port.name) {
            ctx.error(&p.f("name"), format!("invalid port name: {}", port.name));
        }
        if let Some(proto) = &port.protocol
            && !proto.is_empty()
            && !is_known_protocol(proto)
        {
            ctx.error(&p.f("protocol"), format!("unsupported protocol: {proto}"));
        }
        ctx.check(&p.f("number"), validate_port(port.number));
    }
    match resolution {
        Resolution::NONE => {
            if !se.endpoints.is_empty() {
                ctx.error(&root.f("endpoints"), "no endpoints should be provided for resolution type none");
            }
            if se.workload_selector.is_some() {
                ctx.warn(
                    &root.f("workloadSelector"),
                    "workloadSelector should not be set when resolution mode is NONE",
                );
            }
            // Served as Istio serves it: the request goes where its own authority resolves (the
            // client's connection), with the host's routing and DestinationRule applied.
        }
        Resolution::STATIC => {
            for (i, ep) in se.endpoints.iter().enumerate() {
                check_workload(ctx, &root.f("endpoints").i(i), ep, Some(&names), false);
            }
        }
        Resolution::DNS | Resolution::DNS_ROUND_ROBIN => {
            if se.endpoints.is_empty() {
                for (i, host) in se.hosts.iter().enumerate() {
                    if validate_fqdn(host).is_err() {
                        ctx.error(
                            &root.f("hosts").i(i),
                            format!(
                                "hosts must be FQDN if no endpoints are provided for resolution mode {resolution:?}"
                            ),
                        );
                    }
                }
            }
            if resolution == Resolution::DNS_ROUND_ROBIN && se.endpoints.len() > 1 {
                ctx.error(
                    &root.f("endpoints"),
                    format!("there must only be 0 or 1 endpoint for resolution mode {resolution:?}"),
                );
            }
            for (i, ep) in se.endpoints.iter().enumerate() {
                check_workload(ctx, &root.f("endpoints").i(i), ep, Some(&names), true);
            }
        }
        Resolution::DYNAMIC_DNS => {
            ctx.unsupported(&root.f("resolution"), "resolution DYNAMIC_DNS");
        }
    }
    if resolution != Resolution::NONE && se.hosts.len() > 1 {
        let all_l7 = se.ports.iter().all(|p| {
            let proto = p.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
            matches!(proto.as_str(), "HTTP" | "HTTPS" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY" | "TLS")
        });
        if !all_l7 {
            ctx.error(&root.f("ports"), "multiple hosts provided with non-HTTP, non-TLS ports");
        }
    }
    check_export_to(ctx, &root.f("exportTo"), &se.export_to, true);
    if !se.addresses.is_empty() {
        ctx.unsupported(&root.f("addresses"), "addresses (virtual IPs)");
    }
}

pub(super) fn validate_workload_entry(ctx: &mut Ctx<'_>, we: &WorkloadEntry) {
    check_workload(ctx, &P::root(), we, None, true);
}

fn check_workload(
    ctx: &mut Ctx<'_>,
    path: &P,
    we: &WorkloadEntry,
    service_ports: Option<&BTreeSet<&str>>,
    allow_fqdn: bool,
) {
    let addr = we.address.as_str();
    if addr.is_empty() {
        match &we.network {
            None => {
                ctx.error(&path.f("address"), "address is required");
                return;
            }
            Some(network) => ctx.warn(&path.f("address"), format!("address is unset with network {network:?}")),
        }
    }
    if let Some(socket) = addr.strip_prefix("unix://") {
        if socket.is_empty() {
            ctx.error(&path.f("address"), "unix address must not be empty");
        } else if !socket.starts_with('@') && (!socket.starts_with('/') || socket.ends_with('/')) {
            ctx.error(&path.f("address"), format!("{socket} is not an absolute path to a file"));
        }
        if !we.ports.is_empty() {
            ctx.error(&path.f("ports"), format!("unix endpoint {addr} must not include ports"));
        }
        ctx.unsupported(&path.f("address"), "unix domain socket endpoints");
    } else if !addr.is_empty() && !is_ip(addr) {
        if !allow_fqdn {
            ctx.error(&path.f("address"), format!("endpoint address {addr:?} is not a valid IP address"));
        } else if validate_fqdn(addr).is_err() {
            ctx.error(&path.f("address"), format!("endpoint address {addr:?} is not a valid FQDN or an IP address"));
        }
    }
    for (name, port) in &we.ports {
        let p = path.f("ports").k(name);
        if let Some(ports) = service_ports
            && !ports.contains(name.as_str())
        {
            ctx.error(&p, format!("endpoint port {port} is not defined by the service entry"));
        }
        if !is_dns1123_label(name) {
            ctx.error(&p, format!("invalid port name: {name}"));
        }
        ctx.check(&p, validate_port(*port));
    }
    validate_labels(ctx, &path.f("labels"), &we.labels);
}
