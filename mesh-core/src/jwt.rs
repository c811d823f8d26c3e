//! JWT verification for RequestAuthentication, as Istio configures Envoy's `jwt_authn` filter
//! (istio/istio `pilot/pkg/security/authn/policy_applier.go`, `convertToEnvoyJwtConfig`; Envoy's
//! `jwt_authn` filter docs): one provider per JWT rule, and a request passes when it carries no
//! token (Istio adds `allow_missing` to every provider) or a token one provider verifies.
//!
//! For each rule the token is read from the rule's locations ([`crate::request_authn::TokenLocation`]);
//! a provider verifies it when the token's `iss` is the rule's issuer, its signature checks
//! against a key of the rule's JWKS (by `kid` when the token names one), `exp` and `nbf` hold
//! with Envoy's default clock skew of 60 s, and — when the rule lists audiences — its `aud`
//! (string or list) holds one of them. The verified payload becomes the claims authorization reads
//! ([`crate::authz::Claims`]), with the rule's space-delimited claims split into lists (Envoy's
//! `normalize_payload_in_metadata`).
//!
//! The clock is a parameter (`now`, seconds since the Unix epoch): this module never reads one.
//! Keys come in as JWKS documents: inline (`jwks`) from the rule, fetched (`jwksUri`) by the
//! caller, which owns the network and the cache. Verification only uses public keys, so the
//! `rsa` crate's timing advisory (RUSTSEC-2023-0071, about private-key operations) does not apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::authz::{ClaimValue, Claims};
use crate::inbound::JwtOutcome;
use crate::request_authn::{JwksSource, JwtRule, TokenLocation};

/// Envoy's default `clock_skew_seconds`.
const CLOCK_SKEW: u64 = 60;

/// Why a JWKS could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is not a JWKS.
    #[error("JWKS of issuer {issuer:?} is not valid: {message}")]
    Invalid {
        /// The rule's issuer.
        issuer: String,
        /// What is wrong.
        message: String,
    },
    /// A `jwksUri` rule whose key set the caller has not supplied (not fetched yet).
    #[error("JWKS of issuer {issuer:?} from {uri} is not available")]
    Unavailable {
        /// The rule's issuer.
        issuer: String,
        /// The URI.
        uri: String,
    },
}

struct Provider {
    rule: Arc<JwtRule>,
    /// `None`: no usable key set (every token for this rule fails verification).
    keys: Option<JwkSet>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.rule.issuer)
            .field("keys", &self.keys.as_ref().map(|k| k.keys.len()))
            .finish()
    }
}

/// The JWT rules of one workload with their key sets, ready to verify requests.
#[derive(Debug, Default)]
pub struct JwtVerifier {
    providers: Vec<Provider>,
}

/// The result of verifying one request.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtVerification {
    /// Missing, valid, invalid or audience not allowed.
    pub outcome: JwtOutcome,
    /// The verified payload ([`JwtOutcome::Valid`] only).
    pub claims: Option<Claims>,
    /// The rule that verified the token (index in the rules given to [`JwtVerifier::new`]).
    pub rule: Option<usize>,
    /// Where the verified token was found (the layer removes it unless the rule forwards it).
    pub location: Option<TokenLocation>,
    /// Headers the verifying rule writes into the forwarded request: `outputPayloadToHeader`
    /// (the token's payload, base64url as in the token, Envoy's `forward_payload_header` without
    /// padding) and `outputClaimToHeaders` (claims whose value is a string, number or boolean;
    /// others are skipped, as Envoy's `claim_to_headers` skips them).
    pub output_headers: Vec<(Arc<str>, String)>,
}

