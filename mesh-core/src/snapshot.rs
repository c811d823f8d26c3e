//! The compiled, immutable configuration the request path reads.
//!
//! A [`Snapshot`] is built once per configuration change (by `mesh-config`, or by hand with
//! [`SnapshotBuilder`]) and shared behind an `Arc`: cloning it is one reference-count increment,
//! and nothing in it changes after it is built.
//!
//! Routes are indexed per *binding* — the mesh (`mesh`, what sidecars and in-process clients use)
//! or one Gateway — and, within a binding, per host with [`HostMap`]: one hash lookup for an
//! exact host, then one per wildcard suffix length, never a scan of all VirtualServices.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::host::{DEFAULT_DOMAIN, HostMap};
use crate::l4::{L4Server, L4VirtualService};
use crate::policy::DestinationPolicy;
use crate::route::{HttpRule, RetryPolicy};
use crate::router::RuleIndex;
use crate::security::Security;
use crate::service::{GatewayDecl, ServiceDecl, WorkloadDecl};

/// Where VirtualServices apply: the mesh, or a Gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Binding {
    /// The reserved gateway name `mesh`: every client in the mesh.
    Mesh,
    /// A Gateway, by namespace and name.
    Gateway {
        /// Namespace of the Gateway.
        namespace: Arc<str>,
        /// Name of the Gateway.
        name: Arc<str>,
    },
}

impl Binding {
    /// A gateway binding.
    pub fn gateway(namespace: &str, name: &str) -> Binding {
        Binding::Gateway { namespace: Arc::from(namespace), name: Arc::from(name) }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Mesh => f.write_str("mesh"),
            Binding::Gateway { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// The rules for one host pattern under one binding, in evaluation order, with an index that
/// finds the first matching rule without testing every rule (see [`crate::router`]).
#[derive(Debug, Clone)]
pub struct VirtualHost {
    /// The host pattern as qualified (`reviews.default.svc.cluster.local`, `*.example.com`).
    pub pattern: Arc<str>,
    /// Rules; the first match wins.
    pub rules: Box<[Arc<HttpRule>]>,
    pub(crate) index: RuleIndex,
}

impl VirtualHost {
    /// A virtual host over `rules`, indexed.
    pub fn new(pattern: Arc<str>, rules: Vec<Arc<HttpRule>>) -> Self {
        let index = RuleIndex::build(&rules);
        VirtualHost { pattern, rules: rules.into_boxed_slice(), index }
    }
}

/// Istio's root configuration namespace: rules there apply to every namespace.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The virtual hosts of one binding, with the short forms of Kubernetes service names
/// (`reviews.bookinfo`, `reviews.bookinfo.svc`, and `reviews` from namespace `bookinfo`) indexed
/// so that resolving them needs no string building.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    pub(crate) hosts: HostMap<Arc<VirtualHost>>,
    /// `name.ns` and `name.ns.svc` → the virtual host of `name.ns.svc.<domain>`.
    pub(crate) aliases: FxHashMap<Box<str>, Arc<VirtualHost>>,
    /// `name` → (namespace, virtual host of `name.<namespace>.svc.<domain>`).
    pub(crate) short: FxHashMap<Box<str>, Vec<NamespacedHost>>,
}

/// A namespace and the virtual host of a service in it.
pub(crate) type NamespacedHost = (Box<str>, Arc<VirtualHost>);

/// Snapshot-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Cluster domain used to qualify short names (`cluster.local`).
    pub domain: Arc<str>,
    /// Leave 503 out of the default retry policy (routes without `retries`, or with `attempts`
    /// and no `retryOn`), as Istio does by default since 1.24 (`EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`,
    /// default true, in `pilot/pkg/features`: a 503 may come from a request the upstream already
    /// acted on). `false` restores the old default, which retried 503.
    pub exclude_503_from_default_retries: bool,
    /// What happens to a request for a host the mesh knows nothing about (Istio's meshConfig
    /// `outboundTrafficPolicy.mode`; default `ALLOW_ANY`).
    pub outbound_traffic_policy: OutboundTrafficPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            domain: Arc::from(DEFAULT_DOMAIN),
            exclude_503_from_default_retries: true,
            outbound_traffic_policy: OutboundTrafficPolicy::AllowAny,
        }
    }
}

