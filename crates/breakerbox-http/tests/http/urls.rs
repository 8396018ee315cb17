//! A malformed URL is an error, never a panic, and never counted against the breaker.

use std::time::Duration;

use breakerbox::ManualClock;
use breakerbox_http::HttpError;

#[tokio::test]
async fn malformed_urls_are_errors_and_are_not_counted() {
    let breaker = crate::original(1, Duration::from_secs(10), &ManualClock::new());
    let cases = [
        ("not a url", "not a valid URI"),
        ("", "not a valid URI"),
        ("http://exa mple.com/", "not a valid URI"),
        ("http://", "not a valid URI"),
        ("/relative/path", "no scheme: expected http:// or https://"),
        ("ftp://127.0.0.1/file", "unsupported scheme: expected http or https"),
        ("mailto:someone@example.com", "no scheme: expected http:// or https://"),
        ("http://[::1/", "not a valid URI"),
    ];
    for (url, reason) in cases {
        match breaker.do_request("GET", url).await {
            Err(HttpError::InvalidUrl { url: given, reason: why }) => {
                assert_eq!(given, url);
                assert_eq!(why, reason, "{url:?}");
            }
            other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
        }
    }
    // `send` checks its URI too.
    let relative = http::Request::get("/just/a/path").body("").unwrap();
    assert!(matches!(breaker.send(relative).await, Err(HttpError::InvalidUrl { .. })));

    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures, m.ignored, m.rejected), (0, 0, 0, 0));
    assert!(breaker.is_closed(), "threshold 1, and still closed");
    assert!(breaker.breaker_for("not a url").is_err());
}
