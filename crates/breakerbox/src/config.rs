//! Settings from files and the environment (feature `serde`).
//!
//! [`BreakerConfig`] deserializes from any serde format (TOML, YAML, JSON, environment
//! variables through figment or config) and turns into a [`BreakerBuilder`]; listeners
//! and clocks, which are code, are added to the builder afterwards. Durations are
//! written as `"30s"`, `"250ms"` or `"1m 30s"`. Unknown keys are errors, so a typo never
//! silently leaves a default in place, and every value is checked by `build()`, whose
//! [`ConfigError`] names the key (for example `policy.failure_rate.threshold`).
//!
//! ```toml
//! name = "payments"
//! consecutive_failures = 5
//! failure_rate = { threshold = 0.5, window = 100, min_calls = 20 }    # window: calls...
//! slow_calls = { slower_than = "2s", threshold = 0.8, window = "60s" } # ...or time
//! open_wait = { base = "1s", max = "60s", jitter = 0.2 }              # or open_wait = "30s"
//! half_open_probes = 2
//! probe_lease = "30s"                 # default: the first open wait
//! cancel_counts_after = "1s"          # or "never"
//! retry_after_limit = "5m"
//! throttle = { k = 2.0, window = "30s", max_reject = 0.9 } # adaptive throttling; {} for defaults
//! recovery_ramp = { duration = "30s", min_fraction = 0.1 }  # a ramp after half-open; {} for defaults
//! shadow = true                       # admit every call, count what would be rejected
//! hung_after = "2s"                   # a call in flight this long fails now
//! ```
//!
//! # Examples
//!
//! ```
//! use breakerbox::config::BreakerConfig;
//!
//! let config: BreakerConfig = serde_json::from_str(
//!     r#"{ "name": "search", "consecutive_failures": 3, "open_wait": "10s" }"#,
//! )?;
//! let breaker = config.builder().build()?;
//! assert_eq!(breaker.name(), "search");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::{
    Breaker, BreakerBox, BreakerBoxBuilder, BreakerBuilder, ConfigError, OpenWait, Policy, Ramp, RatePolicy, Throttle,
};

/// A breaker's settings. Every key is optional; a missing key keeps the default
/// (see [`Breaker`]'s table). With neither `consecutive_failures`, `failure_rate` nor
/// `slow_calls`, the policy is the default (5 consecutive failures); with several, the
/// breaker trips when any of them trips.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// The breaker's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Trip on this many consecutive failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// Trip on a failure rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<RateConfig>,
    /// Trip on a slow-call rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_calls: Option<SlowCallsConfig>,
    /// How long to stay open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_wait: Option<OpenWaitConfig>,
    /// Concurrent half-open probes, and successes needed to close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub half_open_probes: Option<u32>,
    /// How long a half-open probe may stay silent.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub probe_lease: Option<Duration>,
    /// The cancellation rule: `"1s"`, or `"never"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_counts_after: Option<CancelConfig>,
    /// The longest open wait a retry-after hint may ask for.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub retry_after_limit: Option<Duration>,
    /// Adaptive throttling while closed (`{}` for every default); absent: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleConfig>,
    /// A recovery ramp after half-open (`{}` for every default); absent: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_ramp: Option<RampConfig>,
    /// Shadow mode: every call admitted, the would-be rejections counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<bool>,
    /// A closed call in flight this long counts as a failure, while it runs.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub hung_after: Option<Duration>,
}

/// The [recovery ramp](crate::ramp): every key optional, as in [`Ramp`]'s table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RampConfig {
    /// How long the fraction takes to rise to 1 (`"30s"`).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub duration: Option<Duration>,
    /// The fraction admitted from the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_fraction: Option<f64>,
    /// The exponent's inverse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
    /// How many of the ramp's latest outcomes its abort rule looks at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    /// The fewest outcomes before the failure rate can abort the ramp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
    /// Consecutive failures that abort the ramp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_after: Option<u32>,
    /// The failure rate that aborts the ramp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_failure_rate: Option<f64>,
}

impl RampConfig {
    /// The ramp these settings describe.
    pub fn ramp(&self) -> Ramp {
        let mut r = Ramp::new();
        if let Some(d) = self.duration {
            r = r.duration(d);
        }
        if let Some(f) = self.min_fraction {
            r = r.min_fraction(f);
        }
        if let Some(a) = self.aggression {
            r = r.aggression(a);
        }
        if let Some(n) = self.window {
            r = r.window(n);
        }
        if let Some(n) = self.min_calls {
            r = r.min_calls(n);
        }
        if let Some(n) = self.abort_after {
            r = r.abort_after(n);
        }
        if let Some(rate) = self.abort_failure_rate {
            r = r.abort_failure_rate(rate);
        }
        r
    }
}

