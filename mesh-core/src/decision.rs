//! The whole answer to one request, decided once, as a plain value.
//!
//! [`Snapshot::decide`] takes the snapshot, the binding (the mesh or a Gateway), how the request
//! arrived ([`Listener`]: a Gateway port and the servers that admit the connection), the request
//! ([`RequestView`]), the client ([`ClientIdentity`]) and one uniform random draw, and returns a
//! [`Decision`]: either a [`Local`] answer (404 `NR`, a redirect, a direct response) or a
//! [`Forward`] (destination, weighted index, rewrite, the retry policy that applies, and the rule
//! whose timeout, fault, mirrors, CORS and header edits go with it). Every front end uses this
//! value and nothing else: the route layer of mesh-tower applies it, `mesh explain` prints it,
//! `mesh proxy` serves it (through the route layer). Nothing outside this module finishes a
//! routing decision.
//!
//! The steps, each as Istio and Envoy take them:
//!
//! 1. **Gateway admission.** A request on a Gateway listener is served only for hosts one of the
//!    listener's servers lists (`hosts`, namespace part ignored here; Istio has filtered the
//!    VirtualServices by it at compile time): Envoy's route configuration for that port has no
//!    virtual host for any other name and answers 404 with flag `NR`. A TLS listener admits by
//!    the server its SNI chose ([`select_tls_server`]), as Istio gives each HTTPS server its own
//!    filter chain and route configuration.
//! 2. **`tls.httpsRedirect`.** A plain-HTTP request admitted by a server with `httpsRedirect:
//!    true` is answered 301 to the `https` URL (Istio sets `require_tls: ALL` on those virtual
//!    hosts; Envoy answers with a 301 to `https://` + the request's host and path). The port
//!    `:80` is dropped from the host.
//! 3. **Routing** ([`crate::router`]): the host's VirtualService rules, first match wins. A host
//!    with no VirtualService is a 404 (`NR`) under a Gateway (a gateway is not an open proxy:
//!    Istio builds virtual hosts only from VirtualServices). Under the mesh it goes to the host
//!    itself when the mesh knows the service (a ServiceEntry, or endpoints registered in code:
//!    Istio's per-service default route, with the default retries); a host nothing declares gets
//!    the catch-all of the [`OutboundTrafficPolicy`] (Istio's `buildCatchAllVirtualHost` in
//!    `pilot/pkg/networking/core/httproute.go`): `ALLOW_ANY` passes it through ([`Forward::passthrough`]:
//!    no retries, no timeout, no DestinationRule, as Envoy's `PassthroughCluster` route),
//!    `REGISTRY_ONLY` answers 502 (the `block_all` route's direct response). A request that
//!    names no host at all (a relative URI and no `Host` header) is a 400, as Envoy answers an
//!    HTTP/1.1 request without `Host`. No matching rule is a 404 (`NR`); a `delegate` left in a snapshot is a
//!    404 too (mesh-config merges delegates into their roots, as Istio does).
//! 4. **The action.** `redirect` → its status and `Location` ([`redirect_location`]);
//!    `directResponse` → its status and body; `route` → one destination picked by weight with
//!    the random draw (a route whose weights are all 0 has no destination: 503 `UH` is Envoy's
//!    answer for an empty weighted cluster; meshwork answers 404 `NR`, as before, since no such
//!    config passes Istio's validation). The rule's response header edits go with local answers
//!    as with forwarded ones (Envoy's router applies the route's `response_headers_to_add` to a
//!    direct response and a redirect).
//! 5. **CORS.** A rule that forwards and has a `corsPolicy` is asked about the request's `Origin`
//!    ([`crate::cors`], Envoy's CORS filter as Istio configures it): a preflight it answers is a
//!    [`Local`] with [`LocalReason::CorsPreflight`] (200, the headers in [`Local::cors_headers`],
//!    no rule header edits: the filter answers before the router); a request from an allowed
//!    origin is forwarded with [`Forward::cors_headers`], set on every response to it after the
//!    rule's response header edits. Nothing is read for a rule without a policy, and a request
//!    without `Origin` costs one header lookup and no allocation.
//! 6. **Retries.** A rule's own policy, or the snapshot's default ([`Snapshot::default_retries`]):
//!    Istio's current default retries `connect-failure,refused-stream,unavailable,cancelled` and
//!    no status codes (`EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`, default true, in
//!    `pilot/pkg/features`; `pilot/pkg/networking/core/route/retry/retry.go`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::cors::{CorsHeaders, CorsOutcome};
use crate::host::is_subset_of;
use crate::request::{ClientIdentity, RequestView, normalize_host, split_authority};
use crate::route::{
    CorsPolicy, Destination, Fault, HeaderEdits, HeaderOps, HttpRule, Mirror, RequestMatch, RetryPolicy, RouteAction,
};
use crate::router::{RouteDecision, redirect_location, rewrite_path};
use crate::service::GatewayServer;
use crate::snapshot::{Binding, OutboundTrafficPolicy, Snapshot, VirtualHost};

