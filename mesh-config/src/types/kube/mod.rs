//! Typed mirrors of the Kubernetes resources meshwork reads for service discovery: core `v1`
//! [`Service`], [`Pod`] (metadata, IPs, node and service account), [`Namespace`] and [`Node`]
//! (labels), and `discovery.k8s.io/v1` [`EndpointSlice`].
//!
//! Only the fields Istio's Kubernetes registry reads are typed (istio/istio
//! `pilot/pkg/serviceregistry/kube/conversion.go`, `controller/endpointslice.go`,
//! `controller/endpoint_builder.go`); the rest of each object is accepted and ignored, so the
//! output of `kubectl get -o yaml` (status, managed fields, container specs...) reads unchanged.
//! Field names are the Kubernetes API's (<https://kubernetes.io/docs/reference/kubernetes-api/>).
//! Unlike the Istio kinds, a field these types do not know is not an error: Kubernetes objects
//! carry many fields meshwork has no use for, and newer API servers add more. A field one typo
//! away from one meshwork reads (`adressType`) is a warning.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

mod view;

#[cfg(test)]
pub(crate) use view::CompactEndpoint;
pub(crate) use view::{CompactPod, CompactSlice, IpKey, PodPlace, SliceShape};
pub use view::{EndpointView, PodView, SliceView};

/// The API group of EndpointSlice.
pub const DISCOVERY_GROUP: &str = "discovery.k8s.io";
/// The `apiVersion` of the EndpointSlices meshwork reads (`v1beta1` was removed in Kubernetes
/// 1.25).
pub const DISCOVERY_V1: &str = "discovery.k8s.io/v1";

/// `kubernetes.io/service-name`: the label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// `multicluster.kubernetes.io/service-name`: the label of slices made for a multi-cluster
/// (MCS) ServiceImport, which Istio's endpoint controller does not read.
pub const MCS_SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// `networking.istio.io/exportTo`: the annotation that limits where a Service is visible.
pub const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";

/// The `metadata` of a Kubernetes object, as far as meshwork reads it. The loader fills in
/// `namespace` with its default namespace when the document gives none, so an object is
/// self-contained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metadata {
    /// `name`.
    pub name: Name,
    /// `namespace` (the loader's default namespace when the document gives none; empty for
    /// cluster-scoped kinds: Namespace, Node).
    pub namespace: Name,
    /// `labels`.
    pub labels: Labels,
    /// `annotations`.
    pub annotations: Labels,
    /// `resourceVersion`, `creationTimestamp`, `uid`: known (a misspelling of one is still
    /// reported), not kept (no rule reads them; a watch's resourceVersion is its source's).
    resource_version: Unread,
    creation_timestamp: Unread,
    uid: Unread,
}

/// A field meshwork knows and does not keep: it reads as anything and holds nothing, so a
/// cluster's 100,000 Pods and their slices' endpoints do not each carry it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Unread)
    }
}

/// An object's name or namespace: text, shared with the object's id (a cluster's 100,000 Pods
/// would otherwise each hold their name and namespace twice more).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, shared.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }

    pub(crate) fn arc_mut(&mut self) -> &mut Arc<str> {
        &mut self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<Arc<str>> for Name {
    fn from(text: Arc<str>) -> Self {
        Name(text)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Name(Arc::from(text))
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Name(Arc::from(text))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Name::from)
    }
}

/// The labels (or annotations) of a Kubernetes object: text to text, sorted by key, and shared.
/// A cluster's Pods of one workload carry the same labels; the config sources keep one copy of
/// each distinct set ([`Sources`](crate::store::Sources)), so 100,000 Pods of a few thousand
/// workloads hold a few thousand sets, not 100,000. A set is one slice (a `BTreeMap` would take
/// a 544-byte node for one label); empty costs no allocation.
#[derive(Clone, Default)]
pub struct Labels(Option<Arc<[(String, String)]>>);

