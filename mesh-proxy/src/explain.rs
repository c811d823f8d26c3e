//! `mesh explain`: what the configuration means for one request, and the one JSON serializer of
//! decisions and compiled rules (`/config_dump` uses it too).
//!
//! Explain prints the [`Decision`] mesh-core makes ([`Snapshot::decide`]) — the same value the
//! route layer applies in `mesh proxy` and in-process clients — so the two cannot disagree.
//!
//! The JSON output is a public contract (scripts read it): every key is always present,
//! `null` where it does not apply; durations print as seconds with an `s` suffix. Beyond the
//! keys DESIGN.md lists: `flags` (Envoy's response flag of a local answer: `NR`, or `-`),
//! `reason` (why the mesh answered itself: `hostNotExposed`, `httpsRedirect`, `noVirtualHost`,
//! `noRule`, `delegate`, `noDestination`, `redirect`, `directResponse`, `blockAll` (a host
//! nothing declares under `REGISTRY_ONLY`: 502), `missingHost` (400), `corsPreflight` (a CORS
//! preflight the rule's `corsPolicy` answers: `action` `directResponse`, status 200, no body),
//! or `connectionClosed` for a Gateway connection that ends before any HTTP), `cors` (what the
//! rule's `corsPolicy` does to this request, `null` when nothing — no policy, no `Origin`, an
//! origin not allowed, an unmatched preflight forwarded: `{"preflight": true, "status": 200,
//! "headers": {name: value}}` for a preflight answered with those headers,
//! `{"preflight": false, "status": null, "headers": {...}}` for a forwarded request whose every
//! response gets those headers, set after the rule's response edits), `port` (the Gateway listener port
//! the request was decided on; `null` for the mesh), and `passthrough` (`true` for a host nothing
//! declares, passed through under `ALLOW_ANY`: no retries, no DestinationRule). For a local answer, `headers.response`
//! holds the edits applied to it (a redirect's or direct response's rule edits) and
//! `headers.request` is empty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use mesh_core::decision::{Decision, Listener, LocalReason};
use mesh_core::route::{
    AbortStatus, Fault, HeaderEdits, HeaderOps, HttpRule, Mirror, RequestMatch, RetryPolicy, RouteAction,
    WeightedDestinations,
};
use mesh_core::router::{RuleTrace, trace_rules};
use mesh_core::{Binding, ClientIdentity, CorsHeaders, RequestView, Snapshot};
use serde_json::{Map, Value, json};

/// Seconds with an `s` suffix, trailing zeros trimmed: `0.5s`, `7s`, `0.025s`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        return format!("{secs}s");
    }
    let frac = format!("{frac:09}");
    format!("{secs}.{}s", frac.trim_end_matches('0'))
}

