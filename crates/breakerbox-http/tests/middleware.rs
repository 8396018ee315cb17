//! `BreakerMiddleware` in a reqwest-middleware chain beside reqwest-retry and
//! reqwest-tracing, against a real HTTP server on 127.0.0.1.
//!
//! The chain is the documented one: tracing outermost, then the retries, then the
//! breaker, so that the breaker sees every attempt and its rejection ends the retries.
#![cfg(feature = "reqwest-middleware")]

#[path = "support/adapter.rs"]
mod adapter;
#[path = "support/server.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use adapter::{WAIT, in_flight, template};
use breakerbox::{Breaker, ManualClock, Rejected, State};
use breakerbox_http::reqwest_middleware::rejection;
use breakerbox_http::{BreakerMiddleware, Classifier};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{RetryError, RetryTransientMiddleware};
use reqwest_tracing::TracingMiddleware;
use support::{Reply, Server};

/// Tracing, then `retries` retries `backoff` apart, then the breaker.
fn chain(breaker: BreakerMiddleware, retries: u32, backoff: Duration) -> ClientWithMiddleware {
    let policy = ExponentialBackoff::builder().retry_bounds(backoff, backoff).build_with_max_retries(retries);
    ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(breaker)
        .build()
}

fn quick(breaker: BreakerMiddleware, retries: u32) -> ClientWithMiddleware {
    chain(breaker, retries, Duration::from_millis(1))
}

fn breaker_of(middleware: &BreakerMiddleware, server: &Server) -> Breaker {
    middleware.breaker_for(&server.url("/").parse().unwrap()).unwrap()
}

fn assert_rejected(result: Result<reqwest::Response, Error>, state: State) -> Rejected {
    let err = result.expect_err("a rejection");
    let rejected = rejection(&err).unwrap_or_else(|| panic!("not a rejection: {err:?}"));
    assert_eq!(rejected.state(), state);
    rejected.clone()
}

#[tokio::test]
async fn the_breaker_sees_every_attempt() {
    let server = Server::start();
    server.answer(503);
    let clock = ManualClock::new();
    let middleware = BreakerMiddleware::new(template(10, &clock)).unwrap();
    let client = quick(middleware.clone(), 3);

    // One logical request, four attempts: each one counted.
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 503, "reqwest-retry gives back the last response");
    assert_eq!(server.hits(), 4);
    let breaker = breaker_of(&middleware, &server);
    assert_eq!((breaker.metrics().failures, breaker.metrics().consecutive_failures), (4, 4));

    server.answer(200);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
    assert_eq!(server.hits(), 5);
    assert_eq!(breaker.metrics().successes, 1);
}

#[tokio::test]
async fn a_rejection_stops_the_retries_at_once() {
    let server = Server::start();
    server.answer(503);
    let middleware = BreakerMiddleware::new(template(2, &ManualClock::new())).unwrap();
    // Five retries 100 ms apart: reqwest-retry would sleep and try again five times if it
    // did not stop at the rejection.
    let client = chain(middleware.clone(), 5, Duration::from_millis(100));

    let err = client.get(server.url("/")).send().await.unwrap_err();
    assert_eq!(server.hits(), 2, "the second failure opened the breaker; the third attempt was refused");
    // reqwest-retry treats the middleware error as fatal: it stopped after 2 retries (the
    // rejected third attempt), not 5, and wrapped the error; the rejection is still
    // found, through the source chain.
    let Error::Middleware(e) = &err else { panic!("{err:?}") };
    assert!(matches!(e.downcast_ref::<RetryError>(), Some(RetryError::WithRetries { retries: 2, .. })), "{e:?}");
    let rejected = rejection(&err).expect("the rejection is reachable");
    assert_eq!(rejected.name(), format!("api/{}", server.origin()));
    assert_eq!(rejected.retry_after(), Some(WAIT));

    // The next request is refused on its first attempt: no retry, no hit.
    let start = Instant::now();
    let err = client.get(server.url("/")).send().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(100), "no backoff slept: {:?}", start.elapsed());
    assert_eq!(server.hits(), 2);
    let Error::Middleware(e) = &err else { panic!("{err:?}") };
    assert!(matches!(e.downcast_ref::<RetryError>(), Some(RetryError::Error(_))), "no retry: {e:?}");
    let rejected = rejection(&err).expect("the rejection is reachable");
    assert_eq!(err.to_string(), rejected.to_string(), "the message is the rejection's");
    assert_eq!(breaker_of(&middleware, &server).metrics().rejected, 2);
}

