//! TCP and TLS routes: VirtualService `tcp[]` and `tls[]` rules, as a Gateway serves them.
//!
//! Istio decides these per Gateway server when it builds the listener, not per connection
//! (`createGatewayTCPFilterChainOpts` in Istio's `pilot/pkg/networking/core/gateway.go`):
//!
//! - a server with protocol `TCP` (or `MONGO`, `MYSQL`, `REDIS`) and no TLS, or with protocol
//!   `TLS` terminating it (`SIMPLE`, `MUTUAL`; the proxy then forwards the decrypted bytes): the
//!   VirtualServices bound to the Gateway are taken in order, those whose `hosts` do not overlap
//!   a host the server exposes to their namespace are skipped (`pickMatchingGatewayHosts`), and
//!   the first `tcp[]` rule whose `match[]` holds — an entry's `port` is the server's and its
//!   `gateways`, if any, name this Gateway; no `match` at all holds too (`l4MultiMatch`) — routes
//!   every connection of the server;
//! - a server in TLS mode `PASSTHROUGH` (protocol `TLS` or `HTTPS`): the same VirtualServices'
//!   `tls[]` rules, one entry per `match[]` that holds, each for its `sniHosts`; an SNI name that
//!   an earlier entry claimed is skipped for the later ones. A connection goes where its
//!   ClientHello's server name leads (an exact name before a wildcard, the longest wildcard first);
//!   with no server name, or one no rule lists, it is closed.
//!
//! Each connection then goes to one of the rule's destinations, picked by weight
//! ([`crate::route::WeightedDestinations`]). The destination's port is its `port.number`, else the
//! service's only port, else the server's port (Istio's `GetDestinationCluster`).

use std::sync::Arc;

use crate::host::HostMap;
use crate::route::{Destination, WeightedDestinations};
use crate::{Binding, Snapshot};

/// One `tcp[].match[]` or `tls[].match[]` entry, as far as a Gateway reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L4Match {
    /// `port`: the server port it holds on (`None`: any).
    pub port: Option<u16>,
    /// `gateways`: the Gateways it holds on (empty: the VirtualService's own).
    pub gateways: Box<[Binding]>,
    /// `sniHosts` (TLS rules only), qualified.
    pub sni_hosts: Box<[Arc<str>]>,
}

impl L4Match {
    /// Does this entry hold on `port` of `gateway` (Istio's `l4SingleMatch`)?
    pub fn holds(&self, gateway: &Binding, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && (self.gateways.is_empty() || self.gateways.contains(gateway))
    }
}

/// One `tcp[]` or `tls[]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct L4Rule {
    /// Index in the VirtualService's `tcp[]` or `tls[]`.
    pub index: usize,
    /// `match[]` (empty: always).
    pub matches: Box<[L4Match]>,
    /// Where connections go.
    pub destinations: WeightedDestinations,
}

/// The TCP and TLS rules of one VirtualService.
#[derive(Debug, Clone, PartialEq)]
pub struct L4VirtualService {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// `hosts`, qualified.
    pub hosts: Box<[Arc<str>]>,
    /// `gateways` (the mesh when none).
    pub gateways: Box<[Binding]>,
    /// `tcp[]`.
    pub tcp: Box<[L4Rule]>,
    /// `tls[]`.
    pub tls: Box<[L4Rule]>,
}

/// What a server port of a Gateway does with a connection: the rule that routes it.
#[derive(Debug, Clone, PartialEq)]
pub struct L4Route {
    /// The VirtualService (`namespace/name`).
    pub virtual_service: Arc<str>,
    /// `tcp` or `tls`.
    pub kind: L4Kind,
    /// Index of the rule in `tcp[]` or `tls[]`.
    pub rule: usize,
    /// Where connections go.
    pub destinations: WeightedDestinations,
    /// The port of the server (a destination without a port, of a service with several, goes to
    /// this port).
    pub server_port: u16,
}

impl L4Route {
    /// Where one connection goes: a destination picked by weight with `draw` (uniform over
    /// `u64`), with its port — its own, else the service's only port, else the server's
    /// (Istio's `GetDestinationCluster`). `None` when every weight is zero.
    pub fn destination(&self, snapshot: &Snapshot, draw: u64) -> Option<Destination> {
        let d = &self.destinations.pick(draw)?.destination;
        if d.port.is_some() {
            return Some(d.clone());
        }
        let mut ports = snapshot.services(&d.host).iter().flat_map(|s| s.ports.iter().map(|p| p.number));
        let port = match (ports.next(), ports.next()) {
            (Some(only), None) => only,
            _ => self.server_port,
        };
        Some(Destination { port: Some(port), ..d.clone() })
    }
}

/// Which rules an [`L4Route`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Kind {
    /// `tcp[]`.
    Tcp,
    /// `tls[]` (SNI passthrough).
    Tls,
}

/// How a Gateway server port is served.
#[derive(Debug, Clone)]
pub enum L4Server {
    /// Plain TCP: every connection by this route (`None`: no rule applies; connections are
    /// closed).
    Tcp(Option<Arc<L4Route>>),
    /// TLS passthrough: by the ClientHello's server name.
    Sni(Arc<HostMap<Arc<L4Route>>>),
}

