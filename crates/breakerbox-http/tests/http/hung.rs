//! In-flight age through `HttpBreaker`, against a real server that hangs: the breaker
//! opens while the requests are still waiting, before their timeout.

use std::time::Duration;

use breakerbox::{Policy, State, TripCause};
use breakerbox_http::HttpBreaker;

use crate::support::{Reply, Server};

#[tokio::test]
async fn a_hanging_server_trips_the_breaker_before_the_timeout() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(15)));
    let tripped = std::sync::Arc::new(std::sync::Mutex::new(None));
    let t = tripped.clone();
    let breaker = HttpBreaker::builder(reqwest::Client::new())
        .without_per_host()
        .policy(Policy::consecutive_failures(3))
        .hung_after(Duration::from_millis(200))
        .timeout(Duration::from_secs(10))
        .on_state_change(move |e| {
            if e.to == State::Open {
                *t.lock().unwrap() = Some((e.tripped_by, std::time::Instant::now()));
            }
        })
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let hanging: Vec<_> = (0..3)
        .map(|_| {
            let (breaker, url) = (breaker.clone(), server.url("/"));
            tokio::spawn(async move { breaker.do_request("GET", &url).await })
        })
        .collect();
    // New requests keep arriving: the one after the threshold counts the hung ones.
    let mut opened = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let _ = tokio::time::timeout(Duration::from_millis(1), breaker.do_request("GET", &server.url("/"))).await;
        if breaker.state() == State::Open {
            opened = true;
            break;
        }
    }
    assert!(opened, "{:?}", breaker.metrics());
    let (cause, at) = tripped.lock().unwrap().expect("an opening");
    assert_eq!(cause, Some(TripCause::HungCalls));
    let after = at - started;
    // 200 ms and a 50 ms bucket, then the next request: about 0.25 s on a quiet machine;
    // the bound leaves room for a loaded one and is still half the 10 s timeout.
    assert!(after < Duration::from_secs(5), "opened {after:?} after the first request, long before the 10 s timeout");
    for h in hanging {
        h.abort();
    }
}
