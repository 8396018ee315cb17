//! Shadow mode: every call admitted, the state machine running as if enforcing, and its
//! would-be rejections exactly the rejections of the same settings enforcing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use breakerbox::{
    Breaker, BreakerBox, BreakerBuilder, ManualClock, OpenWait, Outcome, Policy, Ramp, Report, State, Throttle,
};

fn settings(clock: &ManualClock) -> BreakerBuilder {
    Breaker::builder()
        .clock(clock.clone())
        .policy(Policy::consecutive_failures(3).or(Policy::failure_rate(0.5).over_calls(10)))
        .open_wait(OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(8)).without_jitter())
        .half_open_probes(2)
        .recovery_ramp(Ramp::new().duration(Duration::from_secs(4)).min_fraction(0.2))
}

/// Whether the backend, down for a while twice, fails call `i` at step `t`.
fn fails(t: u32, i: u32) -> bool {
    match t {
        10..40 => true,
        60..70 => i % 2 == 1,
        _ => i % 7 == 3,
    }
}

#[test]
fn would_be_rejections_are_exactly_the_enforcing_rejections() {
    let (enforcing_clock, shadow_clock) = (ManualClock::new(), ManualClock::new());
    let enforcing = settings(&enforcing_clock).build().unwrap();
    let shadow = settings(&shadow_clock).shadow(true).build().unwrap();
    let mut states = std::collections::BTreeSet::new();
    for t in 0..150 {
        for i in 0..20 {
            let outcome = if fails(t, i) { Outcome::Failure } else { Outcome::Success };
            let enforced = enforcing.try_acquire().map(|p| p.record(outcome)).is_ok();
            let before = shadow.metrics().would_reject;
            shadow.try_acquire().expect("shadow mode admits every call").record(outcome);
            let would_reject = shadow.metrics().would_reject > before;
            assert_eq!(enforced, !would_reject, "step {t}, call {i}");
            assert_eq!(enforcing.state(), shadow.state(), "step {t}, call {i}");
            states.insert(enforcing.state().as_str());
        }
        enforcing_clock.advance(Duration::from_millis(250));
        shadow_clock.advance(Duration::from_millis(250));
    }
    // The story went through every state of the settings.
    assert_eq!(states.into_iter().collect::<Vec<_>>(), ["closed", "half_open", "open", "recovering"]);
    let (e, s) = (enforcing.metrics(), shadow.metrics());
    assert!(e.rejected > 100, "{e:?}");
    assert_eq!(s.would_reject, e.rejected);
    assert_eq!(s.rejected, 0);
    assert_eq!(s.opens, e.opens);
    // Every call ran in shadow mode.
    assert_eq!(s.successes + s.failures, 150 * 20);
}

#[test]
fn shadow_mode_switches_at_run_time() {
    let clock = ManualClock::new();
    let b = settings(&clock).build().unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open);
    assert!(!b.is_shadow());
    assert!(b.try_acquire().is_err());
    b.set_shadow(true);
    assert!(b.is_shadow());
    assert!(b.try_acquire().is_ok());
    assert_eq!(b.state(), State::Open, "the state machine is unchanged by the switch");
    assert_eq!(b.metrics().would_reject, 1);
    b.set_shadow(false);
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().rejected, 2);
}

#[test]
fn a_shadow_admitted_call_never_moves_the_state_machine() {
    let clock = ManualClock::new();
    let b = settings(&clock).shadow(true).build().unwrap();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    clock.advance(Duration::from_secs(1));
    // Two probes are admitted for real; a third call would be refused.
    let probes = [b.try_acquire().unwrap(), b.try_acquire().unwrap()];
    let extra = b.try_acquire().unwrap();
    assert_eq!(b.metrics().would_reject, 1);
    // Its failure (and its drop after a long time) changes nothing.
    extra.failure();
    assert_eq!(b.state(), State::HalfOpen);
    for p in probes {
        p.success();
    }
    assert_eq!(b.state(), State::Recovering);
}

#[test]
fn rejection_listeners_are_not_called_in_shadow_mode_and_transitions_are() {
    let (rejections, transitions) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, t) = (rejections.clone(), transitions.clone());
    let clock = ManualClock::new();
    let b = settings(&clock)
        .shadow(true)
        .on_rejection(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        })
        .on_state_change(move |_| {
            t.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    for _ in 0..10 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(rejections.load(Ordering::Relaxed), 0);
    assert_eq!(transitions.load(Ordering::Relaxed), 1);
    assert_eq!(b.metrics().would_reject, 7);
}

#[test]
fn a_throttle_in_shadow_mode_admits_everything_and_counts() {
    let b = Breaker::builder()
        .clock(ManualClock::new())
        .policy(Policy::consecutive_failures(1_000_000))
        .throttle(Throttle::new())
        .shadow(true)
        .build()
        .unwrap();
    for _ in 0..1000 {
        b.try_acquire().expect("admitted").record(Report::overloaded());
    }
    let m = b.metrics();
    assert!(m.reject_probability > 0.8, "{m:?}");
    assert!(m.would_reject > 700, "{m:?}");
    assert_eq!(m.rejected, 0);
}

#[test]
fn a_family_switches_every_breaker_and_the_ones_it_makes_later() {
    let clock = ManualClock::new();
    let hosts: BreakerBox<String> =
        BreakerBox::builder(Breaker::builder().clock(clock.clone()).policy(Policy::consecutive_failures(1)))
            .build()
            .unwrap();
    hosts.call("a", || Err::<(), _>("down")).unwrap_err();
    assert!(hosts.call("a", || Ok::<_, ()>(())).is_err(), "open");
    hosts.set_shadow(true);
    assert!(hosts.is_shadow());
    assert!(hosts.call("a", || Ok::<_, ()>(())).is_ok(), "shadow: admitted");
    hosts.call("b", || Err::<(), _>("down")).unwrap_err();
    assert!(hosts.call("b", || Ok::<_, ()>(())).is_ok(), "a breaker made later is in shadow mode too");
    assert_eq!(hosts.get("b").metrics().would_reject, 1);
    hosts.set_shadow(false);
    assert!(hosts.call("a", || Ok::<_, ()>(())).is_err());
    assert!(hosts.call("b", || Ok::<_, ()>(())).is_err());
}
