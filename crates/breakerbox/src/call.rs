//! The future of [`Breaker::call_async`] and [`Breaker::call_async_with`]: written by
//! hand, because an `async fn` stores the awaited future twice.
//!
//! An `async fn` keeps its argument `fut` in the state machine, and `fut.await` moves
//! it into a second slot of its own: the future was twice the size of the caller's
//! (2,088 bytes around a 1,025-byte one) and was copied on its first poll. This one
//! holds the caller's future once, pinned where the caller put it, beside the stage of
//! the call (24 bytes plus a tag) and the classifier.
//!
//! It keeps the `async fn`'s behaviour, in order:
//!
//! - the permit is asked for on the first poll, not when the future is made; a
//!   rejection is the first poll's answer, and drops the caller's future then;
//! - while the caller's future is polled, the permit is a local of `poll`, so a panic
//!   there drops it during the unwind (recorded as a failure, see `Engine::abandon`);
//! - a result drops the caller's future, then classifies the result and records it;
//! - dropped before completing, the future drops the caller's future, then the permit
//!   (the cancellation rule of [`BreakerBuilder::cancel_counts_after`]);
//! - polled again after completing, or after a panic, it panics, as an `async fn` does.
//!
//! [`Breaker::call_async`]: crate::Breaker::call_async
//! [`Breaker::call_async_with`]: crate::Breaker::call_async_with
//! [`BreakerBuilder::cancel_counts_after`]: crate::BreakerBuilder::cancel_counts_after

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::{Breaker, Error, Permit, Report};

pin_project! {
    /// A call through a breaker: the caller's future, and what the call has got to.
    pub(crate) struct Call<'a, F, C> {
        // The caller's future comes first: dropped mid-flight, it goes before the
        // permit, as the `async fn`'s awaited future did.
        #[pin]
        fut: Fut<F, C>,
        stage: Stage<'a>,
    }
}

pin_project! {
    /// The caller's future and the classifier, until the call completes. The stage is
    /// kept apart: completing moves out only the classifier (moving the stage too read
    /// back 32 bytes just written in smaller pieces, a store-forwarding stall that cost
    /// 4 ns a call).
    #[project = FutProj]
    #[project_replace = FutOwn]
    enum Fut<F, C> {
        Running {
            #[pin]
            fut: F,
            classify: C,
        },
        Done,
    }
}

