//! Request bodies that can be sent more than once: for retries and for mirrors.
//!
//! [`ReplayBody`] wraps the caller's body and keeps a copy of every chunk it passes on, up to a
//! limit (64 KiB by default, as Envoy's per-request retry buffer). While the copy is whole:
//!
//! - [`Replay::replay`] gives a body for another try that yields the copied chunks again and then
//!   goes on reading the caller's body where the earlier try stopped;
//! - [`Replay::follow`] gives a body for a mirror: it yields the chunks as the primary request
//!   reads them and never reads the caller's body itself, so the primary is never slowed down or
//!   starved by its copy.
//!
//! Once the body grows past the limit the copy is dropped: the request is sent once, streamed
//! as it comes, and never replayed (a retry is not made; a mirror still behind gets an error and
//! is abandoned). Bodies that are already complete when the request is made (`GET`s, empty
//! bodies) need no shared state at all.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

/// Envoy's default retry buffer: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// A request body that can make copies of itself for retries and mirrors.
pub trait Replay: Sized {
    /// A body for another try, or `None` when this one cannot be sent again (it outgrew the
    /// buffer).
    fn replay(&self) -> Option<Self>;
    /// A body for a mirror that follows the primary request, or `None` when not possible.
    fn follow(&self) -> Option<Self>;
}

/// The error a follower or a late replay gets when the copy it needed was dropped.
#[derive(Debug, thiserror::Error)]
#[error("request body outgrew the replay buffer ({limit} bytes) and cannot be sent again")]
pub struct ReplayLimitExceeded {
    limit: usize,
}

/// Errors of a [`ReplayBody`].
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    /// The caller's body failed.
    #[error(transparent)]
    Body(E),
    /// The copy this body needed is gone.
    #[error(transparent)]
    LimitExceeded(#[from] ReplayLimitExceeded),
    /// The caller's body failed while another copy was reading it.
    #[error("request body failed while another copy was reading it")]
    Aborted,
}

struct Shared<B> {
    source: Option<B>,
    chunks: Vec<Bytes>,
    len: usize,
    limit: usize,
    capped: bool,
    done: bool,
    failed: bool,
    trailers: Option<HeaderMap>,
    primaries: usize,
    followers: Vec<Waker>,
    size_hint: SizeHint,
}

impl<B> Shared<B> {
    fn wake_followers(&mut self) {
        for w in self.followers.drain(..) {
            w.wake();
        }
    }
}

type FrameResult<E> = Result<Frame<Bytes>, ReplayError<E>>;

/// A request body that keeps a bounded copy of itself (see the module docs).
pub struct ReplayBody<B> {
    inner: Inner<B>,
}

enum Inner<B> {
    /// A body that was complete from the start.
    Complete { data: Option<Bytes> },
    /// A body read as it streams.
    Shared(Reader<B>),
}

struct Reader<B> {
    shared: Arc<Mutex<Shared<B>>>,
    /// Next chunk of the copy to yield.
    pos: usize,
    sent_trailers: bool,
    /// A mirror's copy: never reads the caller's body while a primary is alive.
    follower: bool,
    /// This reader passed the limit and streams on from the source alone.
    past_cap: bool,
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Complete { data } => {
                f.debug_struct("ReplayBody::Complete").field("len", &data.as_ref().map_or(0, Bytes::len)).finish()
            }
            Inner::Shared(r) => f
                .debug_struct("ReplayBody::Shared")
                .field("pos", &r.pos)
                .field("follower", &r.follower)
                .field("past_cap", &r.past_cap)
                .finish(),
        }
    }
}

fn lock<B>(shared: &Mutex<Shared<B>>) -> MutexGuard<'_, Shared<B>> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<B: Body<Data = Bytes>> ReplayBody<B> {
    /// Wrap `body`, keeping up to `limit` bytes for copies.
    pub fn new(body: B, limit: usize) -> Self {
        if body.is_end_stream() {
            return ReplayBody { inner: Inner::Complete { data: None } };
        }
        let size_hint = body.size_hint();
        // A body announced larger than the limit is streamed once from the start.
        let capped = size_hint.lower() > limit as u64;
        let shared = Shared {
            source: Some(body),
            chunks: Vec::new(),
            len: 0,
            limit,
            capped,
            done: false,
            failed: false,
            trailers: None,
            primaries: 1,
            followers: Vec::new(),
            size_hint,
        };
        let reader = Reader {
            shared: Arc::new(Mutex::new(shared)),
            pos: 0,
            sent_trailers: false,
            follower: false,
            past_cap: capped,
        };
        ReplayBody { inner: Inner::Shared(reader) }
    }
}

