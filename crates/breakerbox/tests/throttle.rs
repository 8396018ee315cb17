//! Adaptive throttling, property by property, on a `ManualClock`: a simulated backend
//! that accepts up to `capacity` calls per step and sheds the rest as overloaded.

use std::time::Duration;

use breakerbox::{Breaker, ManualClock, Outcome, Policy, RejectReason, Report, State, Throttle};

const STEP: Duration = Duration::from_millis(100);
/// The tests' throttle window: 10 s in 10 buckets (100 steps).
const WINDOW: Duration = Duration::from_secs(10);
const STEPS_PER_WINDOW: u32 = 100;

/// What one step of the simulation saw.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counts {
    /// Calls that reached the backend.
    sent: u64,
    /// Calls the backend accepted (answered).
    accepted: u64,
    /// Calls the throttle kept off the backend.
    throttled: u64,
    /// Calls rejected for another reason (the breaker was open).
    rejected: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.sent += o.sent;
        self.accepted += o.accepted;
        self.throttled += o.throttled;
        self.rejected += o.rejected;
    }
}

struct Sim {
    clock: ManualClock,
    breaker: Breaker,
}

impl Sim {
    fn new(throttle: Throttle) -> Self {
        // A classic rule that a brownout held at k = 2 does not trip (see the module docs).
        Self::with_policy(throttle, Policy::failure_rate(0.95).over_calls(100))
    }

    fn with_policy(throttle: Throttle, policy: impl Into<Policy>) -> Self {
        let clock = ManualClock::new();
        let breaker = Breaker::builder()
            .name("backend")
            .clock(clock.clone())
            .policy(policy)
            .throttle(throttle.window(WINDOW).buckets(10))
            .build()
            .unwrap();
        Self { clock, breaker }
    }

    /// `offered` calls in one step, against a backend that accepts `capacity` of them.
    fn step(&self, offered: u32, capacity: u32) -> Counts {
        let mut c = Counts::default();
        for _ in 0..offered {
            match self.breaker.try_acquire() {
                Ok(permit) => {
                    c.sent += 1;
                    if c.accepted < u64::from(capacity) {
                        c.accepted += 1;
                        permit.record(Outcome::Success);
                    } else {
                        permit.record(Report::overloaded());
                    }
                }
                Err(r) if r.reason() == RejectReason::Throttled => {
                    assert_eq!(r.state(), State::Closed);
                    assert!(r.reject_probability() > 0.0);
                    c.throttled += 1;
                }
                Err(_) => c.rejected += 1,
            }
        }
        self.clock.advance(STEP);
        c
    }

    fn steps(&self, n: u32, offered: u32, capacity: u32) -> Counts {
        let mut total = Counts::default();
        for _ in 0..n {
            total += self.step(offered, capacity);
        }
        total
    }

    fn p(&self) -> f64 {
        self.breaker.metrics().reject_probability
    }
}

#[test]
fn a_healthy_backend_is_never_throttled() {
    let sim = Sim::new(Throttle::new());
    for _ in 0..3 * STEPS_PER_WINDOW {
        let c = sim.step(50, 50);
        assert_eq!(c.throttled, 0);
        assert_eq!(sim.p(), 0.0);
    }
}

#[test]
fn below_the_minimum_volume_nothing_is_throttled() {
    // 19 calls per window, every one overloaded: too few to judge.
    let sim = Sim::with_policy(Throttle::new().min_requests(20), Policy::consecutive_failures(1_000_000));
    for step in 0..3 * STEPS_PER_WINDOW {
        let c = sim.step(u32::from(step % 5 == 0 && step % 100 < 95), 0);
        assert_eq!(c.throttled, 0);
    }
    assert_eq!(sim.p(), 0.0);
    // One more request per window crosses it.
    let sim = Sim::with_policy(Throttle::new().min_requests(20), Policy::consecutive_failures(1_000_000));
    sim.steps(STEPS_PER_WINDOW / 2, 1, 0);
    assert!(sim.p() > 0.0);
}

