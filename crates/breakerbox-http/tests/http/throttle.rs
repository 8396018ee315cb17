//! Adaptive throttling through `HttpBreaker`, against a real server: overloads (503,
//! 429, 502, 504, transport errors) are not accepts, other answers are, and a throttled
//! request never leaves the process and is never retried.

use std::time::Duration;

use breakerbox::{ManualClock, Policy, RejectReason, Throttle};
use breakerbox_http::{HttpBreaker, HttpError, Retry, is_overload_status};

use crate::support::{Server, refused_url};

fn throttled(clock: &ManualClock) -> HttpBreaker<reqwest::Client> {
    crate::builder(1_000, Duration::from_secs(10), clock)
        .policy(Policy::consecutive_failures(1_000))
        .throttle(Throttle::new().min_requests(10))
        .build()
        .unwrap()
}

#[test]
fn the_overload_statuses() {
    for status in [429, 502, 503, 504] {
        assert!(is_overload_status(http::StatusCode::from_u16(status).unwrap()), "{status}");
    }
    for status in [200, 400, 404, 408, 500, 501] {
        assert!(!is_overload_status(http::StatusCode::from_u16(status).unwrap()), "{status}");
    }
}

#[tokio::test]
async fn overloads_raise_p_and_other_answers_do_not() {
    let server = Server::start();
    for (status, overload) in [(503, true), (429, true), (502, true), (504, true), (500, false), (404, false)] {
        let clock = ManualClock::new();
        let breaker = throttled(&clock);
        server.answer(status);
        for _ in 0..10 {
            let _ = breaker.do_request("GET", &server.url("/")).await;
        }
        let p = breaker.metrics().reject_probability;
        assert_eq!(p > 0.0, overload, "{status}: p = {p}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_an_overload() {
    let clock = ManualClock::new();
    let breaker = throttled(&clock);
    let url = refused_url();
    for _ in 0..10 {
        let _ = breaker.do_request("GET", &url).await;
    }
    assert!(breaker.metrics().reject_probability > 0.0);
}

#[tokio::test]
async fn a_throttled_request_never_reaches_the_server_and_is_never_retried() {
    let server = Server::start();
    let clock = ManualClock::new();
    let breaker = crate::builder(1_000, Duration::from_secs(10), &clock)
        .policy(Policy::consecutive_failures(1_000))
        .throttle(Throttle::new().min_requests(10))
        .retry(Retry::attempts(3).with_backoff(Duration::from_millis(1), Duration::from_millis(1)).without_budget())
        .build()
        .unwrap();
    server.answer(503);
    let mut throttled = 0;
    for _ in 0..40 {
        if let Err(HttpError::CircuitOpen(r)) = breaker.do_request("GET", &server.url("/")).await {
            assert_eq!(r.reason(), RejectReason::Throttled);
            throttled += 1;
        }
    }
    assert!(throttled > 0);
    let m = breaker.metrics();
    // One rejection per throttled request: a rejection ends the request, never retried.
    assert_eq!(m.rejected, throttled);
    // Every attempt the throttle admitted reached the server, and no other did.
    assert_eq!(server.hits(), m.failures);
}
