//! The Kubernetes Gateway API (`gateway.networking.k8s.io`) compiled into the same snapshot as
//! Istio's kinds: Gateways become gateway bindings with one server per listener, HTTPRoutes
//! become rules under the hosts they attach to, and the status a controller would write
//! (conditions, `attachedRoutes`) is computed alongside.
//!
//! Semantics follow the Gateway API spec (<https://gateway-api.sigs.k8s.io/reference/spec/>) as
//! Istio implements it (`pilot/pkg/config/kube/gateway/conversion.go`):
//!
//! - **Classes.** A Gateway is served when its `gatewayClassName` is the class meshwork serves
//!   (`istio` unless configured otherwise); others are left to their controllers and get no status.
//! - **Attachment** of a route's `parentRefs[]` entry to a Gateway: the listeners named by
//!   `sectionName` and/or `port` (all when neither), of those the ones whose `allowedRoutes` admit
//!   the route's kind (HTTP and HTTPS listeners take HTTPRoute and GRPCRoute when `kinds` is
//!   empty) and namespace (`Same` by default, `All`, `Selector` over the Namespace's labels), and
//!   of those the ones whose `hostname` intersects the route's `hostnames`
//!   ([`intersect_hostnames`]). The parent's `Accepted` condition says why not:
//!   `NoMatchingParent` (no such Gateway, or no listener with that name or port),
//!   `NotAllowedByListeners`, `NoMatchingListenerHostname`. Each listener counts the routes
//!   attached to it (`attachedRoutes`).
//! - **References.** A backend is a core `Service` (else `InvalidKind`) that exists (else
//!   `BackendNotFound`), in the route's namespace or in one whose ReferenceGrant lets routes of
//!   the route's kind and namespace refer to it (else `RefNotPermitted`); the route's
//!   `ResolvedRefs` condition carries the first problem, and the rule keeps the unresolved
//!   backend's share, which the decision answers with 500 ([`rules::UNRESOLVED_HOST`]).
//! - **Rules** and their order: [`rules`]. Each host a route serves under a Gateway gets the
//!   route's rules, merged with the other routes' for the same host and sorted by the spec's
//!   precedence.
//!
//! - **Ports.** A Gateway's listeners on several ports: a route serves only on the ports of the
//!   listeners it attached to (its rules carry the port as a match condition), as Istio binds a
//!   route to those listeners' servers.
//!
//! - **The mesh (GAMMA, GEP-1426/GEP-1294).** A route whose parent is a core `Service` applies
//!   to requests for that Service's host (on `port` when the parentRef sets one). A route in the
//!   Service's namespace is a producer route, for every client; a route in another namespace is a
//!   consumer route, for clients of that namespace only — it replaces the producer's routes for
//!   them (a request it does not match is a 404, as with Istio's namespace-local
//!   VirtualService), and when only consumer routes exist other clients reach the Service as if
//!   no route did. A VirtualService already routing the host wins, with a warning.
//!
//! The loader reads these kinds like any other (`Kind::HttpRoute`, ...), `compile` runs this
//! module after Istio's kinds, and the store keeps the [`Status`].
//!
//! Route age is `metadata.creationTimestamp` (the API server's; hand-written files usually have
//! none and sort first, then by namespace and name).
//!
//! - **Listener TLS.** An `HTTPS` listener terminates TLS with the `kubernetes.io/tls` Secret of
//!   its first `certificateRefs` entry (the Gateway's namespace, or another with a
//!   ReferenceGrant from Gateways); one that does not resolve leaves the listener unprogrammed
//!   (`ResolvedRefs: InvalidCertificateRef` or `RefNotPermitted`, `Programmed: Invalid`) and
//!   its port closed. `Passthrough` listeners are declared but no TLSRoute serves them.
//!
//! Not here: per-backend filters other than header modifiers: as Istio (`buildHTTPDestination`),
//! the rule is left out and the route's `ResolvedRefs` is `False` (`InvalidFilter`). Not yet
//! here (issue 18): TLSRoute/TCPRoute.

