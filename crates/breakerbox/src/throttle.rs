//! Adaptive throttling: the client-side throttle of Google's SRE book, beside the
//! classic rules, for the backend that is overloaded rather than dead.
//!
//! A classic breaker is all or nothing. In a brownout (the backend serves part of its
//! load and sheds the rest with 503s) it trips, a probe then finds the briefly idle
//! backend healthy, it closes, every caller rushes back in, and it trips again: goodput
//! falls far below what the backend can serve. A throttle instead rejects a fraction
//! of the calls locally, while closed, so that what reaches the backend stays near what
//! it accepts:
//!
//! ```text
//! p = 0                                                         if R < min_requests
//! p = min(max_reject, (max(0, R − k·A) / (R + padding))^(1/aggression))   otherwise
//! ```
//!
//! over a sliding time window, where `R` is the requests (every call admitted, and
//! every call the throttle rejected when [`count_local_rejections`] is on) and `A` the
//! accepts: calls the backend answered with anything but an overload (see below). At
//! `k = 2` the backend sees at most about two requests per request it accepts, so in
//! steady overload it rejects about one per accept, and no more.
//!
//! # What counts
//!
//! - A request is counted when it is **attempted** (admitted), not when it completes:
//!   counting on completion would postpone throttling by the round trip.
//! - An accept is any reported outcome but an overload: a success, a failure that is
//!   the caller's or the backend's own (a 500, a validation error), an ignored outcome
//!   (a 404 is the backend doing its work). An overload is a failure reported with
//!   [`Report::overloaded`](crate::Report::overloaded): 429, 502, 503, 504, a refused
//!   connection, a timeout. `breakerbox-http`'s classifiers mark these.
//! - A permit dropped without a report (a cancelled call) gives its request back: it
//!   says nothing about the backend.
//! - The throttle's own rejections are never failures, never counted by the classic
//!   rules, and a [`Rejected`](crate::Rejected) from it says
//!   [`RejectReason::Throttled`](crate::RejectReason::Throttled), with the reject
//!   probability and a `retry_after` of one bucket (when `p` is next recomputed).
//!
//! # On the call path
//!
//! `p` is recomputed off the decision, when the newest bucket changes or every 64th
//! request of a bucket, and stored as one fixed-point word: the decision is one load
//! and, when `p > 0`, a draw from a per-thread generator (no shared write). Counting
//! the request is one update of the newest bucket. Time comes from the breaker's clock;
//! with the default [`MonotonicClock`](crate::MonotonicClock) it is the shared 5 ms
//! tick (one relaxed load), since buckets are a second wide by default. A breaker built
//! without a throttle pays nothing for it: its closed admissions stay one load and one
//! bit test; with one, they take the rules' path and then the throttle's (about 30 ns
//! a call in all, most of it the two bucket updates: BENCHMARKS.md, `protections`).
//!
//! # With the classic rules
//!
//! The throttle runs while the breaker is closed; the classic rules still open it. Set
//! them so that a brownout held at `k` does not trip them (at `k = 2` about half the
//! calls that reach the backend fail with an overload), while a dead backend does: for
//! example [`Policy::failure_rate(0.9)`](crate::Policy::failure_rate) rather than a
//! short streak of consecutive failures, judged over a full window (`min_calls` equal
//! to the window): at a brownout's onset, shed calls come back at once while served
//! ones take their time, so the first 20 outcomes can be 90 % overloads before the
//! throttle has seen enough to act (the real-time scorecard in BENCHMARKS.md tripped
//! that way, with the default `min_calls` of 20).
//!
//! # Recovery
//!
//! When the backend recovers, every admitted call is accepted. With local rejections
//! counted, `1 − p` grows by a factor of about `k` per window, so `p` is back to 0
//! within `⌈log_k(1 / (1 − max_reject))⌉ + 1` windows (4 windows, 2 minutes, by
//! default); without, `p` follows the backend's success rate `s` as
//! `(1 − k·s)^(1/aggression)` and is 0 within one window.
//!
//! [`count_local_rejections`]: Throttle::count_local_rejections
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use breakerbox::{Breaker, Policy, Throttle};
//!
//! let breaker = Breaker::builder()
//!     .name("search")
//!     .throttle(Throttle::new().k(2.0).window(Duration::from_secs(30)))
//!     // A brownout held at k = 2 fails about half its calls: trip only on worse.
//!     .policy(Policy::failure_rate(0.9).over_calls(100).min_calls(100))
//!     .build()?;
//! assert_eq!(breaker.metrics().reject_probability, 0.0);
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```

pub(crate) mod throttler;

use std::time::Duration;

use crate::ConfigError;

/// Settings of [adaptive throttling](self); see the module docs for the rule.
///
/// | setting | default | range |
/// |---|---|---|
/// | [`window`](Self::window) | 30 s | ≥ 1 ms per bucket |
/// | [`buckets`](Self::buckets) | 30 | 1 to 1000 |
/// | [`k`](Self::k) | 2.0 | ≥ 1.0 |
/// | [`padding`](Self::padding) | 1.0 | ≥ 0.0 |
/// | [`min_requests`](Self::min_requests) | 20 | any |
/// | [`aggression`](Self::aggression) | 1.0 | ≥ 1.0 |
/// | [`max_reject`](Self::max_reject) | 0.9 | above 0.0, below 1.0 |
/// | [`count_local_rejections`](Self::count_local_rejections) | true | |
#[derive(Clone, Debug, PartialEq)]
pub struct Throttle {
    pub(crate) window: Duration,
    pub(crate) buckets: u32,
    pub(crate) k: f64,
    pub(crate) padding: f64,
    pub(crate) min_requests: u32,
    pub(crate) aggression: f64,
    pub(crate) max_reject: f64,
    pub(crate) count_local_rejections: bool,
}

impl Throttle {
    /// A throttle with every setting at its default (the table above).
    pub fn new() -> Self {
        Self {
            window: Duration::from_secs(30),
            buckets: 30,
            k: 2.0,
            padding: 1.0,
            min_requests: 20,
            aggression: 1.0,
            max_reject: 0.9,
            count_local_rejections: true,
        }
    }

    /// How much history `R` and `A` are summed over. Make it longer than the longest
    /// call: a request counted at admission and accepted after the window has slid
    /// past it counts as never accepted.
    #[must_use]
    pub fn window(mut self, span: Duration) -> Self {
        self.window = span;
        self
    }

    /// How many buckets the window slides by; also how often `p` is recomputed at the
    /// least, and the `retry_after` of a throttled rejection (window ÷ buckets).
    #[must_use]
    pub fn buckets(mut self, n: u32) -> Self {
        self.buckets = n;
        self
    }

    /// How many requests per accept the backend may see before the throttle rejects:
    /// at `k = 2` it rejects about one request per request it accepts. Lower is more
    /// aggressive; below 1 would throttle a healthy backend, so it is refused. Envoy's
    /// success-rate threshold `s` is `k = 1 / s`.
    #[must_use]
    pub fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// Added to `R` in the denominator, so that a handful of requests cannot give a
    /// probability near 1.
    #[must_use]
    pub fn padding(mut self, padding: f64) -> Self {
        self.padding = padding;
        self
    }

    /// Below this many requests in the window, `p` is 0: too little traffic to judge.
    #[must_use]
    pub fn min_requests(mut self, n: u32) -> Self {
        self.min_requests = n;
        self
    }

    /// The exponent `1/aggression` applied to the raw ratio: above 1 rejects more at
    /// the same ratio (Envoy's admission control).
    #[must_use]
    pub fn aggression(mut self, aggression: f64) -> Self {
        self.aggression = aggression;
        self
    }

    /// The highest reject probability: the rest always reaches the backend, so that
    /// the throttle can see it recover. Below 1.
    #[must_use]
    pub fn max_reject(mut self, p: f64) -> Self {
        self.max_reject = p;
        self
    }

    /// Whether the throttle's own rejections count as requests (the SRE book's rule).
    /// On, `p` also answers to how many calls the callers make; off, `p` is a function
    /// of the backend's success rate alone and falls faster when it recovers.
    #[must_use]
    pub fn count_local_rejections(mut self, on: bool) -> Self {
        self.count_local_rejections = on;
        self
    }

    /// The width of a bucket.
    pub(crate) fn bucket(&self) -> Duration {
        self.window / self.buckets.max(1)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let finite_at_least = |value: f64, low: f64| value.is_finite() && value >= low;
        if self.buckets == 0 || self.buckets > 1000 {
            return Err(ConfigError::new("throttle.buckets", self.buckets, "from 1 to 1000"));
        }
        if self.window.is_zero() || self.bucket() < Duration::from_millis(1) {
            return Err(ConfigError::new(
                "throttle.window",
                self.window,
                format!("a duration of at least 1ms per bucket ({} buckets)", self.buckets),
            ));
        }
        if !finite_at_least(self.k, 1.0) {
            return Err(ConfigError::new(
                "throttle.k",
                self.k,
                "a number of at least 1.0 (below 1, a healthy backend is throttled)",
            ));
        }
        if !finite_at_least(self.padding, 0.0) {
            return Err(ConfigError::new("throttle.padding", self.padding, "a number of at least 0.0"));
        }
        if !finite_at_least(self.aggression, 1.0) {
            return Err(ConfigError::new("throttle.aggression", self.aggression, "a number of at least 1.0"));
        }
        if !(self.max_reject > 0.0 && self.max_reject < 1.0) {
            return Err(ConfigError::new(
                "throttle.max_reject",
                self.max_reject,
                "a probability above 0.0 and below 1.0 (at 1.0 no call reaches the backend to show it recovered)",
            ));
        }
        Ok(())
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}
