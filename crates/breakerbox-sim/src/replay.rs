//! The replay: arrivals and completions in virtual time, through the real breaker.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use breakerbox::config::BreakerConfig;
use breakerbox::{Breaker, ManualClock, OwnedPermit, Report, State};
use serde::Serialize;

use crate::SimError;
use crate::scenario::{Reply, Scenario};
use crate::timeline::{STATES, Timeline, state_index};
use crate::traffic::{Health, ScenarioTraffic, Traffic};

/// One thing being compared: a breaker config, or no breaker at all.
#[derive(Clone, Debug, PartialEq)]
pub struct Contender {
    /// Its name in the table (a config's `name`, its file's stem, or `default`).
    pub name: String,
    /// The breaker's settings; `None`: no breaker, every call reaches the backend.
    pub config: Option<BreakerConfig>,
}

impl Contender {
    /// A breaker built from `config`.
    pub fn breaker(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self { name: name.into(), config: Some(config) }
    }

    /// The core's default breaker.
    pub fn default_breaker() -> Self {
        Self::breaker("default", BreakerConfig::default())
    }

    /// No breaker.
    pub fn none() -> Self {
        Self { name: "none".into(), config: None }
    }
}

/// What one contender did in one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The contender's name.
    pub name: String,
    /// Calls offered by the caller.
    pub offered: u64,
    /// Calls the breaker admitted: they reached the backend.
    pub reached: u64,
    /// Calls that reached the backend while it was failing.
    pub wasted: u64,
    /// Calls the breaker rejected.
    pub rejected: u64,
    /// Calls rejected while the backend was healthy.
    pub false_rejections: u64,
    /// Calls that succeeded (completed within the run).
    pub successes: u64,
    /// From the start of the first trouble to the first rejection during it, in
    /// seconds; `None` when nothing was rejected during it (or there was no trouble).
    pub first_rejection_s: Option<f64>,
    /// From the end of the first trouble to the first call admitted after the last
    /// rejection before the next trouble (0 when nothing was rejected then), in
    /// seconds; `None` when the run has no recovery. Up to the next trouble (or the
    /// end) when the breaker never admits again.
    pub recovery_lag_s: Option<f64>,
    /// Times the breaker opened (summed over the breakers, one per key).
    pub opens: u64,
    /// The most half-open trial calls (probes) in flight at once.
    pub peak_probes: u64,
    /// Successes per second of the run.
    pub goodput: f64,
    /// The virtual time replayed, in seconds: a scenario's length, or a trace's span.
    pub seconds: f64,
    /// Successes per second of the calls that arrived while the backend was failing
    /// (0 when it never was): what a brownout still served.
    pub trouble_goodput: f64,
}

/// Replays `scenario` for `seconds` through `contender`'s breaker on a [`ManualClock`].
///
/// Calls arrive as the scenario's load says. An admitted call holds an
/// [`OwnedPermit`] until it completes, after the latency the backend gave it, and is
/// reported then; a rejected call never reaches the backend. Deterministic for a seed,
/// unless the config uses open-wait jitter or a throttle, whose draws the core seeds
/// per process and per thread.
///
/// # Errors
///
/// [`SimError`] when the config does not build (naming the contender and the key).
pub fn replay(scenario: &Scenario, contender: &Contender, seconds: Duration, seed: u64) -> Result<Summary, SimError> {
    run(&mut ScenarioTraffic::new(scenario, seconds, seed), contender, None)
}

/// [`replay`], also recording what happened per interval, for a plot.
///
/// # Errors
///
/// As [`replay`].
pub fn replay_timeline(
    scenario: &Scenario,
    contender: &Contender,
    seconds: Duration,
    seed: u64,
) -> Result<(Summary, Timeline), SimError> {
    let mut timeline = Timeline::default();
    let s = run(&mut ScenarioTraffic::new(scenario, seconds, seed), contender, Some(&mut timeline))?;
    Ok((s, timeline))
}

/// A call in flight, in its slot of [`Flights`] until it is due back.
struct InFlight {
    permit: Option<OwnedPermit>,
    /// `None`: the caller cancels when it is due, dropping the permit unreported.
    report: Option<Report>,
    success: bool,
    /// Whether it arrived in trouble, on the key the time-based columns follow.
    in_trouble: bool,
    probe: bool,
}

