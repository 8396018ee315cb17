//! The protection scorecard: breakerbox and every peer of `core.rs` through the same
//! failure scenarios, in real time, against a simulated async backend (tokio), printed as
//! one table. Not a criterion bench.
//!
//! Time is scaled down 30 times: breakerbox's default 30 s open wait is 1 s here, and so
//! is every peer's open wait (and seatbelt's 30 s sampling window, and the throttle's
//! 30 s window). Every breaker is built by `peers.rs` (shared with `brownout.rs`), in the
//! closest configuration to breakerbox's defaults that it offers: open after 5
//! consecutive failures, one probe when half-open (see the footnotes printed with the
//! table for the peers that cannot). breakerbox is at its defaults but for the scaled
//! open wait and probe lease (the lease defaults to the first open wait: set here to it
//! explicitly).
//!
//! Each line is a breaker (or none) in front of a backend of its own: an async function
//! whose latencies are `tokio::time::sleep`s and whose health follows a script by time
//! since the start, shared by every line of a scenario. [`CALLERS`] tokio tasks on one
//! multi-thread runtime each offer one call every [`TICK`] on a fixed schedule (open
//! loop, as `brownout.rs`: a caller whose call ran past its next tick skips the ticks it
//! missed). Every line of a scenario runs at once, on the same runtime, so that all see
//! the same machine; the scenarios run one after the other.
//!
//! - **outage**: healthy 1 s, failing (a 500 after 1 ms) 3 s, healthy 2 s.
//! - **hung probe**: healthy 1 s, failing 2 s, then healthy but the first [`HUNG`] calls
//!   that reach the backend after the recovery never answer (they hang past the end);
//!   the callers have no timeout. 4 s after the recovery.
//! - **cancelled probe**: the same, each call wrapped in `tokio::time::timeout(200 ms)`,
//!   so a hung call's future is dropped after 200 ms.
//! - **brownout**: as `brownout.rs`, the backend serves [`SLOTS`] calls at once for
//!   [`SERVICE`] each and answers 503 at once beyond that; offered 2.4 times its capacity
//!   for 3 s.
//!
//! Run: `cargo bench -p breakerbox-benches --bench scorecard` (about 25 s).
//! `SCORECARD_NO_ASSERT=1` skips the final checks; `-- --test` (as CI runs every bench)
//! runs everything at a tenth of the time scale and checks nothing.

mod peers;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use breakerbox::{Breaker, Error, OpenWait, Report};
use tokio::time::Instant;

/// Caller tasks per line.
const CALLERS: usize = 32;
/// Each caller's period.
const TICK: Duration = Duration::from_millis(10);
/// A healthy backend's answer time.
const HEALTHY: Duration = Duration::from_millis(5);
/// A failing backend's answer time (a fast 500).
const FAILING: Duration = Duration::from_millis(1);
/// How long a hung call hangs: past the end of any run (its task is aborted at the end).
const HANG: Duration = Duration::from_secs(3600);
/// Calls that hang after the recovery in the hung and cancelled scenarios.
const HUNG: u64 = 2;
/// Brownout: requests the backend serves at once.
const SLOTS: usize = 8;
/// Brownout: how long an admitted request holds its slot.
const SERVICE: Duration = Duration::from_millis(6);
/// How long the run waits after its end for the calls in flight, before aborting them.
const GRACE: Duration = Duration::from_millis(300);

/// The scale under `--test`: a tenth of the real run.
const TEST_SCALE: f64 = 0.1;
/// breakerbox (defaults) may waste this many more calls in the outage than the best peer
/// (or this share more, whichever is larger), for timing: how many calls are in flight
/// when the fifth failure lands varies by a few from run to run.
const WASTE_SLACK_CALLS: u64 = 5;
const WASTE_SLACK_SHARE: f64 = 0.25;
/// The brownout goodput the throttled line must keep, as a share of capacity.
const MIN_GOODPUT: f64 = 0.85;

