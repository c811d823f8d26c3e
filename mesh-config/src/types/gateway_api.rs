//! Typed mirrors of the Kubernetes Gateway API (`gateway.networking.k8s.io`): GatewayClass,
//! Gateway, HTTPRoute, GRPCRoute (`v1`; `v1beta1` serves the same schema where it exists) and
//! ReferenceGrant (`v1beta1`, and `v1` in newer bundles).
//!
//! Field names are the API's (<https://gateway-api.sigs.k8s.io/reference/spec/>), checked against
//! the CRDs of the standard channel (the copies the conformance tests read). Fields the CRD gives
//! a default to are `Option`s here: the defaults (`kind: Gateway`, `group: ""`, `weight: 1`,
//! `path: {type: PathPrefix, value: /}`, `statusCode: 302`, `allowedRoutes.namespaces.from:
//! Same`, ...) are applied where the resources are read ([`crate::gateway_api`]), so that
//! validation can tell what was written from what was implied, and the API server's defaulted
//! objects and hand-written files mean the same thing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The API group of the Gateway API kinds.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// `GatewayClass.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayClass {
    /// The controller that manages Gateways of this class (`istio.io/gateway-controller` for
    /// Istio's `istio` class).
    pub controller_name: String,
    /// Free text.
    pub description: Option<String>,
    /// Implementation parameters (present or not; not read by meshwork).
    pub parameters_ref: Option<IgnoredAny>,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    /// The GatewayClass this Gateway belongs to.
    pub gateway_class_name: String,
    /// Listeners: where the Gateway accepts traffic.
    pub listeners: Vec<Listener>,
    /// Requested addresses (reported, not bound: `mesh proxy` binds what its flags say).
    pub addresses: Vec<GatewayAddress>,
    /// Infrastructure labels and annotations (not read by meshwork).
    pub infrastructure: Option<IgnoredAny>,
    /// Listener sets (experimental; not read by meshwork).
    pub allowed_listeners: Option<IgnoredAny>,
    /// Gateway-wide TLS settings (experimental; not read by meshwork).
    pub tls: Option<IgnoredAny>,
}

/// `Gateway.spec.addresses[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayAddress {
    /// `IPAddress` (default), `Hostname` or an implementation-specific type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The address.
    pub value: String,
}

/// `Gateway.spec.listeners[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Listener {
    /// Unique within the Gateway; what a route's `sectionName` names.
    pub name: String,
    /// The host names this listener serves (`*.example.com` allowed); none means all.
    pub hostname: Option<String>,
    /// Port.
    pub port: u32,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP` or a domain-prefixed protocol.
    pub protocol: String,
    /// TLS settings (`HTTPS` and `TLS`).
    pub tls: Option<ListenerTls>,
    /// Which routes may attach.
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `listeners[].tls`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenerTls {
    /// `Terminate` (default) or `Passthrough`.
    pub mode: Option<String>,
    /// Certificates: `kubernetes.io/tls` Secrets by default.
    pub certificate_refs: Vec<ObjectRef>,
    /// Implementation-specific options.
    pub options: BTreeMap<String, String>,
}

/// A reference to an object by group, kind, name and namespace (`certificateRefs[]`,
/// `extensionRef`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectRef {
    /// API group (`""`: core).
    pub group: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (the referring object's when absent).
    pub namespace: Option<String>,
}

/// `listeners[].allowedRoutes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedRoutes {
    /// Namespaces routes may come from.
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds allowed (the listener's protocol decides when empty).
    pub kinds: Vec<RouteGroupKind>,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    pub from: Option<String>,
    /// Namespace label selector for `Selector`.
    pub selector: Option<LabelSelector>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    /// Labels that must all be equal.
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must all hold.
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `matchExpressions[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` and `NotIn`.
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Do `labels` satisfy the selector (Kubernetes' semantics: every `matchLabels` pair and every
    /// expression; an empty selector selects everything)?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// `allowedRoutes.kinds[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteGroupKind {
    /// API group (`gateway.networking.k8s.io` when absent).
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
}

/// `spec.parentRefs[]` of a route: a Gateway (default) or, for the mesh (GAMMA), a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParentRef {
    /// API group (`gateway.networking.k8s.io` when absent; `""` for a Service).
    pub group: Option<String>,
    /// `Gateway` when absent, or `Service`.
    pub kind: Option<String>,
    /// Namespace (the route's when absent).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The listener's name (Gateway) or the port's name (Service).
    pub section_name: Option<String>,
    /// The listener's or the Service's port.
    pub port: Option<u32>,
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    /// Where the route attaches.
    pub parent_refs: Vec<ParentRef>,
    /// Host names matched against the `Host` header; none means all the parent allows.
    pub hostnames: Vec<String>,
    /// Rules (`[{matches: [{path: PathPrefix /}]}]` when absent).
    pub rules: Option<Vec<HttpRouteRule>>,
}

/// `HTTPRoute.spec.rules[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteRule {
    /// Name (GEP-995), reported as `ruleName`.
    pub name: Option<String>,
    /// Matches (ORed); `[{path: PathPrefix /}]` when absent.
    pub matches: Option<Vec<HttpRouteMatch>>,
    /// Filters applied to every request the rule matches.
    pub filters: Vec<HttpRouteFilter>,
    /// Backends, weighted.
    pub backend_refs: Vec<HttpBackendRef>,
    /// Timeouts (GEP-1742).
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Retries (GEP-1731).
    pub retry: Option<HttpRouteRetry>,
    /// Session persistence (GEP-1619; not supported by meshwork).
    pub session_persistence: Option<IgnoredAny>,
}

