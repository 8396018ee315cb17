//! The real breaker, driven by the reference model's operations: the glue that builds a
//! `Breaker` (on a `ManualClock`) from the model's settings, applies one [`Op`] to it,
//! and compares everything observable with the model after the step.
//!
//! Shared by the model-based proptest (`tests/model_based.rs`, as `mod real`) and the
//! `state_machine` fuzz target (`fuzz/fuzz_targets/state_machine.rs`, by `#[path]`):
//! both declare `mod model;` and `mod real;` at their crate root. The model itself
//! (`model/mod.rs`) shares nothing with the crate; this file is the only bridge.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, ManualClock, OpenWait, OwnedPermit, Policy, Ramp, RejectReason, Report, State, TripCause};

use crate::model::{MCause, MConfig, MOutcome, MState, MWait, Model, Observed, Op};

/// The real breaker under test, its clock, and the permits it handed out.
pub(crate) struct Sut {
    pub(crate) clock: ManualClock,
    pub(crate) breaker: Breaker,
    pub(crate) held: Vec<OwnedPermit>,
    pub(crate) probes: u32,
    /// `Transition::tripped_by` of every transition that has one, oldest first.
    pub(crate) trips: Arc<Mutex<Vec<TripCause>>>,
}

pub(crate) fn real_cause(c: MCause) -> TripCause {
    match c {
        MCause::ConsecutiveFailures => TripCause::ConsecutiveFailures,
        MCause::FailureRate => TripCause::FailureRate,
        MCause::SlowCallRate => TripCause::SlowCallRate,
        MCause::HungCalls => TripCause::HungCalls,
    }
}

pub(crate) fn real_state(s: MState) -> State {
    match s {
        MState::Closed => State::Closed,
        MState::Open => State::Open,
        MState::HalfOpen => State::HalfOpen,
        MState::ForcedOpen => State::ForcedOpen,
        MState::Disabled => State::Disabled,
        MState::Recovering => State::Recovering,
    }
}

pub(crate) fn reject_reason(s: MState) -> RejectReason {
    match s {
        MState::Open => RejectReason::Open,
        MState::HalfOpen => RejectReason::HalfOpenFull,
        MState::ForcedOpen => RejectReason::ForcedOpen,
        MState::Recovering => RejectReason::Recovering,
        MState::Closed | MState::Disabled => panic!("the model never refuses while {s:?}"),
    }
}

pub(crate) fn build(c: &MConfig, clock: &ManualClock, trips: &Arc<Mutex<Vec<TripCause>>>) -> Breaker {
    let mut rules: Vec<Policy> = c.consecutive.map(Policy::consecutive_failures).into_iter().collect();
    let u32_of = |n: u64| u32::try_from(n).unwrap();
    if let Some(r) = c.rate {
        let rate = Policy::failure_rate(r.quarters as f64 / 4.0)
            .over_calls(u32::try_from(r.window).unwrap())
            .min_calls(u32_of(r.min_calls));
        rules.push(rate.into());
    }
    if let Some(t) = c.time_rate {
        let rate = Policy::failure_rate(t.quarters as f64 / 4.0)
            .over_time(Duration::from_millis(t.span_ms))
            .buckets(u32_of(t.buckets))
            .min_calls(u32_of(t.min_calls));
        rules.push(rate.into());
    }
    if let Some(s) = c.slow {
        let slow = Policy::slow_calls(Duration::from_millis(s.slower_than_ms), s.quarters as f64 / 4.0)
            .over_calls(u32::try_from(s.window).unwrap())
            .min_calls(u32_of(s.min_calls));
        rules.push(slow.into());
    }
    let policy = (!rules.is_empty()).then(|| Policy::any(rules));
    let wait = match c.wait {
        MWait::Fixed { ms } => OpenWait::fixed(Duration::from_millis(ms)),
        MWait::Exponential { base_ms, max_ms } => {
            OpenWait::exponential(Duration::from_millis(base_ms), Duration::from_millis(max_ms))
        }
    };
    let ramp = c.ramp.map(|r| {
        Ramp::new()
            .duration(Duration::from_nanos(r.duration_ns))
            .min_fraction(r.min_fraction)
            .aggression(r.aggression)
            .window(u32::try_from(r.window).unwrap())
            .min_calls(u32::try_from(r.min_calls).unwrap())
            .abort_after(u32::try_from(r.abort_after).unwrap())
            .abort_failure_rate(r.abort_failure_rate)
    });
    Breaker::builder()
        .name("model")
        .policy(policy.expect("the model always has a rule"))
        .open_wait(wait)
        .half_open_probes(c.probes)
        .probe_lease(Duration::from_millis(c.probe_lease_ms))
        .cancel_counts_after(c.cancel_after_ms.map(Duration::from_millis))
        .retry_after_limit(Duration::from_millis(c.retry_after_limit_ms))
        .recovery_ramp(ramp)
        .shadow(c.shadow)
        .hung_after(c.hung_after_ns.map(Duration::from_nanos))
        .on_state_change({
            let trips = Arc::clone(trips);
            move |t| trips.lock().unwrap().extend(t.tripped_by)
        })
        .clock(clock.clone())
        .build()
        .expect("valid settings")
}

/// The real breaker for `model`'s settings, at time 0 with nothing held.
pub(crate) fn init(model: &Model) -> Sut {
    let clock = ManualClock::new();
    let trips = Arc::new(Mutex::new(Vec::new()));
    let breaker = build(&model.config, &clock, &trips);
    Sut { clock, breaker, held: Vec::new(), probes: model.config.probes, trips }
}

