//! After the fleet's probe, against a real `redis-server`: replicas whose breakers have a
//! recovery ramp follow one ramp, started at Redis's `TIME`, and close together (a
//! replica that joins mid-ramp too, and all of them when Redis is lost mid-ramp); and a
//! replica in shadow mode stays local.
//!
//! Tolerance of the ramp: a replica enters the fleet's ramp at the point Redis's clock
//! gives when it reads the fleet's state, so learning of it late (a lost push, a refresh)
//! does not shift its ramp; only the time between the script reading `TIME` and the
//! replica calling `recover` does (the reply's transit, the worker's loop), and the
//! prober's own ramp, which began a round trip before Redis's `TIME`. The tests allow one
//! `sync_interval` (20 ms here) of that: fractions agree within 20 ms of the ramp's rise
//! (0.01 of a linear ramp of 2 s) and the breakers close within 20 ms of each other, plus
//! the 1 ms the test polls at.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Ramp, State};
use breakerbox_redis::{Fleet, FleetEvent};
use redis::Commands;
use support::{Events, RedisServer, builder, config, eventually, replica, saw, trip};

/// One at a time: the ramp's timing is measured on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const RAMP: Duration = Duration::from_secs(2);

async fn synced(fleets: &[Fleet]) {
    for f in fleets {
        f.sync().await.expect("redis answers");
    }
}

