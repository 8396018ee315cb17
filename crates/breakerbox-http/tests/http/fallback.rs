//! The fallback (the original's `_empty_response`): on failed requests, on rejections,
//! or both.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::{Failure, FallbackOn, HttpError};

use crate::support::{Server, refused_url};

/// A stand-in response that says why it was made.
fn stand_in(why: &'static str) -> reqwest::Response {
    reqwest::Response::from(http::Response::builder().status(200).header("x-fallback", why).body("cached").unwrap())
}

fn fallback(
    failure: Failure<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, HttpError<reqwest::Error>> {
    match failure {
        Failure::Response(r) if r.status() == 500 => Ok(stand_in("status")),
        Failure::Transport(_) => Ok(stand_in("transport")),
        Failure::Rejected(_) => Ok(stand_in("rejected")),
        other => other.into_result(),
    }
}

fn why(response: &reqwest::Response) -> Option<&str> {
    response.headers().get("x-fallback").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn on_failures_a_failed_request_gets_the_fallback() {
    let server = Server::start();
    server.answer(500);
    let breaker = crate::builder(2, Duration::from_secs(10), &ManualClock::new())
        .fallback(FallbackOn::Failures, fallback)
        .build()
        .unwrap();
    let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(why(&response), Some("status"));
    assert_eq!(response.text().await.unwrap(), "cached");
    assert_eq!(breaker.metrics().failures, 1, "the failure still counts");

    let response = breaker.do_request("GET", &refused_url()).await.unwrap();
    assert_eq!(why(&response), Some("transport"));
    assert!(breaker.is_open());

    // Rejections are not the fallback's business here.
    assert!(breaker.do_request("GET", &server.url("/")).await.unwrap_err().is_circuit_open());
    // Successes never reach it.
    breaker.clear_state();
    server.answer(200);
    assert_eq!(why(&breaker.do_request("GET", &server.url("/")).await.unwrap()), None);
}

#[tokio::test]
async fn on_rejections_an_open_circuit_gets_the_fallback() {
    let server = Server::start();
    server.answer(500);
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new())
        .fallback(FallbackOn::Rejections, fallback)
        .build()
        .unwrap();
    // The failure itself is given back as the server sent it.
    let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(why(&response), None);
    assert!(breaker.is_open());
    for _ in 0..3 {
        let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
        assert_eq!(why(&response), Some("rejected"));
    }
    assert_eq!(server.hits(), 1, "the fallback answers without reaching the server");
    assert_eq!(breaker.metrics().rejected, 3);
}

#[tokio::test]
async fn on_both_failures_and_rejections_get_the_fallback() {
    let server = Server::start();
    server.answer(500);
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new())
        .fallback(FallbackOn::Both, fallback)
        .build()
        .unwrap();
    assert_eq!(why(&breaker.do_request("GET", &server.url("/")).await.unwrap()), Some("status"));
    assert_eq!(why(&breaker.do_request("GET", &server.url("/")).await.unwrap()), Some("rejected"));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_fallback_may_give_back_an_error() {
    let server = Server::start();
    server.answer(503);
    // Rejections become the fallback's own answer; failures are given back untouched.
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new())
        .fallback(FallbackOn::Both, |failure| match failure {
            Failure::Rejected(r) => Err(HttpError::CircuitOpen(r)),
            other => other.into_result(),
        })
        .build()
        .unwrap();
    assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap().status(), 503);
    let err = breaker.do_request("GET", &server.url("/")).await.unwrap_err();
    assert!(err.is_circuit_open());
    assert!(matches!(breaker.do_request("GET", &refused_url()).await, Err(HttpError::CircuitOpen(_))));
}
