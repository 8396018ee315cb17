//! The fleet on a Redis Cluster (`Connect::Cluster`, feature `cluster`) against real
//! processes: three masters (`--cluster-enabled yes`, each in its own directory), joined
//! with `redis-cli --cluster create`. Each breaker's keys share one hash tag, so each
//! script runs on the master that owns its slot; pushes come from a subscription to one
//! node (classic `PUBLISH` reaches every node). Checks: trips reconverge across
//! replicas whatever master holds the breaker, and a breaker's slot migrated to another
//! master while the fleet runs (`CLUSTER SETSLOT ... IMPORTING/MIGRATING`, `MIGRATE ...
//! KEYS`, `CLUSTER SETSLOT ... NODE`) changes nothing for the calls (a) and the fleet
//! follows the redirections (c).
#![cfg(feature = "cluster")]

mod support;

#[path = "support/faults.rs"]
mod faults;

use std::process::Command;
use std::time::{Duration, Instant};

use breakerbox::Breaker;
use breakerbox_redis::{Connect, FleetEvent};
use faults::{Pair, cmd, fleet_state, no_call_waited};
use support::{RedisServer, config, eventually, saw, trip};

/// The tests here run one at a time: each measures call latencies.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three masters of one cluster, every slot assigned.
struct Cluster {
    nodes: Vec<RedisServer>,
}

