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

#[path = "support/cluster.rs"]
mod nodes;

use std::time::{Duration, Instant};

use breakerbox::Breaker;
use breakerbox_redis::FleetEvent;
use faults::{Pair, cmd, no_call_waited};
use nodes::Cluster;
use support::{config, eventually, trip};

/// The tests here run one at a time: each measures call latencies.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let cluster = Cluster::start(1);
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
        let moved = tokio::task::block_in_place(|| cluster.migrate(slot, to, Duration::ZERO));
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
    let cluster = Cluster::start(1);
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
    let mut cluster = Cluster::start(1);
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
    let mut cluster = Cluster::start(1);
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
