//! breakerbox next to its peers, scenario by scenario, in one criterion run.
//!
//! Every group runs breakerbox and each peer that can do the scenario side by side, one
//! call (acquire + record) per iteration (`Throughput::Elements(1)`):
//!
//! | group | what one iteration is |
//! |---|---|
//! | `closed_success` | a closed breaker admits a call that succeeds; plus a bare-atomic reference |
//! | `closed_1_in_10_failing` | as above, every tenth call fails; no breaker ever trips (checked) |
//! | `open_rejecting` | an open breaker (one-hour wait) rejects a call; breakerbox on its default clock, a `CoarseClock`, with a `String` name, and forced open |
//! | `two_threads` | 1 or 2 threads call one shared closed breaker; time per call; plus a control whose threads share nothing |
//! | `async_ready` | an async call with an immediately ready future, polled once; beside the bare future and the sync call; and with a future that holds 256 bytes of state |
//! | `clock_read` | one reading of each breakerbox clock |
//!
//! Peers whose only API is async (`breaker`) or a service (`tower-resilience-circuitbreaker`,
//! `seatbelt`) are driven in the sync groups the only way they can be: their future is
//! polled once with a no-op waker (it is ready at once; no runtime is involved). Each
//! closure counts the calls it saw rejected, and each group checks the count after the run:
//! a closed group whose breaker tripped, or an open group whose breaker admitted a call,
//! panics instead of reporting a number for the wrong scenario.
//!
//! Run: `cargo bench -p breakerbox-benches --bench core -- --warm-up-time 1 --measurement-time 3`

mod measure;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use measure::run_threads;

/// The open wait of every tripped breaker: far longer than any run.
const LONG: Duration = Duration::from_secs(3600);
/// A threshold no benchmark reaches.
const NEVER: u32 = 1_000_000;

/// Polls `fut` with a no-op waker until it is ready. Every future measured here is ready on
/// its first poll when single-threaded; under contention an async mutex (tower-resilience)
/// may answer `Pending` once and is granted on release, so this spins rather than parks.
#[inline]
fn poll_now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let mut spins = 0u64;
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        spins += 1;
        assert!(spins < 100_000_000, "a benchmarked future never became ready");
        std::thread::yield_now();
    }
}

/// `poll_ready` then `call` on a tower service, both polled with a no-op waker.
#[inline]
fn tower_call<S, Req>(svc: &mut S, req: Req) -> Result<S::Response, S::Error>
where
    S: tower::Service<Req>,
{
    poll_now(std::future::poll_fn(|cx| svc.poll_ready(cx)))?;
    poll_now(svc.call(req))
}

/// Whether the `i`-th call of a 1-in-10 scenario fails.
#[inline(always)]
fn fails(i: u64) -> bool {
    i.is_multiple_of(10)
}

/// The operation every breaker protects: a success, or a failure for 1 in 10 calls when
/// `mixed`.
#[inline(always)]
fn op(i: u64, mixed: bool) -> Result<u64, &'static str> {
    if mixed && fails(i) { Err("failed") } else { Ok(black_box(i)) }
}

/// A bare atomic stand-in for a breaker: one load of a state word, one relaxed increment.
#[derive(Debug, Default)]
struct AtomicReference {
    state: AtomicU64,
    calls: AtomicU64,
}

