//! One `http[]` rule of a VirtualService compiled into a [`mesh_core::route::HttpRule`]: its
//! matches (RE2 regexes compiled once), its action (route, redirect, direct response or delegate),
//! rewrite, timeout, retries (Istio's default policy when none is set), fault injection, mirrors,
//! CORS policy and header edits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mesh_core::matcher::{Re2, StringMatcher};
use mesh_core::route::{self, HttpRule, RetryOn, RetryPolicy, RouteAction, RuleOrigin};

use super::{Ctx, arc, duration, opt_arc, port16};
use crate::diag::Severity;
use crate::types::virtual_service as vs;

/// What a VirtualService's rules may share while it compiles: one `Arc<str>` per distinct string
/// (destination hosts and header names repeat from rule to rule) and one weighted table per
/// distinct `route` (many rules route alike); each rule would otherwise hold copies of its own.
#[derive(Debug, Default)]
pub(super) struct Strings {
    strings: std::collections::HashSet<Arc<str>>,
    /// Tables by their hosts, subsets, ports and weights; equal tables share one.
    routes: HashMap<String, Vec<route::WeightedDestinations>>,
    /// Retry policies; equal policies (most rules use the default) share one.
    retries: Vec<Arc<RetryPolicy>>,
    /// The empty header edits every rule without edits shares.
    no_headers: Option<Arc<route::HeaderEdits>>,
}

impl Strings {
    pub(super) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(s) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(shared.clone());
        shared
    }

    fn route(&mut self, table: route::WeightedDestinations) -> route::WeightedDestinations {
        let mut key = String::new();
        for d in table.destinations() {
            let dest = &d.destination;
            key.push_str(&format!("{}|{:?}|{:?}|{};", dest.host, dest.subset, dest.port, d.weight));
        }
        let same = self.routes.entry(key).or_default();
        if let Some(shared) = same.iter().find(|t| **t == table) {
            return shared.clone();
        }
        same.push(table.clone());
        table
    }

    /// One shared copy of an equal retry policy. A VirtualService has few distinct ones, so a
    /// linear scan is enough.
    fn retries(&mut self, policy: RetryPolicy) -> Arc<RetryPolicy> {
        if let Some(shared) = self.retries.iter().find(|p| ***p == policy) {
            return shared.clone();
        }
        let shared = Arc::new(policy);
        if self.retries.len() < 16 {
            self.retries.push(shared.clone());
        }
        shared
    }

    fn headers(&mut self, edits: route::HeaderEdits) -> Arc<route::HeaderEdits> {
        if !edits.is_empty() {
            return Arc::new(edits);
        }
        self.no_headers.get_or_insert_with(|| Arc::new(edits)).clone()
    }

    fn destination(&mut self, mut d: route::Destination) -> route::Destination {
        d.host = self.get(&d.host);
        d
    }
}

fn percentage(p: &Option<vs::Percent>, deprecated: Option<i64>) -> route::Percentage {
    match (p, deprecated) {
        (Some(p), _) => route::Percentage(p.value.clamp(0.0, 100.0)),
        (None, Some(d)) => route::Percentage((d as f64).clamp(0.0, 100.0)),
        (None, None) => route::Percentage::ALL,
    }
}

