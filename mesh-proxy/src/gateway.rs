//! The listeners of a Gateway, kept in step with the configuration.
//!
//! [`GatewayListeners::reconcile`] opens a listener for every port the Gateway's `servers`
//! declare — HTTP, HTTPS, HTTP2 and GRPC servers through the mesh stack ([`crate::server`]);
//! plain TCP servers (`TCP`, `MONGO`, `MYSQL`, `REDIS` without TLS; `TLS` terminating it) and TLS
//! `PASSTHROUGH` servers by VirtualService `tcp[]` and `tls[]` rules ([`crate::l4`]); others are
//! reported and skipped —
//! and drains and closes the listeners of ports it no longer declares, as Envoy adds and removes
//! listeners when an ingress gateway's configuration changes. A port whose kind changes (HTTP to
//! TCP) is closed and opened again. Call it after each reload; hosts, certificates and routes of
//! ports that stay are read per connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mesh_core::Binding;
use mesh_tower::Mesh;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::{GatewayPort, Upstream, serve_gateway};

/// What one reconcile did to one port.
#[derive(Debug)]
pub enum PortChange {
    /// A listener was opened for the port.
    Opened {
        /// Gateway port.
        port: u16,
        /// Protocol of its server(s).
        protocol: Arc<str>,
        /// Where it listens.
        address: SocketAddr,
    },
    /// The port's listener is draining and will close.
    Closed {
        /// Gateway port.
        port: u16,
    },
    /// The port could not be opened (tried again on the next reconcile).
    Failed {
        /// Gateway port.
        port: u16,
        /// Where it was to listen.
        address: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The port's protocol is not served by meshwork (TLS `AUTO_PASSTHROUGH`, `ISTIO_MUTUAL`, ...).
    Skipped {
        /// Gateway port.
        port: u16,
        /// Its protocol.
        protocol: Arc<str>,
    },
}

#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    l4: bool,
}

/// One listener per port of a Gateway (see the module docs).
#[derive(Debug)]
pub struct GatewayListeners {
    mesh: Mesh,
    namespace: Arc<str>,
    name: Arc<str>,
    address: IpAddr,
    port_map: HashMap<u16, SocketAddr>,
    stack: Upstream,
    running: HashMap<u16, Running>,
    skipped: Vec<u16>,
    mtls: Option<crate::upstream::OutboundMtls>,
}

impl GatewayListeners {
    /// The listeners of Gateway `namespace/name` in `mesh`, opened on `address` at each server's
    /// port, or where `port_map` says; requests go through `stack`.
    pub fn new(
        mesh: Mesh,
        namespace: &str,
        name: &str,
        address: IpAddr,
        port_map: HashMap<u16, SocketAddr>,
        stack: Upstream,
    ) -> Self {
        GatewayListeners {
            mesh,
            namespace: Arc::from(namespace),
            name: Arc::from(name),
            address,
            port_map,
            stack,
            running: HashMap::new(),
            skipped: Vec::new(),
            mtls: None,
        }
    }

    /// TCP routes of the Gateway's TCP servers originate Istio's mutual TLS with `mtls` where
    /// mesh-core's decision says so (a DestinationRule `ISTIO_MUTUAL`, auto mTLS), as the HTTP
    /// stack does.
    pub fn with_outbound_mtls(mut self, mtls: crate::upstream::OutboundMtls) -> Self {
        self.mtls = Some(mtls);
        self
    }

    /// Does the configuration have this Gateway?
    pub fn declared(&self) -> bool {
        self.mesh.snapshot().gateway(&self.namespace, &self.name).is_some()
    }

    /// The ports the Gateway declares now, with the protocol of their first server and whether
    /// they are TCP or TLS passthrough ports.
    fn desired(&self) -> Vec<(u16, Arc<str>, bool)> {
        let snapshot = self.mesh.snapshot();
        let binding = Binding::Gateway { namespace: self.namespace.clone(), name: self.name.clone() };
        let mut ports: Vec<(u16, Arc<str>, bool)> = Vec::new();
        if let Some(g) = snapshot.gateway(&self.namespace, &self.name) {
            for server in g.servers.iter() {
                if !ports.iter().any(|(p, _, _)| *p == server.port) {
                    let l4 = snapshot.l4_server(&binding, server.port).is_some();
                    ports.push((server.port, server.protocol.clone(), l4));
                }
            }
        }
        ports
    }

    /// Open and close listeners to match the configuration (see the module docs).
    pub async fn reconcile(&mut self, stop: &watch::Receiver<bool>) -> Vec<PortChange> {
        let mut changes = Vec::new();
        let desired = self.desired();
        let closing: Vec<u16> = self
            .running
            .iter()
            .filter(|(p, r)| !desired.iter().any(|(d, _, l4)| d == *p && *l4 == r.l4))
            .map(|(p, _)| *p)
            .collect();
        for port in closing {
            if let Some(running) = self.running.remove(&port) {
                let _ = running.stop.send(true);
                changes.push(PortChange::Closed { port });
            }
        }
        self.skipped.retain(|p| desired.iter().any(|(d, _, l4)| d == p && !l4));
        for (port, protocol, l4) in desired {
            if self.running.contains_key(&port) || self.skipped.contains(&port) {
                continue;
            }
            if !l4 && !matches!(&*protocol, "HTTP" | "HTTPS" | "HTTP2" | "GRPC") {
                self.skipped.push(port);
                changes.push(PortChange::Skipped { port, protocol });
                continue;
            }
            let address = self.port_map.get(&port).copied().unwrap_or(SocketAddr::new(self.address, port));
            let listener = match tokio::net::TcpListener::bind(address).await {
                Ok(l) => l,
                Err(error) => {
                    changes.push(PortChange::Failed { port, address, error });
                    continue;
                }
            };
            let address = listener.local_addr().unwrap_or(address);
            let (own_stop, own_stopped) = watch::channel(false);
            let mut global = stop.clone();
            let forward = own_stop.clone();
            // The listener stops when this port goes away or when the whole proxy stops.
            tokio::spawn(async move {
                if global.wait_for(|s| *s).await.is_ok() {
                    let _ = forward.send(true);
                }
            });
            let task = if l4 {
                let binding = Binding::Gateway { namespace: self.namespace.clone(), name: self.name.clone() };
                let stack = Some(self.stack.clone());
                let mtls = self.mtls.clone();
                tokio::spawn(crate::l4::serve_l4_with(
                    listener,
                    self.mesh.clone(),
                    binding,
                    port,
                    stack,
                    mtls,
                    own_stopped,
                ))
            } else {
                let gateway = GatewayPort::new(self.mesh.clone(), &self.namespace, &self.name, port);
                tokio::spawn(serve_gateway(listener, self.stack.clone(), gateway, own_stopped))
            };
            self.running.insert(port, Running { stop: own_stop, task, l4 });
            changes.push(PortChange::Opened { port, protocol, address });
        }
        changes
    }

    /// Stop every listener and wait until their connections have drained.
    pub async fn shutdown(self) -> std::io::Result<()> {
        for running in self.running.values() {
            let _ = running.stop.send(true);
        }
        for (_, running) in self.running {
            match running.task.await {
                Ok(result) => result?,
                Err(e) => tracing::warn!(target: "meshwork::proxy", error = %e, "gateway listener task failed"),
            }
        }
        Ok(())
    }
}
