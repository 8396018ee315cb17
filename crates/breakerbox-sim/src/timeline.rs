//! What happened per interval of a replay, in bounded memory: the data of the plot.
//!
//! A [`Timeline`] holds at most `max_buckets` [`Bucket`]s. It starts with fine
//! intervals (125 ms) and, when a replay runs past its last bucket, merges neighbours
//! pairwise and doubles the interval. So a run of any length, even a trace whose end
//! is not known until it is read, ends with between `max_buckets / 2` and
//! `max_buckets` buckets, every one covering the same span, and every count exact
//! (merging only adds).
//!
//! Time in each state is kept as breaker-nanoseconds: with one breaker per key, a
//! bucket in which two of ten breakers were open for all of it holds 20 % of its
//! breaker-time in [`State::Open`]; [`Bucket::share`] reads it that way.

use std::time::Duration;

use breakerbox::State;

/// The states in the order of [`Bucket::state_nanos`]: by
/// [`State::severity`], from the least traffic kept out to the most.
pub const STATES: [State; 6] =
    [State::Disabled, State::Closed, State::Recovering, State::HalfOpen, State::Open, State::ForcedOpen];

/// The index of `state` in [`STATES`]: its severity (the core's own order, so that a
/// state added there has a place here).
pub fn state_index(state: State) -> usize {
    usize::from(state.severity()).min(STATES.len() - 1)
}

/// The counts of one interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Calls that arrived.
    pub offered: u64,
    /// Calls that arrived while the backend was in trouble (the ground truth).
    pub offered_in_trouble: u64,
    /// Calls the breaker admitted: the backend's load.
    pub admitted: u64,
    /// Admitted calls that the backend failed (the wasted ones).
    pub failing: u64,
    /// Calls the breaker rejected.
    pub rejected: u64,
    /// Calls that completed with a success in this interval.
    pub successes: u64,
    /// The most calls in flight at the backend at once.
    pub peak_in_flight: u64,
    /// Breaker-nanoseconds spent in each state, in the order of [`STATES`].
    pub state_nanos: [u64; 6],
}

impl Bucket {
    fn absorb(&mut self, other: &Bucket) {
        self.offered += other.offered;
        self.offered_in_trouble += other.offered_in_trouble;
        self.admitted += other.admitted;
        self.failing += other.failing;
        self.rejected += other.rejected;
        self.successes += other.successes;
        self.peak_in_flight = self.peak_in_flight.max(other.peak_in_flight);
        for (mine, theirs) in self.state_nanos.iter_mut().zip(other.state_nanos) {
            *mine += theirs;
        }
    }

    /// The share of this interval's breaker-time spent in `state`, from 0 to 1 (0 when
    /// no time was recorded).
    pub fn share(&self, state: State) -> f64 {
        let total: u64 = self.state_nanos.iter().sum();
        if total == 0 { 0.0 } else { self.state_nanos[state_index(state)] as f64 / total as f64 }
    }

    /// The state with the most time in this interval; `None` when none was recorded.
    pub fn dominant(&self) -> Option<State> {
        let (i, &nanos) = self.state_nanos.iter().enumerate().max_by_key(|(i, n)| (**n, usize::MAX - *i))?;
        (nanos > 0).then_some(STATES[i])
    }

    /// Whether any call offered in this interval met a backend in trouble (with one
    /// breaker per key, a key's trouble is the trouble of one backend among several;
    /// the trace's own judgement, by key and by second, already filters lone errors).
    pub fn in_trouble(&self) -> bool {
        self.offered_in_trouble > 0
    }
}

/// Per-interval counts of one replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    interval_nanos: u64,
    max_buckets: usize,
    buckets: Vec<Bucket>,
    end: Duration,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BUCKETS)
    }
}

impl Timeline {
    /// The buckets a plot gets by default: enough for a line to follow an opening
    /// (a minute in 500 ms steps), few enough that each holds several calls at the
    /// rates of a trace, so the lines do not saw-tooth.
    pub const DEFAULT_BUCKETS: usize = 160;
    /// 125 ms, so that every interval from 1 s up is a whole number of seconds: an
    /// access log's times are whole seconds, and a 0.8 s interval would alias them.
    const FIRST_INTERVAL: u64 = 125_000_000;

