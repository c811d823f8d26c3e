//! Validation of the Kubernetes kinds (Service, Pod, Namespace, Node, EndpointSlice), as the API
//! server validates them (kubernetes/kubernetes `pkg/apis/core/validation/validation.go`:
//! `ValidateService`, `ValidateObjectMeta`; `pkg/apis/discovery/validation/validation.go`:
//! `ValidateEndpointSlice`), for the fields meshwork reads. Messages use the API server's
//! wording (`Invalid value: ...`, `Required value`, `Unsupported value: ...; supported values:
//! ...`, `Duplicate value: ...`), so a `kubectl apply` user recognises them.
//!
//! Names: a Service's is a DNS-1035 label (it becomes a DNS name: lower case, starting with a
//! letter), a Namespace's a DNS-1123 label, the others' DNS-1123 subdomains. Ports are
//! 1–65535; port names are DNS-1123 labels (IANA service names, at most 15 characters, for a
//! `targetPort` given by name); an EndpointSlice's `addressType` is `IPv4`, `IPv6` or `FQDN` and
//! its addresses are of that type.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::common::{is_dns1123_label, validate_labels};
use super::{Ctx, P};
use crate::types::kube::{
    EndpointSlice, IntOrString, MCS_SERVICE_NAME_LABEL, Metadata, Namespace, Node, Pod, SERVICE_NAME_LABEL, Secret,
    Service,
};

/// Kinds of object name, as `ValidateObjectMeta` is given them.
#[derive(Clone, Copy)]
enum NameRule {
    /// RFC 1035 label: Services.
    Dns1035Label,
    /// RFC 1123 label: Namespaces.
    Dns1123Label,
    /// RFC 1123 subdomain: Pods, Nodes, EndpointSlices.
    Dns1123Subdomain,
}

