//! String matching with Istio's semantics.
//!
//! Istio's `StringMatch` is `exact`, `prefix` (a plain string prefix) or `regex`. Regexes are
//! RE2 (Envoy's `safe_regex`) and must match the **whole** value. Rust's `regex` crate shares RE2's
//! design (linear time, no backreferences or look-around) but differs in a few places, which
//! [`Re2`] closes:
//!
//! - full match: the pattern is anchored as `\A(?:…)\z`;
//! - `\d \w \s \b` are ASCII in RE2 but Unicode in Rust: they are rewritten to ASCII classes;
//! - RE2's `\Q…\E` literal quoting is rewritten to escaped text;
//! - RE2 refuses repetition counts above 1000: so do we.
//!
//! Reference: <https://github.com/google/re2/wiki/Syntax>,
//! <https://istio.io/latest/docs/reference/config/networking/virtual-service/#StringMatch>.

use std::fmt;
use std::sync::Arc;

use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSetItem};

/// A compiled RE2-compatible regular expression that matches whole strings.
///
/// One pointer wide (the pattern, the compiled regex and its literal prefix live behind one
/// `Arc`), so that the string matchers of a compiled rule stay small whatever kind they are.
#[derive(Clone)]
pub struct Re2 {
    inner: Arc<Re2Inner>,
}

struct Re2Inner {
    source: Box<str>,
    regex: regex::Regex,
    literal_prefix: Option<Box<str>>,
}

/// Why a pattern is not acceptable RE2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regex {pattern:?}: {message}")]
pub struct Re2Error {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong.
    pub message: String,
}

/// RE2's limit on `{n}` / `{n,m}` counts.
const MAX_REPEAT: u32 = 1000;
/// Compiled program size limit, in bytes (Envoy's RE2 program-size guard, roughly).
const SIZE_LIMIT: usize = 1 << 20;

impl Re2 {
    /// Compile `pattern` with RE2 semantics and full-string matching.
    pub fn new(pattern: &str) -> Result<Re2, Re2Error> {
        let rewritten = translate(pattern)?;
        let anchored = format!(r"\A(?:{rewritten})\z");
        let regex = regex::RegexBuilder::new(&anchored)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| Re2Error { pattern: pattern.to_string(), message: e.to_string() })?;
        let literal_prefix = literal_prefix(&anchored);
        Ok(Re2 { inner: Arc::new(Re2Inner { source: Box::from(pattern), regex, literal_prefix }) })
    }

    /// A literal every match starts with (`/api/` for `/api/v[0-9]+`), when there is one: route
    /// indexes file the regex under it instead of testing it against every path.
    pub fn literal_prefix(&self) -> Option<&str> {
        self.inner.literal_prefix.as_deref()
    }

    /// Compile `pattern` with RE2 semantics but *not* anchored: for substitutions such as
    /// `uriRegexRewrite`, which replace every match in the path as Envoy's `regex_rewrite` does.
    pub fn unanchored(pattern: &str) -> Result<regex::Regex, Re2Error> {
        let rewritten = translate(pattern)?;
        regex::RegexBuilder::new(&rewritten)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| Re2Error { pattern: pattern.to_string(), message: e.to_string() })
    }

    /// True when the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.inner.regex.is_match(text)
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.inner.source
    }

    /// The underlying anchored regex (for capture-group rewrites).
    pub fn regex(&self) -> &regex::Regex {
        &self.inner.regex
    }
}

impl fmt::Debug for Re2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Re2({:?})", &*self.inner.source)
    }
}

impl PartialEq for Re2 {
    fn eq(&self, other: &Self) -> bool {
        self.inner.source == other.inner.source
    }
}

impl Eq for Re2 {}

/// The longest literal all matches of `pattern` begin with, if non-empty.
fn literal_prefix(pattern: &str) -> Option<Box<str>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let literals = seq.literals()?;
    let first = literals.first()?.as_bytes();
    let mut len = first.len();
    for lit in &literals[1..] {
        len = len.min(first.iter().zip(lit.as_bytes()).take_while(|(a, b)| a == b).count());
    }
    let mut prefix = &first[..len];
    while !prefix.is_empty() && std::str::from_utf8(prefix).is_err() {
        prefix = &prefix[..prefix.len() - 1];
    }
    let text = std::str::from_utf8(prefix).ok()?;
    (!text.is_empty()).then(|| Box::from(text))
}

/// Rewrite an RE2 pattern into `regex` syntax with RE2's meaning (see the module docs).
fn translate(pattern: &str) -> Result<String, Re2Error> {
    let err = |message: String| Re2Error { pattern: pattern.to_string(), message };
    let unquoted = expand_quotes(pattern);
    let parsed = ast::parse::Parser::new().parse(&unquoted).map_err(|e| err(e.kind().to_string()))?;
    let mut edits = Vec::new();
    collect_edits(&parsed, &mut edits).map_err(err)?;
    let mut rewritten = unquoted;
    edits.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    for (start, end, replacement) in edits {
        rewritten.replace_range(start..end, replacement);
    }
    Ok(rewritten)
}

