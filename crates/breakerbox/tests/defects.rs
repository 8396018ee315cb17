//! One test per defect verified in other Rust circuit breakers (failsafe, recloser,
//! tower-resilience, breaker, seatbelt, circuitbreaker-rs), each proving that
//! breakerbox does not have it. The comment on each test names the defect and the crate
//! that has it.
//!
//! Everything runs on a `ManualClock`; real threads appear only where the defect is a
//! race, and they meet at a `Barrier`, never a sleep. Tests that would hang on a
//! regression run under a watchdog and fail instead.
//!
//! Tests headed "Regression test" reproduce bugs this suite found in breakerbox itself;
//! each is fixed, and the test keeps it so.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use breakerbox::{
    Breaker, BreakerBox, BreakerBuilder, Error, ManualClock, OpenWait, Outcome, Policy, Reason, Report, State,
};

const WAIT: Duration = Duration::from_secs(10);

fn builder(clock: &ManualClock, threshold: u32) -> BreakerBuilder {
    Breaker::builder()
        .name("defects")
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(WAIT))
        .clock(clock.clone())
}

fn fail_n(b: &Breaker, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").failure();
    }
}

/// Runs `f` on its own thread and fails the test if it has not finished within
/// `secs` seconds (a deadlock or a livelock), instead of hanging the suite. A hung
/// thread is left behind; the test process ends it.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: did not finish within {secs} s (deadlock or livelock)"),
    }
}

/// The resident set size of this process, in bytes (Linux).
#[cfg(target_os = "linux")]
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm resident");
    pages * 4096
}

/// Runs `round` `rounds` times and returns the smallest growth of the resident set over
/// one round. Other tests in this process (panics that load debug info, threads) can
/// make a round grow now and then; a leak makes every round grow.
#[cfg(target_os = "linux")]
fn least_growth_per_round(rounds: usize, mut round: impl FnMut()) -> u64 {
    round(); // warm up: stats stripes, thread-locals, allocator arenas
    (0..rounds)
        .map(|_| {
            let before = rss_bytes();
            round();
            rss_bytes().saturating_sub(before)
        })
        .min()
        .unwrap_or(0)
}

// ===== #1, #2: an ignored outcome is not a success =====

/// #1 failsafe 1.3.0 (and #2 recloser 1.4.0): an error the predicate rejects was recorded
/// as a success, so F, F, ignored, F stayed Closed with a threshold of 3.
#[test]
fn an_ignored_error_is_not_a_success() {
    let clock = ManualClock::new();
    let b = builder(&clock, 3).build().unwrap();
    fail_n(&b, 2);
    b.try_acquire().unwrap().ignore();
    assert_eq!(b.metrics().consecutive_failures, 2, "the ignored outcome kept the streak");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open, "F, F, ignored, F trips a threshold of 3");

    // The same through a classifier that ignores an `Err` (the failsafe/recloser path).
    let b = builder(&clock, 3).build().unwrap();
    let ignore_404 = |r: &Result<(), u16>| match r {
        Err(404) => Outcome::Ignored,
        Err(_) => Outcome::Failure,
        Ok(()) => Outcome::Success,
    };
    for status in [500, 500, 404, 500] {
        let r = b.call_with(ignore_404, || Err(status));
        assert_eq!(r, Err(Error::Inner(status)), "the caller still gets the error");
    }
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!((m.failures, m.successes, m.ignored), (3, 0, 1));
}

/// #1, #2 (the pitfall "counting not-a-failure as a success" applied to rates): ignored
/// outcomes do not dilute a failure rate.
#[test]
fn ignored_outcomes_do_not_dilute_a_failure_rate() {
    let clock = ManualClock::new();
    let b = builder(&clock, u32::MAX).policy(Policy::failure_rate(0.5).over_calls(4).min_calls(4)).build().unwrap();
    fail_n(&b, 2);
    for _ in 0..10 {
        b.try_acquire().unwrap().ignore();
    }
    b.try_acquire().unwrap().success();
    assert!(b.is_closed());
    assert_eq!(b.metrics().failure_rate, Some(2.0 / 3.0), "ignored calls are not in the window");
    fail_n(&b, 1);
    // The window is [F, F, S, F]: 75 %. Had the ignored calls counted as successes, it
    // would be [S, S, S, F]: 25 %.
    assert_eq!(b.state(), State::Open);
}

// ===== #3: replaced states never reclaimed =====

