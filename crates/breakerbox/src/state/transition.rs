//! The breaker's rules, in one pure place: from a state word and an event to the next
//! word, the caller's answer, and what the transition must publish.
//!
//! Nothing here touches an atomic or reads a clock. The engine (`engine.rs`) loads the
//! state word, calls [`Rule::step`], compare-and-swaps the word the step asks for, and,
//! when the swap wins, hands the step's [`Publish`] to its one `publish` (which stores
//! the deadline, counts the opening and emits the event). A step that needs the time
//! asks for it through the `seen` it is given (the engine's reading of the clock and of
//! this generation's deadline; a test's fixed values), so the clock is read only where
//! the rules need it, and at most once per call.
//!
//! ```text
//!  event         Closed          Open                  HalfOpen                 ForcedOpen  Disabled  Recovering
//!  ───────────── ─────────────── ───────────────────── ──────────────────────── ─────────── ───────── ──────────────────────
//!  acquire       admit           wait passed: ▶ HalfOpen a slot free: probe      reject      admit     ramp over: ▶ Closed,
//!                                (this call probes)    full, a probe silent                          admit; else the ramp's
//!                                else reject           past its lease: take                          fraction (the engine's
//!                                                      its slot; else reject                         accumulator decides)
//!  record        count (policy)  late                  failure, slow: ▶ Open    late        note      into the ramp's window;
//!                                                      enough successes:                             its rule: ▶ Open
//!                                                      ▶ Recovering (a ramp)                         ignored: note
//!                                                      or ▶ Closed
//!                                                      ignored: free the slot
//!  trip          ▶ Open          (lost the race)       (lost the race)          -           -         (lost the race)
//!  abandon       nothing         nothing               free the slot            nothing     nothing   nothing
//!  reset, close  ▶ Closed (every kind; a new generation even when already closed)
//!  force_open    ▶ ForcedOpen    disable ▶ Disabled    open_for ▶ Open (explicit wait)
//!  hold_open     ▶ Open          move the deadline     ▶ Open                   ▶ Open      ▶ Open    ▶ Open
//! ```
//!
//! In Recovering the deadline word holds the end of the ramp, and the word's probe
//! counts hold the ramp's outcome history (see [`History`]).
//!
//! Records and abandons carry the word their permit was admitted under: one admitted
//! in an older generation is late and changes nothing, and so is a probe that lost its
//! slot to another after its lease ran out. A permit dropped while its thread panics,
//! or after it has been in flight `cancel_counts_after` or longer, counts as a failed
//! call (`abandon_counts_as_failure`); one dropped sooner counts nothing.
//!
//! # Probes and their leases
//!
//! At most `half_open_probes` trial calls are live at once, whatever is dropped,
//! leased out or late. Each probe holds a slot (the engine's probe slots), stamped with
//! its own lease from its own admission. When every slot is taken and one probe has
//! been silent past its lease, the next call takes its slot: the silent probe stops
//! counting (its report, if it comes, is late), successes so far keep counting, and no
//! new round begins. So behind `k` hung probes a breaker recovers within about `k`
//! leases (the default lease is the open wait) after the open wait.
//!
//! Every new generation is made by [`Change::Enter`], whose [`Publish`] cannot be left
//! out: a transition that forgets its deadline does not compile.

use std::time::Duration;

use super::kind::Kind;
use super::packed::{Deadline, MAX_OPENS, Word};
use crate::ramp::{History, RampRule};
use crate::{Outcome, Reason, TripCause};

/// The settings the rules need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Limits {
    /// Trial calls at once in half-open, and successes needed to close.
    pub(crate) probes: u32,
    /// The recovery ramp between half-open and closed, if any.
    pub(crate) ramp: Option<RampRule>,
}

/// The ramp's history, kept in the probe counts of a Recovering word (20 bits).
pub(crate) const fn history(w: Word) -> History {
    History(w.in_flight | (w.successes << 10))
}

