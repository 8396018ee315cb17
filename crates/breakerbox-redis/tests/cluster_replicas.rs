//! The fleet on a Redis Cluster with replicas (`Connect::Cluster`, feature `cluster`)
//! against real processes: three masters and three replicas (`--cluster-enabled yes`,
//! each in its own directory, `cluster-node-timeout` 1000 ms), joined with
//! `redis-cli --cluster create ... --cluster-replicas 1`, up once every node says
//! `cluster_state:ok`, every replica `master_link_status:up` and every node knows every
//! replica. The seeds are all six nodes. What operators do to such a cluster, while the
//! same two replicas, breakers and call timing as `tests/faults.rs` run:
//!
//! - a breaker's slot migrated to another master while the replicas of both sides
//!   replicate (the keys reach the new master's replica, leave the old one's);
//! - `CLUSTER FAILOVER` on the replica of a breaker's master (graceful: the old master
//!   becomes its replica);
//! - the master of a breaker's slot killed (`SIGKILL`), or frozen (`SIGSTOP`) past
//!   `cluster-node-timeout`: its replica is promoted by the cluster; frozen, also the
//!   node the replicas' subscriptions are on;
//! - a seed frozen before the fleet starts.
//!
//! Each checks (a) no call waited on Redis, (b) the documented degraded behaviour while
//! the slot has no master, (c) the fleet follows the new master and reconverges, and
//! that the open `held` keeps its incarnation and epoch (it had replicated).
#![cfg(feature = "cluster")]

mod support;

#[path = "support/faults.rs"]
mod faults;

use std::process::Command;
use std::time::{Duration, Instant};

use breakerbox::Breaker;
use breakerbox_redis::{Connect, FleetEvent};
use faults::{Pair, cmd, fleet_state, no_call_waited};
use support::{RedisServer, config, eventually, trip};

/// The tests here run one at a time: each measures call latencies.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `cluster-node-timeout`: a master that does not answer this long is failed over.
const NODE_TIMEOUT_MS: u64 = 1000;

