//! The kinds meshwork reads from the API server, as kube-rs [`ApiResource`]s.
//!
//! Each kind is read in one version — `v1`, except the Gateway API's ReferenceGrant, read as
//! `v1beta1` — with no fallback (a kind not served in that version reads as none): see
//! [`kinds`] ("Versions").

use kube::core::ApiResource;
use mesh_config::Kind;

/// One kind to watch.
#[derive(Debug, Clone)]
pub struct WatchedKind {
    /// Group, version, kind and plural, as the API server names them.
    pub resource: ApiResource,
    /// The kind as meshwork's store names it ([`Kind::as_str`]): the API kind, except the
    /// Gateway API's Gateway, `Gateway.gateway.networking.k8s.io`, so that it never shares an
    /// identity (or a list's [`Scope`](mesh_config::store::Scope)) with Istio's Gateway.
    pub kind: Kind,
    /// Cluster-scoped (Namespace, Node, GatewayClass): watched across the cluster, never per
    /// namespace.
    pub cluster_scoped: bool,
    /// A label selector the watch sends (EndpointSlices: not those of multi-cluster services).
    pub label_selector: Option<&'static str>,
    /// A field selector the watch sends (Pods: not the failed ones; Secrets: only
    /// `kubernetes.io/tls` ones).
    pub field_selector: Option<&'static str>,
    /// A kind that may be missing or forbidden without harm: a 403 or 404 lists it as empty
    /// (logged once) instead of holding readiness back. Nodes (only locality reads them),
    /// Istio's kinds (a cluster without Istio's CRDs has none), the Gateway API's (a cluster
    /// without its CRDs has none) and Secrets (a cluster admin may withhold them: HTTPS
    /// listeners then stay unprogrammed).
    pub optional: bool,
}

/// The field selector of the Secret watch: only the certificates of HTTPS listeners.
pub(crate) const TLS_SECRETS: &str = "type=kubernetes.io/tls";

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version,
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// The kinds to watch: Istio's networking kinds (`networking.istio.io/v1`) and security kinds
/// (`security.istio.io/v1`: PeerAuthentication, AuthorizationPolicy, RequestAuthentication),
/// the Gateway API's Gateway, HTTPRoute, GRPCRoute and ReferenceGrant
/// (`gateway.networking.k8s.io/v1`), `kubernetes.io/tls` Secrets (the certificates of the
/// Gateway API's HTTPS listeners), Services, Pods, EndpointSlices, and with `cluster_wide`
/// the cluster-scoped Namespaces, GatewayClasses and (with `nodes`) Nodes — a namespaced Role
/// cannot grant those. Istio's and the Gateway API's kinds and Secrets are optional (see
/// [`WatchedKind`]); each is read in `v1` only (below).
///
/// The selectors are Istio's: EndpointSlices without `multicluster.kubernetes.io/service-name`
/// (`endpointSliceSelector`, `pilot/pkg/serviceregistry/kube/controller/endpointslice.go`), Pods
/// whose `status.phase!=Failed` (`c.podsClient` in `controller/controller.go`). Pods are watched
/// whole, not with `metadata_watcher`: an endpoint needs the Pod's `status.podIP(s)` and
/// `spec.nodeName` beside its labels, and Istio's pod client reads whole Pods too (with
/// `StripPodUnusedFields`; mesh-config keeps only the fields it reads).
///
/// Secrets are listed with `fieldSelector=type=kubernetes.io/tls` (the API server supports the
/// `type` field selector for Secrets), so the API server never sends the others: a Gateway API
/// listener's `certificateRefs` name a TLS Secret, and nothing else meshwork reads is a Secret.
/// Istio's credentials controller (`pilot/pkg/credentials/kube/secrets.go`) watches Secrets
/// too, leaving out by field selector only Helm releases and service-account tokens; meshwork
/// asks for the TLS type alone. A 403 (the role withholds `secrets`) reads as none.
/// Of each Secret only its name, namespace, labels, `type`, `tls.crt` and `tls.key` are handed
/// on ([`decode`](crate::decode())): not its annotations (`kubectl apply`'s
/// `last-applied-configuration` would repeat the key) nor other keys.
///
/// # Versions
///
/// Each kind is watched in one version: `v1` for Istio's kinds (`networking.istio.io`,
/// `security.istio.io`) and the Gateway API's (`gateway.networking.k8s.io`), except
/// ReferenceGrant. There is no fallback to another version (one watch per kind, of one
/// [`ApiResource`]): a cluster that does not serve the version answers the list with 404, which
/// reads as "none", logged once, like any optional kind that is not installed. GRPCRoute is `v1`
/// from Gateway API v1.1. ReferenceGrant became `v1` only in v1.5 (kubernetes-sigs/gateway-api#4458)
/// and `v1beta1` is still served (and is the storage version) there and in v1.6, so it is read as
/// `v1beta1`: every release of the range the project targets (v1.4–v1.6) serves that, and the
/// two versions have the same fields.
pub fn kinds(cluster_wide: bool, nodes: bool) -> Vec<WatchedKind> {
    // The API kind is `kind.as_str()` except for the Gateway API's Gateway.
    let plain = |kind: Kind, version: &str, plural: &str, optional: bool| {
        let api_kind = if kind == Kind::KubeGateway { "Gateway" } else { kind.as_str() };
        WatchedKind {
            resource: resource(kind.group(), version, api_kind, plural),
            kind,
            cluster_scoped: false,
            label_selector: None,
            field_selector: None,
            optional,
        }
    };
    let mut out = vec![
        plain(Kind::VirtualService, "v1", "virtualservices", true),
        plain(Kind::DestinationRule, "v1", "destinationrules", true),
        plain(Kind::Gateway, "v1", "gateways", true),
        plain(Kind::ServiceEntry, "v1", "serviceentries", true),
        plain(Kind::WorkloadEntry, "v1", "workloadentries", true),
        plain(Kind::PeerAuthentication, "v1", "peerauthentications", true),
        plain(Kind::AuthorizationPolicy, "v1", "authorizationpolicies", true),
        plain(Kind::RequestAuthentication, "v1", "requestauthentications", true),
        plain(Kind::KubeGateway, "v1", "gateways", true),
        plain(Kind::HttpRoute, "v1", "httproutes", true),
        plain(Kind::GrpcRoute, "v1", "grpcroutes", true),
        plain(Kind::ReferenceGrant, "v1beta1", "referencegrants", true),
        WatchedKind { field_selector: Some(TLS_SECRETS), ..plain(Kind::Secret, "v1", "secrets", true) },
        plain(Kind::Service, "v1", "services", false),
        WatchedKind { field_selector: Some("status.phase!=Failed"), ..plain(Kind::Pod, "v1", "pods", false) },
        WatchedKind {
            label_selector: Some("!multicluster.kubernetes.io/service-name"),
            ..plain(Kind::EndpointSlice, "v1", "endpointslices", false)
        },
    ];
    if cluster_wide {
        out.push(WatchedKind { cluster_scoped: true, ..plain(Kind::Namespace, "v1", "namespaces", true) });
        out.push(WatchedKind { cluster_scoped: true, ..plain(Kind::GatewayClass, "v1", "gatewayclasses", true) });
        if nodes {
            out.push(WatchedKind { cluster_scoped: true, ..plain(Kind::Node, "v1", "nodes", true) });
        }
    }
    out
}