/// `w`'s probe counts holding `h`.
const fn with_history(h: History) -> Change {
    Change::Probes { in_flight: h.0 & 0x3ff, successes: h.0 >> 10 }
}

/// What the engine read for the word's generation, when the rules asked for time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The clock, in nanoseconds.
    pub(crate) now: u64,
    /// What the deadline word says about this generation.
    pub(crate) deadline: Deadline,
    /// The earliest end of the leases of this generation's live probes, in nanoseconds
    /// (read only for a HalfOpen word).
    pub(crate) earliest_lease: Option<u64>,
}

/// The answer of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Step<D> {
    /// Swap the word for `change` (if any) and answer `decision`.
    Go { change: Change, decision: D },
    /// The deadline word belongs to a newer generation than this word: load the word
    /// again and step on it; if it has not moved, answer `otherwise`.
    Reload { otherwise: D },
}

/// How the state word changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Change {
    /// It stays as it is.
    None,
    /// The same generation, with other probe counts.
    Probes { in_flight: u32, successes: u32 },
    /// A new generation, and what the engine must publish once it is swapped in.
    Enter(Enter),
    /// The word stays; the deadline of this (Open) generation moves to `wait` from now.
    /// If it cannot (the generation has ended, or its deadline is not stored yet), the
    /// engine applies [`Command::OpenFor`] instead.
    MoveDeadline(Duration),
}

/// A new generation: made only by [`enter`], so it always carries its [`Publish`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Enter {
    next: Word,
    publish: Publish,
}

impl Enter {
    /// The word to swap in.
    pub(crate) fn next(&self) -> Word {
        self.next
    }

    /// What to publish after the swap.
    pub(crate) fn publish(&self) -> Publish {
        self.publish
    }
}

/// What follows a transition, published by the engine after its swap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Publish {
    /// Why the state changed.
    pub(crate) reason: Reason,
    /// The deadline to store (every transition stores one: at least its tag).
    pub(crate) deadline: DeadlineFrom,
    /// Whether this is an opening (counted in `Metrics::opens`).
    pub(crate) counts_opening: bool,
    /// Whether listeners, tracing and metrics hear of it.
    pub(crate) announce: bool,
    /// For a trip: the rule that tripped.
    pub(crate) cause: Option<TripCause>,
}

/// Where a transition's deadline comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum DeadlineFrom {
    /// The open wait for the new count of consecutive openings, lengthened by the
    /// failure's retry-after hint (up to the breaker's limit).
    OpenWait { hint: Option<Duration> },
    /// Exactly this wait (`open_for`).
    Explicit(Duration),
    /// No time: only the tag, so that readers know the generation's deadline is stored.
    TagOnly,
    /// The end of the recovery ramp that began `elapsed` ago (zero: it begins now).
    RampEnd { elapsed: Duration },
}

/// Why a call was refused, before it becomes a [`Rejected`](crate::Rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) kind: Kind,
    /// The rest of the open wait, in nanoseconds, when known.
    pub(crate) retry_after: Option<u64>,
}

/// An event the rules answer.
pub(crate) trait Rule {
    /// What the caller is told.
    type Decision: Copy;

    /// The step from `w`; `seen` gives the time and this generation's deadline, for the
    /// steps that need them.
    fn step(&self, w: Word, seen: impl FnOnce() -> Seen, limits: &Limits) -> Step<Self::Decision>;
}

/// Whether a kind admits every call as it is, without time and without a change to the
/// word (the call path tests this before anything else; [`Acquire`] agrees).
pub(crate) const fn admits_freely(kind: Kind) -> bool {
    match kind {
        Kind::Closed | Kind::Disabled => true,
        Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Recovering => false,
    }
}

/// What the breaker's state looks like to an observer: an Open breaker whose wait has
/// passed is half-open already, since the next call would be admitted as a probe, and
/// a ramp that has run its course is closed.
pub(crate) fn observed(kind: Kind, deadline_passed: bool) -> crate::State {
    match kind {
        Kind::Open if deadline_passed => crate::State::HalfOpen,
        Kind::Recovering if deadline_passed => crate::State::Closed,
        Kind::Closed | Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
            kind.state()
        }
    }
}

