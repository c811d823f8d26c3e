//! CORS, as Envoy's CORS filter applies Istio's `corsPolicy`
//! (<https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/cors_filter>).
//!
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
//!   origin is answered directly with the `Access-Control-Allow-*` headers.
//! - A preflight from another origin is forwarded upstream (`unmatchedPreflights: FORWARD`, the
//!   default) or answered without CORS headers (`IGNORE`).
//! - Any other request from an allowed origin gets `Access-Control-Allow-Origin` (and
//!   `-Expose-Headers`, `-Allow-Credentials`) added to its response.

use crate::route::CorsPolicy;

/// What CORS does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOutcome {
    /// No `Origin`, or not allowed and not a preflight: nothing to do.
    None,
    /// Answer the preflight with 200 and these headers.
    Preflight(Vec<(&'static str, String)>),
    /// A preflight from an origin that is not allowed: forward it upstream.
    ForwardPreflight,
    /// A preflight from an origin that is not allowed: answer 200 without CORS headers.
    RejectPreflight,
    /// Forward the request and add these headers to the response.
    Response(Vec<(&'static str, String)>),
}

impl CorsPolicy {
    /// Does the policy allow `origin`?
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|m| m.matches(origin))
    }

    /// Evaluate a request with `method`, its `Origin` and `Access-Control-Request-Method` headers.
    pub fn evaluate(&self, method: &str, origin: Option<&str>, request_method: Option<&str>) -> CorsOutcome {
        let Some(origin) = origin else { return CorsOutcome::None };
        let preflight = method.eq_ignore_ascii_case("OPTIONS") && request_method.is_some();
        let allowed = self.allows_origin(origin);
        match (preflight, allowed) {
            (true, true) => {
                let mut h = vec![("access-control-allow-origin", origin.to_string())];
                if !self.allow_methods.is_empty() {
                    h.push(("access-control-allow-methods", join(&self.allow_methods)));
                }
                if !self.allow_headers.is_empty() {
                    h.push(("access-control-allow-headers", join(&self.allow_headers)));
                }
                if let Some(max_age) = self.max_age {
                    h.push(("access-control-max-age", max_age.as_secs().to_string()));
                }
                if self.allow_credentials == Some(true) {
                    h.push(("access-control-allow-credentials", "true".to_string()));
                }
                CorsOutcome::Preflight(h)
            }
            (true, false) if self.forward_unmatched_preflights => CorsOutcome::ForwardPreflight,
            (true, false) => CorsOutcome::RejectPreflight,
            (false, true) => {
                let mut h = vec![("access-control-allow-origin", origin.to_string())];
                if !self.expose_headers.is_empty() {
                    h.push(("access-control-expose-headers", join(&self.expose_headers)));
                }
                if self.allow_credentials == Some(true) {
                    h.push(("access-control-allow-credentials", "true".to_string()));
                }
                CorsOutcome::Response(h)
            }
            (false, false) => CorsOutcome::None,
        }
    }
}

fn join(items: &[std::sync::Arc<str>]) -> String {
    items.iter().map(|s| &**s).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
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

    #[test]
    fn preflights_and_actual_requests() {
        let p = policy(true);
        let CorsOutcome::Preflight(h) = p.evaluate("OPTIONS", Some("https://example.com"), Some("POST")) else {
            panic!("preflight")
        };
        assert!(h.contains(&("access-control-allow-methods", "GET,POST".to_string())));
        assert!(h.contains(&("access-control-max-age", "86400".to_string())));
        assert_eq!(p.evaluate("OPTIONS", Some("https://evil.com"), Some("POST")), CorsOutcome::ForwardPreflight);
        assert_eq!(
            policy(false).evaluate("OPTIONS", Some("https://evil.com"), Some("POST")),
            CorsOutcome::RejectPreflight
        );
        assert!(matches!(p.evaluate("GET", Some("https://example.com"), None), CorsOutcome::Response(_)));
        assert_eq!(p.evaluate("GET", Some("https://evil.com"), None), CorsOutcome::None);
        assert_eq!(p.evaluate("GET", None, None), CorsOutcome::None);
    }
}
