//! The fleet through Redis Sentinel (`Connect::Sentinel`, feature `sentinel`) against
//! real processes: a master, a replica of it, and a `redis-server --sentinel` watching
//! them (`down-after-milliseconds` 200, `failover-timeout` 1000). The fleet asks the
//! sentinels for the master at every (re)connection; the master fails over, Sentinel
//! promotes the replica, and the fleet follows. Each test checks, as `tests/faults.rs`
//! does: (a) no call waits on Redis, (b) degraded behaviour during the failover, (c)
//! reconvergence on the new master, with nothing lost that had replicated.
#![cfg(feature = "sentinel")]

mod support;

#[path = "support/faults.rs"]
mod faults;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use breakerbox::Breaker;
use breakerbox_redis::{Connect, FleetEvent};
use faults::{Pair, cmd, fleet_state, master_and_replica, no_call_waited, replicated};
use support::{config, eventually, saw};

/// The tests here run one at a time: each measures call latencies.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The master's name in Sentinel.
const MASTER: &str = "m";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A `redis-server --sentinel` child process, with a config file of its own (Sentinel
/// rewrites it), monitoring `MASTER` with a quorum of 1.
struct Sentinel {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sentinel {
    fn start(master_port: u16) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("breakerbox-redis-sentinel-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory for the sentinel");
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nloglevel warning\ndir {dir}\n\
                 sentinel resolve-hostnames no\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {MASTER} 200\n\
                 sentinel failover-timeout {MASTER} 1000\n",
                dir = dir.display(),
            ),
        )
        .expect("the sentinel's config file");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `redis-server --sentinel` ({e}): install Redis with \
                     `apt-get install -y redis-server` (Debian/Ubuntu) and run the tests again"
                )
            });
        let sentinel = Self { child, port, dir };
        let ready = (0..1_000).any(|_| {
            let ok = sentinel.try_connection().is_some_and(|mut c| redis::cmd("PING").query::<String>(&mut c).is_ok());
            if !ok {
                std::thread::sleep(Duration::from_millis(10));
            }
            ok
        });
        assert!(ready, "the sentinel on port {port} answers");
        sentinel
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn try_connection(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url()).ok()?.get_connection_with_timeout(Duration::from_millis(200)).ok()
    }

    /// The master's port, as this sentinel names it now.
    fn master_port(&self) -> Option<u16> {
        let mut con = self.try_connection()?;
        let addr: Option<(String, u16)> =
            redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(MASTER).query(&mut con).ok()?;
        addr.map(|(_, port)| port)
    }

    /// Waits until this sentinel has found the replica on `port` (from the master's
    /// `INFO`), so that it can promote it.
    fn wait_for_replica(&self, port: u16) {
        let found = (0..500).any(|_| {
            let replicas: Vec<std::collections::HashMap<String, String>> = self
                .try_connection()
                .and_then(|mut c| redis::cmd("SENTINEL").arg("replicas").arg(MASTER).query(&mut c).ok())
                .unwrap_or_default();
            let ok = replicas.iter().any(|r| {
                r.get("port") == Some(&port.to_string()) && !r.get("flags").is_some_and(|f| f.contains("down"))
            });
            if !ok {
                std::thread::sleep(Duration::from_millis(10));
            }
            ok
        });
        assert!(found, "the sentinel found the replica on port {port}");
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `port` is a master, by `ROLE`.
fn role(port: u16) -> String {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap().get_connection().unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).unwrap();
    match &role[0] {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// The master is killed (SIGKILL). Sentinel sees it down after 200 ms, promotes the
/// replica; meanwhile both replicas of the fleet are degraded and decide locally (the
/// sentinels still name the dead master, whose `ROLE` check fails). Once Sentinel names
/// the promoted replica the fleet rejoins there: `held`, opened and replicated before the
/// failover, is still open (same incarnation and epoch, no data loss), the trip made
/// during the failover reaches the other replica, a new trip propagates. The fleet's list
/// starts with a sentinel that is down: it is skipped at every lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_after_the_master_is_killed() {
    let test = "sentinel_master_killed";
    let _serial = SERIAL.lock().await;
    let (mut master, replica) = master_and_replica();
    let sentinel = Sentinel::start(master.port());
    sentinel.wait_for_replica(replica.port());
    let down = format!("redis://127.0.0.1:{}", free_port());
    let connect = Connect::sentinel(MASTER, [down, sentinel.url()]);
    let pair = Pair::start_on(|b| b.start_with(connect.clone()), config(test), 60_000).await;
    pair.open_held().await;
    replicated(&master);
    let before = fleet_state(&mut master.connection(), test, "held");
    let caller = pair.caller();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = caller.take();

    let killed = Instant::now();
    master.kill();
    pair.degraded_locally(test, Duration::from_secs(1)).await;
    let promoted = eventually(Duration::from_secs(10), || sentinel.master_port() == Some(replica.port())).await;
    assert!(promoted, "[{test}] Sentinel promoted the replica");
    eprintln!("[{test}] Sentinel named the promoted replica {:?} after the kill", killed.elapsed());
    pair.reconverges(test, true).await;
    eprintln!("[{test}] the fleet reconverged {:?} after the kill", killed.elapsed());
    let during = caller.take();

    let after = fleet_state(&mut replica.connection(), test, "held");
    eprintln!("[{test}] `held` on the master {before:?}, on the promoted replica {after:?}");
    assert_eq!(role(replica.port()), "master");
    assert_eq!(after, before, "[{test}] the same incarnation and epoch");
    assert_eq!(pair.data_lost("held"), [false, false], "[{test}] no data lost");
    assert!(pair.held.iter().all(Breaker::is_open), "[{test}] `held` stays open");
    let after_trip = fleet_state(&mut replica.connection(), test, "after");
    assert_eq!(after_trip.0, "open", "[{test}] the trip after the failover was written on the new master");
    no_call_waited(test, baseline, during);
}

/// `SENTINEL FAILOVER`: the replica is promoted while the old master still runs, and
/// accepts writes: Sentinel turns it into a replica of the new one only about 10 s after
/// naming the new master. The fleet, connected to the old master, asks the sentinels at
/// every refresh whether the master moved, and moves within a `refresh_interval` (100 ms
/// here), both its connections: the trip made after the switch is on the new master while
/// the old one is still a master (so it was written there, not replicated from the old
/// one), and nothing replicated before is lost. No call waits meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_forced_failover() {
    let test = "sentinel_forced_failover";
    let _serial = SERIAL.lock().await;
    let (master, replica) = master_and_replica();
    let sentinel = Sentinel::start(master.port());
    sentinel.wait_for_replica(replica.port());
    let connect = Connect::sentinel(MASTER, [sentinel.url()]);
    let pair = Pair::start_on(|b| b.start_with(connect.clone()), config(test), 60_000).await;
    pair.open_held().await;
    replicated(&master);
    let before = fleet_state(&mut master.connection(), test, "held");
    let caller = pair.caller();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = caller.take();

    let started = Instant::now();
    cmd(&mut sentinel.try_connection().unwrap(), &["SENTINEL", "FAILOVER", MASTER]);
    let promoted = eventually(Duration::from_secs(10), || sentinel.master_port() == Some(replica.port())).await;
    assert!(promoted, "[{test}] Sentinel promoted the replica");
    eprintln!("[{test}] Sentinel named the promoted replica {:?} after `SENTINEL FAILOVER`", started.elapsed());
    // Three refreshes: the fleet has moved.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let degraded = saw(&pair.a_events, |e| matches!(e, FleetEvent::Degraded { .. }))
        && saw(&pair.b_events, |e| matches!(e, FleetEvent::Degraded { .. }));
    pair.reconverges(test, degraded).await;
    let old_role = role(master.port());
    eprintln!(
        "[{test}] degraded meanwhile: {degraded}; reconverged {:?} after `SENTINEL FAILOVER`; the old master's role \
         now: {old_role}",
        started.elapsed()
    );
    assert_eq!(old_role, "master", "[{test}] the old master is not demoted yet: it would take writes");
    let after_trip = fleet_state(&mut replica.connection(), test, "after");
    assert_eq!(after_trip.0, "open", "[{test}] the trip after the failover was written on the new master");
    let during = caller.take();

    let after = fleet_state(&mut replica.connection(), test, "held");
    eprintln!("[{test}] `held` on the old master {before:?}, on the promoted replica {after:?}");
    assert_eq!(after, before, "[{test}] the same incarnation and epoch");
    assert_eq!(pair.data_lost("held"), [false, false], "[{test}] no data lost");
    assert!(pair.held.iter().all(Breaker::is_open), "[{test}] `held` stays open");
    no_call_waited(test, baseline, during);
}
