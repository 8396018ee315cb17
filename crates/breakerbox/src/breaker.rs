//! The breaker handle, its builder, and permits.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::splitmix64;
use crate::clock::{AnyClock, Clock, nanos};
use crate::event::{Listeners, Reason, Recorded, Transition};
use crate::policy::tracker::Tracker;
use crate::state::packed::{
    self, CLOSED, DISABLED, Deadline, FORCED_OPEN, HALF_OPEN, MAX_OPENS, MAX_PROBES, OPEN, Word,
};
use crate::stats::{Metrics, Stats};
use crate::sync::{AtomicU64, CachePadded, Ordering};
use crate::telemetry::Telemetry;
use crate::{ConfigError, Error, Name, OpenWait, Outcome, Policy, Rejected, Report, State};

/// A circuit breaker: stops calling a service that keeps failing, then lets a few trial
/// calls through to find out whether it has recovered.
///
/// Build one with [`Breaker::builder`] (or [`Breaker::new`] for the defaults), then
/// send calls through [`call`](Self::call), [`call_async`](Self::call_async), or
/// [`try_acquire`](Self::try_acquire) and a [`Permit`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{Breaker, Error, OpenWait, Policy};
///
/// let breaker = Breaker::builder()
///     .name("inventory")
///     .policy(Policy::consecutive_failures(3))
///     .open_wait(OpenWait::fixed(Duration::from_secs(10)))
///     .build()?;
///
/// for _ in 0..3 {
///     let r: Result<(), Error<&str>> = breaker.call(|| Err("connection refused"));
///     assert!(matches!(r, Err(Error::Inner(_))));
/// }
/// // Open: the closure is not even called.
/// let r = breaker.call(|| Ok::<_, &str>("never runs"));
/// assert!(matches!(r, Err(Error::Rejected(_))));
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | [`name`](BreakerBuilder::name) | `"breaker"` |
/// | [`policy`](BreakerBuilder::policy) | [`Policy::consecutive_failures(5)`](Policy::consecutive_failures) |
/// | [`open_wait`](BreakerBuilder::open_wait) | [`OpenWait::fixed`] 30 s |
/// | [`half_open_probes`](BreakerBuilder::half_open_probes) | 1 |
/// | [`probe_lease`](BreakerBuilder::probe_lease) | 60 s |
/// | [`retry_after_limit`](BreakerBuilder::retry_after_limit) | 5 min |
/// | [`clock`](BreakerBuilder::clock) | [`MonotonicClock`] |
///
/// # Clone
///
/// A `Breaker` is a handle: clones share one breaker (one state, one set of counters).
/// Cloning costs one reference-count increment.
///
/// # Thread safety
///
/// Every method takes `&self` and is lock-free. A closed breaker admits a call with one
/// atomic load and records a success with one increment of a per-core counter, so
/// threads do not contend on a closed breaker.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The state word (see `state/packed.rs`), alone on its cache line: it is read by
    /// every call and written only by transitions.
    word: CachePadded<AtomicU64>,
    /// The end of the open wait (Open) or of the probe lease (HalfOpen), tagged.
    deadline: AtomicU64,
    /// When the current state began, on the breaker's clock.
    since: AtomicU64,
    /// The clock's reading when the breaker was built: deadlines are stored relative to it.
    base: u64,
    /// Openings since the breaker was built.
    opens: AtomicU64,
    /// A counter for jitter.
    random: AtomicU64,
    tracker: Tracker,
    stats: Stats,
    name: Name,
    probes: u32,
    probe_lease: u64,
    open_wait: OpenWait,
    retry_after_limit: Duration,
    clock: AnyClock,
    listeners: Listeners,
    telemetry: Telemetry,
    /// A success while closed needs only the counter and the streak: no clock, no
    /// window, no outcome listener.
    fast_success: bool,
}

// ===== impl Breaker =====

impl Breaker {
    /// A builder with every setting at its default.
    pub fn builder() -> BreakerBuilder {
        BreakerBuilder::new()
    }

    /// A breaker with every setting at its default (see the table above).
    pub fn new() -> Self {
        BreakerBuilder::new().build_valid()
    }

