//! The endpoint registry: which addresses serve a service, with which labels.
//!
//! Services are keyed by FQDN (`reviews.default.svc.cluster.local`). Endpoints come from code
//! ([`Registry::register`]) or from ServiceEntry / WorkloadEntry resources
//! ([`Registry::sync_from_snapshot`]; [`Registry::sync_hosts`] replaces only some hosts', when
//! an endpoint change touched only those). Names given in code are qualified as hosts in config are
//! (Istio's rule, [`mesh_core::host::qualify`]): a name without a dot is a Kubernetes short name in
//! the registry's namespace (`default` unless [`Registry::in_namespace`] says otherwise), so
//! `register("reviews", ..)` registers `reviews.default.svc.cluster.local`, the host a
//! VirtualService's `reviews` names. A subset's endpoints are those whose labels contain the
//! subset's labels. Reads are lock-free (one `ArcSwap` load); writes copy and swap.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use mesh_core::Snapshot;
use mesh_core::policy::LabelSelector;
use mesh_core::service::{EndpointLabels, Resolution, ServiceDecl, WorkloadDecl};

/// One endpoint of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub address: Arc<str>,
    /// Labels (`app`, `version`, ...), shared with the declaration it came from.
    pub labels: EndpointLabels,
    /// Load-balancing weight (default 1).
    pub weight: u32,
    /// The service port this endpoint serves (`None`: every port of the service).
    pub service_port: Option<u16>,
    /// The workload's name (a Deployment's, or a WorkloadEntry's), for telemetry.
    pub workload: Option<Arc<str>>,
    /// Where it runs (`region/zone/subzone`), for locality-aware load balancing.
    pub locality: Option<Arc<str>>,
}

/// An endpoint's address, as [`Endpoint::new`] takes it: `"10.0.0.7:9080"`, a `String`, or the
/// `SocketAddr` a listener was bound to.
pub trait IntoAddress {
    /// The `host:port` text.
    fn into_address(self) -> Arc<str>;
}

impl IntoAddress for &str {
    fn into_address(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Arc<str> {
        Arc::from(self.as_str())
    }
}

impl IntoAddress for Arc<str> {
    fn into_address(self) -> Arc<str> {
        self
    }
}

impl IntoAddress for Box<str> {
    fn into_address(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl IntoAddress for std::net::SocketAddr {
    fn into_address(self) -> Arc<str> {
        Arc::from(self.to_string())
    }
}

impl Endpoint {
    /// An endpoint at `address` with `labels`.
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    /// let endpoint = mesh_tower::Endpoint::new(listener.local_addr().expect("address"), [("version", "v1")]);
    /// assert!(endpoint.address.starts_with("127.0.0.1:"));
    /// ```
    pub fn new<'a>(address: impl IntoAddress, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Endpoint {
            address: address.into_address(),
            labels: labels.into_iter().map(|(k, v)| (Arc::from(k), Arc::from(v))).collect(),
            weight: 1,
            service_port: None,
            workload: None,
            locality: None,
        }
    }

    /// Place the endpoint at `locality` (`region/zone/subzone`).
    pub fn with_locality(mut self, locality: impl Into<Arc<str>>) -> Self {
        self.locality = Some(locality.into());
        self
    }

    /// Set the load-balancing weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Name the workload (shown as `destination_workload` in metrics).
    pub fn with_workload(mut self, workload: impl Into<Arc<str>>) -> Self {
        self.workload = Some(workload.into());
        self
    }

