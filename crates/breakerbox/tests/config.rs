//! Settings from TOML, JSON and the environment; round trips; every bad key named.
#![cfg(feature = "serde")]

use std::collections::BTreeMap;
use std::time::Duration;

use breakerbox::config::{BreakerBoxConfig, BreakerConfig, CancelConfig, OpenWaitConfig, WindowConfig};
use breakerbox::{ManualClock, State};

const TOML: &str = r#"
[payments]
consecutive_failures = 3
failure_rate = { threshold = 0.5, window = 10, min_calls = 4 }
slow_calls = { slower_than = "2s", threshold = 0.8, window = "1m", buckets = 6 }
open_wait = { base = "1s", max = "1m", jitter = 0.2 }
half_open_probes = 2
probe_lease = "45s"
cancel_counts_after = "2s"
retry_after_limit = "5m"
throttle = { k = 1.5, window = "20s", buckets = 20, max_reject = 0.5, min_requests = 1 }
recovery_ramp = { duration = "20s", min_fraction = 0.25, aggression = 1.0, window = 8, min_calls = 4, abort_after = 2, abort_failure_rate = 0.6 }

[search]
name = "search-api"
shadow = true
hung_after = "3s"
open_wait = "250ms"
cancel_counts_after = "never"
"#;

#[test]
fn several_named_breakers_from_toml() {
    let all: BTreeMap<String, BreakerConfig> = toml::from_str(TOML).unwrap();
    let payments = &all["payments"];
    assert_eq!(payments.consecutive_failures, Some(3));
    assert_eq!(payments.failure_rate.as_ref().unwrap().window, Some(WindowConfig::Calls(10)));
    assert_eq!(payments.slow_calls.as_ref().unwrap().window, Some(WindowConfig::Time(Duration::from_secs(60))));
    assert_eq!(
        payments.open_wait,
        Some(OpenWaitConfig::Exponential { base: Duration::from_secs(1), max: Duration::from_secs(60), jitter: 0.2 })
    );
    assert_eq!(payments.probe_lease, Some(Duration::from_secs(45)));
    assert_eq!(payments.cancel_counts_after, Some(CancelConfig::After(Duration::from_secs(2))));
    assert_eq!(all["search"].cancel_counts_after, Some(CancelConfig::Never));
    assert_eq!(all["search"].open_wait, Some(OpenWaitConfig::Fixed { wait: Duration::from_millis(250), jitter: 0.0 }));
    let throttle = payments.throttle.as_ref().unwrap();
    assert_eq!((throttle.k, throttle.window, throttle.buckets), (Some(1.5), Some(Duration::from_secs(20)), Some(20)));
    assert_eq!(all["search"].throttle, None);
    assert_eq!(
        payments.recovery_ramp.as_ref().unwrap().ramp(),
        breakerbox::Ramp::new()
            .duration(Duration::from_secs(20))
            .min_fraction(0.25)
            .window(8)
            .min_calls(4)
            .abort_after(2)
            .abort_failure_rate(0.6)
    );

    // The settings drive behaviour: payments trips on its 3rd consecutive failure and
    // admits 2 probes.
    let clock = ManualClock::new();
    let b = payments.builder().name("payments").clock(clock.clone()).build().unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(1));
    let (_p1, _p2) = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    assert!(b.try_acquire().is_err());
    assert_eq!(all["search"].build().unwrap().name(), "search-api");
    assert!(all["search"].build().unwrap().is_shadow());
    assert_eq!(all["search"].hung_after, Some(Duration::from_secs(3)));
    assert!(!payments.build().unwrap().is_shadow());

    // The throttle's keys drive it too: overloaded calls and p is capped at 0.5, with a
    // retry-after of one 1 s bucket.
    let b = payments
        .builder()
        .clock(ManualClock::new())
        .policy(breakerbox::Policy::consecutive_failures(1_000))
        .build()
        .unwrap();
    for _ in 0..100 {
        if let Ok(permit) = b.try_acquire() {
            permit.record(breakerbox::Report::overloaded());
        }
    }
    assert_eq!(b.metrics().reject_probability, 0.5);
    let throttled = (0..100).find_map(|_| b.try_acquire().err()).unwrap();
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
}

