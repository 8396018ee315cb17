//! `breakerbox._core.Fleet`: the Python package's breakers sharing trips through Redis,
//! on [`breakerbox_redis::Fleet`].
//!
//! The public API is `breakerbox.Fleet` (`python/breakerbox/fleet.py`), a thin wrapper
//! that checks and converts arguments; this module does the work:
//!
//! - **One tokio runtime per process**, started on the first `Fleet` and never stopped:
//!   a multi-thread runtime with one worker thread (`breakerbox-fleet`). A multi-thread
//!   runtime drives its tasks on its own thread, with no thread of ours parked in
//!   `block_on`, and any Python thread may `block_on` it (for `sync`) while the fleet's
//!   tasks keep running; a current-thread runtime would need a dedicated thread parked in
//!   `block_on` and a channel to it for everything else. One worker is enough: each fleet
//!   is two I/O-bound tasks (the sync loop and the pub/sub subscription), light work
//!   measured in round trips. After `os.fork()` the child has none of the parent's
//!   threads: a child's first `Fleet` starts a runtime of its own (the parent's is leaked,
//!   never touched), and a `Fleet` started before the fork refuses to run in the child.
//! - **The GIL**: released (`Python::detach`) where Rust may wait: starting the runtime
//!   and the fleet, `sync` (a round trip to Redis), `close`. Never on the call path:
//!   calls through a watched breaker are the core's, unchanged; the fleet only adds a
//!   state-change listener (below).
//! - **The runtime thread takes no GIL of its own.** `on_event` callbacks run on a
//!   thread of their own per fleet (`breakerbox-fleet-events`), fed by a channel: a busy
//!   interpreter or a slow callback cannot delay the fleet's sync, and a callback that
//!   raises is reported through `sys.unraisablehook` and the next event is delivered as
//!   usual. (A breaker's own `on_state_change` runs where its transition happens: for
//!   the fleet's decisions, on the runtime thread, attached for the call.)
//! - **Breakers built from Python** carry a [`Hook`]: one `on_state_change` listener,
//!   added at construction, that forwards transitions to the fleets watching the breaker
//!   ([`breakerbox_redis::Fleet::listener`]). The core's listeners are fixed when a
//!   breaker is built, so this is how a breaker built before its fleet still votes. It
//!   runs only on state changes, never per call, and costs a read lock when no fleet
//!   watches.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, mpsc};
use std::time::Duration;

use breakerbox::{BreakerBox, BreakerBuilder, ConfigError, Transition};
use breakerbox_redis::{Connect, FleetConfig, FleetError, FleetEvent, FleetStatus, FleetView, WhenUnreachable};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt};
use tokio::runtime::Runtime;

use crate::family::BreakerFamily;
use crate::template::Info;

/// The Redis the fleet connects to when given no `url`, `sentinel` or `cluster`.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

// ===== the hook on every breaker =====

/// A fleet's state-change listener.
type Listener = Arc<dyn Fn(&Transition<'_>) + Send + Sync>;

/// The fleets a breaker built from Python forwards its state changes to: filled by
/// `Fleet.watch`, emptied by `Fleet.close`.
#[derive(Default)]
pub(crate) struct Hook {
    sinks: RwLock<Vec<Sink>>,
}

struct Sink {
    fleet: u64,
    /// The process the fleet runs in: a forked child skips its parent's fleets (their
    /// runtime's threads are not in the child).
    pid: u32,
    listener: Listener,
}

impl Hook {
    /// Adds the forwarding listener to `builder`; the hook to plug fleets into.
    pub(crate) fn install(builder: BreakerBuilder) -> (BreakerBuilder, Arc<Self>) {
        let hook = Arc::new(Self::default());
        let forward = Arc::clone(&hook);
        (builder.on_state_change(move |t| forward.forward(t)), hook)
    }

    fn forward(&self, t: &Transition<'_>) {
        let sinks = self.sinks.read().unwrap_or_else(PoisonError::into_inner);
        if sinks.is_empty() {
            return;
        }
        let pid = std::process::id();
        for sink in sinks.iter().filter(|s| s.pid == pid) {
            (sink.listener)(t);
        }
    }

    fn add(&self, fleet: u64, listener: Listener) {
        let mut sinks = self.sinks.write().unwrap_or_else(PoisonError::into_inner);
        if !sinks.iter().any(|s| s.fleet == fleet) {
            sinks.push(Sink { fleet, pid: std::process::id(), listener });
        }
    }

    fn remove(&self, fleet: u64) {
        self.sinks.write().unwrap_or_else(PoisonError::into_inner).retain(|s| s.fleet != fleet);
    }
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fleets: Vec<u64> =
            self.sinks.read().unwrap_or_else(PoisonError::into_inner).iter().map(|s| s.fleet).collect();
        f.debug_struct("Hook").field("fleets", &fleets).finish()
    }
}

