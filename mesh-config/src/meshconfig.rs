//! Mesh-wide settings with Istio's meshConfig names (the `mesh` key of the `istio` ConfigMap,
//! `istioctl --meshConfigFile`; <https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/>):
//!
//! ```yaml
//! rootNamespace: istio-system          # default
//! trustDomain: cluster.local           # default
//! trustDomainAliases: [old-td]
//! pathNormalization:
//!   normalization: BASE                # NONE | BASE (default) | MERGE_SLASHES | DECODE_AND_MERGE_SLASHES
//! enableAutoMtls: true                 # default: mutual TLS to endpoints labelled
//!                                      # security.istio.io/tlsMode: istio (mesh_core::upstream_tls)
//! ```
//!
//! A meshConfig file holds many more fields (proxy defaults, telemetry, extension providers...):
//! meshwork reads these five and reports every other field as a warning, never an error, so
//! Istio's own file loads unchanged. `extensionProviders` is reported `unsupported` (CUSTOM
//! authorization has no providers in meshwork).

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::de;
use crate::diag::{Diagnostic, Severity};
use crate::load::LoadError;
use crate::yaml::{self, Limits, Node, Value};

/// The meshConfig settings meshwork reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshConfig {
    /// `rootNamespace` (default `istio-system`).
    pub root_namespace: Option<String>,
    /// `trustDomain` (default `cluster.local`).
    pub trust_domain: Option<String>,
    /// `trustDomainAliases`.
    pub trust_domain_aliases: Vec<String>,
    /// `pathNormalization`.
    pub path_normalization: Option<PathNormalizationConfig>,
    /// `enableAutoMtls` (default true): see [`MeshConfig::enable_auto_mtls`].
    pub enable_auto_mtls: Option<bool>,
}

/// `pathNormalization: {normalization: ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PathNormalizationConfig {
    /// The mode.
    pub normalization: Option<Normalization>,
}

/// `pathNormalization.normalization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum Normalization {
    /// Same as `BASE`.
    DEFAULT,
    /// No normalization.
    NONE,
    /// RFC 3986 normalization.
    BASE,
    /// `BASE` and merged slashes.
    MERGE_SLASHES,
    /// `%2F`/`%5C` decoded, then `MERGE_SLASHES`.
    DECODE_AND_MERGE_SLASHES,
}

impl MeshConfig {
    /// `rootNamespace`, or Istio's default.
    pub fn root_namespace(&self) -> &str {
        self.root_namespace.as_deref().filter(|s| !s.is_empty()).unwrap_or(mesh_core::snapshot::ROOT_NAMESPACE)
    }

    /// `trustDomain`, or Istio's default.
    pub fn trust_domain(&self) -> &str {
        self.trust_domain.as_deref().filter(|s| !s.is_empty()).unwrap_or("cluster.local")
    }

    /// `enableAutoMtls`, or Istio's default (true): without a DestinationRule `tls`, endpoints
    /// labelled `security.istio.io/tlsMode: istio` get Istio's mutual TLS
    /// ([`mesh_core::upstream_tls`]).
    ///
    /// ```
    /// let mesh = mesh_config::meshconfig::parse_mesh_config("enableAutoMtls: false\n", None).expect("yaml");
    /// assert!(mesh.diagnostics.is_empty());
    /// assert!(!mesh.config.enable_auto_mtls());
    /// assert!(mesh_config::MeshConfig::default().enable_auto_mtls());
    /// ```
    pub fn enable_auto_mtls(&self) -> bool {
        self.enable_auto_mtls.unwrap_or(true)
    }

    /// The settings as mesh-core reads them.
    ///
    /// ```
    /// let mesh = mesh_config::meshconfig::parse_mesh_config("trustDomain: td1\ntrustDomainAliases: [td2]\n", None)
    ///     .expect("yaml");
    /// assert!(mesh.diagnostics.is_empty());
    /// let security = mesh.config.security();
    /// assert_eq!(&*security.root_namespace, "istio-system");
    /// assert_eq!(security.trust_domains.domains().len(), 2);
    /// assert_eq!(security.path_normalization, mesh_core::normalize::PathNormalization::Base);
    /// ```
    pub fn security(&self) -> mesh_core::security::MeshSecurity {
        use mesh_core::normalize::PathNormalization as P;
        let path_normalization = match self.path_normalization.as_ref().and_then(|p| p.normalization) {
            None | Some(Normalization::DEFAULT | Normalization::BASE) => P::Base,
            Some(Normalization::NONE) => P::None,
            Some(Normalization::MERGE_SLASHES) => P::MergeSlashes,
            Some(Normalization::DECODE_AND_MERGE_SLASHES) => P::DecodeAndMergeSlashes,
        };
        mesh_core::security::MeshSecurity {
            root_namespace: Arc::from(self.root_namespace()),
            trust_domains: mesh_core::authz::TrustDomainBundle::new(
                self.trust_domain(),
                self.trust_domain_aliases.iter().map(String::as_str),
            ),
            path_normalization,
        }
    }
}

