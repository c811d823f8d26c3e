//! Services and endpoints declared in config (ServiceEntry, WorkloadEntry, Kubernetes Service),
//! and Gateways.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::policy::LabelSelector;
use crate::small_str::SmallStr;

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

/// An endpoint from `ServiceEntry.endpoints[]`, a WorkloadEntry or a Kubernetes Service: its
/// address, and what it shares with the other endpoints of its workload in one
/// [`EndpointMeta`]. 32 bytes, and no allocation of its own when the address fits a
/// [`SmallStr`] in place (every IPv4 address): a cluster has 100,000 endpoints, and the
/// endpoints of one workload hold one meta, not one each.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointDecl {
    /// IP or DNS name.
    address: SmallStr,
    /// Ports, labels, weight, locality and network.
    meta: Arc<EndpointMeta>,
}

/// What an endpoint shares with the other endpoints of its workload (the compiler gives those
/// one `Arc<EndpointMeta>`): ports, labels, weight, locality and network. Compared and hashed by
/// value, so that equal metas can be made one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointMeta {
    /// Port name to number (shared: a Service's endpoints mostly map its ports alike).
    pub ports: Arc<BTreeMap<Arc<str>, u16>>,
    /// Labels.
    pub labels: EndpointLabels,
    /// Load-balancing weight (default 1).
    pub weight: u32,
    /// Locality `region/zone/subzone`.
    pub locality: Option<Arc<str>>,
    /// Network.
    pub network: Option<Arc<str>>,
}

impl Default for EndpointMeta {
    /// No ports, no labels, weight 1, no locality, no network.
    fn default() -> Self {
        EndpointMeta { ports: Default::default(), labels: Default::default(), weight: 1, locality: None, network: None }
    }
}

impl EndpointDecl {
    /// The endpoint at `address` with `meta`.
    pub fn new(address: impl Into<SmallStr>, meta: Arc<EndpointMeta>) -> EndpointDecl {
        EndpointDecl { address: address.into(), meta }
    }

    /// IP or DNS name.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Port name to number (shared: a Service's endpoints mostly map its ports alike).
    pub fn ports(&self) -> &Arc<BTreeMap<Arc<str>, u16>> {
        &self.meta.ports
    }

    /// Labels.
    pub fn labels(&self) -> &EndpointLabels {
        &self.meta.labels
    }

    /// Load-balancing weight (default 1).
    pub fn weight(&self) -> u32 {
        self.meta.weight
    }

    /// Locality `region/zone/subzone`.
    pub fn locality(&self) -> Option<&Arc<str>> {
        self.meta.locality.as_ref()
    }

    /// Network.
    pub fn network(&self) -> Option<&Arc<str>> {
        self.meta.network.as_ref()
    }

    /// The meta, which other endpoints may share.
    pub fn meta(&self) -> &Arc<EndpointMeta> {
        &self.meta
    }

    /// The meta, to change: copied first when another endpoint shares it (`Arc::make_mut`), so
    /// the change is this endpoint's only.
    pub fn meta_mut(&mut self) -> &mut EndpointMeta {
        Arc::make_mut(&mut self.meta)
    }
}

impl std::fmt::Debug for EndpointDecl {
    /// The address and the meta's fields, as one struct.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let EndpointMeta { ports, labels, weight, locality, network } = &*self.meta;
        f.debug_struct("EndpointDecl")
            .field("address", &self.address)
            .field("ports", ports)
            .field("labels", labels)
            .field("weight", weight)
            .field("locality", locality)
            .field("network", network)
            .finish()
    }
}

/// An endpoint's labels: a sorted map, read through `Deref` as a `BTreeMap`, and shared. The
/// endpoints of one workload carry the same labels; the compiler gives them one map, and the
/// registry, every cluster and every copy of a snapshot hold that map, not one each (a map is a
/// few hundred bytes, and a cluster has 100,000 endpoints). Empty costs no allocation. Writing
/// through `DerefMut` copies a shared map first.
#[derive(Clone, Default)]
pub struct EndpointLabels(Option<Arc<BTreeMap<Arc<str>, Arc<str>>>>);

