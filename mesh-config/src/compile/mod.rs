//! Compile validated resources into a [`mesh_core::Snapshot`].
//!
//! Done once per configuration change: hosts are qualified (`reviews` in namespace `bookinfo`
//! becomes `reviews.bookinfo.svc.cluster.local`), regexes compiled, weights turned into cumulative
//! tables, durations parsed, defaults filled in the way Istio fills them, and VirtualService rules
//! split per binding (the mesh, or each Gateway) honouring `match[].gateways`.
//!
//! A VirtualService bound to a Gateway serves, on that Gateway, only those of its hosts that a
//! server of the Gateway exposes to the VirtualService's namespace (`prod/*.example.com` exposes
//! `*.example.com` to VirtualServices of `prod`; `*/` or no prefix, to every namespace), and each
//! under the narrower of the two names: `hosts: ["*"]` behind a server host `*.example.com` routes
//! `*.example.com` (Istio's `pickMatchingGatewayHosts`). A host no server exposes is left out with
//! a warning (Istio's analyzer: IST0132). Istio builds a Gateway's routes per port: a host exposed
//! on some of the Gateway's ports only gets its rules with `port` conditions for those ports (the
//! listener's port, `mesh_tower::Listener`).
//!
//! Resources are expected to have passed [`crate::validate()`]; anything that still cannot be
//! compiled is left out with a diagnostic, never a panic.
//!
//! One module per kind, as [`validate`](mod@crate::validate) is split:
//!
//! - `virtual_service`: a VirtualService's rules per binding and host (Gateway host narrowing,
//!   per-port restriction, delegation), and its `tcp[]`/`tls[]` rules;
//! - `http_route`: one `http[]` rule: matches, action, retries, faults, CORS, header edits;
//! - `destination_rule`: traffic policies and subsets;
//! - `gateway`: Gateway servers;
//! - `service_entry`: ServiceEntries and WorkloadEntries;
//! - `kube`: Kubernetes Services, with endpoints from EndpointSlices and Pods;
//! - `security`: PeerAuthentications, AuthorizationPolicies and RequestAuthentications (their JWT
//!   rules, with Istio's defaults), with the meshConfig settings of [`CompileOptions::mesh`], into
//!   [`mesh_core::security::Security`].

mod destination_rule;
mod gateway;
mod http_route;
mod kube;
mod security;
mod service_entry;
mod virtual_service;

use std::sync::Arc;
use std::time::Duration;

use mesh_core::Snapshot;
use mesh_core::host::qualify;
use mesh_core::route::{self, RetryPolicy};
use mesh_core::service;
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};

use crate::diag::{Diagnostic, Severity};
use crate::duration::parse_duration;
use crate::types::virtual_service as vs;
use crate::types::{Resource, Spec};

pub use virtual_service::resolve_gateway;

/// Compile options.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Cluster domain for short names.
    pub domain: String,
    /// Compile the view of clients in this namespace: VirtualServices, DestinationRules and
    /// ServiceEntries whose `exportTo` does not include it are left out, as Istio leaves them out
    /// of that namespace's proxies (`.` is the resource's own namespace, `*` every namespace,
    /// `~` none; no `exportTo` is every namespace;
    /// <https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService-export_to>).
    /// A DestinationRule with a `workloadSelector` is never seen outside its namespace (Istio's
    /// `setDestinationRules`). `None` (the default): one snapshot for every namespace, `exportTo`
    /// not applied.
    pub client_namespace: Option<String>,
    /// Leave 503 out of Istio's default retry policy (default `true`, as Istio's
    /// `EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`); see
    /// [`mesh_core::snapshot::Settings::exclude_503_from_default_retries`].
    pub exclude_503_from_default_retries: bool,
    /// What the mesh does with a host nothing declares (Istio's meshConfig
    /// `outboundTrafficPolicy.mode`, default `ALLOW_ANY`); see
    /// [`mesh_core::snapshot::OutboundTrafficPolicy`].
    pub outbound_traffic_policy: mesh_core::snapshot::OutboundTrafficPolicy,
    /// meshConfig settings (root namespace, trust domain and aliases, path normalization; see
    /// [`crate::meshconfig`]).
    pub mesh: crate::meshconfig::MeshConfig,
    /// The Gateway API GatewayClass whose Gateways meshwork serves (`istio`, as Istio's
    /// controller; others are left to their controllers).
    pub gateway_class: String,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            domain: mesh_core::host::DEFAULT_DOMAIN.to_string(),
            client_namespace: None,
            exclude_503_from_default_retries: true,
            outbound_traffic_policy: mesh_core::snapshot::OutboundTrafficPolicy::AllowAny,
            mesh: crate::meshconfig::MeshConfig::default(),
            gateway_class: "istio".to_string(),
        }
    }
}

