//! PeerAuthentications and AuthorizationPolicies into [`mesh_core::security::Security`].
//!
//! Policies with `targetRef`/`targetRefs` are left out: they attach to waypoints and Kubernetes
//! Gateways, and a sidecar ignores them (istio/istio `pilot/pkg/model/policyattachment.go`,
//! `ShouldAttachPolicy`), as meshwork's workloads do. A CUSTOM policy keeps its rules: without
//! extension providers they deny what they match (see [`mesh_core::authz`]).

use std::sync::Arc;

use mesh_core::authn::{MtlsMode, PeerAuthn};
use mesh_core::authz::{self, Action, PolicySpec};
use mesh_core::policy::LabelSelector;

use crate::types::Resource;
use crate::types::security as sec;
use crate::validate::{parse_go_bool, parse_port_key};

fn mode(m: Option<&sec::MutualTls>) -> Option<MtlsMode> {
    match m.and_then(|m| m.mode) {
        None | Some(sec::MtlsMode::UNSET) => None,
        Some(sec::MtlsMode::DISABLE) => Some(MtlsMode::Disable),
        Some(sec::MtlsMode::PERMISSIVE) => Some(MtlsMode::Permissive),
        Some(sec::MtlsMode::STRICT) => Some(MtlsMode::Strict),
    }
}

fn selector(s: Option<&sec::WorkloadSelector>) -> LabelSelector {
    s.map(|s| LabelSelector::new(&s.match_labels)).unwrap_or_default()
}

/// A compiled PeerAuthentication.
pub(super) fn peer_authentication(r: &Resource, pa: &sec::PeerAuthentication) -> PeerAuthn {
    let port_level = pa
        .port_level_mtls
        .iter()
        .flatten()
        .filter_map(|(port, m)| Some((parse_port_key(port)?, mode(Some(m)))))
        .collect();
    PeerAuthn {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        selector: selector(pa.selector.as_ref()),
        mode: mode(pa.mtls.as_ref()),
        port_level,
    }
}

/// An AuthorizationPolicy as mesh-core reads it; `None` for one attached by `targetRefs`.
pub(super) fn authorization_policy(r: &Resource, ap: &sec::AuthorizationPolicy) -> Option<PolicySpec> {
    if ap.target_ref.is_some() || !ap.target_refs.is_empty() {
        return None;
    }
    let action = match ap.action.unwrap_or(sec::Action::ALLOW) {
        sec::Action::ALLOW => Action::Allow,
        sec::Action::DENY => Action::Deny,
        sec::Action::AUDIT => Action::Audit,
        sec::Action::CUSTOM => Action::Custom,
    };
    let dry_run = r.annotations.get("istio.io/dry-run").and_then(|v| parse_go_bool(v)).unwrap_or(false);
    Some(PolicySpec {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        action,
        selector: selector(ap.selector.as_ref()),
        dry_run,
        provider: ap.provider.as_ref().map(|p| Arc::from(p.name.as_str())),
        rules: ap.rules.iter().map(rule).collect(),
    })
}

fn rule(r: &sec::Rule) -> authz::RuleSpec {
    authz::RuleSpec {
        from: r.from.iter().filter_map(|f| f.source.as_ref()).map(source).collect(),
        to: r.to.iter().filter_map(|t| t.operation.as_ref()).map(operation).collect(),
        when: r
            .when
            .iter()
            .map(|c| authz::ConditionSpec {
                key: c.key.clone(),
                values: c.values.clone(),
                not_values: c.not_values.clone(),
            })
            .collect(),
    }
}

fn source(s: &sec::Source) -> authz::SourceSpec {
    authz::SourceSpec {
        principals: s.principals.clone(),
        not_principals: s.not_principals.clone(),
        request_principals: s.request_principals.clone(),
        not_request_principals: s.not_request_principals.clone(),
        namespaces: s.namespaces.clone(),
        not_namespaces: s.not_namespaces.clone(),
        service_accounts: s.service_accounts.clone(),
        not_service_accounts: s.not_service_accounts.clone(),
        ip_blocks: s.ip_blocks.clone(),
        not_ip_blocks: s.not_ip_blocks.clone(),
        remote_ip_blocks: s.remote_ip_blocks.clone(),
        not_remote_ip_blocks: s.not_remote_ip_blocks.clone(),
        trust_domains: s.trust_domains.clone(),
        not_trust_domains: s.not_trust_domains.clone(),
    }
}

fn operation(o: &sec::Operation) -> authz::OperationSpec {
    authz::OperationSpec {
        hosts: o.hosts.clone(),
        not_hosts: o.not_hosts.clone(),
        ports: o.ports.clone(),
        not_ports: o.not_ports.clone(),
        methods: o.methods.clone(),
        not_methods: o.not_methods.clone(),
        paths: o.paths.clone(),
        not_paths: o.not_paths.clone(),
    }
}

/// A RequestAuthentication's JWT rules; `None` for one attached by `targetRefs`.
pub(super) fn request_authentication(
    r: &Resource,
    ra: &sec::RequestAuthentication,
) -> Option<mesh_core::request_authn::RequestAuthn> {
    use mesh_core::request_authn::{JwtRule, JwtRuleSpec, RequestAuthn};
    if ra.target_ref.is_some() || !ra.target_refs.is_empty() {
        return None;
    }
    let rules = ra
        .jwt_rules
        .iter()
        .map(|j| {
            let spec = JwtRuleSpec {
                issuer: j.issuer.clone(),
                audiences: j.audiences.clone(),
                jwks_uri: j.jwks_uri.clone(),
                jwks: j.jwks.clone(),
                from_headers: j.from_headers.iter().map(|h| (h.name.clone(), h.prefix.clone())).collect(),
                from_params: j.from_params.clone(),
                from_cookies: j.from_cookies.clone(),
                forward_original_token: j.forward_original_token,
                output_payload_to_header: j.output_payload_to_header.clone(),
                output_claim_to_headers: j
                    .output_claim_to_headers
                    .iter()
                    .map(|c| (c.header.clone(), c.claim.clone()))
                    .collect(),
                timeout: j.timeout.as_deref().and_then(|t| crate::duration::parse_duration(t).ok()),
                space_delimited_claims: j.space_delimited_claims.clone(),
                required: j.presence == Some(sec::JwtPresence::REQUIRED),
            };
            Arc::new(JwtRule::new(&r.namespace, &r.name, &spec))
        })
        .collect();
    Some(RequestAuthn {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        selector: selector(ra.selector.as_ref()),
        rules,
    })
}
