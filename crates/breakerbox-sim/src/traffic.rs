//! Traffic: the calls a replay offers, in time order, and what the backend answers.
//!
//! Two sources implement [`Traffic`]: a named [`Scenario`] (a caller model and a
//! backend model) and a recorded trace ([`crate::recorded`]). The replay asks for the
//! next arrival, offers it to the key's breaker, and asks for the backend's answer only
//! when the breaker admitted the call: a rejected call never reaches the backend, so a
//! stateful backend model (a brownout's quota, a hung probe's count) sees only the
//! calls that reached it.

use std::time::Duration;

use crate::SimError;
use crate::scenario::{Backend, Response, Scenario};

/// Whether the backend was in trouble when a call arrived, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Serving normally since this time (0 at the start).
    Fine {
        /// When the healthy span began.
        since: Duration,
    },
    /// In trouble (down, overloaded, too slow) since this time.
    Trouble {
        /// When the trouble began.
        since: Duration,
    },
}

impl Health {
    /// Whether this is [`Health::Trouble`].
    pub fn is_trouble(self) -> bool {
        matches!(self, Health::Trouble { .. })
    }
}

/// One call offered by a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// When it arrives, from the start of the run.
    pub at: Duration,
    /// Which breaker it goes through (0 for a single breaker), an index into
    /// [`Traffic::keys`].
    pub key: usize,
    /// Whether it would fail (or be shed) if it reached the backend: the ground truth
    /// that wasted calls and false rejections are counted against.
    pub failing: bool,
    /// The backend's health at `at`, for the time-based columns and the plot.
    pub health: Health,
    /// A trace's recorded answer (what [`Traffic::serve`] gives it); `None` for a
    /// scenario, whose backend model answers.
    pub recorded: Option<Response>,
}

/// A source of calls for a replay.
pub trait Traffic {
    /// The next call, in time order; `None` at the end.
    ///
    /// # Errors
    ///
    /// [`SimError`] for input that cannot be read (a trace's bad line when bad lines
    /// are fatal).
    fn next_arrival(&mut self) -> Result<Option<Arrival>, SimError>;

    /// The backend's answer to `arrival`, which the breaker admitted.
    fn serve(&mut self, arrival: &Arrival) -> Response;

    /// The names of the keys seen so far, indexed by [`Arrival::key`].
    fn keys(&self) -> &[String];

    /// Where the run ends: a scenario's length; `None` for a trace, which ends after
    /// its last call completes.
    fn end(&self) -> Option<Duration>;
}

/// A scenario as [`Traffic`]: its arrivals for `seconds`, its backend, its troubles.
#[derive(Debug)]
pub struct ScenarioTraffic {
    arrivals: crate::scenario::Arrivals,
    backend: Box<dyn Backend>,
    troubles: Vec<(Duration, Duration)>,
    /// The first trouble not yet wholly past.
    cursor: usize,
    seconds: Duration,
    keys: Vec<String>,
}

impl ScenarioTraffic {
    /// `scenario` for `seconds`, its randomness from `seed`.
    pub fn new(scenario: &Scenario, seconds: Duration, seed: u64) -> Self {
        let backend = scenario.backend(seed);
        let troubles = backend.troubles(seconds);
        Self {
            arrivals: scenario.load().arrival_times(seconds),
            backend,
            troubles,
            cursor: 0,
            seconds,
            keys: vec!["*".to_owned()],
        }
    }

    fn health(&mut self, at: Duration) -> Health {
        while self.troubles.get(self.cursor).is_some_and(|&(_, to)| at >= to) {
            self.cursor += 1;
        }
        match self.troubles.get(self.cursor) {
            Some(&(from, _)) if at >= from => Health::Trouble { since: from },
            _ => Health::Fine { since: self.cursor.checked_sub(1).map_or(Duration::ZERO, |i| self.troubles[i].1) },
        }
    }
}

impl Traffic for ScenarioTraffic {
    fn next_arrival(&mut self) -> Result<Option<Arrival>, SimError> {
        let Some(at) = self.arrivals.next() else { return Ok(None) };
        let health = self.health(at);
        Ok(Some(Arrival { at, key: 0, failing: health.is_trouble(), health, recorded: None }))
    }

    fn serve(&mut self, arrival: &Arrival) -> Response {
        self.backend.call(arrival.at)
    }

    fn keys(&self) -> &[String] {
        &self.keys
    }

    fn end(&self) -> Option<Duration> {
        Some(self.seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Kind;

    #[test]
    fn health_follows_the_troubles() {
        let mut t = ScenarioTraffic::new(&Scenario::new(Kind::Flapping), Duration::from_secs(30), 1);
        let s = Duration::from_secs;
        assert_eq!(t.health(s(5)), Health::Fine { since: s(0) });
        assert_eq!(t.health(s(12)), Health::Trouble { since: s(10) });
        assert_eq!(t.health(s(17)), Health::Fine { since: s(15) });
        assert_eq!(t.health(s(21)), Health::Trouble { since: s(20) });
    }
}
