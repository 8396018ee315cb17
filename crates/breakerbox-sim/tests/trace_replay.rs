//! Recorded traces through the replay: a small checked-in trace whose table is worked
//! out by hand below, one breaker per key, two configs in one run, and the CLI's
//! trace flags.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Command;

use breakerbox::config::BreakerConfig;
use breakerbox_sim::recorded::TraceTraffic;
use breakerbox_sim::trace::{GroupBy, OnBadLine, TraceFormat, TraceOptions, TraceReader};
use breakerbox_sim::{Contender, Summary, run, run_cli};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn replay_bytes(input: impl BufRead, group_by: GroupBy, contender: &Contender) -> Summary {
    let options = TraceOptions { format: TraceFormat::Csv, group_by, ..TraceOptions::default() };
    let mut traffic = TraceTraffic::new(TraceReader::new(input, options), OnBadLine::Fail);
    run(&mut traffic, contender, None).unwrap()
}

fn hand_config() -> Contender {
    let config: BreakerConfig = toml::from_str("consecutive_failures = 3\nopen_wait = \"10s\"").unwrap();
    Contender::breaker("hand", config)
}

/// `tests/data/replay.csv`, one call a line (seconds from the first; every call takes
/// 10 ms): 0 ok, 1 ok, 2 fail, 2.5 fail, 3 fail, 4 fail, 5 fail, 6 ok, 7 ok, 14 ok,
/// 15 ok, 15.5 a 404. Seconds 2 to 5 are in trouble (every call in them failed).
///
/// With 3 failures in a row for 10 s: the failure at 3 completes at 3.01 and opens the
/// breaker until 13.01. The calls at 4 and 5 (failing) and 6 and 7 (healthy: false
/// rejections) are rejected; the call at 14 is the probe, succeeds and closes it; 15
/// and the 404 (ignored: a caller's mistake) go through.
#[test]
fn a_small_trace_gives_the_table_worked_out_by_hand() {
    let file = std::fs::File::open(data("replay.csv")).unwrap();
    let s = replay_bytes(std::io::BufReader::new(file), GroupBy::All, &hand_config());
    let expected = Summary {
        name: "hand".into(),
        offered: 12,
        reached: 8,
        wasted: 3,
        rejected: 4,
        false_rejections: 2,
        successes: 4,
        // Trouble from 2 s, first rejection at 4 s.
        first_rejection_s: Some(2.0),
        // Healthy again from 6 s; the last rejection at 7 s; admitted again at 14 s.
        recovery_lag_s: Some(8.0),
        opens: 1,
        peak_probes: 1,
        // The last call completes at 15.51 s.
        seconds: 15.51,
        goodput: 4.0 / 15.51,
        // No call that arrived in trouble succeeded.
        trouble_goodput: 0.0,
    };
    assert_eq!(s, expected);

    let file = std::fs::File::open(data("replay.csv")).unwrap();
    let none = replay_bytes(std::io::BufReader::new(file), GroupBy::All, &Contender::none());
    assert_eq!((none.reached, none.wasted, none.rejected, none.successes), (12, 5, 0, 6));
    assert_eq!((none.first_rejection_s, none.recovery_lag_s, none.opens), (None, Some(0.0), 0));
}

#[test]
fn one_breaker_per_key_keeps_a_healthy_host_open_to_traffic() {
    // Host `down` fails from 1 s on; host `up` never does. Ten calls each, alternating.
    let mut trace = String::from("timestamp,key,outcome,latency\n");
    for i in 0..10 {
        let down = if i == 0 { 200 } else { 500 };
        trace.push_str(&format!("{}.0,https://down.example.com/x,{down},5ms\n", 100 + i));
        trace.push_str(&format!("{}.5,https://up.example.com/x,200,5ms\n", 100 + i));
    }
    let one = replay_bytes(trace.as_bytes(), GroupBy::All, &hand_config());
    let per_host = replay_bytes(trace.as_bytes(), GroupBy::Host, &hand_config());
    // One shared breaker: `up`'s successes break `down`'s streaks, so it never opens.
    assert_eq!((one.rejected, one.opens), (0, 0), "{one:?}");
    // One per host: `down` opens after 3 failures and rejects its last 6 calls; `up`
    // loses none.
    assert_eq!((per_host.rejected, per_host.false_rejections, per_host.opens), (6, 0, 1), "{per_host:?}");
    assert_eq!(per_host.successes, 11);
}

