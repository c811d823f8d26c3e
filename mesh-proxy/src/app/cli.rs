//! The command line of `mesh` as clap types: [`Cli`] and the arguments of each subcommand. The
//! field docs are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `mesh`: the whole command line (`Cli::parse()` reads it from the process's arguments).
#[derive(Debug, Parser)]
#[command(name = "mesh", version, about = "meshwork: Istio traffic management, in your process or as a proxy")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Istio networking YAML (VirtualService, DestinationRule, Gateway, ServiceEntry,
    /// WorkloadEntry) as Istio would before admitting it.
    #[command(after_help = VALIDATE_HELP)]
    Validate(ValidateArgs),
    /// Say what the configuration does with one request: which VirtualService and rule apply
    /// (and why the others do not), where it goes, and with what timeout, retries and faults.
    #[command(after_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Run as a proxy: every request accepted on `--listen` is routed by its Host with the
    /// VirtualServices bound to the mesh (or to `--gateway`) and forwarded to the endpoints that
    /// ServiceEntries and WorkloadEntries declare. Reloads on file change and on SIGHUP; SIGTERM
    /// drains in-flight requests, then exits.
    #[command(after_help = PROXY_HELP)]
    Proxy(ProxyArgs),
}

/// `mesh validate`: what to check and how to report it ([`crate::app::validate()`]).
#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Files or directories (directories are searched for *.yaml / *.yml).
    #[arg(required_unless_present = "kubernetes", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The Kubernetes cluster to read (with `--kubernetes`: one list of each kind, no watch).
    #[command(flatten)]
    pub kube: KubernetesArgs,
    /// Namespace for resources that do not set metadata.namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Print errors only (no warnings, no "unsupported" notes).
    #[arg(short, long)]
    pub quiet: bool,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub strict: bool,
    /// Output format: `text` (one line per problem) or `json` (one object, for scripts).
    #[arg(short = 'o', long = "output", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// Also print the Gateway API status a controller would write: Gateway and listener
    /// conditions with `attachedRoutes`, and each route's conditions per parent (with `-o json`
    /// the keys `gateways` and `routes`).
    #[arg(long)]
    pub status: bool,
    /// The Gateway API GatewayClass whose Gateways are served (and given a status).
    #[arg(long, value_name = "NAME", default_value = "istio")]
    pub gateway_class: String,
}

/// `mesh proxy`: what to load, where to listen, how to run ([`crate::app::proxy()`]).
#[derive(clap::Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Configuration files or directories (repeatable).
    #[arg(short = 'f', long = "file", required_unless_present = "kubernetes", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// The Kubernetes cluster to watch (with `--kubernetes`), merged with the files.
    #[command(flatten)]
    pub kube: KubernetesArgs,
    /// Address to accept HTTP/1.1 and HTTP/2 (h2c) on (default 127.0.0.1:15001). With
    /// `--gateway`, the Gateway's servers say where to listen instead.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Address of the admin server (/metrics, /config_dump, /clusters, /ready, /healthz).
    #[arg(long)]
    pub admin: Option<std::net::SocketAddr>,
    /// Serve as this Gateway (`namespace/name`): one listener per port of its `servers`
    /// (HTTP, or HTTPS terminating TLS), and only VirtualServices bound to it apply.
    #[arg(long, value_name = "NS/NAME")]
    pub gateway: Option<String>,
    /// With `--gateway`: the IP address the Gateway's ports are opened on.
    #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
    pub gateway_address: std::net::IpAddr,
    /// With `--gateway`: open Gateway port PORT at ADDR instead (repeatable), e.g.
    /// `--port-map 443=127.0.0.1:8443`; port 0 picks a free one.
    #[arg(long = "port-map", value_name = "PORT=ADDR")]
    pub port_map: Vec<String>,
    /// The proxy's namespace (short host names resolve in it).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Where the proxy runs, `region/zone/subzone`: endpoints nearest to it are preferred
    /// for destinations with outlier detection (Istio's locality failover).
    #[arg(long, value_name = "REGION/ZONE/SUBZONE")]
    pub locality: Option<String>,
    /// How often to check the files for changes (and, as a Gateway, its ports), in
    /// milliseconds.
    #[arg(long, default_value = "1000")]
    pub reload_interval_ms: u64,
    /// Log every request (target meshwork::access).
    #[arg(long)]
    pub access_log: bool,
    /// Worker threads (default: one per CPU; 1 runs everything on the calling thread).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Mesh-wide settings.
    #[command(flatten)]
    pub settings: MeshSettings,
    /// Serve as a sidecar's inbound listener too: accept at LISTEN, apply the workload's
    /// PeerAuthentication, RequestAuthentication and AuthorizationPolicy, forward to the
    /// application at APP_ADDR (repeatable). Policies name the application's port.
    #[arg(long = "inbound", value_name = "LISTEN=APP_ADDR")]
    pub inbound: Vec<String>,
    /// The same for a TCP application (repeatable): each connection is authorized once (the
    /// HTTP-only policy fields never match), then forwarded or closed.
    #[arg(long = "inbound-tcp", value_name = "LISTEN=APP_ADDR")]
    pub inbound_tcp: Vec<String>,
    /// The workload this proxy stands for: selectors of security policies match it inbound,
    /// `sourceLabels` and the `source_*` metric labels outbound.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The workload's service account (its identity, `spiffe://TRUST-DOMAIN/ns/NS/sa/SA`, when
    /// no certificate says otherwise).
    #[arg(long = "service-account", value_name = "NAME")]
    pub service_account: Option<String>,
    /// The workload certificate: a directory with Istio's `cert-chain.pem`, `key.pem` and
    /// `root-cert.pem` (reloaded on change). Without it the inbound listeners are plaintext only.
    #[arg(long = "cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

