//! Where events go besides listeners: `tracing` (feature `tracing`) and the `metrics`
//! facade (feature `metrics`). Without either feature every function here is empty and
//! inlined away.

use crate::event::Transition;
use crate::{Name, Outcome, Rejected};

#[derive(Debug)]
pub(crate) struct Telemetry {
    #[cfg(feature = "metrics")]
    metrics: metrics_impl::Handles,
}

/// A rejection, or a would-be rejection in shadow mode, as a `debug` event.
#[cfg(feature = "tracing")]
macro_rules! rejection_event {
    ($rejected:expr, $msg:literal) => {
        tracing::debug!(
            target: "breakerbox",
            breaker = $rejected.name(),
            state = $rejected.state().as_str(),
            reason = $rejected.reason().as_str(),
            retry_after_ms = $rejected.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            $msg
        )
    };
}

impl Telemetry {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(name: &Name) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            metrics: metrics_impl::Handles::new(name),
        }
    }

    #[inline(always)]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn outcome(&self, outcome: Outcome, slow: bool) {
        #[cfg(feature = "metrics")]
        self.metrics.outcome(outcome, slow);
    }

    #[inline(always)]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn rejected(&self, rejected: &Rejected) {
        #[cfg(feature = "metrics")]
        self.metrics.rejected(rejected.reason());
        #[cfg(feature = "tracing")]
        rejection_event!(rejected, "call rejected");
    }

    /// A call admitted in shadow mode that `rejected` would have refused.
    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(unused_variables))]
    pub(crate) fn would_reject(&self, rejected: &Rejected) {
        #[cfg(feature = "metrics")]
        self.metrics.would_reject(rejected.reason());
        #[cfg(feature = "tracing")]
        rejection_event!(rejected, "call admitted in shadow mode; enforcing, the breaker would have rejected it");
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(unused_variables))]
    pub(crate) fn transition(&self, t: &Transition<'_>) {
        #[cfg(feature = "metrics")]
        self.metrics.transition(t);
        #[cfg(feature = "tracing")]
        trace_transition(t);
    }

    /// Whether anything here wants transitions.
    pub(crate) const ENABLED: bool = cfg!(any(feature = "metrics", feature = "tracing"));
}

#[cfg(feature = "tracing")]
fn trace_transition(t: &Transition<'_>) {
    use crate::State;
    let open_for_ms = t.open_for.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    macro_rules! event {
        ($level:ident, $msg:literal) => {
            tracing::$level!(
                target: "breakerbox",
                breaker = t.breaker,
                from = t.from.as_str(),
                to = t.to.as_str(),
                reason = t.reason.as_str(),
                open_for_ms,
                tripped_by = t.tripped_by.map(crate::TripCause::as_str),
                consecutive_opens = t.consecutive_opens,
                $msg
            )
        };
    }
    match t.to {
        State::Open => event!(warn, "circuit breaker opened"),
        State::ForcedOpen => event!(warn, "circuit breaker forced open"),
        State::Disabled => event!(warn, "circuit breaker disabled"),
        State::HalfOpen => event!(info, "circuit breaker half-open: probing"),
        State::Recovering => event!(info, "circuit breaker recovering: traffic ramps back up"),
        State::Closed => event!(info, "circuit breaker closed"),
    }
}

#[cfg(feature = "metrics")]
mod metrics_impl {
    use std::sync::OnceLock;

    use metrics::{Counter, Gauge, Unit, counter, describe_counter, describe_gauge, gauge};

    use crate::event::Transition;
    use crate::state::kind::Kind;
    use crate::{Name, Outcome, RejectReason, State};

    /// The metric names, in one place (and in the crate docs' table).
    #[derive(Debug)]
    #[non_exhaustive]
    pub(crate) struct MetricNames;

    impl MetricNames {
        pub(crate) const CALLS: &'static str = "breakerbox_calls_total";
        pub(crate) const SLOW_CALLS: &'static str = "breakerbox_slow_calls_total";
        pub(crate) const TRANSITIONS: &'static str = "breakerbox_transitions_total";
        pub(crate) const STATE: &'static str = "breakerbox_state";
        pub(crate) const SHADOW_REJECTIONS: &'static str = "breakerbox_shadow_rejections_total";
    }

    const STATES: usize = Kind::COUNT;

    /// Every reason a call is rejected for, each a `reason` label of the rejected calls.
    const REASONS: [RejectReason; 5] = [
        RejectReason::Open,
        RejectReason::HalfOpenFull,
        RejectReason::ForcedOpen,
        RejectReason::Throttled,
        RejectReason::Recovering,
    ];

