//! The admin server: what the proxy is doing, for operators and for Prometheus.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | Prometheus text: Istio's standard metrics and meshwork's own |
//! | `/config_dump` | JSON: generation, resources in force (each with its origin and, when its newest version was rejected, the diagnostics), every rejection, routes per binding, TCP and TLS passthrough ports, clusters |
//! | `/clusters` | JSON: each cluster's endpoints with labels, active requests and ejection state |
//! | `/ready` | 200 once the first configuration is applied and every attached source (the Kubernetes API) has listed each watched kind once; 503 naming what is pending until then |
//! | `/healthz` | 200 while the process runs |

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};

use crate::reload::ConfigSource;

/// Istio's default buckets for `istio_request_duration_milliseconds` (Istio's telemetry).
pub const ISTIO_DURATION_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];

/// Buckets for `istio_request_bytes` / `istio_response_bytes`: powers of ten, 1 B to 10 MB.
pub const ISTIO_SIZE_BUCKETS_BYTES: [f64; 8] = [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0, 10000000.0];

/// A Prometheus recorder that exports Istio's standard metrics as Istio's dashboards (Grafana's
/// Istio dashboards, Kiali) query them: `istio_request_duration_milliseconds` and the byte sizes
/// as histograms (`_bucket` series) with Istio's buckets, not summaries. Installs it as the
/// process's global `metrics` recorder and, when called inside a tokio runtime, runs its upkeep
/// every 5 s (the recorder keeps raw samples until upkeep folds them into buckets: without it
/// memory grows with every request). Serve the handle's `render()` (or pass it to [`router`]).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let prometheus = mesh_proxy::admin::install_prometheus_recorder()?;
/// // ... requests through the mesh ...
/// let text = prometheus.render(); // Prometheus text, for your /metrics
/// # Ok(()) }
/// ```
pub fn install_prometheus_recorder() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = prometheus_builder()?.install_recorder()?;
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let upkeep = handle.clone();
        runtime.spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
    }
    Ok(handle)
}

/// The builder [`install_prometheus_recorder`] uses (Istio's buckets), for a recorder of your
/// own (`build_recorder()` for a local one in tests, more buckets, a global prefix...).
pub fn prometheus_builder()
-> Result<metrics_exporter_prometheus::PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_milliseconds".into()), &ISTIO_DURATION_BUCKETS_MS)?
        .set_buckets_for_metric(Matcher::Suffix("_bytes".into()), &ISTIO_SIZE_BUCKETS_BYTES)
}

#[derive(Debug, Clone)]
struct Admin {
    source: ConfigSource,
    prometheus: Option<PrometheusHandle>,
}

/// The admin routes over `source`; `prometheus` renders `/metrics` (none: 404).
pub fn router(source: ConfigSource, prometheus: Option<PrometheusHandle>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/config_dump", get(config_dump))
        .route("/clusters", get(clusters))
        .route("/ready", get(ready))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Admin { source, prometheus })
}

async fn metrics(State(admin): State<Admin>) -> (http::StatusCode, String) {
    match &admin.prometheus {
        Some(handle) => {
            handle.run_upkeep();
            (http::StatusCode::OK, handle.render())
        }
        None => (http::StatusCode::NOT_FOUND, "no metrics recorder installed\n".into()),
    }
}

async fn ready(State(admin): State<Admin>) -> (http::StatusCode, String) {
    if admin.source.is_ready() {
        return (http::StatusCode::OK, "ready\n".into());
    }
    let pending: Vec<String> = admin.source.pending().iter().map(ToString::to_string).collect();
    (
        http::StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: waiting for the first list of {}\n", pending.join(", ")),
    )
}

