//! Errors: the breaker's rejection, the wrapper around the caller's own error, and
//! configuration errors.

use std::fmt;
use std::time::Duration;

use crate::state::kind::Kind;
use crate::{Name, State};

/// The breaker refused a call: it is open, half-open with every probe slot taken, or
/// closed and [throttling](crate::throttle); [`reason`](Self::reason) says which.
///
/// A rejection is data, not a failure: the breaker never counts its own rejections
/// against the protected service.
///
/// # Examples
///
/// ```
/// use breakerbox::{Breaker, State};
///
/// let breaker = Breaker::builder().name("payments").build()?;
/// breaker.force_open();
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.name(), "payments");
/// assert_eq!(rejected.state(), State::ForcedOpen);
/// assert_eq!(rejected.to_string(), "circuit breaker `payments` is forced open");
/// # Ok::<(), breakerbox::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Rejected {
    name: Name,
    /// `retry_after_nanos:48 | p:13 | state:3`, with `NO_RETRY_AFTER` for none and `p`
    /// the reject probability of a throttled call in 8192ths. One whole word: a
    /// rejection is returned by value on the open path, and a byte-sized field read
    /// back as part of a word stalls store-to-load forwarding (measured: about half of
    /// the rejection's time).
    packed: u64,
}

/// Why a call was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The breaker is open: it tripped, and its open wait has not passed.
    Open,
    /// The breaker is half-open and every probe slot is taken.
    HalfOpenFull,
    /// The breaker was forced open by hand.
    ForcedOpen,
    /// The breaker is closed and [throttling](crate::throttle): this call was among
    /// the fraction [`Rejected::reject_probability`] it keeps off the backend.
    Throttled,
    /// The breaker is [recovering](crate::ramp) and this call was beyond the fraction
    /// its ramp admits now.
    Recovering,
}

impl RejectReason {
    /// The reason's name in `snake_case`, as used in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::HalfOpenFull => "half_open_full",
            Self::ForcedOpen => "forced_open",
            Self::Throttled => "throttled",
            Self::Recovering => "recovering",
        }
    }
}

const STATE_BITS: u32 = 3;
const P_BITS: u32 = 13;
const P_SHIFT: u32 = STATE_BITS;
const NANOS_SHIFT: u32 = STATE_BITS + P_BITS;
/// No retry-after: every bit of the 48-bit field (a wait of 78 hours and more saturates
/// just below it).
const NO_RETRY_AFTER: u64 = u64::MAX >> NANOS_SHIFT;

impl Rejected {
    #[inline(always)]
    pub(crate) fn from_packed(name: Name, packed: u64) -> Self {
        Self { name, packed }
    }

    /// The state and retry-after (nanoseconds) in one word.
    #[inline]
    pub(crate) fn pack(kind: Kind, retry_after: Option<u64>) -> u64 {
        let nanos = retry_after.map_or(NO_RETRY_AFTER, |n| n.min(NO_RETRY_AFTER - 1));
        nanos << NANOS_SHIFT | kind.bits()
    }

    /// A throttled rejection: closed, with the reject probability `p` (a fraction of
    /// 2³², rounded up to 8192ths so that a throttled call never reads as p = 0) and
    /// the retry-after (nanoseconds).
    #[inline]
    pub(crate) fn pack_throttled(p: u32, retry_after: u64) -> u64 {
        let p = u64::from(p).div_ceil(1 << (32 - P_BITS)).min((1 << P_BITS) - 1);
        Self::pack(Kind::Closed, Some(retry_after)) | p << P_SHIFT
    }

    /// The name of the breaker that rejected the call.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The breaker's state when it rejected the call.
    pub fn state(&self) -> State {
        self.kind().state()
    }

    fn kind(&self) -> Kind {
        Kind::from_bits(self.packed & ((1 << STATE_BITS) - 1))
    }

    /// Why the call was rejected.
    pub fn reason(&self) -> RejectReason {
        match self.kind() {
            Kind::Closed => RejectReason::Throttled,
            Kind::HalfOpen => RejectReason::HalfOpenFull,
            Kind::ForcedOpen => RejectReason::ForcedOpen,
            Kind::Recovering => RejectReason::Recovering,
            // Disabled admits everything; a corrupted word reads as forced open.
            Kind::Open | Kind::Disabled => RejectReason::Open,
        }
    }

    /// For a [throttled](RejectReason::Throttled) call, the probability with which the
    /// throttle was rejecting calls (to 1/8192); 0.0 for any other rejection.
    pub fn reject_probability(&self) -> f64 {
        let p = (self.packed >> P_SHIFT) & ((1 << P_BITS) - 1);
        p as f64 / f64::from(1u32 << P_BITS)
    }

    /// How long until the breaker admits a trial call, when known: the rest of the
    /// open wait, or for a throttled call the time until the throttle next looks at
    /// its window. `None` when forced open, or half-open with every probe slot taken.
    pub fn retry_after(&self) -> Option<Duration> {
        let nanos = self.packed >> NANOS_SHIFT;
        (nanos != NO_RETRY_AFTER).then(|| Duration::from_nanos(nanos))
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_str();
        match self.reason() {
            RejectReason::ForcedOpen => write!(f, "circuit breaker `{name}` is forced open"),
            RejectReason::HalfOpenFull => {
                write!(f, "circuit breaker `{name}` is half-open and every probe slot is taken")
            }
            RejectReason::Throttled => write!(
                f,
                "circuit breaker `{name}` is throttling: the backend is overloaded and {:.1}% of calls are kept off it",
                self.reject_probability() * 100.0
            ),
            RejectReason::Recovering => write!(
                f,
                "circuit breaker `{name}` is recovering: the backend is getting its traffic back a share at a time"
            ),
            RejectReason::Open => write!(f, "circuit breaker `{name}` is open"),
        }?;
        match (self.reason(), self.retry_after()) {
            (RejectReason::Open | RejectReason::Throttled, Some(d)) => write!(f, "; retry after {}", Rounded(d)),
            _ => Ok(()),
        }
    }
}

