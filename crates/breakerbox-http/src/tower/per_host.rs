//! `PerHostLayer`: one breaker per host around a tower HTTP client.

use std::convert::Infallible;
use std::task::{Context, Poll};

use breakerbox::{Breaker, BreakerBox, Classify};
use tower_layer::Layer;
use tower_service::Service;

use super::{BoxError, StatusClassifier};
use crate::breakers::{BreakerRef, Breakers};
use crate::host::Host;

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
/// let layer = PerHostLayer::new(hosts).with_classifier(StatusClassifier::success_2xx());
/// # let _ = layer;
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// # Clone
///
/// Clones share the breakers.
#[derive(Clone, Debug)]
pub struct PerHostLayer<C = StatusClassifier> {
    hosts: Breakers<Infallible>,
    classifier: C,
}

impl PerHostLayer {
    /// A layer that keys requests into `hosts`, classifying with
    /// [`Classifier::standard`](crate::Classifier::standard).
    pub fn new(hosts: BreakerBox<String>) -> Self {
        Self { hosts: Breakers::PerHost(hosts), classifier: StatusClassifier::standard() }
    }
}

impl<C> PerHostLayer<C> {
    /// Classifies results with `classifier` instead: another [`StatusClassifier`], or
    /// any [`Classify`] of the inner service's result.
    pub fn with_classifier<C2>(self, classifier: C2) -> PerHostLayer<C2> {
        PerHostLayer { hosts: self.hosts, classifier }
    }

    /// The family of breakers, keyed `"{scheme}://{host}:{port}"`.
    pub fn hosts(&self) -> &BreakerBox<String> {
        self.hosts.family()
    }
}

impl<S, C: Clone> Layer<S> for PerHostLayer<C> {
    type Service = PerHostService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        PerHostService { inner, hosts: self.hosts.clone(), classifier: self.classifier.clone() }
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
}

impl<S> PerHostService<S> {
    /// Puts `inner` behind `hosts`, classifying with
    /// [`Classifier::standard`](crate::Classifier::standard).
    pub fn new(inner: S, hosts: BreakerBox<String>) -> Self {
        Self { inner, hosts: Breakers::PerHost(hosts), classifier: StatusClassifier::standard() }
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
        let classifier = self.classifier.clone();
        let Some(admission) = self.hosts.try_acquire_owned(Host::of_uri(request.uri()).ok()) else {
            return PerHostFuture::unguarded(self.inner.call(request), classifier);
        };
        match admission {
            Ok(permit) => PerHostFuture::admitted(self.inner.call(request), permit, classifier),
            Err(rejected) => PerHostFuture::rejected(rejected, classifier),
        }
    }
}

// ===== PerHostFuture =====

/// The future of a [`PerHostService`] call: the core's response future. Dropping it
/// before it completes frees the call's permit without recording anything.
pub type PerHostFuture<F, C> = breakerbox::tower::ResponseFuture<F, C>;
