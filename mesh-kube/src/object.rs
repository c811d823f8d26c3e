//! One API object into the seam: its JSON through mesh-config's loader, with its origin.
//!
//! Every kind arrives as a kube-rs [`DynamicObject`] (raw JSON under typed metadata), so an
//! object whose spec is wrong fails alone, in mesh-config's decode and validation, with the
//! field path of its problem — never the whole list, as a typed list would fail on one bad item.
//! List items carry no `apiVersion`/`kind`; both are set from the watched kind. (Only
//! `metadata` is typed in a `DynamicObject`; the API server validates metadata on every write,
//! so a list never holds one it cannot decode.)
//!
//! A Pod and an EndpointSlice are cut down to what the endpoint builder reads
//! ([`pod_fields`], [`slice_fields`]): a cluster holds many of them, and the rest of each (a Pod's
//! containers, annotations, `managedFields`, a slice endpoint's `nodeName`, `zone` and
//! `targetRef.uid`) is only memory and decoding time. What is left means the same: a Pod's
//! `podIPs` that says no more than its `podIP` goes, and so does a `targetRef.namespace` that is
//! the slice's own.
//!
//! A Secret is cut down first ([`secret_fields`]): its name, namespace, labels,
//! resourceVersion, `type` and, for a `kubernetes.io/tls` one, `tls.crt` and `tls.key` — never
//! its annotations (`kubectl apply` keeps the whole object, key included, in
//! `kubectl.kubernetes.io/last-applied-configuration`), `managedFields` or other keys, so no
//! diagnostic or `Debug` of the stored object can show them.

use std::sync::Arc;

use kube::core::DynamicObject;
use mesh_config::store::{Origin, SourceObject};
use mesh_config::{Kind, LoadOptions, ResourceRef, load_json};
use serde_json::Value;

use crate::kinds::WatchedKind;

/// The kind (as meshwork names it: [`WatchedKind::kind`]), namespace (empty for cluster-scoped
/// kinds) and name of an object of `kind`.
pub fn object_key(kind: &WatchedKind, object: &DynamicObject) -> ResourceRef {
    let namespace = if kind.cluster_scoped { "" } else { object.metadata.namespace.as_deref().unwrap_or("") };
    ResourceRef {
        kind: Arc::from(kind.kind.as_str()),
        namespace: Arc::from(namespace),
        name: Arc::from(object.metadata.name.as_deref().unwrap_or("")),
    }
}

/// Decode `object` (of `kind`) as mesh-config reads it: its resource, or the diagnostics that
/// keep it out (validation happens in the store), with its [`Origin`]. (Taken whole: its body
/// becomes the JSON read, not a copy of it, and its `managedFields` are dropped unread.)
pub fn decode(kind: &WatchedKind, object: DynamicObject) -> (ResourceRef, SourceObject) {
    let key = object_key(kind, &object);
    let DynamicObject { types: _, mut metadata, data } = object;
    let origin = Origin::Kubernetes {
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        resource_version: metadata.resource_version.as_deref().map(Arc::from),
    };
    metadata.managed_fields = None;
    let (mut map, meta) = match (data, serde_json::to_value(&metadata)) {
        (Value::Object(map), Ok(meta)) => (map, meta),
        (Value::Null, Ok(meta)) => (serde_json::Map::new(), meta),
        (_, Err(e)) => {
            let message = format!("cannot be encoded: {e}");
            return (key.clone(), SourceObject::undecodable(&key, origin, message));
        }
        (other, Ok(_)) => {
            let message = format!("cannot be encoded: its body is not an object: {other}");
            return (key.clone(), SourceObject::undecodable(&key, origin, message));
        }
    };
    map.insert("metadata".into(), meta);
    let mut value = Value::Object(map);
    match kind.kind {
        Kind::Secret => secret_fields(&mut value),
        Kind::Pod => pod_fields(&mut value),
        Kind::EndpointSlice => slice_fields(&mut value),
        _ => {}
    }
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), kind.resource.api_version.clone().into());
        map.insert("kind".into(), kind.resource.kind.clone().into());
    }
    // Read as its one line of JSON would be (an API object's diagnostics are named by kind,
    // namespace, name and field path, not by line), without writing that line out.
    let options = LoadOptions { default_namespace: key.namespace.to_string(), ..LoadOptions::default() };
    // Without its positioned tree (lines only, and every line is 1 here).
    let object = SourceObject { origin, loaded: load_json(value, &options) }.without_lines();
    (key, object)
}

/// Keep of `map` only the `keys`.
fn only(map: &mut serde_json::Map<String, Value>, keys: &[&str]) {
    map.retain(|k, _| keys.contains(&k.as_str()));
}

/// The object `key` of `map`, if it is one.
fn object_at<'v>(
    map: &'v mut serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'v mut serde_json::Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// Keep of a Pod (as JSON) what the endpoint builder reads (see the module docs): its name,
