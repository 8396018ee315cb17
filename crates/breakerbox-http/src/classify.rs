//! Classification: which responses and errors count against the server.
//!
//! The original counted every status but 200 as a failure. That trips on a healthy
//! server that answers `201 Created`, `204 No Content` or `404 Not Found`, and it
//! counts the caller's own mistakes against the server. The presets:
//!
//! | preset | failures | successes |
//! |---|---|---|
//! | [`Classifier::standard`] (default) | 5xx, 408, 429, transport errors, timeouts | every other status |
//! | [`Classifier::success_2xx`] | every status outside 2xx, transport errors, timeouts | 2xx |
//! | [`Classifier::only_200`] (the original) | every status but 200, transport errors, timeouts | 200 |
//!
//! An error of kind [`ErrorKind::Request`] (the client could not build the request) never
//! reaches a classifier: it says nothing about the server, and the breaker counts it
//! nowhere (the presets would call it [`Outcome::Ignored`]). Nor does the breaker's own
//! timeout: it is always a failure. Anything else is a closure away:
//! [`Classifier::from_fn`].
//!
//! # Seeing the verdict
//!
//! Every response that comes through an [`HttpBreaker`](crate::HttpBreaker) carries a
//! [`Verdict`] in its extensions: how the breaker counted it, and why. (The tower layers
//! and the reqwest middleware add none, to allocate nothing per call: their outcomes
//! reach the core's `on_outcome` listeners.)
//!
//! ```no_run
//! use breakerbox_http::{HttpBreaker, Verdict};
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = HttpBreaker::builder(reqwest::Client::new()).build()?;
//! let response = breaker.do_request("GET", "http://127.0.0.1:8080/stock/42").await?;
//! if let Some(verdict) = Verdict::of(&response) {
//!     println!("{}: {:?}, {}", response.status(), verdict.outcome(), verdict.reason());
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use breakerbox::{Outcome, Report};
use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};

use crate::ErrorKind;

/// What an attempt gave back, as a classifier sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Attempt<'a> {
    /// The server answered.
    Response {
        /// The status (from the breaker's status extractor).
        status: StatusCode,
        /// The response's headers.
        headers: &'a HeaderMap,
    },
    /// No response: the client's error.
    Error {
        /// What kind of error, from the client's `error_kind`.
        kind: ErrorKind,
        /// The error itself.
        error: &'a (dyn std::error::Error + Send + Sync + 'static),
    },
}

impl Attempt<'_> {
    /// The status, if the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Response { status, .. } => Some(*status),
            Self::Error { .. } => None,
        }
    }

    /// The error's kind, if there was no response.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Response { .. } => None,
            Self::Error { kind, .. } => Some(*kind),
        }
    }
}