    /// Serve only this service port.
    pub fn with_service_port(mut self, port: u16) -> Self {
        self.service_port = Some(port);
        self
    }
}

/// A service's endpoints, shared.
type Endpoints = Arc<[Endpoint]>;

/// A declared host's endpoints in the registry.
///
/// After [`Registry::sync_from_snapshot`], a host's endpoints are not made and kept: they are
/// made from the snapshot's declarations of the host each time they are asked for (when a
/// cluster is built), as [`Registry::sync_from_snapshot`] made them before. A cluster of 10,000
/// Kubernetes Services holds 100,000 endpoints in the snapshot's declarations already; a second
/// copy of each as an [`Endpoint`] (its `ip:port` text and the struct: ~100 bytes) is what this
/// saves. What requests ask of a host on every request — is it declared, does it serve a port —
/// is answered from the ports kept here, without making its endpoints.
#[derive(Debug, Clone)]
enum Declared {
    /// Made and kept: [`Registry::sync_hosts`]'s lists.
    Made(Endpoints),
    /// Made from the snapshot when asked for; the service ports its endpoints serve (shared:
    /// every write of the registry copies its map of hosts).
    Snapshot { ports: Arc<[u16]> },
}

/// The identities (SPIFFE URIs) a host's workloads run as, shared.
type Identities = Arc<[Arc<str>]>;

#[derive(Debug, Default)]
struct State {
    /// Registered from code. (Fx hashing: looked up on every request by the request's host; the
    /// keys come from code and config only, so a request cannot choose colliding keys.)
    manual: FxHashMap<Arc<str>, Arc<[Endpoint]>>,
    /// From the declarations (ServiceEntries, WorkloadEntries, Kubernetes Services): each host
    /// that has endpoints declared, with them or with what answers for them without them.
    declared: FxHashMap<Arc<str>, Declared>,
    /// The snapshot of the last [`Registry::sync_from_snapshot`]: what [`Declared::Snapshot`]
    /// hosts' endpoints are made from when asked for.
    snapshot: Option<Snapshot>,
    /// The identities the declarations of each host name (see [`Registry::service_accounts`]).
    accounts: FxHashMap<Arc<str>, Identities>,
    version: u64,
}

/// Endpoints by service FQDN. Cheap to clone (one shared `Arc`: a stack cloned per request, as
/// tower's `oneshot` does, writes one reference count, not one per field).
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: ArcSwap<State>,
    write: Mutex<()>,
    /// The namespace short names are qualified in.
    namespace: Arc<str>,
    /// The cluster domain short names are qualified with.
    domain: Arc<str>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::with_namespace(Arc::from("default"))
    }
}

impl Registry {
    /// An empty registry; short names are qualified in namespace `default`.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose short names are qualified in `namespace`
    /// (`register("reviews", ..)` → `reviews.<namespace>.svc.cluster.local`).
    ///
    /// ```
    /// use mesh_tower::{Endpoint, Registry};
    /// let registry = Registry::in_namespace("bookinfo");
    /// registry.register("reviews", Endpoint::new("127.0.0.1:9080", [("version", "v1")]));
    /// assert_eq!(registry.endpoints("reviews.bookinfo.svc.cluster.local").len(), 1);
    /// assert_eq!(registry.service_name("reviews"), "reviews.bookinfo.svc.cluster.local");
    /// ```
    pub fn in_namespace(namespace: &str) -> Self {
        Registry::with_namespace(Arc::from(namespace))
    }

    fn with_namespace(namespace: Arc<str>) -> Self {
        Registry {
            inner: Arc::new(Inner {
                state: ArcSwap::default(),
                write: Mutex::default(),
                namespace,
                domain: Arc::from(mesh_core::host::DEFAULT_DOMAIN),
            }),
        }
    }

    /// The service a name given in code stands for: a short name qualified in the registry's
    /// namespace, anything else as written (lower-cased).
    pub fn service_name(&self, service: &str) -> String {
        mesh_core::host::qualify(service, &self.inner.namespace, &self.inner.domain)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let _guard = self.inner.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.inner.state.load();
        let mut next = State {
            manual: current.manual.clone(),
            declared: current.declared.clone(),
            snapshot: current.snapshot.clone(),
            accounts: current.accounts.clone(),
            version: current.version + 1,
        };
        f(&mut next);
        self.inner.state.store(Arc::new(next));
    }

    /// Add an endpoint to a service (replacing one with the same address). A short name is
    /// qualified ([`Registry::service_name`]).
    pub fn register(&self, service: &str, endpoint: Endpoint) {
        let qualified = self.service_name(service);
        if qualified != service {
            tracing::debug!(target: "meshwork::registry", name = service, service = %qualified, "short name qualified");
        }
        let service = qualified.as_str();
        self.update(|s| {
            let mut list: Vec<Endpoint> = s.manual.get(service).map(|l| l.to_vec()).unwrap_or_default();
            list.retain(|e| e.address != endpoint.address);
            list.push(endpoint);
            s.manual.insert(Arc::from(service), list.into());
        });
    }

