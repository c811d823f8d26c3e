//! `MW0003`: DestinationRules the merge partly ignores. Pilot merges the rules for one host in
//! one namespace (istio/istio `pilot/pkg/model/destination_rule.go`, `mergeDestinationRule`):
//! the first definition of a subset and the first top-level `trafficPolicy` win.

use std::collections::{BTreeSet, HashMap};

use mesh_core::host::qualify;

use super::Seg::{Field as F, Index as I};
use super::{place, share_a_namespace, visibility, warning};
use crate::diag::{Code, Diagnostic};
use crate::types::destination_rule as dr;
use crate::types::{Resource, Spec};

/// DestinationRules that merge (one host, one namespace, no workload selector, a namespace that
/// sees both) and set what an earlier one set: the later setting is ignored, as pilot ignores it.
pub(super) fn check(resources: &[Resource], domain: &str, out: &mut Vec<Diagnostic>) {
    // Per (namespace, host), the rules in order, with their visibility.
    type Group<'r> = Vec<(&'r Resource, &'r dr::DestinationRule, Option<BTreeSet<String>>)>;
    let mut groups: Vec<((&str, String), Group<'_>)> = Vec::new();
    let mut position: HashMap<(&str, String), usize> = HashMap::new();
    for r in resources {
        let Spec::DestinationRule(d) = &r.spec else { continue };
        if d.workload_selector.is_some() {
            continue;
        }
        let key = (&*r.namespace, qualify(&d.host, &r.namespace, domain));
        let entry = (r, d, visibility(&r.namespace, &d.export_to));
        match position.get(&key) {
            Some(&at) => groups[at].1.push(entry),
            None => {
                position.insert(key.clone(), groups.len());
                groups.push((key, vec![entry]));
            }
        }
    }
    for ((_, host), group) in &groups {
        for (k, (r, d, seen_by)) in group.iter().enumerate() {
            let earlier: Vec<_> = group[..k].iter().filter(|(_, _, v)| share_a_namespace(v, seen_by)).collect();
            if earlier.is_empty() {
                continue;
            }
            for (i, s) in d.subsets.iter().enumerate() {
                if let Some((first, _, _)) =
                    earlier.iter().find(|(_, e, _)| e.subsets.iter().any(|es| es.name == s.name))
                {
                    out.push(warning(
                        r,
                        Code::ConflictingDestinationRules,
                        &[F("subsets"), I(i)],
                        format!(
                            "subset {:?} of host {host} is already defined by DestinationRule {}/{} ({}); rules for one host in one namespace merge and the first definition of a subset wins, so this one is ignored",
                            s.name,
                            first.namespace,
                            first.name,
                            place(first)
                        ),
                    ));
                }
            }
            if d.traffic_policy.is_some()
                && let Some((first, _, _)) = earlier.iter().find(|(_, e, _)| e.traffic_policy.is_some())
            {
                out.push(warning(
                    r,
                    Code::ConflictingDestinationRules,
                    &[F("trafficPolicy")],
                    format!(
                        "trafficPolicy is ignored: DestinationRule {}/{} ({}) for host {host} sets one first; rules for one host in one namespace merge and only the first top-level trafficPolicy applies",
                        first.namespace,
                        first.name,
                        place(first)
                    ),
                ));
            }
        }
    }
}