/// The calls in flight: a min-heap of small `(due, sequence, slot)` keys over a slab
/// of slots reused through a free list. Sifting 24-byte keys, not the permits and
/// reports themselves, is what makes a completion cheap.
#[derive(Default)]
struct Flights {
    due: BinaryHeap<Reverse<(Duration, u64, u32)>>,
    slots: Vec<Option<InFlight>>,
    free: Vec<u32>,
    seq: u64,
}

impl Flights {
    fn len(&self) -> usize {
        self.due.len()
    }

    fn next_due(&self) -> Option<Duration> {
        self.due.peek().map(|Reverse((t, _, _))| *t)
    }

    fn push(&mut self, due: Duration, call: InFlight) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(call);
                i
            }
            None => {
                self.slots.push(Some(call));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.seq += 1;
        // Equal due times complete in admission order.
        self.due.push(Reverse((due, self.seq, slot)));
    }

    fn pop(&mut self) -> Option<(Duration, InFlight)> {
        let Reverse((due, _, slot)) = self.due.pop()?;
        self.free.push(slot);
        Some((due, self.slots.get_mut(slot as usize)?.take()?))
    }
}

/// The time-based columns, computed as the replay goes (no list of events is kept, so
/// a trace of any length replays in bounded memory).
#[derive(Debug, Default)]
struct Recovery {
    /// The first trouble's start and, once it is over, its end.
    first: Option<(Duration, Option<Duration>)>,
    first_rejection: Option<Duration>,
    /// After the first trouble: the last rejection, and the first admission after it.
    last_rejection: Option<Duration>,
    back: Option<Duration>,
    /// Set once the next trouble (or the end) closes the recovery window.
    lag: Option<Duration>,
    /// The trouble being lived now, and the total of the past ones.
    trouble_since: Option<Duration>,
    trouble_time: Duration,
}

impl Recovery {
    fn health(&mut self, health: Health) {
        match health {
            Health::Trouble { since } => {
                match self.first {
                    None => self.first = Some((since, None)),
                    Some((_, Some(_))) if self.trouble_since.is_none() => self.close(since),
                    _ => {}
                }
                self.trouble_since.get_or_insert(since);
            }
            Health::Fine { since } => {
                if let Some(from) = self.trouble_since.take() {
                    self.trouble_time += since.saturating_sub(from);
                }
                if let Some((from, to @ None)) = &mut self.first
                    && since >= *from
                {
                    *to = Some(since);
                }
            }
        }
    }

    /// The recovery window ends at `horizon`.
    fn close(&mut self, horizon: Duration) {
        if let (Some((_, Some(to))), None) = (self.first, self.lag) {
            self.lag = Some(match self.last_rejection {
                None => Duration::ZERO,
                Some(_) => self.back.unwrap_or(horizon).saturating_sub(to),
            });
        }
    }

    fn recovering(&self) -> bool {
        matches!(self.first, Some((_, Some(_)))) && self.lag.is_none() && self.trouble_since.is_none()
    }

    fn rejected(&mut self, at: Duration) {
        match self.first {
            Some((from, None)) if self.first_rejection.is_none() => self.first_rejection = Some(at - from),
            _ if self.recovering() => {
                self.last_rejection = Some(at);
                self.back = None;
            }
            _ => {}
        }
    }

    fn admitted(&mut self, at: Duration) {
        if self.recovering() && self.last_rejection.is_some() && self.back.is_none() {
            self.back = Some(at);
        }
    }

    fn finish(&mut self, end: Duration) {
        self.close(end);
        if let Some(from) = self.trouble_since.take() {
            self.trouble_time += end.saturating_sub(from);
        }
    }
}

/// The breakers of one contender, one per key, and the time each spends per state.
struct Breakers<'a> {
    contender: &'a Contender,
    clock: ManualClock,
    each: Vec<Breaker>,
    /// The state each breaker was last seen in, and how many are in each state.
    seen: Vec<State>,
    counts: [u64; 6],
    /// Where state time was last accounted up to.
    since: Duration,
}

impl<'a> Breakers<'a> {
    fn new(contender: &'a Contender, clock: ManualClock) -> Self {
        Self { contender, clock, each: Vec::new(), seen: Vec::new(), counts: [0; 6], since: Duration::ZERO }
    }

