//! The status a Gateway API controller writes: conditions with the spec's reasons,
//! `attachedRoutes` per listener, and each route's conditions per parent
//! (<https://gateway-api.sigs.k8s.io/reference/spec/#gatewaystatus>,
//! `#routeparentstatus`). Serialized as `mesh validate --status -o json` prints it.

use serde::Serialize;

/// A status condition, as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// `Accepted`, `ResolvedRefs`, `Programmed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `True` or `False`.
    pub status: &'static str,
    /// The spec's reason.
    pub reason: &'static str,
    /// Detail.
    pub message: String,
    /// The `metadata.generation` of the object the condition is about (1 for a file's object
    /// without one).
    #[serde(rename = "observedGeneration")]
    pub observed_generation: i64,
}

impl Condition {
    pub(crate) fn new(kind: &'static str, ok: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Condition {
            kind,
            status: if ok { "True" } else { "False" },
            reason,
            message: message.into(),
            observed_generation: 0,
        }
    }
}

/// Stamp `generation` on every condition.
pub(crate) fn observe(conditions: &mut [Condition], generation: i64) {
    for c in conditions {
        c.observed_generation = generation;
    }
}

/// A listener's status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// Listener name.
    pub name: String,
    /// Routes attached.
    pub attached_routes: u32,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

/// A Gateway's status.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Listeners.
    pub listeners: Vec<ListenerStatus>,
}

/// A route's status for one parent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentStatus {
    /// The parentRef as written, defaults filled in.
    pub parent_ref: ParentRefStatus,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

/// `parentRef` in a status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRefStatus {
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Section name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// A route's status.
#[derive(Debug, Clone, Serialize)]
pub struct RouteStatus {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// One entry per parentRef served by meshwork.
    pub parents: Vec<ParentStatus>,
}

/// What [`super::compile`] reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Gateways of the served class.
    pub gateways: Vec<GatewayStatus>,
    /// Routes.
    pub routes: Vec<RouteStatus>,
    /// Mesh hosts that a VirtualService routes and HTTPRoutes claim too (the VirtualService is
    /// kept); `mesh validate` warns about each.
    #[serde(skip)]
    pub shadowed_hosts: Vec<String>,
}

impl Status {
    /// The status of a route's parents, by namespace and name.
    pub fn route(&self, namespace: &str, name: &str) -> Option<&RouteStatus> {
        self.routes.iter().find(|r| r.namespace == namespace && r.name == name)
    }

    /// The status of a Gateway.
    pub fn gateway(&self, namespace: &str, name: &str) -> Option<&GatewayStatus> {
        self.gateways.iter().find(|g| g.namespace == namespace && g.name == name)
    }
}
