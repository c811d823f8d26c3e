//! DestinationRule rules (istio/istio `pkg/config/validation/agent/validation.go`
//! `ValidateDestinationRule`, `validateTrafficPolicy` and friends).

use super::common::*;
use super::virtual_service::validate_subset_name;
use super::{Ctx, P};
use crate::types::destination_rule::*;

pub(super) fn validate(ctx: &mut Ctx<'_>, dr: &DestinationRule) {
    let root = P::root();
    ctx.check(&root.f("host"), validate_wildcard_domain(&dr.host));
    if let Some(tp) = &dr.traffic_policy {
        validate_traffic_policy(ctx, &root.f("trafficPolicy"), tp);
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, subset) in dr.subsets.iter().enumerate() {
        let p = root.f("subsets").i(i);
        ctx.check(&p.f("name"), validate_subset_name(&subset.name));
        if !subset.name.is_empty() && names.contains(&subset.name.as_str()) {
            ctx.error(&p.f("name"), format!("duplicate subset names: {}", subset.name));
        }
        names.push(&subset.name);
        validate_labels(ctx, &p.f("labels"), &subset.labels);
        if let Some(tp) = &subset.traffic_policy {
            validate_traffic_policy(ctx, &p.f("trafficPolicy"), tp);
        }
    }
    check_export_to(ctx, &root.f("exportTo"), &dr.export_to, false);
    if let Some(sel) = &dr.workload_selector {
        let p = root.f("workloadSelector").f("matchLabels");
        if sel.match_labels.is_empty() {
            ctx.warn(
                &root.f("workloadSelector"),
                "workload selector specified without labels, will be applied to all workloads in the namespace",
            );
        }
        for (k, v) in &sel.match_labels {
            if k.is_empty() {
                ctx.error(&p.k(k), format!("empty key is not supported in selector: \"{k}={v}\""));
            }
            if k.contains('*') || v.contains('*') {
                ctx.error(&p.k(k), format!("wildcard is not supported in selector: \"{k}={v}\""));
            }
        }
        validate_labels(ctx, &p, &sel.match_labels);
    }
}

fn validate_traffic_policy(ctx: &mut Ctx<'_>, path: &P, tp: &TrafficPolicy) {
    if tp.load_balancer.is_none()
        && tp.connection_pool.is_none()
        && tp.outlier_detection.is_none()
        && tp.tls.is_none()
        && tp.port_level_settings.is_empty()
        && tp.tunnel.is_none()
        && tp.proxy_protocol.is_none()
        && tp.retry_budget.is_none()
    {
        ctx.error(path, "traffic policy must have at least one field");
    }
    validate_policy_parts(
        ctx,
        path,
        tp.load_balancer.as_ref(),
        tp.connection_pool.as_ref(),
        tp.outlier_detection.as_ref(),
        tp.tls.as_ref(),
    );
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let p = path.f("portLevelSettings").i(i);
        match &pl.port {
            None => ctx.error(&p, "portTrafficPolicy must have valid port"),
            Some(port) => ctx.check(&p.f("port").f("number"), validate_port(port.number)),
        }
        if pl.load_balancer.is_none()
            && pl.connection_pool.is_none()
            && pl.outlier_detection.is_none()
            && pl.tls.is_none()
        {
            ctx.error(&p, "port traffic policy must have at least one field");
        } else {
            validate_policy_parts(
                ctx,
                &p,
                pl.load_balancer.as_ref(),
                pl.connection_pool.as_ref(),
                pl.outlier_detection.as_ref(),
                pl.tls.as_ref(),
            );
        }
    }
    if let Some(t) = &tp.tunnel {
        let p = path.f("tunnel");
        if let Some(proto) = &t.protocol
            && proto != "CONNECT"
            && proto != "POST"
        {
            ctx.error(&p.f("protocol"), format!("tunnel protocol must be \"CONNECT\" or \"POST\", got {proto:?}"));
        }
        if t.target_host.is_empty() {
            ctx.error(&p.f("targetHost"), "tunnel target host must be set");
        }
        ctx.check(&p.f("targetPort"), validate_port(t.target_port));
        ctx.unsupported(&p, "tunnel settings");
    }
    if let Some(pp) = &tp.proxy_protocol {
        if let Some(v) = &pp.version
            && v != "V1"
            && v != "V2"
        {
            ctx.error(&path.f("proxyProtocol").f("version"), format!("unknown PROXY protocol version {v:?}"));
        }
        ctx.unsupported(&path.f("proxyProtocol"), "proxyProtocol");
    }
    if let Some(rb) = &tp.retry_budget {
        let p = path.f("retryBudget");
        if let Some(percent) = rb.percent
            && !(0.0..=100.0).contains(&percent)
        {
            ctx.error(&p.f("percent"), format!("retry budget percent {percent} is not in range 0..100"));
        }
        check_duration_any(ctx, &p.f("budgetInterval"), rb.budget_interval.as_ref());
    }
}

