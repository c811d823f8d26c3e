//! Endpoints of Kubernetes Services, built from EndpointSlices and Pods as Istio builds them.
//!
//! [`endpoints`] is a pure function of a [`Service`] and an [`Index`] of the slices, Pods and
//! Nodes known at the time; [`protocol`] is Istio's `ConvertProtocol`; [`hostname`] the Service's
//! FQDN. The compile step turns them into the same [`mesh_core::service::ServiceDecl`] a
//! ServiceEntry with `resolution: STATIC` and those endpoints would give, so subsets, locality
//! load balancing and the port's protocol work on Kubernetes endpoints as on ServiceEntry ones.
//!
//! The rules, with where Istio has them (istio/istio, read at `86c9f01f`, 2026-08-22):
//!
//! - **A slice belongs to the Service named by its `kubernetes.io/service-name` label**, in the
//!   slice's namespace (`getServiceNamespacedName`, `serviceNameForEndpointSlice` in
//!   `pilot/pkg/serviceregistry/kube/controller/endpointslice.go`). A slice without the label
//!   belongs to nothing; a slice without a Service is not read.
//! - **Slices of multi-cluster services are not read**: Istio's slice client only takes slices
//!   *without* the label `multicluster.kubernetes.io/service-name` (`endpointSliceSelector`, a
//!   `DoesNotExist` requirement). **`addressType: FQDN` slices are not read**
//!   (`updateEndpointCacheForSlice` returns early). These are two separate rules: either one
//!   leaves a slice out.
//! - **Every address of an endpoint is an endpoint**, for every port of the slice
//!   (`updateEndpointCacheForSlice` loops over `e.Addresses` and `epSlice.Ports`).
//! - **Labels come from the Pod**: when `targetRef` names a Pod (`kind: Pod`), that Pod (by
//!   `targetRef.namespace`/`targetRef.name`) gives the endpoint its labels, and if the Pod is not
//!   known yet, the address is **left out** until it arrives (`getPod`: `pod == nil &&
//!   expectedPod` → `continue`; Istio re-reads the slice when the Pod arrives,
//!   `queueEndpointEventOnPodArrival`). An address whose `targetRef` is absent or not a Pod is
//!   kept: its labels are those of a Pod of the slice's namespace with that IP, if one is known
//!   ("Might not be right, but best we can do", `Controller.getPod`), else none. meshwork reads a
//!   `targetRef` without `namespace` (hand-written files) as the slice's namespace.
//! - **Labels are augmented** as Istio's `AugmentLabels` does
//!   (`pilot/pkg/serviceregistry/util/label/label.go`, called from `NewEndpointBuilder` in
//!   `controller/endpoint_builder.go`): the locality's parts as `topology.kubernetes.io/region`,
//!   `topology.kubernetes.io/zone`, `topology.istio.io/subzone`, and the Pod's node as
//!   `kubernetes.io/hostname`, so a subset may select on them. (The cluster and network labels
//!   Istio also adds are left out: meshwork has neither notion yet.)
//! - **Locality** (`Controller.getPodLocality`, `controller/controller.go`; `GetLocalityLabel`
//!   and `SanitizeLocalityLabel` in `pkg/model/proxy.go`): the Pod's `topology.istio.io/locality`
//!   label, else its legacy `istio-locality` label — written `region.zone.subzone` because
//!   Kubernetes label values cannot hold `/`; the dots become slashes unless the value already
//!   has a slash. Else the Pod's Node's labels: `topology.kubernetes.io/region` (or the beta
//!   `failure-domain.beta.kubernetes.io/region`), `topology.kubernetes.io/zone` (or
//!   `failure-domain.beta.kubernetes.io/zone`) and `topology.istio.io/subzone`, as
//!   `region/zone/subzone`. Istio does **not** read the slice endpoint's `zone` field for this,
//!   and neither does meshwork.
//! - **Health** (`endpointHealthStatus` in `endpointslice.go`; `filterIstioEndpoint` in
//!   `pilot/pkg/xds/endpoints/endpoint_builder.go`): `conditions.ready` absent or `true` is
//!   healthy; `ready: false` is unhealthy, terminating or draining, and Istio sends none of these
//!   to proxies by default (`PILOT_SEND_UNHEALTHY_ENDPOINTS` off, no persistent-session label),
//!   so they are left out.
//! - **Ports**: a slice port's `name` is the Service port's `name` (both empty for a Service's
//!   single unnamed port), its `port` is where traffic for that Service port goes. A slice port
//!   that names no port of the Service gives nothing (the EDS builder keeps only endpoints whose
//!   `ServicePortName` is the cluster's port name, `BuildClusterLoadAssignment`). A slice port
//!   without a number ("not restricted") gives nothing in meshwork: there is no port to dial.
//! - **Duplicates across slices** (the same address for the same Service port in two slices,
//!   as during a slice split) count once: Istio's `endpointSliceCache.get` keeps the first per
//!   (address, port name). Istio's "first" is Go map order; meshwork's is slice name order.
//! - **Protocol** ([`protocol`]; `ConvertProtocol` in `pkg/config/kube/conversion.go`,
//!   `protocol.Parse` in `pkg/config/protocol/instance.go`).
//! - **Host name** `<name>.<namespace>.svc.<domain>` (`ServiceHostname`,
//!   `pilot/pkg/serviceregistry/kube/conversion.go`), the domain meshwork's (`cluster.local` by
//!   default, [`crate::CompileOptions::domain`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::types::kube::{IpKey, MCS_SERVICE_NAME_LABEL, Node, PodView, Service, ServicePort, SliceView};
use crate::types::{Resource, Spec};