    /// Asks to make a call. On success, make the call and report how it went through the
    /// [`Permit`]; a permit dropped without a report records nothing and frees its slot.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the breaker is open, forced open, or half-open with every
    /// probe slot taken. A rejection is not counted as a failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use breakerbox::{Breaker, Outcome};
    ///
    /// let breaker = Breaker::new();
    /// match breaker.try_acquire() {
    ///     Ok(permit) => {
    ///         let status = 503; // make the call
    ///         permit.record(if status >= 500 { Outcome::Failure } else { Outcome::Success });
    ///     }
    ///     Err(rejected) => println!("not now: {rejected}"),
    /// }
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        match self.inner.acquire() {
            Ok(ticket) => Ok(Permit { inner: &self.inner, ticket }),
            Err(packed) => Err(self.inner.rejected(packed)),
        }
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a handle to the
    /// breaker, for futures and tasks that must be `'static`.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        match self.inner.acquire() {
            Ok(ticket) => Ok(OwnedPermit { inner: Arc::clone(&self.inner), ticket: Some(ticket) }),
            Err(packed) => Err(self.inner.rejected(packed)),
        }
    }

    /// Calls `f` through the breaker: `Ok` is a success, `Err` a failure. A panic in `f`
    /// is recorded as a failure and then continues to unwind.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] if the breaker refused the call (`f` did not run), or
    /// [`Error::Inner`] with `f`'s own error.
    #[inline]
    pub fn call<T, E, F>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.call_with(classify, f)
    }

    /// Calls `f` through the breaker, and lets `classify` decide what its result means:
    /// an `Ok` can be a failure (an HTTP 503), an `Err` can be ignored (a 404).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use breakerbox::{Breaker, Outcome};
    ///
    /// let breaker = Breaker::new();
    /// let status = breaker.call_with(
    ///     |r: &Result<u16, std::io::Error>| match r {
    ///         Ok(s) if *s >= 500 => Outcome::Failure,
    ///         Ok(_) => Outcome::Success,
    ///         Err(_) => Outcome::Failure,
    ///     },
    ///     || Ok(503),
    /// );
    /// assert_eq!(status.unwrap(), 503); // the caller still gets the response
    /// assert_eq!(breaker.metrics().failures, 1);
    /// ```
    #[inline]
    pub fn call_with<T, E, F, C, R>(&self, classify: C, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
        C: FnOnce(&Result<T, E>) -> R,
        R: Into<Report>,
    {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(classify(&result));
        result.map_err(Error::Inner)
    }

    /// Awaits `fut` through the breaker: `Ok` is a success, `Err` a failure. If the
    /// returned future is dropped before it completes (cancelled), nothing is recorded
    /// and the half-open slot, if any, is freed.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use breakerbox::Breaker;
    ///
    /// let breaker = Breaker::new();
    /// let answer = breaker.call_async(async { Ok::<_, std::io::Error>(42) }).await;
    /// assert_eq!(answer.unwrap(), 42);
    /// # });
    /// ```
    // A plain fn returning the inner future: an `async fn` here would nest one future
    // in another and move it on every call.
    pub fn call_async<T, E, F>(&self, fut: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async_with(classify, fut)
    }

    /// [`call_async`](Self::call_async) with a classifier, as in
    /// [`call_with`](Self::call_with).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    pub async fn call_async_with<T, E, F, C, R>(&self, classify: C, fut: F) -> Result<T, Error<E>>
    where
        F: Future<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> R,
        R: Into<Report>,
    {
        let permit = self.try_acquire()?;
        let result = fut.await;
        permit.record(classify(&result));
        result.map_err(Error::Inner)
    }

    /// The state. An open breaker whose wait has passed reports
    /// [`State::HalfOpen`] before any call arrives, as a trial call would be admitted.
    pub fn state(&self) -> State {
        let cur = self.inner.observe();
        match Word::kind_of(cur) {
            OPEN if self.inner.open_elapsed(cur, self.inner.now()) => State::HalfOpen,
            kind => State::from_kind(kind),
        }
    }

    /// Whether calls are being rejected: [`State::Open`] or [`State::ForcedOpen`].
    pub fn is_open(&self) -> bool {
        matches!(self.state(), State::Open | State::ForcedOpen)
    }

    /// Whether the breaker is half-open (or open with its wait passed).
    pub fn is_half_open(&self) -> bool {
        self.state() == State::HalfOpen
    }

    /// Whether the breaker is closed.
    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }

    /// Closes the breaker and clears the policy's counters (the original's
    /// `clear_state`). Also the way back from [`force_open`](Self::force_open) and
    /// [`disable`](Self::disable). Outcomes of calls admitted before the reset no
    /// longer count.
    pub fn reset(&self) {
        self.inner.manual(CLOSED, Reason::Reset);
    }

    /// Opens the breaker now for `wait`, whatever its state, as if its policy had
    /// tripped: calls are rejected until `wait` has passed, then it turns half-open as
    /// usual. Counts as an opening. Outcomes of calls admitted before no longer count.
    ///
    /// For coordinators that decide from outside the process: a fleet sharing state
    /// (`breakerbox-redis`), an operator's tool. The transition's reason is
    /// [`Reason::External`](crate::Reason::External).
    pub fn open_for(&self, wait: Duration) {
        self.inner.open_for(wait);
    }

    /// Holds the breaker open until `wait` from now. If it is Open, only its deadline
    /// moves (earlier or later): no new opening is counted, no event is emitted, and the
    /// next exponential wait does not grow. Otherwise it opens as
    /// [`open_for`](Self::open_for) does.
    ///
    /// For coordinators that keep a breaker open on behalf of others (a fleet holding
    /// its replicas while one of them probes), and move the end of that hold.
    pub fn hold_open(&self, wait: Duration) {
        if !self.inner.move_deadline(wait) {
            self.inner.open_for(wait);
        }
    }

    /// Closes the breaker and clears the policy's counters, like [`reset`](Self::reset),
    /// but reported with [`Reason::External`](crate::Reason::External): for coordinators
    /// (a fleet that saw a probe succeed elsewhere).
    pub fn close(&self) {
        self.inner.manual(CLOSED, Reason::External);
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is rejected.
    pub fn force_open(&self) {
        self.inner.manual(FORCED_OPEN, Reason::ForcedOpen);
    }

    /// Switches the breaker off until [`reset`](Self::reset): every call is admitted and
    /// counted in the metrics, and the breaker never trips.
    pub fn disable(&self) {
        self.inner.manual(DISABLED, Reason::Disabled);
    }

    /// A snapshot of the state and counters.
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics()
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// How many concurrent probes the breaker admits when half-open.
    pub fn half_open_probes(&self) -> u32 {
        self.inner.probes
    }

    /// The breaker's clock, for adapters that keep time beside it (a retry budget, a
    /// fleet) and must agree with it, `ManualClock` included.
    pub fn clock(&self) -> AnyClock {
        self.inner.clock.clone()
    }

    /// Whether `self` and `other` are handles to the same breaker.
    pub fn same_as(&self, other: &Breaker) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    #[cfg(feature = "tower")]
    pub(crate) fn inner_name(&self) -> Name {
        self.inner.name.clone()
    }

    pub(crate) fn clock_nanos(&self) -> u64 {
        self.inner.now()
    }
}

