//! A naive reference circuit breaker, written from the specification alone.
//!
//! No atomics, no packed words, no code or types shared with the crate: an enum for the
//! state, an explicit open-until time, plain counters, and a `VecDeque` for the count
//! window. The model-based tests drive this and the real breaker with the same
//! operations and compare everything observable after every step.
//!
//! The specification, as implemented here:
//!
//! - Closed: a failure extends the streak, a success resets it, an ignored outcome
//!   touches nothing. The consecutive rule trips on the n-th consecutive failure; the
//!   rate rule keeps the last N counted (non-ignored) outcomes of the current closed
//!   generation and, when a failure is recorded, trips if calls >= min_calls and
//!   failures / calls >= threshold.
//! - Open for the open wait (fixed, or base doubling per consecutive opening up to max,
//!   lengthened to a retry-after hint up to the limit), deadline rounded up to the
//!   millisecond. The first acquire once it has passed moves to HalfOpen and takes a
//!   probe slot; `state()` already reports HalfOpen before that.
//! - HalfOpen admits while in_flight + successes < probes; closes after `probes`
//!   successes; any failure reopens; ignored or dropped frees the slot. If every slot is
//!   taken and the probe lease has run out, the next acquire starts a new round.
//! - Every transition starts a new generation; a permit's report from an older
//!   generation is counted in the totals and changes nothing else.
//! - reset() closes (consecutive openings back to 0), force_open() rejects everything,
//!   disable() admits everything and never trips.

use std::collections::VecDeque;
use std::time::Duration;

const NANOS_PER_MS: u64 = 1_000_000;

/// The state, as the specification names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MState {
    Closed,
    Open,
    HalfOpen,
    ForcedOpen,
    Disabled,
}

/// How a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MOutcome {
    Success,
    Failure,
    Ignored,
}

/// The open wait, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MWait {
    Fixed { ms: u64 },
    Exponential { base_ms: u64, max_ms: u64 },
}

impl MWait {
    /// The wait after the `opens`-th consecutive opening (1-based), in nanoseconds.
    fn nanos(self, opens: u32) -> u128 {
        match self {
            MWait::Fixed { ms } => u128::from(ms) * u128::from(NANOS_PER_MS),
            MWait::Exponential { base_ms, max_ms } => {
                let base = u128::from(base_ms) * u128::from(NANOS_PER_MS);
                let max = u128::from(max_ms) * u128::from(NANOS_PER_MS);
                // 2^(opens-1), computed without ever overflowing: past 2^64 it is surely > max.
                let exp = opens.saturating_sub(1);
                if exp >= 64 { max } else { (base << exp).min(max) }
            }
        }
    }
}

/// A failure-rate rule over the last `window` calls; the threshold is `quarters / 4`, so
/// that the comparison is exact in integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MRate {
    pub(crate) window: usize,
    pub(crate) min_calls: u64,
    pub(crate) quarters: u64,
}

impl MRate {
    pub(crate) fn threshold(self) -> f64 {
        self.quarters as f64 / 4.0
    }
}

/// The breaker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MConfig {
    /// The consecutive-failures threshold, if the policy has that rule.
    pub(crate) consecutive: Option<u32>,
    /// The failure-rate rule, if the policy has one.
    pub(crate) rate: Option<MRate>,
    pub(crate) probes: u32,
    pub(crate) wait: MWait,
    pub(crate) probe_lease_ms: u64,
    pub(crate) retry_after_limit_ms: u64,
}

/// A permit the model handed out: the generation and state it was admitted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MPermit {
    pub(crate) generation: u64,
    pub(crate) admitted_in: MState,
}

/// What the last operation observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    Nothing,
    Admitted(MState),
    Rejected { state: MState, retry_after: Option<Duration> },
}

/// An operation on the breaker and its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Acquire,
    /// Reports on the `idx`-th held permit; `hint_ms` is a retry-after hint (failures).
    Record {
        idx: usize,
        outcome: MOutcome,
        hint_ms: Option<u64>,
    },
    /// Drops the `idx`-th held permit without a report.
    Drop {
        idx: usize,
    },
    AdvanceMs(u64),
    Reset,
    ForceOpen,
    Disable,
}

/// The counters the breaker exposes, as the model computes them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MMetrics {
    pub(crate) state: MState,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) ignored: u64,
    pub(crate) rejected: u64,
    pub(crate) consecutive_failures: u32,
    pub(crate) opens: u64,
    pub(crate) probes_in_flight: u32,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) time_in_state: Duration,
}

