//! RequestAuthentication: which JWT rules apply to a workload, with Istio's defaults filled in
//! (istio/istio `pilot/pkg/security/authn/policy_applier.go`, `convertToEnvoyJwtConfig`;
//! <https://istio.io/latest/docs/reference/config/security/request_authentication/>).
//!
//! The rules of every RequestAuthentication of the workload's namespace and of the root namespace
//! whose selector matches the workload apply together (policies with `targetRefs` are for
//! waypoints and Gateways and are not passed here). Istio's Envoy configuration then accepts a
//! request with no token, or with a token one rule validates; a request whose token no rule
//! validates is refused (401). Verifying tokens is the inbound layer's job; this module only
//! chooses and describes the rules.
//!
//! Defaults: token locations, when none is given, are Envoy's (`Authorization: Bearer <token>`,
//! then the `access_token` query parameter); the JWKS fetch timeout is 5 s; `permission` and
//! `scope` are always space-delimited claims.

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::policy::LabelSelector;
use crate::workload::Workload;

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwksUri`, fetched (and cached) by the layer.
    Uri(Arc<str>),
    /// `jwks`, inline.
    Inline(Arc<str>),
    /// Neither: Istio resolves the issuer's OpenID discovery document.
    Discovery,
}

/// One place a token is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// A header, with a prefix to strip (`Bearer `).
    Header {
        /// Header name.
        name: Arc<str>,
        /// Prefix before the token.
        prefix: Arc<str>,
    },
    /// A query parameter.
    Param(Arc<str>),
    /// A cookie.
    Cookie(Arc<str>),
}

/// One `jwtRules[]` entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRule {
    /// Namespace of the RequestAuthentication.
    pub namespace: Arc<str>,
    /// Name of the RequestAuthentication.
    pub name: Arc<str>,
    /// `iss` the token must carry.
    pub issuer: Arc<str>,
    /// Accepted audiences (empty: any).
    pub audiences: Box<[Arc<str>]>,
    /// The key set.
    pub jwks: JwksSource,
    /// Where the token is looked for, in order.
    pub locations: Box<[TokenLocation]>,
    /// Keep the token in the forwarded request.
    pub forward_original_token: bool,
    /// Header to write the payload to (base64url).
    pub output_payload_to_header: Option<Arc<str>>,
    /// `(header, claim)` pairs to copy.
    pub output_claim_to_headers: Box<[(Arc<str>, Arc<str>)]>,
    /// JWKS fetch timeout.
    pub timeout: Duration,
    /// Claims whose string value is split on spaces into a list.
    pub space_delimited_claims: Box<[Arc<str>]>,
    /// `presence: REQUIRED`: a request without a token is refused.
    pub required: bool,
}

/// A JWT rule as written (what [`JwtRule::new`] reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtRuleSpec {
    /// `issuer`.
    pub issuer: String,
    /// `audiences`.
    pub audiences: Vec<String>,
    /// `jwksUri`.
    pub jwks_uri: Option<String>,
    /// `jwks`.
    pub jwks: Option<String>,
    /// `fromHeaders` as `(name, prefix)`.
    pub from_headers: Vec<(String, String)>,
    /// `fromParams`.
    pub from_params: Vec<String>,
    /// `fromCookies`.
    pub from_cookies: Vec<String>,
    /// `forwardOriginalToken`.
    pub forward_original_token: bool,
    /// `outputPayloadToHeader`.
    pub output_payload_to_header: Option<String>,
    /// `outputClaimToHeaders` as `(header, claim)`.
    pub output_claim_to_headers: Vec<(String, String)>,
    /// `timeout`, parsed.
    pub timeout: Option<Duration>,
    /// `spaceDelimitedClaims`.
    pub space_delimited_claims: Vec<String>,
    /// `presence: REQUIRED`.
    pub required: bool,
}

impl JwtRule {
    /// Compile one rule of RequestAuthentication `namespace/name`, with Istio's defaults.
    ///
    /// ```
    /// use mesh_core::request_authn::{JwtRule, JwtRuleSpec, TokenLocation};
    /// let rule = JwtRule::new("foo", "jwt", &JwtRuleSpec { issuer: "issuer-foo".into(), ..Default::default() });
    /// assert_eq!(rule.locations[0], TokenLocation::Header { name: "authorization".into(), prefix: "Bearer ".into() });
    /// assert_eq!(rule.timeout, std::time::Duration::from_secs(5));
    /// assert_eq!(rule.space_delimited_claims.iter().map(|c| &**c).collect::<Vec<_>>(), ["permission", "scope"]);
    /// ```
    pub fn new(namespace: &str, name: &str, spec: &JwtRuleSpec) -> JwtRule {
        let arc = |s: &str| Arc::<str>::from(s);
        let mut locations: Vec<TokenLocation> = spec
            .from_headers
            .iter()
            .map(|(n, p)| TokenLocation::Header { name: arc(&n.to_ascii_lowercase()), prefix: arc(p) })
            .chain(spec.from_params.iter().map(|p| TokenLocation::Param(arc(p))))
            .chain(spec.from_cookies.iter().map(|c| TokenLocation::Cookie(arc(c))))
            .collect();
        if locations.is_empty() {
            locations = vec![
                TokenLocation::Header { name: arc("authorization"), prefix: arc("Bearer ") },
                TokenLocation::Param(arc("access_token")),
            ];
        }
        let mut claims: Vec<&str> = spec.space_delimited_claims.iter().map(String::as_str).collect();
        claims.extend(["permission", "scope"]);
        claims.sort_unstable();
        claims.dedup();
        let jwks = match (&spec.jwks, &spec.jwks_uri) {
            (Some(inline), _) => JwksSource::Inline(arc(inline)),
            (None, Some(uri)) if !uri.is_empty() => JwksSource::Uri(arc(uri)),
            _ => JwksSource::Discovery,
        };
        JwtRule {
            namespace: arc(namespace),
            name: arc(name),
            issuer: arc(&spec.issuer),
            audiences: spec.audiences.iter().map(|a| arc(a)).collect(),
            jwks,
            locations: locations.into_boxed_slice(),
            forward_original_token: spec.forward_original_token,
            output_payload_to_header: spec.output_payload_to_header.as_deref().filter(|h| !h.is_empty()).map(arc),
            output_claim_to_headers: spec.output_claim_to_headers.iter().map(|(h, c)| (arc(h), arc(c))).collect(),
            timeout: spec.timeout.unwrap_or(Duration::from_secs(5)),
            space_delimited_claims: claims.into_iter().map(arc).collect(),
            required: spec.required,
        }
    }
}

