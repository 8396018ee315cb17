//! Retries: how many attempts, how long between them, and a budget that keeps them rare.
//!
//! Every attempt goes through the breaker, so the breaker counts each one, and a
//! rejection ends the request at once: retrying into an open circuit would only add load
//! to a server that is already down.
//!
//! # Why a budget and not only a maximum?
//!
//! "At most 3 attempts" triples the load on a server at the moment it starts to fail,
//! which is how a slowdown becomes an outage (a retry storm). A budget caps retries at a
//! fraction of recent requests (20 % by default, plus a few per window so that a quiet
//! client can still retry): when most requests fail, most are not retried.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakerbox::{AnyClock, Backoff};
use http::Method;

use crate::ConfigError;

/// A retry policy: at most `attempts` attempts per request, exponential backoff with
/// jitter between them (the core's [`Backoff`]), within a [`RetryBudget`].
///
/// Only idempotent methods (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`, `TRACE`) are
/// retried unless [`with_all_methods`](Self::with_all_methods) says otherwise. A failure
/// whose `Retry-After` asks for longer than the longest backoff is not retried.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox_http::{HttpBreaker, Retry, RetryBudget};
///
/// let breaker = HttpBreaker::builder(reqwest::Client::new())
///     .retry(
///         Retry::attempts(3)
///             .with_backoff(Duration::from_millis(100), Duration::from_secs(2))
///             .with_budget(RetryBudget::new(0.1)),
///     )
///     .build()?;
/// # let _ = breaker;
/// # Ok::<(), breakerbox_http::ConfigError>(())
/// ```
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | backoff | 50 ms, doubling, at most 2 s |
/// | jitter | 0.5 (each wait shortened by up to half, at random) |
/// | budget | [`RetryBudget::new(0.2)`](RetryBudget::new) |
/// | methods | idempotent only |
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    attempts: u32,
    backoff: Backoff,
    budget: Option<RetryBudget>,
    all_methods: bool,
}

/// The first wait of the default backoff.
pub(crate) const DEFAULT_BASE: Duration = Duration::from_millis(50);
/// The longest wait of the default backoff.
pub(crate) const DEFAULT_MAX: Duration = Duration::from_secs(2);

impl Retry {
    /// At most `attempts` attempts per request, the first included (at least 1; 1 means
    /// no retry).
    pub const fn attempts(attempts: u32) -> Self {
        Self {
            attempts,
            backoff: Backoff::new(DEFAULT_BASE, DEFAULT_MAX).with_jitter(0.5),
            budget: Some(RetryBudget::new(0.2)),
            all_methods: false,
        }
    }

    /// Waits `base` before the first retry, doubling each time, at most `max`.
    #[must_use]
    pub const fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(base, max).with_jitter(self.backoff.jitter());
        self
    }

    /// Shortens each wait by a random fraction of up to `fraction` (0.0 to 1.0), so that
    /// clients that failed together do not retry together.
    #[must_use]
    pub const fn with_jitter(mut self, fraction: f64) -> Self {
        self.backoff = self.backoff.with_jitter(fraction);
        self
    }

    /// Waits exactly the backoff.
    #[must_use]
    pub const fn without_jitter(mut self) -> Self {
        self.backoff = self.backoff.without_jitter();
        self
    }

    /// Retries only within `budget`.
    #[must_use]
    pub const fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Retries every failed request, up to the attempts: no budget. Beware retry storms.
    #[must_use]
    pub const fn without_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Retries every method, `POST` and `PATCH` included: only for servers where a
    /// repeated request is harmless.
    #[must_use]
    pub const fn with_all_methods(mut self) -> Self {
        self.all_methods = true;
        self
    }

    /// Retries idempotent methods only (the default).
    #[must_use]
    pub const fn without_all_methods(mut self) -> Self {
        self.all_methods = false;
        self
    }

    /// The most attempts per request.
    pub const fn max_attempts(&self) -> u32 {
        self.attempts
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.attempts == 0 {
            return Err(ConfigError::new("retry.attempts", 0, "at least 1"));
        }
        let (base, max, jitter) = (self.backoff.base(), self.backoff.max(), self.backoff.jitter());
        if max < base {
            return Err(ConfigError::new("retry.max", max, format!("at least the base ({base:?})")));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ConfigError::new("retry.jitter", jitter, "a fraction from 0.0 to 1.0 (not NaN)"));
        }
        if let Some(b) = &self.budget {
            if !(b.ratio >= 0.0 && b.ratio.is_finite()) {
                return Err(ConfigError::new("retry.budget.ratio", b.ratio, "a finite ratio of 0.0 or more"));
            }
            if b.window.is_zero() {
                return Err(ConfigError::new("retry.budget.window", b.window, "a duration greater than zero"));
            }
        }
        Ok(())
    }
}

