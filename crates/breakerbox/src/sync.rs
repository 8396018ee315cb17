//! The loom shim: every atomic the state machine uses (and the thread-locals of the
//! counters) comes from here, so that the loom
//! models (`RUSTFLAGS="--cfg breakerbox_loom"`) explore the real code's interleavings.

#[cfg(breakerbox_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(breakerbox_loom)]
pub(crate) use loom::thread_local;

#[cfg(not(breakerbox_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(breakerbox_loom))]
pub(crate) use std::thread_local;

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
