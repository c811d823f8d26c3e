//! `mesh explain --inbound`: one request (or, with `--tcp`, one connection) arriving at one
//! workload — its port's mTLS mode, its token, the authorization decision — printed from
//! mesh-core's [`InboundDecision`], the value the inbound layer enforces in `mesh proxy
//! --inbound` and in-process servers. The request's attributes are assembled by the layer's own
//! [`inbound_request`]; only the connection is described by flags instead of observed.
//!
//! A token in `-H` is verified against the rules' inline `jwks` (no network: a `jwksUri` rule's
//! tokens fail here, and a note says so), its expiry against the clock; `--jwt-claims` stands for
//! a token that already passed.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mesh_config::{ConfigStore, LoadOptions, Severity, load_paths};
use mesh_core::inbound::{InboundDecision, JwtOutcome};
use mesh_core::jwt::{JwtVerification, JwtVerifier, claims_from_json};
use mesh_core::spiffe::SpiffeId;
use mesh_tower::inbound::{ConnectionInfo, inbound_request};
use serde_json::{Value, json};

use super::{Error, ExplainArgs, Outcome, UsageError};

/// The decision as `-o json` prints it; every key always present.
///
/// ```
/// use mesh_core::inbound::{InboundRequest, Verdict};
/// use mesh_core::security::Security;
/// use mesh_core::workload::Workload;
/// let d = Security::default().inbound(&Workload::new("foo", []), &InboundRequest::default());
/// let v = mesh_proxy::app::inbound_json(&d);
/// assert_eq!(v["decision"], "allow");
/// assert_eq!(v["mtls"], "PERMISSIVE");
/// assert!(v["policy"].is_null());
/// ```
pub fn inbound_json(d: &InboundDecision) -> Value {
    let rule = |m: &mesh_core::authz::MatchedRule| json!({"namespace": &*m.namespace, "name": &*m.name, "action": m.action.as_str(), "rule": m.rule});
    json!({
        "decision": d.verdict.as_str(),
        "status": d.status,
        "policy": d.policy.as_ref().map(rule),
        "normalizedPath": d.normalized_path,
        "audited": d.audit.is_some(),
        "dryRun": d.dry_run.as_ref().map(|r| if r.allowed { "allow" } else { "deny" }),
        "mtls": d.mtls.as_str(),
    })
}

fn inbound_text(d: &InboundDecision, url: &str) -> String {
    let mut out = format!("{url} (inbound, mTLS {})\n=> {}", d.mtls.as_str(), d.verdict.as_str());
    match d.status {
        Some(status) => out.push_str(&format!(" {status}")),
        None if d.verdict != mesh_core::inbound::Verdict::Allow => out.push_str(" (connection closed)"),
        None => {}
    }
    if let Some(reason) = d.reject {
        out.push_str(&format!(" ({reason:?})"));
    }
    out.push('\n');
    if let Some(p) = &d.policy {
        out.push_str(&format!("   policy: {}/{} ({}), rule {}\n", p.namespace, p.name, p.action.as_str(), p.rule));
    }
    if let Some(path) = &d.normalized_path {
        out.push_str(&format!("   path matched: {path}\n"));
    }
    if let Some(a) = &d.audit {
        out.push_str(&format!("   audited by {}/{}\n", a.namespace, a.name));
    }
    if let Some(r) = &d.dry_run {
        out.push_str(&format!("   dry-run: {}\n", if r.allowed { "allow" } else { "deny" }));
    }
    out
}

