//! The loom shim: every atomic the state machine uses (and the thread-locals of the
//! counters) comes from here, so that the loom
//! models (`RUSTFLAGS="--cfg breakerbox_loom"`) explore the real code's interleavings.

#[cfg(breakerbox_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
#[cfg(breakerbox_loom)]
pub(crate) use loom::thread_local;

#[cfg(not(breakerbox_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
#[cfg(not(breakerbox_loom))]
pub(crate) use std::thread_local;

/// A pause in a spin loop; under loom, a yield, so that the model lets the thread being
/// waited for run.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(breakerbox_loom)]
    loom::thread::yield_now();
    #[cfg(not(breakerbox_loom))]
    std::hint::spin_loop();
}

/// Pads and aligns a value to two cache lines, so that two hot atomics never share one
/// (128 bytes covers the adjacent-line prefetcher of x86-64 and the 128-byte lines of
/// Apple silicon).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