impl<B> ReplayBody<B> {
    /// A complete body made of `bytes`.
    pub fn from_bytes(bytes: Bytes) -> Self {
        ReplayBody { inner: Inner::Complete { data: Some(bytes).filter(|b| !b.is_empty()) } }
    }

    /// Can this body still be sent again?
    pub fn is_replayable(&self) -> bool {
        match &self.inner {
            Inner::Complete { .. } => true,
            Inner::Shared(r) => !lock(&r.shared).capped,
        }
    }

    fn copy(&self, follower: bool) -> Option<Self> {
        match &self.inner {
            Inner::Complete { data } => Some(ReplayBody { inner: Inner::Complete { data: data.clone() } }),
            Inner::Shared(r) => {
                let mut s = lock(&r.shared);
                if s.capped {
                    return None;
                }
                if !follower {
                    s.primaries += 1;
                }
                drop(s);
                let reader =
                    Reader { shared: r.shared.clone(), pos: 0, sent_trailers: false, follower, past_cap: false };
                Some(ReplayBody { inner: Inner::Shared(reader) })
            }
        }
    }
}

impl<B> Replay for ReplayBody<B> {
    fn replay(&self) -> Option<Self> {
        self.copy(false)
    }

    fn follow(&self) -> Option<Self> {
        self.copy(true)
    }
}