impl AtomicReference {
    #[inline(always)]
    fn call(&self) -> bool {
        if self.state.load(Ordering::Relaxed) == 0 {
            self.calls.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// Every peer, built for one scenario.
mod peers {
    use std::task::Waker;
    use std::time::Duration;

    use layered::{Execute, Stack};
    use seatbelt::breaker::Breaker as SeatbeltBreaker;
    use seatbelt::{RecoveryInfo, ResilienceContext};

    use super::{LONG, NEVER, fails, op};

    pub(crate) type Failsafe =
        failsafe::StateMachine<failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>, ()>;

    /// failsafe: consecutive failures (its own policy).
    pub(crate) fn failsafe(threshold: u32) -> Failsafe {
        let backoff = failsafe::backoff::constant(LONG);
        failsafe::Config::new()
            .failure_policy(failsafe::failure_policy::consecutive_failures(threshold, backoff))
            .build()
    }

    /// recloser: a failure rate over a ring of `len` calls (its only policy). At 1 in 10
    /// failing, the default 50% rate over 100 calls never trips.
    pub(crate) fn recloser(len: usize) -> recloser::Recloser {
        recloser::Recloser::custom().error_rate(0.5).closed_len(len).open_wait(LONG).build()
    }

    /// breaker: consecutive failures, with its rate rule switched off (threshold 0.0).
    pub(crate) fn breaker(threshold: u32) -> breaker::CircuitBreaker {
        let config = breaker::CircuitBreakerConfig::builder()
            .consecutive_failures(threshold)
            .failure_rate_threshold(0.0)
            .backoff(breaker::BackoffStrategy::Fixed(LONG))
            .build();
        breaker::CircuitBreaker::new(config)
    }

    pub(crate) type TowerResilience = tower_resilience_circuitbreaker::CircuitBreaker<
        tower::util::ServiceFn<fn(u64) -> std::future::Ready<Result<u64, &'static str>>>,
        tower_resilience_circuitbreaker::DefaultClassifier,
    >;

    fn ok_fn(i: u64) -> std::future::Ready<Result<u64, &'static str>> {
        std::future::ready(op(i, false))
    }

    fn mixed_fn(i: u64) -> std::future::Ready<Result<u64, &'static str>> {
        std::future::ready(op(i, true))
    }

    /// tower-resilience-circuitbreaker: consecutive failures (its `FailureModel`).
    pub(crate) fn tower_resilience(threshold: usize, mixed: bool) -> TowerResilience {
        let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
            .consecutive_failures(threshold)
            .wait_duration_in_open(LONG)
            .build()
            .expect("valid tower-resilience config");
        let f: fn(u64) -> std::future::Ready<Result<u64, &'static str>> = if mixed { mixed_fn } else { ok_fn };
        layer.layer_fn(tower::service_fn(f))
    }

    /// seatbelt's breaker needs a `tick` clock; an activated system clock reads
    /// `Instant::now()` and needs its driver only for timers, which the breaker never sets.
    pub(crate) struct Seatbelt<S> {
        pub(crate) service: S,
        _clock: tick::Clock,
        _driver: tick::runtime::ClockDriver,
    }

    /// seatbelt: a failure rate over a sampling window, with a minimum throughput (its only
    /// policy). At 1 in 10 failing, a 50% threshold never trips; to trip, `threshold` 0.1
    /// and `min_throughput` 1.
    pub(crate) fn seatbelt(
        threshold: f32,
        min_throughput: u32,
        mixed: bool,
    ) -> Seatbelt<impl layered::Service<u64, Out = Result<u64, &'static str>> + Clone> {
        let (clock, driver) = tick::runtime::InactiveClock::default().activate(Waker::noop().clone());
        let context: ResilienceContext<u64, Result<u64, &'static str>> = ResilienceContext::new(&clock).name("bench");
        let service = (
            SeatbeltBreaker::layer("bench", &context)
                .recovery_with(|r: &Result<u64, &'static str>, _| match r {
                    Ok(_) => RecoveryInfo::never(),
                    Err(_) => RecoveryInfo::retry(),
                })
                .rejected_input_error(|_, _| "rejected")
                .failure_threshold(threshold)
                .min_throughput(min_throughput)
                .break_duration(LONG)
                .sampling_duration(Duration::from_secs(30)),
            Execute::new(move |i: u64| std::future::ready(op(i, mixed))),
        )
            .into_service();
        Seatbelt { service, _clock: clock, _driver: driver }
    }

    /// A threshold for peers that count consecutive failures in `usize`.
    pub(crate) const NEVER_USIZE: usize = NEVER as usize;

    /// Checks the operation's failure pattern is what the scenarios say it is.
    pub(crate) fn check_pattern() {
        assert_eq!((0..100).filter(|&i| fails(i)).count(), 10);
    }
}

