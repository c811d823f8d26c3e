//! The response body of the mesh stack: the wrapped client's body, or one meshwork wrote itself
//! (redirects, direct responses, errors).
//!
//! An upstream body may carry the route's deadline: Envoy's route `timeout` lasts until the
//! response is complete, not only until its headers, so a body still arriving when it passes is
//! cut off with a [`BodyError`] that [`is_timeout`](BodyError::is_timeout) (Envoy resets the stream; over HTTP/1.1 the proxy closes
//! the connection) and the request is reported with flag `UT`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tokio::time::Sleep;

use crate::BoxError;

/// The error reading a [`MeshBody`] ends with: the upstream body's own error, or the route's
/// `timeout` passing before the body was complete (the headers came in time).
///
/// ```
/// use mesh_tower::body::BodyError;
///
/// let err = BodyError::timeout();
/// assert!(err.is_timeout());
/// assert_eq!(err.to_string(), "upstream request timeout: the route's timeout passed before the response body was complete");
/// ```
#[derive(Debug)]
pub struct BodyError(BodyErrorKind);

#[derive(Debug)]
enum BodyErrorKind {
    Upstream(BoxError),
    Timeout,
}

impl BodyError {
    /// The route's timeout passed while the body was read.
    pub fn timeout() -> Self {
        BodyError(BodyErrorKind::Timeout)
    }

    /// The upstream body failed with `err`.
    pub fn upstream(err: impl Into<BoxError>) -> Self {
        BodyError(BodyErrorKind::Upstream(err.into()))
    }

    /// Whether the route's timeout ended the body (Envoy's flag `UT`).
    pub fn is_timeout(&self) -> bool {
        matches!(self.0, BodyErrorKind::Timeout)
    }

    /// The upstream body's own error, when it is one.
    pub fn into_upstream(self) -> Option<BoxError> {
        match self.0 {
            BodyErrorKind::Upstream(err) => Some(err),
            BodyErrorKind::Timeout => None,
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            BodyErrorKind::Upstream(_) => f.write_str("error reading the upstream response body"),
            BodyErrorKind::Timeout => f.write_str(
                "upstream request timeout: the route's timeout passed before the response body was complete",
            ),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            BodyErrorKind::Upstream(err) => Some(&**err),
            BodyErrorKind::Timeout => None,
        }
    }
}

pin_project_lite::pin_project! {
    /// Either the upstream body or a local one (each variant holds its `body`).
    #[project = MeshBodyProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // pin-project-lite does not take docs on variant fields
    pub enum MeshBody<B> {
        /// The wrapped service's body, and the endpoint that sent it (for telemetry and retries;
        /// carried here rather than in the response's extensions, which would cost two
        /// allocations per response).
        /// `deadline` is the route's timeout, when it has one (see the module docs).
        Upstream { #[pin] body: B, upstream: Option<crate::context::Upstream>, deadline: Option<Pin<Box<Sleep>>> },
        /// A body meshwork produced, and the cluster it answered for when a layer below route
        /// refused or failed the request (pool overflow, no healthy upstream, a failed try).
        Local { #[pin] body: Full<Bytes>, upstream: Option<crate::context::Upstream> },
        /// An upstream body the route's timeout cut off (it ended with [`BodyError::timeout`]).
        TimedOut,
    }
}

impl<B> MeshBody<B> {
    /// Wrap an upstream body.
    pub fn upstream(body: B) -> Self {
        MeshBody::Upstream { body, upstream: None, deadline: None }
    }

    /// Wrap an upstream body, recording the endpoint that sent it.
    pub fn from_endpoint(body: B, upstream: crate::context::Upstream) -> Self {
        MeshBody::Upstream { body, upstream: Some(upstream), deadline: None }
    }

    /// Record the endpoint (or the cluster) that answered, for the layers above (telemetry, retry).
    pub fn set_endpoint(&mut self, endpoint: crate::context::Upstream) {
        match self {
            MeshBody::Upstream { upstream, .. } | MeshBody::Local { upstream, .. } => *upstream = Some(endpoint),
            MeshBody::TimedOut => {}
        }
    }

    /// The endpoint that answered, if a layer recorded it (see [`crate::context`]).
    pub fn endpoint(&self) -> Option<&crate::context::Upstream> {
        match self {
            MeshBody::Upstream { upstream, .. } | MeshBody::Local { upstream, .. } => upstream.as_ref(),
            MeshBody::TimedOut => None,
        }
    }

    /// Cut an upstream body off with [`BodyError::timeout`] if it is still arriving when `deadline`
    /// fires (a local body is complete already: it is left as it is).
    pub fn set_deadline(&mut self, sleep: Pin<Box<Sleep>>) {
        if let MeshBody::Upstream { deadline, .. } = self {
            *deadline = Some(sleep);
        }
    }

    /// Whether the route's timeout cut this body off.
    pub fn timed_out(&self) -> bool {
        matches!(self, MeshBody::TimedOut)
    }

    /// A local body.
    pub fn local(bytes: impl Into<Bytes>) -> Self {
        MeshBody::Local { body: Full::new(bytes.into()), upstream: None }
    }

    /// An empty local body.
    pub fn empty() -> Self {
        MeshBody::Local { body: Full::new(Bytes::new()), upstream: None }
    }
}

impl<B> Body for MeshBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.as_mut().project() {
            MeshBodyProj::Upstream { body, deadline, .. } => {
                // A deadline that has passed ends the body even if the upstream keeps data coming.
                let passed = deadline.as_ref().is_some_and(|sleep| sleep.is_elapsed());
                if !passed {
                    match body.poll_frame(cx) {
                        Poll::Ready(frame) => return Poll::Ready(frame.map(|f| f.map_err(BodyError::upstream))),
                        Poll::Pending => {}
                    }
                    let fired = deadline.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                    if !fired {
                        return Poll::Pending;
                    }
                }
            }
            MeshBodyProj::Local { body, .. } => {
                return match body.poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                    Poll::Ready(Some(Err(never))) => match never {},
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                };
            }
            MeshBodyProj::TimedOut => return Poll::Ready(None),
        }
        tracing::debug!(target: "meshwork::timeout", "upstream request timeout while the response body was read");
        // Dropping the upstream body here resets the upstream stream (hyper closes an HTTP/1.1
        // connection whose response was not read to the end), as Envoy does.
        self.set(MeshBody::TimedOut);
        Poll::Ready(Some(Err(BodyError::timeout())))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MeshBody::Upstream { body, .. } => body.is_end_stream(),
            MeshBody::Local { body, .. } => body.is_end_stream(),
            MeshBody::TimedOut => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MeshBody::Upstream { body, .. } => body.size_hint(),
            MeshBody::Local { body, .. } => body.size_hint(),
            MeshBody::TimedOut => SizeHint::with_exact(0),
        }
    }
}
