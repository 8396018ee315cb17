//! The runtime side of a [`Policy`](crate::Policy): the counters its rules need.

use super::consecutive::Streak;
use super::window::{CountWindow, Counts, TimeWindow};
use super::{RateKind, RatePolicy, Rule, Window};
use crate::clock::nanos;
use crate::{Policy, TripCause};

#[derive(Debug)]
pub(crate) struct Tracker {
    streak: Option<Streak>,
    rates: Box<[Rate]>,
    /// Whether any rule needs the time of a call (slow calls, time windows).
    pub(crate) needs_time: bool,
    /// The smallest slow-call threshold, in nanoseconds: a probe at least this slow is a
    /// failed probe.
    pub(crate) slow_nanos: Option<u64>,
}

#[derive(Debug)]
struct Rate {
    slow_nanos: Option<u64>,
    threshold: f64,
    min_calls: u64,
    window: RateWindow,
}

#[derive(Debug)]
enum RateWindow {
    Calls(CountWindow),
    Time(TimeWindow),
}

impl Rate {
    fn new(p: &RatePolicy) -> Self {
        let window = match p.window {
            Window::Calls(n) => RateWindow::Calls(CountWindow::new(n)),
            Window::Time { span, buckets } => RateWindow::Time(TimeWindow::new(nanos(span), buckets)),
        };
        let slow_nanos = match p.kind {
            RateKind::Failure => None,
            RateKind::Slow(d) => Some(nanos(d)),
        };
        Self { slow_nanos, threshold: p.threshold, min_calls: u64::from(p.effective_min_calls()), window }
    }

    fn counts(&self, generation: u64, now: u64) -> Counts {
        match &self.window {
            RateWindow::Calls(w) => w.counts(generation),
            RateWindow::Time(w) => w.counts(generation, now),
        }
    }

    fn rate(&self, c: Counts) -> f64 {
        let bad = if self.slow_nanos.is_some() { c.slow } else { c.failures };
        if c.calls == 0 { 0.0 } else { bad as f64 / c.calls as f64 }
    }
}

impl Tracker {
    pub(crate) fn new(policy: &Policy) -> Self {
        let mut streak = None;
        let mut rates = Vec::new();
        for rule in &policy.rules {
            match rule {
                // Several consecutive rules: the smallest threshold trips first.
                Rule::Consecutive(n) => streak = Some(streak.map_or(*n, |m: u32| m.min(*n))),
                Rule::Rate(p) => rates.push(Rate::new(p)),
            }
        }
        let slow_nanos = rates.iter().filter_map(|r| r.slow_nanos).min();
        let needs_time = rates.iter().any(|r| r.slow_nanos.is_some() || matches!(r.window, RateWindow::Time(_)));
        Self { streak: streak.map(Streak::new), rates: rates.into(), needs_time, slow_nanos }
    }

    /// Records a counted outcome of `generation`; returns the rule that trips, if one
    /// does (the streak first, then the rate rules in order).
    #[inline]
    pub(crate) fn record(
        &self,
        generation: u64,
        failed: bool,
        duration: Option<u64>,
        now: u64,
        still_current: impl Fn() -> bool,
    ) -> Option<TripCause> {
        let mut trip = None;
        if let Some(streak) = &self.streak {
            if failed {
                if streak.failure(generation, &still_current) {
                    trip = Some(TripCause::ConsecutiveFailures);
                }
            } else {
                streak.success(generation);
            }
        }
        for rate in self.rates.iter() {
            let slow = rate.slow_nanos.is_some_and(|t| duration.is_some_and(|d| d >= t));
            match &rate.window {
                RateWindow::Calls(w) => w.record(generation, failed, slow, &still_current),
                RateWindow::Time(w) => w.record(generation, now, failed, slow),
            }
            let counts_against = if rate.slow_nanos.is_some() { slow } else { failed };
            if counts_against && trip.is_none() {
                let c = rate.counts(generation, now);
                if c.calls >= rate.min_calls && rate.rate(c) >= rate.threshold {
                    trip =
                        Some(if rate.slow_nanos.is_some() { TripCause::SlowCallRate } else { TripCause::FailureRate });
                }
            }
        }
        trip
    }

    /// Whether the policy has no rate rule (only a streak, or nothing).
    pub(crate) fn streak_only(&self) -> bool {
        self.rates.is_empty()
    }

    /// A success on a streak-only policy.
    #[inline(always)]
    pub(crate) fn success_on_streak(&self, generation: u64) {
        if let Some(streak) = &self.streak {
            streak.success(generation);
        }
    }

    pub(crate) fn consecutive_failures(&self, generation: u64) -> u32 {
        self.streak.as_ref().map_or(0, |s| s.current(generation))
    }

    /// What the window of the first rate rule holds now, with the slow calls of the
    /// first slow-call rule (a failure-rate rule does not count them).
    pub(crate) fn window_counts(&self, generation: u64, now: u64) -> Option<Counts> {
        let first = self.rates.first()?.counts(generation, now);
        let slow = self.rates.iter().find(|r| r.slow_nanos.is_some()).map_or(0, |r| r.counts(generation, now).slow);
        Some(Counts { slow, ..first })
    }

    /// The successes since the last failure, when the policy can tell: 0 while a
    /// failure streak runs; the newest successes of the first count window otherwise.
    /// No counter is kept for it on the call path (it would cost every call a shared
    /// write), so with neither it is `None`.
    pub(crate) fn consecutive_successes(&self, generation: u64) -> Option<u32> {
        if self.consecutive_failures(generation) > 0 {
            return Some(0);
        }
        self.rates.iter().find_map(|r| match &r.window {
            RateWindow::Calls(w) => Some(w.trailing_successes(generation).min(u64::from(u32::MAX)) as u32),
            RateWindow::Time(_) => None,
        })
    }

    /// The failure rate of the first failure-rate rule, and the slow-call rate of the
    /// first slow-call rule, as they stand.
    pub(crate) fn rates(&self, generation: u64, now: u64) -> (Option<f64>, Option<f64>) {
        let failure = self.rates.iter().find(|r| r.slow_nanos.is_none()).map(|r| r.rate(r.counts(generation, now)));
        let slow = self.rates.iter().find(|r| r.slow_nanos.is_some()).map(|r| r.rate(r.counts(generation, now)));
        (failure, slow)
    }
}