/// #3 recloser 1.4.0: every transition allocated a new state that was never reclaimed,
/// so memory grew with transitions. breakerbox keeps its state in one word: a million
/// transitions (and a million closed calls and rejections) leave the process's memory
/// where it was.
#[test]
#[cfg(target_os = "linux")]
fn a_million_transitions_leak_nothing() {
    let clock = ManualClock::new();
    let name: Arc<str> = Arc::from("leak-check");
    let b = builder(&clock, 1).name(name.clone()).open_wait(OpenWait::fixed(Duration::from_millis(1))).build().unwrap();
    let cycle = || {
        for _ in 0..100_000 {
            b.try_acquire().unwrap().success(); // a closed call
            b.try_acquire().unwrap().failure(); // Closed -> Open
            assert!(b.try_acquire().is_err()); // a rejection
            clock.advance(Duration::from_millis(1));
            b.try_acquire().unwrap().success(); // Open -> HalfOpen -> Closed
        }
    };
    // 4 rounds of 300,000 transitions, 100,000 closed calls and 100,000 rejections.
    let grown = least_growth_per_round(4, cycle);
    let m = b.metrics();
    assert_eq!(m.opens, 500_000);
    assert_eq!(m.rejected, 500_000);
    // A leak of even 8 bytes per transition would be 2.4 MB in every round.
    assert!(grown < 1 << 20, "memory grew by at least {grown} bytes in every round of 300,000 transitions");
    assert_eq!(Arc::strong_count(&name), 2, "no rejection or event kept a copy of the name");
}

// ===== #4: cancelled probes never returned =====

/// A future that is pending until told otherwise.
struct Gate(Arc<AtomicBool>);

impl Future for Gate {
    type Output = Result<u32, &'static str>;
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.0.load(Ordering::Relaxed) { Poll::Ready(Ok(7)) } else { Poll::Pending }
    }
}

/// #4 circuitbreaker-rs 0.1.1: a cancelled half-open probe was never returned, leaving
/// the breaker half-open and rejecting forever. Here a `call_async` future dropped while
/// its call is in flight frees its slot and records nothing.
#[test]
fn a_cancelled_half_open_probe_is_returned() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1).build().unwrap();
    fail_n(&b, 1);
    clock.advance(WAIT);
    let mut cx = Context::from_waker(Waker::noop());
    {
        let open = Arc::new(AtomicBool::new(false));
        let mut call = pin!(b.call_async(Gate(open)));
        assert!(call.as_mut().poll(&mut cx).is_pending(), "the probe is in flight");
        assert_eq!(b.metrics().probes_in_flight, 1);
        assert_eq!(b.try_acquire().unwrap_err().state(), State::HalfOpen, "the only slot is taken");
    } // cancelled: the future is dropped mid-flight
    let m = b.metrics();
    assert_eq!((m.probes_in_flight, m.failures, m.successes), (0, 1, 0), "freed, nothing recorded");

    // The slot is usable again, and a completed probe closes the breaker.
    let open = Arc::new(AtomicBool::new(false));
    let mut call = pin!(b.call_async(Gate(open.clone())));
    assert!(call.as_mut().poll(&mut cx).is_pending());
    open.store(true, Ordering::Relaxed);
    assert_eq!(call.as_mut().poll(&mut cx), Poll::Ready(Ok(7)));
    assert_eq!(b.state(), State::Closed);
}

/// #4 circuitbreaker-rs 0.1.1, and the pitfall "half-open against a hanging upstream": a
/// probe that never reports and is never dropped (leaked) cannot wedge the breaker; the
/// probe lease gives its slot to a new round, and its late report changes nothing.
#[test]
fn a_lost_probe_is_reclaimed_after_the_probe_lease() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1).probe_lease(Duration::from_secs(5)).build().unwrap();
    fail_n(&b, 1);
    clock.advance(WAIT);
    let hung = b.try_acquire_owned().unwrap();
    let lost = b.try_acquire_owned();
    assert!(lost.is_err());
    clock.advance(Duration::from_secs(5) - Duration::from_millis(1));
    assert_eq!(b.try_acquire().unwrap_err().state(), State::HalfOpen, "the lease has not run out");
    clock.advance(Duration::from_millis(1));
    let fresh = b.try_acquire_owned().expect("a new round once the lease has run out");
    hung.success(); // late: from the old round
    assert_eq!(b.state(), State::HalfOpen, "a stale probe's success does not close");
    assert_eq!(b.metrics().probes_in_flight, 1);
    fresh.success();
    assert_eq!(b.state(), State::Closed);

    // Truly lost (never dropped): the lease still reclaims it.
    fail_n(&b, 1);
    clock.advance(WAIT);
    std::mem::forget(b.try_acquire_owned().unwrap());
    clock.advance(Duration::from_secs(5));
    b.try_acquire().expect("reclaimed").success();
    assert_eq!(b.state(), State::Closed);
}

// ===== #5: a time-based policy that never trips =====

/// #5 circuitbreaker-rs 0.1.1: its `TimeBasedPolicy` never tripped. A failure rate and a
/// slow-call rate over a time window trip here.
#[test]
fn time_window_policies_trip() {
    let clock = ManualClock::new();
    let b = builder(&clock, u32::MAX)
        .policy(Policy::failure_rate(0.5).over_time(Duration::from_secs(10)).min_calls(4))
        .build()
        .unwrap();
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Success] {
        b.try_acquire().unwrap().record(outcome);
        clock.advance(Duration::from_secs(1));
    }
    assert!(b.is_closed(), "3 calls are below min_calls");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open, "2 of 4 calls failed within 10 s");

    let b = builder(&clock, u32::MAX)
        .policy(Policy::slow_calls(Duration::from_millis(100), 0.5).over_time(Duration::from_secs(10)).min_calls(2))
        .build()
        .unwrap();
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(150)); // timed by the breaker: acquire to record
    p.success();
    assert!(b.is_closed(), "1 call is below min_calls");
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(150));
    p.success();
    assert_eq!(b.state(), State::Open, "2 of 2 calls were slow");
}

