//! The command line, parsed by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use breakerbox::config::BreakerConfig;

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write as _};

use crate::SimError;
use crate::plot::{Panel, timeline_svg};
use crate::recorded::TraceTraffic;
use crate::replay::{Contender, Summary, run};
use crate::report::{Format, Replayed, render};
use crate::scenario::{Kind, Scenario, parse_seconds};
use crate::timeline::Timeline;
use crate::trace::{GroupBy, OnBadLine, TraceFormat, TraceOptions, TraceReader};
use crate::traffic::{ScenarioTraffic, Traffic};

/// `breakerbox-sim --help`.
pub const USAGE: &str = "\
breakerbox-sim: replay a named scenario or a recorded trace through breaker configs in
virtual time, and compare what each breaker did

usage: breakerbox-sim [--scenario NAME [--PARAM VALUE]... | --trace FILE [TRACE FLAGS]]
                      [--config FILE.toml]... [--no-breaker] [--seconds N] [--seed S]
                      [--format text|json|csv] [--plot FILE.svg]

  --scenario NAME   outage, brownout, slow, flapping, noise, hung-probe or cancelling
                    (default outage)
  --PARAM VALUE     a scenario parameter, for example --duration 30s (list below)
  --trace FILE      replay a recorded trace instead: a CSV file or an access log
  --config FILE     a breaker's settings in TOML (breakerbox::config::BreakerConfig);
                    repeat to compare; none: the core's default breaker
  --no-breaker      add a row with no breaker at all
  --seconds N       virtual seconds of a scenario to replay (default 60)
  --seed S          the seed of the scenario's randomness (default 1)
  --format F        text (default), json or csv
  --plot FILE.svg   also draw each config's timeline, one panel each, into FILE.svg
  -h, --help        this text

trace flags:
  --trace-format F  csv (timestamp,key,outcome,latency) or access-log (common or
                    combined, with $request_time or %D last); default: csv for a
                    .csv file, access-log otherwise
  --group-by G      all (one breaker, the default), key, host or route: one breaker each
  --bad-lines B     skip (default: report them on stderr and go on) or fail
  --reorder-window D  how far out of start-time order a line may be (default 60s)

Durations are written 10s, 250ms or as bare seconds.";

/// A recorded trace to replay.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFile {
    /// The file.
    pub path: PathBuf,
    /// How to read it.
    pub options: TraceOptions,
}

/// What to replay.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A named scenario, with its parameters set.
    Scenario(Scenario),
    /// A recorded trace.
    Trace(TraceFile),
}

/// Parsed arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Cli {
    /// What to replay.
    pub source: Source,
    /// The config files, in order.
    pub configs: Vec<PathBuf>,
    /// Whether to add a row without a breaker.
    pub no_breaker: bool,
    /// Virtual time to replay.
    pub seconds: Duration,
    /// The seed.
    pub seed: u64,
    /// The output format.
    pub format: Format,
    /// Where to draw the timelines, if anywhere.
    pub plot: Option<PathBuf>,
}

/// The usage text with every scenario and its parameters.
fn help() -> String {
    let mut out = format!("{USAGE}\n\nscenarios and their parameters (defaults):\n");
    for kind in Kind::ALL {
        out.push_str(&format!("\n  {}: {}\n", kind.name(), kind.about()));
        for p in Scenario::new(kind).params() {
            out.push_str(&format!("    --{:<14} {:<8} {}\n", p.name, p.display(), p.doc));
        }
    }
    out
}

