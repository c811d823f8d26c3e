//! `security.istio.io` rules: istio/istio `pkg/config/validation/validation.go`
//! (`ValidatePeerAuthentication`, `ValidateAuthorizationPolicy`, `ValidateRequestAuthentication`,
//! `validateWorkloadSelector`, `validatePolicyTargetReference`, `validateJwtRule`),
//! `pkg/config/security/security.go` (`ValidateAttribute`, `CheckServiceAccount`,
//! `CheckTrustDomainValues`, `CheckValidPathTemplate`, `ValidateIPs`, `ValidatePorts`,
//! `ParseJwksURI`) and the CEL rules and limits of the CRD schemas (`maxItems`, `maxLength`,
//! `pattern`, "portLevelMtls requires selector", "only one of targetRefs or selector can be set").
//! Messages are Istio's.
//!
//! Unsupported (reported, never dropped): a `CUSTOM` action (meshwork has no extension
//! providers: like Istio with a provider it cannot find, the policy's rules deny what they match),
//! `targetRef`/`targetRefs` (attachments to Services, ServiceEntries, Gateways and GatewayClasses
//! are for waypoints and Kubernetes Gateways; a sidecar ignores such a policy, and so does
//! meshwork), and `experimental.envoy.filters.*` conditions (no Envoy filter metadata: they never
//! match). The policies are enforced where a workload's inbound side runs: the inbound layer
//! (`mesh_tower::inbound`, `mesh proxy --inbound`) and its mutual-TLS acceptor.

use super::{Ctx, P};
use crate::types::security::*;

const TARGET_REFS: &str = "targetRefs attach a policy to waypoints and Kubernetes Gateways, which meshwork does not run: its workloads ignore the policy, as Istio's sidecars do";

fn check_selector(ctx: &mut Ctx<'_>, path: &P, selector: Option<&WorkloadSelector>) {
    let Some(selector) = selector else { return };
    let labels = path.f("matchLabels");
    for (k, v) in &selector.match_labels {
        if k.is_empty() {
            ctx.error(&labels.k(k), format!("empty key is not supported in selector: {:?}", format!("{k}={v}")));
        }
        if k.contains('*') || v.contains('*') {
            ctx.error(&labels.k(k), format!("wildcard is not supported in selector: {:?}", format!("{k}={v}")));
        }
        if v.len() > 63 {
            ctx.error(&labels.k(k), format!("label value {v:?} is longer than 63 characters"));
        }
    }
    if selector.match_labels.len() > 4096 {
        ctx.error(&labels, "at most 4096 labels may be selected");
    }
    if selector.match_labels.is_empty() {
        ctx.warn(path, "workload selector specified without labels");
    }
}

/// `^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn is_group(s: &str) -> bool {
    s.is_empty()
        || s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// `^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
