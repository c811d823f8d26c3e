//! Compile validated resources into a [`mesh_core::Snapshot`].
//!
//! Done once per configuration change: hosts are qualified (`reviews` in namespace `bookinfo`
//! becomes `reviews.bookinfo.svc.cluster.local`), regexes compiled, weights turned into cumulative
//! tables, durations parsed, defaults filled in the way Istio fills them, and VirtualService rules
//! split per binding (the mesh, or each Gateway) honouring `match[].gateways`.
//!
//! A VirtualService bound to a Gateway serves, on that Gateway, only those of its hosts that a
//! server of the Gateway exposes to the VirtualService's namespace (`prod/*.example.com` exposes
//! `*.example.com` to VirtualServices of `prod`; `*/` or no prefix, to every namespace), and each
//! under the narrower of the two names: `hosts: ["*"]` behind a server host `*.example.com` routes
//! `*.example.com` (Istio's `pickMatchingGatewayHosts`). A host no server exposes is left out with
//! a warning (Istio's analyzer: IST0132). Istio builds a Gateway's routes per port: a host exposed
//! on some of the Gateway's ports only gets its rules with `port` conditions for those ports (the
//! listener's port, `mesh_tower::Listener`).
//!
//! Resources are expected to have passed [`crate::validate()`]; anything that still cannot be
//! compiled is left out with a diagnostic, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mesh_core::Snapshot;
use mesh_core::host::qualify;
use mesh_core::l4;
use mesh_core::matcher::{Re2, StringMatcher};
use mesh_core::policy::{self, DestinationPolicy, LabelSelector};
use mesh_core::route::{self, HttpRule, RetryOn, RetryPolicy, RouteAction, RuleOrigin};
use mesh_core::service;
use mesh_core::snapshot::{Binding, Settings, SnapshotBuilder};

use crate::diag::{Diagnostic, Severity};
use crate::duration::parse_duration;
use crate::types::destination_rule as dr;
use crate::types::gateway as gw;
use crate::types::service_entry as se;
use crate::types::virtual_service as vs;
use crate::types::{Resource, Spec};

/// Compile options.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Cluster domain for short names.
    pub domain: String,
    /// Compile the view of clients in this namespace: VirtualServices, DestinationRules and
    /// ServiceEntries whose `exportTo` does not include it are left out, as Istio leaves them out
    /// of that namespace's proxies (`.` is the resource's own namespace, `*` every namespace,
    /// `~` none; no `exportTo` is every namespace;
    /// <https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService-export_to>).
    /// A DestinationRule with a `workloadSelector` is never seen outside its namespace (Istio's
    /// `setDestinationRules`). `None` (the default): one snapshot for every namespace, `exportTo`
    /// not applied.
    pub client_namespace: Option<String>,
    /// Leave 503 out of Istio's default retry policy (default `true`, as Istio's
    /// `EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`); see
    /// [`mesh_core::snapshot::Settings::exclude_503_from_default_retries`].
    pub exclude_503_from_default_retries: bool,
    /// What the mesh does with a host nothing declares (Istio's meshConfig
    /// `outboundTrafficPolicy.mode`, default `ALLOW_ANY`); see
    /// [`mesh_core::snapshot::OutboundTrafficPolicy`].
    pub outbound_traffic_policy: mesh_core::snapshot::OutboundTrafficPolicy,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            domain: mesh_core::host::DEFAULT_DOMAIN.to_string(),
            client_namespace: None,
            exclude_503_from_default_retries: true,
            outbound_traffic_policy: mesh_core::snapshot::OutboundTrafficPolicy::AllowAny,
        }
    }
}

impl CompileOptions {
    /// The view of clients in `namespace` (see [`CompileOptions::client_namespace`]).
    ///
    /// ```
    /// let options = mesh_config::CompileOptions::for_namespace("bookinfo");
    /// assert_eq!(options.client_namespace.as_deref(), Some("bookinfo"));
    /// ```
    pub fn for_namespace(namespace: &str) -> Self {
        CompileOptions { client_namespace: Some(namespace.to_string()), ..CompileOptions::default() }
    }

    /// Is a resource of `namespace` with `export_to` visible to the client namespace?
    fn visible(&self, namespace: &str, export_to: &[String]) -> bool {
        self.client_namespace.as_deref().is_none_or(|client| exported_to(namespace, export_to, client))
    }
}

/// The result of a compile.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Conflicts and anything left out.
    pub diagnostics: Vec<Diagnostic>,
}

