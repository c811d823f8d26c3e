//! The whole inbound answer for one request arriving at one workload, as one value
//! ([`InboundDecision`]), in the order Istio's sidecar applies its inbound filters:
//!
//! 1. **mTLS** (PeerAuthentication, [`crate::authn`]): a plaintext connection on a `STRICT` port,
//!    or a mutual-TLS one on a `DISABLE` port, is refused before any request is read (no status).
//! 2. **Path normalization** (meshConfig `pathNormalization`, [`crate::normalize`]): a path Envoy
//!    refuses is a 400.
//! 3. **JWT** (RequestAuthentication, [`crate::request_authn`]): the layer verifies the token and
//!    hands the outcome in ([`JwtOutcome`]); an invalid token, or none when a rule says
//!    `presence: REQUIRED`, is a 401; a token whose audience no rule accepts is a 403. CORS
//!    preflight requests skip this step, as Istio configures Envoy's JWT filter
//!    (`bypass_cors_preflight`).
//! 4. **Authorization** ([`crate::authz`]): a denial is a 403 (`RBAC: access denied`); on TCP the
//!    connection is closed (no status).
//!
//! [`Verdict::Reject`] is a refusal before authorization, [`Verdict::Deny`] the authorization's.
//! The inbound layer enforces this value and `mesh explain --inbound` prints it.

use crate::authn::MtlsMode;
use crate::authz::{AuthzRequest, DryRun, MatchedRule};
use crate::normalize::normalize_path;
use crate::security::Security;
use crate::workload::Workload;

/// What JWT verification found (done by the layer against the workload's
/// [`Security::jwt_rules`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JwtOutcome {
    /// No token in any configured location.
    #[default]
    Missing,
    /// A token one rule validated; its payload is in `request.http.jwt`.
    Valid,
    /// A token no rule validates (bad signature, expired, unknown issuer...).
    Invalid,
    /// A valid token whose audience no rule of its issuer accepts.
    AudienceNotAllowed,
}

/// One request (or TCP connection) arriving at a workload.
#[derive(Debug, Clone, Default)]
pub struct InboundRequest {
    /// Did it arrive over mutual TLS? (`attributes.peer` is the peer's identity then.)
    pub mtls: bool,
    /// The JWT outcome (HTTP only).
    pub jwt: JwtOutcome,
    /// The attributes; `http.path` is the path as received (it is normalized here).
    pub attributes: AuthzRequest,
}

/// allow, deny (authorization) or reject (before authorization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Pass it to the application.
    Allow,
    /// Refused by an AuthorizationPolicy.
    Deny,
    /// Refused before authorization (mTLS mode, bad path, bad token).
    Reject,
}

impl Verdict {
    /// `allow`, `deny`, `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Reject => "reject",
        }
    }
}

/// Why a request was rejected before authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Plaintext on a `STRICT` port.
    PlaintextOnStrict,
    /// Mutual TLS on a `DISABLE` port.
    MtlsOnDisabled,
    /// The path is refused by normalization.
    BadPath,
    /// The token is invalid.
    InvalidToken,
    /// A token is required and absent.
    MissingToken,
    /// The token's audience is not accepted.
    AudienceNotAllowed,
}

/// The inbound answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundDecision {
    /// allow, deny or reject.
    pub verdict: Verdict,
    /// The HTTP status of a refusal (400, 401, 403); `None` when allowed, for a refused
    /// connection (mTLS mode) and for TCP.
    pub status: Option<u16>,
    /// Why it was rejected, for [`Verdict::Reject`].
    pub reject: Option<RejectReason>,
    /// The AuthorizationPolicy rule that decided, if any.
    pub policy: Option<MatchedRule>,
    /// The path authorization matched, without the query; `None` for TCP or when rejected before.
    pub normalized_path: Option<String>,
    /// The full normalized `:path` (with the query) the application receives.
    pub forwarded_path: Option<String>,
    /// The first AUDIT rule that matched.
    pub audit: Option<MatchedRule>,
    /// What dry-run policies would have decided.
    pub dry_run: Option<DryRun>,
    /// The port's effective mTLS mode.
    pub mtls: MtlsMode,
}

fn is_cors_preflight(req: &AuthzRequest) -> bool {
    req.http.as_ref().is_some_and(|h| {
        h.method == "OPTIONS"
            && h.headers.contains_key("origin")
            && h.headers.contains_key("access-control-request-method")
    })
}

