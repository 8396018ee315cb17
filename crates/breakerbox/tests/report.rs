//! `Report`: what a caller tells the breaker about a call, read back as it was given
//! (adapters and listeners read reports they did not build).

use std::time::Duration;

use breakerbox::{Outcome, Report};

#[test]
fn a_report_reads_back_what_it_was_given() {
    let plain = Report::failure();
    assert_eq!(
        (plain.outcome(), plain.duration(), plain.retry_after(), plain.is_overload()),
        (Outcome::Failure, None, None, false)
    );
    let full = Report::overloaded().with_duration(Duration::from_millis(35)).with_retry_after(Duration::from_secs(120));
    assert_eq!(full.outcome(), Outcome::Failure);
    assert_eq!(full.duration(), Some(Duration::from_millis(35)));
    assert_eq!(full.retry_after(), Some(Duration::from_secs(120)));
    assert!(full.is_overload());
    for (report, outcome) in [(Report::success(), Outcome::Success), (Report::ignored(), Outcome::Ignored)] {
        assert_eq!(report.outcome(), outcome);
        assert!(!report.is_overload(), "only `overloaded` is an overload");
        assert_eq!(Report::from(outcome), report);
    }
}
