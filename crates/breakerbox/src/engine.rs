//! The engine: the atomics that hold a breaker's state, and the one loop that applies
//! the rules of [`transition`](crate::state::transition) to them.
//!
//! - [`Engine::apply`] is the only compare-and-swap of the state word: load, step,
//!   swap, retry on contention. The rules decide; the loop only publishes.
//! - [`Engine::publish`] is the only place that stores deadlines, counts openings and
//!   emits transition events, and it runs for every transition the loop swaps in: a
//!   transition cannot leave its deadline tag behind.
//! - Two paths skip the loop because they change nothing and run on every call: a
//!   closed (or disabled) breaker admits with one load ([`Word::admits_freely`]), and
//!   a success while closed on a streak-only policy only counts (see `complete`).
//!
//! The memory orderings are explained where each atomic is touched, and in
//! `docs/ARCHITECTURE.md`.

use std::time::Duration;

use crate::backoff::splitmix64;
use crate::clock::{AnyClock, nanos};
use crate::event::{Listeners, Recorded, Transition};
use crate::policy::tracker::Tracker;
use crate::state::kind::Kind;
use crate::state::packed::{self, Deadline, Word};
use crate::state::transition::{
    Abandon, Acquire, Admission, Change, Command, DeadlineFrom, Enter, Limits, Record, Rejection, Rule, Seen, Step,
    Trip, Verdict, observed,
};
use crate::stats::{Metrics, Stats};
use crate::sync::{AtomicU64, CachePadded, Ordering};
use crate::telemetry::Telemetry;
use crate::{Name, OpenWait, Outcome, Policy, Reason, Rejected, Report, State};

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
    /// A counter for jitter.
    random: AtomicU64,
    tracker: Tracker,
    stats: Stats,
    pub(crate) name: Name,
    limits: Limits,
    probe_lease: u64,
    open_wait: OpenWait,
    retry_after_limit: Duration,
    pub(crate) clock: AnyClock,
    listeners: Listeners,
    telemetry: Telemetry,
    /// A success while closed needs only the counter and the streak: no clock, no
    /// window, no outcome listener.
    fast_success: bool,
}

/// A breaker's settings, checked by the builder.
pub(crate) struct Settings<'a> {
    pub(crate) name: Name,
    pub(crate) policy: &'a Policy,
    pub(crate) open_wait: OpenWait,
    pub(crate) probes: u32,
    pub(crate) probe_lease: Duration,
    pub(crate) retry_after_limit: Duration,
    pub(crate) clock: AnyClock,
    pub(crate) listeners: Listeners,
}

