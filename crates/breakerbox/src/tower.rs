//! A tower [`Layer`] and [`Service`] that put any service behind a breaker (feature
//! `tower`).
//!
//! Modelled on tower's `load_shed`:
//!
//! - `poll_ready` never fails because the breaker is open (an `Err` from `poll_ready`
//!   means "discard this service" to buffers and balancers). While the breaker is open,
//!   `poll_ready` answers ready at once, without waiting on the inner service, and the
//!   next `call` is rejected.
//! - `call` rejects with an error that downcasts to [`Rejected`]:
//!   `err.downcast_ref::<Rejected>()`, or `err.is::<Rejected>()`.
//! - The response future holds the call's permit: dropping it before it completes
//!   (a timeout, a cancelled request) frees a half-open slot and records nothing.
//! - Clones of the service (and every service a layer makes) share one breaker.
//! - No allocation per call, except the `Box` of a rejection's `BoxError`.
//!
//! The result is classified by a [`Classify`] (default [`OkIsSuccess`]); for HTTP
//! responses, `breakerbox-http` has classifiers that read the status.
//!
//! # Examples
//!
//! ```
//! # futures_executor::block_on(async {
//! use breakerbox::tower::CircuitBreakerLayer;
//! use breakerbox::{Breaker, Policy, Rejected};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! let breaker = Breaker::builder().policy(Policy::consecutive_failures(1)).build().unwrap();
//! let layer = CircuitBreakerLayer::new(breaker.clone());
//! let mut svc = layer.layer(service_fn(|fail: bool| async move {
//!     if fail { Err("upstream down") } else { Ok("ok") }
//! }));
//!
//! assert!(svc.ready().await.unwrap().call(true).await.is_err()); // trips
//! let err = svc.ready().await.unwrap().call(false).await.unwrap_err();
//! assert!(err.is::<Rejected>());
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::classify::{Classify, OkIsSuccess};
use crate::state::kind::Kind;
use crate::{Breaker, OwnedPermit, Rejected};

/// The error type of [`CircuitBreakerService`]: the inner error, or a [`Rejected`],
/// boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps services in a [`CircuitBreakerService`] sharing one breaker.
///
/// # Clone
///
/// Clones share the breaker.
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C = OkIsSuccess> {
    breaker: Breaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer that sends every call through `breaker`, with `Ok` as success and `Err`
    /// as failure.
    pub fn new(breaker: Breaker) -> Self {
        Self { breaker, classifier: OkIsSuccess }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Classifies results with `classifier` instead.
    pub fn with_classifier<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer { breaker: self.breaker, classifier }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
            bypass: false,
        }
    }
}

// ===== impl CircuitBreakerService =====

/// A service behind a breaker. See the [module docs](self).
///
/// # Clone
///
/// Clones share the breaker; each clone has its own readiness.
#[derive(Clone, Debug)]
pub struct CircuitBreakerService<S, C = OkIsSuccess> {
    inner: S,
    breaker: Breaker,
    classifier: C,
    /// `poll_ready` answered ready without polling `inner`, because the breaker was
    /// rejecting: the next `call` must not reach `inner`.
    bypass: bool,
}

impl<S> CircuitBreakerService<S> {
    /// Puts `inner` behind `breaker`.
    pub fn new(inner: S, breaker: Breaker) -> Self {
        Self { inner, breaker, classifier: OkIsSuccess, bypass: false }
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
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

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Gate before the inner service: an open breaker must not wait behind a
        // pending inner service, and must not report an error.
        if self.breaker.is_open() {
            self.bypass = true;
            return Poll::Ready(Ok(()));
        }
        self.bypass = false;
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if std::mem::take(&mut self.bypass) {
            // The inner service was not made ready: reject, whatever the breaker says
            // now (it was open at poll_ready).
            let rejected = match self.breaker.try_acquire_owned() {
                Err(r) => r,
                // It turned half-open in between: give the slot back.
                Ok(permit) => {
                    drop(permit);
                    Rejected::from_packed(self.breaker.inner_name(), Rejected::pack(Kind::Open, Some(0)))
                }
            };
            return ResponseFuture::rejected(rejected, self.classifier.clone());
        }
        match self.breaker.try_acquire_owned() {
            Ok(permit) => ResponseFuture::admitted(self.inner.call(req), permit, self.classifier.clone()),
            Err(r) => ResponseFuture::rejected(r, self.classifier.clone()),
        }
    }
}

// ===== impl ResponseFuture =====

pin_project! {
    /// The future of a [`CircuitBreakerService`] call. Dropping it before it completes
    /// frees the call's permit without recording anything.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Option<F>,
        permit: Option<OwnedPermit>,
        rejected: Option<Rejected>,
        classifier: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    /// A call admitted with `permit`: awaits `inner`, then records what `classifier`
    /// makes of its result. For services that choose the breaker per request (per host).
    pub fn admitted(inner: F, permit: OwnedPermit, classifier: C) -> Self {
        Self { inner: Some(inner), permit: Some(permit), rejected: None, classifier }
    }

    /// A call that no breaker guards (for example a request a per-host service cannot
    /// key): awaits `inner` and records nothing.
    pub fn unguarded(inner: F, classifier: C) -> Self {
        Self { inner: Some(inner), permit: None, rejected: None, classifier }
    }

    /// A call the breaker rejected: yields the rejection, boxed, at once.
    pub fn rejected(rejected: Rejected, classifier: C) -> Self {
        Self { inner: None, permit: None, rejected: Some(rejected), classifier }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(fut) => {
                let result = std::task::ready!(fut.poll(cx));
                if let Some(permit) = this.permit.take() {
                    permit.record(this.classifier.classify(&result));
                }
                Poll::Ready(result.map_err(Into::into))
            }
            None => match this.rejected.take() {
                Some(r) => Poll::Ready(Err(Box::new(r))),
                // Polled again after yielding its rejection.
                None => Poll::Pending,
            },
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.permit)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}
