//! The fleet's settings, from code or (feature `serde`) from any serde format.
//!
//! ```toml
//! service = "checkout"          # required: namespaces the keys
//! replica_id = "checkout-7f9c"  # default: <hostname>-<pid>-<random>
//! key_prefix = "breakerbox"
//! sync_interval = "100ms"       # counts and votes pushed
//! refresh_interval = "1s"       # every breaker read again (pub/sub normally arrives first)
//! window = "10s"                # votes and call counts count this long
//! min_replicas = 2              # replicas whose own breaker opened, before a fleet-wide trip
//! min_calls = 10                # calls seen by the fleet in the window, before a fleet-wide trip
//! probe_lease = "10s"           # how long the replica holding the probe lease may take
//! key_ttl = "24h"               # abandoned keys disappear after this
//! operation_timeout = "100ms"   # every Redis operation
//! when_unreachable = "local"    # or "open"
//!
//! # Where Redis is, for `FleetBuilder::connect` (default: none, pass a client to `start`):
//! redis = { url = "redis://127.0.0.1:6379" }
//! # redis = { sentinel = { master = "mymaster", nodes = ["redis://127.0.0.1:26379"] } }  # feature `sentinel`
//! # redis = { cluster = { nodes = ["redis://127.0.0.1:7000"] } }                         # feature `cluster`
//! ```

use std::fmt;
use std::time::Duration;

use breakerbox::ConfigError;

use crate::Connect;

/// What a replica does while it cannot reach the fleet (Redis down, slow, or partitioned
/// away).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum WhenUnreachable {
    /// Keep deciding locally: each breaker runs on its own policy, as it would without a
    /// fleet (a breaker the fleet held open waits out the fleet's remaining time, then
    /// probes on its own). The default.
    #[default]
    Local,
    /// Fail closed: hold every breaker open while the fleet cannot be reached, and adopt
    /// the fleet's state again when it can.
    Open,
}

impl WhenUnreachable {
    /// The name in `snake_case`, as in the configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Open => "open",
        }
    }
}

impl fmt::Display for WhenUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fleet's settings. Build with [`FleetConfig::new`] and the chained setters, or
/// deserialize (feature `serde`; unknown keys are errors, durations are written as
/// `"250ms"` or `"10s"`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox_redis::{FleetConfig, WhenUnreachable};
///
/// let config = FleetConfig::new("checkout")
///     .min_replicas(3)
///     .sync_interval(Duration::from_millis(50))
///     .when_unreachable(WhenUnreachable::Open);
/// assert_eq!(config.min_replicas, 3);
/// config.validate()?;
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | `service` | none: required |
/// | `replica_id` | `<hostname>-<pid>-<random>` |
/// | `key_prefix` | `"breakerbox"` |
/// | `sync_interval` | 100 ms |
/// | `refresh_interval` | 1 s |
/// | `window` | 10 s |
/// | `min_replicas` | 2 |
/// | `min_calls` | 10 |
/// | `probe_lease` | 10 s |
/// | `key_ttl` | 24 h |
/// | `operation_timeout` | 100 ms |
/// | `when_unreachable` | [`WhenUnreachable::Local`] |
/// | `redis` | none: [`FleetBuilder::start`](crate::FleetBuilder::start) takes a client |
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct FleetConfig {
    /// The service these breakers belong to; namespaces every key, so two services never
    /// share a breaker by accident. Required; no `:`, `{` or `}`.
    pub service: String,
    /// This replica's id in votes and probe leases. Unique per process.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub replica_id: Option<String>,
    /// The first part of every key and of the channel.
    pub key_prefix: String,
    /// How often outcome counts and votes are pushed (each push brings the breaker's
    /// fleet state back), and how often the fleet looks for new family members.
    #[cfg_attr(feature = "serde", serde(with = "breakerbox::config::duration"))]
    pub sync_interval: Duration,
    /// How often every breaker's fleet state is read again, in case a push was lost.
    #[cfg_attr(feature = "serde", serde(with = "breakerbox::config::duration"))]
    pub refresh_interval: Duration,
    /// How long a replica's vote to open, and the fleet's call counts, stay valid.
    #[cfg_attr(feature = "serde", serde(with = "breakerbox::config::duration"))]
    pub window: Duration,
    /// How many replicas' own breakers must have opened within the window before the
    /// fleet opens: one bad replica alone cannot trip the fleet unless this is 1.
    pub min_replicas: u32,
    /// How many calls (successes and failures) the fleet must have reported within the
    /// window before it opens.
    pub min_calls: u64,
    /// How long the replica holding the fleet's probe lease may take to report its
    /// half-open verdict before another replica may probe.
    #[cfg_attr(feature = "serde", serde(with = "breakerbox::config::duration"))]
    pub probe_lease: Duration,
    /// The TTL of every key, refreshed while any replica syncs the breaker.
    #[cfg_attr(feature = "serde", serde(with = "breakerbox::config::duration"))]
    pub key_ttl: Duration,
    /// The limit on every Redis operation; past it the replica counts Redis as unreachable.
    #[cfg_attr(feature = "serde", serde(with = "breakerbox::config::duration"))]
    pub operation_timeout: Duration,
    /// What a replica does while it cannot reach the fleet.
    pub when_unreachable: WhenUnreachable,
    /// Where Redis is (one node, Sentinel, a Cluster), for
    /// [`FleetBuilder::connect`](crate::FleetBuilder::connect); not read by
    /// [`start`](crate::FleetBuilder::start) or
    /// [`start_with`](crate::FleetBuilder::start_with), which are given it.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub redis: Option<Connect>,
}

