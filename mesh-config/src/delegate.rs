//! VirtualService delegation (`http[].delegate`), merged the way Istio merges it
//! (istio/istio `pilot/pkg/model/virtualservice.go`: `mergeHTTPRoutes`).
//!
//! A root rule that delegates is replaced by the delegate VirtualService's rules, in order. Each
//! delegate rule keeps its own fields and takes the root rule's `rewrite`, `directResponse`,
//! `timeout`, `retries`, `fault`, mirrors, `corsPolicy` and `headers` where it sets none; its name
//! becomes `root-delegate`. Its matches are combined with the root rule's: every delegate match
//! must fall inside at least one root match (a prefix under the root's prefix, the same exact
//! value, ...), and is narrowed by each root match it does not conflict with (fields the delegate
//! leaves unset come from the root match). A delegate rule with a match that fits no root match is
//! dropped, as Istio drops it. Only one level of delegation is followed (Istio's limit); the
//! delegate must have no `hosts` and be exported to the root's namespace.

use crate::types::virtual_service as vs;

/// The rules that replace root rule `root` delegating to `delegate` (of namespace
/// `delegate_namespace`, whose short destination hosts are qualified there).
pub(crate) fn merge_routes(
    root: &vs::HttpRoute,
    delegate: &vs::VirtualService,
    delegate_namespace: &str,
    domain: &str,
) -> Vec<vs::HttpRoute> {
    delegate
        .http
        .iter()
        .filter(|d| d.delegate.is_none())
        .filter_map(|d| {
            let mut d = d.clone();
            qualify_destinations(&mut d, delegate_namespace, domain);
            merge_route(root, d)
        })
        .collect()
}

fn qualify_destinations(route: &mut vs::HttpRoute, namespace: &str, domain: &str) {
    let qualify = |host: &mut String| *host = mesh_core::host::qualify(host, namespace, domain);
    for rd in &mut route.route {
        if let Some(d) = rd.destination.as_mut() {
            qualify(&mut d.host);
        }
    }
    if let Some(m) = route.mirror.as_mut() {
        qualify(&mut m.host);
    }
    for m in &mut route.mirrors {
        if let Some(d) = m.destination.as_mut() {
            qualify(&mut d.host);
        }
    }
}

fn merge_route(root: &vs::HttpRoute, mut d: vs::HttpRoute) -> Option<vs::HttpRoute> {
    d.matches = merge_matches(&root.matches, &d.matches)?;
    d.name = match (&root.name, d.name.take()) {
        (Some(r), Some(n)) if !r.is_empty() && !n.is_empty() => Some(format!("{r}-{n}")),
        (r, n) => n.filter(|n| !n.is_empty()).or_else(|| r.clone()),
    };
    fn inherit<T: Clone>(field: &mut Option<T>, root: &Option<T>) {
        if field.is_none() {
            field.clone_from(root);
        }
    }
    inherit(&mut d.rewrite, &root.rewrite);
    inherit(&mut d.direct_response, &root.direct_response);
    inherit(&mut d.timeout, &root.timeout);
    inherit(&mut d.retries, &root.retries);
    inherit(&mut d.fault, &root.fault);
    inherit(&mut d.mirror, &root.mirror);
    inherit(&mut d.mirror_percent, &root.mirror_percent);
    inherit(&mut d.mirror_percent_proto, &root.mirror_percent_proto);
    inherit(&mut d.mirror_percentage, &root.mirror_percentage);
    inherit(&mut d.cors_policy, &root.cors_policy);
    inherit(&mut d.headers, &root.headers);
    if d.mirrors.is_empty() {
        d.mirrors.clone_from(&root.mirrors);
    }
    Some(d)
}

/// Combined matches, or `None` when a delegate match fits no root match (a conflict).
fn merge_matches(
    root: &[vs::HttpMatchRequest],
    delegate: &[vs::HttpMatchRequest],
) -> Option<Vec<vs::HttpMatchRequest>> {
    if root.is_empty() {
        return Some(delegate.to_vec());
    }
    if delegate.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for leaf in delegate {
        let merged: Vec<vs::HttpMatchRequest> =
            root.iter().filter(|r| !conflicts(r, leaf)).map(|r| merge_match(r, leaf)).collect();
        if merged.is_empty() {
            return None;
        }
        out.extend(merged);
    }
    Some(out)
}