/// Compile resources, in order (earlier VirtualServices win host conflicts under the mesh, as the
/// oldest does in Istio).
pub fn compile(resources: &[Resource], options: &CompileOptions) -> Compiled {
    let settings = Settings {
        domain: Arc::from(options.domain.as_str()),
        exclude_503_from_default_retries: options.exclude_503_from_default_retries,
        outbound_traffic_policy: options.outbound_traffic_policy,
    };
    let default_retries = settings.default_retries();
    let mut builder = SnapshotBuilder::new(settings);
    let mut diagnostics = Vec::new();
    // Gateway server hosts first: VirtualServices bound to a Gateway are filtered by them, in
    // whatever order the files list the two.
    let mut gateway_hosts = GatewayHosts::default();
    let empty = Delegates::default();
    for r in resources {
        if let Spec::Gateway(g) = &r.spec {
            let mut scratch = Vec::new();
            let decl = Ctx {
                r,
                domain: &options.domain,
                default_retries: &default_retries,
                diagnostics: &mut scratch,
                gateways: &gateway_hosts,
                delegates: &empty,
            }
            .gateway(g);
            let hosts = decl
                .servers
                .iter()
                .flat_map(|s| s.hosts.iter().map(move |(ns, h)| (ns.clone(), h.clone(), s.port)))
                .collect();
            gateway_hosts.insert(Binding::Gateway { namespace: decl.namespace, name: decl.name }, hosts);
        }
    }
    // Delegate VirtualServices (no hosts), by namespace and name, for the roots that name them.
    let delegates: Delegates<'_> = resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::VirtualService(v) if v.hosts.is_empty() => Some(((&*r.namespace, &*r.name), (r, v))),
            _ => None,
        })
        .collect();
    for r in resources {
        let export_to = match &r.spec {
            Spec::VirtualService(v) => &v.export_to[..],
            Spec::DestinationRule(d) => &d.export_to[..],
            Spec::ServiceEntry(s) => &s.export_to[..],
            Spec::Gateway(_) | Spec::WorkloadEntry(_) => &[],
        };
        if !options.visible(&r.namespace, export_to) {
            continue;
        }
        let mut c = Ctx {
            r,
            domain: &options.domain,
            default_retries: &default_retries,
            diagnostics: &mut diagnostics,
            gateways: &gateway_hosts,
            delegates: &delegates,
        };
        match &r.spec {
            Spec::VirtualService(v) => c.virtual_service(&mut builder, v),
            Spec::DestinationRule(d) => builder.add_destination_rule(c.destination_rule(d)),
            Spec::Gateway(g) => builder.add_gateway(c.gateway(g)),
            Spec::ServiceEntry(s) => builder.add_service(c.service_entry(s)),
            Spec::WorkloadEntry(w) => builder.add_workload(service::WorkloadDecl {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                endpoint: endpoint(w),
            }),
        }
    }
    Compiled { snapshot: builder.build(), diagnostics }
}

/// Each Gateway's server hosts, as `(namespace or "*", host, port)`.
type GatewayHosts = std::collections::HashMap<Binding, Vec<(Arc<str>, Arc<str>, u16)>>;

/// Delegate VirtualServices by `(namespace, name)`.
type Delegates<'r> = std::collections::HashMap<(&'r str, &'r str), (&'r Resource, &'r vs::VirtualService)>;

struct Ctx<'a> {
    r: &'a Resource,
    domain: &'a str,
    /// The retry policy of routes that set none (Istio's default, by the options).
    default_retries: &'a RetryPolicy,
    diagnostics: &'a mut Vec<Diagnostic>,
    gateways: &'a GatewayHosts,
    delegates: &'a Delegates<'a>,
}

/// Is a resource of `namespace` with `export_to` visible from namespace `to`?
fn exported_to(namespace: &str, export_to: &[String], to: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_str() {
            "*" => true,
            "~" => false,
            "." => namespace == to,
            other => other == to,
        })
}

/// The names under which a VirtualService host of `namespace` is served by a Gateway whose
/// servers expose `server_hosts` (see the module docs), each with the ports it is served on, or
/// `None` for every port of the Gateway; empty when no server exposes it.
fn gateway_virtual_hosts(
    host: &str,
    namespace: &str,
    server_hosts: &[(Arc<str>, Arc<str>, u16)],
) -> Vec<(Arc<str>, Option<Vec<u16>>)> {
    let mut out: Vec<(Arc<str>, Vec<u16>)> = Vec::new();
    for (ns, server_host, port) in server_hosts {
        if &**ns != "*" && &**ns != namespace {
            continue;
        }
        if !mesh_core::host::hosts_overlap(server_host, host) {
            continue;
        }
        let name: Arc<str> =
            if mesh_core::host::is_subset_of(host, server_host) { Arc::from(host) } else { server_host.clone() };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, ports)) if !ports.contains(port) => ports.push(*port),
            Some(_) => {}
            None => out.push((name, vec![*port])),
        }
    }
    let mut all: Vec<u16> = server_hosts.iter().map(|(_, _, p)| *p).collect();
    all.sort_unstable();
    all.dedup();
    out.into_iter()
        .map(|(name, mut ports)| {
            ports.sort_unstable();
            let restrict = ports != all;
            (name, restrict.then_some(ports))
        })
        .collect()
}