    /// Remove the endpoint at `address` from a service (named as for [`Registry::register`]).
    pub fn deregister(&self, service: &str, address: &str) {
        let service = self.service_name(service);
        let service = service.as_str();
        self.update(|s| {
            if let Some(list) = s.manual.get(service) {
                let kept: Vec<Endpoint> = list.iter().filter(|e| &*e.address != address).cloned().collect();
                s.manual.insert(Arc::from(service), kept.into());
            }
        });
    }

    /// Replace the declared endpoints with those of the snapshot's ServiceEntries (STATIC and DNS
    /// endpoints, ports mapped by name; WorkloadEntries selected by `workloadSelector`) and
    /// Kubernetes Services. (Made from the snapshot when a cluster asks for them, not kept: see
    /// [`Declared`].)
    pub fn sync_from_snapshot(&self, snapshot: &Snapshot) {
        let mut declared: FxHashMap<Arc<str>, Vec<u16>> = FxHashMap::default();
        let mut accounts: FxHashMap<Arc<str>, Identities> = FxHashMap::default();
        for se in snapshot.all_services() {
            let shape = Shape::of(se, snapshot.workloads());
            for host in se.hosts.iter() {
                if let Some(serves) = shape.serves(se, host) {
                    let served = declared.entry(host.clone()).or_default();
                    for port in se.ports.iter().map(|p| p.number).filter(|_| serves) {
                        if !served.contains(&port) {
                            served.push(port);
                        }
                    }
                }
                if !accounts.contains_key(host)
                    && let Some(ids) = accounts_of(snapshot.services(host))
                {
                    accounts.insert(host.clone(), ids);
                }
            }
        }
        let snapshot = snapshot.clone();
        self.update(|s| {
            s.declared =
                declared.into_iter().map(|(host, ports)| (host, Declared::Snapshot { ports: ports.into() })).collect();
            s.snapshot = Some(snapshot);
            s.accounts = accounts;
        });
    }

