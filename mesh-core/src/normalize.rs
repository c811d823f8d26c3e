//! Path normalization before authorization, as Istio configures Envoy for each meshConfig
//! `pathNormalization.normalization` value (istio/istio `pilot/pkg/networking/core/listener_builder.go`:
//! `NONE` sets nothing; `BASE` sets `normalize_path`; `MERGE_SLASHES` adds `merge_slashes`;
//! `DECODE_AND_MERGE_SLASHES` adds `path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD`), and
//! as Envoy applies those options (`ConnectionManagerUtility::maybeNormalizePath`: escaped
//! slashes first, then RFC 3986 normalization, then merging slashes).
//!
//! The table is Istio's "Authorization Policy Normalization" page
//! (<https://istio.io/latest/docs/reference/config/security/normalization/>) and the 2021
//! advisories it answers (ISTIO-SECURITY-2021-001, -008: `%2F`/`%5C`, `#fragment`, `//`):
//!
//! | input | NONE | BASE | MERGE_SLASHES | DECODE_AND_MERGE_SLASHES |
//! |---|---|---|---|---|
//! | `/a/../b`, `/a/./b` | as sent | `/b`, `/a/b` | same | same |
//! | `/%61%62%2e` (unreserved: letters, digits, `-._~`) | as sent | `/ab.` | same | same |
//! | `/a\b` | as sent | `/a/b` | same | same |
//! | `/a//b` | as sent | as sent | `/a/b` | `/a/b` |
//! | `/a%2Fb`, `/a%5Cb` | as sent | as sent | as sent | `/a/b` |
//! | `/a#frag` | `/a` | `/a` | `/a` | `/a` |
//! | `%00` anywhere | refused (400) | refused | refused | refused |
//!
//! The fragment is never part of the path (Envoy strips it, CVE-2021-32779); the query is kept
//! for the upstream but never compared with `paths` ([`path_without_query`]). The host is not
//! rewritten: authorization compares `hosts` case-insensitively and with the port as sent
//! (see [`crate::authz`]).

use std::fmt;

/// meshConfig `pathNormalization.normalization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PathNormalization {
    /// No normalization.
    None,
    /// RFC 3986 normalization (dot segments, unreserved percent-encodings, `\` to `/`): Istio's
    /// default.
    #[default]
    Base,
    /// `Base`, then adjacent slashes merged.
    MergeSlashes,
    /// `%2F` and `%5C` decoded first, then `MergeSlashes`.
    DecodeAndMergeSlashes,
}

impl PathNormalization {
    /// Istio's spelling (`NONE`, `BASE`, `MERGE_SLASHES`, `DECODE_AND_MERGE_SLASHES`).
    pub fn as_str(self) -> &'static str {
        match self {
            PathNormalization::None => "NONE",
            PathNormalization::Base => "BASE",
            PathNormalization::MergeSlashes => "MERGE_SLASHES",
            PathNormalization::DecodeAndMergeSlashes => "DECODE_AND_MERGE_SLASHES",
        }
    }
}

impl std::str::FromStr for PathNormalization {
    type Err = String;

    /// Istio's spelling; `DEFAULT` is `BASE`, as in meshConfig.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "NONE" => PathNormalization::None,
            "BASE" | "DEFAULT" => PathNormalization::Base,
            "MERGE_SLASHES" => PathNormalization::MergeSlashes,
            "DECODE_AND_MERGE_SLASHES" => PathNormalization::DecodeAndMergeSlashes,
            other => {
                return Err(format!(
                    "unknown path normalization {other:?} (expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES)"
                ));
            }
        })
    }
}

impl fmt::Display for PathNormalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path Envoy refuses with 400 before any filter sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRejected {
    /// `%00` in the path.
    #[error("the path contains %00")]
    EncodedNul,
    /// Not an origin-form path (it does not start with `/`).
    #[error("the path does not start with /")]
    NotAbsolute,
}

/// Normalize a request's `:path` (path, optional `?query`, optional `#fragment`) under `mode`:
/// the path as the upstream and authorization see it, the query kept, the fragment dropped.
///
/// ```
/// use mesh_core::normalize::{normalize_path, PathNormalization::*};
/// assert_eq!(normalize_path("/public/./data/abc/../xyz?v=1#top", Base).as_deref(), Ok("/public/data/xyz?v=1"));
/// assert_eq!(normalize_path("/some//data", Base).as_deref(), Ok("/some//data"));
/// assert_eq!(normalize_path("/some//data", MergeSlashes).as_deref(), Ok("/some/data"));
/// assert_eq!(normalize_path("/some%2fdata/%61%62%63", DecodeAndMergeSlashes).as_deref(), Ok("/some/data/abc"));
/// assert!(normalize_path("/a%00b", Base).is_err());
/// ```
pub fn normalize_path(raw: &str, mode: PathNormalization) -> Result<String, PathRejected> {
    let without_fragment = raw.split_once('#').map_or(raw, |(p, _)| p);
    let (path, query) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (without_fragment, None),
    };
    if contains_encoded_nul(path) {
        return Err(PathRejected::EncodedNul);
    }
    let mut out = if path.is_empty() { "/".to_string() } else { path.to_string() };
    if mode != PathNormalization::None {
        if !out.starts_with('/') {
            return Err(PathRejected::NotAbsolute);
        }
        if mode == PathNormalization::DecodeAndMergeSlashes {
            out = unescape_slashes(&out);
        }
        out = canonicalize(&out);
        if matches!(mode, PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes) {
            out = merge_slashes(&out);
        }
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// The part of a `:path` that `paths` are compared with: without the query and the fragment.
///
/// ```
/// assert_eq!(mesh_core::normalize::path_without_query("/a/b?x=1#f"), "/a/b");
/// ```
pub fn path_without_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn contains_encoded_nul(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// `%2F`, `%2f` to `/` and `%5C`, `%5c` to `\` (Envoy's `PathUtil::unescapeSlashes`).
fn unescape_slashes(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            match (b[i + 1], b[i + 2].to_ascii_lowercase()) {
                (b'2', b'f') => {
                    out.push(b'/');
                    i += 3;
                    continue;
                }
                (b'5', b'c') => {
                    out.push(b'\\');
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 normalization as Envoy's `PathUtil::canonicalPath` does it: unreserved characters
/// decoded, `\` read as `/`, dot segments removed (never above the root).
fn canonicalize(path: &str) -> String {
    let b = path.as_bytes();
    let mut decoded = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex))
        {
            let c = h * 16 + l;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                decoded.push(c);
                i += 3;
                continue;
            }
        }
        decoded.push(if b[i] == b'\\' { b'/' } else { b[i] });
        i += 1;
    }
    let text = String::from_utf8_lossy(&decoded);
    let segments: Vec<&str> = text.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if n == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if n == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut result = String::with_capacity(path.len());
    for s in &out {
        result.push('/');
        result.push_str(s);
    }
    if result.is_empty() {
        result.push('/');
    }
    result
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments() {
        let n = |p| canonicalize(p);
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/a/b/."), "/a/b/");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/../../a"), "/a");
        assert_eq!(n("/a/%2e%2E/b"), "/b");
        assert_eq!(n("/"), "/");
    }
}
