//! CORS, as Envoy's CORS filter applies Istio's `corsPolicy`.
//!
//! Istio compiles a VirtualService rule's `corsPolicy` into the per-route config of
//! `envoy.filters.http.cors` (`TranslateCORSPolicy` in `pilot/pkg/networking/core/route/route.go`
//! of istio/istio): `allowOrigins` as string matchers (the deprecated `allowOrigin` as exact
//! matchers, only when `allowOrigins` is absent), `allowMethods`, `allowHeaders` and
//! `exposeHeaders` joined with `,`, `maxAge` as whole seconds, `allowCredentials` as given, the
//! filter always enabled, and `forward_not_matching_preflights` false only for
//! `unmatchedPreflights: IGNORE` (true otherwise, the default). Envoy's filter
//! (`source/extensions/filters/http/cors/cors_filter.cc` in envoyproxy/envoy) then does, and
//! [`CorsPolicy::evaluate`] decides the same:
//!
//! - Only a request whose route forwards (a route entry) is processed: redirects, direct
//!   responses and "no route" answers get nothing. ([`crate::decision`] asks only then.)
//! - No `Origin` header, or an empty one: nothing.
//! - The origin is *allowed* when some `allowOrigins` matcher matches it, or matches the literal
//!   string `*`.
//! - A *preflight* is `OPTIONS` (exactly; methods are case-sensitive) with a non-empty
//!   `Access-Control-Request-Method`. A preflight from an origin that is not allowed is forwarded
//!   like any request when unmatched preflights are forwarded. Every other preflight is answered
//!   200 by the filter with: `access-control-allow-origin: <origin>` (allowed origins only),
//!   `access-control-allow-credentials: true` (if `allowCredentials`),
//!   `access-control-allow-methods` (the joined list; the request's
//!   `Access-Control-Request-Method` when the joined list is exactly `*`),
//!   `access-control-allow-headers` (likewise, the request's `Access-Control-Request-Headers`
//!   for `*` — empty when it has none, as Envoy copies an absent header's empty value) and
//!   `access-control-max-age` (if set). So with `IGNORE` the 200 to an unmatched origin carries
//!   everything but `access-control-allow-origin`.
//! - The filter's own reply runs through every encoder filter, CORS's `encodeHeaders` included
//!   (Envoy's `ActiveStreamDecoderFilter::encodeHeaders` calls `encodeHeaders(nullptr, ...)` in
//!   `source/common/http/filter_manager.cc`: from the first encoder filter), so the answer to an
//!   allowed origin also gets `access-control-expose-headers` when configured.
//! - Every other response to a request with an allowed origin — the upstream's, and local
//!   replies made below the route (fault abort, 503 `UO`/`UH`, 504 `UT`) — gets
//!   `access-control-allow-origin: <origin>` (set, replacing), `access-control-allow-credentials:
//!   true` (if `allowCredentials`) and `access-control-expose-headers` (if any). The filter's
//!   `encodeHeaders` runs after the router applied the route's response header edits, so these
//!   win over them.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderName, HeaderValue,
};

use crate::request::HeaderSource;
use crate::route::CorsPolicy;

/// The headers of a CORS request that the policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CorsRequest<'a> {
    /// The request's method (`OPTIONS` for a preflight, compared case-sensitively as Envoy does).
    pub method: &'a str,
    /// `Origin` (`None` or empty: not a CORS request).
    pub origin: Option<&'a str>,
    /// `Access-Control-Request-Method` (non-empty on a preflight).
    pub request_method: Option<&'a str>,
    /// `Access-Control-Request-Headers`.
    pub request_headers: Option<&'a str>,
}

/// Response headers CORS sets, in the order Envoy sets them. Applying them *sets* each one
/// (replacing a value the upstream or a header edit put there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsHeaders(Box<[(HeaderName, HeaderValue)]>);

