//! Every field of Istio's CRD schemas is a field meshwork reads, with a compatible type.
//!
//! For each kind, a document holding *every* property of the `v1` schema (built from
//! `istio-crds/customresourcedefinitions.gen.yaml`) must load without a single diagnostic.

use std::path::Path;

use mesh_config::{LoadOptions, load_str};
use serde_json::{Map, Value, json};

fn crds() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/conformance/istio-crds/customresourcedefinitions.gen.yaml");
    let text = std::fs::read_to_string(path).expect("CRD file");
    serde_saphyr::from_multiple(&text).expect("CRDs are YAML")
}

/// A value for every property of `schema`.
fn instance(schema: &Value, name: &str) -> Value {
    if let Some(values) = schema["enum"].as_array() {
        return values.iter().find(|v| v.as_str() != Some("UNSPECIFIED")).cloned().unwrap_or(Value::Null);
    }
    let is_duration = schema["x-kubernetes-validations"]
        .as_array()
        .is_some_and(|rules| rules.iter().any(|r| r["rule"].as_str().is_some_and(|s| s.contains("duration("))));
    match schema["type"].as_str() {
        Some("object") => {
            let mut out = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in props {
                    out.insert(k.clone(), instance(v, k));
                }
            } else if schema["additionalProperties"].is_object() {
                out.insert("key".to_string(), instance(&schema["additionalProperties"], name));
            }
            Value::Object(out)
        }
        Some("array") => json!([instance(&schema["items"], name)]),
        Some("integer") => json!(80),
        Some("number") => json!(50.0),
        Some("boolean") => json!(true),
        Some("string") if is_duration || ["ttl", "idleTimeout", "budgetInterval"].contains(&name) => {
            json!("1s")
        }
        Some("string") => json!("x"),
        _ => {
            // Fields with x-kubernetes-int-or-string or untyped: a string is the common form.
            json!("x")
        }
    }
}

fn count_keys(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len() + m.values().map(count_keys).sum::<usize>(),
        Value::Array(a) => a.iter().map(count_keys).sum(),
        _ => 0,
    }
}

#[test]
fn every_crd_field_is_known() {
    let mut checked = 0;
    let mut fields = 0;
    for crd in crds() {
        let spec = &crd["spec"];
        if spec["group"] != "networking.istio.io" {
            continue;
        }
        let kind = spec["names"]["kind"].as_str().unwrap_or("");
        if !["VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "WorkloadEntry"].contains(&kind) {
            continue;
        }
        for version in spec["versions"].as_array().expect("versions") {
            let schema = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
            let doc = json!({
                "apiVersion": format!("networking.istio.io/{}", version["name"].as_str().unwrap_or("")),
                "kind": kind,
                "metadata": {"name": "every-field"},
                "spec": instance(schema, "spec"),
            });
            fields += count_keys(&doc["spec"]);
            let loaded = load_str(&doc.to_string(), Some(kind), &LoadOptions::default()).expect("json is yaml");
            let problems: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
            assert!(problems.is_empty(), "{kind} {}:\n{}", version["name"], problems.join("\n"));
            assert_eq!(loaded.resources.len(), 1);
            checked += 1;
        }
    }
    assert_eq!(checked, 15, "5 kinds x 3 versions");
    assert!(fields > 3 * 400, "the generated documents hold only {fields} fields");
}
