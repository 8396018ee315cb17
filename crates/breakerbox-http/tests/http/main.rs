//! Integration tests of `HttpBreaker` against a real HTTP server on 127.0.0.1.
//!
//! The server ([`support::Server`]) counts every request that reaches it, so a test can
//! prove that a request the breaker refused never left the process. Time is a
//! `ManualClock` wherever the breaker's windows matter: nothing sleeps for a window.
#![cfg(feature = "reqwest")]

#[path = "../support/server.rs"]
mod support;

#[path = "../../examples/custom_client.rs"]
#[allow(dead_code)]
mod custom_client_example;

mod caller_errors;
mod classify;
mod custom_client;
mod fallback;
mod half_open;
mod hung;
mod methods;
mod original;
mod outcomes;
mod per_host;
mod reqwest_builder;
mod retry;
mod retry_after;
mod settings;
mod shadow;
mod story;
mod throttle;
mod timeout;
#[cfg(feature = "ureq")]
mod ureq;
mod urls;

use std::time::Duration;

use breakerbox::{ManualClock, OpenWait, Policy};
use breakerbox_http::{Classifier, HttpBreaker, HttpBreakerBuilder};

/// The original's settings (`HttpBreaker::new`: only 200 succeeds, no `Retry-After`,
/// no timeout, one breaker) on a manual clock.
fn original(threshold: u32, window: Duration, clock: &ManualClock) -> HttpBreaker<reqwest::Client> {
    builder(threshold, window, clock)
        .classifier(Classifier::only_200())
        .retry_after_limit(Duration::ZERO)
        .without_timeout()
        .build()
        .unwrap()
}

/// A builder with one breaker for every host, a consecutive-failures policy and a fixed
/// window on a manual clock.
fn builder(threshold: u32, window: Duration, clock: &ManualClock) -> HttpBreakerBuilder<reqwest::Client> {
    HttpBreaker::builder(reqwest::Client::new())
        .without_per_host()
        .policy(Policy::consecutive_failures(threshold))
        .open_wait(OpenWait::fixed(window))
        .clock(clock.clone())
}

#[test]
fn handles_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<HttpBreaker<reqwest::Client>>();
    check::<breakerbox_http::Classifier>();
    check::<breakerbox_http::Retry>();
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    error::<breakerbox_http::HttpError<reqwest::Error>>();
    error::<breakerbox_http::ConfigError>();
}
