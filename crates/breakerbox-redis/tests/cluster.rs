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

#[path = "support/cluster.rs"]
mod nodes;

use std::time::{Duration, Instant};

use breakerbox::Breaker;
use breakerbox_redis::FleetEvent;
use faults::{Pair, no_call_waited};
use nodes::Cluster;
use support::{config, eventually, saw, trip};

/// The tests here run one at a time: each measures call latencies.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Trips propagate between two replicas through the cluster, for breakers whose slots are
/// on different masters; the fleet's open state is where its slot's master keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_trips_reconverge_across_replicas() {
    let test = "cluster_trips";
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(0);
    let connect = cluster.connect();
    let pair = Pair::start_on(|b| b.start_with(connect.clone()), config(test), 60_000).await;
    let owners: Vec<(&str, usize)> = ["orders", "during", "after", "held"]
        .into_iter()
        .map(|b| (b, cluster.owner(cluster.slot(test, b)).expect("an owner")))
        .collect();
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
    let cluster = Cluster::start(0);
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
        let to = (cluster.owner(slot).expect("an owner") + 1) % cluster.nodes.len();
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
        assert_eq!(cluster.owner(*slot), Some(*to), "[{test}] `{b}`'s slot moved");
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
