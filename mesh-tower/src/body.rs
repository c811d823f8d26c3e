//! The response body of the mesh stack: the wrapped client's body, or one meshwork wrote itself
//! (redirects, direct responses, errors).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

pin_project_lite::pin_project! {
    /// Either the upstream body or a local one (each variant holds its `body`).
    #[project = MeshBodyProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // pin-project-lite does not take docs on variant fields
    pub enum MeshBody<B> {
        /// The wrapped service's body, and the endpoint that sent it (for telemetry and retries;
        /// carried here rather than in the response's extensions, which would cost two
        /// allocations per response).
        Upstream { #[pin] body: B, upstream: Option<crate::balance::Upstream> },
        /// A body meshwork produced.
        Local { #[pin] body: Full<Bytes> },
    }
}

impl<B> MeshBody<B> {
    /// Wrap an upstream body.
    pub fn upstream(body: B) -> Self {
        MeshBody::Upstream { body, upstream: None }
    }

    /// Wrap an upstream body, recording the endpoint that sent it.
    pub fn from_endpoint(body: B, upstream: crate::balance::Upstream) -> Self {
        MeshBody::Upstream { body, upstream: Some(upstream) }
    }

    /// The endpoint that sent this body, if it came from one.
    pub fn endpoint(&self) -> Option<&crate::balance::Upstream> {
        match self {
            MeshBody::Upstream { upstream, .. } => upstream.as_ref(),
            MeshBody::Local { .. } => None,
        }
    }

    /// A local body.
    pub fn local(bytes: impl Into<Bytes>) -> Self {
        MeshBody::Local { body: Full::new(bytes.into()) }
    }

    /// An empty local body.
    pub fn empty() -> Self {
        MeshBody::Local { body: Full::new(Bytes::new()) }
    }
}

impl<B> Body for MeshBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project() {
            MeshBodyProj::Upstream { body, .. } => body.poll_frame(cx),
            MeshBodyProj::Local { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MeshBody::Upstream { body, .. } => body.is_end_stream(),
            MeshBody::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MeshBody::Upstream { body, .. } => body.size_hint(),
            MeshBody::Local { body } => body.size_hint(),
        }
    }
}
