//! How the endpoint builder and the configuration store read Pods and EndpointSlices: the views
//! ([`PodView`], [`SliceView`], [`EndpointView`]) over a whole typed object or the compact form
//! in which the store keeps one read from an API server ([`CompactPod`], [`CompactSlice`]), and
//! IPs as keys that compare as their text does ([`IpKey`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock};

use super::*;
/// What the endpoint builder ([`crate::kube`]) and the store's endpoint index read of a Pod:
/// its name, namespace, labels, node, service account and IPs. It reads a whole [`Pod`] or the
/// compact form in which the configuration store keeps a Pod read from an API server, and is
/// two words, cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct PodView<'a>(PodRef<'a>);

/// The Pod a [`PodView`] reads.
#[derive(Debug, Clone, Copy)]
enum PodRef<'a> {
    Whole(&'a Pod),
    Compact(&'a CompactPod),
}

impl<'a> From<&'a Pod> for PodView<'a> {
    fn from(pod: &'a Pod) -> Self {
        PodView(PodRef::Whole(pod))
    }
}

impl<'a> PodView<'a> {
    /// `metadata.name`.
    pub fn name(self) -> &'a str {
        match self.0 {
            PodRef::Whole(p) => &p.metadata.name,
            PodRef::Compact(c) => &c.name,
        }
    }

    /// `metadata.namespace`.
    pub fn namespace(self) -> &'a str {
        match self.0 {
            PodRef::Whole(p) => &p.metadata.namespace,
            PodRef::Compact(c) => &c.place.namespace,
        }
    }

    /// `metadata.labels`.
    pub fn labels(self) -> &'a Labels {
        match self.0 {
            PodRef::Whole(p) => &p.metadata.labels,
            PodRef::Compact(c) => &c.place.labels,
        }
    }

    /// `spec.nodeName`.
    pub fn node_name(self) -> Option<&'a str> {
        match self.0 {
            PodRef::Whole(p) => p.spec.node_name.as_deref(),
            PodRef::Compact(c) => c.node_name.as_deref(),
        }
    }

    /// `spec.nodeName`, as the Pod holds it (shared).
    pub(crate) fn node_arc(self) -> Option<&'a Arc<str>> {
        match self.0 {
            PodRef::Whole(p) => p.spec.node_name.as_ref().map(Name::as_arc),
            PodRef::Compact(c) => c.node_name.as_ref().map(Name::as_arc),
        }
    }

    /// `spec.serviceAccountName`.
    pub fn service_account(self) -> Option<&'a str> {
        match self.0 {
            PodRef::Whole(p) => p.spec.service_account_name.as_deref(),
            PodRef::Compact(c) => c.place.service_account_name.as_deref(),
        }
    }

    /// Every IP of the Pod, as [`Pod::ips`] gives them (`podIP`, then the others of `podIPs`),
    /// each as the key of its text.
    pub(crate) fn ips(self) -> impl Iterator<Item = IpKey<'a>> {
        let (whole, compact) = match self.0 {
            PodRef::Whole(p) => (Some(p.ips().map(IpKey::of)), None),
            PodRef::Compact(c) => (None, c.address.ip()),
        };
        whole.into_iter().flatten().chain(compact.map(IpKey::Addr))
    }

    /// The object's name as the Pod holds it (the compact form holds the object's own).
    #[cfg(test)]
    pub(crate) fn name_arc(self) -> &'a Arc<str> {
        match self.0 {
            PodRef::Whole(p) => p.metadata.name.as_arc(),
            PodRef::Compact(c) => &c.name,
        }
    }

    /// The object's namespace as the Pod holds it (the compact form holds the object's own, in
    /// its place).
    #[cfg(test)]
    pub(crate) fn namespace_arc(self) -> &'a Arc<str> {
        match self.0 {
            PodRef::Whole(p) => p.metadata.namespace.as_arc(),
            PodRef::Compact(c) => &c.place.namespace,
        }
    }
}

