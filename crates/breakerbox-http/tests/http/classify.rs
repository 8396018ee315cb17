//! The classifier presets and a user closure, against real statuses and real transport
//! errors; the replaceable status extractor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakerbox::{ManualClock, Outcome};
use breakerbox_http::{Attempt, Classifier, ErrorKind, HttpBreaker, HttpError};

use crate::support::{Reply, Server, refused_url};

/// What `classifier` makes of one response with `status`: the breaker's counters after
/// a single request.
async fn outcome_of(classifier: Classifier, server: &Server, status: u16) -> Outcome {
    server.answer(status);
    let breaker =
        crate::builder(100, Duration::from_secs(10), &ManualClock::new()).classifier(classifier).build().unwrap();
    let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(response.status(), status, "the caller gets the response whatever its class");
    let m = breaker.metrics();
    match (m.successes, m.failures, m.ignored) {
        (1, 0, 0) => Outcome::Success,
        (0, 1, 0) => Outcome::Failure,
        (0, 0, 1) => Outcome::Ignored,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn standard_fails_on_5xx_408_429_only() {
    let server = Server::start();
    for status in [500, 502, 503, 504, 408, 429] {
        assert_eq!(outcome_of(Classifier::standard(), &server, status).await, Outcome::Failure, "{status}");
    }
    for status in [200, 201, 204, 301, 400, 401, 404, 409] {
        assert_eq!(outcome_of(Classifier::standard(), &server, status).await, Outcome::Success, "{status}");
    }
}

#[tokio::test]
async fn success_2xx_fails_outside_2xx() {
    let server = Server::start();
    for status in [200, 201, 202, 204] {
        assert_eq!(outcome_of(Classifier::success_2xx(), &server, status).await, Outcome::Success, "{status}");
    }
    for status in [301, 400, 404, 429, 500, 503] {
        assert_eq!(outcome_of(Classifier::success_2xx(), &server, status).await, Outcome::Failure, "{status}");
    }
}

#[tokio::test]
async fn only_200_is_the_original_rule() {
    let server = Server::start();
    assert_eq!(outcome_of(Classifier::only_200(), &server, 200).await, Outcome::Success);
    for status in [201, 204, 301, 404, 500] {
        assert_eq!(outcome_of(Classifier::only_200(), &server, status).await, Outcome::Failure, "{status}");
    }
}

#[tokio::test]
async fn a_closure_can_ignore_404_and_fail_a_degraded_200() {
    let server = Server::start();
    let custom = || {
        Classifier::from_fn(|attempt| match attempt {
            Attempt::Response { status, .. } if *status == 404 => Outcome::Ignored,
            Attempt::Response { headers, .. } if headers.contains_key("x-degraded") => Outcome::Failure,
            _ => Classifier::standard().classify(attempt),
        })
    };
    assert_eq!(outcome_of(custom(), &server, 404).await, Outcome::Ignored);
    assert_eq!(outcome_of(custom(), &server, 503).await, Outcome::Failure);
    assert_eq!(outcome_of(custom(), &server, 200).await, Outcome::Success);

    server.answer(Reply::status(200).header("x-degraded", "1"));
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).classifier(custom()).build().unwrap();
    breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert!(breaker.is_open());
}

/// A classifier that records the kinds of the errors it sees, then applies `inner`.
fn recording(inner: Classifier) -> (Classifier, Arc<Mutex<Vec<ErrorKind>>>) {
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&kinds);
    let classifier = Classifier::from_fn(move |attempt| {
        if let Some(kind) = attempt.error_kind() {
            seen.lock().unwrap().push(kind);
        }
        inner.classify(attempt)
    });
    (classifier, kinds)
}

#[tokio::test]
async fn transport_errors_and_timeouts_are_failures_in_every_preset() {
    let refused = refused_url();
    for preset in [Classifier::standard(), Classifier::success_2xx(), Classifier::only_200()] {
        let (classifier, kinds) = recording(preset.clone());
        let breaker =
            crate::builder(1, Duration::from_secs(10), &ManualClock::new()).classifier(classifier).build().unwrap();
        match breaker.do_request("GET", &refused).await {
            Err(HttpError::Transport(e)) => assert!(e.is_connect(), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(breaker.is_open(), "{preset:?}: a refused connection is a failure");
        assert_eq!(*kinds.lock().unwrap(), [ErrorKind::Connect]);
    }

    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(2)));
    let client = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let (classifier, kinds) = recording(Classifier::standard());
    let breaker = HttpBreaker::builder(client)
        .policy(breakerbox::Policy::consecutive_failures(1))
        .clock(ManualClock::new())
        .classifier(classifier)
        .build()
        .unwrap();
    match breaker.do_request("GET", &server.url("/slow")).await {
        Err(HttpError::Transport(e)) => assert!(e.is_timeout(), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*kinds.lock().unwrap(), [ErrorKind::Timeout]);
    assert!(breaker.is_open(), "a timeout is a failure");
}

#[tokio::test]
async fn a_request_the_client_cannot_build_is_ignored() {
    // http::Uri accepts this URL, no connection can go to it: the request never leaves
    // the process, and says nothing about the server. Issue 9: it is an invalid URL
    // that says what to do (it was `Transport("builder error")`, counted as ignored),
    // and it is counted nowhere.
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    let result = breaker.do_request("GET", "http://127.0.0.1:99999/").await;
    match result {
        Err(HttpError::InvalidUrl { reason, .. }) => {
            assert_eq!(reason, "invalid port: the port must be a number from 1 to 65535");
        }
        other => panic!("{other:?}"),
    }
    assert!(breaker.is_closed());
    assert_eq!(breaker.metrics().ignored, 0);
}

#[tokio::test]
async fn the_status_extractor_can_be_replaced() {
    let server = Server::start();
    // A gateway that always answers 200 and reports the upstream's status in a header.
    server.answer(Reply::status(200).header("x-upstream-status", "503"));
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new())
        .status_code(|response: &reqwest::Response| {
            response
                .headers()
                .get("x-upstream-status")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .and_then(|code| http::StatusCode::from_u16(code).ok())
                .unwrap_or(response.status())
        })
        .build()
        .unwrap();
    let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(breaker.is_open(), "the classifier saw the extracted 503");
}