fn validate_policy_parts(
    ctx: &mut Ctx<'_>,
    path: &P,
    lb: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    tls: Option<&ClientTlsSettings>,
) {
    if let Some(lb) = lb {
        validate_load_balancer(ctx, &path.f("loadBalancer"), lb);
    }
    if let Some(pool) = pool {
        validate_connection_pool(ctx, &path.f("connectionPool"), pool);
    }
    if let Some(o) = outlier {
        validate_outlier_detection(ctx, &path.f("outlierDetection"), o);
    }
    if let Some(tls) = tls {
        validate_tls(ctx, &path.f("tls"), tls);
    }
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut i = 2u64;
    while i.saturating_mul(i) <= n {
        if n.is_multiple_of(i) {
            return false;
        }
        i += 1;
    }
    true
}

fn validate_load_balancer(ctx: &mut Ctx<'_>, path: &P, lb: &LoadBalancerSettings) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        ctx.error(path, "only one of simple or consistentHash may be set");
    }
    if let Some(ch) = &lb.consistent_hash {
        let p = path.f("consistentHash");
        let keys = usize::from(ch.http_header_name.is_some())
            + usize::from(ch.http_cookie.is_some())
            + usize::from(ch.use_source_ip.is_some())
            + usize::from(ch.http_query_parameter_name.is_some());
        if keys > 1 {
            ctx.error(&p, "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName may be set");
        }
        if let Some(cookie) = &ch.http_cookie {
            if cookie.name.is_empty() {
                ctx.error(&p.f("httpCookie").f("name"), "name required for HttpCookie");
            }
            check_duration_any(ctx, &p.f("httpCookie").f("ttl"), cookie.ttl.as_ref());
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            ctx.error(&p, "only one of ringHash or maglev may be set");
        }
        if ch.minimum_ring_size.is_some() && (ch.ring_hash.is_some() || ch.maglev.is_some()) {
            ctx.error(
                &p.f("minimumRingSize"),
                "minimumRingSize is deprecated and may not be set with ringHash or maglev",
            );
        }
        if let Some(size) = ch.maglev.as_ref().and_then(|m| m.table_size)
            && !is_prime(size)
        {
            ctx.error(&p.f("maglev").f("tableSize"), "tableSize must be a prime number for maglev");
        }
    }
    if lb.locality_lb_setting.is_some() && lb.zone_aware_lb_setting.is_some() {
        ctx.error(path, "only one of localityLbSetting and zoneAwareLbSetting can be set");
    }
    if let Some(l) = &lb.locality_lb_setting {
        let p = path.f("localityLbSetting");
        if !l.distribute.is_empty() && !l.failover.is_empty() {
            ctx.error(&p, "can not simultaneously specify 'distribute' and 'failover'");
        }
        for (i, d) in l.distribute.iter().enumerate() {
            let total: u64 = d.to.values().map(|w| u64::from(*w)).sum();
            if total != 100 {
                ctx.error(&p.f("distribute").i(i).f("to"), "total locality weight must be 100");
            }
        }
        for (i, f) in l.failover.iter().enumerate() {
            if f.from == f.to {
                ctx.error(&p.f("failover").i(i), "locality lb failover settings must specify different regions");
            }
        }
        if !l.distribute.is_empty() {
            ctx.unsupported(&p.f("distribute"), "localityLbSetting.distribute");
        }
        if !l.failover_priority.is_empty() {
            ctx.unsupported(&p.f("failoverPriority"), "localityLbSetting.failoverPriority");
        }
    }
    if lb.zone_aware_lb_setting.is_some() {
        ctx.unsupported(&path.f("zoneAwareLbSetting"), "zoneAwareLbSetting");
    }
    if let Some(w) = &lb.warmup {
        let p = path.f("warmup");
        if w.duration.is_none() {
            ctx.error(&p.f("duration"), "duration: Required value");
        }
        check_duration(ctx, &p.f("duration"), w.duration.as_ref());
        if let Some(mp) = w.minimum_percent
            && !(0.0..=100.0).contains(&mp)
        {
            ctx.error(&p.f("minimumPercent"), "minimumPercent must be in range 0..100");
        }
        if let Some(a) = w.aggression
            && a < 0.0
        {
            ctx.error(&p.f("aggression"), "aggression must not be negative");
        }
    }
    if lb.warmup_duration_secs.is_some() {
        check_duration(ctx, &path.f("warmupDurationSecs"), lb.warmup_duration_secs.as_ref());
    }
    if lb.simple == Some(SimpleLb::PASSTHROUGH) {
        ctx.unsupported(&path.f("simple"), "PASSTHROUGH load balancing");
    }
}