/// A Pod in the form the configuration store keeps one read from an API server
/// (`store::compact`): 56 bytes and no text of its own. Its name is the object's own handle; its
/// node a shared name; what the Pods of one workload (one ReplicaSet) hold alike (the
/// namespace, the service account and the labels) is one [`PodPlace`], which Pods of the same
/// place may share; its one IP is held as an address (an IPv4 one inline, an IPv6 one in a
/// 16-byte box of its own, the one box a compact Pod may have).
/// [`CompactPod::new`] makes one only when [`CompactPod::to_pod`] gives back a [`Pod`] equal to
/// the one it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompactPod {
    /// `metadata.name` (the object's name).
    pub(crate) name: Arc<str>,
    /// The namespace, the service account and the labels.
    pub(crate) place: Arc<PodPlace>,
    /// `spec.nodeName` (the replicas of a workload sit on different nodes: it is not the
    /// place's).
    pub(crate) node_name: Option<Name>,
    address: PodAddress,
}

/// What a [`CompactPod`] holds that the Pods of one workload hold alike: its namespace, its
/// service account and its labels (a ReplicaSet's Pods carry its template's, the same for
/// each). A cluster has many Pods of few workloads, so one copy can serve the Pods of one
/// workload, wherever they run (the node is the Pod's own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PodPlace {
    /// `metadata.namespace` (the object's namespace).
    pub(crate) namespace: Arc<str>,
    /// `spec.serviceAccountName`.
    pub(crate) service_account_name: Option<Name>,
    /// `metadata.labels` (there are no annotations).
    pub(crate) labels: Labels,
}

/// A compact Pod's IP, and where its `status` writes it: 16 bytes, an IPv4 address inline and an
/// IPv6 one (16 bytes, no room beside it for the rest) boxed. The address's text is its
/// `Display` text, so the IP's text is given back exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PodAddress {
    /// No IP: `podIP` absent, `podIPs` empty.
    None,
    /// An IPv4 address.
    V4(Written, Ipv4Addr),
    /// An IPv6 address (`::ffff:10.0.0.1` included: its text is not the IPv4 address's).
    V6(Written, Box<Ipv6Addr>),
}

/// Where a Pod's `status` writes its one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// `podIP` only (how mesh-kube gives a Pod of one IP).
    PodIp,
    /// `podIPs` of one item only.
    PodIps,
    /// `podIP`, and `podIPs` of that one IP (as an API server writes it).
    Both,
}

impl PodAddress {
    /// Where the IP is written, and the IP; `None` for no IP.
    fn parts(&self) -> Option<(Written, IpAddr)> {
        match self {
            PodAddress::None => None,
            PodAddress::V4(written, ip) => Some((*written, IpAddr::V4(*ip))),
            PodAddress::V6(written, ip) => Some((*written, IpAddr::V6(**ip))),
        }
    }

    fn ip(&self) -> Option<IpAddr> {
        self.parts().map(|(_, ip)| ip)
    }

    /// The address of `status`, when it has at most one IP, written as its address prints.
    fn of(status: &PodStatus) -> Option<PodAddress> {
        let exact = |text: &str| text.parse::<IpAddr>().ok().filter(|ip| prints_as(ip, text));
        let (written, ip) = match (status.pod_ip.as_deref(), status.pod_ips.as_slice()) {
            (None, []) => return Some(PodAddress::None),
            (Some(ip), []) => (Written::PodIp, exact(ip)?),
            (None, [only]) => (Written::PodIps, exact(&only.ip)?),
            (Some(ip), [only]) if only.ip == ip => (Written::Both, exact(ip)?),
            _ => return None,
        };
        Some(match ip {
            IpAddr::V4(ip) => PodAddress::V4(written, ip),
            IpAddr::V6(ip) => PodAddress::V6(written, Box::new(ip)),
        })
    }

