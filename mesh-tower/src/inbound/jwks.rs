//! Key sets for RequestAuthentication rules with a `jwksUri`: fetched, cached and refreshed by
//! the layer, as istiod does for its sidecars.
//!
//! Istio's default (`PILOT_JWT_ENABLE_REMOTE_JWKS=false`, istio/istio `pilot/pkg/features/pilot.go`)
//! is that istiod fetches the `jwksUri`, inlines the key set in the proxy's configuration and
//! fetches it again every 20 minutes (`PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`); when the fetch fails
//! every token of that issuer fails verification (istiod inlines a key set no token matches).
//! Here the first request that needs a key set waits for it (bounded by the rule's `timeout`,
//! 5 s by default); later requests use the cached copy, a copy older than the refresh interval is
//! fetched again in the background while the old one keeps serving, and a failed fetch is not
//! retried for [`RETRY_AFTER`] so that a flood of requests does not become a flood of fetches.
//!
//! Only URIs named by the configuration are cached, so the cache is bounded by the config, never
//! by requests. The fetch itself is a [`JwksFetcher`]: [`HttpJwksFetcher`] speaks plain HTTP;
//! `meshwork::proxy` supplies one that speaks HTTPS too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use rustc_hash::FxHashMap;
use tokio::time::Instant;

use crate::BoxError;

/// How often a fetched key set is fetched again (`PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(20 * 60);

/// How long a failed fetch is not retried.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The largest key-set document accepted.
pub const MAX_DOCUMENT: usize = 1 << 20;

/// The future a [`JwksFetcher`] returns.
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send>>;

/// Fetches a JWKS document.
pub trait JwksFetcher: Send + Sync + 'static {
    /// The document at `uri`.
    fn fetch(&self, uri: &str) -> FetchFuture;
}

/// Fetches `http://` key sets with hyper (bodies over [`MAX_DOCUMENT`] refused).
#[derive(Debug, Clone)]
pub struct HttpJwksFetcher {
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
}

impl Default for HttpJwksFetcher {
    fn default() -> Self {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
        HttpJwksFetcher { client }
    }
}

impl JwksFetcher for HttpJwksFetcher {
    fn fetch(&self, uri: &str) -> FetchFuture {
        let client = self.client.clone();
        let uri = uri.to_string();
        Box::pin(async move {
            let parsed: http::Uri = uri.parse()?;
            if parsed.scheme() != Some(&http::uri::Scheme::HTTP) {
                return Err(format!("{uri}: only http:// key sets can be fetched by this fetcher").into());
            }
            let response = client.get(parsed).await?;
            if !response.status().is_success() {
                return Err(format!("{uri}: status {}", response.status()).into());
            }
            let body = Limited::new(response.into_body(), MAX_DOCUMENT).collect().await?.to_bytes();
            Ok(String::from_utf8(body.to_vec())?)
        })
    }
}

#[derive(Debug, Default)]
struct Entry {
    document: Option<Arc<str>>,
    fetched: Option<Instant>,
    failed: Option<Instant>,
    refreshing: bool,
}

/// The fetched key sets, by URI.
pub struct JwksCache {
    fetcher: Arc<dyn JwksFetcher>,
    entries: Mutex<FxHashMap<Arc<str>, Entry>>,
    /// One first fetch at a time, so that concurrent first requests wait for one fetch.
    first: tokio::sync::Mutex<()>,
    version: AtomicU64,
    refresh: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").field("version", &self.version.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache fetching with `fetcher`.
    pub fn new(fetcher: Arc<dyn JwksFetcher>) -> JwksCache {
        JwksCache {
            fetcher,
            entries: Mutex::default(),
            first: tokio::sync::Mutex::new(()),
            version: AtomicU64::new(0),
            refresh: REFRESH_INTERVAL,
        }
    }

    /// Fetch again after `interval` instead of [`REFRESH_INTERVAL`].
    pub fn with_refresh_interval(mut self, interval: Duration) -> JwksCache {
        self.refresh = interval;
        self
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, FxHashMap<Arc<str>, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bumped whenever a document changes.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The cached document of `uri`.
    pub fn get(&self, uri: &str) -> Option<String> {
        self.entries().get(uri).and_then(|e| e.document.as_deref().map(str::to_string))
    }

    /// Does `uri` need a first fetch now (no document, no recent failure)?
    pub fn needs_fetch(&self, uri: &str) -> bool {
        match self.entries().get(uri) {
            None => true,
            Some(e) => e.document.is_none() && e.failed.is_none_or(|at| at.elapsed() >= RETRY_AFTER),
        }
    }

    /// Make sure every URI of `uris` (each with its rule's fetch timeout) has been fetched once:
    /// fetch those without a document (and no recent failure), waiting for them; start a
    /// background refresh of those older than the refresh interval. Forgets URIs not in `uris`.
    pub async fn ensure(self: &Arc<Self>, uris: &[(Arc<str>, Duration)]) {
        self.entries().retain(|uri, _| uris.iter().any(|(u, _)| u == uri));
        if uris.iter().any(|(u, _)| self.needs_fetch(u)) {
            let _one = self.first.lock().await;
            for (uri, timeout) in uris {
                if self.needs_fetch(uri) {
                    let result = tokio::time::timeout(*timeout, self.fetcher.fetch(uri))
                        .await
                        .unwrap_or_else(|_| Err(format!("{uri}: no answer within {timeout:?}").into()));
                    self.store(uri, result);
                }
            }
        }
        for (uri, _) in uris {
            self.refresh_if_stale(uri);
        }
    }

    pub(super) fn refresh_if_stale(self: &Arc<Self>, uri: &Arc<str>) {
        {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(uri) else { return };
            let stale = entry.fetched.is_some_and(|at| at.elapsed() >= self.refresh)
                && entry.failed.is_none_or(|at| at.elapsed() >= RETRY_AFTER);
            if !stale || entry.refreshing {
                return;
            }
            entry.refreshing = true;
        }
        let cache = self.clone();
        let uri = uri.clone();
        tokio::spawn(async move {
            let result = cache.fetcher.fetch(&uri).await;
            cache.store(&uri, result);
        });
    }

    fn store(&self, uri: &Arc<str>, result: Result<String, BoxError>) {
        let mut entries = self.entries();
        let entry = entries.entry(uri.clone()).or_default();
        entry.refreshing = false;
        match result {
            Ok(document) => {
                let changed = entry.document.as_deref() != Some(document.as_str());
                entry.document = Some(Arc::from(document));
                entry.fetched = Some(Instant::now());
                entry.failed = None;
                if changed {
                    self.version.fetch_add(1, Ordering::AcqRel);
                }
            }
            Err(error) => {
                // The last good document keeps serving.
                tracing::warn!(target: "meshwork::inbound", uri = %uri, %error, "JWKS fetch failed");
                entry.failed = Some(Instant::now());
                if entry.document.is_some() {
                    // Try again after RETRY_AFTER rather than after a whole interval.
                    entry.fetched = entry.fetched.map(|at| at.checked_sub(self.refresh).unwrap_or(at));
                }
            }
        }
    }
}
