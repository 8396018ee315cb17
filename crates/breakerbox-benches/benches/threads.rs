//! Runs a closure on several threads at once, for the contended groups.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Runs `iters` calls on each of `threads` threads (each its own closure from `make`),
/// released together; returns the wall time from the first start to the last end,
/// divided by `threads`: per iteration, the wall time per call.
pub(crate) fn run_threads<M, G>(iters: u64, threads: usize, make: M) -> Duration
where
    M: Fn() -> G + Sync,
    G: FnMut(u64),
{
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut f = make();
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        f(i);
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("benchmark thread panicked")).collect()
    });
    let start = spans.iter().map(|s| s.0).min().expect("at least one thread");
    let end = spans.iter().map(|s| s.1).max().expect("at least one thread");
    (end - start) / u32::try_from(threads).expect("few threads")
}