// ===== acquire =====

/// A call asks to be admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Acquire;

/// The answer to [`Acquire`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Admission {
    /// Admitted, under the word after the change.
    Admit,
    /// Admitted as a half-open probe, under the word after the change: the engine gives
    /// it a probe slot, stamped with its own lease.
    Probe,
    /// Admitted as a probe in the slot of a probe silent past its lease (the slots are
    /// full; the word does not change). The silent probe no longer counts: its report,
    /// if it ever comes, is late. The engine publishes this.
    TakeOver(Publish),
    /// Recovering: admitted if the ramp's accumulator, given this fraction of a call
    /// (fixed point, see `ramp::ONE`), reaches a whole call; the engine decides.
    Ramp { fraction: u64 },
    /// Refused.
    Reject(Rejection),
}

impl Rule for Acquire {
    type Decision = Admission;

    #[inline(always)]
    fn step(&self, w: Word, seen: impl FnOnce() -> Seen, limits: &Limits) -> Step<Admission> {
        match w.kind {
            Kind::Closed | Kind::Disabled => admit(Change::None),
            Kind::Open => {
                let Seen { now, deadline, .. } = seen();
                match deadline {
                    // The wait has passed: this call is the first probe of a new round.
                    Deadline::At(d) if now >= d => Step::Go {
                        change: enter(w, Kind::HalfOpen, 1, Reason::WaitElapsed, DeadlineFrom::TagOnly),
                        decision: Admission::Probe,
                    },
                    Deadline::At(d) => reject(Kind::Open, Some(d - now)),
                    // The thread that opened the breaker is storing this generation's
                    // deadline: it cannot have passed yet.
                    Deadline::Pending => reject(Kind::Open, None),
                    Deadline::Stale => Step::Reload { otherwise: Admission::Reject(rejection(Kind::Open, None)) },
                }
            }
            Kind::HalfOpen if w.in_flight + w.successes < limits.probes => Step::Go {
                change: Change::Probes { in_flight: w.in_flight + 1, successes: w.successes },
                decision: Admission::Probe,
            },
            Kind::HalfOpen => {
                let Seen { now, deadline, earliest_lease } = seen();
                match (deadline, earliest_lease) {
                    (Deadline::Stale, _) => {
                        Step::Reload { otherwise: Admission::Reject(rejection(Kind::HalfOpen, None)) }
                    }
                    // Every slot is taken and a probe has been silent past its own lease:
                    // this call takes its slot. Never more probes than slots.
                    (Deadline::At(_) | Deadline::Pending, Some(lease)) if now >= lease => Step::Go {
                        change: Change::None,
                        decision: Admission::TakeOver(Publish {
                            reason: Reason::ProbeLeaseExpired,
                            deadline: DeadlineFrom::TagOnly,
                            counts_opening: false,
                            announce: true,
                            cause: None,
                        }),
                    },
                    (Deadline::At(_) | Deadline::Pending, Some(_) | None) => reject(Kind::HalfOpen, None),
                }
            }
            Kind::ForcedOpen => reject(Kind::ForcedOpen, None),
            Kind::Recovering => {
                let Some(ramp) = limits.ramp else {
                    // Only a breaker with a ramp recovers; a corrupted word admits nothing.
                    return reject(Kind::ForcedOpen, None);
                };
                let Seen { now, deadline, .. } = seen();
                match deadline {
                    // The ramp has run its course: this call is the first of the closed
                    // breaker.
                    Deadline::At(end) if now >= end => {
                        Step::Go { change: ramp_done(w, ramp), decision: Admission::Admit }
                    }
                    Deadline::At(end) => Step::Go {
                        change: Change::None,
                        decision: Admission::Ramp { fraction: ramp.fraction_at(now, Some(end)) },
                    },
                    // The thread that began the ramp is storing its end: it began just now.
                    Deadline::Pending => Step::Go {
                        change: Change::None,
                        decision: Admission::Ramp { fraction: ramp.fraction_at(now, None) },
                    },
                    Deadline::Stale => Step::Reload { otherwise: Admission::Reject(rejection(Kind::Recovering, None)) },
                }
            }
        }
    }
}

