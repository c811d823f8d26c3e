//! Typed mirrors of Istio's `networking.istio.io` and `security.istio.io` ([`security`]) resources,
//! and of the Kubernetes resources
//! meshwork reads for service discovery ([`kube`]: Service, Pod, Namespace, Node, EndpointSlice).
//!
//! The same Rust types serve `v1alpha3`, `v1beta1` and `v1`: Istio serves one schema under all
//! three versions. Field names and enum spellings are Istio's, so YAML written for Istio reads
//! unchanged; unknown fields are reported with the closest known name by the loader.

pub mod destination_rule;
pub mod gateway;
pub mod gateway_api;
pub mod kube;
pub mod security;
pub mod service_entry;
pub mod virtual_service;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

pub use destination_rule::DestinationRule;
pub use gateway::Gateway;
pub use security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
pub use service_entry::{ServiceEntry, WorkloadEntry};
pub use virtual_service::VirtualService;

use crate::diag::ResourceRef;
use crate::yaml::Node;

/// The kinds of resource meshwork reads: `networking.istio.io` kinds, and the Kubernetes kinds of
/// service discovery (core `v1` Service, Pod, Namespace, Node; `discovery.k8s.io/v1`
/// EndpointSlice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Routing rules.
    VirtualService,
    /// Policies for a destination and its subsets.
    DestinationRule,
    /// Listeners of an ingress or egress gateway.
    Gateway,
    /// A service added to the registry.
    ServiceEntry,
    /// A workload (endpoint) added to the registry.
    WorkloadEntry,
    /// A Kubernetes Service (core `v1`).
    Service,
    /// A Kubernetes Pod (core `v1`; metadata, IPs and node).
    Pod,
    /// A Kubernetes Namespace (core `v1`; labels).
    Namespace,
    /// A Kubernetes Node (core `v1`; labels, for locality).
    Node,
    /// A Kubernetes EndpointSlice (`discovery.k8s.io/v1`).
    EndpointSlice,
    /// Mutual TLS settings of workloads (`security.istio.io`).
    PeerAuthentication,
    /// Access control of workloads (`security.istio.io`).
    AuthorizationPolicy,
    /// JWT validation of workloads' requests (`security.istio.io`).
    RequestAuthentication,
    /// A Kubernetes Secret (core `v1`; `kubernetes.io/tls` ones are read).
    Secret,
    /// A Gateway API GatewayClass (`gateway.networking.k8s.io`).
    GatewayClass,
    /// A Gateway API Gateway (`gateway.networking.k8s.io`; not Istio's `Gateway`).
    KubeGateway,
    /// A Gateway API HTTPRoute.
    HttpRoute,
    /// A Gateway API GRPCRoute.
    GrpcRoute,
    /// A Gateway API ReferenceGrant.
    ReferenceGrant,
}