/// Where a running call is.
enum Stage<'a> {
    /// Not polled yet: no permit asked for.
    Unpolled(&'a Breaker),
    /// Admitted, and the caller's future answered `Pending`.
    Admitted(Permit<'a>),
    /// The caller's future is being polled (the permit is in `poll`'s frame), it
    /// panicked, or the call is over.
    Polling,
}

impl<'a, F, C> Call<'a, F, C> {
    #[inline]
    pub(crate) fn new(breaker: &'a Breaker, classify: C, fut: F) -> Self {
        Self { fut: Fut::Running { fut, classify }, stage: Stage::Unpolled(breaker) }
    }
}

impl<F, C, T, E, R> Future for Call<'_, F, C>
where
    F: Future<Output = Result<T, E>>,
    C: FnOnce(&Result<T, E>) -> R,
    R: Into<Report>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let FutProj::Running { fut, .. } = this.fut.as_mut().project() else {
            panic!("`call_async` future polled after completion");
        };
        let permit = match mem::replace(this.stage, Stage::Polling) {
            Stage::Admitted(permit) => permit,
            Stage::Unpolled(breaker) => match breaker.try_acquire() {
                Ok(permit) => permit,
                Err(rejected) => {
                    // Drops the caller's future and the classifier.
                    this.fut.project_replace(Fut::Done);
                    return Poll::Ready(Err(Error::Rejected(rejected)));
                }
            },
            Stage::Polling => panic!("`call_async` future polled after a panic"),
        };
        let result = match fut.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                *this.stage = Stage::Admitted(permit);
                return Poll::Pending;
            }
        };
        // Drops the caller's future and hands back the classifier.
        match this.fut.project_replace(Fut::Done) {
            FutOwn::Running { classify, .. } => permit.record(classify(&result)),
            // Running a moment ago, and only this function changes it.
            FutOwn::Done => drop(permit),
        }
        Poll::Ready(result.map_err(Error::Inner))
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use std::future::Future;
    use std::pin::{Pin, pin};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Waker};

    use crate::{Breaker, Error, Policy};

    fn breaker() -> Breaker {
        Breaker::builder().policy(Policy::consecutive_failures(100)).cancel_counts_after(None).build().unwrap()
    }

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    /// Ready with `Ok(1)` when polled; notes that it was dropped, and whether the
    /// breaker had recorded anything by then.
    struct Tracked {
        breaker: Breaker,
        dropped: Arc<AtomicBool>,
        recorded_before_drop: Arc<AtomicBool>,
    }

    impl Future for Tracked {
        type Output = Result<u32, ()>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(Ok(1))
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            let m = self.breaker.metrics();
            self.recorded_before_drop.store(m.successes + m.failures > 0, Ordering::Relaxed);
            self.dropped.store(true, Ordering::Relaxed);
        }
    }

    struct Boom;

    impl Future for Boom {
        type Output = Result<u32, ()>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            panic!("the caller's future panics")
        }
    }

    #[test]
    fn the_future_holds_the_callers_future_once() {
        let b = breaker();
        let buf = [7u8; 1024];
        let inner = async move { Ok::<_, ()>(std::hint::black_box(&buf)[0]) };
        let inner_size = std::mem::size_of_val(&inner);
        let call = b.call_async(inner);
        // The stage (a permit and its tag) and the tag of the future slot, not a second copy.
        assert!(std::mem::size_of_val(&call) <= inner_size + 40, "{} for {inner_size}", std::mem::size_of_val(&call));
    }

    #[test]
    fn the_permit_is_asked_for_on_the_first_poll() {
        let b = Breaker::builder().half_open_probes(1).build().unwrap();
        b.force_open();
        let call = b.call_async(async { Ok::<_, ()>(1) });
        b.reset();
        // Made while forced open, polled once closed: admitted.
        assert_eq!(futures_executor::block_on(call), Ok(1));
        assert_eq!(b.metrics().successes, 1);
    }

    #[test]
    fn a_result_drops_the_callers_future_before_it_is_recorded() {
        let b = breaker();
        let dropped = Arc::new(AtomicBool::new(false));
        let recorded_before_drop = Arc::new(AtomicBool::new(true));
        let inner = Tracked {
            breaker: b.clone(),
            dropped: dropped.clone(),
            recorded_before_drop: recorded_before_drop.clone(),
        };
        let mut call = pin!(b.call_async(inner));
        assert_eq!(call.as_mut().poll(&mut cx()), Poll::Ready(Ok(1)));
        assert!(dropped.load(Ordering::Relaxed), "dropped when the result came, not with the future");
        assert!(!recorded_before_drop.load(Ordering::Relaxed), "dropped first, then recorded");
        assert_eq!(b.metrics().successes, 1);
    }

    #[test]
    fn a_rejection_drops_the_callers_future_at_once() {
        let b = breaker();
        b.force_open();
        let dropped = Arc::new(AtomicBool::new(false));
        let inner = Tracked {
            breaker: b.clone(),
            dropped: dropped.clone(),
            recorded_before_drop: Arc::new(AtomicBool::new(false)),
        };
        let mut call = pin!(b.call_async(inner));
        assert!(matches!(call.as_mut().poll(&mut cx()), Poll::Ready(Err(Error::Rejected(_)))));
        assert!(dropped.load(Ordering::Relaxed));
        let m = b.metrics();
        assert_eq!((m.rejected, m.failures), (1, 0));
    }

    #[test]
    fn a_panic_while_polling_is_a_failure_recorded_during_the_unwind() {
        let b = breaker();
        // The future outlives the panic (an executor that catches it): the failure is
        // recorded by the unwind, not when the future is dropped later.
        let mut call = Box::pin(b.call_async(Boom));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.as_mut().poll(&mut cx())));
        assert!(r.is_err(), "the panic propagates");
        assert_eq!(b.metrics().failures, 1);
        // Polled again: it panics, as an `async fn` does, and records nothing more.
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.as_mut().poll(&mut cx())));
        assert!(again.is_err());
        drop(call);
        let m = b.metrics();
        assert_eq!((m.failures, m.successes, m.probes_in_flight), (1, 0, 0));
    }

    #[test]
    fn polled_after_completion_it_panics_and_records_nothing_more() {
        let b = breaker();
        let mut call = pin!(b.call_async(async { Ok::<_, ()>(1) }));
        assert_eq!(call.as_mut().poll(&mut cx()), Poll::Ready(Ok(1)));
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.as_mut().poll(&mut cx())));
        assert!(again.is_err());
        let m = b.metrics();
        assert_eq!((m.successes, m.failures), (1, 0));
    }
}
