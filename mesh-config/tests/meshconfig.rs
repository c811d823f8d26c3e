//! meshConfig settings files: Istio's names, defaults, and every other field a warning.

use mesh_config::{Severity, parse_mesh_config};
use mesh_core::normalize::PathNormalization;

#[test]
fn defaults_and_settings() {
    let empty = parse_mesh_config("", Some("mesh.yaml")).expect("yaml");
    assert!(empty.diagnostics.is_empty());
    let s = empty.config.security();
    assert_eq!((&*s.root_namespace, s.trust_domains.trust_domain()), ("istio-system", "cluster.local"));
    assert_eq!(s.path_normalization, PathNormalization::Base);

    let text = "\
rootNamespace: mesh-root
trustDomain: td1
trustDomainAliases: [old-td, td2]
pathNormalization:
  normalization: DECODE_AND_MERGE_SLASHES
accessLogFile: /dev/stdout
defaultConfig:
  holdApplicationUntilProxyStarts: true
extensionProviders:
- name: ext-authz
trustDomainAlias: [x]
";
    let file = parse_mesh_config(text, Some("mesh.yaml")).expect("yaml");
    assert!(!file.has_errors(), "{:?}", file.diagnostics);
    let s = file.config.security();
    assert_eq!(&*s.root_namespace, "mesh-root");
    let domains: Vec<&str> = s.trust_domains.domains().iter().map(|d| &**d).collect();
    assert_eq!(domains, ["td1", "old-td", "td2"]);
    assert_eq!(s.path_normalization, PathNormalization::DecodeAndMergeSlashes);
    let printed: Vec<String> = file.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            "mesh.yaml:6: accessLogFile: warning: field \"accessLogFile\" is not read by meshwork",
            "mesh.yaml:7: defaultConfig: warning: field \"defaultConfig\" is not read by meshwork",
            "mesh.yaml:9: extensionProviders: unsupported: extensionProviders: read, but not acted on by meshwork yet (no CUSTOM authorization providers)",
            "mesh.yaml:11: trustDomainAlias: warning: field \"trustDomainAlias\" is not read by meshwork (did you mean \"trustDomainAliases\"?)",
        ]
    );
    assert_eq!(file.diagnostics[2].severity, Severity::Unsupported);
}

#[test]
fn errors_are_located() {
    let file = parse_mesh_config("pathNormalization:\n  normalization: SLASHES\n", Some("m.yaml")).expect("yaml");
    let printed: Vec<String> = file.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(printed.len(), 1);
    assert!(
        printed[0].starts_with("m.yaml:2: pathNormalization.normalization: unknown variant `SLASHES`"),
        "{printed:?}"
    );
    assert!(file.has_errors());
    let file = parse_mesh_config("rootNamespace: Not_A_Namespace\ntrustDomainAliases: [a/b]\n", None).expect("yaml");
    let printed: Vec<String> = file.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            "<string>:1: rootNamespace: \"Not_A_Namespace\" is not a valid namespace name",
            "<string>:2: trustDomainAliases[0]: \"a/b\" is not a trust domain",
        ]
    );
    assert!(parse_mesh_config("a: [", None).is_err());
}
