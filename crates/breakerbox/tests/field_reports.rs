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

// ===== cancellation: timeouts that count =====

/// Polls `fut` once: the call is admitted and in flight.
fn start<F: std::future::Future>(fut: F) -> std::pin::Pin<Box<F>> {
    let mut fut = Box::pin(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(fut.as_mut().poll(&mut cx).is_pending(), "the hung call is in flight");
    fut
}

/// `tokio::time::timeout(d, breaker.call_async(..))` drops the future, and a dropped
/// permit counted nothing: six timeouts against a hanging service left the breaker
/// closed with 0 failures. A call dropped after `cancel_counts_after` (1 s by default)
/// now counts as a failure; one dropped sooner counts nothing.
#[test]
fn calls_timed_out_from_outside_trip_a_closed_breaker() {
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::consecutive_failures(3)).build().unwrap();
    let hung = || std::future::pending::<Result<(), std::io::Error>>();
    // Cancelled quickly (a caller that changed its mind): nothing.
    drop(start(b.call_async(hung())));
    assert_eq!(b.metrics().failures, 0);
    for i in 1..=3 {
        let call = start(b.call_async(hung()));
        clock.advance(Duration::from_secs(1)); // the outer timeout fires
        drop(call);
        assert_eq!(b.metrics().failures, i);
    }
    assert_eq!(b.state(), State::Open, "three timeouts in a row");
}

/// In half-open each timed-out probe freed its slot for the next, so the breaker fed a
/// hung service one request at a time forever and never reopened. A probe dropped
/// after the threshold is a failed probe: the breaker reopens.
#[test]
fn a_probe_timed_out_from_outside_reopens() {
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::consecutive_failures(1)).build().unwrap();
    fail_n(&b, 1);
    clock.advance(WAIT);
    let probe = start(b.call_async(std::future::pending::<Result<(), std::io::Error>>()));
    assert_eq!(b.metrics().probes_in_flight, 1);
    clock.advance(Duration::from_secs(1));
    drop(probe);
    assert_eq!((b.state(), b.metrics().opens), (State::Open, 2));
}

/// `cancel_counts_after(None)` restores "a dropped permit counts nothing".
#[test]
fn the_cancellation_rule_can_be_turned_off() {
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::consecutive_failures(1)).cancel_counts_after(None).build().unwrap();
    let permit = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(3600));
    drop(permit);
    assert_eq!((b.state(), b.metrics().failures), (State::Closed, 0));
}

// ===== probes: at most `half_open_probes` live at once =====

/// The probe lease ran from entering half-open, not from each probe's admission: with
/// one probe and a 60 s lease, a probe dropped after 59 s let a second in, and 1 s
/// later a third was admitted beside it. Each probe's lease now runs from its own
/// admission.
#[test]
fn a_probe_lease_runs_from_the_probes_own_admission() {
    let clock = ManualClock::new();
    let b = builder(&clock)
        .policy(Policy::consecutive_failures(1))
        .probe_lease(Duration::from_secs(60))
        .cancel_counts_after(None)
        .build()
        .unwrap();
    fail_n(&b, 1);
    clock.advance(WAIT);
    let p1 = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(59));
    drop(p1);
    let p2 = b.try_acquire().expect("the freed slot");
    clock.advance(Duration::from_secs(1));
    assert!(b.try_acquire().is_err(), "p2's own lease has 59 s to go: no second probe");
    clock.advance(Duration::from_secs(59));
    let p3 = b.try_acquire().expect("p2 has been silent for its whole lease");
    p2.success(); // late: it lost its slot
    assert_eq!(b.state(), State::HalfOpen, "a late probe cannot close the breaker");
    p3.success();
    assert_eq!(b.state(), State::Closed);
}

/// With the default lease (60 s) a single hung probe held the only slot: after the
/// backend recovered with its first three requests hanging, the breaker rejected every
/// call for the rest of the run. With defaults, three hung probes now delay closing by
/// at most three leases (the default lease is the open wait) plus the open wait.
#[test]
fn three_hung_probes_delay_recovery_by_at_most_three_leases_and_one_open_wait() {
    let clock = ManualClock::new();
    let b = Breaker::builder().clock(clock.clone()).build().unwrap(); // every default
    fail_n(&b, 5);
    assert_eq!(b.state(), State::Open);
    let tripped_at = clock.elapsed();
    let open_wait = Duration::from_secs(30); // the default
    let mut hung = Vec::new();
    let step = Duration::from_millis(100);
    while b.state() != State::Closed {
        assert!(clock.elapsed() - tripped_at <= open_wait * 4, "still not closed at {:?}", clock.elapsed());
        if let Ok(permit) = b.try_acquire_owned() {
            if hung.len() < 3 {
                hung.push(permit); // the first three requests to reach it hang
            } else {
                permit.success();
            }
        }
        clock.advance(step);
    }
    let recovered = clock.elapsed() - step - tripped_at;
    assert!(recovered <= open_wait + 3 * open_wait, "closed after {recovered:?}");
    assert!(recovered >= open_wait + 3 * open_wait - step, "each hung probe held its slot for a lease");
    assert_eq!(b.metrics().probes_in_flight, 0);
}

// ===== messages =====

/// Rejection messages printed nanosecond noise (`retry after 300.437971ms` for a 300 ms
/// wait). They now round up to what a person reads; `retry_after()` stays exact.
#[test]
fn rejection_messages_round_the_wait() {
    let clock = ManualClock::new();
    let b = builder(&clock)
        .name("inventory")
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(Duration::from_millis(300)))
        .build()
        .unwrap();
    fail_n(&b, 1);
    clock.advance(Duration::from_nanos(437_971));
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.to_string(), "circuit breaker `inventory` is open; retry after 300ms");
    assert_eq!(rejected.retry_after(), Some(Duration::from_nanos(300_000_000 - 437_971)));
}

/// A permit given back with `release` counts nothing however long it was held: for a
/// call that never reached the service (a request its client could not build).
#[test]
fn a_released_permit_counts_nothing_and_frees_its_probe_slot() {
    let clock = ManualClock::new();
    let b = builder(&clock).policy(Policy::consecutive_failures(1)).build().unwrap();
    let permit = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(5));
    permit.release();
    assert_eq!((b.state(), b.metrics().failures), (State::Closed, 0));
    fail_n(&b, 1);
    clock.advance(WAIT);
    let probe = b.try_acquire_owned().unwrap();
    assert!(b.try_acquire().is_err(), "the only slot is taken");
    clock.advance(Duration::from_secs(5));
    probe.release();
    assert_eq!(b.metrics().probes_in_flight, 0);
    b.try_acquire().expect("the slot is free again").success();
    assert_eq!(b.state(), State::Closed);
}
