//! Issue 9, problem 1: the breaker's own timeout counts a hung request as a failure of
//! kind timeout; behind an outer `tokio::time::timeout`, the core's cancellation rule
//! (`cancel_counts_after`) counts it, closed and half-open.

use std::time::Duration;

use breakerbox::{ManualClock, State};
use breakerbox_http::{HttpBreaker, HttpError, TimedOut};

use crate::support::{Reply, Server};

#[tokio::test]
async fn a_hung_request_times_out_and_counts_as_a_failure() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(5)));
    let breaker = crate::builder(2, Duration::from_secs(10), &ManualClock::new())
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    assert_eq!(breaker.timeout(), Some(Duration::from_millis(100)));
    for _ in 0..2 {
        match breaker.do_request("GET", &server.url("/hang")).await {
            Err(HttpError::TimedOut(t)) => assert_eq!(t, TimedOut::new(Duration::from_millis(100))),
            other => panic!("{other:?}"),
        }
    }
    assert!(breaker.is_open(), "two timeouts trip a threshold of 2");
    assert_eq!(breaker.metrics().failures, 2);
    let err = breaker.do_request("GET", &server.url("/hang")).await.unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn without_a_timeout_the_request_waits_for_the_server() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_millis(300)));
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).without_timeout().build().unwrap();
    assert_eq!(breaker.timeout(), None);
    assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap().status(), 200);
    let short = crate::builder(1, Duration::from_secs(10), &ManualClock::new())
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    assert!(short.do_request("GET", &server.url("/")).await.unwrap_err().is_timeout());
    assert!(short.is_open());
}

#[tokio::test]
async fn a_requests_own_reqwest_timeout_replaces_the_breakers() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_millis(300)));
    let client = reqwest::Client::new();
    let breaker = HttpBreaker::builder(client.clone()).timeout(Duration::from_millis(50)).build().unwrap();
    let slow_ok = client.get(server.url("/")).timeout(Duration::from_secs(5));
    assert_eq!(breaker.execute(slow_ok).await.unwrap().status(), 200, "the request's 5 s, not the breaker's 50 ms");
    assert_eq!(breaker.metrics().successes, 1);
}

#[tokio::test]
async fn behind_an_outer_timeout_a_hung_server_trips_a_closed_breaker_and_reopens_a_half_open_one() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(5)));
    // Every default that decides this (policy: 5 in a row; timeout 30 s, longer than the
    // caller's; cancel_counts_after 1 s, on the breaker's real clock), except a short
    // open wait, to see half-open within the test.
    let breaker = HttpBreaker::builder(reqwest::Client::new())
        .open_wait(breakerbox::OpenWait::fixed(Duration::from_millis(200)))
        .build()
        .unwrap();
    let outer = Duration::from_millis(1_200);
    let calls: Vec<_> = (0..5)
        .map(|_| tokio::spawn(tokio::time::timeout(outer, breaker.do_request("GET", &server.url("/")))))
        .collect();
    for call in calls {
        assert!(call.await.unwrap().is_err(), "the outer deadline fired");
    }
    assert_eq!(breaker.state(), State::Open, "five calls abandoned after 1.2 s trip it");

    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(breaker.is_half_open());
    let probe = tokio::time::timeout(outer, breaker.do_request("GET", &server.url("/")));
    assert!(probe.await.is_err());
    assert_eq!(breaker.state(), State::Open, "the abandoned probe counts and reopens");
}

#[tokio::test]
async fn a_request_cancelled_quickly_counts_nothing() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(5)));
    let breaker = HttpBreaker::builder(reqwest::Client::new())
        .policy(breakerbox::Policy::consecutive_failures(1))
        .cancel_counts_after(Duration::from_secs(5))
        .build()
        .unwrap();
    let outer = tokio::time::timeout(Duration::from_millis(50), breaker.do_request("GET", &server.url("/")));
    assert!(outer.await.is_err());
    assert!(breaker.is_closed());
    assert_eq!(breaker.metrics().failures, 0);
}
