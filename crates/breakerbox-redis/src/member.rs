//! One breaker's fleet state on this replica, as a pure state machine.
//!
//! A [`Member`] is what this replica knows of one breaker's fleet-wide state (the
//! [`Fleetwide`] state it last applied, at which incarnation and epoch), which part it
//! plays in it (its [`Role`]), its [`Vote`], and the counts it has already reported.
//! Each input is a method: a local transition seen by the breaker's listener
//! ([`on_local`](Member::on_local)), a snapshot read from Redis, pushed
//! ([`on_push`](Member::on_push)) or in a script's reply ([`on_reply`](Member::on_reply)),
//! its timer firing ([`on_timer`](Member::on_timer)), and Redis becoming unreachable
//! ([`on_degraded`](Member::on_degraded), then [`on_unreachable_tick`](Member::on_unreachable_tick)
//! every `sync_interval` until it answers). Each returns the [`Effects`] to carry out, as
//! data: what to do to the breaker ([`Act`]), the store operations to send ([`Op`]), the
//! [`FleetEvent`]s to emit. Nothing here touches Redis, a breaker or a clock: the time
//! and what the worker read from the breaker ([`Reading`]) are passed in, so the tests
//! below drive every state with made-up instants.
//!
//! Why a separate machine: the fleet's rules (when to hold, when to ask for the lease,
//! whose verdict counts, what survives a data loss) are the part that must be right, and
//! they are easiest to get right where every state and every input can be enumerated
//! and tested without a server. The worker (`worker.rs`) is left with the select loop
//! and the I/O.
//!
//! # Roles
//!
//! ```text
//!  ┌──────┐  open   ┌──────┐  wait over  ┌────────┐  granted  ┌─────────┐
//!  │ Free │ ──────▶ │ Held │ ──────────▶ │ Asking │ ────────▶ │ Probing │
//!  └──────┘         └──────┘ ◀────────── └────────┘           └─────────┘
//!    ▲  ▲              ▲      not yet      │    ▲                │   │
//!    │  │              │                   │    │ lease over     │   │
//!    │  │              │    another lease  ▼    │                │   │
//!    │  │              │           ┌──────────────┐              │   │
//!    │  │              │           │ OtherProbing │              │   │
//!    │  │              │           └──────────────┘              │   │
//!    │  │              └─────────── probe failed ────────────────┘   │
//!    │  └────────────────────────── probes succeeded ────────────────┘
//!    └───── closed, reset, trip, unreachable (`local`): from every role
//! ```
//!
//! | role | input | next | effects |
//! |---|---|---|---|
//! | any | snapshot: open, a newer epoch | Held | `hold_open` until the wait + a margin; `Opened` |
//! | any | snapshot: closed, a newer epoch | Free | `close` if it was held; `Closed` |
//! | any | snapshot: recovering, a newer epoch | Free | `recover(elapsed)` if it was held, or its breaker is closed or ramps out of step; `Recovering` |
//! | any | snapshot: closed, the same epoch, while recovering | same | the fleet's ramp is over |
//! | any | snapshot: an older epoch | same | `StaleIgnored` |
//! | any | reply: a new incarnation (data loss) | same | `DataLost`; `report` restoring an open state it holds |
//! | any | local: trip, reset, `force_open`, `disable` | Free | `report` (vote, or withdrawal) |
//! | Held | timer: the fleet's wait is over | Asking | `probe` |
//! | Held, shadow | timer: the fleet's wait is over | Held | hold on; `state` (a shadow replica never probes for the fleet) |
//! | Asking | reply: granted | Probing | `hold_open(0)`: probe here; `ProbeLease` |
//! | Asking | reply: another replica's lease | OtherProbing | then the timer holds until it ends |
//! | Asking | reply: no lease yet | Held | look again at once |
//! | OtherProbing | timer: that lease ran out | Asking | `probe` |
//! | Probing | local: probes succeeded | Free | `probe_result` ok (with a ramp if the breaker began one) |
//! | Probing | local: probe failed | Held | `probe_result` failed |
//! | Probing | timer: its lease ran out | Asking | hold again; `probe` |
//! | Held, Asking, OtherProbing | local: half-open (the hold lapsed) | same | hold again at once |
//! | any | unreachable, `local` | Free | `hold_open` for what is left of the fleet's wait |
//! | any | unreachable, `open` (then every tick) | Held | `hold_open(2 × refresh_interval)` |
//!
//! - **Free**: the breaker follows its own policy. If it opens on its own it votes
//!   ([`Vote::Open`]) to open the fleet, and withdraws the vote ([`Vote::Withdraw`]) when
//!   it closes on its own; the vote is independent of the role (a fail-closed hold keeps
//!   it).
//! - **Held**: the fleet holds the breaker open (`hold_open`), until the fleet's wait
//!   plus a margin (`sync_interval + 2 × operation_timeout`) so that the hold never lapses
//!   before the replica asks for the lease. While Redis is unreachable and
//!   `when_unreachable = "open"`, every breaker is Held for twice the `refresh_interval`,
//!   extended on every tick.
//! - **Asking**: held, and a `probe` request for the lease is on its way.
//! - **Probing**: this replica holds the fleet's probe lease: its breaker is released to
//!   half-open, sends its probes, and its verdict goes to `probe_result`.
//! - **OtherProbing**: held while another replica holds the lease; when that lease runs
//!   out without a verdict, this replica asks for the next one.
//!
//! # The recovery ramp
//!
//! When the prober's breaker has a [recovery ramp](breakerbox::ramp), its probes'
//! success puts it in `Recovering` rather than `Closed`; its verdict says so, and the
//! script closes the fleet with the ramp's start taken from Redis's `TIME`. The fleet's
//! state is then [`Fleetwide::Recovering`]: snapshots carry the time since that start by
//! Redis's clock, and each replica turns it into a [`RampPoint`] on its own monotonic
//! clock (as it does with an open wait's time remaining). A held breaker is released
//! into the ramp at that point ([`Act::Recover`]) instead of closed, so every replica
//! admits the same fraction of calls at the same moment and closes at the same time; so
//! is a free breaker that is closed (a replica that joined, or reconnected, mid-ramp) or
//! ramping out of step (by more than the margin) with the fleet. The prober's own ramp
//! began when its probes succeeded, a round trip before Redis's start: in step, it is
//! left alone. A ramp that aborts (`RampFailed`) is a trip: a vote. Redis does not know
//! the ramp's length; once this replica's breaker reads closed at the end of the fleet's
//! ramp, its next report says so, and the fleet's state is plain closed again (for
//! replicas that join later), without a new epoch.
//!
//! # Shadow mode
//!
//! A breaker in [shadow mode](breakerbox::BreakerBuilder::shadow) (read at every step,
//! so switching at run time takes effect at once) stays local: its trips are reported as
//! would-be votes, which the script keeps apart and never counts toward the quorum, and
//! its calls do not count toward the fleet's volume, so a shadow replica never opens
//! the fleet for the enforcing ones. The fleet's own decisions are applied to it as to
//! any breaker (held open, released into the ramp): a shadow breaker admits every call
//! anyway, counting those it would have rejected in `Metrics::would_reject`. It never
//! asks for the probe lease: held past the fleet's wait, it reads the fleet's state until
//! the enforcing replicas' verdict.
//!
//! A breaker forced open or disabled by hand is never acted on (the fleet still records
//! what it learns). Snapshots are applied in epoch order: an older epoch is ignored
//! ([`FleetEvent::StaleIgnored`]), the same epoch is ignored unless the member must apply
//! it again (after Redis was unreachable, or after a data loss), and a new incarnation
//! in a reply is a data loss ([`FleetEvent::DataLost`]): an open state this replica
//! still holds is restored with the time it had left (sent again after rejoining if Redis
//! became unreachable before answering it). A push from another incarnation is ignored:
//! only a reply proves the keys were lost.
//!
//! A local transition older than the fleet's last action on the breaker is ignored: the
//! fleet overrode it (a trip racing the fleet's own open, a verdict overtaken by a new
//! epoch).

use std::time::{Duration, Instant};

use breakerbox::{Reason, State};

use crate::script::{Code, Op, Snapshot};
use crate::shared::LocalTransition;
use crate::{FleetConfig, FleetEvent, FleetView, WhenUnreachable};

/// The fleet's state of a breaker, as this replica last applied it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fleetwide {
    /// Nothing read yet.
    Unknown,
    Closed,
    /// Open until this local instant (Redis's remaining time, turned into a deadline here).
    Open(Instant),
    /// Closed by a probe that began the recovery ramp, at this point of it (Redis's time
    /// since the ramp began, at a local instant), and not yet over here.
    Recovering(RampPoint),
}

/// A point of a recovery ramp: `elapsed` into it at the local instant `at`. From Redis's
/// elapsed time and the instant it was read, or from the instant this replica's breaker
/// began its own ramp (elapsed zero). Two points are compared by their progress at one
/// instant: no clock but this replica's monotonic one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RampPoint {
    pub(crate) at: Instant,
    pub(crate) elapsed: Duration,
}

impl RampPoint {
    /// How far into the ramp at `now` (never before `at`).
    pub(crate) fn elapsed_at(self, now: Instant) -> Duration {
        self.elapsed + now.saturating_duration_since(self.at)
    }

    /// How far apart two ramps run: the difference of their progress at one instant.
    fn skew(self, other: Self) -> Duration {
        let t = self.at.max(other.at);
        self.elapsed_at(t).abs_diff(other.elapsed_at(t))
    }
}

/// The part this replica plays in the breaker's fleet state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The breaker decides on its own policy.
    Free,
    /// Held open by the fleet until `until` (`None`: the hold lapsed, or is to be renewed
    /// whatever its end).
    Held { until: Option<Instant> },
    /// Held, with a request for the probe lease on its way.
    Asking { until: Option<Instant> },
    /// This replica holds the probe lease `lease` until `expires`: its breaker probes for
    /// the fleet.
    Probing { lease: u64, expires: Instant },
    /// Held while another replica holds the probe lease, until `lease_until`.
    OtherProbing { until: Option<Instant>, lease_until: Instant },
}

impl Role {
    /// Whether the fleet (rather than the breaker's own policy) keeps the breaker open.
    pub(crate) fn is_held(self) -> bool {
        match self {
            Self::Free => false,
            Self::Held { .. } | Self::Asking { .. } | Self::Probing { .. } | Self::OtherProbing { .. } => true,
        }
    }

    /// Whether the breaker is held open (not released to probe under this replica's
    /// lease), so that a lapsed hold must be renewed.
    fn holds_without_lease(self) -> bool {
        match self {
            Self::Held { .. } | Self::Asking { .. } | Self::OtherProbing { .. } => true,
            Self::Free | Self::Probing { .. } => false,
        }
    }

    /// Until when the current hold lasts, if it is known (a prober's is not: its
    /// breaker was released to half-open).
    fn held_until(self) -> Option<Instant> {
        match self {
            Self::Held { until } | Self::Asking { until } | Self::OtherProbing { until, .. } => until,
            Self::Free | Self::Probing { .. } => None,
        }
    }

