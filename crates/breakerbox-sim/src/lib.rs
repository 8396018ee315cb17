//! A what-if simulator for breakerbox: replays named failure scenarios, or recorded
//! traces, through one or more breaker configs in virtual time and compares what each
//! did, as a table and as a plot.
//!
//! Every call goes through the real [`breakerbox::Breaker`], built from a
//! [`BreakerConfig`](breakerbox::config::BreakerConfig) on a
//! [`ManualClock`](breakerbox::ManualClock) that the replay advances from event to
//! event: arrivals, and completions after each call's latency (calls overlap, and an
//! admitted call holds its permit until it completes). A rejected call never reaches
//! the backend. Traffic comes from a [`Traffic`](traffic::Traffic): a [`Scenario`]
//! (a caller model and a backend model) or a recorded trace ([`trace`] reads CSV and
//! access logs, [`recorded`] replays them, one breaker per key). The replay keeps no
//! list of calls: memory is bounded by the calls in flight (and, for a trace, one
//! second of calls and the reorder window), so a trace of any length streams.
//!
//! ```
//! use std::time::Duration;
//! use breakerbox_sim::{Contender, Scenario, replay};
//!
//! let outage = Scenario::named("outage")?;
//! let s = replay(&outage, &Contender::default_breaker(), Duration::from_secs(60), 1)?;
//! assert!(s.wasted < 10, "the default breaker opens after 5 failures");
//! # Ok::<(), breakerbox_sim::SimError>(())
//! ```
//!
//! # Scenarios
//!
//! Every scenario takes `rate` (calls offered per second; 20, 150 for `brownout`),
//! `ramp-to` (calls per second at the end of the run, rising linearly; 0: a fixed
//! rate) and `latency` (a healthy call's, 20 ms). Durations are written `10s`,
//! `250ms` or as bare seconds.
//!
//! | scenario | shape | parameters (defaults) |
//! |---|---|---|
//! | `outage` | healthy, then every call fails, then healthy | `start` 10s, `duration` 20s, `error-latency` 50ms |
//! | `brownout` | only the first `capacity` calls of each second served, the rest shed as overloaded ([`Report::overloaded`](breakerbox::Report::overloaded)) | `start` 10s, `duration` 30s, `capacity` 50, `error-latency` 5ms |
//! | `slow` | latency rises linearly to `peak` over `rise`; failing while above `threshold`; every call succeeds | `start` 10s, `duration` 30s, `rise` 10s, `peak` 5s, `threshold` 1s |
//! | `flapping` | down for `down`, up for `up`, from `start` on | `start` 10s, `down` 5s, `up` 5s, `error-latency` 50ms |
//! | `noise` | always healthy; each call fails with probability `failure-rate`, drawn from `--seed` | `failure-rate` 0.1 |
//! | `hung-probe` | an outage, after which the first `hung-calls` calls hang for `hang` and time out (overloaded) | `start` 10s, `duration` 20s, `error-latency` 50ms, `hung-calls` 3, `hang` 60s |
//! | `cancelling` | calls take `slow-latency`; callers give up at `deadline` and drop the call unreported (a cancelled future); failing while `slow-latency` > `deadline` | `start` 10s, `duration` 20s, `slow-latency` 10s, `deadline` 2s |
//!
//! A load that rises (a ramp of traffic) is `--ramp-to` on any scenario.//!
//! # Outputs
//!
//! See [`Summary`]: calls offered, reached, wasted (reached the backend while it was
//! failing), rejected, false rejections (rejected while it was healthy), successes,
//! the time to the first rejection after the (first) trouble began, the recovery lag,
//! opens, the most probes in flight at once, and goodput; as a text table, JSON or CSV
//! ([`Format`]). With `--plot FILE.svg`, a [`timeline`] per config drawn by [`plot`]:
//! one panel each on a shared time axis, with the breaker's state band, the backend's
//! trouble shaded, and calls per second admitted, rejected, failing and served.
//!
//! # Determinism
//!
//! A replay is a pure function of the scenario, the config and the seed, except for
//! two draws the core makes itself: open-wait jitter (seeded per breaker from a
//! process-wide sequence) and the throttle's (a per-thread generator). The binary
//! replays its configs in order on one thread, so its output is the same from run to
//! run for those too.

mod cli;
pub mod plot;
pub mod recorded;
mod replay;
mod report;
pub mod scenario;
pub mod timeline;
pub mod trace;
pub mod traffic;

use std::fmt;

pub use cli::{Cli, USAGE, load_config, parse_args, run_cli};
pub use replay::{Contender, Summary, replay, replay_timeline, run};
pub use report::{Format, Replayed, render};
pub use scenario::{Backend, Kind, Load, Reply, Response, Scenario};

/// An error with a message that names the flag, file or key at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimError(pub String);

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}
