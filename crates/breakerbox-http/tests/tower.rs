//! The tower layers around hyper-util's pooled client, against a real HTTP server on
//! 127.0.0.1: the core's `CircuitBreakerLayer` with `StatusClassifier` (one breaker), and
//! `PerHostLayer` (one breaker per host).
//!
//! The server counts every request that reaches it, so a test proves that a refused
//! request never left the process. Time is a `ManualClock`: nothing sleeps for a window.
#![cfg(feature = "tower")]

#[path = "support/adapter.rs"]
mod adapter;
#[path = "support/server.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use adapter::{WAIT, in_flight, template};
use breakerbox::{Breaker, BreakerBox, ManualClock, Rejected, State};
use breakerbox_http::Classifier;
use breakerbox_http::tower::{BoxError, PerHostLayer, StatusClassifier};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{Reply, Server};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

type HyperClient = Client<HttpConnector, Empty<Bytes>>;
type Response = http::Response<hyper::body::Incoming>;

fn client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(url).body(Empty::new()).unwrap()
}

/// `poll_ready`, which must not fail, then `call`.
async fn send<S>(svc: &mut S, url: &str) -> Result<Response, BoxError>
where
    S: Service<http::Request<Empty<Bytes>>, Response = Response, Error = BoxError>,
{
    svc.ready().await.expect("poll_ready never fails").call(get(url)).await
}

fn assert_rejected(result: Result<Response, BoxError>, state: State) -> Rejected {
    let err = result.expect_err("a rejection");
    let rejected = err.downcast_ref::<Rejected>().unwrap_or_else(|| panic!("not a rejection: {err}"));
    assert_eq!(rejected.state(), state);
    rejected.clone()
}

// ===== one breaker: the core's layer with StatusClassifier =====

#[tokio::test]
async fn single_breaker_opens_rejects_probes_and_recovers() {
    let server = Server::start();
    let clock = ManualClock::new();
    let breaker = template(2, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer(breaker.clone()).layer(client());

    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 200);
    server.answer(503);
    for _ in 0..2 {
        // A failing status is an `Ok` response, counted.
        assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 503);
    }
    assert_eq!(breaker.state(), State::Open);
    for _ in 0..5 {
        let rejected = assert_rejected(send(&mut svc, &server.url("/")).await, State::Open);
        assert_eq!(rejected.retry_after(), Some(WAIT));
        assert_eq!(rejected.name(), "api");
    }
    assert_eq!(server.hits(), 3, "refused requests never reached the server");

    // The wait passes: one probe; it fails and the breaker opens again.
    clock.advance(WAIT);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 503);
    assert_eq!(breaker.state(), State::Open);
    assert_rejected(send(&mut svc, &server.url("/")).await, State::Open);

    // The next probe succeeds: closed, and requests flow again.
    clock.advance(WAIT);
    server.answer(204);
    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 204);
    assert_eq!(breaker.state(), State::Closed);
    for _ in 0..3 {
        assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 204);
    }
    assert_eq!(server.hits(), 8);
    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures, m.rejected, m.opens), (5, 3, 6, 2));
}

