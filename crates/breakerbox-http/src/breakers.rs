//! `Breakers`: the breakers behind every way in (the [`HttpBreaker`](crate::HttpBreaker),
//! the tower `PerHostLayer`, the reqwest `BreakerMiddleware`): one breaker for every
//! host, or one per scheme, host and port from a `BreakerBox<String>`.
//!
//! This is the one place that finds a request's breaker, from the [`Host`] that
//! [`crate::host`] reads, and the one place that sums a family up (the worst state, the
//! counters summed). The adapters differ only in what they do with a request that names
//! no host: [`HttpBreaker`](crate::HttpBreaker) refuses it as an invalid URL, the
//! layers let it through unguarded ([`Breakers::guard`]).

use std::convert::Infallible;
use std::ops::Deref;

use breakerbox::{Breaker, BreakerBox, BreakerBoxBuilder, ConfigError, Metrics, State};

use crate::host::Host;

/// One breaker for every host, or one per host.
///
/// `O` is what the single-breaker case holds: a [`Breaker`], or [`Infallible`] for an
/// adapter that is per host by construction (the tower `PerHostLayer`), whose family
/// [`Breakers::family`] then gives without a `match` that could fail.
#[derive(Clone, Debug)]
pub(crate) enum Breakers<O = Breaker> {
    /// One breaker, whatever the host.
    One(O),
    /// One breaker per `"{scheme}://{host}:{port}"`, created on first use.
    PerHost(BreakerBox<String>),
}

/// What [`Breakers::One`] holds: a breaker, or nothing at all.
pub(crate) trait Single {
    /// The breaker.
    fn breaker(&self) -> &Breaker;
}

impl Single for Breaker {
    fn breaker(&self) -> &Breaker {
        self
    }
}

impl Single for Infallible {
    fn breaker(&self) -> &Breaker {
        match *self {}
    }
}

/// A breaker borrowed from the single-breaker case, or owned from the per-host family
/// (which hands out clones of its breakers).
#[derive(Debug)]
pub(crate) enum BreakerRef<'a> {
    Borrowed(&'a Breaker),
    Owned(Breaker),
}

impl BreakerRef<'_> {
    /// The breaker, as a handle of its own.
    pub(crate) fn into_owned(self) -> Breaker {
        match self {
            Self::Borrowed(b) => b.clone(),
            Self::Owned(b) => b,
        }
    }
}

impl Deref for BreakerRef<'_> {
    type Target = Breaker;

    fn deref(&self) -> &Breaker {
        match self {
            Self::Borrowed(b) => b,
            Self::Owned(b) => b,
        }
    }
}