impl CompileOptions {
    /// The view of clients in `namespace` (see [`CompileOptions::client_namespace`]).
    ///
    /// ```
    /// let options = mesh_config::CompileOptions::for_namespace("bookinfo");
    /// assert_eq!(options.client_namespace.as_deref(), Some("bookinfo"));
    /// ```
    pub fn for_namespace(namespace: &str) -> Self {
        CompileOptions { client_namespace: Some(namespace.to_string()), ..CompileOptions::default() }
    }

    /// Is a resource of `namespace` with `export_to` visible to the client namespace?
    fn visible(&self, namespace: &str, export_to: &[String]) -> bool {
        self.client_namespace.as_deref().is_none_or(|client| exported_to(namespace, export_to, client))
    }
}

/// The result of a compile.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Conflicts and anything left out.
    pub diagnostics: Vec<Diagnostic>,
    /// The status of the Gateway API objects (what a controller would write).
    pub gateway_api: crate::gateway_api::Status,
}

/// Compile resources, in order (earlier VirtualServices win host conflicts under the mesh, as the
/// oldest does in Istio).
pub fn compile(resources: &[Resource], options: &CompileOptions) -> Compiled {
    compile_with(resources, &crate::kube::Index::from_resources(resources), options)
}

/// As [`compile`], the endpoints of Kubernetes Services built from `kube_index` (the
/// EndpointSlices, Pods and Nodes in force) instead of those among `resources`, which then need
/// not hold them (the store keeps them compact and indexes them without a [`Resource`] each).
pub(crate) fn compile_with(
    resources: &[Resource],
    kube_index: &crate::kube::Index<'_>,
    options: &CompileOptions,
) -> Compiled {
    let settings = Settings {
        domain: Arc::from(options.domain.as_str()),
        exclude_503_from_default_retries: options.exclude_503_from_default_retries,
        outbound_traffic_policy: options.outbound_traffic_policy,
    };
    let default_retries = settings.default_retries();
    let mut builder = SnapshotBuilder::new(settings);
    let mut diagnostics = Vec::new();
    // Gateway server hosts first: VirtualServices bound to a Gateway are filtered by them, in
    // whatever order the files list the two.
    let mut gateway_hosts = GatewayHosts::default();
    let empty = Delegates::default();
    for r in resources {
        if let Spec::Gateway(g) = &r.spec {
            let mut scratch = Vec::new();
            let decl = Ctx {
                r,
                domain: &options.domain,
                default_retries: &default_retries,
                diagnostics: &mut scratch,
                gateways: &gateway_hosts,
                delegates: &empty,
                trust_domain: options.mesh.trust_domain(),
            }
            .gateway(g);
            let hosts = decl
                .servers
                .iter()
                .flat_map(|s| s.hosts.iter().map(move |(ns, h)| (ns.clone(), h.clone(), s.port)))
                .collect();
            gateway_hosts.insert(Binding::Gateway { namespace: decl.namespace, name: decl.name }, hosts);
        }
    }
    // Delegate VirtualServices (no hosts), by namespace and name, for the roots that name them.
    let delegates: Delegates<'_> = resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::VirtualService(v) if v.hosts.is_empty() => Some(((&*r.namespace, &*r.name), (r, v))),
            _ => None,
        })
        .collect();
    let mut peer_authentications = Vec::new();
    let mut authorization_policies = Vec::new();
    let mut request_authentications = Vec::new();
    let mut gateway_api = crate::gateway_api::Input::default();
    for r in resources {
        let kube_export_to;
        let export_to = match &r.spec {
            Spec::VirtualService(v) => &v.export_to[..],
            Spec::DestinationRule(d) => &d.export_to[..],
            Spec::ServiceEntry(s) => &s.export_to[..],
            Spec::Service(s) => {
                kube_export_to = s.export_to();
                &kube_export_to[..]
            }
            Spec::Gateway(_)
            | Spec::WorkloadEntry(_)
            | Spec::Pod(_)
            | Spec::Namespace(_)
            | Spec::Secret(_)
            | Spec::Node(_)
            | Spec::EndpointSlice(_)
            | Spec::PeerAuthentication(_)
            | Spec::AuthorizationPolicy(_)
            | Spec::RequestAuthentication(_)
            | Spec::GatewayClass(_)
            | Spec::KubeGateway(_)
            | Spec::HttpRoute(_)
            | Spec::GrpcRoute(_)
            | Spec::ReferenceGrant(_) => &[],
        };
        if !options.visible(&r.namespace, export_to) {
            continue;
        }
        let mut c = Ctx {
            r,
            domain: &options.domain,
            default_retries: &default_retries,
            diagnostics: &mut diagnostics,
            gateways: &gateway_hosts,
            delegates: &delegates,
            trust_domain: options.mesh.trust_domain(),
        };
        match &r.spec {
            Spec::VirtualService(v) => c.virtual_service(&mut builder, v),
            Spec::DestinationRule(d) => builder.add_destination_rule(c.destination_rule(d)),
            Spec::Gateway(g) => builder.add_gateway(c.gateway(g)),
            Spec::ServiceEntry(s) => builder.add_service(c.service_entry(s)),
            Spec::WorkloadEntry(w) => builder.add_workload(service::WorkloadDecl {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                endpoint: service_entry::endpoint(w),
            }),
            Spec::Service(s) => {
                for decl in c.kubernetes_service(s, kube_index) {
                    builder.add_service(decl);
                }
            }
            Spec::PeerAuthentication(p) => peer_authentications.push(security::peer_authentication(r, p)),
            Spec::AuthorizationPolicy(a) => authorization_policies.extend(security::authorization_policy(r, a)),
            Spec::RequestAuthentication(q) => request_authentications.extend(security::request_authentication(r, q)),
            Spec::GatewayClass(c) => gateway_api.classes.push(gateway_api_object(r, c)),
            Spec::KubeGateway(g) => gateway_api.gateways.push(gateway_api_object(r, g)),
            Spec::HttpRoute(h) => gateway_api.http_routes.push(gateway_api_object(r, h)),
            Spec::GrpcRoute(g) => gateway_api.grpc_routes.push(gateway_api_object(r, g)),
            Spec::ReferenceGrant(g) => gateway_api.grants.push(gateway_api_object(r, g)),
            Spec::Pod(_) | Spec::Node(_) | Spec::EndpointSlice(_) => {}
            Spec::Secret(s) => gateway_api.secrets.push(s.clone()),
            Spec::Namespace(n) => {
                gateway_api.namespace_labels.insert(r.name.to_string(), n.metadata.labels.to_map());
            }
        }
        if let Spec::Service(s) = &r.spec {
            gateway_api.services.push(crate::gateway_api::ServiceRef {
                namespace: r.namespace.to_string(),
                name: r.name.to_string(),
                ports: s.spec.ports.iter().filter_map(|p| u32::try_from(p.port).ok()).collect(),
            });
        }
    }
    // The Gateway API after Istio's kinds: a VirtualService that routes a host the mesh's
    // HTTPRoutes also route keeps it (with a warning), as Istio prefers its own API there.
    let status = crate::gateway_api::compile(
        &gateway_api,
        &crate::gateway_api::Options { class: options.gateway_class.clone(), domain: options.domain.clone() },
        &Arc::new(default_retries.clone()),
        &mut builder,
    );
    for host in &status.shadowed_hosts {
        diagnostics.push(Diagnostic {
            severity: crate::diag::Severity::Warning,
            code: None,
            file: None,
            line: 0,
            resource: None,
            path: String::new(),
            message: format!(
                "host {host}: a VirtualService and HTTPRoutes both route it for the mesh; the VirtualService is used and the HTTPRoutes are not"
            ),
        });
    }
    builder.set_security(
        mesh_core::security::Security::new(options.mesh.security(), peer_authentications, authorization_policies)
            .with_request_authentications(request_authentications),
    );
    Compiled { snapshot: builder.build(), diagnostics, gateway_api: status }
}