    /// Counter handles registered once per breaker, so a call increments a handle and
    /// never builds a key (no allocation per call). They bind to the recorder installed
    /// when the breaker is built: install it first.
    #[derive(Debug)]
    pub(super) struct Handles {
        name: String,
        success: Counter,
        failure: Counter,
        ignored: Counter,
        /// By reason, in the order of [`REASONS`].
        rejected: [Counter; REASONS.len()],
        /// Shadow mode's would-be rejections, by reason, registered at the first one.
        would_reject: [OnceLock<Counter>; REASONS.len()],
        slow: Counter,
        /// One gauge per state, registered at build.
        states: [Gauge; STATES],
        /// One counter per (from, to), registered at its first transition: the series
        /// of transitions that never happen are never exported, and a transition
        /// allocates only the first time it happens.
        transitions: [[OnceLock<Counter>; STATES]; STATES],
    }

    /// Describes the series (unit, help text) to the recorder in place now: at every
    /// breaker's build, not once per process, so that a recorder installed after the
    /// first breaker was built (or a scoped one, `metrics::with_local_recorder`) gets
    /// them too. A recorder keeps the last description of a name; a build is not a hot
    /// path.
    fn describe() {
        describe_counter!(
            MetricNames::CALLS,
            Unit::Count,
            "Calls by outcome: success, failure, ignored, rejected (by reason)"
        );
        describe_counter!(MetricNames::SLOW_CALLS, Unit::Count, "Calls a slow-call rule found slow");
        describe_counter!(MetricNames::TRANSITIONS, Unit::Count, "State changes, by from and to");
        describe_gauge!(MetricNames::STATE, "1 for the breaker's current state, 0 for the others");
        describe_counter!(
            MetricNames::SHADOW_REJECTIONS,
            Unit::Count,
            "Calls admitted in shadow mode that the breaker would have rejected, by reason"
        );
    }

    impl Handles {
        pub(super) fn new(name: &Name) -> Self {
            describe();
            let name = name.as_str().to_owned();
            let calls =
                |outcome: &'static str| counter!(MetricNames::CALLS, "breaker" => name.clone(), "outcome" => outcome);
            let handles = Self {
                success: calls("success"),
                failure: calls("failure"),
                ignored: calls("ignored"),
                rejected: REASONS.map(|reason| {
                    counter!(MetricNames::CALLS, "breaker" => name.clone(), "outcome" => "rejected", "reason" => reason.as_str())
                }),
                slow: counter!(MetricNames::SLOW_CALLS, "breaker" => name.clone()),
                states: Kind::ALL
                    .map(|k| gauge!(MetricNames::STATE, "breaker" => name.clone(), "state" => k.state().as_str())),
                transitions: Default::default(),
                would_reject: Default::default(),
                name,
            };
            handles.state(State::Closed);
            handles
        }

        #[inline(always)]
        pub(super) fn outcome(&self, outcome: Outcome, slow: bool) {
            match outcome {
                Outcome::Success => self.success.increment(1),
                Outcome::Failure => self.failure.increment(1),
                Outcome::Ignored => self.ignored.increment(1),
            }
            if slow {
                self.slow.increment(1);
            }
        }

        #[inline(always)]
        pub(super) fn rejected(&self, reason: RejectReason) {
            if let Some(i) = REASONS.iter().position(|r| *r == reason) {
                self.rejected[i].increment(1);
            }
        }

        pub(super) fn would_reject(&self, reason: RejectReason) {
            if let Some(i) = REASONS.iter().position(|r| *r == reason) {
                self.would_reject[i]
                    .get_or_init(|| {
                        counter!(MetricNames::SHADOW_REJECTIONS, "breaker" => self.name.clone(), "reason" => reason.as_str())
                    })
                    .increment(1);
            }
        }

        pub(super) fn transition(&self, t: &Transition<'_>) {
            self.transitions[Kind::of(t.from) as usize][Kind::of(t.to) as usize]
                .get_or_init(|| {
                    counter!(MetricNames::TRANSITIONS, "breaker" => self.name.clone(), "from" => t.from.as_str(), "to" => t.to.as_str())
                })
                .increment(1);
            self.state(t.to);
        }

        fn state(&self, current: State) {
            for (k, gauge) in Kind::ALL.iter().zip(&self.states) {
                gauge.set(if k.state() == current { 1.0 } else { 0.0 });
            }
        }
    }
}
