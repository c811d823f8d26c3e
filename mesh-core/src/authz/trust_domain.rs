//! Trust-domain aliases: a mesh whose `trustDomain` is `td1` with `trustDomainAliases: [td2]`
//! treats `td2/ns/foo/sa/bar` as `td1/ns/foo/sa/bar` (istio/istio
//! `pilot/pkg/security/trustdomain/{bundle,util}.go`, applied by `model.MigrateTrustDomain`;
//! <https://istio.io/latest/docs/tasks/security/authorization/authz-td-migration/>).
//!
//! `principals` (and `source.principal`) naming the local trust domain, an alias, or
//! `cluster.local` (always read as "the local trust domain") are expanded to every member of the
//! bundle; principals of other trust domains, and `*`-prefixed ones, stay as written.
//! `trustDomains` (and `source.trustDomain`) equal to a member are expanded to all members.

use std::sync::Arc;

/// Istio's `constants.DefaultClusterLocalDomain`.
const CLUSTER_LOCAL: &str = "cluster.local";

/// The local trust domain and its aliases, the local one first.
///
/// ```
/// use mesh_core::authz::TrustDomainBundle;
/// let bundle = TrustDomainBundle::new("td1", ["td2"]);
/// assert_eq!(
///     bundle.replace_aliases(&["cluster.local/ns/foo/sa/bar".to_string()]),
///     vec!["td1/ns/foo/sa/bar".to_string(), "td2/ns/foo/sa/bar".to_string()],
/// );
/// assert_eq!(bundle.replace_aliases(&["other/ns/foo/sa/bar".to_string()]), vec!["other/ns/foo/sa/bar".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDomainBundle {
    domains: Box<[Arc<str>]>,
}

impl Default for TrustDomainBundle {
    fn default() -> Self {
        TrustDomainBundle::new(CLUSTER_LOCAL, std::iter::empty::<&str>())
    }
}

impl TrustDomainBundle {
    /// `trustDomain` and `trustDomainAliases`.
    pub fn new<'a>(trust_domain: &str, aliases: impl IntoIterator<Item = &'a str>) -> Self {
        let mut domains: Vec<Arc<str>> = vec![Arc::from(trust_domain)];
        domains.extend(aliases.into_iter().map(Arc::from));
        TrustDomainBundle { domains: domains.into_boxed_slice() }
    }

    /// The local trust domain.
    pub fn trust_domain(&self) -> &str {
        self.domains.first().map_or(CLUSTER_LOCAL, |d| d)
    }

    /// The local trust domain and its aliases.
    pub fn domains(&self) -> &[Arc<str>] {
        &self.domains
    }

    /// Istio's `ReplaceTrustDomainAliases`.
    pub fn replace_aliases(&self, principals: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(principals.len());
        for principal in principals {
            let parts: Vec<&str> = principal.split('/').collect();
            // Not `<td>/ns/<ns>/sa/<sa>`, or `*` as the trust domain: the trust domain is not
            // enforced, the principal stays.
            if parts.len() != 5 || parts[0] == "*" {
                out.push(principal.clone());
                continue;
            }
            let td = parts[0];
            if !(self.string_match(td) || td == CLUSTER_LOCAL) {
                out.push(principal.clone());
                continue;
            }
            let mut expanded: Vec<String> = Vec::with_capacity(self.domains.len());
            for member in self.domains.iter() {
                let p = if suffix_match(member, td) {
                    principal.clone()
                } else {
                    format!("{member}/{}", parts[1..].join("/"))
                };
                if !expanded.contains(&p) {
                    expanded.push(p);
                }
            }
            out.extend(expanded);
        }
        out
    }

    /// Istio's `ExpandTrustDomainAliases`.
    pub fn expand_aliases(&self, values: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(values.len());
        for v in values {
            if self.domains.iter().any(|d| **d == **v) {
                for d in self.domains.iter() {
                    if !out.iter().any(|o| **o == **d) {
                        out.push(d.to_string());
                    }
                }
            } else if !out.contains(v) {
                out.push(v.clone());
            }
        }
        out
    }

    /// Istio's `stringMatch(a, TrustDomains)`.
    fn string_match(&self, a: &str) -> bool {
        self.domains.iter().any(|s| {
            a == &**s
                || &**s == "*"
                || prefix_match(a, s)
                || prefix_match(s, a)
                || suffix_match(a, s)
                || suffix_match(s, a)
        })
    }
}

fn prefix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_suffix('*').is_some_and(|p| a.starts_with(p))
}

fn suffix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_prefix('*').is_some_and(|p| a.ends_with(p))
}
