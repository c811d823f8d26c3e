//! `mesh explain`: what the configuration means for one request.
//!
//! The JSON output is a public contract (`../shared/DESIGN.md`): every key is always present,
//! `null` where it does not apply; durations print as seconds with an `s` suffix.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use mesh_core::route::{AbortStatus, HeaderEdits, HeaderOps, HttpRule, RetryPolicy, RouteAction};
use mesh_core::router::{RuleTrace, redirect_location, rewrite_path, trace_rules};
use mesh_core::{Binding, ClientIdentity, RequestView, RouteDecision, Snapshot};
use serde_json::{Map, Value, json};

/// Seconds with an `s` suffix, trailing zeros trimmed: `0.5s`, `7s`, `0.025s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        return format!("{secs}s");
    }
    let frac = format!("{frac:09}");
    format!("{secs}.{}s", frac.trim_end_matches('0'))
}

fn ops_json(ops: &HeaderOps) -> Value {
    // Values with Envoy `%VARIABLES%` show as written (they are expanded per request).
    let map = |pairs: &[(http::HeaderName, http::HeaderValue)], append: bool| -> Value {
        let mut out: Map<String, Value> =
            pairs.iter().map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or("")))).collect();
        for f in ops.formatted.iter().filter(|f| f.append == append) {
            out.insert(f.name.as_str().to_string(), json!(f.format.source()));
        }
        Value::Object(out)
    };
    json!({
        "set": map(&ops.set, false),
        "add": map(&ops.add, true),
        "remove": ops.remove.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>(),
    })
}

fn edits_json(edits: &HeaderEdits) -> Value {
    json!({"request": ops_json(&edits.request), "response": ops_json(&edits.response)})
}

fn retries_json(r: &RetryPolicy) -> Value {
    if r.attempts == 0 {
        return Value::Null;
    }
    let mut on = r.retry_on.to_istio_string();
    if r.configured {
        for code in r.retry_on.status_codes.iter() {
            let _ = write!(on, ",{code}");
        }
    }
    json!({
        "attempts": r.attempts,
        "perTryTimeout": r.per_try_timeout.map(format_duration),
        "retryOn": on,
    })
}

fn fault_json(rule: &HttpRule) -> Value {
    let Some(f) = &rule.fault else { return Value::Null };
    json!({
        "delay": f.delay.map(|(d, p)| json!({"fixedDelay": format_duration(d), "percentage": p.0})),
        "abort": f.abort.as_ref().map(|(status, p)| match status {
            AbortStatus::Http(code) => json!({"httpStatus": code, "grpcStatus": null, "percentage": p.0}),
            AbortStatus::Grpc(name) => json!({"httpStatus": null, "grpcStatus": &**name, "percentage": p.0}),
        }),
    })
}

