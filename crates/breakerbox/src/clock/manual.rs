use std::time::Duration;

use std::sync::Arc;

use crate::sync::{AtomicU64, Ordering};

/// A clock that moves only when told to: deterministic tests without sleeps.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{Breaker, ManualClock, OpenWait, Policy};
///
/// let clock = ManualClock::new();
/// let breaker = Breaker::builder()
///     .policy(Policy::consecutive_failures(1))
///     .open_wait(OpenWait::fixed(Duration::from_secs(30)))
///     .clock(clock.clone())
///     .build()?;
///
/// breaker.try_acquire()?.failure();
/// assert!(breaker.is_open());
/// clock.advance(Duration::from_secs(30));
/// assert!(breaker.is_half_open());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Clone
///
/// Clones share one time: advancing one advances them all, across threads.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`, saturating at `u64::MAX` nanoseconds.
    pub fn advance(&self, by: Duration) {
        let by = super::nanos(by);
        // Relaxed: the clock carries no data; a breaker orders its own state with its
        // own atomics. fetch_update cannot fail with a closure that always returns Some.
        let _ = self.nanos.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_add(by)));
    }

    /// Moves time to `to` since the origin; a `to` in the past is ignored, so time never
    /// goes backwards.
    pub fn set(&self, to: Duration) {
        self.nanos.fetch_max(super::nanos(to), Ordering::Relaxed);
    }

    /// Time since the origin.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

impl super::Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}
