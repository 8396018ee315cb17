//! The hand-rolled client of `examples/custom_client.rs` behind an `HttpBreaker`.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::{Classifier, ErrorKind, HttpBreaker, HttpError};

use crate::custom_client_example::TinyClient;
use crate::support::{Reply, Server, refused_url};

#[tokio::test]
async fn a_custom_client_gets_the_whole_breaker() {
    let server = Server::start();
    let clock = ManualClock::new();
    let breaker = HttpBreaker::builder(TinyClient::new(Duration::from_secs(2)))
        .policy(breakerbox::Policy::consecutive_failures(2))
        .clock(clock.clone())
        .build()
        .unwrap();

    let response = breaker.do_request("get", &server.url("/a")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.body()[..], b"status 200");

    server.answer(502);
    for _ in 0..2 {
        assert_eq!(breaker.do_request("GET", &server.url("/a")).await.unwrap().status(), 502);
    }
    assert!(breaker.is_open());
    assert!(breaker.do_request("GET", &server.url("/a")).await.unwrap_err().is_circuit_open());
    assert_eq!(server.hits(), 3);

    clock.advance(Duration::from_secs(30));
    server.answer(200);
    let request = http::Request::post(server.url("/b")).header("x-k", "v").body("hello").unwrap();
    assert_eq!(breaker.send(request).await.unwrap().status(), 200);
    assert!(breaker.is_closed());
    let hit = server.log().pop().unwrap();
    assert_eq!((hit.method.as_str(), hit.path.as_str(), &hit.body[..]), ("POST", "/b", &b"hello"[..]));
    assert_eq!(hit.headers["x-k"], "v");
}

#[tokio::test]
async fn its_error_kinds_reach_the_classifier() {
    let kinds = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = kinds.clone();
    let breaker = HttpBreaker::builder(TinyClient::new(Duration::from_millis(100)))
        .policy(breakerbox::Policy::consecutive_failures(100))
        .classifier(Classifier::from_fn(move |attempt| {
            seen.lock().unwrap().extend(attempt.error_kind());
            Classifier::standard().classify(attempt)
        }))
        .build()
        .unwrap();
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(2)));
    assert!(matches!(breaker.do_request("GET", &server.url("/")).await, Err(HttpError::Transport(_))));
    assert!(matches!(breaker.do_request("GET", &refused_url()).await, Err(HttpError::Transport(_))));
    // https passes the breaker's URL check, but this client cannot send it. Issue 9:
    // an error of kind Request is the caller's: it never reaches the classifier and is
    // counted nowhere (it was a Transport error counted as ignored).
    assert!(matches!(breaker.do_request("GET", "https://127.0.0.1/").await, Err(HttpError::InvalidRequest(_))));
    assert_eq!(*kinds.lock().unwrap(), [ErrorKind::Timeout, ErrorKind::Connect]);
    let m = breaker.metrics();
    assert_eq!((m.failures, m.ignored), (2, 0));
}
