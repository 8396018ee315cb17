//! Tower layers for HTTP clients (feature `tower`): the core's
//! [`CircuitBreakerLayer`] with a classifier that reads the status, and
//! [`PerHostLayer`], one breaker per host.
//!
//! Any tower HTTP client goes behind them: hyper-util's pooled
//! `hyper_util::client::legacy::Client`, tonic channels, reqwest's `Client` (a
//! `Service<reqwest::Request>`; for its responses, see the `reqwest-middleware` feature),
//! or a stack built with `tower::ServiceBuilder`.
//!
//! | | one breaker | one breaker per host |
//! |---|---|---|
//! | layer | [`layer`]`(breaker)`: the core's [`CircuitBreakerLayer`]`<`[`StatusClassifier`]`>` | [`PerHostLayer`] |
//! | service | [`CircuitBreakerService`]`<S, StatusClassifier>` | [`PerHostService`]`<S>` |
//! | key | none | the request URI's scheme, host and port (`"http://api.example:80"`), as [`HttpBreaker::per_host`](crate::HttpBreakerBuilder::per_host) keys it |
//!
//! Both follow tower's `load_shed`:
//!
//! - `poll_ready` never fails because a breaker is open: an `Err` from `poll_ready`
//!   means "discard this service" to buffers and balancers. The single-breaker service
//!   answers ready at once while open, without waiting on the inner service; the
//!   per-host service learns the host only in `call`, so its `poll_ready` is the inner
//!   service's.
//! - `call` rejects with a [`BoxError`] that downcasts to [`Rejected`]:
//!   `err.downcast_ref::<Rejected>()`, or `err.is::<Rejected>()`. The request never
//!   reaches the inner service.
//! - The response future holds the call's permit: dropping it before it completes
//!   (a timeout, a cancelled request) frees a half-open slot and records nothing.
//! - Clones of a service, and every service one layer makes, share the breakers.
//! - No allocation per call for the layers' own work (the per-host key of a known host
//!   is built on the stack), except the `Box` of a rejection.
//!
//! Responses are classified by a [`StatusClassifier`], made from the crate's
//! [`Classifier`] presets: [`standard`](Classifier::standard) (5xx, 408, 429 and
//! errors fail), [`success_2xx`](Classifier::success_2xx),
//! [`only_200`](Classifier::only_200), or your own. A failing 429 or 503 with a
//! `Retry-After` keeps the breaker open at least that long (up to the breaker's
//! `retry_after_limit`). The response itself always reaches the caller: a 503 is an
//! `Ok` that was counted, not an error.
//!
//! # Examples
//!
//! One breaker per host in front of hyper-util's client (the pattern of
//! `examples/http_tower.rs`):
//!
//! ```no_run
//! use std::time::Duration;
//! use breakerbox::{Breaker, OpenWait, Policy, Rejected};
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
//! let hosts = breakerbox_http::tower::per_host(
//!     Breaker::builder()
//!         .name("api")
//!         .policy(Policy::consecutive_failures(5))
//!         .open_wait(OpenWait::fixed(Duration::from_secs(30))),
//! )?;
//! let mut svc = ServiceBuilder::new().layer(hosts).service(client);
//!
//! let request = http::Request::get("http://127.0.0.1:8080/stock/42").body(Empty::new())?;
//! match svc.ready().await?.call(request).await {
//!     Ok(response) => println!("{}", response.status()), // a 503 too: it was counted
//!     Err(e) if e.is::<Rejected>() => println!("failing fast: {e}"),
//!     Err(e) => println!("transport error: {e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! One breaker for every request, through the core's layer:
//!
//! ```
//! # futures_block_on(async {
//! use breakerbox::{Breaker, Policy, Rejected};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! let breaker = Breaker::builder().policy(Policy::consecutive_failures(1)).build()?;
//! let mut svc = breakerbox_http::tower::layer(breaker.clone()).layer(service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::io::Error>(http::Response::builder().status(503).body(()).unwrap())
//! }));
//!
//! let response = svc.ready().await?.call(http::Request::new(())).await?;
//! assert_eq!(response.status(), 503); // given back, and counted: the breaker opens
//! let err = svc.ready().await?.call(http::Request::new(())).await.unwrap_err();
//! assert!(err.is::<Rejected>());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! # }).unwrap();
//! # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
//! # }
//! ```

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;

use breakerbox::{Breaker, BreakerBox, BreakerBuilder, Classify, Report};

