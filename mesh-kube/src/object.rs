//! One API object into the seam: its JSON through mesh-config's loader, with its origin.
//!
//! Every kind arrives as a kube-rs [`DynamicObject`] (raw JSON under typed metadata), so an
//! object whose spec is wrong fails alone, in mesh-config's decode and validation, with the
//! field path of its problem — never the whole list, as a typed list would fail on one bad item.
//! List items carry no `apiVersion`/`kind`; both are set from the watched kind. (Only
//! `metadata` is typed in a `DynamicObject`; the API server validates metadata on every write,
//! so a list never holds one it cannot decode.)

use std::sync::Arc;

use kube::core::DynamicObject;
use mesh_config::store::{Origin, SourceObject};
use mesh_config::{LoadOptions, ResourceRef, load_str};

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
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), kind.resource.api_version.clone().into());
        map.insert("kind".into(), kind.resource.kind.clone().into());
    }
    // Compact: an API object's diagnostics are named by kind, namespace, name and field path,
    // not by line, and the YAML scanner reads a third fewer bytes than pretty JSON.
    let text = serde_json::to_string(&value).unwrap_or_default();
    let options = LoadOptions { default_namespace: key.namespace.to_string(), ..LoadOptions::default() };
    let object = match load_str(&text, None, &options) {
        Ok(loaded) => SourceObject { origin, loaded },
        Err(e) => SourceObject::undecodable(&key, origin, e.to_string()),
    };
    (key, object)
}
