//! Connection-pool admission (Envoy's circuit breakers, Istio's `connectionPool`).
//!
//! Each request takes a slot of its cluster's pool before it goes on (see
//! [`mesh_core::pool`] for the limits): it starts at once while fewer than `tcp.maxConnections`
//! (HTTP/1.1) or `http.http2MaxRequests` (HTTP/2) requests are running, waits in line while fewer
//! than `http.http1MaxPendingRequests` are waiting, and otherwise fails fast with 503 and flag
//! `UO`, as Envoy does. The slot is released when the response arrives (or the request is
//! dropped), and the next waiting request goes on. Limits come from the DestinationRule that
//! applies to the cluster; the counters outlive config swaps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response, Version};
use mesh_core::pool::Admission;
use tower_layer::Layer;
use tower_service::Service;

use crate::balance::cluster_of;
use crate::cluster::{Cluster, Clusters};
use crate::error::{LocalBody, LocalReply};

/// Applies [`PoolAdmission`].
#[derive(Debug, Clone)]
pub struct PoolLayer {
    clusters: Clusters,
}

impl PoolLayer {
    /// Admit requests against the pools of `clusters`.
    pub fn new(clusters: Clusters) -> Self {
        PoolLayer { clusters }
    }
}

impl<S> Layer<S> for PoolLayer {
    type Service = PoolAdmission<S>;

    fn layer(&self, inner: S) -> PoolAdmission<S> {
        PoolAdmission { inner, clusters: self.clusters.clone() }
    }
}

/// The admission service (see the module docs).
#[derive(Debug, Clone)]
pub struct PoolAdmission<S> {
    inner: S,
    clusters: Clusters,
}

impl<S> PoolAdmission<S> {
    /// Admit requests against `clusters` before calling `inner`.
    pub fn new(inner: S, clusters: Clusters) -> Self {
        PoolAdmission { inner, clusters }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Holds a running slot; releasing it lets the next waiting request go.
#[derive(Debug)]
pub struct PoolSlot {
    cluster: Arc<Cluster>,
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        self.cluster.pool().finish();
        self.cluster.released().notify_one();
    }
}

/// Holds a waiting slot until it is promoted or given up.
struct PendingSlot {
    cluster: Arc<Cluster>,
    promoted: bool,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if !self.promoted {
            self.cluster.pool().abandon();
        }
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project_lite::pin_project! {
    /// Response future of [`PoolAdmission`].
    #[project = PoolFutureProj]
    #[allow(missing_docs)] // pin-project-lite does not take docs on variant fields
    pub enum PoolFuture<F, T> {
        /// Refused: 503 `UO`.
        Overflow { cluster: Option<Arc<Cluster>> },
        /// Running with a slot.
        Running { #[pin] future: F, slot: Option<PoolSlot> },
        /// Waited in line for a slot (the slow path, boxed).
        Queued { future: Boxed<T> },
    }
}

impl<F, T> std::fmt::Debug for PoolFuture<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolFuture::Overflow { .. } => "PoolFuture::Overflow",
            PoolFuture::Running { .. } => "PoolFuture::Running",
            PoolFuture::Queued { .. } => "PoolFuture::Queued",
        })
    }
}

impl<F, B, E> Future for PoolFuture<F, Result<Response<B>, E>>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: LocalBody,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            PoolFutureProj::Overflow { cluster } => {
                let mut response: Response<B> = LocalReply::Overflow.into_response();
                if let Some(c) = cluster.take() {
                    response.body_mut().set_endpoint(crate::context::Upstream::cluster_only(c));
                }
                Poll::Ready(Ok(response))
            }
            PoolFutureProj::Running { future, slot } => {
                let out = ready!(future.poll(cx));
                drop(slot.take());
                Poll::Ready(out)
            }
            PoolFutureProj::Queued { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, B, RB> Service<Request<B>> for PoolAdmission<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
    RB: LocalBody + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = PoolFuture<S::Future, Result<Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let cluster = cluster_of(&mut req, &self.clusters);
        let http2 = req.version() == Version::HTTP_2;
        match cluster.pool().admit(cluster.limits(), http2) {
            Admission::Start => PoolFuture::Running { future: self.inner.call(req), slot: Some(PoolSlot { cluster }) },
            Admission::Overflow => {
                tracing::debug!(target: "meshwork::pool", cluster = %cluster.destination().host, "connection pool overflow");
                cluster.count_pending_overflow();
                PoolFuture::Overflow { cluster: Some(cluster) }
            }
            Admission::Queue => {
                // Take the ready service; leave a fresh clone for the next caller.
                let clone = self.inner.clone();
                let mut svc = std::mem::replace(&mut self.inner, clone);
                let mut pending = PendingSlot { cluster, promoted: false };
                PoolFuture::Queued {
                    future: Box::pin(async move {
                        loop {
                            let notified = pending.cluster.released().notified();
                            tokio::pin!(notified);
                            notified.as_mut().enable();
                            if pending.cluster.pool().promote(pending.cluster.limits(), http2) {
                                pending.promoted = true;
                                break;
                            }
                            notified.await;
                        }
                        let slot = PoolSlot { cluster: pending.cluster.clone() };
                        let out = svc.call(req).await;
                        drop(slot);
                        out
                    }),
                }
            }
        }
    }
}