/// A rule's matches (with their `match[]` index; none for a rule without conditions) restricted
/// to the listener `ports` (Istio builds a Gateway's routes per port, from the servers on that
/// port): a match without a port is repeated per port, a match for another port dropped. `None`
/// when nothing is left.
fn restrict_to_ports(
    matches: Vec<(usize, vs::HttpMatchRequest)>,
    ports: &[u16],
) -> Option<Vec<(usize, vs::HttpMatchRequest)>> {
    let matches = if matches.is_empty() { vec![(0, vs::HttpMatchRequest::default())] } else { matches };
    let mut out = Vec::new();
    for (j, m) in matches {
        match m.port.filter(|p| *p > 0) {
            Some(p) if ports.iter().any(|q| u32::from(*q) == p) => out.push((j, m)),
            Some(_) => {}
            None => {
                for p in ports {
                    out.push((j, vs::HttpMatchRequest { port: Some(u32::from(*p)), ..m.clone() }));
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn arc(s: &str) -> Arc<str> {
    Arc::from(s)
}

fn opt_arc(s: &Option<String>) -> Option<Arc<str>> {
    s.as_deref().filter(|v| !v.is_empty()).map(arc)
}

fn duration(s: &Option<String>) -> Option<Duration> {
    s.as_deref().and_then(|t| parse_duration(t).ok())
}

fn port16(p: u32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p != 0)
}

fn percentage(p: &Option<vs::Percent>, deprecated: Option<i64>) -> route::Percentage {
    match (p, deprecated) {
        (Some(p), _) => route::Percentage(p.value.clamp(0.0, 100.0)),
        (None, Some(d)) => route::Percentage((d as f64).clamp(0.0, 100.0)),
        (None, None) => route::Percentage::ALL,
    }
}

/// Resolve a gateway reference written in a VirtualService of `namespace`, as Istio does:
/// `mesh`, `ns/name` (`./name` = own namespace), legacy `name.ns[.svc.domain]`, or `name`.
pub fn resolve_gateway(reference: &str, namespace: &str) -> Binding {
    if reference == "mesh" {
        return Binding::Mesh;
    }
    if let Some((ns, name)) = reference.split_once('/') {
        let ns = if ns == "." { namespace } else { ns };
        return Binding::gateway(ns, name);
    }
    let mut parts = reference.split('.');
    match (parts.next(), parts.next()) {
        (Some(name), Some(ns)) => Binding::gateway(ns, name),
        _ => Binding::gateway(namespace, reference),
    }
}

impl Ctx<'_> {
    fn note(&mut self, severity: Severity, path: String, message: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            code: None,
            file: self.r.file.clone(),
            line: self.r.line,
            resource: Some(self.r.id()),
            path,
            message,
        });
    }

    fn host(&self, h: &str) -> Arc<str> {
        Arc::from(qualify(h, &self.r.namespace, self.domain))
    }

    fn destination(&self, d: &vs::Destination) -> route::Destination {
        route::Destination {
            host: self.host(&d.host),
            subset: opt_arc(&d.subset),
            port: d.port.as_ref().and_then(|p| port16(p.number)),
        }
    }

    fn string_match(&mut self, m: &vs::StringMatch, path: &str) -> Option<StringMatcher> {
        if let Some(e) = &m.exact {
            return Some(StringMatcher::Exact(arc(e)));
        }
        if let Some(p) = &m.prefix {
            return Some(StringMatcher::Prefix(arc(p)));
        }
        if let Some(re) = &m.regex {
            return match Re2::new(re) {
                Ok(re) => Some(StringMatcher::Regex(re)),
                Err(e) => {
                    self.note(Severity::Error, path.to_string(), e.to_string());
                    None
                }
            };
        }
        None
    }

    fn conditions(
        &mut self,
        map: &BTreeMap<String, Option<vs::StringMatch>>,
        lowercase: bool,
        star_means_present: bool,
        path: &str,
    ) -> Box<[(Arc<str>, route::HeaderCondition)]> {
        let mut out = Vec::new();
        for (name, m) in map {
            let Some(m) = m else { continue };
            let key = if lowercase { name.to_ascii_lowercase() } else { name.clone() };
            let cond = if star_means_present && m.regex.as_deref() == Some("*") {
                route::HeaderCondition::Present
            } else {
                match self.string_match(m, &format!("{path}.{name}")) {
                    Some(sm) => route::HeaderCondition::Match(sm),
                    None => route::HeaderCondition::Present,
                }
            };
            out.push((arc(&key), cond));
        }
        out.into_boxed_slice()
    }

    fn request_match(&mut self, index: usize, m: &vs::HttpMatchRequest, path: &str) -> route::RequestMatch {
        let uri = m.uri.as_ref().and_then(|u| self.string_match(u, &format!("{path}.uri")));
        let scheme = m.scheme.as_ref().and_then(|u| self.string_match(u, &format!("{path}.scheme")));
        let method = m.method.as_ref().and_then(|u| self.string_match(u, &format!("{path}.method")));
        let authority = m.authority.as_ref().and_then(|u| self.string_match(u, &format!("{path}.authority")));
        route::RequestMatch {
            index,
            name: opt_arc(&m.name),
            uri,
            scheme,
            method,
            authority,
            headers: self.conditions(&m.headers, true, false, &format!("{path}.headers")),
            without_headers: self.conditions(&m.without_headers, true, true, &format!("{path}.withoutHeaders")),
            query_params: self.conditions(&m.query_params, false, false, &format!("{path}.queryParams")),
            ignore_uri_case: m.ignore_uri_case,
            port: m.port.and_then(port16),
            source_labels: m.source_labels.iter().map(|(k, v)| (arc(k), arc(v))).collect(),
            source_namespace: opt_arc(&m.source_namespace),
        }
    }

    /// Header edits; values are read as Envoy reads them (`%%` is `%`, `%VARIABLES%` are
    /// expanded per request: [`mesh_core::header_format`]).
    fn header_ops(ops: &Option<vs::HeaderOperations>) -> route::HeaderOps {
        let Some(ops) = ops else { return route::HeaderOps::default() };
        let name = |n: &str| http::HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok();
        let mut formatted = Vec::new();
        let mut pairs = |m: &BTreeMap<String, String>, append: bool| -> Box<[(http::HeaderName, http::HeaderValue)]> {
            let mut literal = Vec::new();
            for (k, v) in m {
                let Some(n) = name(k) else { continue };
                match mesh_core::header_format::parse(v) {
                    mesh_core::header_format::ParsedValue::Literal(l) => {
                        if let Ok(value) = http::HeaderValue::from_str(&l) {
                            literal.push((n, value));
                        }
                    }
                    mesh_core::header_format::ParsedValue::Format(format) => {
                        formatted.push(route::FormattedHeader { name: n, format, append });
                    }
                }
            }
            literal.into_boxed_slice()
        };
        let set = pairs(&ops.set, false);
        let add = pairs(&ops.add, true);
        route::HeaderOps {
            set,
            add,
            remove: ops.remove.iter().filter_map(|k| name(k)).collect(),
            formatted: formatted.into_boxed_slice(),
        }
    }

    fn header_edits(h: &Option<vs::Headers>) -> route::HeaderEdits {
        match h {
            None => route::HeaderEdits::default(),
            Some(h) => {
                route::HeaderEdits { request: Self::header_ops(&h.request), response: Self::header_ops(&h.response) }
            }
        }
    }

    /// Istio's `ConvertPolicy` (`pilot/pkg/networking/core/route/retry/retry.go`): no policy is
    /// the default one; `attempts <= 0` disables retries; otherwise the default with the fields
    /// the route sets (`retryOn` replaces the conditions and status codes when given).
    fn retries(&self, r: &Option<vs::HttpRetry>) -> RetryPolicy {
        let Some(r) = r else {
            return self.default_retries.clone();
        };
        if r.attempts <= 0 {
            return RetryPolicy::disabled();
        }
        let retry_on = match r.retry_on.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => RetryOn::parse(text).unwrap_or_else(|_| self.default_retries.retry_on.clone()),
            None => self.default_retries.retry_on.clone(),
        };
        RetryPolicy {
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            per_try_timeout: duration(&r.per_try_timeout),
            retry_on,
            backoff: duration(&r.backoff),
            configured: true,
        }
    }

    fn fault(f: &Option<vs::HttpFaultInjection>) -> Option<route::Fault> {
        let f = f.as_ref()?;
        let delay = f.delay.as_ref().and_then(|d| {
            let fixed = duration(&d.fixed_delay)?;
            Some((fixed, percentage(&d.percentage, d.percent.map(i64::from))))
        });
        let abort = f.abort.as_ref().and_then(|a| {
            let status = match (&a.grpc_status, a.http_status) {
                (Some(g), _) => route::AbortStatus::Grpc(arc(g)),
                (None, Some(h)) => route::AbortStatus::Http(u16::try_from(h).ok()?),
                (None, None) => return None,
            };
            Some((status, percentage(&a.percentage, None)))
        });
        if delay.is_none() && abort.is_none() {
            return None;
        }
        Some(route::Fault { delay, abort })
    }

    fn cors(c: &Option<vs::CorsPolicy>, this: &mut Self, path: &str) -> Option<Arc<route::CorsPolicy>> {
        let c = c.as_ref()?;
        let mut origins: Vec<StringMatcher> =
            c.allow_origins.iter().filter_map(|o| this.string_match(o, &format!("{path}.allowOrigins"))).collect();
        origins.extend(c.allow_origin.iter().map(|o| StringMatcher::Exact(arc(o))));
        let list = |v: &Vec<String>| -> Box<[Arc<str>]> { v.iter().map(|s| arc(s)).collect() };
        Some(Arc::new(route::CorsPolicy {
            allow_origins: origins.into_boxed_slice(),
            allow_methods: list(&c.allow_methods),
            allow_headers: list(&c.allow_headers),
            expose_headers: list(&c.expose_headers),
            max_age: duration(&c.max_age),
            allow_credentials: c.allow_credentials,
            forward_unmatched_preflights: c.unmatched_preflights != Some(vs::UnmatchedPreflights::IGNORE),
        }))
    }

    fn action(&mut self, h: &vs::HttpRoute) -> RouteAction {
        if let Some(r) = &h.redirect {
            let port = match (r.port, r.derive_port) {
                (Some(p), _) => port16(p).map_or(route::RedirectPort::Keep, route::RedirectPort::Fixed),
                (None, Some(vs::RedirectPortSelection::FROM_PROTOCOL_DEFAULT)) => {
                    route::RedirectPort::FromProtocolDefault
                }
                (None, Some(vs::RedirectPortSelection::FROM_REQUEST_PORT)) => route::RedirectPort::FromRequestPort,
                (None, None) => route::RedirectPort::Keep,
            };
            return RouteAction::Redirect(route::Redirect {
                uri: opt_arc(&r.uri),
                prefix_rewrite: opt_arc(&r.prefix_rewrite),
                authority: opt_arc(&r.authority),
                scheme: opt_arc(&r.scheme),
                port,
                code: r.redirect_code.and_then(|c| u16::try_from(c).ok()).filter(|c| *c != 0).unwrap_or(301),
            });
        }
        if let Some(d) = &h.direct_response {
            let body = d.body.as_ref().and_then(|b| match (&b.string, &b.bytes) {
                (Some(s), _) => Some(Arc::<[u8]>::from(s.as_bytes())),
                (None, Some(b64)) => decode_base64(b64).map(Arc::<[u8]>::from),
                (None, None) => None,
            });
            return RouteAction::DirectResponse(route::DirectResponse {
                status: u16::try_from(d.status).unwrap_or(500),
                body,
            });
        }
        if let Some(d) = &h.delegate {
            let ns = d.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.r.namespace);
            return RouteAction::Delegate { namespace: arc(ns), name: arc(&d.name) };
        }
        let destinations = h
            .route
            .iter()
            .filter_map(|rd| {
                let dest = rd.destination.as_ref()?;
                Some(route::RouteDestination {
                    destination: self.destination(dest),
                    weight: u32::try_from(rd.weight).unwrap_or(0),
                    headers: Self::header_edits(&rd.headers),
                })
            })
            .collect();
        RouteAction::Route(route::WeightedDestinations::new(destinations))
    }

    fn http_rule(&mut self, index: usize, h: &vs::HttpRoute, matches: Vec<route::RequestMatch>) -> HttpRule {
        let path = format!("http[{index}]");
        let mut mirrors: Vec<route::Mirror> = Vec::new();
        if let Some(m) = &h.mirror {
            let deprecated = h.mirror_percent.or(h.mirror_percent_proto).map(i64::from);
            mirrors.push(route::Mirror {
                destination: self.destination(m),
                percentage: percentage(&h.mirror_percentage, deprecated),
            });
        }
        for m in &h.mirrors {
            if let Some(d) = &m.destination {
                mirrors.push(route::Mirror {
                    destination: self.destination(d),
                    percentage: percentage(&m.percentage, None),
                });
            }
        }
        let rewrite = h.rewrite.as_ref().map(|rw| route::Rewrite {
            uri: opt_arc(&rw.uri),
            uri_regex: rw
                .uri_regex_rewrite
                .as_ref()
                .and_then(|rr| route::RegexRewrite::new(&rr.pattern, &rr.rewrite).ok()),
            authority: opt_arc(&rw.authority),
        });
        let cors = Self::cors(&h.cors_policy, self, &format!("{path}.corsPolicy"));
        HttpRule {
            origin: RuleOrigin { namespace: self.r.namespace.clone(), name: self.r.name.clone(), index },
            name: opt_arc(&h.name),
            matches: matches.into_boxed_slice(),
            action: self.action(h),
            rewrite,
            timeout: duration(&h.timeout).filter(|d| !d.is_zero()),
            retries: self.retries(&h.retries),
            fault: Self::fault(&h.fault),
            mirrors: mirrors.into_boxed_slice(),
            cors,
            headers: Self::header_edits(&h.headers),
        }
    }

    fn virtual_service(&mut self, builder: &mut SnapshotBuilder, v: &vs::VirtualService) {
        if v.hosts.is_empty() {
            // A delegate: reachable only through a root VirtualService's `delegate`.
            return;
        }
        let ns = self.r.namespace.to_string();
        let own: Vec<Binding> = if v.gateways.is_empty() {
            vec![Binding::Mesh]
        } else {
            v.gateways.iter().map(|g| resolve_gateway(g, &ns)).collect()
        };
        // Rules with their `http[]` index; a rule that delegates is replaced by the delegate's
        // rules merged with it (see `crate::delegate`).
        let mut http: Vec<(usize, std::borrow::Cow<'_, vs::HttpRoute>)> = Vec::new();
        for (i, h) in v.http.iter().enumerate() {
            match &h.delegate {
                None => http.push((i, std::borrow::Cow::Borrowed(h))),
                Some(d) => {
                    let dns = d.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(&ns).to_string();
                    match self.delegates.get(&(dns.as_str(), d.name.as_str())) {
                        Some((dr, dv)) if exported_to(&dr.namespace, &dv.export_to, &ns) => {
                            let merged = crate::delegate::merge_routes(h, dv, &dr.namespace, self.domain);
                            http.extend(merged.into_iter().map(|m| (i, std::borrow::Cow::Owned(m))));
                        }
                        _ => self.note(
                            Severity::Warning,
                            format!("http[{i}].delegate"),
                            format!(
                                "VirtualService {dns}/{} is not a delegate visible to namespace {ns} (it must exist, have no hosts, and be exported here); as in Istio, this rule is left out",
                                d.name
                            ),
                        ),
                    }
                }
            }
        }
        let mut bindings = own.clone();
        for (_, h) in &http {
            for m in &h.matches {
                for g in &m.gateways {
                    let b = resolve_gateway(g, &ns);
                    if !bindings.contains(&b) {
                        bindings.push(b);
                    }
                }
            }
        }
        if !v.tcp.is_empty() || !v.tls.is_empty() {
            builder.add_l4_virtual_service(self.l4_virtual_service(v, &own, &ns));
        }
        let owner = format!("{}/{}", self.r.namespace, self.r.name);
        for binding in bindings {
            let rules = self.binding_rules(&http, &binding, &own, &ns, None);
            // Rules restricted to some of a Gateway's ports, per port set.
            let mut restricted: Vec<(Vec<u16>, Vec<Arc<HttpRule>>)> = Vec::new();
            for (i, host) in v.hosts.iter().enumerate() {
                let host = self.host(host);
                let names: Vec<(Arc<str>, Option<Vec<u16>>)> = match self.gateways.get(&binding) {
                    Some(server_hosts) => {
                        let names = gateway_virtual_hosts(&host, &self.r.namespace, server_hosts);
                        if names.is_empty() {
                            self.note(
                                Severity::Warning,
                                format!("hosts[{i}]"),
                                format!(
                                    "host {host} is not among the hosts Gateway {binding} exposes to namespace {}; that gateway does not serve it",
                                    self.r.namespace
                                ),
                            );
                        }
                        names
                    }
                    // The mesh, or a Gateway this config does not define (a library user may
                    // route as a gateway without one): the host as written.
                    None => vec![(host.clone(), None)],
                };
                for (name, ports) in names {
                    match ports {
                        None => self.bind(builder, &binding, &name, &owner, &rules),
                        Some(ports) => {
                            if !restricted.iter().any(|(p, _)| *p == ports) {
                                let r = self.binding_rules(&http, &binding, &own, &ns, Some(&ports));
                                restricted.push((ports.clone(), r));
                            }
                            if let Some((_, r)) = restricted.iter().find(|(p, _)| *p == ports) {
                                let r = r.clone();
                                self.bind(builder, &binding, &name, &owner, &r);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The `tcp[]` and `tls[]` rules of a VirtualService (see [`mesh_core::l4`]).
    fn l4_virtual_service(&self, v: &vs::VirtualService, own: &[Binding], ns: &str) -> l4::L4VirtualService {
        let rule = |index: usize, matches: Vec<l4::L4Match>, route: &[vs::RouteDestination]| l4::L4Rule {
            index,
            matches: matches.into_boxed_slice(),
            destinations: route::WeightedDestinations::new(
                route
                    .iter()
                    .filter_map(|rd| {
                        Some(route::RouteDestination {
                            destination: self.destination(rd.destination.as_ref()?),
                            weight: u32::try_from(rd.weight).unwrap_or(0),
                            headers: route::HeaderEdits::default(),
                        })
                    })
                    .collect(),
            ),
        };
        // A `tls[]` match is an L4 match with SNI names (Istio's `convertTLSMatchToL4Match`).
        let l4_match = |port: Option<u32>, gateways: &[String], sni_hosts: &[String]| l4::L4Match {
            port: port.and_then(port16).filter(|p| *p != 0),
            gateways: gateways.iter().map(|g| resolve_gateway(g, ns)).collect(),
            sni_hosts: sni_hosts.iter().map(|h| self.host(h)).collect(),
        };
        let tcp = (v.tcp.iter().enumerate())
            .map(|(i, t)| {
                let matches = t.matches.iter().map(|m| l4_match(m.port, &m.gateways, &[])).collect();
                rule(i, matches, &t.route)
            })
            .collect();
        let tls = (v.tls.iter().enumerate())
            .map(|(i, t)| {
                let matches = t.matches.iter().map(|m| l4_match(m.port, &m.gateways, &m.sni_hosts)).collect();
                rule(i, matches, &t.route)
            })
            .collect();
        l4::L4VirtualService {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            hosts: v.hosts.iter().map(|h| self.host(h)).collect(),
            gateways: own.to_vec().into_boxed_slice(),
            tcp,
            tls,
        }
    }

    /// The compiled rules of `http` that apply under `binding` (restricted to listener `ports`
    /// when given).
    fn binding_rules(
        &mut self,
        http: &[(usize, std::borrow::Cow<'_, vs::HttpRoute>)],
        binding: &Binding,
        own: &[Binding],
        ns: &str,
        ports: Option<&[u16]>,
    ) -> Vec<Arc<HttpRule>> {
        let mut rules = Vec::new();
        for (i, h) in http {
            let (i, h) = (*i, &**h);
            let applies = |m: &vs::HttpMatchRequest| {
                if m.gateways.is_empty() {
                    own.contains(binding)
                } else {
                    m.gateways.iter().any(|g| resolve_gateway(g, ns) == *binding)
                }
            };
            let kept: Vec<(usize, vs::HttpMatchRequest)> = if h.matches.is_empty() {
                if !own.contains(binding) {
                    continue;
                }
                Vec::new()
            } else {
                let kept: Vec<(usize, vs::HttpMatchRequest)> =
                    h.matches.iter().enumerate().filter(|(_, m)| applies(m)).map(|(j, m)| (j, m.clone())).collect();
                if kept.is_empty() {
                    continue;
                }
                kept
            };
            let kept = match ports {
                None => kept,
                Some(ports) => match restrict_to_ports(kept, ports) {
                    Some(restricted) => restricted,
                    None => continue,
                },
            };
            let matches =
                kept.iter().map(|(j, m)| self.request_match(*j, m, &format!("http[{i}].match[{j}]"))).collect();
            rules.push(Arc::new(self.http_rule(i, h, matches)));
        }
        rules
    }

    fn bind(
        &mut self,
        builder: &mut SnapshotBuilder,
        binding: &Binding,
        host: &str,
        owner: &str,
        rules: &[Arc<HttpRule>],
    ) {
        if let Err(conflict) = builder.add_routes(binding.clone(), host, owner, rules.to_vec()) {
            self.note(
                Severity::Warning,
                "hosts".to_string(),
                format!(
                    "host {} is already routed by VirtualService {} for the mesh; as in Istio, only the first one applies",
                    conflict.host, conflict.kept
                ),
            );
        }
    }

    fn destination_rule(&mut self, d: &dr::DestinationRule) -> DestinationPolicy {
        DestinationPolicy {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            host: self.host(&d.host),
            traffic_policy: d.traffic_policy.as_ref().map(traffic_policy).unwrap_or_default(),
            subsets: d
                .subsets
                .iter()
                .map(|s| policy::Subset {
                    name: arc(&s.name),
                    labels: LabelSelector::new(&s.labels),
                    traffic_policy: s.traffic_policy.as_ref().map(traffic_policy),
                })
                .collect(),
            workload_selector: d.workload_selector.as_ref().map(|w| LabelSelector::new(&w.match_labels)),
        }
    }

    fn gateway(&mut self, g: &gw::Gateway) -> service::GatewayDecl {
        let servers = g
            .servers
            .iter()
            .filter_map(|s| {
                let port = s.port.as_ref()?;
                Some(service::GatewayServer {
                    port: u16::try_from(port.number).ok()?,
                    port_name: arc(&port.name),
                    protocol: arc(&port.protocol.to_ascii_uppercase()),
                    hosts: s
                        .hosts
                        .iter()
                        .map(|h| match h.split_once('/') {
                            Some((ns, host)) => {
                                let ns = if ns == "." { &*self.r.namespace } else { ns };
                                (arc(ns), arc(&host.to_ascii_lowercase()))
                            }
                            None => (arc("*"), arc(&h.to_ascii_lowercase())),
                        })
                        .collect(),
                    tls: s.tls.as_ref().map(|t| service::ServerTls {
                        https_redirect: t.https_redirect == Some(true),
                        mode: t.mode.map(|m| arc(&format!("{m:?}"))),
                        server_certificate: opt_arc(&t.server_certificate),
                        private_key: opt_arc(&t.private_key),
                        ca_certificates: opt_arc(&t.ca_certificates),
                        subject_alt_names: t.subject_alt_names.iter().map(|s| arc(s)).collect(),
                    }),
                })
            })
            .collect();
        service::GatewayDecl {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            servers,
            selector: LabelSelector::new(&g.selector),
        }
    }

    fn service_entry(&mut self, s: &se::ServiceEntry) -> service::ServiceDecl {
        service::ServiceDecl {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            // Istio keeps a ServiceEntry's hosts as written (`convertServices`: `host.Name(h)`), so
            // `hosts: [mongo]` is the service `mongo`, not `mongo.<ns>.svc.<domain>` (istio/istio#13447).
            hosts: s.hosts.iter().map(|h| Arc::from(h.to_ascii_lowercase())).collect(),
            ports: s
                .ports
                .iter()
                .filter_map(|p| {
                    Some(service::ServicePort {
                        number: port16(p.number)?,
                        name: arc(&p.name),
                        protocol: arc(&p.protocol.as_deref().unwrap_or("").to_ascii_uppercase()),
                        target_port: p.target_port.and_then(port16),
                    })
                })
                .collect(),
            resolution: match s.resolution.unwrap_or(se::Resolution::NONE) {
                se::Resolution::NONE => service::Resolution::None,
                se::Resolution::STATIC => service::Resolution::Static,
                se::Resolution::DNS => service::Resolution::Dns,
                se::Resolution::DNS_ROUND_ROBIN => service::Resolution::DnsRoundRobin,
                se::Resolution::DYNAMIC_DNS => service::Resolution::DynamicDns,
            },
            mesh_internal: s.location == Some(se::Location::MESH_INTERNAL),
            endpoints: s.endpoints.iter().map(endpoint).collect(),
            workload_selector: s.workload_selector.as_ref().map(|w| LabelSelector::new(&w.labels)),
        }
    }
}

fn endpoint(w: &se::WorkloadEntry) -> service::EndpointDecl {
    service::EndpointDecl {
        address: arc(&w.address),
        ports: w.ports.iter().filter_map(|(k, v)| Some((arc(k), port16(*v)?))).collect(),
        labels: w.labels.iter().map(|(k, v)| (arc(k), arc(v))).collect(),
        weight: w.weight.filter(|w| *w > 0).unwrap_or(1),
        locality: opt_arc(&w.locality),
        network: opt_arc(&w.network),
    }
}

fn traffic_policy(tp: &dr::TrafficPolicy) -> policy::TrafficPolicy {
    policy::TrafficPolicy {
        parts: parts(
            tp.load_balancer.as_ref(),
            tp.connection_pool.as_ref(),
            tp.outlier_detection.as_ref(),
            tp.tls.as_ref(),
        ),
        port_level: tp
            .port_level_settings
            .iter()
            .filter_map(|p| {
                let port = port16(p.port.as_ref()?.number)?;
                Some((
                    port,
                    parts(
                        p.load_balancer.as_ref(),
                        p.connection_pool.as_ref(),
                        p.outlier_detection.as_ref(),
                        p.tls.as_ref(),
                    ),
                ))
            })
            .collect(),
        retry_budget: tp.retry_budget.as_ref().map(|b| policy::RetryBudget {
            percent: b.percent.unwrap_or(20.0),
            min_retry_concurrency: b.min_retry_concurrency.unwrap_or(3),
        }),
    }
}

fn parts(
    lb: Option<&dr::LoadBalancerSettings>,
    pool: Option<&dr::ConnectionPoolSettings>,
    outlier: Option<&dr::OutlierDetection>,
    tls: Option<&dr::ClientTlsSettings>,
) -> policy::PolicyParts {
    policy::PolicyParts {
        load_balancer: lb.and_then(load_balancer),
        connection_pool: pool.map(connection_pool),
        outlier_detection: outlier.map(outlier_detection),
        tls: tls.map(client_tls),
        locality: lb.and_then(|lb| lb.locality_lb_setting.as_ref()).map(|l| policy::LocalitySetting {
            enabled: l.enabled,
            failover: l.failover.iter().map(|f| (arc(&f.from), arc(&f.to))).collect(),
            unapplied_mode: !l.distribute.is_empty() || !l.failover_priority.is_empty(),
        }),
        warmup: lb.and_then(warmup),
    }
}

/// Slow start: `warmup` (Istio 1.26+), else `warmupDurationSecs`, with Istio's defaults
/// (minimum 10 %, aggression 1.0); only for round robin and least request, as Envoy offers it.
fn warmup(lb: &dr::LoadBalancerSettings) -> Option<policy::Warmup> {
    let slow_start = matches!(
        lb.simple,
        None | Some(
            dr::SimpleLb::ROUND_ROBIN
                | dr::SimpleLb::LEAST_REQUEST
                | dr::SimpleLb::LEAST_CONN
                | dr::SimpleLb::UNSPECIFIED
        )
    ) && lb.consistent_hash.is_none();
    let (duration, minimum_percent, aggression) = match (&lb.warmup, &lb.warmup_duration_secs) {
        (Some(w), _) => (duration(&w.duration)?, w.minimum_percent.unwrap_or(10.0), w.aggression.unwrap_or(1.0)),
        (None, Some(d)) => (duration(&Some(d.clone()))?, 10.0, 1.0),
        (None, None) => return None,
    };
    (slow_start && !duration.is_zero()).then_some(policy::Warmup { duration, minimum_percent, aggression })
}

fn load_balancer(lb: &dr::LoadBalancerSettings) -> Option<policy::LoadBalancer> {
    if let Some(ch) = &lb.consistent_hash {
        let key = if let Some(h) = &ch.http_header_name {
            policy::HashKey::Header(arc(&h.to_ascii_lowercase()))
        } else if let Some(c) = &ch.http_cookie {
            policy::HashKey::Cookie { name: arc(&c.name), path: opt_arc(&c.path), ttl: duration(&c.ttl) }
        } else if let Some(q) = &ch.http_query_parameter_name {
            policy::HashKey::QueryParameter(arc(q))
        } else {
            policy::HashKey::SourceIp
        };
        let algorithm = match (&ch.maglev, &ch.ring_hash) {
            (Some(m), _) => policy::HashAlgorithm::Maglev { table_size: m.table_size.unwrap_or(65537) },
            (None, Some(r)) => {
                policy::HashAlgorithm::RingHash { minimum_ring_size: r.minimum_ring_size.unwrap_or(1024) }
            }
            (None, None) => policy::HashAlgorithm::RingHash { minimum_ring_size: ch.minimum_ring_size.unwrap_or(1024) },
        };
        return Some(policy::LoadBalancer::ConsistentHash(policy::ConsistentHash { key, algorithm }));
    }
    lb.simple.map(|s| match s {
        dr::SimpleLb::ROUND_ROBIN => policy::LoadBalancer::RoundRobin,
        dr::SimpleLb::RANDOM => policy::LoadBalancer::Random,
        dr::SimpleLb::PASSTHROUGH => policy::LoadBalancer::Passthrough,
        dr::SimpleLb::UNSPECIFIED | dr::SimpleLb::LEAST_CONN | dr::SimpleLb::LEAST_REQUEST => {
            policy::LoadBalancer::LeastRequest
        }
    })
}

fn nonneg(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn connection_pool(p: &dr::ConnectionPoolSettings) -> policy::ConnectionPool {
    let tcp = p.tcp.as_ref();
    let http = p.http.as_ref();
    policy::ConnectionPool {
        max_connections: nonneg(tcp.and_then(|t| t.max_connections)),
        connect_timeout: tcp.and_then(|t| duration(&t.connect_timeout)),
        tcp_idle_timeout: tcp.and_then(|t| duration(&t.idle_timeout)),
        tcp_keepalive: tcp.and_then(|t| t.tcp_keepalive.as_ref()).map(|k| policy::TcpKeepalive {
            probes: k.probes.filter(|p| *p > 0),
            time: duration(&k.time),
            interval: duration(&k.interval),
        }),
        http1_max_pending_requests: nonneg(http.and_then(|h| h.http1_max_pending_requests)),
        http2_max_requests: nonneg(http.and_then(|h| h.http2_max_requests)),
        max_requests_per_connection: nonneg(http.and_then(|h| h.max_requests_per_connection)),
        max_retries: nonneg(http.and_then(|h| h.max_retries)),
        idle_timeout: http.and_then(|h| duration(&h.idle_timeout)),
        h2_upgrade: http.and_then(|h| h.h2_upgrade_policy) == Some(dr::H2UpgradePolicy::UPGRADE),
        use_client_protocol: http.and_then(|h| h.use_client_protocol) == Some(true),
    }
}

/// Istio's translation onto Envoy's outlier detection defaults: 5 consecutive 5xx (unless set,
/// 0 disables), gateway errors off unless set, interval 10 s, base ejection 30 s, at most 10 %
/// ejected, panic threshold (minHealthPercent) 0 %.
fn outlier_detection(o: &dr::OutlierDetection) -> policy::OutlierDetection {
    let consecutive_5xx = match (o.consecutive_5xx_errors, o.consecutive_errors) {
        (Some(v), _) => Some(v),
        (None, Some(v)) if v > 0 => u32::try_from(v).ok(),
        (None, _) => Some(5),
    }
    .filter(|v| *v > 0);
    policy::OutlierDetection {
        consecutive_5xx,
        consecutive_gateway: o.consecutive_gateway_errors.filter(|v| *v > 0),
        consecutive_local_origin: if o.split_external_local_origin_errors == Some(true) {
            Some(o.consecutive_local_origin_failures.unwrap_or(5)).filter(|v| *v > 0)
        } else {
            None
        },
        split_external_local_origin_errors: o.split_external_local_origin_errors == Some(true),
        interval: duration(&o.interval).unwrap_or(Duration::from_secs(10)),
        base_ejection_time: duration(&o.base_ejection_time).unwrap_or(Duration::from_secs(30)),
        max_ejection_percent: nonneg(o.max_ejection_percent).unwrap_or(10).min(100),
        min_health_percent: nonneg(o.min_health_percent).unwrap_or(0).min(100),
        http_error_codes: o.outlier_detection_http_error_codes.iter().filter_map(|c| u16::try_from(*c).ok()).collect(),
    }
}

fn client_tls(t: &dr::ClientTlsSettings) -> policy::ClientTls {
    policy::ClientTls {
        mode: match t.mode.unwrap_or(dr::ClientTlsMode::DISABLE) {
            dr::ClientTlsMode::DISABLE => policy::TlsMode::Disable,
            dr::ClientTlsMode::SIMPLE => policy::TlsMode::Simple,
            dr::ClientTlsMode::MUTUAL => policy::TlsMode::Mutual,
            dr::ClientTlsMode::ISTIO_MUTUAL => policy::TlsMode::IstioMutual,
        },
        client_certificate: opt_arc(&t.client_certificate),
        private_key: opt_arc(&t.private_key),
        ca_certificates: opt_arc(&t.ca_certificates),
        sni: opt_arc(&t.sni),
        subject_alt_names: t.subject_alt_names.iter().map(|s| arc(s)).collect(),
        insecure_skip_verify: t.insecure_skip_verify == Some(true),
    }
}

/// Standard base64 (with or without padding), for `directResponse.body.bytes`.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_references() {
        assert_eq!(resolve_gateway("mesh", "ns"), Binding::Mesh);
        assert_eq!(resolve_gateway("bookinfo-gateway", "bookinfo"), Binding::gateway("bookinfo", "bookinfo-gateway"));
        assert_eq!(resolve_gateway("istio-system/gw", "bookinfo"), Binding::gateway("istio-system", "gw"));
        assert_eq!(resolve_gateway("./gw", "bookinfo"), Binding::gateway("bookinfo", "gw"));
        assert_eq!(resolve_gateway("gw.istio-system.svc.cluster.local", "x"), Binding::gateway("istio-system", "gw"));
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("!!"), None);
    }
}
