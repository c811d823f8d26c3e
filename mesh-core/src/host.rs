//! Host names: qualification of short names, wildcard comparison and lookup.
//!
//! Istio's rules (istio/istio `pkg/config/host` and `model.ResolveShortnameToFQDN`):
//!
//! - In config, a host **without a dot** is a short name relative to the resource's namespace:
//!   `reviews` in namespace `bookinfo` is `reviews.bookinfo.svc.cluster.local`. A name with a dot
//!   is taken as written, and so are `*` and IP addresses. ServiceEntry hosts are the exception:
//!   Istio takes them as written, dotless or not (mesh-config does not qualify them).
//! - A wildcard host is `*` or `*.suffix` (or `*suffix`); `*.example.com` matches
//!   `a.example.com` and `a.b.example.com`, not `example.com`.
//! - Lookup prefers an exact name, then the longest matching wildcard (`*.b.example.com` over
//!   `*.example.com` over `*`).

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// The default Kubernetes cluster domain.
pub const DEFAULT_DOMAIN: &str = "cluster.local";

/// Qualify a host written in a resource of `namespace`, as Istio does: names without a dot get
/// `.<namespace>.svc.<domain>`; everything else is returned as written (lower-cased).
pub fn qualify(host: &str, namespace: &str, domain: &str) -> String {
    let host = host.to_ascii_lowercase();
    if host == "*" || host.contains('.') || host.parse::<IpAddr>().is_ok() {
        return host;
    }
    let mut out = host;
    if !namespace.is_empty() {
        out.push('.');
        out.push_str(namespace);
    }
    if !domain.is_empty() {
        out.push_str(".svc.");
        out.push_str(domain);
    }
    out
}

/// Is `host` a wildcard (`*`, `*.x`, `*x`)?
pub fn is_wildcard(host: &str) -> bool {
    host.starts_with('*')
}

