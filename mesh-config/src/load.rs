//! Loading: YAML text, files and directories into typed [`Resource`]s.
//!
//! - A stream may hold many `---`-separated documents; a Kubernetes `List` is opened up.
//! - `networking.istio.io` resources of kinds meshwork reads, in `v1alpha3`, `v1beta1` or `v1`, and
//!   `security.istio.io` ones (PeerAuthentication, AuthorizationPolicy, RequestAuthentication) in
//!   `v1beta1` or `v1`, are parsed, and so are the Kubernetes kinds of service discovery (core `v1` Service, Pod,
//!   Namespace, Node; `discovery.k8s.io/v1` EndpointSlice; see [`crate::types::kube`]), so a
//!   directory of `kubectl get -o yaml` output is a configuration; other kinds (Deployments,
//!   ConfigMaps, Gateway API routes, Istio kinds meshwork does not handle) are skipped with a
//!   note, never an error.
//! - A `kind` in `networking.istio.io` that Istio does not define (`VirtualSevice`), or an API
//!   group one typo away from `networking.istio.io`, is a misspelling, not another kind: an error
//!   ([`Code::UnknownKind`]) naming the closest kind, as
//!   `kubectl apply` refuses it ("no matches for kind"), instead of a silent skip.
//! - Text that is not YAML at all is a [`LoadError`]: it contributes nothing, so a reload keeps the
//!   resources that file held before.
//! - A document that is YAML but not a valid resource (a typo'd field, a string where a number
//!   belongs) yields error diagnostics and no resource.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::de::{self, DeError, UnknownField};
use crate::diag::{Code, Diagnostic, ResourceRef, Severity};
use crate::types::kube::Name;
use crate::types::{Kind, ObjectMeta, Resource, Spec};
use crate::yaml::{self, Limits, Node, Value, YamlError};

/// The API group meshwork reads.
pub const GROUP: &str = "networking.istio.io";
/// The versions of [`GROUP`] meshwork reads; Istio serves one schema under all of them.
pub const VERSIONS: [&str; 3] = ["v1alpha3", "v1beta1", "v1"];
/// The API group of Istio's security policies.
pub const SECURITY_GROUP: &str = "security.istio.io";
/// The versions of [`SECURITY_GROUP`] meshwork reads (one schema under both).
pub const SECURITY_VERSIONS: [&str; 2] = ["v1beta1", "v1"];

/// The versions of `gateway.networking.k8s.io` meshwork reads (one schema: `v1` and the older
/// versions that serve the same fields; `v1alpha2` for GRPCRoute and ReferenceGrant).
pub const GATEWAY_API_VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha2"];
/// Every kind Istio defines in [`SECURITY_GROUP`]; meshwork reads them all.
pub const SECURITY_KINDS: [&str; 3] = ["PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"];
/// Every kind Istio defines in [`GROUP`] (istio/istio `pkg/config/schema/gvk`): the five meshwork
/// reads and the ones it skips.
pub const ISTIO_KINDS: [&str; 9] = [
    "VirtualService",
    "DestinationRule",
    "Gateway",
    "ServiceEntry",
    "WorkloadEntry",
    "WorkloadGroup",
    "Sidecar",
    "EnvoyFilter",
    "ProxyConfig",
];

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Namespace for resources whose `metadata.namespace` is empty (`kubectl apply` uses the
    /// context's namespace; `default` when unset).
    pub default_namespace: String,
    /// Bounds on the YAML read.
    pub limits: Limits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { default_namespace: "default".to_string(), limits: Limits::default() }
    }
}

/// Something the loader passed over on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// File (`None` for strings).
    pub file: Option<Arc<str>>,
    /// Line of the document.
    pub line: u32,
    /// `apiVersion` as written.
    pub api_version: String,
    /// `kind` as written.
    pub kind: String,
    /// `metadata.name`, when present.
    pub name: Option<String>,
    /// `metadata.namespace`, or the loader's default namespace (a Kubernetes `Service` skipped
    /// here still tells the analysis which service names exist).
    pub namespace: String,
}

