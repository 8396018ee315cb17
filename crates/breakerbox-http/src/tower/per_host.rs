//! `PerHostLayer`: one breaker per host around a tower HTTP client.

mod last_host;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBox, Classify};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{BoxError, StatusClassifier};
use crate::breakers::{BreakerRef, Breakers};
use crate::host::Host;
use crate::timeout::{DEFAULT_TIMEOUT, Deadline, Timed};
use last_host::LastHost;

/// Wraps services in a [`PerHostService`]: one breaker per scheme, host and port of the
/// request URI, from a [`BreakerBox<String>`]. See the [module docs](super).
///
/// # Examples
///
/// ```
/// use breakerbox::{Breaker, BreakerBox, Policy};
/// use breakerbox_http::tower::{PerHostLayer, StatusClassifier};
///
/// let hosts = BreakerBox::builder(Breaker::builder().name("api").policy(Policy::consecutive_failures(3)))
///     .max_breakers(100)
///     .build()?;
/// let layer = PerHostLayer::new(hosts)
///     .with_classifier(StatusClassifier::success_2xx())
///     .with_timeout(std::time::Duration::from_secs(5));
/// # let _ = layer;
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// # Default
///
/// The crate's production defaults (see the [crate docs](crate#defaults)):
/// [`Classifier::standard`](crate::Classifier::standard), and a timeout of 30 s per
/// call, counted as a failure (tokio's timer: the timer starts only for a call that is
/// not ready at once, and needs a tokio runtime; [`without_timeout`](Self::without_timeout)
/// on another runtime).
///
/// # Clone
///
/// Clones share the breakers.
#[derive(Clone, Debug)]
pub struct PerHostLayer<C = StatusClassifier> {
    hosts: Breakers<Infallible>,
    classifier: C,
    timeout: Option<Duration>,
}

impl PerHostLayer {
    /// A layer that keys requests into `hosts`, classifying with
    /// [`Classifier::standard`](crate::Classifier::standard), within the default
    /// timeout (30 s).
    pub fn new(hosts: BreakerBox<String>) -> Self {
        Self {
            hosts: Breakers::PerHost(hosts),
            classifier: StatusClassifier::standard(),
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }
}

impl<C> PerHostLayer<C> {
    /// Classifies results with `classifier` instead: another [`StatusClassifier`], or
    /// any [`Classify`] of the inner service's result.
    pub fn with_classifier<C2>(self, classifier: C2) -> PerHostLayer<C2> {
        PerHostLayer { hosts: self.hosts, classifier, timeout: self.timeout }
    }

    /// Bounds each call by `timeout`: a call still running then ends in an error that
    /// downcasts to [`TimedOut`](crate::TimedOut), counted as a failure of its host.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No timeout of the layer's own (put one inside it, or rely on the client's).
    #[must_use]
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The timeout of each call.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The family of breakers, keyed `"{scheme}://{host}:{port}"`.
    pub fn hosts(&self) -> &BreakerBox<String> {
        self.hosts.family()
    }
}

impl<S, C: Clone> Layer<S> for PerHostLayer<C> {
    type Service = PerHostService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        PerHostService {
            inner,
            hosts: self.hosts.clone(),
            classifier: self.classifier.clone(),
            timeout: self.timeout,
            last: LastHost::default(),
        }
    }
}

// ===== impl PerHostService =====

/// A service behind one breaker per host. See the [module docs](super).
///
/// A request is keyed by its URI's scheme (`http` or `https`), host and port (the
/// scheme's default when the URI has none), in lower case, as
/// [`HttpBreaker`](crate::HttpBreaker) keys its hosts. A request whose URI has no such
/// key (a path alone, another scheme) goes to the inner service unguarded and
/// uncounted: it names no host to protect, and clients refuse such requests themselves
/// (hyper-util's answers "client requires absolute-form URIs").
///
/// # Clone
///
/// Clones share the breakers; each clone has its own inner service.
#[derive(Clone, Debug)]
pub struct PerHostService<S, C = StatusClassifier> {
    inner: S,
    hosts: Breakers<Infallible>,
    classifier: C,
    timeout: Option<Duration>,
    /// The last host called, with its breaker (`last_host.rs`).
    last: LastHost,
}