/// Pod label giving the locality (`region.zone.subzone`), first choice.
pub const LOCALITY_LABEL: &str = "topology.istio.io/locality";
/// Pod label giving the locality, the legacy spelling.
pub const LEGACY_LOCALITY_LABEL: &str = "istio-locality";
/// Node (and endpoint) label: the region.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Node (and endpoint) label: the zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Node (and endpoint) label: the subzone.
pub const SUBZONE_LABEL: &str = "topology.istio.io/subzone";
/// Endpoint label: the node the Pod runs on.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
const BETA_REGION_LABEL: &str = "failure-domain.beta.kubernetes.io/region";
const BETA_ZONE_LABEL: &str = "failure-domain.beta.kubernetes.io/zone";

/// The slices, Pods and Nodes known at one time, indexed for [`endpoints`].
#[derive(Debug, Default, Clone)]
pub struct Index<'a> {
    /// Set: this index holds nothing itself, and [`endpoints`] asks this for an index of what
    /// one Service's endpoints are built from ([`Index::per_service`]).
    per_service: Option<PerService<'a>>,
    /// Slices by (namespace, Service name), in slice name order.
    slices: HashMap<&'a str, HashMap<&'a str, Vec<SliceView<'a>>>>,
    /// Pods by (namespace, name).
    pods: HashMap<&'a str, HashMap<&'a str, PodView<'a>>>,
    /// Pods by (namespace, IP text): the first by name.
    pods_by_ip: HashMap<&'a str, HashMap<IpKey<'a>, PodView<'a>>>,
    /// Nodes by name.
    nodes: HashMap<&'a str, &'a Node>,
}

