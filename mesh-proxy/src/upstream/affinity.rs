//! A downstream connection's own upstream HTTP/1.1 connections (see the module docs of
//! [`crate::upstream`]): the idle ones, by endpoint, and the futures of all of them, which
//! [`ConnectionAffinity::driving`] runs in the downstream connection's task; and sending a request
//! on one of them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mesh_tower::cluster::UpstreamConnect;

use super::connect::connect_tcp;
use super::driving::{UPSTREAM, Wakeups, part_waker};
use super::{Body, BoxError};

/// Idle upstream connections one downstream connection keeps, at most.
const AFFINITY_IDLE: usize = 8;
/// How long a request waits for its downstream connection's upstream connection to finish the
/// previous response before opening another.
const AFFINITY_READY_WAIT: Duration = Duration::from_millis(100);

/// The upstream HTTP/1.1 connections of one downstream connection (see the module docs). Put it
/// in the extensions of that connection's requests, and run that connection's future inside
/// [`ConnectionAffinity::driving`]: the upstream connections are then driven by the downstream
/// connection's own task instead of tasks of their own, so a request and its response cross
/// from one socket to the other without a task switch.
#[derive(Debug, Clone, Default)]
pub struct ConnectionAffinity(pub(super) Arc<AffinityInner>);

#[derive(Default)]
pub(super) struct AffinityInner {
    idle: Mutex<IdleConnections>,
    /// The upstream connections' futures (hyper's connection state machines): a handful at
    /// most (one per endpoint in use, more only while a response is still being read), all
    /// polled when one of them is woken.
    driven: Mutex<Vec<DrivenConnection>>,
    pub(super) wakeups: Arc<Wakeups>,
}

impl AffinityInner {
    /// Poll every upstream connection once; drop those that ended.
    pub(super) fn poll_driven(&self, waker: &Waker) {
        let mut cx = Context::from_waker(waker);
        let mut driven = self.driven.lock().unwrap_or_else(|p| p.into_inner());
        driven.retain_mut(|connection| connection.as_mut().poll(&mut cx).is_pending());
    }
}

impl std::fmt::Debug for AffinityInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AffinityInner").finish_non_exhaustive()
    }
}

pub(super) type DrivenConnection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Idle upstream connections, by endpoint authority.
type IdleConnections = Vec<(http::uri::Authority, SendRequest<Body>)>;

impl ConnectionAffinity {
    /// A connection to `authority` this downstream connection opened, ready ones first. One that
    /// is not ready yet is usually finishing the previous response (its connection future has not
    /// run since the body ended).
    fn take(&self, authority: &http::uri::Authority) -> Option<SendRequest<Body>> {
        let mut idle = self.0.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(_, s)| !s.is_closed());
        let i = idle
            .iter()
            .position(|(a, s)| a.as_str() == authority.as_str() && s.is_ready())
            .or_else(|| idle.iter().position(|(a, _)| a.as_str() == authority.as_str()))?;
        Some(idle.swap_remove(i).1)
    }

    fn put(&self, authority: http::uri::Authority, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.0.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= AFFINITY_IDLE {
            idle.remove(0);
        }
        idle.push((authority, sender));
    }

    /// Hand a new upstream connection's future to the downstream connection's task.
    pub(super) fn drive(&self, connection: DrivenConnection) {
        self.0.driven.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
        // `push` wakes nobody: mark the upstream part woken so that the new future runs.
        part_waker(&self.0.wakeups, UPSTREAM).wake();
    }
}

/// Open a plain HTTP/1.1 connection to `authority` (upgrades allowed), driven by `affinity`'s
/// downstream connection.
async fn connect_http1(
    affinity: &ConnectionAffinity,
    authority: &http::uri::Authority,
    connect: Option<UpstreamConnect>,
) -> Result<SendRequest<Body>, BoxError> {
    let tcp = connect_tcp(authority.as_str(), connect.as_ref()).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    affinity.drive(Box::pin(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(target: "meshwork::proxy", error = %e, "upstream connection ended with an error");
        }
    }));
    Ok(sender)
}

/// Send on this downstream connection's own upstream connection (opened if needed); a request
/// the idle connection could not take (closed meanwhile) goes on a new one.
pub(super) async fn send_with_affinity(
    affinity: ConnectionAffinity,
    authority: http::uri::Authority,
    mut req: http::Request<Body>,
) -> Result<http::Response<Incoming>, BoxError> {
    // On a connection of its own the request-target is origin-form (`/path?query`), as a client
    // sends it to an origin server (RFC 9112 §3.2.1); the authority stays in `Host`.
    if req.method() != http::Method::CONNECT {
        let origin = req.uri().path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *req.uri_mut() = http::Uri::from(origin);
    }
    // The common case inline: the idle connection is ready. Waiting for one and connecting are
    // boxed, so this future (boxed once per request) stays small.
    let idle = match affinity.take(&authority) {
        Some(mut sender) if sender.is_ready() => match sender.try_send_request(req).await {
            Ok(response) => {
                affinity.put(authority, sender);
                return Ok(response);
            }
            Err(mut e) => match e.take_message() {
                Some(back) => {
                    req = back;
                    None
                }
                None => return Err(e.into_error().into()),
            },
        },
        other => other,
    };
    Box::pin(send_after_wait(affinity, authority, req, idle)).await
}

/// The slow path of [`send_with_affinity`]: wait (briefly) for a busy idle connection, else open
/// a new one.
async fn send_after_wait(
    affinity: ConnectionAffinity,
    authority: http::uri::Authority,
    req: http::Request<Body>,
    idle: Option<SendRequest<Body>>,
) -> Result<http::Response<Incoming>, BoxError> {
    let ready = match idle {
        // Wait for the previous response to finish (it resolves at once, or with an error when
        // that response was abandoned and the connection closes); give up after a moment.
        Some(mut sender) => match tokio::time::timeout(AFFINITY_READY_WAIT, sender.ready()).await {
            Ok(Ok(())) => Some(sender),
            _ => None,
        },
        None => None,
    };
    let (mut sender, req) = match ready {
        Some(mut sender) => match sender.try_send_request(req).await {
            Ok(response) => {
                affinity.put(authority, sender);
                return Ok(response);
            }
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    let connect = req.extensions().get::<UpstreamConnect>().copied();
                    (connect_http1(&affinity, &authority, connect).await?, req)
                }
                None => return Err(e.into_error().into()),
            },
        },
        None => {
            let connect = req.extensions().get::<UpstreamConnect>().copied();
            (connect_http1(&affinity, &authority, connect).await?, req)
        }
    };
    let response = sender.send_request(req).await?;
    affinity.put(authority, sender);
    Ok(response)
}