// Every field is an atomic, an immutable setting, or a listener whose panics are
// contained: a breaker observed after a panic is as consistent as before it.
impl std::panic::UnwindSafe for Breaker {}
impl std::panic::RefUnwindSafe for Breaker {}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker").field("name", &self.inner.name).field("state", &self.state()).finish()
    }
}

fn classify<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() { Outcome::Success } else { Outcome::Failure }
}

// ===== impl Inner =====

/// What an admission hands to its permit: the state word it was admitted under (its
/// kind and generation are what matter) and, if the policy times calls, the start.
#[derive(Clone, Copy, Debug)]
struct Ticket {
    word: u64,
    start: u64,
}

impl Inner {
    #[inline(always)]
    fn now(&self) -> u64 {
        self.clock.now()
    }

    #[inline]
    /// Admits a call, or returns its rejection packed in one word (see
    /// [`Rejected`]): the slow path's result fits in two registers, and the
    /// `Rejected` is built in the caller's own frame.
    fn acquire(&self) -> Result<Ticket, u64> {
        // Acquire: pairs with the AcqRel CAS of the transition that published this
        // word, and keeps the deadline load of the slow path after this load.
        let cur = self.word.load(Ordering::Acquire);
        // Closed (0) and Disabled (4) admit without condition: one load, one branch.
        let word = if Word::kind_of(cur) & 0b11 == 0 { cur } else { self.acquire_slow(cur)? };
        let start = if self.tracker.needs_time { self.now() } else { 0 };
        Ok(Ticket { word, start })
    }

