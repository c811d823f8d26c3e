//! One API object into the seam: its JSON through mesh-config's loader, with its origin.
//!
//! Every kind arrives as a kube-rs [`DynamicObject`] (raw JSON under typed metadata), so an
//! object whose spec is wrong fails alone, in mesh-config's decode and validation, with the
//! field path of its problem — never the whole list, as a typed list would fail on one bad item.
//! List items carry no `apiVersion`/`kind`; both are set from the watched kind. (Only
//! `metadata` is typed in a `DynamicObject`; the API server validates metadata on every write,
//! so a list never holds one it cannot decode.)
//!
//! A Secret is cut down first ([`secret_fields`]): its name, namespace, labels,
//! resourceVersion, `type` and, for a `kubernetes.io/tls` one, `tls.crt` and `tls.key` — never
//! its annotations (`kubectl apply` keeps the whole object, key included, in
//! `kubectl.kubernetes.io/last-applied-configuration`), `managedFields` or other keys, so no
//! diagnostic or `Debug` of the stored object can show them.

use std::sync::Arc;

use kube::core::DynamicObject;
use mesh_config::store::{Origin, SourceObject};
use mesh_config::{Kind, LoadOptions, ResourceRef, load_str};
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
/// keep it out (validation happens in the store), with its [`Origin`].
pub fn decode(kind: &WatchedKind, object: &DynamicObject) -> (ResourceRef, SourceObject) {
    let key = object_key(kind, object);
    let origin = Origin::Kubernetes {
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        resource_version: object.metadata.resource_version.as_deref().map(Arc::from),
    };
    let mut value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            let message = format!("cannot be encoded: {e}");
            return (key.clone(), SourceObject::undecodable(&key, origin, message));
        }
    };
    if kind.kind == Kind::Secret {
        secret_fields(&mut value);
    }
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), kind.resource.api_version.clone().into());
        map.insert("kind".into(), kind.resource.kind.clone().into());
    }
    // Compact: an API object's diagnostics are named by kind, namespace, name and field path,
    // not by line, and the YAML scanner reads a third fewer bytes than pretty JSON.
    let text = serde_json::to_string(&value).unwrap_or_default();
    let options = LoadOptions { default_namespace: key.namespace.to_string(), ..LoadOptions::default() };
    // Without its positioned tree (lines only, and every line is 1 here): a list of 100,000
    // Pods is buffered whole before it is handed on.
    let object = match load_str(&text, None, &options) {
        Ok(loaded) => SourceObject { origin, loaded }.without_lines(),
        Err(e) => SourceObject::undecodable(&key, origin, e.to_string()),
    };
    (key, object)
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
