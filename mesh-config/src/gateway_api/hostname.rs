//! Host names in the Gateway API: a listener's `hostname` and a route's `hostnames[]` intersect
//! (<https://gateway-api.sigs.k8s.io/reference/spec/#httproutespec>, `hostnames`): a route attaches
//! to a listener only under the names both accept, and serves requests for those names only.
//!
//! A wildcard `*.example.com` stands for one or more labels before `.example.com` (not for
//! `example.com` itself). An absent listener hostname, or a route without `hostnames`, accepts
//! every name; a route under such a listener keeps its own names.

/// Does the wildcard or exact name `pattern` accept `name` (an exact name)?
fn accepts(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
        None => pattern == name,
    }
}

/// The names a listener with `listener` hostname and a route with `route` host names both accept,
/// as patterns: the more specific of each intersecting pair. An empty result means the route does
/// not attach to the listener (`NoMatchingListenerHostname`). `["*"]` means every name.
///
/// ```
/// use mesh_config::gateway_api::intersect_hostnames;
/// let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// assert_eq!(intersect_hostnames(Some("*.example.com"), &names(&["foo.example.com", "bar.com"])), names(&["foo.example.com"]));
/// assert_eq!(intersect_hostnames(Some("foo.example.com"), &names(&["*.example.com"])), names(&["foo.example.com"]));
/// assert_eq!(intersect_hostnames(None, &[]), names(&["*"]));
/// assert!(intersect_hostnames(Some("a.example.com"), &names(&["b.example.com"])).is_empty());
/// ```
pub fn intersect_hostnames(listener: Option<&str>, route: &[String]) -> Vec<String> {
    let listener = listener.filter(|l| !l.is_empty() && *l != "*").map(|l| l.to_ascii_lowercase());
    let route: Vec<String> = route.iter().map(|h| h.to_ascii_lowercase()).collect();
    let Some(listener) = listener else {
        return if route.is_empty() { vec!["*".to_string()] } else { dedup(route) };
    };
    if route.is_empty() {
        return vec![listener];
    }
    let mut out = Vec::new();
    for r in route {
        let both_wild = listener.starts_with('*') && r.starts_with('*');
        let picked = if r == listener {
            Some(r)
        } else if both_wild {
            // The longer wildcard is inside the shorter one when it ends with its suffix.
            if r.len() > listener.len() && r.ends_with(&listener[1..]) {
                Some(r)
            } else if listener.len() > r.len() && listener.ends_with(&r[1..]) {
                Some(listener.clone())
            } else {
                None
            }
        } else if accepts(&listener, &r) {
            Some(r)
        } else if accepts(&r, &listener) {
            Some(listener.clone())
        } else {
            None
        };
        out.extend(picked);
    }
    dedup(out)
}

fn dedup(mut names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// The cases of the conformance test `HTTPRouteHostnameIntersection` and the spec's examples.
    #[test]
    fn intersections() {
        let cases: &[(Option<&str>, &[&str], &[&str])] = &[
            (Some("very.specific.com"), &["non.matching.com", "*.nonmatchingwildcard.io"], &[]),
            (Some("very.specific.com"), &["very.specific.com"], &["very.specific.com"]),
            (Some("very.specific.com"), &["*.specific.com"], &["very.specific.com"]),
            (
                Some("*.wildcard.io"),
                &["bar.wildcard.io", "foo.bar.wildcard.io", "wildcard.io"],
                &["bar.wildcard.io", "foo.bar.wildcard.io"],
            ),
            (Some("*.anotherwildcard.io"), &["*.anotherwildcard.io"], &["*.anotherwildcard.io"]),
            (Some("*.example.com"), &["*.foo.example.com"], &["*.foo.example.com"]),
            (Some("*.foo.example.com"), &["*.example.com"], &["*.foo.example.com"]),
            (Some("*.example.com"), &["*.example.org"], &[]),
            (None, &["Foo.Example.com"], &["foo.example.com"]),
            (Some("Foo.Example.com"), &[], &["foo.example.com"]),
        ];
        for (listener, route, want) in cases {
            assert_eq!(intersect_hostnames(*listener, &v(route)), v(want), "{listener:?} x {route:?}");
        }
    }
}