    fn acquire_slow(&self, mut cur: u64) -> Result<u64, u64> {
        // At most one clock read per admission, however often the CAS is retried.
        let mut now = None;
        loop {
            let w = Word::unpack(cur);
            match w.kind {
                CLOSED | DISABLED => return Ok(cur),
                OPEN => {
                    let t = *now.get_or_insert_with(|| self.now());
                    match self.deadline(w.generation) {
                        Deadline::At(d) if t >= d => {
                            let next = Word { in_flight: 1, ..w.next(HALF_OPEN) };
                            match self.cas(cur, next) {
                                Ok(()) => {
                                    self.published(w, next, Reason::WaitElapsed, t, None);
                                    return Ok(next.pack());
                                }
                                Err(actual) => cur = actual,
                            }
                        }
                        Deadline::At(d) => return Err(self.reject(State::Open, Some(d - t))),
                        // The thread that opened the breaker is storing the deadline of
                        // this generation: it cannot have passed yet.
                        Deadline::Pending => return Err(self.reject(State::Open, None)),
                        // A newer generation stored its deadline: our word is stale.
                        Deadline::Stale => match self.reload(cur) {
                            Some(actual) => cur = actual,
                            None => return Err(self.reject(State::Open, None)),
                        },
                    }
                }
                HALF_OPEN if w.in_flight + w.successes < self.probes => {
                    let next = Word { in_flight: w.in_flight + 1, ..w };
                    match self.cas(cur, next) {
                        Ok(()) => return Ok(next.pack()),
                        Err(actual) => cur = actual,
                    }
                }
                HALF_OPEN => {
                    // Every slot is taken. If the probes have been silent past their
                    // lease, start a new round: the silent ones no longer count.
                    let t = *now.get_or_insert_with(|| self.now());
                    match self.deadline(w.generation) {
                        Deadline::At(lease) if w.in_flight > 0 && t >= lease => {
                            let next = Word { in_flight: 1, ..w.next(HALF_OPEN) };
                            match self.cas(cur, next) {
                                Ok(()) => {
                                    self.published(w, next, Reason::ProbeLeaseExpired, t, None);
                                    return Ok(next.pack());
                                }
                                Err(actual) => cur = actual,
                            }
                        }
                        Deadline::Stale => match self.reload(cur) {
                            Some(actual) => cur = actual,
                            None => return Err(self.reject(State::HalfOpen, None)),
                        },
                        _ => return Err(self.reject(State::HalfOpen, None)),
                    }
                }
                _ => return Err(self.reject(State::ForcedOpen, None)),
            }
        }
    }

    /// The state word, if it has moved on from `cur`. A deadline that looks newer than an
    /// unchanged word was stored by a writer preempted for millions of transitions; it
    /// is read as not yet stored, never as a reason to spin.
    fn reload(&self, cur: u64) -> Option<u64> {
        let actual = self.word.load(Ordering::Acquire);
        (actual != cur).then_some(actual)
    }

    /// Counts a rejection and tells whoever listens; returns it packed.
    #[inline(always)]
    fn reject(&self, state: State, retry_after: Option<u64>) -> u64 {
        self.stats.rejected();
        let packed = Rejected::pack(state, retry_after);
        if Telemetry::ENABLED || !self.listeners.rejection.is_empty() {
            self.notify_rejection(packed);
        }
        packed
    }

    #[cold]
    #[inline(never)]
    fn notify_rejection(&self, packed: u64) {
        let rejected = self.rejected(packed);
        self.telemetry.rejected(&rejected);
        self.listeners.rejection(&rejected);
    }

    #[inline(always)]
    fn rejected(&self, packed: u64) -> Rejected {
        Rejected::from_packed(self.name.clone(), packed)
    }

    /// Publishes `next` if the word is still `cur`.
    #[inline]
    fn cas(&self, cur: u64, next: Word) -> Result<(), u64> {
        // AcqRel on success: Release publishes the transition to every later Acquire
        // load; Acquire makes this thread see what the previous transition published.
        // Acquire on failure: the value we retry with is read as a load would.
        self.word.compare_exchange(cur, next.pack(), Ordering::AcqRel, Ordering::Acquire).map(|_| ())
    }