/// The declarations one Kubernetes Service compiles to, its endpoints built from `index` (which
/// must hold its slices and the Pods and Nodes they name), exactly as [`compile`] makes them
/// from the index of everything; `None` when `r` is no Service or is not visible to the client
/// namespace (then [`compile`] leaves it out too). A Service's compile reads nothing else, so
/// this is what an endpoint change recompiles.
pub(crate) fn kubernetes_service(
    r: &Resource,
    index: &crate::kube::Index<'_>,
    options: &CompileOptions,
) -> Option<Vec<service::ServiceDecl>> {
    let Spec::Service(s) = &r.spec else { return None };
    if !options.visible(&r.namespace, &s.export_to()) {
        return None;
    }
    let settings = Settings {
        domain: Arc::from(options.domain.as_str()),
        exclude_503_from_default_retries: options.exclude_503_from_default_retries,
        outbound_traffic_policy: options.outbound_traffic_policy,
    };
    let default_retries = settings.default_retries();
    let mut diagnostics = Vec::new();
    let decls = Ctx {
        r,
        domain: &options.domain,
        default_retries: &default_retries,
        diagnostics: &mut diagnostics,
        gateways: &GatewayHosts::default(),
        delegates: &Delegates::default(),
        trust_domain: options.mesh.trust_domain(),
    }
    .kubernetes_service(s, index);
    Some(decls)
}

