//! Where fleet events go besides the fleet's listeners: `tracing` (feature `tracing`,
//! target `breakerbox_redis`) and the `metrics` facade (feature `metrics`). Without
//! either feature every function here is empty. Nothing here runs on a call's path: only
//! the background task reports.

use std::time::Duration;

use crate::FleetEvent;

/// The metric names, in one place (and in the crate docs' table).
#[cfg(feature = "metrics")]
pub(crate) mod names {
    pub(crate) const SYNC_LAG: &str = "breakerbox_fleet_sync_lag_seconds";
    pub(crate) const SYNC_DURATION: &str = "breakerbox_fleet_sync_duration_seconds";
    pub(crate) const OPS: &str = "breakerbox_fleet_store_ops_total";
    pub(crate) const ERRORS: &str = "breakerbox_fleet_store_errors_total";
    pub(crate) const DEGRADED: &str = "breakerbox_fleet_degraded";
    pub(crate) const APPLIED: &str = "breakerbox_fleet_applied_total";
    pub(crate) const STALE: &str = "breakerbox_fleet_stale_updates_total";
    pub(crate) const DATA_LOSS: &str = "breakerbox_fleet_data_loss_total";
}

#[derive(Debug)]
pub(crate) struct Telemetry {
    #[cfg(feature = "metrics")]
    service: String,
}

impl Telemetry {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(service: &str) -> Self {
        #[cfg(feature = "metrics")]
        describe();
        Self {
            #[cfg(feature = "metrics")]
            service: service.to_owned(),
        }
    }

    /// One round of store operations (`op` names the script), with its round trip.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn ops(&self, op: &'static str, n: usize, ok: bool, took: Duration) {
        #[cfg(feature = "metrics")]
        {
            let service = self.service.clone();
            metrics::counter!(names::OPS, "service" => service.clone(), "op" => op).increment(n as u64);
            if ok {
                metrics::histogram!(names::SYNC_DURATION, "service" => service).record(took.as_secs_f64());
            } else {
                metrics::counter!(names::ERRORS, "service" => service, "op" => op).increment(1);
            }
        }
    }

    /// Time since the last successful exchange with Redis.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn lag(&self, lag: Duration) {
        #[cfg(feature = "metrics")]
        metrics::gauge!(names::SYNC_LAG, "service" => self.service.clone()).set(lag.as_secs_f64());
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(unused_variables))]
    pub(crate) fn event(&self, e: &FleetEvent) {
        #[cfg(feature = "metrics")]
        self.metrics_event(e);
        #[cfg(feature = "tracing")]
        trace_event(e);
    }

    #[cfg(feature = "metrics")]
    fn metrics_event(&self, e: &FleetEvent) {
        let service = self.service.clone();
        match e {
            FleetEvent::Joined => metrics::gauge!(names::DEGRADED, "service" => service).set(0.0),
            FleetEvent::Degraded { .. } => metrics::gauge!(names::DEGRADED, "service" => service).set(1.0),
            FleetEvent::Rejoined { .. } => metrics::gauge!(names::DEGRADED, "service" => service).set(0.0),
            FleetEvent::DataLost { .. } => metrics::counter!(names::DATA_LOSS, "service" => service).increment(1),
            FleetEvent::Opened { .. } => {
                metrics::counter!(names::APPLIED, "service" => service, "state" => "open").increment(1)
            }
            FleetEvent::Closed { .. } => {
                metrics::counter!(names::APPLIED, "service" => service, "state" => "closed").increment(1)
            }
            FleetEvent::Recovering { .. } => {
                metrics::counter!(names::APPLIED, "service" => service, "state" => "recovering").increment(1)
            }
            FleetEvent::StaleIgnored { .. } => metrics::counter!(names::STALE, "service" => service).increment(1),
            FleetEvent::ProbeLease { .. } => {}
        }
    }
}

#[cfg(feature = "metrics")]
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        describe_gauge!(names::SYNC_LAG, Unit::Seconds, "Time since the last successful exchange with Redis");
        describe_histogram!(names::SYNC_DURATION, Unit::Seconds, "Round trip of one round of fleet sync");
        describe_counter!(names::OPS, Unit::Count, "Fleet store operations sent, by script");
        describe_counter!(names::ERRORS, Unit::Count, "Fleet store operations that failed or timed out");
        describe_gauge!(names::DEGRADED, "1 while Redis cannot be reached and breakers decide locally");
        describe_counter!(names::APPLIED, Unit::Count, "Fleet decisions applied to a local breaker, by state");
        describe_counter!(names::STALE, Unit::Count, "Fleet updates ignored because a newer epoch was applied");
        describe_counter!(names::DATA_LOSS, Unit::Count, "Breakers whose keys Redis lost, restored from local state");
    });
}

#[cfg(feature = "tracing")]
fn trace_event(e: &FleetEvent) {
    const T: &str = "breakerbox_redis";
    let ms = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match e {
        FleetEvent::Joined => tracing::info!(target: T, "fleet joined"),
        FleetEvent::Degraded { reason, when_unreachable } => tracing::warn!(
            target: T,
            reason = reason.as_str(),
            when_unreachable = when_unreachable.as_str(),
            "fleet unreachable: breakers decide locally"
        ),
        FleetEvent::Rejoined { after } => tracing::info!(target: T, after_ms = ms(after), "fleet rejoined"),
        FleetEvent::DataLost { breaker } => {
            tracing::warn!(target: T, breaker = breaker.as_str(), "redis lost the breaker's state; restored from local")
        }
        FleetEvent::Opened { breaker, epoch, remaining } => tracing::warn!(
            target: T,
            breaker = breaker.as_str(),
            epoch,
            remaining_ms = ms(remaining),
            "fleet opened the breaker"
        ),
        FleetEvent::Closed { breaker, epoch } => {
            tracing::info!(target: T, breaker = breaker.as_str(), epoch, "fleet closed the breaker")
        }
        FleetEvent::Recovering { breaker, epoch, elapsed } => tracing::info!(
            target: T,
            breaker = breaker.as_str(),
            epoch,
            elapsed_ms = ms(elapsed),
            "fleet recovering: the breaker follows the fleet's recovery ramp"
        ),
        FleetEvent::ProbeLease { breaker, epoch } => {
            tracing::info!(target: T, breaker = breaker.as_str(), epoch, "this replica probes for the fleet")
        }
        FleetEvent::StaleIgnored { breaker, epoch, current } => {
            tracing::debug!(target: T, breaker = breaker.as_str(), epoch, current, "stale fleet update ignored")
        }
    }
}
