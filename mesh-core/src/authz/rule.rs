//! One AuthorizationPolicy rule, compiled as Istio's `authz/model` builds it (istio/istio
//! `pilot/pkg/security/authz/model/{model,generator}.go`):
//!
//! - a rule matches when every `when` condition holds, one `from` entry matches (or there is no
//!   `from`) and one `to` entry matches (or there is no `to`); within an entry every field holds;
//!   a field holds when one of its `values` matches and none of its `notValues` does;
//! - `principals`, `namespaces`, `serviceAccounts`, `trustDomains` and `source.*` identity keys are
//!   matched against the mTLS peer's URI SAN only (Envoy's authenticated `principal_name`): a
//!   plaintext request matches none of them (and so every `not` form);
//! - on TCP, HTTP-only fields (`hosts`, `methods`, `paths`, `requestPrincipals`, `request.*`
//!   keys) make an ALLOW rule match nothing (Istio skips the rule), and are dropped from DENY,
//!   AUDIT and CUSTOM rules, which then match more (Istio's `checkError`: "a wider deny policy");
//! - a value that does not compile (a bad CIDR, a bad port) makes an ALLOW rule match nothing
//!   and is dropped from other rules, in the same spirit.

use std::sync::Arc;

use super::cidr::Cidr;
use super::matcher::{PathMatch, StrMatch};
use super::trust_domain::TrustDomainBundle;
use super::{Action, AuthzRequest, ClaimValue};
use crate::matcher::Re2;
use crate::normalize::path_without_query;

/// `from[].source`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SourceSpec {
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

/// `to[].operation`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct OperationSpec {
    pub hosts: Vec<String>,
    pub not_hosts: Vec<String>,
    pub ports: Vec<String>,
    pub not_ports: Vec<String>,
    pub methods: Vec<String>,
    pub not_methods: Vec<String>,
    pub paths: Vec<String>,
    pub not_paths: Vec<String>,
}

/// `when[]`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionSpec {
    /// The attribute.
    pub key: String,
    /// Values.
    pub values: Vec<String>,
    /// Negative values.
    pub not_values: Vec<String>,
}

/// `rules[]`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// Sources (ORed).
    pub from: Vec<SourceSpec>,
    /// Operations (ORed).
    pub to: Vec<OperationSpec>,
    /// Conditions (ANDed).
    pub when: Vec<ConditionSpec>,
}

#[derive(Debug, Clone)]
enum Attr {
    SourceIp,
    RemoteIp,
    DestinationIp,
    DestinationPort,
    Sni,
    /// `experimental.envoy.filters.*`: no filter metadata here, never matches.
    EnvoyFilter,
    Principal,
    RequestPrincipal,
    Audiences,
    Presenter,
    Claim(Box<[Box<str>]>),
    Header(Box<str>),
    Host,
    Method,
    Path,
}

impl Attr {
    fn http_only(&self) -> bool {
        matches!(
            self,
            Attr::RequestPrincipal
                | Attr::Audiences
                | Attr::Presenter
                | Attr::Claim(_)
                | Attr::Header(_)
                | Attr::Host
                | Attr::Method
                | Attr::Path
        )
    }
}

#[derive(Debug, Clone)]
enum Values {
    Cidrs(Vec<Cidr>),
    Ports(Vec<u16>),
    Str(Vec<StrMatch>),
    Regex(Vec<Re2>),
    /// `iss/sub` pairs.
    Issuers(Vec<(StrMatch, StrMatch)>),
    Paths(Vec<PathMatch>),
    Never,
}

#[derive(Debug, Clone)]
struct Term {
    attr: Attr,
    values: Values,
    negate: bool,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    when: Box<[Term]>,
    from: Box<[Box<[Term]>]>,
    to: Box<[Box<[Term]>]>,
    /// Holds an HTTP-only term (an ALLOW rule then matches nothing on TCP).
    http_only: bool,
    /// A value did not compile (ALLOW rules only: the rule matches nothing).
    broken: bool,
}

/// What compiling needs besides the rule.
pub(crate) struct RuleContext<'a> {
    pub(crate) action: Action,
    pub(crate) namespace: &'a str,
    pub(crate) bundle: &'a TrustDomainBundle,
}

struct Builder<'a> {
    cx: &'a RuleContext<'a>,
    broken: bool,
}

