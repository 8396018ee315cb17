//! In-flight age (`hung_after`): closed calls still in flight past a threshold count as
//! failures while they run, once each, on a `ManualClock`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBuilder, ManualClock, OwnedPermit, Policy, State, TripCause};

const HUNG: Duration = Duration::from_secs(1);
/// Calls are kept in buckets of a quarter of `hung_after`: one admitted at 0 is counted
/// from 1.25 s.
const COUNTED: Duration = Duration::from_millis(1250);

fn builder(clock: &ManualClock) -> BreakerBuilder {
    Breaker::builder().clock(clock.clone()).policy(Policy::consecutive_failures(5)).hung_after(HUNG)
}

fn hang(b: &Breaker, n: usize) -> Vec<OwnedPermit> {
    (0..n).map(|_| b.try_acquire_owned().unwrap()).collect()
}

#[test]
fn calls_that_all_hang_trip_the_breaker_before_any_completes() {
    let causes = Arc::new(Mutex::new(Vec::new()));
    let log = causes.clone();
    let clock = ManualClock::new();
    let b = builder(&clock).on_state_change(move |t| log.lock().unwrap().push(t.tripped_by)).build().unwrap();
    let hung = hang(&b, 5);
    clock.advance(HUNG);
    // At the threshold itself, not yet (never early).
    drop(b.try_acquire().unwrap());
    assert_eq!((b.state(), b.metrics().hung_calls), (State::Closed, 0));
    clock.advance(COUNTED - HUNG);
    assert_eq!(b.metrics().hung_calls, 5);
    // The next admission counts them: five failures, and the breaker opens.
    drop(b.try_acquire().unwrap());
    assert_eq!(b.state(), State::Open);
    assert_eq!(*causes.lock().unwrap(), [Some(TripCause::HungCalls)]);
    assert_eq!(b.metrics().failures, 0, "no call has completed yet");
    drop(hung);
}

#[test]
fn a_hung_call_counts_once_however_it_ends() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .clock(clock.clone())
        .policy(Policy::failure_rate(1.0).over_calls(100).min_calls(100))
        .hung_after(HUNG)
        .build()
        .unwrap();
    let hung = hang(&b, 3);
    clock.advance(COUNTED);
    drop(b.try_acquire().unwrap()); // counts the three
    assert_eq!(b.metrics().window.unwrap().failures, 3);
    let mut hung = hung.into_iter();
    hung.next().unwrap().failure();
    hung.next().unwrap().success();
    drop(hung.next().unwrap());
    let m = b.metrics();
    // Their own outcomes are in the totals, not again in the policy's window.
    assert_eq!(m.window.unwrap().failures, 3);
    assert_eq!(m.window.unwrap().calls, 3);
    assert_eq!((m.failures, m.successes), (2, 1), "the drop after 1.25 s counts by the cancellation rule");
    assert_eq!(m.hung_calls, 0);
}

#[test]
fn calls_that_finish_in_time_count_as_themselves() {
    let clock = ManualClock::new();
    let b = builder(&clock).build().unwrap();
    for _ in 0..20 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(900));
        p.success();
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().hung_calls, 0);
}

#[test]
fn the_threshold_sets_when_a_call_counts() {
    for (after, counted_at) in [(Duration::from_secs(1), COUNTED), (Duration::from_secs(4), Duration::from_secs(5))] {
        let clock = ManualClock::new();
        let b = builder(&clock).hung_after(after).build().unwrap();
        let _hung = hang(&b, 5);
        clock.advance(counted_at - Duration::from_millis(1));
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state(), State::Closed, "{after:?}: not yet");
        clock.advance(Duration::from_millis(1));
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state(), State::Open, "{after:?}");
    }
}

#[test]
fn hung_calls_of_an_older_generation_do_not_count() {
    let clock = ManualClock::new();
    let b = builder(&clock).build().unwrap();
    let _hung = hang(&b, 5);
    clock.advance(Duration::from_millis(300)); // past their bucket (250 ms wide)
    b.reset(); // a new generation: the five belong to the old one
    clock.advance(COUNTED);
    drop(b.try_acquire().unwrap());
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn calls_that_hang_right_after_a_close_count() {
    // Found by the model-based test: a first version skipped every hung call while the
    // generation was younger than `hung_after` and two buckets, losing these.
    let clock = ManualClock::new();
    let b = builder(&clock).build().unwrap();
    clock.advance(Duration::from_millis(300));
    b.reset();
    let _hung = hang(&b, 5);
    clock.advance(COUNTED);
    drop(b.try_acquire().unwrap());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn without_it_hung_calls_never_count() {
    let clock = ManualClock::new();
    let b = builder(&clock).hung_after(None).build().unwrap();
    let _hung = hang(&b, 5);
    clock.advance(Duration::from_secs(3600));
    drop(b.try_acquire().unwrap());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().hung_calls, 0);
}

#[test]
fn a_zero_threshold_is_refused() {
    let err = Breaker::builder().hung_after(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.field(), "hung_after");
}
