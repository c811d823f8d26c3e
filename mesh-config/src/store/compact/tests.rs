//! Tests of the compact forms: exact round trips, sharing, sizes.

use std::net::IpAddr;

use super::*;
use crate::load::{LoadOptions, load_json, load_str};
use crate::types::kube::IpKey;

/// A Pod as an API server gives it (through `load_json`, its tree let go as the store and
/// the sources let it go).
fn api_pod(metadata: serde_json::Value, status: serde_json::Value) -> Resource {
    let value = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {"nodeName": "node-1", "serviceAccountName": "reviews"}, "status": status,
    });
    let mut r = load_json(value, &LoadOptions::default()).resources.pop().expect("a Pod");
    crate::store::strip_lines(&mut r);
    r
}

fn meta() -> serde_json::Value {
    serde_json::json!({"name": "p", "namespace": "x", "labels": {"app": "reviews", "version": "v1"}})
}

fn is_compact(o: &KubeObject) -> bool {
    matches!(o.0, Form::Pod(_) | Form::Slice(_))
}

/// `r` kept, and what that gives back: the very same resource, equal to and unchanged from
/// `r`, read as `r` is.
fn keep(r: &Resource) -> KubeObject {
    let o = KubeObject::new(r.clone()).expect("a Kubernetes object");
    let back = o.resource();
    assert_eq!(back, *r);
    assert_eq!(*back.api_version, *r.api_version);
    assert_eq!((&back.file, back.line, &back.spec_node), (&r.file, r.line, &r.spec_node));
    assert!(o.same_as(r) && o.unchanged(r), "{r:?}");
    assert_eq!(o.file(), r.file.as_deref());
    assert_eq!(KubeObject::new(back).expect("again"), o);
    let (mine, theirs) = (o.view(), View::of(r));
    assert_eq!((mine.kind, mine.namespace, mine.name), (theirs.kind, theirs.namespace, theirs.name));
    if let (Part::Pod(a), Part::Pod(b)) = (mine.spec, theirs.spec) {
        assert_eq!((a.name(), a.namespace(), a.labels()), (b.name(), b.namespace(), b.labels()));
        assert_eq!((a.node_name(), a.service_account()), (b.node_name(), b.service_account()));
        assert!(a.ips().eq(b.ips()));
    }
    if let (Part::Slice(a), Part::Slice(b)) = (mine.spec, theirs.spec) {
        assert_eq!((a.name(), a.namespace(), a.labels()), (b.name(), b.namespace(), b.labels()));
        assert_eq!((a.service_name(), a.address_type(), a.ports()), (b.service_name(), b.address_type(), b.ports()));
        assert_eq!(a.endpoints().count(), b.endpoints().count());
        for (x, y) in a.endpoints().zip(b.endpoints()) {
            assert!(x.addresses().eq(y.addresses()));
            assert_eq!(
                (x.conditions(), x.target_pod(), x.node_name()),
                (y.conditions(), y.target_pod(), y.node_name())
            );
        }
    }
    o
}

#[test]
fn a_pod_of_one_ip_from_an_api_server_is_compact_and_given_back_exactly() {
    let statuses = [
        serde_json::json!({"podIP": "10.0.0.1"}),
        serde_json::json!({"podIP": "fd00::1"}),
        serde_json::json!({"podIP": "::ffff:10.0.0.1"}),
        serde_json::json!({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}),
        serde_json::json!({"podIPs": [{"ip": "fd00::1"}]}),
        serde_json::json!({"podIPs": [{"ip": "10.0.0.1"}]}),
        serde_json::json!({"podIP": "fd00::1", "podIPs": [{"ip": "fd00::1"}]}),
        serde_json::json!({"podIP": "::ffff:10.0.0.1", "podIPs": [{"ip": "::ffff:10.0.0.1"}]}),
        serde_json::json!({"podIP": "::"}),
        serde_json::json!({"podIP": "0.0.0.0"}),
        serde_json::json!({"podIP": "255.255.255.255"}),
        serde_json::json!({"podIP": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}),
        serde_json::json!({}),
    ];
    for status in statuses {
        let r = api_pod(meta(), status.clone());
        assert!(is_compact(&keep(&r)), "{status}");
    }
    let ips = |status: serde_json::Value| -> Vec<IpAddr> {
        let o = keep(&api_pod(meta(), status));
        let ips = o.pod().expect("a Pod").ips().collect::<Vec<_>>();
        ips.into_iter().map(|ip| if let IpKey::Addr(ip) = ip { ip } else { panic!("{ip}") }).collect()
    };
    assert_eq!(ips(serde_json::json!({"podIP": "10.0.0.1"})), [IpAddr::from([10, 0, 0, 1])]);
    let v6: IpAddr = "fd00::1".parse().expect("an IPv6 address");
    assert_eq!(ips(serde_json::json!({"podIPs": [{"ip": "fd00::1"}]})), [v6]);
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("an IPv6 address");
    assert!(mapped.is_ipv6());
    assert_eq!(ips(serde_json::json!({"podIP": "::ffff:10.0.0.1"})), [mapped]);
    assert!(ips(serde_json::json!({})).is_empty());
}

