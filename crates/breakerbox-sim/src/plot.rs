//! Timelines drawn as an SVG: one panel per config, stacked on a shared time axis.
//!
//! ```
//! use std::time::Duration;
//! use breakerbox::State;
//! use breakerbox_sim::plot::{Panel, timeline_svg};
//! use breakerbox_sim::timeline::Timeline;
//!
//! let mut t = Timeline::default();
//! for ms in (0..10_000).step_by(50) {
//!     let b = t.bucket(Duration::from_millis(ms));
//!     b.offered += 1;
//!     b.admitted += 1;
//!     b.successes += 1;
//! }
//! t.add_state_time(State::Closed, 1, Duration::ZERO, Duration::from_secs(10));
//! let svg = timeline_svg("a quiet run", &[Panel { name: "default", timeline: &t }])?;
//! assert!(svg.contains("time (s)"));
//! # Ok::<(), breakerbox_sim::SimError>(())
//! ```
//!
//! Each panel shows, from top to bottom:
//!
//! - its config's name;
//! - a **state band**: per interval, the share of breaker-time in each state, stacked
//!   (closed green, open red, half-open amber, recovering blue, forced open dark red,
//!   disabled grey), so one breaker shows solid colours and one breaker per key shows
//!   fractions; a long enough run of one state is labelled with its name;
//! - the **chart**, in calls per second (an interval's count over its length):
//!   admitted (the backend's load), rejected, failing (admitted calls the backend
//!   failed: the wasted ones, filled) and successes, drawn as steps, one per interval,
//!   over a light shading of the intervals in which the backend was in trouble
//!   ([`Bucket::in_trouble`]).
//!
//! Every panel has the same time axis (0 to the latest end of all the timelines) and the
//! same calls/s axis, so panels compare at a glance. The figure's title and one legend,
//! naming every series and every state colour, are on top.
//!
//! # How it is drawn
//!
//! With [plotters](https://docs.rs/plotters)' SVG backend and no font feature: without
//! `ttf` or `ab_glyph`, plotters falls back to its built-in "naive" font, which only
//! estimates a text's size for the layout (from its length), and the SVG backend writes
//! every label as an SVG `<text>` element that the viewer renders with its own fonts.
//! So nothing here reads a font file or asks fontconfig, and the build pulls in only
//! plotters, plotters-backend, plotters-svg and num-traits. (`ab_glyph` would need a
//! font registered at run time, and no font ships inside those crates.)
//!
//! plotters writes flat SVG (no groups, ids or classes), so every part of the figure is
//! drawn into an SVG of its own and this module stacks them in one document, each in a
//! group that a test or a stylesheet can find:
//!
//! ```text
//! <svg>
//!   <title>…</title>
//!   <g id="header" class="header"> title and legend </g>
//!   <g id="panel-0" class="panel" data-config="NAME" transform="translate(0,Y)"> … </g>
//!   …
//! </svg>
//! ```
//!
//! The colours are [`state_color`] and [`SERIES`]'s; plotters writes them in upper case
//! (`fill="#D62728"`).

use std::fmt::Write as _;
use std::ops::Range;
use std::time::Duration;

use breakerbox::State;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::SimError;
use crate::timeline::{Bucket, STATES, Timeline};

/// One config's timeline, as a panel of the figure.
#[derive(Clone, Copy, Debug)]
pub struct Panel<'a> {
    /// The config's name: the panel's caption.
    pub name: &'a str,
    /// What happened during its replay.
    pub timeline: &'a Timeline,
}

/// A series of the chart: what it counts, its legend text and its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Series {
    /// The legend's text.
    pub label: &'static str,
    /// The colour, `#rrggbb`.
    pub color: &'static str,
}

/// The chart's series, in the legend's order: admitted, rejected, failing, successes.
pub const SERIES: [Series; 4] = [
    Series { label: "admitted (backend load)", color: "#263238" },
    Series { label: "rejected", color: "#f57c00" },
    Series { label: "failing (wasted)", color: "#c2185b" },
    Series { label: "successes", color: "#00897b" },
];

