use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http::Response;
use http_body::{Body, Frame, SizeHint};

use super::{Finished, Pending};
use crate::context::{DestinationService, Upstream};
use crate::error::ResponseFlags;

/// What is reported when the body ends.
#[derive(Debug)]
struct Report {
    pending: Pending,
    upstream: Option<Upstream>,
    /// The routed service of a response with no upstream (see [`DestinationService`]).
    service: Option<std::sync::Arc<str>>,
    status: u16,
    grpc_status: Option<u32>,
    flags: ResponseFlags,
    bytes: u64,
}

impl Report {
    fn finish(self) {
        let Report { pending, upstream, service, status, grpc_status, flags, bytes } = self;
        pending.shared.record(Finished {
            upstream: upstream.as_ref(),
            service: service.as_ref(),
            authority: pending.authority.as_ref().and_then(super::RequestAuthority::as_str),
            request_id: pending.request_id.as_ref(),
            status,
            grpc_status,
            flags,
            grpc: pending.grpc,
            request_bytes: pending.request_bytes,
            response_bytes: bytes,
            millis: pending.start.elapsed().as_secs_f64() * 1000.0,
        });
    }
}

pin_project_lite::pin_project! {
    /// The response body of the mesh stack: the inner body, counted; metrics are recorded when
    /// it ends or is dropped.
    #[derive(Debug)]
    pub struct TelemetryBody<B> {
        #[pin]
        inner: B,
        report: Option<Report>,
    }

    impl<B> PinnedDrop for TelemetryBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(report) = this.project().report.take() {
                report.finish();
            }
        }
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers.get(&crate::error::GRPC_STATUS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

impl<B: Body> TelemetryBody<B> {
    pub(super) fn passthrough(inner: B) -> Self {
        TelemetryBody { inner, report: None }
    }

    /// A body that records nothing (for answers made outside the stack).
    pub fn unrecorded(inner: B) -> Self {
        TelemetryBody { inner, report: None }
    }

    pub(super) fn wrap(response: Response<B>, pending: Pending) -> Response<Self>
    where
        B: crate::error::LocalBody,
    {
        let (parts, body) = response.into_parts();
        let header_bytes = super::headers_size(&parts.headers);
        let upstream = body.endpoint().cloned();
        let report = Report {
            service: match upstream {
                Some(_) => None,
                None => parts.extensions.get::<DestinationService>().map(|s| s.0.clone()),
            },
            upstream,
            status: parts.status.as_u16(),
            grpc_status: grpc_status(&parts.headers),
            flags: parts.extensions.get::<ResponseFlags>().copied().unwrap_or_default(),
            bytes: header_bytes,
            pending,
        };
        let end = body.is_end_stream();
        let mut body = TelemetryBody { inner: body, report: Some(report) };
        if end && let Some(report) = body.report.take() {
            report.finish();
        }
        Response::from_parts(parts, body)
    }
}

impl<B: Body + crate::error::LocalBody> Body for TelemetryBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let mut inner = this.inner;
        let polled = inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(report) = this.report.as_mut() {
                    if let Some(data) = frame.data_ref() {
                        report.bytes += data.remaining() as u64;
                    } else if let Some(trailers) = frame.trailers_ref() {
                        report.bytes += super::headers_size(trailers);
                        if let Some(code) = grpc_status(trailers) {
                            report.grpc_status = Some(code);
                        }
                    }
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(mut report) = this.report.take() {
                    if inner.as_ref().get_ref().timed_out() {
                        // The route's timeout cut the body off: Envoy reports `UT`.
                        report.flags = report.flags.union(ResponseFlags::TIMEOUT);
                    }
                    report.finish();
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