#[test]
fn other_pods_are_kept_whole_and_given_back_exactly() {
    let whole = |r: &Resource, why: &str| assert!(!is_compact(&keep(r)), "{why}");
    let two = serde_json::json!({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]});
    whole(&api_pod(meta(), two), "two IPs");
    let other = serde_json::json!({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.2"}]});
    whole(&api_pod(meta(), other), "podIPs is not podIP");
    for odd in ["010.0.0.1", "0::1", "FD00::1", "", "pending"] {
        whole(&api_pod(meta(), serde_json::json!({"podIP": odd})), odd);
        whole(&api_pod(meta(), serde_json::json!({"podIPs": [{"ip": odd}]})), odd);
    }
    let annotated = serde_json::json!({"name": "p", "namespace": "x", "annotations": {"a": "b"}});
    whole(&api_pod(annotated, serde_json::json!({"podIP": "10.0.0.1"})), "annotations");
    let mut renamed = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
    renamed.name = Arc::from("q");
    whole(&renamed, "metadata names another object");
    let mut beta = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
    beta.api_version = Arc::from("v1beta1");
    whole(&beta, "another apiVersion");
    let mut placed = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
    placed.line = 7;
    whole(&placed, "another line");
}

#[test]
fn an_object_of_a_file_keeps_its_file_line_and_tree() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x, labels: {app: a}}\nstatus: {podIP: 10.0.0.1}\n";
    let loaded = load_str(text, Some("pods.yaml"), &LoadOptions::default()).expect("yaml").resources;
    assert_eq!(loaded.len(), 2);
    for r in &loaded {
        assert!(r.file.is_some() && r.spec_node.is_some());
        assert!(!is_compact(&keep(r)), "{}", r.kind);
    }
    assert_eq!(loaded[1].line, 6);
    let mut moved = loaded[1].clone();
    moved.line = 9;
    let o = KubeObject::new(loaded[1].clone()).expect("a Pod");
    assert!(o.same_as(&moved) && !o.unchanged(&moved));
}

#[test]
fn a_changed_pod_is_not_the_same() {
    let ip = |text: &str| crate::types::kube::PodIp { ip: text.into() };
    for status in [
        serde_json::json!({"podIP": "10.0.0.1"}),
        serde_json::json!({"podIP": "fd00::1"}),
        serde_json::json!({"podIP": "::ffff:10.0.0.1"}),
    ] {
        let r = api_pod(meta(), status);
        let o = keep(&r);
        assert!(is_compact(&o));
        let Spec::Pod(pod) = &r.spec else { panic!("a Pod") };
        let written = pod.status.pod_ip.clone().expect("an IP");
        let changes: [fn(&mut Resource, &mut Pod, &str); 11] = [
            |_, p, _| p.status.pod_ip = Some("10.0.0.2".into()),
            |_, p, _| p.status.pod_ip = Some("fd00::2".into()),
            |_, p, ip| p.status.pod_ip = Some(if ip == "10.0.0.1" { "::ffff:10.0.0.1" } else { "10.0.0.1" }.into()),
            |_, p, ip| p.status.pod_ip = Some(ip.to_uppercase().replace('.', ".0")),
            |_, p, _| p.status.pod_ip = None,
            |_, p, ip| p.status.pod_ips = vec![crate::types::kube::PodIp { ip: ip.into() }],
            |_, p, _| p.spec.node_name = None,
            |_, p, _| p.spec.service_account_name = Some(Name::from("other")),
            |r, _, _| r.api_version = Arc::from("v2"),
            |r, _, _| r.namespace = Arc::from("y"),
            |r, p, _| {
                r.namespace = Arc::from("y");
                p.metadata.namespace = Name::from("y");
            },
        ];
        for change in changes {
            let mut other = r.clone();
            let Spec::Pod(mut pod) = std::mem::replace(&mut other.spec, Spec::Namespace(Default::default())) else {
                panic!("a Pod")
            };
            change(&mut other, &mut pod, &written);
            other.spec = Spec::Pod(pod);
            assert!(!o.same_as(&other), "{other:?}");
        }
        // Written both ways, and in `podIPs` only: not the Pod of `podIP` only.
        let mut both = r.clone();
        let mut listed = r.clone();
        let (Spec::Pod(b), Spec::Pod(l)) = (&mut both.spec, &mut listed.spec) else { panic!("Pods") };
        b.status.pod_ips = vec![ip(&written)];
        l.status = crate::types::kube::PodStatus { pod_ip: None, pod_ips: vec![ip(&written)] };
        let (both_o, listed_o) = (keep(&both), keep(&listed));
        for (x, y) in [(&o, &both), (&o, &listed), (&both_o, &r), (&both_o, &listed), (&listed_o, &r)] {
            assert!(!x.same_as(y), "{y:?}");
        }
    }
}

