//! A brownout in real time: a backend with less capacity than its callers offer, behind
//! no breaker, breakerbox, each peer of `core.rs`, and breakerbox with adaptive
//! throttling. Not a criterion bench: each line runs the same fixed scenario on real
//! threads and clock, and `main` prints one table.
//!
//! The scenario, per line:
//!
//! - A backend in-process serves at most [`SLOTS`] requests at once; a request that gets
//!   a slot holds it for [`SERVICE`] (a `thread::sleep`) and succeeds, one that finds
//!   every slot busy gets an immediate 503. Capacity: `SLOTS / SERVICE`, 1,333 calls/s.
//! - [`CALLERS`] threads each offer one call every [`TICK`] on a fixed schedule, started
//!   evenly spread over one tick (open loop: a caller whose call ran past its next tick
//!   skips the ticks it missed instead of bursting). Offered: 3,200 calls/s, 2.4 times
//!   the capacity: a brownout, not an outage; 42 % of the calls can still succeed.
//!
//! What a breaker should do here: keep goodput (successes/s) at the backend's capacity,
//! and keep the backend's wasted work (requests per success) bounded. A classic breaker
//! sees a stream of 503s, trips, and then rejects everything for its open wait, although
//! the backend could have served most of the capacity all along.
//!
//! Every peer is built by `peers.rs` (shared with `scorecard.rs`), as in `core.rs`, with
//! its defaults or the closest to breakerbox's defaults (5 consecutive failures, 30 s
//! open, one half-open probe, which no line reaches here) that it offers. No async
//! runtime, but for tower-resilience, which needs tokio's timer once it is not closed
//! (see there).
//!
//! Run: `cargo bench -p breakerbox-benches --bench brownout` (about 16 s: 8 lines of 2 s).
//! `BROWNOUT_SECS=0.5` shortens each line; `BROWNOUT_NO_ASSERT=1` skips the final checks;
//! `-- --test` (as CI runs every bench) runs each line for 0.3 s and checks nothing.

mod peers;

use std::any::Any;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use breakerbox::{Breaker, Error, Outcome, Report};

/// Requests the backend serves at once.
const SLOTS: usize = 8;
/// How long an admitted request holds its slot.
const SERVICE: Duration = Duration::from_millis(6);
/// Caller threads.
const CALLERS: usize = 32;
/// Each caller's period.
const TICK: Duration = Duration::from_millis(10);
/// How long each line runs, unless `BROWNOUT_SECS` says otherwise.
const SECS: f64 = 2.0;
/// How long each line runs under `--test`.
const TEST_SECS: f64 = 0.3;
/// A breakerbox throttle's default multiplier: it sends the backend at most `K` requests
/// per request the backend accepts.
const K: f64 = 2.0;
/// Slack on `load <= K * accepts` for timing noise.
const K_SLACK: f64 = 1.05;
/// The goodput the throttled line must reach, as a share of capacity.
const MIN_GOODPUT: f64 = 0.9;

/// The backend's capacity, calls/s.
fn capacity() -> f64 {
    SLOTS as f64 / SERVICE.as_secs_f64()
}

/// The backend's answer when every slot is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Overloaded;

/// The simulated backend and its counters.
#[derive(Debug, Default)]
struct Backend {
    busy: AtomicUsize,
    requests: AtomicU64,
    successes: AtomicU64,
    overloaded: AtomicU64,
}

impl Backend {
    /// One request: takes a slot for [`SERVICE`] and succeeds, or answers 503 at once.
    fn serve(&self) -> Result<(), Overloaded> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        // A compare-and-swap loop, not `fetch_add` then undo: the count never goes above
        // SLOTS, not even for an instant, so no request is refused by another's overshoot.
        if self.busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| (b < SLOTS).then_some(b + 1)).is_err() {
            self.overloaded.fetch_add(1, Ordering::Relaxed);
            return Err(Overloaded);
        }
        thread::sleep(SERVICE);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        self.successes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What a caller saw of one call. The backend counts what reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Called {
    /// The breaker let it through (it succeeded or got a 503).
    Sent,
    /// The breaker refused it; the backend never saw it.
    Rejected,
}

/// One caller thread's way to make a call.
type Caller = Box<dyn FnMut() -> Called + Send>;