/// Decides whether an attempt is a success, a failure, or says nothing about the server.
///
/// # Examples
///
/// ```
/// use breakerbox_http::{Attempt, Classifier};
/// use breakerbox::Outcome;
/// use http::{HeaderMap, StatusCode};
///
/// // The standard rules, except that a 404 says nothing about the server's health.
/// let classifier = Classifier::from_fn(|attempt| match attempt.status() {
///     Some(StatusCode::NOT_FOUND) => Outcome::Ignored,
///     _ => Classifier::standard().classify(attempt),
/// });
/// let headers = HeaderMap::new();
/// let answer = |status| Attempt::Response { status, headers: &headers };
/// assert_eq!(classifier.classify(&answer(StatusCode::NOT_FOUND)), Outcome::Ignored);
/// assert_eq!(classifier.classify(&answer(StatusCode::BAD_GATEWAY)), Outcome::Failure);
/// assert_eq!(Classifier::only_200().classify(&answer(StatusCode::CREATED)), Outcome::Failure);
/// assert_eq!(Classifier::success_2xx().classify(&answer(StatusCode::CREATED)), Outcome::Success);
/// ```
///
/// # Default
///
/// [`Classifier::standard`].
#[derive(Clone)]
pub struct Classifier {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Standard,
    Success2xx,
    Only200,
    Custom(Arc<dyn Fn(&Attempt<'_>) -> Outcome + Send + Sync>),
}

impl Classifier {
    /// 5xx, 408 Request Timeout, 429 Too Many Requests, transport errors and timeouts
    /// are failures; every other status is a success.
    pub const fn standard() -> Self {
        Self { kind: Kind::Standard }
    }

    /// 2xx is a success; every other status, transport errors and timeouts are failures.
    pub const fn success_2xx() -> Self {
        Self { kind: Kind::Success2xx }
    }

    /// The original's rule: 200 is a success; every other status, transport errors and
    /// timeouts are failures.
    pub const fn only_200() -> Self {
        Self { kind: Kind::Only200 }
    }

    /// Your own rule.
    pub fn from_fn(f: impl Fn(&Attempt<'_>) -> Outcome + Send + Sync + 'static) -> Self {
        Self { kind: Kind::Custom(Arc::new(f)) }
    }

    /// Classifies one attempt.
    pub fn classify(&self, attempt: &Attempt<'_>) -> Outcome {
        let status = match (attempt, &self.kind) {
            (_, Kind::Custom(f)) => return f(attempt),
            (Attempt::Error { kind: ErrorKind::Request, .. }, _) => return Outcome::Ignored,
            (Attempt::Error { .. }, _) => return Outcome::Failure,
            (Attempt::Response { status, .. }, _) => *status,
        };
        let success = match self.kind {
            Kind::Standard => {
                !(status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS)
            }
            Kind::Success2xx => status.is_success(),
            Kind::Only200 | Kind::Custom(_) => status == StatusCode::OK,
        };
        if success { Outcome::Success } else { Outcome::Failure }
    }
}

// The reports every way in gives its breaker: `HttpBreaker` (async and blocking), the
// tower classifier and the reqwest middleware call these, and nothing else.
impl Classifier {
    /// The verdict on a response with `status` (the breaker's status extractor's) and
    /// `headers`: its outcome, why, and the `Retry-After` of a failing 429 or 503.
    pub(crate) fn verdict(&self, status: StatusCode, headers: &HeaderMap) -> Verdict {
        let outcome = self.classify(&Attempt::Response { status, headers });
        let retry_after = match outcome {
            Outcome::Failure => retry_after(status, headers, SystemTime::now()),
            _ => None,
        };
        let overload = outcome == Outcome::Failure && is_overload_status(status);
        Verdict { outcome, reason: self.reason(status, outcome), retry_after, overload }
    }

    /// The report on a response: [`verdict`](Self::verdict) for the breaker.
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    pub(crate) fn report(&self, status: StatusCode, headers: &HeaderMap) -> Report {
        self.verdict(status, headers).report()
    }

    /// Why a preset gave `outcome` for `status`.
    fn reason(&self, status: StatusCode, outcome: Outcome) -> &'static str {
        match (&self.kind, outcome) {
            (Kind::Custom(_), _) => "the custom classifier's decision (Classifier::from_fn)",
            (_, Outcome::Success) => "a success status for this classifier",
            (_, Outcome::Ignored) => "ignored by this classifier",
            (Kind::Standard, _) if status.is_server_error() => "a server error (5xx)",
            (Kind::Standard, _) if status == StatusCode::REQUEST_TIMEOUT => "408 Request Timeout: the server is slow",
            (Kind::Standard, _) => "429 Too Many Requests: the server sheds load",
            (Kind::Success2xx, _) => "not a 2xx status (Classifier::success_2xx)",
            (Kind::Only200, _) => "not 200 (Classifier::only_200, the original's rule)",
        }
    }

    /// The report on a client's `error` of `kind`: its outcome.
    pub(crate) fn report_error(
        &self,
        kind: ErrorKind,
        error: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> Report {
        match self.classify(&Attempt::Error { kind, error }) {
            // The server never answered: it could not take the call (refused, reset,
            // too slow). An overload, for adaptive throttling.
            Outcome::Failure => Report::overloaded(),
            outcome => Report::new(outcome),
        }
    }
}

/// The statuses of a server that sheds load rather than answers: 429, 502, 503, 504.
/// A failure with one of these is an overload for adaptive throttling
/// ([`Report::overloaded`]), not an accept.
pub const fn is_overload_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

impl Default for Classifier {
    fn default() -> Self {
        Self::standard()
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Standard => "Classifier::standard",
            Kind::Success2xx => "Classifier::success_2xx",
            Kind::Only200 => "Classifier::only_200",
            Kind::Custom(_) => "Classifier::from_fn",
        })
    }
}

/// How the breaker counted a response, and why: left in the extensions of every response
/// an [`HttpBreaker`](crate::HttpBreaker) gives back (fallback stand-ins excepted).
///
/// # Examples
///
/// ```
/// use breakerbox_http::Verdict;
///
/// let response = http::Response::new(());
/// assert!(Verdict::of(&response).is_none(), "not through a breaker");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    outcome: Outcome,
    reason: &'static str,
    retry_after: Option<Duration>,
    overload: bool,
}