/// A Gateway API object with the metadata its semantics read. An object without a creation
/// time (a hand-written file) sorts as the oldest, and routes of equal precedence and time fall
/// back to the spec's next tie-break (namespace, then name).
fn gateway_api_object<T: Clone>(r: &Resource, spec: &T) -> crate::gateway_api::Object<T> {
    crate::gateway_api::Object {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        created: r.creation_timestamp.as_deref().unwrap_or("").to_string(),
        generation: r.generation.unwrap_or(1),
        spec: spec.clone(),
    }
}

/// Each Gateway's server hosts, as `(namespace or "*", host, port)`.
type GatewayHosts = std::collections::HashMap<Binding, Vec<(Arc<str>, Arc<str>, u16)>>;

/// Delegate VirtualServices by `(namespace, name)`.
type Delegates<'r> = std::collections::HashMap<(&'r str, &'r str), (&'r Resource, &'r vs::VirtualService)>;

struct Ctx<'a> {
    r: &'a Resource,
    domain: &'a str,
    /// The retry policy of routes that set none (Istio's default, by the options).
    default_retries: &'a RetryPolicy,
    diagnostics: &'a mut Vec<Diagnostic>,
    gateways: &'a GatewayHosts,
    delegates: &'a Delegates<'a>,
    /// meshConfig `trustDomain`, for the SPIFFE identities of service accounts.
    trust_domain: &'a str,
}

/// Is a resource of `namespace` with `export_to` visible from namespace `to`?
fn exported_to(namespace: &str, export_to: &[String], to: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_str() {
            "*" => true,
            "~" => false,
            "." => namespace == to,
            other => other == to,
        })
}

fn arc(s: &str) -> Arc<str> {
    Arc::from(s)
}

fn opt_arc(s: &Option<String>) -> Option<Arc<str>> {
    s.as_deref().filter(|v| !v.is_empty()).map(arc)
}

fn duration(s: &Option<String>) -> Option<Duration> {
    s.as_deref().and_then(|t| parse_duration(t).ok())
}

fn port16(p: u32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

impl Ctx<'_> {
    fn note(&mut self, severity: Severity, path: String, message: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            code: None,
            file: self.r.file.clone(),
            line: self.r.line,
            resource: Some(self.r.id()),
            path,
            message,
        });
    }

    fn host(&self, h: &str) -> Arc<str> {
        Arc::from(qualify(h, &self.r.namespace, self.domain))
    }

    fn destination(&self, d: &vs::Destination) -> route::Destination {
        route::Destination {
            host: self.host(&d.host),
            subset: opt_arc(&d.subset),
            port: d.port.as_ref().and_then(|p| port16(p.number)),
        }
    }
}
