//! What the retry budget costs on the request path, lock-free next to the mutex it
//! replaced, in one criterion run.
//!
//! The budget is private to breakerbox-http, so the lock-free one is measured where
//! users meet it: an `HttpBreaker` over a client that answers from memory, each request
//! failing once (503) and retried once (a deposit and a withdraw), with the budget and
//! without it. The old design, a `Mutex<[Bucket; 10]>`, is copied here as it was and
//! measured alone, and around the same request without a budget, which is the work the
//! old breaker did.
//!
//! | benchmark | one iteration |
//! |---|---|
//! | `mutex_budget` | the old design alone: a deposit and a withdraw |
//! | `http_no_budget` | a request through the breaker: 503, then a retry without a budget, 200 |
//! | `http_lock_free_budget` | the same within the breaker's (lock-free) budget: one deposit, one withdraw |
//! | `http_no_budget_plus_mutex_budget` | `http_no_budget` plus a deposit and a withdraw of the old design: the old request path |
//!
//! Each runs on 1 thread and on 2 threads sharing one breaker (and one budget): time per
//! request (`iter_custom` and `measure::run_threads`, as in `core.rs`). The budget
//! allows a retry for every request (ratio 1.0), and every thread checks after its run
//! that each request was retried, so no number is for a refused retry.
//!
//! After criterion, a paired run (one thread) times blocks of the three request
//! variants in turn, the order rotating, and prints the medians of the differences to
//! `http_no_budget` within each round: what the budget adds to a request, which load that
//! comes and goes between criterion's benchmarks cannot bias.
//!
//! Run: `cargo bench -p breakerbox-benches --bench retry_budget -- --warm-up-time 1 --measurement-time 3`

mod measure;

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use breakerbox::AnyClock;
use breakerbox_http::{HttpBreaker, HttpClient, Request, Retry, RetryBudget};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use measure::{block_on, median, run_threads};

const URL: &str = "http://127.0.0.1:8080/item/42";

thread_local! {
    /// Whether this thread's next attempt fails: every other one does.
    static FAIL_NEXT: Cell<bool> = const { Cell::new(true) };
    /// This thread's attempts.
    static ATTEMPTS: Cell<u64> = const { Cell::new(0) };
}

/// Answers from memory: a 503, then a 200, then a 503... on each thread; waits for no
/// one between retries.
#[derive(Clone, Debug)]
struct FailsOnce;

impl HttpClient for FailsOnce {
    type Response = http::Response<Bytes>;
    type Error = std::io::Error;

    fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
        black_box(&request);
        let fail = FAIL_NEXT.replace(!FAIL_NEXT.get());
        ATTEMPTS.set(ATTEMPTS.get() + 1);
        let status = if fail { http::StatusCode::SERVICE_UNAVAILABLE } else { http::StatusCode::OK };
        let mut response = http::Response::new(Bytes::from_static(b"ok"));
        *response.status_mut() = status;
        std::future::ready(Ok(response))
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        black_box(duration);
        std::future::ready(())
    }
}

/// One breaker for every host that never opens, retrying once with no wait, within a
/// budget of one retry per request or without one.
fn breaker(budget: bool) -> HttpBreaker<FailsOnce> {
    let retry = Retry::attempts(2).with_backoff(Duration::ZERO, Duration::ZERO).without_jitter();
    let retry = if budget { retry.with_budget(RetryBudget::new(1.0)) } else { retry.without_budget() };
    HttpBreaker::builder(FailsOnce)
        .without_per_host()
        .without_timeout()
        .policy(breakerbox::Policy::consecutive_failures(1_000_000))
        .retry(retry)
        .build()
        .expect("valid breaker")
}

/// One request: the 503, the retry, the 200.
#[inline]
fn request(breaker: &HttpBreaker<FailsOnce>) {
    let response = block_on(breaker.do_request("GET", black_box(URL))).expect("a response");
    assert_eq!(response.status(), http::StatusCode::OK, "a request was not retried");
    black_box(response);
}

/// The old design, as it was in `crates/breakerbox-http/src/retry.rs`.
mod mutex_budget {
    use std::sync::Mutex;

    use breakerbox::AnyClock;

    const BUCKETS: usize = 10;

    pub(crate) struct Budget {
        ratio: f64,
        min_retries: u32,
        clock: AnyClock,
        slot: u64,
        buckets: Mutex<[Bucket; BUCKETS]>,
    }

    #[derive(Clone, Copy, Default)]
    struct Bucket {
        epoch: u64,
        requests: u64,
        retries: u64,
    }

    impl Budget {
        /// `RetryBudget::new(ratio)`: at least 10 retries per window of 10 s.
        pub(crate) fn new(ratio: f64, clock: AnyClock) -> Self {
            let window = 10_000_000_000u64;
            let slot = (window / BUCKETS as u64).max(1);
            Self { ratio, min_retries: 10, clock, slot, buckets: Mutex::new([Bucket::default(); BUCKETS]) }
        }

        fn current<'a>(&self, buckets: &'a mut [Bucket; BUCKETS]) -> (u64, &'a mut Bucket) {
            let epoch = self.clock.now() / self.slot + 1;
            let bucket = &mut buckets[(epoch % BUCKETS as u64) as usize];
            if bucket.epoch != epoch {
                *bucket = Bucket { epoch, requests: 0, retries: 0 };
            }
            (epoch, bucket)
        }

