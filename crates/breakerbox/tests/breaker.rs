//! The breaker's semantics, one test per rule, on a `ManualClock` (no sleeps).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBuilder, Clock, Error, ManualClock, OpenWait, Outcome, Policy, Report, State};

const WAIT: Duration = Duration::from_secs(10);

fn builder(clock: &ManualClock, threshold: u32, probes: u32) -> BreakerBuilder {
    Breaker::builder()
        .name("test")
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(WAIT))
        .half_open_probes(probes)
        .clock(clock.clone())
}

fn trip(b: &Breaker, threshold: u32) {
    for _ in 0..threshold {
        b.try_acquire().expect("closed").failure();
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn default_breaker_is_useful() {
    let b = Breaker::new();
    assert!(b.is_closed());
    assert_eq!(b.half_open_probes(), 1);
    for _ in 0..4 {
        b.try_acquire().unwrap().failure();
    }
    assert!(b.is_closed(), "the default trips on the 5th consecutive failure");
    b.try_acquire().unwrap().failure();
    assert!(b.is_open());
    let r = b.try_acquire().unwrap_err();
    let after = r.retry_after().unwrap();
    // Deadlines have millisecond resolution, rounded up.
    assert!(
        after <= Duration::from_secs(30) + Duration::from_millis(1) && after > Duration::from_secs(29),
        "{after:?}"
    );
}

#[test]
fn clones_share_one_breaker() {
    let clock = ManualClock::new();
    let a = builder(&clock, 2, 1).build().unwrap();
    let b = a.clone();
    a.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert!(a.is_open() && b.is_open());
    assert!(a.same_as(&b));
    let other = builder(&clock, 2, 1).build().unwrap();
    assert!(!a.same_as(&other), "two breakers built alike are still two");
}

#[test]
fn trips_on_the_nth_consecutive_failure_and_success_resets_the_streak() {
    let clock = ManualClock::new();
    let b = builder(&clock, 3, 1).build().unwrap();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert!(b.is_closed());
    assert_eq!(b.metrics().consecutive_failures, 2);
    b.try_acquire().unwrap().failure();
    assert!(b.is_open());
}

#[test]
fn open_reports_half_open_once_the_wait_passes_without_any_call() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    trip(&b, 1);
    clock.advance(WAIT - Duration::from_millis(1));
    assert!(b.is_open());
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_millis(1)));
    clock.advance(Duration::from_millis(1));
    assert!(b.is_half_open());
    assert!(!b.is_open() && !b.is_closed());
}

#[test]
fn half_open_admits_exactly_the_configured_probes() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 3).build().unwrap();
    trip(&b, 1);
    clock.advance(WAIT);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe slot")).collect();
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.state(), State::HalfOpen);
    assert_eq!(r.retry_after(), None);
    assert_eq!(b.metrics().probes_in_flight, 3);
    // Two successes are not enough to close ...
    let mut probes = probes.into_iter();
    probes.next().unwrap().success();
    probes.next().unwrap().success();
    assert!(b.is_half_open());
    // ... and a freed slot can be taken only as far as the successes still needed.
    assert!(b.try_acquire().is_err());
    probes.next().unwrap().success();
    assert!(b.is_closed());
    assert_eq!(b.metrics().consecutive_failures, 0);
}

#[test]
fn any_failed_probe_reopens_with_the_next_longer_wait() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 2)
        .open_wait(OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(8)))
        .build()
        .unwrap();
    trip(&b, 1);
    let mut expected = Duration::from_secs(1);
    for _ in 0..5 {
        assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(expected));
        clock.advance(expected);
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire().unwrap();
        p1.success();
        p2.failure();
        assert_eq!(b.state(), State::Open);
        expected = (expected * 2).min(Duration::from_secs(8));
    }
    // Closing resets the growth.
    clock.advance(Duration::from_secs(8));
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    assert!(b.is_closed());
    trip(&b, 1);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(1)));
}

