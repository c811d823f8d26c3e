//! meshwork's Kubernetes source: the VirtualServices, DestinationRules, Gateways, ServiceEntries
//! and WorkloadEntries in the API server, Istio's PeerAuthentications, AuthorizationPolicies and
//! RequestAuthentications, the Gateway API's GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes
//! and ReferenceGrants ([`kinds()`]: which versions), the `kubernetes.io/tls` Secrets their HTTPS
//! listeners name, and the Services, EndpointSlices, Pods, Namespaces and Nodes behind them, watched with kube-rs and fed, object by object, into the same
//! per-resource store the files feed ([`mesh_config::store::Sources`], the config-source seam).
//!
//! ```text
//! API server ──list/watch (kube::runtime::watcher, one per kind and namespace)──▶ KubeSource
//!   each object → JSON → mesh_config::load_str (decode) ─▶ SourceEvent::{Upsert, Delete, Replace}
//!   ─▶ mpsc ─▶ ConfigSource (mesh-proxy) ─▶ ConfigStore (validation, last good) ─▶ Snapshot
//! ```
//!
//! - [`KubeSource::start`] watches; [`list_once`] lists once (`mesh validate --kubernetes`).
//! - [`WatchOptions`]: all namespaces by default, or some (`--watch-namespace`); whether to
//!   watch Nodes; the reconnect backoff.
//! - [`client`]: a [`kube::Client`] from a kubeconfig file, `$KUBECONFIG`, `~/.kube/config` or
//!   the in-cluster service account ([`kube::Config::infer`]).
//!
//! See [`watch`] for how each watch behaves (lists, bookmarks, 410, outages, RBAC) and the
//! sources it follows.

#![forbid(unsafe_code)]

mod error;
mod kinds;
mod object;
pub mod watch;

pub use error::Error;
pub use kinds::{WatchedKind, kinds};
pub use object::{decode, object_key};
pub use watch::{Backoff, KubeSource, WatchOptions, list_once};

/// A client for the cluster: from `kubeconfig` when given, else as kubectl finds one
/// ([`kube::Config::infer`]: `$KUBECONFIG`, `~/.kube/config`, then the in-cluster service
/// account). A kubeconfig's `server: http://127.0.0.1:PORT` is spoken in plain HTTP.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig { path: path.display().to_string(), message: e.to_string() })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Kubeconfig { path: path.display().to_string(), message: e.to_string() })?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Infer(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
}
