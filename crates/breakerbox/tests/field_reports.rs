//! Problems found by using breakerbox as its users do, and by running it against the
//! test scenarios of other breakers' suites (resilience4j, Polly, gobreaker, pybreaker,
//! circuitbreaker, failsafe-rs, recloser). Each test reproduces one and shows it fixed.
//!
//! Everything runs on a `ManualClock`: no sleeps.

use std::time::Duration;

use breakerbox::{Breaker, BreakerBuilder, ManualClock, OpenWait, Policy, Recorded, Report, State};

const WAIT: Duration = Duration::from_secs(10);

fn builder(clock: &ManualClock) -> BreakerBuilder {
    Breaker::builder().name("reports").open_wait(OpenWait::fixed(WAIT)).clock(clock.clone())
}

fn fail_n(b: &Breaker, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").failure();
    }
}

// ===== a rate rule that can never trip =====

/// `failure_rate(0.5).over_calls(10)` kept the default `min_calls` of 20: a window of 10
/// calls never holds 20, so it stayed closed after 10,000 failures in a row. The default
/// is now clamped to the window (as resilience4j does).
#[test]
fn a_small_count_window_trips_with_the_default_min_calls() {
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::failure_rate(0.5).over_calls(10)).build().unwrap();
    fail_n(&b, 9);
    assert!(b.is_closed(), "9 calls are fewer than the window's 10");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open);
}

/// An explicit `min_calls` above a count window's size could never be reached: `build()`
/// accepted it. It is now a `ConfigError` naming the field and the window.
#[test]
fn an_impossible_min_calls_is_a_config_error() {
    for (policy, field) in [
        (Policy::failure_rate(0.5).over_calls(10).min_calls(50), "policy.failure_rate.min_calls"),
        (Policy::slow_calls(Duration::from_secs(1), 0.5).over_calls(10).min_calls(11), "policy.slow_calls.min_calls"),
    ] {
        let err = Breaker::builder().policy(policy).build().unwrap_err();
        assert_eq!(err.field(), field);
        assert!(err.to_string().contains("10 calls"), "names the window: {err}");
    }
    // At the window's size it can trip.
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::failure_rate(0.5).over_calls(10).min_calls(10)).build().unwrap();
    fail_n(&b, 10);
    assert_eq!(b.state(), State::Open);
}

// ===== time windows =====

/// Time-window buckets were keyed by 24 bits: a slot last written an exact multiple of
/// 2^24 buckets ago read back as current. With 1 ms buckets, four failures at t = 0
/// made `failure_rate` read 1.0 about 4 h 40 min later, and one more failure opened.
#[test]
fn time_window_buckets_do_not_alias_after_2_pow_24_buckets() {
    let clock = ManualClock::new();
    let policy = Policy::failure_rate(0.5).over_time(Duration::from_millis(8)).buckets(8).min_calls(5);
    let b = builder(&clock).policy(policy).build().unwrap();
    fail_n(&b, 4);
    assert_eq!(b.metrics().failure_rate, Some(1.0));
    clock.advance(Duration::from_millis(1 << 24));
    assert_eq!(b.metrics().failure_rate, Some(0.0), "4 h 40 min later the window is empty");
    fail_n(&b, 1);
    assert!(b.is_closed(), "one failure is below min_calls");
}

// ===== ignored outcomes =====

/// An ignored outcome slower than a slow-call threshold was counted in
/// `metrics().slow_calls` and reported `slow: true`, though ignored outcomes touch no
/// counter.
#[test]
fn an_ignored_slow_call_is_not_counted_as_slow() {
    let clock = ManualClock::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let b = builder(&clock)
        .policy(Policy::slow_calls(Duration::from_millis(100), 0.5).over_calls(2))
        .on_outcome(move |r: &Recorded<'_>| s.lock().unwrap().push(r.slow))
        .build()
        .unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().record(Report::ignored().with_duration(Duration::from_secs(5)));
    }
    let m = b.metrics();
    assert_eq!((m.ignored, m.slow_calls), (3, 0));
    assert_eq!(m.slow_call_rate, Some(0.0));
    assert!(b.is_closed());
    assert_eq!(*seen.lock().unwrap(), [false, false, false]);
    // A slow success still counts as slow.
    b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_secs(5)));
    assert_eq!(b.metrics().slow_calls, 1);
}

// ===== metrics =====

/// `Metrics.consecutive_failures` read 0 while open, right after the streak that opened
/// the breaker. It now reports that streak until the breaker closes.
#[test]
fn metrics_report_the_streak_that_opened_the_breaker() {
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::consecutive_failures(3)).build().unwrap();
    fail_n(&b, 2);
    assert_eq!(b.metrics().consecutive_failures, 2);
    fail_n(&b, 1);
    assert_eq!((b.metrics().state, b.metrics().consecutive_failures), (State::Open, 3));
    clock.advance(WAIT);
    assert_eq!((b.metrics().state, b.metrics().consecutive_failures), (State::HalfOpen, 3));
    b.try_acquire().unwrap().success();
    assert_eq!((b.metrics().state, b.metrics().consecutive_failures), (State::Closed, 0));
    // Opened by hand: no streak tripped it.
    b.force_open();
    assert_eq!(b.metrics().consecutive_failures, 0);
}