    /// Is `status` this address, written so?
    fn is(&self, status: &PodStatus) -> bool {
        match (self.parts(), status.pod_ip.as_deref(), status.pod_ips.as_slice()) {
            (None, None, []) => true,
            (Some((Written::PodIp, a)), Some(ip), []) => prints_as(a, ip),
            (Some((Written::PodIps, a)), None, [only]) => prints_as(a, &only.ip),
            (Some((Written::Both, a)), Some(ip), [only]) => prints_as(a, ip) && prints_as(a, &only.ip),
            _ => false,
        }
    }

    fn status(&self) -> PodStatus {
        let listed = |ip: IpAddr| vec![PodIp { ip: ip.to_string() }];
        let (pod_ip, pod_ips) = match self.parts() {
            None => (None, Vec::new()),
            Some((Written::PodIp, ip)) => (Some(ip.to_string()), Vec::new()),
            Some((Written::PodIps, ip)) => (None, listed(ip)),
            Some((Written::Both, ip)) => (Some(ip.to_string()), listed(ip)),
        };
        PodStatus { pod_ip, pod_ips }
    }
}

impl CompactPod {
    /// The compact form of `pod`, an object named `name` in `namespace`, when it gives `pod`
    /// back exactly: its metadata names the object, it has no annotations, and it has at most
    /// one IP (in `podIP`, in `podIPs`, or the same in both) written as that address prints
    /// (`10.0.0.1`, `fd00::1`; not `010.0.0.1`, `FD00::1`). `None` otherwise. Its place is
    /// what `place` makes of the [`PodPlace`] it reads (`Arc::new`: one of its own; or the one
    /// the store shares already), asked for only once the Pod is known to be compact.
    pub(crate) fn new(
        name: &Arc<str>,
        namespace: &Arc<str>,
        pod: &Pod,
        place: impl FnOnce(PodPlace) -> Arc<PodPlace>,
    ) -> Option<CompactPod> {
        let m = &pod.metadata;
        if *m.name != **name || *m.namespace != **namespace || !m.annotations.is_empty() {
            return None;
        }
        let address = PodAddress::of(&pod.status)?;
        let place = place(PodPlace {
            namespace: namespace.clone(),
            service_account_name: pod.spec.service_account_name.clone(),
            labels: m.labels.clone(),
        });
        Some(CompactPod { name: name.clone(), place, node_name: pod.spec.node_name.clone(), address })
    }

    /// The Pod this was made from.
    pub(crate) fn to_pod(&self) -> Pod {
        let place = &*self.place;
        let metadata = Metadata {
            name: Name::from(self.name.clone()),
            namespace: Name::from(place.namespace.clone()),
            labels: place.labels.clone(),
            ..Metadata::default()
        };
        let spec =
            PodSpec { node_name: self.node_name.clone(), service_account_name: place.service_account_name.clone() };
        Pod { metadata, spec, status: self.address.status() }
    }

    /// Is `pod` the Pod this was made from (`to_pod() == *pod`, without making it)?
    pub(crate) fn is(&self, pod: &Pod) -> bool {
        let m = &pod.metadata;
        let place = &*self.place;
        *m.name == *self.name
            && *m.namespace == *place.namespace
            && m.labels == place.labels
            && m.annotations.is_empty()
            && pod.spec.node_name == self.node_name
            && pod.spec.service_account_name == place.service_account_name
            && self.address.is(&pod.status)
    }

    /// What the endpoint builder reads of it.
    pub(crate) fn view(&self) -> PodView<'_> {
        PodView(PodRef::Compact(self))
    }
}

/// An IP's text as a key: the address when the text is exactly what the address prints as,
/// else the text. Each text has one key and each key one text, so keys are equal exactly when
/// their texts are (`::1` and `0::1` are different keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IpKey<'a> {
    /// An address, printed as its text.
    Addr(IpAddr),
    /// A text that is not an address as it prints.
    Text(&'a str),
}

impl<'a> IpKey<'a> {
    /// The key of `text`.
    pub(crate) fn of(text: &'a str) -> Self {
        match text.parse::<IpAddr>() {
            Ok(ip) if prints_as(ip, text) => IpKey::Addr(ip),
            _ => IpKey::Text(text),
        }
    }
}