/// Single-threaded groups: closed success, closed with failures, open rejection, async.
mod single_threaded {
    use std::hint::black_box;

    use breakerbox::{Breaker, CoarseClock, Error, OpenWait, Policy};
    use criterion::{Criterion, Throughput};
    use layered::Service as _;

    use super::peers::{self, NEVER_USIZE};
    use super::{AtomicReference, LONG, NEVER, fails, op, poll_now, tower_call};

    fn closed_breakerbox(threshold: u32) -> Breaker {
        Breaker::builder()
            .name("bench")
            .policy(Policy::consecutive_failures(threshold))
            .open_wait(OpenWait::fixed(LONG))
            .build()
            .expect("valid breakerbox config")
    }

    /// The closed groups: `mixed` = every tenth call fails.
    fn closed(c: &mut Criterion, name: &str, mixed: bool) {
        peers::check_pattern();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        let mut rejected = 0u64;

        if !mixed {
            let reference = AtomicReference::default();
            group.bench_function("atomic_reference", |b| {
                b.iter(|| {
                    rejected += u64::from(!black_box(&reference).call());
                })
            });
        }

        let bb = closed_breakerbox(NEVER);
        let mut i = 0u64;
        group.bench_function("breakerbox", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                match black_box(&bb).try_acquire() {
                    Ok(permit) if mixed && fails(i) => permit.failure(),
                    Ok(permit) => permit.success(),
                    Err(_) => rejected += 1,
                }
            })
        });
        group.bench_function("breakerbox_call", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let r = black_box(&bb).call(|| op(i, mixed));
                rejected += u64::from(matches!(r, Err(Error::Rejected(_))));
                black_box(r)
            })
        });
        assert!(bb.is_closed(), "breakerbox tripped in {name}");

        let fs = peers::failsafe(NEVER);
        group.bench_function("failsafe", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let r = failsafe::CircuitBreaker::call(black_box(&fs), || op(i, mixed));
                rejected += u64::from(matches!(r, Err(failsafe::Error::Rejected)));
                black_box(r)
            })
        });

        let rc = peers::recloser(100);
        group.bench_function("recloser", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let r = black_box(&rc).call(|| op(i, mixed));
                rejected += u64::from(matches!(r, Err(recloser::Error::Rejected)));
                black_box(r)
            })
        });

        let br = peers::breaker(NEVER);
        group.bench_function("breaker", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let r = poll_now(black_box(&br).call(|| std::future::ready(op(i, mixed))));
                rejected += u64::from(matches!(
                    r,
                    Err(breaker::CircuitBreakerError::CircuitOpen | breaker::CircuitBreakerError::Rejected)
                ));
                black_box(r)
            })
        });
        assert!(br.is_closed(), "breaker tripped in {name}");

        let mut tr = peers::tower_resilience(NEVER_USIZE, mixed);
        group.bench_function("tower_resilience", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let r = tower_call(&mut tr, i);
                rejected +=
                    u64::from(matches!(r, Err(tower_resilience_circuitbreaker::CircuitBreakerError::OpenCircuit)));
                black_box(r)
            })
        });
        assert!(!tr.is_open(), "tower-resilience tripped in {name}");

        let sb = peers::seatbelt(0.5, 100, mixed);
        group.bench_function("seatbelt", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let r = poll_now(black_box(&sb.service).execute(i));
                rejected += u64::from(r == Err("rejected"));
                black_box(r)
            })
        });

        group.finish();
        assert_eq!(rejected, 0, "a breaker rejected calls in {name}: it tripped, the numbers are void");
    }

    pub(crate) fn closed_success(c: &mut Criterion) {
        closed(c, "closed_success", false);
    }

    pub(crate) fn closed_1_in_10_failing(c: &mut Criterion) {
        closed(c, "closed_1_in_10_failing", true);
    }

    /// A breaker tripped by one failure, open for an hour. `name` as a `String` is shared:
    /// each rejection clones it (an `Arc` increment) instead of copying a `&'static str`.
    fn tripped(builder: breakerbox::BreakerBuilder, name: impl Into<breakerbox::Name>) -> Breaker {
        let b = builder
            .name(name)
            .policy(Policy::consecutive_failures(1))
            .open_wait(OpenWait::fixed(LONG))
            .build()
            .expect("valid breakerbox config");
        b.try_acquire().expect("closed").failure();
        assert!(b.is_open());
        b
    }

    pub(crate) fn open_rejecting(c: &mut Criterion) {
        let mut group = c.benchmark_group("open_rejecting");
        group.throughput(Throughput::Elements(1));
        let mut admitted = 0u64;

        let variants = [
            ("breakerbox_monotonic", tripped(Breaker::builder(), "bench")),
            ("breakerbox_coarse", tripped(Breaker::builder().clock(CoarseClock::new(super::MS)), "bench")),
            (
                "breakerbox_coarse_string_name",
                tripped(Breaker::builder().clock(CoarseClock::new(super::MS)), String::from("bench")),
            ),
        ];
        for (id, bb) in &variants {
            group.bench_function(*id, |b| {
                b.iter(|| match black_box(bb).try_acquire() {
                    Ok(permit) => {
                        admitted += 1;
                        permit.success();
                    }
                    Err(rejected) => {
                        black_box(rejected);
                    }
                })
            });
            assert_eq!(admitted, 0, "{id} admitted a call while open");
            assert!(bb.is_open());
        }
        let forced = Breaker::builder().name("bench").build().expect("valid breakerbox config");
        forced.force_open();
        group.bench_function("breakerbox_forced_open", |b| {
            b.iter(|| match black_box(&forced).try_acquire() {
                Ok(permit) => {
                    admitted += 1;
                    permit.success();
                }
                Err(rejected) => {
                    black_box(rejected);
                }
            })
        });
        assert_eq!(admitted, 0, "breakerbox_forced_open admitted a call while open");

        let fs = peers::failsafe(1);
        let _ = failsafe::CircuitBreaker::call(&fs, || Err::<u64, _>("failed"));
        assert!(!failsafe::CircuitBreaker::is_call_permitted(&fs), "failsafe did not open");
        group.bench_function("failsafe", |b| {
            b.iter(|| {
                let r = failsafe::CircuitBreaker::call(black_box(&fs), || Ok::<_, &str>(1u64));
                admitted += u64::from(!matches!(r, Err(failsafe::Error::Rejected)));
                black_box(r)
            })
        });
        assert_eq!(admitted, 0, "failsafe admitted a call while open");

        // recloser rates a full ring only: the first failure fills it, the second trips it.
        let rc = peers::recloser(1);
        let mut n = 0;
        while !matches!(rc.call(|| Err::<u64, _>("failed")), Err(recloser::Error::Rejected)) {
            n += 1;
            assert!(n < 10, "recloser never opened");
        }
        group.bench_function("recloser", |b| {
            b.iter(|| {
                let r = black_box(&rc).call(|| Ok::<_, &str>(1u64));
                admitted += u64::from(!matches!(r, Err(recloser::Error::Rejected)));
                black_box(r)
            })
        });
        assert_eq!(admitted, 0, "recloser admitted a call while open");

        let br = peers::breaker(1);
        let _ = poll_now(br.call(|| std::future::ready(Err::<u64, _>("failed"))));
        assert!(br.is_open());
        group.bench_function("breaker", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&br).call(|| std::future::ready(Ok::<_, &str>(1u64))));
                admitted += u64::from(!matches!(r, Err(breaker::CircuitBreakerError::CircuitOpen)));
                black_box(r)
            })
        });
        assert_eq!(admitted, 0, "breaker admitted a call while open");

        let mut tr = peers::tower_resilience(1, true);
        let _ = tower_call(&mut tr, 0); // i = 0 fails
        assert!(tr.is_open());
        group.bench_function("tower_resilience", |b| {
            b.iter(|| {
                let r = tower_call(&mut tr, 1);
                admitted +=
                    u64::from(!matches!(r, Err(tower_resilience_circuitbreaker::CircuitBreakerError::OpenCircuit)));
                black_box(r)
            })
        });
        assert_eq!(admitted, 0, "tower_resilience admitted a call while open");

        // seatbelt trips on a failure rate once the window holds `min_throughput` calls.
        let sb = peers::seatbelt(0.1, 1, true);
        let mut n = 0;
        while poll_now(sb.service.execute(0)) != Err("rejected") {
            n += 1;
            assert!(n < 10_000, "seatbelt never opened");
        }
        group.bench_function("seatbelt", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&sb.service).execute(1));
                admitted += u64::from(r != Err("rejected"));
                black_box(r)
            })
        });
        assert_eq!(admitted, 0, "seatbelt admitted a call while open");

        group.finish();
    }

    pub(crate) fn async_ready(c: &mut Criterion) {
        let mut group = c.benchmark_group("async_ready");
        group.throughput(Throughput::Elements(1));
        let mut rejected = 0u64;

        // The two parts of an async call, in the same run: the bare future polled the same
        // way, and the sync `call` of the same breaker.
        group.bench_function("bare_future", |b| {
            b.iter(|| {
                let r = poll_now(std::future::ready(Ok::<_, &str>(black_box(1u64))));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        let bb = closed_breakerbox(NEVER);
        group.bench_function("breakerbox_sync_call", |b| {
            b.iter(|| {
                let r = black_box(&bb).call(|| Ok::<_, &str>(black_box(1u64)));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });
        group.bench_function("breakerbox", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&bb).call_async(std::future::ready(Ok::<_, &str>(black_box(1u64)))));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });
        // A future with state of its own: the cost of moving it (an `async fn` wrapper
        // stored it twice and copied it on the first poll).
        let stateful = || async {
            let state = black_box([7u8; 256]);
            Ok::<_, &str>(u64::from(state[black_box(255)]))
        };
        group.bench_function("bare_future_256_bytes", |b| {
            b.iter(|| {
                let r = poll_now(stateful());
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });
        group.bench_function("breakerbox_256_bytes", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&bb).call_async(stateful()));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        let fs = peers::failsafe(NEVER);
        group.bench_function("failsafe", |b| {
            b.iter(|| {
                let fut = failsafe::futures::CircuitBreaker::call(
                    black_box(&fs),
                    std::future::ready(Ok::<_, &str>(black_box(1u64))),
                );
                let r = poll_now(fut);
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        let rc = recloser::AsyncRecloser::from(peers::recloser(100));
        group.bench_function("recloser", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&rc).call(std::future::ready(Ok::<_, &str>(black_box(1u64)))));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        let br = peers::breaker(NEVER);
        group.bench_function("breaker", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&br).call(|| std::future::ready(Ok::<_, &str>(black_box(1u64)))));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        let mut tr = peers::tower_resilience(NEVER_USIZE, false);
        group.bench_function("tower_resilience", |b| {
            b.iter(|| {
                let r = tower_call(&mut tr, black_box(1));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        let sb = peers::seatbelt(0.5, 100, false);
        group.bench_function("seatbelt", |b| {
            b.iter(|| {
                let r = poll_now(black_box(&sb.service).execute(black_box(1)));
                rejected += u64::from(r.is_err());
                black_box(r)
            })
        });

        group.finish();
        assert_eq!(rejected, 0, "a ready call failed in async_ready");
    }
}

/// Two threads on one shared breaker, next to one thread, by `iter_custom`.
mod multi_threaded {
    use std::hint::black_box;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use criterion::{Criterion, Throughput};
    use layered::Service as _;

    use super::peers::{self, NEVER_USIZE};
    use super::{AtomicReference, NEVER, poll_now, run_threads, tower_call};

    /// A counter alone on its cache lines.
    #[derive(Default)]
    #[repr(align(128))]
    struct Padded(AtomicU64);

    pub(crate) fn two_threads(c: &mut Criterion) {
        let mut group = c.benchmark_group("two_threads");
        group.throughput(Throughput::Elements(1));

        let reference = AtomicReference::default();
        let bb = breakerbox::Breaker::builder()
            .name("bench")
            .policy(breakerbox::Policy::consecutive_failures(NEVER))
            .build()
            .expect("valid breakerbox config");
        let fs = peers::failsafe(NEVER);
        let rc = peers::recloser(100);
        let br = peers::breaker(NEVER);
        let tr = peers::tower_resilience(NEVER_USIZE, false);
        let sb = peers::seatbelt(0.5, 100, false);

        // The control: each thread increments its own counter on its own cache line. It
        // shows what scaling this machine allows right now (a loaded 2-core box may allow
        // none); the breakers' ratios are to be read against it.
        let private = [Padded::default(), Padded::default()];
        let next = AtomicUsize::new(0);

        for threads in [1usize, 2] {
            let id = |name: &str| format!("{name}/{threads}_thread{}", if threads == 1 { "" } else { "s" });
            group.bench_function(id("private_counter_control"), |b| {
                b.iter_custom(|iters| {
                    next.store(0, Ordering::Relaxed);
                    run_threads(iters, threads, || {
                        let counter = &private[next.fetch_add(1, Ordering::Relaxed) % 2].0;
                        move |_| {
                            black_box(counter).fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
            });
            group.bench_function(id("atomic_reference"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        |_| {
                            black_box(black_box(&reference).call());
                        }
                    })
                })
            });
            group.bench_function(id("breakerbox"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        |_| match black_box(&bb).try_acquire() {
                            Ok(permit) => permit.success(),
                            Err(_) => panic!("breakerbox rejected a call"),
                        }
                    })
                })
            });
            group.bench_function(id("failsafe"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        |i| {
                            let r = failsafe::CircuitBreaker::call(black_box(&fs), || Ok::<_, &str>(i));
                            assert!(r.is_ok());
                        }
                    })
                })
            });
            group.bench_function(id("recloser"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        |i| {
                            let r = black_box(&rc).call(|| Ok::<_, &str>(i));
                            assert!(r.is_ok());
                        }
                    })
                })
            });
            group.bench_function(id("breaker"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        |i| {
                            let r = poll_now(black_box(&br).call(|| std::future::ready(Ok::<_, &str>(i))));
                            assert!(r.is_ok());
                        }
                    })
                })
            });
            group.bench_function(id("tower_resilience"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        let mut svc = tr.clone();
                        move |i| {
                            let r = tower_call(&mut svc, i);
                            assert!(r.is_ok());
                        }
                    })
                })
            });
            group.bench_function(id("seatbelt"), |b| {
                b.iter_custom(|iters| {
                    run_threads(iters, threads, || {
                        |i| {
                            let r = poll_now(black_box(&sb.service).execute(i));
                            assert!(r.is_ok());
                        }
                    })
                })
            });
        }
        group.finish();
    }
}

