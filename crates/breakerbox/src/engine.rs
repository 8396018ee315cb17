//! The engine: the atomics that hold a breaker's state, and the one loop that applies
//! the rules of [`transition`](crate::state::transition) to them.
//!
//! - [`Engine::apply`] is the only compare-and-swap of the state word: load, step,
//!   swap, retry on contention. The rules decide; the loop only publishes.
//! - [`Engine::publish`] is the only place that stores deadlines, counts openings and
//!   emits transition events, and it runs for every transition the loop swaps in: a
//!   transition cannot leave its deadline tag behind.
//! - Two paths skip the loop because they change nothing and run on every call: a
//!   closed (or disabled) breaker admits with one load ([`Word::admits_in`]), and
//!   a success while closed on a streak-only policy only counts (see `complete`).
//!
//! The memory orderings are explained where each atomic is touched, and in
//! `docs/ARCHITECTURE.md`.

use std::time::Duration;

use crate::backoff::splitmix64;

use crate::clock::coarse::AgeClock;
use crate::clock::{AnyClock, nanos};
use crate::event::{Listeners, Recorded, Transition};
use crate::family::valve::Seat;
use crate::policy::in_flight::InFlight;
use crate::policy::tracker::Tracker;
use crate::ramp::RampRule;
use crate::state::kind::Kind;
use crate::state::packed::{self, Deadline, Word};
use crate::state::transition::{
    Abandon, Acquire, Admission, Change, Command, DeadlineFrom, Limits, Publish, Record, Rejection, Rule, Seen, Step,
    Trip, Verdict, abandon_counts_as_failure, history, observed,
};
use crate::stats::{Metrics, Stats, WindowCounts};
use crate::sync::{AtomicU64, CachePadded, Ordering};
use crate::telemetry::Telemetry;
use crate::throttle::throttler::Throttler;
use crate::{Name, OpenWait, Outcome, Policy, Ramp, Reason, Rejected, Report, State, Throttle, TripCause};

/// One breaker's state, counters and settings, shared by its handles and permits.
pub(crate) struct Engine {
    /// The state word (see `state/packed.rs`), alone on its cache line: it is read by
    /// every call and written only by transitions.
    word: CachePadded<AtomicU64>,
    /// The end of the open wait (Open) or of the probe lease (HalfOpen), tagged.
    deadline: AtomicU64,
    /// When the current state began, on the breaker's clock.
    since: AtomicU64,
    /// The clock's reading when the breaker was built: deadlines are stored relative to it.
    base: u64,
    /// Openings since the breaker was built.
    opens: AtomicU64,
    /// The consecutive failures that last tripped the breaker, until it closes (for
    /// `Metrics::consecutive_failures` while open).
    trip_streak: AtomicU64,
    /// One slot per half-open probe: `FREE`, or the stamp of the probe that holds it
    /// (its generation's tag and the end of its lease, packed as a deadline word).
    probe_slots: Box<[AtomicU64]>,
    /// A counter for jitter.
    random: AtomicU64,
    /// The recovery ramp's accumulator (see `ramp.rs`): `tag:24 | acc:40`, the
    /// generation's tag as in a deadline word, and the fraction of a call owed, in
    /// 2⁻³²ths. A word of an older generation reads as zero.
    ramp_acc: AtomicU64,
    tracker: Tracker,
    stats: Stats,
    pub(crate) name: Name,
    limits: Limits,
    probe_lease: u64,
    /// The cancellation rule: a permit dropped unreported after this long (nanoseconds
    /// of `age_clock`) counts as a failure.
    cancel_after: Option<u64>,
    /// What stamps admissions: the breaker's own clock when the policy times calls, or
    /// when it is cheap to read; else the shared ages clock.
    age_clock: AgeClock,
    /// Whether admissions are stamped at all (a policy that times calls, or the
    /// cancellation rule).
    stamps_start: bool,
    open_wait: OpenWait,
    retry_after_limit: Duration,
    pub(crate) clock: AnyClock,
    listeners: Listeners,
    telemetry: Telemetry,
    /// A success while closed needs only the counter and the streak: no clock, no
    /// window, no outcome listener, no throttle.
    fast_success: bool,
    /// Adaptive throttling, if set: consulted by every closed admission.
    throttle: Option<Box<Throttler>>,
    /// The kinds this breaker admits in with one load and one bit test:
    /// [`Kind::ADMIT_FREELY`], less Closed when it throttles (its closed admissions then
    /// take the rules' path, and the throttle's). A field rather than a test of
    /// `throttle` on the call path: the closed path stays one load and one bit test.
    admit_freely: u64,
    /// The throttle's clock: the shared 5 ms tick on a monotonic clock (its buckets are
    /// far wider), the breaker's own clock otherwise.
    throttle_clock: AgeClock,
    /// What a refusal must do beyond counting, read only on the way to a rejection:
    /// `SHADOW` (shadow mode: the state machine runs, but a call it would reject is
    /// admitted and counted in `would_reject`) and `NOTIFY` (rejection listeners or
    /// telemetry hear of it). Zero, the common case, is one load and one branch.
    refusal: AtomicU64,
    /// This breaker's place in its family's panic valve, if the family has one.
    seat: Option<Seat>,
    /// Closed admissions by age, when calls in flight past `hung_after` count as
    /// failures (on the age clock, as the admission stamps are).
    in_flight: Option<Box<InFlight>>,
    /// When the breaker last closed, on the age clock: hung calls admitted before it
    /// belong to an older generation.
    closed_since_age: AtomicU64,
}