/// The reference breaker.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub(crate) config: MConfig,
    /// Nanoseconds since the origin of the clock.
    pub(crate) now: u64,
    pub(crate) state: MState,
    pub(crate) generation: u64,
    /// When the open wait ends (Open only).
    pub(crate) open_until: u64,
    /// When the probe lease ends (HalfOpen only).
    pub(crate) lease_until: u64,
    /// When the current state was entered.
    pub(crate) entered_at: u64,
    pub(crate) in_flight: u32,
    pub(crate) probe_successes: u32,
    pub(crate) consecutive_opens: u32,
    pub(crate) streak: u32,
    /// The streak when the policy last tripped, until the next close.
    pub(crate) trip_streak: u32,
    /// The last counted outcomes of this closed generation, true for a failure.
    pub(crate) window: VecDeque<bool>,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) ignored: u64,
    pub(crate) rejected: u64,
    pub(crate) opens: u64,
    /// The permits the test holds, in the order the operations index them.
    pub(crate) held: Vec<MPermit>,
    /// What the last operation observed (for the test glue to compare).
    pub(crate) last: Observed,
}

/// Rounds a deadline up to the next whole millisecond (the breaker is built at time 0).
fn round_up_to_millis(nanos: u128) -> u64 {
    let millis = nanos.div_ceil(1_000_000);
    u64::try_from(millis * 1_000_000).unwrap_or(u64::MAX)
}

impl Model {
    pub(crate) fn new(config: MConfig) -> Self {
        Self {
            config,
            now: 0,
            state: MState::Closed,
            generation: 0,
            open_until: 0,
            lease_until: 0,
            entered_at: 0,
            in_flight: 0,
            probe_successes: 0,
            consecutive_opens: 0,
            streak: 0,
            trip_streak: 0,
            window: VecDeque::new(),
            successes: 0,
            failures: 0,
            ignored: 0,
            rejected: 0,
            opens: 0,
            held: Vec::new(),
            last: Observed::Nothing,
        }
    }

    /// The state an observer sees: an Open breaker whose wait has passed is HalfOpen.
    pub(crate) fn observed_state(&self) -> MState {
        match self.state {
            MState::Open if self.now >= self.open_until => MState::HalfOpen,
            s => s,
        }
    }

    pub(crate) fn metrics(&self) -> MMetrics {
        let state = self.observed_state();
        let since =
            if self.state == MState::Open && state == MState::HalfOpen { self.open_until } else { self.entered_at };
        let failure_rate = self.config.rate.map(|_| {
            let calls = self.window.len() as u64;
            let failures = self.window.iter().filter(|f| **f).count() as u64;
            if calls == 0 { 0.0 } else { failures as f64 / calls as f64 }
        });
        MMetrics {
            state,
            successes: self.successes,
            failures: self.failures,
            ignored: self.ignored,
            rejected: self.rejected,
            consecutive_failures: match self.state {
                _ if self.config.consecutive.is_none() => 0,
                MState::Closed => self.streak,
                _ => self.trip_streak,
            },
            opens: self.opens,
            probes_in_flight: if self.state == MState::HalfOpen { self.in_flight } else { 0 },
            failure_rate,
            time_in_state: Duration::from_nanos(self.now.saturating_sub(since)),
        }
    }

    /// Applies one operation.
    pub(crate) fn apply(&mut self, op: Op) {
        self.last = Observed::Nothing;
        match op {
            Op::Acquire => {
                self.last = match self.acquire() {
                    Ok(p) => {
                        self.held.push(p);
                        Observed::Admitted(p.admitted_in)
                    }
                    Err((state, retry_after)) => Observed::Rejected { state, retry_after },
                };
            }
            Op::Record { idx, outcome, hint_ms } => {
                let p = self.held.remove(idx);
                self.record(p, outcome, hint_ms.map(|ms| ms * NANOS_PER_MS));
            }
            Op::Drop { idx } => {
                let p = self.held.remove(idx);
                self.drop_permit(p);
            }
            Op::AdvanceMs(ms) => self.now = self.now.saturating_add(ms * NANOS_PER_MS),
            Op::Reset => {
                self.enter(MState::Closed);
                self.consecutive_opens = 0;
            }
            Op::ForceOpen => self.enter(MState::ForcedOpen),
            Op::Disable => self.enter(MState::Disabled),
        }
    }

    /// A transition: a new generation, with every per-state counter cleared.
    fn enter(&mut self, state: MState) {
        if state == MState::Closed {
            self.trip_streak = 0;
        }
        self.state = state;
        self.generation += 1;
        self.entered_at = self.now;
        self.in_flight = 0;
        self.probe_successes = 0;
        self.streak = 0;
        self.window.clear();
    }

