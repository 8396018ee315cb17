//! No advertised-but-unwired knobs: for every setting of the builder (and of policies,
//! open waits, reports and the keyed family), a test that changing it changes behaviour.
//!
//! The pitfall is real: circuitbreaker-rs 0.1.1 ships a `TimeBasedPolicy` that never trips and empty
//! `prometheus`/`tracing` features; breaker 1.0 had dead knobs, as its own CHANGELOG
//! admits. Each test below builds the same breaker twice, differing in one knob, and
//! shows the difference.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBox, BreakerBuilder, Clock, ManualClock, OpenWait, Outcome, Policy, Report, State};

const WAIT: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

fn base(clock: &ManualClock) -> BreakerBuilder {
    Breaker::builder()
        .name("knobs")
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(WAIT))
        .clock(clock.clone())
}

fn record_all(b: &Breaker, outcomes: &[Outcome]) {
    for o in outcomes {
        b.try_acquire().expect("admitted").record(*o);
    }
}

const F: Outcome = Outcome::Failure;
const S: Outcome = Outcome::Success;

/// The open wait a tripped breaker announces.
fn retry_after(b: &Breaker) -> Option<Duration> {
    b.try_acquire().err().and_then(|r| r.retry_after())
}

// ===== the builder =====

#[test]
fn name_is_in_the_breaker_its_rejections_and_every_event() {
    for name in ["alpha", "beta"] {
        let clock = ManualClock::new();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
        let b = base(&clock)
            .name(name)
            .on_state_change(move |t| s1.lock().unwrap().push(t.breaker.to_owned()))
            .on_rejection(move |r| s2.lock().unwrap().push(r.name().to_owned()))
            .on_outcome(move |o| s3.lock().unwrap().push(o.breaker.to_owned()))
            .build()
            .unwrap();
        assert_eq!(b.name(), name);
        assert!(format!("{b:?}").contains(name));
        record_all(&b, &[F]);
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.name(), name);
        assert!(r.to_string().contains(name));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "outcome, transition, rejection");
        assert!(seen.iter().all(|n| n == name), "{seen:?}");
    }
}

#[test]
fn policy_decides_when_to_trip() {
    let clock = ManualClock::new();
    let two = base(&clock).policy(Policy::consecutive_failures(2)).build().unwrap();
    let four = base(&clock).policy(Policy::consecutive_failures(4)).build().unwrap();
    let default = Breaker::builder().clock(clock.clone()).build().unwrap();
    for b in [&two, &four, &default] {
        record_all(b, &[F, F]);
    }
    assert!(two.is_open());
    assert!(four.is_closed());
    record_all(&four, &[F, F]);
    assert!(four.is_open());
    record_all(&default, &[F, F]);
    assert!(default.is_closed(), "the default policy is 5 consecutive failures");
    record_all(&default, &[F]);
    assert!(default.is_open());
}

#[test]
fn open_wait_decides_how_long_to_stay_open() {
    let clock = ManualClock::new();
    let one = base(&clock).open_wait(OpenWait::fixed(Duration::from_secs(1))).build().unwrap();
    let two = base(&clock).open_wait(OpenWait::fixed(Duration::from_secs(2))).build().unwrap();
    let default = Breaker::builder().policy(Policy::consecutive_failures(1)).clock(clock.clone()).build().unwrap();
    for b in [&one, &two, &default] {
        record_all(b, &[F]);
    }
    assert_eq!(retry_after(&one), Some(Duration::from_secs(1)));
    assert_eq!(retry_after(&two), Some(Duration::from_secs(2)));
    assert_eq!(retry_after(&default), Some(Duration::from_secs(30)), "the default wait");
    clock.advance(Duration::from_millis(1_500));
    assert!(one.is_half_open());
    assert!(two.is_open());
}

