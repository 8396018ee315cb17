//! Errors: what a request through the breaker can end in, and bad settings.

use std::fmt;
use std::time::Duration;

use breakerbox::Rejected;

/// Why a request through an [`HttpBreaker`](crate::HttpBreaker) gave no response.
///
/// A response with a failing status is not an error: without a
/// [fallback](crate::HttpBreakerBuilder::fallback), the caller gets the response as the
/// client gave it, and the breaker has counted the failure.
///
/// # Examples
///
/// ```
/// use breakerbox_http::{HttpBreaker, HttpError};
///
/// # futures_block_on(async {
/// let breaker = HttpBreaker::new(reqwest::Client::new(), 5, std::time::Duration::from_secs(30))?;
/// match breaker.do_request("FETCH", "http://127.0.0.1:1/").await {
///     Err(HttpError::InvalidMethod { method, valid }) => {
///         assert_eq!(method, "FETCH");
///         assert!(valid.contains(&"GET".to_string()));
///     }
///     other => panic!("{other:?}"),
/// }
/// let err = breaker.do_request("GET", "not a url").await.unwrap_err();
/// assert_eq!(err.to_string(), "invalid URL `not a url`: not a valid URI");
/// assert_eq!(breaker.metrics().failures, 0); // the caller's mistakes never count
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError<E> {
    /// The method is not in the method table. Nothing was sent and nothing counted.
    InvalidMethod {
        /// The method given, as given.
        method: String,
        /// The methods of the table, upper case, sorted.
        valid: Vec<String>,
    },
    /// The URL cannot be sent: not a URL, not `http` or `https`, or no host. Nothing was
    /// sent and nothing counted.
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The circuit is open (or half-open with every probe slot taken): the request was
    /// not sent. [`Rejected::retry_after`] says when a trial request will be let through.
    CircuitOpen(Rejected),
    /// The client's transport error (connection refused, timeout, reset). It was counted
    /// as the classifier said.
    Transport(E),
}

impl<E> HttpError<E> {
    /// Whether the breaker refused the request.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Self::CircuitOpen(_))
    }

    /// The rejection, if the breaker refused the request.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::CircuitOpen(r) => Some(r),
            _ => None,
        }
    }

    /// How long until the breaker lets a trial request through, when it refused this one
    /// and knows.
    pub fn retry_after(&self) -> Option<Duration> {
        self.rejected().and_then(Rejected::retry_after)
    }

    /// The client's error, if the request failed in transport.
    pub fn into_transport(self) -> Option<E> {
        match self {
            Self::Transport(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the client's error, keeping every other variant.
    pub fn map_transport<F>(self, op: impl FnOnce(E) -> F) -> HttpError<F> {
        match self {
            Self::InvalidMethod { method, valid } => HttpError::InvalidMethod { method, valid },
            Self::InvalidUrl { url, reason } => HttpError::InvalidUrl { url, reason },
            Self::CircuitOpen(r) => HttpError::CircuitOpen(r),
            Self::Transport(e) => HttpError::Transport(op(e)),
        }
    }
}

impl<E> From<Rejected> for HttpError<E> {
    fn from(r: Rejected) -> Self {
        Self::CircuitOpen(r)
    }
}

impl<E: fmt::Display> fmt::Display for HttpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMethod { method, valid } if valid.is_empty() => {
                write!(f, "invalid method `{method}`: the method table is empty")
            }
            Self::InvalidMethod { method, valid } => {
                write!(f, "invalid method `{method}`: valid methods are {}", valid.join(", "))
            }
            Self::InvalidUrl { url, reason } => write!(f, "invalid URL `{url}`: {reason}"),
            Self::CircuitOpen(r) => r.fmt(f),
            Self::Transport(e) => e.fmt(f),
        }
    }
}

/// Transparent over the client's error: `Display` is its message and `source` its
/// source, so an error chain never repeats a message.
impl<E: std::error::Error + 'static> std::error::Error for HttpError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => e.source(),
            _ => None,
        }
    }
}

/// A setting that cannot work, found by `build()` (or [`HttpBreaker::new`](crate::HttpBreaker::new)):
/// the core's [`ConfigError`](breakerbox::ConfigError), with this crate's settings named
/// `retry.*`, `max_hosts` and `host_idle_timeout`.
///
/// # Examples
///
/// ```
/// use breakerbox_http::HttpBreaker;
///
/// let err = HttpBreaker::new(reqwest::Client::new(), 0, std::time::Duration::from_secs(30)).unwrap_err();
/// assert_eq!(err.field(), "policy.consecutive_failures");
/// assert_eq!(err.to_string(), "invalid breaker setting `policy.consecutive_failures` = 0: expected at least 1");
/// ```
pub use breakerbox::ConfigError;