fn is_kind(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// The kinds Istio lets a policy attach to (`allowedTargetRefs`): (canonical group, kind).
const ALLOWED_TARGETS: [(&str, &str); 4] = [
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

fn check_target_ref(ctx: &mut Ctx<'_>, path: &P, r: &PolicyTargetReference) {
    if r.name.is_empty() {
        ctx.error(&path.f("name"), "targetRef name must be set");
    }
    if r.name.len() > 253 {
        ctx.error(&path.f("name"), "targetRef name must be at most 253 characters");
    }
    if !r.namespace.is_empty() {
        ctx.error(
            &path.f("namespace"),
            "targetRef namespace must not be set; cross namespace referencing is not supported",
        );
    }
    if !is_group(&r.group) || r.group.len() > 253 {
        ctx.error(&path.f("group"), format!("targetRef group {:?} is not a valid API group", r.group));
    }
    if !is_kind(&r.kind) || r.kind.len() > 63 {
        ctx.error(&path.f("kind"), format!("targetRef kind {:?} is not a valid kind", r.kind));
    }
    let group = if r.group.is_empty() { "core" } else { r.group.as_str() };
    if !ALLOWED_TARGETS.iter().any(|(g, k)| *g == group && *k == r.kind) {
        ctx.error(
            &path.f("kind"),
            format!(
                "targetRef must be to one of Service, ServiceEntry, gateway.networking.k8s.io Gateway or GatewayClass but was {}/{}",
                r.group, r.kind
            ),
        );
    }
}

pub(super) fn check_attachment(
    ctx: &mut Ctx<'_>,
    selector: Option<&WorkloadSelector>,
    target_ref: Option<&PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) {
    let root = P::root();
    let set =
        usize::from(selector.is_some()) + usize::from(target_ref.is_some()) + usize::from(!target_refs.is_empty());
    if set > 1 {
        ctx.error(&root, "only one of targetRefs or workloadSelector can be set");
    }
    check_selector(ctx, &root.f("selector"), selector);
    if let Some(r) = target_ref {
        check_target_ref(ctx, &root.f("targetRef"), r);
        ctx.unsupported_because(&root.f("targetRef"), TARGET_REFS.replace("targetRefs", "targetRef"));
    }
    if target_refs.len() > 16 {
        ctx.error(&root.f("targetRefs"), "at most 16 targetRefs may be set");
    }
    for (i, r) in target_refs.iter().enumerate() {
        check_target_ref(ctx, &root.f("targetRefs").i(i), r);
    }
    if !target_refs.is_empty() {
        ctx.unsupported_because(&root.f("targetRefs"), TARGET_REFS.to_string());
    }
}

/// A `portLevelMtls` key: a port number 1..65535.
pub(crate) fn parse_port_key(key: &str) -> Option<u16> {
    key.parse::<u32>().ok().and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0)
}

pub(super) fn validate_peer_authentication(ctx: &mut Ctx<'_>, pa: &PeerAuthentication) {
    let root = P::root();
    let empty_selector = pa.selector.as_ref().is_none_or(|s| s.match_labels.is_empty());
    if let Some(ports) = &pa.port_level_mtls {
        let p = root.f("portLevelMtls");
        if empty_selector {
            ctx.error(&p, "mesh/namespace peer authentication cannot have port level mTLS");
        }
        if ports.is_empty() {
            ctx.error(&p, "port level mTLS, if defined, must have at least one element");
        }
        for key in ports.keys() {
            if key.parse::<i64>().is_err() {
                ctx.error(&p.k(key), format!("type conversion error from {key:?} to a port number"));
            } else if parse_port_key(key).is_none() {
                ctx.error(&p.k(key), "port must be in range 1..65535");
            }
        }
    }
    check_selector(ctx, &root.f("selector"), pa.selector.as_ref());
}

/// `from.source` fields that are not HTTP-only (they also apply to TCP).
fn tcp_fields_in_source(s: &Source) -> bool {
    !(s.principals.is_empty()
        && s.not_principals.is_empty()
        && s.ip_blocks.is_empty()
        && s.not_ip_blocks.is_empty()
        && s.namespaces.is_empty()
        && s.not_namespaces.is_empty()
        && s.remote_ip_blocks.is_empty()
        && s.not_remote_ip_blocks.is_empty()
        && s.service_accounts.is_empty()
        && s.not_service_accounts.is_empty())
}

pub(super) fn validate_authorization_policy(ctx: &mut Ctx<'_>, ap: &AuthorizationPolicy) {
    let root = P::root();
    check_attachment(ctx, ap.selector.as_ref(), ap.target_ref.as_ref(), &ap.target_refs);
    let action = ap.action.unwrap_or(Action::ALLOW);
    if ap.rules.len() > 512 {
        ctx.error(&root.f("rules"), "at most 512 rules may be set");
    }
    if action == Action::CUSTOM {
        if ap.rules.is_empty() {
            ctx.error(
                &root.f("rules"),
                "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
            );
        } else if ap.provider.as_ref().is_none_or(|p| p.name.is_empty()) {
            ctx.error(&root.f("provider").f("name"), "`provider.name` must not be empty");
        }
        for (i, rule) in ap.rules.iter().enumerate() {
            let rp = root.f("rules").i(i);
            for (j, from) in rule.from.iter().enumerate() {
                let Some(s) = &from.source else { continue };
                let sp = rp.f("from").i(j).f("source");
                for (name, field, values) in [
                    ("From.Namespaces", "namespaces", &s.namespaces),
                    ("From.NotNamespaces", "notNamespaces", &s.not_namespaces),
                    ("From.ServiceAccounts", "serviceAccounts", &s.service_accounts),
                    ("From.NotServiceAccounts", "notServiceAccounts", &s.not_service_accounts),
                    ("From.TrustDomains", "trustDomains", &s.trust_domains),
                    ("From.NotTrustDomains", "notTrustDomains", &s.not_trust_domains),
                    ("From.Principals", "principals", &s.principals),
                    ("From.NotPrincipals", "notPrincipals", &s.not_principals),
                    ("From.RequestPrincipals", "requestPrincipals", &s.request_principals),
                    ("From.NotRequestPrincipals", "notRequestPrincipals", &s.not_request_principals),
                ] {
                    if !values.is_empty() {
                        ctx.error(&sp.f(field), format!("{name} is currently not supported with CUSTOM action"));
                    }
                }
            }
            for (j, when) in rule.when.iter().enumerate() {
                let k = when.key.as_str();
                if matches!(k, "source.namespace" | "source.serviceAccount" | "source.trustDomain" | "source.principal")
                    || k.starts_with("request.auth.")
                {
                    ctx.error(
                        &rp.f("when").i(j).f("key"),
                        format!("{k} is currently not supported with CUSTOM action"),
                    );
                }
            }
        }
        let provider = ap.provider.as_ref().map_or("", |p| p.name.as_str());
        ctx.unsupported_because(
            &root.f("action"),
            format!(
                "CUSTOM action (provider {provider:?}): meshwork has no extension providers; as Istio does with a provider it cannot find, the policy's rules deny the requests they match"
            ),
        );
    }
    if ap.provider.is_some() && action != Action::CUSTOM {
        ctx.error(&root.f("provider"), format!("`provider` must not be with non CUSTOM action, found {action:?}"));
    }
    if action == Action::DENY && ap.rules.is_empty() {
        ctx.error(
            &root.f("rules"),
            "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
        );
    }
    // A null entry reads as an empty rule (which matches everything): Istio refuses it.
    let null_rules: Vec<usize> = match ctx.resource.spec_node.as_deref().and_then(|n| n.get("rules")) {
        Some(crate::yaml::Node { value: crate::yaml::Value::Seq(items), .. }) => {
            items.iter().enumerate().filter(|(_, n)| n.is_null()).map(|(i, _)| i).collect()
        }
        _ => Vec::new(),
    };
    for (i, rule) in ap.rules.iter().enumerate() {
        if null_rules.contains(&i) {
            ctx.error(&root.f("rules").i(i), format!("`rule` must not be nil, found at rule {i}"));
            continue;
        }
        check_rule(ctx, &root.f("rules").i(i), i, rule, action);
    }
    if let Some(v) = ctx.resource.annotations.get("istio.io/dry-run")
        && parse_go_bool(v).is_none()
    {
        ctx.warn(
            &root,
            format!("failed to parse the value of istio.io/dry-run: {v:?} is not a boolean; the policy is enforced"),
        );
    }
}

/// Go's `strconv.ParseBool`, which Istio uses for the `istio.io/dry-run` annotation.
pub(crate) fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn empty_values(ctx: &mut Ctx<'_>, path: &P, name: &str, values: &[String]) {
    if values.iter().any(String::is_empty) {
        ctx.error(path, format!("empty value not allowed, found in {name}"));
    }
}

fn check_rule(ctx: &mut Ctx<'_>, rp: &P, i: usize, rule: &Rule, action: Action) {
    if rule.from.len() > 512 {
        ctx.error(&rp.f("from"), "at most 512 sources may be set");
    }
    let (mut tcp_in_from, mut tcp_in_to, mut from_exists, mut to_exists) = (false, false, false, false);
    for (j, from) in rule.from.iter().enumerate() {
        let fp = rp.f("from").i(j);
        let Some(s) = &from.source else {
            ctx.error(&fp.f("source"), format!("`from.source` must not be nil, found at rule {i}"));
            continue;
        };
        from_exists = true;
        let sp = fp.f("source");
        let identities = [&s.principals, &s.not_principals, &s.namespaces, &s.not_namespaces];
        let accounts = [&s.service_accounts, &s.not_service_accounts];
        if identities.iter().any(|v| !v.is_empty()) && accounts.iter().any(|v| !v.is_empty()) {
            ctx.error(&sp, format!("cannot set serviceAccounts with namespaces or principals, found at rule {i}"));
        }
        if !tcp_fields_in_source(s)
            && s.request_principals.is_empty()
            && s.not_request_principals.is_empty()
            && s.trust_domains.is_empty()
            && s.not_trust_domains.is_empty()
        {
            ctx.error(&sp, format!("`from.source` must not be empty, found at rule {i}"));
        }
        for (field, values) in [
            ("ipBlocks", &s.ip_blocks),
            ("notIpBlocks", &s.not_ip_blocks),
            ("remoteIpBlocks", &s.remote_ip_blocks),
            ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
        ] {
            check_ips(ctx, &sp.f(field), values);
        }
        for (name, field, values) in [
            ("Principals", "principals", &s.principals),
            ("RequestPrincipals", "requestPrincipals", &s.request_principals),
            ("Namespaces", "namespaces", &s.namespaces),
            ("IpBlocks", "ipBlocks", &s.ip_blocks),
            ("RemoteIpBlocks", "remoteIpBlocks", &s.remote_ip_blocks),
            ("NotPrincipals", "notPrincipals", &s.not_principals),
            ("NotRequestPrincipals", "notRequestPrincipals", &s.not_request_principals),
            ("NotNamespaces", "notNamespaces", &s.not_namespaces),
            ("NotIpBlocks", "notIpBlocks", &s.not_ip_blocks),
            ("NotRemoteIpBlocks", "notRemoteIpBlocks", &s.not_remote_ip_blocks),
        ] {
            empty_values(ctx, &sp.f(field), name, values);
        }
        for (name, field, values) in [
            ("ServiceAccounts", "serviceAccounts", &s.service_accounts),
            ("NotServiceAccounts", "notServiceAccounts", &s.not_service_accounts),
        ] {
            ctx.check(&sp.f(field), check_service_accounts(name, values));
        }
        for (name, field, values) in [
            ("TrustDomains", "trustDomains", &s.trust_domains),
            ("NotTrustDomains", "notTrustDomains", &s.not_trust_domains),
        ] {
            ctx.check(&sp.f(field), check_trust_domains(name, values));
        }
        tcp_in_from |= tcp_fields_in_source(s);
    }
    for (j, to) in rule.to.iter().enumerate() {
        let tp = rp.f("to").i(j);
        let Some(op) = &to.operation else {
            ctx.error(&tp.f("operation"), format!("`to.operation` must not be nil, found at rule {i}"));
            continue;
        };
        to_exists = true;
        let op_path = tp.f("operation");
        if op.ports.is_empty()
            && op.methods.is_empty()
            && op.paths.is_empty()
            && op.hosts.is_empty()
            && op.not_ports.is_empty()
            && op.not_methods.is_empty()
            && op.not_paths.is_empty()
            && op.not_hosts.is_empty()
        {
            ctx.error(&op_path, format!("`to.operation` must not be empty, found at rule {i}"));
        }
        for (field, values) in [("ports", &op.ports), ("notPorts", &op.not_ports)] {
            ctx.check(&op_path.f(field), check_ports(values));
        }
        for (name, field, values) in [
            ("Ports", "ports", &op.ports),
            ("Methods", "methods", &op.methods),
            ("Paths", "paths", &op.paths),
            ("Hosts", "hosts", &op.hosts),
            ("NotPorts", "notPorts", &op.not_ports),
            ("NotMethods", "notMethods", &op.not_methods),
            ("NotPaths", "notPaths", &op.not_paths),
            ("NotHosts", "notHosts", &op.not_hosts),
        ] {
            empty_values(ctx, &op_path.f(field), name, values);
        }
        for (name, field, values) in [("Paths", "paths", &op.paths), ("NotPaths", "notPaths", &op.not_paths)] {
            ctx.check(&op_path.f(field), check_path_templates(name, values));
        }
        tcp_in_to |= !(op.ports.is_empty() && op.not_ports.is_empty());
    }
    for (j, c) in rule.when.iter().enumerate() {
        let cp = rp.f("when").i(j);
        if c.key.is_empty() {
            ctx.error(&cp.f("key"), "`key` must not be empty");
            continue;
        }
        if c.values.is_empty() && c.not_values.is_empty() {
            ctx.error(&cp, format!("at least one of `values` or `notValues` must be set for key {}", c.key));
            continue;
        }
        if let Err(e) = validate_key(&c.key) {
            ctx.error(&cp.f("key"), format!("invalid `key` {}: {e}", c.key));
            continue;
        }
        if let Err(e) = validate_values(&c.key, &c.values) {
            ctx.error(&cp.f("values"), format!("invalid `value` for `key` {}: {e}", c.key));
        }
        if let Err(e) = validate_values(&c.key, &c.not_values) {
            ctx.error(&cp.f("notValues"), format!("invalid `notValue` for `key` {}: {e}", c.key));
        }
        if c.key.starts_with("experimental.envoy.filters.") {
            ctx.unsupported_because(
                &cp.f("key"),
                format!(
                    "condition {}: meshwork has no Envoy filter metadata, so its values never match (and its notValues always do)",
                    c.key
                ),
            );
        }
    }
    if ((from_exists && !to_exists && !tcp_in_from) || (to_exists && !tcp_in_to)) && action == Action::DENY {
        ctx.warn(
            rp,
            "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port",
        );
    }
}

fn check_ips(ctx: &mut Ctx<'_>, path: &P, values: &[String]) {
    for v in values {
        if let Err(e) = validate_ip(v) {
            ctx.error(path, e);
        }
    }
}

/// Istio's `ValidateIPs` for one value (`netip.ParsePrefix` / `ParseAddr`).
fn validate_ip(v: &str) -> Result<(), String> {
    if v.contains('/') {
        mesh_core::authz::Cidr::parse(v).map(|_| ()).map_err(|e| format!("bad CIDR range ({v}): {e}"))
    } else if v.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!("bad IP address ({v})"))
    }
}