#[test]
fn a_dropped_probe_frees_its_slot_and_changes_no_statistic() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    trip(&b, 1);
    clock.advance(WAIT);
    let before = b.metrics();
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(probe);
    let after = b.metrics();
    assert_eq!((after.successes, after.failures, after.ignored), (before.successes, before.failures, before.ignored));
    assert_eq!(after.probes_in_flight, 0);
    b.try_acquire().expect("the slot is free again").success();
    assert!(b.is_closed());
}

#[test]
fn a_cancelled_call_async_frees_its_probe_slot() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    trip(&b, 1);
    clock.advance(WAIT);
    {
        let mut fut = pin!(b.call_async(std::future::pending::<Result<(), ()>>()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(b.metrics().probes_in_flight, 1);
    } // dropped: cancelled
    assert_eq!(b.metrics().probes_in_flight, 0);
    assert!(b.is_half_open());
    let r = futures_executor::block_on(b.call_async(async { Ok::<_, ()>(7) }));
    assert_eq!(r.unwrap(), 7);
    assert!(b.is_closed());
    assert_eq!(Poll::Ready(()), Poll::Ready(()));
}

#[test]
fn a_panic_inside_call_is_a_failure_and_propagates() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = b.call(|| -> Result<(), ()> { panic!("boom") });
    }));
    assert!(caught.is_err(), "the panic propagates");
    assert_eq!(b.metrics().failures, 1);
    assert!(b.is_open());
}

#[test]
fn a_silent_probe_loses_its_slot_when_the_lease_runs_out() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).probe_lease(Duration::from_secs(5)).build().unwrap();
    trip(&b, 1);
    clock.advance(WAIT);
    let hung = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(4));
    assert!(b.try_acquire().is_err(), "the lease still holds");
    clock.advance(Duration::from_secs(1));
    let fresh = b.try_acquire().expect("the lease ran out: a new probe");
    // The hung probe's late success belongs to the old round and cannot close.
    hung.success();
    assert!(b.is_half_open());
    fresh.success();
    assert!(b.is_closed());
}

#[test]
fn a_late_outcome_from_an_older_generation_never_changes_the_state() {
    let clock = ManualClock::new();
    let b = builder(&clock, 2, 1).build().unwrap();
    // Admitted while closed, reported after the breaker opened and turned half-open.
    let slow_success = b.try_acquire().unwrap();
    let slow_failure = b.try_acquire().unwrap();
    trip(&b, 2);
    clock.advance(WAIT);
    let probe = b.try_acquire().unwrap();
    slow_success.success();
    slow_failure.failure();
    assert!(b.is_half_open(), "neither late outcome touched the half-open state");
    assert_eq!(b.metrics().probes_in_flight, 1);
    probe.success();
    assert!(b.is_closed());
    // A late failure from before the reset does not count toward the new streak.
    let before_reset = b.try_acquire().unwrap();
    b.reset();
    before_reset.failure();
    assert_eq!(b.metrics().consecutive_failures, 0);
    // But the metrics still saw every call.
    assert_eq!(b.metrics().successes, 2);
    assert_eq!(b.metrics().failures, 4);
}

#[test]
fn an_owned_permit_reports_as_a_borrowed_one() {
    let clock = ManualClock::new();
    let b = builder(&clock, 3, 1).build().unwrap();
    let counts = |b: &Breaker| {
        let m = b.metrics();
        (m.successes, m.failures, m.ignored, m.consecutive_failures)
    };
    b.try_acquire_owned().unwrap().failure();
    assert_eq!(counts(&b), (0, 1, 0, 1));
    b.try_acquire_owned().unwrap().ignore();
    assert_eq!(counts(&b), (0, 1, 1, 1), "ignored: counted as such, the streak kept");
    b.try_acquire_owned().unwrap().release();
    drop(b.try_acquire_owned().unwrap());
    assert_eq!(counts(&b), (0, 1, 1, 1), "released or dropped at once: nothing counted");
    b.try_acquire_owned().unwrap().success();
    assert_eq!(counts(&b), (1, 1, 1, 0));
}

