//! What states and outcomes are called and how they rank: the names events, metric
//! labels and messages carry (a dashboard or an alert matches on them), and the order
//! that picks the worst of a family's states.

use breakerbox::{Breaker, Outcome, State, TripCause};

const STATES: [State; 6] =
    [State::Closed, State::Open, State::HalfOpen, State::ForcedOpen, State::Disabled, State::Recovering];

#[test]
fn states_have_their_label_and_their_message_name() {
    let labels: Vec<&str> = STATES.iter().map(|s| s.as_str()).collect();
    assert_eq!(labels, ["closed", "open", "half_open", "forced_open", "disabled", "recovering"]);
    let shown: Vec<String> = STATES.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["closed", "open", "half-open", "forced open", "disabled", "recovering"]);
}

#[test]
fn severity_ranks_states_by_the_traffic_they_keep_out() {
    let ranks: Vec<u8> = STATES.iter().map(|s| s.severity()).collect();
    assert_eq!(ranks, [1, 4, 3, 5, 0, 2]);
    let mut by_severity = STATES;
    by_severity.sort_by_key(|s| std::cmp::Reverse(s.severity()));
    assert_eq!(
        by_severity,
        [State::ForcedOpen, State::Open, State::HalfOpen, State::Recovering, State::Closed, State::Disabled]
    );
}

#[test]
fn outcomes_have_their_label() {
    let labels: Vec<&str> = [Outcome::Success, Outcome::Failure, Outcome::Ignored].iter().map(|o| o.as_str()).collect();
    assert_eq!(labels, ["success", "failure", "ignored"]);
}

#[test]
fn trip_causes_have_their_label() {
    let causes =
        [TripCause::ConsecutiveFailures, TripCause::FailureRate, TripCause::SlowCallRate, TripCause::HungCalls];
    let labels: Vec<&str> = causes.iter().map(|c| c.as_str()).collect();
    assert_eq!(labels, ["consecutive_failures", "failure_rate", "slow_call_rate", "hung_calls"]);
}

/// A builder's `Debug` counts its listeners of each kind (they are closures: nothing
/// else of them can be shown).
#[test]
fn a_builder_shows_how_many_listeners_it_has() {
    let builder = Breaker::builder().on_state_change(|_| {}).on_state_change(|_| {});
    let shown = format!("{builder:?}");
    assert!(shown.contains("Listeners { transition: 2, rejection: 0, outcome: 0 }"), "{shown}");
}

#[test]
fn permits_show_their_breaker_and_the_state_they_were_admitted_in() {
    let b = Breaker::builder().name("inventory").build().unwrap();
    let permit = b.try_acquire().unwrap();
    assert_eq!(format!("{permit:?}"), r#"Permit { breaker: "inventory", admitted_in: Closed }"#);
    permit.success();
    let owned = b.try_acquire_owned().unwrap();
    assert_eq!(format!("{owned:?}"), r#"OwnedPermit { breaker: "inventory", admitted_in: Closed }"#);
    owned.success();
}

/// A family's `Debug` shows its bound and how many breakers it holds; its builder's, the
/// settings it will build with.
#[test]
fn a_family_and_its_builder_show_their_bound_and_settings() {
    use breakerbox::BreakerBox;
    use std::time::Duration;

    let builder = BreakerBox::<String>::builder(Breaker::builder().name("api"))
        .max_breakers(7)
        .idle_timeout(Duration::from_secs(30))
        .max_open_fraction(0.25);
    let shown = format!("{builder:?}");
    assert!(shown.starts_with("BreakerBoxBuilder { template: "), "{shown}");
    assert!(shown.contains("max: 7, idle: Some(30s), max_open_fraction: Some(0.25) }"), "{shown}");
    let family = builder.build().unwrap();
    family.get("a");
    family.get("b");
    let shown = format!("{family:?}");
    assert!(shown.starts_with("BreakerBox { template: "), "{shown}");
    assert!(shown.ends_with("len: 2, max: 7 }"), "{shown}");
}