/// `{"set": {...}, "add": {...}, "remove": [...]}`; values with Envoy `%VARIABLES%` show as
/// written (they are expanded per request).
pub fn header_ops_json(ops: &HeaderOps) -> Value {
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

/// `{"request": ops, "response": ops}`.
pub fn header_edits_json(edits: &HeaderEdits) -> Value {
    json!({"request": header_ops_json(&edits.request), "response": header_ops_json(&edits.response)})
}

/// A retry policy (`null` when retries are off).
pub fn retries_json(r: &RetryPolicy) -> Value {
    if r.attempts == 0 {
        return Value::Null;
    }
    let mut on = r.retry_on.to_istio_string();
    for code in r.retry_on.status_codes.iter() {
        let _ = write!(on, ",{code}");
    }
    json!({
        "attempts": r.attempts,
        "perTryTimeout": r.per_try_timeout.map(format_duration),
        "retryOn": on,
    })
}

/// A fault injection (`null` when none).
pub fn fault_json(fault: Option<&Fault>) -> Value {
    let Some(f) = fault else { return Value::Null };
    json!({
        "delay": f.delay.map(|(d, p)| json!({"fixedDelay": format_duration(d), "percentage": p.0})),
        "abort": f.abort.as_ref().map(|(status, p)| match status {
            AbortStatus::Http(code) => json!({"httpStatus": code, "grpcStatus": null, "percentage": p.0}),
            AbortStatus::Grpc(name) => json!({"httpStatus": null, "grpcStatus": &**name, "percentage": p.0}),
        }),
    })
}

/// Mirrors.
pub fn mirrors_json(mirrors: &[Mirror]) -> Value {
    Value::Array(
        mirrors
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
    )
}

/// Weighted destinations (weight-0 entries left out), each with its own header edits.
pub fn destinations_json(w: &WeightedDestinations) -> Value {
    Value::Array(
        w.destinations()
            .iter()
            .filter(|d| d.weight > 0)
            .map(|d| {
                json!({
                    "host": &*d.destination.host,
                    "subset": d.destination.subset.as_deref(),
                    "port": d.destination.port,
                    "weight": d.weight,
                    "headers": if d.headers.is_empty() { Value::Null } else { header_edits_json(&d.headers) },
                })
            })
            .collect(),
    )
}

/// CORS headers as `{name: value}`.
pub fn cors_headers_json(headers: &CorsHeaders) -> Value {
    Value::Object(headers.iter().map(|(k, v)| (k.as_str().to_string(), json!(v.to_str().unwrap_or("")))).collect())
}

/// The `cors` key of a decision: `{"preflight", "status", "headers"}`, or `null` when CORS does
/// nothing to the request.
pub fn cors_json(decision: &Decision<'_>) -> Value {
    match decision {
        Decision::Local(l) if l.reason == LocalReason::CorsPreflight => json!({
            "preflight": true,
            "status": l.status,
            "headers": l.cors_headers.as_ref().map_or_else(|| json!({}), cors_headers_json),
        }),
        Decision::Forward(f) => match &f.cors_headers {
            Some(h) => json!({"preflight": false, "status": null, "headers": cors_headers_json(h)}),
            None => Value::Null,
        },
        Decision::Local(_) => Value::Null,
    }
}

/// A compiled `corsPolicy` as `/config_dump` shows it (`null` when the rule has none).
pub fn cors_policy_json(policy: Option<&mesh_core::route::CorsPolicy>) -> Value {
    let Some(p) = policy else { return Value::Null };
    let list = |items: &[std::sync::Arc<str>]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    json!({
        "allowOrigins": p.allow_origins.iter().map(|m| match m {
            mesh_core::matcher::StringMatcher::Exact(s) => json!({"exact": &**s}),
            mesh_core::matcher::StringMatcher::Prefix(s) => json!({"prefix": &**s}),
            mesh_core::matcher::StringMatcher::PathPrefix(s) => json!({"pathPrefix": &**s}),
            mesh_core::matcher::StringMatcher::Regex(r) => json!({"regex": r.as_str()}),
        }).collect::<Vec<_>>(),
        "allowMethods": list(&p.allow_methods),
        "allowHeaders": list(&p.allow_headers),
        "exposeHeaders": list(&p.expose_headers),
        "maxAge": p.max_age.map(format_duration),
        "allowCredentials": p.allow_credentials,
        "unmatchedPreflights": if p.forward_unmatched_preflights { "FORWARD" } else { "IGNORE" },
    })
}

/// Where a rule came from: `{"kind", "namespace", "name", "rule", "ruleName", "match"}`.
pub fn rule_origin_json(rule: &HttpRule, request_match: Option<&RequestMatch>) -> Value {
    json!({
        "kind": rule.origin.kind.as_str(),
        "namespace": &*rule.origin.namespace,
        "name": &*rule.origin.name,
        "rule": rule.origin.index,
        "ruleName": rule.name.as_deref(),
        "match": request_match.map(|m| m.index),
    })
}

/// A compiled rule as `/config_dump` shows it: its origin and everything it does, in the keys
/// `mesh explain` uses.
pub fn rule_json(rule: &HttpRule) -> Value {
    let (action, destinations, redirect, direct) = match &rule.action {
        RouteAction::Route(w) => ("route", destinations_json(w), Value::Null, Value::Null),
        RouteAction::Redirect(r) => (
            "redirect",
            json!([]),
            json!({"status": r.code, "uri": r.uri.as_deref(), "authority": r.authority.as_deref(),
                   "scheme": r.scheme.as_deref(), "prefixRewrite": r.prefix_rewrite.as_deref()}),
            Value::Null,
        ),
        RouteAction::DirectResponse(d) => (
            "directResponse",
            json!([]),
            Value::Null,
            json!({"status": d.status, "body": d.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())}),
        ),
        RouteAction::Delegate { namespace, name } => {
            ("delegate", json!([]), json!({"delegate": format!("{namespace}/{name}")}), Value::Null)
        }
    };
    json!({
        // The resource's namespace/name, whatever its kind (the key predates the Gateway API).
        "virtualService": format!("{}/{}", rule.origin.namespace, rule.origin.name),
        "kind": rule.origin.kind.as_str(),
        "rule": rule.origin.index,
        "name": rule.name.as_deref(),
        "action": action,
        "destinations": destinations,
        "redirect": redirect,
        "directResponse": direct,
        "timeout": rule.timeout.map(format_duration),
        "retries": retries_json(&rule.retries),
        "fault": fault_json(rule.fault.as_deref()),
        "mirrors": mirrors_json(&rule.mirrors),
        "headers": header_edits_json(&rule.headers),
        "cors": cors_policy_json(rule.cors.as_deref()),
    })
}

