//! Half-open under concurrency: of many simultaneous requests, exactly the allowed
//! number of probes reach the server; a cancelled probe frees its slot.

use std::sync::Arc;
use std::time::Duration;

use breakerbox::{ManualClock, State};
use breakerbox_http::HttpError;

use crate::support::{Reply, Server};

async fn concurrent_probes(probes: u32) {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let breaker = crate::builder(1, Duration::from_secs(10), &clock).half_open_probes(probes).build().unwrap();
    let breaker = Arc::new(breaker);
    breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert!(breaker.is_open());
    clock.advance(Duration::from_secs(10));
    assert!(breaker.is_half_open());

    // The server holds each probe long enough for every other request to arrive, even on
    // a loaded machine.
    server.answer(Reply::status(200).delay(Duration::from_secs(1)));
    let requests = 40;
    let barrier = Arc::new(tokio::sync::Barrier::new(requests));
    let tasks: Vec<_> = (0..requests)
        .map(|_| {
            let (breaker, barrier, url) = (Arc::clone(&breaker), Arc::clone(&barrier), server.url("/"));
            tokio::spawn(async move {
                barrier.wait().await;
                breaker.do_request("GET", &url).await
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(response) => {
                assert_eq!(response.status(), 200);
                admitted += 1;
            }
            Err(HttpError::CircuitOpen(rejected)) => {
                assert_eq!(rejected.state(), State::HalfOpen);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(admitted, probes);
    assert_eq!(refused, requests as u32 - probes);
    assert_eq!(server.hits(), 1 + u64::from(probes), "exactly the probes reached the server");
    assert!(breaker.is_closed(), "the probes succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_probe_among_many_concurrent_requests() {
    concurrent_probes(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_probes_among_many_concurrent_requests() {
    concurrent_probes(3).await;
}

#[tokio::test]
async fn a_cancelled_probe_frees_its_slot() {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let breaker = crate::builder(1, Duration::from_secs(10), &clock).build().unwrap();
    breaker.do_request("GET", &server.url("/")).await.unwrap();
    clock.advance(Duration::from_secs(10));

    server.answer(Reply::status(200).delay(Duration::from_secs(5)));
    let cancelled = tokio::time::timeout(Duration::from_millis(100), breaker.do_request("GET", &server.url("/"))).await;
    assert!(cancelled.is_err(), "the caller gave up on the probe");
    assert_eq!(breaker.metrics().probes_in_flight, 0, "its slot is free");

    server.answer(200);
    assert_eq!(breaker.do_request("GET", &server.url("/")).await.unwrap().status(), 200);
    assert!(breaker.is_closed());
}