    /// Applies `f` to the current word until the CAS succeeds or `f` declines.
    fn update(&self, mut f: impl FnMut(Word) -> Option<Word>) -> Option<(Word, Word)> {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let prev = Word::unpack(cur);
            let next = f(prev)?;
            match self.cas(cur, next) {
                Ok(()) => return Some((prev, next)),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Records the outcome of a permit. The hot case, a success while closed on a policy
    /// that needs no time and with no outcome listener, is inlined into the caller:
    /// count it, and clear the streak if there is one (a load when there is none).
    #[inline(always)]
    fn complete(&self, ticket: Ticket, report: Report) {
        if self.fast_success
            && report.outcome == Outcome::Success
            && report.duration.is_none()
            && Word::kind_of(ticket.word) == CLOSED
        {
            self.stats.outcome(Outcome::Success, false);
            self.telemetry.outcome(Outcome::Success, false);
            let generation = Word::generation_of(ticket.word);
            if Word::generation_of(self.word.load(Ordering::Acquire)) == generation {
                self.tracker.success_on_streak(generation);
            }
            return;
        }
        self.complete_slow(ticket, report);
    }

    fn complete_slow(&self, ticket: Ticket, report: Report) {
        // A policy that needs time reads the clock once per outcome: to time the call
        // (unless the caller did) and to place it in a time window.
        let now = self.tracker.needs_time.then(|| self.now());
        let duration = match (report.duration, now) {
            (Some(d), _) => Some(nanos(d)),
            (None, Some(t)) => Some(t.saturating_sub(ticket.start)),
            (None, None) => None,
        };
        let slow = matches!((self.tracker.slow_nanos, duration), (Some(t), Some(d)) if d >= t);
        self.stats.outcome(report.outcome, slow);
        self.telemetry.outcome(report.outcome, slow);
        let current = match Word::kind_of(ticket.word) {
            CLOSED => self.complete_closed(ticket.word, report, duration, now),
            HALF_OPEN => self.complete_half_open(ticket.word, report, slow, now),
            _ => Word::generation_of(self.word.load(Ordering::Acquire)) == Word::generation_of(ticket.word),
        };
        if !self.listeners.outcome.is_empty() {
            self.listeners.outcome(&Recorded {
                breaker: self.name.as_str(),
                outcome: report.outcome,
                duration: duration.map(Duration::from_nanos),
                slow,
                admitted_in: State::from_kind(Word::kind_of(ticket.word)),
                current,
            });
        }
    }

    #[inline]
    fn complete_closed(&self, ticket: u64, report: Report, duration: Option<u64>, now: Option<u64>) -> bool {
        let generation = Word::generation_of(ticket);
        if Word::generation_of(self.word.load(Ordering::Acquire)) != generation {
            return false; // admitted before a transition: cannot change the state
        }
        let failed = match report.outcome {
            Outcome::Ignored => return true,
            Outcome::Success => false,
            Outcome::Failure => true,
        };
        let still_current = || Word::generation_of(self.word.load(Ordering::Acquire)) == generation;
        if self.tracker.record(generation, failed, duration, now.unwrap_or(0), still_current) {
            let now = now.unwrap_or_else(|| self.now());
            self.trip(ticket, now, report.retry_after, Reason::Tripped);
        }
        true
    }

    fn complete_half_open(&self, ticket: u64, report: Report, slow: bool, now: Option<u64>) -> bool {
        let generation = Word::generation_of(ticket);
        let failed = report.outcome == Outcome::Failure || (report.outcome == Outcome::Success && slow);
        let probes = self.probes;
        let result = self.update(|w| {
            if w.kind != HALF_OPEN || w.generation != generation {
                return None;
            }
            Some(if report.outcome == Outcome::Ignored {
                Word { in_flight: w.in_flight.saturating_sub(1), ..w }
            } else if failed {
                Word { opens: (w.opens + 1).min(MAX_OPENS), ..w.next(OPEN) }
            } else if w.successes + 1 >= probes {
                Word { opens: 0, ..w.next(CLOSED) }
            } else {
                Word { in_flight: w.in_flight.saturating_sub(1), successes: w.successes + 1, ..w }
            })
        });
        let Some((prev, next)) = result else { return false };
        if next.kind != HALF_OPEN {
            let reason = if next.kind == OPEN { Reason::ProbeFailed } else { Reason::ProbesSucceeded };
            let now = now.unwrap_or_else(|| self.now());
            self.published(prev, next, reason, now, report.retry_after);
        }
        true
    }

    /// Opens the breaker if it is still in the state the ticket was admitted in.
    fn trip(&self, ticket: u64, now: u64, hint: Option<Duration>, reason: Reason) {
        let (kind, generation) = (Word::kind_of(ticket), Word::generation_of(ticket));
        let result = self.update(|w| {
            (w.kind == kind && w.generation == generation)
                .then(|| Word { opens: (w.opens + 1).min(MAX_OPENS), ..w.next(OPEN) })
        });
        if let Some((prev, next)) = result {
            self.published(prev, next, reason, now, hint);
        }
    }

    /// A permit dropped without a report.
    fn abandon(&self, ticket: Ticket) {
        if std::thread::panicking() {
            // The protected call panicked: that is a failure.
            self.complete(ticket, Report::failure());
            return;
        }
        if Word::kind_of(ticket.word) == HALF_OPEN {
            let generation = Word::generation_of(ticket.word);
            let _ = self.update(|w| {
                (w.kind == HALF_OPEN && w.generation == generation && w.in_flight > 0)
                    .then(|| Word { in_flight: w.in_flight - 1, ..w })
            });
        }
    }

    /// Moves the deadline of an Open breaker to `wait` from now; false if it is not Open.
    fn move_deadline(&self, wait: Duration) -> bool {
        let cur = self.word.load(Ordering::Acquire);
        if Word::kind_of(cur) != OPEN {
            return false;
        }
        let generation = Word::generation_of(cur);
        let new = packed::pack_deadline(generation, self.now().saturating_add(nanos(wait)), self.base);
        let mut raw = self.deadline.load(Ordering::Acquire);
        loop {
            match packed::read_deadline(raw, generation, self.base) {
                // Same generation: replace (a CAS, so a transition that stores a newer
                // tag meanwhile wins).
                Deadline::At(_) => {
                    match self.deadline.compare_exchange_weak(raw, new, Ordering::Release, Ordering::Acquire) {
                        Ok(_) => break,
                        Err(actual) => raw = actual,
                    }
                }
                // Not stored yet, or already superseded: treat as not open.
                Deadline::Pending | Deadline::Stale => return false,
            }
        }
        // The breaker may have left Open(generation) between the load and the store;
        // the tag keeps the moved deadline from applying to any other generation.
        Word::generation_of(self.word.load(Ordering::Acquire)) == generation
    }

    fn open_for(&self, wait: Duration) {
        let result = self.update(|w| Some(Word { opens: (w.opens + 1).min(MAX_OPENS), ..w.next(OPEN) }));
        if let Some((prev, next)) = result {
            self.published(prev, next, Reason::External, self.now(), Some(wait));
        }
    }

    fn manual(&self, kind: u64, reason: Reason) {
        let result = self.update(|w| {
            let next = w.next(kind);
            Some(if kind == CLOSED { Word { opens: 0, ..next } } else { next })
        });
        if let Some((prev, next)) = result {
            self.published(prev, next, reason, self.now(), None);
        }
    }

    /// Everything that follows a published transition: the new deadline, the clock of
    /// the state, and the listeners. Runs after the CAS, outside any loop.
    fn published(&self, prev: Word, next: Word, reason: Reason, now: u64, hint: Option<Duration>) {
        let open_for = match next.kind {
            OPEN => {
                let wait = match reason {
                    // An explicit wait from `open_for`, carried in the hint.
                    Reason::External => hint.unwrap_or_default(),
                    _ => self.open_wait(next.opens, hint),
                };
                self.store_deadline(next.generation, now.saturating_add(nanos(wait)));
                self.opens.fetch_add(1, Ordering::Relaxed);
                Some(wait)
            }
            HALF_OPEN => {
                self.store_deadline(next.generation, now.saturating_add(self.probe_lease));
                None
            }
            // No time to keep, but the tag must follow the generation (see packed.rs).
            _ => {
                self.store_deadline(next.generation, now);
                None
            }
        };
        // fetch_max: if two transitions race to stamp, the later time wins.
        self.since.fetch_max(now, Ordering::Relaxed);
        // A new round of probes, or a new explicit opening, is news even in the same state.
        let changed = prev.kind != next.kind
            || reason == Reason::ProbeLeaseExpired
            || (reason == Reason::External && next.kind == OPEN);
        if changed && (Telemetry::ENABLED || !self.listeners.transition.is_empty()) {
            let t = Transition {
                breaker: self.name.as_str(),
                from: self.reported_state(prev, reason),
                to: State::from_kind(next.kind),
                reason,
                open_for,
                consecutive_opens: next.opens,
                at: Duration::from_nanos(now),
            };
            self.telemetry.transition(&t);
            self.listeners.transition(&t);
        }
    }

    /// An Open word left because its wait passed was HalfOpen to every observer.
    fn reported_state(&self, prev: Word, reason: Reason) -> State {
        match (prev.kind, reason) {
            (OPEN, Reason::WaitElapsed) => State::Open,
            (kind, _) => State::from_kind(kind),
        }
    }

    fn open_wait(&self, opens: u32, hint: Option<Duration>) -> Duration {
        const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let random = splitmix64(self.random.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed));
        let wait = self.open_wait.wait(opens, random);
        match hint {
            Some(h) => wait.max(h.min(self.retry_after_limit)),
            None => wait,
        }
    }

    /// Stores the deadline of `generation`, unless a newer generation already stored one
    /// (this thread may have been preempted after its transition).
    fn store_deadline(&self, generation: u64, deadline: u64) {
        let new = packed::pack_deadline(generation, deadline, self.base);
        let mut cur = self.deadline.load(Ordering::Relaxed);
        while packed::deadline_is_older(cur, generation) {
            // Release pairs with the Acquire loads in acquire_slow and state().
            match self.deadline.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The deadline word, read for `generation`.
    #[inline]
    fn deadline(&self, generation: u64) -> Deadline {
        // Acquire pairs with the Release in store_deadline: a thread that reads a newer
        // generation's deadline (Stale) and reloads the state word sees that generation.
        packed::read_deadline(self.deadline.load(Ordering::Acquire), generation, self.base)
    }

    /// The state word, reloaded until no newer deadline contradicts it (an observer
    /// must not report Open from a stale word after the wait has been handled).
    fn observe(&self) -> u64 {
        let mut cur = self.word.load(Ordering::Acquire);
        while Word::kind_of(cur) == OPEN && self.deadline(Word::generation_of(cur)) == Deadline::Stale {
            match self.reload(cur) {
                Some(actual) => cur = actual,
                None => break,
            }
        }
        cur
    }

    fn open_elapsed(&self, cur: u64, now: u64) -> bool {
        matches!(self.deadline(Word::generation_of(cur)), Deadline::At(d) if now >= d)
    }

    fn metrics(&self) -> Metrics {
        let now = self.now();
        let cur = self.observe();
        let w = Word::unpack(cur);
        let mut since = self.since.load(Ordering::Relaxed);
        let state = match w.kind {
            OPEN if self.open_elapsed(cur, now) => {
                if let Deadline::At(d) = self.deadline(w.generation) {
                    since = d;
                }
                State::HalfOpen
            }
            kind => State::from_kind(kind),
        };
        let [successes, failures, ignored, rejected, slow_calls] = self.stats.totals();
        let (failure_rate, slow_call_rate) = self.tracker.rates(w.generation, now);
        Metrics {
            state,
            successes,
            failures,
            ignored,
            rejected,
            slow_calls,
            failure_rate,
            slow_call_rate,
            consecutive_failures: self.tracker.consecutive_failures(w.generation),
            time_in_state: Duration::from_nanos(now.saturating_sub(since)),
            opens: self.opens.load(Ordering::Relaxed),
            probes_in_flight: if w.kind == HALF_OPEN { w.in_flight } else { 0 },
        }
    }
}

// ===== impl Permit =====

/// Permission to make one call. Report how it went with [`success`](Self::success),
/// [`failure`](Self::failure), [`ignore`](Self::ignore) or [`record`](Self::record).
///
/// A permit remembers the state it was admitted in: if the breaker has changed state
/// since (it opened, closed, was reset), the report is counted in the metrics but
/// cannot change the state. Dropping a permit without a report (a cancelled future, an
/// early return) records nothing and frees its half-open slot; dropping it while the
/// thread panics records a failure.
#[must_use = "a permit dropped without a report records nothing: call success(), failure() or ignore()"]
pub struct Permit<'a> {
    inner: &'a Inner,
    ticket: Ticket,
}

impl Permit<'_> {
    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    #[inline]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// The call's outcome says nothing about the service: touch no counter.
    #[inline]
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records an outcome, or a [`Report`] with the call's duration and a retry-after hint.
    #[inline]
    pub fn record(self, report: impl Into<Report>) {
        let this = std::mem::ManuallyDrop::new(self);
        this.inner.complete(this.ticket, report.into());
    }

    /// The state the call was admitted in ([`State::Closed`], [`State::HalfOpen`] for a
    /// probe, or [`State::Disabled`]).
    pub fn admitted_in(&self) -> State {
        State::from_kind(Word::kind_of(self.ticket.word))
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.inner.abandon(self.ticket);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("breaker", &self.inner.name).field("admitted_in", &self.admitted_in()).finish()
    }
}

/// A [`Permit`] that owns a handle to its breaker (`'static`), from
/// [`Breaker::try_acquire_owned`].
#[must_use = "a permit dropped without a report records nothing: call success(), failure() or ignore()"]
pub struct OwnedPermit {
    inner: Arc<Inner>,
    ticket: Option<Ticket>,
}

impl OwnedPermit {
    /// The call succeeded.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// The call's outcome says nothing about the service.
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records an outcome or a [`Report`].
    pub fn record(mut self, report: impl Into<Report>) {
        if let Some(ticket) = self.ticket.take() {
            self.inner.complete(ticket, report.into());
        }
    }

