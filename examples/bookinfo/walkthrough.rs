//! The walkthrough's steps, the traffic each sends and what readers saw (shared by the example and
//! `tests/bookinfo.rs`).

#![allow(missing_docs, dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshwork::config::{ConfigStore, LoadOptions, Resource, load_paths};
use meshwork::core::Snapshot;
use meshwork::tower::ResponseFlags;
use tower::ServiceExt;

use super::services::{Bookinfo, Page, browse};

/// Who sends traffic at a step.
#[derive(Debug, Clone, Copy)]
pub enum Traffic {
    /// Anonymous readers and readers signed in as jason.
    Readers { anonymous: usize, jason: usize },
    /// Istio's circuit-breaking task: fortio's concurrent connections against httpbin.
    Load { connections: usize, requests: usize },
}

/// One step of the walkthrough: what is applied, who browses, what Istio users see.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub name: &'static str,
    pub files: &'static [&'static str],
    pub traffic: Traffic,
    pub expected: &'static str,
}

pub const STEPS: &[Step] = &[
    Step {
        name: "1 route all to v1",
        files: &["destination-rule-all.yaml", "virtual-service-all-v1.yaml"],
        traffic: Traffic::Readers { anonymous: 200, jason: 50 },
        expected: "no stars for anyone",
    },
    Step {
        name: "2 reviews to v3",
        files: &["virtual-service-reviews-v3.yaml"],
        traffic: Traffic::Readers { anonymous: 200, jason: 50 },
        expected: "red stars for everyone",
    },
    Step {
        name: "3 jason to v2",
        files: &["virtual-service-reviews-jason-v2-v3.yaml"],
        traffic: Traffic::Readers { anonymous: 200, jason: 200 },
        expected: "jason black, others red",
    },
    Step {
        name: "4 shift 90/10",
        files: &["virtual-service-reviews-90-10.yaml"],
        traffic: Traffic::Readers { anonymous: 2000, jason: 0 },
        expected: "v1 90 %, v2 10 %",
    },
    Step {
        name: "5 shift 80/20",
        files: &["virtual-service-reviews-80-20.yaml"],
        traffic: Traffic::Readers { anonymous: 2000, jason: 0 },
        expected: "v1 80 %, v2 20 %",
    },
    Step {
        name: "6 ratings delay 7s",
        files: &["virtual-service-reviews-test-v2.yaml", "virtual-service-ratings-test-delay.yaml"],
        traffic: Traffic::Readers { anonymous: 100, jason: 8 },
        expected: "jason: reviews unavailable (6 s)",
    },
    Step {
        name: "7 ratings abort",
        files: &["virtual-service-ratings-test-abort.yaml"],
        traffic: Traffic::Readers { anonymous: 100, jason: 50 },
        expected: "jason: ratings unavailable",
    },
    Step {
        name: "8 circuit breaker",
        files: &["circuit-breaker-httpbin.yaml"],
        traffic: Traffic::Load { connections: 3, requests: 30 },
        expected: "some 503 UO, then recovers",
    },
];

/// The same walkthrough with the Gateway API (`--api gateway-api`): the HTTPRoutes of Istio's
/// `samples/bookinfo/gateway-api/` on the mesh binding (parent: the Service), backends the
/// per-version Services of `bookinfo-versions.yaml`.
pub const GATEWAY_API_STEPS: &[Step] = &[
    Step {
        name: "1 route all to v1",
        files: &["route-all-v1.yaml"],
        traffic: Traffic::Readers { anonymous: 200, jason: 50 },
        expected: "no stars for anyone",
    },
    Step {
        name: "2 reviews to v3",
        files: &["route-reviews-v3.yaml"],
        traffic: Traffic::Readers { anonymous: 200, jason: 50 },
        expected: "red stars for everyone",
    },
    Step {
        name: "3 shift 50/50 v1/v3",
        files: &["route-reviews-50-v3.yaml"],
        traffic: Traffic::Readers { anonymous: 1000, jason: 0 },
        expected: "v1 50 %, v3 50 %",
    },
    Step {
        name: "4 shift 90/10 v1/v2",
        files: &["route-reviews-90-10.yaml"],
        traffic: Traffic::Readers { anonymous: 1000, jason: 0 },
        expected: "v1 90 %, v2 10 %",
    },
    Step {
        name: "5 back to v1",
        files: &["route-reviews-v1.yaml"],
        traffic: Traffic::Readers { anonymous: 200, jason: 50 },
        expected: "no stars for anyone",
    },
];

/// Which API the walkthrough's files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Istio's VirtualServices and DestinationRules.
    Istio,
    /// The Kubernetes Gateway API's HTTPRoutes.
    GatewayApi,
}

impl Api {
    /// The steps of the walkthrough with this API.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Api::Istio => STEPS,
            Api::GatewayApi => GATEWAY_API_STEPS,
        }
    }
}

/// What one group of requests saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub requests: usize,
    pub versions: BTreeMap<String, usize>,
    pub stars: BTreeMap<String, usize>,
    pub statuses: BTreeMap<String, usize>,
    pub latencies: Vec<Duration>,
}

impl Seen {
    fn add(&mut self, status: String, version: Option<String>, stars: String, took: Duration) {
        self.requests += 1;
        *self.statuses.entry(status).or_default() += 1;
        if let Some(v) = version {
            *self.versions.entry(v).or_default() += 1;
        }
        *self.stars.entry(stars).or_default() += 1;
        self.latencies.push(took);
    }

