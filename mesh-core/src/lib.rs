//! The mesh model and every routing decision. Pure: no I/O, no clock, no global state.
//!
//! - [`host`]: qualifying short names, wildcard comparison and indexed host lookup.
//! - [`matcher`]: Istio's `StringMatch` with RE2 full-match semantics.
//! - [`route`]: compiled VirtualService rules; [`header_format`]: Envoy's `%VARIABLES%` in
//!   header values.
//! - [`policy`]: compiled DestinationRules (subsets, load balancing, connection pools, outlier
//!   detection).
//! - [`service`]: ServiceEntries, WorkloadEntries and Gateways; [`small_str`]: the text type of
//!   an endpoint's address (short texts without an allocation).
//! - [`l4`]: TCP and TLS (SNI passthrough) routes of Gateway servers.
//! - [`locality`]: locality-aware load balancing (priorities by region/zone/subzone, failover).
//! - [`snapshot`]: the immutable whole the request path reads.
//! - [`request`], [`router`]: what a request looks like to routing, and routing it.
//! - [`decision`]: the whole answer to a request as one value ([`Snapshot::decide`]), which
//!   every front end (the route layer, `mesh explain`, `mesh proxy`) applies or prints.
//! - Inbound: [`spiffe`] (workload identities), [`authn`] (PeerAuthentication: the effective
//!   mTLS mode of a workload's port), [`normalize`] (path normalization before authorization),
//!   [`authz`] (the AuthorizationPolicy decision, [`authz::AuthzDecision`]), [`request_authn`]
//!   (the RequestAuthentication JWT rules of a workload), [`workload`] (the
//!   workload they apply to), [`security`] (all of it compiled, in the [`Snapshot`]) and
//!   [`inbound`] (the whole inbound answer to one request: mTLS, path, JWT, authorization);
//!   `jwt` (feature `jwt`, default) verifies RequestAuthentication tokens.
//!
//! ## Glossary
//! - *binding*: where a VirtualService applies — the mesh, or a Gateway.
//! - *subset*: a named group of a service's endpoints, selected by labels.
//! - *cluster*: a (service, subset, port) triple with its own endpoints and policy.
//! - *outlier detection*: passive health checking that ejects failing endpoints for a while.
//! - *connection pool*: per-cluster limits on connections and requests (circuit breaking).

#![forbid(unsafe_code)]

pub mod authn;
pub mod authz;
pub mod balance;
pub mod budget;
pub mod cors;
pub mod decision;
pub mod endpoint;
pub mod header_format;
pub mod hop;
pub mod host;
pub mod inbound;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod l4;
pub mod locality;
pub mod matcher;
pub mod normalize;
pub mod outlier;
pub mod policy;
pub mod pool;
pub mod protocol;
pub mod request;
pub mod request_authn;
pub mod retry;
pub mod route;
pub mod router;
pub mod security;
pub mod service;
pub mod small_str;
pub mod snapshot;
pub mod spiffe;
pub mod upstream_tls;
pub mod workload;

pub use authz::{AuthzDecision, AuthzRequest};
pub use cors::CorsHeaders;
pub use decision::{Decision, Forward, Listener, Local, LocalReason};
pub use request::{ClientIdentity, RequestView};
pub use router::RouteDecision;
pub use snapshot::{Binding, Snapshot, SnapshotBuilder};