#[test]
fn ignored_outcomes_touch_nothing() {
    let clock = ManualClock::new();
    let b = builder(&clock, 3, 1).build().unwrap();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().ignore();
    assert_eq!(b.metrics().consecutive_failures, 2, "an ignored outcome does not reset the streak");
    b.try_acquire().unwrap().failure();
    assert!(b.is_open());

    // Nor dilutes a rate.
    let r = Breaker::builder()
        .policy(Policy::failure_rate(0.5).over_calls(4).min_calls(4))
        .clock(clock.clone())
        .build()
        .unwrap();
    r.try_acquire().unwrap().failure();
    r.try_acquire().unwrap().success();
    for _ in 0..10 {
        r.try_acquire().unwrap().ignore();
    }
    r.try_acquire().unwrap().success();
    assert_eq!(r.metrics().failure_rate, Some(1.0 / 3.0));
    r.try_acquire().unwrap().failure();
    assert!(r.is_open(), "2 failures in 4 counted calls is 50%");

    // And in half-open, frees the slot without closing.
    clock.advance(Duration::from_secs(30));
    r.try_acquire().unwrap().ignore();
    assert!(r.is_half_open());
    r.try_acquire().unwrap().success();
    assert!(r.is_closed());
}

#[test]
fn rejections_are_never_counted_as_failures() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    trip(&b, 1);
    for _ in 0..100 {
        assert!(b.call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
    }
    let m = b.metrics();
    assert_eq!((m.failures, m.rejected, m.opens), (1, 100, 1));
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    assert!(b.is_closed());
}

#[test]
fn classifier_can_fail_an_ok_and_ignore_an_err() {
    let clock = ManualClock::new();
    let b = builder(&clock, 2, 1).build().unwrap();
    let classify = |r: &Result<u16, u16>| match r {
        Ok(s) if *s >= 500 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(404) => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    };
    assert_eq!(b.call_with(classify, || Ok(503)).unwrap(), 503, "the caller still gets the value");
    assert_eq!(b.call_with(classify, || Err(404)).unwrap_err().into_inner(), Some(404));
    assert!(b.is_closed());
    let _ = b.call_with(classify, || Ok(500));
    assert!(b.is_open());
}

#[test]
fn call_async_with_classifies_like_call_with() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    let r = futures_executor::block_on(b.call_async_with(
        |r: &Result<u16, ()>| if matches!(r, Ok(500..)) { Outcome::Failure } else { Outcome::Success },
        async { Ok(502) },
    ));
    assert_eq!(r.unwrap(), 502);
    assert!(b.is_open());
    let r = futures_executor::block_on(b.call_async(async { Ok::<_, ()>(()) }));
    assert!(matches!(r, Err(Error::Rejected(_))));
}

#[test]
fn retry_after_hint_lengthens_the_wait_up_to_the_limit() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).retry_after_limit(Duration::from_secs(60)).build().unwrap();
    b.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::from_secs(45)));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(45)));
    b.reset();
    b.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::from_secs(600)));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(60)), "capped");
    b.reset();
    b.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::from_secs(1)));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(WAIT), "never shorter than the wait");
}

#[test]
fn reset_force_open_and_disable() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    trip(&b, 1);
    b.reset();
    assert!(b.is_closed());
    assert_eq!(b.metrics().consecutive_failures, 0);

    b.force_open();
    assert_eq!(b.state(), State::ForcedOpen);
    assert!(b.is_open());
    clock.advance(Duration::from_secs(3600));
    let r = b.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::ForcedOpen, None));

    b.disable();
    assert_eq!(b.state(), State::Disabled);
    for _ in 0..10 {
        b.try_acquire().expect("disabled admits everything").failure();
    }
    assert_eq!(b.state(), State::Disabled, "and never trips");
    assert_eq!(b.metrics().failures, 11, "but keeps counting");

    b.reset();
    b.try_acquire().unwrap().failure();
    assert!(b.is_open(), "back to normal");
}