#[test]
fn shared_parts_stay_the_same_resource() {
    let mut sharing = Sharing::default();
    let r = api_pod(meta(), serde_json::json!({"podIP": "10.0.0.1"}));
    let mut objects: Vec<KubeObject> = (0..2).map(|_| keep(&r)).collect();
    let key = r.id();
    for o in &mut objects {
        o.share(&key, &mut sharing);
        assert_eq!(o.resource(), r);
    }
    let [a, b] = [&objects[0], &objects[1]].map(|o| o.pod().expect("a Pod"));
    assert!(a.labels().ptr_eq(b.labels()));
    assert!(Arc::ptr_eq(a.name_arc(), &key.name) && Arc::ptr_eq(a.namespace_arc(), &key.namespace));
    assert!(std::ptr::eq(a.node_name().expect("node"), b.node_name().expect("node")));
}

/// The compact Pod of `o`.
fn compact_pod(o: &KubeObject) -> &CompactPod {
    match &o.0 {
        Form::Pod(pod) => pod,
        _ => panic!("a compact Pod"),
    }
}

#[test]
fn pods_of_one_namespace_service_account_and_labels_share_one_place() {
    let mut sharing = Sharing::default();
    let pod = |name: &str, namespace: &str, ip: &str, labels: serde_json::Value, spec: serde_json::Value| {
        let value = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec, "status": {"podIP": ip},
        });
        let mut r = load_json(value, &LoadOptions::default()).resources.pop().expect("a Pod");
        crate::store::strip_lines(&mut r);
        r
    };
    let reviews = serde_json::json!({"app": "reviews", "pod-template-hash": "7d4f"});
    let on = |node: &str| serde_json::json!({"nodeName": node, "serviceAccountName": "reviews"});
    let resources = [
        pod("a", "x", "10.0.0.1", reviews.clone(), on("node-1")),
        // Another node, another address family: the same place.
        pod("b", "x", "fd00::2", reviews.clone(), on("node-2")),
        pod("c", "x", "10.0.0.3", reviews.clone(), serde_json::json!({"serviceAccountName": "reviews"})),
        // Other labels, another service account, none, another namespace: other places.
        pod("d", "x", "10.0.0.4", serde_json::json!({"app": "ratings"}), on("node-1")),
        pod("e", "x", "10.0.0.5", serde_json::json!({}), on("node-1")),
        pod(
            "f",
            "x",
            "10.0.0.6",
            reviews.clone(),
            serde_json::json!({"nodeName": "node-1", "serviceAccountName": "ratings"}),
        ),
        pod("g", "x", "10.0.0.7", reviews.clone(), serde_json::json!({"nodeName": "node-2"})),
        pod("h", "y", "10.0.0.8", reviews.clone(), on("node-1")),
    ];
    let mut objects: Vec<KubeObject> = resources.iter().map(keep).collect();
    // The namespace as the sources share it: one text for all the keys of a namespace.
    let mut keys: Vec<ResourceRef> = resources.iter().map(Resource::id).collect();
    for key in &mut keys {
        sharing.names.share(&mut key.namespace);
    }
    for ((o, key), r) in objects.iter_mut().zip(&keys).zip(&resources) {
        o.share(key, &mut sharing);
        assert_eq!(o.resource(), *r);
        assert!(o.same_as(r) && o.unchanged(r));
    }
    let pods: Vec<&CompactPod> = objects.iter().map(compact_pod).collect();
    let [a, b, c, d, e, f, g, h] = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| pods[i]);
    for same in [b, c] {
        assert!(Arc::ptr_eq(&a.place, &same.place), "one namespace, service account and labels: one place");
    }
    for (i, x) in [a, d, e, f, g, h].iter().enumerate() {
        for y in [a, d, e, f, g, h].iter().skip(i + 1) {
            assert!(!Arc::ptr_eq(&x.place, &y.place), "{} and {}", x.name, y.name);
        }
    }
    assert_eq!(sharing.places.len(), 6);
    // One namespace text for the objects of the namespace and their keys, in every place.
    for (o, key) in objects.iter().zip(&keys) {
        assert!(Arc::ptr_eq(o.namespace(), &key.namespace));
        assert!(Arc::ptr_eq(o.name(), &key.name));
    }
    for o in &objects[..7] {
        assert!(Arc::ptr_eq(o.namespace(), &keys[0].namespace));
    }
    // The nodes, service accounts and labels shared between places too.
    let node = |p: &CompactPod| p.node_name.as_ref().map(|n| n.as_arc().clone()).expect("a node");
    assert!(Arc::ptr_eq(&node(a), &node(d)) && Arc::ptr_eq(&node(b), &node(g)));
    assert!(!Arc::ptr_eq(&node(a), &node(b)));
    let account = |p: &CompactPod| p.place.service_account_name.as_ref().map(|n| n.as_arc().clone());
    assert!(Arc::ptr_eq(&account(a).expect("an account"), &account(d).expect("an account")));
    assert!(a.place.labels.ptr_eq(&f.place.labels) && a.place.labels.ptr_eq(&h.place.labels));
    // A place shared already is shared again as it is (a copy of it is not kept).
    let mut again = objects[0].clone();
    again.share(&keys[0], &mut sharing);
    assert!(Arc::ptr_eq(&compact_pod(&again).place, &a.place));
    // Made shared, a Pod is the Pod made and then shared: its place the one shared already,
    // or, the first of its value, one shared from then on.
    let later = [
        pod("i", "x", "10.0.0.9", reviews.clone(), on("node-3")),
        pod("j", "x", "10.0.0.10", serde_json::json!({"app": "details"}), on("node-3")),
        pod("k", "x", "10.0.0.11", serde_json::json!({"app": "details"}), on("node-1")),
    ];
    let made: Vec<KubeObject> = later
        .iter()
        .map(|r| {
            let mut key = r.id();
            sharing.names.share(&mut key.namespace);
            let o = KubeObject::new_shared(r.clone(), &key, &mut sharing).expect("a Pod");
            assert_eq!(o.resource(), *r);
            assert!(o.same_as(r) && o.unchanged(r));
            assert!(Arc::ptr_eq(o.namespace(), &key.namespace) && Arc::ptr_eq(o.name(), &key.name));
            let mut shared_after = keep(r);
            shared_after.share(&key, &mut sharing);
            assert_eq!(shared_after, o);
            assert!(Arc::ptr_eq(&compact_pod(&shared_after).place, &compact_pod(&o).place));
            o
        })
        .collect();
    let [i, j, k] = [0, 1, 2].map(|at| compact_pod(&made[at]));
    assert!(Arc::ptr_eq(&i.place, &a.place) && Arc::ptr_eq(&j.place, &k.place));
    assert!(!Arc::ptr_eq(&i.place, &j.place));
    assert!(Arc::ptr_eq(&node(i), &node(j)) && Arc::ptr_eq(&node(k), &node(a)));
    assert!(Arc::ptr_eq(&account(j).expect("an account"), &account(a).expect("an account")));
    assert_eq!(sharing.places.len(), 7);
    // A whole Pod made shared is shared as it was.
    let mut annotated = pod("l", "x", "10.0.0.12", reviews.clone(), on("node-1"));
    if let Spec::Pod(p) = &mut annotated.spec {
        p.metadata.annotations = Labels::from([("a", "b")]);
    }
    annotated.annotations = Labels::from([("a", "b")]).to_map();
    let whole = KubeObject::new_shared(annotated.clone(), &annotated.id(), &mut sharing).expect("a Pod");
    assert!(!is_compact(&whole) && whole.resource() == annotated);
    let Some(whole) = whole.pod() else { panic!("a Pod") };
    assert!(whole.labels().ptr_eq(&a.place.labels));
    assert!(std::ptr::eq(whole.node_name().expect("a node"), a.node_name.as_deref().expect("a node")));
    // A place no Pod holds any more goes at a sweep.
    drop((objects, made, again));
    for n in 0..64 {
        let r = pod(
            &format!("n-{n}"),
            "x",
            "10.0.1.1",
            reviews.clone(),
            serde_json::json!({"serviceAccountName": format!("sa-{n}")}),
        );
        drop(KubeObject::new_shared(r.clone(), &r.id(), &mut sharing).expect("a Pod"));
    }
    assert!(sharing.places.len() <= 64, "{} places held for none in use", sharing.places.len());
}