    /// The same role, held until `until`.
    fn with_until(self, until: Option<Instant>) -> Self {
        match self {
            Self::Free | Self::Held { .. } | Self::Probing { .. } => Self::Held { until },
            Self::Asking { .. } => Self::Asking { until },
            Self::OtherProbing { lease_until, .. } => Self::OtherProbing { until, lease_until },
        }
    }

    /// Forgets any probe lease, this replica's or another's, and any request for one.
    fn without_lease(self) -> Self {
        match self {
            Self::Free => Self::Free,
            Self::Held { until } | Self::Asking { until } | Self::OtherProbing { until, .. } => Self::Held { until },
            Self::Probing { .. } => Self::Held { until: None },
        }
    }
}

/// This replica's vote on the fleet's state of the breaker, sent with every report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vote {
    None,
    /// The breaker opened on its own policy, for `wait`: open the fleet.
    Open {
        wait: Duration,
    },
    /// The breaker closed on its own after voting: take the vote back (until a report
    /// carrying it is counted).
    Withdraw,
}

impl Vote {
    /// The vote once the breaker stopped being open on its own.
    fn withdrawn(self) -> Self {
        match self {
            Self::Open { .. } => Self::Withdraw,
            Self::None | Self::Withdraw => Self::None,
        }
    }
}

/// What the worker read from the breaker just before a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) state: State,
    /// Successes and failures since the breaker was built.
    pub(crate) calls: u64,
    /// Failures since the breaker was built.
    pub(crate) failures: u64,
    /// Whether the breaker is in shadow mode (every call admitted).
    pub(crate) shadow: bool,
}

impl Reading {
    /// A breaker forced open or disabled by hand, which the fleet leaves alone.
    fn manual(self) -> bool {
        matches!(self.state, State::ForcedOpen | State::Disabled)
    }
}

/// What to do to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// [`Breaker::hold_open`](breakerbox::Breaker::hold_open): open for this long, or
    /// move the end of the current open wait (zero: half-open at the next call).
    HoldOpen(Duration),
    /// [`Breaker::close`](breakerbox::Breaker::close).
    Close,
    /// [`Breaker::recover`](breakerbox::Breaker::recover): into the recovery ramp, this
    /// far into it (closed, without a ramp or past its end).
    Recover(Duration),
}

/// What a step asks the worker to do: act on the breaker, then queue the operations,
/// then emit the events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "a step's effects are the only way it acts"]
pub(crate) struct Effects {
    pub(crate) acts: Vec<Act>,
    pub(crate) ops: Vec<Op>,
    pub(crate) events: Vec<FleetEvent>,
}

/// Where a snapshot came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Push,
    Reply,
}

/// The settings a member's rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// How long past a deadline the fleet keeps holding a breaker: a sync interval and
    /// two operations, so that the hold outlasts the request that renews it.
    pub(crate) margin: Duration,
    /// How often every breaker is read again; fail-closed holds last twice this.
    pub(crate) refresh: Duration,
    pub(crate) when_unreachable: WhenUnreachable,
}

impl Settings {
    pub(crate) fn new(c: &FleetConfig) -> Self {
        Self {
            margin: c.sync_interval + 2 * c.operation_timeout,
            refresh: c.refresh_interval,
            when_unreachable: c.when_unreachable,
        }
    }
}

/// The incarnation and epoch last applied.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    inc: String,
    epoch: u64,
    /// Apply the next snapshot even if its epoch is this one (after rejoining, or after
    /// restoring a lost state).
    reapply: bool,
}

/// One breaker's fleet state on this replica. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    name: String,
    settings: Settings,
    seen: Option<Seen>,
    fleet: Fleetwide,
    role: Role,
    vote: Vote,
    /// Calls (successes + failures) and failures already reported.
    sent: (u64, u64),
    /// When to look at this member again (the fleet's wait, a lease's expiry).
    wake: Option<Instant>,
    /// When the fleet last acted on the breaker.
    acted_at: Option<Instant>,
    /// Where the breaker's latest recovery ramp began: its own (its probes succeeded
    /// here), or the fleet's (applied with [`Act::Recover`]). Forgotten when the breaker
    /// trips or is reset by hand.
    ramp: Option<RampPoint>,
    /// What this replica had seen before a data loss whose restore is not answered yet.
    /// A restore is sent once, from the reply that revealed the loss; if Redis becomes
    /// unreachable first (the restore, or any operation of the same round, fails), the
    /// queued restore is dropped, so [`on_degraded`](Self::on_degraded) goes back to
    /// this: the next read finds the loss again and restores it then. (Without it, the
    /// read after rejoining applied the lost, older state as the fleet's, and the open
    /// was never restored.)
    unrestored: Option<Seen>,
}

// ===== impl Member: reads =====

impl Member {
    /// A breaker just watched: nothing read, nothing reported (the first report counts
    /// every call since the breaker was built).
    pub(crate) fn new(name: String, settings: Settings) -> Self {
        Self {
            name,
            settings,
            seen: None,
            fleet: Fleetwide::Unknown,
            role: Role::Free,
            vote: Vote::None,
            sent: (0, 0),
            wake: None,
            acted_at: None,
            ramp: None,
            unrestored: None,
        }
    }

    /// The incarnation and epoch to send with an operation (`("", 0)` before any).
    pub(crate) fn seen(&self) -> (&str, u64) {
        self.seen.as_ref().map_or(("", 0), |s| (s.inc.as_str(), s.epoch))
    }

    /// When [`on_timer`](Self::on_timer) is due.
    pub(crate) fn wake(&self) -> Option<Instant> {
        self.wake
    }

    /// Whether the fleet's state has never been read.
    pub(crate) fn needs_read(&self) -> bool {
        self.fleet == Fleetwide::Unknown
    }

    /// The counts since the last report, the vote, and the end of the fleet's recovery
    /// ramp, if there is anything to say.
    pub(crate) fn report(&self, b: Reading) -> Option<Op> {
        let calls = b.calls.saturating_sub(self.sent.0);
        let failures = b.failures.saturating_sub(self.sent.1);
        let (vote, wait) = match self.vote {
            Vote::None => (0, Duration::ZERO),
            Vote::Open { wait } => (1, wait),
            Vote::Withdraw => (-1, Duration::ZERO),
        };
        let ramp_done = self.ramp_done(b);
        (calls > 0 || vote != 0 || ramp_done).then_some(Op::Report {
            calls,
            failures,
            vote,
            wait,
            restore: Duration::ZERO,
            ramp_done,
            shadow: b.shadow,
        })
    }

    /// Whether the breaker followed the fleet's recovery ramp and now reads closed: the
    /// ramp is over (its length is the breaker's, which Redis does not know).
    fn ramp_done(&self, b: Reading) -> bool {
        match (self.fleet, self.ramp) {
            (Fleetwide::Recovering(fleet), Some(own)) => b.state == State::Closed && self.in_step(own, fleet),
            _ => false,
        }
    }

    /// Whether two ramps run together, within the margin.
    fn in_step(&self, a: RampPoint, b: RampPoint) -> bool {
        a.skew(b) <= self.settings.margin
    }

    /// What [`Fleet::view`](crate::Fleet::view) shows at `now`.
    pub(crate) fn view(&self, now: Instant) -> FleetView {
        let (state, epoch) = match (self.fleet, &self.seen) {
            (Fleetwide::Open(until), Some(s)) => (if now >= until { State::HalfOpen } else { State::Open }, s.epoch),
            (Fleetwide::Recovering(_), Some(s)) => (State::Recovering, s.epoch),
            (_, Some(s)) => (State::Closed, s.epoch),
            (_, None) => (State::Closed, 0),
        };
        FleetView { state, epoch, held: self.role.is_held(), probing: matches!(self.role, Role::Probing { .. }) }
    }

    /// The worker carried out a step's [`Act`]s at `at`.
    pub(crate) fn acted(&mut self, at: Instant) {
        self.acted_at = Some(at);
    }
}

// ===== impl Member: inputs =====

impl Member {
    /// The breaker changed state on its own (or by hand): vote, withdraw, send the
    /// lease's verdict, or hold again where a held breaker's hold lapsed. While
    /// `degraded`, nothing is sent (the vote is kept for the rejoin).
    pub(crate) fn on_local(&mut self, t: &LocalTransition, now: Instant, degraded: bool, b: Reading) -> Effects {
        let mut fx = Effects::default();
        if self.acted_at.is_some_and(|a| t.at < a) {
            // The fleet changed the breaker since: this transition no longer stands.
            return fx;
        }
        let wait = t.open_for.unwrap_or_default();
        let mut op = None;
        match (t.to, t.reason) {
            // A ramp that aborts reopens the breaker as a trip does.
            (State::Open, Reason::Tripped | Reason::RampFailed) => {
                (self.vote, self.role, self.ramp) = (Vote::Open { wait }, Role::Free, None);
                op = self.report(b);
            }
            (State::Open, Reason::ProbeFailed) => match self.role {
                Role::Probing { lease, .. } => {
                    op = Some(Op::ProbeResult { lease, ok: false, wait, ramp: false });
                    (self.role, self.wake) = (Role::Held { until: Some(now + wait) }, Some(now + wait));
                }
                // A probe without the lease: the hold lapsed. Hold again.
                role if role.is_held() && !degraded => self.wake = Some(now),
                _ => {
                    (self.vote, self.role) = (Vote::Open { wait }, Role::Free);
                    op = self.report(b);
                }
            },
            // With a recovery ramp, the probes' success begins it: for the fleet, a close
            // that begins the fleet's ramp, by Redis's clock.
            (State::Closed | State::Recovering, Reason::ProbesSucceeded) => {
                let ramp = t.to == State::Recovering;
                if ramp {
                    self.ramp = Some(RampPoint { at: t.at, elapsed: Duration::ZERO });
                }
                match self.role {
                    Role::Probing { lease, .. } => {
                        op = Some(Op::ProbeResult { lease, ok: true, wait: Duration::ZERO, ramp });
                        self.role = Role::Free;
                    }
                    role if role.is_held() && !degraded => self.wake = Some(now),
                    _ => {
                        self.vote = self.vote.withdrawn();
                        op = self.report(b);
                    }
                }
            }
            (State::HalfOpen, _) if self.role.holds_without_lease() && !degraded => {
                // The hold lapsed before it was extended: hold again at once.
                (self.role, self.wake) = (self.role.with_until(None), Some(now));
            }
            (State::Closed | State::ForcedOpen | State::Disabled, _) => {
                // Reset, forced open or disabled by hand (or its ramp ran its course): the
                // fleet no longer holds it. A breaker that finished the fleet's ramp
                // reports it (`report` sees it closed).
                if t.reason != Reason::RampCompleted {
                    self.ramp = None;
                }
                (self.vote, self.role) = (self.vote.withdrawn(), Role::Free);
                op = self.report(b);
            }
            _ => {}
        }
        if !degraded {
            fx.ops.extend(op);
        }
        fx
    }

    /// A snapshot pushed by pub/sub.
    pub(crate) fn on_push(&mut self, snap: &Snapshot, now: Instant, b: Reading) -> Effects {
        let mut fx = Effects::default();
        self.observe(snap, Via::Push, now, b, &mut fx);
        fx
    }