impl Security {
    /// The inbound decision for `request` arriving at `workload`.
    ///
    /// ```
    /// use mesh_core::authz::{AuthzRequest, HttpAttributes};
    /// use mesh_core::inbound::{InboundRequest, Verdict};
    /// use mesh_core::security::Security;
    /// use mesh_core::workload::Workload;
    /// let request = InboundRequest {
    ///     attributes: AuthzRequest {
    ///         destination_port: 8000,
    ///         http: Some(HttpAttributes { method: "GET".into(), host: "h".into(), path: "/a/../b?x=1".into(), ..Default::default() }),
    ///         ..Default::default()
    ///     },
    ///     ..Default::default()
    /// };
    /// let d = Security::default().inbound(&Workload::new("foo", []), &request);
    /// assert_eq!((d.verdict, d.status), (Verdict::Allow, None));
    /// assert_eq!(d.normalized_path.as_deref(), Some("/b"));
    /// assert_eq!(d.mtls.as_str(), "PERMISSIVE");
    /// ```
    pub fn inbound(&self, workload: &Workload, request: &InboundRequest) -> InboundDecision {
        let mtls = self.mtls(workload, request.attributes.destination_port).mode;
        let mut out = InboundDecision {
            verdict: Verdict::Reject,
            status: None,
            reject: None,
            policy: None,
            normalized_path: None,
            forwarded_path: None,
            audit: None,
            dry_run: None,
            mtls,
        };
        let reject = |mut out: InboundDecision, reason, status| {
            out.reject = Some(reason);
            out.status = status;
            out
        };
        match (mtls, request.mtls) {
            (MtlsMode::Strict, false) => return reject(out, RejectReason::PlaintextOnStrict, None),
            (MtlsMode::Disable, true) => return reject(out, RejectReason::MtlsOnDisabled, None),
            _ => {}
        }
        let mut attributes = request.attributes.clone();
        if !request.mtls {
            // Identity attributes come from mutual TLS only.
            attributes.peer = None;
        }
        if let Some(http) = attributes.http.as_mut() {
            match normalize_path(&http.path, self.mesh().path_normalization) {
                Ok(path) => {
                    out.normalized_path = Some(crate::normalize::path_without_query(&path).to_string());
                    out.forwarded_path = Some(path.clone());
                    http.path = path;
                }
                Err(_) => return reject(out, RejectReason::BadPath, Some(400)),
            }
            if !is_cors_preflight(&request.attributes) {
                let required = self.jwt_rules(workload).iter().any(|r| r.required);
                match request.jwt {
                    JwtOutcome::Invalid => return reject(out, RejectReason::InvalidToken, Some(401)),
                    JwtOutcome::AudienceNotAllowed => return reject(out, RejectReason::AudienceNotAllowed, Some(403)),
                    JwtOutcome::Missing if required => return reject(out, RejectReason::MissingToken, Some(401)),
                    JwtOutcome::Missing => http.jwt = None,
                    JwtOutcome::Valid => {}
                }
            }
        }
        let decision = self.authorize(workload, &attributes);
        out.policy = decision.policy;
        out.audit = decision.audit;
        out.dry_run = decision.dry_run;
        if decision.allowed {
            out.verdict = Verdict::Allow;
        } else {
            out.verdict = Verdict::Deny;
            out.status = attributes.http.is_some().then_some(403);
        }
        out
    }
}

/// `remote.ip` at a sidecar's inbound listener: Istio leaves Envoy's `use_remote_address` off
/// there (istio/istio `pilot/pkg/networking/core/listener_builder.go`,
/// `PILOT_SIDECAR_USE_REMOTE_ADDRESS` default false) with no trusted hops, so Envoy takes the
/// rightmost address of `x-forwarded-for` when the header holds one, else the connection's
/// address (Envoy's "x-forwarded-for" documentation, `use_remote_address: false`).
///
/// ```
/// use mesh_core::inbound::remote_ip;
/// let source = "10.0.0.9".parse().ok();
/// assert_eq!(remote_ip(Some("1.2.3.4, 5.6.7.8"), source), "5.6.7.8".parse().ok());
/// assert_eq!(remote_ip(Some("not-an-ip"), source), source);
/// assert_eq!(remote_ip(None, source), source);
/// ```
pub fn remote_ip(x_forwarded_for: Option<&str>, source: Option<std::net::IpAddr>) -> Option<std::net::IpAddr> {
    x_forwarded_for.and_then(|xff| xff.rsplit(',').next()).and_then(|last| last.trim().parse().ok()).or(source)
}