impl<S> PerHostService<S> {
    /// Puts `inner` behind `hosts`, as [`PerHostLayer::new`] does.
    pub fn new(inner: S, hosts: BreakerBox<String>) -> Self {
        PerHostLayer::new(hosts).layer(inner)
    }
}

impl<S, C> PerHostService<S, C> {
    /// The family of breakers.
    pub fn hosts(&self) -> &BreakerBox<String> {
        self.hosts.family()
    }

    /// The breaker that guards requests to `uri` (created on first use); `None` when
    /// `uri` names no `http` or `https` host.
    pub fn breaker_for(&self, uri: &http::Uri) -> Option<Breaker> {
        self.hosts.guard(Host::of_uri(uri).ok()).map(BreakerRef::into_owned)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C> PerHostService<S, C> {
    /// A permit from the breaker of `uri`'s host: the one remembered if `uri` goes to
    /// the last host, else the family's (remembered for next time when
    /// [`LastHost::wants`] it); `None` when `uri` names no host.
    #[inline]
    fn admit(&mut self, uri: &http::Uri) -> Option<Result<breakerbox::OwnedPermit, breakerbox::Rejected>> {
        let family = self.hosts.family();
        if let Some(breaker) = self.last.breaker(uri, family) {
            return Some(breaker.try_acquire_owned());
        }
        let host = Host::of_uri(uri).ok();
        if host.is_some() && self.last.wants() {
            // Read before the lookup: a departure after it is seen at the next request.
            let departures = family.departures();
            let breaker = self.hosts.guard(host).map(BreakerRef::into_owned)?;
            let permit = breaker.try_acquire_owned();
            self.last.remember(uri, breaker, departures);
            return Some(permit);
        }
        self.hosts.try_acquire_owned(host)
    }
}

impl<S, C, B> Service<http::Request<B>> for PerHostService<S, C>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = PerHostFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The host is known only in `call`: readiness is the inner service's, and an
        // open breaker never shows here. A rejected call leaves the inner service's
        // readiness in place for the next one.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        use breakerbox::tower::ResponseFuture;
        let classifier = Timed(self.classifier.clone());
        let timer: Timer = tokio::time::sleep;
        let admission = self.admit(request.uri());
        let inner = match admission {
            None => ResponseFuture::unguarded(Deadline::new(self.inner.call(request), None, timer), classifier),
            Some(Ok(permit)) => {
                let call = Deadline::new(self.inner.call(request), self.timeout, timer);
                ResponseFuture::admitted(call, permit, classifier)
            }
            Some(Err(rejected)) => ResponseFuture::rejected(rejected, classifier),
        };
        PerHostFuture { inner }
    }
}

// ===== PerHostFuture =====

type Timer = fn(Duration) -> tokio::time::Sleep;

pin_project! {
    /// The future of a [`PerHostService`] call: the core's response future around the
    /// call and its timeout. Dropping it before it completes releases the call's
    /// permit as the core's cancellation rule says.
    pub struct PerHostFuture<F, C> {
        #[pin]
        inner: breakerbox::tower::ResponseFuture<Deadline<F, Timer, tokio::time::Sleep>, Timed<C>>,
    }
}

impl<F, C, T, E> Future for PerHostFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Rejections and timeouts come boxed from the core's future; the call's own
        // error is boxed here.
        Poll::Ready(match std::task::ready!(self.project().inner.poll(cx)) {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(error.into()),
            Err(error) => Err(error),
        })
    }
}

impl<F, C> std::fmt::Debug for PerHostFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerHostFuture").field("inner", &self.inner).finish()
    }
}
