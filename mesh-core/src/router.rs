//! Routing a request with Istio's semantics.
//!
//! Reference: <https://istio.io/latest/docs/reference/config/networking/virtual-service/>.
//!
//! 1. **Host.** The request's host (port and trailing dot removed, lower-cased) is looked up under
//!    the binding (mesh or a Gateway). For the mesh, short names resolve the way Kubernetes DNS and
//!    Istio's sidecar domains do: `reviews` → `reviews.<client-ns>.svc.<domain>`,
//!    `reviews.bookinfo` → `reviews.bookinfo.svc.<domain>`, `reviews.bookinfo.svc` →
//!    `reviews.bookinfo.svc.<domain>`. Exact hosts win over wildcards; longer wildcards over
//!    shorter. A host with no VirtualService routes to itself ([`RouteDecision::Default`]).
//! 2. **Rules.** `http[]` rules are tried in order and the first with a matching `match[]` entry
//!    wins; entries are ORed, the fields of an entry ANDed; a rule without `match` matches
//!    everything. No matching rule on a host that has a VirtualService is a 404
//!    ([`RouteDecision::NoRoute`], Envoy's `NR`).
//! 3. **Conditions.** `uri`, `scheme`, `method`, `authority`: exact / plain prefix / RE2 full
//!    match (`ignoreUriCase` for `uri` exact and prefix). Headers by case-insensitive name, several
//!    values joined with `,`; `{}` means present. `withoutHeaders` holds when the header is absent
//!    or does not match. `queryParams` on raw values. `port`, `sourceLabels`, `sourceNamespace`.
//!
//! First-match-wins does not mean testing every rule: `RuleIndex` files each `match[]` entry
//! under its cheapest selective condition — an exact path (hash map), a path prefix (byte trie),
//! or an exact header value (hash map per header) — and only entries that could match are
//! checked, in rule order, stopping as soon as no earlier rule can still win. Entries with none of
//! those conditions (regexes, catch-alls) are checked in order as usual.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::matcher::StringMatcher;
use crate::request::{ClientIdentity, RequestView};
use crate::route::{HeaderCondition, HttpRule, Redirect, RedirectPort, RequestMatch, Rewrite};
use crate::snapshot::{Binding, Snapshot, VirtualHost};

mod index;
pub(crate) use index::RuleIndex;

/// Why a `match[]` entry did not match a request (for `mesh explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The path.
    Uri,
    /// The scheme.
    Scheme,
    /// The method.
    Method,
    /// The authority.
    Authority,
    /// A header condition.
    Header(Arc<str>),
    /// A `withoutHeaders` condition (the header was there and matched).
    WithoutHeader(Arc<str>),
    /// A query parameter.
    QueryParam(Arc<str>),
    /// The port.
    Port,
    /// The client's labels.
    SourceLabels,
    /// The client's namespace.
    SourceNamespace,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Uri => f.write_str("uri does not match"),
            Mismatch::Scheme => f.write_str("scheme does not match"),
            Mismatch::Method => f.write_str("method does not match"),
            Mismatch::Authority => f.write_str("authority does not match"),
            Mismatch::Header(h) => write!(f, "header {h} does not match"),
            Mismatch::WithoutHeader(h) => write!(f, "header {h} is present and matches withoutHeaders"),
            Mismatch::QueryParam(q) => write!(f, "query parameter {q} does not match"),
            Mismatch::Port => f.write_str("port does not match"),
            Mismatch::SourceLabels => f.write_str("client labels do not match sourceLabels"),
            Mismatch::SourceNamespace => f.write_str("client namespace does not match sourceNamespace"),
        }
    }
}

fn condition_holds(cond: &HeaderCondition, value: Option<&str>) -> bool {
    match (cond, value) {
        (HeaderCondition::Present, v) => v.is_some(),
        (HeaderCondition::Match(m), Some(v)) => m.matches(v),
        (HeaderCondition::Match(_), None) => false,
    }
}

