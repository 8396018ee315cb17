//! Model-based tests: random sequences of operations run against the real `Breaker` (on
//! a `ManualClock`) and against a naive reference model (`model/mod.rs`) written from
//! the specification; after every step the admission decision, the state and the
//! metrics must agree.
//!
//! Three machines share the glue: one with a consecutive-failures policy, one with a
//! failure rate over a count window (alone, or or-ed with a consecutive rule), and one
//! with a failure rate over a time window and a slow-call rule (with or without a
//! consecutive rule). Every machine draws the probe lease and the cancellation rule.
//!
//! Failing cases are persisted under `tests/regressions/` and replayed first.
//! `PROPTEST_CASES` overrides the number of cases.

mod model;

use std::marker::PhantomData;
use std::time::Duration;

use breakerbox::{Breaker, ManualClock, OpenWait, OwnedPermit, Policy, Report, State};
use model::{MConfig, MOutcome, MRate, MSlow, MState, MTimeRate, MWait, Model, Observed, Op};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

const NANOS_PER_MS: u64 = 1_000_000;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

// ===== the two reference machines =====

fn wait_strategy() -> impl Strategy<Value = MWait> {
    prop_oneof![
        (1u64..=50).prop_map(|ms| MWait::Fixed { ms }),
        (1u64..=20, 1u64..=16).prop_map(|(base_ms, mult)| MWait::Exponential { base_ms, max_ms: base_ms * mult }),
    ]
}

/// The steps every reference machine shares; only their initial states differ.
macro_rules! shared_reference_steps {
    () => {
        fn transitions(state: &Model) -> BoxedStrategy<Op> {
            transitions(state)
        }

        fn apply(state: Model, op: &Op) -> Model {
            apply(state, op)
        }

        fn preconditions(state: &Model, op: &Op) -> bool {
            preconditions(state, op)
        }
    };
}

/// A policy's rules (the reference machines differ in these).
#[derive(Clone, Copy, Debug, Default)]
struct Rules {
    consecutive: Option<u32>,
    rate: Option<MRate>,
    time_rate: Option<MTimeRate>,
    slow: Option<MSlow>,
}

/// Everything but the rules, drawn alike by every machine.
#[derive(Clone, Copy, Debug)]
struct Settings {
    probes: u32,
    wait: MWait,
    probe_lease_ms: u64,
    retry_after_limit_ms: u64,
    cancel_after_ms: Option<u64>,
}

impl Settings {
    fn model(self, r: Rules) -> Model {
        Model::new(MConfig {
            consecutive: r.consecutive,
            rate: r.rate,
            time_rate: r.time_rate,
            slow: r.slow,
            probes: self.probes,
            wait: self.wait,
            probe_lease_ms: self.probe_lease_ms,
            retry_after_limit_ms: self.retry_after_limit_ms,
            cancel_after_ms: self.cancel_after_ms,
        })
    }
}

/// Probes, waits, leases, the retry-after limit and the cancellation rule.
fn settings() -> impl Strategy<Value = Settings> {
    (1u32..=4, wait_strategy(), 1u64..=100, 0u64..=200, cancel_strategy()).prop_map(
        |(probes, wait, probe_lease_ms, retry_after_limit_ms, cancel_after_ms)| Settings {
            probes,
            wait,
            probe_lease_ms,
            retry_after_limit_ms,
            cancel_after_ms,
        },
    )
}

/// A consecutive-failures policy with random threshold, probes, waits and lease.
struct ConsecutiveRef;

impl ReferenceStateMachine for ConsecutiveRef {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        (1u32..=5, settings())
            .prop_map(|(threshold, s)| s.model(Rules { consecutive: Some(threshold), ..Rules::default() }))
            .boxed()
    }

    shared_reference_steps!();
}

/// A failure rate over the last N calls, alone or or-ed with a consecutive rule.
struct RateRef;

impl ReferenceStateMachine for RateRef {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        // min_calls at most the window: more is a ConfigError (it could never trip).
        let rate = (1usize..=8).prop_flat_map(|window| (Just(window), 1u64..=window as u64, 0u64..=4));
        let rate = rate.prop_map(|(window, min_calls, quarters)| MRate { window, min_calls, quarters });
        (rate, proptest::option::of(1u32..=5), settings())
            .prop_map(|(rate, consecutive, s)| s.model(Rules { consecutive, rate: Some(rate), ..Rules::default() }))
            .boxed()
    }

    shared_reference_steps!();
}