/// A breaker's settings, checked by the builder.
pub(crate) struct Settings<'a> {
    pub(crate) name: Name,
    pub(crate) policy: &'a Policy,
    pub(crate) open_wait: OpenWait,
    pub(crate) probes: u32,
    pub(crate) probe_lease: Duration,
    pub(crate) cancel_after: Option<Duration>,
    pub(crate) retry_after_limit: Duration,
    pub(crate) clock: AnyClock,
    pub(crate) listeners: Listeners,
    pub(crate) throttle: Option<&'a Throttle>,
    pub(crate) ramp: Option<&'a Ramp>,
    pub(crate) shadow: bool,
    pub(crate) seat: Option<Seat>,
    pub(crate) hung_after: Option<Duration>,
}

/// What an admission hands to its permit, in two words (returned in registers on the
/// call path): the state word it was admitted under (its kind and generation are what
/// matter; a probe's carries its slot in the `in_flight` field, which means nothing else
/// to a permit), and the start if admissions are stamped. A probe's start is always the
/// breaker's own clock at admission, from which its slot stamp is computed again when
/// it reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    pub(crate) word: u64,
    start: u64,
}

/// `Engine::refusal`: shadow mode is on.
const SHADOW: u64 = 1;
/// `Engine::refusal`: someone hears of rejections.
const NOTIFY: u64 = 2;

/// A rejection, packed as a [`Rejected`] carries it.
#[inline(always)]
fn pack(r: Rejection) -> u64 {
    Rejected::pack(r.kind, r.retry_after)
}

/// The accumulator's bits of the ramp's word (below its tag).
const RAMP_ACC_MASK: u64 = (1 << 40) - 1;

/// A probe slot no probe holds.
const FREE: u64 = u64::MAX;

/// The slot index of a probe whose generation ended before it got a slot (no slot has
/// it, so its report is late).
const NO_SLOT: usize = packed::MAX_PROBES as usize;

impl Ticket {
    /// The state the call was admitted in.
    pub(crate) fn admitted_in(self) -> State {
        Word::kind_of(self.word).state()
    }
}

impl Engine {
    pub(crate) fn new(s: Settings<'_>) -> Self {
        let base = s.clock.now();
        let tracker = Tracker::new(s.policy);
        let refusal = if s.shadow { SHADOW } else { 0 }
            | if Telemetry::ENABLED || !s.listeners.rejection.is_empty() { NOTIFY } else { 0 };
        let fast_success = !tracker.needs_time
            && tracker.streak_only()
            && s.listeners.outcome.is_empty()
            && s.throttle.is_none()
            && s.hung_after.is_none();
        let throttle_clock =
            if s.throttle.is_some() && s.clock.is_monotonic() { AgeClock::shared() } else { AgeClock::Own };
        let age_clock =
            if tracker.needs_time || (s.cancel_after.is_none() && s.hung_after.is_none()) || !s.clock.is_monotonic() {
                AgeClock::Own
            } else {
                AgeClock::shared()
            };
        let stamps_start = tracker.needs_time || s.cancel_after.is_some() || s.hung_after.is_some();
        Self {
            word: CachePadded(AtomicU64::new(Word::INITIAL)),
            deadline: AtomicU64::new(0),
            since: AtomicU64::new(base),
            base,
            opens: AtomicU64::new(0),
            trip_streak: AtomicU64::new(0),
            probe_slots: (0..s.probes).map(|_| AtomicU64::new(FREE)).collect(),
            random: AtomicU64::new(0),
            ramp_acc: AtomicU64::new(0),
            tracker,
            stats: Stats::new(),
            telemetry: Telemetry::new(&s.name),
            name: s.name,
            limits: Limits { probes: s.probes, ramp: s.ramp.map(Ramp::rule) },
            probe_lease: nanos(s.probe_lease),
            cancel_after: s.cancel_after.map(nanos),
            age_clock,
            stamps_start,
            open_wait: s.open_wait,
            retry_after_limit: s.retry_after_limit,
            clock: s.clock,
            listeners: s.listeners,
            fast_success,
            throttle: s.throttle.map(|t| Box::new(Throttler::new(t))),
            admit_freely: if s.throttle.is_some() || s.hung_after.is_some() {
                Kind::ADMIT_FREELY & !(1 << Kind::Closed.bits())
            } else {
                Kind::ADMIT_FREELY
            },
            throttle_clock,
            refusal: AtomicU64::new(refusal),
            seat: s.seat,
            in_flight: s.hung_after.map(|d| Box::new(InFlight::new(nanos(d)))),
            closed_since_age: AtomicU64::new(0),
        }
    }

