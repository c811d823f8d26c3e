//! Services and endpoints declared in config (ServiceEntry, WorkloadEntry), and Gateways.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::LabelSelector;

/// A compiled ServiceEntry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDecl {
    /// Namespace of the ServiceEntry.
    pub namespace: Arc<str>,
    /// Name of the ServiceEntry.
    pub name: Arc<str>,
    /// Host names (qualified).
    pub hosts: Box<[Arc<str>]>,
    /// Ports.
    pub ports: Box<[ServicePort]>,
    /// How endpoints are found.
    pub resolution: Resolution,
    /// Inside the mesh?
    pub mesh_internal: bool,
    /// Listed endpoints.
    pub endpoints: Box<[EndpointDecl]>,
    /// Select WorkloadEntries of the same namespace instead.
    pub workload_selector: Option<LabelSelector>,
    /// The identities its workloads run as (Istio's `Service.ServiceAccounts`): SPIFFE URIs of
    /// the Pods' service accounts, or a ServiceEntry's `subjectAltNames` and its endpoints'
    /// `serviceAccount`s; what a client's secure naming expects when no DestinationRule names
    /// `subjectAltNames`. Empty: unknown (any identity the mesh root vouches for).
    pub service_accounts: Box<[Arc<str>]>,
}

/// A service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// Number.
    pub number: u16,
    /// Name (endpoints map names to their own port numbers).
    pub name: Arc<str>,
    /// Protocol, upper case (`HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `TCP`, `TLS`, ...), empty if unset.
    pub protocol: Arc<str>,
    /// Port on the endpoints, when different.
    pub target_port: Option<u16>,
}

/// How a ServiceEntry's endpoints are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Use the address the caller asked for.
    None,
    /// Use the listed addresses.
    Static,
    /// Resolve names with DNS; every address is an endpoint.
    Dns,
    /// Resolve with DNS; use one address.
    DnsRoundRobin,
    /// Dynamic forward proxy.
    DynamicDns,
}

/// An endpoint from `ServiceEntry.endpoints[]` or a WorkloadEntry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointDecl {
    /// IP or DNS name.
    pub address: Arc<str>,
    /// Port name to number.
    pub ports: BTreeMap<Arc<str>, u16>,
    /// Labels.
    pub labels: BTreeMap<Arc<str>, Arc<str>>,
    /// Load-balancing weight (default 1).
    pub weight: u32,
    /// Locality `region/zone/subzone`.
    pub locality: Option<Arc<str>>,
    /// Network.
    pub network: Option<Arc<str>>,
}

/// A compiled WorkloadEntry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadDecl {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// The endpoint it describes.
    pub endpoint: EndpointDecl,
}

/// A compiled Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayDecl {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// Listeners.
    pub servers: Box<[GatewayServer]>,
    /// Selector of gateway workloads.
    pub selector: LabelSelector,
}

/// One `servers[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayServer {
    /// Port number.
    pub port: u16,
    /// Port name.
    pub port_name: Arc<str>,
    /// Protocol, upper case.
    pub protocol: Arc<str>,
    /// Hosts, as `namespace/host` (`*/host` when no namespace was given).
    pub hosts: Box<[(Arc<str>, Arc<str>)]>,
    /// TLS.
    pub tls: Option<ServerTls>,
}

/// Server TLS settings meshwork acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Redirect plain HTTP to HTTPS.
    pub https_redirect: bool,
    /// Mode (upper case, e.g. `SIMPLE`), if set.
    pub mode: Option<Arc<str>>,
    /// Server certificate file.
    pub server_certificate: Option<Arc<str>>,
    /// Private key file.
    pub private_key: Option<Arc<str>>,
    /// Client CA bundle file.
    pub ca_certificates: Option<Arc<str>>,
    /// Accepted client SANs.
    pub subject_alt_names: Box<[Arc<str>]>,
    /// The certificate chain and private key given inline (a Kubernetes `kubernetes.io/tls`
    /// Secret named by a Gateway API listener's `certificateRefs`): used instead of the files.
    pub credential: Option<Arc<PemCredential>>,
}

/// A certificate chain and its private key, PEM-encoded, held in memory. `Debug` never prints
/// the key.
#[derive(Clone, PartialEq, Eq)]
pub struct PemCredential {
    /// Where it came from (`Secret ns/name`), for messages.
    pub source: Arc<str>,
    /// The certificate chain (PEM).
    pub certificate_chain: Box<[u8]>,
    /// The private key (PEM).
    pub private_key: Box<[u8]>,
}

impl std::fmt::Debug for PemCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemCredential")
            .field("source", &self.source)
            .field("certificate_chain", &format_args!("{} bytes", self.certificate_chain.len()))
            .field("private_key", &format_args!("<redacted>"))
            .finish()
    }
}