#[test]
fn half_open_probes_decides_how_many_trials_and_how_many_successes() {
    for probes in [1u32, 3] {
        let clock = ManualClock::new();
        let b = base(&clock).half_open_probes(probes).build().unwrap();
        assert_eq!(b.half_open_probes(), probes);
        record_all(&b, &[F]);
        clock.advance(WAIT);
        let admitted: Vec<_> = (0..5).filter_map(|_| b.try_acquire_owned().ok()).collect();
        assert_eq!(admitted.len(), probes as usize);
        for (i, p) in admitted.into_iter().enumerate() {
            assert_eq!(b.state(), State::HalfOpen, "closes only after {probes} successes ({i} so far)");
            p.success();
        }
        assert_eq!(b.state(), State::Closed);
    }
    // The default is one probe.
    let clock = ManualClock::new();
    assert_eq!(Breaker::builder().clock(clock).build().unwrap().half_open_probes(), 1);
}

#[test]
fn probe_lease_decides_when_silent_probes_lose_their_slots() {
    let clock = ManualClock::new();
    let short = base(&clock).probe_lease(Duration::from_secs(1)).build().unwrap();
    let long = base(&clock).probe_lease(Duration::from_secs(5)).build().unwrap();
    let default = base(&clock).build().unwrap();
    let mut silent = Vec::new();
    for b in [&short, &long, &default] {
        record_all(b, &[F]);
    }
    clock.advance(WAIT);
    for b in [&short, &long, &default] {
        silent.push(b.try_acquire_owned().unwrap());
    }
    clock.advance(Duration::from_secs(1));
    assert!(short.try_acquire().is_ok(), "a 1 s lease has run out");
    assert!(long.try_acquire().is_err(), "a 5 s lease has not");
    clock.advance(Duration::from_secs(4));
    assert!(long.try_acquire().is_ok());
    // The default lease is the open wait: 5 s have passed, WAIT is longer.
    clock.advance(WAIT - Duration::from_secs(5) - MS);
    assert!(default.try_acquire().is_err(), "the default lease is the open wait");
    clock.advance(MS);
    assert!(default.try_acquire().is_ok());
}

#[test]
fn the_default_probe_lease_follows_the_open_wait() {
    let clock = ManualClock::new();
    let quick = base(&clock).open_wait(OpenWait::fixed(Duration::from_millis(300))).build().unwrap();
    let growing =
        base(&clock).open_wait(OpenWait::exponential(Duration::from_secs(2), Duration::from_secs(60))).build().unwrap();
    for b in [&quick, &growing] {
        record_all(b, &[F]);
    }
    clock.advance(Duration::from_secs(2));
    let _silent = [&quick, &growing].map(|b| b.try_acquire_owned().unwrap());
    clock.advance(Duration::from_millis(300) - MS);
    assert!(quick.try_acquire().is_err());
    clock.advance(MS);
    assert!(quick.try_acquire().is_ok(), "300 ms: the fixed wait");
    clock.advance(Duration::from_millis(1_700) - MS);
    assert!(growing.try_acquire().is_err());
    clock.advance(MS);
    assert!(growing.try_acquire().is_ok(), "2 s: the exponential wait's base");
}

#[test]
fn retry_after_limit_caps_the_hint() {
    let clock = ManualClock::new();
    let hint = Report::failure().with_retry_after(Duration::from_secs(120));
    let waits: Vec<_> = [Some(Duration::ZERO), Some(Duration::from_secs(60)), Some(Duration::from_secs(600)), None]
        .into_iter()
        .map(|limit| {
            let mut builder = base(&clock);
            if let Some(limit) = limit {
                builder = builder.retry_after_limit(limit);
            }
            let b = builder.build().unwrap();
            b.try_acquire().unwrap().record(hint);
            retry_after(&b)
        })
        .collect();
    let secs = |s| Some(Duration::from_secs(s));
    // Zero ignores hints; otherwise the wait is the hint, up to the limit (default 5 min).
    assert_eq!(waits, [secs(10), secs(60), secs(120), secs(120)]);

    // Without a hint, the limit changes nothing; a hint below the wait changes nothing.
    let b = base(&clock).retry_after_limit(Duration::from_secs(600)).build().unwrap();
    b.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::from_secs(1)));
    assert_eq!(retry_after(&b), secs(10));
}