pub(super) fn validate_service(ctx: &mut Ctx<'_>, s: &Service) {
    metadata(ctx, &s.metadata, NameRule::Dns1035Label);
    let spec = P::root().f("spec");
    let type_ = s.spec.type_.as_deref().unwrap_or("ClusterIP");
    if !matches!(type_, "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName") {
        ctx.error(
            &spec.f("type"),
            format!(
                "Unsupported value: {type_:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ),
        );
    }
    let external = type_ == "ExternalName";
    if external {
        match s.spec.external_name.as_deref().unwrap_or("") {
            "" => ctx.error(&spec.f("externalName"), "Required value"),
            name if !is_dns1123_subdomain(name.trim_end_matches('.')) => ctx.error(
                &spec.f("externalName"),
                format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"),
            ),
            _ => {}
        }
    }
    if let Some(ip) = s.spec.cluster_ip.as_deref()
        && !ip.is_empty()
        && ip != "None"
        && ip.parse::<IpAddr>().is_err()
    {
        ctx.error(&spec.f("clusterIP"), format!("Invalid value: {ip:?}: must be empty, 'None', or a valid IP address"));
    }
    for (i, ip) in s.spec.cluster_ips.iter().enumerate() {
        if ip != "None" && ip.parse::<IpAddr>().is_err() {
            ctx.error(
                &spec.f("clusterIPs").i(i),
                format!("Invalid value: {ip:?}: must be 'None' or a valid IP address"),
            );
        }
    }
    if s.spec.ports.is_empty() && !external && !s.is_headless() {
        ctx.error(&spec.f("ports"), "Required value");
    }
    let named = s.spec.ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in s.spec.ports.iter().enumerate() {
        let p = spec.f("ports").i(i);
        match port.name.as_deref().unwrap_or("") {
            "" if named => ctx.error(&p.f("name"), "Required value"),
            "" => {}
            name => {
                if !is_dns1123_label_lower(name) {
                    ctx.error(&p.f("name"), format!("Invalid value: {name:?}: {DNS1123_LABEL}"));
                }
                if !names.insert(name) {
                    ctx.error(&p.f("name"), format!("Duplicate value: {name:?}"));
                }
            }
        }
        check_port_number(ctx, &p.f("port"), port.port);
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        check_protocol(ctx, &p.f("protocol"), protocol);
        if !numbers.insert((port.port, protocol)) {
            ctx.error(&p, format!("Duplicate value: {{\"port\": {}, \"protocol\": {protocol:?}}}", port.port));
        }
        match &port.target_port {
            Some(IntOrString::Int(n)) => check_port_number(ctx, &p.f("targetPort"), *n),
            Some(IntOrString::String(name)) => {
                if let Err(message) = iana_svc_name(name) {
                    ctx.error(&p.f("targetPort"), format!("Invalid value: {name:?}: {message}"));
                }
            }
            None => {}
        }
        if let Some(node_port) = port.node_port
            && node_port != 0
        {
            check_port_number(ctx, &p.f("nodePort"), node_port);
        }
        if let Some(app) = port.app_protocol.as_deref() {
            check_app_protocol(ctx, &p.f("appProtocol"), app);
        }
    }
    validate_labels(ctx, &spec.f("selector"), &s.spec.selector);
}

pub(super) fn validate_pod(ctx: &mut Ctx<'_>, pod: &Pod) {
    metadata(ctx, &pod.metadata, NameRule::Dns1123Subdomain);
    let status = P::root().f("status");
    if let Some(ip) = pod.status.pod_ip.as_deref()
        && !ip.is_empty()
        && ip.parse::<IpAddr>().is_err()
    {
        ctx.error(&status.f("podIP"), format!("Invalid value: {ip:?}: must be a valid IP address"));
    }
    for (i, ip) in pod.status.pod_ips.iter().enumerate() {
        if ip.ip.parse::<IpAddr>().is_err() {
            ctx.error(
                &status.f("podIPs").i(i).f("ip"),
                format!("Invalid value: {:?}: must be a valid IP address", ip.ip),
            );
        }
    }
}

pub(super) fn validate_namespace(ctx: &mut Ctx<'_>, ns: &Namespace) {
    metadata(ctx, &ns.metadata, NameRule::Dns1123Label);
}

/// A Secret: its name; a `kubernetes.io/tls` one must hold `tls.crt` and `tls.key` (as the API
/// server requires of that type), readable.
pub(super) fn validate_secret(ctx: &mut Ctx<'_>, secret: &Secret) {
    metadata(ctx, &secret.metadata, NameRule::Dns1123Subdomain);
    if secret.kind.as_deref() == Some("kubernetes.io/tls") {
        for key in ["tls.crt", "tls.key"] {
            if let Err(message) = secret.value(key) {
                ctx.error(&P::root().f("data").k(key), message);
            }
        }
    }
}

pub(super) fn validate_node(ctx: &mut Ctx<'_>, node: &Node) {
    metadata(ctx, &node.metadata, NameRule::Dns1123Subdomain);
}

pub(super) fn validate_endpoint_slice(ctx: &mut Ctx<'_>, slice: &EndpointSlice) {
    metadata(ctx, &slice.metadata, NameRule::Dns1123Subdomain);
    let root = P::root();
    let address_type = slice.address_type.as_deref().unwrap_or("");
    match address_type {
        "" => ctx.error(&root.f("addressType"), "Required value"),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => ctx.error(
            &root.f("addressType"),
            format!("Unsupported value: {other:?}: supported values: \"FQDN\", \"IPv4\", \"IPv6\""),
        ),
    }
    if slice.endpoints.len() > 1000 {
        ctx.error(&root.f("endpoints"), format!("Too many: {}: must have at most 1000 items", slice.endpoints.len()));
    }
    for (i, e) in slice.endpoints.iter().enumerate() {
        let p = root.f("endpoints").i(i);
        if e.addresses.is_empty() {
            ctx.error(&p.f("addresses"), "Required value: must contain at least 1 address");
        } else if e.addresses.len() > 100 {
            ctx.error(&p.f("addresses"), format!("Too many: {}: must have at most 100 items", e.addresses.len()));
        }
        for (j, address) in e.addresses.iter().enumerate() {
            let valid = match address_type {
                "IPv4" => address.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()),
                "IPv6" => address.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()),
                "FQDN" => is_dns1123_subdomain(address),
                _ => true,
            };
            if !valid {
                let what = match address_type {
                    "IPv4" => "must be a valid IPv4 address",
                    "IPv6" => "must be a valid IPv6 address",
                    _ => "must be a valid RFC 1123 subdomain",
                };
                ctx.error(&p.f("addresses").i(j), format!("Invalid value: {address:?}: {what}"));
            }
        }
        if let Some(node) = e.node_name.as_deref()
            && !node.is_empty()
            && !is_dns1123_subdomain(node)
        {
            ctx.error(&p.f("nodeName"), format!("Invalid value: {node:?}: must be a valid RFC 1123 subdomain"));
        }
        if let Some(target) = &e.target_ref
            && target.kind.as_deref() == Some("Pod")
            && target.name.as_deref().unwrap_or("").is_empty()
        {
            ctx.error(&p.f("targetRef").f("name"), "Required value");
        }
    }
    if slice.ports.len() > 100 {
        ctx.error(&root.f("ports"), format!("Too many: {}: must have at most 100 items", slice.ports.len()));
    }
    let mut names = BTreeSet::new();
    for (i, port) in slice.ports.iter().enumerate() {
        let p = root.f("ports").i(i);
        let name = port.name.as_deref().unwrap_or("");
        if !name.is_empty() && !is_dns1123_label_lower(name) {
            ctx.error(&p.f("name"), format!("Invalid value: {name:?}: {DNS1123_LABEL}"));
        }
        if !names.insert(name) {
            ctx.error(&p.f("name"), format!("Duplicate value: {name:?}"));
        }
        if let Some(n) = port.port {
            check_port_number(ctx, &p.f("port"), n);
        }
        check_protocol(ctx, &p.f("protocol"), port.protocol.as_deref().unwrap_or("TCP"));
        if let Some(app) = port.app_protocol.as_deref() {
            check_app_protocol(ctx, &p.f("appProtocol"), app);
        }
    }
    let labels = &slice.metadata.labels;
    if slice.service_name().is_none() && !labels.contains_key(MCS_SERVICE_NAME_LABEL) {
        ctx.warn(
            &root.f("metadata").f("labels"),
            format!("no {SERVICE_NAME_LABEL:?} label: the slice belongs to no Service and is not read"),
        );
    }
}

