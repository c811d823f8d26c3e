//! DestinationRule validation, rule by rule, as Istio validates it (istio/istio
//! `pkg/config/validation/validation.go` `ValidateDestinationRule` and the functions it calls,
//! `pkg/config/validation/agent/validation.go` `ValidateTLS` / `ValidateLocalityLbSetting` /
//! `ValidateZoneAwareLbSetting`, and the DestinationRule CRD's schema).
//!
//! Each case that Istio rejects must be rejected here at the right field path, and each near
//! miss that Istio accepts must be accepted.

use mesh_config::{Diagnostic, LoadOptions, Severity, load_str, validate};

/// `text` without the indentation its non-empty lines share.
fn dedent(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().skip_while(|l| l.trim().is_empty()).collect();
    let indent = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min();
    lines.iter().map(|l| l.get(indent.unwrap_or(0)..).unwrap_or("")).collect()
}

/// Load and validate a DestinationRule `dr` in namespace `ns1` whose `spec` is `spec`.
fn diagnostics(spec: &str) -> Vec<Diagnostic> {
    let mut text = String::from(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: dr\n  namespace: ns1\nspec:\n",
    );
    for line in dedent(spec) {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    let loaded = load_str(&text, Some("dr.yaml"), &LoadOptions::default()).expect("YAML");
    assert_eq!(loaded.resources.len(), 1, "{text}\n{:?}", loaded.diagnostics);
    let mut out = loaded.diagnostics.clone();
    for r in &loaded.resources {
        out.extend(validate(r));
    }
    out
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {:?} {}: {}", d.severity, d.path, d.message)).collect::<Vec<_>>().join("\n")
}

/// Istio rejects `spec`: an error at `path` whose message contains `message`.
#[track_caller]
fn rejects(spec: &str, path: &str, message: &str) {
    let diags = diagnostics(spec);
    assert!(
        diags.iter().any(|d| d.is_error() && d.path == path && d.message.contains(message)),
        "expected an error at {path} containing {message:?}, got:\n{}",
        render(&diags)
    );
}

/// Istio accepts `spec`: no error.
#[track_caller]
fn accepts(spec: &str) -> Vec<Diagnostic> {
    let diags = diagnostics(spec);
    assert!(!diags.iter().any(Diagnostic::is_error), "expected no error, got:\n{}", render(&diags));
    diags
}

/// Istio accepts `spec` with a warning at `path` containing `message`.
#[track_caller]
fn warns(spec: &str, path: &str, message: &str) {
    let diags = accepts(spec);
    assert!(
        diags.iter().any(|d| d.severity == Severity::Warning && d.path == path && d.message.contains(message)),
        "expected a warning at {path} containing {message:?}, got:\n{}",
        render(&diags)
    );
}

/// Istio accepts `spec` without any warning.
#[track_caller]
fn accepts_quietly(spec: &str) {
    let diags = accepts(spec);
    assert!(!diags.iter().any(|d| d.severity == Severity::Warning), "expected no warning, got:\n{}", render(&diags));
}

// ---- validateTrafficPolicy / validateTunnelSettings / validateProxyProtocol ----

#[test]
fn tunnel_and_proxy_protocol_are_exclusive() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          tunnel: {targetHost: egress.example.com, targetPort: 8443}
          proxyProtocol: {version: V2}
        ",
        "trafficPolicy",
        "tunnel and proxyProtocol must not be set together",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          tunnel: {targetHost: egress.example.com, targetPort: 8443}
        ",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          proxyProtocol: {version: V2}
        ",
    );
}

#[test]
fn tunnel_target_host_is_an_fqdn_or_an_ip() {
    for bad in ["bad_host!", "''", "egress.*.com"] {
        rejects(
            &format!(
                "
                host: reviews
                trafficPolicy:
                  tunnel: {{protocol: POST, targetHost: {bad}, targetPort: 8443}}
                "
            ),
            "trafficPolicy.tunnel.targetHost",
            "tunnel target host must be valid FQDN or IP address",
        );
    }
    for good in ["egress.example.com", "10.0.0.1", "'2001:db8::1'", "egress"] {
        accepts(&format!(
            "
            host: reviews
            trafficPolicy:
              tunnel: {{protocol: CONNECT, targetHost: {good}, targetPort: 8443}}
            "
        ));
    }
}