/// Istio's `ValidatePorts`.
fn check_ports(values: &[String]) -> Result<(), String> {
    for p in values {
        match p.parse::<u64>() {
            Ok(n) if n <= 65535 => {}
            _ => return Err(format!("bad port ({p})")),
        }
    }
    Ok(())
}

/// Istio's `CheckServiceAccount` (and the CRD's 16 items, 320 characters).
fn check_service_accounts(key: &str, values: &[String]) -> Result<(), String> {
    if values.len() > 16 {
        return Err("may not have more than 16 values".to_string());
    }
    let format_hint = "expected format 'serviceAccount' or 'namespace/serviceAccount'";
    for v in values {
        if v.is_empty() {
            return Err(format!("empty value not allowed, found in {key}"));
        }
        if v.contains('*') {
            return Err(format!("wildcard not allowed, found in {key}"));
        }
        if v.matches('/').count() > 1 {
            return Err(format!("{format_hint}, found {v:?} in {key}"));
        }
        if v.len() > 320 {
            return Err(format!("value cannot exceed 320 characters, found {v:?} in {key}"));
        }
        if let Some((ns, sa)) = v.split_once('/') {
            if ns.is_empty() {
                return Err(format!("{format_hint}, found empty namespace {v:?} in {key}"));
            }
            if sa.is_empty() {
                return Err(format!("{format_hint}, found empty serviceAccount {v:?} in {key}"));
            }
        }
    }
    Ok(())
}

