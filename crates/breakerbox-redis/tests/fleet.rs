//! The fleet against a real `redis-server` (started by the tests on a free loopback
//! port): shared trips, quorum, fleet-wide probes, families, stale updates, keys.
//! Each replica is a separate `Fleet` with its own Redis connections.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use breakerbox::{Breaker, State};
use breakerbox_redis::{Fleet, FleetEvent};
use redis::Commands;
use support::{Events, RedisServer, builder, config, eventually, percentiles, replica, saw, timed, trip};

async fn synced(fleets: &[Fleet]) {
    for f in fleets {
        f.sync().await.expect("redis answers");
    }
}

/// Three replicas; one trips; the other two open within the bound, trial after trial.
/// The bound: a push arrives in one round trip; without it, polling catches up within
/// the refresh interval (100 ms here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replicas_trip_opens_every_replica_within_the_bound() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> = (0..3).map(|i| replica(&server, config("trip"), &format!("r{i}")).0).collect();
    let mut delays = Vec::new();
    for trial in 0..20 {
        let name = format!("payments-{trial}");
        let mut breakers = Vec::new();
        let mut opened = Vec::new();
        for f in &fleets {
            let (b, at) = timed(f.attach(builder(&name, 1, 60_000)));
            let b = b.build().unwrap();
            f.watch(&b);
            breakers.push(b);
            opened.push(at);
        }
        synced(&fleets).await;
        let t0 = Instant::now();
        trip(&breakers[0]);
        assert!(
            eventually(Duration::from_secs(1), || breakers.iter().all(Breaker::is_open)).await,
            "trial {trial}: {:?}",
            breakers.iter().map(Breaker::state).collect::<Vec<_>>()
        );
        for at in &opened[1..] {
            let d = at.lock().unwrap().expect("opened by the fleet").duration_since(t0);
            assert!(d < Duration::from_millis(250), "trial {trial}: {d:?}");
            delays.push(d);
        }
    }
    let (median, p99) = percentiles(&mut delays);
    eprintln!("propagation over {} samples: median {median:?}, p99 {p99:?}", delays.len());
}

/// A breaker tripped right after `Fleet::breaker`, before the fleet's task has read the
/// watch (one thread: the task cannot run in between): the trip is still voted.
#[tokio::test(flavor = "current_thread")]
async fn a_trip_right_after_watch_is_voted() {
    let server = RedisServer::start();
    let (a, _) = replica(&server, config("early"), "a");
    let (b, _) = replica(&server, config("early"), "b");
    let theirs = b.breaker(builder("ledger", 1, 60_000)).unwrap();
    b.sync().await.expect("redis answers");
    let mine = a.breaker(builder("ledger", 1, 60_000)).unwrap();
    trip(&mine);
    assert!(eventually(Duration::from_secs(1), || theirs.is_open()).await, "{:?}", b.view("ledger"));
}

/// min_replicas = 2: one replica tripping alone never opens the fleet; a second one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_replica_cannot_trip_the_fleet() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> =
        (0..3).map(|i| replica(&server, config("quorum").min_replicas(2), &format!("r{i}")).0).collect();
    let breakers: Vec<Breaker> = fleets.iter().map(|f| f.breaker(builder("search", 2, 60_000)).unwrap()).collect();
    synced(&fleets).await;

    trip(&breakers[0]);
    // Several sync intervals and refreshes pass: the vote is in Redis, the fleet stays closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(breakers[0].is_open());
    assert!(breakers[1].is_closed() && breakers[2].is_closed());
    assert_eq!(fleets[1].view("search").unwrap().state, State::Closed);

    trip(&breakers[1]);
    assert!(eventually(Duration::from_secs(1), || breakers[2].is_open()).await, "the second vote opens the fleet");
    assert_eq!(fleets[2].view("search").unwrap().state, State::Open);
}

/// min_calls: a trip on too little traffic waits for the fleet's volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_needs_the_fleets_minimum_volume() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> =
        (0..2).map(|i| replica(&server, config("volume").min_calls(50), &format!("r{i}")).0).collect();
    let breakers: Vec<Breaker> = fleets.iter().map(|f| f.breaker(builder("ledger", 3, 60_000)).unwrap()).collect();
    synced(&fleets).await;

    trip(&breakers[0]); // 3 calls: below 50
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(breakers[1].is_closed(), "3 calls are not enough volume");

    for _ in 0..50 {
        let _ = breakers[1].call(|| Ok::<_, ()>(()));
    }
    // The other replica's successes count toward the fleet's volume; the vote still holds.
    assert!(eventually(Duration::from_secs(1), || breakers[1].is_open()).await);
}

