//! The recovery ramp: after half-open succeeds, traffic comes back gradually instead of
//! all at once.
//!
//! A classic breaker closes when its probes succeed and releases every caller at once
//! onto a backend that has just recovered, often knocking it over again (Hystrix#1647,
//! resilience4j#985 asked for a ramp). With a ramp, the breaker enters
//! [`State::Recovering`](crate::State::Recovering) instead, and admits a fraction
//!
//! ```text
//! f(t) = clamp(max(min_fraction, ((t − t₀) / duration)^(1/aggression)), 0, 1)
//! ```
//!
//! of the calls, rising from `min_fraction` to all of them over `duration` (Envoy's slow
//! start, on calls rather than weights).
//!
//! # Exact, with no bursts
//!
//! Admissions come from an accumulator, not a random draw and not a cumulative ratio:
//! each call adds `f(t)` to it, and a call is admitted when it reaches 1 (and 1 is taken
//! off). So over any prefix of the ramp's calls the number admitted is within one of
//! `Σ f(tᵢ)`, and in the first step never more than `min_fraction` of them. (A
//! cumulative ratio, as in Traefik, lets a burst through after a quiet spell.) The
//! accumulator is one atomic word, tagged with the generation, updated by a
//! compare-and-swap; the breaker's state word is not touched by admissions.
//!
//! # Abort
//!
//! The ramp keeps its own outcomes, the last `window` (at most 19) of them, in the state
//! word itself, so each outcome is one compare-and-swap and the abort decision sees
//! exactly the outcomes that led to it. The ramp reopens the breaker (an opening, with
//! the next, longer open wait) on `abort_after` consecutive failures, or once it holds
//! `min_calls` outcomes, on a failure rate of at least `abort_failure_rate`. A slow call
//! (by the policy's slow-call rule) is a failure here, as it is for a probe.
//!
//! # Exit and the backoff
//!
//! At `t₀ + duration` the breaker closes, with fresh windows. If the ramp saw at least
//! `min_calls` outcomes, its consecutive openings are forgotten (an exponential open wait
//! starts again from its base). If it saw fewer, the backend's recovery was never really
//! tested, so they are kept, and a trip soon after waits longer (Envoy decays its
//! ejection backoff "without any knowledge" that the host recovered, envoy#21142: not
//! here). The ramp never waits for traffic to end: ignored outcomes cannot wedge it.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use breakerbox::{Breaker, ManualClock, OpenWait, Ramp, State};
//!
//! let clock = ManualClock::new();
//! let breaker = Breaker::builder()
//!     .clock(clock.clone())
//!     .policy(breakerbox::Policy::consecutive_failures(1))
//!     .open_wait(OpenWait::fixed(Duration::from_secs(1)))
//!     .recovery_ramp(Ramp::new().duration(Duration::from_secs(10)).min_fraction(0.1))
//!     .build()?;
//! breaker.try_acquire().unwrap().failure(); // trips
//! clock.advance(Duration::from_secs(1));
//! breaker.try_acquire().unwrap().success(); // the probe succeeds
//! assert_eq!(breaker.state(), State::Recovering);
//! // In the first second, one call in ten.
//! let admitted = (0..100).filter(|_| breaker.try_acquire().map(|p| p.success()).is_ok()).count();
//! assert_eq!(admitted, 10);
//! clock.advance(Duration::from_secs(10));
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```

use std::time::Duration;

use crate::ConfigError;
use crate::clock::nanos;

/// Settings of the [recovery ramp](self).
///
/// | setting | default | range |
/// |---|---|---|
/// | [`duration`](Self::duration) | 30 s | above zero |
/// | [`min_fraction`](Self::min_fraction) | 0.1 | above 0.0, at most 1.0 |
/// | [`aggression`](Self::aggression) | 1.0 | above 0.0 |
/// | [`window`](Self::window) | 16 outcomes | 1 to 19 |
/// | [`min_calls`](Self::min_calls) | 5 | 1 to `window` |
/// | [`abort_after`](Self::abort_after) | 3 consecutive failures | 1 to `window` |
/// | [`abort_failure_rate`](Self::abort_failure_rate) | 0.5 | above 0.0, at most 1.0 |
#[derive(Clone, Debug, PartialEq)]
pub struct Ramp {
    duration: Duration,
    min_fraction: f64,
    aggression: f64,
    window: u32,
    min_calls: u32,
    abort_after: u32,
    abort_failure_rate: f64,
}

/// The most outcomes the ramp's window can hold: its history shares the state word.
pub const MAX_RAMP_WINDOW: u32 = 19;

impl Ramp {
    /// A ramp with every setting at its default (the table above).
    pub fn new() -> Self {
        Self {
            duration: Duration::from_secs(30),
            min_fraction: 0.1,
            aggression: 1.0,
            window: 16,
            min_calls: 5,
            abort_after: 3,
            abort_failure_rate: 0.5,
        }
    }

    /// How long the fraction takes to rise to 1. Make it at least twice the longest
    /// call, so that the ramp sees outcomes of calls it admitted.
    #[must_use]
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// The fraction admitted from the start of the ramp.
    #[must_use]
    pub fn min_fraction(mut self, f: f64) -> Self {
        self.min_fraction = f;
        self
    }

    /// The exponent's inverse: above 1 the fraction rises fast then slowly, below 1
    /// slowly then fast; 1 is linear.
    #[must_use]
    pub fn aggression(mut self, a: f64) -> Self {
        self.aggression = a;
        self
    }

    /// How many of the ramp's latest outcomes its abort rule looks at.
    #[must_use]
    pub fn window(mut self, n: u32) -> Self {
        self.window = n;
        self
    }

    /// The fewest outcomes before the failure rate can abort the ramp, and that the ramp
    /// must see for the breaker to forget its consecutive openings.
    #[must_use]
    pub fn min_calls(mut self, n: u32) -> Self {
        self.min_calls = n;
        self
    }

    /// Consecutive failures that abort the ramp.
    #[must_use]
    pub fn abort_after(mut self, n: u32) -> Self {
        self.abort_after = n;
        self
    }

    /// The failure rate over the window that aborts the ramp.
    #[must_use]
    pub fn abort_failure_rate(mut self, rate: f64) -> Self {
        self.abort_failure_rate = rate;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.duration.is_zero() {
            return Err(ConfigError::new("recovery_ramp.duration", self.duration, "a duration greater than zero"));
        }
        if !(self.min_fraction > 0.0 && self.min_fraction <= 1.0) {
            return Err(ConfigError::new(
                "recovery_ramp.min_fraction",
                self.min_fraction,
                "a fraction above 0.0 and at most 1.0 (at 0.0 the ramp would admit nothing at first)",
            ));
        }
        if !(self.aggression.is_finite() && self.aggression > 0.0) {
            return Err(ConfigError::new("recovery_ramp.aggression", self.aggression, "a number above 0.0"));
        }
        if self.window == 0 || self.window > MAX_RAMP_WINDOW {
            return Err(ConfigError::new("recovery_ramp.window", self.window, format!("from 1 to {MAX_RAMP_WINDOW}")));
        }
        if self.min_calls == 0 || self.min_calls > self.window {
            return Err(ConfigError::new(
                "recovery_ramp.min_calls",
                self.min_calls,
                format!("from 1 to the window's {} outcomes", self.window),
            ));
        }
        if self.abort_after == 0 || self.abort_after > self.window {
            return Err(ConfigError::new(
                "recovery_ramp.abort_after",
                self.abort_after,
                format!("from 1 to the window's {} outcomes", self.window),
            ));
        }
        if !(self.abort_failure_rate > 0.0 && self.abort_failure_rate <= 1.0) {
            return Err(ConfigError::new(
                "recovery_ramp.abort_failure_rate",
                self.abort_failure_rate,
                "a rate above 0.0 and at most 1.0",
            ));
        }
        Ok(())
    }

    pub(crate) fn rule(&self) -> RampRule {
        RampRule {
            duration: nanos(self.duration).max(1),
            min_fraction: self.min_fraction,
            exponent: 1.0 / self.aggression,
            window: self.window,
            min_calls: self.min_calls,
            abort_after: self.abort_after,
            abort_failure_rate: self.abort_failure_rate,
        }
    }
}

impl Default for Ramp {
    fn default() -> Self {
        Self::new()
    }
}

/// One whole call in the accumulator's fixed point (32 fractional bits).
pub(crate) const ONE: u64 = 1 << 32;

/// The ramp's rules, pure: the fraction, the outcome history packed in the state word,
/// the abort and exit decisions, the accumulator step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RampRule {
    /// In nanoseconds.
    pub(crate) duration: u64,
    min_fraction: f64,
    exponent: f64,
    window: u32,
    min_calls: u32,
    abort_after: u32,
    abort_failure_rate: f64,
}

/// The ramp's latest outcomes, newest in bit 0 (1 = failed), under a sentinel bit above
/// the oldest: `0b1` is empty, `0b1_01` is a success then a failure. Fits the 20 bits
/// of the state word's probe counts (a sentinel and 19 outcomes). Zero reads as empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct History(pub(crate) u32);

impl History {
    pub(crate) const EMPTY: Self = Self(1);

    /// How many outcomes it holds.
    pub(crate) const fn len(self) -> u32 {
        let h = if self.0 == 0 { 1 } else { self.0 };
        31 - h.leading_zeros()
    }

    /// The outcomes, without the sentinel.
    const fn bits(self) -> u32 {
        if self.0 == 0 { 0 } else { self.0 & !(1 << self.len()) }
    }

    /// How many of them failed.
    pub(crate) const fn failures(self) -> u32 {
        self.bits().count_ones()
    }

    /// The successes at the newest end.
    pub(crate) const fn successes_streak(self) -> u32 {
        let streak = self.bits().trailing_zeros();
        if streak > self.len() { self.len() } else { streak }
    }

    /// The failures at the newest end.
    pub(crate) const fn streak(self) -> u32 {
        let streak = (!self.bits()).trailing_zeros();
        if streak > self.len() { self.len() } else { streak }
    }
}

impl RampRule {
    /// The fraction admitted at `elapsed` nanoseconds into the ramp, in the
    /// accumulator's fixed point (`ONE` is every call).
    pub(crate) fn fraction(&self, elapsed: u64) -> u64 {
        if elapsed >= self.duration {
            return ONE;
        }
        let progress = (elapsed as f64 / self.duration as f64).powf(self.exponent);
        let f = progress.max(self.min_fraction).clamp(0.0, 1.0);
        // Rounded to the nearest 2⁻³²: 0.1 of ten calls is one call, not just under.
        ((f * ONE as f64).round() as u64).clamp(1, ONE)
    }

    /// The fraction admitted at `now` by a ramp that ends at `end`: counted back from its
    /// end (a clock that began less than a ramp ago reads it right); `None` for the end:
    /// a ramp whose end is not stored yet has just begun.
    pub(crate) fn fraction_at(&self, now: u64, end: Option<u64>) -> u64 {
        match end {
            Some(end) if now >= end => ONE,
            Some(end) => self.fraction(self.duration.saturating_sub(end - now)),
            None => self.fraction(0),
        }
    }

    /// A fraction in the accumulator's fixed point, as a share of calls.
    pub(crate) fn share(fraction: u64) -> f64 {
        fraction as f64 / ONE as f64
    }

    /// One accumulator step for a call when the fraction is `f`: the new accumulator,
    /// and whether the call is admitted.
    pub(crate) const fn admit(acc: u64, f: u64) -> (u64, bool) {
        let sum = acc + f;
        if sum >= ONE { (sum - ONE, true) } else { (sum, false) }
    }

    /// `h` with one more outcome, the oldest dropped past the window.
    pub(crate) const fn push(&self, h: History, failed: bool) -> History {
        let len = h.len();
        let bits = (h.bits() << 1) | failed as u32;
        if len < self.window {
            History((1 << (len + 1)) | bits)
        } else {
            History((1 << self.window) | (bits & ((1 << self.window) - 1)))
        }
    }

    /// Whether the outcomes in `h` abort the ramp.
    pub(crate) fn aborts(&self, h: History) -> bool {
        h.streak() >= self.abort_after
            || (h.len() >= self.min_calls && f64::from(h.failures()) >= self.abort_failure_rate * f64::from(h.len()))
    }

    /// Whether the ramp saw enough to count as tested: its end forgets the openings.
    pub(crate) const fn observed(&self, h: History) -> bool {
        h.len() >= self.min_calls
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn rule() -> RampRule {
        Ramp::new().duration(Duration::from_secs(10)).rule()
    }

    #[test]
    fn the_fraction_rises_from_its_floor_to_one() {
        let r = rule();
        assert_eq!(r.fraction(0), (0.1 * ONE as f64).round() as u64);
        assert_eq!(r.fraction(S / 2), (0.1 * ONE as f64).round() as u64); // 5 % < the floor
        assert_eq!(r.fraction(5 * S), ONE / 2);
        assert_eq!(r.fraction(10 * S), ONE);
        assert_eq!(r.fraction(u64::MAX), ONE);
        let fast = Ramp::new().duration(Duration::from_secs(10)).aggression(2.0).rule();
        assert!((fast.fraction(S * 25 / 10) as f64 / ONE as f64 - 0.5).abs() < 1e-9); // √0.25
    }

    #[test]
    fn the_accumulator_admits_exactly_the_sum() {
        let f = ONE / 3;
        let (mut acc, mut admitted) = (0, 0);
        for i in 1..=300u64 {
            let (next, admit) = RampRule::admit(acc, f);
            acc = next;
            admitted += u64::from(admit);
            let owed = i * f / ONE;
            assert!(admitted == owed, "{i}: {admitted} vs {owed}");
        }
    }

    #[test]
    fn a_ramp_read_after_its_end_admits_everything() {
        let r = Ramp::new().duration(Duration::from_secs(10)).rule();
        const SECOND: u64 = 1_000_000_000;
        let end = 50 * SECOND;
        assert_eq!(r.fraction_at(end, Some(end)), ONE);
        // A caller that read the clock after the end, before the ramp closed.
        assert_eq!(r.fraction_at(end + 1, Some(end)), ONE);
        assert!(r.fraction_at(end - SECOND, Some(end)) < ONE);
    }

    #[test]
    fn history_keeps_the_window() {
        let r = Ramp::new().window(4).min_calls(2).abort_after(3).rule();
        let mut h = History::EMPTY;
        assert_eq!((h.len(), h.failures(), h.streak()), (0, 0, 0));
        for failed in [true, false, true, true] {
            h = r.push(h, failed);
        }
        assert_eq!((h.len(), h.failures(), h.streak()), (4, 3, 2));
        assert_eq!(h.successes_streak(), 0);
        h = r.push(h, false); // drops the oldest failure
        assert_eq!((h.len(), h.failures(), h.streak()), (4, 2, 0));
        assert_eq!(h.successes_streak(), 1);
        // All successes: the streak is the window's length, not the word's zero bits.
        for _ in 0..4 {
            h = r.push(h, false);
        }
        assert_eq!((h.len(), h.failures(), h.successes_streak()), (4, 0, 4));
        assert_eq!(History::EMPTY.successes_streak(), 0);
        assert_eq!(History(0).len(), 0);
        let full = Ramp::new().window(MAX_RAMP_WINDOW).abort_after(1).min_calls(1).rule();
        let mut h = History::EMPTY;
        for _ in 0..100 {
            h = full.push(h, true);
        }
        assert_eq!((h.len(), h.failures(), h.streak()), (19, 19, 19));
        assert!(h.0 < 1 << 20, "fits the word's 20 bits");
    }

    #[test]
    fn aborts_on_a_streak_or_a_rate() {
        let r = Ramp::new().rule(); // 3 in a row, or 50 % of at least 5
        let of = |outcomes: &[bool]| outcomes.iter().fold(History::EMPTY, |h, f| r.push(h, *f));
        assert!(!r.aborts(of(&[true, true])));
        assert!(r.aborts(of(&[true, true, true])));
        assert!(!r.aborts(of(&[true, false, true, false])), "below min_calls");
        assert!(r.aborts(of(&[true, false, true, false, true])), "3 of 5");
        assert!(!r.aborts(of(&[true, false, false, false, true, false])), "2 of 6");
        assert!(r.observed(of(&[false; 5])));
        assert!(!r.observed(of(&[false; 4])));
    }
}
