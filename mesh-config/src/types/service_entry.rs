//! `ServiceEntry` and `WorkloadEntry`:
//! <https://istio.io/latest/docs/reference/config/networking/service-entry/>,
//! <https://istio.io/latest/docs/reference/config/networking/workload-entry/>.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `spec` of a ServiceEntry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEntry {
    /// Host names of the service.
    pub hosts: Vec<String>,
    /// Virtual IPs.
    pub addresses: Vec<String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Inside or outside the mesh.
    pub location: Option<Location>,
    /// How endpoints are found.
    pub resolution: Option<Resolution>,
    /// Static endpoints.
    pub endpoints: Vec<WorkloadEntry>,
    /// Select WorkloadEntries by labels instead of listing endpoints.
    pub workload_selector: Option<ServiceWorkloadSelector>,
    /// Namespaces this entry is visible to.
    pub export_to: Vec<String>,
    /// Accepted server SANs.
    pub subject_alt_names: Vec<String>,
}

/// `ports[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// Port number.
    pub number: u32,
    /// Protocol (`HTTP`, `HTTPS`, `HTTP2`, `GRPC`, `TCP`, `TLS`, ...).
    pub protocol: Option<String>,
    /// Port name, referenced by endpoints' `ports`.
    pub name: String,
    /// Port on the endpoints.
    pub target_port: Option<u32>,
}

/// `location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum Location {
    /// Outside the mesh.
    MESH_EXTERNAL,
    /// Part of the mesh.
    MESH_INTERNAL,
}

/// `resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum Resolution {
    /// Forward to the address the caller asked for.
    NONE,
    /// Use the listed endpoint addresses.
    STATIC,
    /// Resolve endpoint names (or the hosts) with DNS, every address an endpoint.
    DNS,
    /// Resolve with DNS, connect to the first address.
    DNS_ROUND_ROBIN,
    /// Dynamic forward proxy.
    DYNAMIC_DNS,
}

/// `workloadSelector: {labels: {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServiceWorkloadSelector {
    /// Labels of the selected workloads.
    pub labels: BTreeMap<String, String>,
}

/// The `spec` of a WorkloadEntry, also the shape of `ServiceEntry.endpoints[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadEntry {
    /// IP address, DNS name or `unix://` path.
    pub address: String,
    /// Port name to port number.
    pub ports: BTreeMap<String, u32>,
    /// Labels (select subsets).
    pub labels: BTreeMap<String, String>,
    /// Network.
    pub network: Option<String>,
    /// Locality `region/zone/subzone`.
    pub locality: Option<String>,
    /// Load balancing weight.
    pub weight: Option<u32>,
    /// Service account.
    pub service_account: Option<String>,
}
