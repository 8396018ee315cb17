//! When to trip: the failure policies.
//!
//! A [`Policy`] is one rule or several (it trips when any of them trips). Each rule
//! misfires in its own way, so pick by the traffic you have:
//!
//! - [`Policy::consecutive_failures`] (the default, 5): the original's rule. Cheapest,
//!   reacts fast to a hard outage, needs no minimum volume. Blind to a steady partial
//!   outage: a service failing every other call never trips it.
//! - [`Policy::failure_rate`] over the last N calls or the last T of time, with a
//!   minimum number of calls: catches partial outages. Below the minimum it never
//!   trips, even at 100 % failures, so keep the minimum below your quiet-hour volume;
//!   a count window never decays at low traffic, a time window does.
//! - [`Policy::slow_calls`]: a rate of calls slower than a threshold. Catches a
//!   dependency that is drowning before it starts to fail. Needs call durations, so it
//!   reads the clock around each call.
//!
//! Only failures and slow calls are counted against a service. Ignored outcomes touch
//! no counter: they neither reset a consecutive streak nor dilute a rate. Rejections by
//! the breaker itself are never counted.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use breakerbox::{Breaker, Policy};
//!
//! let policy = Policy::consecutive_failures(5)
//!     .or(Policy::failure_rate(0.5).over_calls(100).min_calls(20))
//!     .or(Policy::slow_calls(Duration::from_secs(2), 0.8).over_time(Duration::from_secs(60)));
//! let breaker = Breaker::builder().policy(policy).build()?;
//! assert!(breaker.is_closed());
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```

pub(crate) mod consecutive;
pub(crate) mod in_flight;
pub(crate) mod tracker;
pub(crate) mod window;

use std::time::Duration;

use crate::ConfigError;

/// The rule (or rules) that decide when a closed breaker opens.
///
/// # Default
///
/// `Policy::consecutive_failures(5)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub(crate) rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Rule {
    Consecutive(u32),
    Rate(RatePolicy),
}

impl Policy {
    /// Trips on the `n`-th failure in a row; any success resets the streak.
    ///
    /// `n` must be at least 1 (checked by `build()`).
    pub fn consecutive_failures(n: u32) -> Self {
        Self { rules: vec![Rule::Consecutive(n)] }
    }

    /// Trips when the share of failed calls reaches `threshold` (0.0 to 1.0) once the
    /// window holds at least the minimum number of calls.
    ///
    /// # Default
    ///
    /// Over the last 100 calls, with at least 20 calls.
    pub fn failure_rate(threshold: f64) -> RatePolicy {
        RatePolicy::new(RateKind::Failure, threshold)
    }

    /// Trips when the share of calls that took `slower_than` or longer reaches
    /// `threshold` (0.0 to 1.0). A slow call counts as slow whether it succeeded or
    /// failed; in half-open, a slow probe counts as a failed probe.
    ///
    /// # Default
    ///
    /// Over the last 100 calls, with at least 20 calls.
    pub fn slow_calls(slower_than: Duration, threshold: f64) -> RatePolicy {
        RatePolicy::new(RateKind::Slow(slower_than), threshold)
    }