/// A clock of our own, to show that the builder uses whatever clock it is given.
#[derive(Debug, Default)]
struct Ticks(AtomicU64);

impl Clock for Ticks {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[test]
fn clock_is_the_breakers_only_time_source() {
    let a = ManualClock::new();
    let b = ManualClock::new();
    let on_a = base(&a).build().unwrap();
    let on_b = base(&b).build().unwrap();
    let ticks = Arc::new(Ticks::default());
    let on_ticks = base(&a).clock(ticks.clone()).build().unwrap();
    for br in [&on_a, &on_b, &on_ticks] {
        record_all(br, &[F]);
    }
    a.advance(WAIT);
    assert!(on_a.is_half_open());
    assert!(on_b.is_open(), "another clock did not move");
    assert!(on_ticks.is_open(), "the last clock set wins");
    ticks.0.store(WAIT.as_nanos() as u64, Ordering::Relaxed);
    assert!(on_ticks.is_half_open());
    assert_eq!(on_b.metrics().time_in_state, Duration::ZERO);
    assert_eq!(on_a.metrics().time_in_state, Duration::ZERO, "half-open since the wait ended, just now");
}

#[test]
fn on_state_change_sees_every_transition_with_its_details() {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let b = base(&clock)
        .probe_lease(Duration::from_secs(5))
        .on_state_change(move |t| {
            l.lock().unwrap().push((t.from, t.to, t.reason, t.open_for, t.consecutive_opens, t.at.as_secs()))
        })
        .build()
        .unwrap();
    record_all(&b, &[F]); // t = 0
    clock.advance(WAIT);
    let silent = b.try_acquire().unwrap(); // t = 10
    clock.advance(Duration::from_secs(5));
    b.try_acquire().unwrap().failure(); // t = 15: a new round, whose probe fails
    drop(silent);
    clock.advance(WAIT);
    b.try_acquire().unwrap().success(); // t = 25
    b.reset(); // closed already: no change, no event
    b.force_open();
    b.reset();
    b.disable();
    b.reset();
    use breakerbox::{Reason as R, State as St};
    let w = Some(WAIT);
    assert_eq!(
        *log.lock().unwrap(),
        [
            (St::Closed, St::Open, R::Tripped, w, 1, 0),
            (St::Open, St::HalfOpen, R::WaitElapsed, None, 1, 10),
            (St::HalfOpen, St::HalfOpen, R::ProbeLeaseExpired, None, 1, 15),
            (St::HalfOpen, St::Open, R::ProbeFailed, w, 2, 15),
            (St::Open, St::HalfOpen, R::WaitElapsed, None, 2, 25),
            (St::HalfOpen, St::Closed, R::ProbesSucceeded, None, 0, 25),
            (St::Closed, St::ForcedOpen, R::ForcedOpen, None, 0, 25),
            (St::ForcedOpen, St::Closed, R::Reset, None, 0, 25),
            (St::Closed, St::Disabled, R::Disabled, None, 0, 25),
            (St::Disabled, St::Closed, R::Reset, None, 0, 25),
        ]
    );
}

#[test]
fn on_rejection_sees_every_rejection_and_nothing_else() {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let b = base(&clock).on_rejection(move |r| l.lock().unwrap().push((r.state(), r.retry_after()))).build().unwrap();
    record_all(&b, &[S, F]);
    assert!(log.lock().unwrap().is_empty(), "admissions are not rejections");
    clock.advance(Duration::from_secs(4));
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_secs(6));
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    probe.success();
    b.force_open();
    assert!(b.try_acquire().is_err());
    assert_eq!(
        *log.lock().unwrap(),
        [(State::Open, Some(Duration::from_secs(6))), (State::HalfOpen, None), (State::ForcedOpen, None)]
    );
    assert_eq!(b.metrics().rejected, 3);
}

