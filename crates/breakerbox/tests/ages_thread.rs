//! The process-wide ages thread (`breakerbox-ages`, the 5 ms tick that families and
//! throttled breakers on the `MonotonicClock` read) runs while something holds it, and
//! exits within a tick once nothing does: dropping the last family leaks no
//! thread. A test binary of its own, so that no other test holds the tick meanwhile.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use breakerbox::{Breaker, BreakerBox};

/// How many threads of this process are named `breakerbox-ages`.
fn ages_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "breakerbox-ages")
        .count()
}

/// Polls `cond` for up to 2 s of real time.
fn within_2s(mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

#[test]
fn the_ages_thread_runs_while_held_and_exits_after() {
    let family: BreakerBox<String> = BreakerBox::new(Breaker::builder()).unwrap();
    family.get("a");
    assert_eq!(ages_threads(), 1, "one thread for the process while a family holds the tick");
    let second: BreakerBox<String> = BreakerBox::new(Breaker::builder()).unwrap();
    assert_eq!(ages_threads(), 1, "a second holder shares it");
    drop(family);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ages_threads(), 1, "still held by the second family");
    drop(second);
    assert!(within_2s(|| ages_threads() == 0), "the thread exits once nothing holds it");
}
