//! Retries: every attempt goes through the breaker, a rejection ends the request at once,
//! the budget caps retries at a fraction of requests.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::{Failure, FallbackOn, HttpError, Retry, RetryBudget};

use crate::support::{Reply, Server};

/// A retry policy that waits a millisecond, with no budget unless given one.
fn quick(attempts: u32) -> Retry {
    Retry::attempts(attempts).with_backoff(Duration::from_millis(1), Duration::from_millis(5)).without_budget()
}

#[tokio::test]
async fn a_retry_can_turn_a_failure_into_a_success() {
    let server = Server::start();
    server.queue([Reply::status(500), Reply::status(502)]);
    let breaker = crate::builder(5, Duration::from_secs(10), &ManualClock::new()).retry(quick(3)).build().unwrap();
    let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.hits(), 3);
    let m = breaker.metrics();
    assert_eq!((m.failures, m.successes), (2, 1), "every attempt went through the breaker");
}

#[tokio::test]
async fn attempts_run_out_and_the_last_failure_is_given_back() {
    let server = Server::start();
    server.answer(503);
    let breaker = crate::builder(10, Duration::from_secs(10), &ManualClock::new()).retry(quick(3)).build().unwrap();
    assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap().status(), 503);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_rejection_is_never_retried() {
    let server = Server::start();
    server.answer(500);
    // Trips on the 2nd failure: the 3rd attempt is refused, and that ends the request.
    let breaker = crate::builder(2, Duration::from_secs(10), &ManualClock::new()).retry(quick(5)).build().unwrap();
    match breaker.do_request("GET", &server.url("/")).await {
        Err(HttpError::CircuitOpen(rejected)) => assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10))),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 2);
    let m = breaker.metrics();
    assert_eq!((m.failures, m.rejected), (2, 1));

    // While open, a request with retries fails at once, without any attempt.
    assert!(breaker.do_request("GET", &server.url("/")).await.unwrap_err().is_circuit_open());
    assert_eq!(server.hits(), 2);
    assert_eq!(breaker.metrics().rejected, 2);
}

#[tokio::test]
async fn retries_stay_within_the_budget() {
    let server = Server::start();
    server.answer(500);
    let requests = 50;
    let budget = RetryBudget::new(0.2).with_min_retries(0);
    // A breaker that never trips, so that only the budget limits the retries.
    let breaker = crate::builder(10_000, Duration::from_secs(10), &ManualClock::new())
        .retry(quick(3).with_budget(budget))
        .build()
        .unwrap();
    for _ in 0..requests {
        breaker.do_request("GET", &server.url("/")).await.unwrap();
    }
    // 50 requests, retries capped at 20 % of them: 10 retries, not 100.
    assert_eq!(server.hits(), requests + 10);

    let unbudgeted =
        crate::builder(10_000, Duration::from_secs(10), &ManualClock::new()).retry(quick(3)).build().unwrap();
    let before = server.hits();
    for _ in 0..requests {
        unbudgeted.do_request("GET", &server.url("/")).await.unwrap();
    }
    assert_eq!(server.hits() - before, requests * 3, "without a budget every request is retried twice");
}

#[tokio::test]
async fn only_idempotent_methods_are_retried_unless_asked() {
    let server = Server::start();
    server.answer(500);
    let breaker = crate::builder(100, Duration::from_secs(10), &ManualClock::new()).retry(quick(3)).build().unwrap();
    breaker.do_request("POST", &server.url("/")).await.unwrap();
    assert_eq!(server.hits(), 1);
    breaker.do_request("PUT", &server.url("/")).await.unwrap();
    assert_eq!(server.hits(), 4);

    let all = crate::builder(100, Duration::from_secs(10), &ManualClock::new())
        .retry(quick(3).with_all_methods())
        .build()
        .unwrap();
    all.do_request("POST", &server.url("/")).await.unwrap();
    assert_eq!(server.hits(), 7);
}

#[tokio::test]
async fn a_long_retry_after_is_not_waited_out() {
    let server = Server::start();
    server.answer(Reply::status(503).header("retry-after", "60"));
    let breaker = crate::builder(100, Duration::from_secs(10), &ManualClock::new()).retry(quick(3)).build().unwrap();
    assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap().status(), 503);
    assert_eq!(server.hits(), 1, "60 s is longer than the longest backoff: no retry");
}

#[tokio::test]
async fn the_body_is_sent_again_on_each_attempt() {
    let server = Server::start();
    server.queue([Reply::status(500)]);
    let breaker = crate::builder(100, Duration::from_secs(10), &ManualClock::new()).retry(quick(2)).build().unwrap();
    let request = http::Request::put(server.url("/doc")).header("x-n", "1").body("payload").unwrap();
    assert_eq!(breaker.send(request).await.unwrap().status(), 200);
    let log = server.log();
    assert_eq!(log.len(), 2);
    for hit in log {
        assert_eq!(&hit.body[..], b"payload");
        assert_eq!(hit.headers["x-n"], "1");
    }
}

#[tokio::test]
async fn the_fallback_gets_the_last_failure_after_retries() {
    let server = Server::start();
    server.queue([Reply::status(500), Reply::status(502), Reply::status(503)]);
    let breaker = crate::builder(100, Duration::from_secs(10), &ManualClock::new())
        .retry(quick(3))
        .fallback(FallbackOn::Failures, |failure| match failure {
            Failure::Response(r) => {
                assert_eq!(r.status(), 503, "the last attempt's response");
                Ok(reqwest::Response::from(http::Response::new("stand-in")))
            }
            other => other.into_result(),
        })
        .build()
        .unwrap();
    assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap().text().await.unwrap(), "stand-in");
    assert_eq!(server.hits(), 3);
}

#[test]
fn bad_retry_settings_fail_at_build() {
    let err =
        breakerbox_http::HttpBreaker::builder(reqwest::Client::new()).retry(Retry::attempts(0)).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid breaker setting `retry.attempts` = 0: expected at least 1");
}

/// Issue 8: the retry budget reads the breaker's own clock. It used to keep a clock of
/// its own, so that a breaker built with a `ManualClock` left its budget on real time.
#[tokio::test]
async fn the_budget_follows_a_manual_clock_given_to_the_builder() {
    for per_host in [false, true] {
        let server = Server::start();
        let clock = ManualClock::new();
        let budget = RetryBudget::new(0.5).with_min_retries(0).with_window(Duration::from_secs(10));
        let mut builder = crate::builder(100, Duration::from_secs(10), &clock).retry(quick(2).with_budget(budget));
        if per_host {
            builder = builder.per_host();
        }
        let breaker = builder.build().unwrap();
        for _ in 0..10 {
            breaker.do_request("GET", &server.url("/")).await.unwrap();
        }
        server.answer(500);
        breaker.do_request("GET", &server.url("/")).await.unwrap();
        assert_eq!(server.hits(), 12, "per_host {per_host}: 11 recent requests pay for a retry");

        // The window passes on the breaker's clock: the 11 requests are no longer
        // recent, and one request pays for half a retry, so there is none. On real time
        // they would still be recent, and the request would be retried.
        clock.advance(Duration::from_secs(10));
        breaker.do_request("GET", &server.url("/")).await.unwrap();
        assert_eq!(server.hits(), 13, "per_host {per_host}: the budget's window moved with the manual clock");
    }
}
