//! `mesh explain`: what the configuration does with one request (or, on a Gateway's TCP and TLS
//! passthrough ports, one connection), printed from mesh-core's decision by [`crate::explain`].

use std::io::Write;

use mesh_config::{ConfigStore, LoadOptions, Severity, load_paths};
use mesh_core::{Binding, ClientIdentity, RequestView};

use super::{Error, ExplainArgs, UsageError};
use crate::explain as print;

/// Explain the request `args` describes: the answer goes to `out` (text or JSON), the
/// configuration's errors and warnings (as `mesh validate` prints them) to `err`.
pub fn explain(args: &ExplainArgs, out: &mut impl Write, err: &mut impl Write) -> Result<(), Error> {
    let ExplainArgs { files, method, headers, source_labels, gateway, namespace, output, settings, url, inbound: _ } =
        args;
    let (namespace, output, url) = (namespace.as_str(), output.as_str(), url.as_str());
    for p in files {
        if !p.exists() {
            return Err(UsageError::NoSuchPath(p.clone()).into());
        }
    }
    if output != "json" && output != "text" {
        return Err(UsageError::OutputFormat(output.to_string()).into());
    }
    let uri: http::Uri = url.parse().map_err(|error| UsageError::Url { url: url.to_string(), error })?;
    if uri.authority().is_none() {
        return Err(UsageError::UrlHost(url.to_string()).into());
    }
    let mut header_list: Vec<(String, String)> = Vec::new();
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| UsageError::Header(h.clone()))?;
        header_list.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut labels = Vec::new();
    for l in source_labels {
        let (k, v) = l.split_once('=').ok_or_else(|| UsageError::SourceLabel(l.clone()))?;
        labels.push((k.to_string(), v.to_string()));
    }
    let binding = match gateway.as_deref() {
        None => Binding::Mesh,
        Some(g) => {
            let (ns, name) = g.split_once('/').ok_or_else(|| UsageError::Gateway(g.to_string()))?;
            Binding::gateway(ns, name)
        }
    };
    let options = LoadOptions { default_namespace: namespace.to_string(), ..LoadOptions::default() };
    // The client's view: resources not exported to its namespace do not apply to it.
    let mut store = ConfigStore::new(settings.compile_options(namespace)?);
    let report = store.apply(load_paths(files, &options));
    // What `mesh validate` would say (errors and warnings), so that an invalid, misspelt or
    // duplicated config is never explained silently.
    for f in &report.failed_files {
        writeln!(err, "{f}")?;
    }
    for d in report.diagnostics.iter().filter(|d| d.severity != Severity::Unsupported) {
        writeln!(err, "{d}")?;
    }
    let snapshot = store.snapshot();
    // A connection to a Gateway's TCP or TLS passthrough server: `tcp://ANY:PORT`,
    // `tls://SERVER-NAME[:PORT]` (443 by default).
    if let Some(scheme @ ("tcp" | "tls")) = uri.scheme_str() {
        if binding == Binding::Mesh {
            return Err(UsageError::L4WithoutGateway(scheme.to_string()).into());
        }
        let port = match (uri.port_u16(), scheme) {
            (Some(p), _) => p,
            (None, "tls") => 443,
            (None, _) => return Err(UsageError::UrlPort(url.to_string()).into()),
        };
        let sni = (scheme == "tls").then(|| uri.host().unwrap_or("").to_ascii_lowercase());
        if output == "json" {
            let value = print::explain_l4_json(snapshot, &binding, port, sni.as_deref());
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        } else {
            write!(out, "{}", print::explain_l4_text(snapshot, &binding, port, sni.as_deref()))?;
        }
        out.flush()?;
        return Ok(());
    }
    let client = ClientIdentity::new(namespace, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let scheme = uri.scheme_str().unwrap_or("http");
    let req = RequestView {
        method,
        scheme,
        authority,
        path: uri.path(),
        query: uri.query(),
        headers: &header_list,
        listener_port: None,
    };
    // Under a Gateway, the connection is accepted as `mesh proxy` accepts it: the port the
    // request arrives on, then the servers that admit it (by SNI for TLS).
    let listener = match &binding {
        Binding::Mesh => None,
        Binding::Gateway { namespace: gw_ns, name } => {
            let Some(gw) = snapshot.gateway(gw_ns, name) else {
                return Err(Error::NoSuchGateway { namespace: gw_ns.to_string(), name: name.to_string() });
            };
            let https = scheme.eq_ignore_ascii_case("https");
            let port = mesh_core::decision::listener_port(&gw.servers, authority, https);
            let host = mesh_core::request::normalize_host(authority);
            let sni = https.then_some(Some(&*host));
            match mesh_core::decision::accept(&gw.servers, port, sni) {
                Ok(listener) => Some(listener),
                Err(why) => {
                    if output == "json" {
                        writeln!(out, "{}", serde_json::to_string_pretty(&print::closed_json(&host, port))?)?;
                    } else {
                        writeln!(
                            out,
                            "{scheme}://{authority} via {binding}, port {port}\n=> connection closed: {why}"
                        )?;
                    }
                    out.flush()?;
                    return Ok(());
                }
            }
        }
    };
    if output == "json" {
        let value = print::explain_json(snapshot, &binding, listener.as_ref(), &req, &client);
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        write!(out, "{}", print::explain_text(snapshot, &binding, listener.as_ref(), &req, &client))?;
    }
    out.flush()?;
    Ok(())
}