impl Builder<'_> {
    /// Add the terms of one field (values, then notValues) to `out`.
    fn field(&mut self, out: &mut Vec<Term>, attr: Attr, values: &[String], not_values: &[String]) {
        for (list, negate) in [(values, false), (not_values, true)] {
            if list.is_empty() {
                continue;
            }
            if let Some(values) = self.values(&attr, list) {
                out.push(Term { attr: attr.clone(), values, negate });
            }
        }
    }

    /// A value that does not compile: ALLOW rules match nothing, other rules drop the value.
    fn bad(&mut self) {
        if self.cx.action == Action::Allow {
            self.broken = true;
        }
    }

    fn values(&mut self, attr: &Attr, list: &[String]) -> Option<Values> {
        let values = match attr {
            Attr::SourceIp | Attr::RemoteIp | Attr::DestinationIp => {
                let mut v = Vec::new();
                for s in list {
                    match Cidr::parse(s) {
                        Ok(c) => v.push(c),
                        Err(_) => self.bad(),
                    }
                }
                (!v.is_empty()).then_some(Values::Cidrs(v))?
            }
            Attr::DestinationPort => {
                let mut v = Vec::new();
                for s in list {
                    match s.parse::<u16>() {
                        Ok(p) => v.push(p),
                        Err(_) => self.bad(),
                    }
                }
                (!v.is_empty()).then_some(Values::Ports(v))?
            }
            Attr::EnvoyFilter => Values::Never,
            Attr::Principal => Values::Str(
                self.cx.bundle.replace_aliases(list).iter().map(|v| StrMatch::with_prefix(v, "spiffe://")).collect(),
            ),
            Attr::RequestPrincipal => Values::Issuers(list.iter().map(|v| issuer_subject(v)).collect()),
            Attr::Sni
            | Attr::Audiences
            | Attr::Presenter
            | Attr::Claim(_)
            | Attr::Header(_)
            | Attr::Host
            | Attr::Method => Values::Str(list.iter().map(|v| StrMatch::new(v)).collect()),
            Attr::Path => Values::Paths(list.iter().map(|v| PathMatch::new(v)).collect()),
        };
        Some(values)
    }

    /// Identity keys matched by regex on the peer's URI (`namespaces`, `serviceAccounts`,
    /// `trustDomains`).
    fn identity(&mut self, out: &mut Vec<Term>, kind: Identity, values: &[String], not_values: &[String]) {
        for (list, negate) in [(values, false), (not_values, true)] {
            if list.is_empty() {
                continue;
            }
            let list = match kind {
                Identity::TrustDomain => self.cx.bundle.expand_aliases(list),
                _ => list.to_vec(),
            };
            let mut res = Vec::new();
            for v in &list {
                match kind {
                    Identity::Namespace => {
                        let parts: Vec<String> = v.split('*').map(regex::escape).collect();
                        res.push(format!(".*/ns/{}/.*", parts.join(".*")));
                    }
                    Identity::ServiceAccount => {
                        let (ns, sa) = v.split_once('/').unwrap_or((self.cx.namespace, v.as_str()));
                        res.push(format!("spiffe://.+/ns/{}/(.+/|)sa/{}(/.+)?", regex::escape(ns), regex::escape(sa)));
                    }
                    Identity::TrustDomain => {
                        // Istio's `srcTrustDomainGenerator`: presence (`spiffe://` prefix), exact
                        // (`spiffe://<td>/` prefix) or one wildcard inside the trust domain.
                        if v == "*" {
                            res.push("spiffe://.*".to_string());
                        } else if let Some((a, b)) = v.split_once('*') {
                            res.push(format!("spiffe://{}[^/]*{}/.*", regex::escape(a), regex::escape(b)));
                        } else {
                            res.push(format!("spiffe://{}/.*", regex::escape(v)));
                        }
                    }
                }
            }
            let mut compiled = Vec::new();
            for r in res {
                match Re2::new(&r) {
                    Ok(re) => compiled.push(re),
                    Err(_) => self.bad(),
                }
            }
            if compiled.is_empty() {
                continue;
            }
            let values = Values::Regex(compiled);
            out.push(Term { attr: Attr::Principal, values, negate });
        }
    }
}

#[derive(Clone, Copy)]
enum Identity {
    Namespace,
    ServiceAccount,
    TrustDomain,
}

/// Istio's `requestPrincipalGenerator`: `iss/sub` split at the last `/`, with `*` forms.
fn issuer_subject(value: &str) -> (StrMatch, StrMatch) {
    let (iss, sub, found) = match value.rfind('/') {
        Some(i) => (&value[..i], &value[i + 1..], true),
        None => (value, "", false),
    };
    let exact = |s: &str| StrMatch::Exact(s.into());
    if value == "*" {
        (StrMatch::Any, StrMatch::Any)
    } else if value.starts_with('*') {
        if found {
            let iss = if iss == "*" { StrMatch::Any } else { StrMatch::new(iss) };
            (iss, exact(sub))
        } else {
            (StrMatch::Any, StrMatch::new(value))
        }
    } else if value.ends_with('*') {
        if found {
            let sub = if sub == "*" { StrMatch::Any } else { StrMatch::new(sub) };
            (exact(iss), sub)
        } else {
            (StrMatch::new(value), StrMatch::Any)
        }
    } else {
        (exact(iss), exact(sub))
    }
}

