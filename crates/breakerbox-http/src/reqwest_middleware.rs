//! A circuit breaker in a reqwest-middleware chain (feature `reqwest-middleware`).
//!
//! [`BreakerMiddleware`] is a [`Middleware`] for `reqwest_middleware::ClientBuilder`
//! (reqwest-middleware 0.5): it keeps one breaker per scheme, host and port by default
//! ([`single`](BreakerMiddleware::single) for one breaker), classifies each response
//! with the crate's [`Classifier`] presets (status, `Retry-After`, transport errors),
//! and refuses requests to an open host without sending them.
//!
//! # Order in the chain
//!
//! `ClientBuilder::with` adds layers from the outside in: the first `.with` sees the
//! request first. Put the breaker **inside** reqwest-retry, and reqwest-tracing
//! outside both:
//!
//! ```text
//! ClientBuilder::new(client)
//!     .with(TracingMiddleware::default())            // one span per logical request
//!     .with(RetryTransientMiddleware::new_with_policy(backoff))
//!     .with(BreakerMiddleware::new(template)?)        // sees, and counts, every attempt
//!     .build()
//! ```
//!
//! - Inside the retry layer, the breaker counts each attempt, so a burst of retries
//!   against a failing host trips it as quickly as the failures warrant.
//! - A rejection is a middleware error, which reqwest-retry's default strategy treats
//!   as fatal: once the breaker opens, the retry loop stops at once instead of
//!   sleeping and trying again into an open circuit.
//! - Outside the retry layer, the breaker would count one outcome per logical request
//!   (after all its retries), and would not stop a retry loop.
//!
//! # The rejection
//!
//! A refused request ends in `reqwest_middleware::Error::Middleware`, whose error
//! downcasts to [`Rejected`] (`Error::Middleware(e) => e.downcast_ref::<Rejected>()`),
//! and whose source chain holds the `Rejected` too, so that it can be found through
//! the wrappers of the layers outside (reqwest-retry wraps every error it gives back
//! in its own `RetryError`). [`rejection`] does both:
//!
//! ```
//! use breakerbox::{Breaker, Policy};
//! use breakerbox_http::reqwest_middleware::{BreakerMiddleware, rejection};
//! use reqwest_middleware::ClientBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = Breaker::builder().name("api").policy(Policy::consecutive_failures(1)).build()?;
//! breaker.force_open();
//! let client = ClientBuilder::new(reqwest::Client::new()).with(BreakerMiddleware::single(breaker)).build();
//!
//! let err = client.get("http://127.0.0.1:9/").send().await.unwrap_err();
//! let rejected = rejection(&err).expect("the breaker refused the request");
//! assert_eq!(rejected.name(), "api");
//! // The same, by hand:
//! if let reqwest_middleware::Error::Middleware(e) = &err {
//!     assert!(e.downcast_ref::<breakerbox::Rejected>().is_some());
//! }
//! # Ok(()) }
//! ```

use std::error::Error as StdError;
use std::time::Duration;

use ::reqwest_middleware::{Error, Middleware, Next, Result};
use breakerbox::{Breaker, BreakerBox, BreakerBuilder, Rejected, Report};
use http::Extensions;
use reqwest::{Request, Response, Url};

use crate::breakers::{BreakerRef, Breakers};
use crate::host::Host;
use crate::timeout::{DEFAULT_TIMEOUT, Deadline};
use crate::{Classifier, ConfigError, ErrorKind};

/// A circuit breaker for a reqwest-middleware chain: one breaker per host by default.
/// See the [module docs](self) for where it goes in the chain.
///
/// Every request is keyed by its URL's scheme, host and port (`"https://api.example:443"`,
/// as [`HttpBreaker::per_host`](crate::HttpBreakerBuilder::per_host) keys it); the key
/// of a known host is built on the stack, so admission costs no allocation. A request
/// with no `http` or `https` host goes through unguarded. The permit of a request is
/// held by the middleware's future: dropping the future (a timeout outside, a
/// cancelled task) releases it as the core's cancellation rule says.
///
/// | result | counted as |
/// |---|---|
/// | a response | what the [`Classifier`] says of its status (default [`Classifier::standard`]: 5xx, 408, 429 fail); a failing 429 or 503 with `Retry-After` keeps the breaker open at least that long (no [`Verdict`](crate::Verdict) in its extensions: that would cost allocations per request; read the outcome with an `on_outcome` listener) |
/// | no response within the [timeout](Self::with_timeout) (default 30 s) | a failure; the request ends in `Error::Middleware`, downcasting to [`TimedOut`](crate::TimedOut) |
/// | `Error::Reqwest` | [`ErrorKind::Connect`], [`ErrorKind::Timeout`], [`ErrorKind::Other`] fail; [`ErrorKind::Request`] (reqwest could not build the request, or has no TLS for `https`) counts nowhere |
/// | `Error::Middleware` from a layer inside | [`ErrorKind::Other`]: a failure; a rejection by another breaker inside is ignored |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{Breaker, OpenWait, Policy};
/// use breakerbox_http::{BreakerMiddleware, Classifier};
/// use reqwest_middleware::ClientBuilder;
/// use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};
///
/// let breaker = BreakerMiddleware::new(
///     Breaker::builder()
///         .name("api")
///         .policy(Policy::consecutive_failures(5))
///         .open_wait(OpenWait::fixed(Duration::from_secs(30))),
/// )?
/// .with_classifier(Classifier::standard());
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(RetryTransientMiddleware::new_with_policy(ExponentialBackoff::builder().build_with_max_retries(3)))
///     .with(breaker) // inside the retries: every attempt counted
///     .build();
/// # let _ = client;
/// # Ok::<(), breakerbox_http::ConfigError>(())
/// ```
///
/// # Clone
///
/// Clones share the breakers.
///
/// # Default
///
/// The crate's production defaults (see the [crate docs](crate#defaults)): one breaker
/// per host, [`Classifier::standard`], a timeout of 30 s per request.
#[derive(Clone, Debug)]
pub struct BreakerMiddleware {
    breakers: Breakers,
    classifier: Classifier,
    timeout: Option<Duration>,
}

