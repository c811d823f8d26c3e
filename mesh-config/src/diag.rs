//! Diagnostics: every problem found while loading, validating and analyzing, with its place.
//!
//! Each one prints as `FILE:LINE: KIND NAMESPACE/NAME: field.path: message`, the format `mesh
//! validate` prints and editors can jump to; a diagnostic with a [`Code`] prints it first:
//! `FILE:LINE: CODE KIND NAMESPACE/NAME: field.path: message`.
//!
//! Codes are stable. Where Istio's analyzers (`istioctl analyze`; istio/istio
//! `pkg/config/analysis/msg/messages.yaml`) make the same check, the code is Istio's (`IST0101`);
//! checks Istio has no message for get a meshwork code (`MW0001`...).

use std::fmt;
use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The resource is rejected.
    Error,
    /// The resource is accepted; something deserves attention (Istio warns here too).
    Warning,
    /// The resource is accepted; meshwork reads this field but does not act on it yet.
    Unsupported,
}

/// Which resource a diagnostic is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    /// `VirtualService`, `DestinationRule`, ...
    pub kind: Arc<str>,
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// The stable code of a diagnostic: Istio's analyzer code where Istio makes the same check, a
/// meshwork code (`MW....`) where it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Code {
    /// `IST0101` (Istio's `ReferencedResourceNotFound`): a VirtualService names a subset no
    /// DestinationRule for its host defines, a Gateway the configuration does not hold, or a
    /// destination host nothing in the configuration declares.
    ReferencedResourceNotFound,
    /// `MW0001`: a document's `kind` (or API group) is close to one of `networking.istio.io` but
    /// is none of them: a misspelling, so the document is refused instead of skipped.
    UnknownKind,
    /// `MW0002`: the same resource (kind, namespace, name) is defined more than once.
    DuplicateResource,
    /// `MW0003`: DestinationRules for one host in one namespace, without workload selectors, are
    /// merged, and one of them sets something an earlier one already set (a subset, the
    /// top-level traffic policy), which is then ignored.
    ConflictingDestinationRules,
}

impl Code {
    /// The code as printed: `IST0101`, `MW0001`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ReferencedResourceNotFound => "IST0101",
            Code::UnknownKind => "MW0001",
            Code::DuplicateResource => "MW0002",
            Code::ConflictingDestinationRules => "MW0003",
        }
    }

    /// The message's name (Istio's name for Istio's codes): `ReferencedResourceNotFound`, ...
    pub fn name(self) -> &'static str {
        match self {
            Code::ReferencedResourceNotFound => "ReferencedResourceNotFound",
            Code::UnknownKind => "UnknownKind",
            Code::DuplicateResource => "DuplicateResource",
            Code::ConflictingDestinationRules => "ConflictingDestinationRules",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or unsupported.
    pub severity: Severity,
    /// The stable code of the check that found it, when it has one (cross-resource checks,
    /// misspelt kinds, duplicates); `None` for validation and parse errors.
    pub code: Option<Code>,
    /// The file, or `None` for text loaded from a string.
    pub file: Option<Arc<str>>,
    /// 1-based line.
    pub line: u32,
    /// The resource, when the problem is inside one.
    pub resource: Option<ResourceRef>,
    /// Field path inside the resource's `spec` (`http[0].route[1].weight`), or empty.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.as_deref().unwrap_or("<string>"), self.line)?;
        if let Some(code) = self.code {
            write!(f, "{code} ")?;
        }
        if let Some(r) = &self.resource {
            write!(f, "{r}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        match self.severity {
            Severity::Error => {}
            Severity::Warning => f.write_str("warning: ")?,
            Severity::Unsupported => f.write_str("unsupported: ")?,
        }
        f.write_str(&self.message)
    }
}