/// The scenario's timeline, in seconds at scale 1.
#[derive(Clone, Copy, Debug)]
struct Script {
    /// The backend fails from `.0` to `.1`, if at all.
    outage: Option<(f64, f64)>,
    /// Calls that hang, the first to arrive after the recovery.
    hung: u64,
    /// A caller's timeout, if any.
    timeout: Option<f64>,
    /// A backend with this many slots, 503 beyond them (the brownout).
    slots: Option<usize>,
    /// The run's length.
    end: f64,
}

const OUTAGE: Script = Script { outage: Some((1.0, 4.0)), hung: 0, timeout: None, slots: None, end: 6.0 };
const HUNG_PROBE: Script = Script { outage: Some((1.0, 3.0)), hung: HUNG, timeout: None, slots: None, end: 7.0 };
const CANCELLED_PROBE: Script = Script { timeout: Some(0.2), ..HUNG_PROBE };
const BROWNOUT: Script = Script { outage: None, hung: 0, timeout: None, slots: Some(SLOTS), end: 3.0 };

/// The backend's failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fail {
    /// A 500: the backend is down (the outage).
    Error,
    /// A 503: every slot is busy (the brownout).
    Overloaded,
}

impl Fail {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "500",
            Self::Overloaded => "503",
        }
    }
}

/// Nanoseconds since `start`, for the atomics below.
fn nanos_since(start: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(start).as_nanos()).expect("a run of less than 584 years")
}

/// "None yet" in a minimum kept in an `AtomicU64`.
const NONE: u64 = u64::MAX;

fn some(nanos: u64) -> Option<Duration> {
    (nanos != NONE).then(|| Duration::from_nanos(nanos))
}

/// The simulated backend of one line, and its counters.
#[derive(Debug)]
struct Backend {
    /// The outage, as instants.
    fail_at: Option<(Instant, Instant)>,
    end: Instant,
    hung: u64,
    slots: Option<usize>,
    requests: AtomicU64,
    /// Requests that arrived while it was failing.
    wasted: AtomicU64,
    /// Successes completed by the end of the run.
    successes: AtomicU64,
    overloaded: AtomicU64,
    /// Requests that arrived after the recovery (the first `hung` of them hang).
    after_recovery: AtomicU64,
    /// The earliest completion of a success that arrived after the recovery, in ns
    /// after the recovery.
    first_recovered: AtomicU64,
    busy: AtomicUsize,
    /// Time and count of the brownout's slot holds, for its effective capacity.
    held_nanos: AtomicU64,
    holds: AtomicU64,
}

