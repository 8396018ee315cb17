//! `Retry-After` on a 429 or 503 that trips the breaker lengthens the open wait: seconds
//! or an HTTP date, capped by `retry_after_limit`; garbage, and other statuses, are
//! ignored.

use std::time::{Duration, SystemTime};

use breakerbox::ManualClock;

use crate::support::{Reply, Server};

const WINDOW: Duration = Duration::from_secs(10);

/// Trips a threshold-1 breaker with `reply`; returns the clock and the breaker.
async fn trip(
    server: &Server,
    reply: Reply,
    limit: Option<Duration>,
) -> (ManualClock, breakerbox_http::HttpBreaker<reqwest::Client>) {
    server.answer(reply);
    let clock = ManualClock::new();
    let mut builder = crate::builder(1, WINDOW, &clock);
    if let Some(limit) = limit {
        builder = builder.retry_after_limit(limit);
    }
    let breaker = builder.build().unwrap();
    breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert!(breaker.is_open());
    (clock, breaker)
}

#[tokio::test]
async fn delay_seconds_keep_the_circuit_open_longer() {
    let server = Server::start();
    let (clock, breaker) = trip(&server, Reply::status(503).header("retry-after", "120"), None).await;
    let err = breaker.do_request("GET", &server.url("/")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    clock.advance(WINDOW);
    assert!(breaker.is_open(), "the window passed, the server's 120 s have not");
    clock.advance(Duration::from_secs(109));
    assert!(breaker.is_open());
    clock.advance(Duration::from_secs(1));
    assert!(breaker.is_half_open());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_http_date_keeps_the_circuit_open_until_then() {
    let server = Server::start();
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
    let (clock, breaker) = trip(&server, Reply::status(429).header("retry-after", date), None).await;
    // The date has whole seconds: the wait is between 59 and 60 s.
    let wait = breaker.do_request("GET", &server.url("/")).await.unwrap_err().retry_after().unwrap();
    assert!(wait > Duration::from_secs(58) && wait <= Duration::from_secs(60), "{wait:?}");
    clock.advance(Duration::from_secs(58));
    assert!(breaker.is_open());
    clock.advance(Duration::from_secs(2));
    assert!(breaker.is_half_open());
}

#[tokio::test]
async fn garbage_is_ignored() {
    let server = Server::start();
    for garbage in ["soon", "-1", "1.5", "Tomorrow, 25:00"] {
        let (clock, breaker) = trip(&server, Reply::status(503).header("retry-after", garbage), None).await;
        assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap_err().retry_after(), Some(WINDOW));
        clock.advance(WINDOW);
        assert!(breaker.is_half_open(), "{garbage:?}: the plain window");
    }
}

#[tokio::test]
async fn the_limit_caps_what_the_server_may_ask() {
    let server = Server::start();
    let limit = Some(Duration::from_secs(30));
    let (clock, breaker) = trip(&server, Reply::status(503).header("retry-after", "86400"), limit).await;
    assert_eq!(
        breaker.do_request("GET", &server.url("/")).await.unwrap_err().retry_after(),
        Some(Duration::from_secs(30))
    );
    clock.advance(Duration::from_secs(30));
    assert!(breaker.is_half_open());

    // A limit of zero ignores Retry-After.
    let (clock, breaker) = trip(&server, Reply::status(503).header("retry-after", "120"), Some(Duration::ZERO)).await;
    clock.advance(WINDOW);
    assert!(breaker.is_half_open());
}

#[tokio::test]
async fn only_429_and_503_carry_a_retry_after() {
    let server = Server::start();
    let (clock, breaker) = trip(&server, Reply::status(500).header("retry-after", "120"), None).await;
    clock.advance(WINDOW);
    assert!(breaker.is_half_open(), "a 500's Retry-After is not read");
}
