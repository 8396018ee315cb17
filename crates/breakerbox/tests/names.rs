//! What states and outcomes are called and how they rank: the names events, metric
//! labels and messages carry (a dashboard or an alert matches on them), and the order
//! that picks the worst of a family's states.

use breakerbox::{Outcome, State};

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