/// Istio's `outboundTrafficPolicy.mode`: what the mesh does with a request for a host that no
/// VirtualService routes and no service declares (no ServiceEntry, no registered endpoint).
/// Istio builds a catch-all virtual host for them (istio/istio
/// `pilot/pkg/networking/core/httproute.go`, `buildCatchAllVirtualHost`); meshwork decides the
/// same in [`Snapshot::decide_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutboundTrafficPolicy {
    /// `ALLOW_ANY` (Istio's default): pass the request through to the host it names (Envoy's
    /// `PassthroughCluster`, route `allow_any`: no retries, no timeout, no DestinationRule). Such
    /// requests share one cluster and their metric labels are bounded: they create no state per
    /// host.
    #[default]
    AllowAny,
    /// `REGISTRY_ONLY`: answer 502 without connecting (Envoy's direct response on the
    /// `block_all` route).
    RegistryOnly,
}

impl OutboundTrafficPolicy {
    /// Istio's spelling (`ALLOW_ANY`, `REGISTRY_ONLY`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundTrafficPolicy::AllowAny => "ALLOW_ANY",
            OutboundTrafficPolicy::RegistryOnly => "REGISTRY_ONLY",
        }
    }
}

impl std::str::FromStr for OutboundTrafficPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ALLOW_ANY" => Ok(OutboundTrafficPolicy::AllowAny),
            "REGISTRY_ONLY" => Ok(OutboundTrafficPolicy::RegistryOnly),
            other => Err(format!("unknown outbound traffic policy `{other}` (expected ALLOW_ANY or REGISTRY_ONLY)")),
        }
    }
}

impl Settings {
    /// The retry policy of routes that set none, under these settings.
    pub fn default_retries(&self) -> RetryPolicy {
        if self.exclude_503_from_default_retries {
            RetryPolicy::istio_default()
        } else {
            RetryPolicy::istio_default_with_503()
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    settings: Settings,
    default_retries: RetryPolicy,
    routes: BTreeMap<Binding, RouteTable>,
    destination_rules: HostMap<Box<[Arc<DestinationPolicy>]>>,
    services: HostMap<Box<[Arc<ServiceDecl>]>>,
    workloads: Box<[Arc<WorkloadDecl>]>,
    gateways: BTreeMap<(Arc<str>, Arc<str>), Arc<GatewayDecl>>,
    l4_services: Vec<Arc<L4VirtualService>>,
    l4_servers: BTreeMap<(Binding, u16), L4Server>,
    /// PeerAuthentications and AuthorizationPolicies (the inbound side).
    security: Arc<Security>,
    rule_count: usize,
    /// See [`Snapshot::generation`].
    generation: u64,
}

/// The last generation handed out (0 is every empty default snapshot's).
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Compiled configuration. Cheap to clone, never mutated.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    inner: Arc<Inner>,
}

impl Snapshot {
    /// A snapshot with no configuration: every host routes to itself.
    pub fn empty() -> Snapshot {
        Snapshot::default()
    }

    /// Settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn default_retry_policy(&self) -> &RetryPolicy {
        &self.inner.default_retries
    }

    /// This snapshot's number, distinct for every snapshot built in this process (clones share
    /// it; empty default snapshots all have 0). What was derived from a snapshot can be kept
    /// with its generation and reused while the generation is the same — the snapshot never
    /// changes.
    pub fn generation(&self) -> u64 {
        self.inner.generation
    }

    /// The virtual host for a concrete host name under a binding: an exact host first, then the
    /// longest matching wildcard.
    pub fn virtual_host(&self, binding: &Binding, host: &str) -> Option<&Arc<VirtualHost>> {
        self.inner.routes.get(binding)?.hosts.get(host)
    }

    pub(crate) fn route_table(&self, binding: &Binding) -> Option<&RouteTable> {
        self.inner.routes.get(binding)
    }