impl Cluster {
    fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-cli` ({e}): install it with `apt-get install -y redis-tools`")
            });
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = Self { nodes };
        let ok = (0..1_000).any(|_| {
            let ok = cluster.nodes.iter().all(|n| {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut n.connection()).unwrap();
                info.contains("cluster_state:ok")
            });
            if !ok {
                std::thread::sleep(Duration::from_millis(10));
            }
            ok
        });
        assert!(ok, "the cluster is up: cluster_state:ok on every node");
        cluster
    }

    fn connect(&self) -> Connect {
        Connect::cluster(self.nodes.iter().map(RedisServer::url))
    }

    fn id(&self, node: usize) -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut self.nodes[node].connection()).unwrap()
    }

    /// The slot of a breaker's keys.
    fn slot(&self, service: &str, breaker: &str) -> u16 {
        let key = format!("breakerbox:{{{service}:{breaker}}}:state");
        redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut self.nodes[0].connection()).unwrap()
    }

    /// The node that serves `slot`, as node 0 sees it.
    fn owner(&self, slot: u16) -> usize {
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut self.nodes[0].connection()).unwrap();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let serves = fields[8..].iter().filter(|r| !r.starts_with('[')).any(|r| {
                let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                (lo.parse::<u16>().unwrap()..=hi.parse::<u16>().unwrap()).contains(&slot)
            });
            if serves {
                let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                return self.nodes.iter().position(|n| n.port() == port).unwrap();
            }
        }
        panic!("no node serves slot {slot}")
    }

    /// `(state, incarnation, epoch)` of a breaker, read on the node that owns its slot.
    fn state(&self, service: &str, breaker: &str) -> (String, String, u64) {
        let owner = self.owner(self.slot(service, breaker));
        fleet_state(&mut self.nodes[owner].connection(), service, breaker)
    }

    /// Moves `slot` to node `to`, keys and all, as `redis-cli --cluster reshard` does,
    /// staying `pause` in the middle (importing on `to`, migrating on the owner: a
    /// client is sent on with `ASK` for a key already moved). Returns the node it left.
    fn migrate(&self, slot: u16, to: usize, pause: Duration) -> usize {
        let from = self.owner(slot);
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let (from_id, to_id) = (self.id(from), self.id(to));
        let (mut src, mut dst) = (self.nodes[from].connection(), self.nodes[to].connection());
        let slot_arg = slot.to_string();
        cmd(&mut dst, &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id]);
        cmd(&mut src, &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id]);
        std::thread::sleep(pause);
        loop {
            let keys: Vec<String> =
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(100).query(&mut src).unwrap();
            if keys.is_empty() {
                break;
            }
            let port = self.nodes[to].port().to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys.iter().map(String::as_str));
            cmd(&mut src, &migrate);
        }
        for node in [to, from].into_iter().chain((0..self.nodes.len()).filter(|n| *n != to && *n != from)) {
            cmd(&mut self.nodes[node].connection(), &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id]);
        }
        from
    }
}

/// Trips propagate between two replicas through the cluster, for breakers whose slots are
/// on different masters; the fleet's open state is where its slot's master keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_trips_reconverge_across_replicas() {
    let test = "cluster_trips";
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start();
    let connect = cluster.connect();
    let pair = Pair::start_on(|b| b.start_with(connect.clone()), config(test), 60_000).await;
    let owners: Vec<(&str, usize)> =
        ["orders", "during", "after", "held"].into_iter().map(|b| (b, cluster.owner(cluster.slot(test, b)))).collect();
    eprintln!("[{test}] the breakers' masters: {owners:?}");

    let t = Instant::now();
    pair.open_held().await;
    eprintln!("[{test}] `held` tripped on `a` opened on `b` in {:?}", t.elapsed());
    let t = Instant::now();
    trip(&pair.during[1]);
    assert!(eventually(Duration::from_secs(1), || pair.during[0].is_open()).await, "[{test}] `during` reached `a`");
    eprintln!("[{test}] `during` tripped on `b` opened on `a` in {:?}", t.elapsed());
    pair.reconverges(test, false).await;
    for b in ["held", "during", "after"] {
        let (state, _, epoch) = cluster.state(test, b);
        assert_eq!((state.as_str(), epoch), ("open", 1), "[{test}] `{b}` open on its slot's master");
    }
    assert!(pair.orders.iter().all(Breaker::is_closed));
    let degraded = saw(&pair.a_events, |e| matches!(e, FleetEvent::Degraded { .. }))
        || saw(&pair.b_events, |e| matches!(e, FleetEvent::Degraded { .. }));
    assert!(!degraded, "[{test}] never degraded: {:?} {:?}", pair.a.status(), pair.b.status());
}

/// The slots of `held` (open, across the migration) and of `after` (tripped after it)
/// move to another master while both replicas run and calls are timed, each staying
/// `pause` half-migrated. The fleet follows `MOVED` and `ASK` (in the redis crate's
/// cluster client): `held` keeps its incarnation and epoch and stays open, a trip made
/// after the migration propagates through the slot's new master; no call waits. While a
/// slot is half-migrated, a script whose keys are not all on one side (a breaker without
/// votes or counts in the window has only its state key) is refused with `TRYAGAIN`, and
/// past the client's retries the fleet degrades until the slot has moved.
async fn migration(test: &str, pause: Duration) {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start();
    let connect = cluster.connect();
    let pair = Pair::start_on(|b| b.start_with(connect.clone()), config(test), 60_000).await;
    pair.open_held().await;
    let before = cluster.state(test, "held");
    let caller = pair.caller();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = caller.take();

    let started = Instant::now();
    let mut moves = Vec::new();
    for b in ["held", "after"] {
        let slot = cluster.slot(test, b);
        let to = (cluster.owner(slot) + 1) % cluster.nodes.len();
        let moved = tokio::task::block_in_place(|| cluster.migrate(slot, to, pause));
        moves.push((b, slot, moved, to));
    }
    eprintln!("[{test}] migrated (breaker, slot, from node, to node) {moves:?} in {:?}", started.elapsed());
    // The fleet keeps running on the new owner: a refresh or two.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let degraded = [&pair.a_events, &pair.b_events].map(|e| {
        e.lock().unwrap().iter().find_map(|e| match e {
            FleetEvent::Degraded { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    });
    eprintln!(
        "[{test}] degraded during the migration (a, b): {degraded:?}; failed rounds a {}, b {}",
        pair.a.status().errors,
        pair.b.status().errors
    );
    pair.reconverges(test, degraded.iter().all(Option::is_some)).await;
    let during = caller.take();

    for (b, slot, _, to) in &moves {
        assert_eq!(cluster.owner(*slot), *to, "[{test}] `{b}`'s slot moved");
    }
    let after = cluster.state(test, "held");
    eprintln!("[{test}] `held` before {before:?}, after on its new master {after:?}");
    assert_eq!(after, before, "[{test}] the same incarnation and epoch");
    assert_eq!(pair.data_lost("held"), [false, false], "[{test}] no data lost");
    assert!(pair.held.iter().all(Breaker::is_open), "[{test}] `held` stays open");
    assert_eq!(cluster.state(test, "after").0, "open", "[{test}] the trip after the migration is on the new master");
    no_call_waited(test, baseline, during);
}

/// As `redis-cli --cluster reshard` moves a slot: importing, migrating, the keys moved,
/// the owner changed, back to back (the slot half-migrated for about a millisecond).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_slot_migration_while_the_fleet_runs() {
    migration("cluster_migration", Duration::ZERO).await;
}

/// The same, each slot held half-migrated for 300 ms (a slow resharding, many keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_slow_slot_migration_while_the_fleet_runs() {
    migration("cluster_slow_migration", Duration::from_millis(300)).await;
}
