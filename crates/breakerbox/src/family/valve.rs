//! The panic valve: when too many of a family's breakers are open, the likelier culprit
//! is the client's own network or a shared dependency, not each backend, so further
//! trips are held back (Envoy's `max_ejection_percent`).
//!
//! # The count
//!
//! The valve counts the family's open breakers (open or forced open) as they change:
//! every member's engine has a [`Seat`] that its one `publish` tells of each new
//! generation and whether it is open, so the count costs nothing on the call path and
//! is exact once transitions quiesce (publishes that arrive out of order are sorted
//! by generation). A breaker left open past its wait with no call to turn it half-open
//! still counts as open: it has seen no evidence of recovery. A member removed from the
//! family leaves its seat ([`Seat::leave`]) and never counts again.
//!
//! # The decision
//!
//! A trip asks the valve first ([`Valve::try_trip`]). It reserves a place among the
//! trips in progress, then holds the trip if at least one breaker is already open (or
//! tripping) and one more would make the open share exceed `max_open_fraction` of the
//! family. So a family can always open one breaker (a single bad host is not a panic),
//! two trips racing at the edge cannot both pass (their reservations are ordered by one
//! `fetch_add`), and a trip that just completed may be counted twice for a moment (its
//! reservation not yet given back): the valve errs toward holding, never toward
//! exceeding the share.
//!
//! A held trip leaves the breaker closed, with its counters as they are: its next
//! failure asks again, so it trips as soon as the share allows. Each held trip is an
//! event: [`on_trip_held`](crate::BreakerBoxBuilder::on_trip_held) listeners, a
//! `tracing` warning and the `breakerbox_trips_held_total` counter.

use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A trip the panic valve held back.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct TripHeld<'a> {
    /// The breaker whose policy tripped.
    pub breaker: &'a str,
    /// The family's breakers open (or tripping) when it was held.
    pub open: usize,
    /// The family's breakers.
    pub breakers: usize,
    /// The share of open breakers the valve allows.
    pub max_open_fraction: f64,
}

