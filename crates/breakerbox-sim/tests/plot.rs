//! The SVG of timelines: its structure, read back as XML.

use std::time::Duration;

use breakerbox::State;
use breakerbox_sim::plot::{LEGEND_STATES, Panel, SERIES, TROUBLE_COLOR, TROUBLE_LABEL, state_color, timeline_svg};
use breakerbox_sim::timeline::Timeline;
use roxmltree::{Document, Node};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The classic story by hand: 20 calls a second for `length` s; the backend fails from
/// 5 s to 12 s; the breaker is closed, open from 6 s to 10 s, half-open to 10.5 s, then
/// closed again.
fn story(length: f64) -> Timeline {
    // 400 buckets: 125 ms each over 20 s, so that every change of state falls on a
    // bucket boundary.
    let mut t = Timeline::new(400);
    let state_at = |at: f64| match at {
        a if (6.0..10.0).contains(&a) => State::Open,
        a if (10.0..10.5).contains(&a) => State::HalfOpen,
        _ => State::Closed,
    };
    let mut at = 0.0;
    while at < length {
        let trouble = (5.0..12.0).contains(&at);
        let b = t.bucket(secs(at));
        b.offered += 1;
        if trouble {
            b.offered_in_trouble += 1;
        }
        if state_at(at) == State::Open {
            b.rejected += 1;
        } else {
            b.admitted += 1;
            if trouble {
                b.failing += 1;
            } else {
                b.successes += 1;
            }
        }
        at += 0.05;
    }
    for (state, from, to) in [
        (State::Closed, 0.0, 6.0),
        (State::Open, 6.0, 10.0),
        (State::HalfOpen, 10.0, 10.5),
        (State::Closed, 10.5, length),
    ] {
        t.add_state_time(state, 1, secs(from), secs(to.min(length)));
    }
    t.close(secs(length));
    t
}

fn svg(panels: &[(&str, &Timeline)]) -> String {
    let panels: Vec<Panel<'_>> = panels.iter().map(|&(name, timeline)| Panel { name, timeline }).collect();
    timeline_svg("what-if: outage", &panels).expect("an SVG")
}

fn panels<'a, 'i>(doc: &'a Document<'i>) -> Vec<Node<'a, 'i>> {
    doc.descendants().filter(|n| n.has_tag_name("g") && n.attribute("class") == Some("panel")).collect()
}

fn texts(node: Node<'_, '_>) -> Vec<String> {
    node.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|s| s.trim().to_owned())
        .collect()
}

/// The time axis's tick labels: the numbers written centred (the calls/s ticks are
/// right-aligned), left to right.
fn time_ticks(panel: Node<'_, '_>) -> Vec<String> {
    let mut ticks: Vec<(f64, String)> = panel
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some("middle"))
        .filter_map(|n| {
            let label = n.text()?.trim();
            label.parse::<f64>().ok()?;
            Some((n.attribute("x")?.parse().ok()?, label.to_owned()))
        })
        .collect();
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    ticks.into_iter().map(|(_, label)| label).collect()
}

/// A rectangle: x, y, width, height.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn rects_filled(node: Node<'_, '_>, color: &str) -> Vec<Rect> {
    node.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill").is_some_and(|f| f.eq_ignore_ascii_case(color)))
        .map(|n| {
            let num = |name: &str| n.attribute(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            Rect { x: num("x"), y: num("y"), w: num("width"), h: num("height") }
        })
        .collect()
}

/// The state band's rectangles in `panel`: those of any state's colour.
fn band(panel: Node<'_, '_>) -> Vec<Rect> {
    LEGEND_STATES.iter().flat_map(|s| rects_filled(panel, state_color(*s))).collect()
}

/// Where `rect` starts and ends as fractions of `within`'s span along x.
fn fraction(rect: Rect, within: &[Rect]) -> (f64, f64) {
    let left = within.iter().map(|r| r.x).fold(f64::INFINITY, f64::min);
    let right = within.iter().map(|r| r.x + r.w).fold(f64::NEG_INFINITY, f64::max);
    ((rect.x - left) / (right - left), (rect.x + rect.w - left) / (right - left))
}