#[test]
fn tunnel_target_port_is_in_range() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          tunnel: {targetHost: egress.example.com, targetPort: 70000}
        ",
        "trafficPolicy.tunnel.targetPort",
        "tunnel target port is invalid",
    );
}

// ---- validatePortTrafficPolicies and the CRD's portLevelSettings ----

#[test]
fn port_level_settings_need_a_port_but_not_one_in_1_65535() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          portLevelSettings:
          - loadBalancer: {simple: RANDOM}
        ",
        "trafficPolicy.portLevelSettings[0]",
        "portTrafficPolicy must have valid port",
    );
    // Istio checks that the selector is there; the number is any uint32 (CRD), unchecked.
    for number in [0, 70000] {
        accepts(&format!(
            "
            host: reviews
            trafficPolicy:
              portLevelSettings:
              - port: {{number: {number}}}
                loadBalancer: {{simple: RANDOM}}
            "
        ));
    }
}

#[test]
fn port_level_settings_hold_at_most_4096_entries() {
    let spec = |n: u32| {
        let mut s = String::from("host: reviews\ntrafficPolicy:\n  portLevelSettings:\n");
        for port in 1..=n {
            s.push_str(&format!("  - {{port: {{number: {port}}}, loadBalancer: {{simple: RANDOM}}}}\n"));
        }
        s
    };
    rejects(&spec(4097), "trafficPolicy.portLevelSettings", "at most 4096");
    accepts(&spec(4096));
}

// ---- validateConnectionPool ----

#[test]
fn http2_keepalive_needs_interval_and_timeout() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          connectionPool:
            http:
              http2KeepAlive: {interval: 15s}
        ",
        "trafficPolicy.connectionPool.http.http2KeepAlive.timeout",
        "http2 keepalive timeout is required",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          connectionPool:
            http:
              http2KeepAlive: {timeout: 5s}
        ",
        "trafficPolicy.connectionPool.http.http2KeepAlive.interval",
        "http2 keepalive interval is required",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          connectionPool:
            http:
              http2KeepAlive: {interval: 15s, timeout: 5s}
        ",
    );
}

#[test]
fn tcp_idle_timeout_is_whole_milliseconds_unless_under_1ms() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          connectionPool:
            tcp: {idleTimeout: 1.5ms}
        ",
        "trafficPolicy.connectionPool.tcp.idleTimeout",
        "only durations to ms precision are supported",
    );
    // Under 1 ms (`0s` disables the timeout) Istio does not check the value.
    for good in ["0s", "0.5ms", "30s", "1ms"] {
        accepts(&format!(
            "
            host: reviews
            trafficPolicy:
              connectionPool:
                tcp: {{idleTimeout: {good}}}
            "
        ));
    }
}

// ---- validateOutlierDetection ----

#[test]
fn local_origin_failures_need_the_split_only_when_positive() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutiveLocalOriginFailures: 5}
        ",
        "trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
        "split external local origin errors is set to false",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutiveLocalOriginFailures: 0}
        ",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutiveLocalOriginFailures: 5, splitExternalLocalOriginErrors: true}
        ",
    );
}

// ---- validateLoadBalancer: consistentHash ----

#[test]
fn cookie_attribute_names_are_set_and_unique() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash:
              httpCookie:
                name: session
                attributes: [{name: SameSite, value: Strict}, {name: SameSite, value: Lax}]
        ",
        "trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name",
        "duplicate cookie attribute name: SameSite",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash:
              httpCookie:
                name: session
                attributes: [{name: '', value: x}]
        ",
        "trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[0].name",
        "cookie attribute name cannot be empty",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash:
              httpCookie:
                name: session
                ttl: 0s
                attributes: [{name: SameSite, value: Strict}, {name: Secure}]
        ",
    );
}

#[test]
fn minimum_ring_size_is_deprecated_and_exclusive_with_an_algorithm() {
    warns(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash: {httpHeaderName: x-user, minimumRingSize: 1024}
        ",
        "trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        "MinimumRingSize is deprecated",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash: {httpHeaderName: x-user, minimumRingSize: 1024, ringHash: {minimumRingSize: 2048}}
        ",
        "trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
        "only one of MinimumRingSize or Maglev/Ringhash can be specified",
    );
    // 0 is "not set" for Istio: no warning, no conflict.
    accepts_quietly(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash: {httpHeaderName: x-user, minimumRingSize: 0, ringHash: {minimumRingSize: 2048}}
        ",
    );
}

