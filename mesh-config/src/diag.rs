//! Diagnostics: every problem found while loading and validating, with its place.
//!
//! Each one prints as `FILE:LINE: KIND NAMESPACE/NAME: field.path: message`, the format `mesh
//! validate` prints and editors can jump to.

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

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or unsupported.
    pub severity: Severity,
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
