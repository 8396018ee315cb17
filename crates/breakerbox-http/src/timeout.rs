//! The breaker's own timeout, one piece for every way in: [`Deadline`] bounds an
//! attempt, and its expiry is a [`TimedOut`] that the caller records as a failure.
//!
//! # Why the timeout sits inside the breaker
//!
//! An attempt that never ends tells the breaker nothing. A deadline *outside* the
//! breaker (`tokio::time::timeout(d, breaker.do_request(..))`) drops the breaker's
//! future, and a dropped permit counts only as the core's cancellation rule says (a
//! permit dropped after being in flight for the core's `cancel_counts_after` counts as
//! a failure; one dropped sooner counts nothing). A deadline *inside* (this one) always
//! ends the attempt with a recorded failure of kind timeout, whatever its length, and
//! hands the caller [`HttpError::TimedOut`](crate::HttpError::TimedOut) with how long
//! it waited.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::TimedOut;

/// The default timeout of every production entry point ([`HttpBreaker::builder`](crate::HttpBreaker::builder),
/// `tower::PerHostLayer`, `BreakerMiddleware`): 30 s.
///
/// Why 30 s: reqwest and hyper have no timeout at all by default, so a hung upstream
/// would hold a request (and, half-open, the breaker's only probe) forever. 30 s is
/// long past any answer a healthy HTTP API gives, so it cuts only what is hung, and it
/// equals the core's default open wait: a hung service trips the breaker within
/// `threshold × 30 s`, and a hung probe reopens it after one timeout. Services with
/// slow answers (exports, uploads) set their own.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pin_project! {
    /// `inner`, unless `after` passes first. The timer is started by `start` only if
    /// `inner` is not ready on its first poll, so a client whose futures are ready at
    /// once (the blocking breaker's) never starts one, and an attempt without a
    /// timeout costs nothing.
    #[derive(Debug)]
    pub(crate) struct Deadline<F, M, S> {
        #[pin]
        inner: F,
        #[pin]
        timer: Option<S>,
        start: Option<M>,
        after: Duration,
    }
}

impl<F, M, S> Deadline<F, M, S>
where
    M: FnOnce(Duration) -> S,
{
    /// `inner` within `after` (no limit when `None`), timed by the future `start` makes.
    pub(crate) fn new(inner: F, after: Option<Duration>, start: M) -> Self {
        Self { inner, timer: None, start: after.map(|_| start), after: after.unwrap_or_default() }
    }
}

impl<F, M, S> Future for Deadline<F, M, S>
where
    F: Future,
    M: FnOnce(Duration) -> S,
    S: Future<Output = ()>,
{
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if let Some(start) = this.start.take() {
            this.timer.set(Some(start(*this.after)));
        }
        match this.timer.as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| Err(TimedOut::new(*this.after))),
            None => Poll::Pending,
        }
    }
}

/// A classifier of attempts under a [`Deadline`]: the attempt's own result goes to `C`;
/// an expired deadline is a failure.
#[cfg(feature = "tower")]
#[derive(Clone, Debug)]
pub(crate) struct Timed<C>(pub(crate) C);

#[cfg(feature = "tower")]
impl<C, T, E> breakerbox::Classify<Result<T, E>, TimedOut> for Timed<C>
where
    C: breakerbox::Classify<T, E>,
{
    fn classify(&self, result: &Result<Result<T, E>, TimedOut>) -> breakerbox::Report {
        match result {
            Ok(result) => self.0.classify(result),
            // A timeout is an overload for adaptive throttling.
            Err(_) => breakerbox::Report::overloaded(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_future_never_starts_the_timer() {
        let deadline =
            Deadline::new(std::future::ready(7), Some(Duration::from_secs(1)), |_| -> std::future::Pending<()> {
                panic!("no timer for a ready future")
            });
        assert_eq!(crate::blocking::block_on(deadline), Ok(7));
    }

    #[test]
    fn a_pending_future_times_out_with_its_limit() {
        let timer = |_| std::future::ready(());
        let deadline = Deadline::new(std::future::pending::<()>(), Some(Duration::from_millis(5)), timer);
        assert_eq!(crate::blocking::block_on(deadline), Err(TimedOut::new(Duration::from_millis(5))));
    }
}
