//! The replay: arrivals and completions in virtual time, through the real breaker.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use breakerbox::config::BreakerConfig;
use breakerbox::{ManualClock, OwnedPermit, Report};
use serde::Serialize;

use crate::SimError;
use crate::scenario::{Reply, Scenario};

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
    /// Times the breaker opened.
    pub opens: u64,
    /// Successes per second of the run.
    pub goodput: f64,
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
    let clock = ManualClock::new();
    let breaker = match &contender.config {
        Some(config) => Some(
            config
                .builder()
                .clock(clock.clone())
                .build()
                .map_err(|e| SimError(format!("config `{}`: {e}", contender.name)))?,
        ),
        None => None,
    };
    let mut backend = scenario.backend(seed);
    let troubles = backend.troubles(seconds);
    let failing = |t: Duration| troubles.iter().any(|&(from, to)| t >= from && t < to);

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
        goodput: 0.0,
        trouble_goodput: 0.0,
    };
    let mut trouble_successes = 0u64;
    let mut rejections: Vec<Duration> = Vec::new();
    let mut admissions: Vec<Duration> = Vec::new();

    // Completions: (time, sequence) in a min-heap; the permit and report beside it.
    let mut due: BinaryHeap<Reverse<(Duration, u64)>> = BinaryHeap::new();
    // The permit, the report, whether it is a success, whether it arrived in trouble.
    let mut pending: HashMap<u64, (Option<OwnedPermit>, Report, bool, bool)> = HashMap::new();
    let mut seq = 0u64;

    let arrivals = scenario.load().arrivals(seconds);
    let mut next = arrivals.iter().copied().peekable();
    loop {
        let completion = due.peek().map(|Reverse((t, _))| *t).filter(|t| *t < seconds);
        let arrival = next.peek().copied();
        // A completion at the same instant as an arrival goes first.
        match (completion, arrival) {
            (Some(c), a) if a.is_none_or(|a| c <= a) => {
                let Some(Reverse((t, id))) = due.pop() else { break };
                clock.set(t);
                if let Some((permit, report, success, in_trouble)) = pending.remove(&id) {
                    if let Some(permit) = permit {
                        permit.record(report);
                    }
                    s.successes += u64::from(success);
                    trouble_successes += u64::from(success && in_trouble);
                }
            }
            (_, Some(t)) => {
                next.next();
                clock.set(t);
                s.offered += 1;
                let permit = match &breaker {
                    Some(b) => match b.try_acquire_owned() {
                        Ok(p) => Some(p),
                        Err(_) => {
                            s.rejected += 1;
                            s.false_rejections += u64::from(!failing(t));
                            rejections.push(t);
                            continue;
                        }
                    },
                    None => None,
                };
                s.reached += 1;
                s.wasted += u64::from(failing(t));
                admissions.push(t);
                let r = backend.call(t);
                let report = match r.reply {
                    Reply::Success => Report::success(),
                    Reply::Failure => Report::failure(),
                    Reply::Overloaded | Reply::Hang => Report::overloaded(),
                }
                .with_duration(r.latency);
                seq += 1;
                due.push(Reverse((t + r.latency, seq)));
                pending.insert(seq, (permit, report, r.reply == Reply::Success, failing(t)));
            }
            _ => break,
        }
    }
    clock.set(seconds);
    // Read before the calls still in flight are dropped: a permit dropped unreported
    // after `cancel_counts_after` counts as a failure, which could reopen the breaker.
    s.opens = breaker.as_ref().map_or(0, |b| b.metrics().opens);
    drop(pending);

    if let Some(&(from, to)) = troubles.first() {
        s.first_rejection_s = rejections.iter().find(|t| **t >= from && **t < to).map(|t| (*t - from).as_secs_f64());
        if to < seconds {
            let horizon = troubles.get(1).map_or(seconds, |n| n.0);
            let last = rejections.iter().rev().find(|t| **t >= to && **t < horizon);
            s.recovery_lag_s = Some(match last {
                None => 0.0,
                Some(&last) => {
                    let back = admissions.iter().find(|t| **t > last && **t < horizon).copied().unwrap_or(horizon);
                    (back - to).as_secs_f64()
                }
            });
        }
    }
    s.goodput = s.successes as f64 / seconds.as_secs_f64().max(f64::MIN_POSITIVE);
    let trouble_time: f64 = troubles.iter().map(|(from, to)| (*to - *from).as_secs_f64()).sum();
    if trouble_time > 0.0 {
        s.trouble_goodput = trouble_successes as f64 / trouble_time;
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
