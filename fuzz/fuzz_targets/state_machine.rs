//! Random operation sequences on a `Breaker` over a `ManualClock`, against the reference
//! breaker of the model-based test: the same model (`crates/breakerbox/tests/model/mod.rs`)
//! and the same glue (`model/real.rs`: build the breaker from the model's settings,
//! apply one operation, compare state, admissions, rejections, every metric and every
//! trip cause after each step), included by path rather than copied.
//!
//! What the fuzzer adds to the proptest: coverage-guided sequences of any length (up to
//! `MAX_OPS`), settings a little past the proptest's ranges, and one operation the
//! proptest lacks: a report of `Report::overloaded()` (with or without a hint), which
//! without a throttle must count exactly as a failure (the model records it as one).
//! Adaptive throttling is left out, as in the proptest: its admissions are random draws.

#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/breakerbox/tests/model/mod.rs"]
mod model;
#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/breakerbox/tests/model/real.rs"]
mod real;

use std::time::Duration;

use arbitrary::Arbitrary;
use breakerbox::Report;
use libfuzzer_sys::fuzz_target;
use model::{MConfig, MOutcome, MRamp, MRate, MSlow, MState, MTimeRate, MWait, Model, Op};

const NANOS_PER_MS: u64 = 1_000_000;
const MAX_OPS: usize = 400;