/// A wait as a person reads it: whole milliseconds below a second, tenths of a second
/// below a minute, whole seconds above (`300ms`, `1.9s`, `95s`), always rounded up so
/// that retrying after the printed time is never early. `Rejected::retry_after` keeps
/// the exact value.
struct Rounded(Duration);

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        const MS: u128 = 1_000_000;
        const TENTH: u128 = 100 * MS;
        const SECOND: u128 = 1_000 * MS;
        if nanos < SECOND {
            write!(f, "{}ms", nanos.div_ceil(MS))
        } else if nanos < 60 * SECOND {
            let tenths = nanos.div_ceil(TENTH);
            write!(f, "{}.{}s", tenths / 10, tenths % 10)
        } else {
            write!(f, "{}s", nanos.div_ceil(SECOND))
        }
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("reason", &self.reason())
            .field("reject_probability", &self.reject_probability())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl std::error::Error for Rejected {}

/// The result of a call through a breaker: either the breaker rejected it, or the call
/// ran and failed with the caller's own error, untouched.
///
/// Deliberately not `#[non_exhaustive]`: a call either ran or did not, so a `match` needs
/// exactly these two arms, and no wildcard arm hides a case.
///
/// ```
/// use breakerbox::{Breaker, Error};
///
/// let breaker = Breaker::new();
/// match breaker.call(|| Err::<(), _>("refused")) {
///     Ok(()) => {}
///     Err(Error::Rejected(r)) => println!("not now: {r}"),
///     Err(Error::Inner(e)) => println!("the call failed: {e}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// The breaker refused the call; the protected code did not run.
    Rejected(Rejected),
    /// The protected code ran and returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// The caller's error, if the call ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            Self::Rejected(_) => None,
        }
    }

    /// The rejection, if the breaker refused the call.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Self::Rejected(r) => Some(r),
            Self::Inner(_) => None,
        }
    }

    /// Whether the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }

    /// Maps the caller's error, keeping a rejection as it is.
    pub fn map_inner<F, O: FnOnce(E) -> F>(self, op: O) -> Error<F> {
        match self {
            Self::Inner(e) => Error::Inner(op(e)),
            Self::Rejected(r) => Error::Rejected(r),
        }
    }
}

impl<E> From<Rejected> for Error<E> {
    fn from(r: Rejected) -> Self {
        Self::Rejected(r)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(r) => r.fmt(f),
            Self::Inner(e) => e.fmt(f),
        }
    }
}

/// Transparent over the caller's error: `Display` is the inner error's, and `source` is
/// the inner error's source, so an error chain never prints the inner message twice.
impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Rejected(_) => None,
            Self::Inner(e) => e.source(),
        }
    }
}

/// A setting that cannot work, found by `build()`.
///
/// The message names the setting, the value given and the values accepted.
///
/// # Examples
///
/// ```
/// use breakerbox::{Breaker, Policy};
///
/// let err = Breaker::builder().policy(Policy::consecutive_failures(0)).build().unwrap_err();
/// assert_eq!(err.field(), "policy.consecutive_failures");
/// assert_eq!(
///     err.to_string(),
///     "invalid breaker setting `policy.consecutive_failures` = 0: expected at least 1"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    field: &'static str,
    value: String,
    expected: String,
}

impl ConfigError {
    /// A setting `field` with `value` that cannot work, and what it accepts; for crates
    /// that build on breakerbox and check their own settings the same way.
    ///
    /// ```
    /// let err = breakerbox::ConfigError::new("retry.attempts", 0, "at least 1");
    /// assert_eq!(err.to_string(), "invalid breaker setting `retry.attempts` = 0: expected at least 1");
    /// ```
    pub fn new(field: &'static str, value: impl fmt::Debug, expected: impl Into<String>) -> Self {
        Self { field, value: format!("{value:?}"), expected: expected.into() }
    }

    /// The setting at fault, as a dotted path (for example `policy.failure_rate.threshold`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The value given, as written by `Debug`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the setting accepts.
    pub fn expected(&self) -> &str {
        &self.expected
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid breaker setting `{}` = {}: expected {}", self.field, self.value, self.expected)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_print_rounded_up_to_what_a_person_reads() {
        let cases = [
            (Duration::from_nanos(1), "1ms"),
            (Duration::from_nanos(299_562_029), "300ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_millis(1_000), "1.0s"),
            (Duration::from_millis(1_860), "1.9s"),
            (Duration::from_millis(59_950), "60.0s"),
            (Duration::from_secs(60), "60s"),
            (Duration::from_millis(94_001), "95s"),
            (Duration::from_secs(3_600), "3600s"),
        ];
        for (d, s) in cases {
            assert_eq!(Rounded(d).to_string(), s, "{d:?}");
        }
    }
}