/// The end of a ramp: closed, with fresh windows. Its consecutive openings are forgotten
/// only if the ramp saw enough outcomes to have tested the backend.
fn ramp_done(w: Word, ramp: RampRule) -> Change {
    match enter(w, Kind::Closed, 0, Reason::RampCompleted, DeadlineFrom::TagOnly) {
        Change::Enter(e) if !ramp.observed(history(w)) => {
            Change::Enter(Enter { next: Word { opens: w.opens, ..e.next }, publish: e.publish })
        }
        change => change,
    }
}

#[inline(always)]
fn admit(change: Change) -> Step<Admission> {
    Step::Go { change, decision: Admission::Admit }
}

#[inline(always)]
fn rejection(kind: Kind, retry_after: Option<u64>) -> Rejection {
    Rejection { kind, retry_after }
}

#[inline(always)]
fn reject(kind: Kind, retry_after: Option<u64>) -> Step<Admission> {
    Step::Go { change: Change::None, decision: Admission::Reject(rejection(kind, retry_after)) }
}

// ===== record, trip, abandon =====

/// A permit reports how its call went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Record {
    /// The word the permit was admitted under.
    pub(crate) admitted: Word,
    pub(crate) outcome: Outcome,
    /// Whether a slow-call rule found the call slow (a slow probe fails).
    pub(crate) slow: bool,
    /// The failure's retry-after hint, if it opens the breaker.
    pub(crate) retry_after: Option<Duration>,
    /// For a probe: whether it still held its slot when it reported (a probe silent past
    /// its lease has lost it to another). Always true for other permits.
    pub(crate) owned: bool,
}

/// The answer to [`Record`], [`Trip`] and [`Abandon`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Closed and current: the policy counts it (`failed` or not), and may trip.
    Count { failed: bool },
    /// Current: it has been taken into account (or says nothing).
    Noted,
    /// Admitted in an older generation: it counts in the metrics only.
    Late,
}

impl Rule for Record {
    type Decision = Verdict;

    #[inline]
    fn step(&self, w: Word, _: impl FnOnce() -> Seen, limits: &Limits) -> Step<Verdict> {
        let current = w.generation == self.admitted.generation;
        match self.admitted.kind {
            Kind::Closed => match (current, self.outcome) {
                (false, _) => noted(Change::None, Verdict::Late),
                (true, Outcome::Ignored) => noted(Change::None, Verdict::Noted),
                (true, Outcome::Success) => noted(Change::None, Verdict::Count { failed: false }),
                (true, Outcome::Failure) => noted(Change::None, Verdict::Count { failed: true }),
            },
            Kind::HalfOpen if !(current && self.owned) => noted(Change::None, Verdict::Late),
            Kind::HalfOpen => {
                let freed = w.in_flight.saturating_sub(1);
                let change = match self.outcome {
                    Outcome::Ignored => Change::Probes { in_flight: freed, successes: w.successes },
                    Outcome::Failure => probe_failed(w, self.retry_after),
                    Outcome::Success if self.slow => probe_failed(w, self.retry_after),
                    Outcome::Success if w.successes + 1 >= limits.probes => match limits.ramp {
                        // The ramp begins with an empty history (its sentinel).
                        Some(_) => {
                            let ramp = DeadlineFrom::RampEnd { elapsed: Duration::ZERO };
                            enter(w, Kind::Recovering, History::EMPTY.0, Reason::ProbesSucceeded, ramp)
                        }
                        None => enter(w, Kind::Closed, 0, Reason::ProbesSucceeded, DeadlineFrom::TagOnly),
                    },
                    Outcome::Success => Change::Probes { in_flight: freed, successes: w.successes + 1 },
                };
                noted(change, Verdict::Noted)
            }
            Kind::Recovering if !current => noted(Change::None, Verdict::Late),
            Kind::Recovering => match (self.outcome, limits.ramp) {
                (Outcome::Ignored, _) | (_, None) => noted(Change::None, Verdict::Noted),
                (Outcome::Success | Outcome::Failure, Some(ramp)) => {
                    let failed = self.outcome == Outcome::Failure || self.slow;
                    let h = ramp.push(history(w), failed);
                    let change = if ramp.aborts(h) {
                        enter(w, Kind::Open, 0, Reason::RampFailed, DeadlineFrom::OpenWait { hint: self.retry_after })
                    } else {
                        with_history(h)
                    };
                    noted(change, Verdict::Noted)
                }
            },
            // Open and ForcedOpen admit nothing; Disabled counts nothing.
            Kind::Open | Kind::ForcedOpen | Kind::Disabled => {
                noted(Change::None, if current { Verdict::Noted } else { Verdict::Late })
            }
        }
    }
}