pub mod hostname;
mod mesh;
pub mod rules;
mod status;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_core::policy::LabelSelector as CoreSelector;
use mesh_core::route::RetryPolicy;
use mesh_core::service::{GatewayDecl, GatewayServer, PemCredential, ServerTls};
use mesh_core::snapshot::{Binding, SnapshotBuilder};

pub use hostname::intersect_hostnames;
pub use rules::{BackendProblem, Backends};
pub use status::{Condition, GatewayStatus, ListenerStatus, ParentRefStatus, ParentStatus, RouteStatus, Status};

use crate::types::gateway_api::{
    BackendObjectRef, GROUP, Gateway, GatewayClass, GrpcRoute, HttpRoute, Listener, ParentRef, ReferenceGrant,
};

/// One Gateway API object with the metadata the semantics read.
#[derive(Debug, Clone)]
pub struct Object<T> {
    /// Namespace (empty for cluster-scoped kinds).
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// `metadata.creationTimestamp` (RFC 3339, so that text order is time order); route
    /// precedence prefers the older route.
    pub created: String,
    /// `metadata.generation` (reported as `observedGeneration`).
    pub generation: i64,
    /// The spec.
    pub spec: T,
}

/// A Service as the Gateway API sees it: its ports.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Port numbers.
    pub ports: Vec<u32>,
}

/// Everything the Gateway API semantics read.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// GatewayClasses.
    pub classes: Vec<Object<GatewayClass>>,
    /// Gateways.
    pub gateways: Vec<Object<Gateway>>,
    /// HTTPRoutes.
    pub http_routes: Vec<Object<HttpRoute>>,
    /// GRPCRoutes.
    pub grpc_routes: Vec<Object<GrpcRoute>>,
    /// ReferenceGrants.
    pub grants: Vec<Object<ReferenceGrant>>,
    /// Services backends may name.
    pub services: Vec<ServiceRef>,
    /// Secrets (a listener's `certificateRefs`).
    pub secrets: Vec<crate::types::kube::Secret>,
    /// Namespace labels (for `allowedRoutes.namespaces.from: Selector`).
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// Options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The GatewayClass name served (`istio`).
    pub class: String,
    /// The cluster domain backends' hosts end with (`cluster.local`).
    pub domain: String,
}

impl Default for Options {
    fn default() -> Self {
        Options { class: "istio".into(), domain: "cluster.local".into() }
    }
}

/// Listener attachment counts by (gateway namespace, gateway name, listener index).
type Attached = BTreeMap<(Arc<str>, Arc<str>, usize), u32>;
/// Rules by (gateway namespace, gateway name, host), before sorting.
type HostRules = BTreeMap<(Arc<str>, Arc<str>, String), HostSlot>;

/// One host's rules under a Gateway, and which (port, match) pairs it holds already, so that a
/// route attached through several listeners adds each rule once (a set, not a scan: a Gateway
/// may carry thousands of routes for one host).
#[derive(Default)]
struct HostSlot {
    rules: Vec<(Option<u16>, rules::Ordered)>,
    seen: std::collections::HashSet<(Option<u16>, rules::SortKey)>,
}

struct World<'a> {
    input: &'a Input,
    options: &'a Options,
    /// Services and Gateways by (namespace, name): looked up per backend and per parentRef.
    services: std::collections::HashMap<(&'a str, &'a str), &'a ServiceRef>,
    gateways: std::collections::HashMap<(&'a str, &'a str), &'a Object<Gateway>>,
}

impl Backends for World<'_> {
    fn resolve(&self, route_kind: &str, route_ns: &str, b: &BackendObjectRef) -> Result<Arc<str>, BackendProblem> {
        let group = b.group.as_deref().unwrap_or("");
        let kind = b.kind.as_deref().unwrap_or("Service");
        if !(group.is_empty() || group == "core") || kind != "Service" {
            return Err(BackendProblem::InvalidKind);
        }
        let ns = b.namespace.as_deref().unwrap_or(route_ns);
        if ns != route_ns && !self.granted(route_ns, route_kind, ns, "", "Service", &b.name) {
            return Err(BackendProblem::NotPermitted);
        }
        if !self.services.contains_key(&(ns, b.name.as_str())) {
            return Err(BackendProblem::NotFound);
        }
        Ok(Arc::from(format!("{}.{}.svc.{}", b.name, ns, self.options.domain)))
    }
}

