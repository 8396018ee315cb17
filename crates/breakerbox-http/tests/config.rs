//! `HttpConfig` from TOML, JSON and the environment; round trips; settings that drive
//! behaviour; every bad key named.
#![cfg(feature = "serde")]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakerbox::config::{OpenWaitConfig, WindowConfig};
use breakerbox::{ManualClock, State};
use breakerbox_http::config::{BudgetConfig, ClassifierConfig, HttpConfig};
use breakerbox_http::{HttpClient, Request};

/// Every key there is.
const FULL: &str = r#"
name = "inventory"
consecutive_failures = 2
failure_rate = { threshold = 0.5, window = "30s", min_calls = 10 }
open_wait = { base = "1s", max = "1m", jitter = 0.2 }
half_open_probes = 1
probe_lease = "45s"
retry_after_limit = "2m"
classifier = "success_2xx"
per_host = true
max_hosts = 100
host_idle_timeout = "10m"

[retry]
attempts = 3
base = "1ms"
max = "2ms"
jitter = 0.0
budget = { ratio = 0.5, min_retries = 20, window = "5s" }
all_methods = true
"#;

/// Answers the status its path names (`/503` is a 503), in memory, and counts requests.
#[derive(Clone, Debug, Default)]
struct Canned(Arc<AtomicU64>);

impl HttpClient for Canned {
    type Response = http::Response<()>;
    type Error = std::io::Error;

