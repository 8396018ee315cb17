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
//!   successes; any failure reopens; ignored or dropped frees the slot. Probes sit in
//!   numbered slots (a new probe takes the lowest free one), each with its own lease
//!   from its own admission (deadline rounded up to the millisecond). If every slot is
//!   taken and a probe's lease has run out, the next acquire takes the slot of the
//!   probe whose lease ended first (the lowest slot on a tie): that probe no longer
//!   counts, and its report or drop is stale. Successes so far still count.
//! - A permit dropped without a report after it has been in flight at least the
//!   cancellation threshold is recorded as a failure; dropped sooner it counts nothing.
//! - Every transition starts a new generation; a permit's report from an older
//!   generation is counted in the totals and changes nothing else.
//! - reset() closes (consecutive openings back to 0), force_open() rejects everything,
//!   disable() admits everything and never trips.
//! - A time window of `span` in `buckets`: a call recorded at time t falls in bucket
//!   t / (span / buckets); the window at time now holds the buckets from
//!   now / width - buckets + 1 to now / width.
//! - A call is slow if its duration (given with the report, or from admission to
//!   report) is at least the slow-call threshold; an ignored call is never slow. The
//!   slow-call rule keeps the last N counted outcomes (slow or not) and, when a slow
//!   call is recorded, trips if calls >= min_calls and slow / calls >= threshold. In
//!   half-open a slow success is a failed probe.
//! - Recovery ramp (if configured): when the last needed probe succeeds, the breaker
//!   enters Recovering at t0 = now instead of closing, keeping its consecutive
//!   openings, with an empty outcome history and an accumulator at 0. The ramp ends at
//!   t0 + duration, rounded up to the millisecond like every deadline.
//!   - An acquire at or after the end closes the breaker (a new generation; the
//!     openings are forgotten only if the history holds at least `min_calls`
//!     outcomes) and is admitted as a closed call. Before the end, elapsed =
//!     duration - (end - now), the fraction is ONE past the duration, else
//!     round(clamp(max(min_fraction, (elapsed / duration)^(1 / aggression)), 0, 1) *
//!     2^32) clamped to [1, 2^32]; the accumulator (32 fractional bits) adds it and
//!     admits when it reaches 2^32 (taking 2^32 off), else rejects (Recovering, no
//!     retry-after, counted as rejected).
//!   - An outcome of a call admitted in this ramp: ignored changes nothing; a success
//!     or failure (a slow success is a failure) joins the history of the last `window`
//!     outcomes; the ramp aborts (an opening, the open wait of the new count, the hint
//!     honoured) on a trailing failure streak of `abort_after`, or with at least
//!     `min_calls` outcomes on failures >= abort_failure_rate * outcomes. It never
//!     feeds the policy's windows or streak.
//!   - `state()` reads Closed from the end on (time in state counted from the end),
//!     as Open reads HalfOpen after its wait.
//!   - `recover(elapsed)`, from any state: with a ramp and elapsed < duration, a new
//!     ramp whose end is now + duration - elapsed (openings kept); else closes as
//!     `close()` does (openings forgotten).
//! - Shadow mode (at build or switched at any time): a call that would be refused, for
//!   any reason, is admitted instead (counted in `would_reject`, not `rejected`), after
//!   the refusal has had all its effects (the ramp's accumulator step included). Its
//!   permit reads as admitted in Open: its outcome counts in the totals (and as slow)
//!   and nowhere else; dropped, it may be a cancelled failure, counted in the totals
//!   alike.
//!
//! - In-flight age (if `hung_after` is set): only calls admitted while Closed are
//!   tracked, with their admission time. width = max(hung_after / 4, 2^18 ns); a call
//!   admitted at `start` is due once now >= (start / width + 1) * width + hung_after.
//!   Every Closed admission sweeps at its `now` (then adds its call, never due yet): every
//!   tracked call still in flight, due and not yet counted is counted now; the count
//!   is recorded as that many failures (no duration, so never slow) in the current
//!   closed generation, stopping at the first that trips (the trip says `HungCalls`);
//!   only the calls admitted in the epoch the breaker last closed in (the latest time
//!   it entered Closed, 0 at build) or later are recorded: older ones are counted but
//!   not recorded. A counted call's outcome, when it completes
//!   or is dropped, counts in the totals and nowhere else. `hung_calls` is the number
//!   of tracked calls in flight and due at `now`.
//!
//! Adaptive throttling is not modelled: its admissions are random draws (a per-thread
//! generator against a probability), so no plain model can predict them; its own tests
//! (`tests/throttle.rs`) check it statistically.

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
    Recovering,
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

