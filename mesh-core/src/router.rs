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

use rustc_hash::FxHashMap;

use crate::matcher::StringMatcher;
use crate::request::{ClientIdentity, RequestView};
use crate::route::{HeaderCondition, HttpRule, Redirect, RedirectPort, RequestMatch, Rewrite};
use crate::snapshot::{Binding, Snapshot, VirtualHost};

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

const NO_MATCH_ENTRY: u32 = u32::MAX;

/// A byte trie of path prefixes while it is being built; each node lists the entries whose prefix
/// ends there. [`Trie::freeze`] turns it into the flat [`PrefixTrie`] the index keeps.
#[derive(Debug, Default)]
struct Trie {
    /// Node 0 is the root (the empty prefix).
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    entries: Vec<u32>,
}

impl Trie {
    fn insert(&mut self, prefix: &[u8], entry: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for &b in prefix {
            let next = match self.nodes[at].children.binary_search_by_key(&b, |(c, _)| *c) {
                Ok(i) => self.nodes[at].children[i].1 as usize,
                Err(i) => {
                    let id = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    self.nodes[at].children.insert(i, (b, id as u32));
                    id
                }
            };
            at = next;
        }
        self.nodes[at].entries.push(entry);
    }

    /// The same trie in flat arrays (no allocation per node).
    fn freeze(self) -> PrefixTrie {
        let n = self.nodes.len();
        let mut trie = Frozen {
            child_at: Vec::with_capacity(n + 1),
            child_bytes: Vec::with_capacity(n.saturating_sub(1)),
            child_nodes: Vec::with_capacity(n.saturating_sub(1)),
            entry_at: Vec::with_capacity(n + 1),
            entries: Vec::new(),
        };
        for node in self.nodes {
            trie.child_at.push(trie.child_bytes.len() as u32);
            trie.entry_at.push(trie.entries.len() as u32);
            for (b, id) in node.children {
                trie.child_bytes.push(b);
                trie.child_nodes.push(id);
            }
            trie.entries.extend(node.entries);
        }
        trie.child_at.push(trie.child_bytes.len() as u32);
        trie.entry_at.push(trie.entries.len() as u32);
        PrefixTrie {
            child_at: trie.child_at.into_boxed_slice(),
            child_bytes: trie.child_bytes.into_boxed_slice(),
            child_nodes: trie.child_nodes.into_boxed_slice(),
            entry_at: trie.entry_at.into_boxed_slice(),
            entries: trie.entries.into_boxed_slice(),
        }
    }
}

struct Frozen {
    child_at: Vec<u32>,
    child_bytes: Vec<u8>,
    child_nodes: Vec<u32>,
    entry_at: Vec<u32>,
    entries: Vec<u32>,
}

/// A byte trie of path prefixes in flat arrays: node `i`'s children are
/// `child_bytes[child_at[i]..child_at[i + 1]]` (sorted, with their node ids in `child_nodes`), its
/// entries `entries[entry_at[i]..entry_at[i + 1]]`. Node 0 is the root (the empty prefix); an
/// empty trie has no nodes.
#[derive(Debug, Clone, Default)]
struct PrefixTrie {
    child_at: Box<[u32]>,
    child_bytes: Box<[u8]>,
    child_nodes: Box<[u32]>,
    entry_at: Box<[u32]>,
    entries: Box<[u32]>,
}

impl PrefixTrie {
    fn node_entries(&self, node: usize) -> &[u32] {
        &self.entries[self.entry_at[node] as usize..self.entry_at[node + 1] as usize]
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        let (from, to) = (self.child_at[node] as usize, self.child_at[node + 1] as usize);
        let i = self.child_bytes[from..to].binary_search(&b).ok()?;
        Some(self.child_nodes[from + i] as usize)
    }

    /// Entry lists of every prefix of `path` present in the trie, shortest first.
    fn walk<'a>(&'a self, path: &'a [u8]) -> impl Iterator<Item = &'a [u32]> + 'a {
        let mut at = if self.entry_at.len() > 1 { Some(0usize) } else { None };
        let mut depth = 0usize;
        std::iter::from_fn(move || {
            let node = at?;
            let entries = self.node_entries(node);
            at = path.get(depth).and_then(|b| self.child(node, *b));
            depth += 1;
            Some(entries)
        })
    }
}

/// Entry ordinals by exact value, while the index is being built.
type ValueLists = FxHashMap<Box<str>, Vec<u32>>;

/// Entry ordinals by exact value, filed under a 64-bit hash of the value: a lookup yields the
/// entries of every value with that hash (in practice the one value), and each candidate is
/// checked in full anyway, so a collision costs a check, never a wrong answer. The lists live in
/// one array (`(start, len)` into it), so a value costs no allocation of its own.
#[derive(Debug, Clone, Default)]
struct ValueIndex {
    lists: FxHashMap<u64, (u32, u32)>,
    ordinals: Box<[u32]>,
}

fn value_hash(value: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(value)
}

