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
}

impl super::Clock for CoarseClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // Relaxed: a stale reading is the documented trade; nothing is published with it.
        self.shared.nanos.load(Ordering::Relaxed)
    }
}

/// The process-wide clock that times how long permits have been in flight, for the
/// breakers on the (precise, ~20 ns a read) [`MonotonicClock`](super::MonotonicClock):
/// nanoseconds since a process-wide origin in a static, refreshed every 5 ms by one
/// thread while any breaker holds an [`AgesTicker`]. A read is one relaxed load of a
/// static: no pointer to follow on the call path.
#[inline]
pub(crate) fn ages_now() -> u64 {
    AGES_NANOS.load(Ordering::Relaxed)
}

static AGES_NANOS: AtomicU64 = AtomicU64::new(0);

/// What ages and last uses are read from: a clock's own reading, or the shared ages
/// clock (for a `MonotonicClock`, whose reads are a system call's worth). Breakers time
/// permit ages on it, families stamp last uses with it.
#[derive(Debug)]
pub(crate) enum AgeClock {
    /// The clock's own reading.
    Own,
    /// The process-wide coarse ages clock; the handle keeps it ticking while held.
    Shared { _ticking: Arc<AgesTicker> },
}

impl AgeClock {
    /// The shared ages clock, ticking.
    pub(crate) fn shared() -> Self {
        Self::Shared { _ticking: AgesTicker::hold() }
    }

    /// Nanoseconds now: `clock`'s reading, or the shared tick's.
    #[inline(always)]
    pub(crate) fn now(&self, clock: &super::AnyClock) -> u64 {
        match self {
            Self::Shared { .. } => ages_now(),
            Self::Own => clock.now(),
        }
    }
}

/// Keeps the ages thread running; it exits within a tick after the last one is dropped.
#[derive(Debug)]
pub(crate) struct AgesTicker(());

impl AgesTicker {
    /// The running ticker, or a new one.
    pub(crate) fn hold() -> Arc<Self> {
        static TICKER: Mutex<Weak<AgesTicker>> = Mutex::new(Weak::new());
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        const TICK: Duration = Duration::from_millis(5);
        let mut ticker = TICKER.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = ticker.upgrade() {
            return held;
        }
        let held = Arc::new(Self(()));
        let weak = Arc::downgrade(&held);
        let origin = *ORIGIN.get_or_init(Instant::now);
        AGES_NANOS.fetch_max(super::nanos(origin.elapsed()), Ordering::Relaxed);
        std::thread::Builder::new()
            .name("breakerbox-ages".into())
            .spawn(move || {
                while weak.strong_count() > 0 {
                    std::thread::sleep(TICK);
                    AGES_NANOS.fetch_max(super::nanos(origin.elapsed()), Ordering::Relaxed);
                }
            })
            .expect("failed to spawn the breakerbox-ages thread");
        *ticker = Arc::downgrade(&held);
        held
    }
}