/// Do two host patterns overlap (Istio's `host.Name.Matches`)?
pub fn hosts_overlap(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => {
            if sa.len() < sb.len() {
                sb.ends_with(sa)
            } else {
                sa.ends_with(sb)
            }
        }
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// Is every name matched by `a` also matched by `b` (Istio's `host.Name.SubsetOf`)?
pub fn is_subset_of(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => sa.ends_with(sb),
        (Some(_), None) => false,
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// Which kind of pattern matched in [`HostMap::find`].
enum Pattern<'a> {
    Exact,
    /// `*` followed by this suffix.
    Wildcard(&'a str),
}

/// Hosts indexed for lookup: exact names in a hash map, wildcards by suffix, longest first.
///
/// `get` is one hash lookup plus, on a miss, one lookup per dot-suffix of the name — never a scan
/// of every host.
#[derive(Debug, Clone)]
pub struct HostMap<T> {
    exact: FxHashMap<Arc<str>, T>,
    /// Keyed by the suffix after `*` (`.example.com` for `*.example.com`, `` for `*`).
    wildcard: FxHashMap<Arc<str>, T>,
    /// Suffix lengths present in `wildcard`, longest first (for `*x`-style patterns).
    wildcard_lengths: Vec<usize>,
}

impl<T> Default for HostMap<T> {
    fn default() -> Self {
        HostMap { exact: FxHashMap::default(), wildcard: FxHashMap::default(), wildcard_lengths: Vec::new() }
    }
}

impl<T> HostMap<T> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for `host` (exact or wildcard pattern), inserting `default()` if absent.
    pub fn entry_or_insert_with(&mut self, host: &str, default: impl FnOnce() -> T) -> &mut T {
        match host.strip_prefix('*') {
            Some(suffix) => {
                self.note_length(suffix.len());
                self.wildcard.entry(Arc::from(suffix)).or_insert_with(default)
            }
            None => self.exact.entry(Arc::from(host)).or_insert_with(default),
        }
    }

    /// Insert or replace the entry for a host pattern.
    pub fn insert(&mut self, host: &str, value: T) {
        match host.strip_prefix('*') {
            Some(suffix) => {
                self.note_length(suffix.len());
                self.wildcard.insert(Arc::from(suffix), value);
            }
            None => {
                self.exact.insert(Arc::from(host), value);
            }
        }
    }

    fn note_length(&mut self, len: usize) {
        if let Err(pos) = self.wildcard_lengths.binary_search_by(|l| len.cmp(l)) {
            self.wildcard_lengths.insert(pos, len);
        }
    }

    /// The most specific entry for a concrete host name: exact first, then the longest wildcard.
    pub fn get(&self, host: &str) -> Option<&T> {
        self.find(host).map(|(_, v)| v)
    }

    /// Like [`get`](Self::get), also saying which pattern matched (`*.example.com`).
    pub fn get_with_pattern(&self, host: &str) -> Option<(String, &T)> {
        self.find(host).map(|(pattern, v)| match pattern {
            Pattern::Exact => (host.to_string(), v),
            Pattern::Wildcard(suffix) => (format!("*{suffix}"), v),
        })
    }

    /// The lookup behind `get` and `get_with_pattern`; allocates nothing (it runs per request).
    fn find<'h>(&self, host: &'h str) -> Option<(Pattern<'h>, &T)> {
        if let Some(v) = self.exact.get(host) {
            return Some((Pattern::Exact, v));
        }
        for &len in &self.wildcard_lengths {
            if len > host.len() || !host.is_char_boundary(host.len() - len) {
                continue;
            }
            // `*suffix` needs at least one character before the suffix.
            if len == host.len() {
                continue;
            }
            let suffix = &host[host.len() - len..];
            if let Some(v) = self.wildcard.get(suffix) {
                return Some((Pattern::Wildcard(suffix), v));
            }
        }
        None
    }

    /// The entry stored for exactly this pattern.
    pub fn get_pattern(&self, pattern: &str) -> Option<&T> {
        match pattern.strip_prefix('*') {
            Some(suffix) => self.wildcard.get(suffix),
            None => self.exact.get(pattern),
        }
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    /// No patterns at all?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Consume into (pattern, value) pairs, exact names first.
    pub fn into_entries(self) -> Vec<(String, T)> {
        let mut out: Vec<(String, T)> = self.exact.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        out.extend(self.wildcard.into_iter().map(|(k, v)| (format!("*{k}"), v)));
        out
    }

    /// The entry for exactly `host` (no wildcard).
    pub fn get_exact(&self, host: &str) -> Option<&T> {
        self.exact.get(host)
    }

    /// The entry of the longest wildcard pattern matching `host`, ignoring exact entries.
    pub fn get_wildcard(&self, host: &str) -> Option<&T> {
        for &len in &self.wildcard_lengths {
            if len >= host.len() || !host.is_char_boundary(host.len() - len) {
                continue;
            }
            let suffix = &host[host.len() - len..];
            if let Some(v) = self.wildcard.get(suffix) {
                return Some(v);
            }
        }
        None
    }

    /// Every (pattern, value), exact names first.
    pub fn iter(&self) -> impl Iterator<Item = (String, &T)> {
        self.exact
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(self.wildcard.iter().map(|(k, v)| (format!("*{k}"), v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualification_follows_istio() {
        assert_eq!(qualify("reviews", "bookinfo", DEFAULT_DOMAIN), "reviews.bookinfo.svc.cluster.local");
        assert_eq!(qualify("reviews.bookinfo", "default", DEFAULT_DOMAIN), "reviews.bookinfo");
        assert_eq!(qualify("*", "default", DEFAULT_DOMAIN), "*");
        assert_eq!(qualify("*.example.com", "default", DEFAULT_DOMAIN), "*.example.com");
        assert_eq!(qualify("10.0.0.1", "default", DEFAULT_DOMAIN), "10.0.0.1");
        assert_eq!(qualify("Reviews", "ns", DEFAULT_DOMAIN), "reviews.ns.svc.cluster.local");
    }

    #[test]
    fn overlap_and_subset() {
        assert!(hosts_overlap("*.foo.bar", "*.bar"));
        assert!(hosts_overlap("a.bar", "*.bar"));
        assert!(!hosts_overlap("a.bar", "b.bar"));
        assert!(hosts_overlap("*", "x.y"));
        assert!(is_subset_of("a.foo.com", "*.foo.com"));
        assert!(is_subset_of("*.a.foo.com", "*.foo.com"));
        assert!(!is_subset_of("*.foo.com", "a.foo.com"));
    }

    #[test]
    fn most_specific_wins() {
        let mut m = HostMap::new();
        m.insert("*", 0);
        m.insert("*.example.com", 1);
        m.insert("*.b.example.com", 2);
        m.insert("a.b.example.com", 3);
        assert_eq!(m.get("a.b.example.com"), Some(&3));
        assert_eq!(m.get("c.b.example.com"), Some(&2));
        assert_eq!(m.get("c.example.com"), Some(&1));
        assert_eq!(m.get("example.com"), Some(&0), "*.example.com needs a label before it");
        assert_eq!(m.get("other.org"), Some(&0));
        let mut n: HostMap<u8> = HostMap::new();
        n.insert("*.example.com", 1);
        assert_eq!(n.get("example.com"), None);
        assert_eq!(n.get(".example.com"), None);
    }
}
