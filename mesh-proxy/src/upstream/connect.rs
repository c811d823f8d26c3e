//! Opening TCP connections to endpoints as a DestinationRule's `connectionPool.tcp` says
//! (`connectTimeout`, `tcpKeepalive`, Nagle off), for the proxy's own connections and for
//! hyper-util's pooled clients ([`HttpConnector`]).

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use mesh_tower::cluster::UpstreamConnect;
use tokio::net::TcpStream;

/// Open a TCP connection to `address` as the cluster's DestinationRule says: within its
/// `connectTimeout` (else [`CONNECT_TIMEOUT`], Istio's default), with its `tcpKeepalive`, and
/// with Nagle off.
pub(crate) async fn connect_tcp(address: &str, connect: Option<&UpstreamConnect>) -> std::io::Result<TcpStream> {
    let timeout = connect.and_then(|c| c.timeout).unwrap_or(CONNECT_TIMEOUT);
    let connecting = async {
        // A name that does not resolve is a failure to connect (Envoy's `UF`), not a reset.
        let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(address)
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::HostUnreachable, format!("{address}: {e}")))?
            .collect();
        TcpStream::connect(&addresses[..]).await
    };
    let tcp = tokio::time::timeout(timeout, connecting).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))
    })??;
    let _ = tcp.set_nodelay(true);
    if let Some(keepalive) = connect.and_then(|c| c.keepalive) {
        set_keepalive(&tcp, &keepalive)?;
    }
    Ok(tcp)
}

/// SO_KEEPALIVE with the policy's time, interval and probes (the system's defaults for the rest).
pub(crate) fn set_keepalive(tcp: &TcpStream, keepalive: &mesh_core::policy::TcpKeepalive) -> std::io::Result<()> {
    let mut settings = socket2::TcpKeepalive::new();
    if let Some(time) = keepalive.time {
        settings = settings.with_time(time);
    }
    if let Some(interval) = keepalive.interval {
        settings = settings.with_interval(interval);
    }
    if let Some(probes) = keepalive.probes {
        settings = settings.with_retries(probes);
    }
    socket2::SockRef::from(tcp).set_tcp_keepalive(&settings)
}

/// Connections idle this long are closed.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// A TCP connect must finish within this time.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    // The URI may say https (a request that came in over TLS); the TLS decision is ours.
    connector.enforce_http(false);
    connector
}

/// A connector that opens connections as a DestinationRule's `connectTimeout` and
/// `tcpKeepalive` say (hyper-util cannot turn keepalive on with the system's idle time: an unset
/// `time` is Linux's default, 7200 s).
pub(super) fn http_connector_with(connect: Option<&UpstreamConnect>) -> HttpConnector {
    let mut connector = http_connector();
    if let Some(connect) = connect {
        if let Some(timeout) = connect.timeout {
            connector.set_connect_timeout(Some(timeout));
        }
        if let Some(keepalive) = connect.keepalive {
            connector.set_keepalive(Some(keepalive.time.unwrap_or(Duration::from_secs(7200))));
            connector.set_keepalive_interval(keepalive.interval);
            connector.set_keepalive_retries(keepalive.probes);
        }
    }
    connector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_get_the_destination_rules_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let keepalive = mesh_core::policy::TcpKeepalive {
            probes: Some(4),
            time: Some(Duration::from_secs(600)),
            interval: Some(Duration::from_secs(30)),
        };
        let connect = UpstreamConnect { timeout: Some(Duration::from_secs(1)), keepalive: Some(keepalive) };
        let tcp = connect_tcp(&address, Some(&connect)).await.expect("connected");
        let socket = socket2::SockRef::from(&tcp);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"), Duration::from_secs(600));
        assert_eq!(socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"), Duration::from_secs(30));
        assert_eq!(socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"), 4);
        assert!(tcp.nodelay().expect("TCP_NODELAY"));
        // Without a policy: no keepalive, as Istio leaves it unless tcpKeepalive is set.
        let plain = connect_tcp(&address, None).await.expect("connected");
        assert!(!socket2::SockRef::from(&plain).keepalive().expect("SO_KEEPALIVE"));
    }
}
