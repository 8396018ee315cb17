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
//! - [`HttpBreaker`]: `new`, `builder`, `do_request`, `send`, `execute` (a reqwest
//!   `RequestBuilder`), `is_open`, `clear_state`, `methods_mut`;
//!   [`blocking::HttpBreaker`] is the same without `.await`.
//! - [`Methods`] and [`Handler`]: the method table (the original's `_methods`).
//! - [`Classifier`]: which statuses and errors are failures; `Retry-After` is honoured;
//!   [`Verdict`]: what it said of a response.
//! - [`FallbackOn`] and [`Failure`]: the fallback (the original's `_empty_response`),
//!   sync or async.
//! - [`TimedOut`]: the breaker's own timeout expired.
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
//! # Install
//!
//! ```toml
//! [dependencies]
//! breakerbox-http = "0.1"
//! # reqwest 0.13 (breakerbox-http implements its `Client` only): choose a TLS feature
//! # for https, or `https://` URLs are refused with a message that says so.
//! reqwest = { version = "0.13", default-features = false, features = ["rustls", "json"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "time"] }
//! ```
//!
//! # Defaults
//!
//! [`HttpBreaker::new`] is the original; everything else starts from one set of
//! production defaults, the same for [`HttpBreaker::builder`], `tower::PerHostLayer`
//! (and `tower::per_host`) and `BreakerMiddleware::new`:
//!
//! | setting | `HttpBreaker::new(client, n, window)` | production defaults (builder, `PerHostLayer`, `BreakerMiddleware`) |
//! |---|---|---|
//! | breakers | one for every host | one per scheme + host + port (at most 10,000) |
//! | what fails | every status but 200 ([`Classifier::only_200`]), transport errors | 5xx, 408, 429, transport errors, timeouts ([`Classifier::standard`]): a `201` or a `404` is a success |
//! | when it opens | `n` consecutive failures | 5 consecutive failures (the core's default policy) |
//! | open for | exactly `window` | 30 s (the core's default open wait) |
//! | `Retry-After` of a 429 / 503 | not applied | applied, up to 5 min |
//! | timeout of each attempt | none (the client's own) | 30 s, counted as a failure of kind timeout |
//! | a request dropped unfinished (outer timeout) | counts as a failure after 1 s in flight (the core's rule) | the same |
//! | the caller's mistakes (bad URL or port, https without TLS, a request the client cannot build) | errors, counted nowhere | the same |
//! | half-open | one trial request | the same |
//!
//! Why these: a breaker that moves to the builder to gain a listener must not change
//! what counts, so the builder, the tower layer and the middleware agree. Per host,
//! because one failing host must not open the circuit for the others. The standard
//! classifier, because a `404` or a `201` says the server is up. A timeout, because
//! reqwest and hyper have none by default, and a hung server that never answers would
//! otherwise never trip the breaker (30 s: long past any healthy answer, and the open
//! wait's length, so a hung probe reopens within one wait). `new` keeps the original's
//! semantics exactly.
//!
//! # Timeouts
//!
//! Put the timeout **inside** the breaker: [`HttpBreakerBuilder::timeout`] (or the
//! layer's and the middleware's `with_timeout`, or the client's own). Its expiry is an
//! attempt that ended: a recorded failure of kind timeout, [`HttpError::TimedOut`]
//! saying after how long (or reqwest's own timeout error, counted as a failure too).
//!
//! A timeout **outside** (`tokio::time::timeout(d, breaker.do_request(..))`, a
//! `select!`) drops the request instead. The breaker then relies on the core's
//! cancellation rule ([`HttpBreakerBuilder::cancel_counts_after`], 1 s by default): a
//! request dropped after that long in flight counts as a failure, one dropped sooner
//! counts nothing. Both trip a breaker on a hung server; only the inside one says why.
//!
//! ```no_run
//! use std::time::Duration;
//! use breakerbox_http::{HttpBreaker, HttpError};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = HttpBreaker::builder(reqwest::Client::new()).timeout(Duration::from_secs(2)).build()?;
//! match breaker.do_request("GET", "http://127.0.0.1:8080/slow").await {
//!     Err(HttpError::TimedOut(t)) => println!("no answer in {:?}: counted", t.after()),
//!     other => println!("{other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # reqwest as it is
//!
//! A `reqwest::RequestBuilder` goes through the breaker whole (`.json`, `.query`,
//! `.bearer_auth`, a per-request `.timeout`): `breaker.execute(client.post(url).json(&body))`,
//! or `client.post(url).json(&body).send_through(&breaker)` with [`RequestBuilderExt`].
//! Every future is `Send + 'static` (`tokio::spawn(breaker.do_request("GET", url))`),
//! and a clone is one reference count. [`HttpBreakerBuilder::buffer_body`] records the
//! outcome once the body has been read, so that a body that stalls or breaks counts.
//! Each response carries a [`Verdict`]: how the breaker counted it, and why.
//!
//! # Feature flags
//!
//! | feature | default | what it adds | example |
//! |---|---|---|---|
//! | `reqwest` | yes | [`HttpClient`] for `reqwest::Client` (reqwest 0.13 without default features: pick your TLS in your own `Cargo.toml`) | `demo` |
//! | `ureq` | no | [`BlockingHttpClient`] for `ureq::Agent` (ureq 3 without default features) | |
//! | `tower` | no | `tower::StatusClassifier` (the crate's classifiers for `http::Response`, with `Retry-After`) for the core's `CircuitBreakerLayer`, `tower::layer(breaker)`, and `tower::PerHostLayer` / `PerHostService`: one breaker per scheme, host and port; `poll_ready` never fails because a breaker is open, `call` rejects with a `BoxError` that downcasts to [`Rejected`] | `http_tower` |
//! | `reqwest-middleware` | no | `BreakerMiddleware` for reqwest-middleware 0.5 chains (per host by default, or `single`), inside reqwest-retry and beside reqwest-tracing; its rejection is `reqwest_middleware::Error::Middleware`, downcasting to [`Rejected`] | `middleware` |
//! | `serde` | no | `config::HttpConfig`: the core breaker's settings plus `classifier`, `per_host`, `max_hosts`, `host_idle_timeout` and `retry`, from TOML, YAML, JSON or environment variables, durations written as `"30s"`; unknown keys rejected, every bad value named by `build()` | `http_config` |
//!
//! Run an example from the repository root with `cargo run -p breakerbox-http --example
//! <name> --features <feature>`; each starts its own server on 127.0.0.1.
//!
//! A `reqwest::Client` of another reqwest version (0.12) is another type: the compiler
//! then says that it is not an `HttpClient`, and which clients are.
//!
//! ```compile_fail
//! // A `String` is no client: "`String` is not an `HttpClient` that breakerbox-http can drive".
//! let _ = breakerbox_http::HttpBreaker::new(String::new(), 3, std::time::Duration::from_secs(10));
//! ```
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
mod timeout;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
#[cfg(feature = "ureq")]
mod ureq;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use crate::reqwest::RequestBuilderExt;
#[cfg(feature = "reqwest-middleware")]
pub use crate::reqwest_middleware::BreakerMiddleware;
pub use breaker::{HttpBreaker, HttpBreakerBuilder};
pub use classify::{Attempt, Classifier, Verdict, VerdictOf, is_overload_status};
pub use client::{BlockingHttpClient, ErrorKind, HttpClient, HttpResponse, Request};
pub use error::{ConfigError, HttpError, TimedOut};
pub use fallback::{Failure, FallbackOn};
pub use method::{BoxFuture, Handler, Methods};
pub use retry::{Retry, RetryBudget};

/// The core crate, for its policies, open waits, clocks and states.
pub use breakerbox;
pub use breakerbox::{Metrics, OpenWait, Outcome, Policy, Rejected, State};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
