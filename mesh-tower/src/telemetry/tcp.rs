//! Istio's TCP metrics of proxied connections (`mesh proxy`'s TCP and TLS passthrough routes).

use std::sync::Arc;

use metrics::{Counter, Label};

use super::TelemetryLayer;
use super::stats::flags_label;
use crate::balance::Upstream;
use crate::cluster::EndpointMeta;
use crate::error::ResponseFlags;

/// Istio's TCP metrics of one proxied connection, labelled as the HTTP ones are (with
/// `request_protocol="tcp"` and no response code): `istio_tcp_connections_opened_total` when it is
/// made, `istio_tcp_sent_bytes_total` (towards the client) and `istio_tcp_received_bytes_total`
/// (from the client) as bytes pass, `istio_tcp_connections_closed_total` when it ends.
#[derive(Debug)]
pub struct TcpConnection {
    sent: Counter,
    received: Counter,
    closed: Counter,
}

impl TcpConnection {
    /// Count `n` bytes sent to the client.
    pub fn sent(&self, n: u64) {
        self.sent.increment(n);
    }

    /// Count `n` bytes received from the client.
    pub fn received(&self, n: u64) {
        self.received.increment(n);
    }

    /// The connection closed.
    pub fn closed(self) {
        self.closed.increment(1);
    }
}

impl TcpConnection {
    /// Counts a connection opened under `labels` and returns its counters.
    pub(crate) fn open(labels: Vec<Label>) -> TcpConnection {
        metrics::counter!("istio_tcp_connections_opened_total", labels.clone()).increment(1);
        TcpConnection {
            sent: metrics::counter!("istio_tcp_sent_bytes_total", labels.clone()),
            received: metrics::counter!("istio_tcp_received_bytes_total", labels.clone()),
            closed: metrics::counter!("istio_tcp_connections_closed_total", labels),
        }
    }
}

impl TelemetryLayer {
    /// A connection proxied to `upstream` (the endpoint and its cluster; `None` when none was
    /// reached) of `service`, ended or going on with `flags`: counts it opened and returns its
    /// counters (see [`TcpConnection`]).
    pub fn tcp_connection(
        &self,
        upstream: Option<&Upstream>,
        service: &Arc<str>,
        flags: ResponseFlags,
    ) -> TcpConnection {
        let meta = upstream.map_or_else(EndpointMeta::unknown, |u| u.meta.clone());
        let mut labels = self.shared.peer_labels(&meta, service);
        labels.extend([
            Label::new("request_protocol", "tcp"),
            flags_label(flags),
            Label::new("connection_security_policy", "unknown"),
        ]);
        TcpConnection::open(labels)
    }
}
