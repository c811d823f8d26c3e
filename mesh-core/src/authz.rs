//! The authorization decision: AuthorizationPolicy evaluated for one request arriving at one
//! workload, as one value ([`AuthzDecision`]), the way Istio's sidecar evaluates the RBAC filters
//! Istio generates (istio/istio `pilot/pkg/security/authz/builder/builder.go`,
//! `pilot/pkg/security/authz/model/`, `pilot/pkg/model/authorization.go`;
//! <https://istio.io/latest/docs/reference/config/security/authorization-policy/>,
//! <https://istio.io/latest/docs/concepts/security/#authorization-policies>):
//!
//! 1. **CUSTOM** policies first. meshwork has no extension providers, so a CUSTOM policy is what
//!    Istio makes of one whose provider it cannot find: its rules deny the requests they match.
//! 2. **DENY**: any matching rule denies.
//! 3. **ALLOW**: with no ALLOW policy selecting the workload, the request is allowed; with some,
//!    it is allowed only if one of their rules matches (an ALLOW policy without rules matches
//!    nothing: "allow-nothing").
//!
//! **AUDIT** rules are evaluated beside them and only reported ([`AuthzDecision::audit`]).
//! Policies annotated `istio.io/dry-run: "true"` (Go's `ParseBool`) are never enforced; what
//! they would have decided is [`AuthzDecision::dry_run`].
//!
//! A policy applies to a workload when it is in the workload's namespace or in the root
//! namespace and its selector's labels are a subset of the workload's (no selector: every
//! workload). Policies with `targetRefs` are for waypoints and Gateways; mesh-config does not
//! pass them here, as sidecars ignore them. The policy reported as the one that decided is the
//! first matching rule in Envoy's order (policy ids `ns[NS]-policy[NAME]-rule[N]`, sorted).
//!
//! [`AuthzPolicies`] indexes the policies by namespace and by one selector label, so choosing a
//! workload's policies costs a few hash lookups however many unrelated policies exist; a
//! [`WorkloadAuthz`] holds one workload's choice for repeated evaluation.
//!
//! Request attributes ([`AuthzRequest`]): `principals`, `namespaces`, `serviceAccounts`,
//! `trustDomains` and the `source.*` identity keys read only the mTLS peer's URI SAN
//! ([`AuthzRequest::peer`]); `requestPrincipals` and `request.auth.*` read the payload of a JWT
//! that already passed RequestAuthentication ([`HttpAttributes::jwt`]); `ipBlocks`/`source.ip`
//! read the connection's peer address, `remoteIpBlocks`/`remote.ip` the original client
//! address (X-Forwarded-For, as the proxy trusts it; the peer address when unset); `paths` are
//! compared without the query, with the path already normalized ([`crate::normalize`]); `hosts`
//! are compared case-insensitively with the `Host` as sent (a port included: write both
//! `example.com` and `example.com:*` to match either, as Istio's security best practices say).

mod cidr;
mod index;
mod matcher;
mod rule;
mod trust_domain;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

pub use cidr::{Cidr, CidrError};
pub use index::{AuthzPolicies, WorkloadAuthz};
pub use matcher::is_template_literal;
pub use rule::{ConditionSpec, OperationSpec, RuleSpec, SourceSpec};
pub use trust_domain::TrustDomainBundle;

use crate::policy::LabelSelector;

/// `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Allow matching requests.
    Allow,
    /// Deny matching requests.
    Deny,
    /// Report matching requests.
    Audit,
    /// Ask an extension provider (none in meshwork: deny matching requests).
    Custom,
}