use crate::{Classifier, ConfigError, ErrorKind};

mod per_host;

pub use breakerbox::Rejected;
pub use breakerbox::tower::{BoxError, CircuitBreakerLayer, CircuitBreakerService};
pub use per_host::{PerHostFuture, PerHostLayer, PerHostService};

/// The core's layer with `breaker`, classifying responses with
/// [`Classifier::standard`]: 5xx, 408, 429 and errors are failures.
///
/// Equivalent to `CircuitBreakerLayer::new(breaker).with_classifier(StatusClassifier::standard())`.
pub fn layer(breaker: Breaker) -> CircuitBreakerLayer<StatusClassifier> {
    CircuitBreakerLayer::new(breaker).with_classifier(StatusClassifier::standard())
}

/// The core's layer with `breaker`, classifying responses with `classifier`.
pub fn layer_with(breaker: Breaker, classifier: impl Into<StatusClassifier>) -> CircuitBreakerLayer<StatusClassifier> {
    CircuitBreakerLayer::new(breaker).with_classifier(classifier.into())
}

/// A [`PerHostLayer`] whose breakers are built from `template` (at most 10,000 hosts;
/// each breaker named `"{template name}/{scheme}://{host}:{port}"`), classifying with
/// [`Classifier::standard`]. For other bounds, build the
/// [`BreakerBox`] yourself and use [`PerHostLayer::new`].
///
/// # Errors
///
/// The template's [`ConfigError`].
pub fn per_host(template: BreakerBuilder) -> Result<PerHostLayer, ConfigError> {
    Ok(PerHostLayer::new(BreakerBox::new(template)?))
}

// ===== impl StatusClassifier =====

/// Classifies an `http::Response` (by its status) or the inner service's error, with a
/// [`Classifier`]; reads `Retry-After` on a failing 429 or 503.
///
/// It implements the core's [`Classify`] for `Result<http::Response<B>, E>`, for any
/// body `B` and error `E`, so it serves the core's [`CircuitBreakerLayer`] and this
/// module's [`PerHostLayer`] alike.
///
/// # Errors of the inner service
///
/// Every preset counts an error as a failure. A custom classifier
/// ([`Classifier::from_fn`]) sees [`Attempt::Error`](crate::Attempt::Error): its `error` is the inner error
/// itself when it is a [`BoxError`] (tower's `Timeout` and `Buffer` give those), a
/// `std::io::Error`, or a type named with
/// [`with_error_type`](Self::with_error_type); any other type is shown as a stand-in
/// whose message says so. Its `kind` is [`ErrorKind::Timeout`] or
/// [`ErrorKind::Connect`] when an `std::io::Error` in the error's source chain says so
/// (hyper-util's connection errors carry one), else [`ErrorKind::Other`].
///
/// # Examples
///
/// ```
/// use breakerbox::{Classify, Outcome};
/// use breakerbox_http::tower::StatusClassifier;
///
/// let answer = |status: u16| Ok::<_, std::io::Error>(http::Response::builder().status(status).body(()).unwrap());
/// let standard = StatusClassifier::standard();
/// assert_eq!(standard.classify(&answer(503)).outcome(), Outcome::Failure);
/// assert_eq!(standard.classify(&answer(404)).outcome(), Outcome::Success);
/// assert_eq!(StatusClassifier::success_2xx().classify(&answer(404)).outcome(), Outcome::Failure);
///
/// let limited = Ok::<_, std::io::Error>(
///     http::Response::builder().status(429).header("retry-after", "120").body(()).unwrap(),
/// );
/// let report = standard.classify(&limited);
/// assert_eq!(report.retry_after(), Some(std::time::Duration::from_secs(120)));
/// ```
///
/// # Default
///
/// [`Classifier::standard`].
#[derive(Clone, Default)]
pub struct StatusClassifier {
    classifier: Classifier,
    view: Option<ErrorView>,
}

