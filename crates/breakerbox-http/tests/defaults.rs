//! Issue 9, problem 3: `HttpBreaker::builder`, `tower::PerHostLayer` and
//! `BreakerMiddleware` share one set of production defaults: the standard classifier,
//! one breaker per host, a 30 s timeout counted as a failure. Each is built with its
//! defaults and sent the same answers from two real servers on 127.0.0.1.
#![cfg(all(feature = "reqwest", feature = "tower", feature = "reqwest-middleware"))]

#[path = "support/server.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use breakerbox::{Breaker, Metrics, State};
use breakerbox_http::tower::PerHostLayer;
use breakerbox_http::{BreakerMiddleware, HttpBreaker, TimedOut};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{Reply, Server};
use tower::{Layer, Service, ServiceExt};

const ANSWERS: [u16; 6] = [200, 201, 404, 503, 500, 429];

/// What a breaker made of `ANSWERS` from one host: (successes, failures) and the states
/// of the failing host and of a healthy one.
fn summary(m: &Metrics) -> (u64, u64) {
    (m.successes, m.failures)
}

#[tokio::test]
async fn the_three_ways_in_share_their_defaults() {
    let (down, up) = (Server::start(), Server::start());

    let breaker = HttpBreaker::builder(reqwest::Client::new()).build().unwrap();
    let layer = PerHostLayer::new(breakerbox::BreakerBox::new(Breaker::builder()).unwrap());
    let middleware = BreakerMiddleware::new(Breaker::builder()).unwrap();
    assert_eq!(breaker.timeout(), Some(Duration::from_secs(30)));
    assert_eq!(layer.timeout(), breaker.timeout());
    assert_eq!(middleware.timeout(), breaker.timeout());
    assert!(breaker.breaker().is_none() && middleware.breaker().is_none(), "per host");

    let chain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware.clone()).build();
    let mut svc = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    for status in ANSWERS {
        down.answer(status);
        breaker.do_request("GET", &down.url("/")).await.unwrap();
        chain.get(down.url("/")).send().await.unwrap();
        let request = http::Request::get(down.url("/")).body(Empty::new()).unwrap();
        svc.ready().await.unwrap().call(request).await.unwrap();
    }
    // The core's default policy (5 consecutive failures) has not tripped: 3 in a row.
    let hosts = [breaker.breaker_for(&down.url("/")).unwrap(), layer.hosts().get(&down.origin())];
    let of_middleware = middleware.breaker_for(&reqwest::Url::parse(&down.url("/")).unwrap()).unwrap();
    for b in hosts.iter().chain([&of_middleware]) {
        assert_eq!(summary(&b.metrics()), (3, 3), "{}: 200, 201, 404 succeed; 503, 500, 429 fail", b.name());
        assert_eq!(b.metrics().consecutive_failures, 3);
    }
    // Same host split: the healthy host has a breaker of its own in each.
    for _ in 0..2 {
        down.answer(503);
        breaker.do_request("GET", &down.url("/")).await.unwrap();
        chain.get(down.url("/")).send().await.unwrap();
        let request = http::Request::get(down.url("/")).body(Empty::new()).unwrap();
        svc.ready().await.unwrap().call(request).await.unwrap();
    }
    for b in hosts.iter().chain([&of_middleware]) {
        assert_eq!(b.state(), State::Open, "{}", b.name());
    }
    assert_eq!(breaker.do_request("GET", &up.url("/")).await.unwrap().status(), 200);
    assert_eq!(chain.get(up.url("/")).send().await.unwrap().status(), 200);
    let request = http::Request::get(up.url("/")).body(Empty::new()).unwrap();
    assert_eq!(svc.ready().await.unwrap().call(request).await.unwrap().status(), 200);
    assert_eq!(up.hits(), 3, "one failing host never opens the circuit for another");
}

#[tokio::test]
async fn the_layer_and_the_middleware_count_their_timeouts() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(5)));
    let template = Breaker::builder().policy(breakerbox::Policy::consecutive_failures(1));

    let layer = PerHostLayer::new(breakerbox::BreakerBox::new(template.clone()).unwrap())
        .with_timeout(Duration::from_millis(50));
    let mut svc = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let request = http::Request::get(server.url("/")).body(Empty::new()).unwrap();
    let err = svc.ready().await.unwrap().call(request).await.unwrap_err();
    assert_eq!(err.downcast_ref::<TimedOut>(), Some(&TimedOut::new(Duration::from_millis(50))));
    assert_eq!(layer.hosts().get(&server.origin()).state(), State::Open, "counted as a failure");

    let middleware = BreakerMiddleware::new(template.clone()).unwrap().with_timeout(Duration::from_millis(50));
    let chain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(middleware.clone()).build();
    match chain.get(server.url("/")).send().await.unwrap_err() {
        reqwest_middleware::Error::Middleware(e) => assert!(e.downcast_ref::<TimedOut>().is_some(), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(middleware.breaker_for(&reqwest::Url::parse(&server.url("/")).unwrap()).unwrap().is_open());

    // Without a timeout, the same slow answer (shortened) succeeds.
    server.answer(Reply::status(200).delay(Duration::from_millis(100)));
    let patient = BreakerMiddleware::new(template).unwrap().without_timeout();
    assert_eq!(patient.timeout(), None);
    let chain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(patient).build();
    assert_eq!(chain.get(server.url("/")).send().await.unwrap().status(), 200);
}
