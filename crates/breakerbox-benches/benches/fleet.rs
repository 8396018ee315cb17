//! What fleet sync costs a call, and how fast a trip travels.
//!
//! - `call_path/local` and `call_path/fleet`: a closed breaker's call (acquire, run,
//!   record a success), without a fleet and with one syncing every 20 ms to a real
//!   `redis-server` in the same run. Then both again, alternating, for a direct ratio.
//! - `propagation`: replica A's breaker trips; the time until replica B's breaker (its
//!   own `Fleet`, its own connections) is open, over 200 trials on loopback; median, p99
//!   and max are printed.
//!
//! Run with `cargo bench -p breakerbox-benches --all-features --bench fleet` (it starts
//! `redis-server` itself).

#[path = "../../breakerbox-redis/tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Error, OpenWait, Policy};
use breakerbox_redis::{Fleet, FleetConfig};
use criterion::{Criterion, Throughput};
use support::{RedisServer, config, percentiles, timed};

fn call(b: &Breaker) -> Result<u64, Error<()>> {
    b.call(|| Ok(black_box(7)))
}

fn call_path(c: &mut Criterion, local: &Breaker, synced: &Breaker) {
    let mut g = c.benchmark_group("call_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("local", |b| b.iter(|| call(local)));
    g.bench_function("fleet", |b| b.iter(|| call(synced)));
    g.finish();

    // The same, alternating in one loop (and which goes first), so that both see the
    // same machine.
    let (mut tl, mut tf) = (Duration::ZERO, Duration::ZERO);
    let run = |b: &Breaker| {
        let t = Instant::now();
        for _ in 0..100_000 {
            let _ = black_box(call(b));
        }
        t.elapsed()
    };
    for round in 0..50 {
        if round % 2 == 0 {
            tl += run(local);
            tf += run(synced);
        } else {
            tf += run(synced);
            tl += run(local);
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e9 / 5_000_000.0;
    println!(
        "call path, alternating, 5M calls each: local {:.2} ns/call, fleet {:.2} ns/call, ratio {:.3}",
        per(tl),
        per(tf),
        per(tf) / per(tl)
    );
}

fn propagation(rt: &tokio::runtime::Runtime, server: &RedisServer, trials: usize) {
    // The default intervals: a push carries the trip; polling is the fallback.
    let config = |id: &str| FleetConfig::new("bench").replica_id(id).min_replicas(1).min_calls(1);
    let a = Fleet::builder(config("a")).start(server.client()).unwrap();
    let b = Fleet::builder(config("b")).start(server.client()).unwrap();
    let builder = |name: String| {
        Breaker::builder()
            .name(name)
            .policy(Policy::consecutive_failures(1))
            .open_wait(OpenWait::fixed(Duration::from_secs(60)))
    };
    let mut delays = Vec::with_capacity(trials);
    for i in 0..trials {
        let name = format!("prop-{i}");
        let on_a = a.breaker(builder(name.clone())).unwrap();
        let (on_b, opened) = timed(b.attach(builder(name)));
        let on_b = on_b.build().unwrap();
        b.watch(&on_b);
        rt.block_on(async {
            a.sync().await.unwrap();
            b.sync().await.unwrap();
        });
        let t0 = Instant::now();
        let _ = on_a.call(|| Err::<(), _>(()));
        let deadline = t0 + Duration::from_secs(2);
        while opened.lock().unwrap().is_none() {
            assert!(Instant::now() < deadline, "trial {i}: replica b never opened");
            std::thread::sleep(Duration::from_micros(50));
        }
        delays.push(opened.lock().unwrap().unwrap().duration_since(t0));
        assert!(on_b.is_open());
    }
    let max = *delays.iter().max().unwrap();
    let (median, p99) = percentiles(&mut delays);
    println!(
        "propagation of a trip to another replica over {trials} trials: median {median:?}, p99 {p99:?}, max {max:?}"
    );
}

fn main() {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = rt.enter();
    let fleet = Fleet::builder(config("bench").replica_id("bench")).start(server.client()).unwrap();
    let local = Breaker::builder().name("local").build().unwrap();
    let synced = fleet.breaker(Breaker::builder().name("synced")).unwrap();
    rt.block_on(fleet.sync()).unwrap();

    let mut c = Criterion::default().configure_from_args();
    call_path(&mut c, &local, &synced);
    assert!(fleet.status().ops > 0 && !fleet.status().degraded, "the fleet synced during the run");
    propagation(&rt, &server, 200);
    c.final_summary();
}
