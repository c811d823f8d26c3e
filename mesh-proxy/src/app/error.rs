//! Why a command failed. `mesh` prints the error and its sources as one line (`mesh: ERROR:
//! SOURCE`) and exits with status 2; the messages are the command line's own wording.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why `mesh validate`, `mesh explain` or `mesh proxy` could not do its work (an invalid
/// configuration is not an error: [`crate::app::Outcome::Invalid`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The arguments ask for something impossible.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The configuration source could not start (a path that does not exist).
    #[error(transparent)]
    Source(#[from] crate::reload::SourceError),
    /// `mesh proxy --gateway` names a Gateway the configuration does not declare.
    #[error("Gateway {namespace}/{name} is not in the configuration")]
    GatewayNotDeclared {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// `mesh explain --gateway` names a Gateway the configuration does not declare.
    #[error("no Gateway {namespace}/{name} in the configuration")]
    NoSuchGateway {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The `--listen` address cannot be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The `--admin` address cannot be bound.
    #[error("cannot serve the admin endpoints on {address}")]
    Admin {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// A port the Gateway declares at start cannot be opened (later ones are retried).
    #[error("gateway port {port} at {address}")]
    GatewayPort {
        /// The Gateway port.
        port: u16,
        /// Where it was to listen.
        address: SocketAddr,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The Prometheus recorder could not be installed (one is installed already).
    #[error(transparent)]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The `--mesh-config` file could not be read or parsed.
    #[error("--mesh-config: {0}")]
    MeshConfig(mesh_config::LoadError),
    /// The `--mesh-config` file holds an error.
    #[error("--mesh-config: {0}")]
    MeshConfigInvalid(String),
    /// The workload certificate (`--cert-dir`) could not be loaded.
    #[error("--cert-dir: {0}")]
    Certificate(String),
    /// JSON output could not be written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The Kubernetes client could not be built, or a list failed (`--kubernetes`).
    #[cfg(feature = "kubernetes")]
    #[error(transparent)]
    Kubernetes(#[from] mesh_kube::Error),
    /// Reading, writing, the runtime or a signal handler failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// An argument that is not what its flag takes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A path does not exist.
    #[error("{}: no such file or directory", .0.display())]
    NoSuchPath(PathBuf),
    /// `-o` is neither `text` nor `json`.
    #[error("unknown output format {0:?} (use text or json)")]
    OutputFormat(String),
    /// `mesh explain`'s URL does not parse.
    #[error("{url:?} is not a URL")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        error: http::uri::InvalidUri,
    },
    /// `mesh explain`'s URL has no host.
    #[error("{0:?} needs a host, e.g. http://reviews:9080/")]
    UrlHost(String),
    /// A `tcp://` URL has no port.
    #[error("{0:?} needs a port, e.g. tcp://any:31400")]
    UrlPort(String),
    /// A `tcp://` or `tls://` URL without `--gateway`.
    #[error("{0}:// routes are served by a Gateway's servers: pass --gateway NS/NAME")]
    L4WithoutGateway(String),
    /// `-H` is not `Name: value`.
    #[error("header {0:?} is not `Name: value`")]
    Header(String),
    /// `--source-label` is not `key=value`.
    #[error("source label {0:?} is not `key=value`")]
    SourceLabel(String),
    /// `--inbound` is not `LISTEN=APP_ADDR`.
    #[error("--inbound takes LISTEN=APP_ADDR (two socket addresses), got {0:?}")]
    InboundFlag(String),
    /// `--workload-label` is not `key=value`.
    #[error("workload label {0:?} is not `key=value`")]
    WorkloadLabel(String),
    /// An `mesh explain --inbound` flag does not parse (`--peer`, `--jwt-claims`).
    #[error("{flag}: {message}")]
    Inbound {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `mesh explain --gateway` is not `namespace/name`.
    #[error("gateway {0:?} is not NS/NAME")]
    Gateway(String),
    /// `mesh proxy --gateway` is not `namespace/name`.
    #[error("--gateway takes NAMESPACE/NAME, got {0:?}")]
    GatewayFlag(String),
    /// `--listen` with `--gateway`.
    #[error("--listen does not apply with --gateway: the Gateway's servers say where to listen (see --port-map)")]
    ListenWithGateway,
    /// `--kubernetes` in a build without the `kubernetes` feature.
    #[error("--kubernetes: this mesh was built without the `kubernetes` feature")]
    KubernetesDisabled,
    /// `--port-map` is not `PORT=ADDR`.
    #[error("--port-map takes PORT=ADDR, got {0:?}")]
    PortMap(String),
    /// `--port-map`'s port is not a port number.
    #[error("--port-map: {0:?} is not a port")]
    PortMapPort(String),
    /// `--port-map`'s address is not an address.
    #[error("--port-map: {0:?} is not an address")]
    PortMapAddress(String),
}
