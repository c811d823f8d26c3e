//! Istio's standard metrics as a server-side sidecar reports them (`reporter="destination"`,
//! <https://istio.io/latest/docs/reference/config/metrics/>): `istio_requests_total` and
//! `istio_request_duration_milliseconds` (to the response's headers), with the peer's mTLS
//! identity as `source_principal` and its namespace as `source_workload_namespace` (what the
//! certificate proves; the other `source_*` labels need Istio's metadata exchange and are
//! `unknown`), this workload's labels as `destination_*`, and `connection_security_policy`
//! `mutual_tls` or `none`.
//!
//! TCP connections get `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`,
//! `istio_tcp_sent_bytes_total` and `istio_tcp_received_bytes_total` with the same peer labels.
//!
//! Metric handles are cached per label set; at most [`PRINCIPAL_LIMIT`] distinct peer identities
//! get their own label value (later ones are counted as `unknown`), so the label sets are bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use mesh_core::spiffe::SpiffeId;
use metrics::{Counter, Histogram, Label};
use rustc_hash::FxHashMap;

use crate::telemetry::{CLUSTER, Source};

/// The most distinct peer identities given their own label values.
pub const PRINCIPAL_LIMIT: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    peer: Option<SpiffeId>,
    mtls: bool,
    status: u16,
    grpc: bool,
}

#[derive(Debug)]
struct Handles {
    requests: Counter,
    duration: Histogram,
}

pub(super) struct Stats {
    destination: Source,
    principal: Arc<str>,
    service: Arc<str>,
    cache: ArcSwap<FxHashMap<Key, Arc<Handles>>>,
    write: Mutex<()>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats").field("workload", &self.destination.workload).finish_non_exhaustive()
    }
}

impl Stats {
    pub(super) fn new(destination: Source, principal: Option<&SpiffeId>, service: Option<&str>) -> Stats {
        Stats {
            destination,
            principal: Arc::from(principal.map_or_else(|| "unknown".to_string(), SpiffeId::to_string)),
            service: Arc::from(service.unwrap_or("unknown")),
            cache: ArcSwap::default(),
            write: Mutex::new(()),
        }
    }

    pub(super) fn record(&self, peer: Option<&SpiffeId>, status: u16, grpc: bool, elapsed: Duration) {
        let key = Key { peer: peer.cloned(), mtls: peer.is_some(), status, grpc };
        let handles = match self.cache.load().get(&key) {
            Some(h) => h.clone(),
            None => self.register(key),
        };
        handles.requests.increment(1);
        handles.duration.record(elapsed.as_secs_f64() * 1000.0);
    }

    fn register(&self, mut key: Key) -> Arc<Handles> {
        let _guard = self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.cache.load();
        if let Some(peer) = &key.peer {
            let peers: rustc_hash::FxHashSet<&SpiffeId> = current.keys().filter_map(|k| k.peer.as_ref()).collect();
            if peers.len() >= PRINCIPAL_LIMIT && !peers.contains(peer) {
                key.peer = None;
            }
        }
        if let Some(h) = current.get(&key) {
            return h.clone();
        }
        let labels = self.labels(&key);
        let handles = Arc::new(Handles {
            requests: metrics::counter!("istio_requests_total", labels.clone()),
            duration: metrics::histogram!("istio_request_duration_milliseconds", labels),
        });
        let mut next = FxHashMap::clone(&current);
        next.insert(key, handles.clone());
        self.cache.store(Arc::new(next));
        handles
    }

    /// Istio's TCP metrics of one inbound connection from `peer` (reporter `destination`).
    pub(super) fn tcp_connection(&self, peer: Option<&SpiffeId>) -> crate::telemetry::TcpConnection {
        // The peer labels as for HTTP, then TCP's own.
        let key = Key { peer: peer.cloned(), mtls: peer.is_some(), status: 0, grpc: false };
        let mut labels = self.labels(&key);
        labels.retain(|l| !matches!(l.key(), "request_protocol" | "response_code" | "grpc_response_status"));
        labels.push(Label::new("request_protocol", "tcp"));
        crate::telemetry::TcpConnection::open(labels)
    }

    fn labels(&self, key: &Key) -> Vec<Label> {
        let d = &self.destination;
        let unknown = || -> Arc<str> { Arc::from("unknown") };
        let (principal, namespace): (Arc<str>, Arc<str>) = match &key.peer {
            Some(id) => (Arc::from(id.to_string()), id.namespace.clone()),
            None => (unknown(), unknown()),
        };
        let service_name: Arc<str> = Arc::from(self.service.split('.').next().unwrap_or("unknown"));
        let service_namespace: Arc<str> = match self.service.split('.').nth(1) {
            Some(ns) => Arc::from(ns),
            None => unknown(),
        };
        vec![
            Label::new("reporter", "destination"),
            Label::new("source_workload", "unknown"),
            Label::new("source_workload_namespace", namespace),
            Label::new("source_principal", principal),
            Label::new("source_app", "unknown"),
            Label::new("source_version", "unknown"),
            Label::new("source_canonical_service", "unknown"),
            Label::new("source_canonical_revision", "unknown"),
            Label::new("source_cluster", "unknown"),
            Label::new("destination_workload", d.workload.clone()),
            Label::new("destination_workload_namespace", d.namespace.clone()),
            Label::new("destination_principal", self.principal.clone()),
            Label::new("destination_app", d.app.clone()),
            Label::new("destination_version", d.version.clone()),
            Label::new("destination_service", self.service.clone()),
            Label::new("destination_service_name", service_name),
            Label::new("destination_service_namespace", service_namespace),
            Label::new("destination_canonical_service", d.canonical_service.clone()),
            Label::new("destination_canonical_revision", d.canonical_revision.clone()),
            Label::new("destination_cluster", CLUSTER),
            Label::new("request_protocol", if key.grpc { "grpc" } else { "http" }),
            Label::new("response_code", key.status.to_string()),
            Label::new("grpc_response_status", ""),
            Label::new("response_flags", "-"),
            Label::new("connection_security_policy", if key.mtls { "mutual_tls" } else { "none" }),
        ]
    }
}