// ===== #6, #13: probe accounting, stampedes =====

/// #6 circuitbreaker-rs 0.1.1: a non-atomic check-then-decrement let the probe count
/// underflow into unlimited probes. Here, serially: exactly N probes, however many ask
/// and however the slots are given back, and a stale probe's drop never frees a slot of
/// a newer round.
#[test]
fn probe_slots_cannot_underflow_into_unlimited_probes() {
    let clock = ManualClock::new();
    // Drops count nothing here (no cancellation rule): only the slot accounting is tested.
    let b = builder(&clock, 1)
        .half_open_probes(3)
        .probe_lease(Duration::from_secs(1))
        .cancel_counts_after(None)
        .build()
        .unwrap();
    fail_n(&b, 1);
    clock.advance(WAIT);
    let mut probes: Vec<_> = (0..10).filter_map(|_| b.try_acquire_owned().ok()).collect();
    assert_eq!(probes.len(), 3);
    assert_eq!(b.metrics().rejected, 7);
    // Give them back in every way: ignore, drop, and a success.
    probes.pop().unwrap().ignore();
    drop(probes.pop());
    probes.pop().unwrap().success();
    assert_eq!(b.metrics().probes_in_flight, 0);
    // One success counts toward closing: two slots are left, not three, not more.
    let again: Vec<_> = (0..10).filter_map(|_| b.try_acquire_owned().ok()).collect();
    assert_eq!(again.len(), 2);

    // Both leases ran out: a new call takes one silent probe's slot (the round goes on,
    // its success still counts). The probe that lost its slot is stale: its drop must
    // not free the slot `fresh` now holds.
    clock.advance(Duration::from_secs(1));
    let fresh = b.try_acquire_owned().expect("takes a silent probe's slot");
    assert_eq!(b.metrics().probes_in_flight, 2);
    drop(again);
    let m = b.metrics();
    assert_eq!(m.probes_in_flight, 1, "only fresh is left");
    let more: Vec<_> = (0..10).filter_map(|_| b.try_acquire_owned().ok()).collect();
    assert_eq!(more.len(), 1, "3 slots: one success counted, fresh in flight");
    drop((fresh, more));
    assert_eq!(b.metrics().probes_in_flight, 0);
}

/// #6 circuitbreaker-rs 0.1.1 and #13 failsafe, recloser, circuit_breaker: half-open
/// admitted unlimited concurrent calls. With real threads released together at a
/// barrier, churning acquire and release, no more than N probes are ever held at once,
/// and the count returns to zero.
#[test]
fn half_open_stampede_never_exceeds_the_probes() {
    const THREADS: usize = 8;
    const PROBES: u32 = 2;
    let clock = ManualClock::new();
    let b = builder(&clock, 1).half_open_probes(PROBES).build().unwrap();
    for _round in 0..20 {
        b.reset();
        fail_n(&b, 1);
        clock.advance(WAIT);
        let barrier = Barrier::new(THREADS);
        let holding = AtomicU32::new(0);
        let admitted = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (b, barrier, holding, admitted) = (&b, &barrier, &holding, &admitted);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..200 {
                        if let Ok(p) = b.try_acquire() {
                            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now <= PROBES, "{now} probes held at once");
                            assert!(b.metrics().probes_in_flight <= PROBES);
                            admitted.fetch_add(1, Ordering::Relaxed);
                            holding.fetch_sub(1, Ordering::SeqCst);
                            if (i + t) % 2 == 0 { p.ignore() } else { drop(p) }
                        }
                    }
                });
            }
        });
        assert!(admitted.load(Ordering::Relaxed) >= PROBES as usize);
        let m = b.metrics();
        assert_eq!((m.state, m.probes_in_flight), (State::HalfOpen, 0));
        // Still exactly PROBES slots.
        let held: Vec<_> = (0..10).filter_map(|_| b.try_acquire().ok()).collect();
        assert_eq!(held.len(), PROBES as usize);
    }
}

// ===== #7, #8: windows that do not slide, or grow =====