/// The text the key was made of.
impl fmt::Display for IpKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpKey::Addr(ip) => fmt::Display::fmt(ip, f),
            IpKey::Text(text) => f.write_str(text),
        }
    }
}

/// Whether `value` prints as `text` exactly (compared as it prints, without a copy).
fn prints_as(value: impl fmt::Display, text: &str) -> bool {
    struct Rest<'t>(&'t str);
    impl fmt::Write for Rest<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let rest = self.0.strip_prefix(s).ok_or(fmt::Error)?;
            self.0 = rest;
            Ok(())
        }
    }
    let mut rest = Rest(text);
    fmt::write(&mut rest, format_args!("{value}")).is_ok() && rest.0.is_empty()
}

/// What the endpoint builder ([`crate::kube`]) and the store's endpoint index read of an
/// EndpointSlice: its name, namespace, labels, address type, ports and endpoints. It reads a
/// whole [`EndpointSlice`] or the compact form in which the configuration store keeps a slice
/// read from an API server, and is two words, cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct SliceView<'a>(SliceRef<'a>);

/// The slice a [`SliceView`] reads.
#[derive(Debug, Clone, Copy)]
enum SliceRef<'a> {
    Whole(&'a EndpointSlice),
    Compact(&'a CompactSlice),
}

impl<'a> From<&'a EndpointSlice> for SliceView<'a> {
    fn from(slice: &'a EndpointSlice) -> Self {
        SliceView(SliceRef::Whole(slice))
    }
}

impl<'a> SliceView<'a> {
    /// `metadata.name`.
    pub fn name(self) -> &'a str {
        match self.0 {
            SliceRef::Whole(s) => &s.metadata.name,
            SliceRef::Compact(c) => &c.name,
        }
    }

    /// `metadata.namespace`.
    pub fn namespace(self) -> &'a str {
        match self.0 {
            SliceRef::Whole(s) => &s.metadata.namespace,
            SliceRef::Compact(c) => &c.shape.namespace,
        }
    }

    /// `metadata.labels`.
    pub fn labels(self) -> &'a Labels {
        match self.0 {
            SliceRef::Whole(s) => &s.metadata.labels,
            SliceRef::Compact(c) => &c.labels,
        }
    }

    /// The Service the slice belongs to, as [`EndpointSlice::service_name`] gives it.
    pub fn service_name(self) -> Option<&'a str> {
        service_name(self.labels())
    }

    /// `addressType`.
    pub fn address_type(self) -> Option<&'a str> {
        match self.0 {
            SliceRef::Whole(s) => s.address_type.as_deref(),
            SliceRef::Compact(c) => c.shape.address_type.map(AddressType::as_str),
        }
    }

    /// `ports`.
    pub fn ports(self) -> &'a [SlicePort] {
        match self.0 {
            SliceRef::Whole(s) => &s.ports,
            SliceRef::Compact(c) => &c.shape.ports,
        }
    }

    /// `endpoints`, in the slice's order.
    pub fn endpoints(self) -> impl Iterator<Item = EndpointView<'a>> {
        let (whole, compact) = match self.0 {
            SliceRef::Whole(s) => (Some(s.endpoints.iter().map(EndpointView::from)), None),
            SliceRef::Compact(c) => {
                let nodes = &*c.shape.node_names;
                (None, Some(c.endpoints.iter().map(move |e| EndpointView(EndpointRef::Compact(e, nodes)))))
            }
        };
        whole.into_iter().flatten().chain(compact.into_iter().flatten())
    }
}

/// What the endpoint builder and the store's endpoint index read of one endpoint of a
/// [`SliceView`]: its addresses, conditions, `targetRef` and node. A few words, cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct EndpointView<'a>(EndpointRef<'a>);