/// One line of `CLUSTER NODES`, as one node sees the cluster.
#[derive(Debug, Clone)]
struct Line {
    id: String,
    port: u16,
    flags: String,
    /// The master's id, for a replica.
    master: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl Line {
    fn is_master(&self) -> bool {
        self.flags.split(',').any(|f| f == "master")
    }

    /// Marked failed by the cluster (not only suspected, `fail?`: a node timeout missed
    /// on a loaded machine).
    fn failed(&self) -> bool {
        self.flags.split(',').any(|f| f == "fail")
    }
}

/// Three masters and a replica of each, every slot assigned.
struct Cluster {
    nodes: Vec<RedisServer>,
    /// Nodes killed or frozen by the test: not asked.
    down: Vec<bool>,
}

impl Cluster {
    fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    &NODE_TIMEOUT_MS.to_string(),
                    // A replica syncs at once (no 5 s wait for more replicas).
                    "--repl-diskless-sync-delay",
                    "0",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `redis-cli` ({e}): install it with `apt-get install -y redis-tools`")
            });
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = Self { down: vec![false; nodes.len()], nodes };
        let started = Instant::now();
        let ok = (0..2_000).any(|_| {
            let ok = cluster.healthy();
            if !ok {
                std::thread::sleep(Duration::from_millis(10));
            }
            ok
        });
        assert!(ok, "the cluster is up: every node ok, every replica synced: {:#?}", cluster.lines(0));
        eprintln!("[cluster] 3 masters, 3 replicas up and synced {:?} after `--cluster create`", started.elapsed());
        cluster
    }

    /// Every live node says `cluster_state:ok` and sees three masters serving slots and a
    /// live replica of each, every replica's link to its master is up.
    fn healthy(&self) -> bool {
        self.live().all(|n| {
            let Ok(mut con) = self.nodes[n].client().get_connection_with_timeout(Duration::from_millis(200)) else {
                return false;
            };
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap_or_default();
            let lines = self.lines(n);
            let masters: Vec<&Line> = lines.iter().filter(|l| l.is_master() && !l.slots.is_empty()).collect();
            let replicated = masters.iter().all(|m| {
                lines.iter().any(|l| l.master.as_ref() == Some(&m.id) && !l.failed() && self.is_live_port(l.port))
            });
            let me = lines.iter().find(|l| l.flags.contains("myself"));
            let link_up =
                me.is_some_and(Line::is_master) || self.info(n, "replication").contains("master_link_status:up");
            info.contains("cluster_state:ok") && masters.len() == 3 && replicated && link_up
        })
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|n| !self.down[*n])
    }

    fn is_live_port(&self, port: u16) -> bool {
        self.live().any(|n| self.nodes[n].port() == port)
    }

    fn index(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port() == port).expect("a node of this cluster")
    }

    fn connect(&self) -> Connect {
        Connect::cluster(self.nodes.iter().map(RedisServer::url))
    }

    fn info(&self, node: usize, section: &str) -> String {
        redis::cmd("INFO").arg(section).query(&mut self.nodes[node].connection()).unwrap()
    }

    /// `CLUSTER NODES`, as node `n` sees it.
    fn lines(&self, n: usize) -> Vec<Line> {
        let nodes: String =
            redis::cmd("CLUSTER").arg("NODES").query(&mut self.nodes[n].connection()).unwrap_or_default();
        nodes
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let slots = f[8..]
                    .iter()
                    .filter(|r| !r.starts_with('['))
                    .map(|r| {
                        let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                        (lo.parse().unwrap(), hi.parse().unwrap())
                    })
                    .collect();
                Line {
                    id: f[0].to_owned(),
                    port: f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap(),
                    flags: f[2].to_owned(),
                    master: (f[3] != "-").then(|| f[3].to_owned()),
                    slots,
                }
            })
            .collect()
    }

    fn id(&self, node: usize) -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut self.nodes[node].connection()).unwrap()
    }

    /// The slot of a breaker's keys, asked of a live node.
    fn slot(&self, service: &str, breaker: &str) -> u16 {
        let key = format!("breakerbox:{{{service}:{breaker}}}:state");
        let n = self.live().next().expect("a live node");
        redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut self.nodes[n].connection()).unwrap()
    }

    /// The masters serving slots, as node `n` sees them.
    fn masters(&self, n: usize) -> Vec<usize> {
        self.lines(n).iter().filter(|l| l.is_master() && !l.slots.is_empty()).map(|l| self.index(l.port)).collect()
    }

    /// The master that serves `slot`, as every live node sees it (`None` while they
    /// disagree or none does).
    fn owner(&self, slot: u16) -> Option<usize> {
        let mut owners = self.live().map(|n| {
            self.lines(n)
                .iter()
                .find(|l| l.is_master() && !l.failed() && l.slots.iter().any(|(lo, hi)| (*lo..=*hi).contains(&slot)))
                .map(|l| self.index(l.port))
        });
        let first = owners.next().flatten()?;
        owners.all(|o| o == Some(first)).then_some(first)
    }

    /// The replica of master `m`, as `m` sees it.
    fn replica_of(&self, m: usize) -> usize {
        let id = self.id(m);
        let line = self.lines(m).into_iter().find(|l| l.master.as_ref() == Some(&id)).expect("a replica");
        self.index(line.port)
    }

    /// Node `n`'s role: `master` or `slave` (`ROLE`).
    fn role(&self, n: usize) -> String {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut self.nodes[n].connection()).unwrap();
        match &role[0] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            v => format!("{v:?}"),
        }
    }

    /// `(state, incarnation, epoch)` of a breaker, read on node `n` (`READONLY` on a
    /// replica).
    fn state_on(&self, n: usize, service: &str, breaker: &str) -> (String, String, u64) {
        let mut con = self.nodes[n].connection();
        cmd(&mut con, &["READONLY"]);
        fleet_state(&mut con, service, breaker)
    }

    /// Every write so far on master `m` (in `slot`) is on its replica.
    fn replicated(&self, m: usize, slot_of: &str) {
        let mut con = self.nodes[m].connection();
        cmd(&mut con, &["SET", &format!("{{{slot_of}}}:marker"), "1"]);
        let acked: i64 = redis::cmd("WAIT").arg(1).arg(1_000).query(&mut con).unwrap();
        assert_eq!(acked, 1, "the replica of node {m} acknowledged");
    }

    /// Moves `slot` to master `to`, keys and all, as `redis-cli --cluster reshard` does
    /// (as `tests/cluster.rs`; `SETSLOT ... NODE` to the masters only, the replicas
    /// learn it from theirs). Returns the master it left.
    fn migrate(&self, slot: u16, to: usize) -> usize {
        let from = self.owner(slot).expect("an owner");
        assert_ne!(from, to, "slot {slot} is already on node {to}");
        let (from_id, to_id) = (self.id(from), self.id(to));
        let (mut src, mut dst) = (self.nodes[from].connection(), self.nodes[to].connection());
        let slot_arg = slot.to_string();
        cmd(&mut dst, &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id]);
        cmd(&mut src, &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id]);
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
        for node in [to, from].into_iter().chain(self.masters(to).into_iter().filter(|n| *n != to && *n != from)) {
            cmd(&mut self.nodes[node].connection(), &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id]);
        }
        from
    }
}