impl<'a> Index<'a> {
    /// Index these objects. Slices without a `kubernetes.io/service-name` label, and slices of
    /// multi-cluster services, are not kept. The slices are `&EndpointSlice`s or
    /// [`SliceView`]s, the Pods `&Pod`s or [`PodView`]s.
    pub fn new(
        slices: impl IntoIterator<Item = impl Into<SliceView<'a>>>,
        pods: impl IntoIterator<Item = impl Into<PodView<'a>>>,
        nodes: impl IntoIterator<Item = &'a Node>,
    ) -> Self {
        let mut index = Index::default();
        for slice in slices.into_iter().map(Into::into) {
            if slice.labels().contains_key(MCS_SERVICE_NAME_LABEL) {
                continue;
            }
            if let Some(service) = slice.service_name() {
                let namespace = index.slices.entry(slice.namespace()).or_default();
                namespace.entry(service).or_default().push(slice);
            }
        }
        for list in index.slices.values_mut().flat_map(HashMap::values_mut) {
            list.sort_by(|a, b| a.name().cmp(b.name()));
        }
        let mut pods: Vec<PodView<'a>> = pods.into_iter().map(Into::into).collect();
        pods.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        for pod in pods {
            let ns = pod.namespace();
            index.pods.entry(ns).or_default().insert(pod.name(), pod);
            for ip in pod.ips() {
                index.pods_by_ip.entry(ns).or_default().entry(ip).or_insert(pod);
            }
        }
        index.nodes = nodes.into_iter().map(|n| (n.metadata.name.as_str(), n)).collect();
        index
    }

    /// An index that builds, for each Service [`endpoints`] is asked for, an index of only what
    /// that Service's endpoints are built from: `parts(namespace, name)` gives it. (The
    /// configuration store compiles so from its own index of which slices name which Pods,
    /// instead of indexing every slice and Pod of a cluster at once for one compile.)
    pub(crate) fn per_service(parts: &'a (dyn Fn(&Arc<str>, &Arc<str>) -> Index<'a> + 'a)) -> Self {
        Index { per_service: Some(PerService(parts)), ..Index::default() }
    }

    /// Index the EndpointSlices, Pods and Nodes among `resources`.
    pub fn from_resources(resources: &'a [Resource]) -> Self {
        let slices = resources.iter().filter_map(|r| match &r.spec {
            Spec::EndpointSlice(s) => Some(SliceView::from(s)),
            _ => None,
        });
        let pods = resources.iter().filter_map(|r| match &r.spec {
            Spec::Pod(p) => Some(PodView::from(p)),
            _ => None,
        });
        let nodes = resources.iter().filter_map(|r| match &r.spec {
            Spec::Node(n) => Some(n),
            _ => None,
        });
        Index::new(slices, pods, nodes)
    }

    /// The slices of the Service `name` in `namespace`, in slice name order.
    pub fn slices(&self, namespace: &str, name: &str) -> &[SliceView<'a>] {
        self.slices.get(namespace).and_then(|s| s.get(name)).map_or(&[], Vec::as_slice)
    }

    /// A Pod by namespace and name.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodView<'a>> {
        self.pods.get(namespace).and_then(|p| p.get(name)).copied()
    }

    /// The Pod of `namespace` with this IP, written exactly so (the first by name, if several).
    pub fn pod_by_ip(&self, namespace: &str, ip: &str) -> Option<PodView<'a>> {
        self.pod_by_key(namespace, IpKey::of(ip))
    }

    /// The Pod of `namespace` with the IP of this key (see [`Index::pod_by_ip`]).
    fn pod_by_key(&self, namespace: &str, ip: IpKey<'_>) -> Option<PodView<'a>> {
        self.pods_by_ip.get(namespace).and_then(|p| p.get(&ip)).copied()
    }

    /// A Node by name.
    pub fn node(&self, name: &str) -> Option<&'a Node> {
        self.nodes.get(name).copied()
    }
}

/// See [`Index::per_service`].
#[derive(Clone, Copy)]
struct PerService<'a>(&'a (dyn Fn(&Arc<str>, &Arc<str>) -> Index<'a> + 'a));

impl std::fmt::Debug for PerService<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PerService")
    }
}

/// One endpoint of one Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The IP address.
    pub address: String,
    /// The Service port's name (empty for a single unnamed port).
    pub port_name: String,
    /// Where traffic for that Service port goes (the slice's port number).
    pub port: u16,
    /// The Pod's labels, augmented with locality and node labels (see the module docs).
    pub labels: BTreeMap<String, String>,
    /// `region/zone/subzone`, when known.
    pub locality: Option<String>,
    /// The Pod behind the address, as `namespace/name`, when known.
    pub pod: Option<String>,
    /// The Pod's service account, when known.
    pub service_account: Option<String>,
}

