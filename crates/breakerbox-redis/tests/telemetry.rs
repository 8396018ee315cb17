//! The fleet's `tracing` events and `metrics` series, seen by a global subscriber and a
//! global debugging recorder (the fleet reports from its own tasks), with Redis killed
//! midway.

mod support;

use std::time::Duration;

use breakerbox::{Breaker, OpenWait, Policy};
use support::{RedisServer, config, eventually, replica};

#[cfg(feature = "tracing")]
mod capture {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::layer::{Context, Layer};

    /// (level, target, message) of every event.
    #[derive(Clone, Default)]
    pub(crate) struct Events(pub(crate) Arc<Mutex<Vec<(Level, String, String)>>>);

    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl<S: Subscriber> Layer<S> for Events {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut m = Message(String::new());
            event.record(&mut m);
            let meta = event.metadata();
            self.0.lock().unwrap().push((*meta.level(), meta.target().to_owned(), m.0));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reports_sync_errors_and_fleet_decisions() {
    #[cfg(feature = "metrics")]
    let snapshotter = {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        snapshotter
    };
    #[cfg(feature = "tracing")]
    let events = {
        use tracing_subscriber::layer::SubscriberExt;
        let events = capture::Events::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(events.clone())).unwrap();
        events
    };

    let mut server = RedisServer::start();
    let (a, _) = replica(&server, config("telemetry"), "a");
    let (b, _) = replica(&server, config("telemetry"), "b");
    let builder = || {
        Breaker::builder()
            .name("payments")
            .policy(Policy::consecutive_failures(1))
            .open_wait(OpenWait::fixed(Duration::from_secs(60)))
    };
    let on_a = a.breaker(builder()).unwrap();
    let on_b = b.breaker(builder()).unwrap();
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    let _ = on_a.call(|| Err::<(), _>("down"));
    assert!(eventually(Duration::from_secs(1), || on_b.is_open()).await);
    server.kill();
    assert!(eventually(Duration::from_secs(1), || a.status().degraded && b.status().degraded).await);
    tokio::time::sleep(Duration::from_millis(50)).await;

    #[cfg(feature = "tracing")]
    {
        let seen = events.0.lock().unwrap().clone();
        let has = |level: tracing::Level, text: &str| {
            seen.iter().any(|(l, t, m)| *l == level && t == "breakerbox_redis" && m.contains(text))
        };
        assert!(has(tracing::Level::INFO, "fleet joined"), "{seen:#?}");
        assert!(has(tracing::Level::WARN, "fleet opened the breaker"), "{seen:#?}");
        assert!(has(tracing::Level::WARN, "fleet unreachable"), "{seen:#?}");
    }
    #[cfg(feature = "metrics")]
    {
        use metrics_util::debugging::DebugValue;
        let mut seen = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            seen.push((key.name().to_owned(), labels.join(","), value));
        }
        let get = |name: &str, labels: &str| {
            seen.iter()
                .find(|(n, l, _)| n == name && l == labels)
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("{name}{{{labels}}} missing from {seen:#?}"))
        };
        assert_eq!(get("breakerbox_fleet_degraded", "service=telemetry"), 1.0);
        let errors: f64 = seen.iter().filter(|(n, _, _)| n == "breakerbox_fleet_store_errors_total").map(|s| s.2).sum();
        assert!(errors >= 1.0, "{seen:#?}");
        assert!(get("breakerbox_fleet_store_ops_total", "op=report,service=telemetry") >= 1.0);
        assert!(get("breakerbox_fleet_sync_duration_seconds", "service=telemetry") >= 1.0, "round trips recorded");
        assert!(get("breakerbox_fleet_sync_lag_seconds", "service=telemetry") >= 0.0);
        assert_eq!(get("breakerbox_fleet_applied_total", "service=telemetry,state=open"), 2.0, "both replicas");
        // The core's own series come through the same feature.
        assert!(get("breakerbox_calls_total", "breaker=payments,outcome=failure") >= 1.0);
    }
}
