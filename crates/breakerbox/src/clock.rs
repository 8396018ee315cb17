//! Clocks: where a breaker gets its time.
//!
//! A breaker reads monotonic nanoseconds from a [`Clock`]. It reads the clock only
//! where time matters: to decide whether an open wait has passed, to time a call
//! when a slow-call policy or a time window needs it, and to stamp transitions. A
//! closed breaker with a count-based policy never reads it at all.
//!
//! | clock | cost of a read | use it for |
//! |---|---|---|
//! | [`MonotonicClock`] (default) | one `Instant::now()` (a vDSO call, ~20 ns) | everything |
//! | [`CoarseClock`] | one relaxed atomic load (~1 ns) | very hot open breakers; time lags by up to its resolution |
//! | [`ManualClock`] | one atomic load | tests: time moves only when you say so |
//!
//! Any other time source implements [`Clock`] (for example one that reads tokio's paused
//! time in tests).

pub(crate) mod coarse;
mod manual;
mod monotonic;

pub use coarse::CoarseClock;
pub use manual::ManualClock;
pub use monotonic::MonotonicClock;

/// A source of monotonic time, in nanoseconds since an origin of the clock's choosing.
///
/// Readings must never go backwards; a breaker is robust to a clock that stands still
/// but not to one that jumps back.
///
/// # Examples
///
/// ```
/// use breakerbox::Clock;
///
/// /// A clock that reads tokio's time, so that `tokio::time::pause()` drives the breaker.
/// #[derive(Debug)]
/// struct TokioClock(std::time::Instant);
///
/// impl Clock for TokioClock {
///     fn now_nanos(&self) -> u64 {
///         // With tokio: tokio::time::Instant::now().duration_since(self.0.into())
///         let elapsed = self.0.elapsed();
///         u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
///     }
/// }
///
/// let clock = TokioClock(std::time::Instant::now());
/// let breaker = breakerbox::Breaker::builder().clock(clock).build()?;
/// # let _ = breaker;
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Nanoseconds since this clock's origin.
    fn now_nanos(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

/// Any clock, held as cheaply as it can be: the built-in clocks by value, read without
/// a virtual call or an extra pointer (the open path reads the clock on every
/// rejection), any other behind `Arc<dyn Clock>`.
///
/// [`Breaker::clock`](crate::Breaker::clock) returns the breaker's own, so that adapters
/// that keep time beside a breaker (a retry budget, a fleet) agree with it, a
/// [`ManualClock`] included, and a [`CoarseClock`] chosen for speed stays one load.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{AnyClock, Breaker, Clock, ManualClock};
///
/// let manual = ManualClock::new();
/// let breaker = Breaker::builder().clock(manual.clone()).build()?;
/// let clock: AnyClock = breaker.clock();
/// manual.advance(Duration::from_millis(5));
/// assert_eq!(clock.now_nanos(), manual.now_nanos());
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// # Clone
///
/// Clones read the same time: a copy for [`MonotonicClock`], a reference-count
/// increment for the others.
#[derive(Clone, Debug)]
pub struct AnyClock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Monotonic(MonotonicClock),
    Coarse(CoarseClock),
    Manual(ManualClock),
    Custom(std::sync::Arc<dyn Clock>),
}

impl AnyClock {
    /// Holds `clock`; a built-in clock (or another `AnyClock`) is held by value.
    pub fn new<C: Clock>(clock: C) -> Self {
        let any: &dyn std::any::Any = &clock;
        let source = if let Some(c) = any.downcast_ref::<Self>() {
            return c.clone();
        } else if let Some(c) = any.downcast_ref::<MonotonicClock>() {
            Source::Monotonic(*c)
        } else if let Some(c) = any.downcast_ref::<CoarseClock>() {
            Source::Coarse(c.clone())
        } else if let Some(c) = any.downcast_ref::<ManualClock>() {
            Source::Manual(c.clone())
        } else {
            Source::Custom(std::sync::Arc::new(clock))
        };
        Self { source }
    }

    /// Nanoseconds since the clock's origin (as [`Clock::now_nanos`], inlined).
    #[inline(always)]
    pub fn now(&self) -> u64 {
        match &self.source {
            Source::Monotonic(c) => c.now_nanos(),
            Source::Coarse(c) => c.now_nanos(),
            Source::Manual(c) => c.now_nanos(),
            Source::Custom(c) => c.now_nanos(),
        }
    }
}

impl AnyClock {
    /// Whether this is a [`MonotonicClock`], whose reads are a system call's worth (the
    /// engine times permit ages on the shared coarse ages clock instead).
    pub(crate) fn is_monotonic(&self) -> bool {
        matches!(self.source, Source::Monotonic(_))
    }
}

impl Default for AnyClock {
    /// A [`MonotonicClock`].
    fn default() -> Self {
        Self { source: Source::Monotonic(MonotonicClock::new()) }
    }
}

impl Clock for AnyClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.now()
    }
}

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub(crate) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
