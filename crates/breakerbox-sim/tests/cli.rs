//! The binary: exit statuses and error messages.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakerbox-sim")).args(args).output().unwrap()
}

fn fails_with(args: &[&str], wanted: &[&str]) {
    let out = sim(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in wanted {
        assert!(stderr.contains(w), "{args:?}: `{w}` not in {stderr}");
    }
    assert!(out.stdout.is_empty());
}

fn config_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("breakerbox-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_default_run_prints_a_table() {
    let out = sim(&["--scenario", "outage"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("scenario outage (60s, seed 1)"), "{text}");
    assert!(text.contains("\ndefault "), "{text}");
}

#[test]
fn help_lists_every_scenario_and_parameter() {
    let out = sim(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in ["outage", "brownout", "slow", "flapping", "noise", "hung-probe", "--capacity", "--hung-calls"] {
        assert!(text.contains(name), "{name} not in {text}");
    }
}

#[test]
fn bad_flags_name_the_flag() {
    fails_with(&["--frobnicate", "1"], &["--frobnicate", "not a parameter of scenario `outage`"]);
    fails_with(&["--scenario", "meltdown"], &["--scenario", "meltdown", "hung-probe"]);
    fails_with(&["--seconds", "soon"], &["--seconds", "soon"]);
    fails_with(&["--seed", "-1"], &["--seed"]);
    fails_with(&["--format", "xml"], &["--format", "xml"]);
    fails_with(&["--scenario"], &["--scenario needs a value"]);
    fails_with(&["--scenario", "outage", "--capacity", "10"], &["--capacity"]);
    fails_with(&["--scenario", "noise", "--failure-rate", "2"], &["--failure-rate", "a fraction"]);
    fails_with(&["outage"], &["unexpected argument `outage`"]);
    fails_with(&["--rate", "1000000", "--seconds", "3600"], &["5 million"]);
}

#[test]
fn bad_configs_name_the_file_and_key() {
    let typo = config_file("typo.toml", "consecutive_failurez = 3\n");
    fails_with(&["--config", &typo], &["typo.toml", "consecutive_failurez"]);
    let syntax = config_file("syntax.toml", "consecutive_failures = \n");
    fails_with(&["--config", &syntax], &["syntax.toml"]);
    let value = config_file("value.toml", "failure_rate = { threshold = 1.5 }\n");
    fails_with(&["--config", &value], &["value.toml", "threshold"]);
    let duration = config_file("duration.toml", "open_wait = \"soon\"\n");
    fails_with(&["--config", &duration], &["duration.toml", "soon"]);
    fails_with(&["--config", "/nonexistent/breaker.toml"], &["--config /nonexistent/breaker.toml"]);
}

#[test]
fn the_binary_is_deterministic_with_a_throttle_too() {
    let cfg = config_file("throttle.toml", "throttle = {}\nfailure_rate = { threshold = 0.9, window = \"10s\" }\n");
    let run = || sim(&["--scenario", "brownout", "--config", &cfg, "--format", "csv"]).stdout;
    let first = run();
    assert!(String::from_utf8_lossy(&first).contains("\nthrottle,"));
    assert_eq!(first, run());
}

#[test]
fn the_readme_table_is_what_the_binary_prints() {
    let readme = include_str!("../README.md");
    let shown = readme.split("```text\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/");
    let out = sim(&[
        "--scenario",
        "brownout",
        "--config",
        &format!("{root}default.toml"),
        "--config",
        &format!("{root}throttle.toml"),
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), shown);
}

#[test]
fn the_readme_plots_are_what_the_binary_draws() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::env::temp_dir().join(format!("breakerbox-sim-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = format!("{root}/traces/checkout.log");
    for (name, args) in [
        ("outage.svg", vec!["--scenario", "outage", "--no-breaker"]),
        ("checkout.svg", vec!["--trace", &trace, "--group-by", "host", "--no-breaker"]),
    ] {
        let out_path = dir.join(name);
        let out_path = out_path.to_str().unwrap();
        let out = sim(&[&args[..], &["--plot", out_path]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let drawn = std::fs::read_to_string(out_path).unwrap();
        let shown = std::fs::read_to_string(format!("{root}/img/{name}")).unwrap();
        // Regenerate with the README's commands (`--plot crates/breakerbox-sim/img/...`).
        assert!(drawn == shown, "img/{name} is not what the binary draws now");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