/// Calls every breaker with a success every 200 µs, each on its own thread, until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    fn start(breakers: &[Breaker]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = breakers
            .iter()
            .map(|b| {
                let (b, stop) = (b.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = b.call(|| Ok::<_, ()>(()));
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn states(breakers: &[Breaker]) -> Vec<State> {
    breakers.iter().map(Breaker::state).collect()
}

/// Three replicas, a ramp of 2 s: one replica's probe succeeds, every replica reports
/// `Recovering` at once, their `recovery_fraction`s agree at every moment they are read
/// together, a fourth replica started 0.8 s into the ramp joins it at the same point,
/// and all four close together, at about t₀ + 2 s; then the fleet is plain closed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_ramp_in_step_from_redis_time_and_close_together() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let cfg = config("ramp");
    let tolerance = cfg.sync_interval;
    let ramp = Ramp::new().duration(RAMP).min_fraction(0.05);
    let make = |f: &Fleet| f.breaker(builder("search", 1, 300).recovery_ramp(ramp.clone())).unwrap();
    let replicas: Vec<(Fleet, Events)> = (0..3).map(|i| replica(&server, cfg.clone(), &format!("r{i}"))).collect();
    let mut fleets: Vec<Fleet> = replicas.iter().map(|(f, _)| f.clone()).collect();
    let mut breakers: Vec<Breaker> = fleets.iter().map(make).collect();
    synced(&fleets).await;
    trip(&breakers[0]);
    assert!(eventually(Duration::from_secs(1), || breakers.iter().all(Breaker::is_open)).await);

    // Every replica calls; after the open wait one of them probes for the fleet.
    let traffic = Traffic::start(&breakers);
    assert!(
        eventually(Duration::from_secs(3), || breakers.iter().any(|b| b.state() == State::Recovering)).await,
        "{:?}",
        states(&breakers)
    );
    let began = Instant::now();
    assert!(
        eventually(tolerance, || breakers.iter().all(|b| b.state() == State::Recovering)).await,
        "every replica follows the prober into the ramp: {:?}",
        states(&breakers)
    );
    let followed = began.elapsed();
    let leases: u64 = fleets.iter().map(|f| f.status().probe_leases).sum();
    assert_eq!(leases, 1, "one replica probed for the fleet");
    let mut con = server.connection();
    let t0: Option<u64> = con.hget("breakerbox:{ramp:search}:state", "ramp_t0").unwrap();
    assert!(t0.is_some(), "the ramp's start, by Redis's clock");

    // Sample every replica's fraction together every 25 ms; note when each reads closed.
    let mut spread = 0.0f64;
    let mut samples = 0;
    let mut closed_at: Vec<Option<Instant>> = vec![None; 4];
    let mut late: Option<(Fleet, Events)> = None;
    let deadline = began + RAMP + Duration::from_secs(2);
    let mut next_sample = Instant::now();
    while closed_at.iter().take(breakers.len()).any(Option::is_none) && Instant::now() < deadline {
        if late.is_none() && began.elapsed() >= Duration::from_millis(800) {
            // A replica that starts mid-ramp enters it where the fleet is.
            let (f, e) = replica(&server, cfg.clone(), "r3");
            let b = make(&f);
            f.sync().await.unwrap();
            assert_eq!(b.state(), State::Recovering, "joined mid-ramp");
            fleets.push(f.clone());
            breakers.push(b);
            late = Some((f, e));
        }
        let now = Instant::now();
        let fractions: Vec<f64> = breakers.iter().map(|b| b.metrics().recovery_fraction).collect();
        let all_ramping = breakers.iter().all(|b| b.state() == State::Recovering);
        for (b, at) in breakers.iter().zip(closed_at.iter_mut()) {
            if at.is_none() && b.state() == State::Closed {
                *at = Some(now);
            }
        }
        if now >= next_sample && all_ramping {
            next_sample = now + Duration::from_millis(25);
            let (lo, hi) = fractions.iter().fold((f64::MAX, f64::MIN), |(lo, hi), f| (lo.min(*f), hi.max(*f)));
            // A ramp of 2 s rises by 0.01 in 20 ms (the floor of 0.05 aside).
            let allowed = tolerance.as_secs_f64() / RAMP.as_secs_f64() + 0.002;
            assert!(hi - lo <= allowed, "at {:?}: {fractions:?} differ by more than {allowed}", began.elapsed());
            spread = spread.max(hi - lo);
            samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(traffic);
    let closed: Vec<Instant> = closed_at.iter().take(breakers.len()).map(|t| t.expect("closed")).collect();
    let first = *closed.iter().min().unwrap();
    let last = *closed.iter().max().unwrap();
    let ended = first.duration_since(began);
    eprintln!(
        "ramp: all followed within {followed:?}; {samples} samples of 4 replicas, fractions within {spread:.4}; \
         closed {ended:?} after the first replica began, within {:?} of each other",
        last.duration_since(first)
    );
    assert!(samples >= 20, "{samples} samples");
    assert!(last.duration_since(first) <= tolerance + Duration::from_millis(2), "{:?}", last.duration_since(first));
    assert!(ended >= RAMP - tolerance && ended <= RAMP + tolerance, "{ended:?}");

    // Every follower applied the fleet's ramp; the late one too.
    let followers = replicas
        .iter()
        .chain(late.as_ref())
        .filter(|(_, e)| saw(e, |e| matches!(e, FleetEvent::Recovering { epoch: 2, .. })))
        .count();
    assert_eq!(followers, 4, "the prober's own reply says so too");
    // The first replica to finish the ramp ends it in Redis: plain closed, same epoch.
    assert!(
        eventually(Duration::from_secs(1), || fleets
            .iter()
            .all(|f| f.view("search").is_some_and(|v| v.state == State::Closed && v.epoch == 2)))
        .await,
        "{:?}",
        fleets.iter().map(|f| f.view("search")).collect::<Vec<_>>()
    );
    let t0: Option<u64> = con.hget("breakerbox:{ramp:search}:state", "ramp_t0").unwrap();
    assert_eq!(t0, None);
}

/// Redis is killed mid-ramp (`when_unreachable = "local"`): every breaker already has
/// the fleet's ramp on its own clock, so they go on in step and close together; when
/// Redis returns (empty), nothing is moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramps_stay_in_step_when_redis_is_lost_mid_ramp() {
    let _serial = SERIAL.lock().await;
    let mut server = RedisServer::start();
    let cfg = config("ramp-outage");
    let tolerance = cfg.sync_interval;
    let ramp = Ramp::new().duration(Duration::from_millis(1_500)).min_fraction(0.05);
    let replicas: Vec<(Fleet, Events)> = (0..3).map(|i| replica(&server, cfg.clone(), &format!("r{i}"))).collect();
    let fleets: Vec<Fleet> = replicas.iter().map(|(f, _)| f.clone()).collect();
    let breakers: Vec<Breaker> =
        fleets.iter().map(|f| f.breaker(builder("ledger", 1, 300).recovery_ramp(ramp.clone())).unwrap()).collect();
    synced(&fleets).await;
    trip(&breakers[0]);
    assert!(eventually(Duration::from_secs(1), || breakers.iter().all(Breaker::is_open)).await);
    let traffic = Traffic::start(&breakers);
    assert!(
        eventually(Duration::from_secs(3), || breakers.iter().all(|b| b.state() == State::Recovering)).await,
        "{:?}",
        states(&breakers)
    );
    server.kill();
    assert!(eventually(Duration::from_secs(1), || fleets.iter().all(|f| f.status().degraded)).await);

    let mut spread = 0.0f64;
    let mut closed_at: Vec<Option<Instant>> = vec![None; breakers.len()];
    let deadline = Instant::now() + Duration::from_secs(3);
    while closed_at.iter().any(Option::is_none) && Instant::now() < deadline {
        let now = Instant::now();
        let fractions: Vec<f64> = breakers.iter().map(|b| b.metrics().recovery_fraction).collect();
        if breakers.iter().all(|b| b.state() == State::Recovering) {
            let (lo, hi) = fractions.iter().fold((f64::MAX, f64::MIN), |(lo, hi), f| (lo.min(*f), hi.max(*f)));
            spread = spread.max(hi - lo);
        }
        for (b, at) in breakers.iter().zip(closed_at.iter_mut()) {
            if at.is_none() && b.state() == State::Closed {
                *at = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(traffic);
    let closed: Vec<Instant> = closed_at.iter().map(|t| t.expect("closed without redis")).collect();
    let apart = closed.iter().max().unwrap().duration_since(*closed.iter().min().unwrap());
    eprintln!("ramp without redis: fractions within {spread:.4}, closed within {apart:?} of each other");
    let allowed = tolerance.as_secs_f64() / 1.5 + 0.002;
    assert!(spread <= allowed, "{spread} > {allowed}");
    assert!(apart <= tolerance + Duration::from_millis(2), "{apart:?}");

    server.restart();
    assert!(eventually(Duration::from_secs(3), || fleets.iter().all(|f| !f.status().degraded)).await);
    synced(&fleets).await;
    assert!(breakers.iter().all(Breaker::is_closed), "{:?}", states(&breakers));
    for (_, events) in &replicas {
        let recovered = events.lock().unwrap().iter().filter(|e| matches!(e, FleetEvent::Recovering { .. })).count();
        assert_eq!(recovered, 1, "entered the ramp once, never moved on rejoining");
    }
}

/// A replica in shadow mode trips on its own and reports it, as a would-be vote that
/// never opens the fleet for the enforcing replicas; the fleet's own open (from an
/// enforcing replica) holds it open without rejecting its calls, which it counts in
/// `would_reject`; it never probes for the fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_stays_local() {
    let _serial = SERIAL.lock().await;
    let server = RedisServer::start();
    let replicas: Vec<(Fleet, Events)> = (0..3).map(|i| replica(&server, config("shadow"), &format!("r{i}"))).collect();
    let fleets: Vec<Fleet> = replicas.iter().map(|(f, _)| f.clone()).collect();
    let breakers: Vec<Breaker> =
        fleets.iter().enumerate().map(|(i, f)| f.breaker(builder("quotes", 1, 400).shadow(i == 0)).unwrap()).collect();
    let (shadow, enforcing) = (&breakers[0], &breakers[1..]);
    synced(&fleets).await;
    let mut con = server.connection();
    let votes = "breakerbox:{shadow:quotes}:votes";

    // The shadow breaker trips on its own, admits calls all the same, and reports it.
    trip(shadow);
    assert_eq!(shadow.state(), State::Open);
    assert!(shadow.call(|| Ok::<_, ()>(())).is_ok());
    assert!(shadow.metrics().would_reject >= 1);
    assert!(
        eventually(Duration::from_secs(1), || con
            .hget::<_, _, Option<String>>(votes, "r0")
            .unwrap()
            .is_some_and(|v| v.ends_with(":shadow")))
        .await,
        "a would-be vote"
    );
    // min_replicas = 1, min_calls = 1: an enforcing vote would have opened the fleet.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(enforcing.iter().all(Breaker::is_closed), "{:?}", states(&breakers));
    assert!(fleets.iter().all(|f| f.view("quotes").is_some_and(|v| v.state == State::Closed && v.epoch == 0)));
    // Its own probe closes it and takes the vote back.
    let recovered = eventually(Duration::from_secs(2), || {
        let _ = shadow.call(|| Ok::<_, ()>(()));
        shadow.is_closed()
    })
    .await;
    assert!(recovered);
    assert!(
        eventually(Duration::from_secs(1), || con.hget::<_, _, Option<String>>(votes, "r0").unwrap().is_none()).await
    );

    // An enforcing replica trips: the fleet opens everywhere, the shadow replica too, as
    // a would-be rejection.
    trip(&enforcing[0]);
    assert!(eventually(Duration::from_secs(1), || breakers.iter().all(Breaker::is_open)).await);
    assert!(fleets[0].view("quotes").unwrap().held);
    assert!(enforcing[1].call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
    let before = shadow.metrics().would_reject;
    for _ in 0..10 {
        assert!(shadow.call(|| Ok::<_, ()>(())).is_ok(), "a shadow replica never rejects");
    }
    assert_eq!(shadow.metrics().would_reject, before + 10);
    assert_eq!(shadow.metrics().rejected, 0);

    // The fleet recovers through an enforcing replica's probe; the shadow one never
    // asks for the lease, and is released with the others.
    let traffic = Traffic::start(&breakers);
    let closed = eventually(Duration::from_secs(3), || breakers.iter().all(Breaker::is_closed)).await;
    drop(traffic);
    assert!(closed, "{:?}", states(&breakers));
    assert_eq!(fleets[0].status().probe_leases, 0, "a shadow replica never probes for the fleet");
    assert_eq!(fleets.iter().map(|f| f.status().probe_leases).sum::<u64>(), 1);
    assert!(saw(&replicas[0].1, |e| matches!(e, FleetEvent::Closed { epoch: 2, .. })));
}