/// The names in `[a]` or `[a][b]...` after an attribute (Istio's `extractNameInNestedBrackets`).
fn bracketed(s: &str) -> Option<Vec<Box<str>>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    if !inner.contains('[') && !inner.contains(']') {
        return Some(vec![inner.into()]);
    }
    let parts: Vec<&str> = inner.split("][").collect();
    if parts.iter().any(|p| p.contains(['[', ']'])) {
        // Not a clean nesting: the whole text between the outer brackets is one name.
        return Some(vec![inner.into()]);
    }
    Some(parts.into_iter().map(Box::from).collect())
}

impl CompiledRule {
    pub(crate) fn compile(spec: &RuleSpec, cx: &RuleContext<'_>) -> CompiledRule {
        let mut b = Builder { cx, broken: false };
        let mut when = Vec::new();
        for c in &spec.when {
            let k = c.key.as_str();
            let (v, n) = (&c.values[..], &c.not_values[..]);
            let attr = match k {
                "source.ip" => Attr::SourceIp,
                "remote.ip" => Attr::RemoteIp,
                "destination.ip" => Attr::DestinationIp,
                "destination.port" => Attr::DestinationPort,
                "connection.sni" => Attr::Sni,
                "source.principal" => Attr::Principal,
                "request.auth.principal" => Attr::RequestPrincipal,
                "request.auth.audiences" => Attr::Audiences,
                "request.auth.presenter" => Attr::Presenter,
                "source.namespace" => {
                    b.identity(&mut when, Identity::Namespace, v, n);
                    continue;
                }
                "source.serviceAccount" => {
                    b.identity(&mut when, Identity::ServiceAccount, v, n);
                    continue;
                }
                "source.trustDomain" => {
                    b.identity(&mut when, Identity::TrustDomain, v, n);
                    continue;
                }
                _ if k.starts_with("experimental.envoy.filters.") => Attr::EnvoyFilter,
                _ => match (k.strip_prefix("request.headers"), k.strip_prefix("request.auth.claims")) {
                    (Some(rest), _) => match bracketed(rest) {
                        Some(names) if names.len() == 1 => Attr::Header(names[0].to_ascii_lowercase().into()),
                        _ => return CompiledRule::never(),
                    },
                    (_, Some(rest)) => match bracketed(rest) {
                        Some(names) => Attr::Claim(names.into_boxed_slice()),
                        None => return CompiledRule::never(),
                    },
                    // An unknown attribute: Istio skips the whole rule ("skipped invalid rule").
                    _ => return CompiledRule::never(),
                },
            };
            b.field(&mut when, attr, v, n);
        }
        let mut from = Vec::new();
        for s in &spec.from {
            let mut t = Vec::new();
            b.field(&mut t, Attr::Principal, &s.principals, &s.not_principals);
            b.field(&mut t, Attr::RequestPrincipal, &s.request_principals, &s.not_request_principals);
            b.identity(&mut t, Identity::ServiceAccount, &s.service_accounts, &s.not_service_accounts);
            b.identity(&mut t, Identity::TrustDomain, &s.trust_domains, &s.not_trust_domains);
            b.identity(&mut t, Identity::Namespace, &s.namespaces, &s.not_namespaces);
            b.field(&mut t, Attr::RemoteIp, &s.remote_ip_blocks, &s.not_remote_ip_blocks);
            b.field(&mut t, Attr::SourceIp, &s.ip_blocks, &s.not_ip_blocks);
            from.push(t.into_boxed_slice());
        }
        let mut to = Vec::new();
        for o in &spec.to {
            let mut t = Vec::new();
            b.field(&mut t, Attr::Host, &o.hosts, &o.not_hosts);
            b.field(&mut t, Attr::Method, &o.methods, &o.not_methods);
            b.field(&mut t, Attr::Path, &o.paths, &o.not_paths);
            b.field(&mut t, Attr::DestinationPort, &o.ports, &o.not_ports);
            to.push(t.into_boxed_slice());
        }
        let http_only = when.iter().chain(from.iter().flatten()).chain(to.iter().flatten()).any(|t| t.attr.http_only());
        CompiledRule {
            when: when.into_boxed_slice(),
            from: from.into_boxed_slice(),
            to: to.into_boxed_slice(),
            http_only,
            broken: b.broken,
        }
    }

    /// A rule that matches nothing.
    fn never() -> CompiledRule {
        CompiledRule { when: Box::new([]), from: Box::new([]), to: Box::new([]), http_only: false, broken: true }
    }