impl RequestMatch {
    /// Check every condition; the first that fails is returned.
    pub fn check(&self, req: &RequestView<'_>, client: &ClientIdentity, port: u16) -> Result<(), Mismatch> {
        if let Some(uri) = &self.uri {
            let ok = if self.ignore_uri_case { uri.matches_ignore_case(req.path) } else { uri.matches(req.path) };
            if !ok {
                return Err(Mismatch::Uri);
            }
        }
        if let Some(p) = self.port
            && p != port
        {
            return Err(Mismatch::Port);
        }
        if let Some(m) = &self.method
            && !m.matches(req.method)
        {
            return Err(Mismatch::Method);
        }
        if let Some(m) = &self.scheme
            && !m.matches(req.scheme)
        {
            return Err(Mismatch::Scheme);
        }
        if let Some(m) = &self.authority
            && !m.matches(req.authority)
        {
            return Err(Mismatch::Authority);
        }
        for (name, cond) in self.headers.iter() {
            if !condition_holds(cond, req.headers.header(name).as_deref()) {
                return Err(Mismatch::Header(name.clone()));
            }
        }
        for (name, cond) in self.without_headers.iter() {
            if condition_holds(cond, req.headers.header(name).as_deref()) {
                return Err(Mismatch::WithoutHeader(name.clone()));
            }
        }
        for (name, cond) in self.query_params.iter() {
            if !condition_holds(cond, req.query_param(name)) {
                return Err(Mismatch::QueryParam(name.clone()));
            }
        }
        if !self.source_labels.iter().all(|(k, v)| client.labels.get(k).is_some_and(|l| l == v)) {
            return Err(Mismatch::SourceLabels);
        }
        if let Some(ns) = &self.source_namespace
            && ns != &client.namespace
        {
            return Err(Mismatch::SourceNamespace);
        }
        Ok(())
    }

    /// Does the request satisfy every condition?
    pub fn matches(&self, req: &RequestView<'_>, client: &ClientIdentity, port: u16) -> bool {
        self.check(req, client, port).is_ok()
    }
}

/// The outcome of routing one request.
#[derive(Debug, Clone)]
pub enum RouteDecision<'s> {
    /// No VirtualService applies: the request goes to the host itself.
    Default {
        /// The host the request resolved to (qualified for mesh short names).
        host: Cow<'s, str>,
    },
    /// A VirtualService applies but none of its rules matched: 404 (Envoy flag `NR`).
    NoRoute {
        /// The host.
        host: Cow<'s, str>,
        /// The virtual host whose rules did not match.
        virtual_host: &'s Arc<VirtualHost>,
    },
    /// A rule matched.
    Matched {
        /// The host.
        host: Cow<'s, str>,
        /// The virtual host.
        virtual_host: &'s Arc<VirtualHost>,
        /// The matching rule.
        rule: &'s Arc<HttpRule>,
        /// The `match[]` entry that matched (`None` for a rule without matches).
        request_match: Option<&'s RequestMatch>,
    },
}

impl RouteDecision<'_> {
    /// The host the request resolved to.
    pub fn host(&self) -> &str {
        match self {
            RouteDecision::Default { host }
            | RouteDecision::NoRoute { host, .. }
            | RouteDecision::Matched { host, .. } => host,
        }
    }
}

/// The Kubernetes expansion of a mesh host: `name` → `name.<ns>.svc.<domain>`, `name.ns` →
/// `name.ns.svc.<domain>`, `name.ns.svc` → `name.ns.svc.<domain>`; `None` for other names.
pub(crate) fn expand(host: &str, namespace: &str, domain: &str) -> Option<String> {
    match host.bytes().filter(|b| *b == b'.').count() {
        0 => Some(format!("{host}.{namespace}.svc.{domain}")),
        1 => Some(format!("{host}.svc.{domain}")),
        _ if host.ends_with(".svc") => Some(format!("{host}.{domain}")),
        _ => None,
    }
}