impl CorsHeaders {
    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The value of `name`, if CORS sets it.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.0.iter().find(|(k, _)| k.as_str().eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// How many headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No headers at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Set every header on `headers` (replacing what is there).
    ///
    /// ```
    /// use mesh_core::cors::{CorsOutcome, CorsRequest};
    /// # use std::sync::Arc;
    /// # use mesh_core::matcher::StringMatcher;
    /// # let policy = mesh_core::route::CorsPolicy {
    /// #     allow_origins: Box::new([StringMatcher::Exact(Arc::from("https://app.example"))]),
    /// #     allow_methods: Box::new([]), allow_headers: Box::new([]), expose_headers: Box::new([]),
    /// #     max_age: None, allow_credentials: None, forward_unmatched_preflights: true,
    /// # };
    /// let request = CorsRequest { method: "GET", origin: Some("https://app.example"), ..Default::default() };
    /// let CorsOutcome::Response(cors) = policy.evaluate(&request) else { panic!("an allowed origin") };
    /// let mut response = http::HeaderMap::new();
    /// response.insert("access-control-allow-origin", http::HeaderValue::from_static("*"));
    /// cors.apply(&mut response);
    /// assert_eq!(response["access-control-allow-origin"], "https://app.example");
    /// ```
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for (name, value) in self.0.iter() {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// What CORS does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOutcome {
    /// Nothing: no `Origin`, an origin that is not allowed on a request that is not a preflight,
    /// or an unmatched preflight that is forwarded (`unmatchedPreflights: FORWARD`).
    None,
    /// Answer the preflight: 200 with these headers (no `access-control-allow-origin` when the
    /// origin is not allowed and `unmatchedPreflights` is `IGNORE`).
    Preflight(CorsHeaders),
    /// Forward the request and set these headers on every response to it.
    Response(CorsHeaders),
}

impl CorsPolicy {
    /// Does the policy allow `origin`? (Some matcher matches it, or matches `*`.)
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|m| m.matches("*") || m.matches(origin))
    }

