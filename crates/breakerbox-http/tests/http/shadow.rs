//! Shadow mode through `HttpBreaker`, against a real server: an open breaker in shadow
//! mode still sends every request, and counts the ones it would have refused.

use std::time::Duration;

use breakerbox::{ManualClock, State};
use breakerbox_http::HttpError;

use crate::support::Server;

#[tokio::test]
async fn an_open_breaker_in_shadow_mode_sends_every_request_and_counts_them() {
    let server = Server::start();
    server.answer(503);
    let clock = ManualClock::new();
    let breaker = crate::builder(2, Duration::from_secs(10), &clock).shadow(true).build().unwrap();
    for _ in 0..10 {
        let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
        assert_eq!(response.status(), 503);
    }
    assert_eq!(server.hits(), 10, "nothing was refused");
    let m = breaker.metrics();
    assert_eq!(m.state, State::Open);
    assert_eq!((m.would_reject, m.rejected), (8, 0));
    // Enforcing again: refused, and nothing reaches the server.
    breaker.set_shadow(false);
    assert!(matches!(breaker.do_request("GET", &server.url("/")).await, Err(HttpError::CircuitOpen(_))));
    assert_eq!(server.hits(), 10);
}
