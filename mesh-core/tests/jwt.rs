//! RequestAuthentication token verification with tokens minted here: valid, bad signature,
//! expired (and within the clock skew), not yet valid, wrong issuer, wrong audience, missing,
//! other locations, key selection by `kid`, fetched key sets, space-delimited claims; then the
//! claims through the whole inbound decision.
#![cfg(feature = "jwt")]

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mesh_core::authz::*;
use mesh_core::inbound::{InboundRequest, JwtOutcome, Verdict};
use mesh_core::jwt::{JwksError, JwtVerifier};
use mesh_core::policy::LabelSelector;
use mesh_core::request_authn::{JwtRule, JwtRuleSpec, RequestAuthn, TokenLocation};
use mesh_core::security::{MeshSecurity, Security};
use mesh_core::workload::Workload;
use serde_json::json;

const NOW: u64 = 1_800_000_000;

struct Key {
    encoding: EncodingKey,
    alg: Algorithm,
    kid: &'static str,
}

impl Key {
    fn hmac(secret: &[u8], kid: &'static str) -> Key {
        Key { encoding: EncodingKey::from_secret(secret).expect("secret"), alg: Algorithm::HS256, kid }
    }

    fn ec(kid: &'static str) -> Key {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        Key {
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem"),
            alg: Algorithm::ES256,
            kid,
        }
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).expect("jwk");
        jwk.common.key_id = Some(self.kid.to_string());
        jwk
    }

    fn mint(&self, claims: serde_json::Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.to_string());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("token")
    }
}

fn jwks(keys: &[&Key]) -> String {
    serde_json::to_string(&JwkSet { keys: keys.iter().map(|k| k.jwk()).collect() }).expect("json")
}

fn rule(spec: JwtRuleSpec) -> Arc<JwtRule> {
    Arc::new(JwtRule::new("foo", "jwt", &spec))
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().expect("value"));
    h
}

fn claims(iss: &str) -> serde_json::Value {
    json!({"iss": iss, "sub": "alice", "exp": NOW + 600, "aud": ["web", "api"], "scope": "read write", "groups": ["dev"]})
}

#[test]
fn outcomes() {
    let key = Key::ec("k1");
    let other = Key::ec("k1");
    let spec = JwtRuleSpec { issuer: "issuer-1".into(), jwks: Some(jwks(&[&key])), ..Default::default() };
    let (v, errors) = JwtVerifier::new(&[rule(spec.clone())], &|_| None);
    assert!(errors.is_empty());
    let check = |token: &str| v.verify(&bearer(token), None, NOW).outcome;

    let ok = v.verify(&bearer(&key.mint(claims("issuer-1"))), None, NOW);
    assert_eq!((ok.outcome, ok.rule), (JwtOutcome::Valid, Some(0)));
    assert!(matches!(ok.location, Some(TokenLocation::Header { .. })));
    let c = ok.claims.expect("claims");
    assert_eq!(c.get("sub"), Some(&ClaimValue::String("alice".into())));
    assert_eq!(
        c.get("scope"),
        Some(&ClaimValue::List(vec![ClaimValue::String("read".into()), ClaimValue::String("write".into())])),
        "scope is space-delimited by default"
    );
    assert_eq!(check(&other.mint(claims("issuer-1"))), JwtOutcome::Invalid, "bad signature");
    assert_eq!(check(&key.mint(claims("issuer-2"))), JwtOutcome::Invalid, "issuer");
    let mut expired = claims("issuer-1");
    expired["exp"] = json!(NOW - 120);
    assert_eq!(check(&key.mint(expired.clone())), JwtOutcome::Invalid, "expired");
    expired["exp"] = json!(NOW - 30);
    assert_eq!(check(&key.mint(expired)), JwtOutcome::Valid, "within Envoy's 60 s clock skew");
    let mut early = claims("issuer-1");
    early["nbf"] = json!(NOW + 120);
    assert_eq!(check(&key.mint(early)), JwtOutcome::Invalid, "not yet valid");
    assert_eq!(v.verify(&http::HeaderMap::new(), None, NOW).outcome, JwtOutcome::Missing);
    assert_eq!(check("garbage"), JwtOutcome::Invalid);

    // Audiences.
    let with_aud = |aud: &[&str]| {
        let spec = JwtRuleSpec { audiences: aud.iter().map(|a| a.to_string()).collect(), ..spec.clone() };
        JwtVerifier::new(&[rule(spec)], &|_| None).0
    };
    let token = key.mint(claims("issuer-1"));
    assert_eq!(with_aud(&["api"]).verify(&bearer(&token), None, NOW).outcome, JwtOutcome::Valid);
    assert_eq!(with_aud(&["mobile"]).verify(&bearer(&token), None, NOW).outcome, JwtOutcome::AudienceNotAllowed);
}

