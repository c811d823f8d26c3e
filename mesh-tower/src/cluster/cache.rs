//! [`Clusters`]: the cache of clusters by destination, rebuilt when the registry or the
//! DestinationRule changes, keeping connection-pool counters, outlier state and balancers across
//! rebuilds (see the parent module's docs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use mesh_core::balance::Balancer;
use mesh_core::budget::ConcurrencyBudget;
use mesh_core::locality::{self, Locality};
use mesh_core::outlier::OutlierDetector;
use mesh_core::policy::{DestinationPolicy, PolicyParts, TlsMode};
use mesh_core::pool::PoolLimits;
use mesh_core::route::Destination;
use mesh_core::{ClientIdentity, Snapshot};
use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::{Cluster, EndpointMeta, Outlier, UpstreamConnect, UpstreamTls, lock, service_namespace};
use crate::registry::{Endpoint, Registry};

/// Each endpoint's locality priority for a client at `client`, when Istio would apply locality
/// failover to this cluster: the policy leaves locality load balancing on (Istio's default), sets
/// no mode meshwork does not apply (`distribute`, `failoverPriority`), and has outlier detection
/// (Istio's condition: without it a failed locality is never detected). `None` also when every
/// endpoint is as near as the others (nothing to prefer).
fn locality_priorities(client: &Locality, parts: &PolicyParts, endpoints: &[Endpoint]) -> Option<Box<[u8]>> {
    let setting = parts.locality.as_ref();
    if parts.outlier_detection.is_none()
        || setting.is_some_and(|s| s.enabled == Some(false) || s.unapplied_mode)
        || endpoints.is_empty()
    {
        return None;
    }
    let failover = setting.map_or(&[][..], |s| &s.failover[..]);
    let mut priorities: Vec<u8> = endpoints
        .iter()
        .map(|e| locality::priority(client, e.locality.as_deref().map(Locality::parse).as_ref(), failover))
        .collect();
    locality::compact(&mut priorities);
    priorities.iter().any(|p| *p != 0).then(|| priorities.into_boxed_slice())
}

/// Clusters by service FQDN (each with its subsets and ports).
type ClusterMap = FxHashMap<Arc<str>, Vec<Arc<Cluster>>>;

/// The cache of clusters (see the module docs). Cheap to clone: one shared `Arc` (the stack
/// holds it twice and a caller may clone the stack per request).
#[derive(Debug, Clone)]
pub struct Clusters {
    inner: Arc<ClustersInner>,
}

#[derive(Debug)]
struct ClustersInner {
    registry: Registry,
    client_namespace: Arc<str>,
    client_labels: std::collections::BTreeMap<Arc<str>, Arc<str>>,
    client_locality: Option<Locality>,
    map: ArcSwap<ClusterMap>,
    write: Mutex<()>,
    epoch: Instant,
    /// The one cluster of every passthrough request (see [`Clusters::passthrough`]).
    passthrough: std::sync::OnceLock<Arc<Cluster>>,
}

/// The name of the passthrough cluster, as Istio names Envoy's (`PassthroughCluster`).
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

