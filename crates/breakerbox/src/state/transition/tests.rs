//! Every kind × every event, with the expected step written out per kind: each `match`
//! on the kind is exhaustive, so a new kind does not compile here until its rules are
//! stated.

use std::time::Duration;

use super::*;

/// Two probes, and a recovery ramp of `RAMP` nanoseconds with the default rules (3
/// consecutive failures abort it, so do 50 % of at least 5 outcomes).
fn limits() -> Limits {
    Limits { probes: 2, ramp: Some(crate::Ramp::new().duration(Duration::from_nanos(RAMP)).rule()) }
}
/// The same without a ramp.
const NO_RAMP: Limits = Limits { probes: 2, ramp: None };
const RAMP: u64 = 10_000;
const HINT: Option<Duration> = Some(Duration::from_secs(9));
const NOW: u64 = 1_000;

/// A word of `kind` in generation 7, with one consecutive opening, one probe in flight
/// and none succeeded.
fn word(kind: Kind) -> Word {
    Word { kind, in_flight: 1, successes: 0, opens: 1, generation: 7 }
}

fn older(w: Word) -> Word {
    Word { generation: w.generation - 1, ..w }
}

fn seen(deadline: Deadline) -> impl FnOnce() -> Seen {
    move || Seen { now: NOW, deadline, earliest_lease: None }
}

/// A half-open reading whose earliest probe lease ends at `lease`.
fn leased(lease: u64) -> impl FnOnce() -> Seen {
    move || Seen { now: NOW, deadline: Deadline::At(0), earliest_lease: Some(lease) }
}

/// For steps that must not need the time.
fn no_time() -> Seen {
    panic!("this step needs no time")
}

/// Whether a step of `rule` from `w` asks for the time.
fn asks_for_time<R: Rule>(rule: &R, w: Word) -> bool {
    let asked = std::cell::Cell::new(false);
    let _ = rule.step(
        w,
        || {
            asked.set(true);
            Seen { now: NOW, deadline: Deadline::At(NOW + 1), earliest_lease: Some(NOW + 1) }
        },
        &limits(),
    );
    asked.get()
}

/// The change of a `Go` step, and its decision.
fn go<D: std::fmt::Debug>(step: Step<D>) -> (Change, D) {
    match step {
        Step::Go { change, decision } => (change, decision),
        other => panic!("expected Go, got {other:?}"),
    }
}

/// The new generation a step enters, checked to be the next one.
fn entered(w: Word, change: Change) -> (Word, Publish) {
    let Change::Enter(enter) = change else { panic!("expected a transition, got {change:?}") };
    assert_eq!(enter.next().generation, w.generation + 1, "a transition is a new generation");
    (enter.next(), enter.publish())
}

fn publish(reason: Reason, deadline: DeadlineFrom, counts_opening: bool, announce: bool) -> Publish {
    Publish { reason, deadline, counts_opening, announce, cause: None }
}

fn rejected(kind: Kind, retry_after: Option<u64>) -> Admission {
    Admission::Reject(Rejection { kind, retry_after })
}

// ===== acquire =====

#[test]
fn acquire_without_time() {
    for kind in Kind::ALL {
        let w = word(kind);
        let timed = matches!(kind, Kind::Open | Kind::Recovering);
        assert_eq!(asks_for_time(&Acquire, w), timed, "{kind:?}");
        if timed {
            continue;
        }
        let step = Acquire.step(w, no_time, &limits());
        match kind {
            Kind::Closed | Kind::Disabled => {
                assert_eq!(step, Step::Go { change: Change::None, decision: Admission::Admit });
            }
            Kind::Open | Kind::Recovering => unreachable!("asks for time"),
            // One of two slots is taken: the second is free.
            Kind::HalfOpen => assert_eq!(
                step,
                Step::Go { change: Change::Probes { in_flight: 2, successes: 0 }, decision: Admission::Probe }
            ),
            Kind::ForcedOpen => {
                assert_eq!(step, Step::Go { change: Change::None, decision: rejected(Kind::ForcedOpen, None) });
            }
        }
        assert_eq!(admits_freely(kind), step == Step::Go { change: Change::None, decision: Admission::Admit });
    }
}