/// Applies `op` to the real breaker; `model` is the reference *after* the same step
/// (its `last` says what the step observed).
pub(crate) fn apply(sut: &mut Sut, model: &Model, op: Op) {
    match op {
        Op::Acquire => {
            let before = sut.breaker.state();
            let shadow = sut.breaker.is_shadow();
            let got = sut.breaker.try_acquire_owned();
            // Invariants that hold whatever the model says.
            match before {
                _ if shadow => assert!(got.is_ok(), "rejected in shadow mode while {before:?}"),
                State::Open | State::ForcedOpen => {
                    assert!(got.is_err(), "admitted while {before:?} before the deadline")
                }
                State::Closed | State::Disabled => assert!(got.is_ok(), "rejected while {before:?}"),
                _ => {}
            }
            match (got, model.last) {
                (Ok(permit), Observed::Admitted(s)) => {
                    assert_eq!(permit.admitted_in(), real_state(s), "admitted in");
                    sut.held.push(permit);
                }
                (Ok(permit), Observed::ShadowAdmitted { .. }) => {
                    // Counted in `would_reject` (checked after the step); its outcome
                    // must not reach the state machine: it reads as refused.
                    assert_eq!(permit.admitted_in(), State::Open, "a shadow admission's permit");
                    sut.held.push(permit);
                }
                (Err(r), Observed::Rejected { state, retry_after }) => {
                    assert_eq!(r.state(), real_state(state), "rejection state: {r}");
                    assert_eq!(r.reason(), reject_reason(state), "rejection reason: {r}");
                    assert_eq!(r.retry_after(), retry_after, "rejection retry_after: {r}");
                    assert_eq!(r.name(), "model");
                }
                (got, expected) => panic!("acquire: breaker gave {got:?}, model expected {expected:?}"),
            }
        }
        Op::Record { idx, outcome, hint_ms, duration_ms } => {
            let permit = sut.held.remove(idx);
            let mut report = Report::new(match outcome {
                MOutcome::Success => breakerbox::Outcome::Success,
                MOutcome::Failure => breakerbox::Outcome::Failure,
                MOutcome::Ignored => breakerbox::Outcome::Ignored,
            });
            if let Some(ms) = hint_ms {
                report = report.with_retry_after(Duration::from_millis(ms));
            }
            if let Some(ms) = duration_ms {
                report = report.with_duration(Duration::from_millis(ms));
            }
            permit.record(report);
        }
        Op::Drop { idx } => drop(sut.held.remove(idx)),
        Op::AdvanceMs(ms) => sut.clock.advance(Duration::from_millis(ms)),
        Op::Reset => sut.breaker.reset(),
        Op::ForceOpen => sut.breaker.force_open(),
        Op::Disable => sut.breaker.disable(),
        Op::Recover(elapsed) => sut.breaker.recover(elapsed),
        Op::SetShadow(on) => sut.breaker.set_shadow(on),
    }
}

/// Everything observable agrees with the model, and the model with itself.
pub(crate) fn check(sut: &Sut, model: &Model) {
    model.check_self();
    assert_eq!(sut.clock.elapsed(), Duration::from_nanos(model.now));
    let expected = model.metrics();
    assert_eq!(sut.breaker.state(), real_state(model.observed_state()), "state()");
    let m = sut.breaker.metrics();
    assert_eq!(m.state, real_state(expected.state), "metrics.state");
    assert_eq!(m.successes, expected.successes, "metrics.successes");
    assert_eq!(m.failures, expected.failures, "metrics.failures");
    assert_eq!(m.ignored, expected.ignored, "metrics.ignored");
    assert_eq!(m.rejected, expected.rejected, "metrics.rejected");
    assert_eq!(m.would_reject, expected.would_reject, "metrics.would_reject");
    assert_eq!(m.consecutive_failures, expected.consecutive_failures, "metrics.consecutive_failures");
    assert_eq!(m.opens, expected.opens, "metrics.opens");
    assert_eq!(m.probes_in_flight, expected.probes_in_flight, "metrics.probes_in_flight");
    assert_eq!(m.failure_rate, expected.failure_rate, "metrics.failure_rate");
    assert_eq!(m.slow_calls, expected.slow_calls, "metrics.slow_calls");
    assert_eq!(m.slow_call_rate, expected.slow_call_rate, "metrics.slow_call_rate");
    assert_eq!(m.time_in_state, expected.time_in_state, "metrics.time_in_state");
    assert_eq!(m.recovery_fraction, expected.recovery_fraction, "metrics.recovery_fraction");
    assert_eq!(m.hung_calls, expected.hung_calls, "metrics.hung_calls");
    let trips: Vec<TripCause> = model.trips.iter().copied().map(real_cause).collect();
    assert_eq!(*sut.trips.lock().unwrap(), trips, "Transition::tripped_by of every trip");
    assert_eq!(m.reject_probability, 0.0, "metrics.reject_probability without a throttle");
    assert_eq!(sut.breaker.is_shadow(), model.shadow, "is_shadow()");
    assert!(m.probes_in_flight <= sut.probes, "more probes in flight than slots");
    assert_eq!(sut.held.len(), model.held.len());
    for (i, (p, mp)) in sut.held.iter().zip(&model.held).enumerate() {
        assert_eq!(p.admitted_in(), real_state(mp.admitted_in), "held permit {i}");
    }
}