/// Replace RE2's `\Q…\E` quoting with escaped literal text.
fn expand_quotes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(pos) = find_unescaped(rest, 'Q') {
        out.push_str(&rest[..pos]);
        let quoted = &rest[pos + 2..];
        let end = quoted.find(r"\E").unwrap_or(quoted.len());
        out.push_str(&regex::escape(&quoted[..end]));
        rest = quoted.get(end + 2..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Position of a `\<c>` escape that is not itself escaped.
fn find_unescaped(s: &str, c: char) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, ch)) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some((_, next)) if next == c => return Some(i),
                _ => {}
            }
        }
    }
    None
}

/// ASCII replacements for Perl classes, as (top-level form, inside-brackets form).
fn perl_replacement(kind: &ClassPerlKind, negated: bool) -> (&'static str, &'static str) {
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => ("[0-9]", "0-9"),
        (ClassPerlKind::Digit, true) => ("[^0-9]", r"\x00-/:-\x{10FFFF}"),
        (ClassPerlKind::Word, false) => ("[0-9A-Za-z_]", "0-9A-Za-z_"),
        (ClassPerlKind::Word, true) => ("[^0-9A-Za-z_]", r"\x00-/:-@\[-\^`{-\x{10FFFF}"),
        (ClassPerlKind::Space, false) => (r"[\t\n\f\r ]", r"\t\n\f\r "),
        (ClassPerlKind::Space, true) => (r"[^\t\n\f\r ]", r"\x00-\x08\x0B\x0E-\x1F!-\x{10FFFF}"),
    }
}