/// `rules[].matches[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteMatch {
    /// Path (`PathPrefix /` when absent).
    pub path: Option<HttpPathMatch>,
    /// Header conditions (ANDed).
    pub headers: Vec<HttpHeaderMatch>,
    /// Query parameter conditions (ANDed).
    pub query_params: Vec<HttpHeaderMatch>,
    /// Method.
    pub method: Option<String>,
}

/// `matches[].path`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpPathMatch {
    /// `PathPrefix` (default), `Exact` or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The value (`/` when absent).
    pub value: Option<String>,
}

/// `matches[].headers[]` and `matches[].queryParams[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeaderMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Header name (case-insensitive) or query parameter name (case-sensitive).
    pub name: String,
    /// Value.
    pub value: String,
}

/// `rules[].filters[]` (and `backendRefs[].filters[]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteFilter {
    /// `RequestHeaderModifier`, `ResponseHeaderModifier`, `RequestMirror`, `RequestRedirect`,
    /// `URLRewrite`, `CORS`, `ExtensionRef`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// For `RequestHeaderModifier`.
    pub request_header_modifier: Option<HttpHeaderFilter>,
    /// For `ResponseHeaderModifier`.
    pub response_header_modifier: Option<HttpHeaderFilter>,
    /// For `RequestMirror`.
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    /// For `RequestRedirect`.
    pub request_redirect: Option<HttpRequestRedirectFilter>,
    /// For `URLRewrite`.
    pub url_rewrite: Option<HttpUrlRewriteFilter>,
    /// For `CORS`.
    pub cors: Option<HttpCorsFilter>,
    /// For `ExtensionRef` (not supported by meshwork).
    pub extension_ref: Option<ObjectRef>,
    /// For `ExternalAuth` (experimental; not supported by meshwork).
    pub external_auth: Option<IgnoredAny>,
}

/// `RequestHeaderModifier` / `ResponseHeaderModifier`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeaderFilter {
    /// Overwrite (or add).
    pub set: Vec<HttpHeader>,
    /// Append (or add).
    pub add: Vec<HttpHeader>,
    /// Remove, by name.
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHeader {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `RequestMirror`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRequestMirrorFilter {
    /// Where the copy goes.
    pub backend_ref: BackendObjectRef,
    /// Share of requests mirrored, 0–100 (all when neither this nor `fraction` is set).
    pub percent: Option<i64>,
    /// Share of requests mirrored as a fraction.
    pub fraction: Option<Fraction>,
}

/// `requestMirror.fraction`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fraction {
    /// Numerator.
    pub numerator: i64,
    /// Denominator (100 when absent).
    pub denominator: Option<i64>,
}

/// `RequestRedirect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRequestRedirectFilter {
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// New host name.
    pub hostname: Option<String>,
    /// New path.
    pub path: Option<HttpPathModifier>,
    /// New port.
    pub port: Option<u32>,
    /// 301, 302 (default), 303, 307 or 308.
    pub status_code: Option<u16>,
}

/// `URLRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpUrlRewriteFilter {
    /// New host name (the `Host` header sent upstream).
    pub hostname: Option<String>,
    /// New path.
    pub path: Option<HttpPathModifier>,
}

/// `path` of `RequestRedirect` and `URLRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpPathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `ReplaceFullPath`.
    pub replace_full_path: Option<String>,
    /// For `ReplacePrefixMatch` (only after a `PathPrefix` match).
    pub replace_prefix_match: Option<String>,
}