fn metadata(ctx: &mut Ctx<'_>, meta: &Metadata, rule: NameRule) {
    let m = P::root().f("metadata");
    let name = meta.name.as_str();
    let problem = match rule {
        NameRule::Dns1035Label => (!is_dns1035_label(name)).then_some(DNS1035_LABEL),
        NameRule::Dns1123Label => (!is_dns1123_label_lower(name)).then_some(DNS1123_LABEL),
        NameRule::Dns1123Subdomain => (!is_dns1123_subdomain(name)).then_some(DNS1123_SUBDOMAIN),
    };
    if let Some(message) = problem {
        ctx.error(&m.f("name"), format!("Invalid value: {name:?}: {message}"));
    }
    if !meta.namespace.is_empty() && !is_dns1123_label_lower(&meta.namespace) {
        ctx.error(&m.f("namespace"), format!("Invalid value: {:?}: {DNS1123_LABEL}", meta.namespace));
    }
    validate_labels(ctx, &m.f("labels"), &meta.labels);
}

const DNS1035_LABEL: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (at most 63 characters)";
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (at most 63 characters)";
const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (at most 253 characters)";

fn check_port_number(ctx: &mut Ctx<'_>, path: &P, port: i64) {
    if !(1..=65535).contains(&port) {
        ctx.error(path, format!("Invalid value: {port}: must be between 1 and 65535, inclusive"));
    }
}

fn check_protocol(ctx: &mut Ctx<'_>, path: &P, protocol: &str) {
    if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
        ctx.error(path, format!("Unsupported value: {protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""));
    }
}

/// `appProtocol`: a qualified name (an optional DNS subdomain prefix and `/`, then a name of
/// letters, digits, `-`, `_`, `.`), as `ValidateQualifiedName`.
fn check_app_protocol(ctx: &mut Ctx<'_>, path: &P, app: &str) {
    let (prefix, name) = match app.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, app),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok || prefix.is_some_and(|p| !is_dns1123_subdomain(p)) {
        ctx.error(
            path,
            format!("Invalid value: {app:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
        );
    }
}

fn is_dns1123_label_lower(s: &str) -> bool {
    is_dns1123_label(s) && !s.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label_lower(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label_lower)
}

/// A port given by name (`ValidatePortName`, `IsValidPortName`: an IANA service name).
fn iana_svc_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be no more than 15 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        return Err("must not contain consecutive hyphens");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must not begin or end with a hyphen");
    }
    Ok(())
}
