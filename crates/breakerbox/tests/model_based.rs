//! Model-based tests: random sequences of operations run against the real `Breaker` (on
//! a `ManualClock`) and against a naive reference model (`model/mod.rs`) written from
//! the specification; after every step the admission decision, the state and the
//! metrics must agree.
//!
//! Three machines share the glue: one with a consecutive-failures policy, one with a
//! failure rate over a count window (alone, or or-ed with a consecutive rule), and one
//! with a failure rate over a time window and a slow-call rule (with or without a
//! consecutive rule). Every machine draws the probe lease, the cancellation rule, a
//! recovery ramp (or none), shadow mode (on or off at build, and switched at run time)
//! and the in-flight age rule (`hung_after`, or none).
//!
//! Adaptive throttling is left out: its admissions are random draws, which no plain
//! model can predict (`tests/throttle.rs` checks it statistically).
//!
//! The glue that drives the real breaker and compares it with the model is
//! `model/real.rs`, shared with the `state_machine` fuzz target (`fuzz/`).
//!
//! Failing cases are persisted in `tests/model_based.regressions` and replayed first.
//! `PROPTEST_CASES` overrides the number of cases.

mod model;
#[path = "model/real.rs"]
mod real;

use std::marker::PhantomData;
use std::time::Duration;

use model::{MConfig, MOutcome, MRamp, MRate, MSlow, MState, MTimeRate, MWait, Model, Observed, Op};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use real::Sut;

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
    ramp: Option<MRamp>,
    shadow: bool,
    hung_after_ns: Option<u64>,
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
            ramp: self.ramp,
            shadow: self.shadow,
            hung_after_ns: self.hung_after_ns,
        })
    }
}

/// Probes, waits, leases, the retry-after limit, the cancellation rule, the ramp,
/// shadow mode and the in-flight age rule.
fn settings() -> impl Strategy<Value = Settings> {
    let shadow = proptest::bool::weighted(0.15);
    let rest = (ramp_strategy(), shadow, hung_strategy());
    (1u32..=4, wait_strategy(), 1u64..=100, 0u64..=200, cancel_strategy(), rest).prop_map(
        |(probes, wait, probe_lease_ms, retry_after_limit_ms, cancel_after_ms, (ramp, shadow, hung_after_ns))| {
            Settings {
                probes,
                wait,
                probe_lease_ms,
                retry_after_limit_ms,
                cancel_after_ms,
                ramp,
                shadow,
                hung_after_ns,
            }
        },
    )
}

/// The in-flight age rule: off, or a threshold near the clock's steps (mostly whole
/// milliseconds, some in nanoseconds: under 1.05 ms the bucket is the narrowest, 2^18
/// ns, wider than a quarter of the threshold).
fn hung_strategy() -> BoxedStrategy<Option<u64>> {
    let ns = prop_oneof![
        3 => (1u64..=40).prop_map(|ms| ms * NANOS_PER_MS),
        1 => (41u64..=150).prop_map(|ms| ms * NANOS_PER_MS),
        1 => 1u64..=3_000_000,
    ];
    proptest::option::weighted(0.35, ns).boxed()
}