#[test]
fn the_cli_compares_two_configs_on_one_trace() {
    let dir = std::env::temp_dir().join(format!("breakerbox-sim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("quick.toml"), dir.join("slow.toml"));
    std::fs::write(&a, "consecutive_failures = 3\nopen_wait = \"10s\"\n").unwrap();
    std::fs::write(&b, "consecutive_failures = 5\nopen_wait = \"10s\"\n").unwrap();
    let trace = data("replay.csv");
    let out = run_cli(
        format!("--trace {} --format json --config {} --config {}", trace.display(), a.display(), b.display())
            .split_whitespace()
            .map(str::to_owned),
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = doc["results"].as_array().unwrap();
    assert_eq!((r[0]["name"].as_str(), r[1]["name"].as_str()), (Some("quick"), Some("slow")));
    // Three failures open `quick`; `slow` needs all five and opens only at 5.01 s,
    // until 15.01 s: it rejects the healthy calls at 6, 7, 14 and 15 s, and its probe
    // is the 404 at 15.5 s.
    let col = |name: &str| (r[0][name].as_u64().unwrap(), r[1][name].as_u64().unwrap());
    assert_eq!(col("wasted"), (3, 5), "{out}");
    assert_eq!(col("rejected"), (4, 4), "{out}");
    assert_eq!(col("false_rejections"), (2, 4), "{out}");
    assert_eq!(col("successes"), (4, 2), "{out}");
    assert_eq!(r[1]["recovery_lag_s"], 9.5, "{out}");
    assert_eq!(doc["lines"], 13);
    assert_eq!(doc["keys"], 1);
    assert_eq!(doc["format"], "csv");
    std::fs::remove_dir_all(dir).unwrap();
}

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_breakerbox-sim")).args(args).output().unwrap()
}

#[test]
fn bad_lines_are_reported_by_number_and_skipped_or_fatal() {
    let dir = std::env::temp_dir().join(format!("breakerbox-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.csv");
    std::fs::write(
        &path,
        "1700000000,api,200,10ms\n1700000001,api,2000,10ms\n1700000002,api,200,soon\n1700000003,api,200,10ms\n",
    )
    .unwrap();
    let path = path.display().to_string();
    let skip = sim(&["--trace", &path]);
    let stderr = String::from_utf8_lossy(&skip.stderr);
    assert!(skip.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped 2 bad lines") && stderr.contains("line 2:") && stderr.contains("line 3:"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&skip.stdout);
    assert!(stdout.contains("2 calls") && stdout.contains("2 bad lines skipped"), "{stdout}");

    let fail = sim(&["--trace", &path, "--bad-lines", "fail"]);
    let stderr = String::from_utf8_lossy(&fail.stderr);
    assert_eq!(fail.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2:") && !stderr.contains("line 3:") && !stderr.contains("panicked"), "{stderr}");
    assert!(fail.stdout.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn trace_flags_are_checked() {
    for (args, wanted) in [
        (&["--trace", "/nonexistent/trace.csv"][..], "--trace /nonexistent/trace.csv"),
        (&["--trace", "x.csv", "--scenario", "outage"][..], "one or the other"),
        (&["--trace", "x.csv", "--duration", "5s"][..], "--duration: not a flag for a trace"),
        (&["--group-by", "host"][..], "--group-by: a flag for a trace"),
        (&["--trace", "x.csv", "--group-by", "planet"][..], "--group-by"),
        (&["--trace", "x.csv", "--bad-lines", "maybe"][..], "--bad-lines"),
        (&["--trace", "x.csv", "--trace-format", "xml"][..], "--trace-format"),
        (&["--trace", "x.csv", "--reorder-window", "soon"][..], "--reorder-window"),
    ] {
        let out = sim(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted) && !stderr.contains("panicked"), "{args:?}: `{wanted}` not in {stderr}");
    }
}
