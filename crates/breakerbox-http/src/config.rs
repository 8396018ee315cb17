//! Settings from files and the environment (feature `serde`).
//!
//! [`HttpConfig`] holds an [`HttpBreaker`]'s settings: the core breaker's keys
//! ([`BreakerConfig`], flattened: `consecutive_failures`, `failure_rate`, `open_wait`...),
//! plus the classifier, one breaker per host and its bounds, and retries. It
//! deserializes from any serde format (TOML, YAML, JSON, environment variables through
//! figment or config) and turns into a builder; clocks, listeners, a fallback and a
//! status extractor, which are code, are added to the builder afterwards. Durations are
//! written as `"30s"`, `"250ms"` or `"1m 30s"`. Unknown keys are errors, so a typo never
//! silently leaves a default in place, and `build()` checks every value, with a
//! [`ConfigError`] that names the key (for example `retry.jitter` or `max_hosts`).
//!
//! ```toml
//! name = "inventory"
//! consecutive_failures = 5                         # any key of breakerbox::config::BreakerConfig
//! open_wait = { base = "1s", max = "60s", jitter = 0.2 }
//! classifier = "standard"                          # or "success_2xx", "only_200"
//! per_host = true                                  # one breaker per scheme + host + port
//! max_hosts = 1000
//! host_idle_timeout = "10m"
//! retry = { attempts = 3, base = "50ms", max = "2s", jitter = 0.5, budget = 0.2, all_methods = false }
//! timeout = "5s"                                   # each attempt; counted as a failure
//! cancel_counts_after = "1s"                       # (a core key) a request dropped after this long counts; or "never"
//! buffer_body = false                              # record at the response head
//! ```
//!
//! In the environment, with figment: `Env::prefixed("HTTP_").split("__")` reads
//! `HTTP_CONSECUTIVE_FAILURES=5`, `HTTP_PER_HOST=true`, `HTTP_RETRY__ATTEMPTS=3`,
//! `HTTP_RETRY__BASE=100ms`. Leave values unquoted: figment 0.10 unescapes a quoted
//! value by character position as if it were a byte position, so a quoted value with a
//! non-ASCII character before a backslash (`"ü\n"`) panics inside figment (found by
//! this repository's `config` fuzz target, which skips such values).
//!
//! The same settings serve the adapters: [`HttpConfig::hosts`] builds the per-host family
//! for [`PerHostLayer`](crate::tower::PerHostLayer) or
//! [`BreakerMiddleware`](crate::BreakerMiddleware::per_host), and
//! [`HttpConfig::classifier`] their classifier (their retries are reqwest-retry's or
//! tower's own, so `retry` does not apply to them).
//!
//! # Examples
//!
//! ```
//! use breakerbox_http::config::HttpConfig;
//!
//! let config: HttpConfig = serde_json::from_str(
//!     r#"{ "name": "search", "consecutive_failures": 3, "open_wait": "10s",
//!          "classifier": "success_2xx", "per_host": true, "retry": { "attempts": 2 } }"#,
//! )?;
//! let breaker = config.build(reqwest::Client::new())?;
//! assert_eq!(breaker.name(), "search");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use breakerbox::config::{BreakerConfig, opt_duration};
use breakerbox::{BreakerBox, BreakerBuilder};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::retry::{DEFAULT_BASE, DEFAULT_MAX};
use crate::{
    BlockingHttpClient, Classifier, ConfigError, HttpBreaker, HttpBreakerBuilder, HttpClient, Retry, RetryBudget,
};