    fn get(&mut self, key: usize) -> Result<Option<&Breaker>, SimError> {
        let Some(config) = &self.contender.config else { return Ok(None) };
        while self.each.len() <= key {
            let b = config
                .builder()
                .clock(self.clock.clone())
                .build()
                .map_err(|e| SimError(format!("config `{}`: {e}", self.contender.name)))?;
            self.seen.push(b.state());
            self.counts[state_index(b.state())] += 1;
            self.each.push(b);
        }
        Ok(self.each.get(key))
    }

    /// Accounts state time up to `now`, then notes `key`'s state after an event.
    fn observe(&mut self, timeline: &mut Option<&mut Timeline>, now: Duration, key: Option<usize>) {
        let Some(timeline) = timeline else { return };
        for (i, &n) in self.counts.iter().enumerate() {
            timeline.add_state_time(STATES[i], n, self.since, now);
        }
        self.since = now;
        if let Some(k) = key
            && let Some(b) = self.each.get(k)
        {
            let state = b.state();
            if state != self.seen[k] {
                self.counts[state_index(self.seen[k])] -= 1;
                self.counts[state_index(state)] += 1;
                self.seen[k] = state;
            }
        }
    }

    fn opens(&self) -> u64 {
        self.each.iter().map(|b| b.metrics().opens).sum()
    }
}

