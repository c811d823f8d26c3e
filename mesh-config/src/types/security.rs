//! `security.istio.io` resources: `PeerAuthentication`, `AuthorizationPolicy` and
//! `RequestAuthentication`, as istio/api `security/v1beta1/*.proto` and `type/v1beta1/selector.proto`
//! define them (served unchanged as `v1` and `v1beta1`):
//! <https://istio.io/latest/docs/reference/config/security/peer_authentication/>,
//! <https://istio.io/latest/docs/reference/config/security/authorization-policy/>,
//! <https://istio.io/latest/docs/reference/config/security/request_authentication/>.
//!
//! Field names and enum spellings are Istio's; unknown fields are reported by the loader as for
//! every other kind.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `selector: {matchLabels: {...}}` (istio.type.v1beta1.WorkloadSelector).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    /// Labels a workload must carry (all of them) to be selected.
    pub match_labels: BTreeMap<String, String>,
}

/// `targetRef` / `targetRefs[]` (istio.type.v1beta1.PolicyTargetReference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyTargetReference {
    /// API group (`""` is the core group).
    pub group: String,
    /// Kind (`Service`, `ServiceEntry`, `Gateway`, `GatewayClass`).
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace (must be empty: cross-namespace references are not supported by Istio).
    pub namespace: String,
}

/// The `spec` of a PeerAuthentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerAuthentication {
    /// Workloads it applies to; none (or no labels): the namespace (the mesh, in the root namespace).
    pub selector: Option<WorkloadSelector>,
    /// The mutual TLS mode.
    pub mtls: Option<MutualTls>,
    /// Per-port modes, keyed by port number as written (`"8080"` or `8080`); only with a selector.
    pub port_level_mtls: Option<BTreeMap<String, MutualTls>>,
}

/// `mtls: {mode: ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MutualTls {
    /// The mode; unset inherits from the parent level.
    pub mode: Option<MtlsMode>,
}

/// `PeerAuthentication.MutualTLS.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum MtlsMode {
    /// Inherit from the parent.
    UNSET,
    /// Plaintext only.
    DISABLE,
    /// Plaintext and mTLS.
    PERMISSIVE,
    /// mTLS only.
    STRICT,
}

/// The `spec` of an AuthorizationPolicy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthorizationPolicy {
    /// Workloads it applies to; none: every workload of the namespace (of the mesh, in the root
    /// namespace).
    pub selector: Option<WorkloadSelector>,
    /// A single attachment (waypoints and Kubernetes Gateways).
    pub target_ref: Option<PolicyTargetReference>,
    /// Attachments (waypoints and Kubernetes Gateways).
    pub target_refs: Vec<PolicyTargetReference>,
    /// Rules; a request matching any of them takes the action.
    pub rules: Vec<Rule>,
    /// `ALLOW` (the default), `DENY`, `AUDIT` or `CUSTOM`.
    pub action: Option<Action>,
    /// The extension provider of a `CUSTOM` policy.
    pub provider: Option<ExtensionProvider>,
}

/// `AuthorizationPolicy.Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum Action {
    /// Allow a matching request.
    ALLOW,
    /// Deny a matching request.
    DENY,
    /// Audit a matching request.
    AUDIT,
    /// Delegate a matching request to an extension provider.
    CUSTOM,
}

/// `provider: {name: ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExtensionProvider {
    /// The name of a meshConfig `extensionProviders[]` entry.
    pub name: String,
}

/// `rules[]`: `from`, `to` and `when` are ANDed; the entries of `from` (and of `to`) are ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Rule {
    /// Sources.
    pub from: Vec<From>,
    /// Operations.
    pub to: Vec<To>,
    /// Conditions.
    pub when: Vec<Condition>,
}

/// `from[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct From {
    /// The source.
    pub source: Option<Source>,
}

/// `from[].source`: the fields are ANDed, the values of one field ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs)]
pub struct Source {
    pub principals: Vec<String>,
    pub not_principals: Vec<String>,
    pub request_principals: Vec<String>,
    pub not_request_principals: Vec<String>,
    pub namespaces: Vec<String>,
    pub not_namespaces: Vec<String>,
    pub service_accounts: Vec<String>,
    pub not_service_accounts: Vec<String>,
    pub ip_blocks: Vec<String>,
    pub not_ip_blocks: Vec<String>,
    pub remote_ip_blocks: Vec<String>,
    pub not_remote_ip_blocks: Vec<String>,
    pub trust_domains: Vec<String>,
    pub not_trust_domains: Vec<String>,
}

/// `to[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct To {
    /// The operation.
    pub operation: Option<Operation>,
}

/// `to[].operation`: the fields are ANDed, the values of one field ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(missing_docs)]
pub struct Operation {
    pub hosts: Vec<String>,
    pub not_hosts: Vec<String>,
    pub ports: Vec<String>,
    pub not_ports: Vec<String>,
    pub methods: Vec<String>,
    pub not_methods: Vec<String>,
    pub paths: Vec<String>,
    pub not_paths: Vec<String>,
}

/// `when[]`: one attribute (`key`) with values and negative values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    /// The attribute (`request.headers[x-token]`, `source.ip`, ...).
    pub key: String,
    /// Values, ORed.
    pub values: Vec<String>,
    /// Values that must not match.
    pub not_values: Vec<String>,
}

/// The `spec` of a RequestAuthentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestAuthentication {
    /// Workloads it applies to.
    pub selector: Option<WorkloadSelector>,
    /// A single attachment (waypoints and Kubernetes Gateways).
    pub target_ref: Option<PolicyTargetReference>,
    /// Attachments (waypoints and Kubernetes Gateways).
    pub target_refs: Vec<PolicyTargetReference>,
    /// The JWT rules.
    pub jwt_rules: Vec<JwtRule>,
}

/// `jwtRules[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtRule {
    /// The `iss` the token must carry.
    pub issuer: String,
    /// Accepted `aud` values (none: any).
    pub audiences: Vec<String>,
    /// Where the JWKS is fetched from (`jwks_uri` is the CRD's other spelling).
    #[serde(alias = "jwks_uri")]
    pub jwks_uri: Option<String>,
    /// The JWKS inline.
    pub jwks: Option<String>,
    /// Headers the token is read from (default `Authorization: Bearer`).
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters the token is read from (default `access_token`).
    pub from_params: Vec<String>,
    /// Header the verified payload is written to (base64url).
    pub output_payload_to_header: Option<String>,
    /// Cookies the token is read from.
    pub from_cookies: Vec<String>,
    /// Keep the token in the request forwarded upstream.
    pub forward_original_token: bool,
    /// Claims copied into request headers.
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// Timeout of the JWKS fetch.
    pub timeout: Option<String>,
    /// Claims whose values are space-separated lists.
    pub space_delimited_claims: Vec<String>,
    /// `OPTIONAL` or `REQUIRED`.
    pub presence: Option<JwtPresence>,
}

/// `jwtRules[].presence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum JwtPresence {
    /// A request without a token passes authentication (the default).
    OPTIONAL,
    /// A request without a token is refused.
    REQUIRED,
}

/// `fromHeaders[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct JwtHeader {
    /// Header name.
    pub name: String,
    /// Prefix to strip (`Bearer `).
    pub prefix: String,
}

/// `outputClaimToHeaders[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClaimToHeader {
    /// Header to set.
    pub header: String,
    /// Claim to copy.
    pub claim: String,
}
