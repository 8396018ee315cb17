//! Share [`breakerbox`] circuit breaker state across a fleet of processes through Redis,
//! without touching the call path.
//!
//! Each replica keeps its breakers and their lock-free fast path: a call is decided
//! locally, always. A [`Fleet`] watches the breakers from a background tokio task, pushes
//! their trips and outcome counts to Redis, where atomic Lua scripts own every fleet-wide
//! transition, and applies the fleet's decisions back to each breaker. One replica's trip
//! then opens the circuit on every replica within a bounded delay, and after the open wait
//! one replica probes for the whole fleet.
//!
//! ```no_run
//! use breakerbox::{Breaker, Policy};
//! use breakerbox_redis::{Fleet, FleetConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fleet = Fleet::builder(FleetConfig::new("checkout").min_replicas(2))
//!     .start(redis::Client::open("redis://127.0.0.1:6379")?)?;
//! let payments = fleet.breaker(Breaker::builder().name("payments").policy(Policy::consecutive_failures(5)))?;
//! // Exactly as without a fleet; no call ever waits on Redis.
//! let receipt = payments.call(|| Ok::<_, std::io::Error>("charged"));
//! # let _ = receipt;
//! # Ok(()) }
//! ```
//!
//! - [`Fleet`]: [`attach`](Fleet::attach) a builder, [`watch`](Fleet::watch) a breaker or
//!   [`watch_box`](Fleet::watch_box) a [`BreakerBox`](breakerbox::BreakerBox);
//!   [`breaker`](Fleet::breaker) and [`breaker_box`](Fleet::breaker_box) do both.
//! - [`FleetConfig`]: quorum, intervals, leases, TTLs, timeouts, and
//!   [`WhenUnreachable`]: what a replica does while Redis cannot be reached.
//! - [`FleetEvent`], [`FleetStatus`], [`FleetView`]: what the fleet did, how it is, what
//!   it decided.
//! - [`Connect`]: where Redis is, for [`FleetBuilder::start_with`] and
//!   [`FleetBuilder::connect`] ([`FleetConfig::redis`]): one node, a master through Redis
//!   Sentinel (feature `sentinel`), or a Redis Cluster (feature `cluster`).
//!   [`FleetBuilder::start`] takes a `redis::Client` for one node.
//!
//! # Connecting
//!
//! ```no_run
//! use breakerbox_redis::{Connect, Fleet, FleetConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fleet = Fleet::builder(FleetConfig::new("checkout"))
//!     .start_with(Connect::sentinel("mymaster", ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]))?;
//! # let _ = fleet;
//! # Ok(()) }
//! ```
//!
//! - **One node** ([`start`](FleetBuilder::start) with a client, or [`Connect::Url`]):
//!   the fleet follows a failover only where the address moves to the new master (a
//!   virtual IP, DNS, a proxy).
//! - **Sentinel** ([`Connect::Sentinel`], feature `sentinel`): the sentinels are asked
//!   for the master at every connection (the first, every reconnection after the fleet
//!   degraded, every pub/sub reconnection), since a connection is tied to one address;
//!   and at every `refresh_interval` a sentinel is asked whether the master moved (after
//!   `SENTINEL FAILOVER` or a partition, Sentinel demotes an old master that still runs
//!   only seconds later, and it takes writes meanwhile): if so, both connections move.
//! - **Cluster** ([`Connect::Cluster`], feature `cluster`): the scripts run on the redis
//!   crate's async cluster connection, which routes each one by its keys' slot (one hash
//!   tag per breaker: one slot) and follows `MOVED` and `ASK` (a few retries within
//!   `operation_timeout`). Pushes come from a plain subscription to one seed node (the
//!   next after a failure, or after a `PING` unanswered: a frozen or partitioned node
//!   closes nothing): a cluster forwards classic `PUBLISH` to every node. While a
//!   breaker's slot is half-migrated, a script whose keys are not all on one side gets
//!   `TRYAGAIN`, and past the retries the fleet degrades until the slot has moved.
//!
//! # How it works
//!
//! ```text
//!  replica A                                 Redis                          replica B
//!  breaker ──trip──▶ listener ──channel──▶ task ──report (Lua)──▶ votes, counts
//!                                                          quorum? ──▶ epoch+1, open_until
//!                                                                    ──PUBLISH──▶ task ──hold_open(remaining)──▶ breaker
//!  after the wait: every task asks `probe`; one gets the lease ──▶ hold_open(0): its breaker
//!  sends half_open_probes probes ──▶ probe_result ──▶ epoch+1, closed ──PUBLISH──▶ close()
//!  (with a recovery ramp: probe_result ──▶ epoch+1, ramp_t0 = TIME ──PUBLISH──▶ recover(TIME − ramp_t0))
//! ```
//!
//! - **Nothing on the call path.** The fleet adds one `on_state_change` listener (a
//!   non-blocking channel send, only when the breaker changes state) and reads the
//!   breaker's counters ([`Breaker::metrics`](breakerbox::Breaker::metrics)) every
//!   `sync_interval` from its own task. Fleet decisions arrive through
//!   [`hold_open`](breakerbox::Breaker::hold_open), [`close`](breakerbox::Breaker::close)
//!   and [`recover`](breakerbox::Breaker::recover), whose transitions carry
//!   [`Reason::External`](breakerbox::Reason::External) and are not echoed back.
//! - **Votes and quorum.** A replica whose breaker opens on its own policy votes to open
//!   the fleet (the vote lasts one `window`, refreshed while its breaker stays open). The
//!   fleet opens when at least `min_replicas` replicas vote and the fleet reported at least
//!   `min_calls` calls in the window: one bad replica cannot trip the fleet alone (unless
//!   `min_replicas` is 1). Below the quorum the voter stays open locally; the others do
//!   not.
//! - **The open wait** is the longest wait among the votes (each breaker's own
//!   [`OpenWait`](breakerbox::OpenWait), backoff and retry-after hints included); after a
//!   failed fleet probe, the prober's next wait.
//! - **Half-open, fleet-wide.** When the wait has passed (by Redis's clock), replicas ask
//!   for the probe lease; the script grants one at a time, for `probe_lease`. The holder's
//!   breaker goes half-open and sends its [`half_open_probes`](breakerbox::BreakerBuilder::half_open_probes)
//!   probes; every other replica stays open. The holder's verdict closes the fleet, or
//!   reopens it; a verdict from an expired lease or an older epoch is ignored.
//! - **Recovery ramp, in step.** When the prober's breaker has a
//!   [recovery ramp](breakerbox::ramp), its probes' success puts it in
//!   [`State::Recovering`](breakerbox::State::Recovering) and its verdict says so:
//!   `probe_result` closes the fleet and writes the ramp's start, `ramp_t0`, from Redis's
//!   `TIME`. Every script then reports the fleet as recovering, with the time since
//!   `ramp_t0` by Redis's clock, and every other replica, instead of `close()`, calls
//!   [`recover(elapsed)`](breakerbox::Breaker::recover): its breaker enters the ramp at
//!   that point of it, so every replica admits the same fraction f(t) at the same moment
//!   and closes at the same time ([`FleetEvent::Recovering`]). A replica that joins or
//!   reconnects mid-ramp reads the same elapsed time and enters at the same point; one
//!   already in step (the prober, or a replica that followed the ramp) is left alone. A
//!   ramp that aborts on one replica (`RampFailed`) reopens its breaker and is a trip for
//!   the fleet: a vote. Redis does not know the ramp's length (each breaker does): the
//!   first replica whose breaker finished the ramp says so in its next report, and
//!   `ramp_t0` is dropped (no new epoch), so that a replica joining afterwards does not
//!   ramp. *Why Redis's clock*: a start taken from the prober's wall clock would shift
//!   every other replica's ramp by its clock's offset, and one taken on arrival would
//!   shift it by however late a replica learns of it (a lost push waits for a refresh; a
//!   replica may join a minute later). Here `ramp_t0` and the elapsed time are both read on
//!   Redis, replicas receive a duration and turn it into a deadline on their own monotonic
//!   clock: *clock skew between replicas has no effect at all*; what is left is the
//!   transit of the reply or push that carried the elapsed time (under a millisecond on a
//!   LAN, at most `operation_timeout`), and the prober's own ramp, which began a round
//!   trip before `ramp_t0`.
//! - **Shadow mode stays local.** A replica whose breaker is in
//!   [shadow mode](breakerbox::BreakerBuilder::shadow) still trips on its own and reports
//!   it, as a *would-be* vote: the script keeps it (marked `shadow` in the votes hash, for
//!   one `window`) but never counts it toward `min_replicas`, and does not count the
//!   replica's calls toward `min_calls`, so a shadow replica never opens the fleet for
//!   the enforcing replicas. The fleet's own decisions are applied to it as to any
//!   replica (held open, closed, released into the ramp), and shadow mode admits every
//!   call all the same, counting the ones it would have rejected in
//!   [`Metrics::would_reject`](breakerbox::Metrics::would_reject). It never asks for the
//!   probe lease: past the fleet's wait it stays held and reads the fleet's state until an
//!   enforcing replica's verdict. Shadow mode is read at every step: switching it at run
//!   time ([`Breaker::set_shadow`](breakerbox::Breaker::set_shadow)) takes effect at the
//!   breaker's next report.
//! - **Epochs.** Every fleet transition adds one to the breaker's epoch; a replica applies
//!   a state only if its epoch is newer than the one it applied, so a late push or an
//!   overtaken reply never undoes a newer state. Votes, counts and verdicts sent for an
//!   older epoch are not counted.
//! - **Redis's clock only.** Scripts read `TIME`; replicas receive time *remaining* and
//!   turn it into a deadline on their own monotonic clock, so no two hosts' clocks are ever
//!   compared, and skew cannot keep a circuit open or closed.
//! - **Keys.** `<prefix>:{<service>:<breaker>}:state`, `:votes` and `:counts`: namespaced
//!   per service and breaker, one hash tag (one Redis Cluster slot) per breaker, and a TTL
//!   on every key (`key_ttl` for the state, refreshed while any replica syncs it; twice
//!   the `window` for votes and counts). Pushes go to `<prefix>:<service>:events`.
//! - **Data loss.** The state carries an incarnation token, set when it is created. A
//!   replica that sees a new token knows Redis lost the keys (a restart without
//!   persistence, a flush, an eviction): it emits [`FleetEvent::DataLost`], restores an
//!   open state it was holding (with the time it had left), and votes again if its breaker
//!   is open on its own.
//! - **Redis down, slow or partitioned.** Every operation has `operation_timeout`. On the
//!   first failure the fleet is degraded: [`FleetEvent::Degraded`] (once per episode), and
//!   the breakers act as [`WhenUnreachable`] says: decide locally (the default), or hold
//!   open. The task retries with backoff; when Redis answers it reads every breaker's fleet
//!   state, adopts it (closing what it held, opening what the fleet opened meanwhile),
//!   votes again for breakers open on their own, and emits [`FleetEvent::Rejoined`].
//!
//! # Consistency model
//!
//! Guaranteed (while the replicas reach Redis and Redis keeps its writes):
//!
//! - Fleet transitions are atomic and totally ordered per breaker (one Lua script at a
//!   time), numbered by the epoch; each replica applies them in epoch order and never
//!   goes back to an older one.
//! - At most one replica holds a breaker's probe lease at any time (by Redis's clock); only
//!   its verdict, for the current epoch, can close or reopen the fleet. The fleet sends
//!   `half_open_probes` probes per lease, not per replica.
//! - No call waits on Redis, ever: not when it is up, down, slow or frozen. The call path
//!   is the local breaker's, unchanged.
//! - Deadlines use Redis's clock only; hosts' clock offsets do not matter. So does the
//!   fleet's recovery ramp: every replica's breaker ramps from the one start Redis's
//!   `TIME` gave, whatever its host's clock, and however late it learned of it.
//! - The fleet opens only with `min_replicas` votes and `min_calls` calls in the window,
//!   from replicas that enforce: a replica in shadow mode never opens it.
//!
//! Best effort:
//!
//! - **Propagation.** A trip reaches the other replicas by pub/sub, about one Redis round
//!   trip after the tripping call: measured on loopback on a 2-core machine (release
//!   build, `cargo bench`), median 0.16 ms and p99 0.35 ms from the tripping call to the
//!   other replica's open breaker; about 1 ms between OS processes in the (debug) tests.
//!   Pub/sub is at-most-once: a replica that misses a push catches up at its next
//!   refresh (every `refresh_interval`; sooner for a breaker with calls to report, whose
//!   report returns the fleet's state every `sync_interval`), and may admit calls the
//!   fleet would reject meanwhile.
//! - **Counts** reach Redis every `sync_interval`; votes are pushed at once. After a fleet
//!   trip, a fleet overshoots by about replicas × call rate × propagation delay.
//! - **The ramp's step.** Replicas enter the fleet's ramp within the transit of one reply
//!   or push of each other (measured on loopback, debug build, three replicas and a late
//!   joiner on a 2 s ramp, ten runs: the fractions read together agree within 0.0004 to
//!   0.0015, that is 1 to 3 ms of the ramp, and the breakers close within 0 to 3.5 ms of
//!   each other, polled every millisecond; the test allows one `sync_interval`). The breakers of one name must have the same
//!   ramp on every replica: each computes f(t) and the ramp's end from its own settings.
//! - **Redis lost mid-ramp.** Unreachable, with `when_unreachable = "local"`, the breakers
//!   are already ramping on their own clocks toward one end: they go on in step and close
//!   together; a ramp that aborts is decided locally (and voted on rejoining). On
//!   rejoining, a breaker still in step is left alone, one that ramps out of step (it
//!   probed on its own meanwhile) is moved to the fleet's point, one whose ramp ended stays
//!   closed. With `"open"` the breakers are held open, the ramp with them, and on
//!   rejoining are released into the ramp where Redis's clock then is (or closed, past
//!   it). Redis losing the keys mid-ramp (a new incarnation, closed, no ramp) leaves the
//!   running ramps alone, but a replica that joins afterwards does not ramp.
//! - **Lease holders that die or stall** delay recovery by up to `probe_lease`, then another
//!   replica probes. A replica whose task is starved for longer than
//!   `sync_interval + 2 × operation_timeout` past the open wait may probe once without the
//!   lease.
//! - **Redis losing acknowledged writes** (a failover with asynchronous replication, a
//!   restart from an older RDB snapshot or an `appendfsync everysec` tail) may roll a
//!   breaker's state back to an older epoch of the same incarnation. The next reply to a
//!   replica that saw the newer epoch says so; the replica treats it as a data loss
//!   (`DataLost`): it restores an open state it still holds, and follows Redis's epoch
//!   from then on. What the lost writes carried and no replica holds (counts, a vote
//!   already applied, a lease) is lost. So are writes a fleet on Sentinel sends to an old
//!   master that still runs, between Sentinel's switch and the fleet's next check (one
//!   `refresh_interval`). A failover that loses the keys entirely is
//!   detected as a data loss (a new incarnation) and restored the same way.
//! - **A family's breakers** ([`Fleet::watch_box`]) exist only for keys a replica has
//!   used: the fleet's state for a key is applied when the replica first uses it (within a
//!   `sync_interval`).
//! - **Manual overrides** ([`force_open`](breakerbox::Breaker::force_open),
//!   [`disable`](breakerbox::Breaker::disable)) are local and win over the fleet.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tracing` | no | `tracing` events, target `breakerbox_redis`: `warn` when Redis becomes unreachable, when Redis lost a breaker's state, when the fleet opens a breaker; `info` when it rejoins, closes a breaker, grants this replica the probe lease; `debug` for stale updates. Also turns on `breakerbox/tracing`. |
//! | `metrics` | no | the metrics below, through the `metrics` facade. Also turns on `breakerbox/metrics`. |
//! | `serde` | no | `Serialize`/`Deserialize` for [`FleetConfig`] and [`Connect`] (durations as `"250ms"`, unknown keys rejected). Also turns on `breakerbox/serde`. |
//! | `sentinel` | no | [`Connect::Sentinel`]: the master found through Redis Sentinel, followed across failovers. Turns on the redis crate's `sentinel`. |
//! | `cluster` | no | [`Connect::Cluster`]: a Redis Cluster. Turns on the redis crate's `cluster-async`. |
//!
//! # Metrics (feature `metrics`)
//!
//! Every series carries the label `service`. Nothing is recorded on a call's path.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `breakerbox_fleet_sync_lag_seconds` | gauge | | time since the last successful exchange with Redis (grows while degraded) |
//! | `breakerbox_fleet_sync_duration_seconds` | histogram | | round trip of one round of store operations |
//! | `breakerbox_fleet_store_ops_total` | counter | `op` = `state`, `report`, `probe`, `probe_result` | store operations sent |
//! | `breakerbox_fleet_store_errors_total` | counter | `op` | rounds that failed or timed out |
//! | `breakerbox_fleet_degraded` | gauge | | 1 while Redis cannot be reached |
//! | `breakerbox_fleet_applied_total` | counter | `state` = `open`, `closed`, `recovering` | fleet decisions applied to a local breaker |
//! | `breakerbox_fleet_stale_updates_total` | counter | | updates ignored for an older epoch |
//! | `breakerbox_fleet_data_loss_total` | counter | | breakers whose keys Redis lost |
//!
//! # Requirements
//!
//! A tokio runtime (the fleet's tasks run on it) and Redis 5 or later (scripts write after
//! reading `TIME`, which needs script effects replication; tested with 7.0). The breakers
//! of one name should be configured alike on every replica.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod config;
mod connect;
mod error;
mod event;
mod fleet;
mod member;
mod script;
mod shared;
mod telemetry;
mod worker;

// The integration tests' real `redis-server`, for the scripts' own tests.
#[cfg(test)]
extern crate self as breakerbox_redis;
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod test_support;

pub use config::{FleetConfig, WhenUnreachable};
pub use connect::Connect;
pub use error::FleetError;
pub use event::{FleetEvent, FleetStatus, FleetView};
pub use fleet::{Fleet, FleetBuilder};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