#[test]
fn in_steady_overload_the_backend_sees_at_most_k_requests_per_accept() {
    for k in [1.5, 2.0, 3.0] {
        let sim = Sim::new(Throttle::new().k(k));
        // 1,000 calls/s offered, 300/s accepted. One window to settle, then three measured.
        sim.steps(STEPS_PER_WINDOW, 100, 30);
        let c = sim.steps(3 * STEPS_PER_WINDOW, 100, 30);
        let load = c.sent as f64 / c.accepted as f64;
        assert!(load <= k * 1.02, "k = {k}: {c:?}, {load:.3} requests per accept");
        // And no more than that is kept off: the backend stays busy.
        assert!(load >= k * 0.9, "k = {k}: {c:?}, {load:.3} requests per accept");
        // Admissions are random draws: a step now and then gets fewer than the backend
        // could take (at k = 1.5, 45 ± 5 calls a step for 30 places).
        let capacity = 3 * u64::from(STEPS_PER_WINDOW) * 30;
        assert!(c.accepted as f64 >= 0.98 * capacity as f64, "k = {k}: {c:?} of {capacity}");
        assert_eq!(c.rejected, 0);
        assert_eq!(sim.breaker.state(), State::Closed);
    }
}

#[test]
fn the_classic_breaker_without_a_throttle_flaps_in_the_same_brownout() {
    // The contrast the throttle exists for: the default rule opens over and over.
    let clock = ManualClock::new();
    let breaker = Breaker::builder()
        .clock(clock.clone())
        .open_wait(breakerbox::OpenWait::fixed(Duration::from_secs(1)))
        .build()
        .unwrap();
    let sim = Sim { clock, breaker };
    let c = sim.steps(3 * STEPS_PER_WINDOW, 100, 30);
    assert!(sim.breaker.metrics().opens >= 10, "{:?}", sim.breaker.metrics());
    assert!(c.accepted < 3 * u64::from(STEPS_PER_WINDOW) * 30 / 4, "{c:?}");
}

#[test]
fn after_recovery_p_returns_to_zero_within_the_documented_windows() {
    // Counting local rejections: within ⌈log_k(1 / (1 − max_reject))⌉ + 1 windows.
    for (k, max_reject) in [(2.0f64, 0.9f64), (1.5, 0.8)] {
        let sim = Sim::new(Throttle::new().k(k).max_reject(max_reject));
        sim.steps(2 * STEPS_PER_WINDOW, 100, 5);
        assert!(sim.p() > max_reject * 0.9, "deep overload: p = {}", sim.p());
        let bound = ((1.0 / (1.0 - max_reject)).ln() / k.ln()).ceil() as u32 + 1;
        let mut steps = 0;
        while sim.p() > 0.0 {
            sim.step(100, u32::MAX);
            steps += 1;
            assert!(steps <= bound * STEPS_PER_WINDOW, "k = {k}: p = {} after {steps} steps", sim.p());
        }
        assert!(steps > STEPS_PER_WINDOW / 2, "it took some windows: {steps} steps");
    }
}

#[test]
fn without_counting_local_rejections_p_follows_the_success_rate_and_recovers_in_a_window() {
    // A backend that accepts 30 % of what it is sent: p → 1 − k·s = 0.4, and with
    // aggression 2, √0.4.
    for (aggression, expected) in [(1.0f64, 0.4f64), (2.0, 0.4f64.sqrt())] {
        let sim = Sim::new(Throttle::new().count_local_rejections(false).aggression(aggression));
        let clock = &sim.clock;
        let mut owed = 0.0;
        for _ in 0..3 * STEPS_PER_WINDOW {
            for _ in 0..100 {
                if let Ok(permit) = sim.breaker.try_acquire() {
                    owed += 0.3;
                    if owed >= 1.0 {
                        owed -= 1.0;
                        permit.record(Outcome::Success);
                    } else {
                        permit.record(Report::overloaded());
                    }
                }
            }
            clock.advance(STEP);
        }
        assert!((sim.p() - expected).abs() < 0.02, "aggression {aggression}: p = {}", sim.p());
        // Healthy again: p is 0 once the window has slid past the overload.
        sim.steps(STEPS_PER_WINDOW + 10, 100, u32::MAX);
        assert_eq!(sim.p(), 0.0);
    }
}

#[test]
fn max_reject_caps_p_and_keeps_calls_flowing() {
    for cap in [0.5, 0.9] {
        let sim = Sim::with_policy(Throttle::new().max_reject(cap), Policy::consecutive_failures(1_000_000));
        sim.steps(STEPS_PER_WINDOW, 100, 0);
        assert!((sim.p() - cap).abs() < 1e-9, "p = {}", sim.p());
        let c = sim.steps(STEPS_PER_WINDOW, 100, 0);
        let through = c.sent as f64 / (c.sent + c.throttled) as f64;
        assert!((through - (1.0 - cap)).abs() < 0.03, "{through}");
    }
}

#[test]
fn padding_lowers_p_at_low_volume() {
    let p_with = |padding| {
        let sim =
            Sim::with_policy(Throttle::new().padding(padding).min_requests(1), Policy::consecutive_failures(1_000_000));
        sim.step(10, 0);
        sim.p()
    };
    assert!((p_with(0.0) - 0.9).abs() < 1e-9); // 10 / 10, capped
    assert!((p_with(10.0) - 0.5).abs() < 1e-9); // 10 / 20
}