    /// Bindings that have routes.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.inner.routes.keys()
    }

    /// Every virtual host of a binding.
    pub fn virtual_hosts(&self, binding: &Binding) -> Vec<&Arc<VirtualHost>> {
        self.inner.routes.get(binding).map(|t| t.hosts.iter().map(|(_, v)| v).collect()).unwrap_or_default()
    }

    /// The DestinationRule that applies to `host` for a client in `client_namespace`, as Istio
    /// chooses it: among rules for the most specific matching host pattern, the one in the client's
    /// namespace, else the one in the service's namespace — the namespace of the ServiceEntry that
    /// declares the host, else the Kubernetes namespace in the name (`name.<ns>.svc...`) — else the
    /// one in the root namespace `istio-system`. Rules elsewhere do not apply.
    pub fn destination_policy(&self, host: &str, client_namespace: &str) -> Option<&Arc<DestinationPolicy>> {
        self.destination_policy_for(host, client_namespace, &BTreeMap::new())
    }

    /// As [`Snapshot::destination_policy`], for a client with `labels`: in the client's own
    /// namespace a rule whose `workloadSelector` matches the labels comes first, then one without
    /// a selector; a rule with a selector never applies to clients of other namespaces or without
    /// those labels (Istio's `SidecarScope.DestinationRule`).
    pub fn destination_policy_for(
        &self,
        host: &str,
        client_namespace: &str,
        labels: &BTreeMap<Arc<str>, Arc<str>>,
    ) -> Option<&Arc<DestinationPolicy>> {
        let rules = self.destination_rules(host);
        let selected = rules.iter().find(|r| {
            &*r.namespace == client_namespace && r.workload_selector.as_ref().is_some_and(|s| s.matches(labels))
        });
        if selected.is_some() {
            return selected;
        }
        let in_namespace = |ns: &str| rules.iter().find(|r| r.workload_selector.is_none() && &*r.namespace == ns);
        let service_ns = self
            .services(host)
            .first()
            .map(|s| &*s.namespace)
            .or_else(|| host.split('.').nth(1).filter(|_| host.contains(".svc.")));
        in_namespace(client_namespace)
            .or_else(|| service_ns.and_then(in_namespace))
            .or_else(|| in_namespace(ROOT_NAMESPACE))
    }

    /// DestinationRules for a concrete host (most specific pattern), in config order.
    pub fn destination_rules(&self, host: &str) -> &[Arc<DestinationPolicy>] {
        self.inner.destination_rules.get(host).map(|b| &b[..]).unwrap_or(&[])
    }

    /// ServiceEntries declaring a concrete host (most specific pattern), in config order.
    pub fn services(&self, host: &str) -> &[Arc<ServiceDecl>] {
        self.inner.services.get(host).map(|b| &b[..]).unwrap_or(&[])
    }

    /// Every ServiceEntry (each once).
    pub fn all_services(&self) -> Vec<&Arc<ServiceDecl>> {
        // A declaration listed under several hosts is returned once (a set of pointers: linear
        // in the declarations, where a scan of the output was quadratic).
        let mut out: Vec<&Arc<ServiceDecl>> = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        for (_, list) in self.inner.services.iter() {
            for s in list.iter() {
                if seen.insert(Arc::as_ptr(s)) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// WorkloadEntries.
    pub fn workloads(&self) -> &[Arc<WorkloadDecl>] {
        &self.inner.workloads
    }

    /// A Gateway by namespace and name.
    pub fn gateway(&self, namespace: &str, name: &str) -> Option<&Arc<GatewayDecl>> {
        self.inner.gateways.get(&(Arc::from(namespace), Arc::from(name)))
    }

    /// Every Gateway.
    pub fn gateways(&self) -> impl Iterator<Item = &Arc<GatewayDecl>> {
        self.inner.gateways.values()
    }

    /// How the server of Gateway `binding` on `port` routes connections, when it is a plain TCP
    /// or a TLS passthrough server (see [`crate::l4`]).
    pub fn l4_server(&self, binding: &Binding, port: u16) -> Option<&L4Server> {
        self.inner.l4_servers.get(&(binding.clone(), port))
    }

    /// Every plain TCP and TLS passthrough Gateway server port, with what it does.
    pub fn l4_servers(&self) -> impl Iterator<Item = (&Binding, u16, &L4Server)> {
        self.inner.l4_servers.iter().map(|((b, p), s)| (b, *p, s))
    }

    /// The inbound side: mesh security settings, PeerAuthentications, AuthorizationPolicies.
    pub fn security(&self) -> &Security {
        &self.inner.security
    }

    /// The inbound side, shared: snapshots compiled from the same security configuration may
    /// hold the same value, and a cache keyed on it (the inbound layer's JWT verifiers) lives as
    /// long as the value does.
    pub fn security_shared(&self) -> &Arc<Security> {
        &self.inner.security
    }

    /// The authorization decision for `request` arriving at `workload`
    /// ([`Security::authorize`]).
    pub fn authorize(
        &self,
        workload: &crate::workload::Workload,
        request: &crate::authz::AuthzRequest,
    ) -> crate::authz::AuthzDecision {
        self.inner.security.authorize(workload, request)
    }

    /// Total number of compiled HTTP rules, over all bindings.
    pub fn rule_count(&self) -> usize {
        self.inner.rule_count
    }
}

/// A host claimed by two VirtualServices under the mesh binding: Istio's sidecars use only the
/// first (oldest); the later one is ignored for that host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConflict {
    /// The host pattern.
    pub host: Arc<str>,
    /// The VirtualService kept (`namespace/name`).
    pub kept: String,
    /// The VirtualService ignored for this host.
    pub ignored: String,
}

/// Builds a [`Snapshot`].
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    inner: Inner,
    owners: BTreeMap<(Binding, Arc<str>), String>,
    routes: BTreeMap<Binding, HostMap<Vec<Arc<HttpRule>>>>,
}

