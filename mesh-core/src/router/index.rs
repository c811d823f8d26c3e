//! The rule index of a virtual host: first-match-wins without testing every rule.
//!
//! Each `match[]` entry is filed under its cheapest selective condition — an exact path (a hashed
//! ordinal table), a path prefix (a flat byte trie), or an exact header value (a hashed table per
//! header) — and entries with none of those (regexes, catch-alls) are kept in order. A lookup
//! gathers the candidate entries, checks them in rule order with [`crate::route::RequestMatch::check`], and
//! stops as soon as no earlier rule can still win, so the answer is always the one the rules'
//! order gives ([`crate::router`]'s module docs state the semantics).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::matcher::StringMatcher;
use crate::request::{ClientIdentity, RequestView};
use crate::route::{HeaderCondition, HttpRule};

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
                    // A segment prefix's candidates are the plain prefix's; the full check
                    // rejects `/v2x` for `/v2`.
                    (Some(StringMatcher::Prefix(p) | StringMatcher::PathPrefix(p)), false) => {
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