impl Snapshot {
    /// Route a request sent by `client` under `binding` (see the module docs).
    pub fn route<'s>(&'s self, binding: &Binding, req: &RequestView<'_>, client: &ClientIdentity) -> RouteDecision<'s> {
        let host = crate::request::normalize_host(req.authority);
        let mesh = *binding == Binding::Mesh;
        let found: Option<(&'s Arc<VirtualHost>, Cow<'s, str>)> = self.route_table(binding).and_then(|table| {
            let exact = table.hosts.get_exact(&host).or_else(|| {
                if !mesh {
                    return None;
                }
                table.aliases.get(&*host).or_else(|| {
                    table.short.get(&*host)?.iter().find(|(ns, _)| **ns == *client.namespace).map(|(_, vh)| vh)
                })
            });
            if let Some(vh) = exact {
                return Some((vh, Cow::Borrowed(&*vh.pattern)));
            }
            if let Some(vh) = table.hosts.get_wildcard(&host) {
                return Some((vh, Cow::Owned(host.to_string())));
            }
            let expanded = expand(&host, &client.namespace, &self.settings().domain).filter(|_| mesh)?;
            table.hosts.get_wildcard(&expanded).map(|vh| (vh, Cow::Owned(expanded)))
        });
        let Some((vh, host)) = found else {
            return RouteDecision::Default { host: Cow::Owned(self.default_host(&host, mesh, &client.namespace)) };
        };
        match vh.index.first_match(&vh.rules, req, client, req.port()) {
            None => RouteDecision::NoRoute { host, virtual_host: vh },
            Some((r, m)) => {
                let rule = &vh.rules[r];
                RouteDecision::Matched { host, virtual_host: vh, rule, request_match: m.map(|m| &rule.matches[m]) }
            }
        }
    }

    /// The host a request without a VirtualService goes to: a declared service if one matches
    /// (`reviews.bookinfo` finds `reviews.bookinfo.svc.cluster.local`), else a dotless short name
    /// qualified with the client's namespace, else the host as written (`example.com`).
    fn default_host(&self, host: &str, mesh: bool, namespace: &str) -> String {
        let expanded = if mesh { expand(host, namespace, &self.settings().domain) } else { None };
        if !self.services(host).is_empty() {
            return host.to_string();
        }
        if let Some(e) = &expanded
            && !self.services(e).is_empty()
        {
            return e.clone();
        }
        match expanded {
            Some(e) if !host.contains('.') => e,
            _ => host.to_string(),
        }
    }
}

/// The path after `rewrite` (without the query string), or `None` when the path is unchanged.
///
/// `rewrite.uri` replaces the matched prefix when the rule matched on a `uri` prefix, and the
/// whole path otherwise (exact or regex match, or no uri condition); `uriRegexRewrite` replaces
/// every match of its pattern.
pub fn rewrite_path(rewrite: &Rewrite, path: &str, request_match: Option<&RequestMatch>) -> Option<String> {
    if let Some(uri) = &rewrite.uri {
        return Some(match request_match.and_then(|m| m.uri.as_ref()) {
            Some(StringMatcher::Prefix(prefix)) if path.len() >= prefix.len() => {
                format!("{uri}{}", &path[prefix.len()..])
            }
            // A segment prefix (Gateway API `ReplacePrefixMatch`, as Istio builds it): `/` removes
            // the prefix and keeps one `/` (`^<prefix>(/?)(.*)` → `/\2`); any other replacement
            // takes the prefix's place.
            Some(StringMatcher::PathPrefix(prefix)) if path.len() >= prefix.len() => {
                let rest = &path[prefix.len()..];
                if &**uri == "/" {
                    format!("/{}", rest.strip_prefix('/').unwrap_or(rest))
                } else {
                    format!("{uri}{rest}")
                }
            }
            _ => uri.to_string(),
        });
    }
    rewrite.uri_regex.as_ref().map(|rr| rr.apply(path))
}

