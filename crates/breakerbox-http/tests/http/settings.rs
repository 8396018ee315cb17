//! Issue 9, problem 6 (builder order): settings given one by one win over the template's,
//! whichever comes first.

use std::time::Duration;

use breakerbox::{Breaker, ManualClock, OpenWait, Policy};
use breakerbox_http::HttpBreaker;

use crate::support::Server;

fn template() -> breakerbox::BreakerBuilder {
    Breaker::builder()
        .name("template")
        .policy(Policy::consecutive_failures(1))
        .open_wait(OpenWait::fixed(Duration::from_secs(10)))
}

#[test]
fn a_name_before_or_after_the_template_is_kept() {
    let client = reqwest::Client::new;
    let before = HttpBreaker::builder(client()).without_per_host().name("mine").template(template()).build().unwrap();
    let after = HttpBreaker::builder(client()).without_per_host().template(template()).name("mine").build().unwrap();
    assert_eq!(before.name(), "mine");
    assert_eq!(after.name(), "mine");
    let only = HttpBreaker::builder(client()).template(template()).build().unwrap();
    assert_eq!(only.name(), "template");
}

#[tokio::test]
async fn a_clock_before_or_after_the_template_is_kept() {
    let server = Server::start();
    server.answer(500);
    for clock_first in [true, false] {
        let clock = ManualClock::new();
        let builder = HttpBreaker::builder(reqwest::Client::new()).without_per_host();
        let builder = if clock_first {
            builder.clock(clock.clone()).template(template())
        } else {
            builder.template(template()).clock(clock.clone())
        };
        let breaker = builder.build().unwrap();
        breaker.do_request("GET", &server.url("/")).await.unwrap();
        assert!(breaker.is_open(), "the template's policy");
        clock.advance(Duration::from_secs(10));
        assert!(breaker.is_half_open(), "clock first: {clock_first}: the manual clock moves the breaker");
    }
}
