//! Real threads, exact counts: nothing is lost or double-counted under contention.

use std::sync::Barrier;
use std::time::Duration;

use breakerbox::{Breaker, ManualClock, OpenWait, Outcome, Policy, State};

const THREADS: usize = 4;
const CALLS: usize = 20_000;

#[test]
fn closed_counts_are_exact_under_contention() {
    let b = Breaker::builder().policy(Policy::consecutive_failures(u32::MAX)).build().unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (b, barrier) = (&b, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..CALLS {
                    let outcome = match (i + t) % 10 {
                        0 => Outcome::Failure,
                        1 => Outcome::Ignored,
                        _ => Outcome::Success,
                    };
                    b.try_acquire().unwrap().record(outcome);
                }
            });
        }
    });
    let m = b.metrics();
    let total = (THREADS * CALLS) as u64;
    assert_eq!(m.failures, total / 10);
    assert_eq!(m.ignored, total / 10);
    assert_eq!(m.successes, total - total / 5);
    assert_eq!(m.rejected, 0);
}

#[test]
fn half_open_stampede_admits_exactly_the_probes() {
    for probes in [1u32, 3] {
        for _round in 0..50 {
            let clock = ManualClock::new();
            let b = Breaker::builder()
                .policy(Policy::consecutive_failures(1))
                .open_wait(OpenWait::fixed(Duration::from_secs(1)))
                .half_open_probes(probes)
                .clock(clock.clone())
                .build()
                .unwrap();
            b.try_acquire().unwrap().failure();
            clock.advance(Duration::from_secs(1));
            let barrier = Barrier::new(THREADS * 2);
            let admitted: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS * 2)
                    .map(|_| {
                        let (b, barrier) = (&b, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            // Hold the permit until every thread has tried.
                            b.try_acquire_owned().ok()
                        })
                    })
                    .collect();
                let permits: Vec<_> = handles.into_iter().filter_map(|h| h.join().unwrap()).collect();
                permits.len()
            });
            assert_eq!(admitted, probes as usize);
            let m = b.metrics();
            assert_eq!(m.rejected, (THREADS * 2) as u64 - u64::from(probes));
            assert_eq!(m.probes_in_flight, 0, "dropped permits freed their slots");
            assert_eq!(b.state(), State::HalfOpen);
        }
    }
}

#[test]
fn concurrent_failures_open_once() {
    for _round in 0..100 {
        let clock = ManualClock::new();
        let opened = std::sync::atomic::AtomicUsize::new(0);
        let opened = std::sync::Arc::new(opened);
        let b = Breaker::builder()
            .policy(Policy::consecutive_failures(3))
            .clock(clock.clone())
            .on_state_change({
                let opened = opened.clone();
                move |t| {
                    if t.to == State::Open {
                        opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
            .build()
            .unwrap();
        let permits: Vec<_> = (0..THREADS * 2).map(|_| b.try_acquire_owned().unwrap()).collect();
        let barrier = Barrier::new(permits.len());
        std::thread::scope(|s| {
            for p in permits {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    p.failure();
                });
            }
        });
        assert_eq!(opened.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(b.metrics().opens, 1);
        assert_eq!(b.metrics().failures, (THREADS * 2) as u64);
    }
}

/// Probes taken over after their lease, dropped, released, failed and succeeded by real
/// threads that also move the clock: never more probes in flight than slots, no thread
/// stuck waiting for a slot, and nothing left in flight when every permit is gone.
#[test]
fn probe_slots_under_takeover_drops_and_reopenings() {
    const PROBES: u32 = 2;
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(Duration::from_millis(1)))
        .half_open_probes(PROBES)
        .probe_lease(Duration::from_millis(2))
        .cancel_counts_after(Duration::from_millis(3))
        .clock(clock.clone())
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn({
        let b = b.clone();
        move || {
            let barrier = Barrier::new(THREADS);
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let (b, barrier, clock) = (&b, &barrier, &clock);
                    s.spawn(move || {
                        barrier.wait();
                        let mut held = Vec::new();
                        for i in 0..CALLS / 4 {
                            clock.advance(Duration::from_micros(100));
                            if let Ok(permit) = b.try_acquire_owned() {
                                match (i + t) % 6 {
                                    0 | 1 => held.push(permit), // silent for a while
                                    2 => drop(permit),
                                    3 => permit.release(),
                                    4 => permit.failure(),
                                    _ => permit.success(),
                                }
                            }
                            if held.len() > 3 {
                                held.remove(0).success();
                            }
                            assert!(b.metrics().probes_in_flight <= PROBES, "more probes in flight than slots");
                        }
                        drop(held);
                    });
                }
            });
            let _ = tx.send(());
        }
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("a thread is stuck (waiting for a probe slot?)");
    let m = b.metrics();
    assert_eq!(m.probes_in_flight, 0, "every permit is gone: {m:?}");
    assert!(m.opens > 10, "the breaker cycled: {m:?}");
    b.reset();
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
}