#[test]
fn a_throttled_rejection_retries_after_one_bucket_and_counts_nothing() {
    let sim = Sim::new(Throttle::new());
    sim.steps(STEPS_PER_WINDOW, 100, 10);
    let before = sim.breaker.metrics();
    let mut rejected = None;
    for _ in 0..1000 {
        if let Err(r) = sim.breaker.try_acquire() {
            rejected = Some(r);
            break;
        }
    }
    let r = rejected.expect("a throttled call");
    assert_eq!(r.reason(), RejectReason::Throttled);
    assert_eq!(r.retry_after(), Some(WINDOW / 10));
    assert!((r.reject_probability() - sim.p()).abs() < 0.01);
    assert!(r.to_string().contains("is throttling"), "{r}");
    let after = sim.breaker.metrics();
    assert_eq!(after.failures, before.failures);
    assert!(after.rejected > before.rejected);
}

#[test]
fn buckets_set_the_retry_after_and_the_window_the_memory() {
    // Five buckets: a retry-after of 2 s.
    let clock = ManualClock::new();
    let breaker = Breaker::builder()
        .clock(clock.clone())
        .policy(Policy::consecutive_failures(1_000_000))
        .throttle(Throttle::new().window(WINDOW).buckets(5))
        .build()
        .unwrap();
    for _ in 0..100 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.record(Report::overloaded());
        }
    }
    clock.advance(Duration::from_secs(2));
    let r = (0..100).find_map(|_| breaker.try_acquire().err()).expect("throttled");
    assert_eq!(r.retry_after(), Some(Duration::from_secs(2)));
    // The window is 10 s: the overload is still remembered at 9 s, forgotten at 12 s.
    clock.advance(Duration::from_secs(7));
    assert!(breaker.metrics().reject_probability > 0.0);
    clock.advance(Duration::from_secs(3));
    assert_eq!(breaker.metrics().reject_probability, 0.0);
}

#[test]
fn ignored_outcomes_are_accepts_and_dropped_permits_give_their_request_back() {
    let sim = Sim::with_policy(Throttle::new().min_requests(1), Policy::consecutive_failures(1_000_000));
    for _ in 0..50 {
        sim.breaker.try_acquire().unwrap().record(Outcome::Ignored);
    }
    assert_eq!(sim.p(), 0.0, "a 404 is the backend doing its work");
    for _ in 0..50 {
        drop(sim.breaker.try_acquire().unwrap());
    }
    assert_eq!(sim.p(), 0.0, "cancelled calls say nothing about the backend");
    for _ in 0..50 {
        sim.breaker.try_acquire().unwrap().record(Outcome::Failure);
    }
    assert_eq!(sim.p(), 0.0, "a 500 is an answer, not an overload");
    for _ in 0..200 {
        if let Ok(permit) = sim.breaker.try_acquire() {
            permit.record(Report::overloaded());
        }
    }
    assert!(sim.p() > 0.0);
}

#[test]
fn the_classic_rules_still_open_a_dead_backend() {
    let sim = Sim::new(Throttle::new());
    sim.steps(STEPS_PER_WINDOW, 100, 0);
    assert_eq!(sim.breaker.state(), State::Open);
    assert_eq!(sim.breaker.metrics().reject_probability, 0.0, "only a closed breaker throttles");
}

#[test]
fn every_bad_setting_is_named_with_its_range() {
    let cases: [(Throttle, &str); 9] = [
        (Throttle::new().k(0.5), "throttle.k"),
        (Throttle::new().k(f64::NAN), "throttle.k"),
        (Throttle::new().padding(-1.0), "throttle.padding"),
        (Throttle::new().aggression(0.5), "throttle.aggression"),
        (Throttle::new().max_reject(1.0), "throttle.max_reject"),
        (Throttle::new().max_reject(0.0), "throttle.max_reject"),
        (Throttle::new().buckets(0), "throttle.buckets"),
        (Throttle::new().buckets(1001), "throttle.buckets"),
        (Throttle::new().window(Duration::from_millis(10)).buckets(20), "throttle.window"),
    ];
    for (throttle, field) in cases {
        let err = Breaker::builder().throttle(throttle.clone()).build().unwrap_err();
        assert_eq!(err.field(), field, "{throttle:?}");
        assert!(!err.expected().is_empty());
    }
    assert!(Breaker::builder().throttle(Throttle::new()).build().is_ok());
}