/// What an admission hands to its permit: the state word it was admitted under (its
/// kind and generation are what matter) and, if the policy times calls, the start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    pub(crate) word: u64,
    start: u64,
}

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
        let fast_success = !tracker.needs_time && tracker.streak_only() && s.listeners.outcome.is_empty();
        Self {
            word: CachePadded(AtomicU64::new(Word::INITIAL)),
            deadline: AtomicU64::new(0),
            since: AtomicU64::new(base),
            base,
            opens: AtomicU64::new(0),
            trip_streak: AtomicU64::new(0),
            random: AtomicU64::new(0),
            tracker,
            stats: Stats::new(),
            telemetry: Telemetry::new(&s.name),
            name: s.name,
            limits: Limits { probes: s.probes },
            probe_lease: nanos(s.probe_lease),
            open_wait: s.open_wait,
            retry_after_limit: s.retry_after_limit,
            clock: s.clock,
            listeners: s.listeners,
            fast_success,
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
    #[inline]
    fn apply<R: Rule>(&self, mut cur: u64, rule: &R, mut now: Option<u64>) -> (R::Decision, u64) {
        loop {
            let w = Word::unpack(cur);
            let seen = || Seen { now: *now.get_or_insert_with(|| self.now()), deadline: self.deadline(w.generation) };
            let (change, decision) = match rule.step(w, seen, self.limits) {
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
                        self.publish(w, enter, now);
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
    fn publish(&self, prev: Word, enter: Enter, now: Option<u64>) {
        let next = enter.next();
        let publish = enter.publish();
        let now = now.unwrap_or_else(|| self.now());
        let (deadline, open_for) = match publish.deadline {
            DeadlineFrom::OpenWait { hint } => {
                let wait = self.open_wait(next.opens, hint);
                (now.saturating_add(nanos(wait)), Some(wait))
            }
            DeadlineFrom::Explicit(wait) => (now.saturating_add(nanos(wait)), Some(wait)),
            DeadlineFrom::Lease => (now.saturating_add(self.probe_lease), None),
            // No time to keep, but the tag must follow the generation (see packed.rs).
            DeadlineFrom::TagOnly => (now, None),
        };
        self.store_deadline(next.generation, deadline);
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

    // ===== admission =====

    /// Admits a call, or returns its rejection packed in one word (see
    /// [`Rejected`]): the slow path's result fits in two registers, and the
    /// `Rejected` is built in the caller's own frame.
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Ticket, u64> {
        // Acquire: pairs with the AcqRel CAS of the transition that published this
        // word, and keeps the deadline load of the slow path after this load.
        let cur = self.word.load(Ordering::Acquire);
        // Closed and Disabled admit without condition: one load, one bit test.
        let word = if Word::admits_freely(cur) { cur } else { self.acquire_slow(cur)? };
        let start = if self.tracker.needs_time { self.now() } else { 0 };
        Ok(Ticket { word, start })
    }

    fn acquire_slow(&self, cur: u64) -> Result<u64, u64> {
        match self.apply(cur, &Acquire, None) {
            (Admission::Admit, word) => Ok(word),
            (Admission::Reject(r), _) => Err(self.reject(r)),
        }
    }

    /// Counts a rejection and tells whoever listens; returns it packed.
    #[inline(always)]
    fn reject(&self, r: Rejection) -> u64 {
        self.stats.rejected();
        let packed = Rejected::pack(r.kind, r.retry_after);
        if Telemetry::ENABLED || !self.listeners.rejection.is_empty() {
            self.notify_rejection(packed);
        }
        packed
    }

    #[cold]
    #[inline(never)]
    fn notify_rejection(&self, packed: u64) {
        let rejected = self.rejected(packed);
        self.telemetry.rejected(&rejected);
        self.listeners.rejection(&rejected);
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
        let admitted = Word::unpack(ticket.word);
        let record = Record { admitted, outcome: report.outcome, slow, retry_after: report.retry_after };
        let (verdict, _) = self.apply(self.word.load(Ordering::Acquire), &record, now);
        let current = match verdict {
            Verdict::Count { failed } => {
                let generation = admitted.generation;
                let still_current = || Word::generation_of(self.word.load(Ordering::Acquire)) == generation;
                if self.tracker.record(generation, failed, duration, now.unwrap_or(0), still_current) {
                    let trip = Trip { admitted, retry_after: report.retry_after };
                    self.apply(self.word.load(Ordering::Acquire), &trip, now);
                }
                true
            }
            Verdict::Noted | Verdict::CountAsFailure => true,
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
        let abandon = Abandon { admitted: Word::unpack(ticket.word), panicking: std::thread::panicking() };
        match self.apply(self.word.load(Ordering::Acquire), &abandon, None) {
            (Verdict::CountAsFailure, _) => self.complete(ticket, Report::failure()),
            (Verdict::Count { .. } | Verdict::Noted | Verdict::Late, _) => {}
        }
    }

    // ===== commands =====

    /// Applies a command (reset, close, force open, disable, open for, hold open).
    pub(crate) fn command(&self, command: Command) {
        self.apply(self.word.load(Ordering::Acquire), &command, None);
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

    /// The open deadline of the word `cur`, if it is Open and its wait has passed.
    fn wait_passed(&self, cur: u64, now: u64) -> Option<u64> {
        match self.deadline(Word::generation_of(cur)) {
            Deadline::At(d) if Word::kind_of(cur) == Kind::Open && now >= d => Some(d),
            Deadline::At(_) | Deadline::Pending | Deadline::Stale => None,
        }
    }

    /// The state, as an observer sees it.
    pub(crate) fn state(&self) -> State {
        let cur = self.observe();
        let kind = Word::kind_of(cur);
        // Only an Open word needs the clock.
        let passed = kind == Kind::Open && self.wait_passed(cur, self.now()).is_some();
        observed(kind, passed)
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let now = self.now();
        let cur = self.observe();
        let w = Word::unpack(cur);
        let passed = self.wait_passed(cur, now);
        // An Open breaker whose wait has passed has been half-open since its deadline.
        let since = passed.unwrap_or_else(|| self.since.load(Ordering::Relaxed));
        let [successes, failures, ignored, rejected, slow_calls] = self.stats.totals();
        let (failure_rate, slow_call_rate) = self.tracker.rates(w.generation, now);
        Metrics {
            state: observed(w.kind, passed.is_some()),
            successes,
            failures,
            ignored,
            rejected,
            slow_calls,
            failure_rate,
            slow_call_rate,
            // While not closed, the streak of the last closed generation: the one that
            // opened the breaker.
            // While not closed: the streak that tripped the breaker since it last closed.
            consecutive_failures: match w.kind {
                Kind::Closed => self.tracker.consecutive_failures(w.generation),
                Kind::Open | Kind::HalfOpen | Kind::ForcedOpen | Kind::Disabled => {
                    self.trip_streak.load(Ordering::Relaxed) as u32
                }
            },
            time_in_state: Duration::from_nanos(now.saturating_sub(since)),
            opens: self.opens.load(Ordering::Relaxed),
            probes_in_flight: if w.kind == Kind::HalfOpen { w.in_flight } else { 0 },
        }
    }
}