/// Where configuration comes from besides files: a Kubernetes cluster's API server.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubernetesArgs {
    /// Read Istio's networking resources, Services, EndpointSlices and Pods (and, watching
    /// all namespaces, Namespaces and Nodes) from the Kubernetes API server, as Istiod does.
    #[arg(long)]
    pub kubernetes: bool,
    /// The kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service
    /// account).
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (repeatable; a namespaced Role suffices). Default: all
    /// namespaces (a ClusterRole).
    #[arg(long = "watch-namespace", value_name = "NS", requires = "kubernetes")]
    pub watch_namespaces: Vec<String>,
}

/// `mesh explain`: the configuration and the request to explain ([`crate::app::explain()`]).
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    /// Configuration files or directories (repeatable).
    #[arg(short = 'f', long = "file", required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Request method.
    #[arg(short = 'X', long = "request", default_value = "GET")]
    pub method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// A label of the client workload, `key=value` (repeatable), for `sourceLabels`.
    #[arg(long = "source-label", value_name = "KEY=VALUE")]
    pub source_labels: Vec<String>,
    /// Evaluate as this Gateway (`namespace/name`): only VirtualServices bound to it apply.
    /// Without it, those bound to `mesh` apply.
    #[arg(long, value_name = "NS/NAME")]
    pub gateway: Option<String>,
    /// The client's namespace (short host names resolve in it); also the namespace of
    /// resources that set none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Output format: `text` or `json`.
    #[arg(short = 'o', long = "output", default_value = "text")]
    pub output: String,
    /// Mesh-wide settings.
    #[command(flatten)]
    pub settings: MeshSettings,
    /// Explain one request ARRIVING at a workload instead (`--inbound`): its mTLS mode,
    /// RequestAuthentication and AuthorizationPolicy decision.
    #[command(flatten)]
    pub inbound: InboundExplainArgs,
    /// The request URL, e.g. `http://reviews:9080/reviews/0`; with `--gateway`, the URL's
    /// port is the Gateway port the request arrives on (without one: the port of the first
    /// server whose hosts admit the URL's host — TLS servers for `https`, plain ones for
    /// `http` — 80 or 443 first; else 80 or 443), as `mesh proxy` takes it from its listener;
    /// with `--gateway`, also a
    /// connection to one of its TCP servers, `tcp://any:31400`, or TLS passthrough servers,
    /// `tls://SERVER-NAME:443`.
    pub url: String,
}

/// The workload a process is (`mesh proxy`) or a request arrives at (`mesh explain --inbound`):
/// what PeerAuthentication, RequestAuthentication and AuthorizationPolicy selectors match.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WorkloadArgs {
    /// The workload's namespace (default: `default`; for `mesh proxy`, `--namespace`).
    #[arg(long = "workload-namespace", value_name = "NS")]
    pub workload_namespace: Option<String>,
    /// A label of the workload's pods, `key=value` (repeatable).
    #[arg(long = "workload-label", value_name = "KEY=VALUE")]
    pub workload_labels: Vec<String>,
}

