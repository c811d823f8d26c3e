//! Istio's standard metrics of one request: the label sets, the metric handles cached per label
//! set, and the values recorded when a request ends (see the parent module's docs for the
//! metrics and labels).

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use mesh_core::ClientIdentity;
use metrics::{Counter, Histogram, Label};
use rustc_hash::FxHashMap;

use crate::balance::Upstream;
use crate::cluster::{EndpointMeta, WorkloadLabels, service_namespace};
use crate::error::ResponseFlags;

/// Istio's default cluster name.
pub(crate) const CLUSTER: &str = "Kubernetes";
/// The most label sets whose metric handles are cached.
const CACHE_LIMIT: usize = 4096;

/// How many distinct request-named hosts become metric label values (see `Shared::intern`).
const HOST_LIMIT: usize = 100;

/// Who is calling: the source labels of every metric.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) workload: Arc<str>,
    pub(crate) namespace: Arc<str>,
    pub(crate) app: Arc<str>,
    pub(crate) version: Arc<str>,
    pub(crate) canonical_service: Arc<str>,
    pub(crate) canonical_revision: Arc<str>,
}

impl Source {
    pub(crate) fn new(client: &ClientIdentity, workload: Option<&str>) -> Source {
        let w = WorkloadLabels::of(&client.labels);
        let unknown = || Arc::<str>::from("unknown");
        Source {
            workload: workload.map(Arc::from).unwrap_or_else(unknown),
            namespace: client.namespace.clone(),
            app: w.app.unwrap_or_else(unknown),
            version: w.version.unwrap_or_else(unknown),
            canonical_service: w.canonical_service.or_else(|| workload.map(Arc::from)).unwrap_or_else(unknown),
            canonical_revision: w.canonical_revision,
        }
    }
}

/// Cache key: which destination, and how the request ended. Pointers are pinned by the cached
/// entry holding their `Arc`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HandleKey {
    meta: usize,
    service: usize,
    status: u16,
    grpc: i16,
    flags: ResponseFlags,
    grpc_protocol: bool,
}

#[derive(Debug)]
struct Handles {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
    _pins: (Arc<EndpointMeta>, Arc<str>),
}

/// What every request of one telemetry layer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(super) source: Source,
    cache: ArcSwap<FxHashMap<HandleKey, Arc<Handles>>>,
    /// Hosts of requests answered with no routed destination (no route, redirects, direct responses),
    /// one shared copy each, so that their handles are cached like the others (registering
    /// handles builds 25 labels and looks them up in the recorder).
    hosts: ArcSwap<FxHashMap<Box<str>, Arc<str>>>,
    write: Mutex<()>,
    pub(super) access_log: bool,
    /// The label value past `HOST_LIMIT` hosts for passthrough requests (`PassthroughCluster`).
    passthrough: Arc<str>,
    /// The label value past `HOST_LIMIT` hosts for local answers, and for upstreams outside any
    /// cluster (`unknown`).
    unknown: Arc<str>,
}

/// What a finished request reports.
#[derive(Debug)]
pub(crate) struct Finished<'a> {
    pub(crate) upstream: Option<&'a Upstream>,
    /// With no upstream: the service the route chose, when it chose one.
    pub(crate) service: Option<&'a Arc<str>>,
    pub(crate) authority: Option<&'a str>,
    /// `x-request-id`, kept only for the access log.
    pub(crate) request_id: Option<&'a http::HeaderValue>,
    pub(crate) status: u16,
    pub(crate) grpc_status: Option<u32>,
    pub(crate) flags: ResponseFlags,
    pub(crate) grpc: bool,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
    pub(crate) millis: f64,
}

pub(super) fn flags_label(flags: ResponseFlags) -> Label {
    Label::new(
        "response_flags",
        flags.as_static_str().map_or_else(|| metrics::SharedString::from(flags.to_string()), Into::into),
    )
}