/// `/config_dump`'s `resources`: each resource in force with its origin —
/// `{"kind", "namespace", "name", "source": "file", "file", "line"}` or
/// `{"kind", "namespace", "name", "source": "kubernetes", "resourceVersion"}` — and, when a newer
/// version was rejected (the last good one is in force), `"rejected": [diagnostic lines]`.
fn resources_json(source: &ConfigSource) -> Vec<Value> {
    let rejected = source.rejected();
    source
        .origins()
        .into_iter()
        .map(|r| {
            let mut o = json!({"kind": &*r.id.kind, "namespace": &*r.id.namespace, "name": &*r.id.name});
            let origin = match r.origin {
                Some(mesh_config::store::Origin::File { file, line }) => {
                    json!({"source": "file", "file": &*file, "line": line})
                }
                Some(mesh_config::store::Origin::Kubernetes { resource_version, .. }) => {
                    json!({"source": "kubernetes", "resourceVersion": resource_version.as_deref()})
                }
                None => json!({"source": null}),
            };
            if let (Some(o), Value::Object(origin)) = (o.as_object_mut(), origin) {
                o.extend(origin);
                let lines: Vec<String> = (rejected.iter())
                    .filter(|d| d.resource.as_ref() == Some(&r.id))
                    .map(mesh_config::store::diagnostic_line)
                    .collect();
                if !lines.is_empty() {
                    o.insert("rejected".into(), Value::from(lines));
                }
            }
            o
        })
        .collect()
}

async fn config_dump(State(admin): State<Admin>) -> Json<Value> {
    let status = admin.source.status();
    let snapshot = admin.source.mesh().snapshot();
    let bindings: Vec<Value> = snapshot
        .bindings()
        .map(|b| {
            let hosts: Vec<Value> = snapshot
                .virtual_hosts(b)
                .iter()
                .map(|vh| {
                    let rules: Vec<Value> = vh.rules.iter().map(|r| crate::explain::rule_json(r)).collect();
                    json!({"host": &*vh.pattern, "rules": rules})
                })
                .collect();
            json!({"binding": b.to_string(), "virtualHosts": hosts})
        })
        .collect();
    let route = |r: &mesh_core::l4::L4Route| {
        let destinations = crate::explain::destinations_json(&r.destinations);
        json!({"virtualService": &*r.virtual_service, "rule": r.rule, "destinations": destinations})
    };
    let l4: Vec<Value> = snapshot
        .l4_servers()
        .map(|(b, port, server)| match server {
            mesh_core::l4::L4Server::Tcp(r) => {
                json!({"binding": b.to_string(), "port": port, "kind": "tcp", "route": r.as_deref().map(route)})
            }
            mesh_core::l4::L4Server::Sni(names) => {
                let by_name: serde_json::Map<String, Value> =
                    names.iter().map(|(name, r)| (name.to_string(), route(r))).collect();
                json!({"binding": b.to_string(), "port": port, "kind": "tlsPassthrough", "sni": by_name})
            }
        })
        .collect();
    Json(json!({
        "generation": status.generation,
        "resources": resources_json(&admin.source),
        "rejections": status.rejections,
        "routes": bindings,
        "l4Servers": l4,
        "clusters": cluster_list(&admin.source),
    }))
}

fn cluster_list(source: &ConfigSource) -> Vec<Value> {
    source
        .mesh()
        .clusters()
        .all()
        .iter()
        .map(|c| {
            let d = c.destination();
            let endpoints: Vec<Value> = c
                .endpoints()
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    json!({
                        "address": &*e.address,
                        "labels": e.labels.iter().map(|(k, v)| (k.to_string(), Value::from(&**v))).collect::<serde_json::Map<_, _>>(),
                        "weight": e.weight,
                        "ejected": c.is_ejected(i),
                    })
                })
                .collect();
            json!({
                "host": &*d.host,
                "subset": d.subset.as_deref(),
                "port": d.port,
                "active": c.pool().active(),
                "pending": c.pool().pending(),
                "endpoints": endpoints,
            })
        })
        .collect()
}

async fn clusters(State(admin): State<Admin>) -> Json<Value> {
    Json(Value::from(cluster_list(&admin.source)))
}
