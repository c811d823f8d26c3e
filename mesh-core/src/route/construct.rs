//! Constructors for rules and destinations built in code rather than compiled from YAML: for
//! tests of the layers that read a decision, and for embedders that route without Istio config.

use std::sync::Arc;

use super::{
    Destination, HeaderEdits, HttpRule, RetryPolicy, RouteAction, RouteDestination, RuleOrigin, WeightedDestinations,
};

impl Destination {
    /// `host` (fully qualified), every subset, the request's port.
    ///
    /// ```
    /// let d = mesh_core::route::Destination::new("reviews.default.svc.cluster.local");
    /// assert_eq!((d.subset, d.port), (None, None));
    /// ```
    pub fn new(host: impl Into<Arc<str>>) -> Self {
        Destination { host: host.into(), subset: None, port: None }
    }

    /// The same destination, restricted to the DestinationRule subset `subset`.
    pub fn subset(mut self, subset: impl Into<Arc<str>>) -> Self {
        self.subset = Some(subset.into());
        self
    }

    /// The same destination, on service port `port`.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

impl HttpRule {
    /// A rule that matches every request and forwards it to `destination`, with what Istio gives a
    /// rule that says nothing more: its default retry policy, no timeout, no fault, no mirror, no
    /// header edits. Its origin is `default/in-code`, rule 0. Set the public fields for more.
    ///
    /// ```
    /// use mesh_core::route::{Destination, HttpRule};
    /// let mut rule = HttpRule::forward(Destination::new("ratings.default.svc.cluster.local"));
    /// rule.timeout = Some(std::time::Duration::from_millis(500));
    /// assert_eq!(rule.retries.attempts, 2);
    /// assert!(rule.matches.is_empty(), "matches every request");
    /// ```
    pub fn forward(destination: Destination) -> Self {
        let routes = vec![RouteDestination { destination, weight: 100, headers: HeaderEdits::default() }];
        HttpRule {
            origin: RuleOrigin {
                kind: Default::default(),
                namespace: Arc::from("default"),
                name: Arc::from("in-code"),
                index: 0,
            },
            name: None,
            matches: Box::new([]),
            action: RouteAction::Route(WeightedDestinations::new(routes)),
            rewrite: None,
            timeout: None,
            retries: Arc::new(RetryPolicy::istio_default()),
            fault: None,
            mirrors: Box::new([]),
            cors: None,
            headers: Arc::default(),
        }
    }
}