/// `CORS` (GEP-1767).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpCorsFilter {
    /// Allowed origins (`*`, or `scheme://host[:port]` with a leading `*.` wildcard).
    pub allow_origins: Vec<String>,
    /// Allow credentials.
    pub allow_credentials: Option<bool>,
    /// Allowed methods (`*` allowed).
    pub allow_methods: Vec<String>,
    /// Allowed request headers (`*` allowed).
    pub allow_headers: Vec<String>,
    /// Exposed response headers.
    pub expose_headers: Vec<String>,
    /// Preflight cache seconds (5 when absent).
    pub max_age: Option<i64>,
}

/// A backend without a weight: `requestMirror.backendRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendObjectRef {
    /// API group (`""`: core, when absent).
    pub group: Option<String>,
    /// `Service` when absent.
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (the route's when absent; another one needs a ReferenceGrant).
    pub namespace: Option<String>,
    /// Service port (required for a Service).
    pub port: Option<u32>,
}

/// `rules[].backendRefs[]` of an HTTPRoute or GRPCRoute.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpBackendRef {
    /// API group (`""`: core, when absent).
    pub group: Option<String>,
    /// `Service` when absent.
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (the route's when absent; another one needs a ReferenceGrant).
    pub namespace: Option<String>,
    /// Service port (required for a Service).
    pub port: Option<u32>,
    /// Weight relative to the rule's other backends (1 when absent; 0 sends nothing).
    pub weight: Option<i64>,
    /// Filters applied to the requests sent to this backend.
    pub filters: Vec<HttpRouteFilter>,
}

/// `rules[].timeouts` (GEP-1742): Gateway API durations (`10s`, `500ms`, `1h`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteTimeouts {
    /// The whole request, retries included.
    pub request: Option<String>,
    /// Each request to a backend.
    pub backend_request: Option<String>,
}

/// `rules[].retry` (GEP-1731).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteRetry {
    /// HTTP status codes that are retried.
    pub codes: Vec<u16>,
    /// Retries after the first try.
    pub attempts: Option<i64>,
    /// Base backoff (a Gateway API duration).
    pub backoff: Option<String>,
}

/// `GRPCRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRoute {
    /// Where the route attaches.
    pub parent_refs: Vec<ParentRef>,
    /// Host names; none means all the parent allows.
    pub hostnames: Vec<String>,
    /// Rules.
    pub rules: Vec<GrpcRouteRule>,
}

/// `GRPCRoute.spec.rules[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteRule {
    /// Name (GEP-995).
    pub name: Option<String>,
    /// Matches (ORed); every request when empty.
    pub matches: Vec<GrpcRouteMatch>,
    /// Filters (no redirect or rewrite for gRPC).
    pub filters: Vec<HttpRouteFilter>,
    /// Backends, weighted.
    pub backend_refs: Vec<HttpBackendRef>,
    /// Session persistence (not supported by meshwork).
    pub session_persistence: Option<IgnoredAny>,
}

/// `GRPCRoute.spec.rules[].matches[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteMatch {
    /// Service and method.
    pub method: Option<GrpcMethodMatch>,
    /// Header conditions (ANDed).
    pub headers: Vec<HttpHeaderMatch>,
}

/// `matches[].method` of a GRPCRoute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Fully qualified service (`helloworld.Greeter`); any when absent.
    pub service: Option<String>,
    /// Method (`SayHello`); any when absent.
    pub method: Option<String>,
}

/// `ReferenceGrant.spec`: lets objects in other namespaces refer to objects in this one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrant {
    /// Who may refer (group, kind, namespace).
    pub from: Vec<ReferenceGrantFrom>,
    /// What may be referred to (group, kind, optionally one name).
    pub to: Vec<ReferenceGrantTo>,
}

/// `ReferenceGrant.spec.from[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantFrom {
    /// API group of the referring kind.
    pub group: String,
    /// Referring kind (`HTTPRoute`, `Gateway`, ...).
    pub kind: String,
    /// Namespace of the referring objects.
    pub namespace: String,
}

/// `ReferenceGrant.spec.to[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantTo {
    /// API group of the referred kind (`""`: core).
    pub group: String,
    /// Referred kind (`Service`, `Secret`).
    pub kind: String,
    /// One object by name; all of the kind when absent.
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selector_expressions() {
        let labels: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let sel = |op: &str, values: &[&str]| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        };
        assert!(sel("In", &["prod", "dev"]).matches(&labels));
        assert!(!sel("NotIn", &["prod"]).matches(&labels));
        assert!(sel("Exists", &[]).matches(&labels));
        assert!(!sel("DoesNotExist", &[]).matches(&labels));
        assert!(!sel("Bogus", &[]).matches(&labels), "an unknown operator selects nothing");
        assert!(LabelSelector::default().matches(&labels), "empty selects everything");
    }
}