#[tokio::test]
async fn presets_decide_what_fails() {
    let server = Server::start();
    server.answer(404);
    let clock = ManualClock::new();
    // The standard preset: a 404 is the caller's problem, never the server's.
    let standard = template(1, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer(standard.clone()).layer(client());
    for _ in 0..3 {
        assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 404);
    }
    assert!(standard.is_closed());
    // success_2xx: a 404 fails.
    let strict = template(1, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer_with(strict.clone(), Classifier::success_2xx()).layer(client());
    send(&mut svc, &server.url("/")).await.unwrap();
    assert!(strict.is_open());
    // only_200: a 201 fails.
    server.answer(201);
    let original = template(1, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer_with(original.clone(), StatusClassifier::only_200()).layer(client());
    send(&mut svc, &server.url("/")).await.unwrap();
    assert!(original.is_open());
}

#[tokio::test]
async fn retry_after_keeps_the_breaker_open_longer() {
    let server = Server::start();
    server.answer(Reply::status(503).header("retry-after", "60"));
    let clock = ManualClock::new();
    let breaker = template(1, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer(breaker.clone()).layer(client());
    send(&mut svc, &server.url("/")).await.unwrap();
    let rejected = assert_rejected(send(&mut svc, &server.url("/")).await, State::Open);
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(60)));
    clock.advance(WAIT);
    assert_rejected(send(&mut svc, &server.url("/")).await, State::Open);
    clock.advance(Duration::from_secs(55));
    server.answer(200);
    send(&mut svc, &server.url("/")).await.unwrap();
    assert!(breaker.is_closed());
}

#[tokio::test]
async fn transport_errors_count_as_failures() {
    let clock = ManualClock::new();
    let breaker = template(2, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer(breaker.clone()).layer(client());
    let refused = support::refused_url();
    for _ in 0..2 {
        let err = send(&mut svc, &refused).await.unwrap_err();
        assert!(!err.is::<Rejected>(), "the client's own error comes through: {err}");
    }
    assert!(breaker.is_open());
    assert_rejected(send(&mut svc, &refused).await, State::Open);
}

/// While open, `poll_ready` answers at once, even when the inner service is not ready
/// (here a concurrency limit of 1, held by a slow request), and never with an error.
#[tokio::test]
async fn poll_ready_never_errs_while_open_and_does_not_wait_on_the_inner_service() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(30)));
    let clock = ManualClock::new();
    let breaker = template(1, &clock).build().unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(breakerbox_http::tower::layer(breaker.clone()))
        .concurrency_limit(1)
        .service(client());
    let mut other = svc.clone();

    // The only slot is taken by a request the server holds.
    let slow = Box::pin(svc.ready().await.unwrap().call(get(&server.url("/slow"))));
    let slow = in_flight(slow, &server, 1).await;
    // Closed: a clone's readiness waits on the inner service.
    let waiting = tokio::time::timeout(Duration::from_millis(50), other.ready()).await;
    assert!(waiting.is_err(), "closed, poll_ready waits for the concurrency limit");

    breaker.force_open();
    for _ in 0..3 {
        let ready = tokio::time::timeout(Duration::from_secs(1), other.ready()).await;
        let svc = ready.expect("open: ready at once").expect("open: never an error");
        assert_rejected(svc.call(get(&server.url("/"))).await, State::ForcedOpen);
    }
    assert_eq!(server.hits(), 1);
    drop(slow);
}

#[tokio::test]
async fn a_dropped_response_future_frees_its_permit() {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let breaker = template(1, &clock).build().unwrap();
    let mut svc = breakerbox_http::tower::layer(breaker.clone()).layer(client());
    send(&mut svc, &server.url("/")).await.unwrap();
    clock.advance(WAIT);

    // The probe is in flight at the server, which holds it; the one slot is taken.
    server.answer(Reply::status(200).delay(Duration::from_secs(30)));
    let probe = Box::pin(svc.ready().await.unwrap().call(get(&server.url("/probe"))));
    let probe = in_flight(probe, &server, 2).await;
    assert_rejected(send(&mut svc, &server.url("/")).await, State::HalfOpen);

    // Cancelled (a timeout, a dropped task): the slot is free, nothing was recorded.
    drop(probe);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    server.answer(200);
    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 200);
    assert!(breaker.is_closed());
    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures), (1, 1), "the dropped probe recorded nothing");
}

#[tokio::test]
async fn clones_and_every_service_of_a_layer_share_one_breaker() {
    let server = Server::start();
    server.answer(502);
    let breaker = template(2, &ManualClock::new()).build().unwrap();
    let layer = breakerbox_http::tower::layer(breaker.clone());
    let mut a = layer.layer(client());
    let mut b = a.clone();
    let mut c = layer.layer(client());
    send(&mut a, &server.url("/")).await.unwrap();
    send(&mut b, &server.url("/")).await.unwrap();
    assert!(breaker.is_open(), "one failure through each clone trips the shared breaker");
    for svc in [&mut a, &mut b, &mut c] {
        assert_rejected(send(svc, &server.url("/")).await, State::Open);
    }
    assert_eq!(server.hits(), 2);
}

