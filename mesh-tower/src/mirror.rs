//! Mirroring: Istio's `mirror` / `mirrors` with `mirrorPercentage` (Envoy's request shadowing).
//!
//! For each mirror of the matched rule, a request is copied when a draw falls within the
//! mirror's percentage (100 % when unset). The copy goes to the mirror's destination through the
//! layers below (timeout, connection pool, balance) but is never retried, and its `Host` /
//! `:authority` gets Envoy's `-shadow` suffix, on the host part before any port (Envoy has done
//! so since envoyproxy/envoy#2600: `httpbin:8000` → `httpbin-shadow:8000`), so the mirror can tell
//! copies apart. Copies are fire-and-forget: they run on their own task, their responses are dropped,
//! and they never delay or fail the caller's request. A copy's body follows the caller's body as
//! it is sent ([`Replay::follow`]); a body that outgrows the replay buffer ends the copy, never
//! the original.
//! (<https://istio.io/latest/docs/tasks/traffic-management/mirroring/>)

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::replay::Replay;
use crate::route::RouteContext;

#[doc(no_inline)]
pub use crate::context::Mirrored;

/// Applies [`MirrorService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MirrorLayer {
    _priv: (),
}

impl MirrorLayer {
    /// Mirror as each request's route says.
    pub fn new() -> Self {
        MirrorLayer { _priv: () }
    }
}

impl<S> Layer<S> for MirrorLayer {
    type Service = MirrorService<S>;

    fn layer(&self, inner: S) -> MirrorService<S> {
        MirrorService { inner }
    }
}

/// The mirror service (see the module docs).
#[derive(Debug, Clone)]
pub struct MirrorService<S> {
    inner: S,
}

impl<S> MirrorService<S> {
    /// Mirror requests sent to `inner`.
    pub fn new(inner: S) -> Self {
        MirrorService { inner }
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

/// `host[:port]` → `host-shadow[:port]`.
pub fn shadow_authority(authority: &str) -> String {
    let (host, port) = mesh_core::request::split_authority(authority);
    match port {
        Some(p) if authority.ends_with(&format!(":{p}")) => format!("{host}-shadow:{p}"),
        _ => format!("{authority}-shadow"),
    }
}

fn copy_request<B: Replay>(
    req: &Request<B>,
    ctx: &RouteContext,
    mirror: &mesh_core::route::Mirror,
) -> Option<Request<B>> {
    let body = req.body().follow()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string))?;
    let shadow = shadow_authority(&authority);
    let mut parts = req.uri().clone().into_parts();
    if parts.authority.is_some() {
        parts.authority = shadow.parse().ok();
    }
    *copy.uri_mut() = http::Uri::from_parts(parts).ok()?;
    copy.headers_mut().insert(http::header::HOST, HeaderValue::from_str(&shadow).ok()?);
    let mut ctx = ctx.clone();
    ctx.destination = mirror.destination.clone();
    ctx.cluster = None;
    copy.extensions_mut().insert(ctx);
    copy.extensions_mut().insert(Mirrored);
    Some(copy)
}

impl<S, B> Service<Request<B>> for MirrorService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    B: Replay + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(ctx) = req.extensions().get::<RouteContext>()
            && let Some(rule) = &ctx.rule
            && !rule.mirrors.is_empty()
        {
            for mirror in rule.mirrors.iter() {
                if !mirror.selected(crate::rng::f64()) {
                    continue;
                }
                let Some(copy) = copy_request(&req, ctx, mirror) else { continue };
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    tracing::debug!(target: "meshwork::mirror", "no tokio runtime: mirror copy not sent");
                    continue;
                };
                let mut svc = self.inner.clone();
                let host = mirror.destination.host.clone();
                runtime.spawn(async move {
                    if std::future::poll_fn(|cx| svc.poll_ready(cx)).await.is_err() {
                        return;
                    }
                    match svc.call(copy).await {
                        Ok(_) => tracing::trace!(target: "meshwork::mirror", %host, "mirror copy answered"),
                        Err(_) => tracing::debug!(target: "meshwork::mirror", %host, "mirror copy failed"),
                    }
                });
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_suffix_goes_before_the_port() {
        assert_eq!(shadow_authority("httpbin:8000"), "httpbin-shadow:8000");
        assert_eq!(shadow_authority("httpbin.default.svc.cluster.local"), "httpbin.default.svc.cluster.local-shadow");
    }
}
