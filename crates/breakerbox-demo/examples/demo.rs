//! The classic circuit breaker story, live: a flaky HTTP server on 127.0.0.1 and an
//! `HttpBreaker` in front of it.
//!
//! ```sh
//! cargo run --example demo
//! cargo run --example demo -- --threshold 5 --window 1s --calls 30
//! cargo run --example demo -- --plot demo.svg
//! ```
//!
//! Calls succeed; the server starts failing; after `--threshold` failures in a row the
//! circuit opens and calls fail fast without reaching the server; the server recovers
//! behind the breaker's back; once `--window` has passed the circuit is half-open and
//! one probe goes through; it succeeds and the circuit closes.
//!
//! With `--plot FILE.svg` the run is also recorded, by the real time of each call, in a
//! [`Timeline`] (calls offered, admitted, rejected, failing and succeeding, the breaker's
//! state from its listener, the server's failing spell as trouble) and drawn at the end
//! with breakerbox-sim's [`timeline_svg`].

use std::fs::File;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breakerbox::{OpenWait, Policy, State};
use breakerbox_http::{Classifier, HttpBreaker, HttpError};
use breakerbox_sim::plot::{Panel, timeline_svg};
use breakerbox_sim::timeline::Timeline;

const USAGE: &str = "\
Replays the classic circuit breaker story against a flaky HTTP server on 127.0.0.1.

Usage: cargo run --example demo -- [OPTIONS]

Options:
  --threshold N      consecutive failures that open the circuit (default 3)
  --window TIME      how long the circuit stays open: 2s, 500ms, 1.5s (default 2s)
  --calls N          how many calls to make (default 24)
  --plot FILE.svg    also draw the run as an SVG: the breaker's state over time and
                     calls per second (admitted, rejected, failing, successes)
  -h, --help         print this help

Calls are spaced so that the window passes during the run, and the whole run stays
under 12 s.";

/// How long the server takes to answer: a healthy server is quick, a failing one slow.
const HEALTHY_LATENCY: Duration = Duration::from_millis(8);
const FAILING_LATENCY: Duration = Duration::from_millis(60);

struct Args {
    threshold: u32,
    window: Duration,
    calls: u32,
    plot: Option<PathBuf>,
}

