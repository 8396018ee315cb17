//! The fleet handle: attach breakers, watch them, read the status.

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use breakerbox::{Breaker, BreakerBox, BreakerBuilder, ConfigError, Reason, Transition};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::connect::Target;
use crate::shared::{Command, LocalTransition, OnEvent, Shared, Status, random};
use crate::worker::Worker;
use crate::{Connect, FleetConfig, FleetError, FleetEvent, FleetStatus, FleetView};

/// Shares breaker state across a fleet of processes through Redis.
///
/// Every breaker keeps deciding on its own, lock-free fast path: the fleet never runs on
/// a call. It watches the breakers from a background tokio task: it learns of their state
/// changes through a listener that [`attach`](Self::attach) adds to the builder (a
/// non-blocking channel send, only on a state change), reads their outcome counts every
/// [`sync_interval`](FleetConfig::sync_interval) by diffing
/// [`Breaker::metrics`], and pushes both to Redis, where Lua scripts own every fleet-wide
/// transition. The fleet's decisions come back by pub/sub (and polling) and are applied
/// with [`Breaker::hold_open`], [`Breaker::close`] and, for a breaker with a recovery
/// ramp, [`Breaker::recover`] (every replica ramps from the start Redis's clock gives).
///
/// See the [crate documentation](crate) for the consistency model.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use breakerbox::{Breaker, Policy};
/// use breakerbox_redis::{Fleet, FleetConfig};
///
/// let client = redis::Client::open("redis://127.0.0.1:6379")?;
/// let fleet = Fleet::builder(FleetConfig::new("checkout")).start(client)?;
/// let payments = fleet.breaker(Breaker::builder().name("payments").policy(Policy::consecutive_failures(5)))?;
/// // Calls never wait on Redis:
/// let _ = payments.call(|| Ok::<_, std::io::Error>("charged"));
/// # Ok(()) }
/// ```
///
/// # Clone
///
/// Clones share one fleet. The background tasks stop when the last clone is dropped;
/// breakers then decide locally (a breaker the fleet held open waits out its hold, then
/// probes on its own).
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

// ===== impl Fleet =====

impl Fleet {
    /// A builder for a fleet with these settings.
    pub fn builder(config: FleetConfig) -> FleetBuilder {
        FleetBuilder { config, listeners: Vec::new() }
    }

    /// Adds the fleet's listener to `builder`: a state change of any breaker built from
    /// it is sent to the fleet (a non-blocking channel send; nothing per call). Then build
    /// it and [`watch`](Self::watch) it, or build a [`BreakerBox`] from it and
    /// [`watch_box`](Self::watch_box) it. [`breaker`](Self::breaker) does all of this.
    ///
    /// Transitions the fleet itself caused ([`Reason::External`]) are not sent back.
    pub fn attach(&self, builder: BreakerBuilder) -> BreakerBuilder {
        builder.on_state_change(self.listener())
    }