#[test]
fn on_outcome_sees_every_recorded_outcome_with_its_details() {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let b = base(&clock)
        .policy(Policy::consecutive_failures(1).or(Policy::slow_calls(Duration::from_secs(1), 1.0)))
        .on_outcome(move |o| l.lock().unwrap().push((o.outcome, o.duration, o.slow, o.admitted_in, o.current)))
        .build()
        .unwrap();
    let late = b.try_acquire_owned().unwrap();
    b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_secs(2)));
    b.try_acquire().unwrap().ignore();
    drop(b.try_acquire().unwrap()); // no report, no event
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(300)); // timed by the breaker
    p.failure(); // trips
    late.success(); // stale
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    b.disable();
    b.try_acquire().unwrap().failure();
    let d = |ms| Some(Duration::from_millis(ms));
    assert_eq!(
        *log.lock().unwrap(),
        [
            (Outcome::Success, d(2_000), true, State::Closed, true),
            (Outcome::Ignored, d(0), false, State::Closed, true),
            (Outcome::Failure, d(300), false, State::Closed, true),
            (Outcome::Success, d(300), false, State::Closed, false),
            (Outcome::Success, d(0), false, State::HalfOpen, true),
            (Outcome::Failure, d(0), false, State::Disabled, true),
        ]
    );
}

// ===== policies =====

#[test]
fn failure_rate_threshold_decides_the_rate_that_trips() {
    let clock = ManualClock::new();
    let half = base(&clock).policy(Policy::failure_rate(0.5).over_calls(4).min_calls(4)).build().unwrap();
    let most = base(&clock).policy(Policy::failure_rate(0.75).over_calls(4).min_calls(4)).build().unwrap();
    for b in [&half, &most] {
        record_all(b, &[S, F, S, F]);
    }
    assert!(half.is_open());
    assert!(most.is_closed());
    assert_eq!(most.metrics().failure_rate, Some(0.5));
}

#[test]
fn over_calls_decides_the_window_size() {
    let clock = ManualClock::new();
    let four = base(&clock).policy(Policy::failure_rate(0.5).over_calls(4).min_calls(4)).build().unwrap();
    let eight = base(&clock).policy(Policy::failure_rate(0.5).over_calls(8).min_calls(4)).build().unwrap();
    for b in [&four, &eight] {
        record_all(b, &[S, S, S, S, F, F]);
    }
    assert!(four.is_open(), "[S, S, F, F]");
    assert!(eight.is_closed(), "[S, S, S, S, F, F]");
    assert_eq!(eight.metrics().failure_rate, Some(2.0 / 6.0));
}

#[test]
fn min_calls_decides_when_a_rate_may_trip() {
    let clock = ManualClock::new();
    let two = base(&clock).policy(Policy::failure_rate(0.5).over_calls(10).min_calls(2)).build().unwrap();
    let five = base(&clock).policy(Policy::failure_rate(0.5).over_calls(10).min_calls(5)).build().unwrap();
    // The default: at least 20 calls (over the last 100).
    let default = base(&clock).policy(Policy::failure_rate(0.5)).build().unwrap();
    for b in [&two, &five, &default] {
        record_all(b, &[F, F]);
    }
    assert!(two.is_open());
    assert!(five.is_closed());
    record_all(&five, &[F, F, F]);
    assert!(five.is_open());
    record_all(&default, &[F; 17]);
    assert!(default.is_closed());
    record_all(&default, &[F]);
    assert!(default.is_open());
}

#[test]
fn over_time_decides_how_long_calls_count() {
    let clock = ManualClock::new();
    let short = base(&clock).policy(Policy::failure_rate(0.5).over_time(Duration::from_secs(5)).min_calls(2)).build();
    let long = base(&clock).policy(Policy::failure_rate(0.5).over_time(Duration::from_secs(20)).min_calls(2)).build();
    let (short, long) = (short.unwrap(), long.unwrap());
    for b in [&short, &long] {
        record_all(b, &[F]);
    }
    clock.advance(Duration::from_secs(10));
    for b in [&short, &long] {
        record_all(b, &[F]);
    }
    assert!(short.is_closed(), "the first failure left a 5 s window");
    assert!(long.is_open());
}

