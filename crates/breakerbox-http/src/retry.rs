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

/// The buckets of a budget's window.
const BUCKETS: usize = 10;
/// The count of a requests word (its low half).
const REQUESTS: u64 = u32::MAX as u64;
/// Set in the retries word of an epoch the window has moved past: no retry commits into it.
const SEALED: u64 = 1 << 31;
/// The count of a retries word (below the seal).
const RETRIES: u64 = SEALED - 1;

/// Requests and retries over a sliding window of `BUCKETS` buckets, without a lock.
///
/// Every request deposits and every retry withdraws, from every thread and task
/// of the breaker and its clones: the budget is on the request path, where a mutex made
/// all of them take turns on one lock, and a thread preempted while holding it stalled
/// the others. Here each call is a clock reading, loads, and one compare-and-swap.
///
/// # Design
///
/// Time is cut into slots of a tenth of the window; a slot's *epoch* is its number.
///
/// - **A count and its epoch change together.** Each bucket is two words, its requests
///   and its retries, each the count in the low half under the low 32 bits of the
///   epoch it counts (the tag). Reusing a bucket for a new slot and counting into it is
///   one compare-and-swap, so a deposit racing the reuse either lands after the reset
///   or fails and retries: no count is lost to a reset, and none leaks from the
///   bucket's previous slot. A word whose tag is not the epoch its bucket stands for in
///   the current window counts as empty.
/// - **One newest epoch, `head`, in full.** Every call works in it: a thread whose clock
///   reading is older (it read the clock just before another thread moved the window
///   on) counts in the newest slot instead. The first call to see the clock past it
///   moves it on with a compare-and-swap, which any number of threads may attempt at
///   once; before publishing, it seals the old head's retries word, then empties every
///   word whose stale tag happens to equal its bucket's new epoch (a bucket untouched
///   for a multiple of 2^32 slots, which a 32-bit tag cannot tell from a fresh one).
/// - **A withdraw checks, then commits what it checked.** It reads its bucket's
///   retries, then the window's requests and other retries, then adds its retry with a
///   compare-and-swap that expects the retries it read, so two withdraws in the same
///   slot cannot both take the last retry, and one that loses the race counts again.
///   Retries are only ever committed into the head's bucket, and the head's bucket is
///   sealed before the head moves on, so by the time a withdraw reads the head every
///   older bucket's retry count is final: the check saw all of them. A withdraw that
///   finds its bucket sealed starts again in the newer epoch. Concurrent withdraws
///   therefore never take more than the allowance. A refusal is right too: the
///   requests were read after the retries, so they are at least those of the moment
///   the retries were read, when the window was full (no reserve-then-undo, whose
///   failed reservations would refuse others spuriously).
///
/// Why two 32-bit halves: a word is 64 bits, so a full epoch and a count do not fit
/// together; `head` keeps the full epoch instead, and the tags only have to tell the
/// epochs of one window from those of another. A slot counts up to 2^32 - 1 requests
/// and 2^31 - 1 retries, then saturates (fewer retries, never more). Only a call that
/// stalls between two of its instructions while the window moves on by a multiple of
/// 2^32 slots (136 years of the default 1 s slots) could mistake one tag for another.
struct Budget {
    cfg: RetryBudget,
    clock: AnyClock,
    slot: u64,
    head: CacheLine<AtomicU64>,
    buckets: CacheLine<[Bucket; BUCKETS]>,
}

/// A bucket's two words, side by side: a request's deposit and its withdraw write the
/// same cache line, so that a line moves between cores once per request, not twice.
#[derive(Default)]
struct Bucket {
    requests: AtomicU64,
    retries: AtomicU64,
}

/// One value alone on its cache lines (128 bytes: two lines, for adjacent-line
/// prefetch): `head`, read by every call, does not share a line with the words every
/// call writes.
#[repr(align(128))]
struct CacheLine<T>(T);

/// A word of `count` under the tag of `epoch`.
const fn pack(epoch: u64, count: u64) -> u64 {
    ((epoch as u32 as u64) << 32) | count
}

