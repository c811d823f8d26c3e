//! Validation with Istio's own rules.
//!
//! The rules follow istio/istio `pkg/config/validation` (`validation.go`, `virtualservice.go`,
//! `agent/validation.go`) and the CEL rules of Istio's CRD schemas (durations of at least 1 ms,
//! for instance). Each check cites the message Istio gives where one exists, so users who know
//! Istio's errors recognise ours. Warnings are Istio's warnings; `unsupported` diagnostics mark
//! fields meshwork reads but does not act on. The Kubernetes kinds (Service, Pod, Namespace,
//! Node, EndpointSlice) are checked as the Kubernetes API server checks them (`kube`); the
//! `security.istio.io` kinds as Istio's webhook and CRD schemas check them (`security`); the
//! Gateway API kinds as their CRDs do ([`crate::gateway_api::validate`]).

mod common;
mod destination_rule;
mod gateway;
mod kube;
mod request_authn;
mod security;
mod service_entry;
mod virtual_service;

use std::fmt;

pub(crate) use common::is_dns1123_label;
pub(crate) use security::{parse_go_bool, parse_port_key};

use crate::diag::{Diagnostic, Severity};
use crate::types::{Resource, Spec};
use crate::yaml::{Node, Value};

/// Validate one resource. The resource is valid when no diagnostic is an error.
pub fn validate(resource: &Resource) -> Vec<Diagnostic> {
    let mut ctx = Ctx { resource, out: Vec::new() };
    match &resource.spec {
        Spec::VirtualService(vs) => virtual_service::validate(&mut ctx, vs),
        Spec::DestinationRule(dr) => destination_rule::validate(&mut ctx, dr),
        Spec::Gateway(gw) => gateway::validate(&mut ctx, gw),
        Spec::ServiceEntry(se) => service_entry::validate(&mut ctx, se),
        Spec::WorkloadEntry(we) => service_entry::validate_workload_entry(&mut ctx, we),
        Spec::Service(s) => kube::validate_service(&mut ctx, s),
        Spec::Pod(p) => kube::validate_pod(&mut ctx, p),
        Spec::Namespace(n) => kube::validate_namespace(&mut ctx, n),
        Spec::Secret(s) => kube::validate_secret(&mut ctx, s),
        Spec::Node(n) => kube::validate_node(&mut ctx, n),
        Spec::EndpointSlice(e) => kube::validate_endpoint_slice(&mut ctx, e),
        Spec::PeerAuthentication(p) => security::validate_peer_authentication(&mut ctx, p),
        Spec::AuthorizationPolicy(a) => security::validate_authorization_policy(&mut ctx, a),
        Spec::RequestAuthentication(r) => request_authn::validate_request_authentication(&mut ctx, r),
        Spec::GatewayClass(c) => {
            if c.controller_name.is_empty() {
                ctx.error(&P::root().f("controllerName"), "Required value");
            }
        }
        Spec::KubeGateway(g) => ctx.findings(crate::gateway_api::validate::gateway(g)),
        Spec::HttpRoute(r) => ctx.findings(crate::gateway_api::validate::http_route(r)),
        Spec::GrpcRoute(r) => ctx.findings(crate::gateway_api::validate::grpc_route(r)),
        Spec::ReferenceGrant(g) => ctx.findings(crate::gateway_api::validate::reference_grant(g)),
    }
    ctx.out
}

/// A field path inside a spec, built while walking it.
#[derive(Debug, Clone, Default)]
pub(crate) struct P(Vec<Seg>);

#[derive(Debug, Clone)]
enum Seg {
    Field(&'static str),
    Index(usize),
    Key(String),
}

impl P {
    pub(crate) fn root() -> P {
        P(Vec::new())
    }

    /// A path written as text (`rules[0].filters[1].cors`).
    fn parse(text: &str) -> P {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
            if !name.is_empty() {
                segs.push(Seg::Key(name.to_string()));
            }
            while let Some((index, after)) = rest.split_once(']') {
                if let Ok(i) = index.parse() {
                    segs.push(Seg::Index(i));
                }
                rest = after.strip_prefix('[').unwrap_or(after);
            }
        }
        P(segs)
    }
    /// A field.
    pub(crate) fn f(&self, name: &'static str) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Field(name));
        P(v)
    }
    /// A list index.
    pub(crate) fn i(&self, index: usize) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Index(index));
        P(v)
    }
    /// A map key.
    pub(crate) fn k(&self, key: &str) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.to_string()));
        P(v)
    }
}

impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Field(name) if n == 0 => write!(f, "{name}")?,
                Seg::Field(name) => write!(f, ".{name}")?,
                Seg::Key(key) => {
                    let simple =
                        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    match (simple, n) {
                        (true, 0) => write!(f, "{key}")?,
                        (true, _) => write!(f, ".{key}")?,
                        (false, _) => write!(f, "[{key:?}]")?,
                    }
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) resource: &'a Resource,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(crate) fn error(&mut self, path: &P, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into());
    }

    pub(crate) fn warn(&mut self, path: &P, message: impl Into<String>) {
        self.push(Severity::Warning, path, message.into());
    }

    pub(crate) fn unsupported(&mut self, path: &P, what: &str) {
        self.push(Severity::Unsupported, path, format!("{what}: read, but not acted on by meshwork yet"));
    }

    /// An `unsupported` diagnostic worded in full (for parts meshwork handles in a way of its own,
    /// which "read, but not acted on" would misdescribe).
    pub(crate) fn unsupported_because(&mut self, path: &P, message: String) {
        self.push(Severity::Unsupported, path, message);
    }

    /// Report Gateway API findings as errors (the API server refuses such objects); messages
    /// starting with `unsupported` as `unsupported`.
    fn findings(&mut self, findings: Vec<crate::gateway_api::validate::Finding>) {
        for f in findings {
            let path = P::parse(&f.path);
            if f.message.starts_with("unsupported") {
                self.unsupported_because(&path, f.message);
            } else {
                self.error(&path, f.message);
            }
        }
    }

    /// Report `result`'s error, if any, as an error at `path`.
    pub(crate) fn check(&mut self, path: &P, result: Result<(), String>) {
        if let Err(message) = result {
            self.error(path, message);
        }
    }

    fn push(&mut self, severity: Severity, path: &P, message: String) {
        let line = self.line_for(path);
        self.out.push(Diagnostic {
            severity,
            code: None,
            file: self.resource.file.clone(),
            line,
            resource: Some(self.resource.id()),
            path: path.to_string(),
            message,
        });
    }

    /// The line of the deepest node of `path` present in the YAML (its key's line for fields).
    fn line_for(&self, path: &P) -> u32 {
        let Some(mut node) = self.resource.spec_node.as_deref() else {
            return self.resource.line;
        };
        let mut line = node.line;
        for seg in &path.0 {
            let next: Option<(&Node, u32)> = match (seg, &node.value) {
                (Seg::Field(name), Value::Map(entries)) => {
                    entries.iter().find(|(k, _)| k.name == *name).map(|(k, v)| (v, k.line))
                }
                (Seg::Key(name), Value::Map(entries)) => {
                    entries.iter().find(|(k, _)| k.name == *name).map(|(k, v)| (v, k.line))
                }
                (Seg::Index(i), Value::Seq(items)) => items.get(*i).map(|n| (n, n.line)),
                _ => None,
            };
            match next {
                Some((n, l)) => {
                    node = n;
                    line = l;
                }
                None => break,
            }
        }
        line
    }
}