/// What one load produced.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Resources that parsed (they are validated separately).
    pub resources: Vec<Resource>,
    /// Problems found while parsing, with documents that were not usable.
    pub diagnostics: Vec<Diagnostic>,
    /// Documents of kinds meshwork does not read.
    pub skipped: Vec<Skipped>,
    /// Files that could not be read or were not YAML: they contributed nothing.
    pub failed: Vec<LoadError>,
}

impl Loaded {
    fn extend(&mut self, other: Loaded) {
        self.resources.extend(other.resources);
        self.diagnostics.extend(other.diagnostics);
        self.skipped.extend(other.skipped);
        self.failed.extend(other.failed);
    }
}

/// A file that contributed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The text is not YAML.
    #[error("{file}:{}: not valid YAML: {}", .error.line, .error.message)]
    Yaml {
        /// The file, or `<string>`.
        file: String,
        /// Where and what.
        error: YamlError,
    },
}

impl LoadError {
    /// The path or file name the error is about.
    pub fn file(&self) -> &str {
        match self {
            LoadError::Io { path, .. } => path,
            LoadError::Yaml { file, .. } => file,
        }
    }
}

/// Load every resource in a YAML string. `file` names it in diagnostics.
pub fn load_str(text: &str, file: Option<&str>, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let docs = yaml::parse_stream(text, options.limits)
        .map_err(|error| LoadError::Yaml { file: file.unwrap_or("<string>").to_string(), error })?;
    let file: Option<Arc<str>> = file.map(Arc::from);
    let mut out = Loaded::default();
    for doc in docs {
        load_document(&doc.root, &file, options, &mut out, 0);
    }
    Ok(out)
}

/// Load the resource of one JSON document, as [`load_str`] loads the same document written as
/// one line of JSON (every line is 1), without writing it out and scanning it again: what a
/// Kubernetes source hands on for each object of a list of 100,000 Pods.
pub fn load_json(value: serde_json::Value, options: &LoadOptions) -> Loaded {
    let mut out = Loaded::default();
    load_document(&Arc::new(json_node(value)), &None, options, &mut out, 0);
    out
}

/// The tree the YAML reader makes of a JSON document on line 1 (a JSON string is a quoted
/// scalar; numbers and booleans plain ones, written as serde_json writes them).
fn json_node(value: serde_json::Value) -> Node {
    use serde_json::Value as J;
    let value = match value {
        J::Null => yaml::Value::Null,
        J::Bool(b) => yaml::Value::Scalar { text: b.to_string(), plain: true },
        J::Number(n) => yaml::Value::Scalar { text: n.to_string(), plain: true },
        J::String(text) => yaml::Value::Scalar { text, plain: false },
        J::Array(items) => yaml::Value::Seq(items.into_iter().map(json_node).collect()),
        J::Object(map) => {
            yaml::Value::Map(map.into_iter().map(|(name, v)| (yaml::Key { name, line: 1 }, json_node(v))).collect())
        }
    };
    Node { line: 1, value }
}

/// Load a file, or every `*.yaml` / `*.yml` file below a directory (recursively, in name order).
/// Files that cannot be read or are not YAML are reported in [`Loaded::failed`].
pub fn load_path(path: &Path, options: &LoadOptions) -> Loaded {
    let mut files = Vec::new();
    let mut out = Loaded::default();
    if let Err(e) = collect_files(path, &mut files, 0) {
        out.failed.push(LoadError::Io { path: path.display().to_string(), message: e.to_string() });
        return out;
    }
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => match load_str(&text, Some(&name), options) {
                Ok(loaded) => out.extend(loaded),
                Err(e) => out.failed.push(e),
            },
            Err(e) => out.failed.push(LoadError::Io { path: name, message: e.to_string() }),
        }
    }
    out
}