// ===== the runtime =====

/// The process's runtime, and the process it was started in.
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// This process's runtime, started on first use. Leaked: it lives as long as the
/// process (a `Fleet` may be dropped at interpreter exit, from any thread).
fn runtime() -> Result<&'static Runtime, String> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if let Some((started_in, rt)) = *slot
        && started_in == pid
    {
        return Ok(rt);
    }
    // None yet, or this is a forked child: the parent's runtime has no threads here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("breakerbox-fleet")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the fleet's runtime: {e}"))?;
    let rt: &'static Runtime = Box::leak(Box::new(rt));
    *slot = Some((pid, rt));
    Ok(rt)
}

// ===== Fleet =====

/// Distinguishes the fleets of one process in the breakers' hooks.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Breakers sharing trips, votes and probes with the other replicas of a service
/// through Redis. See `breakerbox.Fleet`.
#[pyclass(module = "breakerbox._core", frozen)]
pub struct Fleet {
    /// The process that started it (see [`runtime`]).
    pid: u32,
    service: String,
    replica_id: String,
    config: FleetConfig,
    /// `None` once closed.
    running: Mutex<Option<Running>>,
    /// The status when it was closed.
    last: Mutex<Option<FleetStatus>>,
}

/// A started fleet and what it watches.
struct Running {
    id: u64,
    fleet: breakerbox_redis::Fleet,
    runtime: &'static Runtime,
    /// The breakers watched, by name.
    watched: HashMap<String, breakerbox::Breaker>,
    /// The families watched (their templates' settings, one per family).
    families: Vec<(Arc<Info>, BreakerBox<String>)>,
    /// The hooks this fleet is plugged into, to unplug on close.
    hooks: Vec<Arc<Hook>>,
    events: Option<Events>,
}

impl Running {
    /// Plugs this fleet's listener into `hook`, once.
    fn plug(&mut self, hook: &Arc<Hook>) {
        if !self.hooks.iter().any(|h| Arc::ptr_eq(h, hook)) {
            hook.add(self.id, Arc::new(self.fleet.listener()));
            self.hooks.push(Arc::clone(hook));
        }
    }
}

/// The `on_event` thread's side of the fleet.
struct Events {
    tx: mpsc::Sender<Message>,
    closed: Arc<AtomicBool>,
}

enum Message {
    Event(FleetEvent),
    Stop,
}