/// The JSON of a [`Decision`] (the contract in the module docs): what `mesh explain -o json`
/// prints, and what the route layer applies.
pub fn decision_json(decision: &Decision<'_>, req: &RequestView<'_>, listener: Option<&Listener>) -> Value {
    let mut out = Map::new();
    out.insert("host".into(), json!(decision.host()));
    let empty_headers = header_edits_json(&HeaderEdits::default());
    match decision {
        Decision::Local(local) => {
            let action = match local.reason {
                LocalReason::Redirect | LocalReason::HttpsRedirect => "redirect",
                _ if local.is_direct() => "directResponse",
                _ => "noRoute",
            };
            out.insert("action".into(), json!(action));
            out.insert("status".into(), if action == "noRoute" { json!(local.status) } else { Value::Null });
            out.insert("route".into(), local.rule.map_or(Value::Null, |r| rule_origin_json(r, local.request_match)));
            out.insert("destinations".into(), json!([]));
            out.insert(
                "redirect".into(),
                match &local.location {
                    Some(location) if action == "redirect" => json!({"status": local.status, "location": location}),
                    _ => Value::Null,
                },
            );
            out.insert(
                "directResponse".into(),
                if action == "directResponse" {
                    json!({"status": local.status, "body": local.body.map(|b| String::from_utf8_lossy(b).into_owned())})
                } else {
                    Value::Null
                },
            );
            for key in ["rewrite", "timeout", "retries", "fault"] {
                out.insert(key.into(), Value::Null);
            }
            out.insert("mirrors".into(), json!([]));
            let response =
                local.response_headers().map_or_else(|| header_ops_json(&HeaderOps::default()), header_ops_json);
            out.insert(
                "headers".into(),
                json!({"request": header_ops_json(&HeaderOps::default()), "response": response}),
            );
            out.insert("flags".into(), json!(local.flags()));
            out.insert("reason".into(), json!(local.reason.as_str()));
            out.insert("passthrough".into(), json!(false));
        }
        Decision::Forward(f) => {
            out.insert("action".into(), json!("route"));
            out.insert("status".into(), Value::Null);
            out.insert("route".into(), f.rule.map_or(Value::Null, |r| rule_origin_json(r, f.request_match)));
            let destinations = match f.rule.map(|r| &r.action) {
                Some(RouteAction::Route(w)) => destinations_json(w),
                _ => {
                    json!([{"host": &*f.destination.host, "subset": null, "port": null, "weight": 100, "headers": null}])
                }
            };
            out.insert("destinations".into(), destinations);
            out.insert("redirect".into(), Value::Null);
            out.insert("directResponse".into(), Value::Null);
            out.insert(
                "rewrite".into(),
                match &f.rewrite {
                    Some(rw) => {
                        let path = rw.path.as_deref().unwrap_or(req.path);
                        let path = match req.query {
                            Some(q) => format!("{path}?{q}"),
                            None => path.to_string(),
                        };
                        json!({"path": path, "authority": rw.authority})
                    }
                    None => Value::Null,
                },
            );
            out.insert("timeout".into(), f.timeout().map(format_duration).map_or(Value::Null, Value::String));
            out.insert("retries".into(), retries_json(f.retries));
            out.insert("fault".into(), fault_json(f.fault()));
            out.insert("mirrors".into(), mirrors_json(f.mirrors()));
            out.insert("headers".into(), f.rule_headers().map_or(empty_headers, header_edits_json));
            out.insert("flags".into(), Value::Null);
            out.insert("reason".into(), Value::Null);
            out.insert("passthrough".into(), json!(f.passthrough));
        }
    }
    out.insert("cors".into(), cors_json(decision));
    out.insert("port".into(), json!(listener.map(|l| l.port)));
    Value::Object(out)
}

/// The JSON explanation of routing `req` from `client` under `binding`, arriving on `listener`
/// (see [`Snapshot::decide`]).
pub fn explain_json(
    snapshot: &Snapshot,
    binding: &Binding,
    listener: Option<&Listener>,
    req: &RequestView<'_>,
    client: &ClientIdentity,
) -> Value {
    let decision = snapshot.decide(binding, listener, req, client, 0);
    decision_json(&decision, req, listener)
}

/// The JSON of a Gateway connection closed before any HTTP (`reason` `connectionClosed`; the
/// other keys as for an unrouted request, `status` `null`: nothing answers).
pub fn closed_json(host: &str, port: u16) -> Value {
    let mut out = Map::new();
    out.insert("host".into(), json!(host));
    out.insert("action".into(), json!("noRoute"));
    for key in
        ["status", "route", "redirect", "directResponse", "rewrite", "timeout", "retries", "fault", "flags", "cors"]
    {
        out.insert(key.into(), Value::Null);
    }
    out.insert("destinations".into(), json!([]));
    out.insert("mirrors".into(), json!([]));
    out.insert("headers".into(), header_edits_json(&HeaderEdits::default()));
    out.insert("reason".into(), json!("connectionClosed"));
    out.insert("passthrough".into(), json!(false));
    out.insert("port".into(), json!(port));
    Value::Object(out)
}

