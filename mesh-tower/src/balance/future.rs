use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use mesh_core::outlier::Observation;
use mesh_core::retry::TryOutcome;

use crate::body::MeshBody;
use crate::cluster::Cluster;
use crate::context::Upstream;
use crate::error::{LocalReply, classify_error};

pin_project_lite::pin_project! {
    /// Response future of [`super::Balance`].
    #[project = BalanceFutureProj]
    #[allow(missing_docs)] // pin-project-lite does not take docs on variant fields
    pub enum BalanceFuture<F> {
        /// No endpoint could be picked.
        Local { reply: Option<(LocalReply, Arc<Cluster>)> },
        /// Waiting for the endpoint.
        Upstream { #[pin] future: F, upstream: Option<Upstream>, guard: Option<ActiveGuard>, span: tracing::Span },
    }
}

impl<F> std::fmt::Debug for BalanceFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BalanceFuture::Local { .. } => f.write_str("BalanceFuture::Local"),
            BalanceFuture::Upstream { upstream, .. } => {
                f.debug_struct("BalanceFuture::Upstream").field("upstream", upstream).finish()
            }
        }
    }
}

/// Holds an endpoint's active-request slot until the response or the request's end.
#[derive(Debug)]
pub struct ActiveGuard {
    cluster: Arc<Cluster>,
    index: usize,
    done: bool,
}

impl ActiveGuard {
    fn finish(mut self, observation: Observation) {
        self.done = true;
        self.cluster.finished(self.index, observation);
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if !self.done {
            // Cancelled before an answer: the slot is freed without judging the endpoint.
            self.cluster.cancelled(self.index);
        }
    }
}

impl<F> BalanceFuture<F> {
    pub(super) fn local(reply: LocalReply, cluster: Arc<Cluster>) -> Self {
        BalanceFuture::Local { reply: Some((reply, cluster)) }
    }

    pub(super) fn upstream(future: F, upstream: Upstream, index: Option<usize>) -> Self {
        let guard =
            index.and_then(|index| upstream.cluster.clone().map(|cluster| ActiveGuard { cluster, index, done: false }));
        BalanceFuture::Upstream { future, upstream: Some(upstream), guard, span: tracing::Span::none() }
    }

    /// Poll the attempt inside `span` (one `meshwork.attempt` span per try).
    pub(super) fn in_span(mut self, new: tracing::Span) -> Self {
        if let BalanceFuture::Upstream { span, .. } = &mut self {
            *span = new;
        }
        self
    }
}

impl<F, B, E> Future for BalanceFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<crate::BoxError>,
{
    type Output = Result<Response<MeshBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BalanceFutureProj::Local { reply } => {
                let Some((reply, cluster)) = reply.take() else { return Poll::Pending };
                let mut response: Response<MeshBody<B>> = reply.into_response();
                response.body_mut().set_endpoint(Upstream::cluster_only(cluster));
                Poll::Ready(Ok(response))
            }
            BalanceFutureProj::Upstream { future, upstream, guard, span } => {
                let _entered = span.enter();
                let result = ready!(future.poll(cx));
                let mut upstream = upstream.take();
                let mut response = match result {
                    Ok(response) => {
                        if let Some(g) = guard.take() {
                            g.finish(Observation::Status(response.status().as_u16()));
                        }
                        match upstream.take() {
                            Some(u) => response.map(|body| MeshBody::from_endpoint(body, u)),
                            None => response.map(MeshBody::upstream),
                        }
                    }
                    Err(error) => {
                        let error: crate::BoxError = error.into();
                        let outcome = classify_error(&*error);
                        tracing::debug!(
                            target: "meshwork::balance",
                            endpoint = upstream.as_ref().and_then(|u| u.address.as_deref()).unwrap_or("-"),
                            %error,
                            ?outcome,
                            "upstream request failed"
                        );
                        if let Some(g) = guard.take() {
                            g.finish(Observation::LocalOriginFailure);
                        }
                        let outcome = match outcome {
                            TryOutcome::ConnectFailure | TryOutcome::RefusedStream => outcome,
                            _ => TryOutcome::Reset,
                        };
                        LocalReply::UpstreamFailure { outcome }.into_response()
                    }
                };
                if let Some(u) = upstream {
                    response.body_mut().set_endpoint(u);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