#[test]
fn buckets_decide_how_smoothly_a_time_window_slides() {
    let clock = ManualClock::new();
    let window = |n| Policy::failure_rate(0.5).over_time(Duration::from_secs(10)).buckets(n).min_calls(3);
    let one = base(&clock).policy(window(1)).build().unwrap();
    let ten = base(&clock).policy(window(10)).build().unwrap();
    clock.advance(Duration::from_secs(5));
    for b in [&one, &ten] {
        record_all(b, &[F, F]);
    }
    clock.advance(Duration::from_secs(7)); // t = 12 s
    for b in [&one, &ten] {
        record_all(b, &[F]);
    }
    // One 10 s bucket: at 12 s the bucket of 0..10 s has gone whole. Ten 1 s buckets:
    // the window is 3..13 s and still holds the failures of t = 5 s.
    assert!(one.is_closed());
    assert!(ten.is_open());
}

#[test]
fn slow_calls_slower_than_decides_what_is_slow() {
    let clock = ManualClock::new();
    let rule = |ms| Policy::slow_calls(Duration::from_millis(ms), 0.5).over_calls(2).min_calls(2);
    let at_100 = base(&clock).policy(rule(100)).build().unwrap();
    let at_200 = base(&clock).policy(rule(200)).build().unwrap();
    for b in [&at_100, &at_200] {
        for _ in 0..2 {
            let p = b.try_acquire().unwrap();
            clock.advance(Duration::from_millis(150));
            p.success();
        }
    }
    assert!(at_100.is_open());
    assert_eq!(at_100.metrics().slow_calls, 2);
    assert!(at_200.is_closed());
    assert_eq!(at_200.metrics().slow_calls, 0);
}

#[test]
fn slow_calls_threshold_decides_the_rate_that_trips() {
    let clock = ManualClock::new();
    let rule = |t| Policy::slow_calls(Duration::from_millis(100), t).over_calls(2).min_calls(2);
    let half = base(&clock).policy(rule(0.5)).build().unwrap();
    let all = base(&clock).policy(rule(1.0)).build().unwrap();
    for b in [&half, &all] {
        b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_millis(10)));
        b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_millis(500)));
    }
    assert!(half.is_open());
    assert!(all.is_closed());
    assert_eq!(all.metrics().slow_call_rate, Some(0.5));
}

#[test]
fn or_and_any_add_rules() {
    let clock = ManualClock::new();
    let alone = base(&clock).policy(Policy::consecutive_failures(5)).build().unwrap();
    let or = base(&clock).policy(Policy::consecutive_failures(5).or(Policy::consecutive_failures(2))).build().unwrap();
    let any = base(&clock)
        .policy(Policy::any([
            Policy::consecutive_failures(5),
            Policy::failure_rate(1.0).over_calls(2).min_calls(2).into(),
        ]))
        .build()
        .unwrap();
    for b in [&alone, &or, &any] {
        record_all(b, &[F, F]);
    }
    assert!(alone.is_closed());
    assert!(or.is_open());
    assert!(any.is_open());
}

// ===== open waits =====

/// The open_for of every opening, from the transition listener.
fn waits_of(wait: OpenWait, openings: usize) -> Vec<Duration> {
    let clock = ManualClock::new();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let b =
        base(&clock).open_wait(wait).on_state_change(move |t| w.lock().unwrap().extend(t.open_for)).build().unwrap();
    record_all(&b, &[F]);
    for _ in 1..openings {
        let wait = waits.lock().unwrap().last().copied().unwrap();
        clock.advance(wait + Duration::from_millis(1)); // deadlines round up to the millisecond
        b.try_acquire().unwrap().failure(); // the probe fails: a consecutive opening
    }
    waits.lock().unwrap().clone()
}

#[test]
fn exponential_doubles_per_consecutive_opening_up_to_its_max() {
    let s = Duration::from_secs;
    assert_eq!(waits_of(OpenWait::fixed(s(1)), 5), [s(1); 5]);
    assert_eq!(waits_of(OpenWait::exponential(s(1), s(8)), 6), [s(1), s(2), s(4), s(8), s(8), s(8)]);
    // A close resets the count.
    let clock = ManualClock::new();
    let b = base(&clock).open_wait(OpenWait::exponential(s(1), s(8))).build().unwrap();
    record_all(&b, &[F]);
    clock.advance(s(1));
    record_all(&b, &[F]);
    assert_eq!(retry_after(&b), Some(s(2)));
    clock.advance(s(2));
    record_all(&b, &[S, F]);
    assert_eq!(retry_after(&b), Some(s(1)), "closed in between: back to the base");
}