impl L4Server {
    /// The route for a connection with server name `sni` (`None` for plain TCP, or a
    /// ClientHello without one).
    pub fn route(&self, sni: Option<&str>) -> Option<&Arc<L4Route>> {
        match self {
            L4Server::Tcp(route) => route.as_ref(),
            L4Server::Sni(names) => names.get(sni?),
        }
    }
}

/// Is a Gateway server of `protocol` (upper case) with TLS `mode` routed by `tcp[]` rules: a
/// plain TCP one, or a `TLS` one that terminates TLS (`SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL`) and
/// forwards what it decrypts?
pub fn is_tcp_server(protocol: &str, tls_mode: Option<&str>) -> bool {
    match protocol {
        "TCP" | "MONGO" | "MYSQL" | "REDIS" => tls_mode.is_none(),
        "TLS" => matches!(tls_mode, Some("SIMPLE" | "MUTUAL" | "OPTIONAL_MUTUAL")),
        _ => false,
    }
}

/// Is a Gateway server with TLS `mode` a passthrough one (SNI routing without terminating)?
pub fn is_passthrough_server(tls_mode: Option<&str>) -> bool {
    tls_mode == Some("PASSTHROUGH")
}

/// Build what `gateway`'s server on `port` does (see the module docs). `server_hosts` are the
/// hosts that server exposes, as `(namespace or "*", host)`; `services` are the VirtualServices
/// in config order.
pub fn build_server(
    gateway: &Binding,
    port: u16,
    passthrough: bool,
    server_hosts: &[(Arc<str>, Arc<str>)],
    services: &[Arc<L4VirtualService>],
) -> L4Server {
    let bound = services.iter().filter(|v| {
        v.gateways.contains(gateway)
            && v.hosts.iter().any(|h| {
                server_hosts
                    .iter()
                    .any(|(ns, sh)| (&**ns == "*" || **ns == *v.namespace) && crate::host::hosts_overlap(sh, h))
            })
    });
    let route = |v: &L4VirtualService, kind: L4Kind, rule: &L4Rule| {
        Arc::new(L4Route {
            virtual_service: Arc::from(format!("{}/{}", v.namespace, v.name)),
            kind,
            rule: rule.index,
            destinations: rule.destinations.clone(),
            server_port: port,
        })
    };
    if !passthrough {
        for v in bound {
            for rule in v.tcp.iter() {
                if rule.matches.is_empty() || rule.matches.iter().any(|m| m.holds(gateway, port)) {
                    return L4Server::Tcp(Some(route(v, L4Kind::Tcp, rule)));
                }
            }
        }
        return L4Server::Tcp(None);
    }
    let mut names: HostMap<Arc<L4Route>> = HostMap::default();
    for v in bound {
        for rule in v.tls.iter() {
            for m in rule.matches.iter().filter(|m| m.holds(gateway, port)) {
                // An SNI name claimed by an earlier entry keeps it (Istio skips the duplicate).
                if m.sni_hosts.iter().any(|h| names.get_pattern(h).is_some()) {
                    continue;
                }
                let r = route(v, L4Kind::Tls, rule);
                for h in m.sni_hosts.iter() {
                    names.insert(h, r.clone());
                }
            }
        }
    }
    L4Server::Sni(Arc::new(names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{Destination, HeaderEdits, RouteDestination};

    fn dest(host: &str, weight: u32) -> RouteDestination {
        RouteDestination {
            destination: Destination { host: Arc::from(host), subset: None, port: None },
            weight,
            headers: HeaderEdits::default(),
        }
    }

    fn vs(name: &str, hosts: &[&str], tcp: Vec<L4Rule>, tls: Vec<L4Rule>) -> Arc<L4VirtualService> {
        Arc::new(L4VirtualService {
            namespace: Arc::from("default"),
            name: Arc::from(name),
            hosts: hosts.iter().map(|h| Arc::from(*h)).collect(),
            gateways: Box::new([Binding::gateway("default", "gw")]),
            tcp: tcp.into_boxed_slice(),
            tls: tls.into_boxed_slice(),
        })
    }

    fn rule(index: usize, matches: Vec<L4Match>, to: &str) -> L4Rule {
        L4Rule {
            index,
            matches: matches.into_boxed_slice(),
            destinations: WeightedDestinations::new(vec![dest(to, 0)]),
        }
    }

    fn on_port(port: u16) -> L4Match {
        L4Match { port: Some(port), ..L4Match::default() }
    }

    #[test]
    fn the_first_tcp_rule_holding_on_the_port_routes_the_server() {
        let gw = Binding::gateway("default", "gw");
        let hosts = [(Arc::from("*"), Arc::from("*"))];
        let services = [
            vs("a", &["*"], vec![rule(0, vec![on_port(31401)], "one"), rule(1, vec![on_port(31400)], "two")], vec![]),
            vs("b", &["*"], vec![rule(0, vec![], "three")], vec![]),
        ];
        let route = |port| match build_server(&gw, port, false, &hosts, &services) {
            L4Server::Tcp(r) => r.map(|r| (r.virtual_service.to_string(), r.rule)),
            L4Server::Sni(_) => None,
        };
        assert_eq!(route(31400), Some(("default/a".to_string(), 1)));
        assert_eq!(route(31401), Some(("default/a".to_string(), 0)));
        // No rule of `a` holds on 9000; `b`'s rule has no match: it holds everywhere.
        assert_eq!(route(9000), Some(("default/b".to_string(), 0)));
        // Another Gateway: not bound.
        let other = Binding::gateway("default", "other");
        assert!(matches!(build_server(&other, 31400, false, &hosts, &services), L4Server::Tcp(None)));
    }

    #[test]
    fn a_virtual_service_whose_hosts_the_server_does_not_expose_is_skipped() {
        let gw = Binding::gateway("default", "gw");
        let services = [
            vs("a", &["a.example.com"], vec![rule(0, vec![], "one")], vec![]),
            vs("b", &["*.example.org"], vec![rule(0, vec![], "two")], vec![]),
        ];
        let server = [(Arc::from("*"), Arc::from("*.example.org"))];
        let L4Server::Tcp(Some(r)) = build_server(&gw, 1, false, &server, &services) else { panic!("no route") };
        assert_eq!(&*r.virtual_service, "default/b");
        // Exposed to another namespace only.
        let elsewhere = [(Arc::from("prod"), Arc::from("*"))];
        assert!(matches!(build_server(&gw, 1, false, &elsewhere, &services), L4Server::Tcp(None)));
    }

    #[test]
    fn sni_names_route_passthrough_and_the_first_claim_wins() {
        let gw = Binding::gateway("default", "gw");
        let hosts = [(Arc::from("*"), Arc::from("*"))];
        let sni = |names: &[&str]| L4Match {
            port: Some(443),
            sni_hosts: names.iter().map(|n| Arc::from(*n)).collect(),
            ..L4Match::default()
        };
        let services = [
            vs("a", &["*"], vec![], vec![rule(0, vec![sni(&["a.example.com"]), sni(&["*.example.com"])], "one")]),
            vs(
                "b",
                &["*"],
                vec![],
                vec![rule(0, vec![sni(&["a.example.com"])], "two"), rule(1, vec![sni(&["b.example.org"])], "three")],
            ),
        ];
        let server = build_server(&gw, 443, true, &hosts, &services);
        let to = |name| server.route(Some(name)).map(|r| r.destinations.destinations()[0].destination.host.to_string());
        assert_eq!(to("a.example.com").as_deref(), Some("one"));
        assert_eq!(to("x.example.com").as_deref(), Some("one"), "the wildcard entry");
        assert_eq!(to("b.example.org").as_deref(), Some("three"));
        assert_eq!(to("c.example.org"), None);
        assert!(server.route(None).is_none(), "no server name, no route");
    }

    fn service(host: &str, ports: &[u16]) -> crate::service::ServiceDecl {
        use crate::service::{Resolution, ServiceDecl, ServicePort};
        ServiceDecl {
            namespace: Arc::from("default"),
            name: Arc::from(host),
            hosts: Box::new([Arc::from(host)]),
            ports: ports
                .iter()
                .map(|p| ServicePort {
                    number: *p,
                    name: Arc::from("tcp"),
                    protocol: Arc::from("TCP"),
                    target_port: None,
                })
                .collect(),
            resolution: Resolution::Static,
            mesh_internal: true,
            service_accounts: Box::new([]),
            endpoints: Box::new([]),
            workload_selector: None,
        }
    }

    #[test]
    fn a_connection_goes_to_its_destination_port_else_the_service_only_port_else_the_servers() {
        let mut builder = crate::SnapshotBuilder::new(crate::snapshot::Settings::default());
        builder.add_service(service("one.example.com", &[5000]));
        builder.add_service(service("two.example.com", &[5000, 6000]));
        let snapshot = builder.build();
        let route = |to: RouteDestination| L4Route {
            virtual_service: Arc::from("default/a"),
            kind: L4Kind::Tcp,
            rule: 0,
            destinations: WeightedDestinations::new(vec![to]),
            server_port: 31400,
        };
        let port = |to: RouteDestination| route(to).destination(&snapshot, 7).and_then(|d| d.port);
        let mut explicit = dest("two.example.com", 0);
        explicit.destination.port = Some(6000);
        assert_eq!(port(explicit), Some(6000));
        assert_eq!(port(dest("one.example.com", 0)), Some(5000));
        assert_eq!(port(dest("two.example.com", 0)), Some(31400));
        assert_eq!(port(dest("unknown.example.com", 0)), Some(31400));
        // Every weight zero: nowhere.
        let zero = L4Route {
            destinations: WeightedDestinations::new(vec![dest("one.example.com", 0), dest("two.example.com", 0)]),
            ..route(dest("one.example.com", 0))
        };
        assert_eq!(zero.destination(&snapshot, 7), None);
    }
}