/// A failure rate over a time window and a slow-call rate over a count window, alone or
/// or-ed with a consecutive rule.
struct TimeSlowRef;

impl ReferenceStateMachine for TimeSlowRef {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        let time_rate = (1u64..=200, 1u64..=8, 1u64..=6, 0u64..=4)
            .prop_map(|(span_ms, buckets, min_calls, quarters)| MTimeRate { span_ms, buckets, min_calls, quarters });
        let slow = (1usize..=8).prop_flat_map(|window| (1u64..=60, Just(window), 1u64..=window as u64, 0u64..=4));
        let slow = slow.prop_map(|(slower_than_ms, window, min_calls, quarters)| MSlow {
            slower_than_ms,
            window,
            min_calls,
            quarters,
        });
        let rules = (proptest::option::of(time_rate), proptest::option::of(slow), proptest::option::of(1u32..=5))
            .prop_filter("at least one rule", |(t, s, c)| t.is_some() || s.is_some() || c.is_some());
        (rules, settings())
            .prop_map(|((time_rate, slow, consecutive), s)| {
                s.model(Rules { consecutive, time_rate, slow, ..Rules::default() })
            })
            .boxed()
    }

    shared_reference_steps!();
}

/// The cancellation rule: off, or a threshold near the leases and waits.
fn cancel_strategy() -> BoxedStrategy<Option<u64>> {
    proptest::option::weighted(0.7, 0u64..=150).boxed()
}

/// Outcomes, weighted by where the breaker is, so that runs reach every state often:
/// failures trip a closed breaker, successes close a half-open one.
fn outcome_strategy(state: MState) -> BoxedStrategy<MOutcome> {
    let (failure, success) = if state == MState::HalfOpen { (1, 4) } else { (3, 2) };
    prop_oneof![failure => Just(MOutcome::Failure), success => Just(MOutcome::Success), 1 => Just(MOutcome::Ignored)]
        .boxed()
}

fn transitions(state: &Model) -> BoxedStrategy<Op> {
    // ForcedOpen and Disabled hold until a reset: enter them rarely, leave them soon.
    let manual = matches!(state.state, MState::ForcedOpen | MState::Disabled);
    let mut choices: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (6, Just(Op::Acquire).boxed()),
        (3, prop_oneof![0u64..=5, 0u64..=120].prop_map(Op::AdvanceMs).boxed()),
        (if manual { 6 } else { 1 }, Just(Op::Reset).boxed()),
        (1, Just(Op::ForceOpen).boxed()),
        (1, Just(Op::Disable).boxed()),
    ];
    let held = state.held.len();
    if held > 0 {
        // Half the time the newest permit (most often a current one, a probe when
        // half-open), else any, stale ones included.
        let idx = prop_oneof![Just(held - 1), 0..held];
        let hint = proptest::option::weighted(0.2, 0u64..=300);
        // Half the time the breaker times the call; else the caller says how long it took.
        let duration = proptest::option::weighted(0.5, 0u64..=80);
        let record = (idx.clone(), outcome_strategy(state.state), hint, duration).prop_map(
            |(idx, outcome, hint_ms, duration_ms)| Op::Record {
                idx,
                outcome,
                hint_ms: if outcome == MOutcome::Failure { hint_ms } else { None },
                duration_ms,
            },
        );
        choices.push((8, record.boxed()));
        choices.push((1, idx.prop_map(|idx| Op::Drop { idx }).boxed()));
    }
    // Land exactly on (and just before) the deadlines, where off-by-one errors live.
    let deadline = match state.state {
        MState::Open => Some(state.open_until),
        MState::HalfOpen => state.earliest_lease().map(|(_, until)| until),
        _ => None,
    };
    if let Some(d) = deadline.filter(|d| *d > state.now) {
        let ms = (d - state.now).div_ceil(NANOS_PER_MS);
        choices.push((2, Just(Op::AdvanceMs(ms)).boxed()));
        choices.push((1, Just(Op::AdvanceMs(ms - 1)).boxed()));
    }
    Union::new_weighted(choices).boxed()
}