/// The JSON explanation of routing `req` from `client` under `binding`.
pub(crate) fn explain_json(
    snapshot: &Snapshot,
    binding: &Binding,
    req: &RequestView<'_>,
    client: &ClientIdentity,
) -> Value {
    let decision = snapshot.route(binding, req, client);
    let mut out = Map::new();
    out.insert("host".into(), json!(decision.host()));
    let empty_headers = edits_json(&HeaderEdits::default());
    match &decision {
        RouteDecision::Default { host } => {
            out.insert("action".into(), json!("route"));
            out.insert("status".into(), Value::Null);
            out.insert("route".into(), Value::Null);
            out.insert(
                "destinations".into(),
                json!([{"host": host, "subset": null, "port": null, "weight": 100, "headers": null}]),
            );
            for key in ["redirect", "directResponse", "rewrite", "timeout", "fault"] {
                out.insert(key.into(), Value::Null);
            }
            out.insert("retries".into(), retries_json(&RetryPolicy::istio_default()));
            out.insert("mirrors".into(), json!([]));
            out.insert("headers".into(), empty_headers);
        }
        RouteDecision::NoRoute { .. } => {
            out.insert("action".into(), json!("noRoute"));
            out.insert("status".into(), json!(404));
            out.insert("route".into(), Value::Null);
            out.insert("destinations".into(), json!([]));
            for key in ["redirect", "directResponse", "rewrite", "timeout", "retries", "fault"] {
                out.insert(key.into(), Value::Null);
            }
            out.insert("mirrors".into(), json!([]));
            out.insert("headers".into(), empty_headers);
        }
        RouteDecision::Matched { rule, request_match, .. } => {
            let action = match &rule.action {
                RouteAction::Route(_) | RouteAction::Delegate { .. } => "route",
                RouteAction::Redirect(_) => "redirect",
                RouteAction::DirectResponse(_) => "directResponse",
            };
            out.insert("action".into(), json!(action));
            out.insert("status".into(), Value::Null);
            out.insert(
                "route".into(),
                json!({
                    "kind": "VirtualService",
                    "namespace": &*rule.origin.namespace,
                    "name": &*rule.origin.name,
                    "rule": rule.origin.index,
                    "ruleName": rule.name.as_deref(),
                    "match": request_match.map(|m| m.index),
                }),
            );
            let destinations: Vec<Value> = match &rule.action {
                RouteAction::Route(w) => w
                    .destinations()
                    .iter()
                    .filter(|d| d.weight > 0)
                    .map(|d| {
                        json!({
                            "host": &*d.destination.host,
                            "subset": d.destination.subset.as_deref(),
                            "port": d.destination.port,
                            "weight": d.weight,
                            "headers": if d.headers.is_empty() { Value::Null } else { edits_json(&d.headers) },
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            out.insert("destinations".into(), Value::Array(destinations));
            out.insert(
                "redirect".into(),
                match &rule.action {
                    RouteAction::Redirect(r) => {
                        json!({"status": r.code, "location": redirect_location(r, req, *request_match)})
                    }
                    _ => Value::Null,
                },
            );
            out.insert(
                "directResponse".into(),
                match &rule.action {
                    RouteAction::DirectResponse(d) => json!({
                        "status": d.status,
                        "body": d.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
                    }),
                    _ => Value::Null,
                },
            );
            out.insert(
                "rewrite".into(),
                match &rule.rewrite {
                    Some(rw) => {
                        let path = rewrite_path(rw, req.path, *request_match).unwrap_or_else(|| req.path.to_string());
                        let path = match req.query {
                            Some(q) => format!("{path}?{q}"),
                            None => path,
                        };
                        json!({"path": path, "authority": rw.authority.as_deref()})
                    }
                    None => Value::Null,
                },
            );
            out.insert("timeout".into(), rule.timeout.map(format_duration).map_or(Value::Null, Value::String));
            let routes = matches!(rule.action, RouteAction::Route(_));
            out.insert("retries".into(), if routes { retries_json(&rule.retries) } else { Value::Null });
            out.insert("fault".into(), fault_json(rule));
            out.insert(
                "mirrors".into(),
                Value::Array(
                    rule.mirrors
                        .iter()
                        .map(|m| {
                            json!({
                                "host": &*m.destination.host,
                                "subset": m.destination.subset.as_deref(),
                                "port": m.destination.port,
                                "percentage": m.percentage.0,
                            })
                        })
                        .collect(),
                ),
            );
            out.insert("headers".into(), edits_json(&rule.headers));
        }
    }
    Value::Object(out)
}

/// A readable explanation: which VirtualService applies, and why each rule did or did not match.
pub(crate) fn explain_text(
    snapshot: &Snapshot,
    binding: &Binding,
    req: &RequestView<'_>,
    client: &ClientIdentity,
) -> String {
    let json = explain_json(snapshot, binding, req, client);
    let decision = snapshot.route(binding, req, client);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}://{}{} (client namespace {}, via {binding})",
        req.method, req.scheme, req.authority, req.path, client.namespace
    );
    let _ = writeln!(out, "host: {}", decision.host());
    let vh = match &decision {
        RouteDecision::Default { host } => {
            let _ = writeln!(
                out,
                "no VirtualService for this host: the request goes to {host} itself (Istio's default retries apply)"
            );
            return out;
        }
        RouteDecision::NoRoute { virtual_host, .. } | RouteDecision::Matched { virtual_host, .. } => virtual_host,
    };
    let _ = writeln!(out, "virtual host {}: {} rules", vh.pattern, vh.rules.len());
    for (i, trace) in trace_rules(vh, req, client) {
        let rule = &vh.rules[i];
        let name = rule.name.as_deref().map(|n| format!(" {n:?}")).unwrap_or_default();
        let origin = format!("{}/{} http[{}]{name}", rule.origin.namespace, rule.origin.name, rule.origin.index);
        match trace {
            RuleTrace::CatchAll => {
                let _ = writeln!(out, "  {origin}: matches (no match conditions)");
            }
            RuleTrace::Matched(j) => {
                let _ = writeln!(out, "  {origin}: match[{j}] matches");
            }
            RuleTrace::NotMatched(misses) => {
                let why: Vec<String> = misses.iter().map(|(j, m)| format!("match[{j}]: {m}")).collect();
                let _ = writeln!(out, "  {origin}: no ({})", why.join("; "));
            }
        }
    }
    match json["action"].as_str() {
        Some("noRoute") => {
            let _ = writeln!(out, "=> no rule matched: 404 (NR)");
        }
        Some("redirect") => {
            let _ = writeln!(
                out,
                "=> redirect {} to {}",
                json["redirect"]["status"],
                json["redirect"]["location"].as_str().unwrap_or("")
            );
        }
        Some("directResponse") => {
            let _ = writeln!(out, "=> respond {}", json["directResponse"]["status"]);
        }
        _ => {
            let dests: Vec<String> = json["destinations"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .map(|d| {
                            let subset = d["subset"].as_str().map(|s| format!(" subset {s}")).unwrap_or_default();
                            format!("{}{subset} (weight {})", d["host"].as_str().unwrap_or(""), d["weight"])
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(out, "=> route to {}", dests.join(", "));
        }
    }
    let mut extras: BTreeMap<&str, String> = BTreeMap::new();
    for key in ["timeout", "retries", "fault", "rewrite"] {
        if !json[key].is_null() {
            extras.insert(key, json[key].to_string());
        }
    }
    for (k, v) in extras {
        let _ = writeln!(out, "   {k}: {v}");
    }
    out
}

/// The JSON explanation of a connection to `port` of Gateway `binding` (`tcp://` or, with the
/// ClientHello's server name `sni`, `tls://`): the keys of [`explain_json`], with `action`
/// `route` or `noRoute` (`status` stays `null`: a connection has no status; an unrouted one is
/// closed), `route.section` `tcp` or `tls` and `route.rule` the index in that list.
pub(crate) fn explain_l4_json(snapshot: &Snapshot, binding: &Binding, port: u16, sni: Option<&str>) -> Value {
    let route = snapshot.l4_server(binding, port).and_then(|s| s.route(sni));
    let mut out = Map::new();
    out.insert("host".into(), json!(sni));
    out.insert("action".into(), json!(if route.is_some() { "route" } else { "noRoute" }));
    out.insert("status".into(), Value::Null);
    match route {
        Some(r) => {
            let (namespace, name) = r.virtual_service.split_once('/').unwrap_or(("", &r.virtual_service));
            let section = match r.kind {
                mesh_core::l4::L4Kind::Tcp => "tcp",
                mesh_core::l4::L4Kind::Tls => "tls",
            };
            out.insert(
                "route".into(),
                json!({"kind": "VirtualService", "namespace": namespace, "name": name, "section": section,
                       "rule": r.rule, "ruleName": null, "match": null}),
            );
            let destinations: Vec<Value> = r
                .destinations
                .destinations()
                .iter()
                .filter(|d| d.weight > 0)
                .map(|d| {
                    json!({"host": &*d.destination.host, "subset": d.destination.subset.as_deref(),
                           "port": d.destination.port, "weight": d.weight, "headers": null})
                })
                .collect();
            out.insert("destinations".into(), json!(destinations));
        }
        None => {
            out.insert("route".into(), Value::Null);
            out.insert("destinations".into(), json!([]));
        }
    }
    for key in ["redirect", "directResponse", "rewrite", "timeout", "retries", "fault"] {
        out.insert(key.into(), Value::Null);
    }
    out.insert("mirrors".into(), json!([]));
    out.insert("headers".into(), edits_json(&HeaderEdits::default()));
    Value::Object(out)
}

/// The text explanation of a connection (see [`explain_l4_json`]).
pub(crate) fn explain_l4_text(snapshot: &Snapshot, binding: &Binding, port: u16, sni: Option<&str>) -> String {
    let mut out = String::new();
    let what = match sni {
        Some(name) => format!("TLS connection for {name}"),
        None => "TCP connection".to_string(),
    };
    let _ = writeln!(out, "{what} to port {port} (via {binding})");
    let Some(server) = snapshot.l4_server(binding, port) else {
        let _ = writeln!(out, "=> closed: {binding} has no plain TCP or TLS passthrough server on port {port}");
        return out;
    };
    let Some(route) = server.route(sni) else {
        let reason = match server {
            mesh_core::l4::L4Server::Tcp(_) => "no tcp[] rule of a VirtualService bound to it holds on this port",
            mesh_core::l4::L4Server::Sni(_) if sni.is_none() => "a passthrough server needs a server name (SNI)",
            mesh_core::l4::L4Server::Sni(_) => "no tls[] rule lists this server name",
        };
        let _ = writeln!(out, "=> closed: {reason}");
        return out;
    };
    let section = match route.kind {
        mesh_core::l4::L4Kind::Tcp => "tcp",
        mesh_core::l4::L4Kind::Tls => "tls",
    };
    let _ = writeln!(out, "  {} {section}[{}]", route.virtual_service, route.rule);
    for d in route.destinations.destinations().iter().filter(|d| d.weight > 0) {
        let subset = d.destination.subset.as_deref().map(|s| format!(" subset {s}")).unwrap_or_default();
        let port = d.destination.port.map(|p| format!(" port {p}")).unwrap_or_default();
        let _ = writeln!(out, "=> forward to {}{subset}{port} (weight {})", d.destination.host, d.weight);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_seconds() {
        assert_eq!(format_duration(Duration::from_millis(500)), "0.5s");
        assert_eq!(format_duration(Duration::from_secs(7)), "7s");
        assert_eq!(format_duration(Duration::from_millis(25)), "0.025s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