#[test]
fn compact_pods_give_the_endpoints_their_resources_give() {
    let objects = serde_json::json!([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "x"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "s", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
         "ports": [{"name": "http", "port": 8080}],
         "endpoints": [{"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "p", "namespace": "x"}},
                       {"addresses": ["10.0.0.2"]}, {"addresses": ["fd00::3"]}, {"addresses": ["010.0.0.4"]}]},
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}},
    ]);
    let serde_json::Value::Array(objects) = objects else { panic!("a list") };
    let mut resources: Vec<Resource> =
        objects.into_iter().flat_map(|o| load_json(o, &LoadOptions::default()).resources).collect();
    for (name, ip) in [("p", "10.0.0.1"), ("q", "10.0.0.2"), ("v6", "fd00::3"), ("odd", "010.0.0.4")] {
        let metadata = serde_json::json!({"name": name, "namespace": "x", "labels": {"app": name}});
        resources.push(api_pod(metadata, serde_json::json!({"podIP": ip})));
    }
    let kept: Vec<KubeObject> = resources.iter().map(keep).collect();
    assert_eq!(kept.iter().filter(|o| is_compact(o)).count(), 3);
    let Some(Spec::Service(service)) = resources.first().map(|r| &r.spec) else { panic!("a Service") };
    let views: Vec<View<'_>> = kept.iter().map(KubeObject::view).collect();
    let slices = views.iter().filter_map(|v| if let Part::Slice(s) = v.spec { Some(s) } else { None });
    let pods = views.iter().filter_map(|v| if let Part::Pod(p) = v.spec { Some(p) } else { None });
    let nodes = views.iter().filter_map(|v| if let Part::Node(n) = v.spec { Some(n) } else { None });
    let mine = crate::kube::endpoints(service, &crate::kube::Index::new(slices, pods, nodes));
    let theirs = crate::kube::endpoints(service, &crate::kube::Index::from_resources(&resources));
    assert_eq!(mine, theirs);
    let described: Vec<String> = mine.iter().map(|e| format!("{} {:?} {:?}", e.address, e.pod, e.locality)).collect();
    assert_eq!(
        described,
        [
            "10.0.0.1 Some(\"x/p\") Some(\"r/z/\")",
            "10.0.0.2 Some(\"x/q\") Some(\"r/z/\")",
            "fd00::3 Some(\"x/v6\") Some(\"r/z/\")",
            "010.0.0.4 Some(\"x/odd\") Some(\"r/z/\")",
        ]
    );
}