/// The endpoints of `service`, by the rules of the module docs, in slice name order, then the
/// slice's order. An `ExternalName` Service has none (its name is resolved instead).
pub fn endpoints(service: &Service, index: &Index<'_>) -> Vec<Endpoint> {
    if service.is_external_name() {
        return Vec::new();
    }
    let own;
    let index = match index.per_service {
        Some(PerService(parts)) => {
            own = parts(service.metadata.namespace.as_arc(), service.metadata.name.as_arc());
            &own
        }
        None => index,
    };
    let namespace = service.metadata.namespace.as_str();
    let port_names: Vec<&str> = service.spec.ports.iter().map(|p| p.name.as_deref().unwrap_or("")).collect();
    let mut out: Vec<Endpoint> = Vec::new();
    // (address, port name): an address's key is equal to another's exactly when their texts are.
    let mut seen: HashSet<(IpKey<'_>, &str)> = HashSet::new();
    for slice in index.slices(namespace, &service.metadata.name) {
        if slice.address_type() == Some("FQDN") {
            continue;
        }
        for e in slice.endpoints() {
            if !e.conditions().ready.unwrap_or(true) {
                continue;
            }
            let target = e.target_pod();
            for address in e.addresses() {
                let pod = match target {
                    Some((ns, name)) => index.pod(ns.unwrap_or(namespace), name),
                    None => index.pod_by_key(namespace, address),
                };
                if target.is_some() && pod.is_none() {
                    tracing::debug!(
                        target: "meshwork::kube",
                        slice = %slice.name(),
                        address = %address,
                        "endpoint without its pod: left out until the pod is known"
                    );
                    continue;
                }
                let (labels, locality) = pod_labels(pod, index);
                for port in slice.ports() {
                    let name = port.name.as_deref().unwrap_or("");
                    let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else {
                        continue;
                    };
                    if !port_names.contains(&name) {
                        continue;
                    }
                    if !seen.insert((address, name)) {
                        continue;
                    }
                    out.push(Endpoint {
                        address: address.to_string(),
                        port_name: name.to_string(),
                        port: number,
                        labels: labels.clone(),
                        locality: locality.clone(),
                        pod: pod.map(|p| format!("{}/{}", p.namespace(), p.name())),
                        service_account: pod.and_then(|p| p.service_account().map(str::to_string)),
                    });
                }
            }
        }
    }
    out
}

/// A Pod's labels as an endpoint's (augmented, as Istio's `AugmentLabels`), and its locality.
fn pod_labels(pod: Option<PodView<'_>>, index: &Index<'_>) -> (BTreeMap<String, String>, Option<String>) {
    let Some(pod) = pod else {
        return (BTreeMap::new(), None);
    };
    let mut labels = pod.labels().to_map();
    let locality = locality(pod, index);
    if let Some(l) = &locality {
        let mut parts = l.splitn(3, '/');
        for key in [REGION_LABEL, ZONE_LABEL, SUBZONE_LABEL] {
            if let Some(v) = parts.next().filter(|v| !v.is_empty()) {
                labels.insert(key.to_string(), v.to_string());
            }
        }
    }
    if let Some(node) = pod.node_name().filter(|n| !n.is_empty()) {
        labels.insert(HOSTNAME_LABEL.to_string(), node.to_string());
    }
    (labels, locality)
}

/// A Pod's locality, `region/zone/subzone` (see the module docs): its locality label, else its
/// Node's topology labels; `None` when neither says anything. The Pod is a `&Pod` or a
/// [`PodView`].
pub fn locality<'p>(pod: impl Into<PodView<'p>>, index: &Index<'_>) -> Option<String> {
    let pod = pod.into();
    let labels = pod.labels();
    if let Some(l) = labels.get(LOCALITY_LABEL).or_else(|| labels.get(LEGACY_LOCALITY_LABEL)) {
        if l.is_empty() {
            return None;
        }
        return Some(if l.contains('/') { l.clone() } else { l.replace('.', "/") });
    }
    let node = index.node(pod.node_name()?)?;
    let get = |ga: &str, beta: Option<&str>| {
        let l = &node.metadata.labels;
        l.get(ga).or_else(|| beta.and_then(|b| l.get(b))).cloned().unwrap_or_default()
    };
    let region = get(REGION_LABEL, Some(BETA_REGION_LABEL));
    let zone = get(ZONE_LABEL, Some(BETA_ZONE_LABEL));
    let subzone = get(SUBZONE_LABEL, None);
    if region.is_empty() && zone.is_empty() && subzone.is_empty() {
        return None;
    }
    Some(format!("{region}/{zone}/{subzone}"))
}