// ===== one breaker per host =====

fn per_host(threshold: u32, clock: &ManualClock) -> PerHostLayer {
    breakerbox_http::tower::per_host(template(threshold, clock)).unwrap()
}

#[tokio::test]
async fn per_host_opens_rejects_probes_and_recovers() {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let layer = per_host(2, &clock);
    let mut svc = layer.layer(client());
    for _ in 0..2 {
        assert_eq!(send(&mut svc, &server.url("/a")).await.unwrap().status(), 500);
    }
    // Open for every path of the host.
    let rejected = assert_rejected(send(&mut svc, &server.url("/b?c")).await, State::Open);
    assert_eq!(rejected.name(), format!("api/{}", server.origin()));
    assert_eq!(rejected.retry_after(), Some(WAIT));
    assert_eq!(server.hits(), 2);
    assert_eq!(layer.hosts().open_keys(), vec![server.origin()]);

    clock.advance(WAIT);
    server.answer(200);
    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 200);
    assert!(svc.breaker_for(&server.url("/").parse().unwrap()).unwrap().is_closed());
    assert!(layer.hosts().open_keys().is_empty());
}

#[tokio::test]
async fn per_host_two_hosts_are_independent() {
    let (down, up) = (Server::start(), Server::start());
    down.answer(503);
    let layer = per_host(2, &ManualClock::new());
    let mut svc = layer.layer(client());
    for _ in 0..2 {
        send(&mut svc, &down.url("/")).await.unwrap();
    }
    assert_rejected(send(&mut svc, &down.url("/")).await, State::Open);
    for _ in 0..5 {
        assert_eq!(send(&mut svc, &up.url("/")).await.unwrap().status(), 200);
    }
    assert_eq!((down.hits(), up.hits()), (2, 5));
    let mut states = layer.hosts().states();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![(down.origin(), State::Open), (up.origin(), State::Closed)];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(states, expected);
}

