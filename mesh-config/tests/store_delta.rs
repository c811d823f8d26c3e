//! `ConfigStore::apply_changes` against `ConfigStore::apply`: after each step of a sequence of
//! single-object changes, the endpoints a delta store hands out for the hosts it recompiled are
//! those a store given the whole configuration compiles, and its rejections are the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_config::store::{Change, Recompiled};
use mesh_config::{ConfigStore, LoadOptions, Loaded, ResourceRef, load_str};
use mesh_core::service::ServiceDecl;

const HOST: &str = "reviews.shop.svc.cluster.local";

fn service() -> String {
    "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec: {ports: [{name: http, port: 80}]}\n"
        .to_string()
}

fn pod(name: &str, ip: &str, version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop, labels: {{app: reviews, version: {version}}}}}\nspec: {{nodeName: n1}}\nstatus: {{podIP: {ip}}}\n"
    )
}

/// A slice of `reviews` with one endpoint per (ip, pod name); an empty pod name: no targetRef.
fn slice(name: &str, endpoints: &[(&str, &str)], port: i64) -> String {
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|(ip, pod)| {
            if pod.is_empty() {
                format!("{{addresses: [\"{ip}\"]}}")
            } else {
                format!("{{addresses: [\"{ip}\"], targetRef: {{kind: Pod, name: {pod}}}}}")
            }
        })
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\nmetadata: {{name: {name}, namespace: shop, labels: {{kubernetes.io/service-name: reviews}}}}\nports: [{{name: http, port: {port}}}]\nendpoints: [{}]\n",
        endpoints.join(", ")
    )
}

fn load(text: &str) -> Loaded {
    load_str(text, None, &LoadOptions { default_namespace: "shop".into(), ..LoadOptions::default() }).expect("yaml")
}

fn key(kind: &str, name: &str) -> ResourceRef {
    ResourceRef { kind: kind.into(), namespace: "shop".into(), name: name.into() }
}

/// What the registry reads of a host's declarations: each one's ports and endpoints.
fn shape(services: &[Arc<ServiceDecl>]) -> Vec<String> {
    services.iter().map(|d| format!("{:?} {:?}", d.ports, d.endpoints)).collect()
}

struct Pair {
    /// Every object by key, as the whole configuration.
    objects: BTreeMap<ResourceRef, String>,
    delta: ConfigStore,
}

impl Pair {
    fn new() -> Self {
        Pair { objects: BTreeMap::new(), delta: ConfigStore::default() }
    }

    fn whole(&self) -> ConfigStore {
        let mut store = ConfigStore::default();
        let mut loaded = Loaded::default();
        for text in self.objects.values() {
            let one = load(text);
            loaded.resources.extend(one.resources);
            loaded.diagnostics.extend(one.diagnostics);
        }
        store.apply(loaded);
        store
    }

    /// Upsert (`Some`) or delete one object in both, and check the delta store against a whole
    /// apply; returns what the delta store recompiled.
    fn change(&mut self, kind: &str, name: &str, text: Option<String>) -> Recompiled {
        let key = key(kind, name);
        let change = match &text {
            Some(t) => Change::Upsert { key: key.clone(), loaded: Box::new(load(t)) },
            None => Change::Delete { key: key.clone() },
        };
        match text {
            Some(t) => self.objects.insert(key, t),
            None => self.objects.remove(&key),
        };
        let out = self.delta.apply_changes(vec![change]);
        let whole = self.whole();
        let want = shape(whole.snapshot().services(HOST));
        match &out.recompiled {
            Recompiled::Endpoints(hosts) => {
                for h in hosts {
                    assert_eq!(&*h.host, HOST);
                    assert_eq!(shape(&h.services), want, "after {kind} {name}");
                }
            }
            Recompiled::Snapshot => assert_eq!(shape(self.delta.snapshot().services(HOST)), want),
            Recompiled::Nothing => {}
        }
        let lines = |s: &ConfigStore| s.rejections().iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(lines(&self.delta), lines(&whole), "rejections after {kind} {name}");
        assert_eq!(self.delta.len(), whole.len());
        out.recompiled
    }
}

