use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A clock that costs one relaxed atomic load per read.
///
/// A background thread stores the time every `resolution`; readers load it. An open
/// breaker on this clock rejects without a system call. Readings lag real time by up to
/// the resolution, so open waits and call durations are that much coarser.
///
/// The thread holds only a weak reference and exits within one resolution after the
/// last clone is dropped.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{Breaker, CoarseClock};
///
/// let breaker = Breaker::builder()
///     .clock(CoarseClock::new(Duration::from_millis(1)))
///     .build()?;
/// assert!(breaker.is_closed());
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// # Clone
///
/// Clones share one reading and one thread.
#[derive(Clone, Debug)]
pub struct CoarseClock {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    nanos: AtomicU64,
    resolution: Duration,
}

impl CoarseClock {
    /// Starts a clock that ticks every `resolution` (at least 100 µs).
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot spawn the ticking thread (as
    /// [`std::thread::spawn`] does).
    pub fn new(resolution: Duration) -> Self {
        let resolution = resolution.max(Duration::from_micros(100));
        let origin = Instant::now();
        let shared = Arc::new(Shared { nanos: AtomicU64::new(0), resolution });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("breakerbox-coarse-clock".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(resolution);
                    let Some(shared) = weak.upgrade() else { return };
                    // fetch_max keeps the reading monotonic even if the OS wakes us late.
                    shared.nanos.fetch_max(super::nanos(origin.elapsed()), Ordering::Relaxed);
                }
            })
            .expect("failed to spawn the coarse clock thread");
        Self { shared }
    }

    /// How often the reading is refreshed.
    pub fn resolution(&self) -> Duration {
        self.shared.resolution
    }

    /// The process-wide clock that times how long permits have been in flight, for
    /// breakers on the (precise, ~20 ns a read) [`MonotonicClock`](super::MonotonicClock):
    /// one thread, ticking every 5 ms, while any breaker holds it; it exits within a
    /// tick after the last is dropped.
    pub(crate) fn for_ages() -> Self {
        static AGES: Mutex<Weak<Shared>> = Mutex::new(Weak::new());
        let mut ages = AGES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = ages.upgrade() {
            return Self { shared };
        }
        let clock = Self::new(Duration::from_millis(5));
        *ages = Arc::downgrade(&clock.shared);
        clock
    }
}

impl super::Clock for CoarseClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Relaxed: a stale reading is the documented trade; nothing is published with it.
        self.shared.nanos.load(Ordering::Relaxed)
    }
}
