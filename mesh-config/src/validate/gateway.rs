//! Gateway rules (istio/istio `pkg/config/validation/validation.go` `ValidateGateway`,
//! `validateServer`, `validateTLSOptions`).

use super::common::*;
use super::{Ctx, P};
use crate::types::gateway::*;

fn is_tls_protocol(p: &str) -> bool {
    matches!(p.to_ascii_uppercase().as_str(), "HTTPS" | "TLS")
}

fn is_http_protocol(p: &str) -> bool {
    matches!(p.to_ascii_uppercase().as_str(), "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY")
}

pub(super) fn validate(ctx: &mut Ctx<'_>, gw: &Gateway) {
    let root = P::root();
    let name = ctx.resource.name.clone();
    if !is_dns1123_label(&name) {
        ctx.error(&root, format!("invalid gateway name: {name:?}"));
    }
    if gw.servers.is_empty() {
        ctx.error(&root.f("servers"), "gateway must have at least one server");
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, server) in gw.servers.iter().enumerate() {
        let p = root.f("servers").i(i);
        validate_server(ctx, &p, server);
        if let Some(port) = &server.port {
            if port_names.contains(&port.name.as_str()) {
                ctx.error(
                    &p.f("port").f("name"),
                    format!("port names in servers must be unique: duplicate name {}", port.name),
                );
            }
            port_names.push(&port.name);
        }
    }
    validate_labels(ctx, &root.f("selector"), &gw.selector);
}

fn validate_server(ctx: &mut Ctx<'_>, path: &P, server: &Server) {
    if server.hosts.is_empty() {
        ctx.error(&path.f("hosts"), "server config must contain at least one host");
    }
    for (i, host) in server.hosts.iter().enumerate() {
        validate_gateway_host(ctx, &path.f("hosts").i(i), host);
    }
    let port_ok = match &server.port {
        None => {
            ctx.error(&path.f("port"), "port is required");
            false
        }
        Some(port) => {
            let p = path.f("port");
            let mut ok = true;
            if !is_known_protocol(&port.protocol) {
                ctx.error(&p.f("protocol"), format!("invalid protocol {:?}, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP", port.protocol));
                ok = false;
            }
            if port.number > 0 {
                ctx.check(&p.f("number"), validate_port(port.number));
            }
            if port.name.is_empty() {
                ctx.error(&p.f("name"), "port name must be set");
                ok = false;
            }
            ok
        }
    };
    if let Some(tls) = &server.tls {
        validate_tls_options(ctx, &path.f("tls"), tls);
    }
    if port_ok && let Some(port) = &server.port {
        let proto = &port.protocol;
        if is_tls_protocol(proto) && server.tls.is_none() {
            ctx.error(&path.f("tls"), "server must have TLS settings for HTTPS/TLS protocols");
        } else if !is_tls_protocol(proto)
            && let Some(tls) = &server.tls
        {
            let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
            if is_http_protocol(proto) {
                let redirect_only = tls.https_redirect == Some(true) || tls.mode.is_none();
                if !redirect_only || set(&tls.ca_certificates) || set(&tls.private_key) || set(&tls.server_certificate)
                {
                    ctx.error(&path.f("tls"), "server cannot have TLS settings for plain text HTTP ports");
                }
            } else {
                ctx.error(&path.f("tls"), "server cannot have TLS settings for non HTTPS/TLS ports");
            }
        }
    }
    if server.bind.is_some() {
        ctx.unsupported(&path.f("bind"), "bind (listeners open on --gateway-address or --port-map)");
    }
    if server.default_endpoint.is_some() {
        ctx.unsupported(&path.f("defaultEndpoint"), "defaultEndpoint");
    }
}

fn validate_gateway_host(ctx: &mut Ctx<'_>, path: &P, host: &str) {
    let hostname = match host.split_once('/') {
        None => host,
        Some((ns, h)) => {
            if ns.is_empty() || h.is_empty() {
                ctx.error(path, "config namespace and dnsName in host entry cannot be empty");
            }
            if ns != "*" && ns != "." && !is_dns1123_label(ns) {
                ctx.error(path, format!("invalid namespace value {ns:?} in gateway"));
            }
            h
        }
    };
    if hostname != "*" && !hostname.contains('.') {
        ctx.error(path, "short names (non FQDN) are not allowed");
    }
    if let Err(e) = validate_wildcard_domain(hostname)
        && !is_ip(hostname)
    {
        ctx.error(path, e);
    }
}

fn validate_tls_options(ctx: &mut Ctx<'_>, path: &P, tls: &ServerTlsSettings) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
    let mode = tls.mode;
    let credentials = usize::from(set(&tls.credential_name))
        + usize::from(!tls.credential_names.is_empty())
        + usize::from(!tls.tls_certificates.is_empty());
    if credentials > 1 {
        ctx.error(path, "only one of credentialName, credentialNames or tlsCertificates may be set");
    }
    if mode == Some(ServerTlsMode::ISTIO_MUTUAL) {
        if set(&tls.server_certificate) {
            ctx.error(&path.f("serverCertificate"), "ISTIO_MUTUAL TLS cannot have associated server certificate");
        }
        if set(&tls.private_key) {
            ctx.error(&path.f("privateKey"), "ISTIO_MUTUAL TLS cannot have associated private key");
        }
        if set(&tls.ca_certificates) {
            ctx.error(&path.f("caCertificates"), "ISTIO_MUTUAL TLS cannot have associated CA bundle");
        }
        ctx.unsupported(&path.f("mode"), "ISTIO_MUTUAL");
        return;
    }
    let remote = set(&tls.credential_name) || !tls.credential_names.is_empty() || !tls.tls_certificates.is_empty();
    if matches!(mode, Some(ServerTlsMode::SIMPLE | ServerTlsMode::MUTUAL | ServerTlsMode::OPTIONAL_MUTUAL)) && remote {
        if set(&tls.credential_name) || !tls.credential_names.is_empty() {
            ctx.unsupported(&path.f("credentialName"), "credentialName (Kubernetes secrets); use certificate files");
        }
        return;
    }
    match mode {
        Some(ServerTlsMode::SIMPLE) => {
            if !set(&tls.server_certificate) {
                ctx.error(&path.f("serverCertificate"), "SIMPLE TLS requires a server certificate");
            }
            if !set(&tls.private_key) {
                ctx.error(&path.f("privateKey"), "SIMPLE TLS requires a private key");
            }
        }
        Some(ServerTlsMode::MUTUAL | ServerTlsMode::OPTIONAL_MUTUAL) => {
            if !set(&tls.server_certificate) {
                ctx.error(&path.f("serverCertificate"), "MUTUAL TLS requires a server certificate");
            }
            if !set(&tls.private_key) {
                ctx.error(&path.f("privateKey"), "MUTUAL TLS requires a private key");
            }
            if !set(&tls.ca_certificates) {
                ctx.error(&path.f("caCertificates"), "MUTUAL TLS requires a client CA bundle");
            }
        }
        // PASSTHROUGH: routed by the ClientHello's server name (VirtualService `tls[]`).
        Some(ServerTlsMode::AUTO_PASSTHROUGH) => {
            ctx.unsupported(&path.f("mode"), "AUTO_PASSTHROUGH (SNI-DNAT to mesh clusters)");
        }
        _ => {}
    }
}
