//! The states a breaker can be in, and the outcomes a call can report.

pub(crate) mod kind;
pub(crate) mod packed;
pub(crate) mod transition;

use std::fmt;
use std::time::Duration;

/// The state of a breaker.
///
/// ```text
///            trip (policy)                  open wait passed
///  Closed ─────────────────▶ Open ───────────────────────────▶ HalfOpen
///    ▲  ▲                     ▲  ▲                               │  │
///    │  │                     │  └──── a probe failed ───────────┘  │
///    │  │                     └─ the ramp aborts ─┐                 │
///    │  └── the ramp is done ── Recovering ◀──────┴── probes succeeded, with a ramp
///    └──────────── half_open_probes probes succeeded (no ramp) ─────┘
///
///  reset() ▶ Closed      force_open() ▶ ForcedOpen      disable() ▶ Disabled
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Calls flow; outcomes are counted against the policy.
    Closed,
    /// Calls are rejected until the open wait has passed.
    Open,
    /// A bounded number of trial calls (probes) decide whether to close or reopen.
    HalfOpen,
    /// Opened by hand with [`force_open`](crate::Breaker::force_open): every call is
    /// rejected until [`reset`](crate::Breaker::reset).
    ForcedOpen,
    /// Switched off by hand with [`disable`](crate::Breaker::disable): every call is
    /// admitted and counted in the metrics, and the breaker never trips, until
    /// [`reset`](crate::Breaker::reset).
    Disabled,
    /// Half-open succeeded and traffic is coming back along the
    /// [recovery ramp](crate::ramp): a rising fraction of calls is admitted, until the
    /// ramp is done (closed) or its own failure rule aborts it (open).
    Recovering,
}

impl State {
    /// How much traffic the state keeps out, to report the worst of several breakers
    /// (one per host): `ForcedOpen` 5, `Open` 4, `HalfOpen` 3, `Recovering` 2,
    /// `Closed` 1, `Disabled` 0.
    ///
    /// ```
    /// use breakerbox::State;
    ///
    /// let hosts = [State::Closed, State::Open, State::HalfOpen];
    /// assert_eq!(hosts.into_iter().max_by_key(|s| s.severity()), Some(State::Open));
    /// ```
    pub const fn severity(self) -> u8 {
        match self {
            Self::ForcedOpen => 5,
            Self::Open => 4,
            Self::HalfOpen => 3,
            Self::Recovering => 2,
            Self::Closed => 1,
            Self::Disabled => 0,
        }
    }

    /// Whether calls are being rejected: [`State::Open`] or [`State::ForcedOpen`] (the
    /// original's `is_open`).
    pub const fn is_open(self) -> bool {
        match self {
            Self::Open | Self::ForcedOpen => true,
            Self::Closed | Self::HalfOpen | Self::Disabled | Self::Recovering => false,
        }
    }

    /// The state's name in `snake_case`, as used in events and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::Recovering => "recovering",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
            Self::ForcedOpen => "forced open",
            Self::Disabled => "disabled",
            Self::Recovering => "recovering",
        })
    }
}

/// How a call went, as far as the breaker is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The service did its job (it may still have been slow).
    Success,
    /// The service failed: counts toward tripping; in half-open, reopens.
    Failure,
    /// Says nothing about the service's health (for example a 404, a validation error,
    /// or a call the caller cancelled): touches no counter, neither resets a streak
    /// nor dilutes a rate, and frees a half-open slot without closing.
    Ignored,
}

impl Outcome {
    /// The outcome's name in `snake_case`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Ignored => "ignored",
        }
    }
}

/// An outcome with what else the breaker should know about the call.
///
/// `Outcome` converts into `Report`, so `permit.record(Outcome::Failure)` works.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::{Breaker, Report};
///
/// let breaker = Breaker::new();
/// let permit = breaker.try_acquire()?;
/// // A 503 that said `Retry-After: 120`, after 35 ms.
/// permit.record(
///     Report::failure()
///         .with_duration(Duration::from_millis(35))
///         .with_retry_after(Duration::from_secs(120)),
/// );
/// # Ok::<(), breakerbox::Rejected>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub(crate) outcome: Outcome,
    pub(crate) duration: Option<Duration>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) overload: bool,
}

impl Report {
    /// A report of `outcome`, with no duration and no hint.
    pub const fn new(outcome: Outcome) -> Self {
        Self { outcome, duration: None, retry_after: None, overload: false }
    }

    /// A success.
    pub const fn success() -> Self {
        Self::new(Outcome::Success)
    }

    /// A failure.
    pub const fn failure() -> Self {
        Self::new(Outcome::Failure)
    }

    /// An outcome that says nothing about the service.
    pub const fn ignored() -> Self {
        Self::new(Outcome::Ignored)
    }

    /// A failure that says the service is overloaded: it shed the call (a 429, 502,
    /// 503 or 504, a refused connection, a timeout) rather than answer it. It is a
    /// failure for the classic rules; for [adaptive throttling](crate::throttle) it is
    /// the one outcome that is not an accept.
    pub const fn overloaded() -> Self {
        Self { overload: true, ..Self::failure() }
    }

    /// How long the call took, measured by the caller. Without it, a breaker whose
    /// policy needs durations times the call itself, from acquire to record.
    #[must_use]
    pub const fn with_duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }

    /// The service asked to be left alone this long (an HTTP `Retry-After`). If this
    /// failure trips the breaker, the open wait is at least this long, up to the
    /// breaker's `retry_after_limit`.
    #[must_use]
    pub const fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }

    /// The outcome.
    pub const fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The duration given with [`with_duration`](Self::with_duration).
    pub const fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// The hint given with [`with_retry_after`](Self::with_retry_after).
    pub const fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether this is an [`overloaded`](Self::overloaded) failure.
    pub const fn is_overload(&self) -> bool {
        self.overload
    }
}

impl From<Outcome> for Report {
    fn from(outcome: Outcome) -> Self {
        Self::new(outcome)
    }
}