/// A failure-rate rule over a time window of `span_ms` in `buckets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MTimeRate {
    pub(crate) span_ms: u64,
    pub(crate) buckets: u64,
    pub(crate) min_calls: u64,
    pub(crate) quarters: u64,
}

/// A slow-call rule: calls of `slower_than_ms` or more are slow; a rate over the last
/// `window` calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MSlow {
    pub(crate) slower_than_ms: u64,
    pub(crate) window: usize,
    pub(crate) min_calls: u64,
    pub(crate) quarters: u64,
}

/// One whole call in the ramp's accumulator (32 fractional bits).
pub(crate) const ONE: u64 = 1 << 32;

/// The recovery ramp's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MRamp {
    /// In nanoseconds, above zero.
    pub(crate) duration_ns: u64,
    pub(crate) min_fraction: f64,
    pub(crate) aggression: f64,
    pub(crate) window: usize,
    pub(crate) min_calls: usize,
    pub(crate) abort_after: usize,
    pub(crate) abort_failure_rate: f64,
}

impl MRamp {
    /// The share of calls admitted `elapsed` nanoseconds into the ramp, in 2^-32ths.
    pub(crate) fn fraction(&self, elapsed: u64) -> u64 {
        if elapsed >= self.duration_ns {
            return ONE;
        }
        let progress = (elapsed as f64 / self.duration_ns as f64).powf(1.0 / self.aggression);
        let f = progress.max(self.min_fraction).clamp(0.0, 1.0);
        ((f * ONE as f64).round() as u64).clamp(1, ONE)
    }

    /// Whether the ramp's outcomes (true for a failure, oldest first) abort it.
    fn aborts(&self, history: &VecDeque<bool>) -> bool {
        let streak = history.iter().rev().take_while(|failed| **failed).count();
        let failures = history.iter().filter(|failed| **failed).count();
        streak >= self.abort_after
            || (history.len() >= self.min_calls && failures as f64 >= self.abort_failure_rate * history.len() as f64)
    }
}

/// The breaker's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MConfig {
    /// The consecutive-failures threshold, if the policy has that rule.
    pub(crate) consecutive: Option<u32>,
    /// The failure-rate rule over a count window, if the policy has one.
    pub(crate) rate: Option<MRate>,
    /// The failure-rate rule over a time window, if the policy has one (never together
    /// with `rate`: the metrics report the first failure-rate rule).
    pub(crate) time_rate: Option<MTimeRate>,
    /// The slow-call rule, if the policy has one.
    pub(crate) slow: Option<MSlow>,
    pub(crate) probes: u32,
    pub(crate) wait: MWait,
    pub(crate) probe_lease_ms: u64,
    pub(crate) retry_after_limit_ms: u64,
    /// The cancellation rule's threshold, if on.
    pub(crate) cancel_after_ms: Option<u64>,
    /// The recovery ramp, if any.
    pub(crate) ramp: Option<MRamp>,
    /// Shadow mode at build.
    pub(crate) shadow: bool,
    /// In-flight age: calls in flight this long (nanoseconds) count as failures.
    pub(crate) hung_after_ns: Option<u64>,
}

/// The narrowest bucket of the in-flight age tracker, in nanoseconds.
pub(crate) const MIN_HUNG_WIDTH: u64 = 1 << 18;