/// [Adaptive throttling](crate::throttle): every key optional, as in [`Throttle`]'s table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// The history summed, as a duration (`"30s"`).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub window: Option<Duration>,
    /// Buckets of the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u32>,
    /// Requests per accept the backend may see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<f64>,
    /// Added to the requests in the denominator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub padding: Option<f64>,
    /// Below this many requests in the window, nothing is throttled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u32>,
    /// The exponent's inverse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
    /// The highest reject probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_reject: Option<f64>,
    /// Whether the throttle's own rejections count as requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_local_rejections: Option<bool>,
}

impl ThrottleConfig {
    /// The throttle these settings describe.
    pub fn throttle(&self) -> Throttle {
        let mut t = Throttle::new();
        if let Some(d) = self.window {
            t = t.window(d);
        }
        if let Some(n) = self.buckets {
            t = t.buckets(n);
        }
        if let Some(k) = self.k {
            t = t.k(k);
        }
        if let Some(p) = self.padding {
            t = t.padding(p);
        }
        if let Some(n) = self.min_requests {
            t = t.min_requests(n);
        }
        if let Some(a) = self.aggression {
            t = t.aggression(a);
        }
        if let Some(p) = self.max_reject {
            t = t.max_reject(p);
        }
        if let Some(on) = self.count_local_rejections {
            t = t.count_local_rejections(on);
        }
        t
    }
}

/// A failure-rate rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateConfig {
    /// The rate that trips, 0.0 to 1.0.
    pub threshold: f64,
    /// The window: a number of calls (`100`) or a duration (`"60s"`). Default: 100 calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowConfig>,
    /// Buckets of a time window. Default: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u32>,
    /// The fewest calls before the rate can trip (for a count window, at most its size).
    /// Default: 20, or the size of a count window smaller than that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
}

/// A slow-call rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SlowCallsConfig {
    /// A call this slow or slower is slow.
    #[serde(with = "duration")]
    pub slower_than: Duration,
    /// The rate of slow calls that trips, 0.0 to 1.0.
    pub threshold: f64,
    /// As in [`RateConfig::window`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowConfig>,
    /// As in [`RateConfig::buckets`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u32>,
    /// As in [`RateConfig::min_calls`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
}

/// When a permit dropped without a report counts as a failure
/// ([`BreakerBuilder::cancel_counts_after`]): after a duration (`"1s"`), or `"never"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelConfig {
    /// After it has been in flight this long.
    After(Duration),
    /// Never: a dropped permit counts nothing.
    Never,
}

impl Serialize for CancelConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::After(d) => duration::serialize(d, s),
            Self::Never => s.serialize_str("never"),
        }
    }
}

