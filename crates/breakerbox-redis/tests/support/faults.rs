//! What the fault tests share (`tests/faults.rs`, `tests/sentinel.rs`,
//! `tests/cluster.rs`, `tests/cluster_replicas.rs`): two replicas with their own `Fleet`
//! and connections, a thread timing every call on their breakers beside a breaker
//! without a fleet, and the checks (a) no call waited on Redis, (b) degraded locally,
//! (c) reconverged. Not part of `support/mod.rs` (the benches and the crate's own tests
//! include that); a test file includes it with `#[path]`, after `mod support;`.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use breakerbox::Breaker;
use breakerbox_redis::{Fleet, FleetBuilder, FleetConfig, FleetError, FleetEvent, WhenUnreachable};

use crate::support::{Events, RedisServer, builder, eventually, saw, trip};

// ===== (a) the call path =====

/// The calls timed in a phase, through one kind of breaker.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timed {
    pub calls: u64,
    pub worst: Duration,
    /// Calls over 1 ms, and over 5 ms.
    pub over_1ms: u64,
    pub over_5ms: u64,
}

impl Timed {
    fn add(&mut self, d: Duration) {
        self.calls += 1;
        self.worst = self.worst.max(d);
        self.over_1ms += u64::from(d > Duration::from_millis(1));
        self.over_5ms += u64::from(d > Duration::from_millis(5));
    }

    fn merge(&mut self, o: Self) {
        self.calls += o.calls;
        self.worst = self.worst.max(o.worst);
        self.over_1ms += o.over_1ms;
        self.over_5ms += o.over_5ms;
    }
}

/// A phase's calls: through the replicas' breakers, and through a breaker without a
/// fleet in the same loop (the control, as many calls).
#[derive(Clone, Copy, Debug, Default)]
pub struct Worst {
    pub fleet: Timed,
    pub control: Timed,
}

/// Calls the replicas' breakers (a `call`, then a `try_acquire` and `success`, each
/// timed) and a control breaker without a fleet, from a thread of its own, for as long
/// as it lives.
pub struct Caller {
    stop: Arc<AtomicBool>,
    worst: Arc<Mutex<Worst>>,
    thread: Option<JoinHandle<()>>,
}