fn merge_match(root: &vs::HttpMatchRequest, leaf: &vs::HttpMatchRequest) -> vs::HttpMatchRequest {
    let mut out = leaf.clone();
    out.name = match (&root.name, out.name.take()) {
        (Some(r), Some(n)) if !r.is_empty() && !n.is_empty() => Some(format!("{r}-{n}")),
        (r, n) => n.filter(|n| !n.is_empty()).or_else(|| r.clone()),
    };
    for (field, from) in [
        (&mut out.uri, &root.uri),
        (&mut out.scheme, &root.scheme),
        (&mut out.method, &root.method),
        (&mut out.authority, &root.authority),
    ] {
        if field.is_none() {
            field.clone_from(from);
        }
    }
    for (field, from) in [
        (&mut out.headers, &root.headers),
        (&mut out.query_params, &root.query_params),
        (&mut out.without_headers, &root.without_headers),
    ] {
        for (k, v) in from {
            field.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if out.port.is_none_or(|p| p == 0) {
        out.port = root.port;
    }
    for (k, v) in &root.source_labels {
        out.source_labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if out.source_namespace.as_deref().is_none_or(str::is_empty) {
        out.source_namespace.clone_from(&root.source_namespace);
    }
    if out.gateways.is_empty() {
        out.gateways.clone_from(&root.gateways);
    }
    out
}

/// Does a delegate match reach outside a root match (Istio's `hasConflict`)?
fn conflicts(root: &vs::HttpMatchRequest, leaf: &vs::HttpMatchRequest) -> bool {
    let pairs = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    if pairs.iter().any(|(r, l)| string_conflict(r.as_ref(), l.as_ref())) {
        return true;
    }
    let keyed = [
        (&root.headers, &leaf.headers),
        (&root.without_headers, &leaf.without_headers),
        (&root.query_params, &leaf.query_params),
    ];
    for (r, l) in keyed {
        if l.iter().any(|(k, lv)| string_conflict(r.get(k).and_then(Option::as_ref), lv.as_ref())) {
            return true;
        }
    }
    if root.ignore_uri_case != leaf.ignore_uri_case {
        return true;
    }
    if let (Some(r), Some(l)) = (root.port.filter(|p| *p > 0), leaf.port.filter(|p| *p > 0))
        && r != l
    {
        return true;
    }
    if let Some(r) = root.source_namespace.as_deref().filter(|s| !s.is_empty())
        && leaf.source_namespace.as_deref() != Some(r)
    {
        return true;
    }
    if leaf.source_labels.iter().any(|(k, v)| root.source_labels.get(k).is_some_and(|rv| rv != v)) {
        return true;
    }
    if !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && leaf.gateways.iter().any(|g| !root.gateways.contains(g))
    {
        return true;
    }
    false
}

/// Istio's `stringMatchConflict`: may `leaf` match something `root` does not?
fn string_conflict(root: Option<&vs::StringMatch>, leaf: Option<&vs::StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else { return false };
    let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
    if set(&root.regex) && (set(&leaf.regex) || set(&leaf.prefix) || set(&leaf.exact)) {
        return true;
    }
    if set(&leaf.regex) && (set(&root.regex) || set(&root.prefix) || set(&root.exact)) {
        return true;
    }
    if let Some(exact) = root.exact.as_deref().filter(|v| !v.is_empty()) {
        return set(&leaf.prefix) || leaf.exact.as_deref() != Some(exact);
    }
    if let Some(prefix) = root.prefix.as_deref().filter(|v| !v.is_empty()) {
        if let Some(p) = leaf.prefix.as_deref().filter(|v| !v.is_empty()) {
            return !p.starts_with(prefix);
        }
        if let Some(e) = leaf.exact.as_deref().filter(|v| !v.is_empty()) {
            return !e.starts_with(prefix);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> Option<vs::StringMatch> {
        Some(vs::StringMatch { prefix: Some(p.to_string()), ..Default::default() })
    }

    fn exact(e: &str) -> Option<vs::StringMatch> {
        Some(vs::StringMatch { exact: Some(e.to_string()), ..Default::default() })
    }

    #[test]
    fn string_matches_must_nest() {
        assert!(!string_conflict(prefix("/api").as_ref(), prefix("/api/v1").as_ref()));
        assert!(string_conflict(prefix("/api/v1").as_ref(), prefix("/api").as_ref()));
        assert!(!string_conflict(prefix("/api").as_ref(), exact("/api/x").as_ref()));
        assert!(string_conflict(exact("/a").as_ref(), prefix("/a").as_ref()));
        assert!(!string_conflict(exact("/a").as_ref(), exact("/a").as_ref()));
        assert!(!string_conflict(None, exact("/a").as_ref()));
        assert!(!string_conflict(prefix("/a").as_ref(), None));
        let regex = Some(vs::StringMatch { regex: Some("/a.*".to_string()), ..Default::default() });
        assert!(string_conflict(regex.as_ref(), prefix("/a").as_ref()));
    }
}