/// A readable explanation: which VirtualService applies, and why each rule did or did not match.
pub fn explain_text(
    snapshot: &Snapshot,
    binding: &Binding,
    listener: Option<&Listener>,
    req: &RequestView<'_>,
    client: &ClientIdentity,
) -> String {
    let mut view = *req;
    if let Some(l) = listener {
        view.listener_port = Some(l.port);
    }
    let req = &view;
    let decision = snapshot.decide(binding, listener, req, client, 0);
    let json = decision_json(&decision, req, listener);
    let mut out = String::new();
    let port = listener.map(|l| format!(", port {}", l.port)).unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {}://{}{} (client namespace {}, via {binding}{port})",
        req.method, req.scheme, req.authority, req.path, client.namespace
    );
    let _ = writeln!(out, "host: {}", decision.host());
    let virtual_host = match &decision {
        Decision::Local(l) => l.virtual_host,
        Decision::Forward(f) => f.virtual_host,
    };
    let Some(vh) = virtual_host else {
        let why = match &decision {
            Decision::Forward(f) if f.passthrough => format!(
                "=> no service declares this host: passed through to {} as named (outbound traffic policy \
                 ALLOW_ANY: no retries, no DestinationRule)",
                f.destination.host
            ),
            Decision::Forward(f) => format!(
                "no VirtualService for this host: the request goes to {} itself (the default retries apply)",
                f.destination.host
            ),
            Decision::Local(l) => match l.reason {
                LocalReason::HostNotExposed => {
                    format!("=> no server of {binding}{port} lists this host: {} ({})", l.status, l.flags())
                }
                LocalReason::HttpsRedirect => format!(
                    "=> the server has tls.httpsRedirect: redirect {} to {}",
                    l.status,
                    l.location.as_deref().unwrap_or("")
                ),
                LocalReason::BlockAll => format!(
                    "=> no service declares this host and the outbound traffic policy is REGISTRY_ONLY: {}",
                    l.status
                ),
                LocalReason::MissingHost => format!("=> the request names no host: {}", l.status),
                _ => format!("=> no VirtualService bound to {binding} for this host: {} ({})", l.status, l.flags()),
            },
        };
        let _ = writeln!(out, "{why}");
        return out;
    };
    let _ = writeln!(out, "virtual host {}: {} rules", vh.pattern, vh.rules.len());
    for (i, trace) in trace_rules(vh, req, client) {
        let rule = &vh.rules[i];
        let name = rule.name.as_deref().map(|n| format!(" {n:?}")).unwrap_or_default();
        let o = &rule.origin;
        let origin = format!("{}/{} {}[{}]{name}", o.namespace, o.name, o.kind.rules_field(), o.index);
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
            let why = match json["reason"].as_str() {
                Some("delegate") => "the rule delegates to a VirtualService that is not there",
                Some("noDestination") => "the rule's destinations all have weight 0",
                _ => "no rule matched",
            };
            let _ = writeln!(out, "=> {why}: 404 (NR)");
        }
        Some("redirect") => {
            let _ = writeln!(
                out,
                "=> redirect {} to {}",
                json["redirect"]["status"],
                json["redirect"]["location"].as_str().unwrap_or("")
            );
        }
        Some("directResponse") if json["reason"] == "corsPreflight" => {
            let _ = writeln!(out, "=> answer the CORS preflight {}", json["directResponse"]["status"]);
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
    for key in ["timeout", "retries", "fault", "rewrite", "cors"] {
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
pub fn explain_l4_json(snapshot: &Snapshot, binding: &Binding, port: u16, sni: Option<&str>) -> Value {
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
    for key in ["redirect", "directResponse", "rewrite", "timeout", "retries", "fault", "cors"] {
        out.insert(key.into(), Value::Null);
    }
    out.insert("mirrors".into(), json!([]));
    out.insert("headers".into(), header_edits_json(&HeaderEdits::default()));
    out.insert("flags".into(), Value::Null);
    out.insert("reason".into(), json!(if route.is_some() { Value::Null } else { json!("connectionClosed") }));
    out.insert("port".into(), json!(port));
    Value::Object(out)
}

/// The text explanation of a connection (see [`explain_l4_json`]).
pub fn explain_l4_text(snapshot: &Snapshot, binding: &Binding, port: u16, sni: Option<&str>) -> String {
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
