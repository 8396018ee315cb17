//! The recovery ramp, property by property, on a `ManualClock`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBuilder, ManualClock, OpenWait, Outcome, Policy, Ramp, Reason, RejectReason, State};

const WAIT: Duration = Duration::from_secs(1);
const RAMP: Duration = Duration::from_secs(10);

fn builder(clock: &ManualClock, ramp: Ramp) -> BreakerBuilder {
    Breaker::builder()
        .name("backend")
        .clock(clock.clone())
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(WAIT))
        .recovery_ramp(ramp)
}

/// Trips `b`, waits out the open wait, and lets the probe succeed: the ramp begins.
fn into_the_ramp(clock: &ManualClock, b: &Breaker) {
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Recovering);
}

fn ramping(ramp: Ramp) -> (ManualClock, Breaker) {
    let clock = ManualClock::new();
    let b = builder(&clock, ramp).build().unwrap();
    into_the_ramp(&clock, &b);
    (clock, b)
}

/// Offers one call; reports `outcome` if admitted. Whether it was.
fn offer(b: &Breaker, outcome: Outcome) -> bool {
    match b.try_acquire() {
        Ok(p) => {
            p.record(outcome);
            true
        }
        Err(r) => {
            assert_eq!(r.reason(), RejectReason::Recovering, "{r}");
            false
        }
    }
}

#[test]
fn admissions_stay_within_one_call_of_the_integral_of_f_over_any_prefix() {
    let (clock, b) = ramping(Ramp::new().duration(RAMP).min_fraction(0.1));
    let (mut owed, mut admitted) = (0.0f64, 0u64);
    // 37 calls every 100 ms over the whole ramp; f read at each call.
    while b.state() == State::Recovering {
        for _ in 0..37 {
            owed += b.metrics().recovery_fraction;
            admitted += u64::from(offer(&b, Outcome::Success));
            assert!((admitted as f64 - owed).abs() <= 1.0, "{admitted} admitted, {owed:.3} owed");
        }
        clock.advance(Duration::from_millis(100));
    }
    assert_eq!(b.state(), State::Closed);
    // 0.1 for the first second, then linear to 1: (0.1 + 4.95) / 10 of the calls.
    let offered = 37.0 * 100.0;
    assert!((admitted as f64 / offered - 0.505).abs() < 0.01, "{admitted} of {offered}");
}

#[test]
fn the_first_step_never_admits_more_than_the_minimum_fraction() {
    for min_fraction in [0.05, 0.1, 0.25] {
        let (_clock, b) = ramping(Ramp::new().duration(RAMP).min_fraction(min_fraction));
        // The clock stands still: every call is in the first step.
        for n in 1..=1000u32 {
            offer(&b, Outcome::Success);
            let admitted = b.metrics().successes - 1; // less the probe
            assert!(admitted as f64 <= f64::from(n) * min_fraction + 1e-9, "{admitted} of {n} at {min_fraction}");
        }
        assert_eq!(b.metrics().successes - 1, (1000.0 * min_fraction) as u64);
    }
}

#[test]
fn consecutive_failures_abort_the_ramp_and_the_next_wait_is_longer() {
    let clock = ManualClock::new();
    let wait = OpenWait::exponential(WAIT, Duration::from_secs(60)).without_jitter();
    let b =
        builder(&clock, Ramp::new().duration(RAMP).min_fraction(1.0).abort_after(3)).open_wait(wait).build().unwrap();
    into_the_ramp(&clock, &b);
    assert!(offer(&b, Outcome::Failure));
    assert!(offer(&b, Outcome::Failure));
    assert_eq!(b.state(), State::Recovering);
    assert!(offer(&b, Outcome::Failure));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().opens, 2);
    // The second consecutive opening waits twice the first.
    let retry = b.try_acquire().unwrap_err().retry_after().unwrap();
    assert_eq!(retry, 2 * WAIT);
}

