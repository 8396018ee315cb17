//! What the handle ([`Fleet`](crate::Fleet)) and the background task share: the
//! settings, the channels into the task, and the status the task keeps for the handle
//! to read. Both `fleet.rs` and `worker.rs` import from here, never from each other's
//! internals.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Reason, State};
use tokio::sync::{mpsc, oneshot};

use crate::{FleetConfig, FleetError, FleetEvent, FleetView};

/// A listener added with [`FleetBuilder::on_event`](crate::FleetBuilder::on_event).
pub(crate) type OnEvent = Arc<dyn Fn(&FleetEvent) + Send + Sync>;

/// Everything the handle's clones and the background task hold in common.
pub(crate) struct Shared {
    pub(crate) config: FleetConfig,
    pub(crate) replica: String,
    pub(crate) local_tx: mpsc::UnboundedSender<LocalTransition>,
    pub(crate) cmd_tx: mpsc::UnboundedSender<Command>,
    pub(crate) status: Mutex<Status>,
    pub(crate) listeners: Vec<OnEvent>,
}

impl Shared {
    pub(crate) fn status(&self) -> MutexGuard<'_, Status> {
        // Only the fleet's own code runs under this lock; poisoning cannot leave it torn.
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The counters and views behind [`Fleet::status`](crate::Fleet::status) and
/// [`Fleet::view`](crate::Fleet::view), written by the background task.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) joined: bool,
    pub(crate) degraded: bool,
    pub(crate) last_ok: Option<Instant>,
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) applied: u64,
    pub(crate) stale_ignored: u64,
    pub(crate) data_losses: u64,
    pub(crate) probe_leases: u64,
    pub(crate) views: HashMap<String, FleetView>,
}

/// A state change of a watched breaker, sent by the listener
/// [`Fleet::attach`](crate::Fleet::attach) adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalTransition {
    pub(crate) breaker: String,
    pub(crate) to: State,
    pub(crate) reason: Reason,
    pub(crate) open_for: Option<Duration>,
    /// When the listener ran (just after the transition was published).
    pub(crate) at: Instant,
}

/// The current breakers of a watched family.
pub(crate) type Members = Box<dyn Fn() -> Vec<Breaker> + Send + Sync>;

/// A request from the handle to the background task.
pub(crate) enum Command {
    Watch(Breaker),
    WatchFamily(Members),
    Sync(oneshot::Sender<Result<(), FleetError>>),
}

/// 64 random bits, from the standard library's randomly seeded hasher.
pub(crate) fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Relaxed: only that no two calls see the same count matters, not their order.
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    RandomState::new().hash_one((n, t, std::process::id()))
}