/// Clock reads, and the family lookup that reads one.
mod clock {
    use std::hint::black_box;
    use std::time::Instant;

    use breakerbox::{Clock, CoarseClock, ManualClock, MonotonicClock};
    use criterion::{Criterion, Throughput};

    pub(crate) fn clock_read(c: &mut Criterion) {
        let mut group = c.benchmark_group("clock_read");
        group.throughput(Throughput::Elements(1));
        group.bench_function("instant_now", |b| b.iter(Instant::now));
        let monotonic = MonotonicClock::new();
        group.bench_function("monotonic", |b| b.iter(|| black_box(&monotonic).now_nanos()));
        let coarse = CoarseClock::new(super::MS);
        group.bench_function("coarse", |b| b.iter(|| black_box(&coarse).now_nanos()));
        let manual = ManualClock::new();
        group.bench_function("manual", |b| b.iter(|| black_box(&manual).now_nanos()));
        group.finish();
    }
}

/// What the protections beyond the classic breaker cost a call, beside the closed call
/// with all of them off (the same breaker as `closed_success`'s `breakerbox`), in one
/// run.
mod protections {
    use std::hint::black_box;

    use std::time::Duration;

    use breakerbox::{Breaker, ManualClock, OpenWait, Policy, Ramp, Report, State, Throttle};
    use criterion::{Criterion, Throughput};