/// #7 tower-resilience-circuitbreaker 0.14.0: the "sliding" count window was cumulative
/// since the last transition. Here old outcomes fall out, in both directions: old
/// failures stop counting, and recent failures are not diluted by old successes.
#[test]
fn the_count_window_actually_slides() {
    let clock = ManualClock::new();
    let rate = || Policy::failure_rate(0.5).over_calls(4).min_calls(4);

    // F, F, F (below min_calls), S, S, S, S, then F: the window is [S, S, S, F], 25 %.
    // A cumulative count would be 4 of 8 = 50 % and trip.
    let b = builder(&clock, u32::MAX).policy(rate()).build().unwrap();
    fail_n(&b, 3);
    for _ in 0..4 {
        b.try_acquire().unwrap().success();
    }
    fail_n(&b, 1);
    assert!(b.is_closed());
    assert_eq!(b.metrics().failure_rate, Some(0.25));

    // Ten successes, then F, F: the window is [S, S, F, F], 50 %, and trips. A cumulative
    // count would be 2 of 12 and never trip.
    let b = builder(&clock, u32::MAX).policy(rate()).build().unwrap();
    for _ in 0..10 {
        b.try_acquire().unwrap().success();
    }
    fail_n(&b, 2);
    assert_eq!(b.state(), State::Open);
}

/// Pitfall (joshrotenberg/mcp-proxy#220): requiring a full window before evaluating, when
/// a minimum-calls knob exists. Here min_calls decides, not the window size.
#[test]
fn min_calls_does_not_wait_for_a_full_window() {
    let clock = ManualClock::new();
    let b = builder(&clock, u32::MAX).policy(Policy::failure_rate(0.5).over_calls(100).min_calls(5)).build().unwrap();
    fail_n(&b, 4);
    assert!(b.is_closed(), "4 calls are below min_calls");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open, "5 of a 100-call window suffice");
}

/// #8 tower-resilience-circuitbreaker 0.14.0: the time window stored every call (O(n)
/// per call, memory proportional to the call rate). Here five rounds of 40,000 calls leave memory
/// where it was, and calls older than the window are forgotten: five rounds of 40,000 successes do
/// not dilute the failures that come after the window has passed.
#[test]
fn the_time_window_is_bounded_and_forgets_old_calls() {
    let clock = ManualClock::new();
    let b = builder(&clock, u32::MAX)
        .policy(Policy::failure_rate(0.5).over_time(Duration::from_secs(10)).min_calls(5))
        .build()
        .unwrap();
    let calls = || {
        for i in 0..40_000u32 {
            b.try_acquire().unwrap().success();
            if i % 1_000 == 0 {
                clock.advance(Duration::from_millis(10));
            }
        }
    };
    #[cfg(target_os = "linux")]
    {
        let grown = least_growth_per_round(4, calls);
        // Storing each call, even in 8 bytes, would grow every round by 320 KB.
        assert!(grown < 256 << 10, "memory grew by at least {grown} bytes in every round of 40,000 calls");
    }
    #[cfg(not(target_os = "linux"))]
    (0..5).for_each(|_| calls());
    assert_eq!(b.metrics().failure_rate, Some(0.0));
    clock.advance(Duration::from_secs(10));
    assert_eq!(b.metrics().failure_rate, Some(0.0), "the window is empty again");
    fail_n(&b, 4);
    assert!(b.is_closed(), "4 calls in the window are below min_calls");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open, "5 of 5 recent calls failed; the 200,000 old successes are gone");
}

/// Regression test for a bug this suite found in breakerbox, since fixed. It was (found here; the time window of #8 and the slow-call rule): a report that carries
/// its own duration (`Report::with_duration`, as HTTP clients that time their requests
/// send) is recorded in a time window at clock time 0 instead of now, and evaluated
/// there. Such reports never slide out of the window: the window is cumulative for them.
#[test]
fn time_window_forgets_calls_that_carry_their_own_duration() {
    let clock = ManualClock::new();
    let b = builder(&clock, u32::MAX)
        .policy(Policy::failure_rate(0.5).over_time(Duration::from_secs(10)).min_calls(2))
        .build()
        .unwrap();
    clock.advance(Duration::from_secs(100));
    b.try_acquire().unwrap().record(Report::failure().with_duration(Duration::from_millis(5)));
    clock.advance(Duration::from_secs(1_000));
    b.try_acquire().unwrap().record(Report::failure().with_duration(Duration::from_millis(5)));
    // Only one call lies within the last 10 s: below min_calls.
    assert!(b.is_closed(), "a failure from 1,000 s ago still counted");
    // And the metrics, which read the window at the current time, do see the call.
    b.try_acquire().unwrap().record(Report::success().with_duration(Duration::from_millis(5)));
    assert_eq!(b.metrics().failure_rate, Some(0.5), "1 failure and 1 success within the last 10 s");
}

// ===== #9, #10: late results of Closed-admitted calls =====

/// #9 tower-resilience-circuitbreaker 0.14.0: late results of calls admitted while
/// Closed counted as half-open successes. Here they count in the metrics only.
#[test]
fn a_late_closed_success_is_not_a_half_open_success() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1).half_open_probes(2).build().unwrap();
    let slow_calls: Vec<_> = (0..3).map(|_| b.try_acquire_owned().unwrap()).collect();
    fail_n(&b, 1);
    clock.advance(WAIT);
    let probe = b.try_acquire().unwrap();
    for p in slow_calls {
        p.success();
    }
    let m = b.metrics();
    assert_eq!((m.state, m.probes_in_flight, m.successes), (State::HalfOpen, 1, 3));
    probe.success();
    assert_eq!(b.state(), State::HalfOpen, "one real probe success of two");
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
}