fn endpoints_only(r: &Recompiled) -> bool {
    matches!(r, Recompiled::Endpoints(h) if h.len() == 1)
}

#[test]
fn endpoint_changes_recompile_only_their_service_and_match_a_whole_apply() {
    let mut p = Pair::new();
    assert!(matches!(p.change("Service", "reviews", Some(service())), Recompiled::Snapshot));
    assert!(matches!(p.change("Service", "reviews", Some(service())), Recompiled::Nothing), "unchanged");
    p.change("Pod", "p1", Some(pod("p1", "10.0.0.1", "v1")));
    p.change("Pod", "p2", Some(pod("p2", "10.0.0.2", "v2")));
    let r = p.change("EndpointSlice", "s1", Some(slice("s1", &[("10.0.0.1", "p1"), ("10.0.0.2", "p2")], 9080)));
    assert!(endpoints_only(&r), "{r:?}");
    // A slice naming a Pod not known yet: that endpoint waits for the Pod.
    p.change("EndpointSlice", "s2", Some(slice("s2", &[("10.0.0.3", "p3"), ("10.0.0.9", "")], 9080)));
    assert!(endpoints_only(&p.change("Pod", "p3", Some(pod("p3", "10.0.0.3", "v3")))));
    // A Pod's labels change; a Pod with the IP of an address without targetRef arrives.
    assert!(endpoints_only(&p.change("Pod", "p1", Some(pod("p1", "10.0.0.1", "v2")))));
    assert!(endpoints_only(&p.change("Pod", "p9", Some(pod("p9", "10.0.0.9", "v9")))));
    // The slice moves to another port and drops p2; p2 goes; a slice goes.
    assert!(endpoints_only(&p.change("EndpointSlice", "s1", Some(slice("s1", &[("10.0.0.1", "p1")], 9090)))));
    p.change("Pod", "p2", None);
    assert!(endpoints_only(&p.change("EndpointSlice", "s2", None)));
    // An invalid slice keeps its last good version, and is reported as a whole apply reports it.
    let bad = slice("s1", &[("10.0.0.1", "p1")], 70000);
    let out =
        p.delta.apply_changes(vec![Change::Upsert { key: key("EndpointSlice", "s1"), loaded: Box::new(load(&bad)) }]);
    assert_eq!(out.report.kept_last_good, [key("EndpointSlice", "s1")]);
    assert!(matches!(out.recompiled, Recompiled::Nothing));
    assert!(!p.delta.rejections().is_empty());
    assert!(endpoints_only(&p.change("EndpointSlice", "s1", Some(slice("s1", &[("10.0.0.1", "p1")], 9091)))));
    assert!(p.delta.rejections().is_empty(), "the valid version clears the rejection");
    // A Service change compiles the snapshot again.
    let two_ports = service().replace("[{name: http, port: 80}]", "[{name: http, port: 80}, {name: grpc, port: 81}]");
    assert!(matches!(p.change("Service", "reviews", Some(two_ports)), Recompiled::Snapshot));
    assert!(matches!(p.change("Service", "reviews", None), Recompiled::Snapshot));
    assert!(
        matches!(p.change("Pod", "p1", Some(pod("p1", "10.0.0.1", "v4"))), Recompiled::Endpoints(h) if h.is_empty())
    );
}