/// The colour of the shading of the intervals in which the backend was in trouble,
/// `#rrggbb` (drawn at 45 % opacity).
pub const TROUBLE_COLOR: &str = "#f8c4c4";

/// The legend's text for the shading of the intervals in which the backend was in
/// trouble.
pub const TROUBLE_LABEL: &str = "backend in trouble";

/// The colour of the state band for `state`, `#rrggbb`.
pub fn state_color(state: State) -> &'static str {
    match state {
        State::Closed => "#2e9e44",
        State::Open => "#d62728",
        State::HalfOpen => "#ffb300",
        State::Recovering => "#1e88e5",
        State::ForcedOpen => "#7b0d0d",
        State::Disabled => "#9e9e9e",
        _ => "#6d4c41",
    }
}

/// The states in the legend's order: the story's (closed, open, half-open, recovering),
/// then the manual ones.
pub const LEGEND_STATES: [State; 6] =
    [State::Closed, State::Open, State::HalfOpen, State::Recovering, State::ForcedOpen, State::Disabled];

const WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 260;
const HEADER_HEIGHT: u32 = 92;
const MARGIN_LEFT: u32 = 12;
const MARGIN_RIGHT: u32 = 28;
/// Room left of the plot for the calls/s ticks and the axis description.
const Y_LABEL_AREA: u32 = 72;
const X_LABEL_AREA: u32 = 42;
const CAPTION_HEIGHT: u32 = 26;
const BAND_HEIGHT: u32 = 26;
const BAND_GAP: u32 = 4;
const TROUBLE_ALPHA: f64 = 0.45;
/// The band's background, where no breaker-time was recorded.
const NO_DATA_RGB: RGBColor = RGBColor(0xf2, 0xf2, 0xf2);
const FONT: &str = "sans-serif";

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws `panels` as one SVG document under `title`.
///
/// # Errors
///
/// When `panels` is empty, or if plotters fails to draw (it does not for any timeline,
/// including empty ones and ones of a single bucket).
pub fn timeline_svg(title: &str, panels: &[Panel<'_>]) -> Result<String, SimError> {
    if panels.is_empty() {
        return Err(SimError("plot: no timelines to draw (no panels)".to_owned()));
    }
    let frame = Frame::of(panels);
    let count = u32::try_from(panels.len()).unwrap_or(u32::MAX);
    let height = HEADER_HEIGHT.saturating_add(PANEL_HEIGHT.saturating_mul(count));
    let title = printable(title);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"{FONT}\">\n<title>{}</title>\n\
         <rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>\n",
        escape(&title)
    );
    let header = piece((WIDTH, HEADER_HEIGHT), |area| draw_header(&area, &title))?;
    let _ = write!(svg, "<g id=\"header\" class=\"header\">\n{header}</g>\n");
    for (i, panel) in panels.iter().enumerate() {
        let name = printable(panel.name);
        let body = piece((WIDTH, PANEL_HEIGHT), |area| draw_panel(&area, &name, panel.timeline, &frame))?;
        let y = HEADER_HEIGHT as usize + PANEL_HEIGHT as usize * i;
        let _ = write!(
            svg,
            "<g id=\"panel-{i}\" class=\"panel\" data-config=\"{}\" transform=\"translate(0,{y})\">\n{body}</g>\n",
            escape(&name)
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// The axes every panel shares.
struct Frame {
    /// The time axis, in seconds.
    x: Range<f64>,
    /// The calls/s axis.
    y: Range<f64>,
}

impl Frame {
    fn of(panels: &[Panel<'_>]) -> Self {
        let end = panels.iter().map(|p| span_secs(p.timeline)).fold(0.0, f64::max);
        let end = if end > 0.0 { end } else { 1.0 };
        let peak = panels
            .iter()
            .flat_map(|p| {
                let per_sec = per_second(p.timeline);
                p.timeline.buckets().iter().map(move |b| {
                    let top = b.admitted.max(b.rejected).max(b.failing).max(b.successes);
                    top as f64 * per_sec
                })
            })
            .fold(0.0, f64::max);
        let top = if peak > 0.0 { peak * 1.12 } else { 1.0 };
        Self { x: 0.0..end, y: 0.0..top }
    }
}

/// How long a timeline ran: its end, or its buckets' span if no end was recorded.
fn span_secs(t: &Timeline) -> f64 {
    let end = t.end().as_secs_f64();
    if end > 0.0 { end } else { t.buckets().len() as f64 * t.interval().as_secs_f64() }
}

/// The factor from a bucket's count to calls per second.
fn per_second(t: &Timeline) -> f64 {
    let secs = t.interval().as_secs_f64();
    if secs > 0.0 { 1.0 / secs } else { 0.0 }
}

/// Each bucket with the time range it covers on the axis (cut at its end).
fn spans<'t>(t: &'t Timeline, end: f64) -> impl Iterator<Item = (Range<f64>, &'t Bucket)> + 't {
    let step = t.interval().as_secs_f64();
    t.buckets().iter().enumerate().map_while(move |(i, b)| {
        let from = i as f64 * step;
        // Each bound computed once, from the index, so that neighbours meet exactly.
        (from < end).then(|| (from..((i + 1) as f64 * step).min(end), b))
    })
}

/// Draws into an SVG of its own and returns it.
fn piece(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> DrawResult,
) -> Result<String, SimError> {
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let presenter = area.clone();
        draw(area)
            .and_then(|()| presenter.present().map_err(Into::into))
            .map_err(|e| SimError(format!("plot: {e}")))?;
    }
    Ok(out)
}

/// A plotters text style of `px` pixels (plotters writes `font-size` as size / 1.24).
fn text(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&BLACK)
}

/// [`text`], bold.
fn bold(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24, FontStyle::Bold).into_font().color(&BLACK)
}

fn rgb(hex: &str) -> RGBColor {
    let channel = |i: usize| hex.get(i..i + 2).and_then(|c| u8::from_str_radix(c, 16).ok()).unwrap_or(0);
    RGBColor(channel(1), channel(3), channel(5))
}

fn series_style(i: usize) -> ShapeStyle {
    // The load is wide and a little see-through, so that the successes, on it while
    // the backend is healthy, show through.
    if i == 0 { rgb(SERIES[0].color).mix(0.55).stroke_width(4) } else { rgb(SERIES[i].color).stroke_width(2) }
}

fn draw_header(area: &DrawingArea<SVGBackend<'_>, Shift>, title: &str) -> DrawResult {
    let left = i32::try_from(MARGIN_LEFT).unwrap_or(0);
    // About 10.5 px a character at 18 px bold: a longer title is cut with an ellipsis
    // rather than run off the page.
    let fits = usize::try_from((WIDTH - MARGIN_LEFT * 2) / 11).unwrap_or(80);
    let title: String = if title.chars().count() > fits {
        title.chars().take(fits.saturating_sub(1)).chain(['\u{2026}']).collect()
    } else {
        title.to_owned()
    };
    area.draw_text(&title, &bold(18.0), (left, 10))?;
    let row = |y: i32, heading: &str| -> Result<i32, Box<dyn std::error::Error>> {
        area.draw_text(heading, &bold(13.0).pos(Pos::new(HPos::Left, VPos::Center)), (left, y))?;
        Ok(left + 110)
    };
    let label = text(13.0).pos(Pos::new(HPos::Left, VPos::Center));
    // The width of a legend entry: swatch, text (about 7 px a character at 13 px), gap.
    let slot = |s: &str| 30 + 7 * i32::try_from(s.len()).unwrap_or(0) + 22;

    let y = 48;
    let mut x = row(y, "calls/s")?;
    for (i, series) in SERIES.iter().enumerate() {
        if i == 2 {
            let c = rgb(series.color);
            area.draw(&Rectangle::new([(x, y - 6), (x + 24, y + 6)], c.mix(0.35).filled()))?;
            area.draw(&PathElement::new(vec![(x, y - 6), (x + 24, y - 6)], series_style(i)))?;
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 24, y)], series_style(i)))?;
        }
        area.draw_text(series.label, &label, (x + 30, y))?;
        x += slot(series.label);
    }
    area.draw(&Rectangle::new([(x, y - 7), (x + 24, y + 7)], rgb(TROUBLE_COLOR).mix(TROUBLE_ALPHA).filled()))?;
    area.draw_text(TROUBLE_LABEL, &label, (x + 30, y))?;

    let y = 74;
    let mut x = row(y, "breaker state")?;
    for state in LEGEND_STATES {
        area.draw(&Rectangle::new([(x, y - 7), (x + 24, y + 7)], rgb(state_color(state)).filled()))?;
        let name = state.to_string();
        area.draw_text(&name, &label, (x + 30, y))?;
        x += slot(&name);
    }
    Ok(())
}

