//! RequestAuthentication: istio/istio `pkg/config/validation/validation.go`
//! (`ValidateRequestAuthentication`, `validateJwtRule`, `ParseJwksURI`) and the CRD schema's
//! limits. Messages are Istio's. The rules are decided by `mesh_core::request_authn` and verified
//! by `mesh_core::jwt`; no layer enforces them yet (reported `unsupported`).

use std::collections::BTreeSet;

use super::security::check_attachment;
use super::{Ctx, P};
use crate::duration::parse_duration;
use crate::types::security::*;

pub(super) fn validate_request_authentication(ctx: &mut Ctx<'_>, ra: &RequestAuthentication) {
    let root = P::root();
    check_attachment(ctx, ra.selector.as_ref(), ra.target_ref.as_ref(), &ra.target_refs);
    if ra.jwt_rules.len() > 4096 {
        ctx.error(&root.f("jwtRules"), "at most 4096 jwtRules may be set");
    }
    for (i, rule) in ra.jwt_rules.iter().enumerate() {
        check_jwt_rule(ctx, &root.f("jwtRules").i(i), rule);
    }
}

fn check_jwt_rule(ctx: &mut Ctx<'_>, p: &P, rule: &JwtRule) {
    for (i, aud) in rule.audiences.iter().enumerate() {
        if aud.is_empty() {
            ctx.error(&p.f("audiences").i(i), "audience must be non-empty string");
        }
    }
    let uri = rule.jwks_uri.as_deref().unwrap_or("");
    if rule.issuer.is_empty() && uri.is_empty() {
        ctx.error(p, "issuer or jwksUri must be non-empty string");
    }
    if rule.jwks_uri.is_some() && rule.jwks.is_some() {
        ctx.error(p, "only one of jwks or jwksUri can be set");
    }
    if !uri.is_empty() {
        let up = p.f("jwksUri");
        if uri.len() > 2048 {
            ctx.error(&up, "jwksUri must be at most 2048 characters");
        }
        match uri.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => {}
            Some((scheme, _)) if !scheme.contains(['/', '\\']) => ctx.error(
                &up,
                format!("URI scheme {scheme:?} is not supported; url must have scheme http:// or https://"),
            ),
            _ => ctx.error(&up, "url must have scheme http:// or https://"),
        }
    }
    if let Some(jwks) = &rule.jwks {
        match check_jwks(jwks) {
            Ok(private) => {
                for i in private {
                    ctx.warn(
                        &p.f("jwks"),
                        format!("jwks key at index {i} contains private key material; only public keys are used for verification"),
                    );
                }
            }
            Err(e) => ctx.error(&p.f("jwks"), e),
        }
    }
    for (i, h) in rule.from_headers.iter().enumerate() {
        if h.name.is_empty() {
            ctx.error(&p.f("fromHeaders").i(i).f("name"), "location header name must be non-empty string");
        }
    }
    for (i, q) in rule.from_params.iter().enumerate() {
        if q.is_empty() {
            ctx.error(&p.f("fromParams").i(i), "location query must be non-empty string");
        }
    }
    for (i, c) in rule.from_cookies.iter().enumerate() {
        if c.is_empty() {
            ctx.error(&p.f("fromCookies").i(i), "cookie name must be non-empty string");
        }
    }
    let mut headers = BTreeSet::new();
    for (i, ch) in rule.output_claim_to_headers.iter().enumerate() {
        let cp = p.f("outputClaimToHeaders").i(i);
        if ch.claim.is_empty() || ch.header.is_empty() {
            ctx.error(&cp, "outputClaimToHeaders header and claim value must be non-empty string");
            continue;
        }
        if !ch.header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            ctx.error(&cp.f("header"), format!("header name {:?} is not a valid header name", ch.header));
        }
        headers.insert(ch.header.to_ascii_lowercase());
    }
    if let Some(t) = &rule.timeout {
        match parse_duration(t) {
            Ok(d) if d >= std::time::Duration::from_millis(1) => {}
            Ok(_) => ctx.error(&p.f("timeout"), "must be a valid duration greater than 1ms"),
            Err(e) => ctx.error(&p.f("timeout"), format!("must be a valid duration greater than 1ms: {e}")),
        }
    }
    if rule.space_delimited_claims.len() > 64 {
        ctx.error(&p.f("spaceDelimitedClaims"), "at most 64 spaceDelimitedClaims may be set");
    }
    for (i, c) in rule.space_delimited_claims.iter().enumerate() {
        if c.is_empty() {
            ctx.error(&p.f("spaceDelimitedClaims").i(i), "claim name must be non-empty string");
        }
    }
}

/// A JWKS document: a JSON object with a `keys` array of objects, each with a `kty`. Returns the
/// indices of keys holding private material (`d`, or a symmetric `oct` key), which Istio warns of
/// (`warnPrivateJwksKeys`).
fn check_jwks(jwks: &str) -> Result<Vec<usize>, String> {
    let value: serde_json::Value = serde_json::from_str(jwks).map_err(|e| format!("jwks parse error: {e}"))?;
    let keys =
        value.get("keys").and_then(|k| k.as_array()).ok_or_else(|| "jwks parse error: no `keys` array".to_string())?;
    let mut private = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(kty) = key.get("kty").and_then(|k| k.as_str()) else {
            return Err(format!("jwks parse error: key {i} has no `kty`"));
        };
        if kty == "oct" || key.get("d").is_some() {
            private.push(i);
        }
    }
    Ok(private)
}