impl World<'_> {
    /// Does a ReferenceGrant in `to_ns` let `from_kind` objects in `from_ns` refer to `name`?
    fn granted(&self, from_ns: &str, from_kind: &str, to_ns: &str, to_group: &str, to_kind: &str, name: &str) -> bool {
        self.input.grants.iter().filter(|g| &*g.namespace == to_ns).any(|g| {
            g.spec.from.iter().any(|f| f.group == GROUP && f.kind == from_kind && f.namespace == from_ns)
                && g.spec
                    .to
                    .iter()
                    .any(|t| t.group == to_group && t.kind == to_kind && t.name.as_deref().is_none_or(|n| n == name))
        })
    }

    /// A listener's TLS: `None` for plain protocols; for `HTTPS` (and `TLS` terminating it) the
    /// certificate of the first `certificateRefs` entry, a `kubernetes.io/tls` Secret in the
    /// Gateway's namespace or, with a ReferenceGrant, another. `Err` is the listener's
    /// `ResolvedRefs` reason and message (`InvalidCertificateRef`, `RefNotPermitted`).
    fn listener_tls(&self, g: &Object<Gateway>, l: &Listener) -> Result<Option<ServerTls>, (&'static str, String)> {
        let Some(tls) = &l.tls else { return Ok(None) };
        if tls.mode.as_deref() == Some("Passthrough") {
            return Ok(Some(ServerTls { mode: Some(Arc::from("PASSTHROUGH")), ..plain_tls() }));
        }
        let Some(r) = tls.certificate_refs.first() else {
            return Err(("InvalidCertificateRef", "no certificateRefs".into()));
        };
        let (group, kind) = (r.group.as_deref().unwrap_or(""), r.kind.as_deref().unwrap_or("Secret"));
        if !group.is_empty() || kind != "Secret" {
            return Err(("InvalidCertificateRef", format!("{group}/{kind} is not a Secret")));
        }
        let ns = r.namespace.as_deref().unwrap_or(&g.namespace);
        if ns != &*g.namespace && !self.granted(&g.namespace, "Gateway", ns, "", "Secret", &r.name) {
            return Err(("RefNotPermitted", format!("no ReferenceGrant lets the Gateway use Secret {ns}/{}", r.name)));
        }
        let secret = self
            .input
            .secrets
            .iter()
            .find(|s| s.metadata.namespace == ns && s.metadata.name == r.name)
            .ok_or_else(|| ("InvalidCertificateRef", format!("Secret {ns}/{} not found", r.name)))?;
        let pair = (secret.value("tls.crt"), secret.value("tls.key"));
        let (Ok(certificate_chain), Ok(private_key)) = pair else {
            return Err(("InvalidCertificateRef", format!("Secret {ns}/{} holds no tls.crt and tls.key", r.name)));
        };
        Ok(Some(ServerTls {
            mode: Some(Arc::from("SIMPLE")),
            credential: Some(Arc::new(PemCredential {
                source: Arc::from(format!("Secret {ns}/{}", r.name)),
                certificate_chain: certificate_chain.into_boxed_slice(),
                private_key: private_key.into_boxed_slice(),
            })),
            ..plain_tls()
        }))
    }

    fn class_served(&self, gateway: &Gateway) -> bool {
        gateway.gateway_class_name == self.options.class
    }

    fn allows(&self, gw_ns: &str, listener: &Listener, route_ns: &str, route_kind: &str) -> bool {
        let allowed = listener.allowed_routes.as_ref();
        let kinds_ok = match allowed.map(|a| &a.kinds[..]).filter(|k| !k.is_empty()) {
            Some(kinds) => kinds.iter().any(|k| k.group.as_deref().unwrap_or(GROUP) == GROUP && k.kind == route_kind),
            None => {
                matches!(listener.protocol.as_str(), "HTTP" | "HTTPS")
                    && matches!(route_kind, "HTTPRoute" | "GRPCRoute")
            }
        };
        let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
        let ns_ok = match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
            "All" => true,
            "Selector" => {
                let labels = self.input.namespace_labels.get(route_ns).cloned().unwrap_or_default();
                namespaces.and_then(|n| n.selector.as_ref()).is_some_and(|s| s.matches(&labels))
            }
            _ => gw_ns == route_ns,
        };
        kinds_ok && ns_ok
    }
}

