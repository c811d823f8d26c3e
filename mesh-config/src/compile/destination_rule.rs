//! DestinationRules compiled into [`mesh_core::policy::DestinationPolicy`]: traffic policies
//! (load balancing, slow start, connection pool, outlier detection, client TLS, locality) with the
//! defaults Istio fills in, per port and per subset.

use std::time::Duration;

use mesh_core::policy::{self, DestinationPolicy, LabelSelector};

use super::{Ctx, arc, duration, opt_arc, port16};
use crate::types::destination_rule as dr;

impl Ctx<'_> {
    pub(super) fn destination_rule(&mut self, d: &dr::DestinationRule) -> DestinationPolicy {
        DestinationPolicy {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            host: self.host(&d.host),
            traffic_policy: d.traffic_policy.as_ref().map(traffic_policy).unwrap_or_default(),
            subsets: d
                .subsets
                .iter()
                .map(|s| policy::Subset {
                    name: arc(&s.name),
                    labels: LabelSelector::new(&s.labels),
                    traffic_policy: s.traffic_policy.as_ref().map(traffic_policy),
                })
                .collect(),
            workload_selector: d.workload_selector.as_ref().map(|w| LabelSelector::new(&w.match_labels)),
        }
    }
}

fn traffic_policy(tp: &dr::TrafficPolicy) -> policy::TrafficPolicy {
    policy::TrafficPolicy {
        parts: parts(
            tp.load_balancer.as_ref(),
            tp.connection_pool.as_ref(),
            tp.outlier_detection.as_ref(),
            tp.tls.as_ref(),
        ),
        port_level: tp
            .port_level_settings
            .iter()
            .filter_map(|p| {
                let port = port16(p.port.as_ref()?.number)?;
                Some((
                    port,
                    parts(
                        p.load_balancer.as_ref(),
                        p.connection_pool.as_ref(),
                        p.outlier_detection.as_ref(),
                        p.tls.as_ref(),
                    ),
                ))
            })
            .collect(),
        retry_budget: tp.retry_budget.as_ref().map(|b| policy::RetryBudget {
            percent: b.percent.unwrap_or(20.0),
            min_retry_concurrency: b.min_retry_concurrency.unwrap_or(3),
        }),
    }
}

fn parts(
    lb: Option<&dr::LoadBalancerSettings>,
    pool: Option<&dr::ConnectionPoolSettings>,
    outlier: Option<&dr::OutlierDetection>,
    tls: Option<&dr::ClientTlsSettings>,
) -> policy::PolicyParts {
    policy::PolicyParts {
        load_balancer: lb.and_then(load_balancer),
        connection_pool: pool.map(connection_pool),
        outlier_detection: outlier.map(outlier_detection),
        tls: tls.map(client_tls),
        locality: lb.and_then(|lb| lb.locality_lb_setting.as_ref()).map(|l| policy::LocalitySetting {
            enabled: l.enabled,
            failover: l.failover.iter().map(|f| (arc(&f.from), arc(&f.to))).collect(),
            unapplied_mode: !l.distribute.is_empty() || !l.failover_priority.is_empty(),
        }),
        warmup: lb.and_then(warmup),
    }
}

/// Slow start: `warmup` (Istio 1.26+), else `warmupDurationSecs`, with Istio's defaults
/// (minimum 10 %, aggression 1.0); only for round robin and least request, as Envoy offers it.
fn warmup(lb: &dr::LoadBalancerSettings) -> Option<policy::Warmup> {
    let slow_start = matches!(
        lb.simple,
        None | Some(
            dr::SimpleLb::ROUND_ROBIN
                | dr::SimpleLb::LEAST_REQUEST
                | dr::SimpleLb::LEAST_CONN
                | dr::SimpleLb::UNSPECIFIED
        )
    ) && lb.consistent_hash.is_none();
    let (duration, minimum_percent, aggression) = match (&lb.warmup, &lb.warmup_duration_secs) {
        (Some(w), _) => (duration(&w.duration)?, w.minimum_percent.unwrap_or(10.0), w.aggression.unwrap_or(1.0)),
        (None, Some(d)) => (duration(&Some(d.clone()))?, 10.0, 1.0),
        (None, None) => return None,
    };
    (slow_start && !duration.is_zero()).then_some(policy::Warmup { duration, minimum_percent, aggression })
}

