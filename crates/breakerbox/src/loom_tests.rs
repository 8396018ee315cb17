//! Loom models of the lock-free state word: every interleaving of a few threads, with
//! the real admission and recording code (the atomics come from `sync.rs`).
//!
//! Run with `RUSTFLAGS="--cfg breakerbox_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p breakerbox --release --lib loom`.

use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::{Breaker, ManualClock, OpenWait, OwnedPermit, Policy, State};

const WAIT: Duration = Duration::from_secs(1);

fn breaker(clock: &ManualClock, threshold: u32, probes: u32, opened: Option<Arc<AtomicUsize>>) -> Breaker {
    let mut b = Breaker::builder()
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(WAIT))
        .half_open_probes(probes)
        .clock(clock.clone());
    if let Some(opened) = opened {
        b = b.on_state_change(move |t| {
            if t.to == State::Open {
                opened.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    b.build().unwrap()
}

/// A breaker that tripped and turned half-open, with both of its two probe slots taken.
fn half_open_with_two_probes() -> (Breaker, OwnedPermit, OwnedPermit) {
    let clock = ManualClock::new();
    let b = breaker(&clock, 1, 2, None);
    b.try_acquire().unwrap().failure();
    clock.advance(WAIT);
    let p1 = b.try_acquire_owned().unwrap();
    let p2 = b.try_acquire_owned().unwrap();
    (b, p1, p2)
}

/// Model 1: concurrent failures crossing the threshold open the breaker exactly once,
/// with exactly one event.
#[test]
fn loom_concurrent_failures_open_exactly_once() {
    loom::model(|| {
        let clock = ManualClock::new();
        let opened = Arc::new(AtomicUsize::new(0));
        let b = breaker(&clock, 2, 1, Some(opened.clone()));
        let permits: Vec<OwnedPermit> = (0..3).map(|_| b.try_acquire_owned().unwrap()).collect();
        let handles: Vec<_> = permits.into_iter().map(|p| thread::spawn(move || p.failure())).collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(opened.load(Ordering::Relaxed), 1);
        assert_eq!(b.metrics().opens, 1);
        assert_eq!(b.metrics().failures, 3);
    });
}

/// Model 2: racing acquirers at the open→half-open edge get at most `probes` permits.
#[test]
fn loom_racing_acquirers_get_at_most_the_probes() {
    for probes in [1, 2] {
        loom::model(move || {
            let clock = ManualClock::new();
            let b = breaker(&clock, 1, probes, None);
            b.try_acquire().unwrap().failure();
            clock.advance(WAIT);
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let b = b.clone();
                    thread::spawn(move || b.try_acquire_owned().ok())
                })
                .collect();
            let permits: Vec<OwnedPermit> = handles.into_iter().filter_map(|h| h.join().unwrap()).collect();
            assert_eq!(permits.len(), probes as usize, "exactly the probes, never more");
            assert_eq!(b.metrics().probes_in_flight, probes);
            for p in permits {
                p.success();
            }
            assert_eq!(b.state(), State::Closed);
        });
    }
}

/// Model 3: a late outcome from an older generation cannot change the new state, while
/// the current probe reports concurrently.
#[test]
fn loom_late_outcome_cannot_change_the_state() {
    for probe_succeeds in [false, true] {
        loom::model(move || {
            let clock = ManualClock::new();
            let b = breaker(&clock, 1, 1, None);
            let late_success = b.try_acquire_owned().unwrap();
            let late_failure = b.try_acquire_owned().unwrap();
            b.try_acquire().unwrap().failure();
            clock.advance(WAIT);
            let probe = b.try_acquire_owned().unwrap();
            let t1 = thread::spawn(move || late_success.success());
            let t2 = thread::spawn(move || late_failure.failure());
            let t3 = thread::spawn(move || if probe_succeeds { probe.success() } else { probe.failure() });
            for t in [t1, t2, t3] {
                t.join().unwrap();
            }
            let expected = if probe_succeeds { State::Closed } else { State::Open };
            assert_eq!(b.state(), expected);
            // Closed: a new streak; open: the one failure that tripped it (the late
            // failure did not add to it).
            assert_eq!(b.metrics().consecutive_failures, u32::from(!probe_succeeds));
        });
    }
}

/// Model 4: dropped permits always free their slots, racing with acquirers.
#[test]
fn loom_dropped_permits_free_their_slots() {
    loom::model(|| {
        let (b, p1, p2) = half_open_with_two_probes();
        let t1 = thread::spawn(move || drop(p1));
        let b2 = b.clone();
        let t2 = thread::spawn(move || {
            drop(p2);
            b2.try_acquire_owned().ok()
        });
        t1.join().unwrap();
        let again = t2.join().unwrap();
        assert!(again.is_some(), "p2's slot was freed before this acquire");
        assert_eq!(b.metrics().probes_in_flight, 1);
        drop(again);
        assert_eq!(b.metrics().probes_in_flight, 0);
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.metrics().successes + b.metrics().failures, 1);
    });
}