/// Load several paths (files or directories) in order: `load_paths(["istio/", "extra.yaml"], &options)`,
/// or a `&[PathBuf]`, a `Vec<&str>`...
pub fn load_paths<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>, options: &LoadOptions) -> Loaded {
    let mut out = Loaded::default();
    for p in paths {
        out.extend(load_path(p.as_ref(), options));
    }
    out
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if depth > 32 {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            // Kubernetes ConfigMap mounts keep old versions in `..data`-style hidden folders.
            continue;
        }
        if entry.is_dir() {
            collect_files(&entry, out, depth + 1)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(entry);
        }
    }
    Ok(())
}

fn load_document(root: &Arc<Node>, file: &Option<Arc<str>>, options: &LoadOptions, out: &mut Loaded, depth: usize) {
    let diag = |line: u32, resource: Option<ResourceRef>, path: String, message: String| Diagnostic {
        severity: Severity::Error,
        code: None,
        file: file.clone(),
        line,
        resource,
        path,
        message,
    };
    let Value::Map(entries) = &root.value else {
        out.diagnostics.push(diag(
            root.line,
            None,
            String::new(),
            "document is not a mapping (expected a Kubernetes resource)".into(),
        ));
        return;
    };
    let api_version = root.get("apiVersion").and_then(Node::as_str).unwrap_or("").to_string();
    let kind_text = root.get("kind").and_then(Node::as_str).unwrap_or("").to_string();
    if kind_text.is_empty() || api_version.is_empty() {
        let missing = if kind_text.is_empty() { "kind" } else { "apiVersion" };
        out.diagnostics.push(diag(root.line, None, String::new(), format!("document has no `{missing}`")));
        return;
    }
    if kind_text == "List" && api_version == "v1" && depth == 0 {
        if let Some(Node { value: Value::Seq(items), .. }) = root.get("items") {
            for item in items {
                load_document(&Arc::new(item.clone()), file, options, out, depth + 1);
            }
        }
        return;
    }
    if let Some(kind) = Kind::kubernetes(&api_version, &kind_text) {
        load_kubernetes(root, kind, &api_version, file, options, out);
        return;
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
    let kind = if group == crate::types::gateway_api::GROUP {
        let kind = Kind::gateway_api(&kind_text);
        if kind.is_none() {
            // TLSRoute, TCPRoute, UDPRoute, BackendTLSPolicy, ...: reported by name, never
            // dropped silently.
            let name = root.get("metadata").and_then(|m| m.get("name")).and_then(Node::as_str).unwrap_or("");
            let namespace = root
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Node::as_str)
                .unwrap_or(&options.default_namespace);
            out.diagnostics.push(Diagnostic {
                severity: Severity::Unsupported,
                code: None,
                file: file.clone(),
                line: root.line,
                resource: Some(ResourceRef {
                    kind: Arc::from(kind_text.as_str()),
                    namespace: Arc::from(namespace),
                    name: Arc::from(name),
                }),
                path: String::new(),
                message: format!("the Gateway API kind {kind_text} is read but not served by meshwork"),
            });
            return;
        }
        kind
    } else {
        Kind::parse(&kind_text).filter(|k| !k.is_kubernetes() && !k.is_gateway_api() && k.group() == group)
    };
    let meta_node = root.get("metadata");
    let meta_str = |key: &str| meta_node.and_then(|m| m.get(key)).and_then(Node::as_str).filter(|s| !s.is_empty());
    let skipped_namespace = meta_str("namespace").unwrap_or(&options.default_namespace).to_string();
    if let Some((field, message)) = misspelt_type(group, &kind_text) {
        let line = root.get(field).map_or(root.line, |n| n.line);
        let resource = meta_str("name").map(|name| ResourceRef {
            kind: Arc::from(kind_text.as_str()),
            namespace: Arc::from(skipped_namespace.as_str()),
            name: Arc::from(name),
        });
        let mut d = diag(line, resource, field.to_string(), message);
        d.code = Some(Code::UnknownKind);
        out.diagnostics.push(d);
        return;
    }
    let skip = |out: &mut Loaded| {
        out.skipped.push(Skipped {
            file: file.clone(),
            line: root.line,
            api_version: api_version.clone(),
            kind: kind_text.clone(),
            name: meta_str("name").map(str::to_string),
            namespace: skipped_namespace.clone(),
        });
    };
    let Some(kind) = kind else {
        skip(out);
        return;
    };

    let unknown = RefCell::new(Vec::new());
    let meta: ObjectMeta = match meta_node {
        Some(node) => match de::from_node(node, de::Path::Field(&de::Path::Root, "metadata"), &unknown) {
            Ok(m) => m,
            Err(e) => {
                out.diagnostics.push(de_diag(e, file, None, root.line));
                return;
            }
        },
        None => ObjectMeta::default(),
    };
    let name = meta.name.clone().unwrap_or_default();
    let namespace =
        meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| options.default_namespace.clone());
    let id = ResourceRef {
        kind: Arc::from(kind.as_str()),
        namespace: Arc::from(namespace.as_str()),
        name: Arc::from(name.as_str()),
    };
    if name.is_empty() {
        out.diagnostics.push(diag(root.line, Some(id), "metadata.name".into(), "a resource needs a name".into()));
        return;
    }
    let served = if kind.is_security() {
        &SECURITY_VERSIONS[..]
    } else if kind.is_gateway_api() {
        &GATEWAY_API_VERSIONS[..]
    } else {
        &VERSIONS[..]
    };
    if !served.contains(&version) {
        let use_ = if kind.is_security() {
            format!("{SECURITY_GROUP}/v1 or v1beta1")
        } else if kind.is_gateway_api() {
            format!("{}/v1, v1beta1 or v1alpha2", crate::types::gateway_api::GROUP)
        } else {
            format!("{GROUP}/v1, v1beta1 or v1alpha3")
        };
        out.diagnostics.push(diag(
            root.get("apiVersion").map_or(root.line, |n| n.line),
            Some(id),
            String::new(),
            format!("apiVersion {api_version:?} is not served; use {use_}"),
        ));
        return;
    }
    let mut errors = Vec::new();
    for (key, _) in entries {
        if !matches!(key.name.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status") {
            unknown.borrow_mut().push(UnknownField {
                path: key.name.clone(),
                line: key.line,
                field: key.name.clone(),
                known: &["apiVersion", "kind", "metadata", "spec"],
            });
        }
    }
    let empty = Node { line: root.line, value: Value::Null };
    let spec_node = root.get("spec").unwrap_or(&empty);
    let spec = match kind {
        Kind::VirtualService => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::VirtualService),
        Kind::DestinationRule => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::DestinationRule),
        Kind::Gateway => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::Gateway),
        Kind::ServiceEntry => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::ServiceEntry),
        Kind::WorkloadEntry => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::WorkloadEntry),
        Kind::PeerAuthentication => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::PeerAuthentication),
        Kind::AuthorizationPolicy => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::AuthorizationPolicy),
        Kind::RequestAuthentication => {
            de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::RequestAuthentication)
        }
        Kind::GatewayClass => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::GatewayClass),
        Kind::KubeGateway => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::KubeGateway),
        Kind::HttpRoute => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::HttpRoute),
        Kind::GrpcRoute => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::GrpcRoute),
        Kind::ReferenceGrant => de::from_node(spec_node, de::Path::Root, &unknown).map(Spec::ReferenceGrant),
        // Read by `load_kubernetes`; never in `GROUP`.
        Kind::Service | Kind::Pod | Kind::Namespace | Kind::Node | Kind::EndpointSlice | Kind::Secret => return,
    };
    for u in unknown.into_inner() {
        let mut message = format!("unknown field {:?}", u.field);
        if let Some(s) = u.suggestion() {
            message.push_str(&format!(" (did you mean {s:?}?)"));
        }
        errors.push(diag(u.line, Some(id.clone()), u.path, message));
    }
    let spec = match spec {
        Ok(spec) => Some(spec),
        Err(e) => {
            errors.push(de_diag(e, file, Some(id.clone()), spec_node.line));
            None
        }
    };
    let failed = !errors.is_empty();
    out.diagnostics.extend(errors);
    let (Some(spec), false) = (spec, failed) else {
        return;
    };
    out.resources.push(Resource {
        kind,
        api_version: Arc::from(api_version.as_str()),
        name: id.name,
        namespace: id.namespace,
        labels: meta.labels,
        annotations: meta.annotations,
        creation_timestamp: meta.creation_timestamp.as_deref().filter(|t| !t.is_empty()).map(Arc::from),
        generation: meta.generation,
        file: file.clone(),
        line: root.line,
        spec,
        spec_node: root.get("spec").map(|n| Arc::new(n.clone())),
    });
}

