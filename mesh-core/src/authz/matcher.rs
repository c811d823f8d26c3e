//! The value matchers Istio generates for AuthorizationPolicy values (istio/istio
//! `pilot/pkg/security/authz/matcher/{string,header,template}.go`): a value is exact, a prefix
//! (`abc*`), a suffix (`*abc`) or presence (`*`); paths with `{*}`/`{**}` are Envoy URI templates.

use crate::matcher::Re2;

/// One value of a field, as Istio's `StringMatcherWithPrefix(value, prefix)` turns it into an
/// Envoy `StringMatcher`.
#[derive(Debug, Clone)]
pub(crate) enum StrMatch {
    /// `*`: any non-empty value (regex `.+`), or any value when `present_only` (headers).
    Any,
    /// `prefix*`.
    Prefix(Box<str>),
    /// `*suffix` (after the fixed prefix, if any: `spiffe://.*suffix`).
    Suffix { fixed: Box<str>, suffix: Box<str> },
    /// An exact value.
    Exact(Box<str>),
}

impl StrMatch {
    /// Istio's `StringMatcherWithPrefix(value, prefix)`.
    pub(crate) fn with_prefix(value: &str, prefix: &str) -> StrMatch {
        if value == "*" {
            StrMatch::Any
        } else if let Some(suffix) = value.strip_prefix('*') {
            StrMatch::Suffix { fixed: prefix.into(), suffix: suffix.into() }
        } else if let Some(p) = value.strip_suffix('*') {
            StrMatch::Prefix(format!("{prefix}{p}").into())
        } else {
            StrMatch::Exact(format!("{prefix}{value}").into())
        }
    }

    /// Istio's `StringMatcher(value)`.
    pub(crate) fn new(value: &str) -> StrMatch {
        StrMatch::with_prefix(value, "")
    }

    /// Does `s` match, case-sensitively (`*` needs a non-empty value)?
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Any => !s.is_empty(),
            StrMatch::Prefix(p) => s.starts_with(&**p),
            StrMatch::Suffix { fixed, suffix } => {
                s.len() >= fixed.len() + suffix.len() && s.starts_with(&**fixed) && s.ends_with(&**suffix)
            }
            StrMatch::Exact(e) => s == &**e,
        }
    }

    /// Envoy's `HeaderMatcher` from Istio's `HeaderMatcher`/`HostMatcher`: `*` is presence (any
    /// value, even empty); `ignore_case` for hosts.
    pub(crate) fn matches_header(&self, value: Option<&str>, ignore_case: bool) -> bool {
        let Some(v) = value else { return false };
        match self {
            StrMatch::Any => true,
            _ if ignore_case => self.matches_ignore_case(v),
            _ => self.matches(v),
        }
    }

    fn matches_ignore_case(&self, s: &str) -> bool {
        let starts =
            |s: &str, p: &str| s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
        let ends = |s: &str, p: &str| {
            s.len() >= p.len() && s.as_bytes()[s.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
        };
        match self {
            StrMatch::Any => !s.is_empty(),
            StrMatch::Prefix(p) => starts(s, p),
            StrMatch::Suffix { fixed, suffix } => {
                s.len() >= fixed.len() + suffix.len() && starts(s, fixed) && ends(s, suffix)
            }
            StrMatch::Exact(e) => s.eq_ignore_ascii_case(e),
        }
    }
}

/// The characters of a URI template literal (RFC 3986 `pchar` without `/`), as Istio's
/// `validLiteral` and Envoy's URI template accept them.
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!$&'()+,;:@=".contains(c)
}

/// Is `segment` a valid literal path segment of a URI template (`[a-zA-Z0-9-._~%!$&'()+,;:@=]+`)?
///
/// ```
/// assert!(mesh_core::authz::is_template_literal("file.txt"));
/// assert!(!mesh_core::authz::is_template_literal("a*b"));
/// assert!(!mesh_core::authz::is_template_literal(""));
/// ```
pub fn is_template_literal(segment: &str) -> bool {
    !segment.is_empty() && segment.chars().all(is_pchar)
}

/// Does the path contain a template operator?
pub(crate) fn is_template(path: &str) -> bool {
    path.contains("{*}") || path.contains("{**}")
}

const PCHAR_CLASS: &str = r"[a-zA-Z0-9\-._~%!$&'()+,;:@=]";
const PCHAR_OR_SLASH_CLASS: &str = r"[a-zA-Z0-9\-._~%!$&'()+,;:@=/]";

/// An Envoy URI template (`/foo/{*}/bar/{**}`) as a full-match regex: `{*}` is one or more
/// characters of one segment, `{**}` zero or more characters across segments (Envoy's
/// `uri_template` matcher; Istio's `matcher.PathTemplateMatcher`). `None` for a template Istio's
/// validation refuses.
pub(crate) fn template_regex(template: &str) -> Option<Re2> {
    let mut pattern = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{**}") {
            pattern.push_str(PCHAR_OR_SLASH_CLASS);
            pattern.push('*');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("{*}") {
            pattern.push_str(PCHAR_CLASS);
            pattern.push('+');
            rest = r;
        } else {
            let c = rest.chars().next()?;
            if c == '{' || c == '}' || c == '*' {
                return None;
            }
            let mut buf = [0u8; 4];
            pattern.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            rest = &rest[c.len_utf8()..];
        }
    }
    Re2::new(&pattern).ok()
}

/// A `paths` value: a string match, or a URI template.
#[derive(Debug, Clone)]
pub(crate) enum PathMatch {
    /// Exact, prefix, suffix or presence.
    Str(StrMatch),
    /// `{*}` / `{**}`.
    Template(Re2),
    /// A template that does not compile: never matches.
    Never,
}

impl PathMatch {
    pub(crate) fn new(value: &str) -> PathMatch {
        if is_template(value) {
            template_regex(value).map_or(PathMatch::Never, PathMatch::Template)
        } else {
            PathMatch::Str(StrMatch::new(value))
        }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Str(m) => m.matches(path),
            PathMatch::Template(re) => re.is_match(path),
            PathMatch::Never => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = |tpl: &str, path: &str| PathMatch::new(tpl).matches(path);
        assert!(t("/foo/{*}", "/foo/bar"));
        assert!(!t("/foo/{*}", "/foo/bar/baz"));
        assert!(!t("/foo/{*}", "/foo/"));
        assert!(t("/foo/{**}/", "/foo/bar/"));
        assert!(t("/foo/{**}/", "/foo//"));
        assert!(!t("/foo/{**}/", "/foo/bar"));
        assert!(t("/foo/{*}/bar/{**}", "/foo/buzz/bar/"));
        assert!(t("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz"));
    }

    #[test]
    fn strings() {
        assert!(StrMatch::with_prefix("*", "spiffe://").matches("x"));
        assert!(!StrMatch::with_prefix("*", "spiffe://").matches(""));
        assert!(StrMatch::with_prefix("*/sa/bar", "spiffe://").matches("spiffe://td/ns/foo/sa/bar"));
        assert!(!StrMatch::with_prefix("*/sa/bar", "spiffe://").matches("td/ns/foo/sa/bar"));
        assert!(StrMatch::new("*.example.com").matches_header(Some("WWW.Example.COM"), true));
        assert!(StrMatch::new("*").matches_header(Some(""), false));
    }
}
