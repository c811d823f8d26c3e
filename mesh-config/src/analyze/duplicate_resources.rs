//! `MW0002`: the same resource (kind, namespace, name) defined more than once in one load.

use std::collections::HashMap;

use crate::diag::{Code, Diagnostic, ResourceRef, Severity};
use crate::types::Resource;

/// Resources defined more than once in one load (same kind, namespace and name), each later
/// definition reported where it is, naming the first ([`Code::DuplicateResource`]).
pub fn duplicates(resources: &[Resource]) -> Vec<Diagnostic> {
    let mut first: HashMap<ResourceRef, &Resource> = HashMap::new();
    let mut out = Vec::new();
    for r in resources {
        let id = r.id();
        match first.get(&id) {
            Some(earlier) => out.push(Diagnostic {
                severity: Severity::Warning,
                code: Some(Code::DuplicateResource),
                file: r.file.clone(),
                line: r.line,
                resource: Some(id),
                path: String::new(),
                message: format!(
                    "defined again (first at {}:{}); the last valid definition is the one in force, as `kubectl apply` of both would leave it",
                    earlier.file.as_deref().unwrap_or("<string>"),
                    earlier.line
                ),
            }),
            None => {
                first.insert(id, r);
            }
        }
    }
    out
}