/// The recovery ramp: none, or one with every setting drawn over its valid range. Its
/// duration is in microseconds (the clock moves in milliseconds, so the end's rounding
/// up matters), mostly short enough for a run to see it end.
fn ramp_strategy() -> BoxedStrategy<Option<MRamp>> {
    let duration_ns = prop_oneof![
        3 => (1u64..=150_000).prop_map(|us| us * 1_000),
        1 => (1u64..=400).prop_map(|ms| ms * NANOS_PER_MS),
        1 => 1u64..=2_000_000,
    ];
    let min_fraction = prop_oneof![1 => Just(1.0), 1 => Just(0.1), 4 => 0.01f64..=1.0];
    let aggression = prop_oneof![2 => Just(1.0), 3 => 0.2f64..=5.0];
    let abort_failure_rate = prop_oneof![1 => Just(1.0), 1 => Just(0.5), 3 => 0.05f64..=1.0];
    // Mostly small windows, so that runs see ramps with enough outcomes to count.
    let window = prop_oneof![3 => 1usize..=5, 1 => 1usize..=19];
    let counts = window.prop_flat_map(|window| (Just(window), 1..=window, 1..=window));
    let ramp = (duration_ns, min_fraction, aggression, counts, abort_failure_rate).prop_map(
        |(duration_ns, min_fraction, aggression, (window, min_calls, abort_after), abort_failure_rate)| MRamp {
            duration_ns,
            min_fraction,
            aggression,
            window,
            min_calls,
            abort_after,
            abort_failure_rate,
        },
    );
    proptest::option::weighted(0.6, ramp).boxed()
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
/// failures trip a closed breaker, successes close a half-open one (or begin its ramp),
/// a ramp sees both and so ends or aborts.
fn outcome_strategy(state: MState) -> BoxedStrategy<MOutcome> {
    let (failure, success) = match state {
        MState::HalfOpen => (1, 4),
        MState::Recovering => (2, 3),
        _ => (3, 2),
    };
    prop_oneof![failure => Just(MOutcome::Failure), success => Just(MOutcome::Success), 1 => Just(MOutcome::Ignored)]
        .boxed()
}

fn transitions(state: &Model) -> BoxedStrategy<Op> {
    // ForcedOpen and Disabled hold until a reset: enter them rarely, leave them soon.
    let manual = matches!(state.state, MState::ForcedOpen | MState::Disabled);
    // A ramp admits a fraction of the calls: ask it often, so that it admits some.
    let acquire = if state.state == MState::Recovering { 24 } else { 12 };
    let mut choices: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (acquire, Just(Op::Acquire).boxed()),
        (6, prop_oneof![0u64..=5, 0u64..=120].prop_map(Op::AdvanceMs).boxed()),
        (if manual { 12 } else { 1 }, Just(Op::Reset).boxed()),
        (1, Just(Op::ForceOpen).boxed()),
        (1, Just(Op::Disable).boxed()),
        (1, any::<bool>().prop_map(Op::SetShadow).boxed()),
    ];
    // A coordinator's recover: within the ramp (often), at or past its end, or on a
    // breaker without a ramp (which closes).
    let ramp_ns = state.config.ramp.map_or(20 * NANOS_PER_MS, |r| r.duration_ns);
    let elapsed = prop_oneof![
        2 => Just(0),
        4 => 0..ramp_ns,
        1 => Just(ramp_ns),
        1 => ramp_ns..=ramp_ns.saturating_mul(2),
    ];
    let recover = if state.config.ramp.is_some() { 2 } else { 1 };
    choices.push((recover, elapsed.prop_map(|ns| Op::Recover(Duration::from_nanos(ns))).boxed()));
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
        // Probes and ramp calls report often, so that half-open and the ramp decide.
        let records = if matches!(state.state, MState::HalfOpen | MState::Recovering) { 24 } else { 16 };
        choices.push((records, record.boxed()));
        choices.push((2, idx.prop_map(|idx| Op::Drop { idx }).boxed()));
    }
    // Land exactly on (and just before) the deadlines, where off-by-one errors live.
    let deadline = match state.state {
        MState::Open => Some(state.open_until),
        MState::HalfOpen => state.earliest_lease().map(|(_, until)| until),
        MState::Recovering => Some(state.ramp_end),
        _ => None,
    };
    if let Some(d) = deadline.filter(|d| *d > state.now) {
        let ms = (d - state.now).div_ceil(NANOS_PER_MS);
        let exact = if state.state == MState::Open { 8 } else { 4 };
        choices.push((exact, Just(Op::AdvanceMs(ms)).boxed()));
        choices.push((2, Just(Op::AdvanceMs(ms - 1)).boxed()));
    }
    // Land on (and just before) the instant the oldest tracked call is due, so that
    // calls are counted as hung while they are held.
    if let Some((t, w)) = state.hung_width()
        && let Some(due) = state.flight.iter().filter(|f| !f.counted).map(|f| (f.start / w + 1) * w + t).min()
        && due > state.now
    {
        let ms = (due - state.now).div_ceil(NANOS_PER_MS);
        choices.push((4, Just(Op::AdvanceMs(ms)).boxed()));
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

// ===== the real breaker (the glue in `model/real.rs`, shared with the fuzz target) =====

struct BreakerTest<R>(PhantomData<R>);

impl<R> StateMachineTest for BreakerTest<R>
where
    R: ReferenceStateMachine<State = Model, Transition = Op>,
{
    type SystemUnderTest = Sut;
    type Reference = R;

    fn init_test(model: &Model) -> Sut {
        real::init(model)
    }

    fn apply(mut sut: Sut, model: &Model, op: Op) -> Sut {
        real::apply(&mut sut, model, op);
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        real::check(sut, model);
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

// ===== the smallest cases of disagreements found =====

/// A breaker that trips on one failure, waits 1 ms and closes on one probe.
fn one_failure_trips(ramp: Option<MRamp>) -> MConfig {
    MConfig {
        consecutive: Some(1),
        rate: None,
        time_rate: None,
        slow: None,
        probes: 1,
        wait: MWait::Fixed { ms: 1 },
        probe_lease_ms: 1,
        retry_after_limit_ms: 0,
        cancel_after_ms: None,
        ramp,
        shadow: false,
        hung_after_ns: None,
    }
}

/// Replays `ops` on the breaker and the model, comparing them after every step.
fn replay(config: MConfig, ops: Vec<Op>) {
    BreakerTest::<ConsecutiveRef>::test_sequential(Config::default(), Model::new(config), ops, None);
}

/// An open breaker whose wait has passed reads as half-open, which admits only probes:
/// `Metrics::recovery_fraction` is 0.0 ("1.0 when closed or disabled, 0.0 otherwise"),
/// as it is once the probe is admitted. (The core reports 1.0: the shortcut for a ramp
/// past its end catches an open wait past its end too.)
#[test]
fn recovery_fraction_of_an_open_breaker_past_its_wait_is_zero() {
    let failure = Op::Record { idx: 0, outcome: MOutcome::Failure, hint_ms: None, duration_ms: None };
    replay(one_failure_trips(None), vec![Op::Acquire, failure, Op::AdvanceMs(1)]);
}

/// A ramp past its end reads as closed, and a closed breaker's streak is the current
/// one: `Metrics::consecutive_failures` is 0, as it is after the next call (the streak
/// that tripped it is reported "until the breaker closes"). (The core goes on reporting
/// the streak that tripped it until a call arrives.)
#[test]
fn a_ramp_past_its_end_reports_a_fresh_streak() {
    let ramp = MRamp {
        duration_ns: NANOS_PER_MS,
        min_fraction: 0.5,
        aggression: 1.0,
        window: 4,
        min_calls: 2,
        abort_after: 2,
        abort_failure_rate: 0.5,
    };
    let failure = Op::Record { idx: 0, outcome: MOutcome::Failure, hint_ms: None, duration_ms: None };
    replay(one_failure_trips(Some(ramp)), vec![Op::Acquire, failure, Op::Recover(Duration::ZERO), Op::AdvanceMs(1)]);
}

// ===== what the generated scenarios reach =====

/// A situation a step can reach, judged from the model before the step, the step, and
/// the model after it.
type Reaches = fn(&Model, Op, &Model) -> bool;

/// Whether the step's acquire was admitted, as a call the breaker meant to admit.
fn admitted(m: &Model) -> bool {
    matches!(m.last, Observed::Admitted(_))
}

/// A report of a permit admitted in `state` in the current generation, not ignored.
fn counted_report(before: &Model, op: Op, state: MState) -> bool {
    matches!(op, Op::Record { idx, outcome, .. }
        if before.held[idx].admitted_in == state
            && before.held[idx].generation == before.generation
            && outcome != MOutcome::Ignored)
}

/// What the generated cases must reach, and the least share of cases (per mille) that
/// must reach it on every machine. The shares are counted on the model alone from a
/// fixed seed; the floors are about half of what the generators reach.
const SITUATIONS: [(&str, u32, Reaches); 24] = [
    ("a policy trips", 150, |b, _, a| b.state == MState::Closed && a.state == MState::Open),
    ("an open wait passes", 120, |_, _, a| a.observed_state() == MState::HalfOpen && a.state == MState::Open),
    ("a probe is admitted", 100, |b, _, a| b.state != MState::HalfOpen && a.state == MState::HalfOpen),
    ("probes close the breaker", 25, |b, _, a| b.state == MState::HalfOpen && a.state == MState::Closed),
    ("forced open or disabled", 300, |_, _, a| matches!(a.state, MState::ForcedOpen | MState::Disabled)),
    ("a ramp is configured", 450, |b, _, _| b.config.ramp.is_some()),
    ("recovering", 250, |_, _, a| a.state == MState::Recovering),
    ("probes begin the ramp", 25, |b, _, a| b.state == MState::HalfOpen && a.state == MState::Recovering),
    ("recover() begins a ramp part way", 150, |_, op, a| {
        matches!(op, Op::Recover(e) if !e.is_zero()) && a.state == MState::Recovering
    }),
    ("recover() closes", 150, |_, op, a| matches!(op, Op::Recover(_)) && a.state == MState::Closed),
    ("the ramp admits a call", 120, |b, op, a| {
        b.state == MState::Recovering && op == Op::Acquire && a.state == MState::Recovering && admitted(a)
    }),
    ("the ramp refuses a call", 150, |b, op, a| b.state == MState::Recovering && op == Op::Acquire && !admitted(a)),
    ("a ramp's call reports", 75, |b, op, _| counted_report(b, op, MState::Recovering)),
    ("a ramp's call reports late", 20, |b, op, _| {
        matches!(op, Op::Record { idx, .. } if b.held[idx].admitted_in == MState::Recovering
            && b.held[idx].generation != b.generation)
    }),
    ("the ramp completes", 120, |b, op, a| {
        op == Op::Acquire && b.state == MState::Recovering && a.state == MState::Closed
    }),
    ("a tested ramp completes", 8, |b, op, a| {
        op == Op::Acquire
            && b.state == MState::Recovering
            && a.state == MState::Closed
            && b.config.ramp.is_some_and(|r| b.ramp_history.len() >= r.min_calls)
    }),
    ("the ramp aborts", 25, |b, _, a| b.state == MState::Recovering && a.state == MState::Open),
    ("shadow mode admits a call it refuses", 120, |_, _, a| matches!(a.last, Observed::ShadowAdmitted { .. })),
    (
        "a shadow admission reports",
        100,
        |b, op, _| matches!(op, Op::Record { idx, .. } if b.held[idx].admitted_in == MState::Open),
    ),
    ("in-flight age is configured", 150, |b, _, _| b.config.hung_after_ns.is_some()),
    ("a hung call counted", 60, |b, _, a| a.hung_recorded > b.hung_recorded),
    ("a hung call completes", 70, |b, op, _| {
        matches!(op, Op::Record { idx, .. } | Op::Drop { idx }
            if b.flight.iter().any(|f| f.id == b.held[idx].id && f.counted))
    }),
    ("hung calls of an older generation left out", 10, |b, _, a| a.hung_discarded > b.hung_discarded),
    ("a trip by hung calls", 25, |b, _, a| {
        a.trips.len() > b.trips.len() && a.trips.last() == Some(&model::MCause::HungCalls)
    }),
];

/// Replays `cases` generated cases of `R` on the model alone; how many reach each
/// situation.
fn reached<R: ReferenceStateMachine<State = Model, Transition = Op>>(cases: u32) -> Vec<u32> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = R::sequential_strategy(1..80);
    let mut counts = vec![0; SITUATIONS.len()];
    for _ in 0..cases {
        let (mut model, ops, _) = strategy.new_tree(&mut runner).expect("a case").current();
        let mut seen = vec![false; SITUATIONS.len()];
        for op in ops {
            let before = model.clone();
            model.apply(op);
            for (seen, (_, _, reaches)) in seen.iter_mut().zip(&SITUATIONS) {
                *seen |= reaches(&before, op, &model);
            }
        }
        for (count, seen) in counts.iter_mut().zip(seen) {
            *count += u32::from(seen);
        }
    }
    counts
}

/// The generators reach the ramp, shadow mode and in-flight age (and the older states)
/// often: each situation above is reached by at least its share of the cases.
/// `--nocapture` prints the shares.
#[test]
fn generated_cases_reach_the_ramp_and_shadow_mode() {
    const CASES: u32 = 600;
    for (machine, counts) in [
        ("consecutive", reached::<ConsecutiveRef>(CASES)),
        ("count window", reached::<RateRef>(CASES)),
        ("time window and slow calls", reached::<TimeSlowRef>(CASES)),
    ] {
        for ((situation, min, _), count) in SITUATIONS.iter().zip(counts) {
            let per_mille = count * 1_000 / CASES;
            eprintln!("{machine:>26}: {per_mille:>4} ‰ {situation}");
            assert!(per_mille >= *min, "{machine}: {situation}: {per_mille} ‰ of the cases, below {min} ‰");
        }
    }
}