#[test]
fn acquire_open_before_and_after_its_deadline() {
    let w = word(Kind::Open);
    let (change, decision) = go(Acquire.step(w, seen(Deadline::At(NOW + 250)), &limits()));
    assert_eq!((change, decision), (Change::None, rejected(Kind::Open, Some(250))));

    for deadline in [NOW, NOW - 1] {
        let (change, decision) = go(Acquire.step(w, seen(Deadline::At(deadline)), &limits()));
        assert_eq!(decision, Admission::Probe);
        let (next, p) = entered(w, change);
        assert_eq!((next.kind, next.in_flight, next.successes, next.opens), (Kind::HalfOpen, 1, 0, 1));
        // Leases are per probe, in the probe slots: the deadline word keeps only the tag.
        assert_eq!(p, publish(Reason::WaitElapsed, DeadlineFrom::TagOnly, false, true));
    }
}

#[test]
fn acquire_open_with_its_deadline_not_stored_or_superseded() {
    let w = word(Kind::Open);
    assert_eq!(go(Acquire.step(w, seen(Deadline::Pending), &limits())), (Change::None, rejected(Kind::Open, None)));
    assert_eq!(
        Acquire.step(w, seen(Deadline::Stale), &limits()),
        Step::Reload { otherwise: rejected(Kind::Open, None) }
    );
}

#[test]
fn acquire_half_open_with_a_free_slot_and_a_full_one() {
    let free = Word { in_flight: 0, successes: 1, ..word(Kind::HalfOpen) };
    assert_eq!(
        go(Acquire.step(free, no_time, &limits())),
        (Change::Probes { in_flight: 1, successes: 1 }, Admission::Probe)
    );
    // Slots count probes in flight and probes that succeeded.
    for full in [Word { in_flight: 2, ..free }, Word { in_flight: 1, successes: 1, ..free }] {
        assert!(asks_for_time(&Acquire, full));
        // No lease has run out (or no probe holds a slot): rejected.
        for lease in [Some(NOW + 1), None] {
            let reading = move || Seen { now: NOW, deadline: Deadline::At(0), earliest_lease: lease };
            assert_eq!(go(Acquire.step(full, reading, &limits())), (Change::None, rejected(Kind::HalfOpen, None)));
        }
        assert_eq!(
            go(Acquire.step(full, seen(Deadline::Pending), &limits())),
            (Change::None, rejected(Kind::HalfOpen, None))
        );
        assert_eq!(
            Acquire.step(full, seen(Deadline::Stale), &limits()),
            Step::Reload { otherwise: rejected(Kind::HalfOpen, None) }
        );
    }
}

#[test]
fn acquire_half_open_takes_the_slot_of_a_probe_silent_past_its_lease() {
    let full = Word { in_flight: 2, successes: 0, ..word(Kind::HalfOpen) };
    for lease in [NOW, NOW - 1] {
        let (change, decision) = go(Acquire.step(full, leased(lease), &limits()));
        // No new generation: the successes so far keep counting, the word stays.
        assert_eq!(change, Change::None);
        assert_eq!(
            decision,
            Admission::TakeOver(publish(Reason::ProbeLeaseExpired, DeadlineFrom::TagOnly, false, true))
        );
    }
    assert_eq!(go(Acquire.step(full, leased(NOW + 1), &limits())), (Change::None, rejected(Kind::HalfOpen, None)));
}

// ===== record =====

fn record(admitted: Word, outcome: Outcome, slow: bool) -> Record {
    Record { admitted, outcome, slow, retry_after: HINT, owned: true }
}

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Ignored];

#[test]
fn record_of_an_older_generation_is_late_whatever_the_kind() {
    for admitted_kind in Kind::ALL {
        for now_kind in Kind::ALL {
            for outcome in OUTCOMES {
                for slow in [false, true] {
                    let admitted = older(word(admitted_kind));
                    let step = record(admitted, outcome, slow).step(word(now_kind), no_time, &limits());
                    assert_eq!(go(step), (Change::None, Verdict::Late), "{admitted_kind:?} in {now_kind:?}");
                }
            }
        }
    }
}