/// The `Location` of a redirect, as Envoy builds it: scheme, authority and port replaced as
/// configured (a scheme's default port is omitted), the path replaced (`uri`) or its matched prefix
/// replaced (`prefixRewrite`), and the query string kept unless the new path carries its own.
pub fn redirect_location(redirect: &Redirect, req: &RequestView<'_>, request_match: Option<&RequestMatch>) -> String {
    let scheme = redirect.scheme.as_deref().unwrap_or(req.scheme).to_ascii_lowercase();
    let (req_host, req_port) = crate::request::split_authority(req.authority);
    let host = match &redirect.authority {
        Some(a) => crate::request::split_authority(a).0.to_string(),
        None => req_host.to_string(),
    };
    let default_port = |s: &str| if s == "https" { 443 } else { 80 };
    let port = match redirect.port {
        RedirectPort::Fixed(p) => Some(p),
        RedirectPort::FromProtocolDefault => None,
        RedirectPort::FromRequestPort => Some(req.port()),
        RedirectPort::Keep => match (&redirect.authority, req_port) {
            (Some(a), _) => crate::request::split_authority(a).1,
            // A scheme change drops the old scheme's default port.
            (None, Some(p)) if redirect.scheme.is_some() && p == default_port(req.scheme) => None,
            (None, p) => p,
        },
    }
    .filter(|p| *p != default_port(&scheme));
    let (path, query) = match (&redirect.uri, &redirect.prefix_rewrite) {
        (Some(uri), _) => match uri.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (uri.to_string(), req.query.map(str::to_string)),
        },
        (None, Some(prefix)) => {
            let matched = match request_match.and_then(|m| m.uri.as_ref()) {
                Some(StringMatcher::Prefix(p) | StringMatcher::PathPrefix(p)) => p.len().min(req.path.len()),
                _ => 0,
            };
            (format!("{prefix}{}", &req.path[matched..]), req.query.map(str::to_string))
        }
        (None, None) => (req.path.to_string(), req.query.map(str::to_string)),
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let mut out = format!("{scheme}://{host}");
    if let Some(p) = port {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(&path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&q);
    }
    out
}

/// How one rule fared against a request (for explanations; not used on the request path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleTrace {
    /// The rule has no `match`: it takes every request.
    CatchAll,
    /// `match[i]` matched.
    Matched(usize),
    /// No entry matched; each entry's first failing condition, by original index.
    NotMatched(Vec<(usize, Mismatch)>),
}

/// Evaluate every rule of `vh` up to the first that matches, saying why each did or did not.
pub fn trace_rules(vh: &VirtualHost, req: &RequestView<'_>, client: &ClientIdentity) -> Vec<(usize, RuleTrace)> {
    let port = req.port();
    let mut out = Vec::new();
    for (i, rule) in vh.rules.iter().enumerate() {
        if rule.matches.is_empty() {
            out.push((i, RuleTrace::CatchAll));
            break;
        }
        let mut misses = Vec::new();
        let mut hit = None;
        for m in rule.matches.iter() {
            match m.check(req, client, port) {
                Ok(()) => {
                    hit = Some(m.index);
                    break;
                }
                Err(why) => misses.push((m.index, why)),
            }
        }
        match hit {
            Some(j) => {
                out.push((i, RuleTrace::Matched(j)));
                break;
            }
            None => out.push((i, RuleTrace::NotMatched(misses))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_prefix(p: &str) -> RequestMatch {
        RequestMatch { uri: Some(StringMatcher::PathPrefix(Arc::from(p))), ..RequestMatch::default() }
    }

    fn rewrite(uri: &str) -> Rewrite {
        Rewrite { uri: Some(Arc::from(uri)), uri_regex: None, authority: None }
    }

    /// Gateway API `ReplacePrefixMatch` over a `PathPrefix` match, as Istio builds it (the spec's
    /// table in `HTTPPathModifier`: prefix `/foo`, replacement `/xyz` or `/`).
    #[test]
    fn segment_prefix_rewrites() {
        let m = segment_prefix("/foo");
        let cases = [
            ("/xyz", "/foo/bar", "/xyz/bar"),
            ("/xyz", "/foo", "/xyz"),
            ("/xyz", "/foo/", "/xyz/"),
            ("/", "/foo/bar", "/bar"),
            ("/", "/foo", "/"),
            ("/", "/foo/", "/"),
            ("/", "/foo//bar", "//bar"),
        ];
        for (uri, path, want) in cases {
            assert_eq!(rewrite_path(&rewrite(uri), path, Some(&m)).as_deref(), Some(want), "{uri} on {path}");
        }
    }
}
