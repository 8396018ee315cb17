//! `tracing` events and `metrics` series, seen by a test subscriber and a debugging
//! recorder.

use std::time::Duration;

use breakerbox::{Breaker, ManualClock, OpenWait, Policy};

/// The tests here run one at a time. `tracing` caches each callsite's interest for
/// every thread: a test whose breaker hits a callsite on another thread, with no
/// subscriber there, while the scoped subscriber of the tracing test is being set up,
/// can leave that callsite disabled for it (it then saw no events at all, once, on a
/// loaded machine).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn breaker(clock: &ManualClock) -> Breaker {
    Breaker::builder()
        .name("payments")
        .policy(Policy::consecutive_failures(2))
        .open_wait(OpenWait::fixed(Duration::from_secs(5)))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// One story: 3 successes, 1 ignored, 2 failures (opens), 2 rejections, a probe that
/// succeeds (half-open, closed).
fn story(clock: &ManualClock, b: &Breaker) {
    for _ in 0..3 {
        b.try_acquire().unwrap().success();
    }
    b.try_acquire().unwrap().ignore();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert!(b.try_acquire().is_err());
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_secs(5));
    b.try_acquire().unwrap().success();
    assert!(b.is_closed());
}

#[cfg(feature = "tracing")]
mod tracing_events {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use super::*;

    type Seen = (Level, String, Vec<(String, String)>);

    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<Seen>>>);

    struct Fields(String, Vec<(String, String)>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            } else {
                self.1.push((field.name().to_string(), format!("{value:?}").trim_matches('"').to_string()));
            }
        }
    }

    impl<S: Subscriber> Layer<S> for Recorder {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut f = Fields(String::new(), Vec::new());
            event.record(&mut f);
            self.0.lock().unwrap().push((*event.metadata().level(), f.0, f.1));
        }
    }

    #[test]
    fn state_changes_and_rejections_are_traced_and_successes_are_not() {
        let _serial = serial();
        let recorder = Recorder::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        tracing::subscriber::with_default(subscriber, || {
            let clock = ManualClock::new();
            let b = breaker(&clock);
            story(&clock, &b);
        });
        let events = recorder.0.lock().unwrap().clone();
        let summary: Vec<(Level, &str)> = events.iter().map(|(l, m, _)| (*l, m.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (Level::WARN, "circuit breaker opened"),
                (Level::DEBUG, "call rejected"),
                (Level::DEBUG, "call rejected"),
                (Level::INFO, "circuit breaker half-open: probing"),
                (Level::INFO, "circuit breaker closed"),
            ]
        );
        let opened = &events[0].2;
        for (k, v) in [
            ("breaker", "payments"),
            ("from", "closed"),
            ("to", "open"),
            ("reason", "tripped"),
            ("open_for_ms", "5000"),
        ] {
            assert!(opened.contains(&(k.to_string(), v.to_string())), "{k}={v} missing from {opened:?}");
        }
        let rejected = &events[1].2;
        assert!(rejected.contains(&("retry_after_ms".into(), "5000".into())), "{rejected:?}");
    }
}

#[cfg(feature = "metrics")]
mod metrics_series {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn the_documented_series_carry_the_right_values() {
        let _serial = serial();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let clock = ManualClock::new();
            let b = breaker(&clock);
            story(&clock, &b);
        });
        let mut seen = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => continue,
            };
            seen.push((key.name().to_string(), labels.join(","), value));
        }
        let get = |name: &str, labels: &str| {
            seen.iter()
                .find(|(n, l, _)| n == name && l == labels)
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("{name}{{{labels}}} missing from {seen:#?}"))
        };
        assert_eq!(get("breakerbox_calls_total", "breaker=payments,outcome=success"), 4.0);
        assert_eq!(get("breakerbox_calls_total", "breaker=payments,outcome=failure"), 2.0);
        assert_eq!(get("breakerbox_calls_total", "breaker=payments,outcome=ignored"), 1.0);
        assert_eq!(get("breakerbox_calls_total", "breaker=payments,outcome=rejected,reason=open"), 2.0);
        assert_eq!(get("breakerbox_calls_total", "breaker=payments,outcome=rejected,reason=throttled"), 0.0);
        assert_eq!(get("breakerbox_transitions_total", "breaker=payments,from=closed,to=open"), 1.0);
        assert_eq!(get("breakerbox_transitions_total", "breaker=payments,from=open,to=half_open"), 1.0);
        assert_eq!(get("breakerbox_transitions_total", "breaker=payments,from=half_open,to=closed"), 1.0);
        assert_eq!(get("breakerbox_state", "breaker=payments,state=closed"), 1.0);
        assert_eq!(get("breakerbox_state", "breaker=payments,state=open"), 0.0);
        assert_eq!(get("breakerbox_state", "breaker=payments,state=half_open"), 0.0);
    }

    /// Shadow mode's would-be rejections, one series per reason; and every series is
    /// described (unit and help text) to the recorder in place when a breaker is built.
    #[test]
    fn shadow_rejections_are_counted_by_reason_and_every_series_is_described() {
        let _serial = serial();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let clock = ManualClock::new();
            let b = Breaker::builder()
                .name("audit")
                .policy(Policy::consecutive_failures(1))
                .open_wait(OpenWait::fixed(Duration::from_secs(5)))
                .shadow(true)
                .clock(clock.clone())
                .build()
                .unwrap();
            b.try_acquire().unwrap().failure();
            // Open: admitted, a would-be rejection for `open`.
            b.try_acquire().unwrap().ignore();
            clock.advance(Duration::from_secs(5));
            // Half-open, its one probe slot taken: `half_open_full`.
            let probe = b.try_acquire().unwrap();
            b.try_acquire().unwrap().ignore();
            probe.release();
            // Forced open: `forced_open`.
            b.force_open();
            b.try_acquire().unwrap().ignore();
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let shadow = |reason: &str| {
            snapshot
                .iter()
                .find(|(k, _, _, _)| {
                    k.key().name() == "breakerbox_shadow_rejections_total"
                        && k.key().labels().any(|l| l.key() == "reason" && l.value() == reason)
                })
                .map(|(_, _, _, v)| v)
        };
        for reason in ["open", "half_open_full", "forced_open"] {
            assert_eq!(shadow(reason), Some(&DebugValue::Counter(1)), "{reason}: {snapshot:#?}");
        }
        for name in [
            "breakerbox_calls_total",
            "breakerbox_transitions_total",
            "breakerbox_state",
            "breakerbox_shadow_rejections_total",
        ] {
            let described = snapshot.iter().find(|(k, _, _, _)| k.key().name() == name);
            let (_, unit, help, _) = described.unwrap_or_else(|| panic!("{name} missing"));
            assert!(help.as_ref().is_some_and(|h| !h.is_empty()), "{name} has its help text");
            if name != "breakerbox_state" {
                assert_eq!(*unit, Some(metrics::Unit::Count), "{name}");
            }
        }
    }
}

#[test]
fn the_story_runs_without_any_telemetry_feature() {
    let _serial = serial();
    let clock = ManualClock::new();
    story(&clock, &breaker(&clock));
}