/// Frees a brownout slot, also when the call's future is dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Backend {
    fn new(script: &Script, start: Instant, scale: f64) -> Self {
        let at = |s: f64| start + Duration::from_secs_f64(s * scale);
        Backend {
            fail_at: script.outage.map(|(a, b)| (at(a), at(b))),
            end: at(script.end),
            hung: script.hung,
            slots: script.slots,
            requests: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            after_recovery: AtomicU64::new(0),
            first_recovered: AtomicU64::new(NONE),
            busy: AtomicUsize::new(0),
            held_nanos: AtomicU64::new(0),
            holds: AtomicU64::new(0),
        }
    }

    /// One request, as the script says at its arrival.
    async fn serve(self: Arc<Self>) -> Result<(), Fail> {
        let arrived = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let recovered = match self.fail_at {
            Some((from, to)) if arrived >= from && arrived < to => {
                self.wasted.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(FAILING).await;
                return Err(Fail::Error);
            }
            Some((_, to)) if arrived >= to => Some(to),
            _ => None,
        };
        if recovered.is_some() && self.after_recovery.fetch_add(1, Ordering::Relaxed) < self.hung {
            tokio::time::sleep(HANG).await;
        }
        if let Some(slots) = self.slots {
            // As `brownout.rs`: a compare-and-swap loop, never above `slots`.
            if self.busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| (b < slots).then_some(b + 1)).is_err() {
                self.overloaded.fetch_add(1, Ordering::Relaxed);
                return Err(Fail::Overloaded);
            }
            let _slot = Slot(&self.busy);
            let held = Instant::now();
            tokio::time::sleep(SERVICE).await;
            self.held_nanos.fetch_add(nanos_since(held, Instant::now()), Ordering::Relaxed);
            self.holds.fetch_add(1, Ordering::Relaxed);
        } else {
            tokio::time::sleep(HEALTHY).await;
        }
        let done = Instant::now();
        if done <= self.end {
            self.successes.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(to) = recovered {
            self.first_recovered.fetch_min(nanos_since(to, done), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Calls per second the backend could serve: its slots over the time each hold took
    /// (a `tokio::time::sleep(6 ms)` lasts up to a millisecond longer: the timer's tick).
    fn capacity(&self) -> f64 {
        let holds = self.holds.load(Ordering::Relaxed);
        let mean = if holds == 0 {
            SERVICE.as_secs_f64()
        } else {
            self.held_nanos.load(Ordering::Relaxed) as f64 / 1e9 / holds as f64
        };
        SLOTS as f64 / mean
    }
}

/// What a caller saw of one call. The backend counts what reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Called {
    /// The breaker let it through (it succeeded, failed, or was cancelled).
    Sent,
    /// The breaker refused it; the backend never saw it.
    Rejected,
}

/// One call, as a future a caller task can own.
type CallFut = Pin<Box<dyn Future<Output = Called> + Send>>;

/// The settings every line gets, scaled.
#[derive(Clone, Copy, Debug)]
struct Params {
    /// The open wait (breakerbox's 30 s default, scaled), and breakerbox's probe lease.
    open_wait: Duration,
    /// seatbelt's sampling window and the throttle's window (30 s, scaled).
    window: Duration,
}

/// One line of the table: a breaker (or none) in front of a fresh backend.
struct Line {
    name: &'static str,
    call: Arc<dyn Fn() -> CallFut + Send + Sync>,
    /// How many times the breaker opened, or `None` where it cannot tell.
    openings: Box<dyn Fn() -> Option<u64>>,
    /// Counted by watching rejections switch on, not reported by the breaker.
    openings_seen: bool,
    /// What must live as long as the breaker (seatbelt's clock).
    _keep: Box<dyn Any>,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Line {
    fn new(
        name: &'static str,
        call: impl Fn() -> CallFut + Send + Sync + 'static,
        openings: impl Fn() -> Option<u64> + 'static,
    ) -> Self {
        Line { name, call: Arc::new(call), openings: Box::new(openings), openings_seen: false, _keep: Box::new(()) }
    }
}

type MakeLine = fn(Arc<Backend>, Params) -> Line;

fn no_breaker(backend: Arc<Backend>, _: Params) -> Line {
    Line::new(
        "no breaker",
        move || {
            let b = Arc::clone(&backend);
            Box::pin(async move {
                let _ = b.serve().await;
                Called::Sent
            })
        },
        || Some(0),
    )
}

/// The line the outage and probe checks are about.
const BREAKERBOX: &str = "breakerbox (defaults)";

/// breakerbox at its defaults (5 consecutive failures, one probe), the open wait and
/// the probe lease scaled; every error a failure. `call_async`.
fn breakerbox(backend: Arc<Backend>, p: Params) -> Line {
    let bb = Breaker::builder()
        .open_wait(OpenWait::fixed(p.open_wait))
        .probe_lease(p.open_wait)
        .build()
        .expect("valid breakerbox config");
    let b = bb.clone();
    Line::new(
        BREAKERBOX,
        move || {
            let (bb, backend) = (bb.clone(), Arc::clone(&backend));
            Box::pin(async move {
                match bb.call_async(backend.serve()).await {
                    Err(Error::Rejected(_)) => Called::Rejected,
                    _ => Called::Sent,
                }
            })
        },
        move || Some(b.metrics().opens),
    )
}

/// The line the brownout check is about.
const THROTTLED: &str = "breakerbox + throttle";

/// breakerbox with adaptive throttling (k = 2, window scaled), a 90 % failure-rate rule
/// over 100 calls, the open wait scaled (`peers::breakerbox_throttle`, as `brownout.rs`);
/// a 503 reported as an overload, a 500 as a plain failure.
fn breakerbox_throttle(backend: Arc<Backend>, p: Params) -> Line {
    let bb = peers::breakerbox_throttle(p.window, p.open_wait);
    let b = bb.clone();
    Line::new(
        THROTTLED,
        move || {
            let (bb, backend) = (bb.clone(), Arc::clone(&backend));
            Box::pin(async move {
                let classify = |r: &Result<(), Fail>| match r {
                    Ok(()) => Report::success(),
                    Err(Fail::Overloaded) => Report::overloaded(),
                    Err(Fail::Error) => Report::failure(),
                };
                match bb.call_async_with(classify, backend.serve()).await {
                    Err(Error::Rejected(_)) => Called::Rejected,
                    _ => Called::Sent,
                }
            })
        },
        move || Some(b.metrics().opens),
    )
}

/// failsafe (`peers::failsafe`), through `failsafe::futures::CircuitBreaker::call`.
fn failsafe(backend: Arc<Backend>, p: Params) -> Line {
    let (fs, opens) = peers::failsafe(p.open_wait);
    Line::new(
        "failsafe",
        move || {
            let fut = failsafe::futures::CircuitBreaker::call(&fs, Arc::clone(&backend).serve());
            Box::pin(async move {
                match fut.await {
                    Err(failsafe::Error::Rejected) => Called::Rejected,
                    _ => Called::Sent,
                }
            })
        },
        move || opens.get(),
    )
}

/// recloser, through `AsyncRecloser`: its only rule is a failure rate over a ring of
/// calls, so the closest to 5 consecutive failures is a ring of 5 at 100 %
/// (`error_rate_closed(1.0)`, `closed_len(5)`). Half-open, it admits every call and
/// judges a ring of `half_open_len` (1 here: it decides on one call, the second, as it
/// rates only a full ring), at its default 50 %. No transition hook: its openings are
/// counted from outside.
fn recloser(backend: Arc<Backend>, p: Params) -> Line {
    let rc = recloser::AsyncRecloser::from(
        recloser::Recloser::custom()
            .error_rate_closed(1.0)
            .closed_len(5)
            .half_open_len(1)
            .open_wait(p.open_wait)
            .build(),
    );
    let seen = Arc::new(peers::SeenOpens::default());
    let s = Arc::clone(&seen);
    let mut line = Line::new(
        "recloser",
        move || {
            let (s, backend) = (Arc::clone(&s), Arc::clone(&backend));
            let s2 = Arc::clone(&s);
            let fut = rc.call(async move {
                s2.sent();
                backend.serve().await
            });
            Box::pin(async move {
                if matches!(fut.await, Err(recloser::Error::Rejected)) {
                    s.rejected();
                    Called::Rejected
                } else {
                    Called::Sent
                }
            })
        },
        move || seen.get(),
    );
    line.openings_seen = true;
    line
}

/// breaker (`peers::breaker`), through its async `call`.
fn breaker(backend: Arc<Backend>, p: Params) -> Line {
    let (br, opens) = peers::breaker(p.open_wait);
    Line::new(
        "breaker",
        move || {
            let (br, backend) = (br.clone(), Arc::clone(&backend));
            Box::pin(async move {
                match br.call(|| backend.serve()).await {
                    Err(breaker::CircuitBreakerError::CircuitOpen | breaker::CircuitBreakerError::Rejected) => {
                        Called::Rejected
                    }
                    _ => Called::Sent,
                }
            })
        },
        move || opens.get(),
    )
}

/// tower-resilience-circuitbreaker (`peers::tower_resilience`), as a tower service: each
/// call clones the service (one breaker) and drives `ready` then `call`.
fn tower_resilience(backend: Arc<Backend>, p: Params) -> Line {
    use tower::{Service as _, ServiceExt as _};
    use tower_resilience_circuitbreaker::CircuitBreakerError;

    let (layer, opens) = peers::tower_resilience(p.open_wait);
    let svc = layer.layer_fn(tower::service_fn(move |()| Arc::clone(&backend).serve()));
    Line::new(
        "tower-resilience",
        move || {
            let mut svc = svc.clone();
            Box::pin(async move {
                match svc.ready().await {
                    Ok(ready) => match ready.call(()).await {
                        Err(CircuitBreakerError::OpenCircuit) => Called::Rejected,
                        _ => Called::Sent,
                    },
                    Err(CircuitBreakerError::OpenCircuit) => Called::Rejected,
                    Err(_) => Called::Sent,
                }
            })
        },
        move || opens.get(),
    )
}

/// seatbelt (`peers::seatbelt`), through `layered::Service::execute`: its defaults with
/// the sampling window and the break scaled, and its single-probe half-open mode.
fn seatbelt(backend: Arc<Backend>, p: Params) -> Line {
    use layered::Service as _;

    let sb = peers::seatbelt("scorecard", p.open_wait, p.window, move || {
        let b = Arc::clone(&backend);
        async move { b.serve().await.map_err(Fail::as_str) }
    });
    let svc = Arc::new(sb.service);
    let opens = sb.opens;
    let mut line = Line::new(
        "seatbelt",
        move || {
            let svc = Arc::clone(&svc);
            Box::pin(
                async move { if svc.execute(()).await == Err("rejected") { Called::Rejected } else { Called::Sent } },
            )
        },
        move || opens.get(),
    );
    line._keep = Box::new(sb.clock);
    line
}

/// Every line, in table order.
const LINES: &[MakeLine] =
    &[no_breaker, breakerbox, breakerbox_throttle, failsafe, recloser, tower_resilience, breaker, seatbelt];

/// The legend and what each line does, printed under the table.
const NOTES: &[&str] = &[
    "wasted: requests that reached the backend while it failed; 1st rej.: from the outage's start to the first \
     rejection; rec. lag: from the recovery to the first success after it; wedged: no success after the recovery \
     before the end; goodput: successes/s as a share of the line's backend's capacity; req/succ: backend requests \
     per success; ~: counted from outside (the first rejection after a call went through)",
    "breakerbox (defaults): 5 consecutive failures, one probe, open wait and probe lease 1 s (scaled 30 s)",
    "breakerbox + throttle: Throttle::new() (k = 2) over 1 s, failure_rate(0.9) over 100 calls (min 100), open 1 s; a 503 \
     is Report::overloaded(), a 500 a failure",
    "failsafe: 5 consecutive failures, constant 1 s; no probe limit: half-open admits every call until one fails",
    "recloser: no consecutive rule: a ring of 5 calls at 100 % (error_rate_closed(1.0), closed_len(5)); no probe \
     limit: half-open admits every call, judged on a ring of 1 (half_open_len(1)); no transition hook",
    "tower-resilience: 5 consecutive failures (its FailureModel), 1 s, one probe (its default); the probe's slot is \
     held until it answers, returned if its future is dropped",
    "breaker: 5 consecutive failures, rate rule off, fixed 1 s, half_open_max_calls(1); the slot is held until \
     the probe answers, returned if its future is dropped",
    "seatbelt: no consecutive rule: its defaults, 10 % failures over 1 s (scaled 30 s; its minimum) with at least \
     100 calls; break 1 s; HalfOpenMode::quick (one probe, replaced after one break of silence; a dropped probe is \
     inconclusive and waits the same)",
];

/// What one caller-side run of a line saw.
#[derive(Debug)]
struct Seen {
    offered: AtomicU64,
    /// The earliest rejection after the outage began, in ns after it began.
    first_reject: AtomicU64,
}

/// What one line measured in one scenario.
#[derive(Debug)]
struct Row {
    name: &'static str,
    secs: f64,
    offered: u64,
    requests: u64,
    wasted: u64,
    successes: u64,
    first_reject: Option<Duration>,
    /// From the recovery to the first success that arrived after it; `None`: wedged.
    lag: Option<Duration>,
    openings: Option<u64>,
    openings_seen: bool,
    capacity: f64,
}

impl Row {
    fn goodput(&self) -> f64 {
        self.successes as f64 / self.secs
    }

    fn share_of_capacity(&self) -> f64 {
        self.goodput() / self.capacity
    }

    /// Backend requests per success: 1.0 is no wasted work.
    fn requests_per_success(&self) -> f64 {
        if self.successes == 0 { f64::INFINITY } else { self.requests as f64 / self.successes as f64 }
    }

    fn openings(&self) -> String {
        match self.openings {
            None => "n/a".to_owned(),
            Some(n) if self.openings_seen => format!("~{n}"),
            Some(n) => n.to_string(),
        }
    }
}

/// One caller: one call per tick from its slot in the first tick until `end`.
async fn caller(
    call: Arc<dyn Fn() -> CallFut + Send + Sync>,
    seen: Arc<Seen>,
    mut next: Instant,
    end: Instant,
    timeout: Option<Duration>,
    outage: Option<Instant>,
) {
    while next < end {
        tokio::time::sleep_until(next).await;
        seen.offered.fetch_add(1, Ordering::Relaxed);
        let fut = call();
        let called = match timeout {
            // A timeout drops (cancels) the call's future: `Sent`, as it was admitted.
            Some(t) => tokio::time::timeout(t, fut).await.unwrap_or(Called::Sent),
            None => fut.await,
        };
        // The first rejection after the outage began.
        if called == Called::Rejected
            && let Some(from) = outage
        {
            let now = Instant::now();
            if now >= from {
                seen.first_reject.fetch_min(nanos_since(from, now), Ordering::Relaxed);
            }
        }
        next += TICK;
        // Open loop: a call that ran past its next tick skips the ticks it missed.
        let now = Instant::now();
        if next < now {
            let missed = (now - next).as_nanos() / TICK.as_nanos() + 1;
            next += TICK * u32::try_from(missed).expect("a sane number of missed ticks");
        }
    }
}

/// Runs every line through `script` at once, each with its own backend, and reads the
/// counters.
async fn run(script: &Script, scale: f64) -> Vec<Row> {
    let params = Params { open_wait: Duration::from_secs_f64(scale), window: Duration::from_secs_f64(scale) };
    // Every caller's schedule counts from one instant, a little ahead so that every task
    // is spawned before the first tick.
    let start = Instant::now() + Duration::from_millis(50);
    let timeout = script.timeout.map(|t| Duration::from_secs_f64(t * scale));
    let mut lines = Vec::new();
    let mut tasks = Vec::new();
    for make in LINES {
        let backend = Arc::new(Backend::new(script, start, scale));
        let line = make(Arc::clone(&backend), params);
        let seen = Arc::new(Seen { offered: AtomicU64::new(0), first_reject: AtomicU64::new(NONE) });
        for i in 0..CALLERS {
            // Spread evenly over one tick.
            let first = start + TICK * u32::try_from(i).expect("few callers") / u32::try_from(CALLERS).expect("few");
            let outage = backend.fail_at.map(|(from, _)| from);
            tasks.push(tokio::spawn(caller(
                Arc::clone(&line.call),
                Arc::clone(&seen),
                first,
                backend.end,
                timeout,
                outage,
            )));
        }
        lines.push((line, backend, seen));
    }
    // The calls in flight at the end finish within the grace, but for the hung ones.
    let deadline = start + Duration::from_secs_f64(script.end * scale) + GRACE;
    for task in &mut tasks {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
    for task in &tasks {
        task.abort();
    }
    lines
        .into_iter()
        .map(|(line, backend, seen)| Row {
            name: line.name,
            secs: script.end * scale,
            offered: seen.offered.load(Ordering::Relaxed),
            requests: backend.requests.load(Ordering::Relaxed),
            wasted: backend.wasted.load(Ordering::Relaxed),
            successes: backend.successes.load(Ordering::Relaxed),
            first_reject: some(seen.first_reject.load(Ordering::Relaxed)),
            lag: some(backend.first_recovered.load(Ordering::Relaxed)),
            openings: (line.openings)(),
            openings_seen: line.openings_seen,
            capacity: backend.capacity(),
        })
        .collect()
}

fn ms(d: Option<Duration>, none: &str) -> String {
    d.map_or_else(|| none.to_owned(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
}

/// The four scenarios' rows, line by line.
struct Card {
    outage: Vec<Row>,
    hung: Vec<Row>,
    cancelled: Vec<Row>,
    brownout: Vec<Row>,
}

impl Card {
    fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
        rows.iter().find(|r| r.name == name).expect("every line ran")
    }

    fn print(&self) {
        println!(
            "{:<22} | {:>6} {:>9} {:>9} {:>5} | {:>9} | {:>9} | {:>7} {:>5} {:>8}",
            "", "outage", "", "", "", "hung", "cancelled", "brownout", "", ""
        );
        println!(
            "{:<22} | {:>6} {:>9} {:>9} {:>5} | {:>9} | {:>9} | {:>7} {:>5} {:>8}",
            "line", "wasted", "1st rej.", "rec. lag", "opens", "rec. lag", "rec. lag", "goodput", "opens", "req/succ"
        );
        for (i, o) in self.outage.iter().enumerate() {
            let (h, c, b) = (&self.hung[i], &self.cancelled[i], &self.brownout[i]);
            println!(
                "{:<22} | {:>6} {:>9} {:>9} {:>5} | {:>9} | {:>9} | {:>6.1}% {:>5} {:>8.2}",
                o.name,
                o.wasted,
                ms(o.first_reject, "-"),
                ms(o.lag, "never"),
                o.openings(),
                ms(h.lag, "wedged"),
                ms(c.lag, "wedged"),
                100.0 * b.share_of_capacity(),
                b.openings(),
                b.requests_per_success(),
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; CI passes `--test` as to criterion benches.
    let test = std::env::args().any(|a| a == "--test");
    let scale = if test { TEST_SCALE } else { 1.0 };
    let no_assert = test || std::env::var_os("SCORECARD_NO_ASSERT").is_some_and(|v| v == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_time().build().expect("a tokio runtime");

    let began = std::time::Instant::now();
    println!(
        "scorecard: {} lines at once per scenario, {CALLERS} callers each, one call per {TICK:?} ({:.0}/s); \
         open wait {:?}; backend {HEALTHY:?} healthy, {FAILING:?} failing; brownout {SLOTS} slots x {SERVICE:?}",
        LINES.len(),
        CALLERS as f64 / TICK.as_secs_f64(),
        Duration::from_secs_f64(scale),
    );
    let card = runtime.block_on(async {
        Card {
            outage: run(&OUTAGE, scale).await,
            hung: run(&HUNG_PROBE, scale).await,
            cancelled: run(&CANCELLED_PROBE, scale).await,
            brownout: run(&BROWNOUT, scale).await,
        }
    });
    card.print();
    let brown = Card::row(&card.brownout, THROTTLED);
    println!(
        "brownout capacity (slots over the measured hold, {SERVICE:?} asked): {:.0}/s; offered {:.0}/s",
        brown.capacity,
        brown.offered as f64 / brown.secs
    );
    for note in NOTES {
        println!("{note}");
    }
    println!("ran in {:.1} s", began.elapsed().as_secs_f64());
    // The runtime's tasks are aborted; its hung timers go with it.
    drop(runtime);

    if no_assert {
        return;
    }
    check(&card);
}

/// The scorecard's promises for breakerbox.
fn check(card: &Card) {
    let bb = Card::row(&card.outage, BREAKERBOX);
    let best = card
        .outage
        .iter()
        .filter(|r| r.name != "no breaker" && !r.name.starts_with("breakerbox"))
        .min_by_key(|r| r.wasted)
        .expect("peers ran");
    let allowed = best.wasted + WASTE_SLACK_CALLS.max((best.wasted as f64 * WASTE_SLACK_SHARE).ceil() as u64);
    assert!(
        bb.wasted <= allowed,
        "{}: {} calls reached the failing backend, more than the best peer ({}: {}) plus slack ({allowed})",
        bb.name,
        bb.wasted,
        best.name,
        best.wasted
    );
    for name in [BREAKERBOX, THROTTLED] {
        for (scenario, rows) in [("hung probe", &card.hung), ("cancelled probe", &card.cancelled)] {
            let row = Card::row(rows, name);
            assert!(row.lag.is_some(), "{name} was wedged by a {scenario}: no success after the recovery");
        }
    }
    let row = Card::row(&card.brownout, THROTTLED);
    assert!(
        row.share_of_capacity() >= MIN_GOODPUT,
        "{}: brownout goodput {:.1} % of capacity, below {:.0} %",
        row.name,
        100.0 * row.share_of_capacity(),
        100.0 * MIN_GOODPUT
    );
    assert!(
        row.openings.is_some_and(|n| n <= 1),
        "{}: opened {:?} times in the brownout, at most once expected",
        row.name,
        row.openings
    );
}