/// Compile the Gateway API objects of `input` into `builder` (gateway bindings and their rules)
/// and compute their status.
pub fn compile(
    input: &Input,
    options: &Options,
    default_retries: &Arc<RetryPolicy>,
    builder: &mut SnapshotBuilder,
) -> Status {
    let world = World {
        input,
        options,
        services: input.services.iter().map(|s| ((s.namespace.as_str(), s.name.as_str()), s)).collect(),
        gateways: input.gateways.iter().map(|g| ((&*g.namespace, &*g.name), g)).collect(),
    };
    let mut status = Status::default();
    // Listener attachment counts and, per (gateway, host), the rules in precedence order.
    let mut attached = Attached::new();
    let mut hosts = HostRules::new();
    let mut mesh = mesh::MeshRules::new();

    // Every route, oldest first (precedence's tie-break, and the order rules merge in).
    let mut routes: Vec<RouteIn<'_>> = input
        .http_routes
        .iter()
        .map(|r| RouteIn {
            kind: "HTTPRoute",
            generation: r.generation,
            namespace: &r.namespace,
            name: &r.name,
            created: &r.created,
            parent_refs: &r.spec.parent_refs,
            hostnames: &r.spec.hostnames,
            converted: rules::convert(&r.namespace, &r.name, &r.created, &r.spec, &world, default_retries),
        })
        .chain(input.grpc_routes.iter().map(|r| RouteIn {
            kind: "GRPCRoute",
            generation: r.generation,
            namespace: &r.namespace,
            name: &r.name,
            created: &r.created,
            parent_refs: &r.spec.parent_refs,
            hostnames: &r.spec.hostnames,
            converted: rules::convert_grpc(&r.namespace, &r.name, &r.created, &r.spec, &world, default_retries),
        }))
        .collect();
    routes.sort_by(|a, b| (a.created, a.namespace, a.name).cmp(&(b.created, b.namespace, b.name)));
    for route in &routes {
        let converted = &route.converted;
        let resolved = match converted.backend_problem {
            None => Condition::new("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
            Some(p) => Condition::new("ResolvedRefs", false, p.reason(), p.message()),
        };
        let mut parents = Vec::new();
        for parent in route.parent_refs {
            let group = parent.group.as_deref().unwrap_or(GROUP);
            let kind = parent.kind.as_deref().unwrap_or("Gateway");
            let ns = parent.namespace.as_deref().unwrap_or(route.namespace);
            let parent_ref = ParentRefStatus {
                group: group.to_string(),
                kind: kind.to_string(),
                namespace: ns.to_string(),
                name: parent.name.clone(),
                section_name: parent.section_name.clone(),
                port: parent.port,
            };
            if (group.is_empty() || group == "core") && kind == "Service" {
                let accepted = mesh::attach_mesh(&world, parent, ns, route, &mut mesh);
                parents.push(ParentStatus { parent_ref, conditions: vec![accepted, resolved.clone()] });
                continue;
            }
            if group != GROUP || kind != "Gateway" {
                // Other parents belong to other controllers.
                continue;
            }
            let gateway = world.gateways.get(&(ns, parent.name.as_str())).copied();
            if let Some(g) = gateway
                && !world.class_served(&g.spec)
            {
                continue;
            }
            let accepted = match gateway {
                None => Condition::new("Accepted", false, "NoMatchingParent", "no such Gateway"),
                Some(g) => attach(&world, g, parent, route, &mut attached, &mut hosts),
            };
            parents.push(ParentStatus { parent_ref, conditions: vec![accepted, resolved.clone()] });
        }
        for p in &mut parents {
            status::observe(&mut p.conditions, route.generation);
        }
        if !parents.is_empty() {
            status.routes.push(RouteStatus {
                kind: route.kind,
                namespace: route.namespace.to_string(),
                name: route.name.to_string(),
                parents,
            });
        }
    }

    for g in input.gateways.iter().filter(|g| world.class_served(&g.spec)) {
        // Each listener's TLS (HTTPS: its certificateRefs' Secret); a listener whose certificate
        // does not resolve is not programmed (no server: its port does not serve plain text).
        let tls: Vec<Result<Option<ServerTls>, (&'static str, String)>> =
            g.spec.listeners.iter().map(|l| world.listener_tls(g, l)).collect();
        // HTTP and HTTPS listeners are served; two of them on one port with different
        // protocols conflict (one port cannot be both), and neither is programmed.
        let served = |l: &Listener| matches!(l.protocol.as_str(), "HTTP" | "HTTPS");
        let conflicted: Vec<bool> = g
            .spec
            .listeners
            .iter()
            .map(|l| {
                served(l) && g.spec.listeners.iter().any(|o| served(o) && o.port == l.port && o.protocol != l.protocol)
            })
            .collect();
        let servers = g
            .spec
            .listeners
            .iter()
            .zip(&tls)
            .zip(&conflicted)
            .filter(|((l, _), conflicted)| served(l) && !**conflicted)
            .filter_map(|((l, tls), _)| {
                Some(GatewayServer {
                    port: u16::try_from(l.port).ok()?,
                    port_name: Arc::from(l.name.as_str()),
                    protocol: Arc::from(l.protocol.to_ascii_uppercase().as_str()),
                    hosts: Box::new([(Arc::from("*"), Arc::from(l.hostname.as_deref().unwrap_or("*")))]),
                    tls: tls.as_ref().ok()?.clone(),
                })
            })
            .collect();
        builder.add_gateway(GatewayDecl {
            namespace: g.namespace.clone(),
            name: g.name.clone(),
            servers,
            selector: CoreSelector(Box::new([])),
        });
        let listeners = g
            .spec
            .listeners
            .iter()
            .zip(&tls)
            .enumerate()
            .map(|(i, (l, tls))| {
                let accepted = if served(l) {
                    Condition::new("Accepted", true, "Accepted", "listener accepted")
                } else {
                    let message = format!("meshwork serves HTTP and HTTPS listeners, not {}", l.protocol);
                    Condition::new("Accepted", false, "UnsupportedProtocol", message)
                };
                let conflict = if conflicted[i] {
                    Condition::new(
                        "Conflicted",
                        true,
                        "ProtocolConflict",
                        "another listener uses this port with another protocol",
                    )
                } else {
                    Condition::new("Conflicted", false, "NoConflicts", "no conflicts")
                };
                let refs = match tls {
                    Ok(_) => Condition::new("ResolvedRefs", true, "ResolvedRefs", "references resolved"),
                    Err((reason, message)) => Condition::new("ResolvedRefs", false, reason, message.clone()),
                };
                let programmed = match (served(l), conflicted[i], tls) {
                    (true, false, Ok(_)) => Condition::new("Programmed", true, "Programmed", "listener programmed"),
                    (false, _, _) => Condition::new("Programmed", false, "Invalid", "the protocol is not served"),
                    (_, true, _) => {
                        Condition::new("Programmed", false, "Invalid", "the listener conflicts with another")
                    }
                    (_, _, Err(_)) => {
                        Condition::new("Programmed", false, "Invalid", "the listener's certificate does not resolve")
                    }
                };
                ListenerStatus {
                    name: l.name.clone(),
                    attached_routes: attached.get(&(g.namespace.clone(), g.name.clone(), i)).copied().unwrap_or(0),
                    conditions: vec![accepted, conflict, refs, programmed],
                }
            })
            .collect();
        let mut listeners: Vec<ListenerStatus> = listeners;
        for l in &mut listeners {
            status::observe(&mut l.conditions, g.generation);
        }
        // The Gateway is programmed when one of its listeners is (the spec: `Programmed` False,
        // reason `Invalid`, when none can serve).
        let any_programmed =
            listeners.iter().any(|l| l.conditions.iter().any(|c| c.kind == "Programmed" && c.status == "True"));
        let mut conditions = vec![
            Condition::new("Accepted", true, "Accepted", "served by meshwork"),
            if any_programmed {
                Condition::new("Programmed", true, "Programmed", "served by meshwork")
            } else {
                Condition::new("Programmed", false, "Invalid", "no listener is programmed")
            },
        ];
        status::observe(&mut conditions, g.generation);
        status.gateways.push(GatewayStatus {
            namespace: g.namespace.to_string(),
            name: g.name.to_string(),
            conditions,
            listeners,
        });
    }

    for ((gw_ns, gw_name, host), slot) in hosts {
        let mut ordered = slot.rules;
        ordered.sort_by(|a, b| a.1.key.cmp(&b.1.key));
        let owner = format!("gateway-api/{gw_ns}/{gw_name}");
        let rules = ordered.into_iter().map(|(_, o)| o.rule).collect();
        // Under a Gateway binding several owners merge; this cannot conflict.
        let _ = builder.add_routes(Binding::gateway(&gw_ns, &gw_name), &host, &owner, rules);
    }
    mesh::emit(mesh, default_retries, builder, &mut status);
    status
}

/// A `ServerTls` with nothing set.
fn plain_tls() -> ServerTls {
    ServerTls {
        https_redirect: false,
        mode: None,
        server_certificate: None,
        private_key: None,
        ca_certificates: None,
        subject_alt_names: Box::new([]),
        credential: None,
    }
}

/// A route of either kind, converted, with what attachment reads.
struct RouteIn<'a> {
    kind: &'static str,
    generation: i64,
    namespace: &'a Arc<str>,
    name: &'a Arc<str>,
    created: &'a String,
    parent_refs: &'a [ParentRef],
    hostnames: &'a [String],
    converted: rules::Converted,
}

/// Attach `route` to the listeners of `g` that `parent` selects; the parent's `Accepted`.
fn attach(
    world: &World<'_>,
    g: &Object<Gateway>,
    parent: &ParentRef,
    route: &RouteIn<'_>,
    attached: &mut Attached,
    hosts: &mut HostRules,
) -> Condition {
    let converted = &route.converted;
    let selected: Vec<(usize, &Listener)> = g
        .spec
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| parent.section_name.as_deref().is_none_or(|s| s == l.name))
        .filter(|(_, l)| parent.port.is_none_or(|p| p == l.port))
        .collect();
    if selected.is_empty() {
        return Condition::new("Accepted", false, "NoMatchingParent", "no listener matches the sectionName or port");
    }
    let allowed: Vec<&(usize, &Listener)> =
        selected.iter().filter(|(_, l)| world.allows(&g.namespace, l, route.namespace, route.kind)).collect();
    if allowed.is_empty() {
        return Condition::new("Accepted", false, "NotAllowedByListeners", "no listener allows this route");
    }
    // A Gateway with listeners on several ports serves a route only on the ports of the
    // listeners it attached to (Istio binds the route to those listeners' servers): its rules
    // carry the port as a match condition there.
    let first_port = g.spec.listeners.first().map(|l| l.port);
    let several_ports = g.spec.listeners.iter().any(|l| Some(l.port) != first_port);
    let mut any = false;
    for (i, l) in allowed {
        let names = intersect_hostnames(l.hostname.as_deref(), route.hostnames);
        if names.is_empty() {
            continue;
        }
        any = true;
        *attached.entry((g.namespace.clone(), g.name.clone(), *i)).or_default() += 1;
        let port = u16::try_from(l.port).ok().filter(|_| several_ports);
        for host in names {
            let slot = hosts.entry((g.namespace.clone(), g.name.clone(), host)).or_default();
            for o in &converted.rules {
                // The same route attached through two listeners with the same host and port adds
                // its rules once.
                if !slot.seen.insert((port, o.key.clone())) {
                    continue;
                }
                let mut ordered = o.clone();
                if port.is_some() {
                    let mut rule = (*o.rule).clone();
                    let mut matches = rule.matches.to_vec();
                    for m in &mut matches {
                        m.port = port;
                    }
                    rule.matches = matches.into_boxed_slice();
                    ordered.rule = Arc::new(rule);
                }
                slot.rules.push((port, ordered));
            }
        }
    }
    if any {
        Condition::new("Accepted", true, "Accepted", "route accepted")
    } else {
        Condition::new("Accepted", false, "NoMatchingListenerHostname", "no listener hostname intersects the route's")
    }
}