impl<'de> Deserialize<'de> for CancelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CancelConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"1s\", or \"never\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CancelConfig, E> {
                if s == "never" {
                    return Ok(CancelConfig::Never);
                }
                humantime::parse_duration(s).map(CancelConfig::After).map_err(|e| {
                    E::custom(format_args!(
                        "invalid {s:?}: {e} (write a duration like \"1s\" or \"250ms\", or \"never\")"
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A rate window: the last N calls, or the last span of time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowConfig {
    /// The last N calls (written as a number).
    Calls(u32),
    /// The last span of time (written as a duration string).
    Time(Duration),
}

/// An open wait: `"30s"` (fixed), or a table with `fixed` or `base` and `max`, and an
/// optional `jitter`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum OpenWaitConfig {
    /// A fixed wait.
    Fixed {
        /// The wait.
        wait: Duration,
        /// The jitter fraction, 0.0 to 1.0.
        jitter: f64,
    },
    /// An exponential wait.
    Exponential {
        /// The first wait.
        base: Duration,
        /// The longest wait.
        max: Duration,
        /// The jitter fraction, 0.0 to 1.0.
        jitter: f64,
    },
}

/// A family's settings: the template breaker's keys, plus `max_breakers` and
/// `idle_timeout`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerBoxConfig {
    /// The template every breaker of the family is built from.
    #[serde(flatten)]
    pub template: BreakerConfig,
    /// The most breakers kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_breakers: Option<usize>,
    /// Evict closed breakers idle this long.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub idle_timeout: Option<Duration>,
    /// The panic valve: the most of the family's breakers that trips may open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_open_fraction: Option<f64>,
}

// ===== impl BreakerConfig =====

impl BreakerConfig {
    /// The builder these settings describe. Add a clock or listeners, then `build()`.
    pub fn builder(&self) -> BreakerBuilder {
        let mut b = Breaker::builder();
        if let Some(name) = &self.name {
            b = b.name(name.clone());
        }
        if let Some(policy) = self.policy() {
            b = b.policy(policy);
        }
        if let Some(wait) = self.open_wait {
            b = b.open_wait(wait.into());
        }
        if let Some(n) = self.half_open_probes {
            b = b.half_open_probes(n);
        }
        if let Some(d) = self.probe_lease {
            b = b.probe_lease(d);
        }
        if let Some(c) = self.cancel_counts_after {
            b = b.cancel_counts_after(match c {
                CancelConfig::After(d) => Some(d),
                CancelConfig::Never => None,
            });
        }
        if let Some(d) = self.retry_after_limit {
            b = b.retry_after_limit(d);
        }
        if let Some(t) = &self.throttle {
            b = b.throttle(t.throttle());
        }
        if let Some(r) = &self.recovery_ramp {
            b = b.recovery_ramp(r.ramp());
        }
        if let Some(on) = self.shadow {
            b = b.shadow(on);
        }
        if let Some(d) = self.hung_after {
            b = b.hung_after(d);
        }
        b
    }

    /// Builds the breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that cannot work.
    pub fn build(&self) -> Result<Breaker, ConfigError> {
        self.builder().build()
    }

    fn policy(&self) -> Option<Policy> {
        let mut rules: Vec<Policy> = Vec::new();
        if let Some(n) = self.consecutive_failures {
            rules.push(Policy::consecutive_failures(n));
        }
        if let Some(r) = &self.failure_rate {
            rules.push(window(Policy::failure_rate(r.threshold), r.window, r.buckets, r.min_calls).into());
        }
        if let Some(s) = &self.slow_calls {
            rules.push(window(Policy::slow_calls(s.slower_than, s.threshold), s.window, s.buckets, s.min_calls).into());
        }
        (!rules.is_empty()).then(|| Policy::any(rules))
    }
}

fn window(mut p: RatePolicy, w: Option<WindowConfig>, buckets: Option<u32>, min_calls: Option<u32>) -> RatePolicy {
    match w {
        Some(WindowConfig::Calls(n)) => p = p.over_calls(n),
        Some(WindowConfig::Time(d)) => p = p.over_time(d),
        None => {}
    }
    if let Some(n) = buckets {
        p = p.buckets(n);
    }
    if let Some(n) = min_calls {
        p = p.min_calls(n);
    }
    p
}

impl BreakerBoxConfig {
    /// The family builder these settings describe.
    pub fn builder<K>(&self) -> BreakerBoxBuilder<K> {
        let mut b = BreakerBox::builder(self.template.builder());
        if let Some(n) = self.max_breakers {
            b = b.max_breakers(n);
        }
        if let Some(d) = self.idle_timeout {
            b = b.idle_timeout(d);
        }
        if let Some(f) = self.max_open_fraction {
            b = b.max_open_fraction(f);
        }
        b
    }

    /// Builds the family.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that cannot work.
    pub fn build<K>(&self) -> Result<BreakerBox<K>, ConfigError> {
        self.builder().build()
    }
}

impl From<OpenWaitConfig> for OpenWait {
    fn from(c: OpenWaitConfig) -> Self {
        match c {
            OpenWaitConfig::Fixed { wait, jitter } => OpenWait::fixed(wait).with_jitter(jitter),
            OpenWaitConfig::Exponential { base, max, jitter } => OpenWait::exponential(base, max).with_jitter(jitter),
        }
    }
}

// ===== serde by hand: windows and open waits take two shapes =====

fn parse_duration<E: de::Error>(s: &str) -> Result<Duration, E> {
    humantime::parse_duration(s).map_err(|e| {
        E::custom(format_args!("invalid duration {s:?}: {e} (write it like \"30s\", \"250ms\" or \"1m 30s\")"))
    })
}

fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde for a [`Duration`] written as `"30s"`, `"250ms"` or `"1m 30s"`, for
/// `#[serde(with = "breakerbox::config::duration")]` in settings that sit beside a
/// breaker's (every crate of this workspace uses it, so durations read alike everywhere).
///
/// ```
/// use std::time::Duration;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     #[serde(with = "breakerbox::config::duration")]
///     timeout: Duration,
/// }
///
/// let s: Settings = serde_json::from_str(r#"{ "timeout": "1m 30s" }"#)?;
/// assert_eq!(s.timeout, Duration::from_secs(90));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod duration {
    use super::*;

    /// Writes `d` as a duration string.
    ///
    /// # Errors
    ///
    /// As the serializer's `serialize_str`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Reads a duration string; the error says how to write one.
    ///
    /// # Errors
    ///
    /// A value that is not a string, or a string that is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\" or \"250ms\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                parse_duration(s)
            }
        }
        d.deserialize_str(V)
    }
}