impl WorkloadArgs {
    /// The workload these flags describe (in `default_namespace` without
    /// `--workload-namespace`).
    pub fn workload(&self, default_namespace: &str) -> Result<mesh_core::workload::Workload, super::UsageError> {
        let mut labels = Vec::new();
        for l in &self.workload_labels {
            let (k, v) = l.split_once('=').ok_or_else(|| super::UsageError::WorkloadLabel(l.clone()))?;
            labels.push((k, v));
        }
        let namespace = self.workload_namespace.as_deref().unwrap_or(default_namespace);
        Ok(mesh_core::workload::Workload::new(namespace, labels))
    }
}

/// `mesh explain --inbound`: one request (or, with `--tcp`, one connection) arriving at a
/// workload.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InboundExplainArgs {
    /// Explain the request as it arrives at the workload (`--workload-namespace`,
    /// `--workload-label`): mTLS mode, JWT, authorization.
    #[arg(long, conflicts_with_all = ["gateway", "source_labels"])]
    pub inbound: bool,
    /// The workload.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The port the request arrives on (default: the URL's).
    #[arg(long, value_name = "N", requires = "inbound")]
    pub port: Option<u16>,
    /// The client's mTLS identity, `spiffe://TRUST-DOMAIN/ns/NS/sa/SA` (default: plaintext).
    #[arg(long, value_name = "SPIFFE_URI", requires = "inbound")]
    pub peer: Option<String>,
    /// The connection's source address (default 127.0.0.1).
    #[arg(long = "source-ip", value_name = "IP", requires = "inbound")]
    pub source_ip: Option<std::net::IpAddr>,
    /// The original client address (`remote.ip`; default: from `x-forwarded-for`, else the source).
    #[arg(long = "remote-ip", value_name = "IP", requires = "inbound")]
    pub remote_ip: Option<std::net::IpAddr>,
    /// The TLS server name the client sent.
    #[arg(long, value_name = "NAME", requires = "inbound")]
    pub sni: Option<String>,
    /// The claims of a token that already passed RequestAuthentication, as a JSON object
    /// (a real token in `-H` is verified against the rules' inline `jwks` instead).
    #[arg(long = "jwt-claims", value_name = "JSON", requires = "inbound")]
    pub jwt_claims: Option<String>,
    /// A TCP connection rather than an HTTP request (HTTP-only policy fields never match).
    #[arg(long, requires = "inbound")]
    pub tcp: bool,
}

/// Mesh-wide settings Istio keeps in meshConfig and pilot's environment (the same flags for
/// `mesh proxy` and `mesh explain`, so that both decide alike).
#[derive(clap::Args, Debug, Clone)]
pub struct MeshSettings {
    /// Retry 503 in the default retry policy, as Istio did before 1.24 (Istio's
    /// `EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY=false`). By default 503 is not retried unless a
    /// route's `retryOn` says so.
    #[arg(long)]
    pub default_retry_503: bool,
    /// What happens to a request for a host no VirtualService routes and no ServiceEntry
    /// declares (Istio's meshConfig `outboundTrafficPolicy.mode`): ALLOW_ANY passes it through
    /// to the host as named (no retries; one shared cluster, no state per host), REGISTRY_ONLY
    /// answers 502.
    #[arg(long, value_name = "MODE", default_value = "ALLOW_ANY")]
    pub outbound_traffic_policy: mesh_core::snapshot::OutboundTrafficPolicy,
    /// The Gateway API GatewayClass whose Gateways are served (Istio's controller serves
    /// `istio`); Gateways of other classes are left to their controllers.
    #[arg(long, value_name = "NAME", default_value = "istio")]
    pub gateway_class: String,
    /// A meshConfig file (Istio's field names: `rootNamespace`, `trustDomain`,
    /// `trustDomainAliases`, `pathNormalization`), for the security policies' decisions.
    #[arg(long, value_name = "FILE")]
    pub mesh_config: Option<std::path::PathBuf>,
}

impl MeshSettings {
    /// Compile options for a client in `namespace` under these settings. `Err` when the
    /// `--mesh-config` file cannot be read or holds an error.
    pub fn compile_options(&self, namespace: &str) -> Result<mesh_config::CompileOptions, super::Error> {
        let mesh = match &self.mesh_config {
            None => mesh_config::MeshConfig::default(),
            Some(path) => {
                let file = mesh_config::load_mesh_config(path).map_err(super::Error::MeshConfig)?;
                if let Some(e) = file.diagnostics.iter().find(|d| d.is_error()) {
                    return Err(super::Error::MeshConfigInvalid(e.to_string()));
                }
                for d in &file.diagnostics {
                    tracing::warn!(target: "meshwork::proxy", "{d}");
                }
                file.config
            }
        };
        Ok(mesh_config::CompileOptions {
            exclude_503_from_default_retries: !self.default_retry_503,
            outbound_traffic_policy: self.outbound_traffic_policy,
            gateway_class: self.gateway_class.clone(),
            mesh,
            ..mesh_config::CompileOptions::for_namespace(namespace)
        })
    }
}

