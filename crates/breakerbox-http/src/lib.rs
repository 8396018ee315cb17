//! A circuit breaker for HTTP clients: the classic `do_request(method, url)` design over
//! reqwest, ureq, or any client.
//!
//! [`HttpBreaker`] is the original design, carried over. The original was a small
//! Python class, `CircuitBreaker(http_client, error_threshold, time_window)`: its one
//! call, `do_request(method, url)`, looked the method up in a method table
//! (`_methods`; an unknown method raised `InvalidMethod`), sent the request with the
//! client it was given, and read the answer's status with a replaceable extractor
//! (`_status_code`), counting every status but 200 as a failure. After
//! `error_threshold` consecutive failures the circuit opened for `time_window`: every
//! call failed fast with a circuit-open error, or went to a replaceable fallback
//! (`_empty_response`, which could also retry); once the window had passed, one trial
//! request decided between closing and opening again. `is_open`, `is_half_open` and
//! `is_closed` reported the state, and `clear_state` closed the circuit by hand.
//!
//! Here the same constructor and calls keep those semantics (see
//! [`HttpBreaker::new`]), made thread-safe, over any client; and the breaker grows what
//! the original lacked: classifiers that know a 404 from a 503, `Retry-After`, a
//! fallback on failures or rejections, retries within a budget, one breaker per host.
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
//! - `tower` (feature): `StatusClassifier` for the core's tower layer,
//!   and `PerHostLayer`, one breaker per host around hyper-util's client or any tower
//!   HTTP service.
//! - `reqwest_middleware` (feature): `BreakerMiddleware`, per host by default, for a
//!   reqwest-middleware chain beside reqwest-retry and reqwest-tracing.
//! - `config` (feature `serde`): `HttpConfig`, an [`HttpBreaker`]'s settings from TOML,
//!   YAML, JSON or the environment.
//!
//! `cargo run --example demo` (from the repository root) replays the original's story
//! against a flaky local server.
//!
//! # Feature flags
//!
//! | feature | default | what it adds | example |
//! |---|---|---|---|
//! | `reqwest` | yes | [`HttpClient`] for `reqwest::Client` (reqwest 0.13 without default features: pick your TLS in your own `Cargo.toml`) | `demo` |
//! | `ureq` | no | [`BlockingHttpClient`] for `ureq::Agent` (ureq 3 without default features) | |
//! | `tower` | no | `tower::StatusClassifier` (the crate's classifiers for `http::Response`, with `Retry-After`) for the core's `CircuitBreakerLayer`, `tower::layer(breaker)`, and `tower::PerHostLayer` / `PerHostService`: one breaker per scheme, host and port; `poll_ready` never fails because a breaker is open, `call` rejects with a `BoxError` that downcasts to [`Rejected`] | `tower` |
//! | `reqwest-middleware` | no | `BreakerMiddleware` for reqwest-middleware 0.5 chains (per host by default, or `single`), inside reqwest-retry and beside reqwest-tracing; its rejection is `reqwest_middleware::Error::Middleware`, downcasting to [`Rejected`] | `middleware` |
//! | `serde` | no | `config::HttpConfig`: the core breaker's settings plus `classifier`, `per_host`, `max_hosts`, `host_idle_timeout` and `retry`, from TOML, YAML, JSON or environment variables, durations written as `"30s"`; unknown keys rejected, every bad value named by `build()` | `config` |
//!
//! Run an example from the repository root with `cargo run -p breakerbox-http --example
//! <name> --features <feature>`; each starts its own server on 127.0.0.1.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod blocking;
mod breaker;
mod breakers;
pub mod classify;
pub mod client;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod config;
mod error;
mod fallback;
mod host;
mod method;
#[cfg(any(feature = "reqwest", feature = "reqwest-middleware"))]
mod reqwest;
#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub mod reqwest_middleware;
mod retry;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
#[cfg(feature = "ureq")]
mod ureq;

#[cfg(feature = "reqwest-middleware")]
pub use crate::reqwest_middleware::BreakerMiddleware;
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
