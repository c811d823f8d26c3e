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
