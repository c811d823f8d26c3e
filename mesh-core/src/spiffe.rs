//! SPIFFE identities as Istio issues them: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`
//! (istio/istio `pkg/spiffe/spiffe.go`: `URIPrefix`, `ParseIdentity`, `Identity.String`; the SPIFFE
//! ID standard, <https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md>).
//!
//! Authorization compares the peer's URI SAN as a string (Envoy's `principal_name` matcher), so
//! [`crate::authz`] takes the URI as written; [`SpiffeId`] is the parsed form, for building and
//! printing identities and for reading their parts.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// `spiffe://`.
pub const URI_PREFIX: &str = "spiffe://";

/// An Istio workload identity.
///
/// ```
/// use mesh_core::spiffe::SpiffeId;
/// let id: SpiffeId = "spiffe://cluster.local/ns/default/sa/sleep".parse().expect("valid");
/// assert_eq!((&*id.trust_domain, &*id.namespace, &*id.service_account), ("cluster.local", "default", "sleep"));
/// assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/sleep");
/// assert!("spiffe://cluster.local/sa/sleep".parse::<SpiffeId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    /// The trust domain (`cluster.local`).
    pub trust_domain: Arc<str>,
    /// The workload's namespace.
    pub namespace: Arc<str>,
    /// The workload's service account.
    pub service_account: Arc<str>,
}

/// Why a string is not an Istio SPIFFE identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeError {
    /// It does not start with `spiffe://`.
    #[error("identity {0:?} does not start with spiffe://")]
    Scheme(String),
    /// It is not `<trust domain>/ns/<namespace>/sa/<service account>` with non-empty parts.
    #[error("identity {0:?} is not of the form spiffe://<trust domain>/ns/<namespace>/sa/<service account>")]
    Shape(String),
}

impl SpiffeId {
    /// An identity from its parts.
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> SpiffeId {
        SpiffeId {
            trust_domain: Arc::from(trust_domain),
            namespace: Arc::from(namespace),
            service_account: Arc::from(service_account),
        }
    }

    /// The identity without `spiffe://` (`cluster.local/ns/default/sa/sleep`), the form
    /// AuthorizationPolicy `principals` are written in.
    pub fn principal(&self) -> String {
        format!("{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeError;

    /// Istio's `ParseIdentity`: exactly five `/`-separated parts after the prefix, `ns` and `sa`
    /// in place, none empty.
    fn from_str(s: &str) -> Result<SpiffeId, SpiffeError> {
        let rest = s.strip_prefix(URI_PREFIX).ok_or_else(|| SpiffeError::Scheme(s.to_string()))?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts[..] {
            [td, "ns", ns, "sa", sa] if !td.is_empty() && !ns.is_empty() && !sa.is_empty() => {
                Ok(SpiffeId::new(td, ns, sa))
            }
            _ => Err(SpiffeError::Shape(s.to_string())),
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URI_PREFIX}{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}
