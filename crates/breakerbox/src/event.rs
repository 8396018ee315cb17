//! Listeners: closures called on state changes, rejections and recorded outcomes.
//!
//! Listeners run on the thread that caused the event, after the new state is
//! published: never inside the compare-and-swap loop, never under a lock. A listener
//! may call back into the breaker. A listener that panics is caught and ignored: the
//! breaker, and the other listeners, carry on. With no listener registered, the cost
//! of the events is one branch.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::{Outcome, Rejected, State};

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The policy tripped while closed.
    Tripped,
    /// The open wait passed and a call arrived (or a reader looked).
    WaitElapsed,
    /// A half-open probe failed (or was slow).
    ProbeFailed,
    /// Enough half-open probes succeeded (and, with a recovery ramp, it begins).
    ProbesSucceeded,
    /// The recovery ramp ran its course: the breaker closed.
    RampCompleted,
    /// The recovery ramp's failure rule aborted it: the breaker reopened.
    RampFailed,
    /// Half-open probes did not report within the probe lease; a new round of probes
    /// began and the silent ones no longer count.
    ProbeLeaseExpired,
    /// [`reset`](crate::Breaker::reset) was called.
    Reset,
    /// [`force_open`](crate::Breaker::force_open) was called.
    ForcedOpen,
    /// [`disable`](crate::Breaker::disable) was called.
    Disabled,
    /// A coordinator outside the breaker decided: [`open_for`](crate::Breaker::open_for)
    /// or [`close`](crate::Breaker::close) was called.
    External,
}

impl Reason {
    /// The reason's name in `snake_case`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tripped => "tripped",
            Self::WaitElapsed => "wait_elapsed",
            Self::ProbeFailed => "probe_failed",
            Self::ProbesSucceeded => "probes_succeeded",
            Self::RampCompleted => "ramp_completed",
            Self::RampFailed => "ramp_failed",
            Self::ProbeLeaseExpired => "probe_lease_expired",
            Self::Reset => "reset",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::External => "external",
        }
    }
}

/// Which rule of the policy tripped a closed breaker (resilience4j's "failure rate
/// exceeded" and "slow call rate exceeded" events, as a field of the trip).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TripCause {
    /// A streak of consecutive failures reached its threshold.
    ConsecutiveFailures,
    /// A failure rate reached its threshold.
    FailureRate,
    /// A slow-call rate reached its threshold.
    SlowCallRate,
    /// Calls still in flight past [`hung_after`](crate::BreakerBuilder::hung_after)
    /// counted as failures made a rule trip, before they completed.
    HungCalls,
}

impl TripCause {
    /// The cause's name in `snake_case`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConsecutiveFailures => "consecutive_failures",
            Self::FailureRate => "failure_rate",
            Self::SlowCallRate => "slow_call_rate",
            Self::HungCalls => "hung_calls",
        }
    }
}

/// A state change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When entering Open: how long it stays open.
    pub open_for: Option<Duration>,
    /// Consecutive openings without a close, this one included (0 when closed).
    pub consecutive_opens: u32,
    /// When, on the breaker's clock.
    pub at: Duration,
    /// For a trip ([`Reason::Tripped`]): the rule that tripped.
    pub tripped_by: Option<TripCause>,
}

/// An outcome the breaker has recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// The outcome reported.
    pub outcome: Outcome,
    /// How long the call took, when known.
    pub duration: Option<Duration>,
    /// Whether a slow-call rule found the call slow.
    pub slow: bool,
    /// The state the call was admitted in.
    pub admitted_in: State,
    /// False when the outcome arrived after the state it was admitted in had ended: it
    /// counts in the metrics but cannot change the state.
    pub current: bool,
}

pub(crate) type OnTransition = Arc<dyn Fn(&Transition<'_>) + Send + Sync>;
pub(crate) type OnRejection = Arc<dyn Fn(&Rejected) + Send + Sync>;
pub(crate) type OnOutcome = Arc<dyn Fn(&Recorded<'_>) + Send + Sync>;

#[derive(Clone, Default)]
pub(crate) struct Listeners {
    pub(crate) transition: Vec<OnTransition>,
    pub(crate) rejection: Vec<OnRejection>,
    pub(crate) outcome: Vec<OnOutcome>,
}

impl Listeners {
    pub(crate) fn transition(&self, t: &Transition<'_>) {
        for f in &self.transition {
            contain(|| f(t));
        }
    }

    pub(crate) fn rejection(&self, r: &Rejected) {
        for f in &self.rejection {
            contain(|| f(r));
        }
    }

    pub(crate) fn outcome(&self, o: &Recorded<'_>) {
        for f in &self.outcome {
            contain(|| f(o));
        }
    }
}

/// Runs a listener, swallowing its panic: a broken listener must not break the breaker
/// or the caller's call.
fn contain(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners")
            .field("transition", &self.transition.len())
            .field("rejection", &self.rejection.len())
            .field("outcome", &self.outcome.len())
            .finish()
    }
}