/// How many retries a breaker may make: at most `ratio` times the requests of the last
/// `window`, plus `min_retries` per window.
///
/// One budget serves every request of an [`HttpBreaker`](crate::HttpBreaker) and its
/// clones (all hosts together), and reads the breaker's clock
/// ([`Breaker::clock`](breakerbox::Breaker::clock)): a
/// [`ManualClock`](breakerbox::ManualClock) given to the builder moves its window too.
///
/// # Default
///
/// `RetryBudget::new(ratio)`: at least 10 retries per window, a window of 10 s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    ratio: f64,
    min_retries: u32,
    window: Duration,
}

impl RetryBudget {
    /// Retries up to `ratio` (for example 0.2 for 20 %) of recent requests.
    pub const fn new(ratio: f64) -> Self {
        Self { ratio, min_retries: 10, window: Duration::from_secs(10) }
    }

    /// Allows `n` retries per window on top of the ratio, so that a client with little
    /// traffic can still retry.
    #[must_use]
    pub const fn with_min_retries(mut self, n: u32) -> Self {
        self.min_retries = n;
        self
    }

    /// Counts requests and retries over the last `window`.
    #[must_use]
    pub const fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

// ===== impl RetryState =====

/// A retry policy at run time: the policy, its budget's counters and a jitter source.
pub(crate) struct RetryState {
    policy: Retry,
    budget: Option<Budget>,
    random: AtomicU64,
}

impl RetryState {
    pub(crate) fn new(policy: Retry, clock: AnyClock) -> Self {
        let budget = policy.budget.map(|cfg| Budget::new(cfg, clock));
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Self { policy, budget, random: AtomicU64::new(seed) }
    }

    /// Whether requests with `method` may be retried at all.
    pub(crate) fn applies_to(&self, method: &Method) -> bool {
        self.policy.attempts > 1 && (self.policy.all_methods || is_idempotent(method))
    }

    /// Counts a request (not a retry) in the budget.
    pub(crate) fn deposit(&self) {
        if let Some(b) = &self.budget {
            b.deposit();
        }
    }

    /// Whether attempt number `attempt` may be followed by another.
    pub(crate) fn has_attempts_after(&self, attempt: u32) -> bool {
        attempt < self.policy.attempts
    }

    /// The wait before the retry that follows attempt `attempt` (1-based), or `None` if
    /// there must be no retry: the server asked for longer than the longest backoff, or
    /// the budget is spent.
    pub(crate) fn next_wait(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry_after.is_some_and(|d| d > self.policy.backoff.max()) {
            return None;
        }
        if let Some(b) = &self.budget
            && !b.withdraw()
        {
            return None;
        }
        // Relaxed: the counter only has to change between calls, in any order.
        let random = Backoff::mix(self.random.fetch_add(Backoff::STEP, Ordering::Relaxed));
        let wait = self.policy.backoff.delay(attempt, random);
        Some(wait.max(retry_after.unwrap_or(Duration::ZERO)))
    }
}

impl fmt::Debug for RetryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryState").field("policy", &self.policy).finish_non_exhaustive()
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE)
}

// ===== impl Budget =====

const BUCKETS: usize = 10;

/// Requests and retries over a sliding window of `BUCKETS` buckets.
///
/// A mutex guards ten small counters: it is taken once per request and once per retry,
/// for a few nanoseconds, never across an await, and only when retries are enabled.
struct Budget {
    cfg: RetryBudget,
    clock: AnyClock,
    slot: u64,
    buckets: Mutex<[Bucket; BUCKETS]>,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    requests: u64,
    retries: u64,
}

impl Budget {
    fn new(cfg: RetryBudget, clock: AnyClock) -> Self {
        let window = u64::try_from(cfg.window.as_nanos()).unwrap_or(u64::MAX);
        let slot = (window / BUCKETS as u64).max(1);
        Self { cfg, clock, slot, buckets: Mutex::new([Bucket::default(); BUCKETS]) }
    }