impl Labels {
    fn pairs(&self) -> &[(String, String)] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        let pairs = self.pairs();
        pairs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().and_then(|i| pairs.get(i)).map(|(_, v)| v)
    }

    /// Is `key` set?
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Each key and value, by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &String)> {
        self.pairs().iter().map(|(k, v)| (k, v))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// None?
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    /// Set `key` to `value` (a set of its own from then on), giving back the value it had.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        let mut map = self.to_map();
        let old = map.insert(key, value);
        *self = Labels::from(map);
        old
    }

    /// Do `self` and `other` share one set (or are both empty without one)?
    pub fn ptr_eq(&self, other: &Labels) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Is this the one handle on its set (or empty)? (What a set of shared copies no object
    /// holds any more looks like.)
    pub(crate) fn is_only_copy(&self) -> bool {
        self.0.as_ref().is_none_or(|m| Arc::strong_count(m) == 1)
    }

    /// The labels, as a `BTreeMap` of their own.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.pairs().iter().cloned().collect()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        Labels((!map.is_empty()).then(|| map.into_iter().collect()))
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Labels {
    fn from(pairs: [(&str, &str); N]) -> Self {
        Labels::from(pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, String)>, fn(&'a (String, String)) -> Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs().iter().map(|(k, v)| (k, v))
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || self.pairs() == other.pairs()
    }
}

impl Eq for Labels {}

impl PartialEq<BTreeMap<String, String>> for Labels {
    fn eq(&self, other: &BTreeMap<String, String>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pairs().hash(state);
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Labels::from)
    }
}

/// A core `v1` Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// `metadata`.
    pub metadata: Metadata,
    /// `spec`.
    pub spec: ServiceSpec,
}

impl Service {
    /// The namespaces the Service is visible to, from its `networking.istio.io/exportTo`
    /// annotation (comma-separated, as Istio's `ConvertService` reads it); empty: everywhere.
    pub fn export_to(&self) -> Vec<String> {
        self.metadata
            .annotations
            .get(EXPORT_TO_ANNOTATION)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// Is this an `ExternalName` Service with a name to alias?
    pub fn is_external_name(&self) -> bool {
        self.spec.type_.as_deref() == Some("ExternalName")
            && self.spec.external_name.as_deref().is_some_and(|n| !n.is_empty())
    }

    /// Is this a headless Service (`clusterIP: None`)?
    pub fn is_headless(&self) -> bool {
        self.spec.cluster_ip.as_deref() == Some("None")
    }
}

/// A Service's `spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// `ports`.
    pub ports: Vec<ServicePort>,
    /// `selector`: the labels of the Pods behind the Service.
    pub selector: Labels,
    /// `clusterIP` (`None` for a headless Service).
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    /// `clusterIPs` (dual stack).
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Vec<String>,
    /// `type`: `ClusterIP` (the default), `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// `externalName`, for `type: ExternalName`.
    pub external_name: Option<String>,
    /// `publishNotReadyAddresses`.
    pub publish_not_ready_addresses: Option<bool>,
}

/// `spec.ports[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// `name` (required when the Service has more than one port); EndpointSlice ports refer to
    /// it.
    pub name: Option<String>,
    /// `port`: the Service's port.
    pub port: i64,
    /// `targetPort`: a number or the name of a container port.
    pub target_port: Option<IntOrString>,
    /// `protocol`: `TCP` (the default), `UDP` or `SCTP`.
    pub protocol: Option<String>,
    /// `appProtocol`: the application protocol (`http`, `kubernetes.io/h2c`, ...).
    pub app_protocol: Option<String>,
    /// `nodePort`.
    pub node_port: Option<i64>,
}

/// Kubernetes' `IntOrString` (`targetPort: 8080` or `targetPort: http`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name.
    String(String),
}

/// A core `v1` Pod: its metadata, where it runs, and its IPs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pod {
    /// `metadata` (the labels are the endpoint's labels).
    pub metadata: Metadata,
    /// `spec` (node and service account only).
    pub spec: PodSpec,
    /// `status` (IPs only).
    pub status: PodStatus,
}

/// The part of a Pod's `spec` meshwork reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    /// `nodeName`: the Node it was scheduled to (its locality, when the Pod has no locality
    /// label).
    pub node_name: Option<Name>,
    /// `serviceAccountName`.
    pub service_account_name: Option<Name>,
}

