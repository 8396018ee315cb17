use std::time::Instant;

/// The default clock: [`Instant`], counted from the clock's creation.
///
/// # Clone
///
/// Clones share the origin.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl super::Clock for MonotonicClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        super::nanos(self.origin.elapsed())
    }
}