#[test]
fn failure_rate_over_a_count_window_needs_min_calls_and_slides() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .policy(Policy::failure_rate(0.5).over_calls(10).min_calls(6))
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..5 {
        b.try_acquire().unwrap().failure();
    }
    assert!(b.is_closed(), "5 calls are below the minimum of 6, even at 100%");
    // Slide the failures out with successes: 5 F then 10 S leaves 0 % in the window.
    for _ in 0..10 {
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.metrics().failure_rate, Some(0.0));
    for _ in 0..4 {
        b.try_acquire().unwrap().failure();
    }
    assert!(b.is_closed(), "4 in 10 is 40%");
    b.try_acquire().unwrap().failure();
    assert!(b.is_open(), "5 in 10 is 50%");
}

#[test]
fn failure_rate_over_a_time_window_forgets_old_calls() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .policy(Policy::failure_rate(0.5).over_time(Duration::from_secs(10)).min_calls(4))
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    clock.advance(Duration::from_secs(11));
    b.try_acquire().unwrap().failure();
    assert!(b.is_closed(), "the first three failures have left the window");
    for _ in 0..2 {
        b.try_acquire().unwrap().success();
    }
    b.try_acquire().unwrap().failure();
    assert!(b.is_open(), "2 of 4 in the window");
}

#[test]
fn slow_calls_trip_and_a_slow_probe_reopens() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .policy(Policy::slow_calls(Duration::from_millis(100), 0.5).over_calls(4).min_calls(4))
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(10));
        p.success();
    }
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(150)); // timed by the breaker
    p.success();
    assert!(b.is_closed());
    b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_secs(1)));
    assert!(b.is_open(), "2 slow in 4");
    assert_eq!(b.metrics().slow_calls, 2);
    clock.advance(Duration::from_secs(30));
    b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_millis(200)));
    assert!(b.is_open(), "a slow probe is a failed probe");
}

#[test]
fn combined_policy_trips_when_any_rule_trips() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .policy(Policy::consecutive_failures(3).or(Policy::failure_rate(0.5).over_calls(4).min_calls(4)))
        .clock(clock.clone())
        .build()
        .unwrap();
    for outcome in [Outcome::Failure, Outcome::Success, Outcome::Failure, Outcome::Success] {
        b.try_acquire().unwrap().record(outcome);
    }
    assert!(b.is_closed(), "the rate rule checks only when a failure is recorded");
    b.try_acquire().unwrap().failure();
    assert!(b.is_open(), "the rate rule tripped (2 of 4 after sliding), the streak is only 1");
}

#[test]
fn time_never_panics_or_overflows() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1)
        .open_wait(OpenWait::exponential(Duration::from_secs(1), Duration::MAX))
        .probe_lease(Duration::MAX)
        .retry_after_limit(Duration::MAX)
        .build()
        .unwrap();
    for _ in 0..80 {
        let _ = b.try_acquire().map(|p| p.record(Report::failure().with_retry_after(Duration::MAX)));
        clock.advance(Duration::from_secs(u64::MAX / 4));
    }
    clock.advance(Duration::MAX);
    let _ = b.state();
    let _ = b.metrics();
    let _ = b.try_acquire().map(|p| p.success());
}

