//! The breakers of the real-time benches (`brownout.rs`, `scorecard.rs`), each built once
//! here in its closest configuration to breakerbox's defaults (5 consecutive failures,
//! one half-open probe), with the open wait the bench asks for, and the counters that
//! tell how many times each opened. Each bench wraps them around its own backend (sync
//! threads in `brownout.rs`, tokio tasks in `scorecard.rs`). `core.rs` builds its own
//! (one-hour waits, thresholds no run reaches).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use std::time::Duration;

use breakerbox::{Breaker, OpenWait, Policy, Throttle};

/// A counter of openings, for the peers that report their transitions by callback.
#[derive(Clone, Debug, Default)]
pub(crate) struct Opens(Arc<AtomicU64>);

impl Opens {
    pub(crate) fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed))
    }
}

impl failsafe::Instrument for Opens {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.inc();
    }
    fn on_half_open(&self) {}
    fn on_closed(&self) {}
}

/// Openings of a breaker that reports none (recloser), counted from outside: the first
/// rejection after a call went through. Exact while an open wait outlasts the line (no
/// half-open); otherwise a lower bound or near it, as two callers can race at the switch.
#[derive(Debug, Default)]
pub(crate) struct SeenOpens {
    rejecting: AtomicBool,
    opens: AtomicU64,
}

impl SeenOpens {
    pub(crate) fn sent(&self) {
        self.rejecting.store(false, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self) {
        if !self.rejecting.swap(true, Ordering::Relaxed) {
            self.opens.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.opens.load(Ordering::Relaxed))
    }
}

/// breakerbox with adaptive throttling at its defaults (k = 2) over `window`, and a
/// classic rule that a brownout held at k = 2 (about half the calls that reach the
/// backend fail) does not trip but a dead backend does. The bench reports a 503 as
/// `Report::overloaded()`.
pub(crate) fn breakerbox_throttle(window: Duration, open_wait: Duration) -> Breaker {
    Breaker::builder()
        .throttle(Throttle::new().window(window))
        .policy(Policy::failure_rate(0.9).over_calls(100).min_calls(100))
        .open_wait(OpenWait::fixed(open_wait))
        .build()
        .expect("valid breakerbox config")
}

/// failsafe with its consecutive-failure policy.
pub(crate) type Failsafe =
    failsafe::StateMachine<failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>, Opens>;

/// failsafe: 5 consecutive failures, a constant backoff of `open_wait`. (Its
/// `Config::new()` default also has a success-rate rule and a 10 s to 5 min jittered
/// backoff.) It has no probe limit: half-open, it admits every call until one fails.
pub(crate) fn failsafe(open_wait: Duration) -> (Failsafe, Opens) {
    let opens = Opens::default();
    let fs = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(5, failsafe::backoff::constant(open_wait)))
        .instrument(opens.clone())
        .build();
    (fs, opens)
}

/// breaker: 5 consecutive failures with its rate rule off, a fixed `open_wait`, one
/// half-open probe (its default is 3), as breakerbox's default.
pub(crate) fn breaker(open_wait: Duration) -> (breaker::CircuitBreaker, Opens) {
    let opens = Opens::default();
    let o = opens.clone();
    let config = breaker::CircuitBreakerConfig::builder()
        .consecutive_failures(5)
        .failure_rate_threshold(0.0)
        .backoff(breaker::BackoffStrategy::Fixed(open_wait))
        .half_open_max_calls(1)
        .build();
    let br = breaker::CircuitBreaker::builder(config)
        .on_state_change(move |_, to| {
            if to == breaker::State::Open {
                o.inc();
            }
        })
        .build();
    (br, opens)
}

/// tower-resilience-circuitbreaker: 5 consecutive failures (its `FailureModel`), open
/// for `open_wait`, one half-open probe (its default).
pub(crate) fn tower_resilience(open_wait: Duration) -> (tower_resilience_circuitbreaker::CircuitBreakerLayer, Opens) {
    use tower_resilience_circuitbreaker::{CircuitBreakerLayer, CircuitState};

    let opens = Opens::default();
    let o = opens.clone();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .wait_duration_in_open(open_wait)
        .on_state_transition(move |_, to| {
            if to == CircuitState::Open {
                o.inc();
            }
        })
        .build()
        .expect("valid tower-resilience config");
    (layer, opens)
}

/// seatbelt's breaker around `execute`, with what must live as long as it.
pub(crate) struct Seatbelt<S> {
    pub(crate) service: S,
    pub(crate) opens: Opens,
    /// The `tick` clock the breaker reads and its driver (which only timers need).
    pub(crate) clock: (tick::Clock, tick::runtime::ClockDriver),
}

/// seatbelt: its defaults (10 % failure rate over `sampling`, at least 100 calls) with a
/// `open_wait` break instead of its 5 s, and its single-probe half-open mode
/// (`HalfOpenMode::quick`, whose probe may be replaced after one break of silence); it
/// has no consecutive-failure rule. `Err` is a failure; a rejection is `Err("rejected")`.
pub(crate) fn seatbelt<F, Fut>(
    name: &'static str,
    open_wait: Duration,
    sampling: Duration,
    execute: F,
) -> Seatbelt<impl layered::Service<(), Out = Result<(), &'static str>> + Clone>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), &'static str>> + Send + 'static,
{
    use layered::{Execute, Stack};
    use seatbelt::breaker::{Breaker as SeatbeltBreaker, HalfOpenMode};
    use seatbelt::{RecoveryInfo, ResilienceContext};

    // As in `core.rs`: an activated system clock, whose driver only timers need.
    let (clock, driver) = tick::runtime::InactiveClock::default().activate(Waker::noop().clone());
    let context: ResilienceContext<(), Result<(), &'static str>> = ResilienceContext::new(&clock).name(name);
    let opens = Opens::default();
    let o = opens.clone();
    let service = (
        SeatbeltBreaker::layer(name, &context)
            .recovery_with(|r: &Result<(), &'static str>, _| match r {
                Ok(()) => RecoveryInfo::never(),
                Err(_) => RecoveryInfo::retry(),
            })
            .rejected_input_error(|_, _| "rejected")
            .break_duration(open_wait)
            .sampling_duration(sampling)
            .half_open_mode(HalfOpenMode::quick())
            .on_opened(move |_, _| o.inc()),
        Execute::new(move |()| execute()),
    )
        .into_service();
    Seatbelt { service, opens, clock: (clock, driver) }
}