/// A compiled RequestAuthentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuthn {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// Selector labels (empty: every workload of the namespace).
    pub selector: LabelSelector,
    /// Rules.
    pub rules: Vec<Arc<JwtRule>>,
}

/// Every RequestAuthentication, by namespace in configuration order.
#[derive(Debug, Clone, Default)]
pub struct RequestAuthentications {
    root_namespace: Arc<str>,
    by_namespace: FxHashMap<Arc<str>, Vec<RequestAuthn>>,
}

impl RequestAuthentications {
    /// Index `policies` under `root_namespace`.
    pub fn new(root_namespace: &str, policies: impl IntoIterator<Item = RequestAuthn>) -> Self {
        let mut by_namespace: FxHashMap<Arc<str>, Vec<RequestAuthn>> = FxHashMap::default();
        for p in policies {
            by_namespace.entry(p.namespace.clone()).or_default().push(p);
        }
        RequestAuthentications { root_namespace: Arc::from(root_namespace), by_namespace }
    }

    /// The JWT rules that apply to `workload`: the root namespace's first, then its namespace's,
    /// each in configuration order.
    ///
    /// ```
    /// use mesh_core::policy::LabelSelector;
    /// use mesh_core::request_authn::*;
    /// use mesh_core::workload::Workload;
    /// use std::sync::Arc;
    /// let rule = Arc::new(JwtRule::new("foo", "jwt", &JwtRuleSpec { issuer: "iss".into(), ..Default::default() }));
    /// let all = RequestAuthentications::new(
    ///     "istio-system",
    ///     [RequestAuthn { namespace: "foo".into(), name: "jwt".into(), selector: LabelSelector::default(), rules: vec![rule] }],
    /// );
    /// assert_eq!(all.jwt_rules(&Workload::new("foo", [])).len(), 1);
    /// assert!(all.jwt_rules(&Workload::new("bar", [])).is_empty());
    /// ```
    pub fn jwt_rules(&self, workload: &Workload) -> Vec<Arc<JwtRule>> {
        let mut out = Vec::new();
        let namespaces = [&self.root_namespace, &workload.namespace];
        let count = if workload.namespace == self.root_namespace { 1 } else { 2 };
        for ns in &namespaces[..count] {
            for p in self.by_namespace.get(*ns).into_iter().flatten() {
                if p.selector.matches(&workload.labels) {
                    out.extend(p.rules.iter().cloned());
                }
            }
        }
        out
    }
}