/// Istio's `CheckWildcardValues`.
fn check_wildcards(key: &str, values: &[String]) -> Result<(), String> {
    for v in values {
        if v.is_empty() {
            return Err(format!("empty value not allowed, found in {key}"));
        }
        let n = v.matches('*').count();
        if n > 1 {
            return Err(format!("at most one wildcard is allowed, found in {key}: {v:?}"));
        }
        if n == 1 && v != "*" && !v.starts_with('*') && !v.ends_with('*') {
            return Err(format!("wildcard is only allowed at the start or end, found in {key}: {v:?}"));
        }
    }
    Ok(())
}

/// Istio's `CheckTrustDomainValues`.
fn check_trust_domains(key: &str, values: &[String]) -> Result<(), String> {
    check_wildcards(key, values)?;
    match values.iter().find(|v| v.contains('/')) {
        Some(v) => Err(format!("trust domain must not contain '/', found in {key}: {v:?}")),
        None => Ok(()),
    }
}

/// Istio's `CheckValidPathTemplate`.
fn check_path_templates(key: &str, paths: &[String]) -> Result<(), String> {
    for path in paths {
        let is_template = path.contains("{*}") || path.contains("{**}");
        let trimmed = path.trim_matches('/');
        let mut any_seen = false;
        for glob in trimmed.split('/') {
            match glob {
                "{*}" | "{**}" if any_seen => {
                    return Err(format!(
                        "invalid or unsupported path {trimmed}, found in {key}. {{**}} is not the last operator"
                    ));
                }
                "{*}" => continue,
                "{**}" => {
                    any_seen = true;
                    continue;
                }
                _ => {}
            }
            if glob.contains(['{', '}']) {
                return Err(format!(
                    "invalid or unsupported path {trimmed}, found in {key}. Contains '{{' or '}}' beyond a supported path template"
                ));
            }
            if is_template && !mesh_core::authz::is_template_literal(glob) {
                return Err(format!(
                    "invalid or unsupported path {trimmed}, found in {key}. Contains segment {glob} with invalid string literal"
                ));
            }
        }
    }
    Ok(())
}