/// The tag of a word.
const fn tag(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The bucket of `epoch`.
const fn bucket(epoch: u64) -> usize {
    (epoch % BUCKETS as u64) as usize
}

/// The epoch bucket `j` stands for while `head` is the newest: the one of the last
/// `BUCKETS` that falls in it.
const fn epoch_of(head: u64, j: usize) -> u64 {
    head - (head - j as u64) % BUCKETS as u64
}

impl Budget {
    fn new(cfg: RetryBudget, clock: AnyClock) -> Self {
        let window = u64::try_from(cfg.window.as_nanos()).unwrap_or(u64::MAX);
        let slot = (window / BUCKETS as u64).max(1);
        Self {
            cfg,
            clock,
            slot,
            // Epochs count from `BUCKETS`, so that the window of the first head is
            // epochs 0 to 9, one per bucket, all empty (every word zero is each bucket's
            // epoch with a count of zero, or a stale word: both count nothing).
            head: CacheLine(AtomicU64::new(BUCKETS as u64 - 1)),
            buckets: CacheLine(std::array::from_fn(|_| Bucket::default())),
        }
    }

    /// The epoch a call works in: the clock's, at least `floor`, or the newest published
    /// if that is later; the clock's moves the window on first.
    fn epoch(&self, floor: u64) -> u64 {
        let now = (self.clock.now() / self.slot).saturating_add(BUCKETS as u64).max(floor);
        // Acquire: pairs with the publishing compare-and-swap in `advance`, so that the
        // seal and the emptying done before it are seen by this call's loads.
        let head = self.head.0.load(Ordering::Acquire);
        if now <= head { head } else { self.advance(head, now) }
    }

    /// Moves the window on from `head` to `to`; returns the newest epoch published,
    /// `to` or a later one that another thread published first.
    #[cold]
    #[inline(never)]
    fn advance(&self, mut head: u64, to: u64) -> u64 {
        loop {
            if self.seal(head) && self.empty_collisions(head, to) {
                // AcqRel: Release publishes the seal and the emptying to every call that
                // reads the new head; Acquire, when another thread published first, for
                // the same of its head.
                match self.head.0.compare_exchange(head, to, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return to,
                    Err(newer) => head = newer,
                }
            } else {
                // Acquire: as in `epoch`.
                head = self.head.0.load(Ordering::Acquire);
            }
            if head >= to {
                return head;
            }
        }
    }

    /// Seals the retries word of `head`, so that no withdraw checked against the old
    /// window commits into it once the head has moved on. `false` if the head has
    /// moved on meanwhile (whoever moved it sealed it first).
    fn seal(&self, head: u64) -> bool {
        let cell = &self.buckets.0[bucket(head)].retries;
        // Acquire, here and below: a word another call wrote tells us, through its
        // Release, of the head that call read, and the check of `self.head` that
        // follows then sees that head or a later one.
        let mut word = cell.load(Ordering::Acquire);
        loop {
            let own = tag(word) == head as u32;
            if own && word & SEALED != 0 {
                return true;
            }
            // A word of a later lap is only written once the head has moved past this
            // one, and a word of an earlier lap is stale: sealed with a count of zero.
            if self.head.0.load(Ordering::Acquire) != head {
                return false;
            }
            let sealed = if own { word | SEALED } else { pack(head, SEALED) };
            // AcqRel: Release so that the calls which read the next head see the seal;
            // Acquire as for the load above.
            match cell.compare_exchange_weak(word, sealed, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// Empties each word whose bucket `to` gives a new epoch but whose stale tag is
    /// already that epoch's: the same low 32 bits, 2^32 slots or a multiple earlier.
    /// Before `to` is published nobody counts in those epochs, so such a word is stale.
    /// `false` if the head has moved on meanwhile.
    fn empty_collisions(&self, head: u64, to: u64) -> bool {
        for j in 0..BUCKETS {
            let epoch = epoch_of(to, j);
            if epoch <= head {
                continue; // the same epoch as before: its counts stay
            }
            for cell in [&self.buckets.0[j].requests, &self.buckets.0[j].retries] {
                let empty = pack(epoch, 0);
                // Acquire, and AcqRel below: as in `seal`.
                let mut word = cell.load(Ordering::Acquire);
                while tag(word) == epoch as u32 && word != empty {
                    if self.head.0.load(Ordering::Acquire) != head {
                        return false;
                    }
                    match cell.compare_exchange_weak(word, empty, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => break,
                        Err(now) => word = now,
                    }
                }
            }
        }
        true
    }

    fn deposit(&self) {
        let mut epoch = self.epoch(0);
        let mut cell = &self.buckets.0[bucket(epoch)].requests;
        // Acquire: as in `seal`.
        let mut word = cell.load(Ordering::Acquire);
        loop {
            let counted = if tag(word) == epoch as u32 {
                if word & REQUESTS == REQUESTS {
                    return; // saturated: this slot has counted 2^32 - 1 requests
                }
                word + 1
            } else if self.head.0.load(Ordering::Acquire) == epoch {
                // A stale word (a word of a later lap is written only once the head
                // has moved on): reuse the bucket and count in it, in one step.
                pack(epoch, 1)
            } else {
                epoch = self.epoch(0);
                cell = &self.buckets.0[bucket(epoch)].requests;
                word = cell.load(Ordering::Acquire);
                continue;
            };
            // Release: a call that reads this word learns of the head this one read (see
            // `seal`). Acquire on failure: as in `seal`.
            match cell.compare_exchange_weak(word, counted, Ordering::Release, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
    }

    fn withdraw(&self) -> bool {
        let mut floor = 0;
        loop {
            match self.take(&self.window(floor)) {
                Ok(granted) => return granted,
                Err(at_least) => floor = at_least,
            }
        }
    }

    /// The window a withdraw checks against, in the epoch of the call (at least
    /// `floor`): the retries word of its bucket, read first; the retries of the other
    /// buckets, which are final (see the type's docs); and the allowance, from requests
    /// read after the retries word, so that they are at least those of the moment it
    /// was read: a refusal is the right answer for that moment (more requests would
    /// only have allowed more).
    fn window(&self, floor: u64) -> Window {
        let mut epoch = self.epoch(floor);
        loop {
            // Acquire, here and below: as in `seal`.
            let word = self.buckets.0[bucket(epoch)].retries.load(Ordering::Acquire);
            let (mut requests, mut spent) = (0u64, 0u64);
            for j in 0..BUCKETS {
                let tag_j = epoch_of(epoch, j) as u32;
                let word = self.buckets.0[j].requests.load(Ordering::Acquire);
                if tag(word) == tag_j {
                    requests += word & REQUESTS;
                }
                if j != bucket(epoch) {
                    let word = self.buckets.0[j].retries.load(Ordering::Acquire);
                    if tag(word) == tag_j {
                        spent += word & RETRIES;
                    }
                }
            }
            // Read after the words: had one of them been rewritten for a later lap, this
            // would see the head that moved past, and every word read with another tag
            // than its bucket's epoch is stale, not newer.
            let head = self.head.0.load(Ordering::Acquire);
            if head == epoch {
                let allowed = f64::from(self.cfg.min_retries) + self.cfg.ratio * requests as f64;
                return Window { epoch, word, spent, allowed };
            }
            epoch = self.epoch(head);
        }
    }

    /// Takes a retry from `window` if it has one left: `Ok` with whether it did, or
    /// `Err(floor)` if the window must be counted again, in an epoch of at least
    /// `floor`.
    fn take(&self, window: &Window) -> Result<bool, u64> {
        let Window { epoch, mut word, spent, allowed } = *window;
        let cell = &self.buckets.0[bucket(epoch)].retries;
        loop {
            let mine = if tag(word) != epoch as u32 {
                // Acquire: as in `seal`.
                if self.head.0.load(Ordering::Acquire) != epoch {
                    return Err(0); // moved on
                }
                0 // stale: reused by the commit below
            } else if word & SEALED != 0 {
                // Whoever sealed it read a later clock: at least the next epoch.
                return Err(epoch.saturating_add(1));
            } else {
                word & RETRIES
            };
            if (spent + mine + 1) as f64 > allowed || mine == RETRIES {
                // A refusal is right only against requests read after these retries.
                return if word == window.word { Ok(false) } else { Err(epoch) };
            }
            // Release: as in `deposit`. Acquire on failure: as in `seal`.
            match cell.compare_exchange_weak(word, pack(epoch, mine + 1), Ordering::Release, Ordering::Acquire) {
                Ok(_) => return Ok(true),
                // Another withdraw took one: try again on its count. A grant needs no new
                // count of the requests: they can only have grown since.
                Err(now) => word = now,
            }
        }
    }
}

/// What a withdraw checks against; see [`Budget::window`].
#[derive(Clone, Copy)]
struct Window {
    epoch: u64,
    /// The retries word of the window's bucket, as counted.
    word: u64,
    /// The retries of the window's other buckets.
    spent: u64,
    allowed: f64,
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

    /// Under a fixed clock, `threads` threads each deposit `each` requests, then all race
    /// to withdraw until refused; returns the retries granted.
    fn race(budget: &Budget, threads: usize, each: u64) -> u64 {
        let barrier = std::sync::Barrier::new(threads);
        let granted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..each {
                        budget.deposit();
                    }
                    barrier.wait();
                    let mut mine = 0;
                    while budget.withdraw() {
                        mine += 1;
                    }
                    granted.fetch_add(mine, Ordering::Relaxed);
                });
            }
        });
        granted.into_inner()
    }

    #[test]
    fn racing_withdraws_take_exactly_the_allowance() {
        for round in 0..20 {
            let cfg = RetryBudget::new(0.25).with_min_retries(7);
            let budget = Budget::new(cfg, AnyClock::new(ManualClock::new()));
            // floor(7 + 0.25 * 8 * 1000): no thread may take one more, none may be refused early.
            assert_eq!(race(&budget, 8, 1000), 2007, "round {round}");
            assert!(!budget.withdraw());
        }
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let clock = ManualClock::new();
        let budget = Budget::new(RetryBudget::new(1.0).with_min_retries(0), AnyClock::new(clock.clone()));
        for _ in 0..5 {
            budget.deposit();
        }
        for _ in 0..5 {
            assert!(budget.withdraw());
        }
        assert!(!budget.withdraw(), "5 retries for 5 requests at a ratio of 1");
        // 9 s on (the last slot of the window): the first slot still counts, spent.
        clock.advance(Duration::from_secs(9));
        assert!(!budget.withdraw());
        // 10 s on: the first slot's bucket serves the new slot, empty.
        clock.advance(Duration::from_secs(1));
        assert!(!budget.withdraw(), "no request in the window: the reused bucket's 5 are gone");
        budget.deposit();
        assert!(budget.withdraw(), "its 5 retries are gone too");
        assert!(!budget.withdraw());
        let head = budget.head.0.load(Ordering::Relaxed);
        let requests = budget.buckets.0[bucket(head)].requests.load(Ordering::Relaxed);
        let retries = budget.buckets.0[bucket(head)].retries.load(Ordering::Relaxed);
        assert_eq!((requests, retries), (pack(head, 1), pack(head, 1)), "one new request and one new retry");
        // Ten windows on, at once: every bucket is stale, whatever its lap.
        clock.advance(Duration::from_secs(100));
        assert!(!budget.withdraw());
    }

    /// Counts in every bucket: 10 requests and 3 retries a slot (1 s) for a whole window,
    /// the clock moving on a slot after each.
    fn fill_a_window(budget: &Budget, clock: &ManualClock) {
        for _ in 0..BUCKETS {
            for _ in 0..10 {
                budget.deposit();
            }
            for _ in 0..3 {
                assert!(budget.withdraw());
            }
            clock.advance(Duration::from_secs(1));
        }
    }

    #[test]
    fn deposits_racing_rollovers_are_all_counted() {
        const EACH: u64 = 5_000;
        // As many threads as run at once (a thread waiting for a core races nothing).
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4)) as u64;
        for round in 0..200 {
            let clock = ManualClock::new();
            let budget = Budget::new(RetryBudget::new(0.5).with_min_retries(0), AnyClock::new(clock.clone()));
            // Stale counts in every bucket...
            fill_a_window(&budget, &clock);
            // ...then a whole window later, deposits race the clock through 9 slots (the
            // first thread moves it on): in each, the first deposit reuses a stale bucket
            // while the others count in it.
            clock.advance(Duration::from_secs(10));
            std::thread::scope(|s| {
                for t in 0..threads {
                    let (budget, clock) = (&budget, &clock);
                    s.spawn(move || {
                        for i in 1..=EACH {
                            budget.deposit();
                            if t == 0 && i % (EACH / BUCKETS as u64) == 0 && i < EACH {
                                clock.advance(Duration::from_secs(1));
                            }
                        }
                    });
                }
            });
            // All 9 slots are in the window: every deposit counts, and nothing stale.
            assert_eq!(race(&budget, 4, 0), threads * EACH / 2, "round {round}");
        }
    }

    #[test]
    fn deposits_and_withdraws_racing_rollovers_keep_a_retry_for_every_request() {
        const EACH: u64 = 50_000;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4)) as u64;
        let clock = ManualClock::new();
        // One retry per request and no minimum: each thread deposits before it
        // withdraws, so a refusal would mean a withdraw read more retries than requests.
        let budget = Budget::new(RetryBudget::new(1.0).with_min_retries(0), AnyClock::new(clock.clone()));
        // Stale counts in every bucket, a window ago: any that leaked into the race would
        // refuse a retry (retries) or leave one over at the end (requests).
        fill_a_window(&budget, &clock);
        clock.advance(Duration::from_secs(10));
        let refused = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (budget, clock, refused) = (&budget, &clock, &refused);
                s.spawn(move || {
                    for i in 1..=EACH {
                        budget.deposit();
                        if !budget.withdraw() {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        // Nine slots on, one at a time, each reusing a stale bucket
                        // while deposits and withdraws race into it: all in one window.
                        if t == 0 && i % (EACH / BUCKETS as u64) == 0 && i < EACH {
                            clock.advance(Duration::from_secs(1));
                        }
                    }
                });
            }
        });
        assert_eq!(refused.into_inner(), 0);
        assert!(!budget.withdraw(), "and the budget is spent exactly");
    }

    #[test]
    fn a_withdraw_that_counted_before_the_window_moved_cannot_commit_after() {
        let clock = ManualClock::new();
        let budget = Budget::new(RetryBudget::new(0.0).with_min_retries(2), AnyClock::new(clock.clone()));
        assert!(budget.withdraw(), "1 of 2, in the first slot");
        // A withdraw counts the first slot's window (room for one more)...
        let late = budget.window(0);
        // ...while another takes the last retry in the next slot.
        clock.advance(Duration::from_secs(1));
        assert!(budget.withdraw());
        // The late one must count again, in the new slot, and be refused there.
        let floor = budget.take(&late).expect_err("the first slot's bucket is sealed");
        assert_eq!(budget.take(&budget.window(floor)), Ok(false));
        assert!(!budget.withdraw());
    }

    #[test]
    fn a_withdraw_a_window_behind_cannot_overwrite_the_next_lap() {
        let clock = ManualClock::new();
        let budget = Budget::new(RetryBudget::new(0.0).with_min_retries(1), AnyClock::new(clock.clone()));
        // A withdraw counts the first slot's window (its bucket not yet used)...
        let late = budget.window(0);
        // ...while a whole window passes and another takes the one retry in the slot that
        // reuses the same bucket.
        clock.advance(Duration::from_secs(10));
        assert!(budget.withdraw());
        // The late one must not reset that bucket as if it were its own stale one.
        assert!(budget.take(&late).is_err());
        assert!(!budget.withdraw());
    }

    #[test]
    fn withdraws_racing_rollovers_never_overshoot() {
        const THREADS: usize = 4;
        const ALLOWED: u64 = 64;
        const STEPS: u64 = 25;
        let clock = ManualClock::new();
        let budget = Budget::new(RetryBudget::new(0.0).with_min_retries(ALLOWED as u32), AnyClock::new(clock.clone()));
        let granted = AtomicU64::new(0);
        // The clock's step, and the last step in which each thread was refused.
        let step = AtomicU64::new(0);
        let refused: [AtomicU64; THREADS] = std::array::from_fn(|_| AtomicU64::new(u64::MAX));
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for refused in &refused {
                s.spawn(|| {
                    while !stop.load(Ordering::Acquire) {
                        // Acquire: the clock has reached this step before this withdraw reads it.
                        let seen = step.load(Ordering::Acquire);
                        if budget.withdraw() {
                            granted.fetch_add(1, Ordering::Relaxed);
                        } else {
                            refused.store(seen, Ordering::Release);
                        }
                    }
                });
            }
            for now in 0..=STEPS {
                if now > 0 {
                    // Every thread races the window onto the next slot, one slot at a time.
                    clock.advance(Duration::from_secs(1));
                    step.store(now, Ordering::Release);
                }
                // The slot is over once every thread has been refused in it.
                while refused.iter().any(|r| r.load(Ordering::Acquire) != now) {
                    std::thread::yield_now();
                }
            }
            stop.store(true, Ordering::Release);
        });
        // The allowance comes back whole every 10 slots (steps 0, 10 and 20), and never
        // more: each slot ends only when the window is full.
        assert_eq!(granted.into_inner(), ALLOWED * (STEPS / 10 + 1));
    }

    #[test]
    fn tags_that_wrap_do_not_bring_old_counts_back() {
        let clock = ManualClock::new();
        // A 10 ns window: 1 ns slots, so 2^32 slots are a few seconds of clock.
        let cfg = RetryBudget::new(1.0).with_min_retries(0).with_window(Duration::from_nanos(10));
        let budget = Budget::new(cfg, AnyClock::new(clock.clone()));
        for _ in 0..100 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        // 5 * 2^33 slots on, every bucket's new epoch has the low 32 bits of its old one.
        clock.advance(Duration::from_nanos(5 << 33));
        assert!(!budget.withdraw(), "the requests of 5 * 2^33 slots ago are gone");
        budget.deposit();
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