#[test]
fn from_fn_decides_each_wait() {
    let s = Duration::from_secs;
    assert_eq!(waits_of(OpenWait::from_fn(|n| Duration::from_secs(u64::from(n) * 3)), 3), [s(3), s(6), s(9)]);
}

#[test]
fn jitter_shortens_waits_by_up_to_its_fraction_and_without_jitter_removes_it() {
    let s = Duration::from_secs;
    let jittered = waits_of(OpenWait::fixed(s(1_000)).with_jitter(0.5), 40);
    assert!(jittered.iter().all(|w| *w <= s(1_000) && *w >= s(500)), "{jittered:?}");
    assert!(jittered.iter().any(|w| *w != jittered[0]), "the waits vary: {jittered:?}");
    assert!(jittered.iter().any(|w| *w < s(900)), "some are noticeably shorter: {jittered:?}");
    let removed = waits_of(OpenWait::fixed(s(1_000)).with_jitter(0.5).without_jitter(), 10);
    assert_eq!(removed, [s(1_000); 10]);
}

// ===== reports =====

#[test]
fn report_with_duration_replaces_the_breakers_own_timing() {
    let clock = ManualClock::new();
    let rule = Policy::slow_calls(Duration::from_millis(100), 1.0).over_calls(1).min_calls(1);
    let b = base(&clock).policy(rule).build().unwrap();
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(1)); // slow by the clock...
    p.record(Report::success().with_duration(Duration::from_millis(10))); // ...fast by the report
    assert!(b.is_closed());
    let p = b.try_acquire().unwrap(); // fast by the clock, slow by the report
    p.record(Report::success().with_duration(Duration::from_millis(500)));
    assert!(b.is_open());
}

#[test]
fn report_with_retry_after_lengthens_the_wait() {
    let clock = ManualClock::new();
    let plain = base(&clock).build().unwrap();
    let hinted = base(&clock).build().unwrap();
    plain.try_acquire().unwrap().record(Report::failure());
    hinted.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::from_secs(45)));
    assert_eq!(retry_after(&plain), Some(WAIT));
    assert_eq!(retry_after(&hinted), Some(Duration::from_secs(45)));
    // Also on a failed probe.
    clock.advance(Duration::from_secs(45));
    hinted.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::from_secs(20)));
    assert_eq!(retry_after(&hinted), Some(Duration::from_secs(20)));
}

// ===== the keyed family =====

#[test]
fn max_breakers_bounds_the_family() {
    for max in [2usize, 5] {
        let clock = ManualClock::new();
        let family = BreakerBox::<u32>::builder(base(&clock)).max_breakers(max).build().unwrap();
        for key in 0..20 {
            family.get(&key);
            clock.advance(MS);
        }
        assert_eq!(family.len(), max);
    }
}

#[test]
fn idle_timeout_evicts_idle_closed_breakers() {
    let clock = ManualClock::new();
    let idle = BreakerBox::<u32>::builder(base(&clock)).idle_timeout(WAIT / 2).build().unwrap();
    let forever = BreakerBox::<u32>::builder(base(&clock)).build().unwrap();
    for family in [&idle, &forever] {
        for key in 0..3 {
            family.get(&key);
        }
        family.get(&3).try_acquire().unwrap().failure(); // open: kept while its wait runs
    }
    clock.advance(WAIT / 2 - Duration::from_millis(1));
    assert_eq!(idle.retain_recent(), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(idle.retain_recent(), 3);
    assert_eq!(idle.states(), [(3, State::Open)], "the tripped breaker is kept");
    clock.advance(WAIT / 2);
    assert_eq!(idle.retain_recent(), 1, "abandoned once its wait has passed");
    assert_eq!(forever.retain_recent(), 0);
    assert_eq!(forever.len(), 4);
}
