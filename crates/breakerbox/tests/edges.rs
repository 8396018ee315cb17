//! Every bound of the settings at its edge: the last value accepted and the first
//! refused, named in the error; and the few things that must differ or move.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, BreakerBox, Clock, ManualClock, MonotonicClock, OpenWait, Policy};

fn field_of(builder: breakerbox::BreakerBuilder) -> Option<&'static str> {
    builder.build().err().map(|e| e.field())
}

#[test]
fn half_open_probes_run_from_1_to_1023() {
    assert_eq!(field_of(Breaker::builder().half_open_probes(1023)), None);
    assert_eq!(field_of(Breaker::builder().half_open_probes(1024)), Some("half_open_probes"));
    assert_eq!(field_of(Breaker::builder().half_open_probes(0)), Some("half_open_probes"));
}

#[test]
fn a_count_window_runs_to_2_pow_20_calls() {
    let rate = |n| Breaker::builder().policy(Policy::failure_rate(0.5).over_calls(n).min_calls(1));
    assert_eq!(field_of(rate(1 << 20)), None);
    assert_eq!(field_of(rate((1 << 20) + 1)), Some("policy.failure_rate.window"));
    let slow = Breaker::builder().policy(Policy::slow_calls(Duration::from_secs(1), 0.5).over_calls(0));
    assert_eq!(field_of(slow), Some("policy.slow_calls.window"), "the slow-call rule names its own window");
}

#[test]
fn a_time_window_has_up_to_1000_buckets_of_at_least_a_microsecond() {
    let rate = |span: Duration, buckets| {
        Breaker::builder().policy(Policy::failure_rate(0.5).over_time(span).buckets(buckets).min_calls(1))
    };
    let second = Duration::from_secs(1);
    assert_eq!(field_of(rate(second, 1000)), None);
    assert_eq!(field_of(rate(second, 1001)), Some("policy.failure_rate.buckets"));
    // 1 ms in 1000 buckets is exactly 1 µs each: accepted; 100 µs is 100 ns each: not.
    assert_eq!(field_of(rate(Duration::from_millis(1), 1000)), None);
    assert_eq!(field_of(rate(Duration::from_micros(100), 1000)), Some("policy.failure_rate.buckets"));
}

#[test]
fn a_monotonic_clock_counts_real_time() {
    let clock = MonotonicClock::new();
    let started = Instant::now();
    // A busy wait, not a sleep: a millisecond of real time, then the clock must show it.
    while started.elapsed() < Duration::from_millis(1) {
        std::hint::spin_loop();
    }
    assert!(clock.now_nanos() >= 1_000_000, "{}", clock.now_nanos());
}

/// A family on the default `MonotonicClock` stamps last uses from the process-wide ages
/// tick (a static refreshed every 5 ms by one thread): that tick must move in real time,
/// or no breaker would ever look idle. Waits on real time, polling, for at most 2 s.
#[test]
fn a_family_on_the_monotonic_clock_sees_real_idleness() {
    let family: BreakerBox<String> =
        BreakerBox::builder(Breaker::builder()).idle_timeout(Duration::from_millis(20)).build().unwrap();
    family.get("idle");
    let started = Instant::now();
    let mut evicted = 0;
    while evicted == 0 && started.elapsed() < Duration::from_secs(2) {
        std::thread::yield_now();
        evicted = family.retain_recent();
    }
    assert_eq!(evicted, 1, "idle for {:?} and still kept", started.elapsed());
    // The stamp and the reading are both up to a tick (5 ms) old: 20 ms of ticks is at
    // least 10 ms of real time.
    assert!(started.elapsed() >= Duration::from_millis(10), "not long before its idle timeout");
}

#[test]
fn the_jitter_of_many_breakers_built_together_is_many_waits() {
    let clock = ManualClock::new();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::clone(&waits);
    let template = Breaker::builder()
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(Duration::from_secs(1000)).with_jitter(1.0))
        .clock(clock.clone())
        .on_state_change(move |t| w.lock().unwrap().extend(t.open_for));
    // Together, and one after another (each dropped before the next is built, so the
    // allocator tends to hand out the same address again: the build sequence alone must
    // then tell the seeds apart).
    let together: Vec<_> = (0..64).map(|_| template.build().unwrap()).collect();
    for b in &together {
        b.try_acquire().unwrap().failure();
    }
    for _ in 0..64 {
        template.build().unwrap().try_acquire().unwrap().failure();
    }
    // And on a clock whose reading has its low 32 bits set, which the engine mixes in
    // too: or-ed in, it would leave only the address to tell breakers apart.
    clock.set(Duration::from_nanos(u64::from(u32::MAX)));
    for _ in 0..64 {
        template.build().unwrap().try_acquire().unwrap().failure();
    }
    let waits = waits.lock().unwrap().clone();
    let distinct = |w: &[Duration]| {
        let mut w = w.to_vec();
        w.sort();
        w.dedup();
        w.len()
    };
    // Seeds that collide (a sequence number or-ed or and-ed into an address) would
    // give a few waits; a well-mixed seed gives one each.
    assert!(distinct(&waits[..64]) >= 60, "64 breakers together, {} distinct waits", distinct(&waits[..64]));
    assert!(distinct(&waits[64..128]) >= 60, "64 breakers in turn, {} distinct waits", distinct(&waits[64..128]));
    assert!(distinct(&waits[128..]) >= 60, "64 more at a later time, {} distinct waits", distinct(&waits[128..]));
}

#[test]
fn a_family_from_a_shadow_template_makes_shadow_breakers() {
    let clock = ManualClock::new();
    let template = Breaker::builder().policy(Policy::consecutive_failures(1)).shadow(true).clock(clock.clone());
    let family = BreakerBox::<String>::new(template).unwrap();
    assert!(family.is_shadow());
    let enforcing = BreakerBox::<String>::new(Breaker::builder()).unwrap();
    assert!(!enforcing.is_shadow());
    let b = family.get("a");
    assert!(b.is_shadow());
    b.try_acquire().unwrap().failure();
    assert!(b.try_acquire().is_ok(), "shadow mode admits what it would reject");
    assert_eq!(b.metrics().would_reject, 1);
}

/// The throttle's bounds are inclusive as their errors say: 1 to 1000 buckets, at least
/// 1 ms a bucket.
#[test]
fn the_throttles_bounds_hold_at_their_edges() {
    use breakerbox::Throttle;
    let build = |t: Throttle| Breaker::builder().throttle(t).build().map(drop).map_err(|e| e.field().to_owned());
    let ms = Duration::from_millis;
    assert_eq!(build(Throttle::new().buckets(1000).window(ms(1000))), Ok(()));
    assert_eq!(build(Throttle::new().buckets(1001).window(ms(2000))), Err("throttle.buckets".to_owned()));
    assert_eq!(build(Throttle::new().buckets(10).window(ms(10))), Ok(()), "exactly 1 ms a bucket");
    assert_eq!(
        build(Throttle::new().buckets(10).window(Duration::from_micros(9_990))),
        Err("throttle.window".to_owned())
    );
}