    fn execute(&self, request: Request) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send {
        self.0.fetch_add(1, Ordering::SeqCst);
        let status = request.uri().path().trim_start_matches('/').parse().unwrap_or(200);
        std::future::ready(Ok(http::Response::builder().status(status).body(()).unwrap()))
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn every_key_from_toml() {
    let config: HttpConfig = toml::from_str(FULL).unwrap();
    assert_eq!(config.breaker.name.as_deref(), Some("inventory"));
    assert_eq!(config.breaker.consecutive_failures, Some(2));
    assert_eq!(config.breaker.failure_rate.as_ref().unwrap().window, Some(WindowConfig::Time(Duration::from_secs(30))));
    assert_eq!(
        config.breaker.open_wait,
        Some(OpenWaitConfig::Exponential { base: Duration::from_secs(1), max: Duration::from_secs(60), jitter: 0.2 })
    );
    assert_eq!(config.classifier, Some(ClassifierConfig::Success2xx));
    assert_eq!((config.per_host, config.max_hosts), (Some(true), Some(100)));
    assert_eq!(config.host_idle_timeout, Some(Duration::from_secs(600)));
    let retry = config.retry.as_ref().unwrap();
    assert_eq!(retry.attempts, 3);
    assert_eq!((retry.base, retry.max), (Some(Duration::from_millis(1)), Some(Duration::from_millis(2))));
    assert_eq!(
        retry.budget,
        Some(BudgetConfig::Ratio { ratio: 0.5, min_retries: Some(20), window: Some(Duration::from_secs(5)) })
    );
    assert_eq!(retry.all_methods, Some(true));
}

#[test]
fn the_settings_drive_the_breaker() {
    let config: HttpConfig = toml::from_str(FULL).unwrap();
    let client = Canned::default();
    let clock = ManualClock::new();
    let breaker = config.builder(client.clone()).clock(clock.clone()).build().unwrap();
    assert_eq!(breaker.name(), "inventory");

    // success_2xx: a 404 fails. Three attempts (the retries), and two failures in a row
    // open this host's breaker; the third attempt is refused.
    let err = block_on(breaker.do_request("GET", "http://a.test/404")).unwrap_err();
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(client.0.load(Ordering::SeqCst), 2);
    // Per host: another host is not affected. POST is retried (all_methods).
    assert_eq!(block_on(breaker.do_request("POST", "http://b.test/200")).unwrap().status(), 200);
    assert_eq!(
        breaker.host_states(),
        vec![("http://a.test:80".to_owned(), State::Open), ("http://b.test:80".to_owned(), State::Closed)]
    );
    let _ = block_on(breaker.do_request("POST", "http://b.test/503"));
    assert_eq!(client.0.load(Ordering::SeqCst), 5, "two attempts of the POST before its host opened");
}

#[test]
fn defaults_when_keys_are_missing() {
    let config: HttpConfig = toml::from_str("").unwrap();
    assert_eq!(config, HttpConfig::default());
    let client = Canned::default();
    let breaker = config.build(client.clone()).unwrap();
    assert_eq!(breaker.name(), "http");
    // Issue 9: the production defaults are per host, as the builder's.
    assert!(breaker.breaker().is_none(), "one breaker per host unless per_host says otherwise");
    assert!(
        toml::from_str::<HttpConfig>("per_host = false").unwrap().build(Canned::default()).unwrap().breaker().is_some()
    );
    // The standard classifier: a 404 is a success, a 503 a failure.
    block_on(breaker.do_request("GET", "http://a.test/404")).unwrap();
    assert_eq!(breaker.metrics().successes, 1);
    // max_hosts alone implies per_host.
    let config: HttpConfig = toml::from_str("max_hosts = 3").unwrap();
    assert!(config.build(Canned::default()).unwrap().breaker().is_none());
}

#[test]
fn round_trips_through_toml_and_json() {
    let config: HttpConfig = toml::from_str(FULL).unwrap();
    let text = toml::to_string(&config).unwrap();
    assert_eq!(toml::from_str::<HttpConfig>(&text).unwrap(), config, "{text}");
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<HttpConfig>(&json).unwrap(), config, "{json}");
    assert!(json.contains(r#""host_idle_timeout":"10m""#), "{json}");
    assert!(json.contains(r#""classifier":"success_2xx""#), "{json}");

    // Budgets in their three shapes.
    for (input, budget) in [
        ("budget = 0.1", BudgetConfig::Ratio { ratio: 0.1, min_retries: None, window: None }),
        ("budget = false", BudgetConfig::Off),
        (
            "budget = { ratio = 0.3, window = \"20s\" }",
            BudgetConfig::Ratio { ratio: 0.3, min_retries: None, window: Some(Duration::from_secs(20)) },
        ),
    ] {
        let config: HttpConfig = toml::from_str(&format!("[retry]\nattempts = 2\n{input}")).unwrap();
        assert_eq!(config.retry.as_ref().unwrap().budget, Some(budget), "{input}");
        let again: HttpConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config, "{input}");
        let again: HttpConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config, "{input}");
    }
}

#[test]
#[allow(clippy::result_large_err)] // figment's error type, in figment's API
fn from_environment_variables() {
    use figment::Figment;
    use figment::providers::{Env, Format, Toml};

    // figment's Jail sets the variables for this closure only (no `set_var`).
    figment::Jail::expect_with(|jail| {
        jail.set_env("BBHTTP_NAME", "orders");
        jail.set_env("BBHTTP_CONSECUTIVE_FAILURES", "7");
        jail.set_env("BBHTTP_OPEN_WAIT", "90s");
        jail.set_env("BBHTTP_CLASSIFIER", "only_200");
        jail.set_env("BBHTTP_PER_HOST", "true");
        jail.set_env("BBHTTP_HOST_IDLE_TIMEOUT", "5m");
        jail.set_env("BBHTTP_RETRY__ATTEMPTS", "4");
        jail.set_env("BBHTTP_RETRY__BASE", "100ms");
        jail.set_env("BBHTTP_RETRY__BUDGET", "0.25");
        jail.set_env("BBHTTP_RETRY__ALL_METHODS", "true");
        let config: HttpConfig = Figment::new()
            .merge(Toml::string("max_hosts = 50\nretry = { attempts = 2, jitter = 0.1 }"))
            .merge(Env::prefixed("BBHTTP_").split("__"))
            .extract()?;
        assert_eq!(config.breaker.name.as_deref(), Some("orders"));
        assert_eq!(config.breaker.consecutive_failures, Some(7));
        assert_eq!(
            config.breaker.open_wait,
            Some(OpenWaitConfig::Fixed { wait: Duration::from_secs(90), jitter: 0.0 })
        );
        assert_eq!(config.classifier, Some(ClassifierConfig::Only200));
        assert_eq!((config.per_host, config.max_hosts), (Some(true), Some(50)));
        assert_eq!(config.host_idle_timeout, Some(Duration::from_secs(300)));
        let retry = config.retry.clone().unwrap();
        assert_eq!(retry.attempts, 4);
        assert_eq!(retry.base, Some(Duration::from_millis(100)));
        assert_eq!(retry.jitter, Some(0.1), "kept from the TOML");
        assert_eq!(retry.budget, Some(BudgetConfig::Ratio { ratio: 0.25, min_retries: None, window: None }));
        assert_eq!(retry.all_methods, Some(true));
        assert_eq!(config.build(Canned::default()).unwrap().name(), "orders");

        // A bad variable is named by its key.
        jail.set_env("BBHTTP_RETRY__ATTEMPTS", "many");
        let err = Figment::new().merge(Env::prefixed("BBHTTP_").split("__")).extract::<HttpConfig>().unwrap_err();
        assert!(err.to_string().to_lowercase().contains("retry.attempts"), "{err}");
        Ok(())
    });
}

#[test]
fn the_family_and_classifier_serve_the_adapters() {
    let config: HttpConfig = toml::from_str("name = \"api\"\nconsecutive_failures = 1\nmax_hosts = 2").unwrap();
    let hosts = config.hosts().unwrap();
    hosts.get("http://a.test:80").try_acquire().unwrap().failure();
    assert_eq!(hosts.open_keys(), vec!["http://a.test:80".to_owned()]);
    assert_eq!(hosts.get("http://a.test:80").name(), "api/http://a.test:80");
    assert_eq!(format!("{:?}", config.classifier()), "Classifier::standard");
    let unnamed: HttpConfig = toml::from_str("").unwrap();
    assert_eq!(unnamed.hosts().unwrap().get("k").name(), "http/k");
    let bad: HttpConfig = toml::from_str("max_hosts = 0").unwrap();
    assert_eq!(bad.hosts().unwrap_err().field(), "max_hosts");
}

/// Bad input: a parse error that names the key, or a build error that names the key.
#[test]
fn every_invalid_key_gives_a_named_error() {
    let parse_errors = [
        // Unknown keys, at the top and in a table.
        ("per_hosts = true", "per_hosts"),
        ("consecutive_failure = 3", "consecutive_failure"),
        ("retry = { attempts = 2, atempts = 3 }", "atempts"),
        ("retry = { attempts = 2, budget = { ratio = 0.1, windw = \"1s\" } }", "windw"),
        // Wrong values.
        ("classifier = \"all_2xx\"", "all_2xx"),
        ("classifier = \"all_2xx\"", "success_2xx"),
        ("per_host = \"yes\"", "per_host"),
        ("max_hosts = -1", "max_hosts"),
        ("host_idle_timeout = \"soon\"", "invalid duration \"soon\""),
        ("host_idle_timeout = 30", "host_idle_timeout"),
        ("retry = { base = \"1s\" }", "attempts"),
        ("retry = { attempts = \"three\" }", "attempts"),
        ("retry = { attempts = 2, base = 5 }", "base"),
        ("retry = { attempts = 2, max = \"later\" }", "invalid duration \"later\""),
        ("retry = { attempts = 2, jitter = \"some\" }", "jitter"),
        ("retry = { attempts = 2, budget = \"lots\" }", "lots"),
        ("retry = { attempts = 2, budget = true }", "budget = true"),
        ("retry = { attempts = 2, budget = { min_retries = 1 } }", "ratio"),
        ("retry = { attempts = 2, all_methods = 1 }", "all_methods"),
        // The core's keys, through the flattened breaker settings.
        ("open_wait = \"soon\"", "invalid duration \"soon\""),
        ("half_open_probes = \"two\"", "half_open_probes"),
    ];
    for (input, needle) in parse_errors {
        let err = toml::from_str::<HttpConfig>(input).unwrap_err().to_string();
        assert!(err.contains(needle), "{input:?}: {err:?} does not mention {needle:?}");
    }
    let build_errors = [
        ("max_hosts = 0", "max_hosts"),
        ("host_idle_timeout = \"0s\"", "host_idle_timeout"),
        ("per_host = false\nmax_hosts = 10", "max_hosts"),
        ("per_host = false\nhost_idle_timeout = \"1m\"", "host_idle_timeout"),
        ("retry = { attempts = 0 }", "retry.attempts"),
        ("retry = { attempts = 2, base = \"3s\" }", "retry.max"),
        ("retry = { attempts = 2, base = \"1s\", max = \"10ms\" }", "retry.max"),
        ("retry = { attempts = 2, jitter = 1.5 }", "retry.jitter"),
        ("retry = { attempts = 2, budget = -0.5 }", "retry.budget.ratio"),
        ("retry = { attempts = 2, budget = { ratio = 0.1, window = \"0s\" } }", "retry.budget.window"),
        ("consecutive_failures = 0", "policy.consecutive_failures"),
        ("failure_rate = { threshold = 1.5 }", "policy.failure_rate.threshold"),
        ("open_wait = \"0s\"", "open_wait"),
        ("half_open_probes = 0", "half_open_probes"),
    ];
    for (input, field) in build_errors {
        let config: HttpConfig = toml::from_str(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        let err = config.build(Canned::default()).unwrap_err();
        assert_eq!(err.field(), field, "{input}: {err}");
        assert!(err.to_string().contains(field), "{err}");
        assert!(!err.value().contains("Some"), "{err}");
    }
    // JSON names the key as well.
    let err = serde_json::from_str::<HttpConfig>(r#"{ "retry": { "attempts": 2, "jiter": 0.1 } }"#).unwrap_err();
    assert!(err.to_string().contains("jiter"), "{err}");
}
