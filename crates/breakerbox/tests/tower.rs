//! The tower layer, around real `service_fn` services, on a `ManualClock`.
#![cfg(feature = "tower")]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use breakerbox::tower::{CircuitBreakerLayer, CircuitBreakerService};
use breakerbox::{Breaker, ManualClock, OpenWait, Outcome, Policy, Rejected, State};
use tower::{Layer, Service, ServiceExt, service_fn};

fn breaker(clock: &ManualClock) -> Breaker {
    Breaker::builder()
        .name("svc")
        .policy(Policy::consecutive_failures(2))
        .open_wait(OpenWait::fixed(Duration::from_secs(5)))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// A service that fails while `failing` is set, and counts the calls that reach it.
fn flaky(
    hits: Arc<AtomicUsize>,
    failing: Arc<AtomicUsize>,
) -> impl Service<u32, Response = u32, Error = std::io::Error> + Clone {
    service_fn(move |x: u32| {
        let hits = hits.clone();
        let failing = failing.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            if failing.load(Ordering::SeqCst) == 1 { Err(std::io::Error::other("down")) } else { Ok(x) }
        }
    })
}

#[tokio::test]
async fn opens_rejects_probes_and_recovers() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let (hits, failing) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(1)));
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(flaky(hits.clone(), failing.clone()));

    for _ in 0..2 {
        let err = svc.ready().await.unwrap().call(1).await.unwrap_err();
        assert!(!err.is::<Rejected>(), "the inner error comes through: {err}");
    }
    assert_eq!(b.state(), State::Open);
    for _ in 0..5 {
        let err = svc.ready().await.expect("poll_ready never errs while open").call(1).await.unwrap_err();
        let rejected = err.downcast_ref::<Rejected>().expect("a rejection downcasts");
        assert_eq!(rejected.name(), "svc");
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2, "rejected calls never reached the service");

    clock.advance(Duration::from_secs(5));
    failing.store(0, Ordering::SeqCst);
    assert_eq!(svc.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

/// An inner service that is never ready.
#[derive(Clone)]
struct NeverReady;

impl Service<()> for NeverReady {
    type Response = ();
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<(), std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Pending
    }

    fn call(&mut self, _: ()) -> Self::Future {
        panic!("called without being ready")
    }
}

#[test]
fn an_open_breaker_is_ready_at_once_even_behind_a_pending_service() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut svc = CircuitBreakerService::new(NeverReady, b.clone());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_pending(), "closed: the inner readiness counts");
    b.force_open();
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let mut fut = pin!(svc.call(()));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.is::<Rejected>()),
        _ => panic!("expected a rejection"),
    }
    // Half-open between poll_ready and call: the unready inner service is still never called.
    b.reset();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    clock.advance(Duration::from_secs(5));
    let mut fut = pin!(svc.call(()));
    assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
    assert_eq!(b.metrics().probes_in_flight, 0, "the probe slot was given back");
}

#[tokio::test]
async fn a_dropped_response_future_frees_its_permit() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_secs(5));
    let mut svc = CircuitBreakerLayer::new(b.clone())
        .layer(service_fn(|_: ()| std::future::pending::<Result<(), std::io::Error>>()));
    {
        let mut fut = pin!(svc.ready().await.unwrap().call(()));
        assert!(fut.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        assert_eq!(b.metrics().probes_in_flight, 1);
        let shown = format!("{fut:?}");
        assert!(
            shown.starts_with("ResponseFuture { permit: Some(OwnedPermit { breaker: \"svc\", admitted_in: HalfOpen })"),
            "{shown}"
        );
    } // dropped, as a timeout or a cancelled request would
    assert_eq!(b.metrics().probes_in_flight, 0);
    assert_eq!((b.metrics().successes, b.metrics().failures), (0, 2), "nothing recorded");
    assert!(b.is_half_open());
}

#[tokio::test]
async fn clones_and_layered_services_share_one_breaker() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let layer = CircuitBreakerLayer::new(b.clone());
    let (hits, failing) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(1)));
    let mut one = layer.layer(flaky(hits.clone(), failing.clone()));
    let mut two = one.clone();
    let mut three = layer.layer(flaky(hits.clone(), failing.clone()));
    let _ = one.ready().await.unwrap().call(1).await;
    let _ = two.ready().await.unwrap().call(1).await;
    assert!(b.is_open());
    assert!(three.ready().await.unwrap().call(1).await.unwrap_err().is::<Rejected>());
    assert!(layer.breaker().same_as(three.breaker()));
}

#[tokio::test]
async fn a_classifier_can_fail_an_ok_response() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let layer = CircuitBreakerLayer::new(b.clone()).with_classifier(|r: &Result<u32, std::io::Error>| {
        if matches!(r, Ok(500..)) { Outcome::Failure } else { Outcome::Success }
    });
    let mut svc = layer.layer(service_fn(|code: u32| async move { Ok::<_, std::io::Error>(code) }));
    assert_eq!(svc.ready().await.unwrap().call(503).await.unwrap(), 503);
    assert_eq!(svc.ready().await.unwrap().call(500).await.unwrap(), 500);
    assert!(b.is_open());
    assert_eq!(svc.get_ref().clone().ready().await.unwrap().call(200).await.unwrap(), 200, "inner reachable");
}

#[test]
fn layer_service_and_future_are_send_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}
    let layer = CircuitBreakerLayer::new(Breaker::new());
    assert_send_sync(&layer);
    let mut svc = layer.layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>(()) }));
    assert_send_sync(&svc);
    let fut = svc.call(());
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&fut);
}