#[test]
fn maglev_table_size_is_set_prime_and_below_5000011() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash: {useSourceIp: true, maglev: {}}
        ",
        "trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "tableSize must be set for maglev",
    );
    // 5000011 is prime, but too large.
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash: {useSourceIp: true, maglev: {tableSize: 5000011}}
        ",
        "trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "tableSize must be less than 5000011 for maglev",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}
        ",
        "trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
        "tableSize must be a prime number for maglev",
    );
    // Envoy's (and so Istio's) primality test lets 1 through.
    for good in [1, 2, 65537, 4999999] {
        accepts(&format!(
            "
            host: reviews
            trafficPolicy:
              loadBalancer:
                consistentHash: {{useSourceIp: true, maglev: {{tableSize: {good}}}}}
            "
        ));
    }
}

// ---- validateLoadBalancer: warmup, warmupDurationSecs ----

#[test]
fn warmup_aggression_is_positive() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            warmup: {duration: 60s, aggression: 0}
        ",
        "trafficPolicy.loadBalancer.warmup.aggression",
        "aggression should be greater than 0",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            warmup: {duration: 60s, aggression: 0.5}
        ",
    );
}

#[test]
fn warmup_duration_secs_has_only_the_crd_minimum() {
    for bad in ["0s", "0.5ms"] {
        rejects(
            &format!(
                "
                host: reviews
                trafficPolicy:
                  loadBalancer: {{simple: ROUND_ROBIN, warmupDurationSecs: {bad}}}
                "
            ),
            "trafficPolicy.loadBalancer.warmupDurationSecs",
            "greater than 1ms",
        );
    }
    // No millisecond-precision rule: Istio's Go validation does not look at this field.
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 1.5ms}
        ",
    );
}

// ---- ValidateLocalityLbSetting ----

#[test]
fn failover_priority_cannot_hold_topology_labels_next_to_failover() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east, to: eu-west}]
              failoverPriority: [topology.istio.io/network, topology.kubernetes.io/zone]
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[1]",
        "can not simultaneously set 'failover' and topology label 'topology.kubernetes.io/zone'",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east, to: eu-west}]
              failoverPriority: [topology.istio.io/network]
        ",
    );
    // Without failover, topology labels are fine.
    accepts(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]
        ",
    );
}

#[test]
fn locality_weights_are_1_to_100_and_sum_to_100() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: us-east/zone1/*
                to: {us-east/zone1/*: 0, us-east/zone2/*: 100}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-east/zone1/*\"]",
        "locality weight must be in range [1, 100]",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: us-east/zone1/*
                to: {us-east/zone1/*: 80, us-east/zone2/*: 25}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
        "total locality weight 105 != 100",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: us-east/zone1/*
                to: {us-east/zone1/*: 80, us-east/zone2/*: 20}
        ",
    );
}

#[test]
fn localities_have_one_trailing_wildcard_and_no_empty_part() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: us-east/*/sub
                to: {us-east: 100}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from",
        "wildcard '*' number can not exceed 1 and must be in the end",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: us-east
                to: {us-east//sub: 100}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-east//sub\"]",
        "must not contain empty region/zone/subzone info",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: '*'
                to: {us-east/zone1: 50, us-east/zone2/sub*: 50}
        ",
    );
}

