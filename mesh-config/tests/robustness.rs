//! Arbitrary input never panics the loader, the validator or the compiler.

use mesh_config::{CompileOptions, LoadOptions, compile, load_str, validate};
use proptest::prelude::*;

fn run(text: &str) {
    if let Ok(loaded) = load_str(text, Some("fuzz.yaml"), &LoadOptions::default()) {
        for r in &loaded.resources {
            let _ = validate(r);
        }
        let _ = compile(&loaded.resources, &CompileOptions::default());
    }
}

/// Scalars likely to stress typed fields: numbers out of range, durations, regexes, IPv6, nulls.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("~".to_string()),
        Just("-1".to_string()),
        Just("4294967296".to_string()),
        Just("1e400".to_string()),
        Just("0.000000001s".to_string()),
        Just("\"[\"".to_string()),
        Just("yes".to_string()),
        Just("'*'".to_string()),
        Just("2001:db8::".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        "[a-z0-9./*:%-]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// YAML shaped like Istio resources, with random keys from the real vocabulary and random values.
fn istio_like() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "hosts",
        "http",
        "match",
        "route",
        "destination",
        "host",
        "subset",
        "weight",
        "uri",
        "prefix",
        "regex",
        "exact",
        "headers",
        "timeout",
        "retries",
        "attempts",
        "retryOn",
        "fault",
        "delay",
        "abort",
        "percentage",
        "value",
        "mirror",
        "mirrors",
        "redirect",
        "rewrite",
        "directResponse",
        "status",
        "gateways",
        "subsets",
        "labels",
        "trafficPolicy",
        "loadBalancer",
        "simple",
        "consistentHash",
        "outlierDetection",
        "servers",
        "port",
        "number",
        "tls",
        "mode",
        "endpoints",
        "address",
        "ports",
        "resolution",
        "weigth",
    ]);
    let leaf = (keys.clone(), scalar()).prop_map(|(k, v)| format!("{k}: {v}"));
    let tree = leaf.prop_recursive(4, 40, 6, move |inner| {
        (keys.clone(), prop::collection::vec(inner, 1..5), any::<bool>()).prop_map(|(k, children, list)| {
            let body: Vec<String> = children.iter().map(|c| c.replace('\n', "\n    ")).collect();
            if list {
                format!("{k}:\n  - {}", body.join("\n  - "))
            } else {
                format!("{k}:\n  {}", body.iter().map(|c| c.replace("\n    ", "\n  ")).collect::<Vec<_>>().join("\n  "))
            }
        })
    });
    let kind =
        prop::sample::select(vec!["VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "WorkloadEntry"]);
    (kind, prop::collection::vec(tree, 0..4)).prop_map(|(kind, parts)| {
        let spec: Vec<String> = parts.iter().map(|p| format!("  {}", p.replace('\n', "\n  "))).collect();
        format!(
            "apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata:\n  name: fuzz\nspec:\n{}\n",
            spec.join("\n")
        )
    })
}

/// Istio's own sample files, whose scalar values the mutation test below replaces.
fn sample_texts() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/istio-samples");
    let files = [
        "bookinfo/networking/destination-rule-all.yaml",
        "bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml",
        "bookinfo/networking/virtual-service-ratings-test-delay.yaml",
        "bookinfo/networking/bookinfo-gateway.yaml",
        "istio-io-tasks/circuit-breaking/configuring-the-circuit-breaker-1.yaml",
        "istio-io-tasks/mirroring/mirroring-traffic-to-v2-1.yaml",
        "external/pypi.yaml",
        "httpbin/httpbin-gateway.yaml",
    ];
    files.iter().map(|f| std::fs::read_to_string(dir.join(f)).expect("sample")).collect()
}

/// Replace the values of some `key: value` lines of a real sample.
fn mutate(text: &str, edits: &[(usize, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let scalar_lines: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.contains(": ") && !l.trim_start().starts_with('#') && !l.contains("apiVersion") && !l.contains("kind:")
        })
        .map(|(i, _)| i)
        .collect();
    if scalar_lines.is_empty() {
        return text.to_string();
    }
    for (pick, value) in edits {
        let i = scalar_lines[pick % scalar_lines.len()];
        if let Some(pos) = lines[i].find(": ") {
            lines[i] = format!("{}: {value}", &lines[i][..pos]);
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_istio_samples_never_panic(file in 0usize..8, edits in prop::collection::vec((any::<usize>(), scalar()), 1..4)) {
        let texts = sample_texts();
        run(&mutate(&texts[file % texts.len()], &edits));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        run(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_yaml_text_never_panics(text in "[a-z:{}\\[\\], \n\t'\"&*!|>-]{0,200}") {
        run(&text);
    }

    #[test]
    fn istio_shaped_yaml_never_panics(text in istio_like()) {
        run(&text);
    }
}

#[test]
fn generator_reaches_the_validator() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut typed = 0;
    for _ in 0..200 {
        let text = istio_like().new_tree(&mut runner).expect("tree").current();
        if let Ok(loaded) = load_str(&text, None, &LoadOptions::default()) {
            typed += loaded.resources.len() + loaded.diagnostics.len();
        }
    }
    assert!(typed > 100, "only {typed} of 200 generated documents were read as resources");
}