    /// Share of requests answered by `version` (`v1`…).
    pub fn share(&self, version: &str) -> f64 {
        self.versions.get(&format!("reviews-{version}")).copied().unwrap_or(0) as f64 / self.requests.max(1) as f64
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    }

    pub fn describe(map: &BTreeMap<String, usize>, total: usize) -> String {
        map.iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| format!("{k} {:.0}%", *v as f64 * 100.0 / total.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn what_was_seen(page: &Page) -> String {
    if page.reviews_unavailable {
        "reviews unavailable".into()
    } else if page.ratings_unavailable {
        "ratings unavailable".into()
    } else {
        match &page.stars {
            Some(c) => format!("{c} stars"),
            None => "no stars".into(),
        }
    }
}

/// Send one step's traffic; returns the groups (`anonymous`, `jason`, or `fortio` …).
pub async fn run_traffic(bookinfo: &Bookinfo, traffic: Traffic) -> Result<Vec<(&'static str, Seen)>> {
    match traffic {
        Traffic::Readers { anonymous, jason } => {
            let mut groups = Vec::new();
            for (label, user, n) in [("anonymous", None, anonymous), ("jason", Some("jason"), jason)] {
                if n > 0 {
                    groups.push((label, readers(bookinfo.productpage, user, n).await?));
                }
            }
            Ok(groups)
        }
        Traffic::Load { connections, requests } => {
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let fortio = bookinfo.fortio.clone();
                tasks.push(tokio::spawn(async move {
                    let mut seen = Seen::default();
                    for _ in 0..requests {
                        let started = tokio::time::Instant::now();
                        let req = http::Request::get("http://httpbin:8000/get").body(Empty::<Bytes>::new())?;
                        let response = fortio.clone().oneshot(req).await?;
                        let status = response.status().as_u16();
                        let flags = ResponseFlags::of(&response);
                        let _ = response.into_body().collect().await;
                        let code = if flags.is_empty() { status.to_string() } else { format!("{status} {flags}") };
                        seen.add(code, None, String::new(), started.elapsed());
                    }
                    anyhow::Ok(seen)
                }));
            }
            let mut total = Seen::default();
            for t in tasks {
                let s = t.await??;
                total.requests += s.requests;
                total.latencies.extend(s.latencies);
                for (k, v) in s.statuses {
                    *total.statuses.entry(k).or_default() += v;
                }
            }
            // After the burst, one request alone goes through: the breaker closes again.
            let started = tokio::time::Instant::now();
            let req = http::Request::get("http://httpbin:8000/get").body(Empty::<Bytes>::new())?;
            let status = bookinfo.fortio.clone().oneshot(req).await?.status().as_u16();
            let mut after = Seen::default();
            after.add(status.to_string(), None, String::new(), started.elapsed());
            Ok(vec![("fortio", total), ("then 1", after)])
        }
    }
}

/// `n` page views as `user`, 16 at a time.
async fn readers(productpage: SocketAddr, user: Option<&'static str>, n: usize) -> Result<Seen> {
    let browser: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (browser, limit) = (browser.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let started = tokio::time::Instant::now();
            let page = browse(&browser, productpage, user).await?;
            anyhow::Ok((page, started.elapsed()))
        }));
    }
    let mut seen = Seen::default();
    for t in tasks {
        let (page, took) = t.await??;
        seen.add(page.status.to_string(), page.reviews.clone(), what_was_seen(&page), took);
    }
    Ok(seen)
}

/// `kubectl apply` replaces a resource of the same kind, namespace and name: keep the last
/// version of each, at the position of the first.
fn kubectl_apply_order(resources: Vec<Resource>) -> Vec<Resource> {
    let mut position: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Resource> = Vec::new();
    for r in resources {
        let id = r.id().to_string();
        match position.get(&id) {
            Some(&i) => out[i] = r,
            None => {
                position.insert(id, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// The snapshot after applying the files of steps `0..=step`, in order.
pub fn config_through(step: usize) -> Result<Snapshot> {
    api_config_through(Api::Istio, step)
}

/// The snapshot after applying the files of `api`'s steps `0..=step`, in order (for the Gateway
/// API, after the Services the routes name).
pub fn api_config_through(api: Api, step: usize) -> Result<Snapshot> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bookinfo/config");
    let dir = match api {
        Api::Istio => base,
        Api::GatewayApi => base.join("gateway-api"),
    };
    let services: &[&str] =
        if api == Api::GatewayApi { &["bookinfo-services.yaml", "bookinfo-versions.yaml"] } else { &[] };
    let steps = api.steps();
    let files: Vec<PathBuf> = services
        .iter()
        .map(|f| dir.join(f))
        .chain(steps[..=step].iter().flat_map(|s| s.files.iter().map(|f| dir.join(f))))
        .collect();
    let mut loaded = load_paths(&files, &LoadOptions::default());
    anyhow::ensure!(loaded.failed.is_empty(), "unreadable config: {:?}", loaded.failed);
    loaded.resources = kubectl_apply_order(loaded.resources);
    let mut store = ConfigStore::default();
    let report = store.apply(loaded);
    if let Some(e) = report.errors().next() {
        anyhow::bail!("step {}: {e}", steps[step].name);
    }
    Ok(store.snapshot().clone())
}