impl Clusters {
    /// Clusters over `registry`, for a client in `client`'s namespace (DestinationRule choice).
    pub fn new(registry: Registry, client: &ClientIdentity) -> Self {
        Clusters {
            inner: Arc::new(ClustersInner {
                registry,
                client_namespace: client.namespace.clone(),
                client_labels: client.labels.clone(),
                client_locality: client.locality.clone(),
                map: ArcSwap::default(),
                write: Mutex::default(),
                epoch: Instant::now(),
                passthrough: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The cluster every request for a host nothing declares goes through under `ALLOW_ANY`
    /// (Envoy's `PassthroughCluster`): no endpoints (the request keeps its own authority), no
    /// DestinationRule, one set of counters. Such requests never create a cluster of their own,
    /// so a client naming hosts at will cannot grow the mesh's state.
    pub fn passthrough(&self) -> Arc<Cluster> {
        self.inner
            .passthrough
            .get_or_init(|| {
                let destination = Destination { host: Arc::from(PASSTHROUGH_CLUSTER), subset: None, port: None };
                let mut cluster = self.build(&destination, None, self.inner.registry.version(), None);
                cluster.known = false;
                cluster.passthrough = true;
                cluster.stats_name = Arc::from(PASSTHROUGH_CLUSTER);
                Arc::new(cluster)
            })
            .clone()
    }

    /// Drop the clusters a configuration swap left idle: those no request has used since the
    /// snapshot before `previous_generation`'s (not looked up under it or a later one), that no
    /// request holds, and whose host the registry no longer has (a registered service keeps its
    /// cluster — ejections and circuit-breaker counts — however long it is idle). Called by
    /// [`crate::Mesh::update`]: clusters of removed config do not outlive it.
    pub fn sweep(&self, previous_generation: u64) {
        let _guard = self.inner.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.inner.map.load();
        let keep = |c: &Arc<Cluster>| {
            Arc::strong_count(c) > 1
                || c.checked_generation.load(Ordering::Acquire) >= previous_generation
                || self.inner.registry.contains(&c.destination.host)
        };
        if current.values().flatten().all(keep) {
            return;
        }
        // Decided on the current map before anything is cloned (a clone counts as a holder).
        let next: ClusterMap = current
            .iter()
            .filter_map(|(host, list)| {
                let kept: Vec<Arc<Cluster>> = list.iter().filter(|c| keep(c)).cloned().collect();
                (!kept.is_empty()).then(|| (host.clone(), kept))
            })
            .collect();
        tracing::debug!(
            target: "meshwork::cluster",
            before = current.values().map(Vec::len).sum::<usize>(),
            after = next.values().map(Vec::len).sum::<usize>(),
            "idle clusters dropped"
        );
        self.inner.map.store(Arc::new(next));
    }

    /// Every cluster built so far.
    pub fn all(&self) -> Vec<Arc<Cluster>> {
        self.inner.map.load().values().flatten().cloned().collect()
    }

    /// The cluster for `destination` under `snapshot` (built or refreshed when needed).
    pub fn get(&self, snapshot: &Snapshot, destination: &Destination) -> Arc<Cluster> {
        let version = self.inner.registry.version();
        let generation = snapshot.generation();
        let same =
            |c: &Arc<Cluster>| c.destination.subset == destination.subset && c.destination.port == destination.port;
        let map = self.inner.map.load();
        let cached = map.get(&*destination.host).and_then(|l| l.iter().find(|c| same(c)));
        // Checked against this very snapshot already (it never changes), and the registry has not
        // changed since it was built: no DestinationRule lookup on the request path.
        if let Some(c) = cached
            && c.registry_version == version
            && c.checked_generation.load(Ordering::Acquire) == generation
        {
            return c.clone();
        }
        let policy =
            snapshot.destination_policy_for(&destination.host, &self.inner.client_namespace, &self.inner.client_labels);
        // The same rule, and the service port still speaks what it spoke (a reload may change it).
        let fresh = |c: &Arc<Cluster>| {
            c.registry_version == version
                && match (&c.policy, policy) {
                    (None, None) => true,
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    _ => false,
                }
                && c.http2 == mesh_core::protocol::upstream_http2(&c.parts, snapshot, destination)
        };
        if let Some(c) = cached
            && fresh(c)
        {
            c.checked_generation.store(generation, Ordering::Release);
            return c.clone();
        }
        drop(map);
        let _guard = self.inner.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let map = self.inner.map.load();
        let previous = map.get(&*destination.host).and_then(|l| l.iter().find(|c| same(c)));
        if let Some(c) = previous
            && fresh(c)
        {
            c.checked_generation.store(generation, Ordering::Release);
            return c.clone();
        }
        let mut cluster = self.build(destination, policy.cloned(), version, previous.map(|c| &**c));
        cluster.http2 = mesh_core::protocol::upstream_http2(&cluster.parts, snapshot, destination);
        cluster.checked_generation = AtomicU64::new(generation);
        let cluster = Arc::new(cluster);
        let mut next = FxHashMap::clone(&map);
        let list = next.entry(destination.host.clone()).or_default();
        list.retain(|c| !same(c));
        list.push(cluster.clone());
        self.inner.map.store(Arc::new(next));
        cluster
    }

    fn build(
        &self,
        destination: &Destination,
        policy: Option<Arc<DestinationPolicy>>,
        version: u64,
        previous: Option<&Cluster>,
    ) -> Cluster {
        let parts =
            policy.as_ref().map(|p| p.resolve(destination.subset.as_deref(), destination.port)).unwrap_or_default();
        // A Kubernetes service name (`name.ns.svc.<domain>`) is the mesh's own: with nothing
        // registered it has no endpoints (503 `UH`), rather than being dialled by DNS.
        let known = self.inner.registry.contains(&destination.host) || service_namespace(&destination.host).is_some();
        let mut endpoints: Vec<Endpoint> = self.inner.registry.endpoints(&destination.host);
        let mut empty_reason = endpoints.is_empty().then(|| "no endpoint is registered for the service".to_string());
        if let Some(subset) = &destination.subset {
            match policy.as_ref().and_then(|p| p.subset(subset)) {
                Some(s) => endpoints.retain(|e| s.labels.matches(&e.labels)),
                // A subset no DestinationRule defines has no endpoints (Istio answers 503).
                None => {
                    endpoints.clear();
                    empty_reason = Some(format!("no DestinationRule for the host defines subset `{subset}`"));
                }
            }
            if empty_reason.is_none() && endpoints.is_empty() {
                empty_reason = Some(format!("no endpoint has the labels of subset `{subset}`"));
            }
        }
        if let Some(port) = destination.port {
            endpoints.retain(|e| e.service_port.is_none_or(|p| p == port));
            if empty_reason.is_none() && endpoints.is_empty() {
                empty_reason = Some(if port == 0 {
                    "the request's port is not a port of the service".to_string()
                } else {
                    format!("no endpoint serves service port {port}")
                });
            }
        }
        let endpoints: Arc<[Endpoint]> = endpoints.into();
        // The service port for the stats name: the destination's, else the one port every
        // endpoint serves (Istio's cluster names always carry the port).
        let stats_port = destination.port.filter(|p| *p != 0).or_else(|| {
            let first = endpoints.first()?.service_port?;
            endpoints.iter().all(|e| e.service_port == Some(first)).then_some(first)
        });
        let namespace: Arc<str> = Arc::from(service_namespace(&destination.host).unwrap_or("unknown"));
        let meta = endpoints.iter().map(|e| Arc::new(EndpointMeta::from_endpoint(e, &namespace))).collect();
        let same_endpoints = previous.is_some_and(|p| p.endpoints == endpoints);
        let balancer = match previous {
            Some(p) if same_endpoints && p.load_balancer == parts.load_balancer => p.balancer.clone(),
            _ => {
                let keys: Vec<&str> = endpoints.iter().map(|e| &*e.address).collect();
                let weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
                Arc::new(Balancer::new(parts.load_balancer.as_ref(), &keys, &weights))
            }
        };
        let outlier = parts.outlier_detection.clone().map(|config| match previous.and_then(|p| p.outlier.as_ref()) {
            Some(o) if same_endpoints && *lock(&o.detector).config() == config => o.clone(),
            _ => Arc::new(Outlier::new(OutlierDetector::new(config, endpoints.len()), endpoints.len())),
        });
        let active = (0..endpoints.len())
            .map(|i| {
                let carried = previous
                    .filter(|_| same_endpoints)
                    .and_then(|p| p.active.get(i))
                    .map_or(0, |a| a.load(Ordering::Relaxed));
                AtomicU64::new(carried)
            })
            .collect();
        let priorities =
            self.inner.client_locality.as_ref().and_then(|client| locality_priorities(client, &parts, &endpoints));
        // An endpoint the previous build had keeps its joining time; a new one joins now.
        let now = Instant::now();
        let before: FxHashMap<&str, Instant> = previous
            .map(|p| p.endpoints.iter().zip(p.joined.iter()).map(|(e, j)| (&*e.address, *j)).collect())
            .unwrap_or_default();
        let joined = endpoints.iter().map(|e| before.get(&*e.address).copied().unwrap_or(now)).collect();
        tracing::debug!(
            target: "meshwork::cluster",
            host = %destination.host,
            subset = destination.subset.as_deref().unwrap_or(""),
            endpoints = endpoints.len(),
            locality_levels = priorities.as_deref().map_or(1, |p| p.iter().max().map_or(1, |m| usize::from(*m) + 1)),
            "cluster built"
        );
        Cluster {
            destination: destination.clone(),
            known,
            limits: PoolLimits::from_policy(parts.connection_pool.as_ref()),
            retry_budget: policy
                .as_ref()
                .and_then(|p| p.retry_budget(destination.subset.as_deref()))
                .map(ConcurrencyBudget::from),
            pool: previous.map_or_else(Arc::default, |p| p.pool.clone()),
            released: previous.map_or_else(Arc::default, |p| p.released.clone()),
            authorities: endpoints
                .iter()
                .map(|e| http::uri::Authority::from_maybe_shared(bytes::Bytes::from(e.address.to_string())).ok())
                .collect(),
            endpoints,
            meta,
            balancer,
            load_balancer: parts.load_balancer.clone(),
            active,
            outlier,
            policy,
            tls: parts
                .tls
                .as_ref()
                .filter(|t| matches!(t.mode, TlsMode::Simple | TlsMode::Mutual))
                .map(|t| UpstreamTls(Arc::new(t.clone()))),
            http2: false,
            priorities,
            joined,
            connect: parts
                .connection_pool
                .as_ref()
                .map(|p| UpstreamConnect { timeout: p.connect_timeout, keepalive: p.tcp_keepalive })
                .filter(|c| c.timeout.is_some() || c.keepalive.is_some()),
            parts,
            registry_version: version,
            service_accounts: self.inner.registry.service_accounts(&destination.host),
            checked_generation: AtomicU64::new(u64::MAX),
            epoch: self.inner.epoch,
            host_header: arc_swap::ArcSwapOption::empty(),
            passthrough: false,
            stats_name: Arc::from(format!(
                "outbound|{}|{}|{}",
                stats_port.map(|p| p.to_string()).unwrap_or_default(),
                destination.subset.as_deref().unwrap_or(""),
                destination.host
            )),
            empty_reason,
            reported_empty: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(yaml: &str) -> Snapshot {
        let mut store = mesh_config::ConfigStore::default();
        let loaded = mesh_config::load_str(yaml, None, &mesh_config::LoadOptions::default()).expect("yaml");
        let report = store.apply(loaded);
        assert_eq!(report.errors().count(), 0, "{:?}", report.diagnostics);
        store.snapshot().clone()
    }

    #[test]
    fn a_cluster_is_reused_within_a_snapshot_and_follows_a_new_one() {
        let service_entry = |protocol: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: api, namespace: default}}\n\
                 spec:\n  hosts: [api.example.com]\n  ports: [{{number: 80, name: web, protocol: {protocol}}}]\n  \
                 resolution: DNS\n"
            )
        };
        let http = snapshot(&service_entry("HTTP"));
        let grpc = snapshot(&service_entry("GRPC"));
        assert_ne!(http.generation(), grpc.generation());
        let clusters = Clusters::new(Registry::new(), &ClientIdentity::new("default", []));
        let d = Destination { host: Arc::from("api.example.com"), subset: None, port: Some(80) };
        let first = clusters.get(&http, &d);
        assert!(!first.http2());
        assert!(Arc::ptr_eq(&first, &clusters.get(&http, &d)), "same snapshot, same cluster");
        assert!(Arc::ptr_eq(&first, &clusters.get(&http.clone(), &d)), "a clone is the same snapshot");
        assert!(clusters.get(&grpc, &d).http2(), "the port became gRPC: the cluster speaks HTTP/2");
        assert!(!clusters.get(&http, &d).http2(), "and back");
    }

    #[test]
    fn kubernetes_namespaces_come_from_the_fqdn() {
        assert_eq!(service_namespace("reviews.default.svc.cluster.local"), Some("default"));
        assert_eq!(service_namespace("httpbin.org"), None);
    }
}
