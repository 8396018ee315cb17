//! The panic valve of a `BreakerBox`: past a share of open breakers, further trips are
//! held back, with an event.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use breakerbox::{Breaker, BreakerBox, ManualClock, OpenWait, Policy, State};

const WAIT: Duration = Duration::from_secs(10);

fn family(
    clock: &ManualClock,
    max_open_fraction: f64,
    held: Arc<Mutex<Vec<(String, usize, usize)>>>,
) -> BreakerBox<String> {
    BreakerBox::builder(
        Breaker::builder()
            .clock(clock.clone())
            .policy(Policy::consecutive_failures(2))
            .open_wait(OpenWait::fixed(WAIT)),
    )
    .max_open_fraction(max_open_fraction)
    .on_trip_held(move |t| held.lock().unwrap().push((t.breaker.to_owned(), t.open, t.breakers)))
    .build()
    .unwrap()
}

fn fail(hosts: &BreakerBox<String>, host: &str) {
    let _ = hosts.call(host, || Err::<(), _>("down"));
}

fn open_count(hosts: &BreakerBox<String>) -> usize {
    hosts.states().iter().filter(|(_, s)| *s == State::Open).count()
}

#[test]
fn trips_past_the_share_are_held_and_announced() {
    let clock = ManualClock::new();
    let held = Arc::new(Mutex::new(Vec::new()));
    let hosts = family(&clock, 0.3, held.clone());
    let names: Vec<String> = (0..10).map(|i| format!("api-{i}")).collect();
    for name in &names {
        hosts.get(name.as_str()); // all ten known
    }
    for name in &names {
        fail(&hosts, name);
        fail(&hosts, name);
    }
    assert_eq!(open_count(&hosts), 3);
    let held = held.lock().unwrap().clone();
    assert_eq!(held.len(), 7);
    assert!(held.iter().all(|(_, open, breakers)| (*open, *breakers) == (3, 10)), "{held:?}");
    // A held breaker stays closed and keeps admitting calls.
    assert!(hosts.call(names[9].as_str(), || Ok::<_, ()>(())).is_ok());
    assert_eq!(hosts.get(names[9].as_str()).state(), State::Closed);
}

#[test]
fn a_held_breaker_trips_once_the_share_allows() {
    let clock = ManualClock::new();
    let hosts = family(&clock, 0.5, Arc::default());
    for name in ["a", "b", "c", "d"] {
        hosts.get(name);
    }
    for name in ["a", "b", "c"] {
        fail(&hosts, name);
        fail(&hosts, name);
    }
    assert_eq!(hosts.get("c").state(), State::Closed, "held: two of four are open");
    // "a" recovers: its probe succeeds after the wait.
    clock.advance(WAIT);
    hosts.call("a", || Ok::<_, ()>(())).unwrap();
    assert_eq!(hosts.get("a").state(), State::Closed);
    // "c"'s next failure asks again, and trips.
    fail(&hosts, "c");
    assert_eq!(hosts.get("c").state(), State::Open);
}

#[test]
fn a_removed_open_breaker_no_longer_counts() {
    let clock = ManualClock::new();
    let hosts = family(&clock, 0.5, Arc::default());
    for name in ["a", "b", "c", "d"] {
        hosts.get(name);
    }
    for name in ["a", "b"] {
        fail(&hosts, name);
        fail(&hosts, name);
    }
    fail(&hosts, "c");
    fail(&hosts, "c");
    assert_eq!(hosts.get("c").state(), State::Closed);
    let removed = hosts.remove("a").unwrap();
    // The removed breaker's later transitions do not count either.
    removed.reset();
    removed.force_open();
    hosts.get("e"); // four members again
    fail(&hosts, "c");
    assert_eq!(hosts.get("c").state(), State::Open);
}

#[test]
fn a_family_of_one_can_always_open_its_breaker() {
    let clock = ManualClock::new();
    let hosts = family(&clock, 0.1, Arc::default());
    fail(&hosts, "only");
    fail(&hosts, "only");
    assert_eq!(hosts.get("only").state(), State::Open);
}

#[test]
fn without_a_valve_every_trip_goes_through() {
    let clock = ManualClock::new();
    let hosts: BreakerBox<String> =
        BreakerBox::builder(Breaker::builder().clock(clock.clone()).policy(Policy::consecutive_failures(2)))
            .build()
            .unwrap();
    for i in 0..10 {
        let name = format!("api-{i}");
        fail(&hosts, &name);
        fail(&hosts, &name);
    }
    assert_eq!(open_count(&hosts), 10);
}

#[test]
fn racing_trips_on_many_threads_never_exceed_the_share() {
    for round in 0..20 {
        let clock = ManualClock::new();
        let hosts = family(&clock, 0.25, Arc::default());
        let names: Vec<String> = (0..64).map(|i| format!("api-{i}")).collect();
        for name in &names {
            hosts.get(name.as_str());
        }
        let barrier = Arc::new(Barrier::new(8));
        std::thread::scope(|s| {
            for t in 0..8 {
                let (hosts, names, barrier) = (&hosts, &names, barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    for name in names.iter().skip(t).step_by(8) {
                        fail(hosts, name);
                        fail(hosts, name);
                    }
                });
            }
        });
        // Never past the share, even in the race; a trip that had just completed may
        // have been counted twice for a moment (the valve errs toward holding), and the
        // breaker it held asks again at its next failure.
        assert!(open_count(&hosts) <= 16, "round {round}");
        for name in &names {
            fail(&hosts, name);
        }
        assert_eq!(open_count(&hosts), 16, "round {round}: a quarter of 64, exactly");
    }
}

#[test]
fn a_panicking_listener_does_not_break_the_family() {
    let clock = ManualClock::new();
    let hosts: BreakerBox<String> =
        BreakerBox::builder(Breaker::builder().clock(clock.clone()).policy(Policy::consecutive_failures(1)))
            .max_open_fraction(0.5)
            .on_trip_held(|_| panic!("listener bug"))
            .build()
            .unwrap();
    for name in ["a", "b", "c"] {
        hosts.get(name);
    }
    for name in ["a", "b", "c"] {
        fail(&hosts, name);
    }
    assert_eq!(open_count(&hosts), 1);
    assert!(hosts.call("b", || Ok::<_, ()>(())).is_ok());
}

#[test]
fn the_share_must_be_between_zero_and_one() {
    for bad in [0.0, 1.0, -0.5, f64::NAN] {
        let err = BreakerBox::<String>::builder(Breaker::builder()).max_open_fraction(bad).build().unwrap_err();
        assert_eq!(err.field(), "max_open_fraction");
    }
}
