//! Issue 9, problem 4: the caller's mistakes (https without a TLS feature of reqwest, a
//! port out of range, a URL without a scheme, a request reqwest cannot build) are errors
//! that say what to do, and the breaker counts them nowhere.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::HttpError;

/// The breaker after `f` has run: closed, every counter still zero.
fn untouched(breaker: &breakerbox_http::HttpBreaker<reqwest::Client>) {
    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures, m.ignored, m.rejected), (0, 0, 0, 0), "{m:?}");
    assert!(breaker.is_closed());
}

#[tokio::test]
async fn https_without_a_tls_feature_says_to_enable_one_and_is_never_counted() {
    // This crate's tests build reqwest without any TLS feature.
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    for _ in 0..20 {
        match breaker.do_request("GET", "https://127.0.0.1:1/x").await {
            Err(HttpError::InvalidUrl { url, reason }) => {
                assert_eq!(url, "https://127.0.0.1:1/x");
                assert!(reason.contains("enable one in your Cargo.toml"), "{reason}");
                assert!(reason.contains("rustls"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    untouched(&breaker);
}

#[tokio::test]
async fn a_port_out_of_range_and_a_missing_scheme_say_what_to_do() {
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    let cases = [
        ("http://127.0.0.1:99999/", "invalid port: the port must be a number from 1 to 65535"),
        ("http://127.0.0.1:0/", "invalid port: the port must be a number from 1 to 65535"),
        ("localhost:8080/x", "no scheme: expected http:// or https://"),
        ("example.com/path", "no scheme: expected http:// or https://"),
    ];
    for _ in 0..5 {
        for (url, want) in cases {
            match breaker.do_request("GET", url).await {
                Err(HttpError::InvalidUrl { reason, .. }) => assert_eq!(reason, want, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
    untouched(&breaker);
}

#[tokio::test]
async fn a_request_reqwest_cannot_build_is_an_invalid_request_never_counted() {
    let client = reqwest::Client::new();
    let breaker = crate::builder(1, Duration::from_secs(10), &ManualClock::new()).build().unwrap();
    for _ in 0..5 {
        let bad_header = client.get("http://127.0.0.1:1/").header("bad header", "v");
        let err = breaker.execute(bad_header).await.unwrap_err();
        assert!(matches!(err, HttpError::InvalidRequest(ref e) if e.is_builder()), "{err:?}");
        assert!(err.to_string().starts_with("invalid request (not sent, not counted): builder error"), "{err}");
        let bad_port = breaker.execute(client.get("http://127.0.0.1:99999/")).await.unwrap_err();
        assert!(bad_port.to_string().contains("invalid port"), "{bad_port}");
    }
    untouched(&breaker);
}