fn status_label(status: u16) -> metrics::SharedString {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        301 => "301".into(),
        302 => "302".into(),
        400 => "400".into(),
        404 => "404".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        0 => "0".into(),
        other => other.to_string().into(),
    }
}

/// The host a request named, for a request with no cluster.
fn local_host<'a>(f: &Finished<'a>) -> &'a str {
    f.authority.map(|a| mesh_core::request::split_authority(a).0).unwrap_or("unknown")
}

impl Shared {
    pub(super) fn new(source: Source, access_log: bool) -> Shared {
        Shared {
            source,
            cache: ArcSwap::default(),
            hosts: ArcSwap::default(),
            write: Mutex::new(()),
            access_log,
            passthrough: Arc::from(crate::cluster::PASSTHROUGH_CLUSTER),
            unknown: Arc::from("unknown"),
        }
    }

    fn labels(&self, f: &Finished<'_>, meta: &EndpointMeta, service: &Arc<str>) -> Vec<Label> {
        let mut labels = self.peer_labels(meta, service);
        labels.extend([
            Label::new("request_protocol", if f.grpc { "grpc" } else { "http" }),
            Label::new("response_code", status_label(f.status)),
            Label::new(
                "grpc_response_status",
                f.grpc_status.map_or_else(|| "".into(), |c| metrics::SharedString::from(c.to_string())),
            ),
            flags_label(f.flags),
            Label::new("connection_security_policy", "unknown"),
        ]);
        labels
    }

    /// The `source_*` and `destination_*` labels (and `reporter`).
    pub(super) fn peer_labels(&self, meta: &EndpointMeta, service: &Arc<str>) -> Vec<Label> {
        let s = &self.source;
        let service_name: Arc<str> = match service_namespace(service) {
            Some(_) => Arc::from(service.split('.').next().unwrap_or(service)),
            None => service.clone(),
        };
        let service_namespace: Arc<str> = Arc::from(service_namespace(service).unwrap_or("unknown"));
        vec![
            Label::new("reporter", "source"),
            Label::new("source_workload", s.workload.clone()),
            Label::new("source_workload_namespace", s.namespace.clone()),
            Label::new("source_principal", "unknown"),
            Label::new("source_app", s.app.clone()),
            Label::new("source_version", s.version.clone()),
            Label::new("source_canonical_service", s.canonical_service.clone()),
            Label::new("source_canonical_revision", s.canonical_revision.clone()),
            Label::new("source_cluster", CLUSTER),
            Label::new("destination_workload", meta.workload.clone()),
            Label::new("destination_workload_namespace", meta.namespace.clone()),
            Label::new("destination_principal", "unknown"),
            Label::new("destination_app", meta.app.clone()),
            Label::new("destination_version", meta.version.clone()),
            Label::new("destination_service", service.clone()),
            Label::new("destination_service_name", service_name),
            Label::new("destination_service_namespace", service_namespace),
            Label::new("destination_canonical_service", meta.canonical_service.clone()),
            Label::new("destination_canonical_revision", meta.canonical_revision.clone()),
            Label::new("destination_cluster", if meta.workload.as_ref() == "unknown" { "unknown" } else { CLUSTER }),
        ]
    }

    fn register(&self, f: &Finished<'_>, meta: Arc<EndpointMeta>, service: Arc<str>) -> Arc<Handles> {
        let labels = self.labels(f, &meta, &service);
        Arc::new(Handles {
            requests: metrics::counter!("istio_requests_total", labels.clone()),
            duration: metrics::histogram!("istio_request_duration_milliseconds", labels.clone()),
            request_bytes: metrics::histogram!("istio_request_bytes", labels.clone()),
            response_bytes: metrics::histogram!("istio_response_bytes", labels),
            _pins: (meta, service),
        })
    }