/// #10 breaker 2.0.2: a late success from a Closed-admitted call closed an open circuit
/// with no probe. Here it changes nothing; nor does a late failure reopen or lengthen.
#[test]
fn a_late_closed_success_does_not_close_an_open_breaker() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1).build().unwrap();
    let late_ok = b.try_acquire_owned().unwrap();
    let late_err = b.try_acquire_owned().unwrap();
    fail_n(&b, 1);
    late_ok.success();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(WAIT));
    late_err.failure();
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(WAIT), "the wait is unchanged");
    assert_eq!(b.metrics().opens, 1);
    clock.advance(WAIT);
    assert_eq!(b.state(), State::HalfOpen, "a probe is still needed");
}

// ===== #11: counters never reset; callbacks under the lock =====

/// #11 circuit_breaker 0.1.1: the failure count was never reset by Closed successes.
#[test]
fn closed_successes_reset_the_failure_streak() {
    let clock = ManualClock::new();
    let b = builder(&clock, 3).build().unwrap();
    for _ in 0..100 {
        fail_n(&b, 2);
        b.try_acquire().unwrap().success();
    }
    assert!(b.is_closed());
    assert_eq!(b.metrics().consecutive_failures, 0);
}

/// #11 circuit_breaker 0.1.1 (and failsafe's `reset()`): callbacks ran under the state
/// lock, so a listener that called back into the breaker deadlocked. Here every
/// listener calls back into the breaker (state, metrics, name, and even reset and
/// try_acquire) without deadlock, and the outcome is consistent.
#[test]
fn listeners_may_call_back_into_the_breaker() {
    within(20, "re-entrant listeners", || {
        let clock = ManualClock::new();
        let slot: Arc<Mutex<Option<Breaker>>> = Arc::new(Mutex::new(None));
        let handle = move |slot: &Arc<Mutex<Option<Breaker>>>| slot.lock().unwrap().clone().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let (s1, s2, s3) = (slot.clone(), slot.clone(), slot.clone());
        let (n1, n2, n3) = (seen.clone(), seen.clone(), seen.clone());
        let b = builder(&clock, 1)
            .on_state_change(move |t| {
                let b = handle(&s1);
                assert_eq!(b.state(), t.to, "the new state is published before listeners run");
                let _ = b.metrics();
                if t.reason == Reason::ProbeFailed {
                    b.reset(); // a listener that gives up on waiting
                }
                n1.fetch_add(1, Ordering::Relaxed);
            })
            .on_rejection(move |r| {
                let b = handle(&s2);
                assert_eq!(b.name(), r.name());
                let _ = (b.state(), b.metrics());
                n2.fetch_add(1, Ordering::Relaxed);
            })
            .on_outcome(move |_| {
                let b = handle(&s3);
                let _ = (b.state(), b.metrics());
                if b.is_half_open() {
                    // Re-entrant admission from inside a listener.
                    drop(b.try_acquire());
                }
                n3.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(b.clone());
        fail_n(&b, 1); // trips: state change + outcome
        assert!(b.try_acquire().is_err()); // rejection
        clock.advance(WAIT);
        b.try_acquire().unwrap().failure(); // probe fails: the listener resets
        assert_eq!(b.state(), State::Closed);
        assert!(seen.load(Ordering::Relaxed) >= 5);
        *slot.lock().unwrap() = None; // break the cycle
    });
}

/// Pitfall "contain listener panics" (tower-resilience does it with `catch_unwind`): a
/// panicking listener breaks neither the breaker nor the other listeners nor the call,
/// even when it panics while the call itself is unwinding from a panic.
#[test]
fn a_panicking_listener_breaks_nothing() {
    let clock = ManualClock::new();
    let after = Arc::new(AtomicUsize::new(0));
    let (a1, a2, a3) = (after.clone(), after.clone(), after.clone());
    let b = builder(&clock, 2)
        .on_state_change(|_| panic!("listener panic: transition"))
        .on_state_change(move |_| {
            a1.fetch_add(1, Ordering::Relaxed);
        })
        .on_rejection(|_| panic!("listener panic: rejection"))
        .on_rejection(move |_| {
            a2.fetch_add(1, Ordering::Relaxed);
        })
        .on_outcome(|_| panic!("listener panic: outcome"))
        .on_outcome(move |_| {
            a3.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    assert_eq!(b.call(|| Ok::<_, ()>(1)), Ok(1));
    // A panicking call: the outcome listener panics during the unwind, and is contained.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.call(|| -> Result<(), ()> { panic!("the protected call panics") })
    }));
    assert!(r.is_err(), "the call's own panic propagates");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert!(b.try_acquire().is_err());
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.successes, m.failures, m.rejected), (2, 2, 1));
    // outcomes 4, transitions 3 (trip, half-open, close), rejections 1.
    assert_eq!(after.load(Ordering::Relaxed), 8, "the listeners after a panicking one still ran");
}

// ===== #12: keyed families that never evict =====