    /// Replace the declared endpoints of some hosts only, each with those of the declarations
    /// given for it (every declaration of the host, in config order: what
    /// [`Registry::sync_from_snapshot`] would read for it from a snapshot holding them), with
    /// `workloads` for their `workloadSelector`s. The other hosts' endpoints are untouched;
    /// one version bump for the lot. This is how an endpoint change reaches the request path
    /// without a new snapshot (mesh-config's `ConfigStore::apply_changes`).
    pub fn sync_hosts<'a>(
        &self,
        hosts: impl IntoIterator<Item = (&'a Arc<str>, &'a [Arc<ServiceDecl>])>,
        workloads: &[Arc<WorkloadDecl>],
    ) {
        let mut lists: Vec<(Arc<str>, Option<Endpoints>, Option<Identities>)> = Vec::new();
        for (host, services) in hosts {
            let mut declared: HashMap<Arc<str>, Vec<Endpoint>> = HashMap::new();
            for se in services {
                declare(se, workloads, Some(&**host), &mut declared);
            }
            lists.push((host.clone(), declared.remove(host).map(Arc::from), accounts_of(services)));
        }
        if lists.is_empty() {
            return;
        }
        self.update(|s| {
            for (host, list, accounts) in lists {
                match list {
                    Some(list) => s.declared.insert(host.clone(), Declared::Made(list)),
                    None => s.declared.remove(&host),
                };
                match accounts {
                    Some(ids) => s.accounts.insert(host, ids),
                    None => s.accounts.remove(&host),
                };
            }
        });
    }

    /// The identities the workloads of a declared host run as: the `service_accounts` of every
    /// declaration of the host, in config order, each once (what a client's secure naming
    /// expects when no DestinationRule names `subjectAltNames`). Kept with the endpoints, so
    /// that an endpoint-only change ([`Registry::sync_hosts`]: Pods of a Service rolled out
    /// under another service account) changes them too. `None`: none known.
    pub fn service_accounts(&self, service: &str) -> Option<Identities> {
        self.inner.state.load().accounts.get(service).cloned()
    }

    /// Every endpoint of a service (code-registered first).
    pub fn endpoints(&self, service: &str) -> Vec<Endpoint> {
        let s = self.inner.state.load();
        let mut out: Vec<Endpoint> = s.manual.get(service).map(|l| l.to_vec()).unwrap_or_default();
        match (s.declared.get(service), &s.snapshot) {
            (Some(Declared::Made(list)), _) => out.extend(list.iter().cloned()),
            (Some(Declared::Snapshot { .. }), Some(snapshot)) => {
                let mut made: HashMap<Arc<str>, Vec<Endpoint>> = HashMap::new();
                for se in snapshot.services(service) {
                    declare(se, snapshot.workloads(), Some(service), &mut made);
                }
                out.extend(made.into_values().flatten());
            }
            (Some(Declared::Snapshot { .. }), None) | (None, _) => {}
        }
        out
    }

    /// The endpoints of a service selected by a subset's labels.
    pub fn select(&self, service: &str, selector: &LabelSelector) -> Vec<Endpoint> {
        self.endpoints(service).into_iter().filter(|e| selector.matches(&e.labels)).collect()
    }

    /// Does the registry know the service?
    pub fn contains(&self, service: &str) -> bool {
        let s = self.inner.state.load();
        s.manual.contains_key(service) || s.declared.contains_key(service)
    }

    /// Does the registry have an endpoint of `service` for `port` (or one for every port)?
    pub fn serves_port(&self, service: &str, port: u16) -> bool {
        let s = self.inner.state.load();
        let manual = s.manual.get(service).is_some_and(|l| l.iter().any(|e| e.service_port.is_none_or(|p| p == port)));
        manual
            || match s.declared.get(service) {
                Some(Declared::Made(list)) => list.iter().any(|e| e.service_port.is_none_or(|p| p == port)),
                Some(Declared::Snapshot { ports }) => ports.contains(&port),
                None => false,
            }
    }

    /// Bumped on every change (clusters rebuild their balancers when it moves).
    pub fn version(&self) -> u64 {
        self.inner.state.load().version
    }
}

/// The identities of these declarations of one host, each once, in order (`None`: none).
fn accounts_of<'a>(services: impl IntoIterator<Item = &'a Arc<ServiceDecl>>) -> Option<Identities> {
    let mut ids: Vec<Arc<str>> = Vec::new();
    for id in services.into_iter().flat_map(|se| se.service_accounts.iter()) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    (!ids.is_empty()).then(|| ids.into())
}

/// What [`declare`] gives one declaration's hosts, without making the endpoints: whether a host
/// gets an entry, and for which service ports it has endpoints.
struct Shape {
    /// DNS resolution without endpoints declared or selected: the hosts themselves are the
    /// names to resolve (Istio's egress ServiceEntry); the connector resolves them on each new
    /// connection.
    by_name: bool,
    /// Endpoints declared or selected.
    sources: bool,
    /// Its resolution gives no endpoints at all.
    none: bool,
}

impl Shape {
    fn of(se: &ServiceDecl, workloads: &[Arc<WorkloadDecl>]) -> Shape {
        let none = matches!(se.resolution, Resolution::None | Resolution::DynamicDns);
        let selected = se.workload_selector.as_ref().is_some_and(|sel| {
            workloads.iter().any(|w| w.namespace == se.namespace && sel.matches(w.endpoint.labels()))
        });
        let sources = !se.endpoints.is_empty() || selected;
        let by_name = !sources && matches!(se.resolution, Resolution::Dns | Resolution::DnsRoundRobin);
        Shape { by_name, sources, none }
    }

    /// Does `se` give `host` an entry (`None`: no), and has that entry endpoints for each of
    /// `se`'s ports (`Some(true)`) or for none (`Some(false)`), as [`declare`] would make them?
    fn serves(&self, se: &ServiceDecl, host: &str) -> Option<bool> {
        if self.none {
            None
        } else if self.by_name && !host.starts_with('*') {
            // The host's own name, on each port.
            Some(true)
        } else if se.ports.is_empty() {
            None
        } else {
            // One entry per port, empty when nothing serves it.
            Some(self.sources)
        }
    }
}