fn draw_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, name: &str, t: &Timeline, frame: &Frame) -> DrawResult {
    let (caption, rest) = area.split_vertically(CAPTION_HEIGHT);
    let (band, chart) = rest.split_vertically(BAND_HEIGHT + BAND_GAP);
    let left = i32::try_from(MARGIN_LEFT + Y_LABEL_AREA).unwrap_or(0);
    caption.draw_text(name, &bold(15.0).pos(Pos::new(HPos::Left, VPos::Bottom)), (left, 20))?;
    draw_band(&band, t, frame)?;
    draw_chart(&chart, t, frame)
}

fn draw_band(area: &DrawingArea<SVGBackend<'_>, Shift>, t: &Timeline, frame: &Frame) -> DrawResult {
    let mut band = ChartBuilder::on(area)
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_bottom(BAND_GAP)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(frame.x.clone(), 0.0..1.0)?;
    let end = frame.x.end;
    band.draw_series(std::iter::once(Rectangle::new([(0.0, 0.0), (end, 1.0)], NO_DATA_RGB.filled())))?;

    // Runs of buckets with the same shares are drawn as one rectangle per state, the
    // states stacked from the most traffic kept out (on top) to the least.
    let mut runs: Vec<(Range<f64>, [f64; 6])> = Vec::new();
    for (span, bucket) in spans(t, end) {
        let shares = STATES.map(|s| bucket.share(s));
        match runs.last_mut() {
            Some((last, last_shares)) if *last_shares == shares && last.end == span.start => last.end = span.end,
            _ => runs.push((span, shares)),
        }
    }
    let rects = runs.iter().flat_map(|(span, shares)| {
        let mut top = 1.0;
        STATES.iter().zip(shares).rev().filter(|(_, share)| **share > 0.0).map(move |(state, share)| {
            let rect = Rectangle::new([(span.start, top), (span.end, top - share)], rgb(state_color(*state)).filled());
            top -= share;
            rect
        })
    });
    band.draw_series(rects)?;

    // The name of each state that holds most of the band for long enough to read it.
    let plot = band.plotting_area();
    let px_per_sec = f64::from(plot.dim_in_pixel().0) / (end - frame.x.start);
    let mut labelled: Vec<(Range<f64>, State)> = Vec::new();
    for (span, bucket) in spans(t, end) {
        // More than half: with one breaker per key, half open and half closed is no one
        // state's run.
        let Some(state) = bucket.dominant().filter(|s| bucket.share(*s) > 0.5) else { continue };
        match labelled.last_mut() {
            Some((last, s)) if *s == state && last.end == span.start => last.end = span.end,
            _ => labelled.push((span, state)),
        }
    }
    // Text on the band goes in the panel's pixels, not the chart's.
    let (dx, dy) = area.get_base_pixel();
    let at = |x: f64, y: f64| {
        let (px, py) = band.backend_coord(&(x, y));
        (px - dx, py - dy)
    };
    let digits = if t.interval() < Duration::from_secs(1) { 1 } else { 0 };
    for (span, state) in labelled {
        let name = state.to_string();
        // The longest label that fits: when it began and ended, or when it began; the name.
        let mut candidates = Vec::new();
        if state != State::Closed && state != State::Disabled {
            let from = format!("{name} from {:.digits$} s", span.start);
            if span.end < end {
                candidates.push(format!("{from} to {:.digits$} s", span.end));
                candidates.push(format!("{name} {:.digits$}\u{2013}{:.digits$} s", span.start, span.end));
            } else {
                candidates.push(from);
            }
        }
        candidates.push(name);
        let room = (span.end - span.start) * px_per_sec;
        let Some(label) = candidates.into_iter().find(|c| 7.0 * c.chars().count() as f64 + 12.0 <= room) else {
            continue;
        };
        let style = match state {
            State::HalfOpen | State::Disabled => text(12.0),
            _ => text(12.0).color(&WHITE),
        };
        let style = style.pos(Pos::new(HPos::Center, VPos::Center));
        area.draw_text(&label, &style, at((span.start + span.end) / 2.0, 0.5))?;
    }
    let x = i32::try_from(MARGIN_LEFT + Y_LABEL_AREA).unwrap_or(0) - 8;
    area.draw_text("state", &text(12.0).pos(Pos::new(HPos::Right, VPos::Center)), (x, at(0.0, 0.5).1))?;
    Ok(())
}