/// #12 seatbelt 0.11.0: the keyed-breaker map never evicted. Here the family is bounded
/// by max_breakers (least recently used closed breaker first) and evicts idle ones.
#[test]
fn the_keyed_family_is_bounded_and_evicts_idle_breakers() {
    let clock = ManualClock::new();
    let family = BreakerBox::<String>::builder(builder(&clock, 1))
        .max_breakers(8)
        .idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    for i in 0..1_000 {
        family.get(&format!("host-{i}")).try_acquire().unwrap().success();
        clock.advance(Duration::from_millis(1));
        assert!(family.len() <= 8, "{} breakers for a bound of 8", family.len());
    }
    // The most recent keys survived; an evicted key comes back fresh.
    assert!(family.get_existing("host-999").is_some());
    assert!(family.get_existing("host-0").is_none());
    assert!(family.get("host-0").is_closed());

    // Idle eviction.
    clock.advance(Duration::from_secs(60));
    assert_eq!(family.retain_recent(), 8);
    assert!(family.is_empty());
    family.get("recent");
    assert_eq!(family.len(), 1);
}

/// Pitfall "unbounded keyed maps" (#12 seatbelt), in breakerbox's own form: a breaker that
/// opened and was then abandoned (the host is never asked for again) reports HalfOpen
/// once its wait has passed, is never "closed", and so is neither evicted when idle nor
/// to make room. Keys that fail once and are never used again grow the family without
/// bound.
#[test]
fn abandoned_open_breakers_are_eventually_evicted() {
    let clock = ManualClock::new();
    let family = BreakerBox::<String>::builder(builder(&clock, 1))
        .max_breakers(10)
        .idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    for i in 0..100 {
        family.get(&format!("dead-host-{i}")).try_acquire().unwrap().failure();
    }
    clock.advance(Duration::from_secs(3_600)); // an hour: past the wait and the idle timeout
    family.retain_recent();
    family.get("live-host");
    assert!(family.len() <= 10, "{} breakers for a bound of 10 after an hour idle", family.len());
}

// ===== pitfalls =====

/// Pitfall "consecutive-only tripping misses interleaved failures" (istio/api#3766): a
/// steady 50 % failure rate never trips a consecutive rule, and does trip a rate rule.
#[test]
fn a_steady_partial_outage_trips_a_rate_rule() {
    let clock = ManualClock::new();
    let consecutive = builder(&clock, 3).build().unwrap();
    let rate = builder(&clock, 3).policy(Policy::failure_rate(0.5).over_calls(20).min_calls(10)).build().unwrap();
    let combined = builder(&clock, 3)
        .policy(Policy::consecutive_failures(3).or(Policy::failure_rate(0.5).over_calls(20).min_calls(10)))
        .build()
        .unwrap();
    for b in [&consecutive, &rate, &combined] {
        for i in 0..100 {
            if b.is_open() {
                break;
            }
            b.try_acquire().unwrap().record(if i % 2 == 0 { Outcome::Failure } else { Outcome::Success });
        }
    }
    assert!(consecutive.is_closed());
    assert!(rate.is_open());
    assert!(combined.is_open());
}

/// Pitfall "time arithmetic that panics or truncates" (circuitbreaker-rs and crius:
/// `Instant::now() - d`; failsafe: `as_secs()` truncation): extreme clocks, waits,
/// hints and durations never panic.
#[test]
fn extreme_time_values_never_panic() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1)
        .open_wait(OpenWait::fixed(Duration::MAX))
        .retry_after_limit(Duration::MAX)
        .policy(Policy::consecutive_failures(1).or(Policy::slow_calls(Duration::from_nanos(1), 1.0).min_calls(1)))
        .build()
        .unwrap();
    b.try_acquire().unwrap().record(Report::success().with_duration(Duration::MAX));
    assert_eq!(b.state(), State::Open, "a call of Duration::MAX is slow");
    assert!(b.try_acquire().unwrap_err().retry_after().is_some_and(|d| d > Duration::from_secs(86_400)));
    b.reset();
    b.try_acquire().unwrap().record(Report::failure().with_retry_after(Duration::MAX));
    assert!(b.is_open());
    clock.advance(Duration::MAX);
    clock.advance(Duration::MAX);
    assert_eq!(clock.elapsed(), Duration::from_nanos(u64::MAX), "saturates");
    let _ = (b.state(), b.metrics(), b.try_acquire().map(|p| p.success()));
    clock.set(Duration::MAX);
    let _ = (b.state(), b.metrics());

    // Millisecond settings are kept, not truncated to whole seconds; deadlines have
    // millisecond resolution, so a sub-millisecond wait rounds up to the next millisecond.
    let clock = ManualClock::new();
    let b = builder(&clock, 1).open_wait(OpenWait::fixed(Duration::from_millis(15))).build().unwrap();
    fail_n(&b, 1);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_millis(15)));
    clock.advance(Duration::from_micros(14_999));
    assert!(b.is_open());
    clock.advance(Duration::from_micros(1));
    assert!(b.is_half_open());
    let b = builder(&clock, 1).open_wait(OpenWait::fixed(Duration::from_micros(1_500))).build().unwrap();
    fail_n(&b, 1);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_millis(2)));
}