        pub(crate) fn deposit(&self) {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            self.current(&mut buckets).1.requests += 1;
        }

        pub(crate) fn withdraw(&self) -> bool {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let (epoch, _) = self.current(&mut buckets);
            let live = buckets.iter().filter(|b| b.epoch + (BUCKETS as u64) > epoch);
            let (requests, retries) = live.fold((0, 0), |(q, r), b| (q + b.requests, r + b.retries));
            let allowed = f64::from(self.min_retries) + self.ratio * requests as f64;
            if (retries + 1) as f64 > allowed {
                return false;
            }
            self.current(&mut buckets).1.retries += 1;
            true
        }
    }
}

fn retry_budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry_budget");
    group.throughput(Throughput::Elements(1));

    let plain = breaker(false);
    let budgeted = breaker(true);
    // The old budget reads the breaker's own clock, as the old breaker's did.
    let clock: AnyClock = plain.breaker().expect("one breaker for every host").clock();
    let old = mutex_budget::Budget::new(1.0, clock);
    let refused = AtomicU64::new(0);

    for threads in [1usize, 2] {
        let id = |name: &str| format!("{name}/{threads}_thread{}", if threads == 1 { "" } else { "s" });
        group.bench_function(id("mutex_budget"), |b| {
            b.iter_custom(|iters| {
                run_checked(iters, threads, || {
                    black_box(&old).deposit();
                    if !black_box(&old).withdraw() {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
        });
        group.bench_function(id("http_no_budget"), |b| {
            b.iter_custom(|iters| run_checked(iters, threads, || request(&plain)))
        });
        group.bench_function(id("http_lock_free_budget"), |b| {
            b.iter_custom(|iters| run_checked(iters, threads, || request(&budgeted)))
        });
        group.bench_function(id("http_no_budget_plus_mutex_budget"), |b| {
            b.iter_custom(|iters| {
                run_checked(iters, threads, || {
                    black_box(&old).deposit();
                    request(&plain);
                    if !black_box(&old).withdraw() {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
        });
    }
    group.finish();
    assert_eq!(refused.into_inner(), 0, "the old budget refused a retry");
}

/// Checks, when its thread's run is over (untimed), that each request of the run made
/// two attempts (a 503, then the retry).
struct AttemptsCheck {
    before: u64,
    requests: u64,
}

impl AttemptsCheck {
    fn start() -> Self {
        Self { before: ATTEMPTS.get(), requests: 0 }
    }

    /// One more request (a method, so that the closure captures the whole check and
    /// drops it on its thread, not a copy of the count).
    fn count(&mut self) {
        self.requests += 1;
    }
}

impl Drop for AttemptsCheck {
    fn drop(&mut self) {
        let attempts = ATTEMPTS.get() - self.before;
        let requests = self.requests;
        if !std::thread::panicking() {
            assert!(attempts == 0 || attempts == 2 * requests, "{attempts} attempts for {requests} requests");
        }
    }
}

/// `run_threads` with each thread's attempts checked after its run.
fn run_checked(iters: u64, threads: usize, call: impl Fn() + Sync) -> Duration {
    run_threads(iters, threads, || {
        let mut check = AttemptsCheck::start();
        let call = &call;
        move |_| {
            call();
            check.count();
        }
    })
}

/// The paired run, one thread: `rounds` rounds of one block of `BLOCK` requests of each
/// variant, in an order that rotates, each block timed whole; the medians per request,
/// and the medians of the differences to `http_no_budget` within each round, which load
/// that comes and goes between criterion's benchmarks cannot bias.
fn paired(rounds: usize) {
    const BLOCK: u32 = 200;
    let plain = breaker(false);
    let budgeted = breaker(true);
    let old = mutex_budget::Budget::new(1.0, plain.breaker().expect("one breaker for every host").clock());
    let variants: [(&str, &dyn Fn()); 3] = [
        ("http_no_budget", &|| request(&plain)),
        ("http_lock_free_budget", &|| request(&budgeted)),
        ("http_no_budget_plus_mutex_budget", &|| {
            old.deposit();
            request(&plain);
            assert!(old.withdraw(), "the old budget refused a retry");
        }),
    ];
    let block = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..BLOCK {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(BLOCK)
    };
    for _ in 0..rounds / 10 {
        for (_, f) in &variants {
            block(*f);
        }
    }
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let mut t = [0.0; 3];
        for k in 0..3 {
            let v = (round + k) % 3;
            t[v] = block(variants[v].1);
        }
        for v in 0..3 {
            times[v].push(t[v]);
        }
    }
    let diffs: Vec<Vec<f64>> =
        (1..3).map(|v| times[v].iter().zip(&times[0]).map(|(x, base)| x - base).collect()).collect();
    println!("\npaired, 1 thread: {rounds} rounds of {BLOCK} requests of each, order rotating");
    for (v, (name, _)) in variants.iter().enumerate() {
        println!("  {name:34} median {:>8.1} ns per request", median(&mut times[v].clone()));
    }
    for (v, mut d) in (1..3).zip(diffs) {
        println!("  {:34} minus http_no_budget: median {:>+7.1} ns", variants[v].0, median(&mut d));
    }
}

criterion_group!(benches, retry_budget);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Not under `cargo test --benches` (criterion's --test mode), nor when listing.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        paired(3_000);
    }
}