    /// Seeds the jitter. Breakers built together must not share it (every key of a
    /// family opens at once when a shared dependency fails): the builder seeds from a
    /// process-wide sequence and the engine's address.
    pub(crate) fn seed(&self, seed: u64) {
        self.random.store(splitmix64(seed ^ self.base), Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    pub(crate) fn probes(&self) -> u32 {
        self.limits.probes
    }

    // ===== the loop =====

    /// Applies `rule` from the word `cur` until the swap it asks for wins; returns the
    /// decision and the word it was made on (after the change). `now` is the clock if
    /// the caller has read it; the rules read it, through `seen`, at most once more.
    #[inline(always)]
    fn apply<R: Rule>(&self, mut cur: u64, rule: &R, now: &mut Option<u64>) -> (R::Decision, u64) {
        loop {
            let w = Word::unpack(cur);
            let seen = || {
                let now = *now.get_or_insert_with(|| self.now());
                // Only a half-open word has probe leases to look at.
                let earliest_lease = if w.kind == Kind::HalfOpen { self.earliest_lease(w.generation) } else { None };
                Seen { now, deadline: self.deadline(w.generation), earliest_lease }
            };
            let (change, decision) = match rule.step(w, seen, &self.limits) {
                Step::Go { change, decision } => (change, decision),
                Step::Reload { otherwise } => match self.reload(cur) {
                    Some(actual) => {
                        cur = actual;
                        continue;
                    }
                    None => return (otherwise, cur),
                },
            };
            let next = match change {
                Change::None => return (decision, cur),
                Change::Probes { in_flight, successes } => Word { in_flight, successes, ..w },
                Change::Enter(enter) => enter.next(),
                Change::MoveDeadline(wait) => {
                    if !self.move_deadline(w.generation, wait) {
                        self.apply(cur, &Command::OpenFor(wait), now);
                    }
                    return (decision, cur);
                }
            };
            match self.cas(cur, next) {
                Ok(()) => {
                    if let Change::Enter(enter) = change {
                        self.publish(w, enter.next(), enter.publish(), *now);
                    }
                    return (decision, next.pack());
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Publishes `next` if the word is still `cur`.
    #[inline]
    fn cas(&self, cur: u64, next: Word) -> Result<(), u64> {
        // AcqRel on success: Release publishes the transition to every later Acquire
        // load; Acquire makes this thread see what the previous transition published.
        // Acquire on failure: the value we retry with is read as a load would.
        self.word.compare_exchange(cur, next.pack(), Ordering::AcqRel, Ordering::Acquire).map(|_| ())
    }

    /// The state word, if it has moved on from `cur`. A deadline that looks newer than an
    /// unchanged word was stored by a writer preempted for millions of transitions; it
    /// is read as not yet stored, never as a reason to spin.
    fn reload(&self, cur: u64) -> Option<u64> {
        let actual = self.word.load(Ordering::Acquire);
        (actual != cur).then_some(actual)
    }

    // ===== publishing =====

    /// Everything that follows a transition the loop swapped in: its deadline (or only
    /// its tag), the opening, the clock of the state, and the event. Runs after the
    /// swap, outside any loop.
    #[inline(never)]
    fn publish(&self, prev: Word, next: Word, publish: Publish, now: Option<u64>) {
        let now = now.unwrap_or_else(|| self.now());
        let (deadline, open_for) = match publish.deadline {
            DeadlineFrom::OpenWait { hint } => {
                let wait = self.open_wait(next.opens, hint);
                (now.saturating_add(nanos(wait)), Some(wait))
            }
            DeadlineFrom::Explicit(wait) => (now.saturating_add(nanos(wait)), Some(wait)),
            // No time to keep, but the tag must follow the generation (see packed.rs).
            DeadlineFrom::TagOnly => (now, None),
            DeadlineFrom::RampEnd { elapsed } => {
                let duration = self.limits.ramp.map_or(0, |r| r.duration);
                (now.saturating_add(duration.saturating_sub(nanos(elapsed))), None)
            }
        };
        self.store_deadline(next.generation, deadline);
        if let Some(seat) = &self.seat {
            seat.publish(next.generation, matches!(next.kind, Kind::Open | Kind::ForcedOpen));
        }
        if self.in_flight.is_some() && next.kind == Kind::Closed {
            self.closed_since_age.fetch_max(self.age_now(), Ordering::Relaxed);
        }
        if next.kind == Kind::HalfOpen && next.generation != prev.generation {
            self.clear_stale_probes(next.generation);
        }
        if publish.counts_opening {
            self.opens.fetch_add(1, Ordering::Relaxed);
        }
        if publish.reason == Reason::Tripped {
            let streak = self.tracker.consecutive_failures(prev.generation);
            self.trip_streak.store(u64::from(streak), Ordering::Relaxed);
        } else if next.kind == Kind::Closed {
            self.trip_streak.store(0, Ordering::Relaxed);
        }
        // fetch_max: if two transitions race to stamp, the later time wins.
        self.since.fetch_max(now, Ordering::Relaxed);
        if publish.announce && (Telemetry::ENABLED || !self.listeners.transition.is_empty()) {
            let t = Transition {
                breaker: self.name.as_str(),
                from: prev.kind.state(),
                to: next.kind.state(),
                reason: publish.reason,
                open_for,
                consecutive_opens: next.opens,
                at: Duration::from_nanos(now),
                tripped_by: publish.cause,
            };
            self.telemetry.transition(&t);
            self.listeners.transition(&t);
        }
    }

    fn open_wait(&self, opens: u32, hint: Option<Duration>) -> Duration {
        const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let random = splitmix64(self.random.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed));
        let wait = self.open_wait.wait(opens, random);
        match hint {
            Some(h) => wait.max(h.min(self.retry_after_limit)),
            None => wait,
        }
    }

    /// Stores the deadline of `generation`, unless a newer generation already stored one
    /// (this thread may have been preempted after its transition).
    fn store_deadline(&self, generation: u64, deadline: u64) {
        let new = packed::pack_deadline(generation, deadline, self.base);
        let mut cur = self.deadline.load(Ordering::Relaxed);
        while packed::deadline_is_older(cur, generation) {
            // Release pairs with the Acquire loads in `deadline`.
            match self.deadline.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Moves the deadline of the Open `generation` to `wait` from now; false if that
    /// generation's deadline is not stored (yet, or any more).
    fn move_deadline(&self, generation: u64, wait: Duration) -> bool {
        let new = packed::pack_deadline(generation, self.now().saturating_add(nanos(wait)), self.base);
        let mut raw = self.deadline.load(Ordering::Acquire);
        loop {
            match packed::read_deadline(raw, generation, self.base) {
                // Same generation: replace (a CAS, so a transition that stores a newer
                // tag meanwhile wins).
                Deadline::At(_) => {
                    match self.deadline.compare_exchange_weak(raw, new, Ordering::Release, Ordering::Acquire) {
                        Ok(_) => break,
                        Err(actual) => raw = actual,
                    }
                }
                // Not stored yet, or already superseded: treat as not open.
                Deadline::Pending | Deadline::Stale => return false,
            }
        }
        // The breaker may have left Open(generation) between the load and the store;
        // the tag keeps the moved deadline from applying to any other generation.
        Word::generation_of(self.word.load(Ordering::Acquire)) == generation
    }

    /// The deadline word, read for `generation`.
    #[inline]
    fn deadline(&self, generation: u64) -> Deadline {
        // Acquire pairs with the Release in store_deadline: a thread that reads a newer
        // generation's deadline (Stale) and reloads the state word sees that generation.
        packed::read_deadline(self.deadline.load(Ordering::Acquire), generation, self.base)
    }

    // ===== probe slots =====

    /// The stamp of a probe of `generation` admitted at `now`: its tag and the end of
    /// its lease, never `FREE`.
    fn stamp(&self, generation: u64, now: u64) -> u64 {
        packed::pack_deadline(generation, now.saturating_add(self.probe_lease), self.base).min(FREE - 1)
    }

    /// Frees the slots still stamped by older generations (their probes' reports are
    /// late anyway), so that tags never stay long enough to alias. Runs when a new
    /// half-open generation is published. Only *older* stamps go: this thread may publish
    /// late, after newer generations' probes have taken slots (the stress test
    /// `probe_slots_under_takeover_drops_and_reopenings` found that clearing everything
    /// not of this generation leaked their places in the count).
    fn clear_stale_probes(&self, generation: u64) {
        for slot in self.probe_slots.iter() {
            let cur = slot.load(Ordering::Acquire);
            if cur != FREE && packed::deadline_is_older(cur, generation) {
                let _ = slot.compare_exchange(cur, FREE, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    /// The earliest lease end among the probes of `generation`. Out of line: only a full
    /// half-open breaker asks, and the open path's reading of the time stays small.
    #[inline(never)]
    fn earliest_lease(&self, generation: u64) -> Option<u64> {
        self.probe_slots
            .iter()
            .map(|slot| slot.load(Ordering::Acquire))
            .filter(|raw| *raw != FREE)
            .filter_map(|raw| packed::deadline_for(raw, generation, self.base))
            .min()
    }

    /// Gives an admitted probe of `generation` a slot: a free one, or one stamped by an
    /// older generation (never a newer one's: this thread may be late). While the
    /// generation is current one is always there: the word admitted this probe only
    /// with a slot to spare (probes in flight never outnumber the slots, and a probe
    /// frees its slot before it leaves the count). A probe whose generation has ended
    /// meanwhile gets `NO_SLOT`: it is late, whatever it reports.
    fn claim_probe(&self, generation: u64, now: u64) -> usize {
        let stamp = self.stamp(generation, now);
        loop {
            for (i, slot) in self.probe_slots.iter().enumerate() {
                let cur = slot.load(Ordering::Acquire);
                // AcqRel: the slot passes from a finished probe to this one.
                if (cur == FREE || packed::deadline_is_older(cur, generation))
                    && slot.compare_exchange(cur, stamp, Ordering::AcqRel, Ordering::Relaxed).is_ok()
                {
                    return i;
                }
            }
            if Word::generation_of(self.word.load(Ordering::Acquire)) != generation {
                return NO_SLOT;
            }
            // Another probe admitted at the same time took the slot we saw; ours is
            // about to come free.
            crate::sync::spin_loop();
        }
    }

    /// Takes the slot of the probe of `generation` whose lease ended first (the lowest
    /// slot on a tie), if it is still there: it may have reported, or another call may
    /// have taken it, since it was seen (then `None`, and the caller looks again).
    ///
    /// Stamps are unique per slot and generation: a slot is taken over only once its
    /// stamp's lease has ended, so the new stamp (from a later clock reading) differs.
    fn take_over_probe(&self, generation: u64, now: u64) -> Option<usize> {
        let (i, raw) = self
            .probe_slots
            .iter()
            .map(|slot| slot.load(Ordering::Acquire))
            .enumerate()
            .filter(|(_, raw)| *raw != FREE)
            .filter_map(|(i, raw)| packed::deadline_for(raw, generation, self.base).map(|lease| (i, raw, lease)))
            .filter(|(_, _, lease)| now >= *lease)
            .min_by_key(|(i, _, lease)| (*lease, *i))
            .map(|(i, raw, _)| (i, raw))?;
        let stamp = self.stamp(generation, now);
        self.probe_slots[i].compare_exchange(raw, stamp, Ordering::AcqRel, Ordering::Relaxed).ok().map(|_| i)
    }

    /// Frees a probe's slot if it still holds it; false if it lost it (to a call that
    /// took it over after its lease), which makes its report late.
    fn release_probe(&self, ticket: Ticket) -> bool {
        let w = Word::unpack(ticket.word);
        let stamp = self.stamp(w.generation, ticket.start);
        self.probe_slots
            .get(w.in_flight as usize)
            .is_some_and(|s| s.compare_exchange(stamp, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok())
    }

    // ===== admission =====

    /// Admits a call, or returns its rejection packed in one word (see
    /// [`Rejected`]): the slow path's result fits in two registers, and the
    /// `Rejected` is built in the caller's own frame.
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Ticket, u64> {
        // Acquire: pairs with the AcqRel CAS of the transition that published this
        // word, and keeps the deadline load of the slow path after this load.
        let cur = self.word.load(Ordering::Acquire);
        // Closed and Disabled admit without condition (Closed only without a throttle):
        // one load, one bit test.
        if Word::admits_in(cur, self.admit_freely) {
            return Ok(Ticket { word: cur, start: self.start() });
        }
        self.acquire_slow(cur)
    }

    /// A closed admission on a breaker that throttles or counts hung calls (the others
    /// admit on the call path): the throttle admits the call (and counts its request)
    /// or keeps it off the backend; an admitted call enters the in-flight count, and
    /// the calls that have hung since are counted as failures.
    #[inline(never)]
    fn admit_closed(&self, word: u64) -> Result<Ticket, u64> {
        if let Some(throttle) = &self.throttle
            && let Err(p) = throttle.admit(self.throttle_clock.now(&self.clock))
        {
            return self.refuse(Rejected::pack_throttled(p, throttle.bucket_nanos()), word);
        }
        let start = self.start();
        if let Some(in_flight) = &self.in_flight {
            // Only this closed generation's calls: those of the epoch it began in and
            // later (an older call of that epoch may count with them). The sweep comes
            // before the admission: it sweeps every due epoch, so the admission never
            // finds its slot held by an unswept older epoch (whose calls it would carry
            // without their epoch). The new call cannot be due yet anyway.
            let since = self.closed_since_age.load(Ordering::Relaxed) / in_flight.bucket_nanos();
            let hung = in_flight.sweep_since(start, since);
            in_flight.admit(start);
            if hung > 0 {
                self.count_hung(word, hung);
            }
        }
        Ok(Ticket { word, start })
    }

    /// `hung` calls of the closed `word` are in flight past `hung_after`: each counts as
    /// a failure now, and may trip the breaker.
    #[cold]
    fn count_hung(&self, word: u64, hung: u64) {
        let admitted = Word::unpack(word);
        let generation = admitted.generation;
        let still_current = || Word::generation_of(self.word.load(Ordering::Acquire)) == generation;
        let mut clock = self.tracker.needs_time.then(|| self.now());
        for _ in 0..hung {
            if self.tracker.record(generation, true, None, clock.unwrap_or(0), still_current).is_some() {
                let trip = Trip { admitted, retry_after: None, cause: TripCause::HungCalls };
                self.trip(trip, &mut clock);
                return;
            }
        }
    }

    /// Applies a trip the policy decided, unless a family's panic valve holds it back.
    fn trip(&self, trip: Trip, now: &mut Option<u64>) {
        let mut apply = || {
            self.apply(self.word.load(Ordering::Acquire), &trip, now);
        };
        match &self.seat {
            Some(seat) => {
                seat.valve().try_trip(self.name.as_str(), apply);
            }
            None => apply(),
        }
    }

    /// Whether the closed call of `ticket` was already counted as a hung call (then its
    /// own outcome must not count again); takes it out of the in-flight count.
    fn leaves_flight(&self, ticket: Ticket) -> bool {
        match &self.in_flight {
            Some(in_flight) if Word::kind_of(ticket.word) == Kind::Closed => {
                !in_flight.complete(ticket.start / in_flight.bucket_nanos())
            }
            Some(_) | None => false,
        }
    }

    /// Accounts for the throttle how a call admitted under `word` ended: answered
    /// (`Some(overload)`) or never (`None`). Only closed admissions are its requests.
    fn throttle_outcome(&self, word: u64, answered: Option<bool>) {
        if let Some(throttle) = &self.throttle
            && Word::kind_of(word) == Kind::Closed
        {
            // An overload changes nothing: no clock read for it.
            match answered {
                Some(false) => throttle.accept(self.throttle_clock.now(&self.clock)),
                Some(true) => {}
                None => throttle.refund(self.throttle_clock.now(&self.clock)),
            }
        }
    }

    /// The admission's stamp, if admissions are stamped.
    #[inline(always)]
    fn start(&self) -> u64 {
        if self.stamps_start { self.age_now() } else { 0 }
    }

    /// The clock permit ages are measured on.
    #[inline(always)]
    fn age_now(&self) -> u64 {
        self.age_clock.now(&self.clock)
    }

    fn acquire_slow(&self, cur: u64) -> Result<Ticket, u64> {
        let mut now = None;
        match self.apply(cur, &Acquire, &mut now) {
            (Admission::Admit, word) if Word::kind_of(word) == Kind::Closed => self.admit_closed(word),
            (Admission::Admit, word) => Ok(Ticket { word, start: self.start() }),
            (Admission::Reject(r), word) => self.refuse(pack(r), word),
            (Admission::Ramp { fraction }, word) => self.ramp_admit(word, fraction),
            (admission @ (Admission::Probe | Admission::TakeOver(_)), word) => self.admit_probe(admission, word, now),
        }
    }

    /// Gives an admitted probe its slot (a free one, or one taken over from a probe
    /// silent past its lease). Out of line: it keeps the open path's frame small.
    #[inline(never)]
    fn admit_probe(&self, mut admission: Admission, mut word: u64, mut now: Option<u64>) -> Result<Ticket, u64> {
        loop {
            let t = *now.get_or_insert_with(|| self.now());
            let slot = match admission {
                Admission::Probe => self.claim_probe(Word::generation_of(word), t),
                Admission::TakeOver(publish) => match self.take_over_probe(Word::generation_of(word), t) {
                    Some(taken) => {
                        let w = Word::unpack(word);
                        self.publish(w, w, publish, now);
                        taken
                    }
                    // The silent probe reported or was taken over meanwhile: look again.
                    None => {
                        (admission, word) = self.apply(self.word.load(Ordering::Acquire), &Acquire, &mut now);
                        continue;
                    }
                },
                Admission::Admit => return Ok(Ticket { word, start: self.start() }),
                Admission::Ramp { fraction } => return self.ramp_admit(word, fraction),
                Admission::Reject(r) => return self.refuse(pack(r), word),
            };
            // The probe's slot rides in the ticket's `in_flight` field; its start is the
            // clock its stamp was made from.
            let word = Word { in_flight: slot as u32, ..Word::unpack(word) }.pack();
            return Ok(Ticket { word, start: t });
        }
    }

    /// A call while recovering, when the ramp admits `fraction` of a call: one step of
    /// the accumulator (a CAS, so racing calls admit exactly the sum of their
    /// fractions). The state word is not touched: a call admitted just as the ramp
    /// ends or aborts is admitted under its generation, and its outcome is late.
    fn ramp_admit(&self, word: u64, fraction: u64) -> Result<Ticket, u64> {
        let generation = Word::generation_of(word);
        let tag = packed::pack_deadline(generation, 0, 0);
        // Relaxed: the accumulator publishes nothing; its CAS alone makes it exact.
        let mut cur = self.ramp_acc.load(Ordering::Relaxed);
        loop {
            let acc = if cur & !RAMP_ACC_MASK == tag {
                cur & RAMP_ACC_MASK
            } else if packed::deadline_is_older(cur, generation) {
                0 // the first call of this ramp
            } else {
                // A newer ramp has begun: this call's word is stale.
                return self.refuse(Rejected::pack(Kind::Recovering, None), word);
            };
            let (next, admitted) = RampRule::admit(acc, fraction);
            match self.ramp_acc.compare_exchange_weak(cur, tag | next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) if admitted => return Ok(Ticket { word, start: self.start() }),
                Ok(_) => return self.refuse(Rejected::pack(Kind::Recovering, None), word),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Refuses a call (the rejection `packed`, decided on the word `word`): counts the
    /// rejection and tells whoever listens; or, in shadow mode, admits it instead,
    /// counted as a call it would have rejected. A shadow-admitted call's permit
    /// carries the word as Open: its outcome counts in the totals, never in the state
    /// machine, which runs as if the call had been refused.
    #[inline(always)]
    fn refuse(&self, packed: u64, word: u64) -> Result<Ticket, u64> {
        // One load decides the common case, an enforcing breaker nobody listens to.
        // Relaxed: shadow mode is a switch, not a publication; a call that reads the old
        // value is as good as one that came a moment earlier.
        match self.refusal.load(Ordering::Relaxed) {
            0 => {
                self.stats.rejected();
                Err(packed)
            }
            flags => self.refuse_noted(flags, packed, word),
        }
    }

    /// A refusal in shadow mode, or one that someone hears of.
    #[cold]
    #[inline(never)]
    fn refuse_noted(&self, flags: u64, packed: u64, word: u64) -> Result<Ticket, u64> {
        if flags & SHADOW != 0 {
            return Ok(self.shadow_admit(packed, word));
        }
        self.stats.rejected();
        let rejected = self.rejected(packed);
        self.telemetry.rejected(&rejected);
        self.listeners.rejection(&rejected);
        Err(packed)
    }

    #[cold]
    #[inline(never)]
    fn shadow_admit(&self, packed: u64, word: u64) -> Ticket {
        self.stats.would_reject();
        self.telemetry.would_reject(&self.rejected(packed));
        let w = Word::unpack(word);
        Ticket { word: Word { kind: Kind::Open, in_flight: 0, successes: 0, ..w }.pack(), start: self.start() }
    }

    /// This breaker left its family: its panic valve no longer counts it.
    pub(crate) fn leave_family(&self) {
        if let Some(seat) = &self.seat {
            seat.leave();
        }
    }

    /// Switches shadow mode on or off.
    pub(crate) fn set_shadow(&self, on: bool) {
        if on {
            self.refusal.fetch_or(SHADOW, Ordering::Relaxed);
        } else {
            self.refusal.fetch_and(!SHADOW, Ordering::Relaxed);
        }
    }

    pub(crate) fn is_shadow(&self) -> bool {
        self.refusal.load(Ordering::Relaxed) & SHADOW != 0
    }

    #[inline(always)]
    pub(crate) fn rejected(&self, packed: u64) -> Rejected {
        Rejected::from_packed(self.name.clone(), packed)
    }

    // ===== outcomes =====

    /// Records the outcome of a permit. The hot case, a success while closed on a policy
    /// that needs no time and with no outcome listener, is inlined into the caller:
    /// count it, and clear the streak if there is one (a load when there is none). It
    /// is what the rules say of a current closed success (count it in the policy), with
    /// no loop because it changes nothing.
    #[inline(always)]
    pub(crate) fn complete(&self, ticket: Ticket, report: Report) {
        if self.fast_success
            && report.outcome == Outcome::Success
            && report.duration.is_none()
            && Word::kind_of(ticket.word) == Kind::Closed
        {
            self.stats.outcome(Outcome::Success, false);
            self.telemetry.outcome(Outcome::Success, false);
            let generation = Word::generation_of(ticket.word);
            if Word::generation_of(self.word.load(Ordering::Acquire)) == generation {
                self.tracker.success_on_streak(generation);
            }
            return;
        }
        self.complete_slow(ticket, report);
    }

    fn complete_slow(&self, ticket: Ticket, report: Report) {
        // A policy that needs time reads the clock once per outcome: to time the call
        // (unless the caller did) and to place it in a time window.
        let now = self.tracker.needs_time.then(|| self.now());
        let duration = match (report.duration, now) {
            (Some(d), _) => Some(nanos(d)),
            (None, Some(t)) => Some(t.saturating_sub(ticket.start)),
            (None, None) => None,
        };
        // An ignored outcome says nothing about the service: not even that it was slow.
        let slow = report.outcome != Outcome::Ignored
            && matches!((self.tracker.slow_nanos, duration), (Some(t), Some(d)) if d >= t);
        self.stats.outcome(report.outcome, slow);
        self.telemetry.outcome(report.outcome, slow);
        self.throttle_outcome(ticket.word, Some(report.overload));
        let counted_as_hung = self.leaves_flight(ticket);
        let admitted = Word::unpack(ticket.word);
        let owned = admitted.kind != Kind::HalfOpen || self.release_probe(ticket);
        let record = Record { admitted, outcome: report.outcome, slow, retry_after: report.retry_after, owned };
        let mut now = now;
        let (verdict, _) = self.apply(self.word.load(Ordering::Acquire), &record, &mut now);
        let current = match verdict {
            // A hung call was counted as a failure when it hung: its outcome is not
            // counted again.
            Verdict::Count { .. } if counted_as_hung => true,
            Verdict::Count { failed } => {
                let generation = admitted.generation;
                let still_current = || Word::generation_of(self.word.load(Ordering::Acquire)) == generation;
                if let Some(cause) = self.tracker.record(generation, failed, duration, now.unwrap_or(0), still_current)
                {
                    self.trip(Trip { admitted, retry_after: report.retry_after, cause }, &mut now);
                }
                true
            }
            Verdict::Noted => true,
            Verdict::Late => false,
        };
        if !self.listeners.outcome.is_empty() {
            self.listeners.outcome(&Recorded {
                breaker: self.name.as_str(),
                outcome: report.outcome,
                duration: duration.map(Duration::from_nanos),
                slow,
                admitted_in: admitted.kind.state(),
                current,
            });
        }
    }

    /// A permit dropped without a report.
    pub(crate) fn abandon(&self, ticket: Ticket) {
        let admitted = Word::unpack(ticket.word);
        // A probe's start is on the breaker's own clock; other permits' on the age clock.
        let in_flight_for = match (self.cancel_after, admitted.kind) {
            (None, _) => 0,
            (Some(_), Kind::HalfOpen) => self.now().saturating_sub(ticket.start),
            (Some(_), Kind::Closed | Kind::Open | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering) => {
                self.age_now().saturating_sub(ticket.start)
            }
        };
        if abandon_counts_as_failure(std::thread::panicking(), in_flight_for, self.cancel_after) {
            // A caller that gave up after that long met a service that did not answer:
            // an overload, for the throttle.
            self.complete(ticket, Report::overloaded());
            return;
        }
        self.release(ticket);
    }

    /// A permit given back without a report, counting nothing: its half-open slot is
    /// freed.
    pub(crate) fn release(&self, ticket: Ticket) {
        self.throttle_outcome(ticket.word, None);
        self.leaves_flight(ticket);
        let admitted = Word::unpack(ticket.word);
        let owned = admitted.kind != Kind::HalfOpen || self.release_probe(ticket);
        self.apply(self.word.load(Ordering::Acquire), &Abandon { admitted, owned }, &mut None);
    }

    // ===== commands =====

    /// Applies a command (reset, close, force open, disable, open for, hold open).
    pub(crate) fn command(&self, command: Command) {
        self.apply(self.word.load(Ordering::Acquire), &command, &mut None);
    }

    // ===== observation =====

    /// The state word, reloaded until no newer deadline contradicts it (an observer
    /// must not report Open from a stale word after the wait has been handled).
    fn observe(&self) -> u64 {
        let mut cur = self.word.load(Ordering::Acquire);
        while Word::kind_of(cur) == Kind::Open && self.deadline(Word::generation_of(cur)) == Deadline::Stale {
            match self.reload(cur) {
                Some(actual) => cur = actual,
                None => break,
            }
        }
        cur
    }

    /// The deadline of the word `cur`, if it is Open and its wait has passed, or
    /// Recovering and its ramp has run its course.
    fn deadline_passed(&self, cur: u64, now: u64) -> Option<u64> {
        let timed = matches!(Word::kind_of(cur), Kind::Open | Kind::Recovering);
        match self.deadline(Word::generation_of(cur)) {
            Deadline::At(d) if timed && now >= d => Some(d),
            Deadline::At(_) | Deadline::Pending | Deadline::Stale => None,
        }
    }

    /// The share of calls the ramp admits now: its fraction while recovering, all of
    /// them when closed or disabled, none otherwise.
    fn recovery_fraction(&self, w: Word, now: u64) -> f64 {
        match (w.kind, self.limits.ramp) {
            (Kind::Recovering, Some(ramp)) => {
                let end = match self.deadline(w.generation) {
                    Deadline::At(end) => Some(end),
                    Deadline::Pending | Deadline::Stale => None,
                };
                RampRule::share(ramp.fraction_at(now, end))
            }
            (Kind::Closed | Kind::Disabled, _) => 1.0,
            (Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Recovering, _) => 0.0,
        }
    }

    /// The state, as an observer sees it.
    pub(crate) fn state(&self) -> State {
        let cur = self.observe();
        let kind = Word::kind_of(cur);
        // Only an Open word needs the clock.
        let passed = matches!(kind, Kind::Open | Kind::Recovering) && self.deadline_passed(cur, self.now()).is_some();
        observed(kind, passed)
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let now = self.now();
        let cur = self.observe();
        let w = Word::unpack(cur);
        let passed = self.deadline_passed(cur, now);
        // An Open breaker whose wait has passed has been half-open since its deadline.
        let since = passed.unwrap_or_else(|| self.since.load(Ordering::Relaxed));
        let [successes, failures, ignored, rejected, slow_calls, would_reject] = self.stats.totals();
        let (failure_rate, slow_call_rate) = self.tracker.rates(w.generation, now);
        Metrics {
            state: observed(w.kind, passed.is_some()),
            successes,
            failures,
            ignored,
            rejected,
            would_reject,
            slow_calls,
            failure_rate,
            slow_call_rate,
            // While not closed, the streak of the last closed generation: the one that
            // opened the breaker.
            // While not closed: the streak that tripped the breaker since it last closed.
            consecutive_failures: match w.kind {
                Kind::Closed => self.tracker.consecutive_failures(w.generation),
                // A ramp past its end reads closed: a fresh streak.
                Kind::Recovering if passed.is_some() => 0,
                Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled | Kind::Recovering => {
                    self.trip_streak.load(Ordering::Relaxed) as u32
                }
            },
            time_in_state: Duration::from_nanos(now.saturating_sub(since)),
            opens: self.opens.load(Ordering::Relaxed),
            probes_in_flight: if w.kind == Kind::HalfOpen { w.in_flight } else { 0 },
            hung_calls: self.in_flight.as_ref().map_or(0, |f| f.aged_in_flight(self.age_now())),
            window: match w.kind {
                Kind::Closed => self.tracker.window_counts(w.generation, now).map(|c| WindowCounts {
                    calls: c.calls,
                    failures: c.failures,
                    slow_calls: c.slow,
                }),
                // The ramp's own window (it counts a slow call as a failure).
                Kind::Recovering => {
                    let h = history(w);
                    Some(WindowCounts { calls: u64::from(h.len()), failures: u64::from(h.failures()), slow_calls: 0 })
                }
                Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled => None,
            },
            consecutive_successes: match w.kind {
                Kind::Closed => self.tracker.consecutive_successes(w.generation),
                Kind::HalfOpen => Some(w.successes),
                Kind::Recovering => Some(history(w).successes_streak()),
                // Opened by a failure (or by hand, which says nothing).
                Kind::Open => Some(0),
                Kind::ForcedOpen | Kind::Disabled => None,
            },
            // A ramp past its end is closed; an open breaker past its wait is half-open.
            recovery_fraction: if passed.is_some() && w.kind == Kind::Recovering {
                1.0
            } else {
                self.recovery_fraction(w, now)
            },
            reject_probability: match (&self.throttle, w.kind) {
                (Some(throttle), Kind::Closed) => throttle.probability(self.throttle_clock.now(&self.clock)),
                _ => 0.0,
            },
        }
    }
}
