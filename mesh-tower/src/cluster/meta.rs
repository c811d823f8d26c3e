//! The labels telemetry reports for a cluster's endpoints, derived once per cluster build from
//! the workload labels (Istio's canonical service and revision rules).

use std::sync::Arc;

use crate::registry::Endpoint;

/// The labels telemetry reports for an endpoint (computed once per cluster build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMeta {
    /// `destination_workload`.
    pub workload: Arc<str>,
    /// `destination_workload_namespace`.
    pub namespace: Arc<str>,
    /// `destination_app`.
    pub app: Arc<str>,
    /// `destination_version`.
    pub version: Arc<str>,
    /// `destination_canonical_service`.
    pub canonical_service: Arc<str>,
    /// `destination_canonical_revision`.
    pub canonical_revision: Arc<str>,
}

fn unknown() -> Arc<str> {
    Arc::from("unknown")
}

impl EndpointMeta {
    /// Istio's derivation from pod labels: canonical service from
    /// `service.istio.io/canonical-name`, `app.kubernetes.io/name` or `app`; canonical revision
    /// from `service.istio.io/canonical-revision`, `app.kubernetes.io/version` or `version`
    /// (`latest` when none).
    pub fn from_endpoint(endpoint: &Endpoint, namespace: &Arc<str>) -> EndpointMeta {
        let w = WorkloadLabels::of(&endpoint.labels);
        EndpointMeta {
            workload: endpoint.workload.clone().unwrap_or_else(unknown),
            namespace: namespace.clone(),
            app: w.app.unwrap_or_else(unknown),
            version: w.version.unwrap_or_else(unknown),
            canonical_service: w.canonical_service.unwrap_or_else(unknown),
            canonical_revision: w.canonical_revision,
        }
    }

    /// Every label `unknown` (a destination meshwork has no endpoint for).
    pub fn unknown() -> Arc<EndpointMeta> {
        static UNKNOWN: std::sync::OnceLock<Arc<EndpointMeta>> = std::sync::OnceLock::new();
        UNKNOWN
            .get_or_init(|| {
                Arc::new(EndpointMeta {
                    workload: unknown(),
                    namespace: unknown(),
                    app: unknown(),
                    version: unknown(),
                    canonical_service: unknown(),
                    canonical_revision: unknown(),
                })
            })
            .clone()
    }
}

/// The telemetry labels Istio derives from a workload's labels
/// (<https://istio.io/latest/docs/reference/config/metrics/#labels>,
/// <https://istio.io/latest/docs/ops/deployment/application-requirements/#pod-labels>):
/// canonical service from `service.istio.io/canonical-name`, `app.kubernetes.io/name` or `app`;
/// canonical revision from `service.istio.io/canonical-revision`, `app.kubernetes.io/version` or
/// `version`, `latest` when none.
#[derive(Debug, Clone)]
pub(crate) struct WorkloadLabels {
    pub(crate) app: Option<Arc<str>>,
    pub(crate) version: Option<Arc<str>>,
    pub(crate) canonical_service: Option<Arc<str>>,
    pub(crate) canonical_revision: Arc<str>,
}

impl WorkloadLabels {
    pub(crate) fn of(labels: &std::collections::BTreeMap<Arc<str>, Arc<str>>) -> WorkloadLabels {
        let label = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).cloned());
        WorkloadLabels {
            app: label(&["app"]),
            version: label(&["version"]),
            canonical_service: label(&["service.istio.io/canonical-name", "app.kubernetes.io/name", "app"]),
            canonical_revision: label(&["service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"])
                .unwrap_or_else(|| Arc::from("latest")),
        }
    }
}

/// The namespace of a Kubernetes service FQDN (`reviews.default.svc.cluster.local` → `default`).
pub(crate) fn service_namespace(host: &str) -> Option<&str> {
    let (_, rest) = host.split_once('.')?;
    let (ns, rest) = rest.split_once('.')?;
    rest.starts_with("svc.").then_some(ns)
}