/// An API server's Pod is its `KubeObject` alone, 64 bytes (its `Arc` block 80 bytes, a
/// 96-byte chunk of malloc's), and its share of its workload's place (before: 104 bytes, a
/// 128-byte chunk; before that, 96 bytes plus a 144-byte boxed `Pod` and its IP's text). An
/// IPv6 Pod has a 16-byte box of its address besides.
#[test]
fn a_kube_object_is_small() {
    let sizes =
        [std::mem::size_of::<KubeObject>(), std::mem::size_of::<CompactPod>(), std::mem::size_of::<CompactSlice>()];
    assert!(sizes[0] <= 64 && sizes[1] <= 56 && sizes[2] <= 56, "{sizes:?}");
}

/// An endpoint of an API server's slice is 40 bytes in its slice's block of endpoints, and
/// its Pod name's block (before: a 104-byte `SliceEndpoint`, plus a block for its list of
/// addresses, one for the address's text and one for the Pod name).
#[test]
fn a_compact_endpoint_is_small() {
    let size = std::mem::size_of::<crate::types::kube::CompactEndpoint>();
    assert!(size <= 40, "{size}");
}

/// A slice as an API server gives it, as mesh-kube strips it (through `load_json`, its
/// tree let go as the store and the sources let it go).
fn api_slice(fields: serde_json::Value) -> Resource {
    let mut value = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
    });
    if let (Some(value), serde_json::Value::Object(fields)) = (value.as_object_mut(), fields) {
        value.extend(fields);
    }
    let mut r = load_json(value, &LoadOptions::default()).resources.pop().expect("a slice");
    crate::store::strip_lines(&mut r);
    r
}

/// A slice of these endpoints, `addressType: IPv4` and one port.
fn v4_slice(endpoints: serde_json::Value) -> Resource {
    api_slice(serde_json::json!({
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": endpoints,
    }))
}