    /// The state the call was admitted in.
    pub fn admitted_in(&self) -> State {
        self.ticket.map_or(State::Closed, |t| State::from_kind(Word::kind_of(t.word)))
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.inner.abandon(ticket);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &self.inner.name)
            .field("admitted_in", &self.admitted_in())
            .finish()
    }
}

// ===== impl BreakerBuilder =====

/// Builds a [`Breaker`]; see [`Breaker`]'s table of defaults.
///
/// Settings are checked by [`build`](Self::build), which names the first bad one.
///
/// # Clone
///
/// A builder is a template: clone it to build many breakers with the same settings
/// (listeners included; [`BreakerBox`](crate::BreakerBox) does this per key).
#[derive(Clone, Debug)]
pub struct BreakerBuilder {
    name: Name,
    policy: Policy,
    open_wait: OpenWait,
    probes: u32,
    probe_lease: Duration,
    retry_after_limit: Duration,
    clock: Option<AnyClock>,
    listeners: Listeners,
}

impl BreakerBuilder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Self {
            name: Name::from("breaker"),
            policy: Policy::default(),
            open_wait: OpenWait::default(),
            probes: 1,
            probe_lease: Duration::from_secs(60),
            retry_after_limit: Duration::from_secs(300),
            clock: None,
            listeners: Listeners::default(),
        }
    }

    /// Names the breaker, for rejections, events and metrics.
    #[must_use]
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.name = name.into();
        self
    }

    /// When to trip. See [`Policy`].
    #[must_use]
    pub fn policy(mut self, policy: impl Into<Policy>) -> Self {
        self.policy = policy.into();
        self
    }

    /// How long to stay open. See [`OpenWait`].
    #[must_use]
    pub fn open_wait(mut self, wait: OpenWait) -> Self {
        self.open_wait = wait;
        self
    }

    /// How many trial calls run at once when half-open, and how many must succeed to
    /// close (1 to 1023). Any failed probe reopens.
    #[must_use]
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.probes = n;
        self
    }

    /// How long half-open probes may stay silent. When every slot is taken and the
    /// lease has run out, the next call starts a new round of probes and the silent
    /// ones no longer count, so a hung probe can never wedge the breaker half-open.
    /// Greater than zero.
    #[must_use]
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = lease;
        self
    }

    /// The longest open wait a retry-after hint may ask for ([`Report::with_retry_after`]).
    /// Zero ignores hints.
    #[must_use]
    pub fn retry_after_limit(mut self, limit: Duration) -> Self {
        self.retry_after_limit = limit;
        self
    }

    /// The time source. See [`crate::clock`].
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(AnyClock::new(clock));
        self
    }

    /// Calls `f` after every state change.
    #[must_use]
    pub fn on_state_change(mut self, f: impl Fn(&Transition<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.transition.push(Arc::new(f));
        self
    }

    /// Calls `f` for every rejected call.
    #[must_use]
    pub fn on_rejection(mut self, f: impl Fn(&Rejected) + Send + Sync + 'static) -> Self {
        self.listeners.rejection.push(Arc::new(f));
        self
    }

    /// Calls `f` for every recorded outcome (a per-call cost: use it for counting,
    /// not for work).
    #[must_use]
    pub fn on_outcome(mut self, f: impl Fn(&Recorded<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.outcome.push(Arc::new(f));
        self
    }

    /// Builds the breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that cannot work: a zero threshold,
    /// a rate outside 0.0..=1.0 or NaN, a zero window or wait, a maximum wait below the
    /// base, zero or too many probes, a zero lease.
    pub fn build(&self) -> Result<Breaker, ConfigError> {
        self.validate()?;
        Ok(self.build_valid())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate()?;
        self.open_wait.validate()?;
        if self.probes == 0 || self.probes > MAX_PROBES {
            return Err(ConfigError::new("half_open_probes", self.probes, format!("from 1 to {MAX_PROBES}")));
        }
        if self.probe_lease.is_zero() {
            return Err(ConfigError::new("probe_lease", self.probe_lease, "a duration greater than zero"));
        }
        Ok(())
    }

    pub(crate) fn with_name(&self, name: Name) -> Self {
        Self { name, ..self.clone() }
    }

    pub(crate) fn template_name(&self) -> &Name {
        &self.name
    }

    pub(crate) fn build_valid(&self) -> Breaker {
        let clock = self.clock.clone().unwrap_or_default();
        let base = clock.now();
        let mut inner = Inner {
            word: CachePadded(AtomicU64::new(Word::INITIAL)),
            deadline: AtomicU64::new(0),
            since: AtomicU64::new(base),
            base,
            opens: AtomicU64::new(0),
            random: AtomicU64::new(0),
            tracker: Tracker::new(&self.policy),
            stats: Stats::new(),
            name: self.name.clone(),
            probes: self.probes,
            probe_lease: nanos(self.probe_lease),
            open_wait: self.open_wait.clone(),
            retry_after_limit: self.retry_after_limit,
            clock,
            listeners: self.listeners.clone(),
            telemetry: Telemetry::new(&self.name),
            fast_success: false,
        };
        inner.fast_success =
            !inner.tracker.needs_time && inner.tracker.streak_only() && inner.listeners.outcome.is_empty();
        let inner = Arc::new(inner);
        // Jitter must differ between breakers built together (every key of a family
        // opens at once when a shared dependency fails): seed from a process-wide
        // sequence and the breaker's address.
        static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let sequence = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let address = Arc::as_ptr(&inner) as usize as u64;
        inner.random.store(splitmix64(sequence ^ address.rotate_left(32) ^ base), Ordering::Relaxed);
        Breaker { inner }
    }
}

impl Default for BreakerBuilder {
    fn default() -> Self {
        Self::new()
    }
}