/// An [`HttpBreaker`]'s settings. Every key is optional; a missing key keeps the
/// builder's production default (see [`HttpBreakerBuilder`]): per host, the standard
/// classifier, a 30 s timeout. `per_host = false` for one breaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The core breaker's settings (the template of every host's breaker), at the top
    /// level: `name`, `consecutive_failures`, `failure_rate`, `slow_calls`, `open_wait`,
    /// `half_open_probes`, `probe_lease`, `cancel_counts_after`, `retry_after_limit`. The
    /// name defaults to
    /// `"http"`.
    #[serde(flatten)]
    pub breaker: BreakerConfig,
    /// Which responses and errors are failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierConfig>,
    /// One breaker per scheme, host and port (implied by `max_hosts` and
    /// `host_idle_timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_host: Option<bool>,
    /// The most hosts' breakers kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_hosts: Option<usize>,
    /// Drop the closed breakers of hosts not requested this long.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub host_idle_timeout: Option<Duration>,
    /// Retries through the breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// The timeout of each attempt (default 30 s).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Record each outcome once the body has been read (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_body: Option<bool>,
}

/// A [`Classifier`] preset, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClassifierConfig {
    /// `"standard"`: [`Classifier::standard`].
    #[serde(rename = "standard")]
    Standard,
    /// `"success_2xx"`: [`Classifier::success_2xx`].
    #[serde(rename = "success_2xx")]
    Success2xx,
    /// `"only_200"`: [`Classifier::only_200`].
    #[serde(rename = "only_200")]
    Only200,
}

/// Retries (see [`Retry`]): `attempts` is required, every other key optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// The most attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff. Default: 50 ms.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub base: Option<Duration>,
    /// The longest backoff. Default: 2 s.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub max: Option<Duration>,
    /// The jitter fraction, 0.0 to 1.0. Default: 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// The retry budget. Default: 0.2 (20 % of recent requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
    /// Retry `POST` and `PATCH` too. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_methods: Option<bool>,
}

/// A retry budget: a ratio (`0.2`), a table `{ ratio, min_retries, window }`, or
/// `false` for none (retry every failure up to the attempts).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum BudgetConfig {
    /// No budget.
    Off,
    /// A budget (see [`RetryBudget`]).
    Ratio {
        /// Retries as a fraction of recent requests.
        ratio: f64,
        /// Retries allowed per window on top of the ratio. Default: 10.
        min_retries: Option<u32>,
        /// The window. Default: 10 s.
        window: Option<Duration>,
    },
}

// ===== impl HttpConfig =====

impl HttpConfig {
    /// The builder these settings describe, over `client`. Add a clock, listeners, a
    /// fallback or a status extractor, then `build()`.
    pub fn builder<C: HttpClient>(&self, client: C) -> HttpBreakerBuilder<C> {
        HttpBreaker::builder(client).configured(self)
    }

    /// Builds the breaker over `client`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that cannot work.
    pub fn build<C: HttpClient>(&self, client: C) -> Result<HttpBreaker<C>, ConfigError> {
        self.builder(client).build()
    }

    /// The builder of a [`blocking::HttpBreaker`](crate::blocking::HttpBreaker) these
    /// settings describe, over `client`.
    pub fn blocking_builder<C: BlockingHttpClient>(
        &self,
        client: C,
    ) -> HttpBreakerBuilder<crate::blocking::Blocking<C>, crate::blocking::HttpBreaker<C>> {
        crate::blocking::HttpBreaker::builder(client).configured(self)
    }

    /// The classifier (default [`Classifier::standard`]).
    pub fn classifier(&self) -> Classifier {
        match self.classifier.unwrap_or(ClassifierConfig::Standard) {
            ClassifierConfig::Standard => Classifier::standard(),
            ClassifierConfig::Success2xx => Classifier::success_2xx(),
            ClassifierConfig::Only200 => Classifier::only_200(),
        }
    }

    /// The template of the breakers: the core settings, named `"http"` unless they say.
    pub fn template(&self) -> BreakerBuilder {
        let template = self.breaker.builder();
        if self.breaker.name.is_none() { template.name("http") } else { template }
    }