/// The endpoint an [`EndpointView`] reads: a whole one, or a compact one with its slice's node
/// names.
#[derive(Debug, Clone, Copy)]
enum EndpointRef<'a> {
    Whole(&'a SliceEndpoint),
    Compact(&'a CompactEndpoint, &'a [Name]),
}

impl<'a> From<&'a SliceEndpoint> for EndpointView<'a> {
    fn from(endpoint: &'a SliceEndpoint) -> Self {
        EndpointView(EndpointRef::Whole(endpoint))
    }
}

impl<'a> EndpointView<'a> {
    /// `addresses`, in order, each as the key of its text.
    pub(crate) fn addresses(self) -> impl Iterator<Item = IpKey<'a>> {
        let (whole, compact) = match self.0 {
            EndpointRef::Whole(e) => (Some(e.addresses.iter().map(|a| IpKey::of(a))), None),
            EndpointRef::Compact(c, _) => (None, Some(IpKey::Addr(c.address))),
        };
        whole.into_iter().flatten().chain(compact)
    }

    /// `conditions`.
    pub fn conditions(self) -> Conditions {
        match self.0 {
            EndpointRef::Whole(e) => e.conditions.clone(),
            EndpointRef::Compact(c, _) => c.conditions.unpack(),
        }
    }

    /// The Pod `targetRef` names, when its kind is `Pod`: the namespace it gives (`None` when
    /// it gives none or an empty one: the slice's), and its name (empty when it gives none).
    /// `None` when there is no `targetRef` or it names another kind.
    pub fn target_pod(self) -> Option<(Option<&'a str>, &'a str)> {
        match self.0 {
            EndpointRef::Whole(e) => {
                let t = e.target_ref.as_ref().filter(|t| t.kind.as_deref() == Some(POD_KIND))?;
                Some((t.namespace.as_deref().filter(|n| !n.is_empty()), t.name.as_deref().unwrap_or("")))
            }
            EndpointRef::Compact(c, _) => c.pod.as_deref().map(|name| (None, name)),
        }
    }

    /// `nodeName`.
    pub fn node_name(self) -> Option<&'a str> {
        match self.0 {
            EndpointRef::Whole(e) => e.node_name.as_deref(),
            EndpointRef::Compact(c, nodes) => c.node_name(nodes),
        }
    }
}

/// The kind a `targetRef` names a Pod by.
const POD_KIND: &str = "Pod";

/// `Pod`, shared by the `targetRef`s [`CompactSlice::to_slice`] gives back.
static POD_KIND_NAME: LazyLock<Name> = LazyLock::new(|| Name::from(POD_KIND));

/// An EndpointSlice in the form the configuration store keeps one read from an API server
/// (`store::compact`): 56 bytes. Its name is the object's own handle, its labels a shared
/// handle, and its endpoints [`CompactEndpoint`]s in one block; what is not per endpoint (the
/// namespace, the address type, the ports, the node names the endpoints refer to) is one
/// [`SliceShape`], which slices of the same shape may share. [`CompactSlice::new`] makes one
/// only when [`CompactSlice::to_slice`] gives back an [`EndpointSlice`] equal to the one it was
/// made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompactSlice {
    /// `metadata.name` (the object's name).
    pub(crate) name: Arc<str>,
    /// `metadata.labels` (there are no annotations).
    pub(crate) labels: Labels,
    /// `endpoints`.
    endpoints: Box<[CompactEndpoint]>,
    /// The namespace, the address type, the ports and the node names.
    pub(crate) shape: Arc<SliceShape>,
}

/// What a [`CompactSlice`] holds beside its name, labels and endpoints: its namespace, its
/// `addressType`, its `ports`, and the distinct `nodeName`s of its endpoints (in the order they
/// first appear), which its endpoints refer to by index. An API server's slices of Services of
/// one namespace with the same ports have the same shape (mesh-kube drops `nodeName`), so one
/// copy can serve them all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SliceShape {
    /// `metadata.namespace` (the object's namespace).
    pub(crate) namespace: Arc<str>,
    address_type: Option<AddressType>,
    ports: Box<[SlicePort]>,
    /// The node names the endpoints refer to.
    pub(crate) node_names: Box<[Name]>,
}

