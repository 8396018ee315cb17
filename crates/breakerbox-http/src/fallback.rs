//! The fallback: what to give back instead of a failure or a rejection (the original's
//! `_empty_response`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use breakerbox::Rejected;

use crate::{BoxFuture, HttpError, TimedOut};

/// What went wrong, handed to the fallback.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure<R, E> {
    /// The server answered with a status the classifier counts as a failure (after any
    /// retries).
    Response(R),
    /// The client failed in transport (after any retries).
    Transport(E),
    /// The breaker's own timeout expired (after any retries).
    TimedOut(TimedOut),
    /// The breaker refused the request; it was not sent.
    Rejected(Rejected),
}

impl<R, E> Failure<R, E> {
    /// What the breaker would have given back without a fallback.
    ///
    /// # Errors
    ///
    /// [`HttpError::Transport`] for a transport error, [`HttpError::TimedOut`] for a
    /// timeout, [`HttpError::CircuitOpen`] for a rejection.
    pub fn into_result(self) -> Result<R, HttpError<E>> {
        match self {
            Self::Response(r) => Ok(r),
            Self::Transport(e) => Err(HttpError::Transport(e)),
            Self::TimedOut(t) => Err(HttpError::TimedOut(t)),
            Self::Rejected(r) => Err(HttpError::CircuitOpen(r)),
        }
    }
}

/// Which outcomes go to the fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FallbackOn {
    /// Failed requests: failing statuses and transport errors.
    Failures,
    /// Rejections by an open breaker.
    Rejections,
    /// Both.
    Both,
}

impl FallbackOn {
    pub(crate) fn failures(self) -> bool {
        matches!(self, Self::Failures | Self::Both)
    }

    pub(crate) fn rejections(self) -> bool {
        matches!(self, Self::Rejections | Self::Both)
    }
}

type FallbackFn<R, E> = dyn Fn(Failure<R, E>) -> BoxFuture<'static, Result<R, HttpError<E>>> + Send + Sync;

/// A fallback, sync or async: every fallback is kept as an async one (a sync one's
/// answer is a ready future, boxed only when the fallback runs).
pub(crate) struct Fallback<R, E> {
    pub(crate) on: FallbackOn,
    f: Arc<FallbackFn<R, E>>,
}

impl<R: Send + 'static, E: Send + 'static> Fallback<R, E> {
    pub(crate) fn new<F, Fut>(on: FallbackOn, f: F) -> Self
    where
        F: Fn(Failure<R, E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HttpError<E>>> + Send + 'static,
    {
        Self { on, f: Arc::new(move |failure| Box::pin(f(failure))) }
    }

    /// What the fallback gives back for `failure`.
    pub(crate) fn call(&self, failure: Failure<R, E>) -> BoxFuture<'static, Result<R, HttpError<E>>> {
        (self.f)(failure)
    }
}

impl<R, E> Clone for Fallback<R, E> {
    fn clone(&self) -> Self {
        Self { on: self.on, f: Arc::clone(&self.f) }
    }
}

impl<R, E> fmt::Debug for Fallback<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").field("on", &self.on).finish_non_exhaustive()
    }
}