/// Model 5: a success and a failure racing in half-open end in a state that a serial
/// order explains: any failed probe reopens.
#[test]
fn loom_success_and_failure_racing_in_half_open() {
    loom::model(|| {
        let (b, p1, p2) = half_open_with_two_probes();
        let t1 = thread::spawn(move || p1.success());
        let t2 = thread::spawn(move || p2.failure());
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.metrics().opens, 2);
    });
}

/// Model 6: counters are exact across owned stripes (plain load and store), the
/// shared stripe, and a slot handed from a thread that exits to one that claims it
/// while the first may still be giving it back.
#[test]
fn loom_counts_are_exact_across_stripes_and_slot_handover() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = breaker(&clock, 100, 1, None);
        let record = |b: Breaker, successes: usize, exits: bool| {
            thread::spawn(move || {
                for _ in 0..successes {
                    b.try_acquire().unwrap().success();
                }
                b.try_acquire().unwrap().failure();
                if exits {
                    crate::stats::release_thread_slot();
                }
            })
        };
        // Two owned stripes: the main thread and the first worker own them; the second
        // counts on the shared stripe, unless it comes after the first has given its
        // slot back and takes it over.
        b.try_acquire().unwrap().ignore();
        let first = record(b.clone(), 1, true);
        let second = record(b.clone(), 1, false);
        first.join().unwrap();
        second.join().unwrap();
        let m = b.metrics();
        assert_eq!((m.successes, m.failures, m.ignored), (2, 2, 1));
    });
}

/// A breaker with one probe slot, tripped, half-open, its probe admitted and held for
/// one more wait (past a lease of `WAIT`, or not), with `cancel_counts_after` as given.
fn probe_held_for_a_wait(lease: Duration, cancel_counts_after: Option<Duration>) -> (Breaker, OwnedPermit) {
    let clock = ManualClock::new();
    let b = Breaker::builder()
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(WAIT))
        .probe_lease(lease)
        .cancel_counts_after(cancel_counts_after)
        .clock(clock.clone())
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    clock.advance(WAIT);
    let probe = b.try_acquire_owned().unwrap();
    clock.advance(WAIT);
    (b, probe)
}

/// Model 7: a probe silent past its lease loses its slot to the next call, racing with
/// its own drop and another acquirer: never more live probes than slots, whichever
/// comes first, and the loser's drop frees nothing of the winner's.
#[test]
fn loom_a_taken_over_probe_and_its_drop_never_exceed_the_slots() {
    loom::model(|| {
        let (b, silent) = probe_held_for_a_wait(WAIT, None);
        let dropper = thread::spawn(move || drop(silent));
        let acquirers: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire_owned().ok())
            })
            .collect();
        dropper.join().unwrap();
        let admitted: Vec<OwnedPermit> = acquirers.into_iter().filter_map(|h| h.join().unwrap()).collect();
        // Never two. (None is possible: an acquirer that looks while the dropped
        // probe is between freeing its slot and leaving the count sees a full round
        // with no lease run out, and is turned away, as it would be a moment earlier.)
        assert!(admitted.len() <= 1, "one slot, at most one live probe");
        assert_eq!(b.metrics().probes_in_flight as usize, admitted.len());
        drop(admitted);
        assert_eq!(b.metrics().probes_in_flight, 0);
        assert_eq!(b.state(), State::HalfOpen);
    });
}

