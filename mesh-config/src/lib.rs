//! Istio's `networking.istio.io` and `security.istio.io` configuration, the Kubernetes Services,
//! EndpointSlices and Pods behind it, and meshConfig settings ([`meshconfig`]), for meshwork: YAML
//! in, a compiled [`mesh_core::Snapshot`] out.
//!
//! ```text
//! YAML files / dirs / strings
//!   -> load       multi-document YAML -> typed resources, each with file + line
//!   -> validate   Istio's validation rules -> diagnostics (error | warning | unsupported)
//!   -> analyze    cross-resource checks (istioctl analyze's) -> coded warnings
//!   -> compile    -> mesh_core::Snapshot (immutable, cheap to clone)
//! ```
//!
//! [`ConfigStore`] ties them together with Kubernetes admission semantics: a resource whose
//! new version is invalid keeps its last good version, a new invalid resource is left out, and a
//! file that is not YAML changes nothing.

#![forbid(unsafe_code)]

pub mod analyze;
pub mod compile;
mod de;
mod delegate;
pub mod diag;
pub mod duration;
pub mod gateway_api;
pub mod kube;
pub mod load;
pub mod meshconfig;
pub mod store;
pub mod types;
pub mod validate;
mod yaml;

pub use analyze::{analyze, duplicates};
pub use compile::{CompileOptions, Compiled, compile};
pub use diag::{Code, Diagnostic, ResourceRef, Severity};
pub use load::{LoadError, LoadOptions, Loaded, Skipped, load_json, load_path, load_paths, load_str};
pub use meshconfig::{MeshConfig, load_mesh_config, parse_mesh_config};
pub use store::{ApplyReport, ConfigStore};
pub use types::{Kind, Resource, Spec};
pub use validate::validate;
pub use yaml::{Limits, YamlError};