/// What made a policy trip, as `Transition::tripped_by` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MCause {
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    HungCalls,
}

/// A closed call the in-flight age rule tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MFlight {
    pub(crate) id: u64,
    pub(crate) start: u64,
    /// Counted as hung by a sweep (recorded as a failure or not).
    pub(crate) counted: bool,
}

/// A permit the model handed out: the generation and state it was admitted in (Open
/// for a call shadow mode admitted in place of a refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MPermit {
    pub(crate) id: u64,
    pub(crate) generation: u64,
    pub(crate) admitted_in: MState,
    pub(crate) admitted_at: u64,
}

/// What the last operation observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    Nothing,
    Admitted(MState),
    Rejected {
        state: MState,
        retry_after: Option<Duration>,
    },
    /// Shadow mode admitted a call the breaker refused as this rejection.
    ShadowAdmitted {
        state: MState,
        retry_after: Option<Duration>,
    },
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
        /// The duration reported with the outcome; `None`: the breaker times the call.
        duration_ms: Option<u64>,
    },
    /// Drops the `idx`-th held permit without a report.
    Drop {
        idx: usize,
    },
    AdvanceMs(u64),
    Reset,
    ForceOpen,
    Disable,
    /// `recover(elapsed)`: the ramp as if it had begun `elapsed` ago.
    Recover(Duration),
    /// `set_shadow(on)`.
    SetShadow(bool),
}

