//! The mesh binding of the Gateway API (GAMMA: GEP-1426, GEP-1294): HTTPRoutes and GRPCRoutes
//! whose parent is a Service route requests for that Service. A route in the Service's namespace
//! is a producer route, for every client; a route in another namespace is a consumer route, for
//! that namespace's clients only, and replaces the producer's routes for them (a request it
//! does not match is a 404, as with Istio's namespace-local VirtualService); when only consumer
//! routes exist, other clients reach the Service as if no route did.

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_core::route::RetryPolicy;
use mesh_core::snapshot::{Binding, SnapshotBuilder};

use super::{Condition, RouteIn, Status, World, rules};
use crate::types::gateway_api::ParentRef;

/// Whether a mesh route is its Service's (producer) or a client namespace's (consumer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Tier {
    Consumer,
    Producer,
}

/// Mesh rules by Service host: tier, the consumer namespace, the rule.
pub(super) type MeshRules = BTreeMap<String, Vec<(Tier, Option<Arc<str>>, rules::Ordered)>>;

/// A rule answering 404 to clients of `namespace`: placed after that namespace's consumer routes,
/// it keeps those clients off the producer's routes (GEP-1294: a consumer route replaces the
/// producer's for its namespace, as Istio's namespace-local VirtualService does).
fn consumer_fence(namespace: &Arc<str>, like: &Arc<mesh_core::route::HttpRule>) -> Arc<mesh_core::route::HttpRule> {
    let mut rule = (**like).clone();
    rule.matches = Box::new([mesh_core::route::RequestMatch {
        source_namespace: Some(namespace.clone()),
        ..mesh_core::route::RequestMatch::default()
    }]);
    rule.action =
        mesh_core::route::RouteAction::DirectResponse(mesh_core::route::DirectResponse { status: 404, body: None });
    rule.rewrite = None;
    rule.mirrors = Box::new([]);
    rule.cors = None;
    rule.headers = Arc::default();
    Arc::new(rule)
}

/// Attach a mesh (GAMMA, GEP-1426) route to the Service `parent` names: its rules apply to
/// requests for that Service, on `parent.port` only when set; a route in another namespace than
/// the Service's is a consumer route and applies to clients of its own namespace only.
pub(super) fn attach_mesh(
    world: &World<'_>,
    parent: &ParentRef,
    ns: &str,
    route: &RouteIn<'_>,
    mesh: &mut MeshRules,
) -> Condition {
    let converted = &route.converted;
    let Some(service) = world.services.get(&(ns, parent.name.as_str())) else {
        return Condition::new("Accepted", false, "NoMatchingParent", "no such Service");
    };
    if let Some(p) = parent.port
        && !service.ports.contains(&p)
    {
        return Condition::new("Accepted", false, "NoMatchingParent", "the Service has no such port");
    }
    let host = format!("{}.{}.svc.{}", service.name, service.namespace, world.options.domain);
    let consumer = (**route.namespace != *ns).then(|| route.namespace.clone());
    let tier = if consumer.is_some() { Tier::Consumer } else { Tier::Producer };
    let port = parent.port.and_then(|p| u16::try_from(p).ok());
    let slot = mesh.entry(host).or_default();
    for o in &converted.rules {
        let mut rule = (*o.rule).clone();
        let mut matches = rule.matches.to_vec();
        for m in &mut matches {
            m.port = port;
            m.source_namespace = consumer.clone();
        }
        rule.matches = matches.into_boxed_slice();
        slot.push((tier, consumer.clone(), rules::Ordered { key: o.key.clone(), rule: Arc::new(rule) }));
    }
    Condition::new("Accepted", true, "Accepted", "route accepted")
}

/// Add the mesh rules of every Service host to `builder`, in order: consumer routes, the
/// consumer namespaces' 404 fences, producer routes (and a fallback to the Service itself when
/// only consumer routes exist). A host a VirtualService already routes keeps it: recorded in
/// `status.shadowed_hosts`.
pub(super) fn emit(
    mesh: MeshRules,
    default_retries: &Arc<RetryPolicy>,
    builder: &mut SnapshotBuilder,
    status: &mut Status,
) {
    for (host, mut ordered) in mesh {
        // Consumer routes first (they only match their own namespace's clients), then the 404
        // that keeps a consumer namespace off the producer's routes, then producer routes.
        ordered.sort_by(|a, b| (a.0, &a.2.key).cmp(&(b.0, &b.2.key)));
        let mut rules = Vec::new();
        let mut closed: Vec<Arc<str>> = Vec::new();
        for (tier, consumer_ns, o) in ordered {
            if tier == Tier::Producer {
                for ns in closed.drain(..) {
                    rules.push(consumer_fence(&ns, &o.rule));
                }
            }
            if let Some(ns) = consumer_ns
                && !closed.contains(&ns)
            {
                closed.push(ns);
            }
            rules.push(o.rule);
        }
        if let Some(last) = rules.last().cloned() {
            for ns in closed.drain(..) {
                rules.push(consumer_fence(&ns, &last));
            }
            if last.matches.iter().all(|m| m.source_namespace.is_some()) {
                // Only consumer routes: every other client goes to the Service as if no route
                // existed.
                let mut fallback =
                    mesh_core::route::HttpRule::forward(mesh_core::route::Destination::new(host.as_str()));
                fallback.origin = last.origin.clone();
                fallback.retries = default_retries.clone();
                rules.push(Arc::new(fallback));
            }
        }
        if builder.add_routes(Binding::Mesh, &host, "gateway-api/mesh", rules).is_err() {
            status.shadowed_hosts.push(host);
        }
    }
}