impl<O: Single> Breakers<O> {
    /// The breaker of requests to `host`: the single one, or the host's own (created on
    /// first use; the key of a known host is built on the stack, and the lookup is a
    /// read lock).
    pub(crate) fn get(&self, host: Host<'_>) -> BreakerRef<'_> {
        match self {
            Self::One(one) => BreakerRef::Borrowed(one.breaker()),
            Self::PerHost(family) => BreakerRef::Owned(host.with_key(|key| family.get(key))),
        }
    }

    /// The breaker that guards a request to `host`: the single one whatever the request
    /// names, or the host's own; `None` per host when the request names no host, which
    /// then goes through unguarded and uncounted (the adapters' rule).
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    pub(crate) fn guard(&self, host: Option<Host<'_>>) -> Option<BreakerRef<'_>> {
        match (self, host) {
            (Self::PerHost(_), None) => None,
            (_, Some(host)) => Some(self.get(host)),
            (Self::One(one), None) => Some(BreakerRef::Borrowed(one.breaker())),
        }
    }

    /// Asks the [guard](Self::guard) of a request to `host` for a permit the response
    /// future can hold; `None` when the request goes unguarded.
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    pub(crate) fn try_acquire_owned(
        &self,
        host: Option<Host<'_>>,
    ) -> Option<Result<breakerbox::OwnedPermit, breakerbox::Rejected>> {
        match (self, host) {
            // The family's own breaker gives the permit: no handle cloned but the permit's.
            (Self::PerHost(family), Some(host)) => Some(host.with_key(|key| family.try_acquire_owned(key))),
            (Self::PerHost(_), None) => None,
            (Self::One(one), _) => Some(one.breaker().try_acquire_owned()),
        }
    }

    /// The single breaker; `None` per host.
    pub(crate) fn single(&self) -> Option<&Breaker> {
        match self {
            Self::One(one) => Some(one.breaker()),
            Self::PerHost(_) => None,
        }
    }

    /// The per-host family; `None` with one breaker.
    pub(crate) fn hosts(&self) -> Option<&BreakerBox<String>> {
        match self {
            Self::One(_) => None,
            Self::PerHost(family) => Some(family),
        }
    }

    /// The state; per host, the worst among the hosts (by [`State::severity`]), closed
    /// when there is none yet.
    pub(crate) fn state(&self) -> State {
        match self {
            Self::One(one) => one.breaker().state(),
            Self::PerHost(family) => {
                let mut worst = State::Closed;
                family.for_each(|_, b| {
                    let state = b.state();
                    if state.severity() > worst.severity() {
                        worst = state;
                    }
                });
                worst
            }
        }
    }

    /// Switches shadow mode on or off for every breaker (per host: those to come too).
    pub(crate) fn set_shadow(&self, on: bool) {
        match self {
            Self::One(one) => one.breaker().set_shadow(on),
            Self::PerHost(family) => family.set_shadow(on),
        }
    }

    /// Closes every breaker and clears its counters.
    pub(crate) fn reset(&self) {
        match self {
            Self::One(one) => one.breaker().reset(),
            Self::PerHost(family) => family.reset_all(),
        }
    }

    /// A snapshot of the counters; per host, the counters summed over the hosts, the
    /// longest streak of failures and the highest reject probability, and the state,
    /// time in state, rates, window and recovery fraction of the worst host (the first met among equally bad ones); `None` per host when there is no
    /// host yet.
    pub(crate) fn metrics(&self) -> Option<Metrics> {
        let family = match self {
            Self::One(one) => return Some(one.breaker().metrics()),
            Self::PerHost(family) => family,
        };
        let mut sum: Option<Metrics> = None;
        family.for_each(|_, b| {
            let m = b.metrics();
            let Some(sum) = sum.as_mut() else {
                sum = Some(m);
                return;
            };
            let (successes, failures, ignored, rejected) = (sum.successes, sum.failures, sum.ignored, sum.rejected);
            let (slow_calls, opens, probes_in_flight) = (sum.slow_calls, sum.opens, sum.probes_in_flight);
            let (would_reject, hung_calls) = (sum.would_reject, sum.hung_calls);
            let consecutive_failures = sum.consecutive_failures.max(m.consecutive_failures);
            let reject_probability = sum.reject_probability.max(m.reject_probability);
            if m.state.severity() > sum.state.severity() {
                *sum = m.clone();
            }
            sum.successes = successes + m.successes;
            sum.failures = failures + m.failures;
            sum.ignored = ignored + m.ignored;
            sum.rejected = rejected + m.rejected;
            sum.slow_calls = slow_calls + m.slow_calls;
            sum.opens = opens + m.opens;
            sum.probes_in_flight = probes_in_flight + m.probes_in_flight;
            sum.would_reject = would_reject + m.would_reject;
            sum.hung_calls = hung_calls + m.hung_calls;
            sum.consecutive_failures = consecutive_failures;
            sum.reject_probability = reject_probability;
        });
        sum
    }

    /// Each host's state, sorted by host; empty with one breaker.
    pub(crate) fn host_states(&self) -> Vec<(String, State)> {
        let mut states = self.hosts().map(BreakerBox::states).unwrap_or_default();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }
}

/// Builds a per-host family, its errors named by this crate's settings (`max_hosts`,
/// `host_idle_timeout`).
pub(crate) fn family(builder: BreakerBoxBuilder<String>) -> Result<BreakerBox<String>, ConfigError> {
    builder.build().map_err(|e| {
        let field = match e.field() {
            "max_breakers" => "max_hosts",
            "idle_timeout" => "host_idle_timeout",
            other => other,
        };
        ConfigError::new(field, format_args!("{}", e.value()), e.expected())
    })
}

#[cfg(feature = "tower")]
impl Breakers<Infallible> {
    /// The family of breakers that is per host by its type.
    pub(crate) fn family(&self) -> &BreakerBox<String> {
        match self {
            Self::One(never) => match *never {},
            Self::PerHost(family) => family,
        }
    }
}

#[cfg(test)]
mod tests {
    use breakerbox::Policy;

    use super::*;

    fn host(uri: &str) -> Host<'_> {
        Host::of_uri(Box::leak(Box::new(uri.parse::<http::Uri>().unwrap()))).unwrap()
    }

    #[test]
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    fn one_breaker_guards_every_request_and_a_family_only_those_with_a_host() {
        let one: Breakers = Breakers::One(Breaker::new());
        assert!(one.guard(None).is_some_and(|b| b.same_as(one.single().unwrap())));
        assert!(one.get(host("http://a/")).same_as(&one.get(host("https://b:8443/"))));

        let hosts: Breakers = Breakers::PerHost(BreakerBox::new(Breaker::builder().name("h")).unwrap());
        assert!(hosts.guard(None).is_none());
        let a = hosts.guard(Some(host("http://A:80/x"))).unwrap();
        assert_eq!(a.name(), "h/http://a:80");
        assert!(a.same_as(&hosts.get(host("http://a/"))), "one host, one key, one breaker");
        assert!(!a.same_as(&hosts.get(host("https://a/"))));
    }

    #[test]
    fn a_family_reports_its_worst_host_and_sums_its_counters() {
        let template = Breaker::builder().name("h").policy(Policy::consecutive_failures(1));
        let hosts: Breakers = Breakers::PerHost(BreakerBox::new(template).unwrap());
        assert_eq!(hosts.state(), State::Closed);
        assert!(hosts.metrics().is_none(), "no host yet");
        hosts.get(host("http://up/")).try_acquire().unwrap().success();
        hosts.get(host("http://down/")).try_acquire().unwrap().failure();
        assert_eq!(hosts.state(), State::Open);
        let m = hosts.metrics().unwrap();
        assert_eq!((m.state, m.successes, m.failures, m.opens), (State::Open, 1, 1, 1));
        let states = hosts.host_states();
        assert_eq!(states, [("http://down:80".into(), State::Open), ("http://up:80".into(), State::Closed)]);
        hosts.reset();
        assert_eq!(hosts.state(), State::Closed);
    }
}