/// `a[b]`: a name in brackets after the attribute.
fn validate_map_key(key: &str) -> Result<(), String> {
    match key.find('[') {
        Some(open) if key.ends_with(']') && open > 0 && open < key.len() - 2 => Ok(()),
        _ => Err(format!("bad key ({key}): should have format a[b]")),
    }
}

/// The key half of Istio's `ValidateAttribute`: known `when` keys, map keys as `a[b]`.
fn validate_key(key: &str) -> Result<(), String> {
    match key {
        k if k.starts_with("request.headers") => validate_map_key(k),
        "source.ip"
        | "remote.ip"
        | "destination.ip"
        | "source.namespace"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni"
        | "source.serviceAccount"
        | "source.trustDomain"
        | "destination.port" => Ok(()),
        k if k.starts_with("request.auth.claims") => validate_map_key(k),
        k if k.starts_with("experimental.envoy.filters.") => validate_map_key(k),
        "destination.namespace" => Err(format!("attribute {key} is replaced by the metadata.namespace")),
        k if k.starts_with("destination.labels") => {
            Err(format!("attribute {key} is replaced by the workload selector"))
        }
        "destination.name" | "destination.user" => {
            Err(format!("deprecated attribute {key}: only supported in v1alpha1"))
        }
        _ => Err(format!("unknown attribute: {key}")),
    }
}

/// The value half of Istio's `ValidateAttribute` (for a known key).
fn validate_values(key: &str, values: &[String]) -> Result<(), String> {
    if values.iter().any(String::is_empty) {
        return Err(format!("empty value not allowed, found in {key}"));
    }
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => values.iter().try_for_each(|v| validate_ip(v)),
        "source.serviceAccount" => check_service_accounts(key, values),
        "source.trustDomain" => check_wildcards(key, values),
        "destination.port" => check_ports(values),
        _ => Ok(()),
    }
}