/// One line of the table: a breaker (or none) in front of a fresh backend.
struct Line {
    name: &'static str,
    /// Makes one caller thread's call. Per thread because tower services take `&mut self`
    /// (each thread gets a clone sharing one breaker); the others share one breaker.
    caller: Box<dyn Fn() -> Caller + Sync>,
    /// How many times the breaker opened, or `None` where it cannot tell.
    openings: Box<dyn Fn() -> Option<u64>>,
    /// Counted by watching rejections switch on, not reported by the breaker.
    openings_seen: bool,
    /// What must live as long as the breaker (seatbelt's clock, tower-resilience's runtime).
    _keep: Box<dyn Any>,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Line {
    /// A line whose breaker is shared by reference by every caller.
    fn shared<B: Send + Sync + 'static>(
        name: &'static str,
        breaker: B,
        call: impl Fn(&B) -> Called + Send + Sync + 'static,
        openings: impl Fn(&B) -> Option<u64> + 'static,
    ) -> Self {
        let breaker = Arc::new(breaker);
        let call = Arc::new(call);
        let b = Arc::clone(&breaker);
        Line {
            name,
            caller: Box::new(move || {
                let (b, call) = (Arc::clone(&b), Arc::clone(&call));
                Box::new(move || call(&b))
            }),
            openings: Box::new(move || openings(&breaker)),
            openings_seen: false,
            _keep: Box::new(()),
        }
    }
}

/// Polls `fut` with a no-op waker until it is ready, as `core.rs` does, for breaker's
/// and seatbelt's async-only APIs: their futures wait on nothing but the backend's
/// `sleep`, which blocks inside the poll, so the first poll is ready.
fn poll_now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::yield_now();
    }
}

/// The open wait every configurable peer gets: breakerbox's default.
const OPEN_WAIT: Duration = Duration::from_secs(30);

fn no_breaker(backend: Arc<Backend>) -> Line {
    Line::shared(
        "no breaker",
        backend,
        |b| {
            let _ = b.serve();
            Called::Sent
        },
        |_| Some(0),
    )
}

/// breakerbox with every default (5 consecutive failures, 30 s open); the 503 a failure.
fn breakerbox_classic(backend: Arc<Backend>) -> Line {
    Line::shared(
        "breakerbox (defaults)",
        Breaker::new(),
        move |bb| {
            let r = bb.call_with(
                |r: &Result<(), Overloaded>| if r.is_ok() { Outcome::Success } else { Outcome::Failure },
                || backend.serve(),
            );
            if matches!(r, Err(Error::Rejected(_))) { Called::Rejected } else { Called::Sent }
        },
        |bb| Some(bb.metrics().opens),
    )
}

/// failsafe: 5 consecutive failures, 30 s constant backoff (`peers::failsafe`).
fn failsafe(backend: Arc<Backend>) -> Line {
    let (fs, opens) = peers::failsafe(OPEN_WAIT);
    Line::shared(
        "failsafe (5 consecutive)",
        fs,
        move |fs| match failsafe::CircuitBreaker::call(fs, || backend.serve()) {
            Err(failsafe::Error::Rejected) => Called::Rejected,
            _ => Called::Sent,
        },
        move |_| opens.get(),
    )
}

/// recloser: its defaults (50 % failure rate over 100 calls, 30 s open); it has no
/// consecutive-failure rule, and no hook for transitions.
fn recloser(backend: Arc<Backend>) -> Line {
    let seen = Arc::new(peers::SeenOpens::default());
    let s = Arc::clone(&seen);
    let mut line = Line::shared(
        "recloser (50 % of 100)",
        recloser::Recloser::custom().build(),
        move |rc| {
            let r = rc.call(|| {
                s.sent();
                backend.serve()
            });
            if matches!(r, Err(recloser::Error::Rejected)) {
                s.rejected();
                Called::Rejected
            } else {
                Called::Sent
            }
        },
        move |_| seen.get(),
    );
    line.openings_seen = true;
    line
}

/// breaker: 5 consecutive failures with its rate rule off, 30 s fixed backoff
/// (`peers::breaker`).
fn breaker(backend: Arc<Backend>) -> Line {
    let (br, opens) = peers::breaker(OPEN_WAIT);
    Line::shared(
        "breaker (5 consecutive)",
        br,
        move |br| match poll_now(br.call(|| std::future::ready(backend.serve()))) {
            Err(breaker::CircuitBreakerError::CircuitOpen | breaker::CircuitBreakerError::Rejected) => Called::Rejected,
            _ => Called::Sent,
        },
        move |_| opens.get(),
    )
}

