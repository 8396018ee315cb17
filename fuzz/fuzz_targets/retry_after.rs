//! `Retry-After` parsing, through the crate's public way in: the input is the header's
//! value, put on a 429, a 503 and other statuses, classified by `tower::StatusClassifier`
//! (the same `Classifier::verdict` that `HttpBreaker` and the reqwest middleware use),
//! and the resulting report fed to a breaker on a `ManualClock`.
//!
//! Checked, besides "no panic": the hint is what RFC 9110 says (delay-seconds, digits
//! only, too many digits read as "a very long time"; or an HTTP-date, in any of its
//! three forms, measured from now, a past date being zero; anything else none), only a
//! failing 429 or 503 carries one, and a breaker tripped by the failure stays open for
//! `max(open wait, min(hint, retry_after_limit))`, rounded up to the millisecond.

#![no_main]

use std::time::{Duration, SystemTime};

use breakerbox::{Breaker, Classify, ManualClock, OpenWait, Outcome, Policy, Report, State};
use breakerbox_http::tower::StatusClassifier;
use http::header::{HeaderValue, RETRY_AFTER};
use libfuzzer_sys::fuzz_target;

const OPEN_WAIT: Duration = Duration::from_secs(1);

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let before = SystemTime::now();
    let reports: Vec<(u16, Report)> = [429u16, 503, 500, 502, 200, 404]
        .into_iter()
        .flat_map(|status| {
            let value = value.clone();
            [StatusClassifier::standard(), StatusClassifier::success_2xx(), StatusClassifier::only_200()]
                .into_iter()
                .map(move |classifier| {
                    let response = http::Response::builder().status(status).header(RETRY_AFTER, value.clone());
                    let result = Ok::<_, std::io::Error>(response.body(()).expect("a valid response"));
                    (status, classifier.classify(&result))
                })
        })
        .collect();
    let after = SystemTime::now();

    let expected = expected_hint(&value, before, after);
    for (status, report) in &reports {
        let hint = report.retry_after();
        if report.outcome() != Outcome::Failure || !matches!(status, 429 | 503) {
            assert_eq!(hint, None, "a hint on {status} {:?}: {value:?}", report.outcome());
            continue;
        }
        match expected {
            Expected::None => assert_eq!(hint, None, "{value:?}"),
            Expected::Exactly(d) => assert_eq!(hint, Some(d), "{value:?}"),
            Expected::Between(lo, hi) => {
                let h = hint.unwrap_or_else(|| panic!("no hint from the date {value:?}"));
                assert!(lo <= h && h <= hi, "{value:?}: {h:?} not in {lo:?}..={hi:?}");
            }
        }
    }

    // The hint's effect on a breaker: a 503 with it trips a breaker that opens on one
    // failure, for the open wait or the hint up to the limit, whichever is longer.
    let (_, report) = reports[3];
    for limit in [Duration::ZERO, Duration::from_secs(300), Duration::MAX] {
        let clock = ManualClock::new();
        let breaker = Breaker::builder()
            .policy(Policy::consecutive_failures(1))
            .open_wait(OpenWait::fixed(OPEN_WAIT))
            .retry_after_limit(limit)
            .clock(clock.clone())
            .build()
            .expect("valid settings");
        breaker.try_acquire().expect("closed").record(report);
        assert_eq!(breaker.state(), State::Open, "{value:?}");
        let wait = report.retry_after().map_or(OPEN_WAIT, |h| OPEN_WAIT.max(h.min(limit)));
        let wait = round_up_to_millis(wait);
        let rejected = breaker.try_acquire().expect_err("open");
        let left = rejected.retry_after().expect("an open breaker says when");
        assert!(left <= wait, "{value:?}, limit {limit:?}: retry after {left:?}, the wait is {wait:?}");
        const DAY: Duration = Duration::from_secs(86_400);
        if wait <= DAY {
            assert_eq!(left, wait, "{value:?}, limit {limit:?}");
            clock.advance(wait - Duration::from_nanos(1));
            assert!(breaker.try_acquire().is_err(), "{value:?}: admitted before the wait ended");
            clock.advance(Duration::from_nanos(1));
            assert!(breaker.try_acquire().is_ok(), "{value:?}: no probe once the wait ended");
        } else {
            // A very long wait (up to 584 years): the rejection says at least a day (it
            // may cap what it says), and the breaker is still open a day later.
            assert!(left >= DAY, "{value:?}, limit {limit:?}: retry after {left:?}, the wait is {wait:?}");
            clock.advance(DAY);
            assert!(breaker.try_acquire().is_err(), "{value:?}: admitted a day into a wait of {wait:?}");
        }
    }
});

enum Expected {
    None,
    Exactly(Duration),
    Between(Duration, Duration),
}

/// What RFC 9110 § 10.2.3 makes of `value`, read between `before` and `after`.
fn expected_hint(value: &HeaderValue, before: SystemTime, after: SystemTime) -> Expected {
    let Ok(text) = value.to_str() else { return Expected::None };
    let text = text.trim_matches([' ', '\t']);
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs = text.trim_start_matches('0');
        return Expected::Exactly(Duration::from_secs(if secs.len() > 20 {
            u64::MAX
        } else {
            secs.parse::<u128>().map_or(0, |n| u64::try_from(n).unwrap_or(u64::MAX))
        }));
    }
    match httpdate::parse_http_date(text) {
        Ok(date) => Expected::Between(
            date.duration_since(after).unwrap_or(Duration::ZERO),
            date.duration_since(before).unwrap_or(Duration::ZERO),
        ),
        Err(_) => Expected::None,
    }
}

fn round_up_to_millis(d: Duration) -> Duration {
    let millis = d.as_nanos().div_ceil(1_000_000);
    Duration::from_nanos(u64::try_from(millis * 1_000_000).unwrap_or(u64::MAX))
}
