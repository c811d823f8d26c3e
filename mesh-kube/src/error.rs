//! Why the Kubernetes source could not start or list.

/// A Kubernetes source error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file could not be read or used.
    #[error("{path}: {message}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// No kubeconfig was found and the process does not run in a cluster.
    #[error("no Kubernetes configuration ($KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
    Infer(String),
    /// The client could not be built from the configuration.
    #[error("Kubernetes client: {0}")]
    Client(String),
    /// A list failed (`mesh validate --kubernetes`).
    #[error("listing {kind}: {source}")]
    List {
        /// The kind (and namespace) listed.
        kind: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}
