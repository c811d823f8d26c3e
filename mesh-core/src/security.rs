//! The inbound side of a [`Snapshot`](crate::Snapshot): the mesh's security settings,
//! PeerAuthentications, AuthorizationPolicies and RequestAuthentications, compiled once per
//! configuration.
//!
//! The settings are Istio's meshConfig names: `rootNamespace` (default `istio-system`),
//! `trustDomain` (`cluster.local`), `trustDomainAliases`, `pathNormalization.normalization`
//! (`BASE`); <https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/>.

use std::sync::Arc;

use crate::authn::{EffectiveMtls, PeerAuthentications, PeerAuthn};
use crate::authz::{AuthzDecision, AuthzPolicies, AuthzRequest, PolicySpec, TrustDomainBundle};
use crate::normalize::PathNormalization;
use crate::request_authn::{JwtRule, RequestAuthentications, RequestAuthn};
use crate::snapshot::ROOT_NAMESPACE;
use crate::workload::Workload;

/// The meshConfig settings the inbound decisions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSecurity {
    /// `rootNamespace`: policies there apply to every namespace.
    pub root_namespace: Arc<str>,
    /// `trustDomain` and `trustDomainAliases`.
    pub trust_domains: TrustDomainBundle,
    /// `pathNormalization.normalization`.
    pub path_normalization: PathNormalization,
}

impl Default for MeshSecurity {
    fn default() -> Self {
        MeshSecurity {
            root_namespace: Arc::from(ROOT_NAMESPACE),
            trust_domains: TrustDomainBundle::default(),
            path_normalization: PathNormalization::Base,
        }
    }
}

/// Compiled inbound policy.
#[derive(Debug, Clone, Default)]
pub struct Security {
    mesh: MeshSecurity,
    peer_authentications: PeerAuthentications,
    authorization: AuthzPolicies,
    request_authentications: RequestAuthentications,
}

impl Security {
    /// Compile PeerAuthentications and AuthorizationPolicies (each in configuration order) under
    /// `mesh`.
    ///
    /// ```
    /// use mesh_core::authz::{Action, AuthzRequest, PolicySpec};
    /// use mesh_core::security::{MeshSecurity, Security};
    /// use mesh_core::workload::Workload;
    /// let security = Security::new(MeshSecurity::default(), [], [PolicySpec::new("foo", "allow-nothing", Action::Allow)]);
    /// let decision = security.authorize(&Workload::new("foo", []), &AuthzRequest::default());
    /// assert!(!decision.allowed);
    /// assert!(security.authorize(&Workload::new("bar", []), &AuthzRequest::default()).allowed);
    /// ```
    pub fn new(
        mesh: MeshSecurity,
        peer_authentications: impl IntoIterator<Item = PeerAuthn>,
        authorization_policies: impl IntoIterator<Item = PolicySpec>,
    ) -> Security {
        let peer_authentications = PeerAuthentications::new(&mesh.root_namespace, peer_authentications);
        let authorization = AuthzPolicies::new(&mesh.root_namespace, &mesh.trust_domains, authorization_policies);
        let request_authentications = RequestAuthentications::new(&mesh.root_namespace, []);
        Security { mesh, peer_authentications, authorization, request_authentications }
    }

    /// With these RequestAuthentications (in configuration order).
    pub fn with_request_authentications(mut self, policies: impl IntoIterator<Item = RequestAuthn>) -> Security {
        self.request_authentications = RequestAuthentications::new(&self.mesh.root_namespace, policies);
        self
    }

    /// Every RequestAuthentication.
    pub fn request_authentications(&self) -> &RequestAuthentications {
        &self.request_authentications
    }

    /// The JWT rules that apply to `workload`.
    pub fn jwt_rules(&self, workload: &Workload) -> Vec<Arc<JwtRule>> {
        self.request_authentications.jwt_rules(workload)
    }

    /// The mesh settings.
    pub fn mesh(&self) -> &MeshSecurity {
        &self.mesh
    }

    /// Every PeerAuthentication.
    pub fn peer_authentications(&self) -> &PeerAuthentications {
        &self.peer_authentications
    }

    /// Every AuthorizationPolicy.
    pub fn authorization_policies(&self) -> &AuthzPolicies {
        &self.authorization
    }

    /// The effective mTLS mode of `workload` on `port`.
    pub fn mtls(&self, workload: &Workload, port: u16) -> EffectiveMtls {
        self.peer_authentications.effective(workload, port)
    }

    /// The authorization decision for `request` arriving at `workload`.
    pub fn authorize(&self, workload: &Workload, request: &AuthzRequest) -> AuthzDecision {
        self.authorization.authorize(workload, request)
    }
}