#[test]
fn one_panel_per_config_on_a_shared_time_axis() {
    let long = story(20.0);
    let short = story(8.0);
    let text = svg(&[("default", &long), ("eager", &short)]);
    let doc = Document::parse(&text).expect("the SVG parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let width: f64 = doc.root_element().attribute("width").unwrap().parse().unwrap();
    assert!((900.0..=1100.0).contains(&width), "about 1000 px wide, not {width}");

    let found = panels(&doc);
    assert_eq!(found.len(), 2, "one panel per config");
    assert_eq!(found[0].attribute("id"), Some("panel-0"));
    assert_eq!(found[1].attribute("data-config"), Some("eager"));
    for (panel, name) in found.iter().zip(["default", "eager"]) {
        let words = texts(*panel);
        for wanted in [name, "time (s)", "calls/s", "state"] {
            assert!(words.iter().any(|w| w == wanted), "panel {name} lacks the text {wanted:?}: {words:?}");
        }
    }

    let ticks = time_ticks(found[0]);
    assert!(ticks.len() >= 4, "the time axis has ticks: {ticks:?}");
    assert_eq!(ticks, time_ticks(found[1]), "both panels share the time axis");
    assert_eq!(ticks.first().map(String::as_str), Some("0"));
    let last: f64 = ticks.last().unwrap().parse().unwrap();
    assert!((15.0..=20.0).contains(&last), "the axis runs to the longer timeline's 20 s: {ticks:?}");

    let title = doc.descendants().find(|n| n.has_tag_name("title")).and_then(|n| n.text());
    assert_eq!(title, Some("what-if: outage"));
    assert!(texts(doc.root_element()).iter().any(|t| t == "what-if: outage"), "the title is drawn");
}

#[test]
fn the_legend_names_every_series_and_state() {
    let t = story(20.0);
    let text = svg(&[("default", &t)]);
    let doc = Document::parse(&text).unwrap();
    let header = doc.descendants().find(|n| n.attribute("id") == Some("header")).expect("a header group");
    let words = texts(header);
    for series in SERIES {
        assert!(words.iter().any(|w| w == series.label), "no legend entry {:?} in {words:?}", series.label);
    }
    assert!(words.iter().any(|w| w == TROUBLE_LABEL));
    for state in LEGEND_STATES {
        let name = state.to_string();
        assert!(words.contains(&name), "no legend entry for {name} in {words:?}");
        assert_eq!(rects_filled(header, state_color(state)).len(), 1, "one swatch of {name}'s colour");
    }
}

#[test]
fn the_state_band_is_red_where_the_breaker_was_open() {
    let t = story(20.0);
    let text = svg(&[("default", &t)]);
    let doc = Document::parse(&text).unwrap();
    let panel = panels(&doc)[0];
    let band = band(panel);
    let open = rects_filled(panel, state_color(State::Open));
    assert_eq!(open.len(), 1, "one run of open: {open:?}");
    let (from, to) = fraction(open[0], &band);
    assert!((from - 0.30).abs() < 0.01 && (to - 0.50).abs() < 0.01, "open from 6 s to 10 s of 20: {from}..{to}");
    let closed = rects_filled(panel, state_color(State::Closed));
    assert_eq!(closed.len(), 2, "closed before and after: {closed:?}");
    assert_eq!(rects_filled(panel, state_color(State::HalfOpen)).len(), 1);
    let height = open[0].h;
    assert!(band.iter().all(|r| (r.h - height).abs() < 1.0), "one breaker: every state fills the band's height");
    let words = texts(panel);
    assert!(
        words.iter().any(|w| w == "open from 6.0 s to 10.0 s" || w == "open 6.0\u{2013}10.0 s"),
        "the open run is labelled: {words:?}"
    );

    // The trouble, shaded behind the chart from 5 s to 12 s.
    let shade = rects_filled(panel, TROUBLE_COLOR);
    assert_eq!(shade.len(), 1, "one stretch of trouble: {shade:?}");
    let (from, to) = fraction(shade[0], &band);
    assert!((from - 0.25).abs() < 0.01 && (to - 0.60).abs() < 0.01, "trouble from 5 s to 12 s of 20: {from}..{to}");
    assert!(shade[0].h > 3.0 * height, "the shading spans the chart, below the band");
    assert!(shade[0].y > open[0].y + height, "the chart is below the band");
}

#[test]
fn several_breakers_show_as_fractions_of_the_band() {
    let mut t = Timeline::default();
    // Ten breakers (one per key) over 10 s: two of them open from 2 s to 4 s.
    t.add_state_time(State::Closed, 10, secs(0.0), secs(2.0));
    t.add_state_time(State::Closed, 8, secs(2.0), secs(4.0));
    t.add_state_time(State::Open, 2, secs(2.0), secs(4.0));
    t.add_state_time(State::Closed, 10, secs(4.0), secs(10.0));
    t.close(secs(10.0));
    let text = svg(&[("per key", &t)]);
    let doc = Document::parse(&text).unwrap();
    let panel = panels(&doc)[0];
    let open = rects_filled(panel, state_color(State::Open));
    let closed = rects_filled(panel, state_color(State::Closed));
    assert_eq!(open.len(), 1);
    let full = closed.iter().map(|r| r.h).fold(0.0, f64::max);
    let (from, to) = fraction(open[0], &band(panel));
    assert!((from - 0.2).abs() < 0.01 && (to - 0.4).abs() < 0.01, "{from}..{to}");
    assert!((open[0].h / full - 0.2).abs() < 0.06, "two of ten open: {} of {full}", open[0].h);
    let beside = closed.iter().find(|r| (r.x - open[0].x).abs() < 1.0).expect("closed beside the open share");
    assert!((beside.h / full - 0.8).abs() < 0.06, "eight of ten closed: {} of {full}", beside.h);
    assert!(open[0].y < beside.y, "open stacked on top");
}

#[test]
fn empty_single_and_silent_timelines_still_draw() {
    let empty = Timeline::default();
    let mut single = Timeline::default();
    let b = single.bucket(Duration::ZERO);
    b.offered = 3;
    b.admitted = 3;
    b.successes = 3;
    let mut silent = Timeline::default();
    silent.close(secs(5.0));
    for set in [
        vec![("empty", &empty)],
        vec![("single", &single)],
        vec![("silent", &silent)],
        vec![("empty", &empty), ("single", &single), ("silent", &silent)],
    ] {
        let text = svg(&set);
        let doc = Document::parse(&text).unwrap_or_else(|e| panic!("{set:?}: {e}"));
        let found = panels(&doc);
        assert_eq!(found.len(), set.len());
        let ticks = time_ticks(found[0]);
        assert!(!ticks.is_empty(), "an axis even with nothing on it");
        assert!(found.iter().all(|p| time_ticks(*p) == ticks));
        assert!(texts(doc.root_element()).iter().any(|t| t == "time (s)"));
    }
}

#[test]
fn no_panels_is_an_error() {
    let error = timeline_svg("nothing", &[]).unwrap_err();
    assert!(error.0.contains("no panels"), "{error}");
}

#[test]
fn names_and_titles_are_escaped() {
    let t = story(12.0);
    let panels = [Panel { name: "a<b & \"c\"", timeline: &t }];
    let text = timeline_svg("x < y & z", &panels).unwrap();
    let doc = Document::parse(&text).expect("escaped");
    let panel = self::panels(&doc)[0];
    assert_eq!(panel.attribute("data-config"), Some("a<b & \"c\""));
    assert!(texts(panel).iter().any(|w| w == "a<b & \"c\""));

    let control = [Panel { name: "tab\there\u{1}", timeline: &t }];
    let text = timeline_svg("bell\u{7}", &control).unwrap();
    Document::parse(&text).expect("control characters are left out");
}