    /// The current bucket, emptied if it last served an older slot.
    fn current<'a>(&self, buckets: &'a mut [Bucket; BUCKETS]) -> (u64, &'a mut Bucket) {
        // Epochs start at 1 so that a never-used bucket (epoch 0) is always stale.
        let epoch = self.clock.now() / self.slot + 1;
        let bucket = &mut buckets[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket { epoch, requests: 0, retries: 0 };
        }
        (epoch, bucket)
    }

    fn deposit(&self) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        self.current(&mut buckets).1.requests += 1;
    }

    fn withdraw(&self) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (epoch, _) = self.current(&mut buckets);
        let live = buckets.iter().filter(|b| b.epoch + (BUCKETS as u64) > epoch);
        let (requests, retries) = live.fold((0, 0), |(q, r), b| (q + b.requests, r + b.retries));
        let allowed = f64::from(self.cfg.min_retries) + self.cfg.ratio * requests as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.current(&mut buckets).1.retries += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakerbox::ManualClock;

    #[test]
    fn budget_allows_a_fraction_of_recent_requests() {
        let clock = ManualClock::new();
        let budget = Budget::new(RetryBudget::new(0.25).with_min_retries(0), AnyClock::new(clock.clone()));
        assert!(!budget.withdraw(), "no request yet, no retry");
        for _ in 0..8 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw(), "2 retries for 8 requests is 25 %");
        // The window slides: after 10 s the old requests no longer pay for retries.
        clock.advance(Duration::from_secs(10));
        assert!(!budget.withdraw());
        budget.deposit();
        budget.deposit();
        budget.deposit();
        budget.deposit();
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn min_retries_let_a_quiet_client_retry() {
        let budget = Budget::new(RetryBudget::new(0.0).with_min_retries(2), AnyClock::new(ManualClock::new()));
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let policy = Retry::attempts(10)
            .with_backoff(Duration::from_millis(100), Duration::from_millis(500))
            .without_jitter()
            .without_budget();
        let state = RetryState::new(policy, AnyClock::new(ManualClock::new()));
        let waits: Vec<_> = (1..=5).map(|a| state.next_wait(a, None).unwrap().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(state.next_wait(1, Some(Duration::from_millis(300))), Some(Duration::from_millis(300)));
        assert_eq!(state.next_wait(1, Some(Duration::from_secs(1))), None, "asks for longer than the cap");
    }

    #[test]
    fn jitter_only_shortens() {
        let policy =
            Retry::attempts(2).with_backoff(Duration::from_millis(100), Duration::from_secs(1)).without_budget();
        let state = RetryState::new(policy.with_jitter(1.0), AnyClock::new(ManualClock::new()));
        for _ in 0..100 {
            assert!(state.next_wait(1, None).unwrap() <= Duration::from_millis(100));
        }
    }

    #[test]
    fn bad_settings_name_their_field() {
        let cases = [
            (Retry::attempts(0), "retry.attempts"),
            (Retry::attempts(2).with_backoff(Duration::from_secs(2), Duration::from_secs(1)), "retry.max"),
            (Retry::attempts(2).with_jitter(f64::NAN), "retry.jitter"),
            (Retry::attempts(2).with_budget(RetryBudget::new(-1.0)), "retry.budget.ratio"),
            (Retry::attempts(2).with_budget(RetryBudget::new(0.1).with_window(Duration::ZERO)), "retry.budget.window"),
        ];
        for (retry, field) in cases {
            assert_eq!(retry.validate().unwrap_err().field(), field);
        }
    }

    #[test]
    fn only_idempotent_methods_by_default() {
        let state = RetryState::new(Retry::attempts(3), AnyClock::new(ManualClock::new()));
        assert!(state.applies_to(&Method::GET));
        assert!(!state.applies_to(&Method::POST));
        let state = RetryState::new(Retry::attempts(3).with_all_methods(), AnyClock::new(ManualClock::new()));
        assert!(state.applies_to(&Method::POST));
        let state = RetryState::new(Retry::attempts(1), AnyClock::new(ManualClock::new()));
        assert!(!state.applies_to(&Method::GET));
    }
}