/// The fleet sends the configured number of half-open probes (the breakers'
/// `half_open_probes`, here 2), from the one replica holding the probe lease, while
/// every replica keeps calling; then every replica closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_sends_the_configured_number_of_probes() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> = (0..3).map(|i| replica(&server, config("probes"), &format!("r{i}")).0).collect();
    let breakers: Vec<Breaker> =
        fleets.iter().map(|f| f.breaker(builder("inventory", 1, 300).half_open_probes(2)).unwrap()).collect();
    synced(&fleets).await;
    trip(&breakers[0]);
    assert!(eventually(Duration::from_secs(1), || breakers.iter().all(Breaker::is_open)).await);

    // Each replica calls the (recovered) service every 200 µs until the whole fleet closes.
    let probes = Arc::new(AtomicU64::new(0));
    let reached = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = breakers
        .iter()
        .map(|b| {
            let (b, probes, reached, stop) = (b.clone(), probes.clone(), reached.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(permit) = b.try_acquire() {
                        if permit.admitted_in() == State::HalfOpen {
                            probes.fetch_add(1, Ordering::Relaxed);
                        }
                        reached.fetch_add(1, Ordering::Relaxed);
                        permit.success();
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        })
        .collect();
    let closed = eventually(Duration::from_secs(5), || breakers.iter().all(Breaker::is_closed)).await;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(closed, "{:?}", breakers.iter().map(Breaker::state).collect::<Vec<_>>());
    assert_eq!(probes.load(Ordering::Relaxed), 2, "fleet-wide probes");
    let leases: u64 = fleets.iter().map(|f| f.status().probe_leases).sum();
    assert_eq!(leases, 1, "one replica probed for the fleet");
    assert!(reached.load(Ordering::Relaxed) > 2);
}

/// A failed probe reopens the whole fleet (a new epoch, the next wait); the next probe
/// closes it. Two probes in all, across three busy replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_probe_reopens_the_fleet() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> = (0..3).map(|i| replica(&server, config("reopen"), &format!("r{i}")).0).collect();
    let breakers: Vec<Breaker> = fleets.iter().map(|f| f.breaker(builder("mail", 1, 250)).unwrap()).collect();
    synced(&fleets).await;
    trip(&breakers[1]);
    assert!(eventually(Duration::from_secs(1), || breakers.iter().all(Breaker::is_open)).await);

    let probes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = breakers
        .iter()
        .map(|b| {
            let (b, probes, stop) = (b.clone(), probes.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(permit) = b.try_acquire() {
                        if permit.admitted_in() == State::HalfOpen {
                            // The first probe finds the service still down.
                            if probes.fetch_add(1, Ordering::Relaxed) == 0 {
                                permit.failure();
                                continue;
                            }
                        }
                        permit.success();
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        })
        .collect();
    let reopened = eventually(Duration::from_secs(3), || fleets[0].view("mail").is_some_and(|v| v.epoch >= 3)).await;
    let closed = eventually(Duration::from_secs(5), || breakers.iter().all(Breaker::is_closed)).await;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(reopened && closed, "{:?}", fleets[0].view("mail"));
    assert_eq!(probes.load(Ordering::Relaxed), 2, "one failed probe, then one that closed the fleet");
    // epochs: 1 open, 2 reopened after the failed probe, 3 closed
    assert_eq!(fleets[2].view("mail").unwrap().epoch, 3);
}

/// A push older than the state already applied changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_updates_are_ignored() {
    let server = RedisServer::start();
    let replicas: Vec<(Fleet, Events)> = (0..2).map(|i| replica(&server, config("stale"), &format!("r{i}"))).collect();
    let breakers: Vec<Breaker> = replicas.iter().map(|(f, _)| f.breaker(builder("geo", 1, 100)).unwrap()).collect();
    let fleets: Vec<Fleet> = replicas.iter().map(|(f, _)| f.clone()).collect();
    synced(&fleets).await;
    // Epoch 1: open; epoch 2: closed after a probe.
    trip(&breakers[0]);
    assert!(eventually(Duration::from_secs(1), || breakers[1].is_open()).await);
    let closed = eventually(Duration::from_secs(3), || {
        for b in &breakers {
            let _ = b.call(|| Ok::<_, ()>(()));
        }
        fleets.iter().all(|f| f.view("geo").is_some_and(|v| v.epoch == 2 && v.state == State::Closed))
    })
    .await;
    assert!(closed);

    // Replay epoch 1's "open for a minute" as Redis would publish it.
    let mut con = server.connection();
    let inc: String = con.hget("breakerbox:{stale:geo}:state", "inc").unwrap();
    let _: i64 = con.publish("breakerbox:stale:events", format!("{inc}|1|1|60000|geo")).unwrap();
    // And a forged one from another incarnation.
    let _: i64 = con.publish("breakerbox:stale:events", "ffff|9|1|60000|geo").unwrap();
    assert!(
        eventually(Duration::from_secs(1), || replicas
            .iter()
            .all(|(_, e)| saw(e, |e| matches!(e, FleetEvent::StaleIgnored { epoch: 1, current: 2, .. }))))
        .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (b, f) in breakers.iter().zip(&fleets) {
        assert!(b.is_closed());
        assert_eq!(f.view("geo").unwrap().epoch, 2);
        assert!(f.status().stale_ignored >= 1);
    }
    let state: String = con.hget("breakerbox:{stale:geo}:state", "state").unwrap();
    assert_eq!(state, "closed");
}

/// Keys are namespaced per service and breaker, share one hash tag, and all expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_share_a_hash_tag_and_expire_and_services_are_apart() {
    let server = RedisServer::start();
    let (a, _) = replica(&server, config("billing").key_ttl(Duration::from_secs(60)), "a");
    let (b, _) = replica(&server, config("shipping"), "b");
    let in_billing = a.breaker(builder("db", 1, 60_000)).unwrap();
    let in_shipping = b.breaker(builder("db", 1, 60_000)).unwrap();
    synced(&[a.clone(), b.clone()]).await;
    in_billing.try_acquire().unwrap().success();
    trip(&in_billing);
    assert!(eventually(Duration::from_secs(1), || a.view("db").is_some_and(|v| v.state == State::Open)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(in_shipping.is_closed(), "another service's breaker of the same name");

    let mut con = server.connection();
    let keys: Vec<String> = con.keys("*").unwrap();
    assert!(keys.contains(&"breakerbox:{billing:db}:state".to_owned()), "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("breakerbox:{billing:db}:") || key.starts_with("breakerbox:{shipping:db}:"), "{key}");
        let ttl: i64 = con.pttl(key).unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        if key.starts_with("breakerbox:{billing:db}:state") {
            assert!(ttl <= 60_000, "{key}: {ttl}");
        }
    }
}

/// A family's breakers are synced one by one: the same key opens everywhere, others not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_share_state_per_key() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> = (0..2).map(|i| replica(&server, config("hosts"), &format!("r{i}")).0).collect();
    let families: Vec<breakerbox::BreakerBox<String>> =
        fleets.iter().map(|f| f.breaker_box(builder("upstream", 1, 60_000)).unwrap()).collect();
    for fam in &families {
        fam.get("a.example");
        fam.get("b.example");
    }
    synced(&fleets).await;
    trip(&families[0].get("a.example"));
    assert!(eventually(Duration::from_secs(1), || families[1].get("a.example").is_open()).await);
    assert!(families[1].get("b.example").is_closed());
    assert_eq!(fleets[1].view("upstream/a.example").unwrap().state, State::Open);

    // A key first used after the fleet opened it adopts the open state on first sync.
    let late = families[0].get("c.example");
    trip(&late);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = families[1].get("c.example");
    assert!(eventually(Duration::from_secs(1), || fresh.is_open()).await);
}

/// A breaker forced open or disabled by hand is left alone by the fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_overrides_win_over_the_fleet() {
    let server = RedisServer::start();
    let fleets: Vec<Fleet> = (0..2).map(|i| replica(&server, config("manual"), &format!("r{i}")).0).collect();
    let breakers: Vec<Breaker> = fleets.iter().map(|f| f.breaker(builder("cache", 1, 60_000)).unwrap()).collect();
    synced(&fleets).await;
    breakers[1].disable();
    trip(&breakers[0]);
    assert!(eventually(Duration::from_secs(1), || fleets[1].view("cache").is_some_and(|v| v.epoch == 1)).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(breakers[1].state(), State::Disabled);
}