fn validate_connection_pool(ctx: &mut Ctx<'_>, path: &P, pool: &ConnectionPoolSettings) {
    if pool.http.is_none() && pool.tcp.is_none() {
        ctx.error(path, "connection pool must have at least one field");
    }
    if let Some(http) = &pool.http {
        let p = path.f("http");
        for (field, value, what) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests, "http1 max pending requests"),
            ("http2MaxRequests", http.http2_max_requests, "http2 max requests"),
            ("maxRequestsPerConnection", http.max_requests_per_connection, "max requests per connection"),
            ("maxRetries", http.max_retries, "max retries"),
            ("maxConcurrentStreams", http.max_concurrent_streams, "max concurrent streams"),
        ] {
            if value.is_some_and(|v| v < 0) {
                ctx.error(&p.f(field), format!("{what} must be non-negative"));
            }
        }
        check_duration(ctx, &p.f("idleTimeout"), http.idle_timeout.as_ref());
        if http.h2_upgrade_policy == Some(H2UpgradePolicy::UPGRADE) && http.use_client_protocol == Some(true) {
            ctx.error(&p, "use client protocol must not be true when H2UpgradePolicy is UPGRADE");
        }
        if let Some(ka) = &http.http2_keep_alive {
            let kp = p.f("http2KeepAlive");
            check_duration(ctx, &kp.f("interval"), ka.interval.as_ref());
            check_duration(ctx, &kp.f("timeout"), ka.timeout.as_ref());
            if ka.timeout.is_some() && ka.interval.is_none() {
                ctx.error(&kp, "http2KeepAlive timeout requires an interval");
            }
            ctx.unsupported(&kp, "http2KeepAlive");
        }
    }
    if let Some(tcp) = &pool.tcp {
        let p = path.f("tcp");
        if tcp.max_connections.is_some_and(|v| v < 0) {
            ctx.error(&p.f("maxConnections"), "max connections must be non-negative");
        }
        check_duration(ctx, &p.f("connectTimeout"), tcp.connect_timeout.as_ref());
        check_duration(ctx, &p.f("maxConnectionDuration"), tcp.max_connection_duration.as_ref());
        check_duration_any(ctx, &p.f("idleTimeout"), tcp.idle_timeout.as_ref());
        if let Some(ka) = &tcp.tcp_keepalive {
            check_duration(ctx, &p.f("tcpKeepalive").f("time"), ka.time.as_ref());
            check_duration(ctx, &p.f("tcpKeepalive").f("interval"), ka.interval.as_ref());
        }
        if tcp.max_connection_duration.is_some() {
            ctx.unsupported(&p.f("maxConnectionDuration"), "maxConnectionDuration");
        }
    }
}

fn validate_outlier_detection(ctx: &mut Ctx<'_>, path: &P, o: &OutlierDetection) {
    check_duration(ctx, &path.f("baseEjectionTime"), o.base_ejection_time.as_ref());
    check_duration(ctx, &path.f("interval"), o.interval.as_ref());
    if o.consecutive_errors.is_some_and(|v| v != 0) {
        ctx.warn(
            &path.f("consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        );
    }
    for (field, value) in [("maxEjectionPercent", o.max_ejection_percent), ("minHealthPercent", o.min_health_percent)] {
        if let Some(v) = value
            && !(0..=100).contains(&v)
        {
            ctx.error(&path.f(field), format!("percentage {v} is not in range 0..100"));
        }
    }
    if o.consecutive_local_origin_failures.is_some() && o.split_external_local_origin_errors != Some(true) {
        ctx.error(
            &path.f("consecutiveLocalOriginFailures"),
            "consecutive local origin errors is only supported when split external local origin errors is enabled",
        );
    }
    for (i, code) in o.outlier_detection_http_error_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            ctx.error(
                &path.f("outlierDetectionHttpErrorCodes").i(i),
                format!("HTTP status {code} is not in range 100-599"),
            );
        }
    }
}

fn validate_tls(ctx: &mut Ctx<'_>, path: &P, tls: &ClientTlsSettings) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.is_empty());
    let mode = tls.mode.unwrap_or(ClientTlsMode::DISABLE);
    let simple_or_mutual = matches!(mode, ClientTlsMode::SIMPLE | ClientTlsMode::MUTUAL);
    if tls.insecure_skip_verify == Some(true) {
        if set(&tls.ca_certificates) {
            ctx.error(&path.f("caCertificates"), "cannot specify CaCertificates when InsecureSkipVerify is set");
        }
        if !tls.subject_alt_names.is_empty() {
            ctx.error(&path.f("subjectAltNames"), "cannot specify SubjectAltNames when InsecureSkipVerify is set");
        }
        if mode == ClientTlsMode::SIMPLE && set(&tls.credential_name) {
            ctx.error(&path.f("credentialName"), "cannot specify CredentialName when InsecureSkipVerify is set in SIMPLE mode: it would only provide a CA");
        }
    }
    if simple_or_mutual && set(&tls.credential_name) {
        if set(&tls.client_certificate) || set(&tls.ca_certificates) || set(&tls.private_key) {
            ctx.error(path, "cannot specify client certificates or CA certificate If credentialName is set");
        }
    } else if mode == ClientTlsMode::MUTUAL {
        if !set(&tls.client_certificate) {
            ctx.error(&path.f("clientCertificate"), "client certificate required for mutual tls");
        }
        if !set(&tls.private_key) {
            ctx.error(&path.f("privateKey"), "private key required for mutual tls");
        }
    }
    if mode == ClientTlsMode::ISTIO_MUTUAL {
        ctx.unsupported(&path.f("mode"), "ISTIO_MUTUAL (mesh certificates)");
    }
    if set(&tls.credential_name) {
        ctx.unsupported(&path.f("credentialName"), "credentialName (Kubernetes secrets); use certificate files");
    }
}