/// Parses the arguments (without the program's name); `Ok(None)` for `--help`.
///
/// # Errors
///
/// [`SimError`] naming the flag, for an unknown flag, a missing or bad value.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, SimError> {
    let mut raw = args.into_iter();
    let mut scenario: Option<String> = None;
    let mut trace: Option<PathBuf> = None;
    let mut trace_format: Option<TraceFormat> = None;
    let mut options = TraceOptions::default();
    let mut trace_flags: Vec<&'static str> = Vec::new();
    let mut params: Vec<(String, String)> = Vec::new();
    let mut cli = Cli {
        source: Source::Scenario(Scenario::new(Kind::Outage)),
        configs: Vec::new(),
        no_breaker: false,
        seconds: Duration::from_secs(60),
        seed: 1,
        format: Format::Text,
        plot: None,
    };
    while let Some(arg) = raw.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--no-breaker" => {
                cli.no_breaker = true;
                continue;
            }
            _ => {}
        }
        let Some(name) = flag.strip_prefix("--").filter(|n| !n.is_empty()) else {
            return Err(SimError(format!("unexpected argument `{flag}` (flags start with --; see --help)")));
        };
        let value = inline.or_else(|| raw.next()).ok_or_else(|| SimError(format!("{flag} needs a value")))?;
        match name {
            "scenario" => scenario = Some(value),
            "trace" => trace = Some(PathBuf::from(value)),
            "trace-format" => {
                trace_format = Some(TraceFormat::parse(&value).map_err(|e| flagged("--trace-format", e))?);
                trace_flags.push("--trace-format");
            }
            "group-by" => {
                options.group_by = GroupBy::parse(&value).map_err(|e| flagged("--group-by", e))?;
                trace_flags.push("--group-by");
            }
            "bad-lines" => {
                options.on_bad_line = OnBadLine::parse(&value).map_err(|e| flagged("--bad-lines", e))?;
                trace_flags.push("--bad-lines");
            }
            "reorder-window" => {
                options.reorder_window = parse_seconds(&value)
                    .filter(|s| *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| SimError(format!("--reorder-window: `{value}` is not a duration up to 1 day")))?;
                trace_flags.push("--reorder-window");
            }
            "config" => cli.configs.push(PathBuf::from(value)),
            "plot" => cli.plot = Some(PathBuf::from(value)),
            "seconds" => {
                cli.seconds = parse_seconds(&value)
                    .filter(|s| *s > 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| SimError(format!("--seconds: `{value}` is not a duration from 0 to 1 day")))?;
            }
            "seed" => {
                cli.seed = value.parse().map_err(|_| SimError(format!("--seed: `{value}` is not a whole number")))?;
            }
            "format" => cli.format = Format::parse(&value)?,
            other => params.push((other.to_owned(), value)),
        }
    }
    if let Some(path) = trace {
        if scenario.is_some() {
            return Err(SimError("--scenario and --trace: replay one or the other".into()));
        }
        if let Some((name, _)) = params.first() {
            return Err(SimError(format!(
                "--{name}: not a flag for a trace (scenario parameters go with --scenario; see --help)"
            )));
        }
        options.format = trace_format.unwrap_or_else(|| {
            if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
                TraceFormat::Csv
            } else {
                TraceFormat::AccessLog
            }
        });
        cli.source = Source::Trace(TraceFile { path, options });
        return Ok(Some(cli));
    }
    if let Some(flag) = trace_flags.first() {
        return Err(SimError(format!("{flag}: a flag for a trace, but there is no --trace FILE")));
    }
    let mut sc = Scenario::named(scenario.as_deref().unwrap_or("outage"))?;
    for (name, value) in params {
        sc.set(&name, &value)?;
    }
    // A million calls replay in well under a second; more is a typo.
    let load = sc.load();
    if load.rate.max(load.ramp_to.unwrap_or(0.0)) * cli.seconds.as_secs_f64() > 5e6 {
        return Err(SimError("--rate, --ramp-to and --seconds: more than 5 million calls; lower one".into()));
    }
    cli.source = Source::Scenario(sc);
    Ok(Some(cli))
}

/// `e`, naming `flag` unless it already does.
fn flagged(flag: &str, e: SimError) -> SimError {
    if e.0.starts_with(flag) { e } else { SimError(format!("{flag}: {}", e.0)) }
}

/// Reads a breaker config from a TOML file and checks that it builds; the contender is
/// named by the config's `name`, or the file's stem.
///
/// # Errors
///
/// [`SimError`] naming the file, and the key where the config says which.
pub fn load_config(path: &Path) -> Result<Contender, SimError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| SimError(format!("--config {shown}: {e}")))?;
    let config: BreakerConfig =
        toml::from_str(&text).map_err(|e| SimError(format!("--config {shown}: {}", e.to_string().trim_end())))?;
    config.build().map_err(|e| SimError(format!("--config {shown}: {e}")))?;
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| path.file_stem().map_or_else(|| shown.to_string(), |s| s.to_string_lossy().into_owned()));
    Ok(Contender::breaker(name, config))
}

