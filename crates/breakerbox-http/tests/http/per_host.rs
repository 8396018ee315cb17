//! One breaker per scheme, host and port: one failing host never opens the circuit for
//! another.

use std::time::Duration;

use breakerbox::{ManualClock, State};
use breakerbox_http::HttpBreaker;

use crate::support::Server;

#[tokio::test]
async fn two_hosts_have_independent_breakers() {
    let (down, up) = (Server::start(), Server::start());
    down.answer(500);
    let clock = ManualClock::new();
    let breaker = crate::builder(2, Duration::from_secs(10), &clock).name("api").per_host().build().unwrap();
    assert!(breaker.breaker().is_none());

    for _ in 0..2 {
        breaker.do_request("GET", &down.url("/a")).await.unwrap();
    }
    // The failing host is open, for every path on it.
    assert!(breaker.do_request("GET", &down.url("/other/path")).await.unwrap_err().is_circuit_open());
    assert_eq!(down.hits(), 2);
    // The healthy host is not.
    for _ in 0..5 {
        assert_eq!(breaker.do_request("GET", &up.url("/b")).await.unwrap().status(), 200);
    }
    assert_eq!(up.hits(), 5);

    let mut expected = vec![(down.origin(), State::Open), (up.origin(), State::Closed)];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(breaker.host_states(), expected);
    assert!(breaker.is_open(), "the worst host");
    let down_breaker = breaker.breaker_for(&down.url("/")).unwrap();
    assert_eq!(down_breaker.name(), format!("api/{}", down.origin()));
    assert!(breaker.breaker_for(&up.url("/")).unwrap().is_closed());

    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures, m.rejected, m.opens), (5, 2, 1, 1));
    assert_eq!(m.state, State::Open);

    // The failing host recovers on its own schedule.
    clock.advance(Duration::from_secs(10));
    down.answer(200);
    breaker.do_request("GET", &down.url("/a")).await.unwrap();
    assert!(breaker.is_closed());
}

#[tokio::test]
async fn without_per_host_one_failing_host_opens_the_circuit_for_all() {
    let (down, up) = (Server::start(), Server::start());
    down.answer(500);
    let breaker = crate::builder(2, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    for _ in 0..2 {
        breaker.do_request("GET", &down.url("/")).await.unwrap();
    }
    assert!(breaker.do_request("GET", &up.url("/")).await.unwrap_err().is_circuit_open());
    assert_eq!(up.hits(), 0);
    assert!(breaker.host_states().is_empty());
}

#[tokio::test]
async fn hosts_are_keyed_by_scheme_host_and_port() {
    let breaker = HttpBreaker::builder(reqwest::Client::new()).per_host().build().unwrap();
    let name = |url: &str| breaker.breaker_for(url).unwrap().name().to_owned();
    assert_eq!(name("http://Example.COM/x"), "http/http://example.com:80");
    assert_eq!(name("http://example.com:80/y?z"), "http/http://example.com:80");
    assert_eq!(name("https://example.com/"), "http/https://example.com:443");
    assert_eq!(name("http://example.com:8080/"), "http/http://example.com:8080");
    assert_eq!(breaker.host_states().len(), 3);
    assert!(breaker.is_closed());
    breaker.clear_state();
}

#[tokio::test]
async fn clear_state_closes_every_host() {
    let (a, b) = (Server::start(), Server::start());
    a.answer(500);
    b.answer(500);
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).per_host().build().unwrap();
    breaker.do_request("GET", &a.url("/")).await.unwrap();
    breaker.do_request("GET", &b.url("/")).await.unwrap();
    assert!(breaker.host_states().iter().all(|(_, s)| *s == State::Open));
    breaker.clear_state();
    assert!(breaker.host_states().iter().all(|(_, s)| *s == State::Closed));
    assert!(breaker.is_closed());
}
