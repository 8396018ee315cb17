//! What the benches share to measure: closures on several threads at once (the
//! contended groups), the median of a paired run, and polling a future that is ready.
//!
//! Each bench compiles this file as a module of its own and uses a part of it.
#![allow(dead_code, reason = "each bench uses a part")]

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Runs `iters` calls on each of `threads` threads (each its own closure from `make`),
/// released together; returns the wall time from the first start to the last end,
/// divided by `threads`: per iteration, the wall time per call. Each closure is dropped
/// on its thread after its end is taken (a check in its `Drop` is not timed).
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

/// The median of `v` (sorted in place).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Polls a future until it is ready, with a no-op waker (every future measured with it
/// is ready at once).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
