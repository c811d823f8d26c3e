//! Route filters and backend references, as the HTTPRoute CRD's schema and CEL rules check them
//! (shared by HTTPRoute and GRPCRoute).

use super::{Out, valid_header_name, valid_hostname};
use crate::types::gateway_api::{HttpBackendRef, HttpCorsFilter, HttpPathModifier, HttpRouteFilter};

fn path_modifier(out: &mut Out, path: &str, m: &HttpPathModifier) {
    match m.kind.as_str() {
        "ReplaceFullPath" => {
            if m.replace_full_path.is_none() {
                out.push(path, "replaceFullPath must be specified when type is set to 'ReplaceFullPath'");
            }
            if m.replace_prefix_match.is_some() {
                out.push(path, "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set");
            }
        }
        "ReplacePrefixMatch" => {
            if m.replace_prefix_match.is_none() {
                out.push(path, "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'");
            }
            if m.replace_full_path.is_some() {
                out.push(path, "type must be 'ReplaceFullPath' when replaceFullPath is set");
            }
        }
        other => out.push(
            format!("{path}.type"),
            format!("Unsupported value: {other:?}: supported values: \"ReplaceFullPath\", \"ReplacePrefixMatch\""),
        ),
    }
}

fn cors(out: &mut Out, path: &str, c: &HttpCorsFilter) {
    let star_alone = |items: &[String]| !(items.len() > 1 && items.iter().any(|i| i == "*"));
    if !star_alone(&c.allow_origins) {
        out.push(format!("{path}.allowOrigins"), "AllowOrigins cannot contain '*' alongside other origins");
    }
    if !star_alone(&c.allow_methods) {
        out.push(format!("{path}.allowMethods"), "AllowMethods cannot contain '*' alongside other methods");
    }
    if !star_alone(&c.allow_headers) {
        out.push(format!("{path}.allowHeaders"), "AllowHeaders cannot contain '*' alongside other methods");
    }
    const METHODS: [&str; 10] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"];
    for (i, m) in c.allow_methods.iter().enumerate() {
        if !METHODS.contains(&m.as_str()) {
            out.push(format!("{path}.allowMethods[{i}]"), format!("Unsupported value: {m:?}"));
        }
    }
    if let Some(age) = c.max_age
        && age < 1
    {
        out.push(format!("{path}.maxAge"), "should be greater than or equal to 1");
    }
}

/// The filter `type`s of the standard channel, and the field each one needs.
const FILTERS: [(&str, &str); 7] = [
    ("RequestHeaderModifier", "requestHeaderModifier"),
    ("ResponseHeaderModifier", "responseHeaderModifier"),
    ("RequestMirror", "requestMirror"),
    ("RequestRedirect", "requestRedirect"),
    ("URLRewrite", "urlRewrite"),
    ("CORS", "cors"),
    ("ExtensionRef", "extensionRef"),
];