#[test]
fn listeners_see_every_transition_after_it_is_published() {
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = builder(&clock, 1, 1)
        .on_state_change({
            let seen = Arc::clone(&seen);
            move |t| seen.lock().unwrap().push((t.from, t.to, t.reason, t.open_for))
        })
        .build()
        .unwrap();
    // A listener may call back into the breaker: it runs outside any lock or CAS loop.
    let b2 = b.clone();
    let reentrant = builder(&clock, 1, 1)
        .on_state_change(move |t| {
            let _ = b2.state();
            let _ = b2.metrics();
            assert_eq!(t.breaker, "test");
        })
        .build()
        .unwrap();
    trip(&reentrant, 1);

    trip(&b, 1);
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    b.force_open();
    b.reset();
    use breakerbox::Reason::*;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Closed, State::Open, Tripped, Some(WAIT)),
            (State::Open, State::HalfOpen, WaitElapsed, None),
            (State::HalfOpen, State::Closed, ProbesSucceeded, None),
            (State::Closed, State::ForcedOpen, ForcedOpen, None),
            (State::ForcedOpen, State::Closed, Reset, None),
        ]
    );
}

#[test]
fn a_panicking_listener_cannot_break_the_breaker() {
    let clock = ManualClock::new();
    let count = Arc::new(AtomicUsize::new(0));
    let b = builder(&clock, 1, 1)
        .on_state_change(|_| panic!("listener bug"))
        .on_rejection(|_| panic!("listener bug"))
        .on_outcome(|_| panic!("listener bug"))
        .on_state_change({
            let count = Arc::clone(&count);
            move |_| {
                count.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    trip(&b, 1);
    assert!(b.try_acquire().is_err());
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    assert!(b.is_closed());
    assert_eq!(count.load(Ordering::Relaxed), 3, "the other listeners still ran");
}

#[test]
fn rejection_and_outcome_listeners_see_each_event() {
    let clock = ManualClock::new();
    let rejections = Arc::new(AtomicUsize::new(0));
    let stale = Arc::new(AtomicUsize::new(0));
    let b = builder(&clock, 1, 1)
        .on_rejection({
            let r = Arc::clone(&rejections);
            move |rej| {
                assert_eq!(rej.name(), "test");
                r.fetch_add(1, Ordering::Relaxed);
            }
        })
        .on_outcome({
            let s = Arc::clone(&stale);
            move |o| {
                if !o.current {
                    s.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build()
        .unwrap();
    let late = b.try_acquire().unwrap();
    trip(&b, 1);
    late.success();
    let _ = b.try_acquire();
    let _ = b.try_acquire();
    assert_eq!(rejections.load(Ordering::Relaxed), 2);
    assert_eq!(stale.load(Ordering::Relaxed), 1);
}

#[test]
fn invalid_configuration_fails_at_build_naming_the_field() {
    let cases: Vec<(BreakerBuilder, &str)> = vec![
        (Breaker::builder().policy(Policy::consecutive_failures(0)), "policy.consecutive_failures"),
        (Breaker::builder().policy(Policy::failure_rate(f64::NAN)), "policy.failure_rate.threshold"),
        (Breaker::builder().policy(Policy::failure_rate(1.01)), "policy.failure_rate.threshold"),
        (Breaker::builder().policy(Policy::failure_rate(0.5).over_calls(0)), "policy.failure_rate.window"),
        (Breaker::builder().policy(Policy::failure_rate(0.5).over_time(Duration::ZERO)), "policy.failure_rate.window"),
        (Breaker::builder().half_open_probes(0), "half_open_probes"),
        (Breaker::builder().half_open_probes(5000), "half_open_probes"),
        (Breaker::builder().open_wait(OpenWait::fixed(Duration::ZERO)), "open_wait"),
        (
            Breaker::builder().open_wait(OpenWait::exponential(Duration::from_secs(10), Duration::from_secs(1))),
            "open_wait.max",
        ),
        (Breaker::builder().probe_lease(Duration::ZERO), "probe_lease"),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), field);
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains("expected"), "{msg}");
    }
    let err = Breaker::builder().half_open_probes(0).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid breaker setting `half_open_probes` = 0: expected from 1 to 1023");
}

#[test]
fn handles_permits_and_errors_are_send_sync_static() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Breaker>();
    assert_send_sync::<breakerbox::OwnedPermit>();
    assert_send_sync::<breakerbox::Rejected>();
    assert_send_sync::<breakerbox::ConfigError>();
    assert_send_sync::<Error<std::io::Error>>();
    assert_send_sync::<breakerbox::BreakerBox<String>>();
    assert_send::<breakerbox::Permit<'static>>();
    let b = Breaker::new();
    fn is_send<T: Send>(_: &T) {}
    is_send(&b.call_async(async { Ok::<_, ()>(()) }));
}

#[test]
fn metrics_report_time_in_state_and_opens() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    clock.advance(Duration::from_secs(3));
    trip(&b, 1);
    clock.advance(Duration::from_secs(2));
    let m = b.metrics();
    assert_eq!((m.state, m.time_in_state, m.opens), (State::Open, Duration::from_secs(2), 1));
    clock.advance(WAIT - Duration::from_secs(2) + Duration::from_secs(1));
    let m = b.metrics();
    assert_eq!((m.state, m.time_in_state), (State::HalfOpen, Duration::from_secs(1)));
}

#[test]
fn open_for_and_close_let_a_coordinator_decide() {
    let clock = ManualClock::new();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let b = builder(&clock, 3, 1)
        .on_state_change({
            let reasons = Arc::clone(&reasons);
            move |t| reasons.lock().unwrap().push((t.to, t.reason, t.open_for))
        })
        .build()
        .unwrap();
    let before = b.try_acquire().unwrap();
    b.open_for(Duration::from_secs(2));
    before.failure();
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(b.metrics().opens, 1);
    clock.advance(Duration::from_secs(2));
    assert!(b.is_half_open());
    b.open_for(Duration::ZERO);
    assert!(b.is_half_open(), "a zero wait makes the breaker eligible for a probe at once");
    b.close();
    assert!(b.is_closed());
    assert_eq!(b.metrics().consecutive_failures, 0);
    use breakerbox::Reason::External;
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![
            (State::Open, External, Some(Duration::from_secs(2))),
            (State::Open, External, Some(Duration::ZERO)),
            (State::Closed, External, None)
        ]
    );
}

#[test]
fn the_error_is_transparent_over_the_callers_error() {
    use std::error::Error as _;
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let b = Breaker::new();
    let err = b.call(|| Err::<(), _>(Outer(std::io::Error::other("root cause")))).unwrap_err();
    assert_eq!(err.to_string(), "outer");
    assert_eq!(err.source().unwrap().to_string(), "root cause", "the chain skips no level and repeats none");
}

#[test]
fn the_clock_is_shared_with_adapters() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1, 1).build().unwrap();
    clock.advance(Duration::from_millis(7));
    assert_eq!(b.clock().now_nanos(), 7_000_000);
}

#[test]
fn hold_open_moves_the_deadline_without_counting_an_opening() {
    let clock = ManualClock::new();
    let transitions = Arc::new(AtomicUsize::new(0));
    let b = builder(&clock, 1, 1)
        .open_wait(OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(60)))
        .on_state_change({
            let t = Arc::clone(&transitions);
            move |_| {
                t.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    b.hold_open(Duration::from_secs(5)); // closed: opens, as open_for does
    assert_eq!((b.metrics().opens, transitions.load(Ordering::Relaxed)), (1, 1));
    for _ in 0..3 {
        b.hold_open(Duration::from_secs(20));
    }
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(20)));
    assert_eq!((b.metrics().opens, transitions.load(Ordering::Relaxed)), (1, 1), "no new opening, no event");
    b.hold_open(Duration::from_secs(2)); // earlier, too
    clock.advance(Duration::from_secs(2));
    assert!(b.is_half_open());
    b.try_acquire().unwrap().failure();
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(2)),
        "the exponential wait grew by one opening only"
    );
}
