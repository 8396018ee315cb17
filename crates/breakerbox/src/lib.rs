//! A lock-free circuit breaker for any fallible call, sync or async.
//!
//! A circuit breaker stops calling a service that keeps failing, so that callers fail
//! fast instead of waiting on timeouts, and the service gets room to recover; after a
//! wait it lets a few trial calls through, and closes again when they succeed.
//!
//! ```
//! use std::time::Duration;
//! use breakerbox::{Breaker, Error, OpenWait, Policy};
//!
//! let breaker = Breaker::builder()
//!     .name("inventory")
//!     .policy(Policy::consecutive_failures(5))
//!     .open_wait(OpenWait::fixed(Duration::from_secs(30)))
//!     .build()?;
//!
//! match breaker.call(|| fetch_stock("sku-42")) {
//!     Ok(n) => println!("{n} in stock"),
//!     Err(Error::Rejected(r)) => println!("inventory is down; retry in {:?}", r.retry_after()),
//!     Err(Error::Inner(e)) => println!("this call failed: {e}"),
//! }
//! # fn fetch_stock(_: &str) -> Result<u32, std::io::Error> { Ok(7) }
//! # Ok::<(), breakerbox::ConfigError>(())
//! ```
//!
//! - [`Breaker`]: the breaker; [`Breaker::call`], [`Breaker::call_async`], or
//!   [`Breaker::try_acquire`] and a [`Permit`].
//! - [`Policy`]: when to trip (consecutive failures, failure rate, slow calls).
//! - [`OpenWait`]: how long to stay open (fixed, exponential, jittered).
//! - [`BreakerBox`]: one breaker per key (per host), bounded.
//! - [`clock`]: time sources, including [`ManualClock`] for tests.
//! - [`_guide`]: how it works, half-open probes, clocks, sharing, keyed breakers.
//!
//! For HTTP clients (reqwest, ureq, tower, and the original `do_request` design), see
//! the `breakerbox-http` crate.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tower` | no | [`tower::CircuitBreakerLayer`]: any tower `Service` behind a breaker |
//! | `tracing` | no | `tracing` events (target `breakerbox`) on each state change (`warn` when opening, `info` when half-open or closed) and rejection (`debug`); nothing per successful call |
//! | `metrics` | no | counters and gauges through the `metrics` facade (table below) |
//! | `serde` | no | [`config`]: breakers, policies, open waits and families from TOML, YAML, JSON or environment variables |
//!
//! # Metrics (feature `metrics`)
//!
//! Every series carries the label `breaker` (the breaker's name). Handles are
//! registered when the breaker is built, so install the recorder first.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `breakerbox_calls_total` | counter | `outcome` = `success`, `failure`, `ignored`, `rejected`; rejected ones also `reason` = `open`, `half_open_full`, `forced_open`, `throttled` | calls by outcome; `rejected` calls never ran |
//! | `breakerbox_slow_calls_total` | counter | | calls a slow-call rule found slow |
//! | `breakerbox_transitions_total` | counter | `from`, `to` | state changes (catches opens shorter than a scrape interval) |
//! | `breakerbox_state` | gauge | `state` = `closed`, `open`, `half_open`, `forced_open`, `disabled` | 1 for the current state, 0 for the others |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod _guide;
mod backoff;
mod breaker;
mod call;
mod classify;
pub mod clock;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod config;
mod engine;
mod error;
mod event;
mod family;
mod name;
mod permit;
mod policy;
pub mod ramp;
mod state;
mod stats;
mod sync;
mod telemetry;
pub mod throttle;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

#[cfg(all(test, breakerbox_loom))]
mod loom_tests;

pub use backoff::{Backoff, OpenWait};
pub use breaker::{Breaker, BreakerBuilder};
pub use classify::{Classify, OkIsSuccess};
pub use clock::{AnyClock, Clock, CoarseClock, ManualClock, MonotonicClock};
pub use error::{ConfigError, Error, RejectReason, Rejected};
pub use event::{Reason, Recorded, Transition, TripCause};
pub use family::{BreakerBox, BreakerBoxBuilder, TripHeld};
pub use name::Name;
pub use permit::{OwnedPermit, Permit};
pub use policy::{Policy, RatePolicy};
pub use ramp::Ramp;
pub use state::{Outcome, Report, State};
pub use stats::{Metrics, WindowCounts};
pub use throttle::Throttle;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct RootReadmeDoctests;