#[tokio::test]
async fn without_retries_the_middleware_error_downcasts_directly() {
    let server = Server::start();
    let breaker = template(1, &ManualClock::new()).build().unwrap();
    breaker.force_open();
    let client = ClientBuilder::new(reqwest::Client::new()).with(BreakerMiddleware::single(breaker)).build();
    let err = client.get(server.url("/")).send().await.unwrap_err();
    assert!(err.is_middleware());
    let Error::Middleware(e) = &err else { panic!("{err:?}") };
    let rejected = e.downcast_ref::<Rejected>().expect("downcasts to Rejected");
    assert_eq!(rejected.state(), State::ForcedOpen);
    assert_eq!(err.to_string(), "circuit breaker `api` is forced open");
    assert_eq!(rejection(&err), Some(rejected));
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn half_open_probe_then_recovery() {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let middleware = BreakerMiddleware::new(template(2, &clock)).unwrap();
    let client = quick(middleware.clone(), 0);
    for _ in 0..2 {
        assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 500);
    }
    assert_rejected(client.get(server.url("/")).send().await, State::Open);

    // A failed probe opens it again.
    clock.advance(WAIT);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 500);
    assert_rejected(client.get(server.url("/")).send().await, State::Open);
    // A successful probe closes it.
    clock.advance(WAIT);
    server.answer(200);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
    let breaker = breaker_of(&middleware, &server);
    assert!(breaker.is_closed());
    assert_eq!(server.hits(), 4);
    assert_eq!(breaker.metrics().opens, 2);
}

#[tokio::test]
async fn per_host_by_default() {
    let (down, up) = (Server::start(), Server::start());
    down.answer(503);
    let middleware = BreakerMiddleware::new(template(2, &ManualClock::new())).unwrap();
    let client = quick(middleware.clone(), 0);
    for _ in 0..2 {
        client.get(down.url("/")).send().await.unwrap();
    }
    assert_rejected(client.get(down.url("/x")).send().await, State::Open);
    for _ in 0..3 {
        assert_eq!(client.get(up.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!((down.hits(), up.hits()), (2, 3));
    assert_eq!(middleware.hosts().unwrap().open_keys(), vec![down.origin()]);
    assert!(middleware.breaker().is_none());
}

#[tokio::test]
async fn single_guards_every_host_with_one_breaker() {
    let (down, up) = (Server::start(), Server::start());
    down.answer(503);
    let breaker = template(2, &ManualClock::new()).build().unwrap();
    let middleware = BreakerMiddleware::single(breaker.clone());
    let client = quick(middleware.clone(), 0);
    for _ in 0..2 {
        client.get(down.url("/")).send().await.unwrap();
    }
    assert_rejected(client.get(up.url("/")).send().await, State::Open);
    assert_eq!(up.hits(), 0);
    assert!(middleware.breaker().unwrap().same_as(&breaker));
}

#[tokio::test]
async fn a_dropped_request_frees_its_permit() {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let middleware = BreakerMiddleware::new(template(1, &clock)).unwrap();
    let client = quick(middleware.clone(), 0);
    client.get(server.url("/")).send().await.unwrap();
    clock.advance(WAIT);

    server.answer(Reply::status(200).delay(Duration::from_secs(30)));
    let probe = Box::pin(client.get(server.url("/probe")).send());
    let probe = in_flight(probe, &server, 2).await;
    assert_rejected(client.get(server.url("/")).send().await, State::HalfOpen);
    drop(probe); // a timeout outside, a cancelled task

    server.answer(200);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
    let breaker = breaker_of(&middleware, &server);
    assert!(breaker.is_closed());
    assert_eq!((breaker.metrics().successes, breaker.metrics().failures), (1, 1), "the dropped probe recorded nothing");
}

#[tokio::test]
async fn transport_errors_count_and_are_retried_until_the_breaker_opens() {
    let url = support::refused_url();
    let middleware = BreakerMiddleware::new(template(3, &ManualClock::new())).unwrap();
    let client = quick(middleware.clone(), 10);
    let err = client.get(&url).send().await.unwrap_err();
    // Connection refused is transient to reqwest-retry: attempts 1 to 3 failed and
    // opened the breaker, whose rejection of attempt 4 ended the retries.
    assert!(rejection(&err).is_some(), "{err:?}");
    let breaker = middleware.breaker_for(&url.parse().unwrap()).unwrap();
    assert_eq!((breaker.metrics().failures, breaker.metrics().rejected), (3, 1));
}

#[tokio::test]
async fn retry_after_keeps_the_breaker_open_longer() {
    let server = Server::start();
    server.answer(Reply::status(429).header("retry-after", "120"));
    let clock = ManualClock::new();
    let middleware = BreakerMiddleware::new(template(1, &clock)).unwrap();
    let client = quick(middleware, 0);
    client.get(server.url("/")).send().await.unwrap();
    let rejected = assert_rejected(client.get(server.url("/")).send().await, State::Open);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(120)));
    clock.advance(Duration::from_secs(60));
    assert_rejected(client.get(server.url("/")).send().await, State::Open);
    clock.advance(Duration::from_secs(60));
    server.answer(200);
    assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn classifier_presets_apply() {
    let server = Server::start();
    server.answer(404);
    let clock = ManualClock::new();
    let standard = BreakerMiddleware::new(template(1, &clock)).unwrap();
    let client = quick(standard.clone(), 0);
    for _ in 0..3 {
        assert_eq!(client.get(server.url("/")).send().await.unwrap().status(), 404);
    }
    assert!(breaker_of(&standard, &server).is_closed(), "a 404 is not the server's failure");

    let strict = BreakerMiddleware::new(template(1, &clock)).unwrap().with_classifier(Classifier::success_2xx());
    let client = quick(strict, 0);
    client.get(server.url("/")).send().await.unwrap();
    assert_rejected(client.get(server.url("/")).send().await, State::Open);
}

#[test]
fn the_middleware_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    check::<BreakerMiddleware>();
}