impl Verdict {
    /// The verdict the breaker left on `response`, if it came through one.
    pub fn of<R: VerdictOf>(response: &R) -> Option<Self> {
        response.verdict()
    }

    /// How the breaker counted the response.
    pub const fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Why, in words (for example "a server error (5xx)").
    pub const fn reason(&self) -> &'static str {
        self.reason
    }

    /// The `Retry-After` of a failing 429 or 503, which may keep the breaker open
    /// longer.
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the failure is an overload (a 429, 502, 503 or 504; see
    /// [`is_overload_status`]): not an accept for adaptive throttling.
    pub const fn is_overload(&self) -> bool {
        self.overload
    }

    pub(crate) fn report(&self) -> Report {
        let report = match (self.outcome, self.overload) {
            (Outcome::Failure, true) => Report::overloaded(),
            (outcome, _) => Report::new(outcome),
        };
        match self.retry_after {
            Some(hint) if self.outcome == Outcome::Failure => report.with_retry_after(hint),
            _ => report,
        }
    }
}

/// A response that can carry a [`Verdict`]: any `http::Response`, and with the
/// `reqwest` feature `reqwest::Response`.
pub trait VerdictOf {
    /// The verdict in the response's extensions.
    fn verdict(&self) -> Option<Verdict>;
}

impl<B> VerdictOf for http::Response<B> {
    fn verdict(&self) -> Option<Verdict> {
        self.extensions().get::<Verdict>().copied()
    }
}

/// The `Retry-After` of a 429 or 503 response: delay-seconds or an HTTP date (a date in
/// the past is zero). Anything else, and any other status, gives `None`.
pub(crate) fn retry_after(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_ignores_garbage() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        let in_90s = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&in_90s, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        for garbage in ["", "soon", "-5", "1.5", "12 s", "Mon, 99 Foo 2024 00:00:00 GMT"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    #[test]
    fn retry_after_only_on_429_and_503() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "30".parse().unwrap());
        let now = SystemTime::now();
        assert_eq!(retry_after(StatusCode::SERVICE_UNAVAILABLE, &headers, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(StatusCode::TOO_MANY_REQUESTS, &headers, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(StatusCode::INTERNAL_SERVER_ERROR, &headers, now), None);
        assert_eq!(retry_after(StatusCode::OK, &headers, now), None);
    }

    #[test]
    fn presets_follow_their_tables() {
        let headers = HeaderMap::new();
        let classify = |c: &Classifier, code: u16| {
            c.classify(&Attempt::Response { status: StatusCode::from_u16(code).unwrap(), headers: &headers })
        };
        use Outcome::{Failure as F, Success as S};
        let table: [(u16, Outcome, Outcome, Outcome); 11] = [
            // status, standard, success_2xx, only_200
            (200, S, S, S),
            (201, S, S, F),
            (204, S, S, F),
            (301, S, F, F),
            (400, S, F, F),
            (404, S, F, F),
            (408, F, F, F),
            (429, F, F, F),
            (500, F, F, F),
            (503, F, F, F),
            (599, F, F, F),
        ];
        for (code, standard, two_xx, only) in table {
            assert_eq!(classify(&Classifier::standard(), code), standard, "standard {code}");
            assert_eq!(classify(&Classifier::success_2xx(), code), two_xx, "success_2xx {code}");
            assert_eq!(classify(&Classifier::only_200(), code), only, "only_200 {code}");
        }
        let error = std::io::Error::other("boom");
        for c in [Classifier::standard(), Classifier::success_2xx(), Classifier::only_200()] {
            for (kind, want) in [
                (ErrorKind::Connect, F),
                (ErrorKind::Timeout, F),
                (ErrorKind::Other, F),
                (ErrorKind::Request, Outcome::Ignored),
            ] {
                assert_eq!(c.classify(&Attempt::Error { kind, error: &error }), want, "{c:?} {kind:?}");
            }
        }
    }
}