impl Ctx<'_> {
    fn string_match(&mut self, m: &vs::StringMatch, path: &str) -> Option<StringMatcher> {
        if let Some(e) = &m.exact {
            return Some(StringMatcher::Exact(arc(e)));
        }
        if let Some(p) = &m.prefix {
            return Some(StringMatcher::Prefix(arc(p)));
        }
        if let Some(re) = &m.regex {
            return match Re2::new(re) {
                Ok(re) => Some(StringMatcher::Regex(re)),
                Err(e) => {
                    self.note(Severity::Error, path.to_string(), e.to_string());
                    None
                }
            };
        }
        None
    }

    fn conditions(
        &mut self,
        map: &BTreeMap<String, Option<vs::StringMatch>>,
        lowercase: bool,
        star_means_present: bool,
        path: &str,
        strings: &mut Strings,
    ) -> Box<[(Arc<str>, route::HeaderCondition)]> {
        let mut out = Vec::new();
        for (name, m) in map {
            let Some(m) = m else { continue };
            let key = if lowercase { name.to_ascii_lowercase() } else { name.clone() };
            let cond = if star_means_present && m.regex.as_deref() == Some("*") {
                route::HeaderCondition::Present
            } else {
                match self.string_match(m, &format!("{path}.{name}")) {
                    Some(sm) => route::HeaderCondition::Match(sm),
                    None => route::HeaderCondition::Present,
                }
            };
            out.push((strings.get(&key), cond));
        }
        out.into_boxed_slice()
    }

    pub(super) fn request_match(
        &mut self,
        index: usize,
        m: &vs::HttpMatchRequest,
        path: &str,
        strings: &mut Strings,
    ) -> route::RequestMatch {
        let uri = m.uri.as_ref().and_then(|u| self.string_match(u, &format!("{path}.uri")));
        let scheme = m.scheme.as_ref().and_then(|u| self.string_match(u, &format!("{path}.scheme")));
        let method = m.method.as_ref().and_then(|u| self.string_match(u, &format!("{path}.method")));
        let authority = m.authority.as_ref().and_then(|u| self.string_match(u, &format!("{path}.authority")));
        route::RequestMatch {
            index,
            name: opt_arc(&m.name),
            uri,
            scheme,
            method,
            authority,
            headers: self.conditions(&m.headers, true, false, &format!("{path}.headers"), strings),
            without_headers: self.conditions(
                &m.without_headers,
                true,
                true,
                &format!("{path}.withoutHeaders"),
                strings,
            ),
            query_params: self.conditions(&m.query_params, false, false, &format!("{path}.queryParams"), strings),
            ignore_uri_case: m.ignore_uri_case,
            port: m.port.and_then(port16),
            source_labels: m.source_labels.iter().map(|(k, v)| (arc(k), arc(v))).collect(),
            source_namespace: opt_arc(&m.source_namespace),
        }
    }

    /// Header edits; values are read as Envoy reads them (`%%` is `%`, `%VARIABLES%` are
    /// expanded per request: [`mesh_core::header_format`]).
    fn header_ops(ops: &Option<vs::HeaderOperations>) -> route::HeaderOps {
        let Some(ops) = ops else { return route::HeaderOps::default() };
        let name = |n: &str| http::HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok();
        let mut formatted = Vec::new();
        let mut pairs = |m: &BTreeMap<String, String>, append: bool| -> Box<[(http::HeaderName, http::HeaderValue)]> {
            let mut literal = Vec::new();
            for (k, v) in m {
                let Some(n) = name(k) else { continue };
                match mesh_core::header_format::parse(v) {
                    mesh_core::header_format::ParsedValue::Literal(l) => {
                        if let Ok(value) = http::HeaderValue::from_str(&l) {
                            literal.push((n, value));
                        }
                    }
                    mesh_core::header_format::ParsedValue::Format(format) => {
                        formatted.push(route::FormattedHeader { name: n, format, append });
                    }
                }
            }
            literal.into_boxed_slice()
        };
        let set = pairs(&ops.set, false);
        let add = pairs(&ops.add, true);
        route::HeaderOps {
            set,
            add,
            remove: ops.remove.iter().filter_map(|k| name(k)).collect(),
            formatted: formatted.into_boxed_slice(),
        }
    }

    fn header_edits(h: &Option<vs::Headers>) -> route::HeaderEdits {
        match h {
            None => route::HeaderEdits::default(),
            Some(h) => {
                route::HeaderEdits { request: Self::header_ops(&h.request), response: Self::header_ops(&h.response) }
            }
        }
    }

    /// Istio's `ConvertPolicy` (`pilot/pkg/networking/core/route/retry/retry.go`): no policy is
    /// the default one; `attempts <= 0` disables retries; otherwise the default with the fields
    /// the route sets (`retryOn` replaces the conditions and status codes when given).
    fn retries(&self, r: &Option<vs::HttpRetry>) -> RetryPolicy {
        let Some(r) = r else {
            return self.default_retries.clone();
        };
        if r.attempts <= 0 {
            return RetryPolicy::disabled();
        }
        let retry_on = match r.retry_on.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => RetryOn::parse(text).unwrap_or_else(|_| self.default_retries.retry_on.clone()),
            None => self.default_retries.retry_on.clone(),
        };
        RetryPolicy {
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            per_try_timeout: duration(&r.per_try_timeout),
            retry_on,
            backoff: duration(&r.backoff),
            configured: true,
        }
    }

    fn fault(f: &Option<vs::HttpFaultInjection>) -> Option<route::Fault> {
        let f = f.as_ref()?;
        let delay = f.delay.as_ref().and_then(|d| {
            let fixed = duration(&d.fixed_delay)?;
            Some((fixed, percentage(&d.percentage, d.percent.map(i64::from))))
        });
        let abort = f.abort.as_ref().and_then(|a| {
            let status = match (&a.grpc_status, a.http_status) {
                (Some(g), _) => route::AbortStatus::Grpc(arc(g)),
                (None, Some(h)) => route::AbortStatus::Http(u16::try_from(h).ok()?),
                (None, None) => return None,
            };
            Some((status, percentage(&a.percentage, None)))
        });
        if delay.is_none() && abort.is_none() {
            return None;
        }
        Some(route::Fault { delay, abort })
    }

    fn cors(c: &Option<vs::CorsPolicy>, this: &mut Self, path: &str) -> Option<Arc<route::CorsPolicy>> {
        let c = c.as_ref()?;
        let mut origins: Vec<StringMatcher> =
            c.allow_origins.iter().filter_map(|o| this.string_match(o, &format!("{path}.allowOrigins"))).collect();
        // The deprecated exact `allowOrigin` only when `allowOrigins` is absent, as Istio's
        // `TranslateCORSPolicy` (pilot/pkg/networking/core/route/route.go) takes them.
        if c.allow_origins.is_empty() {
            origins.extend(c.allow_origin.iter().map(|o| StringMatcher::Exact(arc(o))));
        }
        let list = |v: &Vec<String>| -> Box<[Arc<str>]> { v.iter().map(|s| arc(s)).collect() };
        Some(Arc::new(route::CorsPolicy {
            allow_origins: origins.into_boxed_slice(),
            allow_methods: list(&c.allow_methods),
            allow_headers: list(&c.allow_headers),
            expose_headers: list(&c.expose_headers),
            max_age: duration(&c.max_age),
            allow_credentials: c.allow_credentials,
            forward_unmatched_preflights: c.unmatched_preflights != Some(vs::UnmatchedPreflights::IGNORE),
        }))
    }

    fn action(&mut self, h: &vs::HttpRoute, strings: &mut Strings) -> RouteAction {
        if let Some(r) = &h.redirect {
            let port = match (r.port, r.derive_port) {
                (Some(p), _) => port16(p).map_or(route::RedirectPort::Keep, route::RedirectPort::Fixed),
                (None, Some(vs::RedirectPortSelection::FROM_PROTOCOL_DEFAULT)) => {
                    route::RedirectPort::FromProtocolDefault
                }
                (None, Some(vs::RedirectPortSelection::FROM_REQUEST_PORT)) => route::RedirectPort::FromRequestPort,
                (None, None) => route::RedirectPort::Keep,
            };
            return RouteAction::Redirect(route::Redirect {
                uri: opt_arc(&r.uri),
                prefix_rewrite: opt_arc(&r.prefix_rewrite),
                authority: opt_arc(&r.authority),
                scheme: opt_arc(&r.scheme),
                port,
                code: r.redirect_code.and_then(|c| u16::try_from(c).ok()).filter(|c| *c != 0).unwrap_or(301),
            });
        }
        if let Some(d) = &h.direct_response {
            let body = d.body.as_ref().and_then(|b| match (&b.string, &b.bytes) {
                (Some(s), _) => Some(Arc::<[u8]>::from(s.as_bytes())),
                (None, Some(b64)) => decode_base64(b64).map(Arc::<[u8]>::from),
                (None, None) => None,
            });
            return RouteAction::DirectResponse(route::DirectResponse {
                status: u16::try_from(d.status).unwrap_or(500),
                body,
            });
        }
        if let Some(d) = &h.delegate {
            let ns = d.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.r.namespace);
            return RouteAction::Delegate { namespace: arc(ns), name: arc(&d.name) };
        }
        let destinations = h
            .route
            .iter()
            .filter_map(|rd| {
                let dest = rd.destination.as_ref()?;
                Some(route::RouteDestination {
                    destination: strings.destination(self.destination(dest)),
                    weight: u32::try_from(rd.weight).unwrap_or(0),
                    headers: Self::header_edits(&rd.headers),
                })
            })
            .collect();
        RouteAction::Route(strings.route(route::WeightedDestinations::new(destinations)))
    }

    pub(super) fn http_rule(
        &mut self,
        index: usize,
        h: &vs::HttpRoute,
        matches: Vec<route::RequestMatch>,
        strings: &mut Strings,
    ) -> HttpRule {
        let path = format!("http[{index}]");
        let mut mirrors: Vec<route::Mirror> = Vec::new();
        if let Some(m) = &h.mirror {
            let deprecated = h.mirror_percent.or(h.mirror_percent_proto).map(i64::from);
            mirrors.push(route::Mirror {
                destination: strings.destination(self.destination(m)),
                percentage: percentage(&h.mirror_percentage, deprecated),
            });
        }
        for m in &h.mirrors {
            if let Some(d) = &m.destination {
                mirrors.push(route::Mirror {
                    destination: strings.destination(self.destination(d)),
                    percentage: percentage(&m.percentage, None),
                });
            }
        }
        let rewrite = h.rewrite.as_ref().map(|rw| {
            Box::new(route::Rewrite {
                uri: opt_arc(&rw.uri),
                uri_regex: rw
                    .uri_regex_rewrite
                    .as_ref()
                    .and_then(|rr| route::RegexRewrite::new(&rr.pattern, &rr.rewrite).ok()),
                authority: opt_arc(&rw.authority),
            })
        });
        let cors = Self::cors(&h.cors_policy, self, &format!("{path}.corsPolicy"));
        HttpRule {
            origin: RuleOrigin {
                kind: Default::default(),
                namespace: self.r.namespace.clone(),
                name: self.r.name.clone(),
                index,
            },
            name: opt_arc(&h.name),
            matches: matches.into_boxed_slice(),
            action: self.action(h, strings),
            rewrite,
            timeout: duration(&h.timeout).filter(|d| !d.is_zero()),
            retries: strings.retries(self.retries(&h.retries)),
            fault: Self::fault(&h.fault).map(Box::new),
            mirrors: mirrors.into_boxed_slice(),
            cors,
            headers: strings.headers(Self::header_edits(&h.headers)),
        }
    }
}

/// Standard base64 (with or without padding), for `directResponse.body.bytes`.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("!!"), None);
    }
}