#[test]
fn record_current() {
    for kind in Kind::ALL {
        let w = word(kind);
        for outcome in OUTCOMES {
            for slow in [false, true] {
                let (change, verdict) = go(record(w, outcome, slow).step(w, no_time, &limits()));
                match kind {
                    // The policy decides; slowness is its business too.
                    Kind::Closed => {
                        assert_eq!(change, Change::None);
                        let expected = match outcome {
                            Outcome::Success => Verdict::Count { failed: false },
                            Outcome::Failure => Verdict::Count { failed: true },
                            Outcome::Ignored => Verdict::Noted,
                        };
                        assert_eq!(verdict, expected);
                    }
                    Kind::HalfOpen => {
                        assert_eq!(verdict, Verdict::Noted);
                        match (outcome, slow) {
                            (Outcome::Ignored, _) => {
                                assert_eq!(change, Change::Probes { in_flight: 0, successes: 0 });
                            }
                            // One success of two needed: the slot is freed and counted.
                            (Outcome::Success, false) => {
                                assert_eq!(change, Change::Probes { in_flight: 0, successes: 1 });
                            }
                            (Outcome::Failure, _) | (Outcome::Success, true) => {
                                let (next, p) = entered(w, change);
                                assert_eq!((next.kind, next.in_flight, next.opens), (Kind::Open, 0, 2));
                                let wait = DeadlineFrom::OpenWait { hint: HINT };
                                assert_eq!(p, publish(Reason::ProbeFailed, wait, true, true));
                            }
                        }
                    }
                    // Into the ramp's history (newest in bit 0, under the sentinel);
                    // one failure does not abort it.
                    Kind::Recovering => {
                        assert_eq!(verdict, Verdict::Noted);
                        let expected = match (outcome, slow) {
                            (Outcome::Ignored, _) => Change::None,
                            (Outcome::Success, false) => Change::Probes { in_flight: 0b10, successes: 0 },
                            (Outcome::Failure, _) | (Outcome::Success, true) => {
                                Change::Probes { in_flight: 0b11, successes: 0 }
                            }
                        };
                        assert_eq!(change, expected, "{outcome:?}, slow {slow}");
                    }
                    Kind::Open | Kind::ForcedOpen | Kind::Disabled => {
                        assert_eq!((change, verdict), (Change::None, Verdict::Noted));
                    }
                }
            }
        }
    }
}

#[test]
fn a_probe_that_lost_its_slot_is_late() {
    let w = word(Kind::HalfOpen);
    for outcome in OUTCOMES {
        for slow in [false, true] {
            let lost = Record { owned: false, ..record(w, outcome, slow) };
            assert_eq!(go(lost.step(w, no_time, &limits())), (Change::None, Verdict::Late));
        }
    }
}

#[test]
fn the_last_needed_probe_success_closes() {
    let w = Word { in_flight: 1, successes: 1, opens: 5, ..word(Kind::HalfOpen) };
    let (change, verdict) = go(record(w, Outcome::Success, false).step(w, no_time, &NO_RAMP));
    assert_eq!(verdict, Verdict::Noted);
    let (next, p) = entered(w, change);
    assert_eq!((next.kind, next.in_flight, next.successes, next.opens), (Kind::Closed, 0, 0, 0));
    assert_eq!(p, publish(Reason::ProbesSucceeded, DeadlineFrom::TagOnly, false, true));
}

#[test]
fn with_a_ramp_the_last_needed_probe_success_begins_it() {
    let w = Word { in_flight: 1, successes: 1, opens: 5, ..word(Kind::HalfOpen) };
    let (change, _) = go(record(w, Outcome::Success, false).step(w, no_time, &limits()));
    let (next, p) = entered(w, change);
    // An empty history (its sentinel), and the openings kept until the ramp is done.
    assert_eq!((next.kind, next.in_flight, next.successes, next.opens), (Kind::Recovering, 1, 0, 5));
    assert_eq!(p, publish(Reason::ProbesSucceeded, DeadlineFrom::RampEnd { elapsed: Duration::ZERO }, false, true));
}

#[test]
fn a_coordinator_starts_the_ramp_part_way_or_closes_past_its_end() {
    for kind in Kind::ALL {
        let w = word(kind);
        let elapsed = Duration::from_nanos(RAMP / 4);
        let (next, p) = entered(w, go(Command::Recover { elapsed }.step(w, no_time, &limits())).0);
        assert_eq!((next.kind, next.in_flight, next.successes), (Kind::Recovering, 1, 0));
        assert_eq!(p, publish(Reason::External, DeadlineFrom::RampEnd { elapsed }, false, kind != Kind::Recovering));
        let over = Command::Recover { elapsed: Duration::from_nanos(RAMP) };
        assert_eq!(entered(w, go(over.step(w, no_time, &limits())).0).0.kind, Kind::Closed);
        let no_ramp = Command::Recover { elapsed: Duration::ZERO };
        assert_eq!(entered(w, go(no_ramp.step(w, no_time, &NO_RAMP)).0).0.kind, Kind::Closed);
    }
}

// ===== the recovery ramp =====