/// Pitfall "time arithmetic that panics or overflows": an exponential wait after many
/// consecutive openings (past 32, past the 63 the word counts) neither overflows nor
/// panics; it grows, then stays at its maximum.
#[test]
fn exponential_wait_with_huge_opens_does_not_overflow() {
    let clock = ManualClock::new();
    let max = Duration::from_secs(3_600);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let b = builder(&clock, 1)
        .open_wait(OpenWait::exponential(Duration::from_micros(1), max))
        .on_state_change(move |t| {
            if let Some(d) = t.open_for {
                w.lock().unwrap().push((t.consecutive_opens, d));
            }
        })
        .build()
        .unwrap();
    fail_n(&b, 1);
    for _ in 0..100 {
        let wait = b.try_acquire().unwrap_err().retry_after().unwrap();
        clock.advance(wait);
        b.try_acquire().unwrap().failure(); // the probe fails: the next, longer wait
    }
    let waits = waits.lock().unwrap();
    assert_eq!(waits.len(), 101);
    assert!(waits.windows(2).all(|w| w[0].1 <= w[1].1), "never shrinks");
    assert_eq!(waits[0].1, Duration::from_micros(1));
    assert_eq!(waits[10].1, Duration::from_micros(1 << 10));
    assert!(waits[40..].iter().all(|(_, d)| *d == max));
    assert!(waits.iter().all(|(opens, _)| *opens >= 1));

    // A base so large that doubling overflows `Duration`.
    let b = builder(&clock, 1).open_wait(OpenWait::exponential(Duration::MAX / 2, Duration::MAX)).build().unwrap();
    fail_n(&b, 1);
    assert!(b.is_open());
}

/// Regression test for a bug this suite found in breakerbox, since fixed. It was (pitfall "time arithmetic that truncates"): deadlines are stored as 48-bit
/// microseconds, so on a clock whose reading is past about 8.9 years (a `Clock` counting
/// from the UNIX epoch, or from boot on a long-running host) every deadline saturates
/// in the past, and a tripped breaker is half-open at once: it never stays open.
#[test]
fn a_clock_far_from_its_origin_still_keeps_the_breaker_open() {
    let clock = ManualClock::new();
    clock.set(Duration::from_secs(10 * 365 * 86_400)); // ten years after the origin
    let b = builder(&clock, 1).build().unwrap();
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(WAIT));
}

/// Regression test for a bug this suite found in breakerbox, since fixed. It was (pitfall "time arithmetic that panics"): jitter multiplies the wait by an `f64`
/// with `Duration::mul_f64`, which panics when the product rounds up past
/// `Duration::MAX`. The panic comes out of the call that tripped the breaker, after the
/// Open state was published but before its deadline was stored, so the breaker then
/// rejects forever with no retry_after (until `reset`).
#[test]
fn jitter_on_a_huge_wait_does_not_panic() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1).open_wait(OpenWait::fixed(Duration::MAX).with_jitter(1e-18)).build().unwrap();
    let tripped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fail_n(&b, 1)));
    assert!(tripped.is_ok(), "the tripping call panicked");
    assert!(b.try_acquire().unwrap_err().retry_after().is_some());
}

/// Regression test for a bug this suite found in breakerbox, since fixed. It was (pitfall "non-atomic check-then-act", in the deadline's 16-bit generation tag):
/// after 32,767 or more transitions that store no deadline (`reset`, `force_open`,
/// `disable`) since the last one that did, the next trip's deadline is judged "not
/// newer" and never stored; every reader then sees a "stale" word and spins forever:
/// `state()` and `try_acquire()` hang. After exactly 65,535 such transitions the old
/// deadline matches again and the breaker is half-open at once instead.
#[test]
fn many_resets_then_a_trip_neither_hang_nor_skip_the_wait() {
    for resets in [32_767u32, 65_535] {
        let state = within(10, &format!("trip after {resets} resets"), move || {
            let clock = ManualClock::new();
            let b = builder(&clock, 1).build().unwrap();
            for _ in 0..resets {
                b.reset();
            }
            fail_n(&b, 1);
            (b.state(), b.try_acquire().map(|_| ()).map_err(|r| r.retry_after()))
        });
        assert_eq!(state, (State::Open, Err(Some(WAIT))), "after {resets} resets");
    }
}

/// Pitfall "thread-local or hidden mock clocks" (failsafe): the test clock is injected
/// and shared across threads; advancing it anywhere moves every breaker on it.
#[test]
fn the_manual_clock_works_across_threads() {
    let clock = ManualClock::new();
    let b = builder(&clock, 1).build().unwrap();
    fail_n(&b, 1);
    let c = clock.clone();
    std::thread::spawn(move || c.advance(WAIT)).join().unwrap();
    assert!(b.is_half_open());
    let b2 = b.clone();
    let state = std::thread::spawn(move || {
        b2.try_acquire().unwrap().success();
        b2.state()
    })
    .join()
    .unwrap();
    assert_eq!(state, State::Closed);
}

