//! Clocks.

use std::time::Duration;

use breakerbox::{Breaker, Clock, CoarseClock, ManualClock, MonotonicClock, OpenWait, Policy};

#[test]
fn manual_clock_clones_share_time_and_never_go_back() {
    let a = ManualClock::new();
    let b = a.clone();
    a.advance(Duration::from_millis(5));
    assert_eq!(b.now_nanos(), 5_000_000);
    b.set(Duration::from_millis(2));
    assert_eq!(a.elapsed(), Duration::from_millis(5), "set() never moves time backwards");
    b.set(Duration::from_millis(9));
    assert_eq!(a.elapsed(), Duration::from_millis(9));
    a.advance(Duration::MAX);
    assert_eq!(a.now_nanos(), u64::MAX, "saturates");
}

#[test]
fn monotonic_clock_moves_forward() {
    let c = MonotonicClock::new();
    let t0 = c.now_nanos();
    let t1 = c.now_nanos();
    assert!(t1 >= t0);
}

#[test]
fn coarse_clock_ticks_and_drives_a_breaker() {
    let c = CoarseClock::new(Duration::from_millis(1));
    assert_eq!(c.resolution(), Duration::from_millis(1));
    let b = Breaker::builder()
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(Duration::from_millis(20)))
        .clock(c.clone())
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    assert!(b.is_open());
    // Real time must pass for a real clock: poll, bounded, instead of a fixed sleep.
    let start = std::time::Instant::now();
    while !b.is_half_open() {
        assert!(start.elapsed() < Duration::from_secs(10), "the coarse clock stopped ticking");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(c.now_nanos() >= 20_000_000);
}
