//! PeerAuthentication: the mutual TLS mode a workload's port accepts.
//!
//! Istio composes it per workload (istio/istio `pilot/pkg/security/authn/policy_applier.go`,
//! `ComposePeerAuthentication`; the candidates from `pilot/pkg/model/authentication.go`,
//! `getConfigsForWorkload`):
//!
//! - candidates are the PeerAuthentications of the workload's namespace and of the root
//!   namespace whose selector labels are a subset of the workload's labels (no selector, or no
//!   labels, selects every workload);
//! - the *mesh* policy is the oldest one in the root namespace without selector labels, the
//!   *namespace* policy the oldest in the workload's namespace without selector labels, the
//!   *workload* policy the oldest selecting one in the workload's namespace (one with a selector
//!   in the root namespace is ignored);
//! - starting from `PERMISSIVE`, the mesh, namespace and workload modes apply in that order, each
//!   only when set (`UNSET`, or no `mtls`, inherits);
//! - `portLevelMtls` is read from the workload policy only; an `UNSET` port inherits the
//!   workload's mode.
//!
//! meshwork has no creation timestamps: "oldest" is the earliest in configuration order, as
//! elsewhere (`Snapshot` keeps the first VirtualService for a host).
//! <https://istio.io/latest/docs/reference/config/security/peer_authentication/>

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::policy::LabelSelector;
use crate::workload::Workload;

/// An effective mutual TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MtlsMode {
    /// Plaintext only.
    Disable,
    /// Plaintext and mutual TLS on the same port.
    Permissive,
    /// Mutual TLS only.
    Strict,
}

impl MtlsMode {
    /// Istio's spelling (`DISABLE`, `PERMISSIVE`, `STRICT`).
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled PeerAuthentication. `mode: None` is `UNSET` (or no `mtls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAuthn {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// Selector labels (empty: namespace or mesh level).
    pub selector: LabelSelector,
    /// The mode; `None` inherits.
    pub mode: Option<MtlsMode>,
    /// Per-port modes (`None` inherits the workload's mode), by port.
    pub port_level: BTreeMap<u16, Option<MtlsMode>>,
}

/// Which level decided a mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtlsSource {
    /// No policy set a mode: Istio's default, `PERMISSIVE`.
    Default,
    /// A PeerAuthentication (the mesh, namespace or workload one, or its `portLevelMtls`).
    Policy {
        /// Namespace.
        namespace: Arc<str>,
        /// Name.
        name: Arc<str>,
        /// Set by `portLevelMtls` for the port.
        port_level: bool,
    },
}

/// The effective mode of one workload port, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveMtls {
    /// The mode.
    pub mode: MtlsMode,
    /// Who set it.
    pub source: MtlsSource,
}

/// Every PeerAuthentication, by namespace in configuration order.
#[derive(Debug, Clone, Default)]
pub struct PeerAuthentications {
    root_namespace: Arc<str>,
    by_namespace: FxHashMap<Arc<str>, Vec<Arc<PeerAuthn>>>,
}

impl PeerAuthentications {
    /// Index `policies` (in configuration order: earlier is older) under `root_namespace`.
    pub fn new(root_namespace: &str, policies: impl IntoIterator<Item = PeerAuthn>) -> Self {
        let mut by_namespace: FxHashMap<Arc<str>, Vec<Arc<PeerAuthn>>> = FxHashMap::default();
        for p in policies {
            by_namespace.entry(p.namespace.clone()).or_default().push(Arc::new(p));
        }
        PeerAuthentications { root_namespace: Arc::from(root_namespace), by_namespace }
    }

    /// Is there no PeerAuthentication at all?
    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }

    /// The effective mode of `workload` on `port`.
    ///
    /// ```
    /// use mesh_core::authn::{MtlsMode, PeerAuthentications, PeerAuthn};
    /// use mesh_core::policy::LabelSelector;
    /// use mesh_core::workload::Workload;
    /// let pa = |ns: &str, name: &str, mode| PeerAuthn {
    ///     namespace: ns.into(), name: name.into(), selector: LabelSelector::default(), mode, port_level: Default::default(),
    /// };
    /// let all = PeerAuthentications::new(
    ///     "istio-system",
    ///     [pa("istio-system", "default", Some(MtlsMode::Strict)), pa("foo", "default", None)],
    /// );
    /// // The namespace policy is UNSET: the mesh's STRICT applies.
    /// assert_eq!(all.effective(&Workload::new("foo", []), 8080).mode, MtlsMode::Strict);
    /// // No policy in `bar` but the mesh one.
    /// assert_eq!(all.effective(&Workload::new("bar", []), 8080).mode, MtlsMode::Strict);
    /// ```
    pub fn effective(&self, workload: &Workload, port: u16) -> EffectiveMtls {
        let (mesh, namespace, selected) = self.composed(workload);
        let mut out = EffectiveMtls { mode: MtlsMode::Permissive, source: MtlsSource::Default };
        for p in [mesh, namespace, selected].into_iter().flatten() {
            if let Some(mode) = p.mode {
                out = EffectiveMtls { mode, source: source(p, false) };
            }
        }
        // A port whose mode is UNSET inherits the workload level, already in `out`.
        if let Some(p) = selected
            && let Some(Some(mode)) = p.port_level.get(&port)
        {
            out = EffectiveMtls { mode: *mode, source: source(p, true) };
        }
        out
    }

    /// The mesh, namespace and workload policies that apply to `workload` (Istio's
    /// `ComposePeerAuthentication` choice).
    fn composed(&self, workload: &Workload) -> (Option<&PeerAuthn>, Option<&PeerAuthn>, Option<&PeerAuthn>) {
        let root = &*self.root_namespace;
        let empty: &[Arc<PeerAuthn>] = &[];
        let in_root = self.by_namespace.get(root).map_or(empty, |v| &v[..]);
        let mesh = in_root.iter().find(|p| p.selector.0.is_empty()).map(|p| &**p);
        if &*workload.namespace == root {
            return (mesh, None, None);
        }
        let in_ns = self.by_namespace.get(&workload.namespace).map_or(empty, |v| &v[..]);
        let namespace = in_ns.iter().find(|p| p.selector.0.is_empty()).map(|p| &**p);
        let selected =
            in_ns.iter().find(|p| !p.selector.0.is_empty() && p.selector.matches(&workload.labels)).map(|p| &**p);
        (mesh, namespace, selected)
    }
}

fn source(p: &PeerAuthn, port_level: bool) -> MtlsSource {
    MtlsSource::Policy { namespace: p.namespace.clone(), name: p.name.clone(), port_level }
}