    pub(crate) fn record(&self, f: Finished<'_>) {
        // Borrowed, not cloned: on the common path (a cached label set) no reference count is
        // written here (each would be a write to a line every thread answering requests of the
        // destination shares).
        let unknown_meta;
        let interned;
        let (meta, service): (&Arc<EndpointMeta>, Option<&Arc<str>>) = match f.upstream {
            // A passthrough: the host as the caller named it (Istio's `destination_service` for
            // `PassthroughCluster`), while fewer than `CACHE_LIMIT` are kept.
            Some(u) if u.cluster.as_ref().is_some_and(|c| c.is_passthrough()) => {
                interned = self.intern(local_host(&f), &self.passthrough);
                (&u.meta, Some(&interned))
            }
            Some(u) => (&u.meta, u.cluster.as_ref().map(|c| &c.destination().host)),
            // Answered with no upstream after a route chose its service (fault abort, route
            // timeout): that service, as Istio reads it from the route's cluster.
            None if f.service.is_some() => {
                unknown_meta = EndpointMeta::unknown();
                (&unknown_meta, f.service)
            }
            // Answered with no upstream and no routed service: the host as the caller named it.
            None => {
                unknown_meta = EndpointMeta::unknown();
                interned = self.intern(local_host(&f), &self.unknown);
                (&unknown_meta, Some(&interned))
            }
        };
        let Some(service) = service else {
            // An upstream outside any cluster (a custom client below the stack): its labels
            // are all `unknown`.
            let handles = self.register(&f, meta.clone(), self.unknown.clone());
            return self.update(&handles, &f);
        };
        let key = HandleKey {
            meta: Arc::as_ptr(meta) as *const u8 as usize,
            service: Arc::as_ptr(service) as *const u8 as usize,
            status: f.status,
            grpc: f.grpc_status.map_or(-1, |c| c.min(i16::MAX as u32) as i16),
            flags: f.flags,
            grpc_protocol: f.grpc,
        };
        if let Some(handles) = self.cache.load().get(&key) {
            return self.update(handles, &f);
        }
        let handles = self.register(&f, meta.clone(), service.clone());
        {
            let _guard = self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let current = self.cache.load();
            if current.len() < CACHE_LIMIT {
                let mut next = FxHashMap::clone(&current);
                next.insert(key, handles.clone());
                self.cache.store(Arc::new(next));
            }
        }
        self.update(&handles, &f);
    }

    /// The shared copy of `host` (see `hosts`); `overflow` once `HOST_LIMIT` hosts are kept: a
    /// label value taken from the request, so bounded — a client naming hosts at will cannot
    /// grow the number of metric series past it.
    fn intern(&self, host: &str, overflow: &Arc<str>) -> Arc<str> {
        if let Some(h) = self.hosts.load().get(host) {
            return h.clone();
        }
        let _guard = self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.hosts.load();
        if let Some(h) = current.get(host) {
            return h.clone();
        }
        if current.len() >= HOST_LIMIT {
            return overflow.clone();
        }
        let interned: Arc<str> = Arc::from(host);
        let mut next = FxHashMap::clone(&current);
        next.insert(Box::from(host), interned.clone());
        self.hosts.store(Arc::new(next));
        interned
    }

    fn update(&self, handles: &Handles, f: &Finished<'_>) {
        handles.requests.increment(1);
        handles.duration.record(f.millis);
        handles.request_bytes.record(f.request_bytes as f64);
        handles.response_bytes.record(f.response_bytes as f64);
        if self.access_log {
            tracing::info!(
                target: "meshwork::access",
                authority = f.authority.unwrap_or("-"),
                request_id = f.request_id.and_then(|v| v.to_str().ok()).unwrap_or("-"),
                response_code = f.status,
                response_flags = %f.flags,
                grpc_status = f.grpc_status,
                bytes_sent = f.request_bytes,
                bytes_received = f.response_bytes,
                duration_ms = f.millis,
                upstream_host = f.upstream.and_then(|u| u.address.as_deref()).unwrap_or("-"),
                upstream_cluster = f.upstream.and_then(|u| u.cluster.as_ref()).map_or("-", |c| &*c.destination().host),
                "request"
            );
        }
    }
}