/// The map of empty [`EndpointLabels`].
static NO_LABELS: BTreeMap<Arc<str>, Arc<str>> = BTreeMap::new();

impl EndpointLabels {
    /// Do `self` and `other` share one map (or are both empty without one)?
    pub fn ptr_eq(&self, other: &EndpointLabels) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl From<BTreeMap<Arc<str>, Arc<str>>> for EndpointLabels {
    fn from(map: BTreeMap<Arc<str>, Arc<str>>) -> Self {
        EndpointLabels((!map.is_empty()).then(|| Arc::new(map)))
    }
}

impl FromIterator<(Arc<str>, Arc<str>)> for EndpointLabels {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, Arc<str>)>>(iter: I) -> Self {
        EndpointLabels::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl std::ops::Deref for EndpointLabels {
    type Target = BTreeMap<Arc<str>, Arc<str>>;

    fn deref(&self) -> &Self::Target {
        self.0.as_deref().unwrap_or(&NO_LABELS)
    }
}

impl std::ops::DerefMut for EndpointLabels {
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(self.0.get_or_insert_with(Default::default))
    }
}

impl PartialEq for EndpointLabels {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || **self == **other
    }
}

impl Eq for EndpointLabels {}

impl std::hash::Hash for EndpointLabels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl std::fmt::Debug for EndpointLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Arc<EndpointMeta> {
        Arc::new(EndpointMeta {
            ports: Arc::new([(Arc::from("http"), 8080)].into_iter().collect()),
            labels: [(Arc::from("app"), Arc::from("reviews"))].into_iter().collect(),
            weight: 3,
            locality: Some("us-east1/us-east1-b/".into()),
            network: Some("net-1".into()),
        })
    }

    #[test]
    fn an_endpoint_is_32_bytes() {
        assert_eq!(size_of::<EndpointDecl>(), 32);
        assert!(EndpointDecl::new("255.255.255.255", meta()).address.is_inline());
    }

    #[test]
    fn reads_its_meta_and_copies_it_to_change_it() {
        let shared = meta();
        let a = EndpointDecl::new("10.0.0.1", shared.clone());
        let mut b = EndpointDecl::new(String::from("10.0.0.2"), shared.clone());
        assert_eq!(a.address(), "10.0.0.1");
        assert_eq!(a.ports().get("http"), Some(&8080));
        assert_eq!(a.labels().get("app").map(|v| &**v), Some("reviews"));
        assert_eq!(
            (a.weight(), a.locality().map(|l| &**l), a.network().map(|n| &**n)),
            (3, Some("us-east1/us-east1-b/"), Some("net-1"))
        );
        assert!(Arc::ptr_eq(a.meta(), b.meta()));
        b.meta_mut().weight = 5;
        assert_eq!((a.weight(), b.weight()), (3, 5), "b's own copy");
        assert!(!Arc::ptr_eq(a.meta(), b.meta()) && a.labels().ptr_eq(b.labels()));
        assert_eq!(EndpointMeta::default().weight, 1);
    }

    #[test]
    fn compared_and_printed_with_its_meta_inline() {
        let a = EndpointDecl::new("10.0.0.1", meta());
        assert_eq!(a, EndpointDecl::new("10.0.0.1", meta()), "equal metas, not one");
        assert_ne!(a, EndpointDecl::new("10.0.0.2", meta()));
        assert_ne!(a, EndpointDecl::new("10.0.0.1", Arc::default()));
        assert_eq!(
            format!("{:?}", EndpointDecl::new("10.0.0.1", Arc::default())),
            "EndpointDecl { address: \"10.0.0.1\", ports: {}, labels: {}, weight: 1, locality: None, network: None }"
        );
    }
}