impl Default for FleetConfig {
    /// The defaults, with an empty (invalid) `service`: set it.
    fn default() -> Self {
        Self {
            service: String::new(),
            replica_id: None,
            key_prefix: "breakerbox".to_owned(),
            sync_interval: Duration::from_millis(100),
            refresh_interval: Duration::from_secs(1),
            window: Duration::from_secs(10),
            min_replicas: 2,
            min_calls: 10,
            probe_lease: Duration::from_secs(10),
            key_ttl: Duration::from_secs(24 * 3600),
            operation_timeout: Duration::from_millis(100),
            when_unreachable: WhenUnreachable::Local,
            redis: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}

impl FleetConfig {
    /// The defaults for `service`.
    pub fn new(service: impl Into<String>) -> Self {
        Self { service: service.into(), ..Self::default() }
    }

    /// Sets this replica's id.
    #[must_use]
    pub fn replica_id(mut self, id: impl Into<String>) -> Self {
        self.replica_id = Some(id.into());
        self
    }

    /// Sets the key prefix.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets where Redis is, for [`FleetBuilder::connect`](crate::FleetBuilder::connect).
    #[must_use]
    pub fn redis(mut self, connect: Connect) -> Self {
        self.redis = Some(connect);
        self
    }

    setters! {
        /// Sets how often counts and votes are pushed.
        sync_interval: Duration;
        /// Sets how often every breaker's fleet state is read again.
        refresh_interval: Duration;
        /// Sets how long votes and counts stay valid.
        window: Duration;
        /// Sets how many replicas must vote before the fleet opens.
        min_replicas: u32;
        /// Sets how many calls the fleet must have seen before it opens.
        min_calls: u64;
        /// Sets the probe lease.
        probe_lease: Duration;
        /// Sets the keys' TTL.
        key_ttl: Duration;
        /// Sets the limit on every Redis operation.
        operation_timeout: Duration;
        /// Sets what a replica does while it cannot reach the fleet.
        when_unreachable: WhenUnreachable;
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that cannot work: an empty
    /// `service` or one with `:`, `{` or `}`, an empty `key_prefix` or `replica_id`, a
    /// zero duration, `min_replicas` = 0, a `window` shorter than 10 ms, a `key_ttl`
    /// shorter than the `window`; a `redis` that [`Connect::validate`] refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: &dyn fmt::Debug, expected: &str| Err(ConfigError::new(field, value, expected));
        if self.service.is_empty() || self.service.contains([':', '{', '}']) {
            return bad("service", &self.service, "a non-empty name without ':', '{' or '}'");
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            return bad("key_prefix", &self.key_prefix, "a non-empty prefix without '{' or '}'");
        }
        if let Some(id) = &self.replica_id
            && (id.is_empty() || id.contains(':'))
        {
            return bad("replica_id", id, "a non-empty id without ':'");
        }
        for (field, d) in [
            ("sync_interval", self.sync_interval),
            ("refresh_interval", self.refresh_interval),
            ("probe_lease", self.probe_lease),
            ("operation_timeout", self.operation_timeout),
        ] {
            if d.as_millis() == 0 {
                return bad(field, &d, "at least 1ms");
            }
        }
        if self.window < Duration::from_millis(10) {
            return bad("window", &self.window, "at least 10ms");
        }
        if self.key_ttl < self.window {
            return bad("key_ttl", &self.key_ttl, "at least the window");
        }
        if self.min_replicas == 0 {
            return bad("min_replicas", &self.min_replicas, "at least 1");
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_a_service() {
        assert_eq!(FleetConfig::default().validate().unwrap_err().field(), "service");
        FleetConfig::new("checkout").validate().unwrap();
        for bad in ["a:b", "{x}", ""] {
            assert!(FleetConfig::new(bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let field = |c: FleetConfig| c.validate().unwrap_err().field();
        assert_eq!(field(FleetConfig::new("s").min_replicas(0)), "min_replicas");
        assert_eq!(field(FleetConfig::new("s").sync_interval(Duration::ZERO)), "sync_interval");
        assert_eq!(field(FleetConfig::new("s").window(Duration::from_millis(1))), "window");
        assert_eq!(field(FleetConfig::new("s").key_ttl(Duration::from_secs(1))), "key_ttl");
        assert_eq!(field(FleetConfig::new("s").replica_id("")), "replica_id");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes_with_durations_and_rejects_unknown_keys() {
        let c: FleetConfig = serde_json::from_str(
            r#"{ "service": "checkout", "sync_interval": "50ms", "min_replicas": 3, "when_unreachable": "open" }"#,
        )
        .unwrap();
        assert_eq!(c.service, "checkout");
        assert_eq!(c.sync_interval, Duration::from_millis(50));
        assert_eq!(c.min_replicas, 3);
        assert_eq!(c.when_unreachable, WhenUnreachable::Open);
        assert_eq!(c.window, Duration::from_secs(10));
        let back: FleetConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let err = serde_json::from_str::<FleetConfig>(r#"{ "service": "s", "min_replica": 3 }"#).unwrap_err();
        assert!(err.to_string().contains("min_replica"), "{err}");
        let err = serde_json::from_str::<FleetConfig>(r#"{ "service": "s", "window": "ten" }"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
        assert!(!serde_json::to_string(&c).unwrap().contains("redis"), "no `redis` unless set");
        let c: FleetConfig = serde_json::from_str(
            r#"{ "service": "s", "redis": { "sentinel": { "master": "m", "nodes": ["redis://127.0.0.1:26379"] } } }"#,
        )
        .unwrap();
        assert_eq!(c.redis, Some(Connect::sentinel("m", ["redis://127.0.0.1:26379"])));
        let back: FleetConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