#[test]
fn locations_keys_and_rules() {
    let a = Key::hmac(b"secret-a-0123456789-0123456789-0", "a");
    let b = Key::hmac(b"secret-b-0123456789-0123456789-0", "b");
    // Query parameter (Envoy's default access_token) and a custom header with no prefix.
    let default = JwtRuleSpec { issuer: "iss-a".into(), jwks: Some(jwks(&[&a, &b])), ..Default::default() };
    let (v, _) = JwtVerifier::new(&[rule(default)], &|_| None);
    let token = b.mint(claims("iss-a"));
    let r = v.verify(&http::HeaderMap::new(), Some(&format!("x=1&access_token={token}")), NOW);
    assert_eq!((r.outcome, r.location), (JwtOutcome::Valid, Some(TokenLocation::Param("access_token".into()))));
    let custom = JwtRuleSpec {
        issuer: "iss-a".into(),
        jwks: Some(jwks(&[&a])),
        from_headers: vec![("X-Jwt".into(), "".into())],
        from_cookies: vec!["session".into()],
        ..Default::default()
    };
    let (v, _) = JwtVerifier::new(&[rule(custom)], &|_| None);
    let token = a.mint(claims("iss-a"));
    let mut h = http::HeaderMap::new();
    h.insert("x-jwt", token.parse().expect("value"));
    assert_eq!(v.verify(&h, None, NOW).outcome, JwtOutcome::Valid);
    let mut h = http::HeaderMap::new();
    h.insert("cookie", format!("a=b; session={token}").parse().expect("value"));
    assert_eq!(v.verify(&h, None, NOW).outcome, JwtOutcome::Valid);
    assert_eq!(
        v.verify(&bearer(&token), None, NOW).outcome,
        JwtOutcome::Missing,
        "Authorization is not a location here"
    );

    // Two rules: the token of the second verifies against the second; a jwksUri key set comes
    // from the caller, and one not fetched yet is reported.
    let first = JwtRuleSpec { issuer: "iss-a".into(), jwks: Some(jwks(&[&a])), ..Default::default() };
    let second =
        JwtRuleSpec { issuer: "iss-b".into(), jwks_uri: Some("https://b.example/jwks".into()), ..Default::default() };
    let third =
        JwtRuleSpec { issuer: "iss-c".into(), jwks_uri: Some("https://c.example/jwks".into()), ..Default::default() };
    let fetched = jwks(&[&b]);
    let (v, errors) = JwtVerifier::new(&[rule(first), rule(second), rule(third)], &|uri| {
        (uri == "https://b.example/jwks").then(|| fetched.clone())
    });
    assert_eq!(errors, [JwksError::Unavailable { issuer: "iss-c".into(), uri: "https://c.example/jwks".into() }]);
    let r = v.verify(&bearer(&b.mint(claims("iss-b"))), None, NOW);
    assert_eq!((r.outcome, r.rule), (JwtOutcome::Valid, Some(1)));
    assert_eq!(v.verify(&bearer(&b.mint(claims("iss-c"))), None, NOW).outcome, JwtOutcome::Invalid);
}

#[test]
fn through_the_inbound_decision() {
    let key = Key::ec("k");
    let spec =
        JwtRuleSpec { issuer: "testing@secure.istio.io".into(), jwks: Some(jwks(&[&key])), ..Default::default() };
    let jwt_rule = rule(spec);
    let mut allow = PolicySpec::new("foo", "require-jwt", Action::Allow);
    allow.rules = vec![RuleSpec {
        from: vec![SourceSpec {
            request_principals: vec!["testing@secure.istio.io/alice".into()],
            ..Default::default()
        }],
        ..Default::default()
    }];
    let security = Security::new(MeshSecurity::default(), [], [allow]).with_request_authentications([RequestAuthn {
        namespace: "foo".into(),
        name: "jwt".into(),
        selector: LabelSelector::default(),
        rules: vec![jwt_rule],
    }]);
    let w = Workload::new("foo", [("app", "httpbin")]);
    let (verifier, _) = JwtVerifier::new(&security.jwt_rules(&w), &|_| None);
    let decide = |headers: http::HeaderMap| {
        let verified = verifier.verify(&headers, None, NOW);
        let request = InboundRequest {
            mtls: false,
            jwt: verified.outcome,
            attributes: AuthzRequest {
                destination_port: 8000,
                http: Some(HttpAttributes {
                    method: "GET".into(),
                    host: "httpbin".into(),
                    path: "/headers".into(),
                    headers,
                    jwt: verified.claims,
                }),
                ..Default::default()
            },
        };
        let d = security.inbound(&w, &request);
        (d.verdict, d.status)
    };
    assert_eq!(decide(bearer(&key.mint(claims("testing@secure.istio.io")))), (Verdict::Allow, None));
    assert_eq!(decide(http::HeaderMap::new()), (Verdict::Deny, Some(403)), "no token: not the required principal");
    assert_eq!(decide(bearer(&Key::ec("k").mint(claims("testing@secure.istio.io")))), (Verdict::Reject, Some(401)));
}