impl Caller {
    pub fn start(breakers: Vec<Breaker>) -> Self {
        let (stop, worst) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Worst::default())));
        let (halt, slot) = (stop.clone(), worst.clone());
        let thread = std::thread::spawn(move || {
            let control = builder("control", 1_000_000, 60_000).build().unwrap();
            let timed = |b: &Breaker, into: &mut Timed| {
                let t = Instant::now();
                let _ = b.call(|| Ok::<_, ()>(()));
                into.add(t.elapsed());
                let t = Instant::now();
                if let Ok(permit) = b.try_acquire() {
                    permit.success();
                }
                into.add(t.elapsed());
            };
            while !halt.load(Ordering::Relaxed) {
                let mut batch = Worst::default();
                for _ in 0..64 {
                    for b in &breakers {
                        timed(b, &mut batch.fleet);
                        // As many calls on the control, for the same odds of a stall.
                        timed(&control, &mut batch.control);
                    }
                }
                {
                    let mut w = slot.lock().unwrap();
                    w.fleet.merge(batch.fleet);
                    w.control.merge(batch.control);
                }
                // Calls all along, without taking a core from Redis and the fleet.
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        Self { stop, worst, thread: Some(thread) }
    }

    /// The calls since the last take.
    pub fn take(&self) -> Worst {
        std::mem::take(&mut *self.worst.lock().unwrap())
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Prints and checks each phase's calls. A call that waited on Redis would take at least
/// the operation timeout (100 ms) or the fault itself (2 s), and every call made during
/// the fault would: the slowest must be under 5 ms, or else be one of at most 3 isolated
/// stalls (the calling thread descheduled on a busy 2-core machine: the control breaker,
/// without a fleet, sees them too), with at most 1 in 1000 calls over 1 ms.
pub fn no_call_waited(test: &str, baseline: Worst, during: Worst) {
    let show =
        |t: Timed| format!("{:?} ({} calls, {} over 1 ms, {} over 5 ms)", t.worst, t.calls, t.over_1ms, t.over_5ms);
    eprintln!(
        "[{test}] slowest call through the fleet's breakers: before the fault {}, during it {}; \
         without a fleet, before {}, during {}",
        show(baseline.fleet),
        show(during.fleet),
        show(baseline.control),
        show(during.control),
    );
    for (phase, w) in [("before", baseline), ("during", during)] {
        let f = w.fleet;
        assert!(f.calls > 1_000, "[{test}] {phase}: calls were made ({})", f.calls);
        let ok = f.worst < Duration::from_millis(5) || f.over_5ms <= 3;
        assert!(ok && f.over_1ms * 1_000 <= f.calls, "[{test}] {phase} the fault, calls waited: {}", show(f));
    }
}

// ===== two replicas =====

/// Two replicas, each with the same four breakers:
/// - `orders`: traffic, always succeeding (the calls timed);
/// - `during`: tripped on `a` while the fault lasts (a local decision, voted later);
/// - `after`: tripped on `b` once the fault is over (reconvergence);
/// - `held`: tripped on `a` before the fault, when a test wants the fleet open across it.
pub struct Pair {
    pub a: Fleet,
    pub a_events: Events,
    pub b: Fleet,
    pub b_events: Events,
    pub orders: [Breaker; 2],
    pub during: [Breaker; 2],
    pub after: [Breaker; 2],
    pub held: [Breaker; 2],
}

/// Starts replica `id` with `start` (`|b| b.start(client)`, `|b| b.start_with(connect)`),
/// recording its events.
pub fn start_replica(
    start: impl FnOnce(FleetBuilder) -> Result<Fleet, FleetError>,
    config: FleetConfig,
    id: &str,
) -> (Fleet, Events) {
    let events = Events::default();
    let sink = events.clone();
    let fleet = start(Fleet::builder(config.replica_id(id)).on_event(move |e| sink.lock().unwrap().push(e.clone())))
        .expect("the fleet starts");
    (fleet, events)
}

impl Pair {
    /// Two replicas on one node, each through its own client.
    pub async fn start(client: impl Fn() -> redis::Client, config: FleetConfig, held_wait_ms: u64) -> Self {
        Self::start_on(|b| b.start(client()), config, held_wait_ms).await
    }

    /// Two replicas, each started with `start` (`|b| b.start_with(connect.clone())`).
    pub async fn start_on(
        start: impl Fn(FleetBuilder) -> Result<Fleet, FleetError>,
        config: FleetConfig,
        held_wait_ms: u64,
    ) -> Self {
        let (a, a_events) = start_replica(&start, config.clone(), "a");
        let (b, b_events) = start_replica(&start, config, "b");
        let both = |name: &str, failures, wait| {
            [a.breaker(builder(name, failures, wait)).unwrap(), b.breaker(builder(name, failures, wait)).unwrap()]
        };
        let orders = both("orders", 3, 60_000);
        let during = both("during", 1, 60_000);
        let after = both("after", 1, 60_000);
        let held = both("held", 1, held_wait_ms);
        a.sync().await.unwrap();
        b.sync().await.unwrap();
        Self { a, a_events, b, b_events, orders, during, after, held }
    }

    pub fn caller(&self) -> Caller {
        Caller::start(self.orders.to_vec())
    }

    /// Trips `held` on `a` and waits for the fleet to hold it open on `b`.
    pub async fn open_held(&self) {
        trip(&self.held[0]);
        // Both, in one wait: `b`'s breaker opens when the fleet's decision is applied, and
        // its view says `held` a moment later (a loaded CI machine once saw the gap).
        let opened = eventually(Duration::from_secs(2), || {
            self.held[1].is_open() && self.b.view("held").is_some_and(|v| v.held)
        })
        .await;
        assert!(opened, "the fleet opened `held` and `b` holds it: {:?}", self.b.view("held"));
    }

    pub fn events(&self) -> [&Events; 2] {
        [&self.a_events, &self.b_events]
    }

    pub fn data_lost(&self, breaker: &str) -> [bool; 2] {
        self.events().map(|e| saw(e, |e| matches!(e, FleetEvent::DataLost { breaker: b } if b == breaker)))
    }

    /// (b) Both replicas degraded (an event, the status), and decide locally: a trip on
    /// `a` opens its breaker and nothing reaches `b`.
    pub async fn degraded_locally(&self, test: &str, within: Duration) {
        let started = Instant::now();
        let both = eventually(within, || self.a.status().degraded && self.b.status().degraded).await;
        assert!(both, "[{test}] both replicas degraded: {:?} {:?}", self.a.status(), self.b.status());
        eprintln!("[{test}] both replicas degraded after {:?}", started.elapsed());
        // The status is set just before the event is emitted.
        for e in self.events() {
            let event =
                || saw(e, |e| matches!(e, FleetEvent::Degraded { when_unreachable: WhenUnreachable::Local, .. }));
            assert!(eventually(Duration::from_secs(1), event).await, "[{test}] a `Degraded` event");
        }
        trip(&self.during[0]);
        assert!(self.during[0].is_open(), "[{test}] a local trip still opens the breaker");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(self.during[1].is_closed(), "[{test}] nothing reaches the other replica meanwhile");
        assert!(self.orders.iter().all(Breaker::is_closed), "[{test}] calls go on");
    }

    /// (c) Both replicas answer again (`Rejoined` if they were degraded); a trip made
    /// during the fault (if any) reaches `b`; a trip on `b` now reaches `a`, within 1 s.
    pub async fn reconverges(&self, test: &str, were_degraded: bool) {
        let started = Instant::now();
        let rejoined = |e: &Events| saw(e, |e| matches!(e, FleetEvent::Rejoined { .. }));
        if were_degraded {
            let both =
                eventually(Duration::from_secs(5), || rejoined(&self.a_events) && rejoined(&self.b_events)).await;
            assert!(both, "[{test}] both replicas rejoined: {:?} {:?}", self.a.status(), self.b.status());
            eprintln!("[{test}] both replicas rejoined {:?} after the fault ended", started.elapsed());
        }
        let healthy = eventually(Duration::from_secs(5), || !self.a.status().degraded && !self.b.status().degraded);
        assert!(healthy.await, "[{test}] both replicas answer: {:?} {:?}", self.a.status(), self.b.status());
        if self.during[0].is_open() {
            let reached = eventually(Duration::from_secs(2), || self.during[1].is_open()).await;
            assert!(reached, "[{test}] the trip made during the fault reached the other replica");
            eprintln!(
                "[{test}] the trip made during the fault reached `b` {:?} after the fault ended",
                started.elapsed()
            );
        }
        let t = Instant::now();
        trip(&self.after[1]);
        let reached = eventually(Duration::from_secs(1), || self.after[0].is_open()).await;
        assert!(reached, "[{test}] a trip after the fault reaches the other replica within 1 s");
        eprintln!("[{test}] a trip after the fault reached `a` in {:?}", t.elapsed());
    }
}

/// `(state, incarnation, epoch)` of `breaker`'s fleet state, read on `con`.
pub fn fleet_state(con: &mut impl redis::ConnectionLike, service: &str, breaker: &str) -> (String, String, u64) {
    let key = format!("breakerbox:{{{service}:{breaker}}}:state");
    let (state, inc, epoch): (Option<String>, Option<String>, Option<u64>) =
        redis::cmd("HMGET").arg(&key).arg("state").arg("inc").arg("epoch").query(con).unwrap();
    (state.unwrap_or_default(), inc.unwrap_or_default(), epoch.unwrap_or_default())
}

pub fn cmd(con: &mut impl redis::ConnectionLike, args: &[&str]) -> redis::Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

// ===== replication =====

/// A master, and a replica of it (`--replicaof`) that has synced.
pub fn master_and_replica() -> (RedisServer, RedisServer) {
    // Without the default 5 s wait for more replicas before a diskless sync.
    let master = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let port = master.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let synced = (0..500).any(|_| {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut replica.connection()).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        info.contains("master_link_status:up")
    });
    assert!(synced, "the replica synced with its master");
    (master, replica)
}

/// Every write so far on `master` is on its replica. (`WAIT` waits for this connection's
/// own writes: one, after every write so far in the replication stream.)
pub fn replicated(master: &RedisServer) {
    let mut con = master.connection();
    cmd(&mut con, &["SET", "failover-test-marker", "1"]);
    let acked: i64 = redis::cmd("WAIT").arg(1).arg(1_000).query(&mut con).unwrap();
    assert_eq!(acked, 1, "the replica acknowledged");
}