/// The breaker's settings, each mapped onto its valid range.
#[derive(Arbitrary, Debug)]
struct Setup {
    /// Which rules: consecutive; a count-window rate (with or without consecutive); a
    /// time-window rate and/or slow calls (with or without consecutive).
    rules: u8,
    consecutive: u8,
    rate: (u8, u8, u8),
    time_rate: (u8, u8, u8, u8),
    slow: (u8, u8, u8, u8),
    probes: u8,
    wait: (bool, u8, u8),
    probe_lease_ms: u8,
    retry_after_limit_ms: u8,
    cancel_after_ms: Option<u8>,
    ramp: Option<(u32, u16, u16, u8, u8, u8, u16)>,
    shadow: bool,
    hung_after: Option<(bool, u32)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzOutcome {
    Success,
    Failure,
    Ignored,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzOp {
    Acquire,
    Record {
        idx: u8,
        outcome: FuzzOutcome,
        hint_ms: Option<u16>,
        duration_ms: Option<u8>,
    },
    /// `Report::overloaded()`: a failure to everything but a throttle.
    RecordOverloaded {
        idx: u8,
        hint_ms: Option<u16>,
        duration_ms: Option<u8>,
    },
    /// Drops a permit unreported (the cancellation rule decides).
    Drop {
        idx: u8,
    },
    AdvanceMs(u8),
    AdvanceLongMs(u16),
    /// To the current deadline (open wait, earliest lease, ramp end, next hung call),
    /// or a millisecond before it.
    AdvanceToDeadline {
        before: bool,
    },
    Reset,
    ForceOpen,
    Disable,
    /// `recover(elapsed)`, elapsed as a share (in 2^-15ths) of the ramp's duration.
    Recover(u16),
    SetShadow(bool),
}

/// `x` mapped onto `lo..=hi`.
fn within(x: u64, lo: u64, hi: u64) -> u64 {
    lo + x % (hi - lo + 1)
}

fn fraction(x: u16, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * f64::from(x) / f64::from(u16::MAX)
}

impl Setup {
    fn config(&self) -> MConfig {
        let u = |x: u8| u64::from(x);
        let mut consecutive = Some(within(u(self.consecutive), 1, 8) as u32);
        let (mut rate, mut time_rate, mut slow) = (None, None, None);
        match self.rules % 3 {
            0 => {}
            1 => {
                let window = within(u(self.rate.0), 1, 12);
                rate = Some(MRate {
                    window: window as usize,
                    min_calls: within(u(self.rate.1), 1, window),
                    quarters: within(u(self.rate.2), 0, 4),
                });
                consecutive = consecutive.filter(|_| self.consecutive & 0x80 != 0);
            }
            _ => {
                let (span, buckets, min_calls, quarters) = self.time_rate;
                if span & 1 == 0 {
                    time_rate = Some(MTimeRate {
                        span_ms: within(u(span), 1, 250),
                        buckets: within(u(buckets), 1, 10),
                        min_calls: within(u(min_calls), 1, 8),
                        quarters: within(u(quarters), 0, 4),
                    });
                }
                let (slower_than, window, min_calls, quarters) = self.slow;
                if slower_than & 1 == 0 || time_rate.is_none() {
                    let window = within(u(window), 1, 12);
                    slow = Some(MSlow {
                        slower_than_ms: within(u(slower_than), 1, 80),
                        window: window as usize,
                        min_calls: within(u(min_calls), 1, window),
                        quarters: within(u(quarters), 0, 4),
                    });
                }
                consecutive = consecutive.filter(|_| self.consecutive & 0x80 != 0);
            }
        }
        let (exponential, base, mult) = self.wait;
        let wait = if exponential {
            let base_ms = within(u(base), 1, 30);
            MWait::Exponential { base_ms, max_ms: base_ms * within(u(mult), 1, 32) }
        } else {
            MWait::Fixed { ms: within(u(base), 1, 80) }
        };
        let ramp = self.ramp.map(|(duration, min_fraction, aggression, window, min_calls, abort_after, rate)| {
            let window = within(u(window), 1, 19) as usize;
            MRamp {
                duration_ns: within(u64::from(duration), 1, 500 * NANOS_PER_MS),
                min_fraction: match min_fraction % 8 {
                    0 => 1.0,
                    1 => 0.1,
                    _ => fraction(min_fraction, 0.01, 1.0),
                },
                aggression: if aggression % 4 == 0 { 1.0 } else { fraction(aggression, 0.2, 5.0) },
                window,
                min_calls: within(u(min_calls), 1, window as u64) as usize,
                abort_after: within(u(abort_after), 1, window as u64) as usize,
                abort_failure_rate: match rate % 5 {
                    0 => 1.0,
                    1 => 0.5,
                    _ => fraction(rate, 0.05, 1.0),
                },
            }
        });
        let hung_after_ns = self.hung_after.map(|(whole_ms, n)| {
            if whole_ms { within(u64::from(n), 1, 200) * NANOS_PER_MS } else { within(u64::from(n), 1, 3_000_000) }
        });
        MConfig {
            consecutive,
            rate,
            time_rate,
            slow,
            probes: within(u(self.probes), 1, 6) as u32,
            wait,
            probe_lease_ms: within(u(self.probe_lease_ms), 1, 120),
            retry_after_limit_ms: within(u(self.retry_after_limit_ms), 0, 250),
            cancel_after_ms: self.cancel_after_ms.map(|ms| within(u(ms), 0, 180)),
            ramp,
            shadow: self.shadow,
            hung_after_ns,
        }
    }
}

fn outcome(o: FuzzOutcome) -> MOutcome {
    match o {
        FuzzOutcome::Success => MOutcome::Success,
        FuzzOutcome::Failure => MOutcome::Failure,
        FuzzOutcome::Ignored => MOutcome::Ignored,
    }
}

/// The next deadline of the model, as the proptest's generator aims at it.
fn deadline(m: &Model) -> Option<u64> {
    let state = match m.state {
        MState::Open => Some(m.open_until),
        MState::HalfOpen => m.earliest_lease().map(|(_, until)| until),
        MState::Recovering => Some(m.ramp_end),
        _ => None,
    };
    let hung = m
        .hung_width()
        .and_then(|(t, w)| m.flight.iter().filter(|f| !f.counted).map(|f| (f.start / w + 1) * w + t).min());
    [state, hung].into_iter().flatten().filter(|d| *d > m.now).min()
}

/// The model's operation for `op`, `None` where it does not apply (no permit held).
fn to_op(m: &Model, op: FuzzOp) -> Option<Op> {
    let held = m.held.len();
    let pick = |idx: u8| (held > 0).then(|| usize::from(idx) % held);
    let hint = |o: MOutcome, h: Option<u16>| h.filter(|_| o == MOutcome::Failure).map(|h| u64::from(h) % 400);
    Some(match op {
        FuzzOp::Acquire => Op::Acquire,
        FuzzOp::Record { idx, outcome: o, hint_ms, duration_ms } => {
            let o = outcome(o);
            Op::Record {
                idx: pick(idx)?,
                outcome: o,
                hint_ms: hint(o, hint_ms),
                duration_ms: duration_ms.map(|d| u64::from(d) % 100),
            }
        }
        FuzzOp::RecordOverloaded { idx, hint_ms, duration_ms } => Op::Record {
            idx: pick(idx)?,
            outcome: MOutcome::Failure,
            hint_ms: hint(MOutcome::Failure, hint_ms),
            duration_ms: duration_ms.map(|d| u64::from(d) % 100),
        },
        FuzzOp::Drop { idx } => Op::Drop { idx: pick(idx)? },
        FuzzOp::AdvanceMs(ms) => Op::AdvanceMs(u64::from(ms) % 130),
        FuzzOp::AdvanceLongMs(ms) => Op::AdvanceMs(u64::from(ms)),
        FuzzOp::AdvanceToDeadline { before } => {
            let ms = (deadline(m)? - m.now).div_ceil(NANOS_PER_MS);
            Op::AdvanceMs(if before { ms - 1 } else { ms })
        }
        FuzzOp::Reset => Op::Reset,
        FuzzOp::ForceOpen => Op::ForceOpen,
        FuzzOp::Disable => Op::Disable,
        FuzzOp::Recover(share) => {
            let ramp_ns = m.config.ramp.map_or(20 * NANOS_PER_MS, |r| r.duration_ns);
            Op::Recover(Duration::from_nanos(u64::try_from(u128::from(ramp_ns) * u128::from(share) >> 15).unwrap()))
        }
        FuzzOp::SetShadow(on) => Op::SetShadow(on),
    })
}

fuzz_target!(|input: (Setup, Vec<FuzzOp>)| {
    let (setup, ops) = input;
    let mut model = Model::new(setup.config());
    let mut sut = real::init(&model);
    real::check(&sut, &model);
    for fuzz_op in ops.into_iter().take(MAX_OPS) {
        let Some(op) = to_op(&model, fuzz_op) else { continue };
        model.apply(op);
        match (fuzz_op, op) {
            (FuzzOp::RecordOverloaded { .. }, Op::Record { idx, hint_ms, duration_ms, .. }) => {
                let mut report = Report::overloaded();
                if let Some(ms) = hint_ms {
                    report = report.with_retry_after(Duration::from_millis(ms));
                }
                if let Some(ms) = duration_ms {
                    report = report.with_duration(Duration::from_millis(ms));
                }
                sut.held.remove(idx).record(report);
            }
            _ => real::apply(&mut sut, &model, op),
        }
        real::check(&sut, &model);
    }
});
