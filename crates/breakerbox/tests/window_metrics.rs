//! What `metrics()` says of the policy's window and streaks, and which rule tripped:
//! the counts resilience4j and gobreaker users read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, ManualClock, OpenWait, Outcome, Policy, Ramp, TripCause, WindowCounts};

#[test]
fn the_window_of_the_first_rate_rule() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .clock(clock.clone())
        .policy(
            Policy::from(Policy::failure_rate(0.9).over_calls(5))
                .or(Policy::slow_calls(Duration::from_millis(10), 1.0)),
        )
        .build()
        .unwrap();
    assert_eq!(b.metrics().window, Some(WindowCounts::default()));
    for outcome in [Outcome::Failure, Outcome::Success, Outcome::Failure] {
        b.try_acquire().unwrap().record(outcome);
    }
    let w = b.metrics().window.unwrap();
    assert_eq!((w.calls, w.failures, w.slow_calls), (3, 2, 0));
    let slow = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(20));
    slow.success();
    for _ in 0..3 {
        b.try_acquire().unwrap().success();
    }
    // A window of 5: the first failure slid out.
    let w = b.metrics().window.unwrap();
    assert_eq!((w.calls, w.failures, w.slow_calls), (5, 1, 1));
    // No rate rule: no window.
    assert_eq!(Breaker::new().metrics().window, None);
}

#[test]
fn consecutive_successes_when_the_breaker_can_tell() {
    let clock = ManualClock::new();
    let counted = Breaker::builder()
        .clock(clock.clone())
        .policy(Policy::consecutive_failures(3).or(Policy::failure_rate(0.9).over_calls(10)))
        .build()
        .unwrap();
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Success, Outcome::Success] {
        counted.try_acquire().unwrap().record(outcome);
    }
    assert_eq!(counted.metrics().consecutive_successes, Some(2));
    counted.try_acquire().unwrap().failure();
    assert_eq!(counted.metrics().consecutive_successes, Some(0), "a failure streak runs");
    // A streak-only policy keeps no success count: it would cost every call a write.
    let plain = Breaker::builder().clock(clock.clone()).build().unwrap();
    plain.try_acquire().unwrap().success();
    assert_eq!(plain.metrics().consecutive_successes, None);
    plain.try_acquire().unwrap().failure();
    assert_eq!(plain.metrics().consecutive_successes, Some(0));
}

#[test]
fn half_open_and_recovering_report_their_own_counts() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .clock(clock.clone())
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(Duration::from_secs(1)))
        .half_open_probes(2)
        .recovery_ramp(Ramp::new().min_fraction(1.0).abort_after(3))
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.metrics().consecutive_successes, Some(0));
    clock.advance(Duration::from_secs(1));
    let (p1, p2) = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    p1.success();
    assert_eq!(b.metrics().consecutive_successes, Some(1));
    p2.success();
    for outcome in [Outcome::Failure, Outcome::Success, Outcome::Success] {
        b.try_acquire().unwrap().record(outcome);
    }
    let m = b.metrics();
    assert_eq!(m.window.map(|w| (w.calls, w.failures)), Some((3, 1)));
    assert_eq!(m.consecutive_successes, Some(2));
}

#[test]
fn the_trip_says_which_rule_tripped() {
    let causes = Arc::new(Mutex::new(Vec::new()));
    let clock = ManualClock::new();
    let log = causes.clone();
    let b = Breaker::builder()
        .clock(clock.clone())
        .policy(
            Policy::consecutive_failures(3).or(Policy::failure_rate(0.5).over_calls(4)).or(Policy::slow_calls(
                Duration::from_millis(10),
                0.5,
            )
            .over_calls(4)),
        )
        .open_wait(OpenWait::fixed(Duration::from_secs(1)))
        .on_state_change(move |t| log.lock().unwrap().push((t.reason, t.tripped_by)))
        .build()
        .unwrap();
    let trip = |outcomes: &[(Outcome, u64)]| {
        for (outcome, ms) in outcomes {
            let p = b.try_acquire().unwrap();
            clock.advance(Duration::from_millis(*ms));
            p.record(*outcome);
        }
        b.reset();
    };
    trip(&[(Outcome::Failure, 0); 3]);
    // A rate is looked at when a call counts against it: the last call fails (is slow).
    trip(&[(Outcome::Success, 0), (Outcome::Failure, 0), (Outcome::Success, 0), (Outcome::Failure, 0)]);
    trip(&[(Outcome::Success, 0), (Outcome::Success, 20), (Outcome::Success, 0), (Outcome::Success, 20)]);
    let trips: Vec<_> = causes.lock().unwrap().iter().filter_map(|(_, c)| *c).collect();
    assert_eq!(trips, [TripCause::ConsecutiveFailures, TripCause::FailureRate, TripCause::SlowCallRate]);
}