/// Pitfall "recording from `Drop` during unwind" (microsoft/oxidizer#506): a permit
/// dropped while its thread panics records one failure, never panics itself, and a
/// permit dropped normally records nothing.
#[test]
fn a_permit_dropped_by_a_panic_records_one_failure() {
    let clock = ManualClock::new();
    let b = builder(&clock, 2).build().unwrap();
    drop(b.try_acquire().unwrap());
    assert_eq!(b.metrics().failures, 0, "a plain drop records nothing");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = b.try_acquire().unwrap();
        panic!("the call panics while holding its permit");
    }));
    assert!(r.is_err());
    assert_eq!(b.metrics().failures, 1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.call(|| -> Result<(), ()> { panic!("boom") })));
    assert!(r.is_err());
    let m = b.metrics();
    assert_eq!((m.failures, m.state), (2, State::Open), "two panics are two failures in a row");
}

/// Pitfall "error erasure or over-constrained error bounds" (circuit_breaker boxes the
/// error; circuitbreaker-rs requires `std::error::Error`): the caller's error type comes
/// back as it was, with no bound on it.
#[test]
fn the_callers_error_comes_back_untouched() {
    #[derive(Debug, PartialEq)]
    struct NotAnError {
        code: u16,
    }
    let b = Breaker::new();
    let r: Result<(), Error<NotAnError>> = b.call(|| Err(NotAnError { code: 503 }));
    assert_eq!(r.unwrap_err().into_inner(), Some(NotAnError { code: 503 }));
    let r = futures_executor::block_on(b.call_async(async { Err::<(), _>(NotAnError { code: 429 }) }));
    assert_eq!(r, Err(Error::Inner(NotAnError { code: 429 })));
}

/// Rejections are data, never failures (every surveyed crate agrees; a regression here
/// would keep a breaker open forever under load): a flood of rejected calls changes
/// neither the wait nor the counters of the policy.
#[test]
fn rejections_never_count_as_failures_or_extend_the_wait() {
    let clock = ManualClock::new();
    let b = builder(&clock, 2).build().unwrap();
    fail_n(&b, 2);
    for _ in 0..10_000 {
        assert!(b.try_acquire().is_err());
    }
    let m = b.metrics();
    assert_eq!((m.failures, m.rejected, m.opens), (2, 10_000, 1));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(WAIT));
    clock.advance(WAIT);
    b.try_acquire().unwrap().success();
    assert!(b.is_closed());
}

/// Regression test for a bug this suite found in breakerbox, since fixed. It was (the count window's 24-bit generation tag, pitfall "late results mutating a newer
/// state" turned around): the window drops a record whose generation looks older than
/// the last one it recorded, comparing 24-bit tags by serial arithmetic. After more
/// than 2^23 transitions with no recorded call in between (resets here; an outage that
/// flaps Open/HalfOpen for weeks does the same), every new generation looks older than
/// the stale tag, every call is dropped, and the rate rule can no longer trip.
#[test]
fn a_rate_rule_still_counts_after_millions_of_transitions() {
    let clock = ManualClock::new();
    let b = builder(&clock, u32::MAX).policy(Policy::failure_rate(0.5).over_calls(4).min_calls(2)).build().unwrap();
    for _ in 0..(1u32 << 23) + 1 {
        b.reset();
    }
    fail_n(&b, 1);
    assert_eq!(b.metrics().failure_rate, Some(1.0), "the failure is in the window");
    fail_n(&b, 1);
    assert_eq!(b.state(), State::Open);
}

/// Regression test for a bug this suite found in breakerbox, since fixed. It was (jitter, pitfall "thundering herd" that `with_jitter` exists to prevent): the
/// jitter's random seed is the builder's address xor the clock's reading at build time.
/// Breakers built from one builder at one clock reading (a loop of `template.build()`,
/// or every key of a `BreakerBox`, on a `ManualClock` or within one tick of a
/// `CoarseClock`) get the same seed, hence identical "random" waits: breakers that open
/// together still probe together.
#[test]
fn jitter_differs_between_breakers_built_together() {
    let clock = ManualClock::new();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let template = builder(&clock, 1)
        .open_wait(OpenWait::fixed(Duration::from_secs(100)).with_jitter(0.5))
        .on_state_change(move |t| w.lock().unwrap().extend(t.open_for));
    let breakers: Vec<_> = (0..4).map(|_| template.build().unwrap()).collect();
    let family = BreakerBox::<u32>::new(template).unwrap();
    let keyed: Vec<_> = (0..4).map(|k| family.get(&k)).collect();
    for b in breakers.iter().chain(&keyed) {
        b.try_acquire().unwrap().failure();
    }
    let waits = waits.lock().unwrap();
    assert_eq!(waits.len(), 8);
    assert!(waits[..4].iter().any(|d| *d != waits[0]), "four breakers, one wait: {waits:?}");
    assert!(waits[4..].iter().any(|d| *d != waits[4]), "four keys, one wait: {waits:?}");
}
