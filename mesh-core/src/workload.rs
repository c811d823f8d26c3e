//! The workload a policy applies to: its namespace and labels (what Istio's
//! `WorkloadPolicyMatcher` reads for sidecars: istio/istio `pilot/pkg/model/policyattachment.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

/// A workload: namespace and labels.
///
/// ```
/// use mesh_core::workload::Workload;
/// let w = Workload::new("default", [("app", "httpbin"), ("version", "v1")]);
/// assert_eq!(&*w.namespace, "default");
/// assert_eq!(w.labels.get("app").map(|v| &**v), Some("httpbin"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Workload {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Labels (Pod labels).
    pub labels: BTreeMap<Arc<str>, Arc<str>>,
}

impl Workload {
    /// A workload in `namespace` with `labels`.
    pub fn new<'a>(namespace: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Workload {
        Workload {
            namespace: Arc::from(namespace),
            labels: labels.into_iter().map(|(k, v)| (Arc::from(k), Arc::from(v))).collect(),
        }
    }
}
