//! Gateways compiled into [`mesh_core::service::GatewayDecl`]: each server's port, protocol,
//! hosts (`namespace/host`, `./host` or a bare host, exposed to every namespace) and TLS settings.

use mesh_core::policy::LabelSelector;
use mesh_core::service;

use super::{Ctx, arc, opt_arc};
use crate::types::gateway as gw;

impl Ctx<'_> {
    pub(super) fn gateway(&mut self, g: &gw::Gateway) -> service::GatewayDecl {
        let servers = g
            .servers
            .iter()
            .filter_map(|s| {
                let port = s.port.as_ref()?;
                Some(service::GatewayServer {
                    port: u16::try_from(port.number).ok()?,
                    port_name: arc(&port.name),
                    protocol: arc(&port.protocol.to_ascii_uppercase()),
                    hosts: s
                        .hosts
                        .iter()
                        .map(|h| match h.split_once('/') {
                            Some((ns, host)) => {
                                let ns = if ns == "." { &*self.r.namespace } else { ns };
                                (arc(ns), arc(&host.to_ascii_lowercase()))
                            }
                            None => (arc("*"), arc(&h.to_ascii_lowercase())),
                        })
                        .collect(),
                    tls: s.tls.as_ref().map(|t| service::ServerTls {
                        https_redirect: t.https_redirect == Some(true),
                        mode: t.mode.map(|m| arc(&format!("{m:?}"))),
                        server_certificate: opt_arc(&t.server_certificate),
                        private_key: opt_arc(&t.private_key),
                        ca_certificates: opt_arc(&t.ca_certificates),
                        subject_alt_names: t.subject_alt_names.iter().map(|s| arc(s)).collect(),
                        credential: None,
                    }),
                })
            })
            .collect();
        service::GatewayDecl {
            namespace: self.r.namespace.clone(),
            name: self.r.name.clone(),
            servers,
            selector: LabelSelector::new(&g.selector),
        }
    }
}