/// How a request reached a Gateway: the listener's port, whether the client spoke TLS to it, and
/// the servers that admit the connection (all the port's servers for plain HTTP; the one its SNI
/// chose for TLS).
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// The Gateway port the request arrived on (`port` matches see it).
    pub port: u16,
    /// The connection is TLS, terminated by the Gateway (the request's scheme is `https`).
    pub tls: bool,
    /// The servers whose hosts may be asked for on this connection (`None`: no admission check,
    /// only the port is known).
    pub servers: Option<Arc<[GatewayServer]>>,
}

impl Listener {
    /// A plain-HTTP listener on `port` with the servers that share it.
    pub fn plain(port: u16, servers: impl Into<Arc<[GatewayServer]>>) -> Listener {
        Listener { port, tls: false, servers: Some(servers.into()) }
    }

    /// Only the port: `port` matches see it, no host is refused.
    pub fn port_only(port: u16) -> Listener {
        Listener { port, tls: false, servers: None }
    }

    /// A TLS connection on `port`, admitted by `server` (see [`select_tls_server`]).
    pub fn tls(port: u16, server: GatewayServer) -> Listener {
        Listener { port, tls: true, servers: Some(Arc::from(vec![server])) }
    }

    /// Whether requests for `host` (already normalized) are admitted, and by which server:
    /// [`Admission::Refused`] when no server lists it.
    pub fn admitting(&self, host: &str) -> Admission<'_> {
        let Some(servers) = &self.servers else { return Admission::Unchecked };
        match servers.iter().find(|s| s.hosts.iter().any(|(_, h)| is_subset_of(host, h))) {
            Some(server) => Admission::By(server),
            None => Admission::Refused,
        }
    }
}

/// What a [`Listener`] says of a host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission<'a> {
    /// The listener checks no hosts.
    Unchecked,
    /// This server lists the host.
    By(&'a GatewayServer),
    /// No server lists the host.
    Refused,
}

/// Does this Gateway server terminate TLS (`HTTPS`, or `TLS` not in `PASSTHROUGH` mode)?
pub fn terminates_tls(server: &GatewayServer) -> bool {
    matches!(&*server.protocol, "HTTPS" | "TLS")
        && server.tls.as_ref().is_none_or(|t| t.mode.as_deref() != Some("PASSTHROUGH"))
}

/// The TLS-terminating server of a port that answers a ClientHello naming `sni` (lower case, no
/// trailing dot): the first whose hosts contain the name; without SNI, only a server for every
/// host (`*`) can answer, as Envoy's filter chain match without server names.
pub fn select_tls_server<'a>(servers: &'a [GatewayServer], sni: Option<&str>) -> Option<&'a GatewayServer> {
    let name = sni.unwrap_or("*");
    servers.iter().find(|s| terminates_tls(s) && s.hosts.iter().any(|(_, h)| is_subset_of(name, h)))
}

/// Why the mesh answered a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalReason {
    /// No server of the Gateway listener lists the host: 404 `NR`.
    HostNotExposed,
    /// The admitting server has `tls.httpsRedirect` and the request is plain HTTP: 301.
    HttpsRedirect,
    /// A Gateway and no VirtualService for the host: 404 `NR`.
    NoVirtualHost,
    /// The host's VirtualService has no rule that matches: 404 `NR`.
    NoRule,
    /// The rule delegates and no delegate was merged: 404 `NR`.
    Delegate,
    /// The rule routes, but every destination has weight 0: 404 `NR`.
    NoDestination,
    /// The rule's `redirect`.
    Redirect,
    /// The rule's `directResponse`.
    DirectResponse,
    /// A host nothing declares, under `REGISTRY_ONLY`: 502 (Istio's `block_all` route).
    BlockAll,
    /// The request names no host (relative URI, no `Host` header): 400.
    MissingHost,
    /// A CORS preflight answered by the rule's `corsPolicy` (Envoy's CORS filter): 200 with the
    /// headers in [`Local::cors_headers`].
    CorsPreflight,
    /// The weighted pick chose a destination whose backend does not resolve
    /// ([`crate::route::UNRESOLVED_BACKEND`]): 500, as the Gateway API spec says.
    BackendNotFound,
}

