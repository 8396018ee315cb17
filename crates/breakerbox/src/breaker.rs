//! The breaker handle and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::call::Call;
use crate::clock::{AnyClock, Clock};
use crate::engine::{Engine, Settings};
use crate::event::{Listeners, Recorded, Transition};
use crate::family::valve::{Seat, Valve};
use crate::state::packed::MAX_PROBES;
use crate::state::transition::Command;
use crate::{
    ConfigError, Error, Metrics, Name, OpenWait, Outcome, OwnedPermit, Permit, Policy, Ramp, Rejected, Report, State,
    Throttle,
};

/// The default of [`BreakerBuilder::cancel_counts_after`].
const DEFAULT_CANCEL_COUNTS_AFTER: Duration = Duration::from_secs(1);

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
/// | [`probe_lease`](BreakerBuilder::probe_lease) | the first open wait (30 s) |
/// | [`cancel_counts_after`](BreakerBuilder::cancel_counts_after) | 1 s |
/// | [`retry_after_limit`](BreakerBuilder::retry_after_limit) | 5 min |
/// | [`throttle`](BreakerBuilder::throttle) | off |
/// | [`recovery_ramp`](BreakerBuilder::recovery_ramp) | off |
/// | [`shadow`](BreakerBuilder::shadow) | off |
/// | [`hung_after`](BreakerBuilder::hung_after) | off |
/// | [`clock`](BreakerBuilder::clock) | [`MonotonicClock`](crate::MonotonicClock) |
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
    inner: Arc<Engine>,
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
            Ok(ticket) => Ok(Permit::new(&self.inner, ticket)),
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
            Ok(ticket) => Ok(OwnedPermit::new(Arc::clone(&self.inner), ticket)),
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

    /// Awaits `fut` through the breaker: `Ok` is a success, `Err` a failure. A panic
    /// while `fut` is polled is recorded as a failure and then continues to unwind. The
    /// breaker is asked on the first poll, not when the future is made. If the returned
    /// future is dropped before it completes (cancelled), nothing is recorded and the
    /// half-open slot, if any, is freed, unless the call was in flight for
    /// [`cancel_counts_after`](BreakerBuilder::cancel_counts_after) or longer: then it
    /// counts as a failure.
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
    // Plain fns returning a hand-written future (`call.rs`): an `async fn` here would
    // nest one future in another, or store `fut` twice and move it on the first poll.
    #[inline]
    pub fn call_async<T, E, F>(&self, fut: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Future<Output = Result<T, E>>,
    {
        Call::new(self, classify, fut)
    }

    /// [`call_async`](Self::call_async) with a classifier, as in
    /// [`call_with`](Self::call_with).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    #[inline]
    pub fn call_async_with<T, E, F, C, R>(&self, classify: C, fut: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Future<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> R,
        R: Into<Report>,
    {
        Call::new(self, classify, fut)
    }

    /// The state. An open breaker whose wait has passed reports
    /// [`State::HalfOpen`] before any call arrives, as a trial call would be admitted.
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// Whether calls are being rejected: [`State::Open`] or [`State::ForcedOpen`].
    pub fn is_open(&self) -> bool {
        self.state().is_open()
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
        self.inner.command(Command::Reset);
    }

    /// Opens the breaker now for `wait`, whatever its state, as if its policy had
    /// tripped: calls are rejected until `wait` has passed, then it turns half-open as
    /// usual. Counts as an opening. Outcomes of calls admitted before no longer count.
    ///
    /// For coordinators that decide from outside the process: a fleet sharing state
    /// (`breakerbox-redis`), an operator's tool. The transition's reason is
    /// [`Reason::External`](crate::Reason::External).
    pub fn open_for(&self, wait: Duration) {
        self.inner.command(Command::OpenFor(wait));
    }

    /// Holds the breaker open until `wait` from now. If it is Open, only its deadline
    /// moves (earlier or later): no new opening is counted, no event is emitted, and the
    /// next exponential wait does not grow. Otherwise it opens as
    /// [`open_for`](Self::open_for) does.
    ///
    /// For coordinators that keep a breaker open on behalf of others (a fleet holding
    /// its replicas while one of them probes), and move the end of that hold.
    pub fn hold_open(&self, wait: Duration) {
        self.inner.command(Command::HoldOpen(wait));
    }

    /// Closes the breaker and clears the policy's counters, like [`reset`](Self::reset),
    /// but reported with [`Reason::External`](crate::Reason::External): for coordinators
    /// (a fleet that saw a probe succeed elsewhere).
    pub fn close(&self) {
        self.inner.command(Command::Close);
    }

    /// Starts the [recovery ramp](crate::ramp) as if it had begun `elapsed` ago, with an
    /// empty history: for coordinators, so that every replica of a fleet ramps in step
    /// from one start (a fleet whose probe succeeded elsewhere). Without a ramp, or
    /// `elapsed` past its end, it closes as [`close`](Self::close) does. Reported with
    /// [`Reason::External`](crate::Reason::External).
    pub fn recover(&self, elapsed: Duration) {
        self.inner.command(Command::Recover { elapsed });
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is rejected.
    pub fn force_open(&self) {
        self.inner.command(Command::ForceOpen);
    }

    /// Switches the breaker off until [`reset`](Self::reset): every call is admitted and
    /// counted in the metrics, and the breaker never trips.
    pub fn disable(&self) {
        self.inner.command(Command::Disable);
    }

    /// Switches shadow mode on or off, at any time (see
    /// [`BreakerBuilder::shadow`]): on, every call is admitted while the state machine
    /// runs as if enforcing, and the calls it would have rejected are counted in
    /// [`Metrics::would_reject`].
    pub fn set_shadow(&self, on: bool) {
        self.inner.set_shadow(on);
    }

    /// Whether the breaker is in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.inner.is_shadow()
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
        self.inner.probes()
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

    /// The breaker left its family (its panic valve no longer counts it).
    pub(crate) fn leave_family(&self) {
        self.inner.leave_family();
    }

    #[cfg(feature = "tower")]
    pub(crate) fn inner_name(&self) -> Name {
        self.inner.name.clone()
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
    probe_lease: Option<Duration>,
    cancel_counts_after: Option<Duration>,
    retry_after_limit: Duration,
    clock: Option<AnyClock>,
    listeners: Listeners,
    throttle: Option<Throttle>,
    ramp: Option<Ramp>,
    shadow: bool,
    hung_after: Option<Duration>,
    /// The panic valve of the family this template makes breakers for.
    valve: Option<Arc<Valve>>,
}

impl BreakerBuilder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Self {
            name: Name::from("breaker"),
            policy: Policy::default(),
            open_wait: OpenWait::default(),
            probes: 1,
            probe_lease: None,
            cancel_counts_after: Some(DEFAULT_CANCEL_COUNTS_AFTER),
            retry_after_limit: Duration::from_secs(300),
            clock: None,
            listeners: Listeners::default(),
            throttle: None,
            ramp: None,
            shadow: false,
            hung_after: None,
            valve: None,
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

    /// How long each half-open probe may stay silent, from its own admission. When every
    /// probe slot is taken and a probe has been silent past its lease, the next call
    /// takes its slot: the silent probe stops counting (its report, if it ever comes,
    /// changes nothing), and never more than `half_open_probes` probes are live at once.
    /// So a hung probe delays recovery by one lease, never wedges it. Greater than zero.
    ///
    /// Default: the first open wait (the fixed wait, or the base of an exponential one):
    /// a probe silent as long as the breaker was open has failed in all but name. Set it
    /// to the longest a healthy call can take if that is longer.
    #[must_use]
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = Some(lease);
        self
    }

    /// The cancellation rule: a permit dropped without a report after it has been in
    /// flight at least this long counts as a failure; one dropped sooner counts nothing.
    /// `None`: a dropped permit never counts.
    ///
    /// Why: the idiomatic Rust deadline, `tokio::time::timeout(d, breaker.call_async(..))`
    /// (or any future dropped by a `select!`), cancels the call by dropping it. Without
    /// this rule a hung service never trips a closed breaker, and in half-open each
    /// timed-out probe frees its slot for the next, one request at a time, forever.
    /// With it, a caller that waited this long and gave up counts against the service,
    /// while a caller that changes its mind quickly (a hedged request, a user who
    /// navigated away) counts nothing. A dropped probe that counts reopens the breaker,
    /// as any failed probe does.
    ///
    /// Where to put the timeout: inside the breaker (a client timeout, or
    /// `breakerbox-http`'s `timeout`), its expiry is a reported failure and this rule is
    /// not needed; outside it (`tokio::time::timeout` around the call), this rule counts
    /// it if it fired after at least this long. Admissions are stamped on a clock with
    /// a 5 ms tick (shared, one relaxed load) unless the policy times calls anyway.
    ///
    /// Default: 1 s.
    #[must_use]
    pub fn cancel_counts_after(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.cancel_counts_after = after.into();
        self
    }

    /// The longest open wait a retry-after hint may ask for ([`Report::with_retry_after`]).
    /// Zero ignores hints.
    #[must_use]
    pub fn retry_after_limit(mut self, limit: Duration) -> Self {
        self.retry_after_limit = limit;
        self
    }

    /// Adaptive throttling while closed: rejects a share of calls when the backend
    /// accepts fewer than it is sent, beside the classic rules. See [`crate::throttle`].
    /// `None` (the default) turns it off.
    #[must_use]
    pub fn throttle(mut self, throttle: impl Into<Option<Throttle>>) -> Self {
        self.throttle = throttle.into();
        self
    }

    /// A recovery ramp after half-open: instead of closing at once when its probes
    /// succeed, the breaker enters [`State::Recovering`] and admits a rising fraction
    /// of calls. See [`crate::ramp`]. `None` (the default) closes at once.
    #[must_use]
    pub fn recovery_ramp(mut self, ramp: impl Into<Option<Ramp>>) -> Self {
        self.ramp = ramp.into();
        self
    }

    /// In-flight age: a closed call still in flight this long counts as a failure at
    /// once, while it runs, so a backend that hangs trips the breaker one `hung_after`
    /// after it starts hanging, before the callers' own timeouts fire (outcomes alone
    /// show a hang only when those expire, all at once). Each call counts once: a call
    /// counted as hung is not counted again when it completes. It is counted at most a
    /// quarter of `hung_after` late (calls are kept in buckets of that width, and
    /// counted at the next admission), and only for calls admitted in the current
    /// closed generation (and in the bucket it began in). The trip says [`TripCause::HungCalls`](crate::TripCause::HungCalls);
    /// [`Metrics::hung_calls`] says how many are hung now. Set it above the longest a
    /// healthy call takes. `None` (the default) turns it off.
    #[must_use]
    pub fn hung_after(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.hung_after = after.into();
        self
    }

    /// Shadow mode, to try a configuration on production traffic: the real state
    /// machine runs (it trips, waits, probes, ramps, throttles, and emits its events and
    /// metrics) but every call is admitted. A call it would have rejected runs anyway,
    /// is counted in [`Metrics::would_reject`] (and the `breakerbox_shadow_rejections_total`
    /// series, by reason), and its outcome counts in the totals but never in the state
    /// machine, which goes on as if the call had been refused: so the would-be
    /// rejections are exactly the rejections the same settings make when enforcing.
    /// Rejection listeners are not called (no call was rejected). Switch it at run time
    /// with [`Breaker::set_shadow`] (or [`BreakerBox::set_shadow`](crate::BreakerBox::set_shadow)
    /// for a family). Default: off.
    #[must_use]
    pub fn shadow(mut self, on: bool) -> Self {
        self.shadow = on;
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
        if let Some(lease) = self.probe_lease
            && lease.is_zero()
        {
            return Err(ConfigError::new("probe_lease", lease, "a duration greater than zero"));
        }
        if let Some(throttle) = &self.throttle {
            throttle.validate()?;
        }
        if let Some(ramp) = &self.ramp {
            ramp.validate()?;
        }
        if let Some(d) = self.hung_after
            && d.is_zero()
        {
            return Err(ConfigError::new("hung_after", d, "a duration greater than zero (or None: off)"));
        }
        Ok(())
    }

    pub(crate) fn with_name(&self, name: Name) -> Self {
        Self { name, ..self.clone() }
    }

    pub(crate) fn with_valve(self, valve: Arc<Valve>) -> Self {
        Self { valve: Some(valve), ..self }
    }

    pub(crate) fn is_shadow(&self) -> bool {
        self.shadow
    }

    pub(crate) fn template_name(&self) -> &Name {
        &self.name
    }

    pub(crate) fn build_valid(&self) -> Breaker {
        let inner = Arc::new(Engine::new(Settings {
            name: self.name.clone(),
            policy: &self.policy,
            open_wait: self.open_wait.clone(),
            probes: self.probes,
            probe_lease: self.probe_lease.unwrap_or_else(|| self.open_wait.first()),
            cancel_after: self.cancel_counts_after,
            retry_after_limit: self.retry_after_limit,
            clock: self.clock.clone().unwrap_or_default(),
            listeners: self.listeners.clone(),
            throttle: self.throttle.as_ref(),
            ramp: self.ramp.as_ref(),
            shadow: self.shadow,
            seat: self.valve.clone().map(Seat::new),
            hung_after: self.hung_after,
        }));
        // Jitter must differ between breakers built together (every key of a family
        // opens at once when a shared dependency fails): seed from a process-wide
        // sequence and the breaker's address.
        static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let sequence = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let address = Arc::as_ptr(&inner) as usize as u64;
        inner.seed(sequence ^ address.rotate_left(32));
        Breaker { inner }
    }
}

impl Default for BreakerBuilder {
    fn default() -> Self {
        Self::new()
    }
}
