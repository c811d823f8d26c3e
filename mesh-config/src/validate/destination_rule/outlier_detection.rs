//! `outlierDetection` of a traffic policy (istio/istio `pkg/config/validation/validation.go`
//! `validateOutlierDetection`).

use crate::types::destination_rule::*;
use crate::validate::common::*;
use crate::validate::{Ctx, P};

pub(super) fn validate_outlier_detection(ctx: &mut Ctx<'_>, path: &P, o: &OutlierDetection) {
    check_duration(ctx, &path.f("baseEjectionTime"), o.base_ejection_time.as_ref());
    check_duration(ctx, &path.f("interval"), o.interval.as_ref());
    if o.consecutive_errors.is_some_and(|v| v != 0) {
        ctx.warn(
            &path.f("consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        );
    }
    for (field, value) in [("maxEjectionPercent", o.max_ejection_percent), ("minHealthPercent", o.min_health_percent)] {
        if let Some(v) = value
            && !(0..=100).contains(&v)
        {
            ctx.error(&path.f(field), format!("percentage {v} is not in range 0..100"));
        }
    }
    // `0` turns the check off, so Istio accepts it without the split.
    if o.consecutive_local_origin_failures.is_some_and(|n| n > 0) && o.split_external_local_origin_errors != Some(true)
    {
        ctx.error(
            &path.f("consecutiveLocalOriginFailures"),
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
        );
    }
    for (i, code) in o.outlier_detection_http_error_codes.iter().enumerate() {
        if !(100..=599).contains(code) {
            ctx.error(
                &path.f("outlierDetectionHttpErrorCodes").i(i),
                format!("HTTP status {code} is not in range 100-599"),
            );
        }
    }
}