impl LocalReason {
    /// A short camel-case name (`mesh explain`'s `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            LocalReason::HostNotExposed => "hostNotExposed",
            LocalReason::HttpsRedirect => "httpsRedirect",
            LocalReason::NoVirtualHost => "noVirtualHost",
            LocalReason::NoRule => "noRule",
            LocalReason::Delegate => "delegate",
            LocalReason::NoDestination => "noDestination",
            LocalReason::Redirect => "redirect",
            LocalReason::DirectResponse => "directResponse",
            LocalReason::BlockAll => "blockAll",
            LocalReason::MissingHost => "missingHost",
            LocalReason::CorsPreflight => "corsPreflight",
            LocalReason::BackendNotFound => "backendNotFound",
        }
    }

    /// Is this "no route" (404 with Envoy's flag `NR`)?
    pub fn is_no_route(self) -> bool {
        !matches!(
            self,
            LocalReason::HttpsRedirect
                | LocalReason::Redirect
                | LocalReason::DirectResponse
                | LocalReason::BlockAll
                | LocalReason::MissingHost
                | LocalReason::CorsPreflight
                | LocalReason::BackendNotFound
        )
    }
}

/// A request the mesh answers itself.
#[derive(Debug, Clone)]
pub struct Local<'s> {
    /// The host the request resolved to.
    pub host: Cow<'s, str>,
    /// Why.
    pub reason: LocalReason,
    /// HTTP status.
    pub status: u16,
    /// `Location` of a redirect.
    pub location: Option<String>,
    /// Body of a direct response (the snapshot's bytes; a fixed text for a missing host).
    pub body: Option<&'s Arc<[u8]>>,
    /// The virtual host that applied, if any.
    pub virtual_host: Option<&'s Arc<VirtualHost>>,
    /// The rule that answered (redirect, direct response, delegate, no destination).
    pub rule: Option<&'s Arc<HttpRule>>,
    /// The `match[]` entry that matched.
    pub request_match: Option<&'s RequestMatch>,
    /// The headers of a CORS preflight answer ([`LocalReason::CorsPreflight`]); `None` otherwise.
    pub cors_headers: Option<CorsHeaders>,
}

impl<'s> Local<'s> {
    /// A local answer for `host` with nothing else known yet (no location, body or rule).
    fn new(host: Cow<'s, str>, reason: LocalReason, status: u16) -> Self {
        Local {
            host,
            reason,
            status,
            location: None,
            body: None,
            virtual_host: None,
            rule: None,
            request_match: None,
            cors_headers: None,
        }
    }

    /// Envoy's response flag for this answer: `NR` for no route, else none (`-`).
    pub fn flags(&self) -> &'static str {
        if self.reason.is_no_route() { "NR" } else { "-" }
    }

    /// Is this answered like a direct response (a status and maybe a body, no flag): a rule's
    /// `directResponse`, the `REGISTRY_ONLY` 502, the 400 for a missing host, a CORS preflight
    /// answer (200, no body, its [`Local::cors_headers`])?
    pub fn is_direct(&self) -> bool {
        matches!(
            self.reason,
            LocalReason::DirectResponse
                | LocalReason::BlockAll
                | LocalReason::MissingHost
                | LocalReason::CorsPreflight
                | LocalReason::BackendNotFound
        )
    }

    /// The response header edits that go with this answer (the rule's, for a redirect or a
    /// direct response).
    pub fn response_headers(&self) -> Option<&HeaderOps> {
        match self.reason {
            LocalReason::Redirect | LocalReason::DirectResponse => self.rule.map(|r| &r.headers.response),
            _ => None,
        }
        .filter(|ops| !ops.is_empty())
    }
}

/// A rewritten path and/or authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteDecision<'s> {
    /// The new path, without the query (`None`: unchanged).
    pub path: Option<String>,
    /// The new authority (`None`: unchanged).
    pub authority: Option<&'s str>,
}