#[test]
fn a_slice_from_an_api_server_is_compact_and_given_back_exactly() {
    let pod = |name: &str| serde_json::json!({"kind": "Pod", "name": name});
    let slices = [
        v4_slice(serde_json::json!([
            {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true}, "targetRef": pod("p-1")},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true},
             "targetRef": pod("p-2"), "nodeName": "node-1"},
            {"addresses": ["10.0.0.3"], "nodeName": "node-2"},
            {"addresses": ["10.0.0.4"], "conditions": {}, "targetRef": pod("p-4"), "nodeName": "node-1"},
        ])),
        api_slice(serde_json::json!({
            "addressType": "IPv6",
            "ports": [{"name": "grpc", "port": 9090, "protocol": "TCP", "appProtocol": "grpc"}, {"port": 80}, {}],
            "endpoints": [{"addresses": ["fd00::1"], "targetRef": pod("p")}, {"addresses": ["::ffff:10.0.0.1"]}],
        })),
        api_slice(serde_json::json!({"addressType": "IPv4"})),
        api_slice(serde_json::json!({"endpoints": [{"addresses": ["10.0.0.1"]}]})),
        api_slice(serde_json::json!({"addressType": "FQDN", "endpoints": [{"addresses": ["10.0.0.1"]}]})),
    ];
    for r in &slices {
        assert!(is_compact(&keep(r)), "{r:?}");
    }
    let states = [None, Some(false), Some(true)];
    let mut every = Vec::new();
    for ready in states {
        for serving in states {
            for terminating in states {
                let mut conditions = serde_json::Map::new();
                for (key, state) in [("ready", ready), ("serving", serving), ("terminating", terminating)] {
                    if let Some(state) = state {
                        conditions.insert(key.into(), state.into());
                    }
                }
                let address = format!("10.0.1.{}", every.len());
                every.push(serde_json::json!({"addresses": [address], "conditions": conditions}));
            }
        }
    }
    let r = v4_slice(serde_json::Value::Array(every));
    let o = keep(&r);
    assert!(is_compact(&o));
    let Part::Slice(view) = o.view().spec else { panic!("a slice") };
    let Spec::EndpointSlice(slice) = &r.spec else { panic!("a slice") };
    let read: Vec<_> = view.endpoints().map(|e| e.conditions()).collect();
    let written: Vec<_> = slice.endpoints.iter().map(|e| e.conditions.clone()).collect();
    assert_eq!((read.len(), read), (27, written));
}

#[test]
fn other_slices_are_kept_whole_and_given_back_exactly() {
    let whole = |r: &Resource, why: &str| assert!(!is_compact(&keep(r)), "{why}");
    let one = |endpoint: serde_json::Value| v4_slice(serde_json::json!([{"addresses": ["10.0.0.1"]}, endpoint]));
    whole(
        &api_slice(serde_json::json!({"addressType": "FQDN", "endpoints": [{"addresses": ["db.example.com"]}]})),
        "FQDN",
    );
    whole(&one(serde_json::json!({"addresses": ["10.0.0.2", "10.0.0.3"]})), "two addresses");
    whole(&one(serde_json::json!({"addresses": []})), "no address");
    whole(&one(serde_json::json!({})), "no addresses");
    for odd in ["010.0.0.1", "FD00::1", "0::1", "", "pending"] {
        whole(&one(serde_json::json!({"addresses": [odd]})), odd);
    }
    let target = |t: serde_json::Value| one(serde_json::json!({"addresses": ["10.0.0.2"], "targetRef": t}));
    whole(&target(serde_json::json!({"kind": "Node", "name": "n"})), "a targetRef of another kind");
    whole(&target(serde_json::json!({"name": "p"})), "a targetRef without a kind");
    whole(&target(serde_json::json!({"kind": "Pod"})), "a targetRef without a name");
    whole(&target(serde_json::json!({"kind": "Pod", "name": "p", "namespace": "x"})), "the slice's namespace");
    whole(&target(serde_json::json!({"kind": "Pod", "name": "p", "namespace": "y"})), "another namespace");
    whole(&target(serde_json::json!({"kind": "Pod", "name": "p", "namespace": ""})), "an empty namespace");
    whole(&api_slice(serde_json::json!({"addressType": "IPv5"})), "an address type the API does not have");
    whole(&api_slice(serde_json::json!({"addressType": "ipv4"})), "an address type spelled otherwise");
    let annotated = serde_json::json!({"name": "s", "namespace": "x", "annotations": {"a": "b"}});
    whole(&api_slice(serde_json::json!({"metadata": annotated})), "annotations");
    let mut renamed = v4_slice(serde_json::json!([]));
    renamed.name = Arc::from("t");
    whole(&renamed, "metadata names another object");
    let mut beta = v4_slice(serde_json::json!([]));
    beta.api_version = Arc::from("discovery.k8s.io/v1beta1");
    whole(&beta, "another apiVersion");
    let mut placed = v4_slice(serde_json::json!([]));
    placed.line = 7;
    whole(&placed, "another line");
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: x}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, namespace: x, labels: {kubernetes.io/service-name: svc}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints: [{addresses: [10.0.0.1], targetRef: {kind: Pod, name: p}}]\n";
    let loaded = load_str(text, Some("slices.yaml"), &LoadOptions::default()).expect("yaml").resources;
    let r = loaded.get(1).expect("a slice");
    assert!(r.file.is_some() && r.spec_node.is_some() && r.line == 5);
    whole(r, "a file's slice");
    let mut moved = r.clone();
    moved.line = 9;
    let o = KubeObject::new(r.clone()).expect("a slice");
    assert!(o.same_as(&moved) && !o.unchanged(&moved));
}