    /// The reply to `op`: the counts it carried are reported (unless Redis lost them),
    /// its snapshot is applied, and a `probe`'s reply says who holds the lease.
    pub(crate) fn on_reply(&mut self, op: &Op, snap: &Snapshot, now: Instant, b: Reading) -> Effects {
        let mut fx = Effects::default();
        if let Op::Report { calls, failures, .. } = *op {
            // Counts the script refused for an older epoch are dropped; those refused
            // because Redis lost its data are sent again.
            let lost = snap.rolled_back || self.seen.as_ref().is_some_and(|s| s.inc != snap.inc);
            if snap.granted || !lost {
                self.sent = (self.sent.0 + calls, self.sent.1 + failures);
                if self.vote == Vote::Withdraw {
                    self.vote = Vote::None;
                }
            }
        }
        self.observe(snap, Via::Reply, now, b, &mut fx);
        if *op == Op::Probe {
            self.probe_reply(snap, now, b, &mut fx);
        }
        fx
    }

    /// The timer is due: asks for the probe lease when the fleet's wait has passed,
    /// keeps the breaker held meanwhile, drops an expired lease.
    pub(crate) fn on_timer(&mut self, now: Instant, b: Reading) -> Effects {
        let mut fx = Effects::default();
        self.wake = None;
        let Fleetwide::Open(until) = self.fleet else { return fx };
        if b.manual() {
            return fx;
        }
        let margin = self.settings.margin;
        if let Role::Probing { expires, .. } = self.role {
            if now < expires {
                self.wake = Some(expires);
                return fx;
            }
            // The lease ran out without a verdict: stop probing, ask again.
            self.role = Role::Held { until: None };
            self.hold(now + margin, now, &mut fx);
        }
        if now < until {
            self.hold(until + margin, now, &mut fx);
            self.wake = Some(until);
        } else if let Role::OtherProbing { lease_until, .. } = self.role
            && now < lease_until
        {
            self.hold(lease_until + margin, now, &mut fx);
            self.wake = Some(lease_until);
        } else if !matches!(self.role, Role::Asking { .. }) {
            self.hold(now + margin, now, &mut fx);
            self.wake = Some(now + margin);
            if b.shadow {
                // A shadow replica never probes for the fleet: held on (admitting every
                // call, as shadow mode does), it reads the fleet's state until the
                // enforcing replicas' verdict.
                fx.ops.push(Op::State);
            } else {
                self.role = Role::Asking { until: self.role.held_until() };
                fx.ops.push(Op::Probe);
            }
        }
        fx
    }

    /// Redis cannot be reached: forget every lease and request, apply the next snapshot
    /// whatever its epoch, and hand the breaker back to its own policy (with what is
    /// left of the fleet's wait) or, failing closed, hold it open.
    pub(crate) fn on_degraded(&mut self, now: Instant, b: Reading) -> Effects {
        let mut fx = Effects::default();
        if let Some(before) = self.unrestored.take() {
            // The loss's restore went unanswered: find the loss again at the next read.
            self.seen = Some(before);
        }
        if let Some(seen) = &mut self.seen {
            seen.reapply = true;
        }
        self.wake = None;
        if let Role::Asking { until } | Role::OtherProbing { until, .. } = self.role {
            self.role = Role::Held { until };
        }
        if b.manual() {
            return fx;
        }
        match self.settings.when_unreachable {
            WhenUnreachable::Local => {
                if let (Role::Held { .. }, Fleetwide::Open(until)) = (self.role, self.fleet) {
                    fx.acts.push(Act::HoldOpen(until.saturating_duration_since(now)));
                }
                self.role = Role::Free;
            }
            WhenUnreachable::Open => {
                let hold_for = 2 * self.settings.refresh;
                fx.acts.push(Act::HoldOpen(hold_for));
                self.role = Role::Held { until: Some(now + hold_for) };
            }
        }
        fx
    }

    /// A tick while Redis is still unreachable: failing closed, extends a hold that
    /// would end within a refresh interval.
    pub(crate) fn on_unreachable_tick(&mut self, now: Instant, b: Reading) -> Effects {
        let mut fx = Effects::default();
        let refresh = self.settings.refresh;
        if self.settings.when_unreachable == WhenUnreachable::Open
            && self.role.is_held()
            && !b.manual()
            && self.role.held_until().is_none_or(|t| t < now + refresh)
        {
            fx.acts.push(Act::HoldOpen(2 * refresh));
            self.role = self.role.with_until(Some(now + 2 * refresh));
        }
        fx
    }
}

// ===== impl Member: rules =====

impl Member {
    /// Applies a snapshot, in epoch order. Only a reply can reveal a data loss: a push
    /// from another incarnation is ignored.
    fn observe(&mut self, snap: &Snapshot, via: Via, now: Instant, b: Reading, fx: &mut Effects) {
        if let Some(seen) = &self.seen {
            // A rollback (Redis lost acknowledged writes: restarted from an older
            // snapshot, failed over to a lagging replica) is a data loss too. Without this
            // the older epoch was ignored as stale, and every report from this replica
            // refused for its newer epoch: the fleet never opened the breaker again.
            if seen.inc != snap.inc || snap.rolled_back {
                if via == Via::Push {
                    return;
                }
                // Redis lost this breaker's keys (or writes): re-push what this replica knows.
                fx.events.push(FleetEvent::DataLost { breaker: self.name.clone() });
                if let (Fleetwide::Open(until), false) = (self.fleet, b.state == State::Closed) {
                    // Keep holding, and restore the fleet's open state with what is left
                    // of it; the reply (or another replica's restore) is applied then.
                    let restore = until.saturating_duration_since(now).max(Duration::from_millis(1));
                    self.unrestored.get_or_insert_with(|| seen.clone());
                    self.seen = Some(Seen { inc: snap.inc.clone(), epoch: snap.epoch, reapply: true });
                    fx.ops.push(Op::Report {
                        calls: 0,
                        failures: 0,
                        vote: 0,
                        wait: Duration::ZERO,
                        restore,
                        ramp_done: false,
                        shadow: false,
                    });
                    return;
                }
            } else if snap.epoch < seen.epoch {
                fx.events.push(FleetEvent::StaleIgnored {
                    breaker: self.name.clone(),
                    epoch: snap.epoch,
                    current: seen.epoch,
                });
                return;
            } else if snap.epoch == seen.epoch && !seen.reapply {
                if snap.code == Code::Closed && matches!(self.fleet, Fleetwide::Recovering(_)) {
                    // A replica's breaker finished the fleet's ramp: plain closed again.
                    self.fleet = Fleetwide::Closed;
                }
                return;
            }
        }
        self.seen = Some(Seen { inc: snap.inc.clone(), epoch: snap.epoch, reapply: false });
        self.unrestored = None;
        self.role = self.role.without_lease();
        match snap.code {
            Code::Closed => {
                let was_open = matches!(self.fleet, Fleetwide::Open(_));
                (self.fleet, self.wake) = (Fleetwide::Closed, None);
                let held = self.role.is_held();
                if held && !b.manual() {
                    fx.acts.push(Act::Close);
                }
                if held || was_open {
                    fx.events.push(FleetEvent::Closed { breaker: self.name.clone(), epoch: snap.epoch });
                }
                self.role = Role::Free;
            }
            Code::Recovering => {
                let was_open = matches!(self.fleet, Fleetwide::Open(_));
                let point = RampPoint { at: now, elapsed: snap.ramp };
                (self.fleet, self.wake) = (Fleetwide::Recovering(point), None);
                let held = self.role.is_held();
                // Released into the fleet's ramp: a held breaker; a free one that is
                // closed (joined or reconnected mid-ramp) or ramps out of step. Not one
                // open or probing on its own policy (its vote and probes decide), nor one
                // already in step (the prober, or a replica that followed the ramp).
                let out_of_step = match b.state {
                    State::Closed | State::Recovering => self.ramp.is_none_or(|own| !self.in_step(own, point)),
                    _ => false,
                };
                let acts = !b.manual() && (held || out_of_step);
                if acts {
                    fx.acts.push(Act::Recover(snap.ramp));
                    self.ramp = Some(point);
                }
                if held || was_open || acts {
                    fx.events.push(FleetEvent::Recovering {
                        breaker: self.name.clone(),
                        epoch: snap.epoch,
                        elapsed: snap.ramp,
                    });
                }
                self.role = Role::Free;
            }
            Code::Open | Code::HalfOpen => {
                let until = now + snap.remaining;
                (self.fleet, self.vote) = (Fleetwide::Open(until), Vote::None);
                if !b.manual() {
                    self.hold(until + self.settings.margin, now, fx);
                }
                self.wake = Some(until);
                fx.events.push(FleetEvent::Opened {
                    breaker: self.name.clone(),
                    epoch: snap.epoch,
                    remaining: snap.remaining,
                });
            }
        }
    }

    /// After a `probe` request (its snapshot already observed): the lease, or who else
    /// holds it.
    fn probe_reply(&mut self, snap: &Snapshot, now: Instant, b: Reading, fx: &mut Effects) {
        if let Role::Asking { until } = self.role {
            self.role = Role::Held { until };
        }
        if self.seen.as_ref().is_none_or(|s| s.inc != snap.inc || s.epoch != snap.epoch) {
            return; // a different state was applied meanwhile
        }
        if snap.granted {
            let expires = now + snap.lease_left;
            (self.role, self.wake) = (Role::Probing { lease: snap.lease_id, expires }, Some(expires));
            if !b.manual() {
                // Half-open at the next call: this replica probes for the fleet.
                fx.acts.push(Act::HoldOpen(Duration::ZERO));
            }
            fx.events.push(FleetEvent::ProbeLease { breaker: self.name.clone(), epoch: snap.epoch });
            return;
        }
        match snap.code {
            Code::HalfOpen if snap.lease_id > 0 => {
                if let Role::Held { until } | Role::OtherProbing { until, .. } = self.role {
                    self.role = Role::OtherProbing { until, lease_until: now + snap.lease_left };
                }
            }
            Code::Open => self.fleet = Fleetwide::Open(now + snap.remaining),
            Code::HalfOpen | Code::Closed | Code::Recovering => {}
        }
        self.wake = Some(now);
    }

    /// Holds the breaker open until `until`, extending (never shortening) the current
    /// hold.
    fn hold(&mut self, until: Instant, now: Instant, fx: &mut Effects) {
        if self.role.held_until().is_some_and(|t| t >= until) {
            return;
        }
        fx.acts.push(Act::HoldOpen(until.saturating_duration_since(now)));
        self.role = self.role.with_until(Some(until));
    }
}

#[cfg(test)]
mod tests {
    //! The state machine on made-up instants: one base instant, then offsets in
    //! milliseconds. No Redis, no sleeps, no tokio time: nothing here waits.

    use super::*;

    const MARGIN: u64 = 200;
    const REFRESH: u64 = 1_000;
    const INC: &str = "inc-a";

    /// Instants as milliseconds after one base.
    #[derive(Clone, Copy)]
    struct Clock(Instant);

    impl Clock {
        fn new() -> Self {
            Self(Instant::now())
        }

        fn at(self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }

        fn ms(self, t: Instant) -> u64 {
            t.duration_since(self.0).as_millis() as u64
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn settings(when_unreachable: WhenUnreachable) -> Settings {
        Settings { margin: ms(MARGIN), refresh: ms(REFRESH), when_unreachable }
    }

    fn snap(code: Code, epoch: u64, remaining: u64) -> Snapshot {
        Snapshot::new(code, epoch, ms(remaining), INC.to_owned())
    }

    /// Closed by a probe that began the recovery ramp, `elapsed` ms ago by Redis's clock.
    fn ramping(epoch: u64, elapsed: u64) -> Snapshot {
        Snapshot { ramp: ms(elapsed), ..snap(Code::Recovering, epoch, 0) }
    }

    fn granted(mut s: Snapshot) -> Snapshot {
        s.granted = true;
        s
    }

    fn lease(mut s: Snapshot, id: u64, left: u64) -> Snapshot {
        (s.lease_id, s.lease_left) = (id, ms(left));
        s
    }

    fn incarnation(mut s: Snapshot, inc: &str) -> Snapshot {
        s.inc = inc.to_owned();
        s
    }

    /// A breaker in `state` that has seen 3 calls, all failures.
    fn reading(state: State) -> Reading {
        Reading { state, calls: 3, failures: 3, shadow: false }
    }

    fn local(clock: Clock, to: State, reason: Reason, at: u64) -> LocalTransition {
        LocalTransition { breaker: "b".to_owned(), to, reason, open_for: Some(ms(5_000)), at: clock.at(at) }
    }

    /// Carries out a step as the worker does: the fleet's last act is stamped.
    fn run(m: &mut Member, clock: Clock, now: u64, step: impl FnOnce(&mut Member, Instant) -> Effects) -> Effects {
        let fx = step(m, clock.at(now));
        if !fx.acts.is_empty() {
            m.acted(clock.at(now));
        }
        fx
    }

    // ===== every role × every input =====

    /// The roles, as the table below names them. The match in `kind` has no wildcard,
    /// so a new role does not compile until the table covers it (`kind_of`, then `expected`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        Free,
        Held,
        Asking,
        Probing,
        OtherProbing,
    }

    const KINDS: [Kind; 5] = [Kind::Free, Kind::Held, Kind::Asking, Kind::Probing, Kind::OtherProbing];

    fn kind_of(role: Role) -> Kind {
        match role {
            Role::Free => Kind::Free,
            Role::Held { .. } => Kind::Held,
            Role::Asking { .. } => Kind::Asking,
            Role::Probing { .. } => Kind::Probing,
            Role::OtherProbing { .. } => Kind::OtherProbing,
        }
    }

    /// A member in `kind`, reached through the inputs that lead there:
    ///
    /// - Free: read closed at epoch 1 (t = 1000);
    /// - Held: then a push opens the fleet at epoch 2 for 1 s (t = 1000; fleet open until
    ///   2000, held until 2200);
    /// - Asking: then the timer at 2000 asks for the lease;
    /// - Probing: then the lease is granted at 2010, for 1 s (until 3010);
    /// - OtherProbing: or the lease is out elsewhere at 2010, for 500 ms (until 2510).
    fn fixture(clock: Clock, kind: Kind, when_unreachable: WhenUnreachable) -> Member {
        let mut m = Member::new("b".to_owned(), settings(when_unreachable));
        let _ = run(&mut m, clock, 1_000, |m, now| {
            m.on_reply(&Op::State, &snap(Code::Closed, 1, 0), now, reading(State::Closed))
        });
        if kind == Kind::Free {
            return m;
        }
        let _ = run(&mut m, clock, 1_000, |m, now| m.on_push(&snap(Code::Open, 2, 1_000), now, reading(State::Closed)));
        if kind == Kind::Held {
            return m;
        }
        let _ = run(&mut m, clock, 2_000, |m, now| m.on_timer(now, reading(State::Open)));
        let answer = match kind {
            Kind::Asking => return m,
            Kind::Probing => granted(lease(snap(Code::HalfOpen, 2, 0), 7, 1_000)),
            Kind::OtherProbing => lease(snap(Code::HalfOpen, 2, 0), 7, 500),
            Kind::Free | Kind::Held => unreachable!(),
        };
        let _ = run(&mut m, clock, 2_010, |m, now| m.on_reply(&Op::Probe, &answer, now, reading(State::HalfOpen)));
        m
    }

    /// The breaker as each role leaves it: closed when free, half-open when probing,
    /// open when held.
    fn natural(kind: Kind) -> State {
        match kind {
            Kind::Free => State::Closed,
            Kind::Probing => State::HalfOpen,
            Kind::Held | Kind::Asking | Kind::OtherProbing => State::Open,
        }
    }