fn draw_chart(area: &DrawingArea<SVGBackend<'_>, Shift>, t: &Timeline, frame: &Frame) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_bottom(4)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(frame.x.clone(), frame.y.clone())?;
    let end = frame.x.end;
    let top = frame.y.end;

    // The backend's trouble, behind everything.
    let trouble = spans(t, end).filter(|(_, b)| b.in_trouble()).map(|(span, _)| span);
    let mut shaded: Vec<Range<f64>> = Vec::new();
    for span in trouble {
        match shaded.last_mut() {
            Some(last) if last.end == span.start => last.end = span.end,
            _ => shaded.push(span),
        }
    }
    chart.draw_series(shaded.into_iter().map(|span| {
        Rectangle::new([(span.start, 0.0), (span.end, top)], rgb(TROUBLE_COLOR).mix(TROUBLE_ALPHA).filled())
    }))?;

    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("calls/s")
        .x_labels(12)
        .y_labels(5)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(text(12.0))
        .axis_desc_style(text(13.0))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .light_line_style(TRANSPARENT)
        .draw()?;

    let per_sec = per_second(t);
    let steps = |count: fn(&Bucket) -> u64| -> Vec<(f64, f64)> {
        spans(t, end)
            .flat_map(|(span, b)| {
                let v = count(b) as f64 * per_sec;
                [(span.start, v), (span.end, v)]
            })
            .collect()
    };
    let failing = steps(|b| b.failing);
    if !failing.is_empty() {
        let c = rgb(SERIES[2].color);
        chart.draw_series(AreaSeries::new(failing, 0.0, c.mix(0.35)).border_style(series_style(2)))?;
    }
    for (i, count) in [(0, (|b| b.admitted) as fn(&Bucket) -> u64), (1, |b| b.rejected), (3, |b| b.successes)] {
        let points = steps(count);
        if !points.is_empty() {
            chart.draw_series(LineSeries::new(points, series_style(i)))?;
        }
    }
    Ok(())
}

/// A tick's label: `10`, `2.5`, `0.25` (plotters would write `10.0`).
fn tick(v: &f64) -> String {
    let s = format!("{:.3}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_owned() } else { s.to_owned() }
}

/// `s` without the control characters that XML cannot hold (plotters escapes the rest).
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `s` escaped for XML text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
