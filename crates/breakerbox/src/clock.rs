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

mod coarse;
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

/// The clock a breaker holds: the built-in clocks by value, read without a virtual
/// call or an extra pointer (the open path reads the clock on every rejection), any
/// other behind `Arc<dyn Clock>`.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Monotonic(MonotonicClock),
    Coarse(CoarseClock),
    Manual(ManualClock),
    Custom(std::sync::Arc<dyn Clock>),
}

impl Source {
    pub(crate) fn new<C: Clock>(clock: C) -> Self {
        let any: &dyn std::any::Any = &clock;
        if let Some(c) = any.downcast_ref::<MonotonicClock>() {
            Self::Monotonic(*c)
        } else if let Some(c) = any.downcast_ref::<CoarseClock>() {
            Self::Coarse(c.clone())
        } else if let Some(c) = any.downcast_ref::<ManualClock>() {
            Self::Manual(c.clone())
        } else {
            Self::Custom(std::sync::Arc::new(clock))
        }
    }

    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Self::Monotonic(c) => c.now_nanos(),
            Self::Coarse(c) => c.now_nanos(),
            Self::Manual(c) => c.now_nanos(),
            Self::Custom(c) => c.now_nanos(),
        }
    }

    /// A shareable handle on the same time.
    pub(crate) fn to_arc(&self) -> std::sync::Arc<dyn Clock> {
        match self {
            Self::Monotonic(c) => std::sync::Arc::new(*c),
            Self::Coarse(c) => std::sync::Arc::new(c.clone()),
            Self::Manual(c) => std::sync::Arc::new(c.clone()),
            Self::Custom(c) => std::sync::Arc::clone(c),
        }
    }
}

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub(crate) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
