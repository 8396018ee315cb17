//! The comparison: a text table, JSON or CSV.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::SimError;
use crate::replay::Summary;
use crate::scenario::Scenario;
use crate::trace::TraceOptions;

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

const COLUMNS: [&str; 13] = [
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
    "peak_probes",
    "goodput",
    "trouble_goodput",
];

fn cells(s: &Summary) -> [String; 13] {
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
        s.peak_probes.to_string(),
        format!("{:.2}", s.goodput),
        format!("{:.2}", s.trouble_goodput),
    ]
}

/// What was replayed: the first line of the text table, and the fields the JSON
/// document has beside its `results`.
#[derive(Clone, Debug, PartialEq)]
pub struct Replayed {
    /// One line saying what ran.
    pub title: String,
    /// The same as JSON fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Replayed {
    /// `scenario`, run for `seconds` with `seed`.
    pub fn scenario(scenario: &Scenario, seconds: Duration, seed: u64) -> Self {
        let params: Vec<_> = scenario.params().iter().map(|p| format!("{}={}", p.name, p.display())).collect();
        let title = format!(
            "scenario {} ({}s, seed {seed}): {}",
            scenario.kind().name(),
            seconds.as_secs_f64(),
            params.join(" ")
        );
        let params = scenario.params().iter().map(|p| (p.name.to_owned(), json!(p.value))).collect();
        let mut fields = serde_json::Map::new();
        fields.insert("scenario".into(), json!(scenario.kind().name()));
        fields.insert("params".into(), serde_json::Value::Object(params));
        fields.insert("seconds".into(), json!(seconds.as_secs_f64()));
        fields.insert("seed".into(), json!(seed));
        Self { title, fields }
    }
}

impl Replayed {
    /// The trace at `path`, read with `options`: `lines` read, `keys` breakers,
    /// `skipped` bad lines; `first`, the first contender's summary (for the span).
    pub fn trace(
        path: &Path,
        options: &TraceOptions,
        lines: u64,
        keys: usize,
        skipped: u64,
        first: Option<&Summary>,
    ) -> Self {
        let seconds = first.map_or(0.0, |s| s.seconds);
        let (format, group_by) = (options.format.name(), options.group_by.name());
        let breakers = if group_by == "all" { "one breaker".to_owned() } else { format!("one breaker per {group_by}") };
        let mut title = format!(
            "trace {} ({format}, {breakers}): {lines} lines, {} calls over {seconds:.1}s, {keys} key{}",
            // The file's name: a title, not a path (the JSON field has the path).
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            first.map_or(0, |s| s.offered),
            if keys == 1 { "" } else { "s" },
        );
        if skipped > 0 {
            title.push_str(&format!(", {skipped} bad line{} skipped", if skipped == 1 { "" } else { "s" }));
        }
        let mut fields = serde_json::Map::new();
        fields.insert("trace".into(), json!(path.display().to_string()));
        fields.insert("format".into(), json!(format));
        fields.insert("group_by".into(), json!(group_by));
        fields.insert("lines".into(), json!(lines));
        fields.insert("keys".into(), json!(keys));
        fields.insert("bad_lines".into(), json!(skipped));
        fields.insert("seconds".into(), json!(seconds));
        Self { title, fields }
    }
}

/// The comparison of `results` of what was `replayed`.
pub fn render(format: Format, replayed: &Replayed, results: &[Summary]) -> String {
    let mut out = String::new();
    match format {
        Format::Text => {
            let _ = writeln!(out, "{}", replayed.title);
            let header: [&str; 13] = [
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
                "probes",
                "goodput/s",
                "in trouble/s",
            ];
            let rows: Vec<[String; 13]> = results.iter().map(cells).collect();
            let width = |i: usize| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0);
            let widths: Vec<usize> = (0..COLUMNS.len()).map(width).collect();
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
            let mut doc = replayed.fields.clone();
            doc.insert("results".into(), serde_json::to_value(results).unwrap_or_default());
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