    /// An empty timeline of at most `max_buckets` (at least 2) buckets.
    pub fn new(max_buckets: usize) -> Self {
        Self {
            interval_nanos: Self::FIRST_INTERVAL,
            max_buckets: max_buckets.max(2),
            buckets: Vec::new(),
            end: Duration::ZERO,
        }
    }

    /// The span of every bucket.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// The buckets, the first starting at 0.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The latest time recorded: where the plot's time axis ends.
    pub fn end(&self) -> Duration {
        self.end
    }

    /// Marks the end of the replay (for a run that ends after its last event).
    pub fn close(&mut self, at: Duration) {
        self.bucket(at);
    }

    /// The bucket holding `at`, made (and the interval widened) as needed.
    pub fn bucket(&mut self, at: Duration) -> &mut Bucket {
        self.end = self.end.max(at);
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        let mut index = nanos / self.interval_nanos;
        while index >= self.max_buckets as u64 {
            self.widen();
            index = nanos / self.interval_nanos;
        }
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::default());
        }
        &mut self.buckets[index]
    }

    /// Adds `breakers` breaker-spans in `state` over `from..to`, split across buckets.
    pub fn add_state_time(&mut self, state: State, breakers: u64, from: Duration, to: Duration) {
        if breakers == 0 || to <= from {
            return;
        }
        let i = state_index(state);
        let mut t = u64::try_from(from.as_nanos()).unwrap_or(u64::MAX);
        let to = u64::try_from(to.as_nanos()).unwrap_or(u64::MAX);
        // Widen first, so that the interval does not change inside the loop.
        self.bucket(Duration::from_nanos(to - 1));
        while t < to {
            let bucket_end = (t / self.interval_nanos + 1) * self.interval_nanos;
            let upto = bucket_end.min(to);
            self.bucket(Duration::from_nanos(t)).state_nanos[i] += (upto - t) * breakers;
            t = upto;
        }
    }

    fn widen(&mut self) {
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0].clone();
                if let Some(second) = pair.get(1) {
                    b.absorb(second);
                }
                b
            })
            .collect();
        self.buckets = merged;
        self.interval_nanos *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_long_run_widens_the_interval_and_keeps_every_count() {
        let mut t = Timeline::new(10);
        for i in 0..1000 {
            t.bucket(ms(i * 10)).offered += 1;
        }
        // 10 s in at most 10 buckets: 1 s each (125 ms doubled 3 times).
        assert_eq!(t.interval(), ms(1000));
        assert!(t.buckets().len() <= 10);
        assert_eq!(t.buckets().iter().map(|b| b.offered).sum::<u64>(), 1000);
        assert_eq!(t.buckets()[0].offered, 100);
    }

    #[test]
    fn state_time_is_split_across_buckets() {
        let mut t = Timeline::new(100);
        t.add_state_time(State::Open, 2, ms(75), ms(300));
        let b = t.buckets();
        let open = state_index(State::Open);
        assert_eq!(b[0].state_nanos[open], 2 * 50_000_000);
        assert_eq!(b[1].state_nanos[open], 2 * 125_000_000);
        assert_eq!(b[2].state_nanos[open], 2 * 50_000_000);
        t.add_state_time(State::Closed, 1, ms(125), ms(250));
        assert!((t.buckets()[1].share(State::Open) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(t.buckets()[1].dominant(), Some(State::Open));
    }

    #[test]
    fn peaks_merge_as_a_maximum() {
        let mut t = Timeline::new(2);
        t.bucket(ms(0)).peak_in_flight = 3;
        t.bucket(ms(150)).peak_in_flight = 5;
        t.bucket(ms(300));
        assert_eq!(t.buckets()[0].peak_in_flight, 5);
        assert!(!t.buckets()[0].in_trouble());
    }
}