    /// When each fixture's timer is due.
    fn fixture_wake(kind: Kind) -> Option<u64> {
        match kind {
            Kind::Free => None,
            Kind::Held => Some(2_000),
            Kind::Asking => Some(2_200),
            Kind::Probing => Some(3_010),
            Kind::OtherProbing => Some(2_010),
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Change {
        Tripped,
        ProbeFailed,
        ProbesSucceeded,
        /// The probes succeeded and the breaker began its recovery ramp.
        ProbesSucceededRamping,
        /// The ramp aborted: reopened.
        RampFailed,
        /// The ramp ran its course: closed.
        RampCompleted,
        /// Open to half-open: a hold that lapsed.
        WaitElapsed,
        Reset,
        ForcedOpen,
        Disabled,
    }

    const CHANGES: [Change; 10] = [
        Change::Tripped,
        Change::ProbeFailed,
        Change::ProbesSucceeded,
        Change::ProbesSucceededRamping,
        Change::RampFailed,
        Change::RampCompleted,
        Change::WaitElapsed,
        Change::Reset,
        Change::ForcedOpen,
        Change::Disabled,
    ];

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Pushed {
        NewerClosed,
        /// Closed by a probe that began the recovery ramp, 500 ms ago by Redis's clock.
        NewerRecovering,
        NewerOpen,
        SameEpoch,
        OlderEpoch,
        OtherIncarnation,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Answer {
        Granted,
        LeaseElsewhere,
        StillOpen,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Timer {
        /// t = 2100: the fleet's wait is over; the leases are not.
        Soon,
        /// t = 3100: every lease has expired.
        Late,
        /// t = 2100, with the breaker forced open by hand.
        Manual,
        /// t = 2100, with the breaker in shadow mode.
        Shadow,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Input {
        /// A local transition at t = 2100; `true`: while Redis is unreachable.
        Local(Change, bool),
        /// A trip from t = 500, before the fleet last acted on the breaker.
        Overridden,
        Push(Pushed),
        /// A `state` reply from a new incarnation: Redis lost the keys.
        DataLoss,
        Probe(Answer),
        Timer(Timer),
        Degraded(WhenUnreachable),
        UnreachableTick,
    }

    fn inputs() -> Vec<Input> {
        let mut all = Vec::new();
        for degraded in [false, true] {
            all.extend(CHANGES.map(|c| Input::Local(c, degraded)));
        }
        all.push(Input::Overridden);
        all.extend(
            [
                Pushed::NewerClosed,
                Pushed::NewerRecovering,
                Pushed::NewerOpen,
                Pushed::SameEpoch,
                Pushed::OlderEpoch,
                Pushed::OtherIncarnation,
            ]
            .map(Input::Push),
        );
        all.push(Input::DataLoss);
        all.extend([Answer::Granted, Answer::LeaseElsewhere, Answer::StillOpen].map(Input::Probe));
        all.extend([Timer::Soon, Timer::Late, Timer::Manual, Timer::Shadow].map(Input::Timer));
        all.extend([WhenUnreachable::Local, WhenUnreachable::Open].map(Input::Degraded));
        all.push(Input::UnreachableTick);
        all
    }

    /// A step's outcome, in words that fit a table.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Out {
        role: Kind,
        acts: Vec<Act>,
        ops: Vec<String>,
        events: Vec<&'static str>,
        wake: Option<u64>,
    }

    fn op_words(op: &Op) -> String {
        match *op {
            Op::State => "state".to_owned(),
            Op::Report { restore, .. } if restore > Duration::ZERO => format!("restore {}ms", restore.as_millis()),
            Op::Report { calls, failures, vote, ramp_done, shadow, .. } => format!(
                "report {calls}/{failures} vote {vote}{}{}",
                if ramp_done { " ramp done" } else { "" },
                if shadow { " shadow" } else { "" }
            ),
            Op::Probe => "probe".to_owned(),
            Op::ProbeResult { ok: true, ramp: false, .. } => "verdict ok".to_owned(),
            Op::ProbeResult { ok: true, ramp: true, .. } => "verdict ok ramp".to_owned(),
            Op::ProbeResult { ok: false, wait, .. } => format!("verdict failed {}ms", wait.as_millis()),
        }
    }

    fn event_words(e: &FleetEvent) -> &'static str {
        match e {
            FleetEvent::Opened { .. } => "opened",
            FleetEvent::Closed { .. } => "closed",
            FleetEvent::Recovering { .. } => "recovering",
            FleetEvent::ProbeLease { .. } => "lease",
            FleetEvent::StaleIgnored { .. } => "stale",
            FleetEvent::DataLost { .. } => "data lost",
            FleetEvent::Joined | FleetEvent::Degraded { .. } | FleetEvent::Rejoined { .. } => "worker's own",
        }
    }

    /// Feeds `input` to a member in `kind`.
    fn actual(clock: Clock, kind: Kind, input: Input) -> Out {
        let mode = match input {
            Input::Degraded(mode) => mode,
            Input::UnreachableTick => WhenUnreachable::Open,
            _ => WhenUnreachable::Local,
        };
        let mut m = fixture(clock, kind, mode);
        let here = reading(natural(kind));
        let (inc, epoch) = m.seen();
        let same = incarnation(snap(Code::HalfOpen, epoch, 0), inc);
        let fx = match input {
            Input::Local(change, degraded) => {
                let (to, reason) = match change {
                    Change::Tripped => (State::Open, Reason::Tripped),
                    Change::ProbeFailed => (State::Open, Reason::ProbeFailed),
                    Change::ProbesSucceeded => (State::Closed, Reason::ProbesSucceeded),
                    Change::ProbesSucceededRamping => (State::Recovering, Reason::ProbesSucceeded),
                    Change::RampFailed => (State::Open, Reason::RampFailed),
                    Change::RampCompleted => (State::Closed, Reason::RampCompleted),
                    Change::WaitElapsed => (State::HalfOpen, Reason::WaitElapsed),
                    Change::Reset => (State::Closed, Reason::Reset),
                    Change::ForcedOpen => (State::ForcedOpen, Reason::ForcedOpen),
                    Change::Disabled => (State::Disabled, Reason::Disabled),
                };
                let t = local(clock, to, reason, 2_100);
                run(&mut m, clock, 2_100, |m, now| m.on_local(&t, now, degraded, reading(to)))
            }
            Input::Overridden => {
                let t = local(clock, State::Open, Reason::Tripped, 500);
                run(&mut m, clock, 2_100, |m, now| m.on_local(&t, now, false, reading(State::Open)))
            }
            Input::Push(p) => {
                let s = match p {
                    Pushed::NewerClosed => snap(Code::Closed, 3, 0),
                    Pushed::NewerRecovering => ramping(3, 500),
                    Pushed::NewerOpen => snap(Code::Open, 3, 3_000),
                    Pushed::SameEpoch => same,
                    Pushed::OlderEpoch => snap(Code::Open, 0, 3_000),
                    Pushed::OtherIncarnation => incarnation(snap(Code::Open, 9, 3_000), "inc-b"),
                };
                run(&mut m, clock, 2_100, |m, now| m.on_push(&s, now, here))
            }
            Input::DataLoss => {
                let s = incarnation(snap(Code::Closed, 0, 0), "inc-b");
                run(&mut m, clock, 2_100, |m, now| m.on_reply(&Op::State, &s, now, here))
            }
            Input::Probe(a) => {
                let s = match a {
                    Answer::Granted => granted(lease(same, 9, 1_000)),
                    Answer::LeaseElsewhere => lease(same, 7, 500),
                    Answer::StillOpen => incarnation(snap(Code::Open, epoch, 300), inc),
                };
                run(&mut m, clock, 2_100, |m, now| m.on_reply(&Op::Probe, &s, now, here))
            }
            Input::Timer(Timer::Soon) => run(&mut m, clock, 2_100, |m, now| m.on_timer(now, here)),
            Input::Timer(Timer::Late) => run(&mut m, clock, 3_100, |m, now| m.on_timer(now, here)),
            Input::Timer(Timer::Manual) => {
                run(&mut m, clock, 2_100, |m, now| m.on_timer(now, reading(State::ForcedOpen)))
            }
            Input::Timer(Timer::Shadow) => {
                run(&mut m, clock, 2_100, |m, now| m.on_timer(now, Reading { shadow: true, ..here }))
            }
            Input::Degraded(_) => run(&mut m, clock, 2_100, |m, now| m.on_degraded(now, here)),
            Input::UnreachableTick => run(&mut m, clock, 2_100, |m, now| m.on_unreachable_tick(now, here)),
        };
        Out {
            role: kind_of(m.role),
            acts: fx.acts,
            ops: fx.ops.iter().map(op_words).collect(),
            events: fx.events.iter().map(event_words).collect(),
            wake: m.wake.map(|t| clock.ms(t)),
        }
    }

    /// The rules, as a table: what each role does with each input.
    fn expected(kind: Kind, input: Input) -> Out {
        use Kind::{Asking, Free, Held, OtherProbing, Probing};
        let same = Out { role: kind, acts: vec![], ops: vec![], events: vec![], wake: fixture_wake(kind) };
        let report = |vote: i8| vec![format!("report 3/3 vote {vote}")];
        let hold = |ms: u64| vec![Act::HoldOpen(Duration::from_millis(ms))];
        match (kind, input) {
            // Local transitions, Redis reachable. A ramp that aborts is a trip; one that
            // completes, a reset.
            (_, Input::Local(Change::Tripped | Change::RampFailed, false)) => {
                Out { role: Free, ops: report(1), ..same }
            }
            (Free, Input::Local(Change::ProbeFailed, false)) => Out { ops: report(1), ..same },
            (Held | Asking | OtherProbing, Input::Local(Change::ProbeFailed, false)) => {
                Out { wake: Some(2_100), ..same }
            }
            (Probing, Input::Local(Change::ProbeFailed, false)) => {
                Out { role: Held, ops: vec!["verdict failed 5000ms".to_owned()], wake: Some(7_100), ..same }
            }
            (Free, Input::Local(Change::ProbesSucceeded | Change::ProbesSucceededRamping, false)) => {
                Out { ops: report(0), ..same }
            }
            (
                Held | Asking | OtherProbing,
                Input::Local(Change::ProbesSucceeded | Change::ProbesSucceededRamping, false),
            ) => Out { wake: Some(2_100), ..same },
            (Probing, Input::Local(Change::ProbesSucceeded, false)) => {
                Out { role: Free, ops: vec!["verdict ok".to_owned()], ..same }
            }
            (Probing, Input::Local(Change::ProbesSucceededRamping, false)) => {
                Out { role: Free, ops: vec!["verdict ok ramp".to_owned()], ..same }
            }
            (Free | Probing, Input::Local(Change::WaitElapsed, _)) => same,
            (Held | Asking | OtherProbing, Input::Local(Change::WaitElapsed, false)) => {
                Out { wake: Some(2_100), ..same }
            }
            (_, Input::Local(Change::RampCompleted | Change::Reset | Change::ForcedOpen | Change::Disabled, false)) => {
                Out { role: Free, ops: report(0), ..same }
            }
            // Local transitions while Redis is unreachable: decided, never sent.
            (_, Input::Local(Change::Tripped | Change::RampFailed, true)) => Out { role: Free, ..same },
            (Free | Held | Asking | OtherProbing, Input::Local(Change::ProbeFailed, true)) => {
                Out { role: Free, ..same }
            }
            (Probing, Input::Local(Change::ProbeFailed, true)) => Out { role: Held, wake: Some(7_100), ..same },
            (
                Free | Held | Asking | OtherProbing,
                Input::Local(Change::ProbesSucceeded | Change::ProbesSucceededRamping, true),
            ) => same,
            (Probing, Input::Local(Change::ProbesSucceeded | Change::ProbesSucceededRamping, true)) => {
                Out { role: Free, ..same }
            }
            (Held | Asking | OtherProbing, Input::Local(Change::WaitElapsed, true)) => same,
            (_, Input::Local(Change::RampCompleted | Change::Reset | Change::ForcedOpen | Change::Disabled, true)) => {
                Out { role: Free, ..same }
            }
            // The fleet acted on the breaker after this trip: only a free breaker, never
            // acted on, takes it.
            (Free, Input::Overridden) => Out { ops: report(1), ..same },
            (Held | Asking | Probing | OtherProbing, Input::Overridden) => same,
            // Pushes.
            (Free, Input::Push(Pushed::NewerClosed)) => same,
            (Held | Asking | Probing | OtherProbing, Input::Push(Pushed::NewerClosed)) => {
                Out { role: Free, acts: vec![Act::Close], events: vec!["closed"], wake: None, ..same }
            }
            // Recovering: every breaker enters the fleet's ramp where Redis's clock puts it,
            // the free one (closed) too: it never ramped.
            (_, Input::Push(Pushed::NewerRecovering)) => Out {
                role: Free,
                acts: vec![Act::Recover(Duration::from_millis(500))],
                events: vec!["recovering"],
                wake: None,
                ..same
            },
            (_, Input::Push(Pushed::NewerOpen)) => {
                Out { role: Held, acts: hold(3_200), events: vec!["opened"], wake: Some(5_100), ..same }
            }
            (_, Input::Push(Pushed::SameEpoch | Pushed::OtherIncarnation)) => same,
            (_, Input::Push(Pushed::OlderEpoch)) => Out { events: vec!["stale"], ..same },
            // Data loss: a free breaker adopts the new state; a held one restores the
            // fleet's open state (its wait is over here: the shortest restore).
            (Free, Input::DataLoss) => Out { events: vec!["data lost"], ..same },
            (Held | Asking | Probing | OtherProbing, Input::DataLoss) => {
                Out { ops: vec!["restore 1ms".to_owned()], events: vec!["data lost"], ..same }
            }
            // Answers to a probe request.
            (_, Input::Probe(Answer::Granted)) => {
                Out { role: Probing, acts: hold(0), events: vec!["lease"], wake: Some(3_100), ..same }
            }
            (Free | Probing, Input::Probe(Answer::LeaseElsewhere)) => Out { wake: Some(2_100), ..same },
            (Held | Asking | OtherProbing, Input::Probe(Answer::LeaseElsewhere)) => {
                Out { role: OtherProbing, wake: Some(2_100), ..same }
            }
            (Free | Held | Probing | OtherProbing, Input::Probe(Answer::StillOpen)) => {
                Out { wake: Some(2_100), ..same }
            }
            (Asking, Input::Probe(Answer::StillOpen)) => Out { role: Held, wake: Some(2_100), ..same },
            // Timers.
            (Free | Asking, Input::Timer(Timer::Soon | Timer::Late)) => Out { wake: None, ..same },
            (Held, Input::Timer(Timer::Soon)) => {
                Out { role: Asking, acts: hold(200), ops: vec!["probe".to_owned()], wake: Some(2_300), ..same }
            }
            (OtherProbing, Input::Timer(Timer::Soon)) => Out { acts: hold(610), wake: Some(2_510), ..same },
            (Probing, Input::Timer(Timer::Soon)) => same,
            (Held | Probing | OtherProbing, Input::Timer(Timer::Late)) => {
                Out { role: Asking, acts: hold(200), ops: vec!["probe".to_owned()], wake: Some(3_300), ..same }
            }
            (_, Input::Timer(Timer::Manual)) => Out { wake: None, ..same },
            // A shadow replica holds on and reads the state where others ask for the lease.
            (Free | Asking, Input::Timer(Timer::Shadow)) => Out { wake: None, ..same },
            (Held, Input::Timer(Timer::Shadow)) => {
                Out { acts: hold(200), ops: vec!["state".to_owned()], wake: Some(2_300), ..same }
            }
            (OtherProbing, Input::Timer(Timer::Shadow)) => Out { acts: hold(610), wake: Some(2_510), ..same },
            (Probing, Input::Timer(Timer::Shadow)) => same,
            // Redis unreachable: back to the breaker's own policy, with what is left of
            // the fleet's wait (nothing, here), or held open.
            (Free | Probing, Input::Degraded(WhenUnreachable::Local)) => Out { role: Free, wake: None, ..same },
            (Held | Asking | OtherProbing, Input::Degraded(WhenUnreachable::Local)) => {
                Out { role: Free, acts: hold(0), wake: None, ..same }
            }
            (_, Input::Degraded(WhenUnreachable::Open)) => Out { role: Held, acts: hold(2_000), wake: None, ..same },
            (Free, Input::UnreachableTick) => same,
            (Held | Asking | OtherProbing, Input::UnreachableTick) => Out { acts: hold(2_000), ..same },
            (Probing, Input::UnreachableTick) => Out { role: Held, acts: hold(2_000), ..same },
        }
    }

    #[test]
    fn every_role_takes_every_input_as_the_table_says() {
        let clock = Clock::new();
        let mut checked = 0;
        for kind in KINDS {
            assert_eq!(kind_of(fixture(clock, kind, WhenUnreachable::Local).role), kind, "the fixture");
            for input in inputs() {
                assert_eq!(actual(clock, kind, input), expected(kind, input), "{kind:?} × {input:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 5 * 38);
    }

    // ===== scenarios, as the integration tests play them against a real server =====

    /// One replica's member of breaker "b", read closed at epoch 0 at t = 0.
    fn replica(clock: Clock, when_unreachable: WhenUnreachable) -> Member {
        let mut m = Member::new("b".to_owned(), settings(when_unreachable));
        let fx = run(&mut m, clock, 0, |m, now| m.on_reply(&Op::State, &snap(Code::Closed, 0, 0), now, closed(0, 0)));
        assert_eq!(fx, Effects::default());
        m
    }

    fn closed(calls: u64, failures: u64) -> Reading {
        Reading { state: State::Closed, calls, failures, shadow: false }
    }

    fn open(calls: u64, failures: u64) -> Reading {
        Reading { state: State::Open, calls, failures, shadow: false }
    }

    fn trip(clock: Clock, m: &mut Member, at: u64, wait: u64, b: Reading) -> Effects {
        let t = LocalTransition { open_for: Some(ms(wait)), ..local(clock, State::Open, Reason::Tripped, at) };
        run(m, clock, at, |m, now| m.on_local(&t, now, false, b))
    }

    fn opened(epoch: u64, remaining: u64) -> FleetEvent {
        FleetEvent::Opened { breaker: "b".to_owned(), epoch, remaining: ms(remaining) }
    }

    fn vote(calls: u64, failures: u64, vote: i8, wait: u64) -> Op {
        Op::Report { calls, failures, vote, wait: ms(wait), restore: Duration::ZERO, ramp_done: false, shadow: false }
    }

    #[test]
    fn a_trip_votes_and_only_the_quorum_opens_every_replica() {
        let clock = Clock::new();
        let (mut a, mut b) = (replica(clock, WhenUnreachable::Local), replica(clock, WhenUnreachable::Local));
        // a's breaker trips on its own: it votes, with its own wait and its counts.
        let fx = trip(clock, &mut a, 100, 30_000, open(5, 5));
        assert_eq!(fx.ops, vec![vote(5, 5, 1, 30_000)]);
        // Below the quorum: counted, still closed. a stays open on its own; b is untouched.
        let fx = run(&mut a, clock, 101, |m, now| {
            m.on_reply(&vote(5, 5, 1, 30_000), &granted(snap(Code::Closed, 0, 0)), now, open(5, 5))
        });
        assert_eq!(fx, Effects::default());
        assert_eq!((a.role, a.view(clock.at(101)).held), (Role::Free, false));
        // The vote is refreshed at every report; the counts are not sent twice.
        assert_eq!(a.report(open(5, 5)), Some(vote(0, 0, 1, 30_000)));
        assert_eq!(b.report(closed(0, 0)), None);

        // A second replica's vote opens the fleet for 30 s: the push reaches both.
        let push = snap(Code::Open, 1, 30_000);
        let fx = run(&mut b, clock, 200, |m, now| m.on_push(&push, now, closed(9, 0)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(30_000 + MARGIN))]);
        assert_eq!(fx.events, vec![opened(1, 30_000)]);
        let fx = run(&mut a, clock, 200, |m, now| m.on_push(&push, now, open(5, 5)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(30_000 + MARGIN))], "a's own open now ends with the fleet's");
        assert_eq!(a.vote, Vote::None, "the fleet is open: the vote is spent");
        for m in [&a, &b] {
            assert_eq!(m.view(clock.at(200)), FleetView { state: State::Open, epoch: 1, held: true, probing: false });
            assert_eq!(m.wake(), Some(clock.at(30_200)));
        }
        // The same push again, or a late one from before, changes nothing.
        assert_eq!(run(&mut b, clock, 300, |m, now| m.on_push(&push, now, open(9, 0))), Effects::default());
    }

    #[test]
    fn one_replica_probes_for_the_fleet_and_its_success_closes_every_replica() {
        let clock = Clock::new();
        let mut fleet: Vec<Member> = (0..3).map(|_| replica(clock, WhenUnreachable::Local)).collect();
        for m in &mut fleet {
            let _ = run(m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, closed(0, 0)));
        }
        // The wait is over: every replica holds on a little longer and asks for the lease.
        for m in &mut fleet {
            let fx = run(m, clock, 1_000, |m, now| m.on_timer(now, open(0, 0)));
            assert_eq!((fx.ops, m.role), (vec![Op::Probe], Role::Asking { until: Some(clock.at(1_000 + MARGIN)) }));
        }
        // The first request wins the lease: its breaker goes half-open for the fleet.
        let fx = run(&mut fleet[0], clock, 1_005, |m, now| {
            m.on_reply(&Op::Probe, &granted(lease(snap(Code::HalfOpen, 1, 0), 1, 10_000)), now, open(0, 0))
        });
        assert_eq!(fx.acts, vec![Act::HoldOpen(Duration::ZERO)]);
        assert_eq!(fx.events, vec![FleetEvent::ProbeLease { breaker: "b".to_owned(), epoch: 1 }]);
        assert!(fleet[0].view(clock.at(1_005)).probing);
        // The others learn who holds it and stay held while the lease lasts.
        for m in &mut fleet[1..] {
            let answer = lease(snap(Code::HalfOpen, 1, 0), 1, 9_990);
            let fx = run(m, clock, 1_010, |m, now| m.on_reply(&Op::Probe, &answer, now, open(0, 0)));
            assert_eq!(fx, Effects::default());
            let fx = run(m, clock, 1_010, |m, now| m.on_timer(now, open(0, 0)));
            assert_eq!(fx.acts, vec![Act::HoldOpen(ms(9_990 + MARGIN))]);
            assert!(fx.ops.is_empty(), "no second request while the lease is out");
            assert_eq!(m.wake(), Some(clock.at(11_000)));
        }
        // The probes succeed: the prober sends the verdict and is free again.
        let t = local(clock, State::Closed, Reason::ProbesSucceeded, 1_100);
        let fx = run(&mut fleet[0], clock, 1_100, |m, now| m.on_local(&t, now, false, closed(1, 0)));
        assert_eq!(fx.ops, vec![Op::ProbeResult { lease: 1, ok: true, wait: Duration::ZERO, ramp: false }]);
        assert_eq!(fleet[0].role, Role::Free);
        // The verdict's reply closes the fleet at epoch 2: nothing to do to its own
        // (closed) breaker; every other replica closes its breaker.
        let closed_at_2 = snap(Code::Closed, 2, 0);
        let verdict = Op::ProbeResult { lease: 1, ok: true, wait: Duration::ZERO, ramp: false };
        let fx = run(&mut fleet[0], clock, 1_101, |m, now| m.on_reply(&verdict, &closed_at_2, now, closed(1, 0)));
        assert_eq!((fx.acts, fx.events.len()), (vec![], 1));
        for m in &mut fleet[1..] {
            let fx = run(m, clock, 1_102, |m, now| m.on_push(&closed_at_2, now, open(0, 0)));
            assert_eq!(fx.acts, vec![Act::Close]);
            assert_eq!(fx.events, vec![FleetEvent::Closed { breaker: "b".to_owned(), epoch: 2 }]);
        }
        for m in &fleet {
            assert_eq!(
                m.view(clock.at(1_102)),
                FleetView { state: State::Closed, epoch: 2, held: false, probing: false }
            );
            assert_eq!(m.wake(), None);
        }
    }

    #[test]
    fn a_failed_probe_holds_the_prober_and_reopens_the_fleet() {
        let clock = Clock::new();
        let mut m = fixture(clock, Kind::Probing, WhenUnreachable::Local);
        let t = LocalTransition { open_for: Some(ms(3_000)), ..local(clock, State::Open, Reason::ProbeFailed, 2_100) };
        let fx = run(&mut m, clock, 2_100, |m, now| m.on_local(&t, now, false, open(4, 1)));
        let verdict = Op::ProbeResult { lease: 7, ok: false, wait: ms(3_000), ramp: false };
        assert_eq!(fx.ops, vec![verdict]);
        assert_eq!(m.role, Role::Held { until: Some(clock.at(5_100)) });
        let fx = run(&mut m, clock, 2_101, |m, now| m.on_reply(&verdict, &snap(Code::Open, 3, 3_000), now, open(4, 1)));
        assert_eq!(fx.events, vec![opened(3, 3_000)]);
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(3_000 + MARGIN))]);
        assert_eq!(m.view(clock.at(2_101)), FleetView { state: State::Open, epoch: 3, held: true, probing: false });
    }