impl JwtVerifier {
    /// Prepare `rules` (a workload's [`crate::security::Security::jwt_rules`]); `fetched` gives
    /// the JWKS document the caller fetched for a `jwksUri`. Rules whose key set is missing or
    /// invalid are kept (their tokens fail) and reported.
    pub fn new(rules: &[Arc<JwtRule>], fetched: &dyn Fn(&str) -> Option<String>) -> (JwtVerifier, Vec<JwksError>) {
        let mut errors = Vec::new();
        let mut providers = Vec::with_capacity(rules.len());
        for rule in rules {
            let text = match &rule.jwks {
                JwksSource::Inline(text) => Some(text.to_string()),
                JwksSource::Uri(uri) => {
                    let text = fetched(uri);
                    if text.is_none() {
                        errors.push(JwksError::Unavailable { issuer: rule.issuer.to_string(), uri: uri.to_string() });
                    }
                    text
                }
                JwksSource::Discovery => None,
            };
            let keys = text.and_then(|t| match serde_json::from_str::<JwkSet>(&t) {
                Ok(set) => Some(set),
                Err(e) => {
                    errors.push(JwksError::Invalid { issuer: rule.issuer.to_string(), message: e.to_string() });
                    None
                }
            });
            providers.push(Provider { rule: rule.clone(), keys });
        }
        (JwtVerifier { providers }, errors)
    }

    /// Verify the request's token(s) at `now` (seconds since the Unix epoch). `query` is the
    /// request's query string (without `?`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mesh_core::inbound::JwtOutcome;
    /// use mesh_core::jwt::JwtVerifier;
    /// use mesh_core::request_authn::{JwtRule, JwtRuleSpec};
    /// let rule = JwtRule::new("foo", "jwt", &JwtRuleSpec { issuer: "iss".into(), jwks: Some(r#"{"keys":[]}"#.into()), ..Default::default() });
    /// let (verifier, errors) = JwtVerifier::new(&[Arc::new(rule)], &|_| None);
    /// assert!(errors.is_empty());
    /// let none = verifier.verify(&http::HeaderMap::new(), None, 1_700_000_000);
    /// assert_eq!(none.outcome, JwtOutcome::Missing);
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("authorization", "Bearer not.a.token".parse().expect("value"));
    /// assert_eq!(verifier.verify(&headers, None, 1_700_000_000).outcome, JwtOutcome::Invalid);
    /// ```
    pub fn verify(&self, headers: &http::HeaderMap, query: Option<&str>, now: u64) -> JwtVerification {
        let mut outcome = JwtVerification {
            outcome: JwtOutcome::Missing,
            claims: None,
            rule: None,
            location: None,
            output_headers: Vec::new(),
        };
        for (index, p) in self.providers.iter().enumerate() {
            let Some((token, location)) = extract(&p.rule, headers, query) else { continue };
            match verify_one(p, &token, now) {
                Ok((claims, output_headers)) => {
                    return JwtVerification {
                        outcome: JwtOutcome::Valid,
                        claims: Some(claims),
                        rule: Some(index),
                        location: Some(location),
                        output_headers,
                    };
                }
                Err(Failure::Audience) => outcome.outcome = JwtOutcome::AudienceNotAllowed,
                Err(Failure::Other) if outcome.outcome == JwtOutcome::Missing => outcome.outcome = JwtOutcome::Invalid,
                Err(Failure::Other) => {}
            }
        }
        outcome
    }
}

enum Failure {
    Audience,
    Other,
}

/// The first token in the rule's locations.
fn extract(rule: &JwtRule, headers: &http::HeaderMap, query: Option<&str>) -> Option<(String, TokenLocation)> {
    for location in rule.locations.iter() {
        let token = match location {
            TokenLocation::Header { name, prefix } => headers
                .get_all(&**name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix(&**prefix))
                .map(|t| t.trim().to_string()),
            TokenLocation::Param(name) => query.and_then(|q| {
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == &**name).then(|| v.to_string())
                })
            }),
            TokenLocation::Cookie(name) => {
                headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
                    c.split(';').find_map(|kv| {
                        let (k, v) = kv.trim().split_once('=')?;
                        (k == &**name).then(|| v.to_string())
                    })
                })
            }
        };
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            return Some((t, location.clone()));
        }
    }
    None
}