    fn acquire(&mut self) -> Result<MPermit, (MState, Option<Duration>)> {
        match self.state {
            MState::Closed | MState::Disabled => Ok(self.permit()),
            MState::Open if self.now >= self.open_until => {
                self.enter_half_open();
                self.in_flight = 1;
                Ok(self.permit())
            }
            MState::Open => self.reject(MState::Open, Some(Duration::from_nanos(self.open_until - self.now))),
            MState::HalfOpen if self.in_flight + self.probe_successes < self.config.probes => {
                self.in_flight += 1;
                Ok(self.permit())
            }
            MState::HalfOpen if self.now >= self.lease_until => {
                // Every slot is taken and the lease ran out: a new round.
                self.enter_half_open();
                self.in_flight = 1;
                Ok(self.permit())
            }
            MState::HalfOpen => self.reject(MState::HalfOpen, None),
            MState::ForcedOpen => self.reject(MState::ForcedOpen, None),
        }
    }

    fn permit(&self) -> MPermit {
        MPermit { generation: self.generation, admitted_in: self.state }
    }

    fn reject(&mut self, state: MState, retry_after: Option<Duration>) -> Result<MPermit, (MState, Option<Duration>)> {
        self.rejected += 1;
        Err((state, retry_after))
    }

    fn enter_half_open(&mut self) {
        self.enter(MState::HalfOpen);
        let lease = u128::from(self.config.probe_lease_ms) * u128::from(NANOS_PER_MS);
        self.lease_until = round_up_to_millis(u128::from(self.now) + lease);
    }

    fn open(&mut self, hint: Option<u64>) {
        self.consecutive_opens += 1;
        self.opens += 1;
        self.enter(MState::Open);
        let mut wait = self.config.wait.nanos(self.consecutive_opens);
        if let Some(h) = hint {
            let limit = u128::from(self.config.retry_after_limit_ms) * u128::from(NANOS_PER_MS);
            wait = wait.max(u128::from(h).min(limit));
        }
        self.open_until = round_up_to_millis(u128::from(self.now) + wait);
    }

    fn record(&mut self, p: MPermit, outcome: MOutcome, hint: Option<u64>) {
        match outcome {
            MOutcome::Success => self.successes += 1,
            MOutcome::Failure => self.failures += 1,
            MOutcome::Ignored => self.ignored += 1,
        }
        if p.generation != self.generation {
            return; // stale: counted, changes nothing
        }
        match (self.state, outcome) {
            (MState::Closed, MOutcome::Ignored) => {}
            (MState::Closed, MOutcome::Success) => {
                self.streak = 0;
                self.push_window(false);
            }
            (MState::Closed, MOutcome::Failure) => {
                self.streak += 1;
                self.push_window(true);
                let by_streak = self.config.consecutive.is_some_and(|n| self.streak >= n);
                let by_rate = self.config.rate.is_some_and(|r| {
                    let calls = self.window.len() as u64;
                    let failures = self.window.iter().filter(|f| **f).count() as u64;
                    // failures / calls >= quarters / 4, in integers.
                    calls >= r.min_calls && failures * 4 >= r.quarters * calls
                });
                if by_streak || by_rate {
                    self.trip_streak = self.streak;
                    self.open(hint);
                }
            }
            (MState::HalfOpen, MOutcome::Ignored) => self.in_flight -= 1,
            (MState::HalfOpen, MOutcome::Failure) => self.open(hint),
            (MState::HalfOpen, MOutcome::Success) => {
                self.in_flight -= 1;
                self.probe_successes += 1;
                if self.probe_successes >= self.config.probes {
                    self.enter(MState::Closed);
                    self.consecutive_opens = 0;
                }
            }
            // Disabled: admitted and counted, never trips.
            _ => {}
        }
    }

    fn push_window(&mut self, failed: bool) {
        if let Some(r) = self.config.rate {
            self.window.push_back(failed);
            if self.window.len() > r.window {
                self.window.pop_front();
            }
        }
    }

    fn drop_permit(&mut self, p: MPermit) {
        if p.generation == self.generation && self.state == MState::HalfOpen {
            self.in_flight -= 1;
        }
    }

    /// The model's own consistency: what must hold whatever the real breaker does.
    pub(crate) fn check_self(&self) {
        let current_probes = self.held.iter().filter(|p| p.generation == self.generation).count() as u32;
        match self.state {
            MState::HalfOpen => {
                assert_eq!(self.in_flight, current_probes, "in-flight probes are the held current permits");
                assert!(self.in_flight + self.probe_successes <= self.config.probes);
                assert!(self.probe_successes < self.config.probes);
            }
            _ => assert_eq!(self.in_flight, 0),
        }
        if let Some(n) = self.config.consecutive {
            assert!(self.streak < n || self.state != MState::Closed, "a full streak has tripped");
        }
        if let Some(r) = self.config.rate {
            assert!(self.window.len() <= r.window);
        }
        for p in &self.held {
            assert!(p.generation <= self.generation);
            assert!(matches!(p.admitted_in, MState::Closed | MState::HalfOpen | MState::Disabled));
        }
    }
}