impl SnapshotBuilder {
    /// A builder with the given settings.
    pub fn new(settings: Settings) -> Self {
        SnapshotBuilder {
            inner: Inner { default_retries: settings.default_retries(), settings, ..Inner::default() },
            owners: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }

    /// Add the rules of one VirtualService for one host pattern under one binding.
    ///
    /// Under a Gateway, rules of several VirtualServices for the same host are concatenated in the
    /// order added (Istio merges them). Under the mesh, the first VirtualService to claim a host
    /// keeps it and later ones are reported as conflicts.
    pub fn add_routes(
        &mut self,
        binding: Binding,
        host: &str,
        owner: &str,
        rules: Vec<Arc<HttpRule>>,
    ) -> Result<(), HostConflict> {
        let key = (binding.clone(), Arc::<str>::from(host));
        if let Some(existing) = self.owners.get(&key)
            && binding == Binding::Mesh
            && existing != owner
        {
            return Err(HostConflict { host: key.1, kept: existing.clone(), ignored: owner.to_string() });
        }
        self.owners.entry(key).or_insert_with(|| owner.to_string());
        self.inner.rule_count += rules.len();

        self.routes.entry(binding).or_default().entry_or_insert_with(host, Vec::new).extend(rules);
        Ok(())
    }

    /// Add a DestinationRule. Rules for the same host in the same namespace merge, as Istio merges
    /// them: the first rule's traffic policy applies, and subsets of later rules are added unless a
    /// subset of that name exists already. Rules with a `workloadSelector` are kept apart.
    pub fn add_destination_rule(&mut self, policy: DestinationPolicy) {
        let host = policy.host.clone();
        let list = self.inner.destination_rules.entry_or_insert_with(&host, || Box::new([]));
        let mut v = list.to_vec();
        // Rules with a workload selector stay apart: each applies to its own workloads.
        match v.iter_mut().find(|p| {
            p.namespace == policy.namespace && p.workload_selector.is_none() && policy.workload_selector.is_none()
        }) {
            Some(existing) => {
                let merged = Arc::make_mut(existing);
                if merged.traffic_policy == Default::default() {
                    merged.traffic_policy = policy.traffic_policy;
                }
                let mut subsets = merged.subsets.to_vec();
                for s in policy.subsets.iter() {
                    if !subsets.iter().any(|e| e.name == s.name) {
                        subsets.push(s.clone());
                    }
                }
                merged.subsets = subsets.into_boxed_slice();
            }
            None => v.push(Arc::new(policy)),
        }
        *list = v.into_boxed_slice();
    }

    /// Add a ServiceEntry.
    pub fn add_service(&mut self, service: ServiceDecl) {
        let service = Arc::new(service);
        for host in service.hosts.iter() {
            let list = self.inner.services.entry_or_insert_with(host, || Box::new([]));
            let mut v = list.to_vec();
            v.push(service.clone());
            *list = v.into_boxed_slice();
        }
    }

    /// Add a WorkloadEntry.
    pub fn add_workload(&mut self, workload: WorkloadDecl) {
        let mut v = std::mem::take(&mut self.inner.workloads).into_vec();
        v.push(Arc::new(workload));
        self.inner.workloads = v.into_boxed_slice();
    }

    /// Add the `tcp[]` and `tls[]` rules of a VirtualService (in config order: the first rule to
    /// hold on a Gateway server routes it).
    pub fn add_l4_virtual_service(&mut self, service: L4VirtualService) {
        self.inner.l4_services.push(Arc::new(service));
    }

    /// Set the inbound policies (replacing any set before).
    pub fn set_security(&mut self, security: Security) {
        self.inner.security = Arc::new(security);
    }

    /// Add a Gateway.
    pub fn add_gateway(&mut self, gateway: GatewayDecl) {
        self.inner.gateways.insert((gateway.namespace.clone(), gateway.name.clone()), Arc::new(gateway));
    }

    /// Freeze into a snapshot, indexing every virtual host's rules.
    pub fn build(mut self) -> Snapshot {
        let svc_suffix = format!(".svc.{}", self.inner.settings.domain);
        for (binding, hosts) in std::mem::take(&mut self.routes) {
            let mut table = RouteTable::default();
            for (pattern, rules) in hosts.into_entries() {
                let vh = Arc::new(VirtualHost::new(Arc::from(pattern.as_str()), rules));
                if let Some(name_ns) = pattern.strip_suffix(&svc_suffix)
                    && let Some((name, ns)) = name_ns.split_once('.')
                    && !ns.contains('.')
                    && !name.starts_with('*')
                {
                    table.aliases.insert(Box::from(name_ns), vh.clone());
                    table.aliases.insert(Box::from(format!("{name_ns}.svc")), vh.clone());
                    table.short.entry(Box::from(name)).or_default().push((Box::from(ns), vh.clone()));
                }
                table.hosts.insert(&pattern, vh);
            }
            self.inner.routes.insert(binding, table);
        }
        // Each plain TCP and TLS passthrough port of each Gateway, decided once (Istio builds
        // these filter chains per server when it builds the listener).
        for g in self.inner.gateways.values() {
            let binding = Binding::Gateway { namespace: g.namespace.clone(), name: g.name.clone() };
            let mut ports: Vec<u16> = g.servers.iter().map(|s| s.port).collect();
            ports.sort_unstable();
            ports.dedup();
            for port in ports {
                let on_port = || g.servers.iter().filter(move |s| s.port == port);
                let mode = |s: &crate::service::GatewayServer| s.tls.as_ref().and_then(|t| t.mode.clone());
                let passthrough = on_port().any(|s| crate::l4::is_passthrough_server(mode(s).as_deref()));
                let tcp = on_port().any(|s| crate::l4::is_tcp_server(&s.protocol, mode(s).as_deref()));
                if !passthrough && !tcp {
                    continue;
                }
                let hosts: Vec<(Arc<str>, Arc<str>)> = on_port().flat_map(|s| s.hosts.iter().cloned()).collect();
                let server = crate::l4::build_server(&binding, port, passthrough, &hosts, &self.inner.l4_services);
                self.inner.l4_servers.insert((binding.clone(), port), server);
            }
        }
        self.inner.generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Snapshot { inner: Arc::new(self.inner) }
    }
}