/// A Kubernetes object of a kind meshwork reads ([`Kind::kubernetes`]). The whole document is
/// typed (an EndpointSlice has no `spec`: its fields sit at the top), and the resource's YAML tree
/// is the whole document, so validation paths read `spec.ports[0].port`, `endpoints[0]...`.
/// Fields the types do not know are ignored, as Kubernetes clients ignore them; one close to a
/// field meshwork reads (and no other Kubernetes field) is a warning: a misspelling whose value
/// would otherwise be lost silently.
fn load_kubernetes(
    root: &Arc<Node>,
    kind: Kind,
    api_version: &str,
    file: &Option<Arc<str>>,
    options: &LoadOptions,
    out: &mut Loaded,
) {
    use crate::types::kube;
    let unknown = RefCell::new(Vec::new());
    let path = de::Path::Root;
    let parsed = match kind {
        Kind::Service => de::from_node(root, path, &unknown).map(Spec::Service),
        Kind::Pod => de::from_node(root, path, &unknown).map(Spec::Pod),
        Kind::Namespace => de::from_node(root, path, &unknown).map(Spec::Namespace),
        Kind::Secret => de::from_node(root, path, &unknown).map(Spec::Secret),
        Kind::Node => de::from_node(root, path, &unknown).map(Spec::Node),
        Kind::EndpointSlice => de::from_node(root, path, &unknown).map(Spec::EndpointSlice),
        Kind::VirtualService
        | Kind::DestinationRule
        | Kind::Gateway
        | Kind::ServiceEntry
        | Kind::WorkloadEntry
        | Kind::PeerAuthentication
        | Kind::AuthorizationPolicy
        | Kind::RequestAuthentication
        | Kind::GatewayClass
        | Kind::KubeGateway
        | Kind::HttpRoute
        | Kind::GrpcRoute
        | Kind::ReferenceGrant => {
            return;
        }
    };
    let cluster_scoped = matches!(kind, Kind::Namespace | Kind::Node);
    let meta_node = root.get("metadata");
    let meta_str = |key: &str| meta_node.and_then(|m| m.get(key)).and_then(Node::as_str).unwrap_or("");
    let namespace = match meta_str("namespace") {
        _ if cluster_scoped => "",
        "" => options.default_namespace.as_str(),
        ns => ns,
    };
    let id = ResourceRef {
        kind: Arc::from(kind.as_str()),
        namespace: Arc::from(namespace),
        name: Arc::from(meta_str("name")),
    };
    let diag = |severity: Severity, line: u32, path: String, message: String| Diagnostic {
        severity,
        code: None,
        file: file.clone(),
        line,
        resource: Some(id.clone()),
        path,
        message,
    };
    for u in unknown.into_inner() {
        let under_pod_spec = kind == Kind::Pod && (u.path.starts_with("spec.") || u.path.starts_with("status."));
        if under_pod_spec || kube::KNOWN_UNREAD.contains(&u.field.as_str()) {
            continue;
        }
        if let Some(s) = u.suggestion() {
            let message = format!("unknown field {:?} (did you mean {s:?}?): ignored", u.field);
            out.diagnostics.push(diag(Severity::Warning, u.line, u.path, message));
        }
    }
    let mut spec = match parsed {
        Ok(spec) => spec,
        Err(e) => {
            out.diagnostics.push(de_diag(e, file, Some(id), root.line));
            return;
        }
    };
    let Some(metadata) = spec.kube_metadata_mut() else {
        return;
    };
    if metadata.name.is_empty() {
        out.diagnostics.push(diag(
            Severity::Error,
            root.line,
            "metadata.name".into(),
            "a resource needs a name".into(),
        ));
        return;
    }
    // One copy of each, shared with the resource's id.
    metadata.namespace = Name::from(id.namespace.clone());
    if *metadata.name == *id.name {
        metadata.name = Name::from(id.name.clone());
    }
    let (labels, annotations) = (metadata.labels.to_map(), metadata.annotations.to_map());
    out.resources.push(Resource {
        kind,
        api_version: Arc::from(api_version),
        name: id.name,
        namespace: id.namespace,
        labels,
        annotations,
        creation_timestamp: None,
        generation: None,
        file: file.clone(),
        line: root.line,
        spec,
        spec_node: Some(Arc::new(kept_for_lines(root, kind))),
    });
}

