//! Zero heap allocations per call, proved by counting them.
//!
//! The global allocator of this test binary is `allocation-counter`'s: it counts every
//! allocation (and reallocation) made on the current thread while `measure` runs, so the
//! harness's other threads and a coarse clock's ticking thread are not counted. The
//! workspace forbids `unsafe`, which a hand-written `GlobalAlloc` needs; the crate holds it.
//!
//! Each test builds its breaker, warms the path up (first-use thread-locals, `tracing`
//! callsite registration under `--all-features`), then asserts exactly 0 allocations over
//! `CALLS` calls. Any count above 0 means the path allocates per call (or on some calls).
//!
//! Neither the calls nor the state changes allocate, whatever the features. (Under the
//! `metrics` feature, a transition's counter is registered the first time that
//! transition happens, during the warm-up.)

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBox, BreakerBuilder, CoarseClock, Error, ManualClock, OpenWait, Outcome, Policy};

const CALLS: u64 = 10_000;
const WAIT: Duration = Duration::from_secs(10);

/// Runs `f` `CALLS` times inside the measured region (after a warm-up outside it) and
/// asserts that the current thread allocated nothing.
fn assert_no_alloc(what: &str, mut f: impl FnMut(u64)) {
    for i in 0..100 {
        f(i);
    }
    let info = allocation_counter::measure(|| {
        for i in 0..CALLS {
            f(i);
        }
    });
    assert_eq!(
        info.count_total, 0,
        "{what}: {} allocations ({} bytes) over {CALLS} calls, expected none",
        info.count_total, info.bytes_total
    );
}

/// The counter itself works: a path that allocates is caught.
#[test]
fn the_counter_sees_allocations() {
    let info = allocation_counter::measure(|| {
        for i in 0..CALLS {
            std::hint::black_box(Box::new(i));
        }
    });
    assert_eq!(info.count_total, CALLS);
    // It sees the library's allocations too: a new key builds a breaker.
    let family: BreakerBox<String> = BreakerBox::new(Breaker::builder().name("hosts")).unwrap();
    let info = allocation_counter::measure(|| {
        let _ = family.get("new.example:443");
    });
    assert!(info.count_total > 0);
}

/// Polls a future once with a no-op waker; every future here is ready at once.
fn poll_once<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the future was not ready"),
    }
}

fn closed(threshold: u32) -> Breaker {
    Breaker::builder().name("alloc").policy(Policy::consecutive_failures(threshold)).build().unwrap()
}

#[test]
fn closed_success_via_try_acquire() {
    let b = closed(5);
    assert_no_alloc("closed success (try_acquire + success)", |_| b.try_acquire().unwrap().success());
    assert_eq!(b.metrics().successes, CALLS + 100);
}

#[test]
fn closed_success_via_try_acquire_owned() {
    let b = closed(5);
    assert_no_alloc("closed success (try_acquire_owned + success)", |_| b.try_acquire_owned().unwrap().success());
}

#[test]
fn closed_failures_below_the_threshold() {
    let b = closed(u32::MAX);
    assert_no_alloc("closed failure (consecutive_failures, below threshold)", |_| b.try_acquire().unwrap().failure());
    assert!(b.is_closed());
    assert_eq!(b.metrics().failures, CALLS + 100);
}

#[test]
fn closed_one_in_ten_failing_on_rate_policies() {
    let policies: [(&str, Policy); 3] = [
        ("failure_rate over 100 calls", Policy::failure_rate(0.5).over_calls(100).into()),
        ("failure_rate over 10 s", Policy::failure_rate(0.5).over_time(Duration::from_secs(10)).into()),
        ("slow_calls over 100 calls", Policy::slow_calls(Duration::from_secs(1), 0.5).into()),
    ];
    for (what, policy) in policies {
        let b = Breaker::builder().name("alloc").policy(policy).build().unwrap();
        assert_no_alloc(what, |i| {
            let p = b.try_acquire().unwrap();
            if i.is_multiple_of(10) { p.failure() } else { p.success() }
        });
        assert!(b.is_closed(), "{what} tripped");
    }
}

#[test]
fn call_success_and_failure() {
    let b = closed(u32::MAX);
    assert_no_alloc("call (success)", |i| {
        let r: Result<u64, Error<&str>> = b.call(|| Ok(i));
        assert!(r.is_ok());
    });
    assert_no_alloc("call (failure)", |_| {
        let r: Result<u64, Error<&str>> = b.call(|| Err("down"));
        assert!(matches!(r, Err(Error::Inner("down"))));
    });
    assert_no_alloc("call_with (classified)", |i| {
        let r: Result<u64, Error<&str>> = b.call_with(|_: &Result<u64, &str>| Outcome::Ignored, || Ok(i));
        assert!(r.is_ok());
    });
}

#[test]
fn call_async_polled_with_a_noop_waker() {
    let b = closed(u32::MAX);
    assert_no_alloc("call_async (noop waker)", |i| {
        let r = poll_once(b.call_async(async move { Ok::<_, &str>(i) }));
        assert_eq!(r.unwrap(), i);
    });
    assert_no_alloc("call_async failing (noop waker)", |_| {
        let r = poll_once(b.call_async(async { Err::<u64, _>("down") }));
        assert!(r.is_err());
    });
}

#[test]
fn call_async_under_futures_executor() {
    let b = closed(u32::MAX);
    assert_no_alloc("call_async (futures_executor::block_on)", |i| {
        let r = futures_executor::block_on(b.call_async(async move { Ok::<_, &str>(i) }));
        assert_eq!(r.unwrap(), i);
    });
}