#[test]
fn a_failure_rate_aborts_the_ramp_once_it_has_enough_outcomes() {
    // Alternating failures never make a streak of 2; half of 6 outcomes is the rate.
    let ramp = Ramp::new().duration(RAMP).min_fraction(1.0).abort_after(2).min_calls(6).abort_failure_rate(0.5);
    let (_clock, b) = ramping(ramp);
    for (i, outcome) in [Outcome::Failure, Outcome::Success].into_iter().cycle().take(6).enumerate() {
        assert_eq!(b.state(), State::Recovering, "after {i} outcomes");
        offer(&b, outcome);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn the_window_forgets_old_outcomes() {
    // Eight successes, then three failures: 3 of the last 4 (75 %) abort a window of 4; a
    // window of 16 still remembers the successes (3 of 11).
    for (window, aborts) in [(4, true), (16, false)] {
        let ramp = Ramp::new()
            .duration(RAMP)
            .min_fraction(1.0)
            .abort_after(4)
            .min_calls(4)
            .abort_failure_rate(0.75)
            .window(window);
        let (_clock, b) = ramping(ramp);
        for _ in 0..8 {
            offer(&b, Outcome::Success);
        }
        for _ in 0..3 {
            offer(&b, Outcome::Failure);
        }
        assert_eq!(b.state() == State::Open, aborts, "window {window}");
    }
}

#[test]
fn ignored_outcomes_and_rejections_count_nothing() {
    let (_clock, b) = ramping(Ramp::new().duration(RAMP).min_fraction(0.5).abort_after(1));
    for _ in 0..100 {
        offer(&b, Outcome::Ignored);
    }
    assert_eq!(b.state(), State::Recovering);
    let m = b.metrics();
    assert_eq!(m.failures, 1, "the trip's failure alone");
    assert_eq!(m.rejected, 50);
}

#[test]
fn the_end_forgets_the_openings_only_after_observed_traffic() {
    let wait = OpenWait::exponential(WAIT, Duration::from_secs(60)).without_jitter();
    for (calls, next_wait) in [(0, 2 * WAIT), (5, WAIT)] {
        let clock = ManualClock::new();
        let b = builder(&clock, Ramp::new().duration(RAMP).min_fraction(1.0).min_calls(5))
            .open_wait(wait.clone())
            .build()
            .unwrap();
        into_the_ramp(&clock, &b);
        for _ in 0..calls {
            assert!(offer(&b, Outcome::Success));
        }
        clock.advance(RAMP);
        assert_eq!(b.state(), State::Closed);
        b.try_acquire().unwrap().failure(); // trips again
        assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(next_wait), "{calls} calls in the ramp");
    }
}

#[test]
fn aggression_shapes_the_fraction() {
    for (aggression, at_quarter) in [(1.0, 0.25), (2.0, 0.5), (0.5, 0.0625)] {
        let (clock, b) = ramping(Ramp::new().duration(RAMP).min_fraction(0.01).aggression(aggression));
        clock.advance(RAMP / 4);
        assert!((b.metrics().recovery_fraction - at_quarter).abs() < 1e-6, "aggression {aggression}");
    }
}

#[test]
fn duration_sets_the_end() {
    for secs in [5, 20] {
        let (clock, b) = ramping(Ramp::new().duration(Duration::from_secs(secs)));
        clock.advance(Duration::from_secs(secs) - Duration::from_millis(1));
        assert_eq!(b.state(), State::Recovering);
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().recovery_fraction, 1.0);
    }
}

#[test]
fn a_slow_call_fails_the_ramp() {
    let clock = ManualClock::new();
    let b = builder(&clock, Ramp::new().duration(RAMP).min_fraction(1.0).abort_after(1))
        .policy(Policy::consecutive_failures(1).or(Policy::slow_calls(Duration::from_millis(100), 1.0).over_calls(100)))
        .build()
        .unwrap();
    into_the_ramp(&clock, &b);
    let permit = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(150));
    permit.success();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn the_transitions_are_announced() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let clock = ManualClock::new();
    let log = seen.clone();
    let b = builder(&clock, Ramp::new().duration(RAMP).min_fraction(1.0).abort_after(1))
        .on_state_change(move |t| log.lock().unwrap().push((t.from, t.to, t.reason)))
        .build()
        .unwrap();
    into_the_ramp(&clock, &b);
    offer(&b, Outcome::Failure);
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    clock.advance(RAMP);
    b.try_acquire().unwrap().success();
    let seen = seen.lock().unwrap();
    let recovering = [
        (State::HalfOpen, State::Recovering, Reason::ProbesSucceeded),
        (State::Recovering, State::Open, Reason::RampFailed),
        (State::HalfOpen, State::Recovering, Reason::ProbesSucceeded),
        (State::Recovering, State::Closed, Reason::RampCompleted),
    ];
    for t in recovering {
        assert!(seen.contains(&t), "{t:?} in {seen:?}");
    }
}

#[test]
fn every_bad_setting_is_named_with_its_range() {
    let cases = [
        (Ramp::new().duration(Duration::ZERO), "recovery_ramp.duration"),
        (Ramp::new().min_fraction(0.0), "recovery_ramp.min_fraction"),
        (Ramp::new().min_fraction(1.5), "recovery_ramp.min_fraction"),
        (Ramp::new().aggression(0.0), "recovery_ramp.aggression"),
        (Ramp::new().aggression(f64::INFINITY), "recovery_ramp.aggression"),
        (Ramp::new().window(0), "recovery_ramp.window"),
        (Ramp::new().window(20), "recovery_ramp.window"),
        (Ramp::new().window(4).min_calls(5), "recovery_ramp.min_calls"),
        (Ramp::new().abort_after(0), "recovery_ramp.abort_after"),
        (Ramp::new().window(2).min_calls(2).abort_after(3), "recovery_ramp.abort_after"),
        (Ramp::new().abort_failure_rate(0.0), "recovery_ramp.abort_failure_rate"),
    ];
    for (ramp, field) in cases {
        let err = Breaker::builder().recovery_ramp(ramp.clone()).build().unwrap_err();
        assert_eq!(err.field(), field, "{ramp:?}");
    }
    assert!(Breaker::builder().recovery_ramp(Ramp::new()).build().is_ok());
}

#[test]
fn a_coordinator_can_start_the_ramp_part_way() {
    let clock = ManualClock::new();
    let b = builder(&clock, Ramp::new().duration(RAMP).min_fraction(0.1)).build().unwrap();
    // Another replica's probe succeeded 5 s ago: this one ramps from the same start.
    b.recover(RAMP / 2);
    assert_eq!(b.state(), State::Recovering);
    assert!((b.metrics().recovery_fraction - 0.5).abs() < 1e-6);
    clock.advance(RAMP / 2);
    assert_eq!(b.state(), State::Closed);
    // Past the ramp's end, or without a ramp: closed at once.
    b.recover(RAMP);
    assert_eq!(b.state(), State::Closed);
    let plain = Breaker::builder().clock(clock.clone()).build().unwrap();
    plain.force_open();
    plain.recover(Duration::ZERO);
    assert_eq!(plain.state(), State::Closed);
}