/// A request forwarded to a destination.
#[derive(Debug, Clone)]
pub struct Forward<'s> {
    /// The host the request resolved to.
    pub host: Cow<'s, str>,
    /// The virtual host that applied (`None`: no VirtualService, the default route).
    pub virtual_host: Option<&'s Arc<VirtualHost>>,
    /// The rule that matched (`None`: the default route).
    pub rule: Option<&'s Arc<HttpRule>>,
    /// The `match[]` entry that matched.
    pub request_match: Option<&'s RequestMatch>,
    /// The destination picked.
    pub destination: Cow<'s, Destination>,
    /// Its index in the rule's `route[]` (0 for the default route).
    pub destination_index: usize,
    /// The retry policy: the rule's, or the snapshot's default.
    pub retries: &'s RetryPolicy,
    /// The rule's rewrite, applied to this request.
    pub rewrite: Option<RewriteDecision<'s>>,
    /// A host nothing declares, passed through under `ALLOW_ANY` (Envoy's `PassthroughCluster`):
    /// no retries, no timeout, no DestinationRule; the layers below share one cluster for all
    /// such hosts and keep no state per host.
    pub passthrough: bool,
    /// The headers the rule's `corsPolicy` sets on every response to this request (its origin is
    /// allowed), after the rule's response header edits; `None` when CORS adds nothing (no
    /// policy, no `Origin`, an origin not allowed).
    pub cors_headers: Option<CorsHeaders>,
}

impl<'s> Forward<'s> {
    /// The route's timeout (`None`: none, Istio's default).
    pub fn timeout(&self) -> Option<Duration> {
        self.rule.and_then(|r| r.timeout)
    }

    /// The rule's fault injection.
    pub fn fault(&self) -> Option<&'s Fault> {
        self.rule.and_then(|r| r.fault.as_deref())
    }

    /// The rule's mirrors.
    pub fn mirrors(&self) -> &'s [Mirror] {
        self.rule.map_or(&[], |r| &r.mirrors[..])
    }

    /// The rule's CORS policy.
    pub fn cors(&self) -> Option<&'s Arc<CorsPolicy>> {
        self.rule.and_then(|r| r.cors.as_ref())
    }

    /// The picked destination's own header edits.
    pub fn destination_headers(&self) -> Option<&'s HeaderEdits> {
        match &self.rule?.action {
            RouteAction::Route(w) => w.destinations().get(self.destination_index).map(|d| &d.headers),
            _ => None,
        }
    }

    /// The rule's header edits.
    pub fn rule_headers(&self) -> Option<&'s HeaderEdits> {
        self.rule.map(|r| &*r.headers)
    }
}

/// The whole answer to a request (see the module docs).
#[derive(Debug, Clone)]
pub enum Decision<'s> {
    /// The mesh answers.
    Local(Local<'s>),
    /// The request goes on to a destination.
    Forward(Forward<'s>),
}

impl Decision<'_> {
    /// The host the request resolved to.
    pub fn host(&self) -> &str {
        match self {
            Decision::Local(l) => &l.host,
            Decision::Forward(f) => &f.host,
        }
    }
}

/// The retry policy of a passthrough route: none (Envoy's default when a route sets no
/// `retry_policy`, as Istio's `allow_any` route does not).
static NO_RETRIES: std::sync::LazyLock<RetryPolicy> = std::sync::LazyLock::new(RetryPolicy::none);

/// The body of the 400 for a request that names no host.
static MISSING_HOST_BODY: std::sync::LazyLock<Arc<[u8]>> =
    std::sync::LazyLock::new(|| Arc::from(&b"request names no host (no authority in its URI, no Host header)"[..]));

/// The `https` URL of a plain request, for `httpsRedirect` (`:80` dropped from the authority).
fn https_location(req: &RequestView<'_>) -> String {
    let authority = req.authority.strip_suffix(":80").unwrap_or(req.authority);
    match req.query {
        Some(q) => format!("https://{authority}{}?{q}", req.path),
        None => format!("https://{authority}{}", req.path),
    }
}

