//! The original's story, step by step: calls succeed, the server fails, the circuit
//! opens and calls fail fast without reaching the server, the window passes, half-open,
//! one probe, recovery.

use std::time::Duration;

use breakerbox::{ManualClock, State};
use breakerbox_http::{HttpBreaker, HttpError};

use crate::support::Server;

#[tokio::test]
async fn the_original_story_step_by_step() {
    let server = Server::start();
    let url = server.url("/stock");
    let clock = ManualClock::new();
    let breaker = crate::original(3, Duration::from_secs(10), &clock);

    // 1. The server is healthy: calls succeed.
    for n in 1..=2 {
        let response = breaker.do_request("GET", &url).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(breaker.is_closed());
        assert_eq!(server.hits(), n);
    }

    // 2. The server fails. Each failure is given back as the server sent it, and
    //    counted; the third in a row opens the circuit.
    server.answer(500);
    for n in 1..=3u32 {
        let response = breaker.do_request("GET", &url).await.unwrap();
        assert_eq!(response.status(), 500);
        if n < 3 {
            assert!(breaker.is_closed(), "failure {n} of 3");
            assert_eq!(breaker.metrics().consecutive_failures, n);
        }
    }
    assert!(breaker.is_open());
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(server.hits(), 5);

    // 3. Open: calls fail fast, and never reach the server.
    for _ in 0..5 {
        match breaker.do_request("GET", &url).await {
            Err(HttpError::CircuitOpen(rejected)) => {
                assert_eq!(rejected.state(), State::Open);
                assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10)));
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    clock.advance(Duration::from_secs(4));
    let err = breaker.do_request("GET", &url).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(6)));
    assert_eq!(server.hits(), 5, "open calls never reach the server");
    assert_eq!(breaker.metrics().rejected, 6);

    // 4. The window passes: half-open, before any call (as the original reports it).
    clock.advance(Duration::from_secs(6));
    assert!(breaker.is_half_open());
    assert_eq!(server.hits(), 5);

    // 5. The server has recovered: one probe goes through and closes the circuit.
    server.answer(200);
    let response = breaker.do_request("GET", &url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(breaker.is_closed());
    assert_eq!(server.hits(), 6);

    // 6. Recovery: calls flow again.
    for _ in 0..3 {
        assert_eq!(breaker.do_request("GET", &url).await.unwrap().status(), 200);
    }
    assert_eq!(server.hits(), 9);
    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures, m.rejected, m.opens), (6, 3, 6, 1));
}

#[tokio::test]
async fn a_failed_probe_opens_the_circuit_again() {
    let server = Server::start();
    server.answer(503);
    let url = server.url("/");
    let clock = ManualClock::new();
    let breaker = crate::original(2, Duration::from_secs(10), &clock);
    for _ in 0..2 {
        breaker.do_request("GET", &url).await.unwrap();
    }
    assert!(breaker.is_open());
    clock.advance(Duration::from_secs(10));
    assert!(breaker.is_half_open());
    // The probe fails: open again, for a whole new window.
    assert_eq!(breaker.do_request("GET", &url).await.unwrap().status(), 503);
    assert!(breaker.is_open());
    assert_eq!(server.hits(), 3);
    assert!(breaker.do_request("GET", &url).await.unwrap_err().is_circuit_open());
    clock.advance(Duration::from_secs(9));
    assert!(breaker.is_open());
    clock.advance(Duration::from_secs(1));
    assert!(breaker.is_half_open());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn new_keeps_the_original_semantics_in_real_time() {
    let server = Server::start();
    let url = server.url("/");
    // Long enough that a loaded machine cannot let it pass between two lines.
    let window = Duration::from_millis(500);
    let breaker = HttpBreaker::new(reqwest::Client::new(), 2, window).unwrap();
    assert_eq!(breaker.name(), "http");

    // Only 200 is a success: a 201 counts as a failure.
    server.answer(201);
    breaker.do_request("POST", &url).await.unwrap();
    breaker.do_request("POST", &url).await.unwrap();
    assert!(breaker.is_open());
    assert!(breaker.do_request("GET", &url).await.unwrap_err().is_circuit_open());
    assert_eq!(server.hits(), 2);

    tokio::time::sleep(window + Duration::from_millis(50)).await;
    assert!(breaker.is_half_open());
    server.answer(200);
    assert_eq!(breaker.do_request("GET", &url).await.unwrap().status(), 200);
    assert!(breaker.is_closed());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_success_resets_the_streak() {
    let server = Server::start();
    let url = server.url("/");
    let clock = ManualClock::new();
    let breaker = crate::original(3, Duration::from_secs(10), &clock);
    for status in [500, 500, 200, 500, 500] {
        server.answer(status);
        breaker.do_request("GET", &url).await.unwrap();
    }
    assert!(breaker.is_closed(), "never 3 failures in a row");
    assert_eq!(breaker.metrics().consecutive_failures, 2);
}

#[tokio::test]
async fn clear_state_closes_the_circuit() {
    let server = Server::start();
    server.answer(500);
    let url = server.url("/");
    let clock = ManualClock::new();
    let breaker = crate::original(1, Duration::from_secs(60), &clock);
    breaker.do_request("GET", &url).await.unwrap();
    assert!(breaker.is_open());
    breaker.clear_state();
    assert!(breaker.is_closed());
    server.answer(200);
    assert_eq!(breaker.do_request("GET", &url).await.unwrap().status(), 200);
    assert_eq!(server.hits(), 2);
}

#[test]
fn new_refuses_settings_that_cannot_work() {
    let zero_threshold = HttpBreaker::new(reqwest::Client::new(), 0, Duration::from_secs(1)).unwrap_err();
    assert_eq!(zero_threshold.field(), "policy.consecutive_failures");
    let zero_window = HttpBreaker::new(reqwest::Client::new(), 3, Duration::ZERO).unwrap_err();
    assert_eq!(zero_window.field(), "open_wait");
}