pub(crate) type HeldListener = Arc<dyn Fn(&TripHeld<'_>) + Send + Sync>;

/// A family's panic valve, shared by its members' engines.
pub(crate) struct Valve {
    max_open_fraction: f64,
    /// The family's members that are open.
    open: AtomicUsize,
    /// Trips between their reservation and its release.
    tripping: AtomicUsize,
    /// The family's places (its member count; the family's own atomic, outside the
    /// loom shim: a count the valve only reads).
    members: Arc<std::sync::atomic::AtomicUsize>,
    listeners: Vec<HeldListener>,
}

impl fmt::Debug for Valve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Valve")
            .field("max_open_fraction", &self.max_open_fraction)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Valve {
    pub(crate) fn new(
        max_open_fraction: f64,
        members: Arc<std::sync::atomic::AtomicUsize>,
        listeners: Vec<HeldListener>,
    ) -> Self {
        Self { max_open_fraction, open: AtomicUsize::new(0), tripping: AtomicUsize::new(0), members, listeners }
    }

    /// Runs `trip` unless the valve holds it; returns whether it ran. `name` is the
    /// tripping breaker's, for the event.
    pub(crate) fn try_trip(&self, name: &str, trip: impl FnOnce()) -> bool {
        // SeqCst: the reservations of racing trips are totally ordered, and a trip that
        // released its reservation published its opening before (it is in `open`).
        let ahead = self.tripping.fetch_add(1, Ordering::SeqCst);
        let open = self.open.load(Ordering::SeqCst) + ahead;
        let breakers = self.members.load(std::sync::atomic::Ordering::SeqCst).max(1);
        let held = open >= 1 && (open + 1) as f64 > self.max_open_fraction * breakers as f64;
        if !held {
            trip();
        }
        self.tripping.fetch_sub(1, Ordering::SeqCst);
        if held {
            self.held(&TripHeld { breaker: name, open, breakers, max_open_fraction: self.max_open_fraction });
        }
        !held
    }

    #[cold]
    fn held(&self, event: &TripHeld<'_>) {
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "breakerbox",
            breaker = event.breaker,
            open = event.open,
            breakers = event.breakers,
            max_open_fraction = event.max_open_fraction,
            "trip held back by the panic valve: too many of the family's breakers are open"
        );
        #[cfg(feature = "metrics")]
        metrics::counter!("breakerbox_trips_held_total", "breaker" => event.breaker.to_owned()).increment(1);
        for listener in &self.listeners {
            // A panicking listener cannot break the breaker (as in event.rs).
            let _ = catch_unwind(AssertUnwindSafe(|| listener(event)));
        }
    }

    /// The family's open breakers, as counted.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// A member's place in the valve's count: one word, `generation:62 | left:1 | open:1`,
/// the state it last counted and whether the member has left the family. Transitions
/// may publish out of order (a thread preempted after its swap); a report from an
/// older generation than the one counted changes nothing, so the count follows the
/// state word's latest generation, and leaving is one more swap of the same word.
#[derive(Debug)]
pub(crate) struct Seat {
    valve: Arc<Valve>,
    word: AtomicU64,
}

const OPEN: u64 = 1;
const LEFT: u64 = 2;
const GEN_SHIFT: u32 = 2;
/// Generations are 35 bits (see `state/packed.rs`).
const GEN_MASK: u64 = (1 << 35) - 1;

/// Whether generation `a` is newer than `b` (serial-number arithmetic on 35 bits).
const fn newer(a: u64, b: u64) -> bool {
    let diff = a.wrapping_sub(b) & GEN_MASK;
    diff != 0 && diff < 1 << 34
}

impl Seat {
    pub(crate) fn new(valve: Arc<Valve>) -> Self {
        Self { valve, word: AtomicU64::new(0) }
    }

    pub(crate) fn valve(&self) -> &Valve {
        &self.valve
    }

    /// The member's breaker entered `generation`, which is `open` or not. Called by the
    /// engine's `publish`, once per transition, in any order.
    pub(crate) fn publish(&self, generation: u64, open: bool) {
        let mut cur = self.word.load(Ordering::SeqCst);
        loop {
            if cur & LEFT != 0 || !newer(generation, cur >> GEN_SHIFT) {
                return;
            }
            let next = (generation << GEN_SHIFT) | u64::from(open);
            match self.word.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        match (cur & OPEN != 0, open) {
            (false, true) => self.valve.open.fetch_add(1, Ordering::SeqCst),
            (true, false) => self.valve.open.fetch_sub(1, Ordering::SeqCst),
            (false, false) | (true, true) => 0,
        };
    }

    /// The member left the family: it no longer counts, whatever it does next.
    pub(crate) fn leave(&self) {
        let before = self.word.fetch_or(LEFT, Ordering::SeqCst);
        if before & LEFT == 0 && before & OPEN != 0 {
            self.valve.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;

    fn valve(max: f64, members: usize) -> Arc<Valve> {
        Arc::new(Valve::new(max, Arc::new(std::sync::atomic::AtomicUsize::new(members)), Vec::new()))
    }

    #[test]
    fn out_of_order_publishes_follow_the_latest_generation() {
        let v = valve(0.5, 10);
        let seat = Seat::new(v.clone());
        seat.publish(2, false); // half-open, published first
        seat.publish(1, true); // the opening before it, published late
        assert_eq!(v.open(), 0);
        seat.publish(3, true);
        assert_eq!(v.open(), 1);
        seat.publish(3, true); // the same generation again: nothing
        assert_eq!(v.open(), 1);
        seat.leave();
        assert_eq!(v.open(), 0);
        seat.publish(4, true);
        seat.leave();
        assert_eq!(v.open(), 0, "a member that left never counts again");
    }

    #[test]
    fn generations_compare_across_the_wrap() {
        assert!(newer(0, GEN_MASK));
        assert!(newer(5, 4));
        assert!(!newer(4, 5));
        assert!(!newer(4, 4));
        // Exactly half the space apart: neither is newer.
        assert!(newer((1 << 34) - 1, 0));
        assert!(!newer(1 << 34, 0));
        assert!(!newer(0, 1 << 34));
    }

    #[test]
    fn a_member_that_leaves_closed_takes_nothing_from_the_open_count() {
        let v = valve(0.5, 10);
        let (open, closed) = (Seat::new(v.clone()), Seat::new(v.clone()));
        open.publish(1, true);
        closed.publish(1, false);
        assert_eq!(v.open(), 1);
        closed.leave();
        assert_eq!(v.open(), 1, "only an open member's leaving lowers the count");
        assert_eq!(format!("{v:?}"), "Valve { max_open_fraction: 0.5, open: 1, .. }");
    }

    #[test]
    fn the_valve_always_lets_one_open_and_holds_past_the_share() {
        let v = valve(0.3, 10);
        let seats: Vec<Seat> = (0..10).map(|_| Seat::new(v.clone())).collect();
        let mut tripped = 0;
        for (i, seat) in seats.iter().enumerate() {
            if v.try_trip("b", || seat.publish(1, true)) {
                tripped += 1;
            }
            assert!(v.open() <= 3, "after {i}");
        }
        assert_eq!(tripped, 3);
        // A family of one can always open its breaker.
        let one = valve(0.1, 1);
        assert!(one.try_trip("b", || Seat::new(one.clone()).publish(1, true)));
    }
}

#[cfg(all(test, breakerbox_loom))]
mod loom_tests {
    use super::*;

    /// Racing trips at the edge of the share: never more open than it allows, and the
    /// count exact once they are done (an opening and a close racing with them too).
    #[test]
    fn loom_racing_trips_never_exceed_the_share() {
        loom::model(|| {
            // 4 members, at most half open: two trips pass, the third is held.
            let v = Arc::new(Valve::new(0.5, Arc::new(std::sync::atomic::AtomicUsize::new(4)), Vec::new()));
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let v = v.clone();
                    loom::thread::spawn(move || {
                        let seat = Seat::new(v.clone());
                        let tripped = v.try_trip("b", || seat.publish(1, true));
                        (tripped, seat)
                    })
                })
                .collect();
            let results: Vec<(bool, Seat)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let tripped = results.iter().filter(|(t, _)| *t).count();
            assert!(tripped <= 2, "{tripped} tripped");
            assert!(tripped >= 1, "one can always open");
            assert_eq!(v.open(), tripped);
            crate::stats::release_thread_slot();
        });
    }

    /// A member leaving races its own late opening: it is counted once or not at all,
    /// and not at all once both are done.
    #[test]
    fn loom_leaving_races_an_opening() {
        loom::model(|| {
            let v = Arc::new(Valve::new(0.5, Arc::new(std::sync::atomic::AtomicUsize::new(4)), Vec::new()));
            let seat = Arc::new(Seat::new(v.clone()));
            let s = seat.clone();
            let t = loom::thread::spawn(move || s.publish(1, true));
            seat.leave();
            t.join().unwrap();
            assert_eq!(v.open(), 0);
        });
    }
}
