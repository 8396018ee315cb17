//! What the fleet reports: [`FleetEvent`]s as they happen, and the [`FleetView`] of
//! one breaker and the [`FleetStatus`] of the whole fleet on request.

use std::time::Duration;

use breakerbox::State;

use crate::WhenUnreachable;

/// Something that happened to the fleet, for [`FleetBuilder::on_event`](crate::FleetBuilder::on_event)
/// (and `tracing` and `metrics`, with those features).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetEvent {
    /// The first exchange with Redis succeeded.
    Joined,
    /// Redis cannot be reached (down, slow or partitioned away): the breakers now act as
    /// [`when_unreachable`](crate::FleetConfig::when_unreachable) says. Emitted once per
    /// episode.
    Degraded {
        /// The first error of the episode.
        reason: String,
        /// What the breakers do meanwhile.
        when_unreachable: WhenUnreachable,
    },
    /// Redis answers again; every breaker was reconciled with the fleet.
    Rejoined {
        /// How long the fleet was unreachable.
        after: Duration,
    },
    /// Redis lost a breaker's keys (a restart without persistence, a flush, an eviction),
    /// or acknowledged writes to them (the state rolled back to an older epoch: a
    /// failover to a lagging replica, a restart from an older snapshot): this replica
    /// re-pushed its local view (an open it held, its own vote).
    DataLost {
        /// The breaker.
        breaker: String,
    },
    /// The fleet opened a breaker (or reopened it after a failed probe), and this replica
    /// applied it.
    Opened {
        /// The breaker.
        breaker: String,
        /// The fleet's epoch of this decision.
        epoch: u64,
        /// The open wait left, by Redis's clock, when the decision was read.
        remaining: Duration,
    },
    /// The fleet closed a breaker, and this replica applied it.
    Closed {
        /// The breaker.
        breaker: String,
        /// The fleet's epoch of this decision.
        epoch: u64,
    },
    /// The fleet closed a breaker through its [recovery ramp](breakerbox::ramp) (the
    /// probes succeeded on a replica whose breaker ramps), and this replica's breaker
    /// follows it: [`Breaker::recover`](breakerbox::Breaker::recover) at the point of the
    /// ramp Redis's clock gives, so that every replica admits the same fraction of calls
    /// and closes at the same time.
    Recovering {
        /// The breaker.
        breaker: String,
        /// The fleet's epoch of this decision.
        epoch: u64,
        /// How far into the ramp the fleet was, by Redis's clock, when the decision was
        /// read.
        elapsed: Duration,
    },
    /// This replica holds the fleet's probe lease for a breaker: its breaker goes
    /// half-open and sends the probes for the whole fleet.
    ProbeLease {
        /// The breaker.
        breaker: String,
        /// The fleet's epoch.
        epoch: u64,
    },
    /// An update older than the state already applied (a late push, a reply overtaken
    /// by a newer one) was ignored.
    StaleIgnored {
        /// The breaker.
        breaker: String,
        /// The update's epoch.
        epoch: u64,
        /// The epoch already applied.
        current: u64,
    },
}

/// What this replica knows of the fleet's state of one breaker, from
/// [`Fleet::view`](crate::Fleet::view).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetView {
    /// The fleet's state: [`State::Closed`], [`State::Open`], [`State::HalfOpen`]
    /// (open, its wait passed, probing through the lease), or [`State::Recovering`]
    /// (closed by a probe, its recovery ramp not yet over on this replica).
    pub state: State,
    /// The fleet's epoch: +1 on every fleet-wide transition.
    pub epoch: u64,
    /// Whether this replica's breaker is held open by the fleet (rather than by its own
    /// policy).
    pub held: bool,
    /// Whether this replica holds the probe lease.
    pub probing: bool,
}

/// A snapshot of the fleet's health, from [`Fleet::status`](crate::Fleet::status).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStatus {
    /// This replica's id.
    pub replica_id: String,
    /// Whether Redis has answered at least once.
    pub joined: bool,
    /// Whether Redis is unreachable now (breakers deciding locally).
    pub degraded: bool,
    /// Time since the last successful exchange with Redis.
    pub sync_lag: Option<Duration>,
    /// Breakers synced.
    pub breakers: usize,
    /// Store operations sent.
    pub ops: u64,
    /// Store operations that failed or timed out.
    pub errors: u64,
    /// Fleet decisions applied to local breakers.
    pub applied: u64,
    /// Stale updates ignored.
    pub stale_ignored: u64,
    /// Breakers whose keys Redis lost.
    pub data_losses: u64,
    /// Probe leases granted to this replica.
    pub probe_leases: u64,
}
