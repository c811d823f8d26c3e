//! `tls` of a traffic policy: client TLS settings (istio/istio
//! `pkg/config/validation/agent/validation.go` `ValidateTLS`; `configmap://` credential names as
//! `pilot/pkg/model/credentials/resource.go` `ParseResourceName` parses them).
//!
//! `ISTIO_MUTUAL` is supported: a client with a workload certificate (`mesh proxy --cert-dir`,
//! the in-process client's `CertSource`) originates Istio's mutual TLS
//! (`mesh_core::upstream_tls`); without one, its connections fail (503).

use crate::types::destination_rule::*;
use crate::validate::{Ctx, P};

/// `credentialName: configmap://<namespace>/<name>` must name a ConfigMap in the rule's own
/// namespace (`ValidateTLS`, parsing as `credentials.ParseResourceName`).
fn check_configmap_credential(ctx: &mut Ctx<'_>, path: &P, credential: &str, rest: &str) {
    let namespace = ctx.resource.namespace.to_string();
    let problem = match rest.split_once('/') {
        None => Some(format!("invalid resource name {credential:?}. Expected namespace and name")),
        Some(("", _)) => Some(format!("invalid resource name {credential:?}. Expected namespace")),
        Some((_, name)) if name.split('/').next().unwrap_or("").is_empty() => {
            Some(format!("invalid resource name {credential:?}. Expected name"))
        }
        Some((ns, _)) if ns != namespace || namespace.is_empty() => {
            Some(format!("namespace must match the configuration namespace {namespace:?}"))
        }
        Some(_) => None,
    };
    if let Some(problem) = problem {
        ctx.error(path, format!("invalid configmap:// credentialName: {problem}"));
    }
}

/// `ValidateTLS`.
pub(super) fn validate_tls(ctx: &mut Ctx<'_>, path: &P, tls: &ClientTlsSettings) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
    let mode = tls.mode.unwrap_or(ClientTlsMode::DISABLE);
    if let Some(credential) = tls.credential_name.as_deref()
        && let Some(rest) = credential.strip_prefix("configmap://")
    {
        check_configmap_credential(ctx, &path.f("credentialName"), credential, rest);
    }
    if tls.insecure_skip_verify == Some(true) {
        // Only SIMPLE and MUTUAL are checked: with DISABLE or ISTIO_MUTUAL Istio ignores these.
        match mode {
            ClientTlsMode::SIMPLE => {
                let message = "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true";
                if set(&tls.ca_certificates) {
                    ctx.error(&path.f("caCertificates"), message);
                }
                if set(&tls.credential_name) {
                    ctx.error(&path.f("credentialName"), message);
                }
                if !tls.subject_alt_names.is_empty() {
                    ctx.error(&path.f("subjectAltNames"), message);
                }
            }
            ClientTlsMode::MUTUAL => {
                // In MUTUAL mode a credentialName may carry the client certificate alone.
                let message = "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true";
                if set(&tls.ca_certificates) {
                    ctx.error(&path.f("caCertificates"), message);
                }
                if !tls.subject_alt_names.is_empty() {
                    ctx.error(&path.f("subjectAltNames"), message);
                }
            }
            ClientTlsMode::DISABLE | ClientTlsMode::ISTIO_MUTUAL => {}
        }
    }
    let simple_or_mutual = matches!(mode, ClientTlsMode::SIMPLE | ClientTlsMode::MUTUAL);
    if simple_or_mutual && set(&tls.credential_name) {
        for (field, value) in [
            ("clientCertificate", &tls.client_certificate),
            ("caCertificates", &tls.ca_certificates),
            ("privateKey", &tls.private_key),
            ("caCrl", &tls.ca_crl),
        ] {
            if set(value) {
                ctx.error(
                    &path.f(field),
                    "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
                );
            }
        }
    } else if mode == ClientTlsMode::MUTUAL {
        if !set(&tls.client_certificate) {
            ctx.error(&path.f("clientCertificate"), "client certificate required for mutual tls");
        }
        if !set(&tls.private_key) {
            ctx.error(&path.f("privateKey"), "private key required for mutual tls");
        }
    }
    if set(&tls.credential_name) {
        ctx.unsupported(&path.f("credentialName"), "credentialName (Kubernetes secrets); use certificate files");
    }
    if mode == ClientTlsMode::ISTIO_MUTUAL {
        // Secure naming matches the server's SPIFFE identity (a workload certificate names
        // exactly one); other names never match and are left out (`mesh_core::upstream_tls`).
        for (i, san) in tls.subject_alt_names.iter().enumerate() {
            if san.parse::<mesh_core::spiffe::SpiffeId>().is_err() {
                ctx.unsupported_because(
                    &path.f("subjectAltNames").i(i),
                    format!(
                        "{san:?} under ISTIO_MUTUAL: meshwork matches only SPIFFE identities, this name is ignored"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn istio_mutual_non_spiffe_subject_alt_names_are_reported_unsupported() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: foo}\nspec:\n  host: reviews\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL, subjectAltNames: ['spiffe://cluster.local/ns/foo/sa/reviews', reviews.foo]}\n";
        let loaded = crate::load_str(yaml, None, &crate::LoadOptions::default()).expect("yaml");
        let diagnostics: Vec<_> = loaded.resources.iter().flat_map(crate::validate::validate).collect();
        let found: Vec<String> =
            diagnostics.iter().map(|d| format!("{:?} {} {}", d.severity, d.path, d.message)).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("Unsupported trafficPolicy.tls.subjectAltNames[1]"), "{found:?}");
    }
}