/// The part of a Pod's `status` meshwork reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    /// `podIP`.
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    /// `podIPs` (dual stack).
    #[serde(rename = "podIPs")]
    pub pod_ips: Vec<PodIp>,
}

/// `status.podIPs[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PodIp {
    /// `ip`.
    pub ip: String,
}

impl Pod {
    /// Every IP of the Pod (`podIP`, then the others of `podIPs`).
    pub fn ips(&self) -> impl Iterator<Item = &str> {
        let first = self.status.pod_ip.as_deref().filter(|ip| !ip.is_empty());
        first.into_iter().chain(self.status.pod_ips.iter().map(|p| p.ip.as_str()).filter(move |ip| Some(*ip) != first))
    }
}

/// A core `v1` Namespace (labels only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Namespace {
    /// `metadata`.
    pub metadata: Metadata,
}

/// A core `v1` Secret. meshwork reads `kubernetes.io/tls` Secrets: the certificate and key a
/// Gateway API listener's `certificateRefs` name. `Debug` prints its name and the keys of
/// `data`, never values or annotations.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    /// `metadata`.
    pub metadata: Metadata,
    /// `type` (`kubernetes.io/tls`, `Opaque`, ...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `data`: base64-encoded values.
    pub data: BTreeMap<String, String>,
    /// `stringData`: plain values (write-only in the API; files may carry it).
    pub string_data: BTreeMap<String, String>,
    /// `immutable` (not read).
    pub immutable: Option<bool>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the whole metadata: `kubectl apply` keeps the object, data included, in an
        // annotation (`kubectl.kubernetes.io/last-applied-configuration`).
        f.debug_struct("Secret")
            .field("namespace", &self.metadata.namespace)
            .field("name", &self.metadata.name)
            .field("type", &self.kind)
            .field("data", &self.data.keys().chain(self.string_data.keys()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// The value of `key`: `stringData` as written, or `data` base64-decoded. `Err` says why
    /// not (absent, not base64).
    pub fn value(&self, key: &str) -> Result<Vec<u8>, String> {
        if let Some(v) = self.string_data.get(key) {
            return Ok(v.as_bytes().to_vec());
        }
        let encoded = self.data.get(key).ok_or_else(|| format!("no {key} in data"))?;
        base64_decode(encoded).ok_or_else(|| format!("data.{key} is not base64"))
    }
}

/// Standard base64 (RFC 4648, with or without padding; whitespace ignored), as Kubernetes
/// encodes `data`.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            _ => return None,
        };
        if padding {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of the last group (2 or 4 bits), never 6.
    (bits != 6).then_some(out)
}

/// A core `v1` Node (labels only: `topology.kubernetes.io/region`, `.../zone`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Node {
    /// `metadata`.
    pub metadata: Metadata,
}

/// A `discovery.k8s.io/v1` EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointSlice {
    /// `metadata` (the `kubernetes.io/service-name` label names the Service).
    pub metadata: Metadata,
    /// `addressType`: `IPv4`, `IPv6` or `FQDN`.
    pub address_type: Option<String>,
    /// `endpoints`.
    pub endpoints: Vec<SliceEndpoint>,
    /// `ports`: every endpoint of the slice serves all of them.
    pub ports: Vec<SlicePort>,
}

impl EndpointSlice {
    /// The Service the slice belongs to (its `kubernetes.io/service-name` label).
    pub fn service_name(&self) -> Option<&str> {
        service_name(&self.metadata.labels)
    }
}

/// The Service a slice with these labels belongs to (its `kubernetes.io/service-name` label,
/// when not empty).
fn service_name(labels: &Labels) -> Option<&str> {
    labels.get(SERVICE_NAME_LABEL).map(String::as_str).filter(|n| !n.is_empty())
}

/// `endpoints[]` of an EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SliceEndpoint {
    /// `addresses`: one endpoint, its addresses (Kubernetes consumers use the first).
    pub addresses: Vec<String>,
    /// `conditions`.
    pub conditions: Conditions,
    /// `targetRef`: the object behind the endpoint, usually a Pod.
    pub target_ref: Option<ObjectReference>,
    /// `nodeName` (validated, not read: the endpoint builder reads a Pod's node from the Pod).
    pub node_name: Option<String>,
    /// `zone`, `hostname`: known, not kept (the endpoint builder reads a Pod's locality from
    /// the Pod and its Node).
    zone: Unread,
    hostname: Unread,
}