#[test]
fn recovering_admits_the_ramps_fraction_until_its_end() {
    let w = word(Kind::Recovering);
    let ramp = limits().ramp.unwrap();
    // Halfway (the ramp ends RAMP / 2 from now): half of each call.
    let now = 10 * RAMP;
    let halfway = move || Seen { now, deadline: Deadline::At(now + RAMP / 2), earliest_lease: None };
    let (change, decision) = go(Acquire.step(w, halfway, &limits()));
    assert_eq!((change, decision), (Change::None, Admission::Ramp { fraction: ramp.fraction(RAMP / 2) }));
    assert_eq!(ramp.fraction(RAMP / 2), crate::ramp::ONE / 2);
    // Its end not stored yet: the ramp has just begun.
    let (_, decision) = go(Acquire.step(w, seen(Deadline::Pending), &limits()));
    assert_eq!(decision, Admission::Ramp { fraction: ramp.fraction(0) });
    assert!(matches!(Acquire.step(w, seen(Deadline::Stale), &limits()), Step::Reload { .. }));
    // Without a ramp a Recovering word is corrupted: it admits nothing.
    let (_, decision) = go(Acquire.step(w, no_time, &NO_RAMP));
    assert_eq!(decision, rejected(Kind::ForcedOpen, None));
}

#[test]
fn the_end_of_the_ramp_closes_and_forgets_the_openings_only_if_it_saw_traffic() {
    let ramp = limits().ramp.unwrap();
    let quiet = Word { opens: 4, ..word(Kind::Recovering) };
    let mut busy = crate::ramp::History::EMPTY;
    for _ in 0..5 {
        busy = ramp.push(busy, false);
    }
    let Change::Probes { in_flight, successes } = with_history(busy) else { unreachable!() };
    let busy = Word { in_flight, successes, ..quiet };
    for (w, opens) in [(quiet, 4), (busy, 0)] {
        let (change, decision) = go(Acquire.step(w, seen(Deadline::At(NOW)), &limits()));
        assert_eq!(decision, Admission::Admit);
        let (next, p) = entered(w, change);
        assert_eq!((next.kind, next.opens), (Kind::Closed, opens));
        assert_eq!(p, publish(Reason::RampCompleted, DeadlineFrom::TagOnly, false, true));
    }
}

#[test]
fn the_ramp_aborts_on_its_failure_rule() {
    let mut w = word(Kind::Recovering);
    for i in 0..3 {
        let (change, verdict) = go(record(w, Outcome::Failure, false).step(w, no_time, &limits()));
        assert_eq!(verdict, Verdict::Noted);
        match change {
            Change::Probes { in_flight, successes } if i < 2 => w = Word { in_flight, successes, ..w },
            change => {
                assert_eq!(i, 2, "the third consecutive failure aborts");
                let (next, p) = entered(w, change);
                assert_eq!((next.kind, next.opens), (Kind::Open, 2));
                assert_eq!(p, publish(Reason::RampFailed, DeadlineFrom::OpenWait { hint: HINT }, true, true));
            }
        }
    }
}

#[test]
fn consecutive_openings_saturate() {
    let w = Word { opens: MAX_OPENS, ..word(Kind::HalfOpen) };
    let (change, _) = go(record(w, Outcome::Failure, false).step(w, no_time, &limits()));
    assert_eq!(entered(w, change).0.opens, MAX_OPENS);
}

// ===== trip =====

#[test]
fn trip() {
    for kind in Kind::ALL {
        let admitted = word(Kind::Closed);
        let w = word(kind);
        let cause = TripCause::FailureRate;
        let (change, verdict) = go(Trip { admitted, retry_after: HINT, cause }.step(w, no_time, &limits()));
        match kind {
            Kind::Closed => {
                assert_eq!(verdict, Verdict::Noted);
                let (next, p) = entered(w, change);
                assert_eq!((next.kind, next.opens), (Kind::Open, 2));
                let tripped = publish(Reason::Tripped, DeadlineFrom::OpenWait { hint: HINT }, true, true);
                assert_eq!(p, Publish { cause: Some(cause), ..tripped });
            }
            // Another transition of the same generation number cannot exist; a
            // different kind means the closed state ended first.
            Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                assert_eq!((change, verdict), (Change::None, Verdict::Late));
            }
        }
        let trip = Trip { admitted: older(admitted), retry_after: None, cause: TripCause::ConsecutiveFailures };
        assert_eq!(go(trip.step(w, no_time, &limits())), (Change::None, Verdict::Late), "a later generation");
    }
}

// ===== abandon =====