impl Snapshot {
    /// The host a request without a VirtualService goes to, if the mesh knows the service: the
    /// host it resolved to, or the request's short name qualified in the client's namespace
    /// (`reviews.bookinfo` → `reviews.bookinfo.svc.cluster.local`), as registered.
    fn known_host<'a>(
        &self,
        host: &Cow<'a, str>,
        req: &RequestView<'_>,
        client: &ClientIdentity,
        known: &dyn Fn(&str) -> bool,
    ) -> Option<Cow<'a, str>> {
        if self.declares(host) || known(host) {
            return Some(host.clone());
        }
        let written = normalize_host(req.authority);
        let expanded = crate::router::expand(&written, &client.namespace, &self.settings().domain)?;
        (expanded != **host && (self.declares(&expanded) || known(&expanded))).then_some(Cow::Owned(expanded))
    }

    /// The retry policy of routes that set none: Istio's default, with or without 503 by the
    /// snapshot's [`crate::snapshot::Settings::exclude_503_from_default_retries`].
    pub fn default_retries(&self) -> &RetryPolicy {
        self.default_retry_policy()
    }

    /// Decide what happens to a request (see the module docs). `listener` is the Gateway
    /// listener it arrived on (`None` for the mesh, or a Gateway served without admission);
    /// `draw` is a uniform random number for the weighted pick. The services the mesh knows are
    /// the snapshot's (ServiceEntries); see [`Snapshot::decide_with`] for more.
    pub fn decide<'s>(
        &'s self,
        binding: &Binding,
        listener: Option<&Listener>,
        req: &RequestView<'_>,
        client: &ClientIdentity,
        draw: u64,
    ) -> Decision<'s> {
        self.decide_with(binding, listener, req, client, draw, &|_| false)
    }

    /// Does the snapshot declare a service for `host` (a ServiceEntry host, exact or wildcard)?
    pub fn declares(&self, host: &str) -> bool {
        !self.services(host).is_empty()
    }

    /// [`Snapshot::decide`], where `known` also names services the snapshot does not declare
    /// (endpoints registered in code: mesh-tower's `Registry`). A host neither knows is handled
    /// by the snapshot's [`OutboundTrafficPolicy`].
    pub fn decide_with<'s>(
        &'s self,
        binding: &Binding,
        listener: Option<&Listener>,
        req: &RequestView<'_>,
        client: &ClientIdentity,
        draw: u64,
        known: &dyn Fn(&str) -> bool,
    ) -> Decision<'s> {
        if req.authority.is_empty() {
            let body = Some(&*MISSING_HOST_BODY);
            return Decision::Local(Local { body, ..Local::new(Cow::Borrowed(""), LocalReason::MissingHost, 400) });
        }
        let mut view = *req;
        if let Some(l) = listener {
            view.listener_port = Some(l.port);
            let host = normalize_host(req.authority);
            let local = |reason, status| Local::new(Cow::Owned(host.to_string()), reason, status);
            let server = match l.admitting(&host) {
                Admission::Refused => return Decision::Local(local(LocalReason::HostNotExposed, 404)),
                Admission::By(server) => Some(server),
                Admission::Unchecked => None,
            };
            if !l.tls && server.and_then(|s| s.tls.as_ref()).is_some_and(|t| t.https_redirect) {
                let location = Some(https_location(req));
                return Decision::Local(Local { location, ..local(LocalReason::HttpsRedirect, 301) });
            }
        }
        let gateway = *binding != Binding::Mesh;
        let (host, virtual_host, rule, request_match) = match self.route(binding, &view, client) {
            RouteDecision::Default { host } if gateway => {
                return Decision::Local(Local::new(host, LocalReason::NoVirtualHost, 404));
            }
            RouteDecision::Default { host } => {
                let host = match self.known_host(&host, req, client, known) {
                    Some(known) => known,
                    None if self.settings().outbound_traffic_policy == OutboundTrafficPolicy::RegistryOnly => {
                        return Decision::Local(Local::new(host, LocalReason::BlockAll, 502));
                    }
                    None => {
                        let destination = Destination { host: Arc::from(&*host), subset: None, port: None };
                        return Decision::Forward(Forward {
                            host,
                            virtual_host: None,
                            rule: None,
                            request_match: None,
                            destination: Cow::Owned(destination),
                            destination_index: 0,
                            retries: &NO_RETRIES,
                            rewrite: None,
                            passthrough: true,
                            cors_headers: None,
                        });
                    }
                };
                let destination = Destination { host: Arc::from(&*host), subset: None, port: None };
                return Decision::Forward(Forward {
                    host,
                    virtual_host: None,
                    rule: None,
                    request_match: None,
                    destination: Cow::Owned(destination),
                    destination_index: 0,
                    retries: self.default_retries(),
                    rewrite: None,
                    passthrough: false,
                    cors_headers: None,
                });
            }
            RouteDecision::NoRoute { host, virtual_host } => {
                let virtual_host = Some(virtual_host);
                return Decision::Local(Local { virtual_host, ..Local::new(host, LocalReason::NoRule, 404) });
            }
            RouteDecision::Matched { host, virtual_host, rule, request_match } => {
                (host, virtual_host, rule, request_match)
            }
        };
        let local = |host, reason, status| Local {
            virtual_host: Some(virtual_host),
            rule: Some(rule),
            request_match,
            ..Local::new(host, reason, status)
        };
        match &rule.action {
            RouteAction::Redirect(r) => Decision::Local(Local {
                location: Some(redirect_location(r, &view, request_match)),
                ..local(host, LocalReason::Redirect, r.code)
            }),
            RouteAction::DirectResponse(d) => {
                Decision::Local(Local { body: d.body.as_ref(), ..local(host, LocalReason::DirectResponse, d.status) })
            }
            RouteAction::Delegate { .. } => Decision::Local(local(host, LocalReason::Delegate, 404)),
            RouteAction::Route(w) => {
                // Envoy's CORS filter runs before the router: a preflight it answers never reaches
                // the weighted pick.
                let cors_headers = match rule.cors.as_deref().map(|c| c.evaluate_headers(view.method, view.headers)) {
                    None | Some(CorsOutcome::None) => None,
                    Some(CorsOutcome::Response(h)) => Some(h),
                    Some(CorsOutcome::Preflight(h)) => {
                        return Decision::Local(Local {
                            cors_headers: Some(h),
                            ..local(host, LocalReason::CorsPreflight, 200)
                        });
                    }
                };
                let Some(index) = w.pick_index(draw) else {
                    return Decision::Local(local(host, LocalReason::NoDestination, 404));
                };
                if &*w.destinations()[index].destination.host == crate::route::UNRESOLVED_BACKEND {
                    return Decision::Local(local(host, LocalReason::BackendNotFound, 500));
                }
                let rewrite = rule.rewrite.as_ref().map(|rw| RewriteDecision {
                    path: rewrite_path(rw, view.path, request_match),
                    authority: rw.authority.as_deref(),
                });
                Decision::Forward(Forward {
                    host,
                    virtual_host: Some(virtual_host),
                    rule: Some(rule),
                    request_match,
                    destination: Cow::Borrowed(&w.destinations()[index].destination),
                    destination_index: index,
                    retries: &rule.retries,
                    rewrite,
                    passthrough: false,
                    cors_headers,
                })
            }
        }
    }
}