/// `endpoints[].conditions`; absent means unknown, which consumers read as `true` for `ready`
/// and `serving` and as `false` for `terminating`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Conditions {
    /// `ready`.
    pub ready: Option<bool>,
    /// `serving`.
    pub serving: Option<bool>,
    /// `terminating`.
    pub terminating: Option<bool>,
}

/// `endpoints[].targetRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectReference {
    /// `kind` (`Pod`).
    pub kind: Option<Name>,
    /// `namespace`.
    pub namespace: Option<Name>,
    /// `name`.
    pub name: Option<Name>,
    /// `uid`, `resourceVersion`, `apiVersion`, `fieldPath`: known, not kept.
    uid: Unread,
    resource_version: Unread,
    api_version: Unread,
    field_path: Unread,
}

/// `ports[]` of an EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlicePort {
    /// `name`: the Service port's name (empty for the single unnamed port).
    pub name: Option<String>,
    /// `port`: where traffic for that Service port goes on these endpoints.
    pub port: Option<i64>,
    /// `protocol`: `TCP` (the default), `UDP` or `SCTP`.
    pub protocol: Option<String>,
    /// `appProtocol`.
    pub app_protocol: Option<String>,
}

/// Kubernetes field names that exist in the kinds above but that meshwork does not read: never
/// reported as unknown, even when one is close to a field meshwork reads.
pub(crate) const KNOWN_UNREAD: &[&str] = &[
    // ObjectMeta
    "generateName",
    "selfLink",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    // ServiceSpec
    "externalIPs",
    "sessionAffinity",
    "sessionAffinityConfig",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "externalTrafficPolicy",
    "internalTrafficPolicy",
    "healthCheckNodePort",
    "ipFamilies",
    "ipFamilyPolicy",
    "allocateLoadBalancerNodePorts",
    "trafficDistribution",
    // EndpointSlice endpoint
    "hints",
    "deprecatedTopology",
];

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn base64_as_kubernetes_writes_it() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVs\nbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert!(base64_decode("aGVsbG8*").is_none());
        assert!(base64_decode("a").is_none());
    }

    #[test]
    fn secret_debug_never_prints_values() {
        let mut s = Secret::default();
        s.data.insert("tls.key".into(), "c2VjcmV0".into());
        s.metadata.annotations.insert("kubectl.kubernetes.io/last-applied-configuration".into(), "c2VjcmV0".into());
        let shown = format!("{s:?}");
        assert!(shown.contains("tls.key") && !shown.contains("c2VjcmV0"), "{shown}");
        assert_eq!(s.value("tls.key").as_deref(), Ok(&b"secret"[..]));
    }

    #[test]
    fn labels_read_as_a_sorted_map_and_write_as_a_set_of_their_own() {
        let read: Labels = serde_json::from_str(r#"{"version": "v1", "app": "reviews"}"#).expect("labels");
        assert_eq!(read.get("app").map(String::as_str), Some("reviews"));
        assert!(read.contains_key("version") && !read.contains_key("ap") && read.get("zzz").is_none());
        assert_eq!(read.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["app", "version"]);
        let map: BTreeMap<String, String> =
            [("app", "reviews"), ("version", "v1")].map(|(k, v)| (k.into(), v.into())).into();
        let from_map = Labels::from(map.clone());
        assert!(read == map && read == from_map && read.to_map() == map);
        let shared = read.clone();
        assert!(shared.ptr_eq(&read));
        let mut mine = read.clone();
        assert_eq!(mine.insert("version".into(), "v2".into()).as_deref(), Some("v1"));
        assert_eq!(mine.get("version").map(String::as_str), Some("v2"));
        assert_eq!(read.get("version").map(String::as_str), Some("v1"), "the shared set is not written");
        assert!(Labels::default().is_empty() && Labels::from(BTreeMap::new()).ptr_eq(&Labels::default()));
    }
}