/// Replays `traffic` through `contender` (one breaker per key, all on one
/// [`ManualClock`]), recording into `timeline` when one is given.
///
/// # Errors
///
/// [`SimError`] when the config does not build, or the traffic cannot be read.
pub fn run(
    traffic: &mut dyn Traffic,
    contender: &Contender,
    mut timeline: Option<&mut Timeline>,
) -> Result<Summary, SimError> {
    let clock = ManualClock::new();
    let mut breakers = Breakers::new(contender, clock.clone());
    // Built now, so that a bad config is an error even for an empty trace.
    breakers.get(0)?;
    let end = traffic.end();
    let mut s = Summary {
        name: contender.name.clone(),
        offered: 0,
        reached: 0,
        wasted: 0,
        rejected: 0,
        false_rejections: 0,
        successes: 0,
        first_rejection_s: None,
        recovery_lag_s: None,
        opens: 0,
        peak_probes: 0,
        goodput: 0.0,
        seconds: 0.0,
        trouble_goodput: 0.0,
    };
    let mut recovery = Recovery::default();
    let mut trouble_successes = 0u64;
    let mut followed: Option<usize> = None;
    let mut in_flight = Flights::default();
    let (mut probes, mut last) = (0u64, Duration::ZERO);

    let mut next = traffic.next_arrival()?;
    loop {
        let completion = in_flight.next_due().filter(|t| end.is_none_or(|end| *t < end));
        // A completion at the same instant as an arrival goes first.
        match (completion, next) {
            (Some(due), a) if a.is_none_or(|a| due <= a.at) => {
                let Some((_, c)) = in_flight.pop() else { break };
                clock.set(due);
                last = last.max(due);
                breakers.observe(&mut timeline, due, None);
                if let (Some(permit), Some(report)) = (c.permit, c.report) {
                    permit.record(report);
                }
                s.successes += u64::from(c.success);
                trouble_successes += u64::from(c.success && c.in_trouble);
                probes -= u64::from(c.probe);
                if let Some(t) = &mut timeline {
                    t.bucket(due).successes += u64::from(c.success);
                }
            }
            (_, Some(a)) => {
                next = traffic.next_arrival()?;
                clock.set(a.at);
                last = last.max(a.at);
                breakers.observe(&mut timeline, a.at, None);
                // The time-based columns follow the first key to get into trouble
                // (with one breaker, every call): another key's health says nothing
                // of that backend's recovery.
                if a.health.is_trouble() && followed.is_none() {
                    followed = Some(a.key);
                }
                let follow = followed.is_none_or(|k| k == a.key);
                if follow {
                    recovery.health(a.health);
                }
                s.offered += 1;
                let permit = match breakers.get(a.key)? {
                    Some(b) => match b.try_acquire_owned() {
                        Ok(p) => Some(p),
                        Err(_) => {
                            s.rejected += 1;
                            s.false_rejections += u64::from(!a.failing);
                            if follow {
                                recovery.rejected(a.at);
                            }
                            breakers.observe(&mut timeline, a.at, Some(a.key));
                            if let Some(t) = &mut timeline {
                                let b = t.bucket(a.at);
                                b.offered += 1;
                                b.offered_in_trouble += u64::from(a.health.is_trouble());
                                b.rejected += 1;
                            }
                            continue;
                        }
                    },
                    None => None,
                };
                let probe = permit.as_ref().is_some_and(|p| p.admitted_in() == State::HalfOpen);
                probes += u64::from(probe);
                s.peak_probes = s.peak_probes.max(probes);
                s.reached += 1;
                s.wasted += u64::from(a.failing);
                if follow {
                    recovery.admitted(a.at);
                }
                let r = traffic.serve(&a);
                let report = match r.reply {
                    Reply::Success => Some(Report::success()),
                    Reply::Failure => Some(Report::failure()),
                    Reply::Overloaded | Reply::Hang => Some(Report::overloaded()),
                    Reply::Ignored => Some(Report::ignored()),
                    Reply::Cancelled => None,
                }
                .map(|report| report.with_duration(r.latency));
                in_flight.push(
                    a.at + r.latency,
                    InFlight {
                        permit,
                        report,
                        success: r.reply == Reply::Success,
                        in_trouble: follow && a.health.is_trouble(),
                        probe,
                    },
                );
                breakers.observe(&mut timeline, a.at, Some(a.key));
                if let Some(t) = &mut timeline {
                    let b = t.bucket(a.at);
                    b.offered += 1;
                    b.offered_in_trouble += u64::from(a.health.is_trouble());
                    b.admitted += 1;
                    b.failing += u64::from(a.failing);
                    b.peak_in_flight = b.peak_in_flight.max(in_flight.len() as u64);
                }
            }
            _ => break,
        }
    }
    let end = end.unwrap_or(last);
    clock.set(end);
    breakers.observe(&mut timeline, end, None);
    if let Some(t) = &mut timeline {
        t.close(end);
    }
    // Read before the calls still in flight are dropped: a permit dropped unreported
    // after `cancel_counts_after` counts as a failure, which could reopen the breaker.
    s.opens = breakers.opens();
    drop(in_flight);

    recovery.finish(end);
    s.first_rejection_s = recovery.first_rejection.map(|d| d.as_secs_f64());
    s.recovery_lag_s = recovery.lag.map(|d| d.as_secs_f64());
    s.seconds = end.as_secs_f64();
    s.goodput = s.successes as f64 / end.as_secs_f64().max(f64::MIN_POSITIVE);
    if !recovery.trouble_time.is_zero() {
        s.trouble_goodput = trouble_successes as f64 / recovery.trouble_time.as_secs_f64();
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Kind;

    #[test]
    fn no_breaker_lets_every_call_through() {
        let s = replay(&Scenario::new(Kind::Outage), &Contender::none(), Duration::from_secs(60), 1).unwrap();
        assert_eq!(s.offered, 1200);
        assert_eq!(s.reached, s.offered);
        assert_eq!(s.rejected, 0);
        // 20 s down at 20 calls/s.
        assert_eq!(s.wasted, 400);
        assert_eq!(s.opens, 0);
        assert_eq!(s.first_rejection_s, None);
        assert_eq!(s.recovery_lag_s, Some(0.0));
    }

    #[test]
    fn permits_are_held_until_completion() {
        // Every call hangs: with one probe slot, a half-open breaker rejects the calls
        // that arrive while the probe is in flight.
        let mut sc = Scenario::new(Kind::HungProbe);
        sc.set("hung-calls", "1000").unwrap();
        let s = replay(&sc, &Contender::default_breaker(), Duration::from_secs(60), 1).unwrap();
        // Open at ~10.25 s, half-open at ~40.25 s: the probe hangs 60 s, past the end.
        assert_eq!(s.successes, 200, "only the calls before the outage succeed");
        assert!(s.reached <= 200 + 5 + 1, "{s:?}");
    }

    #[test]
    fn a_bad_config_names_the_key() {
        let config: BreakerConfig = toml::from_str("failure_rate = { threshold = 1.5 }").unwrap();
        let e = replay(&Scenario::new(Kind::Outage), &Contender::breaker("bad", config), Duration::from_secs(1), 1)
            .unwrap_err();
        assert!(e.0.contains("bad") && e.0.contains("threshold"), "{e}");
    }
}