    /// The per-host family these settings describe (the template, `max_hosts`,
    /// `host_idle_timeout`), for the tower and reqwest-middleware adapters, whatever
    /// `per_host` says.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that cannot work.
    pub fn hosts(&self) -> Result<BreakerBox<String>, ConfigError> {
        let mut family = BreakerBox::builder(self.template());
        if let Some(n) = self.max_hosts {
            family = family.max_breakers(n);
        }
        if let Some(d) = self.host_idle_timeout {
            family = family.idle_timeout(d);
        }
        crate::breakers::family(family)
    }
}

impl RetryConfig {
    /// The retry policy these settings describe (checked by the breaker's `build()`).
    pub fn to_retry(&self) -> Retry {
        let mut retry = Retry::attempts(self.attempts);
        if self.base.is_some() || self.max.is_some() {
            retry = retry.with_backoff(self.base.unwrap_or(DEFAULT_BASE), self.max.unwrap_or(DEFAULT_MAX));
        }
        if let Some(j) = self.jitter {
            retry = retry.with_jitter(j);
        }
        match self.budget {
            Some(BudgetConfig::Off) => retry = retry.without_budget(),
            Some(BudgetConfig::Ratio { ratio, min_retries, window }) => {
                let mut budget = RetryBudget::new(ratio);
                if let Some(n) = min_retries {
                    budget = budget.with_min_retries(n);
                }
                if let Some(w) = window {
                    budget = budget.with_window(w);
                }
                retry = retry.with_budget(budget);
            }
            None => {}
        }
        if self.all_methods == Some(true) {
            retry = retry.with_all_methods();
        }
        retry
    }
}

// ===== serde by hand: budgets of three shapes =====

/// A duration in a budget's table, written and read by the core's
/// [`duration`](breakerbox::config::duration) helper, as every duration of the settings.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct BudgetWindow(#[serde(with = "breakerbox::config::duration")] Duration);

impl Serialize for BudgetConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Off => s.serialize_bool(false),
            Self::Ratio { ratio, min_retries: None, window: None } => s.serialize_f64(ratio),
            Self::Ratio { ratio, min_retries, window } => {
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("ratio", &ratio)?;
                if let Some(n) = min_retries {
                    m.serialize_entry("min_retries", &n)?;
                }
                if let Some(w) = window {
                    m.serialize_entry("window", &BudgetWindow(w))?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BudgetConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BudgetConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ratio (0.2), a table with `ratio` and optionally `min_retries` and `window`, or false")
            }
            fn visit_bool<E: de::Error>(self, on: bool) -> Result<BudgetConfig, E> {
                if on {
                    Err(E::custom("budget = true: write a ratio (0.2) for a budget, or false for none"))
                } else {
                    Ok(BudgetConfig::Off)
                }
            }
            fn visit_f64<E: de::Error>(self, ratio: f64) -> Result<BudgetConfig, E> {
                Ok(BudgetConfig::Ratio { ratio, min_retries: None, window: None })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BudgetConfig, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BudgetConfig, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BudgetConfig, E> {
                // Environment variables may arrive as strings.
                match s.trim() {
                    "false" => Ok(BudgetConfig::Off),
                    t => match t.parse::<f64>() {
                        Ok(ratio) => self.visit_f64(ratio),
                        Err(_) => Err(E::invalid_value(de::Unexpected::Str(s), &"a ratio (0.2), a table, or false")),
                    },
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BudgetConfig, A::Error> {
                let (mut ratio, mut min_retries, mut window) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "ratio" => ratio = Some(map.next_value::<f64>()?),
                        "min_retries" => min_retries = Some(map.next_value::<u32>()?),
                        "window" => window = Some(map.next_value::<BudgetWindow>()?.0),
                        other => return Err(de::Error::unknown_field(other, &["ratio", "min_retries", "window"])),
                    }
                }
                let ratio = ratio.ok_or_else(|| de::Error::missing_field("ratio"))?;
                Ok(BudgetConfig::Ratio { ratio, min_retries, window })
            }
        }
        d.deserialize_any(V)
    }
}
