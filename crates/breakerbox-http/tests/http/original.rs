//! Issue 9, problem 2: `HttpBreaker::new` is exactly the original: one breaker, only 200
//! succeeds, open for exactly `time_window` whatever `Retry-After` says, no timeout of
//! its own.

use std::time::Duration;

use breakerbox_http::HttpBreaker;

use crate::support::{Reply, Server};

#[tokio::test]
async fn new_ignores_retry_after_and_reopens_after_its_window() {
    let server = Server::start();
    server.answer(Reply::status(503).header("retry-after", "3600"));
    let breaker = HttpBreaker::new(reqwest::Client::new(), 1, Duration::from_secs(1)).unwrap();
    breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert!(breaker.is_open());
    let wait = breaker.do_request("GET", &server.url("/")).await.unwrap_err().retry_after().unwrap();
    assert!(wait < Duration::from_secs(2), "the window (rounded up to a millisecond), not the server's hour: {wait:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(breaker.is_half_open(), "open for exactly time_window");
    server.answer(200);
    breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert!(breaker.is_closed());
}

#[tokio::test]
async fn new_counts_every_status_but_200_with_one_breaker_and_no_timeout() {
    let (a, b) = (Server::start(), Server::start());
    a.answer(201);
    let breaker = HttpBreaker::new(reqwest::Client::new(), 2, Duration::from_secs(10)).unwrap();
    assert_eq!(breaker.timeout(), None);
    assert!(breaker.breaker().is_some(), "one breaker for every host");
    for _ in 0..2 {
        breaker.do_request("POST", &a.url("/")).await.unwrap();
    }
    assert!(breaker.is_open(), "two 201 Created open the original's breaker");
    assert!(breaker.do_request("GET", &b.url("/")).await.unwrap_err().is_circuit_open(), "for every host");

    // The builder's production defaults count a 201 as a success, per host.
    let built = HttpBreaker::builder(reqwest::Client::new()).build().unwrap();
    for _ in 0..5 {
        built.do_request("POST", &a.url("/")).await.unwrap();
    }
    assert!(built.is_closed());
    assert_eq!(built.metrics().successes, 5);
}