/// tower-resilience-circuitbreaker: 5 consecutive failures (its `FailureModel`), 30 s
/// open (its default) (`peers::tower_resilience`).
///
/// Not runtime-free: once not closed, a caller that finds its (tokio) mutex taken
/// waits on a 1 ms `tokio::time::sleep`, which panics outside a runtime. So its calls
/// run on the caller threads through a one-worker runtime's `Handle::block_on`, whose
/// worker drives that timer; the backend's `sleep` still blocks the caller thread.
fn tower_resilience(backend: Arc<Backend>) -> Line {
    use tower::{Service as _, ServiceExt as _};
    use tower_resilience_circuitbreaker::CircuitBreakerError;

    let (layer, opens) = peers::tower_resilience(OPEN_WAIT);
    let svc = layer.layer_fn(tower::service_fn(move |()| std::future::ready(backend.serve())));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("a tokio runtime for tower-resilience's timer");
    let handle = runtime.handle().clone();
    Line {
        name: "tower-resilience (5 consecutive)",
        caller: Box::new(move || {
            let (mut svc, handle) = (svc.clone(), handle.clone());
            Box::new(move || {
                let r = handle.block_on(async { svc.ready().await?.call(()).await });
                if matches!(r, Err(CircuitBreakerError::OpenCircuit)) { Called::Rejected } else { Called::Sent }
            })
        }),
        openings: Box::new(move || opens.get()),
        openings_seen: false,
        _keep: Box::new(runtime),
    }
}

/// seatbelt: its defaults (10 % failure rate over 30 s, at least 100 calls) with a 30 s
/// break instead of its 5 s (`peers::seatbelt`); it has no consecutive-failure rule.
fn seatbelt(backend: Arc<Backend>) -> Line {
    use layered::Service as _;

    let sb = peers::seatbelt("brownout", OPEN_WAIT, Duration::from_secs(30), move || {
        std::future::ready(backend.serve().map_err(|Overloaded| "503"))
    });
    let opens = sb.opens;
    let mut line = Line::shared(
        "seatbelt (10 % over 30 s)",
        sb.service,
        |svc| if poll_now(svc.execute(())) == Err("rejected") { Called::Rejected } else { Called::Sent },
        move |_| opens.get(),
    );
    line._keep = Box::new(sb.clock);
    line
}

/// The line the final checks are about.
const THROTTLED: &str = "breakerbox throttle (k = 2, 90 %)";

/// breakerbox with adaptive throttling at its defaults (k = 2, over 30 s), the 503
/// reported as an overload, and a 90 % failure-rate rule (`peers::breakerbox_throttle`).
fn breakerbox_throttle(backend: Arc<Backend>) -> Line {
    Line::shared(
        THROTTLED,
        peers::breakerbox_throttle(Duration::from_secs(30), OPEN_WAIT),
        move |bb| {
            let r = bb.call_with(
                |r: &Result<(), Overloaded>| if r.is_ok() { Report::success() } else { Report::overloaded() },
                || backend.serve(),
            );
            if matches!(r, Err(Error::Rejected(_))) { Called::Rejected } else { Called::Sent }
        },
        |bb| Some(bb.metrics().opens),
    )
}

/// What one line measured.
#[derive(Debug)]
struct Row {
    name: &'static str,
    secs: f64,
    offered: u64,
    rejected: u64,
    requests: u64,
    successes: u64,
    overloaded: u64,
    openings: Option<u64>,
    openings_seen: bool,
}

impl Row {
    fn per_sec(&self, n: u64) -> f64 {
        n as f64 / self.secs
    }

    fn goodput(&self) -> f64 {
        self.per_sec(self.successes)
    }

    /// Backend requests per backend success: 1.0 is no wasted work.
    fn load_per_accept(&self) -> f64 {
        if self.successes == 0 { f64::INFINITY } else { self.requests as f64 / self.successes as f64 }
    }
}

