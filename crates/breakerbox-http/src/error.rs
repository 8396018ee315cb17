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
    /// The client could not build or send the request as given (an error of kind
    /// [`ErrorKind::Request`](crate::ErrorKind::Request): a bad header, a body that
    /// cannot be serialized, a URL the client refuses). It is the caller's mistake, not
    /// the server's: nothing was counted, not even as ignored.
    InvalidRequest(E),
    /// The breaker cannot send this request as given (a streaming body, which a retry
    /// could not send again). Nothing was sent and nothing counted.
    Unsupported {
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// The circuit is open (or half-open with every probe slot taken): the request was
    /// not sent. [`Rejected::retry_after`] says when a trial request will be let through.
    CircuitOpen(Rejected),
    /// The breaker's own [timeout](crate::HttpBreakerBuilder::timeout) expired before
    /// the response (or, with [`buffer_body`](crate::HttpBreakerBuilder::buffer_body),
    /// its body) arrived. The attempt was counted as a failure.
    TimedOut(TimedOut),
    /// The client's transport error (connection refused, the client's own timeout,
    /// reset). It was counted as the classifier said.
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

    /// Whether the breaker's own timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut(_))
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
            Self::InvalidRequest(e) => HttpError::InvalidRequest(op(e)),
            Self::Unsupported { reason } => HttpError::Unsupported { reason },
            Self::CircuitOpen(r) => HttpError::CircuitOpen(r),
            Self::TimedOut(t) => HttpError::TimedOut(t),
            Self::Transport(e) => HttpError::Transport(op(e)),
        }
    }
}

impl<E> From<Rejected> for HttpError<E> {
    fn from(r: Rejected) -> Self {
        Self::CircuitOpen(r)
    }
}

impl<E: std::error::Error> fmt::Display for HttpError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMethod { method, valid } if valid.is_empty() => {
                write!(f, "invalid method `{method}`: the method table is empty")
            }
            Self::InvalidMethod { method, valid } => {
                write!(f, "invalid method `{method}`: valid methods are {}", valid.join(", "))
            }
            Self::InvalidUrl { url, reason } => write!(f, "invalid URL `{url}`: {reason}"),
            Self::InvalidRequest(e) => {
                // reqwest's own message is only "builder error": the reason is below.
                write!(f, "invalid request (not sent, not counted): {e}")?;
                let mut next = e.source();
                while let Some(cause) = next {
                    write!(f, ": {cause}")?;
                    next = cause.source();
                }
                Ok(())
            }
            Self::Unsupported { reason } => write!(f, "unsupported request (not sent, not counted): {reason}"),
            Self::CircuitOpen(r) => r.fmt(f),
            Self::TimedOut(t) => t.fmt(f),
            Self::Transport(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// Transparent over the client's transport error: `Display` is its message and `source`
/// its source, so an error chain never repeats a message. An
/// [`InvalidRequest`](HttpError::InvalidRequest) prints its whole chain (it is the
/// caller's to fix) and has no source.
impl<E: std::error::Error + 'static> std::error::Error for HttpError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => e.source(),
            _ => None,
        }
    }
}

/// The breaker's own timeout expired: no response (or no whole body) within
/// [`after`](Self::after). Always counted as a failure.
///
/// A custom [`Classifier`](crate::Classifier) never sees it: a timeout of the breaker
/// is a failure by definition (set a longer timeout, or none, if that is wrong for a
/// service).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox_http::TimedOut;
///
/// let t = TimedOut::new(Duration::from_millis(1500));
/// assert_eq!(t.after(), Duration::from_millis(1500));
/// assert_eq!(t.to_string(), "timed out after 1.5s (the breaker's timeout; counted as a failure)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimedOut {
    after: Duration,
}

impl TimedOut {
    /// A timeout that expired after `after`.
    pub const fn new(after: Duration) -> Self {
        Self { after }
    }

    /// The timeout that expired.
    pub const fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?} (the breaker's timeout; counted as a failure)", self.after)
    }
}

impl std::error::Error for TimedOut {}

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