/// Where the plot goes, opened before the run so that a bad path fails at once.
struct PlotFile {
    path: PathBuf,
    file: File,
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let plot = match &args.plot {
        Some(path) => match File::create(path) {
            Ok(file) => Some(PlotFile { path: path.clone(), file }),
            Err(e) => {
                eprintln!("error: cannot write the plot to {}: {e}", path.display());
                std::process::exit(2);
            }
        },
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let result = runtime.map_err(|e| e.to_string()).and_then(|rt| rt.block_on(run(args)));
    let timeline = match result {
        Ok(timeline) => timeline,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    };
    if let Some(plot) = plot
        && let Err(message) = write_plot(plot, &timeline)
    {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
}

/// Draws `recorded` into the plot file.
fn write_plot(plot: PlotFile, recorded: &Recorded) -> Result<(), String> {
    let panel = Panel { name: &recorded.name, timeline: &recorded.timeline };
    let svg = timeline_svg("breakerbox demo: an HttpBreaker in front of a flaky server", &[panel])
        .map_err(|e| e.to_string())?;
    let mut file = plot.file;
    file.write_all(svg.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write the plot to {}: {e}", plot.path.display()))?;
    println!("plot written to {}", plot.path.display());
    Ok(())
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args { threshold: 3, window: Duration::from_secs(2), calls: 24, plot: None };
    while let Some(arg) = raw.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || inline.clone().or_else(|| raw.next()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--threshold" => args.threshold = positive(&flag, &value()?)?,
            "--calls" => args.calls = positive(&flag, &value()?)?,
            "--window" => args.window = duration(&value()?)?,
            "--plot" => args.plot = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    Ok(Some(args))
}

fn positive(flag: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 && n <= 10_000 => Ok(n),
        _ => Err(format!("{flag} takes a whole number from 1 to 10000, not `{value}`")),
    }
}

fn duration(value: &str) -> Result<Duration, String> {
    let (number, unit) = match value.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (value.strip_suffix('s').unwrap_or(value), 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n * unit <= 3600.0 => Ok(Duration::from_secs_f64(n * unit)),
        _ => Err(format!("--window takes a duration such as 2s, 500ms or 1.5s, not `{value}`")),
    }
}

/// The flaky server: an atomic switch and the server's own hit counter.
struct Flaky {
    failing: AtomicBool,
    hits: AtomicU64,
}

async fn start_server() -> Result<(String, Arc<Flaky>), String> {
    let flaky = Arc::new(Flaky { failing: AtomicBool::new(false), hits: AtomicU64::new(0) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("http://{}/inventory/42", listener.local_addr().map_err(|e| e.to_string())?);
    let state = Arc::clone(&flaky);
    let app = axum::Router::new().fallback(move || {
        let state = Arc::clone(&state);
        async move {
            state.hits.fetch_add(1, Ordering::SeqCst);
            if state.failing.load(Ordering::SeqCst) {
                tokio::time::sleep(FAILING_LATENCY).await;
                (http::StatusCode::INTERNAL_SERVER_ERROR, "database unreachable")
            } else {
                tokio::time::sleep(HEALTHY_LATENCY).await;
                (http::StatusCode::OK, "42 in stock")
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, flaky))
}

/// A state change, as the breaker's listener saw it.
struct Change {
    at: Instant,
    from: State,
    to: State,
    open_for: Option<Duration>,
}

/// The run, as recorded for the plot: the config's name and its timeline.
struct Recorded {
    name: String,
    timeline: Timeline,
}

async fn run(args: Args) -> Result<Recorded, String> {
    let paint = Paint::new();
    let (url, server) = start_server().await?;
    let changes: Arc<Mutex<Vec<Change>>> = Arc::default();
    let log = Arc::clone(&changes);

    // `HttpBreaker::new(client, threshold, window)`'s settings, plus a listener.
    let breaker = HttpBreaker::builder(reqwest::Client::new())
        .name("inventory")
        .policy(Policy::consecutive_failures(args.threshold))
        .open_wait(OpenWait::fixed(args.window))
        .classifier(Classifier::only_200())
        .on_state_change(move |t| {
            let change = Change { at: Instant::now(), from: t.from, to: t.to, open_for: t.open_for };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(change);
        })
        .build()
        .map_err(|e| e.to_string())?;

    // Healthy calls first, then the failures, then enough calls for the window to pass
    // and the circuit to close again; never more than 12 s in all.
    let fail_from = (args.calls / 6).clamp(2, 4) + 1;
    let room = args.calls.saturating_sub(fail_from + args.threshold + 3).max(1);
    let interval = (args.window / 10)
        .max(args.window / room)
        .max(Duration::from_millis(20))
        .min(Duration::from_secs(12) / args.calls);
    println!("{}", paint.bold("breakerbox demo: an HttpBreaker in front of a flaky server"));
    println!(
        "server {url}\nthe circuit opens after {} failures in a row and stays open {}; one call every {}\n",
        args.threshold,
        secs(args.window),
        millis(interval)
    );
    println!(
        "{}",
        paint.dim(&format!(
            "{:>6}  {:>4}  {:<44} {:>9}  {:>11}  {}",
            "time", "call", "result", "took", "server hits", "state"
        ))
    );

    // About two calls an interval: a timeline that ends with between `calls / 2` and
    // `calls` intervals (it widens them as the run goes on).
    let mut timeline = Timeline::new(usize::try_from(args.calls).unwrap_or(400).clamp(8, 400));
    // The state the breaker is in and since when (from its listener's changes), and,
    // when it opened, until when it waits.
    let mut state_since = (State::Closed, Duration::ZERO);
    let mut open_until = None;
    let start = Instant::now();
    let mut failed_fast = 0u32;
    let mut opened_at: Option<(Instant, Duration)> = None;
    let mut time_open = Duration::ZERO;
    let mut path = vec![State::Closed];
    let mut recovered = false;
    for call in 1..=args.calls {
        let due = start + interval * (call - 1);
        tokio::time::sleep_until(due.into()).await;
        if call == fail_from {
            server.failing.store(true, Ordering::SeqCst);
            println!("{}", paint.red("              ✖ the server starts failing"));
        }
        if let Some((at, _)) = opened_at
            && !recovered
            && server.failing.load(Ordering::SeqCst)
            && Instant::now() >= at + args.window / 2
        {
            server.failing.store(false, Ordering::SeqCst);
            recovered = true;
            println!("{}", paint.green("              ✔ the server recovers (the breaker cannot know until it tries)"));
        }

        let sent = Instant::now();
        let in_trouble = server.failing.load(Ordering::SeqCst);
        let result = breaker.do_request("GET", &url).await;
        let took = sent.elapsed();
        let called = match &result {
            Err(HttpError::CircuitOpen(_)) => Called::Rejected,
            Ok(response) if response.status() == 200 => Called::Succeeded,
            _ => Called::Failed,
        };
        record(&mut timeline, sent - start, took, in_trouble, called);
        let probe = changes.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|c| c.to == State::HalfOpen);
        let result_text = match &result {
            Ok(response) if response.status() == 200 => {
                paint.green(&format!("{}{}", response.status(), if probe { " (the probe)" } else { "" }))
            }
            Ok(response) => {
                let streak = breaker.metrics().consecutive_failures;
                let note = if breaker.is_closed() {
                    format!(" (failure {streak} of {})", args.threshold)
                } else {
                    String::new()
                };
                paint.red(&format!("{}{note}{}", response.status(), if probe { " (the probe)" } else { "" }))
            }
            Err(HttpError::CircuitOpen(rejected)) => {
                failed_fast += 1;
                let wait = rejected.retry_after().map_or(String::new(), |d| format!(", retry in {}", secs(d)));
                paint.yellow(&format!("failed fast: circuit open{wait}"))
            }
            Err(e) => paint.red(&format!("error: {e}")),
        };
        println!(
            "{:>5.2}s  {call:>4}  {}{} {:>9}  {:>11}  {}",
            (sent - start).as_secs_f64(),
            result_text,
            " ".repeat(44usize.saturating_sub(visible_len(&result_text))),
            took_text(took),
            server.hits.load(Ordering::SeqCst),
            breaker.state(),
        );

        for change in changes.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            path.push(change.to);
            let at = change.at.saturating_duration_since(start);
            add_state_time(&mut timeline, state_since, open_until, at);
            state_since = (change.to, at);
            open_until = (change.to == State::Open).then(|| at + change.open_for.unwrap_or(args.window));
            let why = match (change.from, change.to) {
                (State::Closed, State::Open) => format!(
                    "{} failures in a row: calls fail fast for {}",
                    args.threshold,
                    secs(change.open_for.unwrap_or(args.window))
                ),
                (State::Open, State::HalfOpen) => {
                    format!("the {} window has passed: this call is the one trial call", secs(args.window))
                }
                (State::HalfOpen, State::Closed) => "the trial call succeeded: the circuit closes".to_owned(),
                (State::HalfOpen, State::Open) => "the trial call failed: open again".to_owned(),
                _ => String::new(),
            };
            // Open from the opening until its wait ran out (or until it changed, if sooner).
            if let Some((at, wait)) = opened_at.take() {
                time_open += (change.at - at).min(wait);
            }
            if change.to == State::Open {
                opened_at = Some((change.at, change.open_for.unwrap_or(args.window)));
            }
            println!("{}", paint.transition(&format!("              ▶ {} → {}: {why}", change.from, change.to)));
        }
    }
    if let Some((at, wait)) = opened_at {
        time_open += at.elapsed().min(wait);
    }
    let end = start.elapsed();
    add_state_time(&mut timeline, state_since, open_until, end);
    timeline.close(end);

    let hits = server.hits.load(Ordering::SeqCst);
    let transitions = path.iter().map(State::to_string).collect::<Vec<_>>().join(" → ");
    println!("\n{}", paint.bold("Summary"));
    println!("  calls made            {:>6}", args.calls);
    println!("  reached the server    {hits:>6}   (the server's own count)");
    println!("  failed fast           {failed_fast:>6}   (answered at once, without touching the server)");
    println!("  time open             {:>6}   (then half-open until the next call)", secs(time_open));
    println!("  total time            {:>6}", secs(start.elapsed()));
    println!("  states                {transitions}");
    if breaker.state() != State::Closed || path.len() < 4 {
        println!(
            "\nThe story did not finish in {} calls: try more --calls, a shorter --window or a lower --threshold.",
            args.calls
        );
    }
    let name = format!("inventory: opens after {} failures in a row, for {}", args.threshold, secs(args.window));
    Ok(Recorded { name, timeline })
}

/// Counts one call, sent `at` into the run, in `timeline`: offered (in trouble if the
/// server was failing when it was sent); rejected, or admitted and failing; a success
/// where it completed.
fn record(timeline: &mut Timeline, at: Duration, took: Duration, in_trouble: bool, called: Called) {
    let bucket = timeline.bucket(at);
    bucket.offered += 1;
    bucket.offered_in_trouble += u64::from(in_trouble);
    match called {
        Called::Rejected => bucket.rejected += 1,
        Called::Failed => {
            bucket.admitted += 1;
            bucket.failing += 1;
        }
        Called::Succeeded => {
            bucket.admitted += 1;
            timeline.bucket(at + took).successes += 1;
        }
    }
}

/// Adds the time from `since` to `to` in `state`; an open breaker whose wait ran out at
/// `open_until` counts as half-open from then on, as [`breakerbox::Breaker::state`]
/// reports it (the listener hears of it only at the next call, the trial call).
fn add_state_time(
    timeline: &mut Timeline,
    (state, since): (State, Duration),
    open_until: Option<Duration>,
    to: Duration,
) {
    match open_until {
        Some(until) if state == State::Open && until < to => {
            timeline.add_state_time(State::Open, 1, since, until);
            timeline.add_state_time(State::HalfOpen, 1, until.max(since), to);
        }
        _ => timeline.add_state_time(state, 1, since, to),
    }
}

/// How a call went, for the timeline.
#[derive(Clone, Copy)]
enum Called {
    /// Failed fast: the circuit was open.
    Rejected,
    /// Reached the server, which failed it (or never answered).
    Failed,
    /// Reached the server and got a 200.
    Succeeded,
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn took_text(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

/// The width of `s` on screen: characters, without ANSI escapes.
fn visible_len(s: &str) -> usize {
    let mut len = 0;
    let mut escape = false;
    for c in s.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

/// ANSI colours, only on a terminal and unless `NO_COLOR` is set.
struct Paint(bool);

impl Paint {
    fn new() -> Self {
        Self(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }

    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
    }

    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }

    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }

    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }

    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }

    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }

    fn transition(&self, s: &str) -> String {
        self.wrap("1;36", s)
    }
}
