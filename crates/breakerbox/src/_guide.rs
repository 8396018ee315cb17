//! A guide to breakerbox: how a breaker decides, and how to use it well.
//!
//! # The states
//!
//! ```text
//!            trip (policy)                  open wait passed
//!  Closed ─────────────────▶ Open ───────────────────────────▶ HalfOpen
//!    ▲                        ▲                                  │  │
//!    │                        └──── a probe failed ──────────────┘  │
//!    └──────────── half_open_probes probes succeeded ───────────────┘
//! ```
//!
//! - **Closed**: calls flow; the [`Policy`](crate::Policy) counts failures.
//! - **Open**: calls are rejected at once with [`Rejected`](crate::Rejected), which says
//!   how long until a trial call (`retry_after`). Rejections are never counted as
//!   failures: a breaker cannot keep itself open.
//! - **HalfOpen**: up to `half_open_probes` trial calls run. When that many succeed
//!   the breaker closes and its counters start afresh; any failure reopens it, with
//!   the next (possibly longer) [`OpenWait`](crate::OpenWait).
//!
//! An open breaker whose wait has passed *reports* half-open at once
//! ([`Breaker::state`](crate::Breaker::state)), before any call arrives.
//!
//! # Half-open probes, done right
//!
//! ```
//! use std::time::Duration;
//! use breakerbox::{Breaker, ManualClock, OpenWait, Policy};
//!
//! let clock = ManualClock::new();
//! let breaker = Breaker::builder()
//!     .policy(Policy::consecutive_failures(1))
//!     .open_wait(OpenWait::fixed(Duration::from_secs(5)))
//!     .half_open_probes(2)
//!     .probe_lease(Duration::from_secs(10))
//!     .clock(clock.clone())
//!     .build()?;
//!
//! // A call admitted while closed, still running when the breaker opens.
//! let slow_call = breaker.try_acquire()?;
//! breaker.try_acquire()?.failure(); // trips
//! clock.advance(Duration::from_secs(5));
//!
//! // Half-open admits exactly two probes; the third caller is turned away.
//! let a = breaker.try_acquire()?;
//! let b = breaker.try_acquire()?;
//! assert!(breaker.try_acquire().is_err());
//!
//! // The old call's late success cannot close the circuit: it belongs to an
//! // earlier generation.
//! slow_call.success();
//! assert!(breaker.is_half_open());
//!
//! // A cancelled probe (its permit dropped) frees its slot and counts for nothing.
//! drop(a);
//! let c = breaker.try_acquire()?;
//!
//! b.success();
//! c.success();
//! assert!(breaker.is_closed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A probe that never reports (a hung call whose permit is never dropped) holds its
//! slot only until the probe lease runs out; then the next caller starts a new round of
//! probes. A breaker can never wedge half-open.
//!
//! # What counts as a failure
//!
//! [`Breaker::call`](crate::Breaker::call) counts `Ok` as success and `Err` as failure.
//! Real services need more: [`call_with`](crate::Breaker::call_with) takes a classifier
//! that maps a result to an [`Outcome`](crate::Outcome):
//!
//! - `Failure` for what says the service is unhealthy: timeouts, connection errors,
//!   HTTP 5xx, 429.
//! - `Ignored` for what says nothing about it: a 404, a validation error, a call the
//!   caller cancelled. Ignored outcomes touch no counter at all.
//! - `Success` for the rest.
//!
//! # Clocks and tests
//!
//! Inject a [`ManualClock`](crate::ManualClock) and tests never sleep: time moves
//! when the test says so, across threads. In production the default
//! [`MonotonicClock`](crate::MonotonicClock) is read only when time matters; a
//! [`CoarseClock`](crate::CoarseClock) makes even that a relaxed atomic load.
//!
//! # Sharing across threads and tasks
//!
//! A [`Breaker`](crate::Breaker) is a cheap handle; clone it into every thread or task.
//! Every method takes `&self` and is lock-free.
//!
//! ```
//! use breakerbox::Breaker;
//!
//! let breaker = Breaker::new();
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..1000 {
//!                 let _ = breaker.call(|| Ok::<_, ()>(()));
//!             }
//!         });
//!     }
//! });
//! assert_eq!(breaker.metrics().successes, 4000);
//! ```
//!
//! For a `'static` future or a task, take an [`OwnedPermit`](crate::OwnedPermit) with
//! [`try_acquire_owned`](crate::Breaker::try_acquire_owned).
//!
//! # One breaker per host
//!
//! A [`BreakerBox`](crate::BreakerBox) builds one breaker per key from a template, so
//! one failing host never opens the circuit for the others. It is bounded, and evicts
//! idle breakers; it never evicts an open one to make room.
//!
//! ```
//! use breakerbox::{Breaker, BreakerBox};
//!
//! let hosts: BreakerBox<String> = BreakerBox::builder(Breaker::builder().name("api"))
//!     .max_breakers(1000)
//!     .build()?;
//! let breaker = hosts.get("api.example.com:443");
//! let _ = breaker.call(|| Ok::<_, ()>(()));
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```
//!
//! # Watching a breaker
//!
//! Listeners run after each state change, rejection or outcome, outside any lock,
//! and a panicking listener is contained:
//!
//! ```
//! use breakerbox::Breaker;
//!
//! let breaker = Breaker::builder()
//!     .name("search")
//!     .on_state_change(|t| eprintln!("{}: {} -> {} ({:?})", t.breaker, t.from, t.to, t.reason))
//!     .build()?;
//! let m = breaker.metrics();
//! assert_eq!(m.failures, 0);
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```
