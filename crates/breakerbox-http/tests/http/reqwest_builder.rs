//! Issue 9, problem 5: reqwest as it is: a `RequestBuilder` with JSON, a query and
//! bearer auth through the breaker; spawned requests; cheap clones; a body that stalls
//! or breaks counts when the outcome is recorded after the body.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::{ConfigError, HttpBreaker, HttpError, RequestBuilderExt};

use crate::support::{Server, Then, raw};

#[tokio::test]
async fn a_request_builder_goes_through_with_json_query_and_auth() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let breaker = HttpBreaker::builder(client.clone()).build().unwrap();
    let body = serde_json::json!({ "sku": 42, "qty": 3 });
    let response = breaker
        .execute(client.post(server.url("/orders")).query(&[("dry", "1")]).json(&body).bearer_auth("t0k3n"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client.put(server.url("/orders/7")).basic_auth("me", Some("pw")).send_through(&breaker).await;
    assert_eq!(response.unwrap().status(), 200);

    let log = server.log();
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("POST", "/orders"));
    assert_eq!(log[0].headers["authorization"], "Bearer t0k3n");
    assert_eq!(log[0].headers["content-type"], "application/json");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&log[0].body).unwrap(), body);
    assert!(log[1].headers["authorization"].to_str().unwrap().starts_with("Basic "));
    assert_eq!(breaker.metrics().successes, 2);
}

#[tokio::test]
async fn a_request_builders_method_goes_through_the_method_table() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let mut breaker = HttpBreaker::builder(client.clone()).build().unwrap();
    breaker.methods_mut().remove("DELETE");
    let err = breaker.execute(client.delete(server.url("/x"))).await.unwrap_err();
    assert!(matches!(err, HttpError::InvalidMethod { .. }), "{err:?}");
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn requests_can_be_spawned_and_clones_share_one_breaker() {
    let server = Server::start();
    server.answer(503);
    let breaker = crate::builder(3, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url("/");
            // The future owns what it needs: no borrow of `breaker` or `url`.
            tokio::spawn(breaker.do_request("GET", &url))
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), 503);
    }
    assert!(breaker.is_open());
    let clone = breaker.clone();
    assert!(clone.is_open(), "a clone shares the breaker");
    let spawned = tokio::spawn(clone.execute(reqwest::Client::new().get(server.url("/"))));
    assert!(spawned.await.unwrap().unwrap_err().is_circuit_open());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_clone_that_edits_its_methods_gets_its_own_table() {
    let breaker = HttpBreaker::builder(reqwest::Client::new()).build().unwrap();
    let mut clone = breaker.clone();
    clone.methods_mut().add("PURGE").unwrap();
    assert!(clone.methods().contains("PURGE"));
    assert!(!breaker.methods().contains("PURGE"), "copy on write");
    clone.breaker_for("http://a.test/").unwrap().force_open();
    assert!(breaker.is_open(), "the breakers stay shared");
}

#[tokio::test]
async fn with_buffer_body_a_stalled_or_broken_body_counts_as_a_failure() {
    let (stalls, breaks) = (raw(Then::Stall), raw(Then::Break));
    let head_only = crate::builder(10, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    assert_eq!(head_only.do_request("GET", &stalls).await.unwrap().status(), 200);
    assert_eq!(head_only.metrics().successes, 1, "recorded at the head: the stall is invisible");

    let buffered = crate::builder(2, Duration::from_secs(10), &ManualClock::new())
        .buffer_body()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(buffered.do_request("GET", &stalls).await.unwrap_err().is_timeout(), "the stalled body timed out");
    match buffered.do_request("GET", &breaks).await {
        Err(HttpError::Transport(e)) => assert!(e.is_body() || e.is_decode() || e.is_request(), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(buffered.is_open(), "both counted as failures");
    assert_eq!(buffered.metrics().failures, 2);
}

#[tokio::test]
async fn with_buffer_body_a_whole_body_comes_back_in_memory_with_its_url() {
    let server = Server::start();
    let breaker = HttpBreaker::builder(reqwest::Client::new()).buffer_body().build().unwrap();
    let response = breaker.do_request("GET", &server.url("/a?b=1")).await.unwrap();
    assert_eq!(response.url().as_str(), server.url("/a?b=1"));
    assert_eq!(response.text().await.unwrap(), "status 200");
}

#[test]
fn buffer_body_needs_a_client_that_can_read_one() {
    let err = HttpBreaker::builder(crate::custom_client_example::TinyClient::new(Duration::from_secs(1)))
        .buffer_body()
        .build()
        .unwrap_err();
    let _: &ConfigError = &err;
    assert_eq!(err.field(), "buffer_body");
}