fn apply(mut state: Model, op: &Op) -> Model {
    state.apply(*op);
    state
}

fn preconditions(state: &Model, op: &Op) -> bool {
    match op {
        Op::Record { idx, .. } | Op::Drop { idx } => *idx < state.held.len(),
        _ => true,
    }
}

// ===== the real breaker =====

struct Sut {
    clock: ManualClock,
    breaker: Breaker,
    held: Vec<OwnedPermit>,
    probes: u32,
}

struct BreakerTest<R>(PhantomData<R>);

fn real_state(s: MState) -> State {
    match s {
        MState::Closed => State::Closed,
        MState::Open => State::Open,
        MState::HalfOpen => State::HalfOpen,
        MState::ForcedOpen => State::ForcedOpen,
        MState::Disabled => State::Disabled,
    }
}

fn build(c: &MConfig, clock: &ManualClock) -> Breaker {
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
    Breaker::builder()
        .name("model")
        .policy(policy.expect("the model always has a rule"))
        .open_wait(wait)
        .half_open_probes(c.probes)
        .probe_lease(Duration::from_millis(c.probe_lease_ms))
        .cancel_counts_after(c.cancel_after_ms.map(Duration::from_millis))
        .retry_after_limit(Duration::from_millis(c.retry_after_limit_ms))
        .clock(clock.clone())
        .build()
        .expect("valid settings")
}

impl<R> StateMachineTest for BreakerTest<R>
where
    R: ReferenceStateMachine<State = Model, Transition = Op>,
{
    type SystemUnderTest = Sut;
    type Reference = R;

    fn init_test(model: &Model) -> Sut {
        let clock = ManualClock::new();
        let breaker = build(&model.config, &clock);
        Sut { clock, breaker, held: Vec::new(), probes: model.config.probes }
    }

    fn apply(mut sut: Sut, model: &Model, op: Op) -> Sut {
        match op {
            Op::Acquire => {
                let before = sut.breaker.state();
                let got = sut.breaker.try_acquire_owned();
                // Invariants that hold whatever the model says.
                match before {
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
                    (Err(r), Observed::Rejected { state, retry_after }) => {
                        assert_eq!(r.state(), real_state(state), "rejection state: {r}");
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
        }
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
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
        assert_eq!(m.consecutive_failures, expected.consecutive_failures, "metrics.consecutive_failures");
        assert_eq!(m.opens, expected.opens, "metrics.opens");
        assert_eq!(m.probes_in_flight, expected.probes_in_flight, "metrics.probes_in_flight");
        assert_eq!(m.failure_rate, expected.failure_rate, "metrics.failure_rate");
        assert_eq!(m.slow_calls, expected.slow_calls, "metrics.slow_calls");
        assert_eq!(m.slow_call_rate, expected.slow_call_rate, "metrics.slow_call_rate");
        assert_eq!(m.time_in_state, expected.time_in_state, "metrics.time_in_state");
        assert!(m.probes_in_flight <= sut.probes, "more probes in flight than slots");
        assert_eq!(sut.held.len(), model.held.len());
        for (i, (p, mp)) in sut.held.iter().zip(&model.held).enumerate() {
            assert_eq!(p.admitted_in(), real_state(mp.admitted_in), "held permit {i}");
        }
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    /// Consecutive failures, probes, fixed and exponential waits, hints, leases, stale
    /// reports, manual transitions: the breaker agrees with the model at every step.
    #[test]
    fn breaker_matches_the_model_with_a_consecutive_policy(sequential 1..80 => BreakerTest<ConsecutiveRef>);

    /// The same, with a failure rate over a count window (alone or or-ed with a
    /// consecutive rule): the window is exact in serial execution.
    #[test]
    fn breaker_matches_the_model_with_a_count_window_rate_policy(sequential 1..80 => BreakerTest<RateRef>);

    /// The same, with a failure rate over a time window and a slow-call rule (durations
    /// given by the caller or timed by the breaker), alone or with a consecutive rule.
    #[test]
    fn breaker_matches_the_model_with_time_windows_and_slow_calls(sequential 1..80 => BreakerTest<TimeSlowRef>);
}