impl Kind {
    /// The Kubernetes `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::Gateway => "Gateway",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::Service => "Service",
            Kind::Pod => "Pod",
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::Secret => "Secret",
            Kind::GatewayClass => "GatewayClass",
            // Qualified, as `kubectl` names it, so that it never shares an identity with an
            // Istio Gateway of the same namespace and name.
            Kind::KubeGateway => "Gateway.gateway.networking.k8s.io",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
        }
    }

    /// The API group of the kind: `networking.istio.io`, `security.istio.io`, `""` (core) or
    /// `discovery.k8s.io`.
    pub fn group(self) -> &'static str {
        match self {
            Kind::VirtualService | Kind::DestinationRule | Kind::Gateway | Kind::ServiceEntry | Kind::WorkloadEntry => {
                crate::load::GROUP
            }
            Kind::Service | Kind::Pod | Kind::Namespace | Kind::Node | Kind::Secret => "",
            Kind::EndpointSlice => kube::DISCOVERY_GROUP,
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                crate::load::SECURITY_GROUP
            }
            Kind::GatewayClass | Kind::KubeGateway | Kind::HttpRoute | Kind::GrpcRoute | Kind::ReferenceGrant => {
                gateway_api::GROUP
            }
        }
    }

    /// Is this one of the Gateway API kinds?
    pub fn is_gateway_api(self) -> bool {
        self.group() == gateway_api::GROUP
    }

    /// The Gateway API kind for a `kind` of the `gateway.networking.k8s.io` group; `None` for
    /// the kinds meshwork does not serve (TLSRoute, TCPRoute, UDPRoute, ...).
    pub fn gateway_api(kind: &str) -> Option<Kind> {
        Some(match kind {
            "GatewayClass" => Kind::GatewayClass,
            "Gateway" => Kind::KubeGateway,
            "HTTPRoute" => Kind::HttpRoute,
            "GRPCRoute" => Kind::GrpcRoute,
            "ReferenceGrant" => Kind::ReferenceGrant,
            _ => return None,
        })
    }

    /// Is this one of the Kubernetes kinds (not an Istio kind)?
    pub fn is_kubernetes(self) -> bool {
        matches!(self, Kind::Service | Kind::Pod | Kind::Namespace | Kind::Node | Kind::EndpointSlice | Kind::Secret)
    }

    /// Is this one of the `security.istio.io` kinds?
    pub fn is_security(self) -> bool {
        matches!(self, Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication)
    }

    /// The Kubernetes kind meshwork reads for an `apiVersion` and `kind` (`v1` `Service`,
    /// `discovery.k8s.io/v1` `EndpointSlice`...); `None` for anything else.
    pub fn kubernetes(api_version: &str, kind: &str) -> Option<Kind> {
        match (api_version, kind) {
            ("v1", "Service") => Some(Kind::Service),
            ("v1", "Pod") => Some(Kind::Pod),
            ("v1", "Namespace") => Some(Kind::Namespace),
            ("v1", "Node") => Some(Kind::Node),
            ("v1", "Secret") => Some(Kind::Secret),
            (kube::DISCOVERY_V1, "EndpointSlice") => Some(Kind::EndpointSlice),
            _ => None,
        }
    }

    /// Parse a `kind` string (Istio and Kubernetes kinds alike; the API group is not checked).
    pub fn parse(kind: &str) -> Option<Kind> {
        Some(match kind {
            "VirtualService" => Kind::VirtualService,
            "DestinationRule" => Kind::DestinationRule,
            "Gateway" => Kind::Gateway,
            "ServiceEntry" => Kind::ServiceEntry,
            "WorkloadEntry" => Kind::WorkloadEntry,
            "Service" => Kind::Service,
            "Pod" => Kind::Pod,
            "Namespace" => Kind::Namespace,
            "Node" => Kind::Node,
            "EndpointSlice" => Kind::EndpointSlice,
            "Secret" => Kind::Secret,
            "PeerAuthentication" => Kind::PeerAuthentication,
            "AuthorizationPolicy" => Kind::AuthorizationPolicy,
            "RequestAuthentication" => Kind::RequestAuthentication,
            "GatewayClass" => Kind::GatewayClass,
            "Gateway.gateway.networking.k8s.io" => Kind::KubeGateway,
            "HTTPRoute" => Kind::HttpRoute,
            "GRPCRoute" => Kind::GrpcRoute,
            "ReferenceGrant" => Kind::ReferenceGrant,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of Kubernetes `metadata` meshwork reads; the rest is accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[allow(dead_code)]
pub(crate) struct ObjectMeta {
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    generate_name: serde::de::IgnoredAny,
    self_link: serde::de::IgnoredAny,
    uid: serde::de::IgnoredAny,
    resource_version: serde::de::IgnoredAny,
    pub(crate) generation: Option<i64>,
    pub(crate) creation_timestamp: Option<String>,
    deletion_timestamp: serde::de::IgnoredAny,
    deletion_grace_period_seconds: serde::de::IgnoredAny,
    owner_references: serde::de::IgnoredAny,
    finalizers: serde::de::IgnoredAny,
    managed_fields: serde::de::IgnoredAny,
}

/// The `spec` of a resource, by kind.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per resource, built once per load
pub enum Spec {
    /// A VirtualService.
    VirtualService(VirtualService),
    /// A DestinationRule.
    DestinationRule(DestinationRule),
    /// A Gateway.
    Gateway(Gateway),
    /// A ServiceEntry.
    ServiceEntry(ServiceEntry),
    /// A WorkloadEntry.
    WorkloadEntry(WorkloadEntry),
    /// A Kubernetes Service.
    Service(kube::Service),
    /// A Kubernetes Pod.
    Pod(kube::Pod),
    /// A Kubernetes Namespace.
    Namespace(kube::Namespace),
    /// A Kubernetes Node.
    Node(kube::Node),
    /// A Kubernetes EndpointSlice.
    EndpointSlice(kube::EndpointSlice),
    /// A PeerAuthentication.
    PeerAuthentication(PeerAuthentication),
    /// An AuthorizationPolicy.
    AuthorizationPolicy(AuthorizationPolicy),
    /// A RequestAuthentication.
    RequestAuthentication(RequestAuthentication),
    /// A Kubernetes Secret.
    Secret(kube::Secret),
    /// A Gateway API GatewayClass.
    GatewayClass(gateway_api::GatewayClass),
    /// A Gateway API Gateway.
    KubeGateway(gateway_api::Gateway),
    /// A Gateway API HTTPRoute.
    HttpRoute(gateway_api::HttpRoute),
    /// A Gateway API GRPCRoute.
    GrpcRoute(gateway_api::GrpcRoute),
    /// A Gateway API ReferenceGrant.
    ReferenceGrant(gateway_api::ReferenceGrant),
}

impl Spec {
    /// The metadata of a Kubernetes object (`None` for the Istio kinds, whose metadata is on
    /// [`Resource`]).
    pub fn kube_metadata(&self) -> Option<&kube::Metadata> {
        match self {
            Spec::Service(s) => Some(&s.metadata),
            Spec::Pod(p) => Some(&p.metadata),
            Spec::Namespace(n) => Some(&n.metadata),
            Spec::Secret(s) => Some(&s.metadata),
            Spec::Node(n) => Some(&n.metadata),
            Spec::EndpointSlice(e) => Some(&e.metadata),
            Spec::VirtualService(_)
            | Spec::DestinationRule(_)
            | Spec::Gateway(_)
            | Spec::ServiceEntry(_)
            | Spec::WorkloadEntry(_)
            | Spec::PeerAuthentication(_)
            | Spec::AuthorizationPolicy(_)
            | Spec::RequestAuthentication(_)
            | Spec::GatewayClass(_)
            | Spec::KubeGateway(_)
            | Spec::HttpRoute(_)
            | Spec::GrpcRoute(_)
            | Spec::ReferenceGrant(_) => None,
        }
    }

    pub(crate) fn kube_metadata_mut(&mut self) -> Option<&mut kube::Metadata> {
        match self {
            Spec::Service(s) => Some(&mut s.metadata),
            Spec::Pod(p) => Some(&mut p.metadata),
            Spec::Namespace(n) => Some(&mut n.metadata),
            Spec::Secret(s) => Some(&mut s.metadata),
            Spec::Node(n) => Some(&mut n.metadata),
            Spec::EndpointSlice(e) => Some(&mut e.metadata),
            Spec::VirtualService(_)
            | Spec::DestinationRule(_)
            | Spec::Gateway(_)
            | Spec::ServiceEntry(_)
            | Spec::WorkloadEntry(_)
            | Spec::PeerAuthentication(_)
            | Spec::AuthorizationPolicy(_)
            | Spec::RequestAuthentication(_)
            | Spec::GatewayClass(_)
            | Spec::KubeGateway(_)
            | Spec::HttpRoute(_)
            | Spec::GrpcRoute(_)
            | Spec::ReferenceGrant(_) => None,
        }
    }
}

/// A resource read from YAML, with where it came from.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Kind.
    pub kind: Kind,
    /// `apiVersion` as written (`networking.istio.io/v1`, ...).
    pub api_version: Arc<str>,
    /// `metadata.name`.
    pub name: Arc<str>,
    /// `metadata.namespace`, or the loader's default namespace.
    pub namespace: Arc<str>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.creationTimestamp` (RFC 3339), when the object has one (objects from the API
    /// server and `kubectl get -o yaml` output do; hand-written files usually do not). The
    /// Gateway API orders routes of equal precedence by it, oldest first.
    pub creation_timestamp: Option<Arc<str>>,
    /// `metadata.generation`, when the object has one (the API server's; reported as the
    /// Gateway API status' `observedGeneration`).
    pub generation: Option<i64>,
    /// File it was read from (`None` for strings).
    pub file: Option<Arc<str>>,
    /// Line of the document's first key.
    pub line: u32,
    /// The typed spec (for a Kubernetes kind, the whole object: its metadata too).
    pub spec: Spec,
    /// The spec's YAML tree (a Kubernetes kind's whole document), to give lines to validation
    /// messages.
    pub(crate) spec_node: Option<Arc<Node>>,
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.api_version == other.api_version
            && self.name == other.name
            && self.namespace == other.namespace
            && self.labels == other.labels
            && self.annotations == other.annotations
            && self.spec == other.spec
    }
}

impl Resource {
    /// The `(kind, namespace, name)` identity of this resource.
    pub fn id(&self) -> ResourceRef {
        ResourceRef { kind: Arc::from(self.kind.as_str()), namespace: self.namespace.clone(), name: self.name.clone() }
    }
}