#[inline(always)]
fn probe_failed(w: Word, hint: Option<Duration>) -> Change {
    enter(w, Kind::Open, 0, Reason::ProbeFailed, DeadlineFrom::OpenWait { hint })
}

#[inline(always)]
fn noted(change: Change, decision: Verdict) -> Step<Verdict> {
    Step::Go { change, decision }
}

/// The policy tripped on an outcome of a call admitted under `admitted` (closed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Trip {
    pub(crate) admitted: Word,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) cause: TripCause,
}

impl Rule for Trip {
    type Decision = Verdict;

    #[inline]
    fn step(&self, w: Word, _: impl FnOnce() -> Seen, _: &Limits) -> Step<Verdict> {
        // Only the state the outcome was counted in can trip: another transition (or
        // another trip) that came first wins.
        if w.kind == self.admitted.kind && w.generation == self.admitted.generation {
            let open = match enter(w, Kind::Open, 0, Reason::Tripped, DeadlineFrom::OpenWait { hint: self.retry_after })
            {
                Change::Enter(e) => {
                    Change::Enter(Enter { publish: Publish { cause: Some(self.cause), ..e.publish }, ..e })
                }
                change => change,
            };
            noted(open, Verdict::Noted)
        } else {
            noted(Change::None, Verdict::Late)
        }
    }
}

/// Whether a permit dropped without a report counts as a failed call: when its thread
/// is panicking (the protected call panicked), or when it has been in flight at least
/// `cancel_after` (the cancellation rule: a caller that gave up after that long, behind
/// its own timeout, met a hung service). A permit dropped sooner counts nothing: the
/// caller changed its mind, the service said nothing.
pub(crate) const fn abandon_counts_as_failure(panicking: bool, in_flight_for: u64, cancel_after: Option<u64>) -> bool {
    panicking
        || match cancel_after {
            Some(after) => in_flight_for >= after,
            None => false,
        }
}

/// A permit dropped without a report that counts nothing (see
/// [`abandon_counts_as_failure`] for the ones that count as failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Abandon {
    pub(crate) admitted: Word,
    /// For a probe: whether it still held its slot (as in [`Record::owned`]).
    pub(crate) owned: bool,
}

impl Rule for Abandon {
    type Decision = Verdict;

    #[inline]
    fn step(&self, w: Word, _: impl FnOnce() -> Seen, _: &Limits) -> Step<Verdict> {
        let current = w.generation == self.admitted.generation && self.owned;
        match self.admitted.kind {
            // A probe that will never report frees its slot, counting nothing.
            Kind::HalfOpen if current && w.in_flight > 0 => {
                noted(Change::Probes { in_flight: w.in_flight - 1, successes: w.successes }, Verdict::Noted)
            }
            Kind::HalfOpen => noted(Change::None, if current { Verdict::Noted } else { Verdict::Late }),
            Kind::Closed | Kind::Open | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                noted(Change::None, if current { Verdict::Noted } else { Verdict::Late })
            }
        }
    }
}

