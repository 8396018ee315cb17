//! Errors of the fleet. None of them ever reaches a call through a breaker: a call is
//! decided locally, and a store failure only degrades the fleet to local decisions.

use std::fmt;
use std::time::Duration;

use breakerbox::ConfigError;

/// What went wrong setting up or talking to the fleet.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// A setting that cannot work, named as in [`FleetConfig`](crate::FleetConfig).
    Config(ConfigError),
    /// [`FleetBuilder::start`](crate::FleetBuilder::start) was called outside a tokio
    /// runtime.
    NoRuntime,
    /// Redis answered with an error, or the connection failed.
    Store(redis::RedisError),
    /// Redis did not answer within the operation timeout.
    Timeout(Duration),
    /// The fleet's background task has stopped.
    Stopped,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::NoRuntime => f.write_str("the fleet must be started inside a tokio runtime"),
            Self::Store(e) => write!(f, "redis: {e}"),
            Self::Timeout(d) => write!(f, "redis did not answer within {d:?}"),
            Self::Stopped => f.write_str("the fleet's background task has stopped"),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::NoRuntime | Self::Timeout(_) | Self::Stopped => None,
        }
    }
}

impl From<redis::RedisError> for FleetError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e)
    }
}

impl From<ConfigError> for FleetError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}