/// Polls `cond` (blocking: Redis queries) every 10 ms until it holds, at most `within`;
/// returns how long it took, or panics naming `what`.
async fn until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if tokio::task::block_in_place(&mut cond) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The first `Degraded` reason each replica emitted, if any.
fn degraded(pair: &Pair) -> [Option<String>; 2] {
    pair.events().map(|e| {
        e.lock().unwrap().iter().find_map(|e| match e {
            FleetEvent::Degraded { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    })
}

/// A fleet on the cluster, `held` open on both replicas, replicated; calls timed.
async fn fleet(
    test: &str,
    cluster: &Cluster,
    config: breakerbox_redis::FleetConfig,
) -> (Pair, faults::Caller, faults::Worst) {
    let connect = cluster.connect();
    let pair = Pair::start_on(|b| b.start_with(connect.clone()), config, 60_000).await;
    pair.open_held().await;
    let owners: Vec<(&str, u16, Option<usize>)> = ["orders", "during", "after", "held"]
        .into_iter()
        .map(|b| (b, cluster.slot(test, b), cluster.owner(cluster.slot(test, b))))
        .collect();
    eprintln!("[{test}] (breaker, slot, master): {owners:?}; the subscription on node 0 (the first seed)");
    let caller = pair.caller();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = caller.take();
    (pair, caller, baseline)
}

/// A breaker on both replicas whose slot master `m` serves (a name found for it), watched
/// and read once: tripped after a failover, it shows the fleet follows the new master.
async fn breaker_on(pair: &Pair, cluster: &Cluster, test: &str, m: usize) -> (String, [Breaker; 2]) {
    let name = (0..1_000)
        .map(|i| format!("moved-{i}"))
        .find(|name| cluster.owner(cluster.slot(test, name)) == Some(m))
        .expect("a name in one of the master's slots");
    let b = [&pair.a, &pair.b].map(|f| f.breaker(support::builder(&name, 1, 60_000)).unwrap());
    pair.a.sync().await.unwrap();
    pair.b.sync().await.unwrap();
    (name, b)
}

/// Trips `moved` on `b` and waits for it on `a`; returns how long it took. Then checks
/// it is open on the master now serving its slot.
async fn follows(test: &str, cluster: &Cluster, name: &str, moved: &[Breaker; 2], master: usize) -> Duration {
    let t = Instant::now();
    trip(&moved[1]);
    let reached = eventually(Duration::from_secs(1), || moved[0].is_open()).await;
    let took = t.elapsed();
    assert!(reached, "[{test}] a trip of `{name}` on the failed-over slot reaches the other replica within 1 s");
    eprintln!("[{test}] a trip of `{name}` (a slot of the new master {master}) reached `a` in {took:?}");
    let owner = cluster.owner(cluster.slot(test, name));
    assert_eq!(owner, Some(master), "[{test}] `{name}`'s slot on the new master");
    let open = eventually(Duration::from_secs(1), || cluster.state_on(master, test, name).0 == "open");
    assert!(open.await, "[{test}] `{name}` open on the new master");
    took
}

// ===== 1. a slot migrated while the replicas replicate =====

/// The slots of the open `held` and of `after` move to the next master, as
/// `redis-cli --cluster reshard` moves them (back to back), while every master's replica
/// is attached and replicating: the `MIGRATE`d keys are restored on the new master and
/// reach its replica, the old master's replica drops them. The fleet follows `MOVED` /
/// `ASK`: no call waits, `held` keeps its incarnation and epoch (on the new master and on
/// its replica), a trip after the migration propagates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_slot_migration_while_replicas_sync() {
    let test = "cluster_replicas_migration";
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start();
    let (pair, caller, baseline) = fleet(test, &cluster, config(test)).await;
    let held = cluster.slot(test, "held");
    let from = cluster.owner(held).unwrap();
    cluster.replicated(from, &format!("{test}:held"));
    let before = cluster.state_on(from, test, "held");
    let on_replica = cluster.state_on(cluster.replica_of(from), test, "held");
    assert_eq!(on_replica, before, "[{test}] `held` replicated before the migration");

    let started = Instant::now();
    let mut moves = Vec::new();
    for b in ["held", "after"] {
        let slot = cluster.slot(test, b);
        let from = cluster.owner(slot).unwrap();
        let mut masters = cluster.masters(from);
        masters.sort_unstable();
        let to = masters[(masters.iter().position(|m| *m == from).unwrap() + 1) % masters.len()];
        let (src_replica, dst_replica) = (cluster.replica_of(from), cluster.replica_of(to));
        let moved = tokio::task::block_in_place(|| cluster.migrate(slot, to));
        moves.push((b, slot, moved, to, src_replica, dst_replica));
    }
    let took = started.elapsed();
    eprintln!("[{test}] migrated (breaker, slot, from, to, from's replica, to's replica) {moves:?} in {took:?}");
    for &(b, slot, from, to, src_replica, dst_replica) in &moves {
        let what = format!("[{test}] every node sees `{b}`'s slot {slot} on node {to}");
        until(Duration::from_secs(5), &what, || cluster.owner(slot) == Some(to)).await;
        for r in [src_replica, dst_replica] {
            assert!(
                cluster.info(r, "replication").contains("master_link_status:up"),
                "[{test}] node {r} still replicates"
            );
        }
        if b == "held" {
            cluster.replicated(to, &format!("{test}:held"));
            assert_eq!(cluster.state_on(to, test, "held"), before, "[{test}] `held` on its new master");
            assert_eq!(cluster.state_on(dst_replica, test, "held"), before, "[{test}] and on its replica");
            let count = |n: usize| -> i64 {
                redis::cmd("CLUSTER")
                    .arg("COUNTKEYSINSLOT")
                    .arg(slot)
                    .query(&mut cluster.nodes[n].connection())
                    .unwrap()
            };
            let counts = [from, src_replica, to, dst_replica].map(count);
            eprintln!("[{test}] keys in slot {slot} on (old master, its replica, new master, its replica) {counts:?}");
            assert!(counts[0] == 0 && counts[1] == 0, "[{test}] the old master and its replica dropped them");
            assert!(counts[2] > 0 && counts[3] == counts[2], "[{test}] the new master's replica has them");
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let degraded = degraded(&pair);
    eprintln!(
        "[{test}] degraded during the migration (a, b): {degraded:?}; failed rounds a {}, b {}",
        pair.a.status().errors,
        pair.b.status().errors
    );
    pair.reconverges(test, degraded.iter().all(Option::is_some)).await;
    let during = caller.take();

    assert_eq!(pair.data_lost("held"), [false, false], "[{test}] no data lost");
    assert!(pair.held.iter().all(Breaker::is_open), "[{test}] `held` stays open");
    let after_owner = cluster.owner(cluster.slot(test, "after")).unwrap();
    assert_eq!(cluster.state_on(after_owner, test, "after").0, "open", "[{test}] the trip after, on the new master");
    no_call_waited(test, baseline, during);
}

// ===== 2. a graceful failover =====

/// `CLUSTER FAILOVER` on the replica of `held`'s master: the replica catches up (the
/// master pauses its clients meanwhile), takes over the slots, and the old master becomes
/// its replica. The fleet's next script there is answered `MOVED` and followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_manual_failover() {
    let test = "cluster_manual_failover";
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start();
    let (pair, caller, baseline) = fleet(test, &cluster, config(test)).await;
    let slot = cluster.slot(test, "held");
    let master = cluster.owner(slot).unwrap();
    let replica = cluster.replica_of(master);
    let (name, moved) = breaker_on(&pair, &cluster, test, master).await;
    let before = cluster.state_on(master, test, "held");

    let started = Instant::now();
    cmd(&mut cluster.nodes[replica].connection(), &["CLUSTER", "FAILOVER"]);
    let promoted = until(Duration::from_secs(5), &format!("[{test}] node {replica} promoted"), || {
        cluster.owner(slot) == Some(replica)
    })
    .await;
    let demoted = until(Duration::from_secs(5), &format!("[{test}] node {master} a replica"), || {
        cluster.role(master) == "slave" && cluster.healthy()
    })
    .await;
    eprintln!(
        "[{test}] node {replica} (replica of {master}) serves `held`'s slot {slot} {promoted:?} after \
         `CLUSTER FAILOVER`; node {master} a synced replica of it {:?} after",
        started.elapsed().max(demoted)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let degraded = degraded(&pair);
    eprintln!(
        "[{test}] degraded during the failover (a, b): {degraded:?}; failed rounds a {}, b {}",
        pair.a.status().errors,
        pair.b.status().errors
    );
    pair.reconverges(test, degraded.iter().all(Option::is_some)).await;
    let _ = follows(test, &cluster, &name, &moved, replica).await;
    let during = caller.take();

    assert_eq!(cluster.state_on(replica, test, "held"), before, "[{test}] the same incarnation and epoch");
    assert_eq!(pair.data_lost("held"), [false, false], "[{test}] no data lost");
    assert!(pair.held.iter().all(Breaker::is_open), "[{test}] `held` stays open");
    let after = cluster.owner(cluster.slot(test, "after")).unwrap();
    assert_eq!(cluster.state_on(after, test, "after").0, "open", "[{test}] the trip after, on its master");
    no_call_waited(test, baseline, during);
}

// ===== 3. a master lost, its replica promoted by the cluster =====

/// The master of `held`'s slot (or, `subscribed`, node 0: the seed both replicas'
/// subscriptions are on) stops (`kill`: SIGKILL; else SIGSTOP, thawed at the end, when it
/// rejoins as a replica). Until the cluster marks it failed and promotes its replica
/// (`cluster-node-timeout` 1000 ms, then an election), its slots have no master: the fleet
/// degrades (scripts there fail or time out; once the node is marked failed the whole
/// cluster answers `CLUSTERDOWN`) and decides locally. Then it rejoins on the promoted
/// replica, the trip made meanwhile is voted, `held` is as it was.
async fn master_lost(test: &str, kill: bool, subscribed: bool) {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start();
    // Subscribed: refreshes (which carry trips too) seldom, as by default, so that only
    // pushes propagate quickly.
    let config = if subscribed { config(test).refresh_interval(Duration::from_secs(1)) } else { config(test) };
    let (pair, caller, baseline) = fleet(test, &cluster, config).await;
    let pushed: Vec<[Breaker; 2]> = (0..3)
        .map(|i| [&pair.a, &pair.b].map(|f| f.breaker(support::builder(&format!("pushed-{i}"), 1, 60_000)).unwrap()))
        .collect();
    let held_slot = cluster.slot(test, "held");
    let held_master = cluster.owner(held_slot).unwrap();
    let master = if subscribed { 0 } else { held_master };
    assert_eq!(cluster.role(master), "master", "[{test}] node {master} a master");
    let replica = cluster.replica_of(master);
    let (name, moved) = breaker_on(&pair, &cluster, test, master).await;
    let slot = cluster.slot(test, &name);
    cluster.replicated(held_master, &format!("{test}:held"));
    let before = cluster.state_on(held_master, test, "held");
    let held_replica = cluster.replica_of(held_master);
    assert_eq!(cluster.state_on(held_replica, test, "held"), before, "[{test}] `held` replicated");

    let started = Instant::now();
    if kill {
        cluster.nodes[master].kill();
    } else {
        cluster.nodes[master].pause();
    }
    cluster.down[master] = true;
    pair.degraded_locally(test, Duration::from_secs(1)).await;
    let degraded_after = started.elapsed();
    until(Duration::from_secs(10), &format!("[{test}] node {replica} promoted"), || {
        cluster.owner(slot) == Some(replica)
            && cluster
                .live()
                .all(|n| cluster.lines(n).iter().all(|l| l.port != cluster.nodes[master].port() || l.failed()))
    })
    .await;
    let promoted = started.elapsed();
    until(Duration::from_secs(10), &format!("[{test}] cluster_state:ok"), || {
        cluster.live().all(|n| {
            let info: String =
                redis::cmd("CLUSTER").arg("INFO").query(&mut cluster.nodes[n].connection()).unwrap_or_default();
            info.contains("cluster_state:ok")
        })
    })
    .await;
    eprintln!(
        "[{test}] node {master} ({}) {}: checked degraded locally by {degraded_after:?}; \
         node {replica} serves its slot {slot} {promoted:?} after the fault, cluster_state:ok everywhere {:?} after",
        if subscribed { "the subscriptions' node" } else { "`held`'s master" },
        if kill { "killed" } else { "frozen" },
        started.elapsed(),
    );
    let fault_ended = Instant::now();
    pair.reconverges(test, true).await;
    let rejoined = pair.events().map(|e| {
        e.lock().unwrap().iter().find_map(|e| match e {
            FleetEvent::Rejoined { after } => Some(*after),
            _ => None,
        })
    });
    eprintln!(
        "[{test}] degraded for {rejoined:?}; reconverged {:?} after the promotion; failed rounds a {}, b {}",
        fault_ended.elapsed(),
        pair.a.status().errors,
        pair.b.status().errors
    );
    let _ = follows(test, &cluster, &name, &moved, replica).await;
    // Pushes again, not only the refreshes: a silent subscription was given up on and
    // made again on a node that answers, while the old master is still frozen.
    let mut took = Vec::new();
    for b in &pushed {
        let t = Instant::now();
        trip(&b[1]);
        assert!(eventually(Duration::from_secs(2), || b[0].is_open()).await, "[{test}] a trip reaches `a`");
        took.push(t.elapsed());
    }
    eprintln!("[{test}] three more trips after the failover reached `a` in {took:?}");
    if subscribed {
        let pushed = took.iter().all(|t| *t < Duration::from_millis(150));
        assert!(
            pushed,
            "[{test}] trips pushed (not left to the 1 s refresh) while the subscribed node is frozen: {took:?}"
        );
    }
    let during = caller.take();

    let held_now = cluster.owner(held_slot).unwrap();
    assert_eq!(cluster.state_on(held_now, test, "held"), before, "[{test}] the same incarnation and epoch");
    assert_eq!(pair.data_lost("held"), [false, false], "[{test}] no data lost");
    assert!(pair.held.iter().all(Breaker::is_open), "[{test}] `held` stays open");
    let after = cluster.owner(cluster.slot(test, "after")).unwrap();
    assert_eq!(cluster.state_on(after, test, "after").0, "open", "[{test}] the trip after, on its master");
    no_call_waited(test, baseline, during);

    if !kill {
        // Thawed, the old master learns it lost its slots and follows the new master.
        cluster.nodes[master].resume();
        cluster.down[master] = false;
        let t = Instant::now();
        until(Duration::from_secs(10), &format!("[{test}] node {master} back as a replica"), || {
            cluster.role(master) == "slave" && cluster.healthy()
        })
        .await;
        eprintln!("[{test}] thawed, node {master} a synced replica {:?} later", t.elapsed());
        drop(caller);
        let t = Instant::now();
        trip(&pair.orders[0]);
        assert!(eventually(Duration::from_secs(1), || pair.orders[1].is_open()).await, "[{test}] still converges");
        eprintln!("[{test}] then a trip reached `b` in {:?}", t.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_killed_replica_promoted() {
    master_lost("cluster_master_killed", true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_frozen_replica_promoted() {
    master_lost("cluster_master_frozen", false, false).await;
}

/// The master frozen is the node both replicas' subscriptions are on: a subscription
/// does not notice a silent node, so pushes stop until it thaws (as a replica: classic
/// pub/sub reaches replicas too), and trips propagate at the next refresh meanwhile
/// (`refresh_interval`, 100 ms here; 1 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_subscribed_master_frozen_replica_promoted() {
    master_lost("cluster_subscribed_frozen", false, true).await;
}

/// A seed that does not answer (a replica frozen: a stalled or partitioned host) before
/// the fleet starts: the fleet connects through the others, and trips propagate. (The
/// cluster client waits for every seed on each (re)connection; each was given the whole
/// `operation_timeout`, so one silent seed timed every connection out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_with_a_frozen_seed() {
    let test = "cluster_frozen_seed";
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start();
    let frozen = cluster.replica_of(cluster.owner(cluster.slot(test, "held")).unwrap());
    cluster.nodes[frozen].pause();
    cluster.down[frozen] = true;
    let t = Instant::now();
    let (pair, caller, baseline) = fleet(test, &cluster, config(test)).await;
    eprintln!(
        "[{test}] node {frozen} (a replica) frozen: the fleet up, `held` open, calls timed {:?} later",
        t.elapsed()
    );
    pair.reconverges(test, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = caller.take();
    assert!(!pair.a.status().degraded && !pair.b.status().degraded, "[{test}] not degraded");
    no_call_waited(test, baseline, during);
    cluster.nodes[frozen].resume();
}
