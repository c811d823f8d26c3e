//! Fault injection and mirroring: percentages, abort statuses (HTTP and gRPC) and mirrors
//! (<https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPFaultInjection>).

use std::sync::Arc;
use std::time::Duration;

use super::Destination;

/// A percentage in 0..=100, as configured.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percentage(pub f64);

impl Percentage {
    /// Everything.
    pub const ALL: Percentage = Percentage(100.0);

    /// Does a uniform random `r` in `0.0..1.0` fall within this percentage?
    pub fn hit(self, r: f64) -> bool {
        r * 100.0 < self.0
    }
}

/// gRPC status names in code order (`OK` is 0, `UNAVAILABLE` 14), as gRPC defines them
/// (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>); Istio's `fault.abort.grpcStatus`
/// takes one of these names.
pub const GRPC_STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code of a gRPC status name (`UNAVAILABLE` → 14; any case; a number stands for itself).
pub fn grpc_status_code(name: &str) -> Option<u32> {
    GRPC_STATUS_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| i as u32).or_else(|| name.parse().ok())
}

/// How a fault abort answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortStatus {
    /// An HTTP status.
    Http(u16),
    /// A gRPC status name (`UNAVAILABLE`).
    Grpc(Arc<str>),
}

/// A compiled `fault`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Fixed delay and the share of requests delayed.
    pub delay: Option<(Duration, Percentage)>,
    /// Abort status and the share of requests aborted.
    pub abort: Option<(AbortStatus, Percentage)>,
}

impl Fault {
    /// What to inject for one request, given two uniform randoms in `0.0..1.0` (one per fault kind).
    pub fn decide(&self, r_delay: f64, r_abort: f64) -> (Option<Duration>, Option<&AbortStatus>) {
        let delay = self.delay.filter(|(_, p)| p.hit(r_delay)).map(|(d, _)| d);
        let abort = self.abort.as_ref().filter(|(_, p)| p.hit(r_abort)).map(|(s, _)| s);
        (delay, abort)
    }
}

/// One mirror.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// Where copies go.
    pub destination: Destination,
    /// Share of requests copied.
    pub percentage: Percentage,
}

impl Mirror {
    /// Is this request copied, given a uniform random in `0.0..1.0`?
    pub fn selected(&self, r: f64) -> bool {
        self.percentage.hit(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_mirrors_by_percentage() {
        let f = Fault {
            delay: Some((Duration::from_secs(7), Percentage(100.0))),
            abort: Some((AbortStatus::Http(500), Percentage(10.0))),
        };
        assert_eq!(f.decide(0.999, 0.5), (Some(Duration::from_secs(7)), None));
        assert_eq!(f.decide(0.0, 0.05).1, Some(&AbortStatus::Http(500)));
        let m = Mirror {
            destination: Destination { host: Arc::from("h"), subset: None, port: None },
            percentage: Percentage(0.0),
        };
        assert!(!m.selected(0.0), "0% mirrors nothing");
    }
}