/// The part of a Kubernetes document that validation messages point into: `kubectl get -o yaml`
/// output also holds managed fields, last-applied annotations and whole container specs, which
/// a store of thousands of Pods should not keep.
fn kept_for_lines(root: &Node, kind: Kind) -> Node {
    let keep: &[&str] = match kind {
        Kind::Service => &["metadata", "spec"],
        Kind::Pod => &["metadata", "status"],
        Kind::EndpointSlice => &["metadata", "addressType", "endpoints", "ports"],
        _ => &["metadata"],
    };
    let pruned = only(root, keep);
    let Value::Map(entries) = pruned.value else {
        return pruned;
    };
    let entries = entries
        .into_iter()
        .map(|(k, v)| match k.name.as_str() {
            "metadata" => {
                let v = only(&v, &["name", "namespace", "labels"]);
                (k, v)
            }
            "status" => {
                let v = only(&v, &["podIP", "podIPs"]);
                (k, v)
            }
            _ => (k, v),
        })
        .collect();
    Node { line: pruned.line, value: Value::Map(entries) }
}

/// A mapping node with only these keys (any other node as it is).
fn only(node: &Node, keys: &[&str]) -> Node {
    match &node.value {
        Value::Map(entries) => Node {
            line: node.line,
            value: Value::Map(entries.iter().filter(|(k, _)| keys.contains(&k.name.as_str())).cloned().collect()),
        },
        _ => node.clone(),
    }
}