/// An EndpointSlice's `addressType`, of the values the API accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddressType {
    Ipv4,
    Ipv6,
    Fqdn,
}

impl AddressType {
    /// The address type `text` spells exactly (`IPv4`, `IPv6`, `FQDN`).
    fn of(text: &str) -> Option<AddressType> {
        [AddressType::Ipv4, AddressType::Ipv6, AddressType::Fqdn].into_iter().find(|t| t.as_str() == text)
    }

    fn as_str(self) -> &'static str {
        match self {
            AddressType::Ipv4 => "IPv4",
            AddressType::Ipv6 => "IPv6",
            AddressType::Fqdn => "FQDN",
        }
    }
}

/// An endpoint of a [`CompactSlice`]: 40 bytes and no block of its own but its Pod's name. It
/// has one address, written as that address prints; a `targetRef`, if any, of kind `Pod`
/// without a namespace (mesh-kube drops a namespace that is the slice's) and with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompactEndpoint {
    /// `targetRef.name` of a `targetRef` `{kind: Pod, name}`; `None`: no `targetRef`.
    pod: Option<Name>,
    /// `addresses[0]`, the only one.
    address: IpAddr,
    conditions: PackedConditions,
    /// `nodeName`, as its index in the slice's node names.
    node: Option<u16>,
}

/// `conditions`: `ready`, `serving` and `terminating` in two bits each (0: absent, 1: `false`,
/// 2: `true`), from the lowest bits up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedConditions(u8);

impl PackedConditions {
    fn pack(c: &Conditions) -> PackedConditions {
        let bits = |v: Option<bool>| match v {
            None => 0u8,
            Some(false) => 1,
            Some(true) => 2,
        };
        PackedConditions(bits(c.ready) | (bits(c.serving) << 2) | (bits(c.terminating) << 4))
    }

    fn unpack(self) -> Conditions {
        let at = |shift: u8| match (self.0 >> shift) & 0b11 {
            0 => None,
            1 => Some(false),
            _ => Some(true),
        };
        Conditions { ready: at(0), serving: at(2), terminating: at(4) }
    }
}

impl CompactEndpoint {
    /// The compact form of `e`, when it gives `e` back exactly (see [`CompactEndpoint`]), its
    /// `nodeName` added to `node_names` when it is not there yet. `None` otherwise.
    fn new(e: &SliceEndpoint, node_names: &mut Vec<Name>) -> Option<CompactEndpoint> {
        let [address] = e.addresses.as_slice() else { return None };
        let IpKey::Addr(address) = IpKey::of(address) else { return None };
        let pod = match &e.target_ref {
            None => None,
            Some(t) if t.kind.as_deref() == Some(POD_KIND) && t.namespace.is_none() => Some(t.name.clone()?),
            Some(_) => return None,
        };
        let node = match e.node_name.as_deref() {
            None => None,
            Some(node) => {
                let at = node_names.iter().position(|n| **n == *node).unwrap_or_else(|| {
                    node_names.push(Name::from(node));
                    node_names.len() - 1
                });
                Some(u16::try_from(at).ok()?)
            }
        };
        Some(CompactEndpoint { pod, address, conditions: PackedConditions::pack(&e.conditions), node })
    }

