//! meshwork reads the configuration real Istio users write, and rejects what Istio rejects.
//!
//! Inputs are the read-only corpus in `../shared/conformance/` (Istio's samples, and invalid /
//! near-miss cases transcribed from Istio's own validation tests).

use std::path::{Path, PathBuf};

use mesh_config::{LoadOptions, Severity, load_path, load_str, validate};
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("corpus dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn every_istio_sample_validates() {
    let mut files = Vec::new();
    yaml_files(&corpus().join("istio-samples"), &mut files);
    assert!(files.len() > 30, "corpus not found at {}", corpus().display());
    let mut resources = 0;
    let mut unsupported = 0;
    for file in &files {
        let loaded = load_path(file, &LoadOptions::default());
        assert!(loaded.failed.is_empty(), "{}: {:?}", file.display(), loaded.failed);
        // Gateway API kinds meshwork does not serve (TCPRoute, TLSRoute) are reported by name.
        let load_errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity != Severity::Unsupported)
            .map(ToString::to_string)
            .collect();
        assert!(load_errors.is_empty(), "{}", load_errors.join("\n"));
        unsupported += loaded.diagnostics.len();
        for r in &loaded.resources {
            resources += 1;
            let diags = validate(r);
            let errors: Vec<String> = diags.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
            assert!(errors.is_empty(), "{}", errors.join("\n"));
            unsupported += diags.iter().filter(|d| d.severity == Severity::Unsupported).count();
        }
    }
    assert!(resources >= 45, "only {resources} networking resources found");
    // tcp-echo routes TCP and websockets/multicluster use passthrough: those must be flagged.
    assert!(unsupported > 0, "TCP/TLS routes must be reported as unsupported");
}

fn cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(corpus().join("istio-validation").join(file)).expect("case file");
    let doc: Value = serde_saphyr::from_str(&text).expect("case file is YAML");
    doc["cases"].as_array().expect("cases").clone()
}

fn check_case(case: &Value) -> Result<(), String> {
    let id = case["id"].as_str().unwrap_or("?");
    let valid = case["valid"].as_bool().unwrap_or(false);
    let warning = case["warning"].as_bool().unwrap_or(false);
    let text = serde_json::to_string(&case["resource"]).expect("json");
    let loaded = load_str(&text, Some(id), &LoadOptions::default()).map_err(|e| format!("{id}: {e}"))?;
    let mut diags = loaded.diagnostics.clone();
    for r in &loaded.resources {
        diags.extend(validate(r));
    }
    let errors: Vec<&mesh_config::Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    let rendered = diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ");
    if valid {
        if !errors.is_empty() {
            return Err(format!("{id}: Istio accepts this, we rejected it:\n  {rendered}"));
        }
        if warning && !diags.iter().any(|d| d.severity == Severity::Warning) {
            return Err(format!("{id}: Istio warns here, we said nothing:\n  {rendered}"));
        }
        return Ok(());
    }
    let Some(first) = errors.first() else {
        return Err(format!("{id}: Istio rejects this ({}), we accepted it:\n  {rendered}", case["reason"]));
    };
    let resource = first.resource.as_ref().ok_or(format!("{id}: error names no resource: {first}"))?;
    if &*resource.name != id {
        return Err(format!("{id}: error names the wrong resource: {first}"));
    }
    if let Some(msg) = case["upstreamMessage"].as_str()
        && !errors.iter().any(|e| e.message.contains(msg))
    {
        return Err(format!("{id}: no error carries Istio's message {msg:?}:\n  {rendered}"));
    }
    Ok(())
}

#[test]
fn invalid_cases_are_rejected_with_resource_and_field() {
    let all = cases("invalid-virtualservice-destinationrule.yaml");
    assert!(all.len() >= 60);
    let failures: Vec<String> = all.iter().filter_map(|c| check_case(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), all.len(), failures.join("\n"));
    // Every rejection of a field inside the spec names that field.
    for case in &all {
        let text = serde_json::to_string(&case["resource"]).expect("json");
        let loaded = load_str(&text, None, &LoadOptions::default()).expect("yaml");
        for r in &loaded.resources {
            for d in validate(r).iter().filter(|d| d.is_error()) {
                let rendered = d.to_string();
                assert!(rendered.contains(&format!("{} {}/{}: ", r.kind, r.namespace, r.name)), "{rendered}");
                assert!(!d.path.is_empty() || rendered.contains("must be provided"), "no field path: {rendered}");
            }
        }
    }
}

#[test]
fn near_misses_istio_accepts_are_accepted() {
    let all = cases("valid-near-misses.yaml");
    assert!(all.len() >= 15);
    let failures: Vec<String> = all.iter().filter_map(|c| check_case(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Istio's own CRD test data: `_err` documents must fail, the others must pass.
fn upstream_documents(file: &str) -> Vec<(Option<String>, String)> {
    let text = std::fs::read_to_string(corpus().join("istio-validation/upstream-testdata").join(file)).expect("file");
    text.split("\n---")
        .map(|doc| {
            let mut err = None;
            let mut body = String::new();
            for line in doc.lines() {
                if let Some(e) = line.strip_prefix("_err:") {
                    err = Some(e.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            (err, body)
        })
        .filter(|(_, body)| body.lines().any(|l| l.starts_with("kind:")))
        .collect()
}

#[test]
fn upstream_crd_testdata() {
    let mut failures = Vec::new();
    for file in [
        "destinationrule-valid.yaml",
        "destinationrule-invalid.yaml",
        "serviceentry-valid.yaml",
        "serviceentry-invalid.yaml",
    ] {
        for (err, body) in upstream_documents(file) {
            let loaded = load_str(&body, Some(file), &LoadOptions::default()).expect("yaml");
            let mut diags = loaded.diagnostics.clone();
            for r in &loaded.resources {
                diags.extend(validate(r));
            }
            let has_error = diags.iter().any(|d| d.is_error());
            let rendered = diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ");
            match err {
                Some(e) if !has_error => failures.push(format!("{file}: expected {e:?}, accepted:\n{body}")),
                None if has_error => failures.push(format!("{file}: valid document rejected:\n  {rendered}\n{body}")),
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