#[test]
fn abandon() {
    for kind in Kind::ALL {
        let w = word(kind);
        let (change, verdict) = go(Abandon { admitted: w, owned: true }.step(w, no_time, &limits()));
        match kind {
            Kind::HalfOpen => {
                assert_eq!((change, verdict), (Change::Probes { in_flight: 0, successes: 0 }, Verdict::Noted));
            }
            Kind::Closed | Kind::Open | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                assert_eq!((change, verdict), (Change::None, Verdict::Noted));
            }
        }
        let late = Abandon { admitted: older(w), owned: true };
        assert_eq!(go(late.step(w, no_time, &limits())), (Change::None, Verdict::Late));
        // A probe that lost its slot left the count when it lost it.
        let lost = Abandon { admitted: w, owned: false };
        assert_eq!(go(lost.step(w, no_time, &limits())), (Change::None, Verdict::Late));
    }
    // A half-open word with no probe in flight (the slot was already freed) stays.
    let empty = Word { in_flight: 0, ..word(Kind::HalfOpen) };
    let step = Abandon { admitted: empty, owned: true }.step(empty, no_time, &limits());
    assert_eq!(go(step), (Change::None, Verdict::Noted));
}

#[test]
fn a_dropped_permit_counts_as_a_failure_when_panicking_or_in_flight_long_enough() {
    let second = Some(1_000_000_000);
    for (panicking, in_flight_for, cancel_after, counts) in [
        (true, 0, None, true),
        (true, 0, second, true),
        (false, 999_999_999, second, false),
        (false, 1_000_000_000, second, true),
        (false, u64::MAX, None, false),
        (false, 0, Some(0), true),
    ] {
        assert_eq!(abandon_counts_as_failure(panicking, in_flight_for, cancel_after), counts);
    }
}

// ===== commands =====

#[test]
fn reset_close_force_open_and_disable_from_every_kind() {
    let cases = [
        (Command::Reset, Kind::Closed, Reason::Reset),
        (Command::Close, Kind::Closed, Reason::External),
        (Command::ForceOpen, Kind::ForcedOpen, Reason::ForcedOpen),
        (Command::Disable, Kind::Disabled, Reason::Disabled),
    ];
    for kind in Kind::ALL {
        let w = Word { opens: 3, ..word(kind) };
        for (command, to, reason) in cases {
            let (change, ()) = go(command.step(w, no_time, &limits()));
            let (next, p) = entered(w, change);
            assert_eq!((next.kind, next.in_flight, next.successes), (to, 0, 0));
            // A close forgets the openings; forcing open or disabling keeps them.
            assert_eq!(next.opens, if to == Kind::Closed { 0 } else { 3 });
            // Announced only when the kind changes (a reset of a closed breaker is quiet).
            assert_eq!(p, publish(reason, DeadlineFrom::TagOnly, false, kind != to), "{command:?} from {kind:?}");
        }
    }
}

#[test]
fn open_for_from_every_kind() {
    let wait = Duration::from_secs(4);
    for kind in Kind::ALL {
        let w = word(kind);
        let (change, ()) = go(Command::OpenFor(wait).step(w, no_time, &limits()));
        let (next, p) = entered(w, change);
        assert_eq!((next.kind, next.opens), (Kind::Open, 2));
        // An explicit opening is news even to an open breaker.
        assert_eq!(p, publish(Reason::External, DeadlineFrom::Explicit(wait), true, true));
    }
}

#[test]
fn hold_open_moves_an_open_deadline_and_opens_anything_else() {
    let wait = Duration::from_secs(4);
    for kind in Kind::ALL {
        let w = word(kind);
        let (change, ()) = go(Command::HoldOpen(wait).step(w, no_time, &limits()));
        match kind {
            Kind::Open => assert_eq!(change, Change::MoveDeadline(wait)),
            Kind::Closed | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                assert_eq!(change, go(Command::OpenFor(wait).step(w, no_time, &limits())).0);
            }
        }
    }
}

// ===== views =====

#[test]
fn an_open_breaker_past_its_wait_looks_half_open() {
    for kind in Kind::ALL {
        for passed in [false, true] {
            let expected = match kind {
                Kind::Open if passed => crate::State::HalfOpen,
                Kind::Recovering if passed => crate::State::Closed,
                Kind::Closed | Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                    kind.state()
                }
            };
            assert_eq!(observed(kind, passed), expected);
        }
    }
}

/// The ramp's history lives in a Recovering word's two probe counts (10 bits each):
/// written by `with_history` and read back by `history`, high bits included.
#[test]
fn the_ramp_history_roundtrips_through_the_probe_counts() {
    for h in [0, 1, 0x3ff, 0x400, 0xabcde, (1 << 20) - 1] {
        let Change::Probes { in_flight, successes } = with_history(History(h)) else {
            panic!("with_history sets the probe counts")
        };
        let w = Word { in_flight, successes, ..word(Kind::Recovering) };
        assert_eq!(history(w).0, h, "history {h:#x}");
    }
}