/// Objects arriving through `Sources` as a watch delivers them: the first load as
/// `whole_changes`, then each event's `changes`, against a store given `Sources::merged` each
/// time.
#[test]
fn sources_changes_and_whole_changes_match_merged_applies() {
    use mesh_config::store::{Delta, Origin, SourceEvent, SourceObject, Sources};
    let mut rv = 0;
    let mut event = |kind: &str, name: &str, text: Option<String>| {
        rv += 1;
        let key = key(kind, name);
        match text {
            None => SourceEvent::Delete { key },
            Some(t) => {
                let origin = Origin::Kubernetes {
                    kind: kind.into(),
                    namespace: "shop".into(),
                    name: name.into(),
                    resource_version: Some(rv.to_string().into()),
                };
                SourceEvent::Upsert { key, object: SourceObject { origin, loaded: load(&t) } }
            }
        }
    };
    let mut sources = Sources::new();
    // The Node the Pods run on: their locality, read by the store's compile from what its index
    // says each Service's endpoints are built from.
    let node_key = ResourceRef { kind: "Node".into(), namespace: "".into(), name: "n1".into() };
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: z1}}\n";
    let origin = Origin::Kubernetes {
        kind: "Node".into(),
        namespace: "".into(),
        name: "n1".into(),
        resource_version: Some("1".into()),
    };
    sources.apply(SourceEvent::Upsert { key: node_key, object: SourceObject { origin, loaded: load(node) } });
    sources.apply(event("Service", "reviews", Some(service())));
    sources.apply(event("Pod", "p1", Some(pod("p1", "10.0.0.1", "v1"))));
    sources.apply(event("EndpointSlice", "s1", Some(slice("s1", &[("10.0.0.1", "p1"), ("10.0.0.2", "p2")], 9080))));
    let mut delta = ConfigStore::default();
    let changes = sources.whole_changes(delta.resource_refs()).expect("no files");
    assert!(matches!(delta.apply_changes(changes).recompiled, Recompiled::Snapshot));
    let check = |delta: &ConfigStore, sources: &Sources, recompiled: &Recompiled| {
        let mut whole = ConfigStore::default();
        whole.apply(sources.merged());
        let want = shape(whole.snapshot().services(HOST));
        match recompiled {
            Recompiled::Endpoints(hosts) => hosts.iter().for_each(|h| assert_eq!(shape(&h.services), want)),
            _ => assert_eq!(shape(delta.snapshot().services(HOST)), want),
        }
        // (In the order first seen: the fresh store's is the merge's.)
        let sorted = |s: &ConfigStore| {
            let mut r = s.resources();
            r.sort_by_key(|r| r.id());
            r
        };
        assert_eq!(sorted(delta), sorted(&whole), "the same resources in force");
    };
    check(&delta, &sources, &Recompiled::Snapshot);
    let first = shape(delta.snapshot().services(HOST));
    assert!(first.iter().any(|s| s.contains("locality: Some(\"r1/z1/\")")), "the Node's locality: {first:?}");
    let steps = [
        event("Pod", "p2", Some(pod("p2", "10.0.0.2", "v2"))),
        event("EndpointSlice", "s1", Some(slice("s1", &[("10.0.0.2", "p2")], 9090))),
        event("Pod", "p2", Some(pod("p2", "10.0.0.2", "v3"))),
        event("Pod", "p1", None),
    ];
    for step in steps {
        let Delta::Changes(changes) = sources.changes(step) else { panic!("one object's change") };
        let out = delta.apply_changes(changes);
        assert!(matches!(&out.recompiled, Recompiled::Endpoints(h) if h.len() <= 1), "{:?}", out.recompiled);
        check(&delta, &sources, &out.recompiled);
    }
    // A relist that drops the slice: as changes again, with a delete for what is gone.
    let scope = mesh_config::store::Scope { kind: "EndpointSlice".into(), namespace: None };
    assert!(matches!(sources.changes(SourceEvent::Replace { scope, objects: vec![] }), Delta::Whole));
    let changes = sources.whole_changes(delta.resource_refs()).expect("no files");
    let out = delta.apply_changes(changes);
    assert_eq!(out.report.removed, 1);
    check(&delta, &sources, &out.recompiled);
}