impl ValueIndex {
    fn build(by_value: ValueLists) -> ValueIndex {
        let mut merged: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        for (value, ords) in by_value {
            merged.entry(value_hash(&value)).or_default().extend(ords);
        }
        let mut lists = FxHashMap::default();
        lists.reserve(merged.len());
        let mut ordinals = Vec::with_capacity(merged.values().map(Vec::len).sum());
        for (hash, mut ords) in merged {
            // Two values with one hash: their entries together, still in rule order.
            ords.sort_unstable();
            lists.insert(hash, (ordinals.len() as u32, ords.len() as u32));
            ordinals.extend(ords);
        }
        ValueIndex { lists, ordinals: ordinals.into_boxed_slice() }
    }

    fn get(&self, value: &str) -> Option<&[u32]> {
        let (start, len) = *self.lists.get(&value_hash(value))?;
        self.ordinals.get(start as usize..(start + len) as usize)
    }
}

/// An index over a virtual host's rules (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    /// Ordinal → (rule, entry in the rule's `matches`, or NO_MATCH_ENTRY for a catch-all).
    entries: Box<[(u32, u32)]>,
    exact_path: ValueIndex,
    prefixes: PrefixTrie,
    header_exact: Box<[(Arc<str>, ValueIndex)]>,
    rest: Box<[u32]>,
}

impl RuleIndex {
    pub(crate) fn build(rules: &[Arc<HttpRule>]) -> RuleIndex {
        let mut entries = Vec::new();
        let mut exact_path = ValueLists::default();
        let mut prefixes = Trie::default();
        let mut header_exact: Vec<(Arc<str>, ValueLists)> = Vec::new();
        let mut rest = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            if rule.matches.is_empty() {
                rest.push(entries.len() as u32);
                entries.push((r as u32, NO_MATCH_ENTRY));
                continue;
            }
            for (m, entry) in rule.matches.iter().enumerate() {
                let ord = entries.len() as u32;
                entries.push((r as u32, m as u32));
                match (&entry.uri, entry.ignore_uri_case) {
                    (Some(StringMatcher::Exact(p)), false) => {
                        exact_path.entry(Box::from(&**p)).or_default().push(ord);
                        continue;
                    }
                    (Some(StringMatcher::Prefix(p)), false) => {
                        prefixes.insert(p.as_bytes(), ord);
                        continue;
                    }
                    (Some(StringMatcher::Regex(re)), _) if re.literal_prefix().is_some() => {
                        // Every path this regex matches starts with its literal prefix.
                        prefixes.insert(re.literal_prefix().unwrap_or("").as_bytes(), ord);
                        continue;
                    }
                    _ => {}
                }
                let header = entry.headers.iter().find_map(|(name, cond)| match cond {
                    HeaderCondition::Match(StringMatcher::Exact(v)) => Some((name, v)),
                    _ => None,
                });
                match header {
                    Some((name, value)) => {
                        let slot = match header_exact.iter().position(|(n, _)| n == name) {
                            Some(i) => i,
                            None => {
                                header_exact.push((name.clone(), ValueLists::default()));
                                header_exact.len() - 1
                            }
                        };
                        header_exact[slot].1.entry(Box::from(&**value)).or_default().push(ord);
                    }
                    None => rest.push(ord),
                }
            }
        }
        RuleIndex {
            entries: entries.into_boxed_slice(),
            exact_path: ValueIndex::build(exact_path),
            prefixes: prefixes.freeze(),
            header_exact: header_exact.into_iter().map(|(name, values)| (name, ValueIndex::build(values))).collect(),
            rest: rest.into_boxed_slice(),
        }
    }

    /// The first (rule, match entry) that matches, in rule order.
    pub(crate) fn first_match(
        &self,
        rules: &[Arc<HttpRule>],
        req: &RequestView<'_>,
        client: &ClientIdentity,
        port: u16,
    ) -> Option<(usize, Option<usize>)> {
        let mut best = u32::MAX;
        let mut consider = |list: &[u32]| {
            for &ord in list {
                if ord >= best {
                    return;
                }
                let (r, m) = self.entries[ord as usize];
                let hit = m == NO_MATCH_ENTRY || rules[r as usize].matches[m as usize].matches(req, client, port);
                if hit {
                    best = ord;
                    return;
                }
            }
        };
        if let Some(list) = self.exact_path.get(req.path) {
            consider(list);
        }
        for (name, values) in self.header_exact.iter() {
            if let Some(v) = req.headers.header(name)
                && let Some(list) = values.get(&v)
            {
                consider(list);
            }
        }
        for list in self.prefixes.walk(req.path.as_bytes()) {
            consider(list);
        }
        consider(&self.rest);
        if best == u32::MAX {
            return None;
        }
        let (r, m) = self.entries[best as usize];
        Some((r as usize, (m != NO_MATCH_ENTRY).then_some(m as usize)))
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
                Some(StringMatcher::Prefix(p)) => p.len().min(req.path.len()),
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