/// The whole program: the text to print, or an error for stderr (exit status 2).
///
/// A trace's skipped lines are reported on stderr, as is a progress bar while a long
/// trace replays (when stderr is a terminal).
///
/// # Errors
///
/// [`SimError`] for bad arguments, bad configs, an unreadable trace (or its first bad
/// line with `--bad-lines fail`) and an unwritable plot.
pub fn run_cli(args: impl IntoIterator<Item = String>) -> Result<String, SimError> {
    let Some(cli) = parse_args(args)? else { return Ok(help()) };
    let mut contenders = Vec::new();
    if cli.no_breaker {
        contenders.push(Contender::none());
    }
    if cli.configs.is_empty() {
        contenders.push(Contender::default_breaker());
    }
    for path in &cli.configs {
        contenders.push(load_config(path)?);
    }
    let mut results: Vec<(Summary, Option<Timeline>)> = Vec::new();
    let replayed = match &cli.source {
        Source::Scenario(scenario) => {
            for c in &contenders {
                let mut traffic = ScenarioTraffic::new(scenario, cli.seconds, cli.seed);
                results.push(replay_one(&mut traffic, c, cli.plot.is_some())?);
            }
            Replayed::scenario(scenario, cli.seconds, cli.seed)
        }
        Source::Trace(trace) => {
            let mut seen = None;
            // The file is read once per config: a replay streams, and keeps no call.
            for (i, c) in contenders.iter().enumerate() {
                let mut traffic = open_trace(trace, i == 0)?;
                results.push(replay_one(&mut traffic, c, cli.plot.is_some())?);
                if i == 0 {
                    report_skipped(&traffic);
                    seen =
                        Some((traffic.reader().lines_read(), traffic.keys().len(), traffic.reader().skipped_count()));
                }
            }
            let (lines, keys, skipped) = seen.unwrap_or_default();
            Replayed::trace(&trace.path, &trace.options, lines, keys, skipped, results.first().map(|r| &r.0))
        }
    };
    if let Some(path) = &cli.plot {
        let panels: Vec<Panel<'_>> =
            results.iter().filter_map(|(s, t)| t.as_ref().map(|t| Panel { name: &s.name, timeline: t })).collect();
        let svg = timeline_svg(&replayed.title, &panels)?;
        std::fs::write(path, svg).map_err(|e| SimError(format!("--plot {}: {e}", path.display())))?;
    }
    let summaries: Vec<Summary> = results.into_iter().map(|(s, _)| s).collect();
    Ok(render(cli.format, &replayed, &summaries))
}

fn replay_one(traffic: &mut dyn Traffic, c: &Contender, plot: bool) -> Result<(Summary, Option<Timeline>), SimError> {
    let mut timeline = plot.then(Timeline::default);
    let s = run(traffic, c, timeline.as_mut())?;
    Ok((s, timeline))
}

/// Opens `trace` for one replay; `progress`: draw a progress bar on a terminal.
fn open_trace(trace: &TraceFile, progress: bool) -> Result<TraceTraffic<BufReader<File>>, SimError> {
    let shown = trace.path.display().to_string();
    let file = File::open(&trace.path).map_err(|e| SimError(format!("--trace {shown}: {e}")))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = TraceReader::new(BufReader::with_capacity(1 << 20, file), trace.options.clone());
    let traffic = TraceTraffic::new(reader, trace.options.on_bad_line);
    if !progress || !std::io::stderr().is_terminal() || size < 16 << 20 {
        return Ok(traffic);
    }
    Ok(traffic.on_progress(move |lines, bytes| {
        let done = if size == 0 { 1.0 } else { (bytes as f64 / size as f64).min(1.0) };
        let bar = "#".repeat((done * 30.0) as usize);
        let _ = write!(std::io::stderr(), "\r{shown} [{bar:<30}] {:>3.0}% {lines} lines", done * 100.0);
        if bytes >= size {
            let _ = writeln!(std::io::stderr());
        }
    }))
}

fn report_skipped<R: std::io::BufRead>(traffic: &TraceTraffic<R>) {
    let reader = traffic.reader();
    let n = reader.skipped_count();
    if n == 0 {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ =
        writeln!(err, "skipped {n} bad line{} (--bad-lines fail stops at the first):", if n == 1 { "" } else { "s" });
    for e in reader.skipped() {
        let _ = writeln!(err, "  {e}");
    }
    if n > reader.skipped().len() as u64 {
        let _ = writeln!(err, "  ... and {} more", n - reader.skipped().len() as u64);
    }
}