// ===== commands =====

/// An operation on the breaker from outside its calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `reset`: closed, counters cleared, openings forgotten.
    Reset,
    /// `close`: as reset, for a coordinator.
    Close,
    /// `force_open`: every call rejected until reset.
    ForceOpen,
    /// `disable`: every call admitted, never trips, until reset.
    Disable,
    /// `open_for`: open now for exactly this wait, counted as an opening.
    OpenFor(Duration),
    /// `hold_open`: an Open breaker's deadline moves; any other opens as `OpenFor`.
    HoldOpen(Duration),
    /// `recover`: a coordinator's word that recovery began `elapsed` ago (elsewhere):
    /// recovering along the ramp from that point, or closed without a ramp or past its
    /// end.
    Recover { elapsed: Duration },
}

impl Rule for Command {
    type Decision = ();

    #[inline]
    fn step(&self, w: Word, _: impl FnOnce() -> Seen, limits: &Limits) -> Step<()> {
        let change = match *self {
            Self::Reset => enter(w, Kind::Closed, 0, Reason::Reset, DeadlineFrom::TagOnly),
            Self::Close => enter(w, Kind::Closed, 0, Reason::External, DeadlineFrom::TagOnly),
            Self::ForceOpen => enter(w, Kind::ForcedOpen, 0, Reason::ForcedOpen, DeadlineFrom::TagOnly),
            Self::Disable => enter(w, Kind::Disabled, 0, Reason::Disabled, DeadlineFrom::TagOnly),
            Self::OpenFor(wait) => open_for(w, wait),
            Self::Recover { elapsed } => match limits.ramp {
                Some(ramp) if crate::clock::nanos(elapsed) < ramp.duration => {
                    let ramp = DeadlineFrom::RampEnd { elapsed };
                    enter(w, Kind::Recovering, History::EMPTY.0, Reason::External, ramp)
                }
                Some(_) | None => enter(w, Kind::Closed, 0, Reason::External, DeadlineFrom::TagOnly),
            },
            Self::HoldOpen(wait) => match w.kind {
                Kind::Open => Change::MoveDeadline(wait),
                Kind::Closed | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                    open_for(w, wait)
                }
            },
        };
        Step::Go { change, decision: () }
    }
}

#[inline(always)]
fn open_for(w: Word, wait: Duration) -> Change {
    enter(w, Kind::Open, 0, Reason::External, DeadlineFrom::Explicit(wait))
}

// ===== the one way to a new generation =====

/// A new generation of `kind` with `in_flight` probes admitted (the caller, when it is
/// the first probe), and what to publish.
///
/// - Consecutive openings: an opening adds one (saturating), a close forgets them, any
///   other state keeps them (so a forced-open breaker that is reset starts afresh, and
///   one that was disabled while backing off keeps its count).
/// - Every entry into Open is an opening.
/// - A change of kind is announced; so is a new round of probes, and an explicit
///   opening of a breaker that was already open (a coordinator's decision is news).
#[inline(always)]
fn enter(w: Word, kind: Kind, in_flight: u32, reason: Reason, deadline: DeadlineFrom) -> Change {
    let opens = match kind {
        Kind::Open => (w.opens + 1).min(MAX_OPENS),
        Kind::Closed => 0,
        Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => w.opens,
    };
    let announce =
        w.kind != kind || reason == Reason::ProbeLeaseExpired || (reason == Reason::External && kind == Kind::Open);
    let publish = Publish { reason, deadline, counts_opening: kind == Kind::Open, announce, cause: None };
    Change::Enter(Enter { next: Word { in_flight, opens, ..w.next(kind) }, publish })
}

#[cfg(test)]
mod tests;
