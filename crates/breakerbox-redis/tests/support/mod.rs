//! A real `redis-server` for the tests and benches: started on 127.0.0.1 at a free port,
//! without persistence, killed on drop. Never a mock.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
    /// Settings appended to the defaults on every start (persistence, `--replicaof`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed (with the command that installs it), or does
    /// not answer within 10 s.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server on a free port with `extra` settings after the defaults (which
    /// they override: `["--appendonly", "yes"]`), kept for every restart.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = std::env::temp_dir().join(format!("breakerbox-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory for redis-server");
        let extra = extra.iter().map(|&a| a.to_owned()).collect();
        let mut server = Self { child: None, port, dir, extra };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `redis-server` ({e}). These tests need a real Redis server binary: \
                     install it with `apt-get install -y redis-server` (Debian/Ubuntu) and run the tests again"
                )
            });
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = self.client();
        loop {
            if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut con).is_ok()
            {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server on port {} exited at startup: {status}", self.port);
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid url")
    }

    /// A plain blocking connection, for looking at (or tampering with) the keys.
    pub fn connection(&self) -> redis::Connection {
        self.client().get_connection().expect("redis-server answers")
    }

    /// Kills the server (SIGKILL: no shutdown, no save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the killed (or shut down) server again on the same port and directory,
    /// with the same settings: what it persisted there (RDB, AOF) is loaded.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// `SHUTDOWN SAVE`: writes an RDB snapshot to its directory, then exits.
    pub fn shutdown_save(&mut self) {
        let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut self.connection());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// The server's scratch directory (`--dir`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers, as in a
    /// network partition or a stalled host.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let ok = Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `cond` every millisecond until it holds or `within` has passed; returns
/// whether it held.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Fast settings for tests: short intervals, one replica and one call enough to trip.
pub fn config(service: &str) -> breakerbox_redis::FleetConfig {
    breakerbox_redis::FleetConfig::new(service)
        .sync_interval(Duration::from_millis(20))
        .refresh_interval(Duration::from_millis(100))
        .operation_timeout(Duration::from_millis(100))
        .probe_lease(Duration::from_secs(1))
        .window(Duration::from_secs(5))
        .min_replicas(1)
        .min_calls(1)
}

/// A breaker named `name` that opens after `failures` consecutive failures, for
/// `wait_ms`.
pub fn builder(name: &str, failures: u32, wait_ms: u64) -> breakerbox::BreakerBuilder {
    breakerbox::Breaker::builder()
        .name(name.to_owned())
        .policy(breakerbox::Policy::consecutive_failures(failures))
        .open_wait(breakerbox::OpenWait::fixed(Duration::from_millis(wait_ms)))
}

/// Fails calls through `b` until it opens.
pub fn trip(b: &breakerbox::Breaker) {
    while b.is_closed() {
        let _ = b.call(|| Err::<(), _>("down"));
    }
}

/// The events a fleet emitted.
pub type Events = std::sync::Arc<std::sync::Mutex<Vec<breakerbox_redis::FleetEvent>>>;

/// Starts a fleet (its own connections) as replica `id`, recording its events.
pub fn replica(
    server: &RedisServer,
    config: breakerbox_redis::FleetConfig,
    id: &str,
) -> (breakerbox_redis::Fleet, Events) {
    let events = Events::default();
    let sink = events.clone();
    let fleet = breakerbox_redis::Fleet::builder(config.replica_id(id))
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .start(server.client())
        .expect("the fleet starts");
    (fleet, events)
}

/// Whether `events` holds one that `pred` accepts.
pub fn saw(events: &Events, pred: impl Fn(&breakerbox_redis::FleetEvent) -> bool) -> bool {
    events.lock().unwrap().iter().any(pred)
}

/// A builder that records when its breaker was opened by the fleet.
pub fn timed(
    builder: breakerbox::BreakerBuilder,
) -> (breakerbox::BreakerBuilder, std::sync::Arc<std::sync::Mutex<Option<Instant>>>) {
    let at = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = at.clone();
    let builder = builder.on_state_change(move |t| {
        if t.to == breakerbox::State::Open && t.reason == breakerbox::Reason::External {
            slot.lock().unwrap().get_or_insert_with(Instant::now);
        }
    });
    (builder, at)
}

/// The median and 99th percentile of `samples`.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}