/// namespace and labels, `spec.nodeName` and `spec.serviceAccountName`, and its IPs.
fn pod_fields(value: &mut Value) {
    let Some(map) = value.as_object_mut() else { return };
    only(map, &["metadata", "spec", "status"]);
    if let Some(meta) = object_at(map, "metadata") {
        only(meta, &["name", "namespace", "labels"]);
    }
    if let Some(spec) = object_at(map, "spec") {
        only(spec, &["nodeName", "serviceAccountName"]);
    }
    if let Some(status) = object_at(map, "status") {
        only(status, &["podIP", "podIPs"]);
        let ip = status.get("podIP").cloned();
        let only_that = match status.get("podIPs") {
            Some(Value::Array(ips)) => ips.len() == 1 && ip.is_some() && ips[0].get("ip") == ip.as_ref(),
            _ => false,
        };
        if only_that {
            status.remove("podIPs");
        }
    }
}

/// Keep of an EndpointSlice (as JSON) what the endpoint builder reads (see the module docs): its
/// name, namespace and labels, `addressType`, `ports`, and of each endpoint its addresses,
/// conditions and the kind, namespace and name of its `targetRef`.
fn slice_fields(value: &mut Value) {
    let Some(map) = value.as_object_mut() else { return };
    only(map, &["metadata", "addressType", "endpoints", "ports"]);
    let mut namespace = None;
    if let Some(meta) = object_at(map, "metadata") {
        only(meta, &["name", "namespace", "labels"]);
        namespace = meta.get("namespace").cloned();
    }
    let Some(Value::Array(endpoints)) = map.get_mut("endpoints") else { return };
    for endpoint in endpoints.iter_mut().filter_map(Value::as_object_mut) {
        only(endpoint, &["addresses", "conditions", "targetRef"]);
        if let Some(target) = object_at(endpoint, "targetRef") {
            only(target, &["kind", "namespace", "name"]);
            if namespace.is_some() && target.get("namespace") == namespace.as_ref() {
                target.remove("namespace");
            }
        }
    }
}

/// The type of Secret whose keys are kept, and those keys (what a Gateway API listener's
/// certificate is read from).
const TLS_TYPE: &str = "kubernetes.io/tls";
const TLS_KEYS: [&str; 2] = ["tls.crt", "tls.key"];

/// Keep of a Secret (as JSON) only what meshwork reads (see the module docs). A Secret of
/// another type (the watch's field selector leaves those out; an API server that ignored it
/// would not) keeps no data at all.
fn secret_fields(value: &mut Value) {
    let Some(map) = value.as_object_mut() else { return };
    map.retain(|k, _| matches!(k.as_str(), "metadata" | "type" | "data"));
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        meta.retain(|k, _| {
            matches!(k.as_str(), "name" | "namespace" | "labels" | "resourceVersion" | "creationTimestamp" | "uid")
        });
    }
    let tls = map.get("type").and_then(Value::as_str) == Some(TLS_TYPE);
    match map.get_mut("data") {
        Some(Value::Object(data)) if tls => data.retain(|k, _| TLS_KEYS.contains(&k.as_str())),
        Some(_) => {
            map.remove("data");
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_keeps_what_the_endpoint_builder_reads() {
        let mut pod = json!({
            "metadata": {"name": "r-1", "namespace": "shop", "labels": {"app": "r"}, "uid": "u-1",
                         "annotations": {"a": "b"}, "managedFields": [{"manager": "kubelet"}]},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]},
        });
        pod_fields(&mut pod);
        assert_eq!(
            pod,
            json!({"metadata": {"name": "r-1", "namespace": "shop", "labels": {"app": "r"}},
                   "spec": {"nodeName": "n1", "serviceAccountName": "sa"},
                   "status": {"podIP": "10.0.0.1"}})
        );
        // Dual stack: podIPs says more than podIP, and stays.
        let mut dual = json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}});
        let before = dual.clone();
        pod_fields(&mut dual);
        assert_eq!(dual, before);
    }

    #[test]
    fn a_slice_keeps_what_the_endpoint_builder_reads() {
        let mut slice = json!({
            "metadata": {"name": "r-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "r"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "t"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true}, "nodeName": "n1",
                 "zone": "z", "targetRef": {"kind": "Pod", "namespace": "shop", "name": "r-1", "uid": "u-1"}},
                {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Pod", "namespace": "other", "name": "r-2"}},
            ],
        });
        slice_fields(&mut slice);
        assert_eq!(
            slice,
            json!({"metadata": {"name": "r-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "r"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true},
                 "targetRef": {"kind": "Pod", "name": "r-1"}},
                {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Pod", "namespace": "other", "name": "r-2"}},
            ]})
        );
    }

    #[test]
    fn a_secret_keeps_only_its_name_type_and_tls_keys() {
        let mut tls = json!({
            "metadata": {"name": "cert", "namespace": "shop", "resourceVersion": "7", "labels": {"a": "b"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":\"S3CR3T\"}"},
                         "managedFields": [{"manager": "kubectl"}]},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ", "ca.crt": "Q0E=", "password": "UzNDUjNU"},
            "stringData": {"other": "S3CR3T"},
            "immutable": true,
        });
        secret_fields(&mut tls);
        assert_eq!(
            tls,
            json!({"metadata": {"name": "cert", "namespace": "shop", "resourceVersion": "7", "labels": {"a": "b"}},
                   "type": "kubernetes.io/tls", "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"}})
        );
        let mut opaque = json!({"metadata": {"name": "db"}, "type": "Opaque", "data": {"tls.key": "S0VZ"}});
        secret_fields(&mut opaque);
        assert_eq!(opaque, json!({"metadata": {"name": "db"}, "type": "Opaque"}));
    }
}