#[test]
fn round_trips_through_toml_and_json() {
    let all: BTreeMap<String, BreakerConfig> = toml::from_str(TOML).unwrap();
    let again: BTreeMap<String, BreakerConfig> = toml::from_str(&toml::to_string(&all).unwrap()).unwrap();
    assert_eq!(all, again);
    let json = serde_json::to_string(&all).unwrap();
    let again: BTreeMap<String, BreakerConfig> = serde_json::from_str(&json).unwrap();
    assert_eq!(all, again);
    assert!(json.contains(r#""probe_lease":"45s""#), "{json}");
    assert!(json.contains(r#""cancel_counts_after":"never""#), "{json}");
}

#[test]
fn the_cancellation_rule_from_settings_changes_what_a_dropped_call_counts() {
    let all: BTreeMap<String, BreakerConfig> = toml::from_str(TOML).unwrap();
    let clock = ManualClock::new();
    let two_seconds = all["payments"].builder().clock(clock.clone()).build().unwrap();
    let never = all["search"].builder().clock(clock.clone()).build().unwrap();
    let (a, b, c) =
        (two_seconds.try_acquire().unwrap(), never.try_acquire().unwrap(), two_seconds.try_acquire().unwrap());
    clock.advance(Duration::from_secs(1));
    drop(c); // 1 s: under the 2 s threshold
    clock.advance(Duration::from_secs(1));
    drop((a, b));
    assert_eq!(two_seconds.metrics().failures, 1, "dropped after 2 s: a failure; after 1 s: nothing");
    assert_eq!(never.metrics().failures, 0);
    let bad: Result<BreakerConfig, _> = toml::from_str(r#"cancel_counts_after = "soon""#);
    assert!(bad.unwrap_err().to_string().contains("never"), "the error says what is accepted");
}

#[test]
#[allow(clippy::result_large_err)] // figment's error type, in figment's API
fn from_environment_variables() {
    use figment::Figment;
    use figment::providers::{Env, Format, Toml};

    // figment's Jail sets the variables for this closure only.
    figment::Jail::expect_with(|jail| {
        jail.set_env("BBTEST_ENV_NAME", "orders");
        jail.set_env("BBTEST_ENV_CONSECUTIVE_FAILURES", "7");
        jail.set_env("BBTEST_ENV_OPEN_WAIT", "90s");
        jail.set_env("BBTEST_ENV_FAILURE_RATE__THRESHOLD", "0.25");
        jail.set_env("BBTEST_ENV_FAILURE_RATE__WINDOW", "30s");
        let config: BreakerConfig = Figment::new()
            .merge(Toml::string("half_open_probes = 3"))
            .merge(Env::prefixed("BBTEST_ENV_").split("__"))
            .extract()?;
        assert_eq!(config.name.as_deref(), Some("orders"));
        assert_eq!(config.consecutive_failures, Some(7));
        assert_eq!(config.half_open_probes, Some(3));
        assert_eq!(config.open_wait, Some(OpenWaitConfig::Fixed { wait: Duration::from_secs(90), jitter: 0.0 }));
        let rate = config.failure_rate.unwrap();
        assert_eq!((rate.threshold, rate.window), (0.25, Some(WindowConfig::Time(Duration::from_secs(30)))));
        Ok(())
    });
}

#[test]
fn families_from_settings() {
    let config: BreakerBoxConfig =
        toml::from_str("name = \"hosts\"\nconsecutive_failures = 1\nmax_breakers = 2\nidle_timeout = \"10m\"").unwrap();
    assert_eq!(config.max_breakers, Some(2));
    let family = config.build::<String>().unwrap();
    family.get("a").try_acquire().unwrap().failure();
    assert_eq!(family.open_keys(), vec!["a".to_string()]);
    assert_eq!(family.get("a").name(), "hosts/a");
    assert!(config.builder::<String>().max_breakers(0).build().is_err());

    // The panic valve's key: two of three may not open together.
    let config: BreakerBoxConfig = toml::from_str("consecutive_failures = 1\nmax_open_fraction = 0.5").unwrap();
    let family = config.build::<String>().unwrap();
    for host in ["a", "b", "c"] {
        family.get(host);
    }
    for host in ["a", "b", "c"] {
        family.get(host).try_acquire().unwrap().failure();
    }
    assert_eq!(family.open_keys().len(), 1);
    let bad: BreakerBoxConfig = toml::from_str("max_open_fraction = 1.0").unwrap();
    assert_eq!(bad.build::<String>().unwrap_err().field(), "max_open_fraction");
}

/// Bad input: a parse error that names the key, or a build error that names the key.
#[test]
fn every_invalid_key_gives_a_named_error() {
    let parse_errors = [
        ("consecutive_failure = 3", "consecutive_failure"),
        ("open_wait = \"soon\"", "invalid duration \"soon\""),
        ("open_wait = { base = \"1s\" }", "missing field `max`"),
        ("open_wait = { max = \"1s\" }", "missing field `base`"),
        // A value of the wrong type: the error says what the key takes.
        ("open_wait = 30", "expected a duration (\"30s\") or a table with `fixed`, or `base` and `max`"),
        ("hung_after = 30", "expected a duration such as \"30s\" or \"250ms\""),
        ("cancel_counts_after = 5", "expected a duration such as \"1s\", or \"never\""),
        ("open_wait = { fixed = \"1s\", jitter = true }", "expected a fraction from 0.0 to 1.0"),
        (
            "failure_rate = { threshold = 0.5, window = true }",
            "expected a number of calls (100) or a duration (\"60s\")",
        ),
        ("open_wait = { fixed = \"1s\", base = \"1s\", max = \"2s\" }", "not both"),
        ("open_wait = { fixd = \"1s\" }", "fixd"),
        ("failure_rate = { threshold = 0.5, window = -3 }", "negative"),
        ("failure_rate = { threshold = 0.5, window = \"lots\" }", "invalid duration \"lots\""),
        ("failure_rate = { window = 10 }", "threshold"),
        ("slow_calls = { threshold = 0.5 }", "slower_than"),
        ("half_open_probes = \"two\"", "half_open_probes"),
        ("probe_lease = 30", "probe_lease"),
        ("throttle = { kk = 2.0 }", "kk"),
        ("recovery_ramp = { length = \"1s\" }", "length"),
        ("throttle = { window = 30 }", "window"),
    ];
    for (input, needle) in parse_errors {
        let err = toml::from_str::<BreakerConfig>(input).unwrap_err().to_string();
        assert!(err.contains(needle), "{input:?}: {err:?} does not mention {needle:?}");
    }
    let build_errors = [
        ("consecutive_failures = 0", "policy.consecutive_failures"),
        ("failure_rate = { threshold = 1.5 }", "policy.failure_rate.threshold"),
        ("failure_rate = { threshold = 0.5, window = 0 }", "policy.failure_rate.window"),
        ("failure_rate = { threshold = 0.5, min_calls = 0 }", "policy.failure_rate.min_calls"),
        ("slow_calls = { slower_than = \"0s\", threshold = 0.5 }", "policy.slow_calls.slower_than"),
        (
            "slow_calls = { slower_than = \"1s\", threshold = 0.5, window = \"1m\", buckets = 0 }",
            "policy.slow_calls.buckets",
        ),
        ("open_wait = \"0s\"", "open_wait"),
        ("open_wait = { base = \"10s\", max = \"1s\" }", "open_wait.max"),
        ("open_wait = { fixed = \"10s\", jitter = 2.0 }", "open_wait.jitter"),
        ("half_open_probes = 0", "half_open_probes"),
        ("probe_lease = \"0s\"", "probe_lease"),
        ("throttle = { k = 0.5 }", "throttle.k"),
        ("throttle = { max_reject = 1.0 }", "throttle.max_reject"),
        ("throttle = { aggression = 0.0 }", "throttle.aggression"),
        ("throttle = { padding = -1.0 }", "throttle.padding"),
        ("throttle = { buckets = 0 }", "throttle.buckets"),
        ("throttle = { window = \"5ms\", buckets = 10 }", "throttle.window"),
        ("recovery_ramp = { duration = \"0s\" }", "recovery_ramp.duration"),
        ("hung_after = \"0s\"", "hung_after"),
        ("recovery_ramp = { min_fraction = 0.0 }", "recovery_ramp.min_fraction"),
        ("recovery_ramp = { window = 20 }", "recovery_ramp.window"),
        ("recovery_ramp = { window = 4, min_calls = 5 }", "recovery_ramp.min_calls"),
    ];
    for (input, field) in build_errors {
        let config: BreakerConfig = toml::from_str(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        let err = config.build().unwrap_err();
        assert_eq!(err.field(), field, "{input}");
        assert!(err.to_string().contains(field));
    }
}
