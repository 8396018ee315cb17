//! Each scenario's documented shape, with no breaker, the default breaker, and a config
//! made for it; comparisons and determinism through the library.

use std::time::Duration;

use breakerbox::config::BreakerConfig;
use breakerbox_sim::{Contender, Format, Kind, Replayed, Scenario, Summary, render, replay, run_cli};

const MINUTE: Duration = Duration::from_secs(60);

fn run(scenario: &Scenario, contender: &Contender) -> Summary {
    replay(scenario, contender, MINUTE, 1).unwrap()
}

fn config(name: &str, toml_text: &str) -> Contender {
    Contender::breaker(name, toml::from_str::<BreakerConfig>(toml_text).unwrap())
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn outage_wastes_a_handful_with_the_default_breaker_and_all_without() {
    let outage = Scenario::new(Kind::Outage);
    let none = run(&outage, &Contender::none());
    let default = run(&outage, &Contender::default_breaker());
    // 20 s down at 20 calls/s.
    assert_eq!(none.wasted, 400);
    assert_eq!(none.offered, 1200);
    // Five consecutive failures open it; the 30 s open wait outlasts the outage.
    assert!(default.wasted <= 6, "{default:?}");
    assert_eq!(default.opens, 1);
    assert!(default.first_rejection_s.unwrap() < 0.5, "{default:?}");
    let lag = default.recovery_lag_s.unwrap();
    assert!((10.0..11.0).contains(&lag), "open 30 s from ~10.25 s, healthy from 30 s: {lag}");
    assert_eq!(default.offered, none.offered);
}

#[test]
fn brownout_throttle_keeps_goodput_near_capacity_where_the_default_breaker_does_not() {
    let brownout = Scenario::new(Kind::Brownout);
    let default = run(&brownout, &Contender::default_breaker());
    let throttle =
        run(&brownout, &config("throttle", "throttle = {}\nfailure_rate = { threshold = 0.9, window = \"10s\" }"));
    let none = run(&brownout, &Contender::none());
    // Capacity 50/s: without a breaker the backend serves exactly that.
    assert!((none.trouble_goodput - 50.0).abs() < 0.5, "{none:?}");
    // The classic breaker opens on the first burst of sheds and stays open 30 s.
    assert!(default.opens >= 1 && default.trouble_goodput < 10.0, "{default:?}");
    // The throttle never opens and keeps the backend serving at capacity.
    assert_eq!(throttle.opens, 0, "{throttle:?}");
    assert!(throttle.trouble_goodput > 45.0, "{throttle:?}");
    assert!(throttle.rejected > 0, "the throttle sheds some load locally: {throttle:?}");
}

#[test]
fn slow_is_invisible_to_the_default_breaker_but_not_to_a_slow_call_rule() {
    let slow = Scenario::new(Kind::Slow);
    let none = run(&slow, &Contender::none());
    let default = run(&slow, &Contender::default_breaker());
    let rule = run(&slow, &config("slow", "slow_calls = { slower_than = \"1s\", threshold = 0.5, window = 20 }"));
    // Every call succeeds, so the default breaker never opens.
    assert_eq!(default, Summary { name: "default".into(), ..none.clone() });
    assert!(none.wasted > 500, "{none:?}");
    assert!(rule.opens >= 1 && rule.wasted < none.wasted / 2, "{rule:?}");
}

#[test]
fn flapping_opens_the_default_breaker_again_and_again() {
    let flapping = Scenario::new(Kind::Flapping);
    let none = run(&flapping, &Contender::none());
    let default = run(&flapping, &Contender::default_breaker());
    // Down 5 s of every 10 from 10 s: 5 down periods of 100 calls.
    assert_eq!(none.wasted, 500);
    assert!(default.opens >= 2, "{default:?}");
    assert!(default.wasted < 20, "{default:?}");
    // A 30 s open wait spans up periods: healthy calls are rejected.
    assert!(default.false_rejections > 100, "{default:?}");
}

#[test]
fn noise_is_a_steady_seeded_failure_rate() {
    let noise = Scenario::new(Kind::Noise);
    let none = run(&noise, &Contender::none());
    assert_eq!(none.reached, none.offered);
    assert_eq!(none.wasted, 0, "the backend is healthy throughout");
    let failed = none.offered - none.successes;
    assert!((90..=150).contains(&failed), "about 10% of 1200: {failed}");
    // Five in a row at 10% is rare: the default breaker stays closed...
    let default = run(&noise, &Contender::default_breaker());
    assert_eq!(default.rejected, 0, "{default:?}");
    // ...while a 5% failure-rate rule trips, and every rejection is a false one.
    let touchy = run(&noise, &config("touchy", "failure_rate = { threshold = 0.05, window = 20 }"));
    assert!(touchy.rejected > 0 && touchy.false_rejections == touchy.rejected, "{touchy:?}");
    let other_seed = replay(&noise, &Contender::none(), MINUTE, 2).unwrap();
    assert_ne!(other_seed.successes, none.successes);
}

#[test]
fn a_hung_probe_holds_the_breaker_long_after_the_recovery() {
    let outage = run(&Scenario::new(Kind::Outage), &Contender::default_breaker());
    let hung = run(&Scenario::new(Kind::HungProbe), &Contender::default_breaker());
    // The probe hangs 60 s: the breaker does not admit again within the run.
    assert!(hung.recovery_lag_s.unwrap() > outage.recovery_lag_s.unwrap() + 15.0, "{hung:?}");
    assert!(hung.false_rejections > outage.false_rejections, "{hung:?}");
    // Opens are counted before the calls still in flight at the end are dropped.
    assert_eq!(hung.opens, 1, "{hung:?}");
    // A short probe lease frees a hung probe's slot, so the breaker tries again sooner.
    let lease = run(&Scenario::new(Kind::HungProbe), &config("lease", "probe_lease = \"2s\""));
    assert!(lease.successes > hung.successes + 100, "{lease:?} vs {hung:?}");
    assert!(lease.recovery_lag_s.unwrap() < hung.recovery_lag_s.unwrap() - 5.0, "{lease:?}");
}

#[test]
fn two_configs_are_compared_in_one_run() {
    let dir = std::env::temp_dir().join(format!("breakerbox-sim-two-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("quick.toml"), dir.join("patient.toml"));
    std::fs::write(&a, "consecutive_failures = 2\nopen_wait = \"5s\"\n").unwrap();
    std::fs::write(&b, "name = \"patient\"\nconsecutive_failures = 50\n").unwrap();
    let out =
        run_cli(args(&format!("--scenario outage --format json --config {} --config {}", a.display(), b.display())))
            .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["name"], "quick");
    assert_eq!(results[1]["name"], "patient");
    // A 5 s open wait recovers sooner; 50 failures in a row waste more calls.
    assert!(results[0]["recovery_lag_s"].as_f64().unwrap() < 1.0, "{out}");
    assert!(results[1]["wasted"].as_u64().unwrap() >= 50, "{out}");
    assert_eq!(doc["scenario"], "outage");
    assert_eq!(doc["params"]["duration"], 20.0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn same_seed_same_table_and_another_seed_another() {
    let table = |seed: u64| run_cli(args(&format!("--scenario noise --no-breaker --seed {seed}"))).unwrap();
    assert_eq!(table(3), table(3));
    assert_ne!(table(3), table(4));
    let noise = Scenario::new(Kind::Noise);
    let a = replay(&noise, &Contender::default_breaker(), MINUTE, 9).unwrap();
    let b = replay(&noise, &Contender::default_breaker(), MINUTE, 9).unwrap();
    assert_eq!(
        render(Format::Csv, &Replayed::scenario(&noise, MINUTE, 9), &[a]),
        render(Format::Csv, &Replayed::scenario(&noise, MINUTE, 9), &[b])
    );
}

#[test]
fn csv_and_text_have_one_row_per_contender() {
    let csv = run_cli(args("--scenario outage --no-breaker --format csv")).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("config,offered,reached,wasted,"), "{csv}");
    assert!(lines[1].starts_with("none,1200,1200,400,0,0,800,,0.00,0,"), "{csv}");
    assert!(lines[2].starts_with("default,1200,"), "{csv}");
    let text = run_cli(args("--scenario outage")).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().nth(2).unwrap().starts_with("default "), "{text}");
}

#[test]
fn scenario_parameters_change_the_shape() {
    let short = run_cli(args("--scenario outage --no-breaker --format csv --duration 5s --rate 10")).unwrap();
    // 5 s down at 10 calls/s.
    assert!(short.lines().nth(1).unwrap().starts_with("none,600,600,50,"), "{short}");
    let ramp = run_cli(args("--scenario outage --no-breaker --format csv --ramp-to 40 --seconds 10")).unwrap();
    let offered: u64 = ramp.lines().nth(1).unwrap().split(',').nth(1).unwrap().parse().unwrap();
    assert!((250..=350).contains(&offered), "20 rising to 40 calls/s over 10 s: {offered}");
}

#[test]
fn cancelled_calls_count_as_failures_and_cancelled_probes_do_not_wedge_the_breaker() {
    let cancelling = Scenario::new(Kind::Cancelling);
    let none = run(&cancelling, &Contender::none());
    let default = run(&cancelling, &Contender::default_breaker());
    // 20 s slow at 20 calls/s: every call in it is cancelled at its 2 s deadline.
    assert_eq!(none.wasted, 400);
    assert_eq!(none.successes, 800);
    // Dropped after 2 s, past `cancel_counts_after` (1 s): five of them open it. Five
    // cancelled calls take 2 s to come back, so about 40 reach the backend first.
    assert!(default.opens >= 1 && default.wasted <= 45, "{default:?}");
    // Its probes are cancelled too and reopen it; one at a time, and it recovers
    // within one open wait of the backend's recovery.
    assert_eq!(default.peak_probes, 1, "{default:?}");
    assert!(default.recovery_lag_s.unwrap() <= 30.0 + 2.0, "{default:?}");
    // With cancellations never counted, nothing opens it.
    let blind = run(&cancelling, &config("blind", "cancel_counts_after = \"never\""));
    assert_eq!((blind.opens, blind.wasted), (0, 400), "{blind:?}");
}