/// A `kind` or API group that is a misspelling of Istio's networking or security types: the field
/// to blame (`kind` or `apiVersion`) and the message, with the closest correct spelling.
fn misspelt_type(group: &str, kind: &str) -> Option<(&'static str, String)> {
    let kinds: &'static [&'static str] = match group {
        GROUP => &ISTIO_KINDS,
        SECURITY_GROUP => &SECURITY_KINDS,
        _ => &[],
    };
    if !kinds.is_empty() {
        if kinds.contains(&kind) {
            return None;
        }
        let mut message = format!("no kind {kind:?} in {group}");
        match de::closest(kind, kinds) {
            Some(s) => message.push_str(&format!(" (did you mean {s:?}?)")),
            None => message.push_str(&format!("; its kinds are {}", kinds.join(", "))),
        }
        return Some(("kind", message));
    }
    // `networking.istio.oi/v1`: one typo away from the group, never another group's name.
    let suggestion = de::closest(group, &[GROUP, SECURITY_GROUP])?;
    Some(("apiVersion", format!("no API group {group:?} (did you mean {suggestion:?}?); {kind} is not read")))
}

fn de_diag(e: DeError, file: &Option<Arc<str>>, resource: Option<ResourceRef>, fallback_line: u32) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: None,
        file: file.clone(),
        line: e.line.unwrap_or(fallback_line),
        resource,
        path: e.path.unwrap_or_default(),
        message: e.message,
    }
}