fn tripped(builder: BreakerBuilder) -> Breaker {
    let b = builder.policy(Policy::consecutive_failures(1)).open_wait(OpenWait::fixed(WAIT * 360)).build().unwrap();
    b.try_acquire().unwrap().failure();
    assert!(b.is_open());
    b
}

#[test]
fn open_rejection_with_a_static_name() {
    let cases = [
        ("open rejection, &'static str name, MonotonicClock", tripped(Breaker::builder().name("alloc"))),
        (
            "open rejection, &'static str name, CoarseClock",
            tripped(Breaker::builder().name("alloc").clock(CoarseClock::new(Duration::from_millis(1)))),
        ),
        (
            "open rejection, &'static str name, ManualClock",
            tripped(Breaker::builder().name("alloc").clock(ManualClock::new())),
        ),
    ];
    for (what, b) in cases {
        assert_no_alloc(what, |_| {
            let rejected = b.try_acquire().unwrap_err();
            assert!(rejected.retry_after().is_some());
        });
        assert_no_alloc(what, |_| {
            let r: Result<(), Error<&str>> = b.call(|| Ok(()));
            assert!(r.is_err());
        });
    }
}

#[test]
fn open_rejection_with_a_string_name() {
    // A `String` name is shared: a rejection clones an `Arc`, which does not allocate.
    let b = tripped(Breaker::builder().name(String::from("alloc-") + "dynamic"));
    assert_no_alloc("open rejection, String name", |_| {
        let rejected = b.try_acquire().unwrap_err();
        assert_eq!(rejected.name(), "alloc-dynamic");
    });
}

#[test]
fn forced_open_rejection() {
    let b = closed(5);
    b.force_open();
    assert_no_alloc("forced-open rejection", |_| assert!(b.try_acquire().is_err()));
}

/// One full cycle per call: trip, rejected while open, the wait passes, a probe is admitted
/// (Open -> HalfOpen), a second caller is rejected (slot taken), the probe succeeds (closes).
fn probe_cycle(b: &Breaker, clock: &ManualClock) {
    b.try_acquire().unwrap().failure();
    assert!(b.try_acquire().is_err());
    clock.advance(WAIT);
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    probe.success();
}

#[test]
fn half_open_probe_cycle() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .name("alloc")
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(WAIT))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_no_alloc("half-open probe cycle (trip, probe, close)", |_| probe_cycle(&b, &clock));
    assert!(b.is_closed());
    assert_eq!(b.metrics().opens, CALLS + 100);
}

#[test]
fn half_open_failed_probe_reopens() {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .name("alloc")
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::exponential(WAIT, WAIT * 4).with_jitter(0.5))
        .clock(clock.clone())
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    assert_no_alloc("half-open failed probe (reopen, jittered exponential wait)", |_| {
        clock.advance(WAIT * 4);
        b.try_acquire().unwrap().failure();
        assert!(b.try_acquire().is_err());
    });
}

#[test]
fn listeners_do_not_allocate() {
    let clock = ManualClock::new();
    let seen = Arc::new(AtomicU64::new(0));
    let (s1, s2, s3) = (Arc::clone(&seen), Arc::clone(&seen), Arc::clone(&seen));
    let b = Breaker::builder()
        .name("alloc")
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(WAIT))
        .clock(clock.clone())
        .on_state_change(move |_| {
            s1.fetch_add(1, Ordering::Relaxed);
        })
        .on_rejection(move |_| {
            s2.fetch_add(1, Ordering::Relaxed);
        })
        .on_outcome(move |_| {
            s3.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    assert_no_alloc("probe cycle with transition, rejection and outcome listeners", |_| probe_cycle(&b, &clock));
    assert!(seen.load(Ordering::Relaxed) > CALLS);
}

#[test]
fn breaker_box_get_of_an_existing_key() {
    let family: BreakerBox<String> = BreakerBox::new(Breaker::builder().name("hosts")).unwrap();
    for n in 0..100 {
        let _ = family.get(format!("host-{n}.example:443").as_str());
    }
    assert_no_alloc("BreakerBox::get (existing key)", |_| {
        let b = family.get("host-42.example:443");
        b.try_acquire().unwrap().success();
    });
    assert_no_alloc("BreakerBox::get_existing", |_| {
        assert!(family.get_existing("host-7.example:443").is_some());
    });
}

#[test]
fn breaker_box_hits_on_64_keys_by_every_entry_point() {
    let family: BreakerBox<String> = BreakerBox::new(Breaker::builder().name("hosts")).unwrap();
    let keys: Vec<String> = (0..64).map(|n| format!("api-{n}.internal.example.com:443")).collect();
    for key in &keys {
        family.call(key.as_str(), || Ok::<_, ()>(())).unwrap();
    }
    let key = |i: u64| keys[(i % 64) as usize].as_str();
    assert_no_alloc("BreakerBox::call", |i| {
        family.call(key(i), || Ok::<_, ()>(i)).unwrap();
    });
    assert_no_alloc("BreakerBox::call_with", |i| {
        let r = family.call_with(key(i), |_: &Result<u64, ()>| Outcome::Success, || Ok::<_, ()>(i));
        assert!(r.is_ok());
    });
    assert_no_alloc("BreakerBox::with_breaker", |i| {
        family.with_breaker(key(i), |b| b.try_acquire().unwrap().success());
    });
    assert_no_alloc("BreakerBox::try_acquire_owned", |i| family.try_acquire_owned(key(i)).unwrap().success());
    assert_eq!(family.len(), 64, "every lookup was a hit");
}