/// Headers a verified token writes (`outputPayloadToHeader`, `outputClaimToHeaders`).
type OutputHeaders = Vec<(Arc<str>, String)>;

fn verify_one(p: &Provider, token: &str, now: u64) -> Result<(Claims, OutputHeaders), Failure> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Failure::Other)?;
    let keys = p.keys.as_ref().ok_or(Failure::Other)?;
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => keys.find(kid).into_iter().collect(),
        None => keys.keys.iter().collect(),
    };
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let payload = candidates
        .into_iter()
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| jsonwebtoken::decode::<Value>(token, &key, &validation).ok())
        .ok_or(Failure::Other)?
        .claims;
    let Value::Object(map) = payload else { return Err(Failure::Other) };
    if !p.rule.issuer.is_empty() && map.get("iss").and_then(Value::as_str) != Some(&*p.rule.issuer) {
        return Err(Failure::Other);
    }
    let number = |k: &str| map.get(k).and_then(Value::as_f64);
    if let Some(exp) = number("exp")
        && (now as f64) > exp + CLOCK_SKEW as f64
    {
        return Err(Failure::Other);
    }
    if let Some(nbf) = number("nbf")
        && (now as f64) + (CLOCK_SKEW as f64) < nbf
    {
        return Err(Failure::Other);
    }
    if !p.rule.audiences.is_empty() {
        let aud: Vec<&str> = match map.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| p.rule.audiences.iter().any(|want| **want == **a)) {
            return Err(Failure::Audience);
        }
    }
    let mut output = Vec::new();
    if let Some(header) = &p.rule.output_payload_to_header
        && let Some(payload) = token.split('.').nth(1)
    {
        output.push((header.clone(), payload.to_string()));
    }
    for (header, name) in p.rule.output_claim_to_headers.iter() {
        let value = match map.get(&**name) {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => continue,
        };
        output.push((header.clone(), value));
    }
    let mut claims: Claims = BTreeMap::new();
    for (k, v) in map {
        let split = p.rule.space_delimited_claims.iter().any(|c| **c == *k);
        let value = match (&v, split) {
            (Value::String(s), true) => ClaimValue::List(
                s.split(' ').filter(|p| !p.is_empty()).map(|p| ClaimValue::String(p.to_string())).collect(),
            ),
            _ => claim(&v),
        };
        claims.insert(k, value);
    }
    Ok((claims, output))
}

/// The claims authorization reads from a JSON payload (an object; `None` otherwise), with the
/// string values of `space_delimited` claims split into lists, as a verified token's are.
///
/// ```
/// use mesh_core::authz::ClaimValue;
/// let claims = mesh_core::jwt::claims_from_json(&serde_json::json!({"sub": "alice", "scope": "a b"}), &["scope"]).expect("object");
/// assert_eq!(claims["scope"], ClaimValue::List(vec![ClaimValue::String("a".into()), ClaimValue::String("b".into())]));
/// ```
pub fn claims_from_json(payload: &Value, space_delimited: &[&str]) -> Option<Claims> {
    let Value::Object(map) = payload else { return None };
    Some(
        map.iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) if space_delimited.contains(&k.as_str()) => ClaimValue::List(
                        s.split(' ').filter(|p| !p.is_empty()).map(|p| ClaimValue::String(p.to_string())).collect(),
                    ),
                    _ => claim(v),
                };
                (k.clone(), value)
            })
            .collect(),
    )
}

fn claim(v: &Value) -> ClaimValue {
    match v {
        Value::String(s) => ClaimValue::String(s.clone()),
        Value::Array(items) => ClaimValue::List(items.iter().map(claim).collect()),
        Value::Object(map) => ClaimValue::Object(map.iter().map(|(k, v)| (k.clone(), claim(v))).collect()),
        _ => ClaimValue::Other,
    }
}