/// Runs one line: every caller on its own thread for `secs`, then reads the counters.
fn run(make: fn(Arc<Backend>) -> Line, secs: f64) -> Row {
    let backend = Arc::new(Backend::default());
    let line = make(Arc::clone(&backend));
    let span = Duration::from_secs_f64(secs);
    let offered = AtomicU64::new(0);
    let rejected = AtomicU64::new(0);
    // Every caller's schedule counts from one instant, a little ahead so that the
    // threads are all started before the first tick.
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + span;
    thread::scope(|s| {
        for i in 0..CALLERS {
            let mut call = (line.caller)();
            let (offered, rejected) = (&offered, &rejected);
            s.spawn(move || {
                // Spread evenly over one tick: 32 callers, one call every 312.5 µs.
                let mut next =
                    start + TICK * u32::try_from(i).expect("few callers") / u32::try_from(CALLERS).expect("few");
                while next < end {
                    let now = Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    }
                    offered.fetch_add(1, Ordering::Relaxed);
                    if call() == Called::Rejected {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    next += TICK;
                    // Open loop: a call that ran past its next tick skips the ticks it
                    // missed; it does not make them up in a burst.
                    let now = Instant::now();
                    if next < now {
                        let missed = (now - next).as_nanos() / TICK.as_nanos() + 1;
                        next += TICK * u32::try_from(missed).expect("a sane number of missed ticks");
                    }
                }
            });
        }
    });
    Row {
        name: line.name,
        secs,
        offered: offered.into_inner(),
        rejected: rejected.into_inner(),
        requests: backend.requests.load(Ordering::Relaxed),
        successes: backend.successes.load(Ordering::Relaxed),
        overloaded: backend.overloaded.load(Ordering::Relaxed),
        openings: (line.openings)(),
        openings_seen: line.openings_seen,
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>7} {:>9} {:>10} {:>10} {:>8}",
        "line", "offered/s", "backend/s", "goodput/s", "% cap", "503/s", "load/acc", "rejected/s", "openings"
    );
    for r in rows {
        let openings = match r.openings {
            None => "n/a".to_owned(),
            Some(n) if r.openings_seen => format!("~{n}"),
            Some(n) => n.to_string(),
        };
        println!(
            "{:<34} {:>9.0} {:>9.0} {:>9.0} {:>6.1}% {:>9.0} {:>10.2} {:>10.0} {:>8}",
            r.name,
            r.per_sec(r.offered),
            r.per_sec(r.requests),
            r.goodput(),
            100.0 * r.goodput() / capacity(),
            r.per_sec(r.overloaded),
            r.load_per_accept(),
            r.per_sec(r.rejected),
            openings,
        );
    }
    if rows.iter().any(|r| r.openings_seen) {
        println!("~: counted from outside (the first rejection after a call went through); the breaker reports none");
    }
}

/// What must hold for breakerbox with throttling: goodput near capacity, at most one
/// opening (none is expected: a 50 % brownout is below its 90 % rule), and the backend's
/// load within `K` times its accepts.
fn check(row: &Row) {
    let floor = MIN_GOODPUT * capacity();
    assert!(
        row.goodput() >= floor,
        "{}: goodput {:.0}/s is below {:.0} % of capacity ({floor:.0}/s)",
        row.name,
        row.goodput(),
        MIN_GOODPUT * 100.0
    );
    assert!(
        row.openings.is_some_and(|n| n <= 1),
        "{}: opened {:?} times, at most once expected",
        row.name,
        row.openings
    );
    assert!(
        row.load_per_accept() <= K * K_SLACK,
        "{}: the backend got {:.2} requests per success, more than k = {K} (+{:.0} %)",
        row.name,
        row.load_per_accept(),
        (K_SLACK - 1.0) * 100.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; CI passes `--test` as to criterion benches.
    let test = std::env::args().any(|a| a == "--test");
    let secs = if test {
        TEST_SECS
    } else {
        std::env::var("BROWNOUT_SECS").ok().map_or(SECS, |s| s.parse().expect("BROWNOUT_SECS: seconds, e.g. 0.5"))
    };
    let no_assert = test || std::env::var_os("BROWNOUT_NO_ASSERT").is_some_and(|v| v == "1");

    let lines: &[fn(Arc<Backend>) -> Line] =
        &[no_breaker, breakerbox_classic, failsafe, recloser, breaker, tower_resilience, seatbelt, breakerbox_throttle];
    println!(
        "brownout: {CALLERS} callers, one call each per {TICK:?} ({:.0}/s offered); backend {SLOTS} slots x {SERVICE:?} \
         ({:.0}/s capacity); {secs} s per line",
        CALLERS as f64 / TICK.as_secs_f64(),
        capacity()
    );
    let rows: Vec<Row> = lines.iter().map(|&make| run(make, secs)).collect();
    print_table(&rows);

    if no_assert {
        return;
    }
    check(rows.iter().find(|r| r.name == THROTTLED).expect("the throttled line ran"));
}