/// A Service port's protocol as Istio reads it (`ConvertProtocol`): `UDP` for a UDP port; else
/// `appProtocol` if set (Kubernetes' `kubernetes.io/h2c` is `HTTP2`, `kubernetes.io/ws` `HTTP`,
/// `kubernetes.io/wss` `HTTPS`), else the port name; a `grpc-web` prefix is `GRPC-WEB`; else the
/// part before the first `-`, case-insensitive: `tcp`, `udp`, `grpc`, `grpc-web`, `http`,
/// `http_proxy`, `http2`, `https`, `tls`, `mongo`, `redis`, `mysql`. Anything else is Istio's
/// "unsupported" (protocol sniffing), empty here — except on the well-known ports 25, 53, 3306
/// and 27017, which are `TCP`. Upper case, as meshwork spells protocols.
///
/// ```
/// use mesh_config::kube::protocol;
/// use mesh_config::types::kube::ServicePort;
/// let port = |name: &str, app: Option<&str>| ServicePort {
///     name: Some(name.to_string()),
///     port: 80,
///     app_protocol: app.map(str::to_string),
///     ..ServicePort::default()
/// };
/// assert_eq!(protocol(&port("grpc-api", None)), "GRPC");
/// assert_eq!(protocol(&port("web", Some("kubernetes.io/h2c"))), "HTTP2");
/// assert_eq!(protocol(&port("web", None)), "");
/// ```
pub fn protocol(port: &ServicePort) -> &'static str {
    if port.protocol.as_deref() == Some("UDP") {
        return "UDP";
    }
    let mut name = port.name.as_deref().unwrap_or("");
    if let Some(app) = port.app_protocol.as_deref() {
        name = app;
        match app {
            "kubernetes.io/h2c" => return "HTTP2",
            "kubernetes.io/ws" => return "HTTP",
            "kubernetes.io/wss" => return "HTTPS",
            _ => {}
        }
    }
    if name.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("grpc-web")) {
        return "GRPC-WEB";
    }
    let prefix = name.split('-').next().unwrap_or("");
    let parsed = match prefix.to_ascii_lowercase().as_str() {
        "tcp" => "TCP",
        "udp" => "UDP",
        "grpc" => "GRPC",
        "http" => "HTTP",
        "http_proxy" => "HTTP_PROXY",
        "http2" => "HTTP2",
        "https" => "HTTPS",
        "tls" => "TLS",
        "mongo" => "MONGO",
        "redis" => "REDIS",
        "mysql" => "MYSQL",
        _ => "",
    };
    if parsed.is_empty() && matches!(port.port, 25 | 53 | 3306 | 27017) {
        return "TCP";
    }
    parsed
}

/// A Service's host name: `<name>.<namespace>.svc.<domain>`.
///
/// ```
/// assert_eq!(mesh_config::kube::hostname("reviews", "bookinfo", "cluster.local"), "reviews.bookinfo.svc.cluster.local");
/// ```
pub fn hostname(name: &str, namespace: &str, domain: &str) -> String {
    format!("{name}.{namespace}.svc.{domain}")
}