    /// A policy that trips when any of `policies` trips.
    ///
    /// An empty list fails at `build()`.
    pub fn any<I, P>(policies: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Policy>,
    {
        Self { rules: policies.into_iter().flat_map(|p| p.into().rules).collect() }
    }

    /// This policy, or `other`: trips when either trips.
    #[must_use]
    pub fn or(mut self, other: impl Into<Policy>) -> Self {
        self.rules.extend(other.into().rules);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.rules.is_empty() {
            return Err(ConfigError::new("policy", "[]", "at least one rule"));
        }
        for rule in &self.rules {
            match rule {
                Rule::Consecutive(0) => {
                    return Err(ConfigError::new("policy.consecutive_failures", 0, "at least 1"));
                }
                Rule::Consecutive(_) => {}
                Rule::Rate(r) => r.validate()?,
            }
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::consecutive_failures(5)
    }
}

/// A rate rule: a failure rate or a slow-call rate over a window.
///
/// Built by [`Policy::failure_rate`] or [`Policy::slow_calls`]; converts into a
/// [`Policy`].
#[derive(Clone, Debug, PartialEq)]
pub struct RatePolicy {
    pub(crate) kind: RateKind,
    pub(crate) threshold: f64,
    pub(crate) window: Window,
    /// `None`: the default, 20, clamped to a count window's size.
    pub(crate) min_calls: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RateKind {
    Failure,
    Slow(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Window {
    Calls(u32),
    Time { span: Duration, buckets: u32 },
}

/// The largest count window.
const MAX_WINDOW_CALLS: u32 = 1 << 20;

/// The settings of a rate rule that an error can name.
#[derive(Clone, Copy, Debug)]
enum Setting {
    Threshold,
    Window,
    Buckets,
    MinCalls,
}
/// The most buckets a time window may have.
const MAX_BUCKETS: u32 = 1_000;

impl RatePolicy {
    fn new(kind: RateKind, threshold: f64) -> Self {
        Self { kind, threshold, window: Window::Calls(100), min_calls: None }
    }

    /// Measures over the last `n` calls (a sliding count window; 1 to 1,048,576).
    #[must_use]
    pub fn over_calls(mut self, n: u32) -> Self {
        self.window = Window::Calls(n);
        self
    }

    /// Measures over the last `span` of time, in 10 buckets (a sliding time window
    /// that advances one bucket at a time).
    #[must_use]
    pub fn over_time(mut self, span: Duration) -> Self {
        self.window = Window::Time { span, buckets: 10 };
        self
    }

    /// Sets the number of buckets of a time window (1 to 1,000; each at least 1 µs).
    /// More buckets slide more smoothly and cost more to sum when a failure is recorded.
    /// No effect on a count window.
    #[must_use]
    pub fn buckets(mut self, n: u32) -> Self {
        if let Window::Time { buckets, .. } = &mut self.window {
            *buckets = n;
        }
        self
    }

    /// Sets the fewest calls the window must hold before the rate can trip: at least 1,
    /// and for a count window at most its size (more could never be reached, so
    /// `build()` refuses it). Default: 20, or the size of a count window smaller than
    /// that.
    #[must_use]
    pub fn min_calls(mut self, n: u32) -> Self {
        self.min_calls = Some(n);
        self
    }

    /// The config key of one of its settings, for [`ConfigError`], which holds
    /// `&'static str`: an exhaustive match over a closed set, so no key can be missing.
    fn field(&self, setting: Setting) -> &'static str {
        match (self.kind, setting) {
            (RateKind::Failure, Setting::Threshold) => "policy.failure_rate.threshold",
            (RateKind::Failure, Setting::Window) => "policy.failure_rate.window",
            (RateKind::Failure, Setting::Buckets) => "policy.failure_rate.buckets",
            (RateKind::Failure, Setting::MinCalls) => "policy.failure_rate.min_calls",
            (RateKind::Slow(_), Setting::Threshold) => "policy.slow_calls.threshold",
            (RateKind::Slow(_), Setting::Window) => "policy.slow_calls.window",
            (RateKind::Slow(_), Setting::Buckets) => "policy.slow_calls.buckets",
            (RateKind::Slow(_), Setting::MinCalls) => "policy.slow_calls.min_calls",
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(ConfigError::new(
                self.field(Setting::Threshold),
                self.threshold,
                "a rate from 0.0 to 1.0 (not NaN)",
            ));
        }
        if let RateKind::Slow(d) = self.kind
            && d.is_zero()
        {
            return Err(ConfigError::new("policy.slow_calls.slower_than", d, "a duration greater than zero"));
        }
        match self.window {
            Window::Calls(n) if n == 0 || n > MAX_WINDOW_CALLS => {
                return Err(ConfigError::new(self.field(Setting::Window), n, "from 1 to 1048576 calls"));
            }
            Window::Calls(_) => {}
            Window::Time { span, buckets } => {
                if span.is_zero() {
                    return Err(ConfigError::new(self.field(Setting::Window), span, "a duration greater than zero"));
                }
                if buckets == 0 || buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(self.field(Setting::Buckets), buckets, "from 1 to 1000"));
                }
                if span / buckets < Duration::from_micros(1) {
                    return Err(ConfigError::new(
                        self.field(Setting::Buckets),
                        buckets,
                        format!("few enough that each bucket of {span:?} is at least 1µs"),
                    ));
                }
            }
        }
        match (self.min_calls, self.window) {
            (Some(0), _) => return Err(ConfigError::new(self.field(Setting::MinCalls), 0, "at least 1")),
            // A count window holds at most its size: more could never be reached.
            (Some(n), Window::Calls(size)) if n > size => {
                return Err(ConfigError::new(
                    self.field(Setting::MinCalls),
                    n,
                    format!("from 1 to the window's {size} calls (a count window never holds more)"),
                ));
            }
            (Some(_) | None, Window::Calls(_) | Window::Time { .. }) => {}
        }
        Ok(())
    }

    /// The fewest calls before the rate can trip: as set, or the default (20) clamped to
    /// a count window's size, so that `over_calls(10)` alone trips after 10 calls.
    pub(crate) fn effective_min_calls(&self) -> u32 {
        const DEFAULT_MIN_CALLS: u32 = 20;
        match (self.min_calls, self.window) {
            (Some(n), _) => n,
            (None, Window::Calls(size)) => DEFAULT_MIN_CALLS.min(size),
            (None, Window::Time { .. }) => DEFAULT_MIN_CALLS,
        }
    }
}

impl From<RatePolicy> for Policy {
    fn from(r: RatePolicy) -> Self {
        Self { rules: vec![Rule::Rate(r)] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalid_setting_names_its_field() {
        let cases: Vec<(Policy, &str)> = vec![
            (Policy::consecutive_failures(0), "policy.consecutive_failures"),
            (Policy::failure_rate(1.5).into(), "policy.failure_rate.threshold"),
            (Policy::failure_rate(-0.1).into(), "policy.failure_rate.threshold"),
            (Policy::failure_rate(f64::NAN).into(), "policy.failure_rate.threshold"),
            (Policy::slow_calls(Duration::from_secs(1), f64::INFINITY).into(), "policy.slow_calls.threshold"),
            (Policy::slow_calls(Duration::ZERO, 0.5).into(), "policy.slow_calls.slower_than"),
            (Policy::failure_rate(0.5).over_calls(0).into(), "policy.failure_rate.window"),
            (Policy::failure_rate(0.5).over_calls(MAX_WINDOW_CALLS + 1).into(), "policy.failure_rate.window"),
            (Policy::failure_rate(0.5).over_time(Duration::ZERO).into(), "policy.failure_rate.window"),
            (
                Policy::failure_rate(0.5).over_time(Duration::from_secs(1)).buckets(0).into(),
                "policy.failure_rate.buckets",
            ),
            (
                Policy::failure_rate(0.5).over_time(Duration::from_nanos(500)).buckets(1).into(),
                "policy.failure_rate.buckets",
            ),
            (Policy::failure_rate(0.5).min_calls(0).into(), "policy.failure_rate.min_calls"),
            (Policy::slow_calls(Duration::from_secs(1), 0.5).min_calls(0).into(), "policy.slow_calls.min_calls"),
            (Policy::any(Vec::<Policy>::new()), "policy"),
        ];
        for (policy, field) in cases {
            let err = policy.validate().unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
    }

    #[test]
    fn or_and_any_collect_every_rule() {
        let p = Policy::consecutive_failures(3).or(Policy::failure_rate(0.5));
        assert_eq!(p.rules.len(), 2);
        let q = Policy::any([p.clone(), Policy::consecutive_failures(1)]);
        assert_eq!(q.rules.len(), 3);
        assert!(q.validate().is_ok());
    }
}
