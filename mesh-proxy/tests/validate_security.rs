//! `mesh validate` reads `security.istio.io` resources: Istio's valid cases pass, an invalid one
//! is refused with its file, line and field path.

use std::path::Path;
use std::process::Command;

fn mesh_validate(paths: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh")).arg("validate").args(paths).output().expect("run mesh validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn validates_security_policies() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/security/istio-validation");
    for file in ["authz-valid.yaml", "peerauth-valid.yaml", "reqauth-valid.yaml"] {
        let (code, text) = mesh_validate(&[&data.join(file)]);
        assert_eq!(code, 0, "{file}: {text}");
        assert!(text.contains(" valid, 0 invalid, 0 skipped"), "{text}");
    }
    let dir = std::env::temp_dir().join(format!("mesh-validate-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: bad\n  namespace: foo\nspec:\n  action: DENY\n",
    )
    .expect("write");
    let (code, text) = mesh_validate(&[&bad]);
    assert_eq!(code, 1, "{text}");
    let expected = format!(
        "{}:7: AuthorizationPolicy foo/bad: rules: DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{{}}` if you want it be triggered for every request",
        bad.display()
    );
    assert!(text.lines().any(|l| l == expected), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
