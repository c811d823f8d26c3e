//! Policies indexed for a workload's lookup, and the evaluation in Istio's order.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::rule::{CompiledPolicy, CompiledRule, RuleContext};
use super::trust_domain::TrustDomainBundle;
use super::{Action, AuthzDecision, AuthzRequest, DryRun, MatchedRule, PolicySpec};
use crate::policy::LabelSelector;
use crate::workload::Workload;

#[derive(Debug, Clone)]
struct Entry {
    /// Position in configuration order (ties in Envoy's name order cannot happen, but the
    /// lookup dedups by it).
    order: usize,
    selector: LabelSelector,
    policy: Arc<CompiledPolicy>,
}

/// The policies of one namespace: those without selector labels, and the others filed under
/// their first selector label.
#[derive(Debug, Clone, Default)]
struct NamespacePolicies {
    unselected: Vec<Entry>,
    by_label: FxHashMap<(Arc<str>, Arc<str>), Vec<Entry>>,
}

/// Every AuthorizationPolicy, compiled and indexed.
#[derive(Debug, Clone, Default)]
pub struct AuthzPolicies {
    root_namespace: Arc<str>,
    by_namespace: FxHashMap<Arc<str>, NamespacePolicies>,
    len: usize,
}

impl AuthzPolicies {
    /// Compile `policies` (trust-domain aliases applied from `bundle`) under `root_namespace`.
    ///
    /// ```
    /// use mesh_core::authz::*;
    /// use mesh_core::workload::Workload;
    /// let mut deny = PolicySpec::new("foo", "deny-post", Action::Deny);
    /// deny.rules.push(RuleSpec {
    ///     to: vec![OperationSpec { methods: vec!["POST".into()], ..Default::default() }],
    ///     ..Default::default()
    /// });
    /// let policies = AuthzPolicies::new("istio-system", &TrustDomainBundle::default(), [deny]);
    /// let post = AuthzRequest {
    ///     http: Some(HttpAttributes { method: "POST".into(), path: "/".into(), ..Default::default() }),
    ///     ..Default::default()
    /// };
    /// let decision = policies.authorize(&Workload::new("foo", [("app", "httpbin")]), &post);
    /// assert!(!decision.allowed);
    /// assert_eq!(decision.policy.map(|p| p.name.to_string()), Some("deny-post".into()));
    /// ```
    pub fn new(
        root_namespace: &str,
        bundle: &TrustDomainBundle,
        policies: impl IntoIterator<Item = PolicySpec>,
    ) -> Self {
        let mut by_namespace: FxHashMap<Arc<str>, NamespacePolicies> = FxHashMap::default();
        let mut len = 0;
        for (order, spec) in policies.into_iter().enumerate() {
            len += 1;
            let cx = RuleContext { action: spec.action, namespace: &spec.namespace, bundle };
            let rules = spec.rules.iter().map(|r| CompiledRule::compile(r, &cx)).collect();
            let rule_ids = (0..spec.rules.len())
                .map(|i| format!("ns[{}]-policy[{}]-rule[{i}]", spec.namespace, spec.name).into_boxed_str())
                .collect();
            let policy = Arc::new(CompiledPolicy {
                namespace: spec.namespace.clone(),
                name: spec.name.clone(),
                action: spec.action,
                dry_run: spec.dry_run,
                rules,
                rule_ids,
            });
            let entry = Entry { order, selector: spec.selector.clone(), policy };
            let ns = by_namespace.entry(spec.namespace.clone()).or_default();
            match spec.selector.0.first() {
                None => ns.unselected.push(entry),
                Some(first) => ns.by_label.entry(first.clone()).or_default().push(entry),
            }
        }
        AuthzPolicies { root_namespace: Arc::from(root_namespace), by_namespace, len }
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No policies at all?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root namespace.
    pub fn root_namespace(&self) -> &str {
        &self.root_namespace
    }

    /// The policies that apply to `workload` (its namespace's and the root namespace's, whose
    /// selector it matches), ready to evaluate.
    pub fn for_workload(&self, workload: &Workload) -> WorkloadAuthz {
        let mut found: Vec<&Entry> = Vec::new();
        let namespaces = [&self.root_namespace, &workload.namespace];
        let count = if workload.namespace == self.root_namespace { 1 } else { 2 };
        for ns in &namespaces[..count] {
            let Some(p) = self.by_namespace.get(*ns) else { continue };
            found.extend(p.unselected.iter());
            for (k, v) in &workload.labels {
                // The key is built from the workload's own labels: no allocation.
                if let Some(entries) = p.by_label.get(&(k.clone(), v.clone())) {
                    found.extend(entries.iter().filter(|e| e.selector.matches(&workload.labels)));
                }
            }
        }
        found.sort_by_key(|e| e.order);
        found.dedup_by_key(|e| e.order);
        WorkloadAuthz::new(found.into_iter().map(|e| e.policy.clone()))
    }

    /// The decision for `request` arriving at `workload`.
    pub fn authorize(&self, workload: &Workload, request: &AuthzRequest) -> AuthzDecision {
        if self.is_empty() {
            return AuthzDecision::allow_all();
        }
        self.for_workload(workload).authorize(request)
    }
}

/// One rule of one policy, in Envoy's evaluation order.
#[derive(Debug, Clone)]
struct RuleRef {
    policy: Arc<CompiledPolicy>,
    rule: usize,
}

impl RuleRef {
    fn id(&self) -> &str {
        self.policy.rule_ids.get(self.rule).map_or("", |s| s)
    }