    use super::{LONG, NEVER};

    fn builder() -> breakerbox::BreakerBuilder {
        Breaker::builder().name("bench").policy(Policy::consecutive_failures(NEVER)).open_wait(OpenWait::fixed(LONG))
    }

    pub(crate) fn protections(c: &mut Criterion) {
        let mut group = c.benchmark_group("protections");
        group.throughput(Throughput::Elements(1));

        let off = builder().build().expect("valid");
        group.bench_function("all_off", |b| b.iter(|| black_box(&off).try_acquire().map(|p| p.success())));

        // A throttle on a healthy backend: p = 0, every call admitted and counted.
        let healthy = builder().throttle(Throttle::new()).build().expect("valid");
        group.bench_function("throttle_admitting", |b| {
            b.iter(|| black_box(&healthy).try_acquire().map(|p| p.success()))
        });

        // A throttle in deep overload: p = max_reject (0.9), nine calls in ten rejected
        // by a draw, the tenth admitted and shed by the backend.
        let overloaded = builder().throttle(Throttle::new()).build().expect("valid");
        for _ in 0..100 {
            if let Ok(p) = overloaded.try_acquire() {
                p.record(Report::overloaded());
            }
        }
        assert!(overloaded.metrics().reject_probability > 0.5, "the throttle is rejecting");
        group.bench_function("throttle_rejecting", |b| {
            b.iter(|| black_box(&overloaded).try_acquire().map(|p| p.record(Report::overloaded())))
        });
        assert!(overloaded.is_closed(), "the throttle rejects; it does not trip");

        // A ramp halfway (the clock stands still at f = 0.5): every call takes one
        // accumulator step, one in two is admitted and succeeds.
        let clock = ManualClock::new();
        let ramp = builder()
            .policy(Policy::consecutive_failures(1))
            .open_wait(OpenWait::fixed(Duration::from_secs(1)))
            .recovery_ramp(Ramp::new().duration(Duration::from_secs(10)).min_fraction(0.5))
            .clock(clock.clone())
            .build()
            .expect("valid");
        ramp.try_acquire().expect("closed").failure();
        clock.advance(Duration::from_secs(1));
        ramp.try_acquire().expect("the probe").success();
        assert_eq!(ramp.state(), State::Recovering);
        group.bench_function("ramp_deciding", |b| b.iter(|| black_box(&ramp).try_acquire().map(|p| p.success())));
        assert_eq!(ramp.state(), State::Recovering, "the clock stood still");

        // In-flight age on: every closed admission takes the rules' path, enters the
        // in-flight count and sweeps (one load: nothing is due), and its completion
        // leaves the count.
        let hung = builder().hung_after(Duration::from_secs(1)).build().expect("valid");
        group
            .bench_function("hung_after_admitting", |b| b.iter(|| black_box(&hung).try_acquire().map(|p| p.success())));
        assert_eq!(hung.metrics().hung_calls, 0);

        // Shadow mode on an open breaker: every call is admitted and counted as one it
        // would have rejected.
        let shadow = builder().shadow(true).build().expect("valid");
        shadow.force_open();
        group.bench_function("shadow_admitting_while_open", |b| {
            b.iter(|| black_box(&shadow).try_acquire().map(|p| p.success()))
        });
        assert!(shadow.metrics().would_reject > 0);
        group.finish();
    }
}

/// One millisecond: the coarse clock's resolution throughout.
const MS: Duration = Duration::from_millis(1);

fn config() -> Criterion {
    Criterion::default()
}

criterion_group!(
    name = benches;
    config = config();
    targets =
        single_threaded::closed_success,
        single_threaded::closed_1_in_10_failing,
        single_threaded::open_rejecting,
        multi_threaded::two_threads,
        single_threaded::async_ready,
        clock::clock_read,
        protections::protections,
);
criterion_main!(benches);
