//! Issue 9, problem 6: the caller sees how the breaker counted a response; fallbacks may
//! await; a fallback gives a real stand-in.

use std::sync::Arc;
use std::time::Duration;

use breakerbox::{ManualClock, Outcome};
use breakerbox_http::{Failure, FallbackOn, Verdict};
use tokio::sync::RwLock;

use crate::support::{Reply, Server};

#[tokio::test]
async fn each_response_carries_its_verdict() {
    let server = Server::start();
    let breaker = crate::builder(10, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    server.queue([Reply::status(503).header("retry-after", "7"), Reply::status(404), Reply::status(200)]);
    let failed = breaker.do_request("GET", &server.url("/")).await.unwrap();
    let verdict = Verdict::of(&failed).unwrap();
    assert_eq!(verdict.outcome(), Outcome::Failure);
    assert_eq!(verdict.reason(), "a server error (5xx)");
    assert_eq!(verdict.retry_after(), Some(Duration::from_secs(7)));
    let not_found = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(Verdict::of(&not_found).unwrap().outcome(), Outcome::Success, "a 404 says the server is up");
    let ok = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(Verdict::of(&ok).map(|v| v.outcome()), Some(Outcome::Success));
    let only_200 = crate::original(10, Duration::from_secs(10), &ManualClock::new());
    server.answer(201);
    let created = only_200.do_request("POST", &server.url("/")).await.unwrap();
    assert_eq!(Verdict::of(&created).unwrap().reason(), "not 200 (Classifier::only_200, the original's rule)");
}

#[tokio::test]
async fn an_async_fallback_reads_an_async_cache() {
    let server = Server::start();
    server.answer(500);
    let cache = Arc::new(RwLock::new(String::from("cached stock: 3")));
    let reader = Arc::clone(&cache);
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new())
        .fallback_async(FallbackOn::Both, move |failure| {
            let cache = Arc::clone(&reader);
            async move {
                tokio::task::yield_now().await;
                let body = cache.read().await.clone();
                let status = if matches!(failure, Failure::Rejected(_)) { 203 } else { 200 };
                Ok(http::Response::builder().status(status).body(body).unwrap().into())
            }
        })
        .build()
        .unwrap();
    let first = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!((first.status().as_u16(), first.text().await.unwrap()), (200, "cached stock: 3".to_owned()));
    assert!(breaker.is_open());
    *cache.write().await = String::from("cached stock: 2");
    let rejected = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!((rejected.status().as_u16(), rejected.text().await.unwrap()), (203, "cached stock: 2".to_owned()));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_timeout_goes_to_the_fallback_too() {
    let server = Server::start();
    server.answer(Reply::status(200).delay(Duration::from_secs(5)));
    let breaker = crate::builder(5, Duration::from_secs(10), &ManualClock::new())
        .timeout(Duration::from_millis(50))
        .fallback(FallbackOn::Failures, |failure| match failure {
            Failure::TimedOut(t) => Ok(http::Response::new(format!("slow: {:?}", t.after())).into()),
            other => other.into_result(),
        })
        .build()
        .unwrap();
    let response = breaker.do_request("GET", &server.url("/")).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "slow: 50ms");
    assert_eq!(breaker.metrics().failures, 1);
}
