//! The kinds meshwork reads from the API server, as kube-rs [`ApiResource`]s.

use kube::core::ApiResource;

/// One kind to watch.
#[derive(Debug, Clone)]
pub struct WatchedKind {
    /// Group, version, kind and plural, as the API server names them.
    pub resource: ApiResource,
    /// Cluster-scoped (Namespace, Node): watched across the cluster, never per namespace.
    pub cluster_scoped: bool,
    /// A label selector the watch sends (EndpointSlices: not those of multi-cluster services).
    pub label_selector: Option<&'static str>,
    /// A field selector the watch sends (Pods: not the failed ones).
    pub field_selector: Option<&'static str>,
    /// A kind that may be missing or forbidden without harm: a 403 or 404 lists it as empty
    /// (logged once) instead of holding readiness back. Nodes (only locality reads them) and
    /// Istio's kinds (a cluster without Istio's CRDs has none).
    pub optional: bool,
}

fn kind(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version,
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// The kinds to watch: Istio's networking kinds (`networking.istio.io/v1`), Services, Pods,
/// EndpointSlices, and with `namespaces_and_nodes` the cluster-scoped Namespaces and Nodes (a
/// namespaced Role cannot grant those).
///
/// The selectors are Istio's: EndpointSlices without `multicluster.kubernetes.io/service-name`
/// (`endpointSliceSelector`, `pilot/pkg/serviceregistry/kube/controller/endpointslice.go`), Pods
/// whose `status.phase!=Failed` (`c.podsClient` in `controller/controller.go`). Pods are watched
/// whole, not with `metadata_watcher`: an endpoint needs the Pod's `status.podIP(s)` and
/// `spec.nodeName` beside its labels, and Istio's pod client reads whole Pods too (with
/// `StripPodUnusedFields`; mesh-config keeps only the fields it reads).
pub fn kinds(namespaces_and_nodes: bool, nodes: bool) -> Vec<WatchedKind> {
    let plain = |resource, optional| WatchedKind {
        resource,
        cluster_scoped: false,
        label_selector: None,
        field_selector: None,
        optional,
    };
    let mut out = vec![
        plain(kind("networking.istio.io", "v1", "VirtualService", "virtualservices"), true),
        plain(kind("networking.istio.io", "v1", "DestinationRule", "destinationrules"), true),
        plain(kind("networking.istio.io", "v1", "Gateway", "gateways"), true),
        plain(kind("networking.istio.io", "v1", "ServiceEntry", "serviceentries"), true),
        plain(kind("networking.istio.io", "v1", "WorkloadEntry", "workloadentries"), true),
        plain(kind("", "v1", "Service", "services"), false),
        WatchedKind { field_selector: Some("status.phase!=Failed"), ..plain(kind("", "v1", "Pod", "pods"), false) },
        WatchedKind {
            label_selector: Some("!multicluster.kubernetes.io/service-name"),
            ..plain(kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"), false)
        },
    ];
    if namespaces_and_nodes {
        out.push(WatchedKind { cluster_scoped: true, ..plain(kind("", "v1", "Namespace", "namespaces"), true) });
        if nodes {
            out.push(WatchedKind { cluster_scoped: true, ..plain(kind("", "v1", "Node", "nodes"), true) });
        }
    }
    out
}