/// Model 8: a probe dropped after the cancellation threshold counts as a failed probe
/// and reopens, racing with an acquirer that must not slip in as a second probe.
#[test]
fn loom_a_probe_cancelled_late_reopens_and_admits_no_second_probe() {
    loom::model(|| {
        let (b, probe) = probe_held_for_a_wait(WAIT * 10, Some(WAIT));
        let dropper = thread::spawn(move || drop(probe));
        let b2 = b.clone();
        let acquirer = thread::spawn(move || b2.try_acquire_owned().ok());
        dropper.join().unwrap();
        assert!(acquirer.join().unwrap().is_none(), "the slot was taken, then the breaker reopened");
        assert_eq!(b.state(), State::Open);
        assert_eq!((b.metrics().opens, b.metrics().failures), (2, 2));
    });
}

/// A breaker with a recovery ramp of `RAMP` (admitting `min_fraction` at first, aborted
/// by one failure), tripped and its wait passed: the next call is its probe.
fn ramped(clock: &ManualClock, min_fraction: f64, transitions: Option<Arc<AtomicUsize>>) -> Breaker {
    let mut b = Breaker::builder()
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(WAIT))
        .recovery_ramp(crate::Ramp::new().duration(RAMP).min_fraction(min_fraction).abort_after(1))
        .clock(clock.clone());
    if let Some(transitions) = transitions {
        b = b.on_state_change(move |t| {
            if t.from == State::Recovering {
                transitions.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let b = b.build().unwrap();
    b.try_acquire().unwrap().failure();
    clock.advance(WAIT);
    b
}

/// As [`ramped`], with its probe succeeded: recovering.
fn recovering(clock: &ManualClock, min_fraction: f64, transitions: Option<Arc<AtomicUsize>>) -> Breaker {
    let b = ramped(clock, min_fraction, transitions);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Recovering);
    b
}

const RAMP: Duration = Duration::from_secs(10);

/// Model: racing admissions in a ramp admit exactly the sum of their fractions (the
/// accumulator's CAS loses no step and counts none twice).
#[test]
fn loom_racing_ramp_admissions_admit_exactly_the_fraction() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = recovering(&clock, 0.5, None);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || usize::from(b.try_acquire_owned().is_ok()))
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        // Three halves: one whole call, half a call owed.
        assert_eq!(admitted, 1);
        assert!(b.try_acquire().map(|p| p.success()).is_ok(), "the fourth half completes a second call");
    });
}

/// Model: entering Recovering (the last probe succeeds) races an acquirer: it is refused
/// as half-open, or meets the ramp; never admitted as a second probe or past the ramp.
#[test]
fn loom_entering_the_ramp_races_an_acquirer() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = ramped(&clock, 0.5, None);
        let probe = b.try_acquire_owned().unwrap();
        let other = b.clone();
        let t = thread::spawn(move || other.try_acquire_owned().map_err(|r| r.reason()));
        probe.success();
        match t.join().unwrap() {
            Ok(_) => panic!("half a call is not a call: nothing admitted yet"),
            Err(reason) => assert!(
                matches!(reason, crate::RejectReason::HalfOpenFull | crate::RejectReason::Recovering),
                "{reason:?}"
            ),
        }
        assert_eq!(b.state(), State::Recovering);
    });
}

/// Model: leaving Recovering two ways at once, the ramp's end (an acquirer after it)
/// and its abort (a failure of a call it admitted): exactly one transition out.
#[test]
fn loom_the_ramps_end_races_its_abort() {
    loom::model(|| {
        let clock = ManualClock::new();
        let left = Arc::new(AtomicUsize::new(0));
        let b = recovering(&clock, 1.0, Some(left.clone()));
        let admitted = b.try_acquire_owned().unwrap();
        clock.advance(RAMP);
        let other = b.clone();
        let t = thread::spawn(move || other.try_acquire().map(|p| p.success()).is_ok());
        admitted.failure();
        let closed_first = t.join().unwrap();
        assert_eq!(left.load(Ordering::Relaxed), 1, "one way out");
        // The end came first: the failure is late. The abort came first: the acquirer
        // was refused by the open breaker.
        assert_eq!(b.state(), if closed_first { State::Closed } else { State::Open });
    });
}
