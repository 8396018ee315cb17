//! The comparison: a text table, JSON or CSV.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::SimError;
use crate::replay::Summary;
use crate::scenario::Scenario;

/// How the comparison is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// An aligned table, one row per contender.
    #[default]
    Text,
    /// One JSON object: the scenario, its parameters, and the summaries.
    Json,
    /// A header and one row per contender.
    Csv,
}

impl Format {
    /// `text`, `json` or `csv`.
    ///
    /// # Errors
    ///
    /// [`SimError`] naming `--format`, for anything else.
    pub fn parse(s: &str) -> Result<Self, SimError> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            _ => Err(SimError(format!("--format: `{s}` is not one of text, json, csv"))),
        }
    }
}

const COLUMNS: [&str; 12] = [
    "config",
    "offered",
    "reached",
    "wasted",
    "rejected",
    "false_rejections",
    "successes",
    "first_rejection_s",
    "recovery_lag_s",
    "opens",
    "goodput",
    "trouble_goodput",
];

fn cells(s: &Summary) -> [String; 12] {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    [
        s.name.clone(),
        s.offered.to_string(),
        s.reached.to_string(),
        s.wasted.to_string(),
        s.rejected.to_string(),
        s.false_rejections.to_string(),
        s.successes.to_string(),
        opt(s.first_rejection_s),
        opt(s.recovery_lag_s),
        s.opens.to_string(),
        format!("{:.2}", s.goodput),
        format!("{:.2}", s.trouble_goodput),
    ]
}

#[derive(Serialize)]
struct Doc<'a> {
    scenario: &'static str,
    params: serde_json::Map<String, serde_json::Value>,
    seconds: f64,
    seed: u64,
    results: &'a [Summary],
}

/// The comparison of `results` for `scenario`, run for `seconds` with `seed`.
pub fn render(format: Format, scenario: &Scenario, seconds: Duration, seed: u64, results: &[Summary]) -> String {
    let mut out = String::new();
    match format {
        Format::Text => {
            let params: Vec<_> = scenario.params().iter().map(|p| format!("{}={}", p.name, p.display())).collect();
            let _ = writeln!(
                out,
                "scenario {} ({}s, seed {seed}): {}",
                scenario.kind().name(),
                seconds.as_secs_f64(),
                params.join(" ")
            );
            let header: [&str; 12] = [
                "config",
                "offered",
                "reached",
                "wasted",
                "rejected",
                "false rej",
                "successes",
                "1st reject",
                "recovery lag",
                "opens",
                "goodput/s",
                "in trouble/s",
            ];
            let rows: Vec<[String; 12]> = results.iter().map(cells).collect();
            let width = |i: usize| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0);
            let widths: Vec<usize> = (0..12).map(width).collect();
            let line = |r: &[String]| {
                let mut l = format!("{:<w$}", r[0], w = widths[0]);
                for (i, c) in r.iter().enumerate().skip(1) {
                    let _ = write!(l, "  {c:>w$}", w = widths[i]);
                }
                l
            };
            let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
            let _ = writeln!(out, "{}", line(&header));
            for r in &rows {
                let _ = writeln!(out, "{}", line(r));
            }
        }
        Format::Json => {
            let params = scenario.params().iter().map(|p| (p.name.to_owned(), serde_json::json!(p.value))).collect();
            let doc = Doc { scenario: scenario.kind().name(), params, seconds: seconds.as_secs_f64(), seed, results };
            out = serde_json::to_string_pretty(&doc).unwrap_or_default();
            out.push('\n');
        }
        Format::Csv => {
            let _ = writeln!(out, "{}", COLUMNS.join(","));
            for s in results {
                let mut c = cells(s);
                c[0] = csv_field(&c[0]);
                for v in c.iter_mut().skip(7).take(2) {
                    if v == "-" {
                        v.clear();
                    }
                }
                let _ = writeln!(out, "{}", c.join(","));
            }
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}