/// The counters the breaker exposes, as the model computes them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MMetrics {
    pub(crate) state: MState,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) ignored: u64,
    pub(crate) rejected: u64,
    pub(crate) would_reject: u64,
    pub(crate) consecutive_failures: u32,
    pub(crate) opens: u64,
    pub(crate) probes_in_flight: u32,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_calls: u64,
    pub(crate) slow_call_rate: Option<f64>,
    pub(crate) time_in_state: Duration,
    pub(crate) recovery_fraction: f64,
    pub(crate) hung_calls: u64,
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
    /// When the ramp ends (Recovering only).
    pub(crate) ramp_end: u64,
    /// The ramp's accumulator, in 2^-32ths of a call (Recovering only).
    pub(crate) ramp_acc: u64,
    /// The ramp's last counted outcomes, oldest first, true for a failure (Recovering
    /// only).
    pub(crate) ramp_history: VecDeque<bool>,
    /// Whether shadow mode is on.
    pub(crate) shadow: bool,
    /// The probe slots (HalfOpen only): the permit holding each, and when its lease ends.
    pub(crate) slots: Vec<Option<(u64, u64)>>,
    /// The id of the next permit.
    pub(crate) next_id: u64,
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
    /// The counted outcomes of this closed generation: when, and whether they failed.
    pub(crate) timed: Vec<(u64, bool)>,
    /// The last counted outcomes of this closed generation, true for a slow call.
    pub(crate) slow_window: VecDeque<bool>,
    pub(crate) slow_calls: u64,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) ignored: u64,
    pub(crate) rejected: u64,
    pub(crate) would_reject: u64,
    pub(crate) opens: u64,
    /// The permits the test holds, in the order the operations index them.
    pub(crate) held: Vec<MPermit>,
    /// What the last operation observed (for the test glue to compare).
    pub(crate) last: Observed,
    /// The closed calls in flight that the in-flight age rule tracks.
    pub(crate) flight: Vec<MFlight>,
    /// When the breaker last entered Closed (0: never since the build).
    pub(crate) closed_since: u64,
    /// The cause of every policy trip so far, oldest first.
    pub(crate) trips: Vec<MCause>,
    /// Hung calls recorded as failures so far.
    pub(crate) hung_recorded: u64,
    /// Hung calls counted but not recorded (the breaker had closed too recently).
    pub(crate) hung_discarded: u64,
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
            ramp_end: 0,
            ramp_acc: 0,
            ramp_history: VecDeque::new(),
            shadow: config.shadow,
            slots: vec![None; config.probes as usize],
            next_id: 0,
            entered_at: 0,
            in_flight: 0,
            probe_successes: 0,
            consecutive_opens: 0,
            streak: 0,
            trip_streak: 0,
            window: VecDeque::new(),
            timed: Vec::new(),
            slow_window: VecDeque::new(),
            slow_calls: 0,
            successes: 0,
            failures: 0,
            ignored: 0,
            rejected: 0,
            would_reject: 0,
            opens: 0,
            held: Vec::new(),
            last: Observed::Nothing,
            flight: Vec::new(),
            closed_since: 0,
            trips: Vec::new(),
            hung_recorded: 0,
            hung_discarded: 0,
        }
    }

    /// Whether the current state's deadline has passed: the open wait (Open), or the
    /// ramp (Recovering).
    fn deadline_passed(&self) -> bool {
        match self.state {
            MState::Open => self.now >= self.open_until,
            MState::Recovering => self.now >= self.ramp_end,
            _ => false,
        }
    }

    /// The state an observer sees: an Open breaker whose wait has passed is HalfOpen, a
    /// Recovering one whose ramp has run its course is Closed.
    pub(crate) fn observed_state(&self) -> MState {
        match self.state {
            MState::Open if self.deadline_passed() => MState::HalfOpen,
            MState::Recovering if self.deadline_passed() => MState::Closed,
            s => s,
        }
    }

    /// The ramp's progress at `now`, counted back from its (rounded) end.
    fn ramp_elapsed(&self, ramp: MRamp) -> u64 {
        ramp.duration_ns.saturating_sub(self.ramp_end - self.now)
    }

    pub(crate) fn metrics(&self) -> MMetrics {
        let state = self.observed_state();
        let passed = self.deadline_passed();
        let since = match self.state {
            MState::Open if passed => self.open_until,
            MState::Recovering if passed => self.ramp_end,
            _ => self.entered_at,
        };
        let ratio = |bad: u64, calls: u64| if calls == 0 { 0.0 } else { bad as f64 / calls as f64 };
        let failure_rate = match (self.config.rate, self.config.time_rate) {
            (Some(_), _) => Some(ratio(self.window.iter().filter(|f| **f).count() as u64, self.window.len() as u64)),
            (None, Some(t)) => {
                let (calls, failures) = self.in_time_window(t);
                Some(ratio(failures, calls))
            }
            (None, None) => None,
        };
        let slow_call_rate = self
            .config
            .slow
            .map(|_| ratio(self.slow_window.iter().filter(|s| **s).count() as u64, self.slow_window.len() as u64));
        MMetrics {
            state,
            successes: self.successes,
            failures: self.failures,
            ignored: self.ignored,
            rejected: self.rejected,
            would_reject: self.would_reject,
            consecutive_failures: match self.state {
                _ if self.config.consecutive.is_none() => 0,
                MState::Closed => self.streak,
                // A ramp past its end reads as closed: the closed breaker the next call
                // finds, with a fresh streak.
                MState::Recovering if passed => 0,
                _ => self.trip_streak,
            },
            opens: self.opens,
            probes_in_flight: if self.state == MState::HalfOpen { self.in_flight } else { 0 },
            failure_rate,
            slow_calls: self.slow_calls,
            slow_call_rate,
            time_in_state: Duration::from_nanos(self.now.saturating_sub(since)),
            recovery_fraction: match state {
                MState::Closed | MState::Disabled => 1.0,
                MState::Recovering => {
                    let ramp = self.config.ramp.expect("only a breaker with a ramp recovers");
                    ramp.fraction(self.ramp_elapsed(ramp)) as f64 / ONE as f64
                }
                MState::Open | MState::HalfOpen | MState::ForcedOpen => 0.0,
            },
            hung_calls: self.hung_width().map_or(0, |(t, w)| {
                let limit = self.now.saturating_sub(t) / w;
                self.flight.iter().filter(|f| f.start / w < limit).count() as u64
            }),
        }
    }

    /// The calls and failures of this closed generation in the time window at `now`.
    fn in_time_window(&self, t: MTimeRate) -> (u64, u64) {
        let width = (u128::from(t.span_ms) * u128::from(NANOS_PER_MS) / u128::from(t.buckets)).max(1);
        let bucket = |at: u64| u128::from(at) / width;
        let newest = bucket(self.now);
        let oldest = newest.saturating_sub(u128::from(t.buckets) - 1);
        let inside: Vec<bool> =
            self.timed.iter().filter(|(at, _)| (oldest..=newest).contains(&bucket(*at))).map(|(_, f)| *f).collect();
        (inside.len() as u64, inside.iter().filter(|f| **f).count() as u64)
    }

    /// Applies one operation.
    pub(crate) fn apply(&mut self, op: Op) {
        self.last = Observed::Nothing;
        match op {
            Op::Acquire => {
                self.last = match self.acquire() {
                    Ok(p) => {
                        self.held.push(p);
                        if p.admitted_in == MState::Closed {
                            self.admit_closed(p);
                        }
                        Observed::Admitted(p.admitted_in)
                    }
                    Err((state, retry_after)) if self.shadow => {
                        // Refused, with every effect of the refusal; then admitted anyway.
                        self.would_reject += 1;
                        let p = MPermit { admitted_in: MState::Open, ..self.permit() };
                        self.held.push(p);
                        Observed::ShadowAdmitted { state, retry_after }
                    }
                    Err((state, retry_after)) => {
                        self.rejected += 1;
                        Observed::Rejected { state, retry_after }
                    }
                };
            }
            Op::Record { idx, outcome, hint_ms, duration_ms } => {
                let p = self.held.remove(idx);
                let duration = duration_ms.map_or(self.now - p.admitted_at, |ms| ms * NANOS_PER_MS);
                self.record(p, outcome, hint_ms.map(|ms| ms * NANOS_PER_MS), duration);
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
            Op::Recover(elapsed) => {
                let elapsed = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                match self.config.ramp {
                    Some(ramp) if elapsed < ramp.duration_ns => self.begin_ramp(elapsed),
                    _ => {
                        self.enter(MState::Closed);
                        self.consecutive_opens = 0;
                    }
                }
            }
            Op::SetShadow(on) => self.shadow = on,
        }
    }

    /// Enters Recovering as if the ramp had begun `elapsed` nanoseconds ago (less than
    /// its duration), keeping the consecutive openings.
    fn begin_ramp(&mut self, elapsed: u64) {
        let ramp = self.config.ramp.expect("only a breaker with a ramp recovers");
        self.enter(MState::Recovering);
        self.ramp_end = round_up_to_millis(u128::from(self.now) + u128::from(ramp.duration_ns - elapsed));
    }

    /// `hung_after` and the tracker's bucket width, in nanoseconds, if the rule is on.
    pub(crate) fn hung_width(&self) -> Option<(u64, u64)> {
        self.config.hung_after_ns.map(|t| (t, (t / 4).max(MIN_HUNG_WIDTH)))
    }

    /// A closed admission under the in-flight age rule: tracks the call, then counts
    /// the calls that are due and records them as failures (unless the breaker closed
    /// too recently).
    fn admit_closed(&mut self, p: MPermit) {
        let Some((t, w)) = self.hung_width() else { return };
        self.flight.push(MFlight { id: p.id, start: self.now, counted: false });
        let limit = self.now.saturating_sub(t) / w;
        let since = self.closed_since / w;
        let mut hung = 0;
        for f in self.flight.iter_mut().filter(|f| !f.counted && f.start / w < limit) {
            f.counted = true;
            if f.start / w >= since {
                hung += 1;
            } else {
                self.hung_discarded += 1;
            }
        }
        if hung == 0 {
            return;
        }
        for _ in 0..hung {
            self.hung_recorded += 1;
            if self.closed_outcome(true, false).is_some() {
                self.trips.push(MCause::HungCalls);
                self.trip_streak = self.streak;
                self.open(None);
                return;
            }
        }
    }

    /// Takes `p` out of the in-flight age tracker; whether a sweep counted it as hung.
    fn leave_flight(&mut self, p: &MPermit) -> bool {
        match self.flight.iter().position(|f| f.id == p.id) {
            Some(i) => self.flight.swap_remove(i).counted,
            None => false,
        }
    }

    /// A counted outcome of the current closed generation: updates the streak and the
    /// windows; what trips, if anything.
    fn closed_outcome(&mut self, failed: bool, slow: bool) -> Option<MCause> {
        if failed {
            self.streak += 1;
        } else {
            self.streak = 0;
        }
        self.push_window(failed, slow);
        // bad / calls >= quarters / 4, in integers.
        let over = |bad: u64, calls: u64, min: u64, quarters: u64| calls >= min && bad * 4 >= quarters * calls;
        let by_streak = failed && self.config.consecutive.is_some_and(|n| self.streak >= n);
        let by_rate = failed
            && self.config.rate.is_some_and(|r| {
                let failures = self.window.iter().filter(|f| **f).count() as u64;
                over(failures, self.window.len() as u64, r.min_calls, r.quarters)
            });
        let by_time = failed
            && self.config.time_rate.is_some_and(|t| {
                let (calls, failures) = self.in_time_window(t);
                over(failures, calls, t.min_calls, t.quarters)
            });
        let by_slow = slow
            && self.config.slow.is_some_and(|s| {
                let slows = self.slow_window.iter().filter(|s| **s).count() as u64;
                over(slows, self.slow_window.len() as u64, s.min_calls, s.quarters)
            });
        if by_streak {
            Some(MCause::ConsecutiveFailures)
        } else if by_rate || by_time {
            Some(MCause::FailureRate)
        } else if by_slow {
            Some(MCause::SlowCallRate)
        } else {
            None
        }
    }

    /// A transition: a new generation, with every per-state counter cleared.
    fn enter(&mut self, state: MState) {
        if state == MState::Closed {
            self.trip_streak = 0;
            self.closed_since = self.closed_since.max(self.now);
        }
        self.slots.iter_mut().for_each(|s| *s = None);
        self.state = state;
        self.generation += 1;
        self.entered_at = self.now;
        self.in_flight = 0;
        self.probe_successes = 0;
        self.streak = 0;
        self.window.clear();
        self.timed.clear();
        self.slow_window.clear();
        self.ramp_history.clear();
        self.ramp_acc = 0;
    }

    /// The admission decision; a refusal is counted by the caller (as rejected, or in
    /// shadow mode as a would-be rejection).
    fn acquire(&mut self) -> Result<MPermit, (MState, Option<Duration>)> {
        match self.state {
            MState::Closed | MState::Disabled => Ok(self.permit()),
            MState::Open if self.now >= self.open_until => {
                self.enter(MState::HalfOpen);
                self.in_flight = 1;
                Ok(self.probe(None))
            }
            MState::Open => self.reject(MState::Open, Some(Duration::from_nanos(self.open_until - self.now))),
            MState::HalfOpen if self.in_flight + self.probe_successes < self.config.probes => {
                self.in_flight += 1;
                Ok(self.probe(None))
            }
            MState::HalfOpen if self.earliest_lease().is_some_and(|(_, until)| self.now >= until) => {
                // Every slot is taken and a lease ran out: take that probe's slot.
                let (slot, _) = self.earliest_lease().expect("a lease");
                self.entered_at = self.now;
                Ok(self.probe(Some(slot)))
            }
            MState::HalfOpen => self.reject(MState::HalfOpen, None),
            MState::ForcedOpen => self.reject(MState::ForcedOpen, None),
            MState::Recovering => {
                let ramp = self.config.ramp.expect("only a breaker with a ramp recovers");
                if self.now >= self.ramp_end {
                    // The ramp has run its course: this call is the closed breaker's first.
                    let tested = self.ramp_history.len() >= ramp.min_calls;
                    let opens = self.consecutive_opens;
                    self.enter(MState::Closed);
                    self.consecutive_opens = if tested { 0 } else { opens };
                    return Ok(self.permit());
                }
                self.ramp_acc += ramp.fraction(self.ramp_elapsed(ramp));
                if self.ramp_acc >= ONE {
                    self.ramp_acc -= ONE;
                    Ok(self.permit())
                } else {
                    self.reject(MState::Recovering, None)
                }
            }
        }
    }

    fn permit(&mut self) -> MPermit {
        self.next_id += 1;
        MPermit { id: self.next_id, generation: self.generation, admitted_in: self.state, admitted_at: self.now }
    }

    /// A probe in `slot`, or in the lowest free slot.
    fn probe(&mut self, slot: Option<usize>) -> MPermit {
        let p = self.permit();
        let slot = slot.unwrap_or_else(|| self.slots.iter().position(Option::is_none).expect("a free slot"));
        let lease = u128::from(self.config.probe_lease_ms) * u128::from(NANOS_PER_MS);
        self.slots[slot] = Some((p.id, round_up_to_millis(u128::from(self.now) + lease)));
        p
    }

    /// The slot whose probe's lease ends first (the lowest slot on a tie), and when.
    pub(crate) fn earliest_lease(&self) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if let Some((_, until)) = s
                && best.is_none_or(|(_, b)| *until < b)
            {
                best = Some((i, *until));
            }
        }
        best
    }

    /// Frees `p`'s slot if it still holds it; whether it did.
    fn release(&mut self, p: &MPermit) -> bool {
        match self.slots.iter().position(|s| s.is_some_and(|(id, _)| id == p.id)) {
            Some(i) => {
                self.slots[i] = None;
                true
            }
            None => false,
        }
    }

    fn reject(&self, state: MState, retry_after: Option<Duration>) -> Result<MPermit, (MState, Option<Duration>)> {
        Err((state, retry_after))
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

    fn record(&mut self, p: MPermit, outcome: MOutcome, hint: Option<u64>, duration: u64) {
        match outcome {
            MOutcome::Success => self.successes += 1,
            MOutcome::Failure => self.failures += 1,
            MOutcome::Ignored => self.ignored += 1,
        }
        let slow = outcome != MOutcome::Ignored
            && self.config.slow.is_some_and(|s| u128::from(duration) >= u128::from(s.slower_than_ms) * 1_000_000);
        self.slow_calls += u64::from(slow);
        // A call counted as hung was recorded as a failure then: its outcome counts only
        // in the totals.
        if self.leave_flight(&p) {
            return;
        }
        if p.admitted_in == MState::Open {
            return; // admitted by shadow mode in place of a refusal: counted, nothing else
        }
        let owned = p.admitted_in != MState::HalfOpen || self.release(&p);
        if p.generation != self.generation || !owned {
            return; // stale, or a probe that lost its slot: counted, changes nothing
        }
        assert_eq!(p.admitted_in, self.state, "a current permit was admitted in this state");
        match (self.state, outcome) {
            (MState::Closed, MOutcome::Ignored) => {}
            (MState::Closed, MOutcome::Success | MOutcome::Failure) => {
                if let Some(cause) = self.closed_outcome(outcome == MOutcome::Failure, slow) {
                    self.trips.push(cause);
                    self.trip_streak = self.streak;
                    self.open(hint);
                }
            }
            (MState::HalfOpen, MOutcome::Ignored) => self.in_flight -= 1,
            (MState::HalfOpen, MOutcome::Failure) => self.open(hint),
            (MState::HalfOpen, MOutcome::Success) if slow => self.open(hint),
            (MState::HalfOpen, MOutcome::Success) => {
                self.in_flight -= 1;
                self.probe_successes += 1;
                if self.probe_successes >= self.config.probes {
                    if self.config.ramp.is_some() {
                        self.begin_ramp(0);
                    } else {
                        self.enter(MState::Closed);
                        self.consecutive_opens = 0;
                    }
                }
            }
            (MState::Recovering, MOutcome::Ignored) => {}
            (MState::Recovering, MOutcome::Success | MOutcome::Failure) => {
                let ramp = self.config.ramp.expect("only a breaker with a ramp recovers");
                self.ramp_history.push_back(outcome == MOutcome::Failure || slow);
                if self.ramp_history.len() > ramp.window {
                    self.ramp_history.pop_front();
                }
                if ramp.aborts(&self.ramp_history) {
                    self.open(hint);
                }
            }
            // Disabled: admitted and counted, never trips.
            _ => {}
        }
    }

    fn push_window(&mut self, failed: bool, slow: bool) {
        if let Some(r) = self.config.rate {
            self.window.push_back(failed);
            if self.window.len() > r.window {
                self.window.pop_front();
            }
        }
        if self.config.time_rate.is_some() {
            self.timed.push((self.now, failed));
        }
        if let Some(s) = self.config.slow {
            self.slow_window.push_back(slow);
            if self.slow_window.len() > s.window {
                self.slow_window.pop_front();
            }
        }
    }

    fn drop_permit(&mut self, p: MPermit) {
        let in_flight_for = self.now - p.admitted_at;
        if self.config.cancel_after_ms.is_some_and(|ms| u128::from(in_flight_for) >= u128::from(ms) * 1_000_000) {
            // The caller gave up after the threshold: a failure.
            self.record(p, MOutcome::Failure, None, in_flight_for);
            return;
        }
        self.leave_flight(&p);
        let owned = p.admitted_in == MState::HalfOpen && self.release(&p);
        if owned && p.generation == self.generation && self.state == MState::HalfOpen {
            self.in_flight -= 1;
        }
    }

    /// The model's own consistency: what must hold whatever the real breaker does.
    pub(crate) fn check_self(&self) {
        let in_slots = self.slots.iter().flatten().count() as u32;
        for (id, _) in self.slots.iter().flatten() {
            assert!(self.held.iter().any(|p| p.id == *id && p.generation == self.generation), "a slot's probe is held");
        }
        match self.state {
            MState::HalfOpen => {
                assert_eq!(self.in_flight, in_slots, "in-flight probes are the probes in slots");
                assert!(self.in_flight + self.probe_successes <= self.config.probes);
                assert!(self.probe_successes < self.config.probes);
            }
            _ => assert_eq!((self.in_flight, in_slots), (0, 0)),
        }
        if self.state == MState::Recovering {
            let ramp = self.config.ramp.expect("only a breaker with a ramp recovers");
            assert!(self.ramp_acc < ONE, "the accumulator never holds a whole call");
            assert!(self.ramp_history.len() <= ramp.window);
            assert!(!ramp.aborts(&self.ramp_history), "a history that aborts has aborted");
            assert!(self.ramp_end <= round_up_to_millis(u128::from(self.entered_at) + u128::from(ramp.duration_ns)));
        } else {
            assert!(self.ramp_history.is_empty() && self.ramp_acc == 0);
        }
        if let Some(n) = self.config.consecutive {
            assert!(self.streak < n || self.state != MState::Closed, "a full streak has tripped");
        }
        if let Some(r) = self.config.rate {
            assert!(self.window.len() <= r.window);
        }
        for f in &self.flight {
            assert!(
                self.held.iter().any(|p| p.id == f.id && p.admitted_in == MState::Closed),
                "a tracked call is held"
            );
        }
        if self.config.hung_after_ns.is_none() {
            assert!(self.flight.is_empty());
        }
        for p in &self.held {
            assert!(p.generation <= self.generation);
            // Open: admitted by shadow mode in place of a refusal.
            assert!(p.admitted_in != MState::ForcedOpen);
        }
    }
}