/// The endpoints one declaration gives each of its hosts (only `only` when set), added to
/// `declared`.
fn declare(
    se: &ServiceDecl,
    workloads: &[Arc<WorkloadDecl>],
    only: Option<&str>,
    declared: &mut HashMap<Arc<str>, Vec<Endpoint>>,
) {
    let shape = Shape::of(se, workloads);
    if shape.none {
        return;
    }
    let mut sources: Vec<(&mesh_core::service::EndpointDecl, Option<&Arc<str>>)> =
        se.endpoints.iter().map(|e| (e, None)).collect();
    if let Some(sel) = &se.workload_selector {
        sources.extend(
            workloads
                .iter()
                .filter(|w| w.namespace == se.namespace && sel.matches(w.endpoint.labels()))
                .map(|w| (&w.endpoint, Some(&w.name))),
        );
    }
    for host in se.hosts.iter().filter(|h| only.is_none_or(|o| o == &***h)) {
        if shape.by_name && !host.starts_with('*') {
            let list = declared.entry(host.clone()).or_default();
            for port in se.ports.iter() {
                list.push(Endpoint {
                    address: Arc::from(format!("{host}:{}", port.target_port.unwrap_or(port.number))),
                    labels: Default::default(),
                    weight: 1,
                    service_port: Some(port.number),
                    workload: None,
                    locality: None,
                });
            }
            continue;
        }
        for port in se.ports.iter() {
            let list = declared.entry(host.clone()).or_default();
            for (ep, workload) in &sources {
                let number = ep.ports().get(&port.name).copied().or(port.target_port).unwrap_or(port.number);
                let host = ep.address();
                let address = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{number}")
                } else {
                    format!("{host}:{number}")
                };
                list.push(Endpoint {
                    address: Arc::from(address),
                    labels: ep.labels().clone(),
                    weight: ep.weight(),
                    service_port: Some(port.number),
                    workload: workload.cloned(),
                    locality: ep.locality().cloned(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn register_select_and_deregister() {
        let r = Registry::new();
        let svc = "reviews.default.svc.cluster.local";
        r.register(svc, Endpoint::new("127.0.0.1:9001", [("app", "reviews"), ("version", "v1")]));
        r.register(svc, Endpoint::new("127.0.0.1:9002", [("app", "reviews"), ("version", "v2")]));
        let v2 =
            LabelSelector::new(&[("version".to_string(), "v2".to_string())].into_iter().collect::<BTreeMap<_, _>>());
        assert_eq!(r.select(svc, &v2).iter().map(|e| &*e.address).collect::<Vec<_>>(), ["127.0.0.1:9002"]);
        let before = r.version();
        r.deregister(svc, "127.0.0.1:9002");
        assert!(r.version() > before);
        assert!(r.select(svc, &v2).is_empty());
        assert_eq!(r.endpoints(svc).len(), 1);
    }

    /// What `sync_from_snapshot` made and kept before it made endpoints only when asked: every
    /// declaration's endpoints, host by host.
    fn made_at_sync(snapshot: &Snapshot) -> HashMap<Arc<str>, Vec<Endpoint>> {
        let mut declared = HashMap::new();
        for se in snapshot.all_services() {
            declare(se, snapshot.workloads(), None, &mut declared);
        }
        declared
    }

    /// `r`, synced from `snapshot`, answers for each of `hosts` what a sync that made and kept
    /// every endpoint answered: the same endpoints (in any order), whether it knows the host,
    /// and which of `ports` it serves.
    fn answers_as_made(r: &Registry, snapshot: &Snapshot, hosts: &[&str], ports: &[u16]) {
        let made = made_at_sync(snapshot);
        let key = |e: &Endpoint| (e.address.to_string(), e.service_port, e.workload.clone());
        for host in hosts {
            let mut now: Vec<_> = r.endpoints(host).iter().map(key).collect();
            let mut then: Vec<_> = made.get(*host).map(|l| l.iter().map(key).collect()).unwrap_or_default();
            now.sort();
            then.sort();
            assert_eq!(now, then, "{host}");
            assert_eq!(r.contains(host), made.contains_key(*host), "{host}");
            for port in ports {
                let serves = made.get(*host).is_some_and(|l| l.iter().any(|e| e.service_port == Some(*port)));
                assert_eq!(r.serves_port(host, *port), serves, "{host}:{port}");
            }
        }
    }

    #[test]
    fn endpoints_made_when_asked_are_those_a_sync_made() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static, namespace: default}
spec:
  hosts: [static.example, also.example]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS, targetPort: 8443}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1, labels: {v: "1"}}, {address: "2001:db8::1", ports: {http: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static-more, namespace: default}
spec:
  hosts: [static.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.5}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: default}
spec:
  hosts: [dns.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none, namespace: default}
spec:
  hosts: [none.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: selected, namespace: default}
spec:
  hosts: [selected.example]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: w}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: nobody, namespace: default}
spec:
  hosts: [nobody.example]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: nobody}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: w1, namespace: default}