#[tokio::test]
async fn per_host_poll_ready_never_errs_while_a_host_is_open() {
    let server = Server::start();
    let layer = per_host(1, &ManualClock::new());
    let mut svc = layer.layer(client());
    layer.hosts().get(server.origin().as_str()).force_open();
    for _ in 0..3 {
        let ready = svc.ready().await;
        assert!(ready.is_ok(), "poll_ready is the inner service's readiness");
        assert_rejected(ready.unwrap().call(get(&server.url("/"))).await, State::ForcedOpen);
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn per_host_a_dropped_response_future_frees_its_permit() {
    let server = Server::start();
    server.answer(500);
    let clock = ManualClock::new();
    let layer = per_host(1, &clock);
    let mut svc = layer.layer(client());
    send(&mut svc, &server.url("/")).await.unwrap();
    clock.advance(WAIT);
    server.answer(Reply::status(200).delay(Duration::from_secs(30)));
    let probe = Box::pin(svc.ready().await.unwrap().call(get(&server.url("/probe"))));
    let probe = in_flight(probe, &server, 2).await;
    assert_rejected(send(&mut svc, &server.url("/")).await, State::HalfOpen);
    drop(probe);
    server.answer(200);
    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 200);
    let breaker = layer.hosts().get(server.origin().as_str());
    assert!(breaker.is_closed());
    assert_eq!((breaker.metrics().successes, breaker.metrics().failures), (1, 1));
}

#[tokio::test]
async fn per_host_clones_share_state() {
    let server = Server::start();
    server.answer(500);
    let layer = per_host(2, &ManualClock::new());
    let mut a = layer.layer(client());
    let mut b = a.clone();
    let mut c = layer.clone().layer(client());
    send(&mut a, &server.url("/")).await.unwrap();
    send(&mut b, &server.url("/")).await.unwrap();
    for svc in [&mut a, &mut b, &mut c] {
        assert_rejected(send(svc, &server.url("/")).await, State::Open);
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn per_host_keys_like_http_breaker_and_lets_hostless_requests_through() {
    let hosts: BreakerBox<String> = BreakerBox::new(Breaker::builder().name("h")).unwrap();
    let svc = PerHostLayer::new(hosts.clone()).layer(client());
    let name = |uri: &str| svc.breaker_for(&uri.parse().unwrap()).map(|b| b.name().to_owned());
    assert_eq!(name("http://Example.COM/x").as_deref(), Some("h/http://example.com:80"));
    assert_eq!(name("HTTPS://example.com:443/").as_deref(), Some("h/https://example.com:443"));
    assert_eq!(name("/only/a/path"), None);

    // No host to key: the inner service gets the request unguarded (and refuses it).
    let mut svc = svc;
    let err = send(&mut svc, "/relative").await.unwrap_err();
    assert!(!err.is::<Rejected>());
    assert_eq!(hosts.len(), 2, "nothing was added for the relative request");
}

/// A service remembers its last host's breaker; once that breaker has left the family
/// (removed here, or evicted), the service's next request is guarded and counted by the
/// family's new breaker for the host, not the one it remembered.
#[tokio::test]
async fn per_host_a_service_follows_its_host_to_a_new_breaker() {
    let server = Server::start();
    server.answer(500);
    let layer = per_host(2, &ManualClock::new());
    let mut svc = layer.layer(client());
    for _ in 0..2 {
        send(&mut svc, &server.url("/")).await.unwrap();
    }
    assert_rejected(send(&mut svc, &server.url("/")).await, State::Open);
    let old = layer.hosts().remove(server.origin().as_str()).expect("the host's breaker");
    server.answer(200);
    assert_eq!(send(&mut svc, &server.url("/")).await.unwrap().status(), 200, "the new breaker is closed");
    let new = layer.hosts().get(server.origin().as_str());
    assert!(!new.same_as(&old));
    assert_eq!((new.metrics().successes, old.metrics().successes), (1, 0));
    assert_eq!(server.hits(), 3);
}

/// Requests alternating between hosts, and to one host written in another case, each
/// count on their own host's breaker whatever the service remembers.
#[tokio::test]
async fn per_host_alternating_hosts_count_on_their_own_breakers() {
    let (a, b) = (Server::start(), Server::start());
    b.answer(500);
    let layer = per_host(1000, &ManualClock::new());
    let mut svc = layer.layer(client());
    let upper_a = a.url("/").replace("127.0.0.1", "LOCALHOST");
    for i in 0..40 {
        match i % 4 {
            0 | 1 => assert_eq!(send(&mut svc, &a.url("/")).await.unwrap().status(), 200),
            2 => assert_eq!(send(&mut svc, &b.url("/")).await.unwrap().status(), 500),
            _ => assert_eq!(send(&mut svc, &upper_a).await.unwrap().status(), 200),
        }
    }
    let count = |key: &str| {
        let m = layer.hosts().get(key).metrics();
        (m.successes, m.failures)
    };
    let localhost = a.origin().replace("127.0.0.1", "localhost");
    assert_eq!(count(&a.origin()), (20, 0));
    assert_eq!(count(&b.origin()), (0, 10));
    assert_eq!(count(&localhost), (10, 0), "LOCALHOST is keyed in lower case");
    assert_eq!(layer.hosts().len(), 3);
}

#[tokio::test]
async fn per_host_with_a_custom_classifier() {
    let server = Server::start();
    server.answer(404);
    let layer = per_host(1, &ManualClock::new()).with_classifier(StatusClassifier::success_2xx());
    let mut svc = layer.layer(client());
    send(&mut svc, &server.url("/")).await.unwrap();
    assert_rejected(send(&mut svc, &server.url("/")).await, State::Open);
}

#[test]
fn services_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<PerHostLayer>();
    check::<breakerbox_http::tower::PerHostService<HyperClient>>();
    check::<breakerbox_http::tower::CircuitBreakerService<HyperClient, StatusClassifier>>();
    fn future<F: Send + 'static>() {}
    future::<breakerbox_http::tower::PerHostFuture<hyper_util::client::legacy::ResponseFuture, StatusClassifier>>();
}