#[test]
fn a_changed_slice_is_not_the_same() {
    let r = v4_slice(serde_json::json!([
        {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "p"},
         "nodeName": "node-1"},
    ]));
    let o = keep(&r);
    assert!(is_compact(&o));
    let changes: [fn(&mut Resource, &mut EndpointSlice); 12] = [
        |_, s| s.endpoints[0].addresses[0] = "10.0.0.2".into(),
        |_, s| s.endpoints[0].addresses.push("10.0.0.2".into()),
        |_, s| s.endpoints[0].conditions.ready = None,
        |_, s| s.endpoints[0].conditions.terminating = Some(false),
        |_, s| s.endpoints[0].node_name = Some("node-2".into()),
        |_, s| s.endpoints[0].target_ref = None,
        |_, s| s.endpoints[0].target_ref.iter_mut().for_each(|t| t.namespace = Some(Name::from("x"))),
        |_, s| s.endpoints.push(s.endpoints[0].clone()),
        |_, s| s.ports[0].port = Some(8081),
        |_, s| s.address_type = Some("IPv6".into()),
        |r, _| r.api_version = Arc::from("discovery.k8s.io/v2"),
        |r, s| {
            r.namespace = Arc::from("y");
            s.metadata.namespace = Name::from("y");
        },
    ];
    for change in changes {
        let mut other = r.clone();
        let Spec::EndpointSlice(mut slice) = std::mem::replace(&mut other.spec, Spec::Namespace(Default::default()))
        else {
            panic!("a slice")
        };
        change(&mut other, &mut slice);
        other.spec = Spec::EndpointSlice(slice);
        assert!(!o.same_as(&other), "{other:?}");
    }
}

#[test]
fn slices_of_the_same_namespace_and_ports_share_their_shape() {
    let mut sharing = Sharing::default();
    let endpoints = serde_json::json!([{"addresses": ["10.0.0.1"], "nodeName": "node-1"}]);
    let r = v4_slice(endpoints.clone());
    let other_ports =
        api_slice(serde_json::json!({"addressType": "IPv4", "ports": [{"port": 80}], "endpoints": endpoints}));
    let mut elsewhere = v4_slice(endpoints);
    elsewhere.namespace = Arc::from("y");
    if let Spec::EndpointSlice(slice) = &mut elsewhere.spec {
        slice.metadata.namespace = Name::from("y");
    }
    let resources = [&r, &r, &other_ports, &elsewhere];
    let mut objects: Vec<KubeObject> = resources.into_iter().map(keep).collect();
    let key = r.id();
    for (o, r) in objects.iter_mut().zip(resources) {
        o.share(&r.id(), &mut sharing);
        assert_eq!(o.resource(), *r);
    }
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| match &objects[i].0 {
        Form::Slice(s) => s,
        _ => panic!("compact"),
    });
    assert!(Arc::ptr_eq(&a.shape, &b.shape) && !Arc::ptr_eq(&a.shape, &c.shape));
    assert!(!Arc::ptr_eq(&a.shape, &d.shape), "another namespace, another shape");
    assert!(Arc::ptr_eq(&a.name, &key.name) && Arc::ptr_eq(&a.shape.namespace, &key.namespace));
    let node = |s: &CompactSlice| s.shape.node_names.first().map(|n| n.as_arc().clone()).expect("a node");
    assert!(Arc::ptr_eq(&node(a), &node(c)) && Arc::ptr_eq(&node(a), &node(d)));
    assert_eq!(sharing.shapes.len(), 3);
}

