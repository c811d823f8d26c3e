//! `mesh validate` as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mesh"))
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/istio-samples")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn istio_samples_are_valid() {
    let out = mesh().arg("validate").arg(samples()).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains(" valid, 0 invalid"), "{stderr}");
    assert!(!stdout.lines().any(|l| !l.contains("warning:") && !l.contains("unsupported:")), "{stdout}");
}

#[test]
fn invalid_config_exits_1_with_file_line_resource_and_field() {
    let path = temp_file(
        "reviews.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: bookinfo\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: -10\n    - destination: {host: reviews, subset: v2}\n      weigth: 10\n",
    );
    let out = mesh().arg("validate").arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let file = path.display().to_string();
    assert!(
        stdout.contains(&format!("{file}:13: VirtualService bookinfo/reviews: http[0].route[1].weigth: unknown field \"weigth\" (did you mean \"weight\"?)")),
        "{stdout}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = mesh().arg("validate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = mesh().args(["validate", "/nonexistent/meshwork.yaml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn help_explains_output_and_exit_codes() {
    let out = mesh().args(["validate", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("FILE:LINE: KIND NAMESPACE/NAME: field.path: message"), "{help}");
    assert!(help.contains("Exit status"), "{help}");
}

fn run_validate(args: &[&str], path: &Path) -> (Option<i32>, String, String) {
    let out = mesh().arg("validate").args(args).arg(path).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const UNDEFINED_SUBSET: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\n  namespace: bookinfo\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: bookinfo\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n";

#[test]
fn an_undefined_subset_is_ist0101_in_text_and_json() {
    let path = temp_file("undefined-subset.yaml", UNDEFINED_SUBSET);
    let file = path.display().to_string();
    let (code, stdout, stderr) = run_validate(&[], &path);
    assert_eq!(code, Some(0), "a warning: {stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{file}:20: IST0101 VirtualService bookinfo/reviews: http[0].route[0].destination.subset: warning: referenced subset not found: \"v3\" of host reviews.bookinfo.svc.cluster.local (DestinationRule bookinfo/reviews for reviews.bookinfo.svc.cluster.local defines v1)")),
        "{stdout}"
    );
    let (code, _, _) = run_validate(&["--strict"], &path);
    assert_eq!(code, Some(1));

    let (code, stdout, _) = run_validate(&["-o", "json"], &path);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(v["valid"], true);
    let subset = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["path"] == "http[0].route[0].destination.subset")
        .expect("the subset finding");
    assert_eq!(
        *subset,
        serde_json::json!({
            "severity": "warning",
            "code": "IST0101",
            "file": file,
            "line": 20,
            "kind": "VirtualService",
            "namespace": "bookinfo",
            "name": "reviews",
            "path": "http[0].route[0].destination.subset",
            "message": "referenced subset not found: \"v3\" of host reviews.bookinfo.svc.cluster.local (DestinationRule bookinfo/reviews for reviews.bookinfo.svc.cluster.local defines v1); requests routed to it get 503 no healthy upstream (UH)",
        })
    );
    // Every diagnostic has every key.
    for d in v["diagnostics"].as_array().expect("diagnostics") {
        for key in ["severity", "code", "file", "line", "kind", "namespace", "name", "path", "message"] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
    }
}

#[test]
fn json_says_invalid_and_exit_codes_stay() {
    let path = temp_file(
        "json-invalid.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}, weigth: 10}]\n",
    );
    let (code, stdout, _) = run_validate(&["-o", "json"], &path);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["severity"], "error");
    assert_eq!(v["diagnostics"][0]["code"], serde_json::Value::Null);
    assert_eq!(v["diagnostics"][0]["path"], "http[0].route[0].weigth");

    let broken = temp_file("json-broken.yaml", "a: [unclosed\n");
    let (code, stdout, _) = run_validate(&["-o", "json"], &broken);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["file"], broken.display().to_string());
    assert_eq!(v["diagnostics"][0]["kind"], serde_json::Value::Null);

    let (code, _, stderr) = run_validate(&["-o", "xml"], &path);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn a_misspelt_kind_is_an_error_naming_the_file_and_the_kind_meant() {
    let path = temp_file(
        "misspelt.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualSevice\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n",
    );
    let (code, stdout, stderr) = run_validate(&[], &path);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let file = path.display().to_string();
    assert!(
        stdout.contains(&format!("{file}:2: MW0001 VirtualSevice default/reviews: kind: no kind \"VirtualSevice\" in networking.istio.io (did you mean \"VirtualService\"?)")),
        "{stdout}"
    );
    assert!(stderr.contains("0 skipped"), "not skipped silently: {stderr}");
}

#[test]
fn a_resource_defined_twice_names_both_places() {
    let dir = std::env::temp_dir().join(format!("mesh-cli-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let doc = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n";
    let a = dir.join("a.yaml");
    let b = dir.join("b.yaml");
    std::fs::write(&a, doc).expect("write");
    std::fs::write(&b, format!("# the same rule again\n{doc}")).expect("write");
    let (code, stdout, _) = run_validate(&[], &dir);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}:2: MW0002 DestinationRule default/reviews: warning: defined again (first at {}:1)",
            b.display(),
            a.display()
        )),
        "{stdout}"
    );
    let (_, stdout, _) = run_validate(&["-o", "json"], &dir);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let dup = v["diagnostics"].as_array().expect("diagnostics").iter().find(|d| d["code"] == "MW0002").expect("MW0002");
    assert_eq!((dup["file"].as_str(), dup["line"].as_u64()), (Some(b.display().to_string().as_str()), Some(2)));
}