    /// `nodeName`, read in the slice's `node_names`.
    fn node_name<'n>(&self, node_names: &'n [Name]) -> Option<&'n str> {
        self.node.and_then(|at| node_names.get(usize::from(at))).map(Name::as_str)
    }

    /// The endpoint this was made from.
    fn to_endpoint(&self, node_names: &[Name]) -> SliceEndpoint {
        SliceEndpoint {
            addresses: vec![self.address.to_string()],
            conditions: self.conditions.unpack(),
            target_ref: self.pod.clone().map(|name| ObjectReference {
                kind: Some(POD_KIND_NAME.clone()),
                name: Some(name),
                ..ObjectReference::default()
            }),
            node_name: self.node_name(node_names).map(str::to_string),
            ..SliceEndpoint::default()
        }
    }

    /// Is `e` the endpoint this was made from (`to_endpoint(..) == *e`, without making it)?
    fn is(&self, e: &SliceEndpoint, node_names: &[Name]) -> bool {
        let target = match (&self.pod, &e.target_ref) {
            (None, None) => true,
            (Some(pod), Some(t)) => {
                t.kind.as_deref() == Some(POD_KIND) && t.namespace.is_none() && t.name.as_ref() == Some(pod)
            }
            _ => false,
        };
        target
            && matches!(e.addresses.as_slice(), [only] if prints_as(self.address, only))
            && e.conditions == self.conditions.unpack()
            && e.node_name.as_deref() == self.node_name(node_names)
    }
}

impl CompactSlice {
    /// The compact form of `slice`, an object named `name` in `namespace`, when it gives `slice`
    /// back exactly: its metadata names the object, it has no annotations, its `addressType` is
    /// absent or one of `IPv4`, `IPv6`, `FQDN`, and each endpoint has one address written as
    /// that address prints (`10.0.0.1`, `fd00::1`; not `010.0.0.1`, `FD00::1`, not a host
    /// name) and no `targetRef` or one of kind `Pod` with a name and no namespace. `None`
    /// otherwise.
    pub(crate) fn new(name: &Arc<str>, namespace: &Arc<str>, slice: &EndpointSlice) -> Option<CompactSlice> {
        let m = &slice.metadata;
        if *m.name != **name || *m.namespace != **namespace || !m.annotations.is_empty() {
            return None;
        }
        let address_type = match slice.address_type.as_deref() {
            None => None,
            Some(text) => Some(AddressType::of(text)?),
        };
        let mut node_names = Vec::new();
        let mut endpoints = Vec::with_capacity(slice.endpoints.len());
        for e in &slice.endpoints {
            endpoints.push(CompactEndpoint::new(e, &mut node_names)?);
        }
        let shape = SliceShape {
            namespace: namespace.clone(),
            address_type,
            ports: slice.ports.clone().into_boxed_slice(),
            node_names: node_names.into_boxed_slice(),
        };
        Some(CompactSlice {
            name: name.clone(),
            labels: m.labels.clone(),
            endpoints: endpoints.into_boxed_slice(),
            shape: Arc::new(shape),
        })
    }

    /// The slice this was made from.
    pub(crate) fn to_slice(&self) -> EndpointSlice {
        let shape = &*self.shape;
        let metadata = Metadata {
            name: Name::from(self.name.clone()),
            namespace: Name::from(shape.namespace.clone()),
            labels: self.labels.clone(),
            ..Metadata::default()
        };
        EndpointSlice {
            metadata,
            address_type: shape.address_type.map(|t| t.as_str().to_string()),
            endpoints: self.endpoints.iter().map(|e| e.to_endpoint(&shape.node_names)).collect(),
            ports: shape.ports.to_vec(),
        }
    }

    /// Is `slice` the slice this was made from (`to_slice() == *slice`, without making it)?
    pub(crate) fn is(&self, slice: &EndpointSlice) -> bool {
        let m = &slice.metadata;
        let shape = &*self.shape;
        *m.name == *self.name
            && *m.namespace == *shape.namespace
            && m.labels == self.labels
            && m.annotations.is_empty()
            && slice.address_type.as_deref() == shape.address_type.map(AddressType::as_str)
            && *slice.ports == *shape.ports
            && slice.endpoints.len() == self.endpoints.len()
            && self.endpoints.iter().zip(&slice.endpoints).all(|(c, e)| c.is(e, &shape.node_names))
    }

    /// What the endpoint builder reads of it.
    pub(crate) fn view(&self) -> SliceView<'_> {
        SliceView(SliceRef::Compact(self))
    }
}