    /// What CORS does with `req` (see the module docs), for a request whose route forwards.
    ///
    /// ```
    /// use mesh_core::cors::{CorsOutcome, CorsRequest};
    /// # use std::sync::Arc;
    /// # use mesh_core::matcher::StringMatcher;
    /// let policy = mesh_core::route::CorsPolicy {
    ///     allow_origins: Box::new([StringMatcher::Exact(Arc::from("https://app.example"))]),
    ///     allow_methods: Box::new([Arc::from("GET"), Arc::from("POST")]),
    ///     allow_headers: Box::new([]),
    ///     expose_headers: Box::new([]),
    ///     max_age: None,
    ///     allow_credentials: None,
    ///     forward_unmatched_preflights: true,
    /// };
    /// let preflight = CorsRequest {
    ///     method: "OPTIONS",
    ///     origin: Some("https://app.example"),
    ///     request_method: Some("POST"),
    ///     request_headers: None,
    /// };
    /// let CorsOutcome::Preflight(answer) = policy.evaluate(&preflight) else { panic!("answered") };
    /// assert_eq!(answer.get("access-control-allow-methods").map(|v| v.as_bytes()), Some(&b"GET,POST"[..]));
    /// let other = CorsRequest { origin: Some("https://evil.example"), ..preflight };
    /// assert_eq!(policy.evaluate(&other), CorsOutcome::None, "forwarded upstream");
    /// ```
    pub fn evaluate(&self, req: &CorsRequest<'_>) -> CorsOutcome {
        let Some(origin) = req.origin.filter(|o| !o.is_empty()) else { return CorsOutcome::None };
        let allowed = self.allows_origin(origin);
        let request_method = req.request_method.filter(|m| !m.is_empty());
        let preflight = req.method == "OPTIONS" && request_method.is_some();
        if !preflight {
            return if allowed { CorsOutcome::Response(self.response_headers(origin)) } else { CorsOutcome::None };
        }
        if !allowed && self.forward_unmatched_preflights {
            return CorsOutcome::None;
        }
        let mut h = Vec::with_capacity(6);
        if allowed {
            push(&mut h, ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        if self.allow_credentials == Some(true) {
            h.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
        }
        if !self.allow_methods.is_empty() {
            let methods = join(&self.allow_methods);
            let value = if methods == "*" { request_method.unwrap_or_default() } else { &methods };
            push(&mut h, ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        if !self.allow_headers.is_empty() {
            let headers = join(&self.allow_headers);
            let value = if headers == "*" { req.request_headers.unwrap_or_default() } else { &headers };
            push(&mut h, ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        if let Some(max_age) = self.max_age {
            h.push((ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age.as_secs())));
        }
        // The reply passes CORS's own encodeHeaders: an allowed origin's answer also gets the
        // exposed headers (allow-origin and credentials are set again, to the same values).
        if allowed && !self.expose_headers.is_empty() {
            push(&mut h, ACCESS_CONTROL_EXPOSE_HEADERS, &join(&self.expose_headers));
        }
        CorsOutcome::Preflight(CorsHeaders(h.into_boxed_slice()))
    }

    /// What CORS's `encodeHeaders` sets on the responses to an allowed origin.
    fn response_headers(&self, origin: &str) -> CorsHeaders {
        let mut h = Vec::with_capacity(3);
        push(&mut h, ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials == Some(true) {
            h.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
        }
        if !self.expose_headers.is_empty() {
            push(&mut h, ACCESS_CONTROL_EXPOSE_HEADERS, &join(&self.expose_headers));
        }
        CorsHeaders(h.into_boxed_slice())
    }

    /// [`CorsPolicy::evaluate`] for the request `headers` of a `method` request: the one
    /// `Origin` lookup first, the preflight headers only for an `OPTIONS` request that has one.
    pub fn evaluate_headers(&self, method: &str, headers: &dyn HeaderSource) -> CorsOutcome {
        let Some(origin) = headers.header("origin") else { return CorsOutcome::None };
        let preflight = method == "OPTIONS";
        let request_method = if preflight { headers.header("access-control-request-method") } else { None };
        let request_headers =
            if request_method.is_some() { headers.header("access-control-request-headers") } else { None };
        self.evaluate(&CorsRequest {
            method,
            origin: Some(&origin),
            request_method: request_method.as_deref(),
            request_headers: request_headers.as_deref(),
        })
    }
}

/// A header from text; a value a header cannot carry (validation refuses such config; an
/// `Origin` came from a header) is left out.
fn push(h: &mut Vec<(HeaderName, HeaderValue)>, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.push((name, v));
    }
}

/// The list joined with `,`, as Istio joins it (no copy for one item).
fn join(items: &[Arc<str>]) -> Cow<'_, str> {
    match items {
        [one] => Cow::Borrowed(&**one),
        _ => Cow::Owned(items.iter().map(|s| &**s).collect::<Vec<_>>().join(",")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::matcher::StringMatcher;

    fn policy(forward: bool) -> CorsPolicy {
        CorsPolicy {
            allow_origins: Box::new([StringMatcher::Exact(Arc::from("https://example.com"))]),
            allow_methods: Box::new([Arc::from("GET"), Arc::from("POST")]),
            allow_headers: Box::new([Arc::from("x-token")]),
            expose_headers: Box::new([Arc::from("x-trace")]),
            max_age: Some(Duration::from_secs(86400)),
            allow_credentials: Some(true),
            forward_unmatched_preflights: forward,
        }
    }

    fn names(h: &CorsHeaders) -> Vec<&str> {
        h.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn preflight_headers_in_envoys_order() {
        let req = CorsRequest {
            method: "OPTIONS",
            origin: Some("https://example.com"),
            request_method: Some("POST"),
            request_headers: None,
        };
        let CorsOutcome::Preflight(h) = policy(true).evaluate(&req) else { panic!("preflight") };
        assert_eq!(
            names(&h),
            [
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-allow-methods",
                "access-control-allow-headers",
                "access-control-max-age",
                "access-control-expose-headers"
            ]
        );
        assert_eq!(h.get("Access-Control-Max-Age").map(HeaderValue::as_bytes), Some(&b"86400"[..]));
    }

    #[test]
    fn headers_read_once_and_only_when_needed() {
        let p = policy(true);
        let none: Vec<(String, String)> = Vec::new();
        assert_eq!(p.evaluate_headers("OPTIONS", &none), CorsOutcome::None);
        let h = vec![
            ("Origin".to_string(), "https://example.com".to_string()),
            ("Access-Control-Request-Method".to_string(), "PUT".to_string()),
        ];
        assert!(matches!(p.evaluate_headers("OPTIONS", &h), CorsOutcome::Preflight(_)));
        assert!(matches!(p.evaluate_headers("GET", &h), CorsOutcome::Response(_)));
        assert!(matches!(p.evaluate_headers("options", &h), CorsOutcome::Response(_)), "methods are case-sensitive");
    }
}