impl Drop for Running {
    /// Unplugs the fleet from its breakers, stops the event thread, and (dropping the
    /// fleet) aborts its tasks. Nothing here waits.
    fn drop(&mut self) {
        for hook in &self.hooks {
            hook.remove(self.id);
        }
        if let Some(events) = &self.events {
            events.closed.store(true, Ordering::Release);
            let _ = events.tx.send(Message::Stop);
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // A fleet inherited through fork(): its runtime and threads are the parent's.
        // Dropping it would reach into them; leak it instead.
        if self.pid != std::process::id()
            && let Some(running) = self.running.get_mut().unwrap_or_else(PoisonError::into_inner).take()
        {
            std::mem::forget(running);
        }
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet").field("service", &self.service).field("replica_id", &self.replica_id).finish()
    }
}

#[pymethods]
impl Fleet {
    /// Starts a fleet for `service` (the wrapper `breakerbox.Fleet` documents the
    /// settings). Returns at once: the connection is made in the background, and while
    /// Redis cannot be reached the fleet is degraded (breakers decide locally).
    #[new]
    #[pyo3(signature = (
        service, url = None, *, sentinel = None, cluster = None, replica_id = None, key_prefix = None,
        min_replicas = None, min_calls = None, sync_interval = None, refresh_interval = None, window = None,
        probe_lease = None, key_ttl = None, operation_timeout = None, when_unreachable = None, on_event = None
    ))]
    #[allow(clippy::too_many_arguments, reason = "Python keyword arguments, one per setting")]
    fn new(
        py: Python<'_>,
        service: String,
        url: Option<String>,
        sentinel: Option<(String, Vec<String>)>,
        cluster: Option<Vec<String>>,
        replica_id: Option<String>,
        key_prefix: Option<String>,
        min_replicas: Option<&Bound<'_, PyAny>>,
        min_calls: Option<&Bound<'_, PyAny>>,
        sync_interval: Option<f64>,
        refresh_interval: Option<f64>,
        window: Option<f64>,
        probe_lease: Option<f64>,
        key_ttl: Option<f64>,
        operation_timeout: Option<f64>,
        when_unreachable: Option<String>,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (connect, redis_arg) = match (url, sentinel, cluster) {
            (url, None, None) => (Connect::url(url.unwrap_or_else(|| DEFAULT_URL.to_owned())), "url"),
            (None, Some((master, nodes)), None) => (Connect::sentinel(master, nodes), "sentinel"),
            (None, None, Some(nodes)) => (Connect::cluster(nodes), "cluster"),
            _ => return Err(PyValueError::new_err("give one of url, sentinel or cluster, not several")),
        };
        let mut config = FleetConfig::new(service);
        if let Some(id) = replica_id {
            config = config.replica_id(id);
        }
        if let Some(prefix) = key_prefix {
            config = config.key_prefix(prefix);
        }
        if let Some(n) = min_replicas {
            config = config.min_replicas(crate::count("min_replicas", n, u32::MAX)?);
        }
        if let Some(n) = min_calls {
            config = config.min_calls(calls("min_calls", n)?);
        }
        for (arg, value, set) in [
            ("sync_interval", sync_interval, FleetConfig::sync_interval as fn(FleetConfig, Duration) -> FleetConfig),
            ("refresh_interval", refresh_interval, FleetConfig::refresh_interval),
            ("window", window, FleetConfig::window),
            ("probe_lease", probe_lease, FleetConfig::probe_lease),
            ("key_ttl", key_ttl, FleetConfig::key_ttl),
            ("operation_timeout", operation_timeout, FleetConfig::operation_timeout),
        ] {
            if let Some(value) = value {
                config = set(config, crate::seconds(arg, value)?);
            }
        }
        if let Some(when) = when_unreachable {
            config = config.when_unreachable(match when.as_str() {
                "local" => WhenUnreachable::Local,
                "open" => WhenUnreachable::Open,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "when_unreachable must be 'local' (breakers decide on their own while Redis cannot be \
                         reached) or 'open' (held open meanwhile), got {when:?}"
                    )));
                }
            });
        }
        config.validate().map_err(|e| config_error(&e, redis_arg))?;
        connect.validate().map_err(|e| config_error(&e, redis_arg))?;
        let callback = match on_event {
            Some(f) if !f.is_callable() => {
                return Err(PyTypeError::new_err(format!(
                    "on_event must be a callable taking one dict, got {}",
                    f.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
                )));
            }
            f => f.map(Bound::unbind),
        };

        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let service = config.service.clone();
        let mut builder = breakerbox_redis::Fleet::builder(config.clone());
        let (tx, rx) = mpsc::channel();
        if callback.is_some() {
            let tx = tx.clone();
            builder = builder.on_event(move |e| {
                let _ = tx.send(Message::Event(e.clone()));
            });
        }
        // Starting the runtime spawns its thread; starting the fleet spawns its tasks.
        let started = py.detach(move || {
            let rt = runtime().map_err(Err)?;
            let _entered = rt.enter();
            builder.start_with(connect).map(|fleet| (rt, fleet)).map_err(Ok)
        });
        let (runtime, fleet) = started.map_err(|e| match e {
            Ok(FleetError::Config(e)) => config_error(&e, redis_arg),
            Ok(e) => PyRuntimeError::new_err(format!("cannot start the fleet: {e}")),
            Err(e) => PyRuntimeError::new_err(e),
        })?;
        let events = match callback {
            None => None,
            Some(callback) => {
                let closed = Arc::new(AtomicBool::new(false));
                let flag = Arc::clone(&closed);
                let events = service.clone();
                std::thread::Builder::new()
                    .name("breakerbox-fleet-events".to_owned())
                    .spawn(move || deliver(&events, &rx, callback, &flag))
                    .map_err(|e| PyRuntimeError::new_err(format!("cannot start the on_event thread: {e}")))?;
                Some(Events { tx, closed })
            }
        };
        let replica_id = fleet.replica_id().to_owned();
        Ok(Self {
            pid: std::process::id(),
            service,
            replica_id,
            config,
            running: Mutex::new(Some(Running {
                id,
                fleet,
                runtime,
                watched: HashMap::new(),
                families: Vec::new(),
                hooks: Vec::new(),
                events,
            })),
            last: Mutex::new(None),
        })
    }

    /// Syncs `breaker` (a `_core.Breaker`) with the fleet, under its name. A second
    /// breaker of the same name is a `ValueError`; the same one again does nothing.
    fn watch(&self, breaker: &Bound<'_, crate::Breaker>) -> PyResult<()> {
        let breaker = breaker.get();
        let mut running = self.running()?;
        let running = running.as_mut().ok_or_else(closed)?;
        let name = breaker.inner.name();
        if let Some(watched) = running.watched.get(name) {
            if watched.same_as(&breaker.inner) {
                return Ok(());
            }
            return Err(PyValueError::new_err(format!(
                "this fleet already watches another breaker named {name:?}: the fleet shares breakers by name, so \
                 give each breaker a name of its own (Breaker(name=...))"
            )));
        }
        // The hook first: a state change from now on reaches the fleet.
        running.plug(&breaker.info.hook);
        running.fleet.watch(&breaker.inner);
        running.watched.insert(name.to_owned(), breaker.inner.clone());
        Ok(())
    }

    /// Syncs every breaker of `family` (a `_core.BreakerFamily`), present and future,
    /// each under its own name (`"{name}/{key}"`). The same family again does nothing.
    fn watch_family(&self, family: &Bound<'_, BreakerFamily>) -> PyResult<()> {
        let family = family.get();
        let mut running = self.running()?;
        let running = running.as_mut().ok_or_else(closed)?;
        if running.families.iter().any(|(info, _)| Arc::ptr_eq(info, &family.info)) {
            return Ok(());
        }
        // One hook for the whole family: its template's, which every member shares.
        running.plug(&family.info.hook);
        running.fleet.watch_box(&family.inner);
        running.families.push((Arc::clone(&family.info), family.inner.clone()));
        Ok(())
    }

    /// Pushes every watched breaker's counts and votes now, reads the fleet's state and
    /// applies it, waiting at most `timeout` seconds (the GIL released). `None` when
    /// Redis answered; otherwise why not (the fleet is then degraded).
    fn sync(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        let limit = crate::seconds("timeout", timeout)?;
        let (fleet, rt) = {
            let running = self.running()?;
            let running = running.as_ref().ok_or_else(closed)?;
            (running.fleet.clone(), running.runtime)
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PyRuntimeError::new_err("Fleet.sync cannot be called from the fleet's own runtime thread"));
        }
        Ok(py.detach(move || {
            rt.block_on(async move {
                match tokio::time::timeout(limit, fleet.sync()).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("the fleet did not finish syncing within {timeout} s")),
                }
            })
        }))
    }

    /// The fleet's health, as a dict (see `breakerbox.Fleet.status`).
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (status, closed) = {
            let running = self.running()?;
            match running.as_ref() {
                Some(r) => (Some(r.fleet.status()), false),
                None => (self.last.lock().unwrap_or_else(PoisonError::into_inner).clone(), true),
            }
        };
        let d = PyDict::new(py);
        d.set_item("service", &self.service)?;
        d.set_item("replica_id", &self.replica_id)?;
        d.set_item("closed", closed)?;
        d.set_item("when_unreachable", self.config.when_unreachable.as_str())?;
        if let Some(s) = status {
            d.set_item("joined", s.joined)?;
            d.set_item("degraded", s.degraded)?;
            d.set_item("sync_lag", s.sync_lag.map(|d| d.as_secs_f64()))?;
            d.set_item("breakers", s.breakers)?;
            d.set_item("ops", s.ops)?;
            d.set_item("errors", s.errors)?;
            d.set_item("applied", s.applied)?;
            d.set_item("stale_ignored", s.stale_ignored)?;
            d.set_item("data_losses", s.data_losses)?;
            d.set_item("probe_leases", s.probe_leases)?;
        }
        Ok(d)
    }

    /// What this replica knows of the fleet's state of the breaker `name`, as a dict;
    /// `None` if it is not watched (or the fleet is closed).
    fn view<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let view = {
            let running = self.running()?;
            running.as_ref().and_then(|r| r.fleet.view(name))
        };
        view.map(|v| view_dict(py, name, &v)).transpose()
    }

    /// The names of the breakers watched, sorted: those given to `watch`, and the
    /// current members of the families given to `watch_family`.
    fn watched(&self) -> PyResult<Vec<String>> {
        let running = self.running()?;
        let Some(running) = running.as_ref() else { return Ok(Vec::new()) };
        let mut names: Vec<String> = running.watched.keys().cloned().collect();
        for (_, family) in &running.families {
            names.extend(family.entries().into_iter().map(|(_, b)| b.name().to_owned()));
        }
        names.sort();
        Ok(names)
    }

    /// The settings, as a dict: durations in seconds.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.config;
        let d = PyDict::new(py);
        d.set_item("service", &c.service)?;
        d.set_item("replica_id", &self.replica_id)?;
        d.set_item("key_prefix", &c.key_prefix)?;
        d.set_item("min_replicas", c.min_replicas)?;
        d.set_item("min_calls", c.min_calls)?;
        for (key, value) in [
            ("sync_interval", c.sync_interval),
            ("refresh_interval", c.refresh_interval),
            ("window", c.window),
            ("probe_lease", c.probe_lease),
            ("key_ttl", c.key_ttl),
            ("operation_timeout", c.operation_timeout),
        ] {
            d.set_item(key, value.as_secs_f64())?;
        }
        d.set_item("when_unreachable", c.when_unreachable.as_str())?;
        Ok(d)
    }

    /// Stops the fleet: its tasks are aborted, its breakers unplugged (they decide
    /// locally from now on; one the fleet held open waits out its hold, then probes on
    /// its own), `on_event` gets no new event. Idempotent; in a forked child, forgets the
    /// parent's fleet.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.pid != std::process::id() {
            // In a forked child (at exit, say): the parent's fleet is not here to stop.
            // Forget it, touching nothing of the parent's runtime.
            if let Some(running) = self.running.lock().unwrap_or_else(PoisonError::into_inner).take() {
                std::mem::forget(running);
            }
            return Ok(());
        }
        let running = self.running()?.take();
        if let Some(running) = running {
            *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(running.fleet.status());
            if let Some(events) = &running.events {
                // Set while this thread is attached: the event thread, which checks it
                // attached, starts no callback once close() has begun.
                events.closed.store(true, Ordering::Release);
            }
            py.detach(move || drop(running));
        }
        Ok(())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// The service, as given.
    #[getter]
    fn service(&self) -> &str {
        &self.service
    }

    /// This replica's id (given, or `<hostname>-<pid>-<random>`).
    #[getter]
    fn replica_id(&self) -> &str {
        &self.replica_id
    }

    fn __repr__(&self) -> String {
        let state = match self.running.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            None => "closed",
            Some(r) if r.fleet.status().degraded => "degraded",
            Some(_) => "running",
        };
        format!("<breakerbox._core.Fleet {:?} replica_id={:?} {state}>", self.service, self.replica_id)
    }
}