impl<B> Drop for Reader<B> {
    fn drop(&mut self) {
        if !self.follower {
            // Followers wait for primaries to read; when the last one goes they read themselves.
            let mut s = lock(&self.shared);
            s.primaries = s.primaries.saturating_sub(1);
            s.wake_followers();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Reader<B> {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<FrameResult<B::Error>>> {
        let mut s = lock(&self.shared);
        if !s.capped && self.pos < s.chunks.len() {
            let chunk = s.chunks[self.pos].clone();
            self.pos += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if s.capped && !self.past_cap {
            return Poll::Ready(Some(Err(ReplayLimitExceeded { limit: s.limit }.into())));
        }
        if s.done {
            if !self.sent_trailers {
                self.sent_trailers = true;
                if let Some(t) = s.trailers.clone() {
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
            }
            return Poll::Ready(None);
        }
        if s.failed {
            return Poll::Ready(Some(Err(ReplayError::Aborted)));
        }
        if self.follower && s.primaries > 0 {
            s.followers.push(cx.waker().clone());
            return Poll::Pending;
        }
        let Some(source) = s.source.as_mut() else {
            return Poll::Ready(Some(Err(ReplayError::Aborted)));
        };
        let polled = Pin::new(source).poll_frame(cx);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                s.done = true;
                s.source = None;
                self.sent_trailers = true;
                s.wake_followers();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                s.failed = true;
                s.source = None;
                s.wake_followers();
                Poll::Ready(Some(Err(ReplayError::Body(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        if !s.capped {
                            if s.len + data.len() <= s.limit {
                                s.len += data.len();
                                s.chunks.push(data.clone());
                                self.pos = s.chunks.len();
                            } else {
                                tracing::debug!(
                                    target: "meshwork::replay",
                                    limit = s.limit,
                                    "request body outgrew the replay buffer; it will not be sent again"
                                );
                                s.capped = true;
                                s.chunks = Vec::new();
                                self.past_cap = true;
                            }
                        }
                        Frame::data(data)
                    }
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => {
                            s.trailers = Some(trailers.clone());
                            self.sent_trailers = true;
                            Frame::trailers(trailers)
                        }
                        Err(_) => return Poll::Ready(Some(Err(ReplayError::Aborted))),
                    },
                };
                s.wake_followers();
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let s = lock(&self.shared);
        s.done && self.sent_trailers && (if s.capped { self.past_cap } else { self.pos >= s.chunks.len() })
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for ReplayBody<B> {
    type Data = Bytes;
    type Error = ReplayError<B::Error>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Complete { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Shared(reader) => reader.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Complete { data } => data.is_none(),
            Inner::Shared(reader) => reader.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Complete { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Shared(r) => lock(&r.shared).size_hint,
        }
    }
}

/// Wraps request bodies in [`ReplayBody`] (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct ReplayLayer {
    limit: usize,
}

impl ReplayLayer {
    /// Keep up to `limit` bytes of each request body.
    pub fn new(limit: usize) -> Self {
        ReplayLayer { limit }
    }
}

impl Default for ReplayLayer {
    fn default() -> Self {
        ReplayLayer::new(DEFAULT_REPLAY_LIMIT)
    }
}

impl<S> Layer<S> for ReplayLayer {
    type Service = ReplayService<S>;

    fn layer(&self, inner: S) -> ReplayService<S> {
        ReplayService { inner, limit: self.limit }
    }
}

/// Wraps request bodies in [`ReplayBody`] before calling the inner service.
#[derive(Debug, Clone)]
pub struct ReplayService<S> {
    inner: S,
    limit: usize,
}

impl<S> ReplayService<S> {
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

impl<S, B> Service<Request<B>> for ReplayService<S>
where
    S: Service<Request<ReplayBody<B>>>,
    B: Body<Data = Bytes>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let limit = self.limit;
        self.inner.call(req.map(|b| ReplayBody::new(b, limit)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use http_body_util::{BodyExt, Full};

    use super::*;

    /// A streaming body of unknown length.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    fn chunks(n: usize, size: usize) -> Chunks {
        Chunks((0..n).map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; size])).collect())
    }

    #[tokio::test]
    async fn small_bodies_replay_whole() {
        let body = ReplayBody::new(Full::new(Bytes::from_static(b"hello")), 16);
        let again = body.replay().expect("replayable");
        assert_eq!(body.collect().await.expect("body").to_bytes(), "hello");
        assert_eq!(again.collect().await.expect("body").to_bytes(), "hello");
    }

    #[tokio::test]
    async fn a_replay_continues_where_the_first_try_stopped() {
        let mut first = ReplayBody::new(chunks(4, 3), 64);
        let frame = first.frame().await.expect("frame").expect("ok");
        assert_eq!(frame.into_data().expect("data"), "aaa");
        let second = first.replay().expect("replayable");
        drop(first);
        assert_eq!(second.collect().await.expect("body").to_bytes(), "aaabbbcccddd");
    }

    #[tokio::test]
    async fn large_bodies_stream_once_and_refuse_copies() {
        let body = ReplayBody::new(chunks(10, 1000), 4096);
        let follower = body.follow().expect("not capped yet");
        let all = body.collect().await.expect("body").to_bytes();
        assert_eq!(all.len(), 10_000, "the primary gets every byte");
        let err = follower.collect().await.expect_err("the copy is gone");
        assert!(matches!(err, ReplayError::LimitExceeded(_)));
    }

    #[tokio::test]
    async fn a_body_announced_too_large_is_never_copied() {
        let body = ReplayBody::new(Full::new(Bytes::from(vec![0u8; 100])), 10);
        assert!(body.replay().is_none());
        assert_eq!(body.collect().await.expect("body").to_bytes().len(), 100);
    }

    #[tokio::test]
    async fn a_follower_gets_what_the_primary_reads() {
        let body = ReplayBody::new(chunks(3, 2), 64);
        let follower = body.follow().expect("copy");
        let (a, b) = tokio::join!(follower.collect(), body.collect());
        assert_eq!(a.expect("follower").to_bytes(), "aabbcc");
        assert_eq!(b.expect("primary").to_bytes(), "aabbcc");
    }

    #[test]
    fn empty_bodies_need_no_shared_state() {
        let body = ReplayBody::new(http_body_util::Empty::<Bytes>::new(), 16);
        assert!(body.is_end_stream());
        assert!(body.replay().is_some_and(|b| b.is_end_stream()));
    }
}