impl Action {
    /// Istio's spelling (`ALLOW`, `DENY`, `AUDIT`, `CUSTOM`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
            Action::Custom => "CUSTOM",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AuthorizationPolicy as written, for [`AuthzPolicies::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// Action.
    pub action: Action,
    /// Selector labels (empty: every workload of the namespace).
    pub selector: LabelSelector,
    /// `istio.io/dry-run: "true"`.
    pub dry_run: bool,
    /// The CUSTOM provider's name, when set.
    pub provider: Option<Arc<str>>,
    /// Rules.
    pub rules: Vec<RuleSpec>,
}

impl PolicySpec {
    /// A policy with no rules and no selector.
    ///
    /// ```
    /// use mesh_core::authz::{Action, PolicySpec};
    /// let allow_nothing = PolicySpec::new("foo", "allow-nothing", Action::Allow);
    /// assert!(allow_nothing.rules.is_empty());
    /// ```
    pub fn new(namespace: &str, name: &str, action: Action) -> PolicySpec {
        PolicySpec {
            namespace: Arc::from(namespace),
            name: Arc::from(name),
            action,
            selector: LabelSelector::default(),
            dry_run: false,
            provider: None,
            rules: Vec::new(),
        }
    }
}

/// A JWT claim value, as Envoy's JWT filter puts the payload in metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue {
    /// A string.
    String(String),
    /// A list (an element that is a matching string matches).
    List(Vec<ClaimValue>),
    /// An object (nested claims: `request.auth.claims[a][b]`).
    Object(BTreeMap<String, ClaimValue>),
    /// A number, boolean or null: string matchers never match it.
    Other,
}

/// A validated JWT payload.
pub type Claims = BTreeMap<String, ClaimValue>;

/// The HTTP side of a request (absent for TCP connections).
#[derive(Debug, Clone, Default)]
pub struct HttpAttributes {
    /// `:method`.
    pub method: String,
    /// `:authority` / `Host`, as sent.
    pub host: String,
    /// `:path` after normalization ([`crate::normalize::normalize_path`]); the query, if any, is
    /// ignored by `paths`.
    pub path: String,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// The payload of the JWT that passed RequestAuthentication, if any.
    pub jwt: Option<Claims>,
}

impl HttpAttributes {
    /// A header's value as Envoy's header matcher sees it: every value joined with `,`;
    /// `:method`, `:path` and `:authority` read the request line.
    pub fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match name {
            ":method" => return Some(Cow::Borrowed(&self.method)),
            ":path" => return Some(Cow::Borrowed(&self.path)),
            ":authority" => return Some(Cow::Borrowed(&self.host)),
            _ => {}
        }
        let mut values = self.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()));
        let first = values.next()?;
        let rest: Vec<_> = values.collect();
        if rest.is_empty() {
            return Some(first);
        }
        let mut joined = first.into_owned();
        for v in rest {
            joined.push(',');
            joined.push_str(&v);
        }
        Some(Cow::Owned(joined))
    }
}

/// What authorization reads of a request.
#[derive(Debug, Clone, Default)]
pub struct AuthzRequest {
    /// The mTLS peer's identity (its URI SAN, `spiffe://...`); `None` for plaintext.
    pub peer: Option<Arc<str>>,
    /// The connection's peer address.
    pub source_ip: Option<IpAddr>,
    /// The original client address (X-Forwarded-For as trusted); `None`: the peer address.
    pub remote_ip: Option<IpAddr>,
    /// The connection's local (destination) address.
    pub destination_ip: Option<IpAddr>,
    /// The connection's local (destination) port.
    pub destination_port: u16,
    /// The TLS server name the client asked for.
    pub sni: Option<String>,
    /// The HTTP request; `None` for a TCP connection.
    pub http: Option<HttpAttributes>,
}

/// A rule that matched: which policy, which action, which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    /// Namespace of the policy.
    pub namespace: Arc<str>,
    /// Name of the policy.
    pub name: Arc<str>,
    /// Its action.
    pub action: Action,
    /// Index of the rule in `rules[]`.
    pub rule: usize,
}

/// What the dry-run policies would have decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// Would the request have been allowed?
    pub allowed: bool,
    /// The dry-run rule that decided (none when no dry-run ALLOW rule matched, or no dry-run
    /// DENY rule did and there are no dry-run ALLOW policies).
    pub policy: Option<MatchedRule>,
}

/// The authorization decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Allowed?
    pub allowed: bool,
    /// The rule that decided: the CUSTOM or DENY rule that denied, or the ALLOW rule that allowed.
    /// `None` when allowed because no ALLOW policy selects the workload, or denied because ALLOW
    /// policies do and none of their rules matched.
    pub policy: Option<MatchedRule>,
    /// The first AUDIT rule that matched (the request is to be audited).
    pub audit: Option<MatchedRule>,
    /// What dry-run policies would have decided; `None` when none applies.
    pub dry_run: Option<DryRun>,
}

impl AuthzDecision {
    /// Allowed, because nothing applies.
    pub fn allow_all() -> AuthzDecision {
        AuthzDecision { allowed: true, policy: None, audit: None, dry_run: None }
    }
}