impl Fleet {
    /// The running fleet, refusing one inherited through fork().
    fn running(&self) -> PyResult<MutexGuard<'_, Option<Running>>> {
        let pid = std::process::id();
        if self.pid != pid {
            return Err(PyRuntimeError::new_err(format!(
                "this Fleet was started in process {} and this is process {pid} (a fork): its background thread is \
                 not here. Create the Fleet in each worker process, after forking",
                self.pid
            )));
        }
        Ok(self.running.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn closed() -> PyErr {
    PyRuntimeError::new_err("this Fleet is closed")
}

/// `min_calls`: an `int` from 0.
fn calls(arg: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_instance_of::<pyo3::types::PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be an int, 0 or more, got {}",
            value.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
        )));
    }
    value.extract::<u64>().map_err(|_| PyValueError::new_err(format!("{arg} must be an int, 0 or more, got {value}")))
}

/// A setting the fleet refuses, as a `ValueError` naming the argument: the core's
/// `redis` is whichever of `url`, `sentinel`, `cluster` was given.
fn config_error(e: &ConfigError, redis_arg: &str) -> PyErr {
    let field = if e.field() == "redis" { redis_arg } else { e.field() };
    PyValueError::new_err(format!("invalid fleet setting {field} = {}: expected {}", e.value(), e.expected()))
}