fn load_balancer(lb: &dr::LoadBalancerSettings) -> Option<policy::LoadBalancer> {
    if let Some(ch) = &lb.consistent_hash {
        let key = if let Some(h) = &ch.http_header_name {
            policy::HashKey::Header(arc(&h.to_ascii_lowercase()))
        } else if let Some(c) = &ch.http_cookie {
            policy::HashKey::Cookie { name: arc(&c.name), path: opt_arc(&c.path), ttl: duration(&c.ttl) }
        } else if let Some(q) = &ch.http_query_parameter_name {
            policy::HashKey::QueryParameter(arc(q))
        } else {
            policy::HashKey::SourceIp
        };
        let algorithm = match (&ch.maglev, &ch.ring_hash) {
            (Some(m), _) => policy::HashAlgorithm::Maglev { table_size: m.table_size.unwrap_or(65537) },
            (None, Some(r)) => {
                policy::HashAlgorithm::RingHash { minimum_ring_size: r.minimum_ring_size.unwrap_or(1024) }
            }
            (None, None) => policy::HashAlgorithm::RingHash { minimum_ring_size: ch.minimum_ring_size.unwrap_or(1024) },
        };
        return Some(policy::LoadBalancer::ConsistentHash(policy::ConsistentHash { key, algorithm }));
    }
    lb.simple.map(|s| match s {
        dr::SimpleLb::ROUND_ROBIN => policy::LoadBalancer::RoundRobin,
        dr::SimpleLb::RANDOM => policy::LoadBalancer::Random,
        dr::SimpleLb::PASSTHROUGH => policy::LoadBalancer::Passthrough,
        dr::SimpleLb::UNSPECIFIED | dr::SimpleLb::LEAST_CONN | dr::SimpleLb::LEAST_REQUEST => {
            policy::LoadBalancer::LeastRequest
        }
    })
}

fn nonneg(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn connection_pool(p: &dr::ConnectionPoolSettings) -> policy::ConnectionPool {
    let tcp = p.tcp.as_ref();
    let http = p.http.as_ref();
    policy::ConnectionPool {
        max_connections: nonneg(tcp.and_then(|t| t.max_connections)),
        connect_timeout: tcp.and_then(|t| duration(&t.connect_timeout)),
        tcp_idle_timeout: tcp.and_then(|t| duration(&t.idle_timeout)),
        tcp_keepalive: tcp.and_then(|t| t.tcp_keepalive.as_ref()).map(|k| policy::TcpKeepalive {
            probes: k.probes.filter(|p| *p > 0),
            time: duration(&k.time),
            interval: duration(&k.interval),
        }),
        http1_max_pending_requests: nonneg(http.and_then(|h| h.http1_max_pending_requests)),
        http2_max_requests: nonneg(http.and_then(|h| h.http2_max_requests)),
        max_requests_per_connection: nonneg(http.and_then(|h| h.max_requests_per_connection)),
        max_retries: nonneg(http.and_then(|h| h.max_retries)),
        idle_timeout: http.and_then(|h| duration(&h.idle_timeout)),
        h2_upgrade: http.and_then(|h| h.h2_upgrade_policy) == Some(dr::H2UpgradePolicy::UPGRADE),
        use_client_protocol: http.and_then(|h| h.use_client_protocol) == Some(true),
    }
}

/// Istio's translation onto Envoy's outlier detection defaults: 5 consecutive 5xx (unless set,
/// 0 disables), gateway errors off unless set, interval 10 s, base ejection 30 s, at most 10 %
/// ejected, panic threshold (minHealthPercent) 0 %.
fn outlier_detection(o: &dr::OutlierDetection) -> policy::OutlierDetection {
    let consecutive_5xx = match (o.consecutive_5xx_errors, o.consecutive_errors) {
        (Some(v), _) => Some(v),
        (None, Some(v)) if v > 0 => u32::try_from(v).ok(),
        (None, _) => Some(5),
    }
    .filter(|v| *v > 0);
    policy::OutlierDetection {
        consecutive_5xx,
        consecutive_gateway: o.consecutive_gateway_errors.filter(|v| *v > 0),
        consecutive_local_origin: if o.split_external_local_origin_errors == Some(true) {
            Some(o.consecutive_local_origin_failures.unwrap_or(5)).filter(|v| *v > 0)
        } else {
            None
        },
        split_external_local_origin_errors: o.split_external_local_origin_errors == Some(true),
        interval: duration(&o.interval).unwrap_or(Duration::from_secs(10)),
        base_ejection_time: duration(&o.base_ejection_time).unwrap_or(Duration::from_secs(30)),
        max_ejection_percent: nonneg(o.max_ejection_percent).unwrap_or(10).min(100),
        min_health_percent: nonneg(o.min_health_percent).unwrap_or(0).min(100),
        http_error_codes: o.outlier_detection_http_error_codes.iter().filter_map(|c| u16::try_from(*c).ok()).collect(),
    }
}

fn client_tls(t: &dr::ClientTlsSettings) -> policy::ClientTls {
    policy::ClientTls {
        mode: match t.mode.unwrap_or(dr::ClientTlsMode::DISABLE) {
            dr::ClientTlsMode::DISABLE => policy::TlsMode::Disable,
            dr::ClientTlsMode::SIMPLE => policy::TlsMode::Simple,
            dr::ClientTlsMode::MUTUAL => policy::TlsMode::Mutual,
            dr::ClientTlsMode::ISTIO_MUTUAL => policy::TlsMode::IstioMutual,
        },
        client_certificate: opt_arc(&t.client_certificate),
        private_key: opt_arc(&t.private_key),
        ca_certificates: opt_arc(&t.ca_certificates),
        sni: opt_arc(&t.sni),
        subject_alt_names: t.subject_alt_names.iter().map(|s| arc(s)).collect(),
        insecure_skip_verify: t.insecure_skip_verify == Some(true),
    }
}