#[test]
fn localities_do_not_overlap() {
    // Two sources for the same locality.
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - {from: us-east/zone1, to: {us-east: 100}}
              - {from: us-east/zone1, to: {eu-west: 100}}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[1].from",
        "overlap with previous specified ones",
    );
    // A zone wildcard, then a zone under it.
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - {from: us-east/*, to: {us-east: 100}}
              - {from: us-east/zone1/sub1, to: {eu-west: 100}}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[1].from",
        "overlap with previous specified ones",
    );
    // Istio walks `from` in order and notices a wildcard only before what it covers.
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - {from: us-east/zone1/sub1, to: {eu-west: 100}}
              - {from: us-east/*, to: {us-east: 100}}
        ",
    );
    // In a `to` map (walked in Go's random order), a covering pair is an overlap either way.
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: eu-west
                to: {us-east/zone1/sub1: 50, us-east/zone1/*: 50}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-east/zone1/sub1\"]",
        "overlap with previous specified ones",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - from: eu-west
                to: {us-east: 50, us-east/zone1: 50}
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-east/zone1\"]",
        "overlap with previous specified ones",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              distribute:
              - {from: us-east/zone1, to: {us-east/zone1/sub1: 50, us-east/zone2: 25, us-west: 25}}
              - {from: us-east/zone2, to: {us-east: 100}}
        ",
    );
}

#[test]
fn failover_wants_outlier_detection_in_the_same_policy() {
    warns(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east, to: eu-west}]
        ",
        "trafficPolicy.loadBalancer.localityLbSetting",
        "outlier detection policy must be provided for failover",
    );
    warns(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            localityLbSetting:
              failoverPriority: [topology.istio.io/network]
        ",
        "trafficPolicy.loadBalancer.localityLbSetting",
        "outlier detection policy must be provided for failover",
    );
    accepts_quietly(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east, to: eu-west}]
        ",
    );
    // A port's policy is checked on its own: the top-level outlier detection does not count.
    warns(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          portLevelSettings:
          - port: {number: 80}
            loadBalancer:
              localityLbSetting:
                failover: [{from: us-east, to: eu-west}]
        ",
        "trafficPolicy.portLevelSettings[0].loadBalancer.localityLbSetting",
        "outlier detection policy must be provided for failover",
    );
}

#[test]
fn failover_names_bare_regions() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east/zone1, to: eu-west}]
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.failover[0].from",
        "locality lb failover only specify region",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east, to: '*'}]
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.failover[0].to",
        "locality lb failover region should not contain '*' wildcard",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            localityLbSetting:
              failover: [{from: us-east, to: us-east}]
        ",
        "trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
        "must specify different regions",
    );
}

// ---- ValidateZoneAwareLbSetting and the CRD's minClusterSize ----

#[test]
fn zone_aware_failover_rules() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            zoneAwareLbSetting:
              failoverPriority: [topology.istio.io/network, topology.istio.io/subzone]
        ",
        "trafficPolicy.loadBalancer.zoneAwareLbSetting.failoverPriority[1]",
        "'failover_priority' for zone aware lb must not use topology label 'topology.istio.io/subzone'",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            zoneAwareLbSetting:
              failover: [{from: us-east, to: us-east}]
        ",
        "trafficPolicy.loadBalancer.zoneAwareLbSetting.failover[0]",
        "zone aware lb failover settings must specify different regions",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            zoneAwareLbSetting:
              failover: [{from: us-east, to: eu-west/zone1}]
        ",
        "trafficPolicy.loadBalancer.zoneAwareLbSetting.failover[0].to",
        "zone aware lb failover only specifies region",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            zoneAwareLbSetting:
              failover: [{from: us-*, to: eu-west}]
        ",
        "trafficPolicy.loadBalancer.zoneAwareLbSetting.failover[0].from",
        "zone aware lb failover region should not contain '*' wildcard",
    );
    warns(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            zoneAwareLbSetting:
              failover: [{from: us-east, to: eu-west}]
        ",
        "trafficPolicy.loadBalancer.zoneAwareLbSetting",
        "outlier detection policy must be provided for failover",
    );
    accepts_quietly(
        "
        host: reviews
        trafficPolicy:
          outlierDetection: {consecutive5xxErrors: 5}
          loadBalancer:
            zoneAwareLbSetting:
              enabled: true
              minClusterSize: 1
              failover: [{from: us-east, to: eu-west}]
              failoverPriority: [topology.istio.io/network]
        ",
    );
}

#[test]
fn zone_aware_min_cluster_size_is_at_least_1() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          loadBalancer:
            zoneAwareLbSetting: {minClusterSize: 0}
        ",
        "trafficPolicy.loadBalancer.zoneAwareLbSetting.minClusterSize",
        "at least 1",
    );
}

// ---- ValidateTLS ----

#[test]
fn insecure_skip_verify_conflicts_only_in_simple_and_mutual() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /etc/ca.pem}
        ",
        "trafficPolicy.tls.caCertificates",
        "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
    );
    rejects(
        "
        host: reviews
        trafficPolicy:
          tls:
            mode: MUTUAL
            insecureSkipVerify: true
            clientCertificate: /etc/cert.pem
            privateKey: /etc/key.pem
            subjectAltNames: [reviews.default.svc]
        ",
        "trafficPolicy.tls.subjectAltNames",
        "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true",
    );
    // Istio checks these combinations in SIMPLE and MUTUAL mode only.
    accepts(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: DISABLE, insecureSkipVerify: true, caCertificates: /etc/ca.pem, subjectAltNames: [a]}
        ",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: ISTIO_MUTUAL, insecureSkipVerify: true, subjectAltNames: ['spiffe://cluster.local/ns/a/sa/b']}
        ",
    );
}

#[test]
fn credential_name_excludes_ca_crl() {
    rejects(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: SIMPLE, credentialName: reviews-ca, caCrl: /etc/crl.pem}
        ",
        "trafficPolicy.tls.caCrl",
        "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
    );
    accepts(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, caCrl: /etc/crl.pem}
        ",
    );
}

#[test]
fn configmap_credential_names_the_own_namespace() {
    for (bad, why) in [
        ("configmap://other/ca", "namespace must match the configuration namespace \"ns1\""),
        ("configmap://ca", "Expected namespace and name"),
        ("configmap:///ca", "Expected namespace"),
        ("configmap://ns1/", "Expected name"),
    ] {
        rejects(
            &format!(
                "
                host: reviews
                trafficPolicy:
                  tls: {{mode: SIMPLE, credentialName: '{bad}'}}
                "
            ),
            "trafficPolicy.tls.credentialName",
            why,
        );
    }
    accepts(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: SIMPLE, credentialName: 'configmap://ns1/ca'}
        ",
    );
    // Other credential names are not parsed by Istio's validation.
    accepts(
        "
        host: reviews
        trafficPolicy:
          tls: {mode: SIMPLE, credentialName: 'kubernetes://other/secret'}
        ",
    );
}

// ---- validateExportTo (isDestinationRuleWithSelector) ----

#[test]
fn a_rule_with_a_selector_is_exported_to_its_namespace_only() {
    rejects(
        "
        host: reviews
        workloadSelector: {matchLabels: {app: productpage}}
        exportTo: ['*']
        ",
        "exportTo",
        "destination rule with workload selector cannot have exportTo beyond current namespace",
    );
    rejects(
        "
        host: reviews
        workloadSelector: {matchLabels: {app: productpage}}
        exportTo: ['.', other]
        ",
        "exportTo",
        "destination rule with workload selector cannot have multiple entries in exportTo",
    );
    for good in ["['.']", "[ns1]", "[]"] {
        accepts(&format!(
            "
            host: reviews
            workloadSelector: {{matchLabels: {{app: productpage}}}}
            exportTo: {good}
            "
        ));
    }
    // Without a selector, any namespace.
    accepts(
        "
        host: reviews
        exportTo: ['*']
        ",
    );
}

// ---- validateWorkloadSelector and the CRD's matchLabels rules ----

#[test]
fn selector_labels_follow_the_crd_not_the_label_syntax() {
    let long = "v".repeat(64);
    rejects(
        &format!(
            "
            host: reviews
            workloadSelector: {{matchLabels: {{app: {long}}}}}
            "
        ),
        "workloadSelector.matchLabels.app",
        "longer than 63 characters",
    );
    rejects(
        "
        host: reviews
        workloadSelector: {matchLabels: {app: 'prod*'}}
        ",
        "workloadSelector.matchLabels.app",
        "wildcard is not supported in selector",
    );
    // Istio checks only emptiness, wildcards and length here, not the Kubernetes label syntax.
    let max = "v".repeat(63);
    accepts(&format!(
        "
        host: reviews
        workloadSelector: {{matchLabels: {{app: {max}, -odd_key: 'a b'}}}}
        "
    ));
}

#[test]
fn selector_holds_at_most_4096_labels() {
    let spec = |n: u32| {
        let mut s = String::from("host: reviews\nworkloadSelector:\n  matchLabels:\n");
        for i in 0..n {
            s.push_str(&format!("    k{i}: v\n"));
        }
        s
    };
    rejects(&spec(4097), "workloadSelector.matchLabels", "at most 4096 labels");
    accepts(&spec(4096));
}