/// The port a `mesh explain` request (or any request described by URL) arrives on at Gateway
/// `gateway`, taken as `mesh proxy` takes it — from the listener: the URL's port when it has one;
/// otherwise the port of the first server that would admit the host on a connection of this
/// kind (TLS for `https`, plain for `http`), the scheme's default port (80 / 443) first when a
/// server there admits it; otherwise the scheme's default port.
pub fn listener_port(servers: &[GatewayServer], authority: &str, https: bool) -> u16 {
    if let (_, Some(port)) = split_authority(authority) {
        return port;
    }
    let default = if https { 443 } else { 80 };
    let host = normalize_host(authority);
    let admits = |s: &&GatewayServer| terminates_tls(s) == https && s.hosts.iter().any(|(_, h)| is_subset_of(&host, h));
    if servers.iter().filter(admits).any(|s| s.port == default) {
        return default;
    }
    servers.iter().find(admits).map_or(default, |s| s.port)
}

/// How a connection to `port` of a Gateway with `servers` is accepted, as `mesh proxy` accepts
/// it: `Ok` with the [`Listener`] its requests are admitted by, or `Err` with why the connection
/// is closed before any HTTP (no HTTP server on the port; a TLS port spoken to in plain text; no
/// server for the SNI; a plain port spoken to with TLS).
pub fn accept(servers: &[GatewayServer], port: u16, tls_sni: Option<Option<&str>>) -> Result<Listener, &'static str> {
    let on_port: Vec<GatewayServer> = servers.iter().filter(|s| s.port == port).cloned().collect();
    if on_port.is_empty() {
        return Err("the Gateway has no server on this port");
    }
    let tls_port = on_port.iter().any(terminates_tls);
    match (tls_port, tls_sni) {
        (true, Some(sni)) => match select_tls_server(&on_port, sni) {
            Some(server) => Ok(Listener::tls(port, server.clone())),
            None => Err("no TLS server of this port lists the server name (SNI)"),
        },
        (true, None) => Err("the port's servers terminate TLS: a plain-text connection fails the handshake"),
        (false, Some(_)) => Err("the port's servers do not terminate TLS"),
        (false, None) => Ok(Listener::plain(port, on_port)),
    }
}