const PROXY_HELP: &str = "\
With --kubernetes, configuration also comes from the cluster (kubeconfig, $KUBECONFIG or the
in-cluster service account): /ready answers 503 until every watched kind has listed once; an
API server that goes away leaves the last state in force while the watches reconnect.
  mesh proxy --kubernetes --watch-namespace bookinfo --listen 0.0.0.0:8080 --admin 0.0.0.0:15000

On start it prints `listening on ADDR` (and `admin on ADDR`) to standard output; as a
Gateway, one line per port: `listening on ADDR port=PORT protocol=PROTOCOL`.

Example, in front of a service on 127.0.0.1:8080:
  mesh proxy -f istio/ --listen 127.0.0.1:15001 --admin 127.0.0.1:15000
  curl -H 'Host: reviews' http://127.0.0.1:15001/reviews/0

As the Bookinfo ingress gateway (its server is port 8080, HTTP):
  mesh proxy -f bookinfo/ --gateway default/bookinfo-gateway --port-map 8080=127.0.0.1:8080

Logs go to standard error, filtered by RUST_LOG (default `meshwork=info,meshwork::request=warn`).
RUST_LOG=meshwork=info,meshwork::request=info adds each request's span (method, uri, route,
destination, status) to the lines logged while it runs; it costs CPU on every request.";

const EXPLAIN_HELP: &str = "\
The JSON output (-o json) has every key always present, null where it does not apply:
host, action (route | redirect | directResponse | noRoute), status, route, destinations,
redirect, directResponse, rewrite, timeout, retries, fault, mirrors, headers.

With --inbound: decision (allow | deny | reject), status (null | 400 | 401 | 403; null for a
refused connection and for --tcp), policy (null | {namespace, name, action, rule}),
normalizedPath, audited, dryRun (null | allow | deny), mtls (STRICT | PERMISSIVE | DISABLE).
Exit 0 whatever the decision, 1 when the configuration is invalid, 2 on a usage error.

Problems in the configuration (errors and warnings, as `mesh validate` prints them) go to
standard error; the request is explained with what is in force (invalid resources left out).

Examples:
  mesh explain -f bookinfo/ http://reviews:9080/reviews/0
  mesh explain -f bookinfo/ -H 'end-user: jason' -o json http://reviews:9080/reviews/0
  mesh explain -f gateway.yaml --gateway default/bookinfo-gateway http://bookinfo.example.com/productpage";

const VALIDATE_HELP: &str = "\
Each problem prints as one line:
  FILE:LINE: KIND NAMESPACE/NAME: field.path: message
Warnings are prefixed `warning:`; fields meshwork reads but does not act on yet are
prefixed `unsupported:`. Documents of other kinds (Deployments, Services, Gateway API
routes) are skipped; a misspelt networking.istio.io kind is an error (MW0001).

Checks across resources (as `istioctl analyze`) print their code before the kind:
  FILE:LINE: CODE KIND NAMESPACE/NAME: field.path: warning: message
  IST0101  a subset no DestinationRule defines, a Gateway or a destination host the
           configuration does not hold (Istio's ReferencedResourceNotFound)
  MW0002   a resource defined twice (both places named)
  MW0003   DestinationRules for one host whose later settings are ignored when merged
They are warnings: --strict fails on them.

With -o json, one object:
  {\"valid\": bool, \"diagnostics\": [{\"severity\", \"code\", \"file\", \"line\", \"kind\",
   \"namespace\", \"name\", \"path\", \"message\"}]}
(severity: error | warning | unsupported; code, file, kind, namespace, name may be null;
files that cannot be read or parsed are errors with no resource).

Exit status: 0 when every resource is valid (warnings allowed), 1 when any resource or
file is invalid, 2 on usage errors (such as a path that does not exist).

With --kubernetes (one list of each kind from the cluster, no watch: what `istioctl
analyze` does for a live cluster), resources read from the API server print without a file:
  KIND NAMESPACE/NAME: field.path: message

Examples:
  mesh validate --kubernetes --watch-namespace bookinfo
  mesh validate samples/bookinfo/networking/
  mesh validate -n bookinfo reviews.yaml ratings.yaml";