/// Shows an error of one named type as `dyn Error`.
type ErrorView = fn(&dyn Any) -> Option<&(dyn StdError + Send + Sync + 'static)>;

impl StatusClassifier {
    /// Classifies with `classifier`.
    pub fn new(classifier: Classifier) -> Self {
        Self { classifier, view: None }
    }

    /// [`Classifier::standard`]: 5xx, 408, 429 and errors are failures.
    pub fn standard() -> Self {
        Self::new(Classifier::standard())
    }

    /// [`Classifier::success_2xx`]: every status outside 2xx, and errors, are failures.
    pub fn success_2xx() -> Self {
        Self::new(Classifier::success_2xx())
    }

    /// [`Classifier::only_200`]: every status but 200, and errors, are failures.
    pub fn only_200() -> Self {
        Self::new(Classifier::only_200())
    }

    /// Shows the inner service's errors of type `E` to a custom classifier as
    /// themselves (for example `hyper_util::client::legacy::Error`, to call its
    /// `is_connect`). See [Errors of the inner service](Self#errors-of-the-inner-service).
    #[must_use]
    pub fn with_error_type<E: StdError + Send + Sync + 'static>(mut self) -> Self {
        self.view = Some(view::<E>);
        self
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    fn error<E: 'static>(&self, error: &E) -> Report {
        let any: &dyn Any = error;
        let shown: &(dyn StdError + Send + Sync + 'static) = if let Some(boxed) = any.downcast_ref::<BoxError>() {
            &**boxed
        } else if let Some(io) = any.downcast_ref::<std::io::Error>() {
            io
        } else if let Some(shown) = self.view.and_then(|view| view(any)) {
            shown
        } else {
            &Opaque
        };
        self.classifier.report_error(io_kind(shown), shown)
    }
}

impl<B, E: 'static> Classify<http::Response<B>, E> for StatusClassifier {
    #[inline]
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Report {
        match result {
            Ok(response) => self.classifier.report(response.status(), response.headers()),
            Err(error) => self.error(error),
        }
    }
}

impl From<Classifier> for StatusClassifier {
    fn from(classifier: Classifier) -> Self {
        Self::new(classifier)
    }
}

impl fmt::Debug for StatusClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusClassifier")
            .field("classifier", &self.classifier)
            .field("error_type", &self.view.is_some())
            .finish()
    }
}

fn view<E: StdError + Send + Sync + 'static>(any: &dyn Any) -> Option<&(dyn StdError + Send + Sync + 'static)> {
    any.downcast_ref::<E>().map(|e| e as _)
}

/// The kind an `std::io::Error` in the chain gives: a timeout, a failed connection.
fn io_kind(error: &(dyn StdError + 'static)) -> ErrorKind {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            match io.kind() {
                Io::TimedOut => return ErrorKind::Timeout,
                Io::ConnectionRefused | Io::HostUnreachable | Io::NetworkUnreachable | Io::AddrNotAvailable => {
                    return ErrorKind::Connect;
                }
                _ => {}
            }
        }
        next = e.source();
    }
    ErrorKind::Other
}

/// The stand-in for an inner error of a type the classifier cannot show.
#[derive(Debug)]
struct Opaque;

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error of the inner service, of a type not shown (see `StatusClassifier::with_error_type`)")
    }
}

impl StdError for Opaque {}

#[cfg(test)]
mod tests {
    use breakerbox::Outcome;

    use super::*;
    use crate::Attempt;

    #[derive(Debug)]
    struct Mine;

    impl fmt::Display for Mine {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("mine")
        }
    }

    impl StdError for Mine {}

    #[test]
    fn errors_reach_a_custom_classifier_as_themselves_when_they_can() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let c = StatusClassifier::new(Classifier::from_fn(move |a| {
            if let Attempt::Error { kind, error } = a {
                log.lock().unwrap().push((*kind, error.to_string()));
            }
            Outcome::Ignored
        }));
        let r: Result<http::Response<()>, BoxError> = Err(Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        assert_eq!(c.classify(&r).outcome(), Outcome::Ignored);
        let r: Result<http::Response<()>, std::io::Error> = Err(std::io::ErrorKind::ConnectionRefused.into());
        c.classify(&r);
        let r: Result<http::Response<()>, Mine> = Err(Mine);
        c.classify(&r);
        c.clone().with_error_type::<Mine>().classify(&r);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, ErrorKind::Timeout);
        assert_eq!(seen[1].0, ErrorKind::Connect);
        assert_eq!(seen[2].0, ErrorKind::Other);
        assert!(seen[2].1.contains("not shown"), "{}", seen[2].1);
        assert_eq!(seen[3].1, "mine");
    }

    #[test]
    fn presets_count_every_error() {
        let r: Result<http::Response<()>, Mine> = Err(Mine);
        for c in [StatusClassifier::standard(), StatusClassifier::success_2xx(), StatusClassifier::only_200()] {
            assert_eq!(c.classify(&r).outcome(), Outcome::Failure);
        }
    }
}