fn collect_edits(node: &Ast, edits: &mut Vec<(usize, usize, &'static str)>) -> Result<(), String> {
    match node {
        Ast::ClassPerl(c) => {
            edits.push((c.span.start.offset, c.span.end.offset, perl_replacement(&c.kind, c.negated).0));
        }
        Ast::Assertion(a) => match a.kind {
            ast::AssertionKind::WordBoundary => edits.push((a.span.start.offset, a.span.end.offset, r"(?-u:\b)")),
            ast::AssertionKind::NotWordBoundary => edits.push((a.span.start.offset, a.span.end.offset, r"(?-u:\B)")),
            _ => {}
        },
        Ast::ClassBracketed(c) => collect_set_edits(&c.kind, edits),
        Ast::Repetition(r) => {
            if let ast::RepetitionKind::Range(range) = &r.op.kind {
                let (ast::RepetitionRange::Exactly(n)
                | ast::RepetitionRange::AtLeast(n)
                | ast::RepetitionRange::Bounded(_, n)) = range;
                if *n > MAX_REPEAT {
                    return Err(format!("bad repetition operator: counts above {MAX_REPEAT} are not allowed"));
                }
            }
            collect_edits(&r.ast, edits)?;
        }
        Ast::Group(g) => collect_edits(&g.ast, edits)?,
        Ast::Alternation(a) => {
            for ast in &a.asts {
                collect_edits(ast, edits)?;
            }
        }
        Ast::Concat(c) => {
            for ast in &c.asts {
                collect_edits(ast, edits)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn collect_set_edits(set: &ast::ClassSet, edits: &mut Vec<(usize, usize, &'static str)>) {
    match set {
        ast::ClassSet::Item(item) => collect_item_edits(item, edits),
        ast::ClassSet::BinaryOp(op) => {
            collect_set_edits(&op.lhs, edits);
            collect_set_edits(&op.rhs, edits);
        }
    }
}

fn collect_item_edits(item: &ClassSetItem, edits: &mut Vec<(usize, usize, &'static str)>) {
    match item {
        ClassSetItem::Perl(c) => {
            edits.push((c.span.start.offset, c.span.end.offset, perl_replacement(&c.kind, c.negated).1));
        }
        ClassSetItem::Bracketed(b) => collect_set_edits(&b.kind, edits),
        ClassSetItem::Union(u) => {
            for item in &u.items {
                collect_item_edits(item, edits);
            }
        }
        _ => {}
    }
}

/// A compiled `StringMatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatcher {
    /// The whole value equals this.
    Exact(Arc<str>),
    /// The value starts with this (a plain string prefix, not a path-segment prefix).
    Prefix(Arc<str>),
    /// A path-segment prefix, as the Gateway API's `PathPrefix` (and Envoy's
    /// `path_separated_prefix`, which Istio uses for routes with Gateway API semantics,
    /// `pilot/pkg/networking/core/route/route.go`): the path equals it or continues with `/`
    /// after it, so `/v2` matches `/v2`, `/v2/` and `/v2/x` but not `/v2x`. It never ends with
    /// `/` (the root `/` is a plain [`StringMatcher::Prefix`]).
    PathPrefix(Arc<str>),
    /// The whole value matches this RE2 expression.
    Regex(Re2),
}

impl StringMatcher {
    /// Does `value` match?
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatcher::Exact(s) => value == &**s,
            StringMatcher::Prefix(s) => value.starts_with(&**s),
            StringMatcher::PathPrefix(s) => {
                value.starts_with(&**s) && matches!(value.as_bytes().get(s.len()), None | Some(b'/'))
            }
            StringMatcher::Regex(re) => re.is_match(value),
        }
    }

    /// Does `value` match, ignoring ASCII case (`ignoreUriCase`)? Regexes are matched as written,
    /// as Envoy does.
    pub fn matches_ignore_case(&self, value: &str) -> bool {
        match self {
            StringMatcher::Exact(s) => value.eq_ignore_ascii_case(s),
            StringMatcher::Prefix(s) => {
                value.len() >= s.len() && value.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
            }
            StringMatcher::PathPrefix(s) => {
                value.len() >= s.len()
                    && value.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
                    && matches!(value.as_bytes().get(s.len()), None | Some(b'/'))
            }
            StringMatcher::Regex(re) => re.is_match(value),
        }
    }
}

impl fmt::Display for StringMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StringMatcher::Exact(s) => write!(f, "exact {s:?}"),
            StringMatcher::Prefix(s) => write!(f, "prefix {s:?}"),
            StringMatcher::PathPrefix(s) => write!(f, "path prefix {s:?}"),
            StringMatcher::Regex(re) => write!(f, "regex {:?}", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_matches_whole_segments() {
        let m = StringMatcher::PathPrefix(Arc::from("/v2"));
        for yes in ["/v2", "/v2/", "/v2/example", "/v2//x"] {
            assert!(m.matches(yes), "{yes}");
        }
        for no in ["/v2example", "/v", "/", "/foo/v2/example", "/V2"] {
            assert!(!m.matches(no), "{no}");
        }
        assert!(m.matches_ignore_case("/V2/x"));
        assert!(!m.matches_ignore_case("/V2x"));
    }

    fn re(p: &str) -> Re2 {
        Re2::new(p).expect("valid pattern")
    }

    #[test]
    fn full_match_not_substring() {
        assert!(re("foo").is_match("foo"));
        assert!(!re("foo").is_match("xfoo"));
        assert!(!re("foo").is_match("foox"));
        assert!(re("a|b").is_match("b"));
        assert!(!re("a|b").is_match("ab"));
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(re(r"\d+").is_match("123"));
        assert!(!re(r"\d").is_match("١"));
        assert!(re(r"\D").is_match("١"));
        assert!(!re(r"\w").is_match("é"));
        assert!(re(r"[\d_]+").is_match("1_2"));
        assert!(!re(r"[\d_]+").is_match("١"));
        assert!(re(r"\s").is_match(" "));
        assert!(!re(r"\s").is_match("\u{a0}"));
        assert!(re(r".").is_match("é"), "dot matches one code point, as RE2's UTF-8 mode");
        assert!(re(r"foo\b.*").is_match("foo bar"));
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(re("/api/v[0-9]+").literal_prefix(), Some("/api/v"));
        assert_eq!(re("/items/(a|b)").literal_prefix(), Some("/items/"));
        assert_eq!(re("/(api|app)/x").literal_prefix(), Some("/ap"));
        assert_eq!(re(".*foo").literal_prefix(), None);
        assert_eq!(re("(?i)/api").literal_prefix(), Some("/"), "only what every case variant shares");
    }

    #[test]
    fn quoting_and_limits() {
        assert!(re(r"\Qa.b\E").is_match("a.b"));
        assert!(!re(r"\Qa.b\E").is_match("axb"));
        assert!(re(r"x{1000}").is_match(&"x".repeat(1000)));
        assert!(Re2::new(r"x{1001}").is_err());
        assert!(Re2::new(r"(a)\1").is_err());
        assert!(Re2::new(r"a(?=b)").is_err());
        assert!(Re2::new("[").is_err());
    }

    #[test]
    fn string_matchers() {
        let prefix = StringMatcher::Prefix(Arc::from("/api"));
        assert!(prefix.matches("/api"));
        assert!(prefix.matches("/apiv2"), "a prefix is a plain string prefix");
        assert!(!prefix.matches("/API"));
        assert!(prefix.matches_ignore_case("/API/x"));
        assert!(StringMatcher::Exact(Arc::from("/")).matches("/"));
    }
}
