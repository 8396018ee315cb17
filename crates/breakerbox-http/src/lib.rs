//! A circuit breaker for HTTP clients: the classic `do_request(method, url)` design over
//! reqwest, ureq, or any client.
//!
//! [`HttpBreaker`] is the original `CircuitBreaker` (see the repository's `seed/`):
//! built over a client with an error threshold and a time window, it sends requests
//! through a method table, opens after that many consecutive failures, fails fast while
//! open, and lets one trial request through when the window has passed. It is
//! thread-safe, and it grows what the original lacked: classifiers that know a 404 from
//! a 503, `Retry-After`, a fallback, retries within a budget, one breaker per host.
//!
//! ```no_run
//! use std::time::Duration;
//! use breakerbox_http::{HttpBreaker, HttpError};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Opens after 3 consecutive failures (any status but 200), for 10 s.
//! let breaker = HttpBreaker::new(reqwest::Client::new(), 3, Duration::from_secs(10))?;
//!
//! match breaker.do_request("GET", "http://127.0.0.1:8080/stock/42").await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(HttpError::CircuitOpen(rejected)) => println!("failing fast: {rejected}"),
//!     Err(e) => println!("request failed: {e}"),
//! }
//! println!("open: {}, half-open: {}, closed: {}", breaker.is_open(), breaker.is_half_open(), breaker.is_closed());
//! # Ok(()) }
//! ```
//!
//! - [`HttpBreaker`]: `new`, `builder`, `do_request`, `send`, `is_open`, `clear_state`,
//!   `methods_mut`; [`blocking::HttpBreaker`] is the same without `.await`.
//! - [`Methods`] and [`Handler`]: the method table (the original's `_methods`).
//! - [`Classifier`]: which statuses and errors are failures; `Retry-After` is honoured.
//! - [`FallbackOn`] and [`Failure`]: the fallback (the original's `_empty_response`).
//! - [`Retry`] and [`RetryBudget`]: retries that go through the breaker, within a budget.
//! - [`HttpClient`], [`BlockingHttpClient`], [`HttpResponse`]: the client interface, for
//!   any other client.
//!
//! `cargo run --example demo` (from the repository root) replays the original's story
//! against a flaky local server.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `reqwest` | yes | [`HttpClient`] for `reqwest::Client` (reqwest 0.13 without default features: pick your TLS in your own `Cargo.toml`) |
//! | `ureq` | no | [`BlockingHttpClient`] for `ureq::Agent` (ureq 3 without default features) |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod blocking;
mod breaker;
pub mod classify;
pub mod client;
mod error;
mod fallback;
mod method;
#[cfg(feature = "reqwest")]
mod reqwest;
mod retry;
#[cfg(feature = "ureq")]
mod ureq;

pub use breaker::{HttpBreaker, HttpBreakerBuilder};
pub use classify::{Attempt, Classifier};
pub use client::{BlockingHttpClient, ErrorKind, HttpClient, HttpResponse, Request};
pub use error::{ConfigError, HttpError};
pub use fallback::{Failure, FallbackOn};
pub use method::{BoxFuture, Handler, Methods};
pub use retry::{Retry, RetryBudget};

/// The core crate, for its policies, open waits, clocks and states.
pub use breakerbox;
pub use breakerbox::{Metrics, OpenWait, Outcome, Policy, Rejected, State};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
