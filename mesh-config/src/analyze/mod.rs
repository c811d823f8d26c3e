//! Cross-resource analysis: what `istioctl analyze` tells an operator about a configuration as a
//! whole, where validation looks at one resource at a time.
//!
//! Validation ([`crate::validate()`]) mirrors Istio's admission: each resource alone. The checks
//! here look across resources, as Istio's analyzers do (istio/istio
//! `pkg/config/analysis/analyzers/`), and report each finding with a stable [`Code`]:
//!
//! | code | check | Istio |
//! |---|---|---|
//! | `IST0101` | a route or mirror destination `subset` that no DestinationRule for the destination's host defines | `virtualservice/destinationrules.go` |
//! | `IST0101` | a `gateways` entry (top level or in a `match`) naming a Gateway the configuration does not hold (`mesh` is always there) | `virtualservice/gateways.go` |
//! | `IST0101` | a route or mirror destination host that no ServiceEntry visible to the VirtualService's namespace declares and that is no Kubernetes Service of the configuration | `virtualservice/destinationhosts.go` |
//! | `MW0003` | DestinationRules for one host in one namespace, without workload selectors and visible to a common namespace, that set the same subset or both a top-level `trafficPolicy` | none: pilot merges them (`model/destination_rule.go`, `mergeDestinationRule`) and only counts duplicate subsets in the `pilot_destrule_subsets` metric |
//! | `MW0002` | the same resource (kind, namespace, name) defined more than once ([`duplicates`]) | none |
//!
//! (`MW0001`, a misspelt `kind`, is found by the loader: [`crate::load`].)
//!
//! Istio rates `IST0101` an error. Here every finding of this module is a
//! [`Severity::Warning`]: meshwork's errors mean *the resource is rejected*, and a reference to
//! something absent is admitted by Kubernetes and by Istio alike (and in process, endpoints and
//! subsets may come from code: a subset no endpoint has answers 503 `UH`). `mesh validate
//! --strict` fails on them.
//!
//! How the references resolve follows Istio's analyzers and pilot:
//!
//! - hosts are qualified as Istio qualifies them (`reviews` in namespace `bookinfo` is
//!   `reviews.bookinfo.svc.cluster.local`); ServiceEntry hosts are qualified the same way for the
//!   comparison, as the analyzer's `ScopedFqdn` does, and a wildcard ServiceEntry host covers the
//!   names below it;
//! - the DestinationRules that answer for a host are those whose host is the same name, else those
//!   with the most specific wildcard covering it (pilot's lookup); any of them, with or without a
//!   workload selector, may define the subset;
//! - gateway names resolve as in routing ([`crate::compile::resolve_gateway`]): `ns/name`,
//!   `./name`, `name` (the VirtualService's namespace), legacy `name.ns`; a Kubernetes Gateway
//!   (`gateway.networking.k8s.io`) of that namespace and name counts too, as in Istio. Istio's
//!   analyzer reads only the top-level `gateways`; meshwork binds rules by `match[].gateways`
//!   too, so those are checked as well;
//! - an undeclared host is reported once per VirtualService (at its first destination), where
//!   Istio reports every destination: a config with no ServiceEntries would otherwise repeat it
//!   for every route.
//!
//! The analysis is a pure function of the resources (and of the documents the loader skipped,
//! for Kubernetes Services and Gateways): [`crate::ConfigStore::apply`] runs it on the resources
//! in force, so the same findings appear on load and in `mesh validate`.
//!
//! The checks, one module per concern: `references` (`IST0101`, with the index of what a
//! reference can point at), `conflicting_rules` (`MW0003`), `duplicate_resources` (`MW0002`);
//! this module holds what they share: where a finding is reported (path and line) and `exportTo`
//! visibility.

mod conflicting_rules;
mod duplicate_resources;
mod references;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use crate::diag::{Code, Diagnostic, Severity};
use crate::load::Skipped;
use crate::types::Resource;
use crate::yaml::{Node, Value};

pub use duplicate_resources::duplicates;

/// Cross-resource findings over `resources` (the resources in force: one of each id).
///
/// `skipped` are the documents the loader passed over: its Kubernetes `Service`s declare hosts,
/// its Kubernetes `Gateway`s can be named by `gateways`. `domain` is the cluster domain short
/// names are qualified with (`cluster.local`).
pub fn analyze(resources: &[Resource], skipped: &[Skipped], domain: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    references::check(resources, skipped, domain, &mut out);
    conflicting_rules::check(resources, domain, &mut out);
    out
}

/// One step of a field path inside a spec (YAML names).
#[derive(Debug, Clone, Copy)]
enum Seg {
    Field(&'static str),
    Index(usize),
}

/// The printed path (`http[0].route[1].destination.subset`) and the line of the deepest node of
/// it present in the YAML (a field's key line), or the resource's line.
fn locate(r: &Resource, path: &[Seg]) -> (String, u32) {
    let mut text = String::new();
    for seg in path {
        match seg {
            Seg::Field(name) if text.is_empty() => text.push_str(name),
            Seg::Field(name) => {
                text.push('.');
                text.push_str(name);
            }
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    let Some(mut node) = r.spec_node.as_deref() else {
        return (text, r.line);
    };
    let mut line = node.line;
    for seg in path {
        let next: Option<(&Node, u32)> = match (seg, &node.value) {
            (Seg::Field(name), Value::Map(entries)) => {
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
    (text, line)
}

fn warning(r: &Resource, code: Code, path: &[Seg], message: String) -> Diagnostic {
    let (path, line) = locate(r, path);
    Diagnostic {
        severity: Severity::Warning,
        code: Some(code),
        file: r.file.clone(),
        line,
        resource: Some(r.id()),
        path,
        message,
    }
}

/// Where a resource is, for messages about another one.
fn place(r: &Resource) -> String {
    format!("{}:{}", r.file.as_deref().unwrap_or("<string>"), r.line)
}

/// The namespaces a resource with `export_to` is visible to (`None`: every namespace).
fn visibility(namespace: &str, export_to: &[String]) -> Option<BTreeSet<String>> {
    if export_to.is_empty() || export_to.iter().any(|e| e == "*") {
        return None;
    }
    Some(
        export_to
            .iter()
            .filter(|e| *e != "~")
            .map(|e| if e == "." { namespace.to_string() } else { e.clone() })
            .collect(),
    )
}

fn visible_to(namespace: &str, export_to: &[String], to: &str) -> bool {
    visibility(namespace, export_to).is_none_or(|set| set.contains(to))
}

/// Is some namespace able to see both?
fn share_a_namespace(a: &Option<BTreeSet<String>>, b: &Option<BTreeSet<String>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (None, Some(s)) | (Some(s), None) => !s.is_empty(),
        (Some(a), Some(b)) => !a.is_disjoint(b),
    }
}