pub(super) fn filters(out: &mut Out, path: &str, filters: &[HttpRouteFilter]) {
    out.max_items(path, filters, 16);
    for (i, f) in filters.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let set = [
            ("requestHeaderModifier", f.request_header_modifier.is_some()),
            ("responseHeaderModifier", f.response_header_modifier.is_some()),
            ("requestMirror", f.request_mirror.is_some()),
            ("requestRedirect", f.request_redirect.is_some()),
            ("urlRewrite", f.url_rewrite.is_some()),
            ("cors", f.cors.is_some()),
            ("extensionRef", f.extension_ref.is_some()),
        ];
        let Some((_, field)) = FILTERS.iter().find(|(t, _)| *t == f.kind) else {
            out.push(format!("{p}.type"), format!("Unsupported value: {:?}", f.kind));
            continue;
        };
        for (name, present) in set {
            if name == *field && !present {
                out.push(&p, format!("filter.{name} must be specified for {} filter.type", f.kind));
            } else if name != *field && present {
                let owner = FILTERS.iter().find(|(_, n)| *n == name).map_or("", |(t, _)| *t);
                out.push(&p, format!("filter.{name} must be nil if the filter.type is not {owner}"));
            }
        }
        if let Some(r) = &f.request_redirect {
            if let Some(s) = &r.scheme
                && !matches!(s.as_str(), "http" | "https")
            {
                out.push(
                    format!("{p}.requestRedirect.scheme"),
                    format!("Unsupported value: {s:?}: supported values: \"http\", \"https\""),
                );
            }
            if let Some(c) = r.status_code
                && ![301, 302, 303, 307, 308].contains(&c)
            {
                out.push(
                    format!("{p}.requestRedirect.statusCode"),
                    format!("Unsupported value: {c}: supported values: 301, 302, 303, 307, 308"),
                );
            }
            if let Some(h) = &r.hostname
                && !valid_hostname(h)
            {
                out.push(format!("{p}.requestRedirect.hostname"), format!("{h:?} is not a valid host name"));
            }
            if let Some(port) = r.port
                && !(1..=65535).contains(&port)
            {
                out.push(format!("{p}.requestRedirect.port"), "must be between 1 and 65535");
            }
            if let Some(m) = &r.path {
                path_modifier(out, &format!("{p}.requestRedirect.path"), m);
            }
        }
        if let Some(u) = &f.url_rewrite {
            if let Some(h) = &u.hostname
                && !valid_hostname(h)
            {
                out.push(format!("{p}.urlRewrite.hostname"), format!("{h:?} is not a valid host name"));
            }
            if let Some(m) = &u.path {
                path_modifier(out, &format!("{p}.urlRewrite.path"), m);
            }
        }
        if let Some(m) = &f.request_mirror {
            if m.percent.is_some() && m.fraction.is_some() {
                out.push(
                    format!("{p}.requestMirror"),
                    "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter",
                );
            }
            if let Some(pc) = m.percent
                && !(0..=100).contains(&pc)
            {
                out.push(format!("{p}.requestMirror.percent"), "must be between 0 and 100");
            }
            if let Some(fr) = &m.fraction
                && (fr.numerator < 0
                    || fr.numerator > fr.denominator.unwrap_or(100)
                    || fr.denominator.unwrap_or(100) < 1)
            {
                out.push(format!("{p}.requestMirror.fraction"), "numerator must be less than or equal to denominator");
            }
            if m.backend_ref.kind.as_deref().unwrap_or("Service") == "Service" && m.backend_ref.port.is_none() {
                out.push(format!("{p}.requestMirror.backendRef"), "Must have port for Service reference");
            }
        }
        if let Some(c) = &f.cors {
            cors(out, &format!("{p}.cors"), c);
        }
        for h in [&f.request_header_modifier, &f.response_header_modifier].into_iter().flatten() {
            let field =
                if f.request_header_modifier.is_some() { "requestHeaderModifier" } else { "responseHeaderModifier" };
            for (list, items) in [("set", &h.set), ("add", &h.add)] {
                for (j, item) in items.iter().enumerate() {
                    if !valid_header_name(&item.name) {
                        out.push(
                            format!("{p}.{field}.{list}[{j}].name"),
                            format!("{:?} is not a valid header name", item.name),
                        );
                    }
                    // Istio's conversion refuses such a filter (`isValidHeaderValue`): tab, or
                    // visible characters and spaces, no DEL.
                    if !item.value.bytes().all(|c| c == b'\t' || (c >= 0x20 && c != 0x7f)) {
                        out.push(
                            format!("{p}.{field}.{list}[{j}].value"),
                            format!("header {:?} value contains invalid characters", item.name),
                        );
                    }
                }
            }
        }
    }
    let count = |t: &str| filters.iter().filter(|f| f.kind == t).count();
    for t in ["CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"] {
        if count(t) > 1 {
            out.push(path, format!("{t} filter cannot be repeated"));
        }
    }
    if count("RequestRedirect") > 0 && count("URLRewrite") > 0 {
        out.push(
            path,
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both",
        );
    }
}

pub(super) fn backend_refs(out: &mut Out, path: &str, refs: &[HttpBackendRef]) {
    out.max_items(path, refs, 16);
    for (i, b) in refs.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if b.name.is_empty() {
            out.push(format!("{p}.name"), "Required value");
        }
        if b.kind.as_deref().unwrap_or("Service") == "Service"
            && b.group.as_deref().unwrap_or("").is_empty()
            && b.port.is_none()
        {
            out.push(&p, "Must have port for Service reference");
        }
        if let Some(port) = b.port
            && !(1..=65535).contains(&port)
        {
            out.push(format!("{p}.port"), "must be between 1 and 65535");
        }
        if let Some(w) = b.weight
            && !(0..=1_000_000).contains(&w)
        {
            out.push(format!("{p}.weight"), "must be between 0 and 1000000");
        }
        filters(out, &format!("{p}.filters"), &b.filters);
    }
}