/// Delivers the fleet's events to the Python callback, one at a time, on this thread,
/// until the fleet stops. A callback that raises is reported through
/// `sys.unraisablehook`; the next event is delivered as usual.
fn deliver(service: &str, rx: &mpsc::Receiver<Message>, callback: Py<PyAny>, closed: &AtomicBool) {
    while let Ok(Message::Event(event)) = rx.recv() {
        if closed.load(Ordering::Acquire) {
            break;
        }
        let attached = Python::try_attach(|py| {
            // close() may have run while this thread waited for the interpreter.
            if closed.load(Ordering::Acquire) {
                return;
            }
            let f = callback.bind(py);
            if let Err(err) = event_dict(py, service, &event).and_then(|d| f.call1((d,))) {
                err.write_unraisable(py, Some(f));
            }
        });
        if attached.is_none() {
            // The interpreter is shutting down.
            break;
        }
    }
    // Release the callback with the interpreter attached, or leak it if it has gone.
    let mut callback = Some(callback);
    if Python::try_attach(|_py| drop(callback.take())).is_none() {
        std::mem::forget(callback);
    }
}

/// An event as the dict `on_event` receives: `kind` and the event's fields (durations in
/// seconds), and `service`.
fn event_dict<'py>(py: Python<'py>, service: &str, event: &FleetEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let kind = match event {
        FleetEvent::Joined => "joined",
        FleetEvent::Degraded { reason, when_unreachable, .. } => {
            d.set_item("reason", reason)?;
            d.set_item("when_unreachable", when_unreachable.as_str())?;
            "degraded"
        }
        FleetEvent::Rejoined { after, .. } => {
            d.set_item("after", after.as_secs_f64())?;
            "rejoined"
        }
        FleetEvent::DataLost { breaker, .. } => {
            d.set_item("breaker", breaker)?;
            "data_lost"
        }
        FleetEvent::Opened { breaker, epoch, remaining, .. } => {
            d.set_item("breaker", breaker)?;
            d.set_item("epoch", epoch)?;
            d.set_item("remaining", remaining.as_secs_f64())?;
            "opened"
        }
        FleetEvent::Closed { breaker, epoch, .. } => {
            d.set_item("breaker", breaker)?;
            d.set_item("epoch", epoch)?;
            "closed"
        }
        FleetEvent::Recovering { breaker, epoch, elapsed, .. } => {
            d.set_item("breaker", breaker)?;
            d.set_item("epoch", epoch)?;
            d.set_item("elapsed", elapsed.as_secs_f64())?;
            "recovering"
        }
        FleetEvent::ProbeLease { breaker, epoch, .. } => {
            d.set_item("breaker", breaker)?;
            d.set_item("epoch", epoch)?;
            "probe_lease"
        }
        FleetEvent::StaleIgnored { breaker, epoch, current, .. } => {
            d.set_item("breaker", breaker)?;
            d.set_item("epoch", epoch)?;
            d.set_item("current", current)?;
            "stale_ignored"
        }
        // A kind added to the crate later: its Debug form.
        other => {
            d.set_item("detail", format!("{other:?}"))?;
            "other"
        }
    };
    d.set_item("kind", kind)?;
    d.set_item("service", service)?;
    Ok(d)
}

/// A breaker's fleet view as a dict.
fn view_dict<'py>(py: Python<'py>, name: &str, v: &FleetView) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", name)?;
    d.set_item("state", v.state.as_str())?;
    d.set_item("epoch", v.epoch)?;
    d.set_item("held", v.held)?;
    d.set_item("probing", v.probing)?;
    Ok(d)
}