/// A meshConfig file read: the settings (defaults where absent or unreadable) and every problem.
#[derive(Debug, Clone, Default)]
pub struct MeshConfigFile {
    /// The settings.
    pub config: MeshConfig,
    /// Errors (the file should not be used), warnings (fields meshwork does not read) and
    /// unsupported fields.
    pub diagnostics: Vec<Diagnostic>,
}

impl MeshConfigFile {
    /// Does any diagnostic make the file unusable?
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Read meshConfig settings from YAML text (`file` names it in diagnostics). Text that is not YAML
/// is an error; an empty text is all defaults.
pub fn parse_mesh_config(text: &str, file: Option<&str>) -> Result<MeshConfigFile, LoadError> {
    let docs = yaml::parse_stream(text, Limits::default())
        .map_err(|error| LoadError::Yaml { file: file.unwrap_or("<string>").to_string(), error })?;
    let file: Option<Arc<str>> = file.map(Arc::from);
    let diag = |severity, line, path: String, message: String| Diagnostic {
        severity,
        code: None,
        file: file.clone(),
        line,
        resource: None,
        path,
        message,
    };
    let mut out = MeshConfigFile::default();
    let Some(doc) = docs.first() else { return Ok(out) };
    let root: &Node = &doc.root;
    if !matches!(root.value, Value::Map(_) | Value::Null) {
        out.diagnostics.push(diag(Severity::Error, root.line, String::new(), "meshConfig is not a mapping".into()));
        return Ok(out);
    }
    let unknown = RefCell::new(Vec::new());
    match de::from_node::<MeshConfig>(root, de::Path::Root, &unknown) {
        Ok(config) => out.config = config,
        Err(e) => out.diagnostics.push(diag(
            Severity::Error,
            e.line.unwrap_or(root.line),
            e.path.unwrap_or_default(),
            e.message,
        )),
    }
    for u in unknown.into_inner() {
        if u.path == "extensionProviders" {
            out.diagnostics.push(diag(
                Severity::Unsupported,
                u.line,
                u.path,
                "extensionProviders: read, but not acted on by meshwork yet (no CUSTOM authorization providers)".into(),
            ));
            continue;
        }
        let mut message = format!("field {:?} is not read by meshwork", u.field);
        if let Some(s) = u.suggestion() {
            message.push_str(&format!(" (did you mean {s:?}?)"));
        }
        out.diagnostics.push(diag(Severity::Warning, u.line, u.path, message));
    }
    let c = &out.config;
    if let Some(ns) = &c.root_namespace
        && !ns.is_empty()
        && !crate::validate::is_dns1123_label(ns)
    {
        let line = root.get("rootNamespace").map_or(root.line, |n| n.line);
        out.diagnostics.push(diag(
            Severity::Error,
            line,
            "rootNamespace".into(),
            format!("{ns:?} is not a valid namespace name"),
        ));
    }
    for (i, alias) in c.trust_domain_aliases.iter().enumerate() {
        if alias.is_empty() || alias.contains('/') {
            let line = root.get("trustDomainAliases").map_or(root.line, |n| n.line);
            out.diagnostics.push(diag(
                Severity::Error,
                line,
                format!("trustDomainAliases[{i}]"),
                format!("{alias:?} is not a trust domain"),
            ));
        }
    }
    if let Some(td) = &c.trust_domain
        && td.contains('/')
    {
        let line = root.get("trustDomain").map_or(root.line, |n| n.line);
        out.diagnostics.push(diag(
            Severity::Error,
            line,
            "trustDomain".into(),
            format!("{td:?} is not a trust domain"),
        ));
    }
    Ok(out)
}

/// Read meshConfig settings from a file (the library side of `--mesh-config FILE`).
pub fn load_mesh_config(path: &Path) -> Result<MeshConfigFile, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::Io { path: path.display().to_string(), message: e.to_string() })?;
    parse_mesh_config(&text, Some(&path.display().to_string()))
}