/// [`duration`] for an `Option<Duration>` (pair it with `default` and
/// `skip_serializing_if = "Option::is_none"`).
pub mod opt_duration {
    use super::*;

    /// Writes `Some(d)` as a duration string, `None` as none.
    ///
    /// # Errors
    ///
    /// As the serializer's.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads a duration string as `Some`.
    ///
    /// # Errors
    ///
    /// As [`duration::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

impl Serialize for WindowConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Calls(n) => s.serialize_u32(*n),
            Self::Time(d) => s.serialize_str(&format_duration(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for WindowConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WindowConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of calls (100) or a duration (\"60s\")")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<WindowConfig, E> {
                u32::try_from(n)
                    .map(WindowConfig::Calls)
                    .map_err(|_| E::custom(format_args!("window of {n} calls is too large")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<WindowConfig, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format_args!("window of {n} calls is negative")))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WindowConfig, E> {
                // Environment variables arrive as strings: "100" is a count.
                match s.trim().parse::<u32>() {
                    Ok(n) => Ok(WindowConfig::Calls(n)),
                    Err(_) => parse_duration(s).map(WindowConfig::Time),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for OpenWaitConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Fixed { wait, jitter: 0.0 } => s.serialize_str(&format_duration(wait)),
            Self::Fixed { wait, jitter } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("fixed", &format_duration(wait))?;
                m.serialize_entry("jitter", &jitter)?;
                m.end()
            }
            Self::Exponential { base, max, jitter } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("base", &format_duration(base))?;
                m.serialize_entry("max", &format_duration(max))?;
                m.serialize_entry("jitter", &jitter)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OpenWaitConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OpenWaitConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration (\"30s\") or a table with `fixed`, or `base` and `max`, and optionally `jitter`",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OpenWaitConfig, E> {
                parse_duration(s).map(|wait| OpenWaitConfig::Fixed { wait, jitter: 0.0 })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OpenWaitConfig, A::Error> {
                let (mut fixed, mut base, mut max, mut jitter) = (None, None, None, 0.0);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "fixed" => fixed = Some(parse_duration(&map.next_value::<String>()?)?),
                        "base" => base = Some(parse_duration(&map.next_value::<String>()?)?),
                        "max" => max = Some(parse_duration(&map.next_value::<String>()?)?),
                        "jitter" => jitter = map.next_value::<Jitter>()?.0,
                        other => return Err(de::Error::unknown_field(other, &["fixed", "base", "max", "jitter"])),
                    }
                }
                match (fixed, base, max) {
                    (Some(wait), None, None) => Ok(OpenWaitConfig::Fixed { wait, jitter }),
                    (None, Some(base), Some(max)) => Ok(OpenWaitConfig::Exponential { base, max, jitter }),
                    (None, Some(_), None) => Err(de::Error::missing_field("max")),
                    (None, None, Some(_)) => Err(de::Error::missing_field("base")),
                    _ => Err(de::Error::custom("open_wait takes either `fixed`, or `base` and `max`, not both")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A jitter fraction, from a number or (environment variables) a string.
struct Jitter(f64);

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Jitter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a fraction from 0.0 to 1.0")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Jitter, E> {
                Ok(Jitter(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Jitter, E> {
                Ok(Jitter(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Jitter, E> {
                Ok(Jitter(v as f64))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Jitter, E> {
                s.trim()
                    .parse()
                    .map(Jitter)
                    .map_err(|_| E::custom(format_args!("invalid jitter {s:?}: expected a fraction")))
            }
        }
        d.deserialize_any(V)
    }
}
