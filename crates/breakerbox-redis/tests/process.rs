//! Replicas in separate processes: this test binary starts two copies of itself (running
//! only `child_replica`) next to a replica in the test's own process, all on one
//! `redis-server`. One trip opens all three within the bound; then exactly the
//! configured number of probes crosses the whole fleet, and all three close.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use breakerbox::{Breaker, OpenWait, Policy, Reason, State};
use breakerbox_redis::Fleet;
use support::{RedisServer, config, eventually};

const URL: &str = "BREAKERBOX_FLEET_CHILD_REDIS";
const ID: &str = "BREAKERBOX_FLEET_CHILD_ID";
const PROBES: u32 = 2;

fn builder() -> breakerbox::BreakerBuilder {
    Breaker::builder()
        .name("checkout")
        .policy(Policy::consecutive_failures(2))
        .open_wait(OpenWait::fixed(Duration::from_millis(400)))
        .half_open_probes(PROBES)
}

fn unix_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// Calls `breaker` every 200 µs until it is closed and has been open; returns how many
/// calls were admitted as half-open probes.
fn call_until_closed(breaker: &Breaker, deadline: Instant) -> u64 {
    let mut probes = 0;
    while Instant::now() < deadline && !breaker.is_closed() {
        if let Ok(permit) = breaker.try_acquire() {
            if permit.admitted_in() == State::HalfOpen {
                probes += 1;
            }
            permit.success();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    probes
}

/// One replica in a child process. Does nothing unless started by
/// `trip_and_probes_are_shared_across_processes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of trip_and_probes_are_shared_across_processes"]
async fn child_replica() {
    let (Ok(url), Ok(id)) = (std::env::var(URL), std::env::var(ID)) else { return };
    let client = redis::Client::open(url).unwrap();
    let fleet = Fleet::builder(config("processes").replica_id(id.clone())).start(client).unwrap();
    let opened = Arc::new(Mutex::new(None));
    let slot = opened.clone();
    let breaker = fleet
        .breaker(builder().on_state_change(move |t| {
            if t.to == State::Open && t.reason == Reason::External {
                slot.lock().unwrap().get_or_insert_with(SystemTime::now);
            }
        }))
        .unwrap();
    fleet.sync().await.unwrap();
    println!("fleet-child ready {id}");
    assert!(eventually(Duration::from_secs(20), || opened.lock().unwrap().is_some()).await, "{id}: never opened");
    let at = opened.lock().unwrap().unwrap();
    println!("fleet-child opened {id} {}", unix_nanos(at));
    let b = breaker.clone();
    let probes = tokio::task::spawn_blocking(move || call_until_closed(&b, Instant::now() + Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(breaker.is_closed(), "{id}: never closed");
    // Stay until the fleet has closed (this replica may be the one reporting it).
    assert!(
        eventually(Duration::from_secs(5), || fleet
            .view("checkout")
            .is_some_and(|v| v.state == State::Closed && v.epoch >= 2))
        .await
    );
    println!("fleet-child closed {id} {probes}");
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_and_probes_are_shared_across_processes() {
    let server = RedisServer::start();
    let exe = std::env::current_exe().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let mut children = Children(Vec::new());
    for id in ["p1", "p2"] {
        let mut child = Command::new(&exe)
            .args(["child_replica", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(URL, server.url())
            .env(ID, id)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                // libtest may print "test child_replica ... " on the same line.
                if let Some(at) = line.find("fleet-child ") {
                    let _ = tx.send(line[at + "fleet-child ".len()..].to_owned());
                }
            }
        });
        children.0.push(child);
    }
    let expect = |prefix: &str, n: usize| -> Vec<Vec<String>> {
        (0..n)
            .map(|_| {
                let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no `{prefix}` line"));
                let words: Vec<String> = line.split(' ').map(str::to_owned).collect();
                assert_eq!(words[0], prefix, "{line}");
                words
            })
            .collect()
    };
    expect("ready", 2);

    let fleet = Fleet::builder(config("processes").replica_id("p0")).start(server.client()).unwrap();
    let breaker = fleet.breaker(builder()).unwrap();
    fleet.sync().await.unwrap();
    let t0 = SystemTime::now();
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    assert!(breaker.is_open());
    for words in expect("opened", 2) {
        let at: u128 = words[2].parse().unwrap();
        let delay = Duration::from_nanos((at.saturating_sub(unix_nanos(t0))) as u64);
        eprintln!("replica {} opened {delay:?} after the trip in another process", words[1]);
        assert!(delay < Duration::from_millis(250), "{delay:?}");
    }

    let b = breaker.clone();
    let here = tokio::task::spawn_blocking(move || call_until_closed(&b, Instant::now() + Duration::from_secs(20)))
        .await
        .unwrap();
    let there: u64 = expect("closed", 2).iter().map(|w| w[2].parse::<u64>().unwrap()).sum();
    assert!(breaker.is_closed());
    assert_eq!(here + there, u64::from(PROBES), "probes across the fleet: {here} here, {there} in the children");
    for c in &mut children.0 {
        assert!(c.wait().unwrap().success());
    }
}