    /// Does the request match, for a rule of a policy with `action`?
    pub(crate) fn matches(&self, action: Action, req: &AuthzRequest) -> bool {
        if self.broken {
            return false;
        }
        let tcp = req.http.is_none();
        if tcp && self.http_only && action == Action::Allow {
            return false;
        }
        let all = |terms: &[Term]| terms.iter().all(|t| (tcp && t.attr.http_only()) || t.holds(req));
        all(&self.when)
            && (self.from.is_empty() || self.from.iter().any(|f| all(f)))
            && (self.to.is_empty() || self.to.iter().any(|t| all(t)))
    }
}

impl Term {
    fn holds(&self, req: &AuthzRequest) -> bool {
        self.any_value(req) != self.negate
    }

    fn any_value(&self, req: &AuthzRequest) -> bool {
        let http = req.http.as_ref();
        match (&self.attr, &self.values) {
            (_, Values::Never) => false,
            (Attr::SourceIp, Values::Cidrs(c)) => req.source_ip.is_some_and(|ip| c.iter().any(|c| c.contains(ip))),
            (Attr::RemoteIp, Values::Cidrs(c)) => {
                req.remote_ip.or(req.source_ip).is_some_and(|ip| c.iter().any(|c| c.contains(ip)))
            }
            (Attr::DestinationIp, Values::Cidrs(c)) => {
                req.destination_ip.is_some_and(|ip| c.iter().any(|c| c.contains(ip)))
            }
            (Attr::DestinationPort, Values::Ports(p)) => p.contains(&req.destination_port),
            (Attr::Sni, Values::Str(m)) => {
                let sni = req.sni.as_deref().unwrap_or("");
                m.iter().any(|m| m.matches(sni))
            }
            (Attr::Principal, Values::Str(m)) => req.peer.as_deref().is_some_and(|p| m.iter().any(|m| m.matches(p))),
            (Attr::Principal, Values::Regex(r)) => req.peer.as_deref().is_some_and(|p| r.iter().any(|r| r.is_match(p))),
            (Attr::RequestPrincipal, Values::Issuers(pairs)) => {
                let Some(claims) = http.and_then(|h| h.jwt.as_ref()) else { return false };
                let (Some(ClaimValue::String(iss)), Some(ClaimValue::String(sub))) =
                    (claims.get("iss"), claims.get("sub"))
                else {
                    return false;
                };
                pairs.iter().any(|(i, s)| i.matches(iss) && s.matches(sub))
            }
            (Attr::Audiences, Values::Str(m)) => claim_matches(req, &["aud"], m),
            (Attr::Presenter, Values::Str(m)) => claim_matches(req, &["azp"], m),
            (Attr::Claim(path), Values::Str(m)) => {
                let path: Vec<&str> = path.iter().map(|p| &**p).collect();
                claim_matches(req, &path, m)
            }
            (Attr::Header(name), Values::Str(m)) => {
                let Some(h) = http else { return false };
                let value = h.header(name);
                m.iter().any(|m| m.matches_header(value.as_deref(), false))
            }
            (Attr::Host, Values::Str(m)) => {
                http.is_some_and(|h| m.iter().any(|m| m.matches_header(Some(&h.host), true)))
            }
            (Attr::Method, Values::Str(m)) => {
                http.is_some_and(|h| m.iter().any(|m| m.matches_header(Some(&h.method), false)))
            }
            (Attr::Path, Values::Paths(m)) => {
                http.is_some_and(|h| m.iter().any(|m| m.matches(path_without_query(&h.path))))
            }
            _ => false,
        }
    }
}

/// A claim (string, or list of strings with one matching) at `path` in the validated JWT payload.
fn claim_matches(req: &AuthzRequest, path: &[&str], m: &[StrMatch]) -> bool {
    let Some(mut value) = req.http.as_ref().and_then(|h| h.jwt.as_ref()).and_then(|c| c.get(path[0])) else {
        return false;
    };
    for key in &path[1..] {
        match value {
            ClaimValue::Object(map) => match map.get(*key) {
                Some(v) => value = v,
                None => return false,
            },
            _ => return false,
        }
    }
    let one = |v: &ClaimValue| matches!(v, ClaimValue::String(s) if m.iter().any(|m| m.matches(s)));
    match value {
        ClaimValue::List(items) => items.iter().any(one),
        v => one(v),
    }
}

/// A policy compiled for evaluation: its rules, and what identifies it.
#[derive(Debug, Clone)]
pub(crate) struct CompiledPolicy {
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) action: Action,
    pub(crate) dry_run: bool,
    pub(crate) rules: Box<[CompiledRule]>,
    /// Envoy's policy id of each rule (`ns[NS]-policy[NAME]-rule[N]`), whose order is Envoy's
    /// evaluation order.
    pub(crate) rule_ids: Box<[Box<str>]>,
}