impl BreakerMiddleware {
    /// One breaker per host, each built from `template` (at most 10,000 hosts; each
    /// breaker named `"{template name}/{scheme}://{host}:{port}"`), classifying with
    /// [`Classifier::standard`].
    ///
    /// # Errors
    ///
    /// The template's [`ConfigError`].
    pub fn new(template: BreakerBuilder) -> std::result::Result<Self, ConfigError> {
        Ok(Self::per_host(BreakerBox::new(template)?))
    }

    /// One breaker per host, from `hosts` (your bounds, your names).
    pub fn per_host(hosts: BreakerBox<String>) -> Self {
        Self::with_breakers(Breakers::PerHost(hosts))
    }

    /// One breaker, `breaker`, for every request whatever its host.
    pub fn single(breaker: Breaker) -> Self {
        Self::with_breakers(Breakers::One(breaker))
    }

    fn with_breakers(breakers: Breakers) -> Self {
        Self { breakers, classifier: Classifier::standard(), timeout: Some(DEFAULT_TIMEOUT) }
    }

    /// Bounds each request (each attempt, inside reqwest-retry) by `timeout`: one
    /// still running then ends in `Error::Middleware` downcasting to
    /// [`TimedOut`](crate::TimedOut), counted as a failure.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No timeout of the middleware's own (the client's applies).
    #[must_use]
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The timeout of each request.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Classifies with `classifier` instead of [`Classifier::standard`].
    #[must_use]
    pub fn with_classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// The breaker of a [`single`](Self::single) middleware.
    pub fn breaker(&self) -> Option<&Breaker> {
        self.breakers.single()
    }

    /// The family of a per-host middleware, keyed `"{scheme}://{host}:{port}"`.
    pub fn hosts(&self) -> Option<&BreakerBox<String>> {
        self.breakers.hosts()
    }

    /// The breaker that guards requests to `url` (per host, created on first use);
    /// `None` for a URL with no `http` or `https` host, which goes through unguarded.
    pub fn breaker_for(&self, url: &Url) -> Option<Breaker> {
        self.breakers.guard(Host::of_url(url)).map(BreakerRef::into_owned)
    }

    /// The report on `result`, `None` for the caller's own error (counted nowhere).
    fn classify(&self, result: &Result<Response>) -> Option<Report> {
        Some(match result {
            Ok(response) => self.classifier.report(response.status(), response.headers()),
            Err(Error::Reqwest(e)) => match crate::reqwest::error_kind(e) {
                ErrorKind::Request => return None,
                kind => self.classifier.report_error(kind, e),
            },
            // Another breaker inside refused: nothing was sent.
            Err(e) if rejection(e).is_some() => Report::ignored(),
            Err(Error::Middleware(e)) => self.classifier.report_error(ErrorKind::Other, e.as_ref()),
        })
    }
}

#[async_trait::async_trait]
impl Middleware for BreakerMiddleware {
    async fn handle(&self, req: Request, extensions: &mut Extensions, next: Next<'_>) -> Result<Response> {
        let permit = match self.breakers.try_acquire_owned(Host::of_url(req.url())) {
            Some(Ok(permit)) => permit,
            Some(Err(rejected)) => return Err(rejected_error(rejected)),
            None => return next.run(req, extensions).await,
        };
        // Dropping this future before the response releases the permit (the core's
        // cancellation rule says whether it counts).
        match Deadline::new(next.run(req, extensions), self.timeout, tokio::time::sleep).await {
            Ok(result) => {
                if let Some(report) = self.classify(&result) {
                    permit.record(report);
                }
                result
            }
            Err(timed_out) => {
                permit.failure();
                Err(Error::middleware(timed_out))
            }
        }
    }
}

/// The middleware error of a rejection: it downcasts to [`Rejected`], and its source is
/// the [`Rejected`], for the layers that wrap it.
fn rejected_error(rejected: Rejected) -> Error {
    Error::Middleware(anyhow::Error::new(rejected.clone()).context(rejected))
}

/// The [`Rejected`] of a request a [`BreakerMiddleware`] refused, found directly
/// (`Error::Middleware` downcast) or anywhere in the error's source chain (through
/// reqwest-retry's `RetryError`, for example); `None` for any other error.
pub fn rejection(err: &Error) -> Option<&Rejected> {
    if let Error::Middleware(e) = err
        && let Some(r) = e.downcast_ref::<Rejected>()
    {
        return Some(r);
    }
    let mut next = StdError::source(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<Rejected>() {
            return Some(r);
        }
        next = e.source();
    }
    None
}