#[test]
fn compact_slices_give_the_endpoints_and_index_their_resources_give() {
    let objects = serde_json::json!([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "x"},
         "spec": {"ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 90}]}},
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}},
    ]);
    let serde_json::Value::Array(objects) = objects else { panic!("a list") };
    let mut resources: Vec<Resource> =
        objects.into_iter().flat_map(|o| load_json(o, &LoadOptions::default()).resources).collect();
    let pod = |name: &str| serde_json::json!({"kind": "Pod", "name": name});
    let two_ports =
        serde_json::json!([{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}, {"name": "none"}]);
    resources.push(api_slice(serde_json::json!({
        "metadata": {"name": "s-a", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "IPv4", "ports": two_ports,
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": pod("p")},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false}, "targetRef": pod("q")},
            {"addresses": ["10.0.0.3"], "targetRef": pod("absent")},
            {"addresses": ["10.0.0.4"]},
            {"addresses": ["10.0.0.9"], "nodeName": "node-1"},
        ],
    })));
    resources.push(api_slice(serde_json::json!({
        "metadata": {"name": "s-b", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "IPv6", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["fd00::5"], "targetRef": pod("v6")}, {"addresses": ["10.0.0.1"]}],
    })));
    // Kept whole: two addresses, and a Pod's namespace.
    resources.push(api_slice(serde_json::json!({
        "metadata": {"name": "s-c", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["10.0.0.6", "10.0.0.7"]},
                      {"addresses": ["10.0.0.8"], "targetRef": {"kind": "Pod", "name": "w", "namespace": "y"}}],
    })));
    resources.push(api_slice(serde_json::json!({
        "metadata": {"name": "s-fqdn", "namespace": "x", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "FQDN", "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["10.0.0.10"]}],
    })));
    let pods = [("x", "p", "10.0.0.1"), ("x", "q", "10.0.0.2"), ("x", "by-ip", "10.0.0.4"), ("x", "v6", "fd00::5")];
    for (namespace, name, ip) in pods.into_iter().chain([("x", "six", "10.0.0.6"), ("y", "w", "10.0.0.8")]) {
        let metadata = serde_json::json!({"name": name, "namespace": namespace, "labels": {"app": name}});
        resources.push(api_pod(metadata, serde_json::json!({"podIP": ip})));
    }
    let kept: Vec<KubeObject> = resources.iter().map(keep).collect();
    let compact: Vec<&str> = kept.iter().filter(|o| matches!(o.0, Form::Slice(_))).map(|o| &**o.name()).collect();
    assert_eq!(compact, ["s-a", "s-b", "s-fqdn"]);
    let Some(Spec::Service(service)) = resources.first().map(|r| &r.spec) else { panic!("a Service") };
    let views: Vec<View<'_>> = kept.iter().map(KubeObject::view).collect();
    let slices = views.iter().filter_map(|v| if let Part::Slice(s) = v.spec { Some(s) } else { None });
    let pods = views.iter().filter_map(|v| if let Part::Pod(p) = v.spec { Some(p) } else { None });
    let nodes = views.iter().filter_map(|v| if let Part::Node(n) = v.spec { Some(n) } else { None });
    let mine = crate::kube::endpoints(service, &crate::kube::Index::new(slices, pods, nodes));
    let theirs = crate::kube::endpoints(service, &crate::kube::Index::from_resources(&resources));
    assert_eq!(mine, theirs);
    let described: Vec<String> = mine.iter().map(|e| format!("{} {} {:?}", e.address, e.port, e.pod)).collect();
    assert_eq!(
        described,
        [
            "10.0.0.1 8080 Some(\"x/p\")",
            "10.0.0.1 9090 Some(\"x/p\")",
            "10.0.0.4 8080 Some(\"x/by-ip\")",
            "10.0.0.4 9090 Some(\"x/by-ip\")",
            "10.0.0.9 8080 None",
            "10.0.0.9 9090 None",
            "fd00::5 8080 Some(\"x/v6\")",
            "10.0.0.6 8080 Some(\"x/six\")",
            "10.0.0.7 8080 None",
            "10.0.0.8 8080 Some(\"y/w\")",
        ]
    );
    // The store's index reads the kept objects as it reads the resources.
    let by_resources = super::super::kube_index::KubeIndex::new(&resources);
    let mut by_objects = super::super::kube_index::KubeIndex::default();
    for v in &views {
        by_objects.insert(*v);
    }
    for (v, r) in views.iter().zip(&resources) {
        let (mut a, mut b) = (Default::default(), Default::default());
        by_objects.services_of(*v, &mut a);
        by_resources.services_of(View::of(r), &mut b);
        assert_eq!(a, b, "{}", r.name);
    }
    let service_id = (Arc::from("x"), Arc::from("svc"));
    let names = |(slices, pods, nodes): (Vec<SliceView<'_>>, Vec<PodView<'_>>, Vec<&Node>)| {
        let slices: Vec<String> = slices.iter().map(|s| s.name().to_string()).collect();
        let pods: Vec<String> = pods.iter().map(|p| format!("{}/{}", p.namespace(), p.name())).collect();
        (slices, pods, nodes.len())
    };
    let from_objects = names(by_objects.parts(&service_id, |id| {
        kept.iter()
            .position(|o| o.kind().as_str() == &*id.kind && *o.namespace() == id.namespace && *o.name() == id.name)
            .map(|at| views[at])
    }));
    let from_resources =
        names(by_resources.parts(&service_id, |id| resources.iter().find(|r| r.id() == *id).map(View::of)));
    assert_eq!(from_objects, from_resources);
    assert_eq!(from_objects.0, ["s-a", "s-b", "s-c", "s-fqdn"]);
    for view in &views {
        by_objects.remove(*view);
    }
}