#[allow(clippy::disallowed_methods)] // explain checks a token's expiry against the wall clock
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Explain the inbound request `args` describes (`mesh explain --inbound`): the decision goes to
/// `out`, the configuration's problems to `err`. [`Outcome::Invalid`] when the configuration
/// holds an error (the decision is still printed, with what is in force).
pub fn explain_inbound(args: &ExplainArgs, out: &mut impl Write, err: &mut impl Write) -> Result<Outcome, Error> {
    let ExplainArgs { files, method, headers, namespace, output, settings, url, inbound, .. } = args;
    for p in files {
        if !p.exists() {
            return Err(UsageError::NoSuchPath(p.clone()).into());
        }
    }
    if output != "json" && output != "text" {
        return Err(UsageError::OutputFormat(output.clone()).into());
    }
    let uri: http::Uri = url.parse().map_err(|error| UsageError::Url { url: url.clone(), error })?;
    if uri.authority().is_none() {
        return Err(UsageError::UrlHost(url.clone()).into());
    }
    let workload = inbound.workload.workload("default")?;
    let port = match (inbound.port, uri.port_u16(), uri.scheme_str()) {
        (Some(p), _, _) | (None, Some(p), _) => p,
        (None, None, Some("https")) => 443,
        (None, None, Some("http") | None) => 80,
        (None, None, Some(_)) => return Err(UsageError::UrlPort(url.clone()).into()),
    };
    let mut request = http::Request::builder().method(method.as_str()).uri(uri.clone());
    if let Some(authority) = uri.authority() {
        request = request.header(http::header::HOST, authority.as_str());
    }
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| UsageError::Header(h.clone()))?;
        request = request.header(name.trim(), value.trim());
    }
    let request = request.body(()).map_err(|e| UsageError::Inbound { flag: "-H/-X", message: e.to_string() })?;
    let source = SocketAddr::new(inbound.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), 0);
    let mut connection =
        ConnectionInfo::plaintext(Some(source), Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)));
    if let Some(peer) = &inbound.peer {
        let id: SpiffeId = peer.parse().map_err(|e: mesh_core::spiffe::SpiffeError| UsageError::Inbound {
            flag: "--peer",
            message: e.to_string(),
        })?;
        connection = connection.with_peer(id, inbound.sni.as_deref().map(Arc::from));
    } else if let Some(sni) = &inbound.sni {
        connection.sni = Some(Arc::from(sni.as_str()));
    }

    let options = LoadOptions { default_namespace: namespace.clone(), ..LoadOptions::default() };
    let mut store = ConfigStore::new(settings.compile_options(namespace)?);
    let report = store.apply(load_paths(files, &options));
    for f in &report.failed_files {
        writeln!(err, "{f}")?;
    }
    for d in report.diagnostics.iter().filter(|d| d.severity != Severity::Unsupported) {
        writeln!(err, "{d}")?;
    }
    let invalid = !report.failed_files.is_empty() || report.errors().next().is_some();
    let security = store.snapshot().security();

    let jwt = match &inbound.jwt_claims {
        Some(text) => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| UsageError::Inbound { flag: "--jwt-claims", message: e.to_string() })?;
            let claims = claims_from_json(&value, &["permission", "scope"])
                .ok_or_else(|| UsageError::Inbound { flag: "--jwt-claims", message: "not a JSON object".into() })?;
            JwtVerification {
                outcome: JwtOutcome::Valid,
                claims: Some(claims),
                rule: None,
                location: None,
                output_headers: Vec::new(),
            }
        }
        None => {
            let rules = security.jwt_rules(&workload);
            let (verifier, errors) = JwtVerifier::new(&rules, &|_| None);
            let verification = verifier.verify(request.headers(), request.uri().query(), now());
            if verification.outcome != JwtOutcome::Missing {
                for e in errors {
                    writeln!(err, "note: {e} (explain does not fetch key sets: such tokens fail here)")?;
                }
            }
            verification
        }
    };
    let mut input = inbound_request(&request, Some(&connection), port, &jwt);
    if let Some(ip) = inbound.remote_ip {
        input.attributes.remote_ip = Some(ip);
    }
    if inbound.tcp {
        input.attributes.http = None;
        input.jwt = JwtOutcome::Missing;
    }
    let decision = security.inbound(&workload, &input);
    if output == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&inbound_json(&decision))?)?;
    } else {
        write!(out, "{}", inbound_text(&decision, url))?;
    }
    out.flush()?;
    Ok(if invalid { Outcome::Invalid } else { Outcome::Success })
}