    /// The state-change listener that [`attach`](Self::attach) adds: for a breaker whose
    /// listeners are forwarded from somewhere else (a binding that adds one forwarding
    /// listener to every breaker it builds, and plugs a fleet's into it later). Call it
    /// from the breaker's `on_state_change`, with that breaker's transitions only; it
    /// never blocks (a channel send), and does nothing once the fleet has stopped.
    pub fn listener(&self) -> impl Fn(&Transition<'_>) + Send + Sync + 'static {
        let tx = self.shared.local_tx.clone();
        move |t| {
            if t.reason != Reason::External {
                let _ = tx.send(LocalTransition {
                    breaker: t.breaker.to_owned(),
                    to: t.to,
                    reason: t.reason,
                    open_for: t.open_for,
                    at: std::time::Instant::now(),
                });
            }
        }
    }

    /// Syncs `breaker` with the fleet, under its name. Build it from a builder passed
    /// through [`attach`](Self::attach), or its own state changes are seen only through
    /// its counts.
    pub fn watch(&self, breaker: &Breaker) {
        let _ = self.shared.cmd_tx.send(Command::Watch(breaker.clone()));
    }

    /// Syncs every breaker of `family`, present and future, each under its own name
    /// (`"{template}/{key}"`). Build the family from a template passed through
    /// [`attach`](Self::attach).
    ///
    /// A breaker the family evicts stops being synced. A key this replica has never
    /// used has no breaker here: the fleet's state for it is applied when it is first
    /// used (within a [`sync_interval`](FleetConfig::sync_interval)).
    pub fn watch_box<K>(&self, family: &BreakerBox<K>)
    where
        K: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static,
    {
        let family = family.clone();
        let members = Box::new(move || family.entries().into_iter().map(|(_, b)| b).collect());
        let _ = self.shared.cmd_tx.send(Command::WatchFamily(members));
    }

    /// Attaches, builds and watches a breaker.
    ///
    /// # Errors
    ///
    /// The builder's [`ConfigError`].
    pub fn breaker(&self, builder: BreakerBuilder) -> Result<Breaker, ConfigError> {
        let breaker = self.attach(builder).build()?;
        self.watch(&breaker);
        Ok(breaker)
    }

    /// Attaches, builds and watches a family of breakers with the default bounds (build
    /// it yourself from [`attach`](Self::attach) for others).
    ///
    /// # Errors
    ///
    /// The template's [`ConfigError`].
    pub fn breaker_box<K>(&self, template: BreakerBuilder) -> Result<BreakerBox<K>, ConfigError>
    where
        K: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static,
    {
        let family = BreakerBox::new(self.attach(template))?;
        self.watch_box(&family);
        Ok(family)
    }

    /// Syncs every watched breaker now (pushes counts, reads the fleet's state, applies
    /// it) and returns when done. Not needed in normal operation (the background task
    /// syncs on its own); useful at startup, in tests and before shutdown.
    ///
    /// # Errors
    ///
    /// The store's error if Redis could not be reached (the fleet is then degraded, and
    /// the breakers decide as [`when_unreachable`](FleetConfig::when_unreachable) says),
    /// or [`FleetError::Stopped`].
    pub async fn sync(&self) -> Result<(), FleetError> {
        let (tx, rx) = oneshot::channel();
        self.shared.cmd_tx.send(Command::Sync(tx)).map_err(|_| FleetError::Stopped)?;
        rx.await.map_err(|_| FleetError::Stopped)?
    }

    /// What this replica knows of the fleet's state of the breaker named `breaker`.
    pub fn view(&self, breaker: &str) -> Option<FleetView> {
        self.shared.status().views.get(breaker).cloned()
    }

    /// The fleet's health.
    pub fn status(&self) -> FleetStatus {
        let s = self.shared.status();
        FleetStatus {
            replica_id: self.shared.replica.clone(),
            joined: s.joined,
            degraded: s.degraded,
            sync_lag: s.last_ok.map(|t| t.elapsed()),
            breakers: s.views.len(),
            ops: s.ops,
            errors: s.errors,
            applied: s.applied,
            stale_ignored: s.stale_ignored,
            data_losses: s.data_losses,
            probe_leases: s.probe_leases,
        }
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.shared.replica
    }

    /// The settings.
    pub fn config(&self) -> &FleetConfig {
        &self.shared.config
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("service", &self.shared.config.service)
            .field("replica_id", &self.shared.replica)
            .field("degraded", &self.shared.status().degraded)
            .finish()
    }
}

// ===== impl FleetBuilder =====

/// Builds a [`Fleet`]: settings, event listeners, then one of
/// [`start`](Self::start) (a `redis::Client` for one node),
/// [`start_with`](Self::start_with) (a [`Connect`]: one node, Sentinel or a Cluster) or
/// [`connect`](Self::connect) (the [`Connect`] in [`FleetConfig::redis`]).
#[derive(Clone)]
pub struct FleetBuilder {
    config: FleetConfig,
    listeners: Vec<OnEvent>,
}

impl FleetBuilder {
    /// Calls `f` on every [`FleetEvent`], from the background task (keep it short).
    #[must_use]
    pub fn on_event(mut self, f: impl Fn(&FleetEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Starts the fleet's background tasks on the current tokio runtime. Returns at once:
    /// the connection to Redis is made in the background, and while Redis cannot be
    /// reached the fleet is degraded (breakers decide locally), so a fleet can start
    /// before Redis does. Call [`Fleet::sync`] to wait for the first exchange.
    ///
    /// # Errors
    ///
    /// [`FleetError::Config`] for a setting that cannot work
    /// ([`FleetConfig::validate`]), or
    /// [`FleetError::NoRuntime`] outside a tokio runtime.
    pub fn start(self, client: redis::Client) -> Result<Fleet, FleetError> {
        self.spawn(Target::Node(client))
    }

    /// Starts the fleet as [`start`](Self::start) does, on the Redis that `connect`
    /// names: one node by URL, a master through Redis Sentinel (feature `sentinel`), or a
    /// Redis Cluster (feature `cluster`). Returns at once; the connections are made in the
    /// background, and made again from `connect` whenever the fleet reconnects (the
    /// sentinels are asked for the master each time).
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use breakerbox_redis::{Connect, Fleet, FleetConfig};
    ///
    /// let fleet = Fleet::builder(FleetConfig::new("checkout"))
    ///     .start_with(Connect::sentinel("mymaster", ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"]))?;
    /// # let _ = fleet;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), and [`FleetError::Config`] (field `redis`) for a URL that
    /// does not parse, an empty list of nodes, or Sentinel or a Cluster without the crate
    /// feature that carries it (the message names the feature to enable).
    pub fn start_with(self, connect: Connect) -> Result<Fleet, FleetError> {
        let target = Target::new(&connect, self.config.operation_timeout).map_err(FleetError::Config)?;
        self.spawn(target)
    }

    /// Starts the fleet on the Redis its configuration names
    /// ([`FleetConfig::redis`]), as [`start_with`](Self::start_with).
    ///
    /// # Errors
    ///
    /// As [`start_with`](Self::start_with), and [`FleetError::Config`] (field `redis`)
    /// when the configuration names none.
    pub fn connect(self) -> Result<Fleet, FleetError> {
        let Some(connect) = self.config.redis.clone() else {
            return Err(FleetError::Config(ConfigError::new(
                "redis",
                None::<Connect>,
                "where Redis is: `redis = { url = \"redis://host:6379\" }`, `{ sentinel = { master, nodes } }` \
                 or `{ cluster = { nodes } }` in the configuration (`FleetConfig::redis`), or a client passed to \
                 `FleetBuilder::start`",
            )));
        };
        self.start_with(connect)
    }

    fn spawn(self, target: Target) -> Result<Fleet, FleetError> {
        self.config.validate().map_err(FleetError::Config)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let replica = self.config.replica_id.clone().unwrap_or_else(default_replica_id);
        let (local_tx, local_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config: self.config,
            replica,
            local_tx,
            cmd_tx,
            status: Mutex::new(Status::default()),
            listeners: self.listeners,
        });
        let (worker, pubsub) = Worker::new(Arc::clone(&shared), &target, local_rx, cmd_rx);
        let tasks = vec![runtime.spawn(worker.run()), runtime.spawn(pubsub)];
        Ok(Fleet { shared, _tasks: Arc::new(Tasks(tasks)) })
    }
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder").field("config", &self.config).field("listeners", &self.listeners.len()).finish()
    }
}

/// `<hostname>-<pid>-<random>`: unique per process, readable in Redis.
fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().replace(':', "-"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), random() & 0xffff)
}