    #[test]
    fn a_silent_lease_holder_is_replaced_when_its_lease_runs_out() {
        let clock = Clock::new();
        // Another replica holds the lease until 2510.
        let mut m = fixture(clock, Kind::OtherProbing, WhenUnreachable::Local);
        let fx = run(&mut m, clock, 2_010, |m, now| m.on_timer(now, open(0, 0)));
        assert!(fx.ops.is_empty());
        assert_eq!(m.wake(), Some(clock.at(2_510)));
        let fx = run(&mut m, clock, 2_510, |m, now| m.on_timer(now, open(0, 0)));
        assert_eq!(fx.ops, vec![Op::Probe], "the next lease");
        // And a prober whose own lease ran out without a verdict asks again too.
        let mut p = fixture(clock, Kind::Probing, WhenUnreachable::Local);
        let fx = run(&mut p, clock, 3_010, |m, now| {
            m.on_timer(now, Reading { state: State::HalfOpen, calls: 0, failures: 0, shadow: false })
        });
        assert_eq!(fx.ops, vec![Op::Probe]);
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(MARGIN))], "held again meanwhile");
        assert!(!p.view(clock.at(3_010)).probing);
    }

    #[test]
    fn a_lapsed_hold_is_renewed_at_once() {
        let clock = Clock::new();
        let mut m = fixture(clock, Kind::Held, WhenUnreachable::Local);
        // The task was starved past the hold: the breaker went half-open on its own.
        let t = local(clock, State::HalfOpen, Reason::WaitElapsed, 2_300);
        let fx = run(&mut m, clock, 2_300, |m, now| m.on_local(&t, now, false, open(0, 0)));
        assert_eq!((fx, m.wake()), (Effects::default(), Some(clock.at(2_300))));
        let fx = run(&mut m, clock, 2_300, |m, now| m.on_timer(now, open(0, 0)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(MARGIN))]);
        assert_eq!(fx.ops, vec![Op::Probe]);
    }

    #[test]
    fn epochs_only_move_forward_and_pushes_from_another_incarnation_are_ignored() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 100), now, closed(0, 0)));
        let _ = run(&mut m, clock, 200, |m, now| m.on_push(&snap(Code::Closed, 2, 0), now, open(0, 0)));
        // A late push of epoch 1, and a forged one from another incarnation.
        let fx = run(&mut m, clock, 300, |m, now| m.on_push(&snap(Code::Open, 1, 60_000), now, closed(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::StaleIgnored { breaker: "b".to_owned(), epoch: 1, current: 2 }]);
        assert!(fx.acts.is_empty());
        let forged = incarnation(snap(Code::Open, 9, 60_000), "ffff");
        assert_eq!(run(&mut m, clock, 300, |m, now| m.on_push(&forged, now, closed(0, 0))), Effects::default());
        assert_eq!(m.view(clock.at(300)), FleetView { state: State::Closed, epoch: 2, held: false, probing: false });
    }

    /// The report that restores an open state with `left` of its wait.
    fn restore_op(left: Duration) -> Op {
        Op::Report {
            calls: 0,
            failures: 0,
            vote: 0,
            wait: Duration::ZERO,
            restore: left,
            ramp_done: false,
            shadow: false,
        }
    }

    #[test]
    fn a_data_loss_restores_the_open_state_still_held() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_500), now, closed(0, 0)));
        // Redis restarts empty: a read at t = 400 finds a new incarnation, closed at epoch 0.
        let empty = incarnation(snap(Code::Closed, 0, 0), "inc-b");
        let fx = run(&mut m, clock, 400, |m, now| m.on_reply(&Op::State, &empty, now, open(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::DataLost { breaker: "b".to_owned() }]);
        let restore = restore_op(ms(1_100));
        assert_eq!(fx.ops, vec![restore], "what is left of the fleet's wait");
        assert!(fx.acts.is_empty(), "still held meanwhile");
        assert_eq!(m.seen(), ("inc-b", 0));
        // The restore's reply (or another replica's) is applied: epoch 1 of the new incarnation.
        let restored = incarnation(snap(Code::Open, 1, 1_100), "inc-b");
        let fx = run(&mut m, clock, 401, |m, now| m.on_reply(&restore, &restored, now, open(0, 0)));
        assert_eq!(fx.events, vec![opened(1, 1_100)]);
        assert_eq!(m.view(clock.at(401)).epoch, 1);
    }

    #[test]
    fn a_restore_lost_with_the_connection_is_sent_again_after_rejoining() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 3, 1_500), now, closed(0, 0)));
        // Redis restarted from an older snapshot: epoch 2, closed. The restore is queued...
        let rolled = Snapshot { rolled_back: true, ..snap(Code::Closed, 2, 0) };
        let fx = run(&mut m, clock, 400, |m, now| m.on_reply(&Op::State, &rolled, now, open(0, 0)));
        assert_eq!(fx.ops, vec![restore_op(ms(1_100))]);
        // ...and dropped: Redis is unreachable before it is answered.
        let _ = run(&mut m, clock, 450, |m, now| m.on_degraded(now, open(0, 0)));
        assert_eq!(m.seen(), (INC, 3), "back to what it had seen before the loss");
        // Rejoining, the read (sent with epoch 3) finds the loss again, and restores it.
        let fx = run(&mut m, clock, 600, |m, now| m.on_reply(&Op::State, &rolled, now, open(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::DataLost { breaker: "b".to_owned() }]);
        assert_eq!(fx.ops, vec![restore_op(ms(900))], "what is left of the fleet's wait");
        // Answered: the restored open is applied, and a later degrade keeps it.
        let fx = run(&mut m, clock, 601, |m, now| {
            m.on_reply(&restore_op(ms(900)), &snap(Code::Open, 3, 900), now, open(0, 0))
        });
        assert_eq!(fx.events, vec![opened(3, 900)]);
        let _ = run(&mut m, clock, 700, |m, now| m.on_degraded(now, open(0, 0)));
        assert_eq!(m.seen(), (INC, 3));
    }

    #[test]
    fn a_restore_lost_with_the_connection_after_a_restart_without_data_is_sent_again() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_500), now, closed(0, 0)));
        let empty = incarnation(snap(Code::Closed, 0, 0), "inc-b");
        let fx = run(&mut m, clock, 400, |m, now| m.on_reply(&Op::State, &empty, now, open(0, 0)));
        assert_eq!(fx.ops, vec![restore_op(ms(1_100))]);
        let _ = run(&mut m, clock, 450, |m, now| m.on_degraded(now, open(0, 0)));
        assert_eq!(m.seen(), (INC, 1));
        let fx = run(&mut m, clock, 600, |m, now| m.on_reply(&Op::State, &empty, now, open(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::DataLost { breaker: "b".to_owned() }]);
        assert_eq!(fx.ops, vec![restore_op(ms(900))]);
    }

    #[test]
    fn a_rolled_back_epoch_is_a_data_loss_and_a_stale_reply_is_not() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 3, 1_500), now, closed(0, 0)));
        // A late reply, older than the push: ignored.
        let fx = run(&mut m, clock, 10, |m, now| m.on_reply(&Op::State, &snap(Code::Closed, 2, 0), now, open(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::StaleIgnored { breaker: "b".to_owned(), epoch: 2, current: 3 }]);
        // Redis says the epoch this replica sent is ahead of its own: rolled back to 2.
        let rolled = Snapshot { rolled_back: true, ..snap(Code::Closed, 2, 0) };
        let fx = run(&mut m, clock, 400, |m, now| m.on_reply(&Op::State, &rolled, now, open(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::DataLost { breaker: "b".to_owned() }]);
        let restore = restore_op(ms(1_100));
        assert_eq!(fx.ops, vec![restore], "what is left of the fleet's wait");
        assert_eq!(m.seen(), (INC, 2), "follows Redis's epoch from now on");
        let fx = run(&mut m, clock, 401, |m, now| m.on_reply(&restore, &snap(Code::Open, 3, 1_100), now, open(0, 0)));
        assert_eq!(fx.events, vec![opened(3, 1_100)]);
    }

    #[test]
    fn a_data_loss_sends_the_lost_counts_and_vote_again() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let fx = trip(clock, &mut m, 100, 1_000, open(3, 3));
        let sent = fx.ops[0];
        // The report reaches a server that lost the keys: not counted.
        let empty = incarnation(snap(Code::Closed, 0, 0), "inc-b");
        let fx = run(&mut m, clock, 101, |m, now| m.on_reply(&sent, &empty, now, open(3, 3)));
        assert_eq!(fx.events, vec![FleetEvent::DataLost { breaker: "b".to_owned() }]);
        assert!(fx.ops.is_empty(), "the breaker is open on its own: nothing of the fleet's to restore");
        assert_eq!(m.report(open(3, 3)), Some(vote(3, 3, 1, 1_000)), "sent again");
        // Counted this time.
        let fx = run(&mut m, clock, 120, |m, now| {
            m.on_reply(&sent, &incarnation(granted(snap(Code::Closed, 0, 0)), "inc-b"), now, open(3, 3))
        });
        assert_eq!(fx, Effects::default());
        assert_eq!(m.report(open(3, 3)), Some(vote(0, 0, 1, 1_000)));
    }

    #[test]
    fn a_closed_breaker_withdraws_its_vote_once() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = trip(clock, &mut m, 100, 1_000, open(3, 3));
        let t = local(clock, State::Closed, Reason::ProbesSucceeded, 1_200);
        let fx = run(&mut m, clock, 1_200, |m, now| m.on_local(&t, now, false, closed(4, 3)));
        let withdraw = vote(4, 3, -1, 0);
        assert_eq!(fx.ops, vec![withdraw]);
        let _ = run(&mut m, clock, 1_201, |m, now| {
            m.on_reply(&withdraw, &granted(snap(Code::Closed, 0, 0)), now, closed(4, 3))
        });
        assert_eq!(m.report(closed(4, 3)), None, "withdrawn, and the counts are in");
    }

    #[test]
    fn a_local_transition_the_fleet_overrode_is_ignored() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        // The fleet opens the breaker at t = 100; a trip the listener saw at t = 99 arrives later.
        let _ = run(&mut m, clock, 100, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, closed(1, 1)));
        let fx = trip(clock, &mut m, 99, 1_000, open(1, 1));
        assert_eq!(fx, Effects::default());
        assert_eq!(m.vote, Vote::None);
        assert!(m.role.is_held());
    }

    #[test]
    fn manual_overrides_are_left_alone() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Open);
        let disabled = Reading { state: State::Disabled, calls: 0, failures: 0, shadow: false };
        let fx = run(&mut m, clock, 100, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, disabled));
        assert!(fx.acts.is_empty());
        assert_eq!(fx.events, vec![opened(1, 1_000)], "learned, not applied");
        assert_eq!(m.view(clock.at(100)).epoch, 1);
        assert_eq!(run(&mut m, clock, 1_000, |m, now| m.on_timer(now, disabled)), Effects::default());
        assert_eq!(run(&mut m, clock, 1_000, |m, now| m.on_degraded(now, disabled)), Effects::default());
        assert_eq!(run(&mut m, clock, 1_100, |m, now| m.on_unreachable_tick(now, disabled)), Effects::default());
    }

    #[test]
    fn unreachable_and_local_the_breaker_waits_out_the_fleet_then_decides_alone() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_500), now, closed(0, 0)));
        let fx = run(&mut m, clock, 500, |m, now| m.on_degraded(now, open(0, 0)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(1_000))], "what is left of the fleet's wait, not the margin");
        assert_eq!((m.role, m.wake()), (Role::Free, None));
        assert_eq!(run(&mut m, clock, 600, |m, now| m.on_unreachable_tick(now, open(0, 0))), Effects::default());
        // Its own probe fails: it votes, to be sent on rejoining.
        let t = LocalTransition { open_for: Some(ms(2_000)), ..local(clock, State::Open, Reason::ProbeFailed, 1_600) };
        let fx = run(&mut m, clock, 1_600, |m, now| m.on_local(&t, now, true, open(1, 1)));
        assert_eq!(fx, Effects::default(), "nothing is sent while unreachable");
        assert_eq!(m.report(open(1, 1)), Some(vote(1, 1, 1, 2_000)));
        // Rejoined: the fleet's state is read and applied even at the epoch already seen.
        let fx =
            run(&mut m, clock, 2_000, |m, now| m.on_reply(&Op::State, &snap(Code::HalfOpen, 1, 0), now, open(1, 1)));
        assert_eq!(fx.events, vec![opened(1, 0)]);
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(MARGIN))]);
    }

    #[test]
    fn unreachable_and_open_every_breaker_is_held_until_the_fleet_answers() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Open);
        let fx = run(&mut m, clock, 100, |m, now| m.on_degraded(now, closed(0, 0)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(2 * REFRESH))]);
        assert!(m.view(clock.at(100)).held);
        // Extended on the ticks once less than a refresh interval is left.
        assert_eq!(run(&mut m, clock, 1_000, |m, now| m.on_unreachable_tick(now, open(0, 0))), Effects::default());
        let fx = run(&mut m, clock, 1_200, |m, now| m.on_unreachable_tick(now, open(0, 0)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(2 * REFRESH))]);
        // Rejoined, the fleet closed: the breaker is released.
        let fx = run(&mut m, clock, 1_300, |m, now| m.on_reply(&Op::State, &snap(Code::Closed, 0, 0), now, open(0, 0)));
        assert_eq!(fx.acts, vec![Act::Close]);
        assert_eq!(fx.events, vec![FleetEvent::Closed { breaker: "b".to_owned(), epoch: 0 }]);
        assert_eq!(m.role, Role::Free);
        // A breaker first watched while unreachable is held too.
        let mut late = Member::new("late".to_owned(), settings(WhenUnreachable::Open));
        let fx = late.on_degraded(clock.at(1_400), closed(0, 0));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(2 * REFRESH))]);
    }

    #[test]
    fn the_view_turns_half_open_when_the_fleets_wait_passes() {
        let clock = Clock::new();
        let mut m = Member::new("b".to_owned(), settings(WhenUnreachable::Local));
        assert!(m.needs_read());
        assert_eq!(m.view(clock.at(0)), FleetView { state: State::Closed, epoch: 0, held: false, probing: false });
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 4, 1_000), now, closed(0, 0)));
        assert!(!m.needs_read());
        assert_eq!(m.view(clock.at(999)).state, State::Open);
        assert_eq!(m.view(clock.at(1_000)).state, State::HalfOpen);
    }

    // ===== the recovery ramp =====

    fn recovering(calls: u64, failures: u64) -> Reading {
        Reading { state: State::Recovering, calls, failures, shadow: false }
    }

    fn ramp_done(calls: u64, failures: u64) -> Op {
        Op::Report {
            calls,
            failures,
            vote: 0,
            wait: Duration::ZERO,
            restore: Duration::ZERO,
            ramp_done: true,
            shadow: false,
        }
    }

    #[test]
    fn the_probers_ramp_starts_the_fleets_and_every_replica_ramps_from_redis_time() {
        let clock = Clock::new();
        let mut fleet: Vec<Member> = (0..3).map(|_| replica(clock, WhenUnreachable::Local)).collect();
        for m in &mut fleet {
            let _ = run(m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, closed(0, 0)));
            let _ = run(m, clock, 1_000, |m, now| m.on_timer(now, open(0, 0)));
        }
        let _ = run(&mut fleet[0], clock, 1_005, |m, now| {
            m.on_reply(&Op::Probe, &granted(lease(snap(Code::HalfOpen, 1, 0), 1, 10_000)), now, open(0, 0))
        });
        for m in &mut fleet[1..] {
            let answer = lease(snap(Code::HalfOpen, 1, 0), 1, 9_990);
            let _ = run(m, clock, 1_010, |m, now| m.on_reply(&Op::Probe, &answer, now, open(0, 0)));
        }
        // The probes succeed and the prober's breaker begins its ramp: the verdict says so.
        let t = local(clock, State::Recovering, Reason::ProbesSucceeded, 1_100);
        let fx = run(&mut fleet[0], clock, 1_100, |m, now| m.on_local(&t, now, false, recovering(1, 0)));
        let verdict = Op::ProbeResult { lease: 1, ok: true, wait: Duration::ZERO, ramp: true };
        assert_eq!(fx.ops, vec![verdict]);
        // The script starts the fleet's ramp at its own TIME, 2 ms after the prober's: in
        // step, the prober's breaker is left alone.
        let fx = run(&mut fleet[0], clock, 1_104, |m, now| m.on_reply(&verdict, &ramping(2, 2), now, recovering(1, 0)));
        assert!(fx.acts.is_empty(), "{fx:?}");
        assert_eq!(fx.events, vec![FleetEvent::Recovering { breaker: "b".to_owned(), epoch: 2, elapsed: ms(2) }]);
        // The others learn it at different instants, each with Redis's elapsed time, and
        // enter the ramp at that point: the same start for all, whatever their clocks.
        for (i, m) in fleet[1..].iter_mut().enumerate() {
            let (at, elapsed) = (1_103 + 5 * i as u64, 1 + 5 * i as u64);
            let fx = run(m, clock, at, |m, now| m.on_push(&ramping(2, elapsed), now, open(0, 0)));
            assert_eq!(fx.acts, vec![Act::Recover(ms(elapsed))]);
            assert_eq!(
                fx.events,
                vec![FleetEvent::Recovering { breaker: "b".to_owned(), epoch: 2, elapsed: ms(elapsed) }]
            );
            assert_eq!(m.role, Role::Free);
            let Fleetwide::Recovering(p) = m.fleet else { panic!("{:?}", m.fleet) };
            assert_eq!(clock.ms(p.at) - p.elapsed.as_millis() as u64, 1_102, "the fleet's start, on this clock");
        }
        for m in &fleet {
            let v = m.view(clock.at(1_200));
            assert_eq!((v.state, v.epoch, v.held), (State::Recovering, 2, false));
            assert_eq!(m.wake(), None);
        }
        // While ramping, counts and votes go on as when closed; nothing says the ramp ended.
        assert_eq!(fleet[1].report(recovering(0, 0)), None);
        assert_eq!(fleet[1].report(recovering(4, 0)), Some(vote(4, 0, 0, 0)));

        // The ramp is over on a follower (its breaker reads closed): its next report says
        // so, and once Redis drops the ramp the fleet's state is plain closed again.
        let done = fleet[1].report(closed(0, 0));
        assert_eq!(done, Some(ramp_done(0, 0)));
        let fx = run(&mut fleet[1], clock, 3_110, |m, now| {
            m.on_reply(&ramp_done(0, 0), &granted(snap(Code::Closed, 2, 0)), now, closed(0, 0))
        });
        assert_eq!(fx, Effects::default(), "no new epoch: nothing to apply");
        assert_eq!(fleet[1].view(clock.at(3_110)).state, State::Closed);
        assert_eq!(fleet[1].report(closed(0, 0)), None);
        // Another replica reads the plain closed state at the same epoch: so is its view.
        let fx = run(&mut fleet[2], clock, 3_120, |m, now| {
            m.on_reply(&Op::State, &snap(Code::Closed, 2, 0), now, closed(0, 0))
        });
        assert_eq!(fx, Effects::default());
        assert_eq!(fleet[2].view(clock.at(3_120)).state, State::Closed);
        // The prober's ramp completes (a call saw it): it reports too, until it learns.
        let t = local(clock, State::Closed, Reason::RampCompleted, 3_099);
        let fx = run(&mut fleet[0], clock, 3_099, |m, now| m.on_local(&t, now, false, closed(1, 0)));
        assert_eq!(fx.ops, vec![ramp_done(1, 0)]);
    }

    #[test]
    fn a_replica_joining_or_reconnecting_mid_ramp_enters_it_at_redis_elapsed() {
        let clock = Clock::new();
        // A replica that starts 700 ms into the fleet's ramp.
        let mut late = Member::new("b".to_owned(), settings(WhenUnreachable::Local));
        let fx = run(&mut late, clock, 5_000, |m, now| m.on_reply(&Op::State, &ramping(4, 700), now, closed(0, 0)));
        assert_eq!(fx.acts, vec![Act::Recover(ms(700))]);
        assert_eq!(late.view(clock.at(5_000)).state, State::Recovering);

        // A replica that followed the ramp, then lost Redis for a while (deciding
        // locally, its breaker ramping on): on rejoining, the same epoch is applied again,
        // and finds it in step.
        let fx = run(&mut late, clock, 5_100, |m, now| m.on_degraded(now, recovering(0, 0)));
        assert!(fx.acts.is_empty());
        let fx =
            run(&mut late, clock, 5_900, |m, now| m.on_reply(&Op::State, &ramping(4, 1_601), now, recovering(0, 0)));
        assert!(fx.acts.is_empty(), "in step: its ramp is not restarted");
        // And once its ramp is over, a rejoin that still reads the ramp leaves it closed.
        let _ = run(&mut late, clock, 6_000, |m, now| m.on_degraded(now, closed(0, 0)));
        let fx = run(&mut late, clock, 9_000, |m, now| m.on_reply(&Op::State, &ramping(4, 4_700), now, closed(0, 0)));
        assert!(fx.acts.is_empty(), "{fx:?}");
        assert_eq!(late.report(closed(0, 0)), Some(ramp_done(0, 0)), "and says the ramp is over");

        // A replica whose breaker probed on its own while Redis was away, and ramps out of
        // step with the fleet, is moved to the fleet's point; one open on its own is not.
        let mut own = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut own, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, closed(0, 0)));
        let _ = run(&mut own, clock, 500, |m, now| m.on_degraded(now, open(0, 0)));
        let t = local(clock, State::Recovering, Reason::ProbesSucceeded, 1_000);
        let _ = run(&mut own, clock, 1_000, |m, now| m.on_local(&t, now, true, recovering(1, 0)));
        let fx = run(&mut own, clock, 2_000, |m, now| m.on_reply(&Op::State, &ramping(2, 300), now, recovering(1, 0)));
        assert_eq!(fx.acts, vec![Act::Recover(ms(300))], "1000 ms into its own ramp, 300 into the fleet's");
        let mut tripped = replica(clock, WhenUnreachable::Local);
        let _ = trip(clock, &mut tripped, 100, 1_000, open(3, 3));
        let fx = run(&mut tripped, clock, 200, |m, now| m.on_push(&ramping(1, 50), now, open(3, 3)));
        assert!(fx.acts.is_empty(), "open on its own policy: its vote and probes decide");
    }

    #[test]
    fn redis_losing_its_data_mid_ramp_leaves_the_ramps_running() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, closed(0, 0)));
        let _ = run(&mut m, clock, 1_200, |m, now| m.on_push(&ramping(2, 5), now, open(0, 0)));
        let empty = incarnation(snap(Code::Closed, 0, 0), "inc-b");
        let fx = run(&mut m, clock, 1_500, |m, now| m.on_reply(&Op::State, &empty, now, recovering(0, 0)));
        assert_eq!(fx.events, vec![FleetEvent::DataLost { breaker: "b".to_owned() }]);
        assert!(fx.acts.is_empty() && fx.ops.is_empty(), "nothing to restore: the breaker ramps on, in step");
        assert_eq!(m.view(clock.at(1_500)).state, State::Closed);
    }

    #[test]
    fn a_ramp_that_aborts_is_a_trip() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        let _ = run(&mut m, clock, 0, |m, now| m.on_push(&ramping(1, 0), now, closed(0, 0)));
        let t = LocalTransition { open_for: Some(ms(2_000)), ..local(clock, State::Open, Reason::RampFailed, 300) };
        let fx = run(&mut m, clock, 300, |m, now| m.on_local(&t, now, false, open(6, 3)));
        assert_eq!(fx.ops, vec![vote(6, 3, 1, 2_000)]);
        assert_eq!(m.report(open(6, 3)), Some(vote(6, 3, 1, 2_000)), "no ramp end from an open breaker");
    }

    // ===== shadow mode =====

    fn shadow(state: State, calls: u64, failures: u64) -> Reading {
        Reading { state, calls, failures, shadow: true }
    }

    #[test]
    fn a_shadow_replica_reports_would_be_votes_and_never_probes() {
        let clock = Clock::new();
        let mut m = replica(clock, WhenUnreachable::Local);
        // Its breaker trips (admitting every call all the same): a would-be vote.
        let fx = trip(clock, &mut m, 100, 1_000, shadow(State::Open, 5, 5));
        let would_be = Op::Report {
            calls: 5,
            failures: 5,
            vote: 1,
            wait: ms(1_000),
            restore: Duration::ZERO,
            ramp_done: false,
            shadow: true,
        };
        assert_eq!(fx.ops, vec![would_be]);
        // The fleet is opened by enforcing replicas: the shadow breaker is held like any.
        let fx =
            run(&mut m, clock, 200, |m, now| m.on_push(&snap(Code::Open, 1, 1_000), now, shadow(State::Open, 5, 5)));
        assert_eq!(fx.acts, vec![Act::HoldOpen(ms(1_000 + MARGIN))]);
        // The wait is over: it holds on and reads, where an enforcing replica would ask.
        let fx = run(&mut m, clock, 1_200, |m, now| m.on_timer(now, shadow(State::Open, 5, 5)));
        assert_eq!((fx.ops, m.role), (vec![Op::State], Role::Held { until: Some(clock.at(1_200 + MARGIN)) }));
        // Switched to enforcing at run time: the next wait asks for the lease.
        let fx = run(&mut m, clock, 1_400, |m, now| m.on_timer(now, open(5, 5)));
        assert_eq!(fx.ops, vec![Op::Probe]);
        // And the enforcing replicas' verdict releases it into their ramp.
        let fx = run(&mut m, clock, 1_450, |m, now| m.on_push(&ramping(2, 1), now, shadow(State::Open, 5, 5)));
        assert_eq!(fx.acts, vec![Act::Recover(ms(1))]);
    }
}