spec: {address: 10.0.0.9, labels: {app: w}}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {ports: [{name: http, port: 9080}], selector: {app: reviews}}
"#;
        let mut store = mesh_config::ConfigStore::default();
        let loaded = mesh_config::load_str(yaml, None, &mesh_config::LoadOptions::default()).expect("yaml");
        let report = store.apply(loaded);
        assert!(report.errors().next().is_none(), "{:?}", report.diagnostics);
        let snapshot = store.snapshot();
        let r = Registry::new();
        r.sync_from_snapshot(snapshot);
        let hosts = [
            "static.example",
            "also.example",
            "dns.example",
            "none.example",
            "selected.example",
            "nobody.example",
            "reviews.default.svc.cluster.local",
            "unknown.example",
        ];
        answers_as_made(&r, snapshot, &hosts, &[80, 443, 9080, 8080]);
        // (The cases are there: endpoints, a name to resolve, an entry without endpoints.)
        assert_eq!(r.endpoints("static.example").len(), 5);
        assert_eq!(r.endpoints("dns.example")[0].address.as_ref(), "dns.example:80");
        assert!(r.contains("nobody.example") && r.endpoints("nobody.example").is_empty());
        assert!(
            r.contains("reviews.default.svc.cluster.local")
                && !r.serves_port("reviews.default.svc.cluster.local", 9080)
        );
        assert!(!r.contains("none.example"));
    }

    #[test]
    fn dns_service_entries_without_endpoints_resolve_their_hosts() {
        use mesh_core::service::{ServiceDecl, ServicePort};
        let mut builder = mesh_core::SnapshotBuilder::new(Default::default());
        builder.add_service(ServiceDecl {
            namespace: "default".into(),
            name: "httpbin".into(),
            hosts: Box::new(["httpbin.org".into(), "*.wild.example".into()]),
            ports: Box::new([
                ServicePort { number: 80, name: "http".into(), protocol: "HTTP".into(), target_port: None },
                ServicePort { number: 8443, name: "https".into(), protocol: "HTTPS".into(), target_port: Some(443) },
            ]),
            resolution: Resolution::Dns,
            mesh_internal: false,
            endpoints: Box::new([]),
            workload_selector: None,
            service_accounts: Box::new([]),
        });
        let r = Registry::new();
        let snapshot = builder.build();
        r.sync_from_snapshot(&snapshot);
        let addresses: Vec<(String, Option<u16>)> =
            r.endpoints("httpbin.org").iter().map(|e| (e.address.to_string(), e.service_port)).collect();
        assert_eq!(addresses, [("httpbin.org:80".to_string(), Some(80)), ("httpbin.org:443".to_string(), Some(8443))]);
        assert!(r.endpoints("*.wild.example").is_empty(), "a wildcard is not a name to resolve");
        // The wildcard still has its (empty) entry, as a sync that made every endpoint gave it.
        answers_as_made(&r, &snapshot, &["httpbin.org", "*.wild.example"], &[80, 8443, 443]);
        assert!(r.contains("*.wild.example") && !r.serves_port("*.wild.example", 80));
    }

    #[test]
    fn declared_endpoints_share_their_declarations_label_maps() {
        use mesh_core::service::{EndpointDecl, EndpointLabels, EndpointMeta, ServiceDecl, ServicePort};
        let labels: EndpointLabels = [("app", "reviews"), ("version", "v1")]
            .into_iter()
            .map(|(k, v)| (Arc::<str>::from(k), Arc::<str>::from(v)))
            .collect();
        let meta = Arc::new(EndpointMeta { labels: labels.clone(), ..Default::default() });
        let endpoint = |address: &str| EndpointDecl::new(address, meta.clone());
        let mut builder = mesh_core::SnapshotBuilder::new(Default::default());
        builder.add_service(ServiceDecl {
            namespace: "default".into(),
            name: "reviews".into(),
            hosts: Box::new(["reviews.default.svc.cluster.local".into()]),
            ports: Box::new([
                ServicePort { number: 9080, name: "http".into(), protocol: "HTTP".into(), target_port: None },
                ServicePort { number: 9443, name: "grpc".into(), protocol: "GRPC".into(), target_port: None },
            ]),
            resolution: Resolution::Static,
            mesh_internal: true,
            endpoints: Box::new([endpoint("10.0.0.1"), endpoint("10.0.0.2")]),
            workload_selector: None,
            service_accounts: Box::new([]),
        });
        let r = Registry::new();
        r.sync_from_snapshot(&builder.build());
        let endpoints = r.endpoints("reviews.default.svc.cluster.local");
        assert_eq!(endpoints.len(), 4, "two addresses, two ports");
        assert!(endpoints.iter().all(|e| e.labels.ptr_eq(&labels)), "one map, not one per endpoint");
        let v1 =
            LabelSelector::new(&[("version".to_string(), "v1".to_string())].into_iter().collect::<BTreeMap<_, _>>());
        assert_eq!(r.select("reviews.default.svc.cluster.local", &v1).len(), 4);
    }

    #[test]
    fn an_endpoint_change_carries_the_identities_of_the_workloads_it_brings() {
        use mesh_core::service::{EndpointDecl, ServiceDecl, ServicePort};
        const HOST: &str = "reviews.default.svc.cluster.local";
        let decl = |address: &str, account: &str| ServiceDecl {
            namespace: "default".into(),
            name: "reviews".into(),
            hosts: Box::new([HOST.into()]),
            ports: Box::new([ServicePort {
                number: 9080,
                name: "http".into(),
                protocol: "HTTP".into(),
                target_port: None,
            }]),
            resolution: Resolution::Static,
            mesh_internal: true,
            endpoints: Box::new([EndpointDecl::new(address, Arc::default())]),
            workload_selector: None,
            service_accounts: Box::new([Arc::from(account)]),
        };
        let old = "spiffe://cluster.local/ns/default/sa/reviews";
        let new = "spiffe://cluster.local/ns/default/sa/reviews-v2";
        let mut builder = mesh_core::SnapshotBuilder::new(Default::default());
        builder.add_service(decl("10.0.0.1", old));
        let snapshot = builder.build();
        let r = Registry::new();
        r.sync_from_snapshot(&snapshot);
        let ids = |r: &Registry| r.service_accounts(HOST).map(|a| a.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(ids(&r), Some(vec![old.to_string()]));
        let clusters = crate::cluster::Clusters::new(r.clone(), &mesh_core::ClientIdentity::new("default", []));
        let destination = mesh_core::route::Destination::new(HOST);
        assert_eq!(&*clusters.get(&snapshot, &destination).service_accounts()[0], old);
        // The Pods roll out under another service account: an endpoint-only change, the snapshot
        // as it was; the cluster built after it expects the new identity.
        r.sync_hosts([(&Arc::<str>::from(HOST), &[Arc::new(decl("10.0.0.2", new))][..])], &[]);
        assert_eq!(ids(&r), Some(vec![new.to_string()]));
        let cluster = clusters.get(&snapshot, &destination);
        assert_eq!(cluster.endpoints().iter().map(|e| &*e.address).collect::<Vec<_>>(), ["10.0.0.2:9080"]);
        assert_eq!(cluster.service_accounts().iter().map(|a| &**a).collect::<Vec<_>>(), [new]);
        // And a host that loses its declarations loses its identities.
        r.sync_hosts([(&Arc::<str>::from(HOST), &[][..])], &[]);
        assert_eq!(ids(&r), None);
    }
}