    fn matched(&self) -> MatchedRule {
        MatchedRule {
            namespace: self.policy.namespace.clone(),
            name: self.policy.name.clone(),
            action: self.policy.action,
            rule: self.rule,
        }
    }

    fn matches(&self, request: &AuthzRequest) -> bool {
        self.policy.rules.get(self.rule).is_some_and(|r| r.matches(self.policy.action, request))
    }
}

/// The policies that apply to one workload, by action, each list in Envoy's order.
#[derive(Debug, Clone, Default)]
pub struct WorkloadAuthz {
    custom: Box<[RuleRef]>,
    deny: Box<[RuleRef]>,
    allow: Box<[RuleRef]>,
    audit: Box<[RuleRef]>,
    dry_deny: Box<[RuleRef]>,
    dry_allow: Box<[RuleRef]>,
    /// Some enforced ALLOW policy applies (with rules or not).
    has_allow: bool,
    has_dry_allow: bool,
    has_dry_deny: bool,
}

impl WorkloadAuthz {
    fn new(policies: impl IntoIterator<Item = Arc<CompiledPolicy>>) -> WorkloadAuthz {
        let mut lists: [Vec<RuleRef>; 6] = Default::default();
        let mut w = WorkloadAuthz::default();
        for p in policies {
            let slot = match (p.action, p.dry_run) {
                // Istio never enforces a dry-run CUSTOM policy with an unknown provider.
                (Action::Custom, true) => continue,
                (Action::Custom, false) => 0,
                (Action::Deny, false) => 1,
                (Action::Allow, false) => {
                    w.has_allow = true;
                    2
                }
                // Audit has no shadow form: a dry-run AUDIT policy still only audits.
                (Action::Audit, _) => 3,
                (Action::Deny, true) => {
                    w.has_dry_deny = true;
                    4
                }
                (Action::Allow, true) => {
                    w.has_dry_allow = true;
                    5
                }
            };
            for rule in 0..p.rules.len() {
                lists[slot].push(RuleRef { policy: p.clone(), rule });
            }
        }
        let sorted = |mut v: Vec<RuleRef>| -> Box<[RuleRef]> {
            v.sort_by(|a, b| a.id().cmp(b.id()));
            v.into_boxed_slice()
        };
        let [custom, deny, allow, audit, dry_deny, dry_allow] = lists;
        w.custom = sorted(custom);
        w.deny = sorted(deny);
        w.allow = sorted(allow);
        w.audit = sorted(audit);
        w.dry_deny = sorted(dry_deny);
        w.dry_allow = sorted(dry_allow);
        w
    }

    /// Does any policy apply?
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
            && self.deny.is_empty()
            && !self.has_allow
            && self.audit.is_empty()
            && !self.has_dry_allow
            && !self.has_dry_deny
    }

    /// The decision for `request`, in Istio's order: CUSTOM, DENY, ALLOW; AUDIT and dry-run
    /// beside them.
    pub fn authorize(&self, request: &AuthzRequest) -> AuthzDecision {
        let first = |list: &[RuleRef]| list.iter().find(|r| r.matches(request)).map(RuleRef::matched);
        let audit = first(&self.audit);
        let dry_run = if self.has_dry_deny || self.has_dry_allow {
            Some(match first(&self.dry_deny) {
                Some(rule) => DryRun { allowed: false, policy: Some(rule) },
                None if self.has_dry_allow => match first(&self.dry_allow) {
                    Some(rule) => DryRun { allowed: true, policy: Some(rule) },
                    None => DryRun { allowed: false, policy: None },
                },
                None => DryRun { allowed: true, policy: None },
            })
        } else {
            None
        };
        let decided =
            |allowed, policy| AuthzDecision { allowed, policy, audit: audit.clone(), dry_run: dry_run.clone() };
        if let Some(rule) = first(&self.custom) {
            return decided(false, Some(rule));
        }
        if let Some(rule) = first(&self.deny) {
            return decided(false, Some(rule));
        }
        if !self.has_allow {
            return decided(true, None);
        }
        match first(&self.allow) {
            Some(rule) => decided(true, Some(rule)),
            None => decided(false, None),
        }
    }
}
