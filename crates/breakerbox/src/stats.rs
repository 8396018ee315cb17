//! Call counters, striped across cache lines so that threads never write the same line.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};
use crate::{Outcome, State};

/// One line of counters (40 bytes in a 64-byte line).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe {
    successes: AtomicU64,
    failures: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    slow: AtomicU64,
    would_reject: AtomicU64,
}

/// Per-breaker counters: one *owned* stripe per claimed thread slot, plus one shared
/// stripe, each on its own cache line. A snapshot sums them.
///
/// A thread claims a process-wide slot the first time it records (a bit in `SLOTS`)
/// and gives it back when it exits. The owner of slot `i` is the only thread that ever
/// writes stripe `i` of any breaker, so it counts with a plain load and store (no
/// locked instruction: ~0.5 ns instead of ~5). Threads beyond the owned stripes, or
/// recording from a thread-local destructor, count on the shared stripe with
/// `fetch_add`. Giving a slot back (`Release`) and claiming it (`Acquire`) order the old
/// owner's last stores before the new owner's first load.
#[derive(Debug)]
pub(crate) struct Stats {
    /// `owned()` owned stripes, then the shared one.
    stripes: Box<[Stripe]>,
}

/// Owned stripes per breaker: two per core, a power of two, 2 to 32. Under loom, two:
/// its models run more threads than that, so both the owned path and the shared
/// stripe are explored (loom gives each model thread its own thread-locals and slots).
fn owned() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    if cfg!(breakerbox_loom) {
        return 2;
    }
    *COUNT.get_or_init(|| {
        (std::thread::available_parallelism().map_or(4, |n| n.get()) * 2).next_power_of_two().clamp(2, 32)
    })
}

/// Bit `i` is set while a live thread owns slot `i`.
#[cfg(not(breakerbox_loom))]
static SLOTS: AtomicU64 = AtomicU64::new(0);
// Under loom, a model's own atomic, new for each execution, so that claiming and giving
// back slots is part of what loom explores.
#[cfg(breakerbox_loom)]
loom::lazy_static! {
    static ref SLOTS: AtomicU64 = AtomicU64::new(0);
}
const NO_SLOT: usize = usize::MAX;

/// A thread's slot, given back when the thread exits.
struct Slot(Cell<usize>);

impl Slot {
    fn claim() -> Self {
        use Ordering::{Acquire, Relaxed};
        let mut cur = SLOTS.load(Relaxed);
        loop {
            if cur == u64::MAX {
                return Self(Cell::new(NO_SLOT));
            }
            let i = (!cur).trailing_zeros();
            match SLOTS.compare_exchange_weak(cur, cur | (1 << i), Acquire, Relaxed) {
                Ok(_) => return Self(Cell::new(i as usize)),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Gives the slot back; the thread counts on the shared stripe from now on.
    fn release(&self) {
        let i = self.0.replace(NO_SLOT);
        if i != NO_SLOT {
            // Release: the next owner's Acquire claim sees this thread's last counts.
            SLOTS.fetch_and(!(1u64 << i), Ordering::Release);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // loom runs thread-local destructors after its execution has ended, when its
        // atomics can no longer be touched: models give slots back with
        // `release_thread_slot` instead.
        if !cfg!(breakerbox_loom) {
            self.release();
        }
    }
}

crate::sync::thread_local! {
    static SLOT: Slot = Slot::claim();
}

/// Gives this thread's slot back now, as its exit would (for the loom models).
#[cfg(breakerbox_loom)]
pub(crate) fn release_thread_slot() {
    let _ = SLOT.try_with(Slot::release);
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self { stripes: (0..=owned()).map(|_| Stripe::default()).collect() }
    }

    /// Adds one to `counter` of this thread's stripe.
    #[inline(always)]
    fn bump(&self, counter: impl Fn(&Stripe) -> &AtomicU64) {
        let shared = self.stripes.len() - 1;
        let slot = SLOT.try_with(|s| s.0.get()).unwrap_or(NO_SLOT);
        // Relaxed throughout: counters are statistics. A snapshot is a sum of
        // independent counters, exact once calls quiesce, never torn within one counter.
        if slot < shared {
            // Only this thread writes this stripe: no read-modify-write needed.
            let c = counter(&self.stripes[slot]);
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        } else {
            counter(&self.stripes[shared]).fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    pub(crate) fn outcome(&self, outcome: Outcome, slow: bool) {
        match outcome {
            Outcome::Success => self.bump(|s| &s.successes),
            Outcome::Failure => self.bump(|s| &s.failures),
            Outcome::Ignored => self.bump(|s| &s.ignored),
        }
        if slow {
            self.bump(|s| &s.slow);
        }
    }

    #[inline(always)]
    pub(crate) fn rejected(&self) {
        self.bump(|s| &s.rejected);
    }

    /// A call admitted in shadow mode that the breaker would have rejected.
    #[inline(always)]
    pub(crate) fn would_reject(&self) {
        self.bump(|s| &s.would_reject);
    }

    pub(crate) fn totals(&self) -> [u64; 6] {
        let mut t = [0u64; 6];
        for s in self.stripes.iter() {
            t[0] += s.successes.load(Ordering::Relaxed);
            t[1] += s.failures.load(Ordering::Relaxed);
            t[2] += s.ignored.load(Ordering::Relaxed);
            t[3] += s.rejected.load(Ordering::Relaxed);
            t[4] += s.slow.load(Ordering::Relaxed);
            t[5] += s.would_reject.load(Ordering::Relaxed);
        }
        t
    }
}

/// The calls in a window, as [`Metrics::window`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowCounts {
    /// Calls in the window.
    pub calls: u64,
    /// Failed calls in the window.
    pub failures: u64,
    /// Slow calls in the window of the first slow-call rule.
    pub slow_calls: u64,
}

/// A snapshot of a breaker's state and counters, from [`Breaker::metrics`](crate::Breaker::metrics).
///
/// Counters are totals since the breaker was built; [`reset`](crate::Breaker::reset)
/// clears the policy's counters, not these.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state, as [`Breaker::state`](crate::Breaker::state) reports it.
    pub state: State,
    /// Calls recorded as successes.
    pub successes: u64,
    /// Calls recorded as failures (including panics).
    pub failures: u64,
    /// Calls recorded as ignored.
    pub ignored: u64,
    /// Calls the breaker rejected.
    pub rejected: u64,
    /// Calls admitted in [shadow mode](crate::BreakerBuilder::shadow) that the breaker
    /// would have rejected, had it been enforcing.
    pub would_reject: u64,
    /// Calls a slow-call rule found slow.
    pub slow_calls: u64,
    /// The current failure rate of the first failure-rate rule, if the policy has one.
    pub failure_rate: Option<f64>,
    /// The current slow-call rate of the first slow-call rule, if the policy has one.
    pub slow_call_rate: Option<f64>,
    /// The current streak of consecutive failures (0 if the policy has no such rule).
    /// While the breaker is not closed: the streak that tripped it since it last closed
    /// (0 if it opened otherwise).
    pub consecutive_failures: u32,
    /// How long the breaker has been in its current state.
    pub time_in_state: Duration,
    /// How many times the breaker has opened (by its policy or a failed probe).
    pub opens: u64,
    /// Half-open probes admitted and not yet reported.
    pub probes_in_flight: u32,
    /// Closed calls in flight longer than [`hung_after`](crate::BreakerBuilder::hung_after)
    /// right now (0 without it).
    pub hung_calls: u64,
    /// What the window of the policy's first rate rule holds right now, with the slow
    /// calls of its first slow-call rule (while closed; while recovering, the ramp's own
    /// window), if it has a rate rule.
    pub window: Option<WindowCounts>,
    /// Successes since the last failure, when the breaker can tell: the successful
    /// probes while half-open, the ramp's newest successes while recovering, and while
    /// closed 0 during a failure streak or the newest successes of a count window.
    /// `None` when closed on a policy with neither (no counter is kept for it on the
    /// call path: it would cost every call a shared write).
    pub consecutive_successes: Option<u32>,
    /// The share of calls the [recovery ramp](crate::ramp) admits right now: its
    /// fraction while recovering, 1.0 when closed or disabled, 0.0 otherwise.
    pub recovery_fraction: f64,
    /// The share of calls [adaptive throttling](crate::throttle) rejects right now
    /// (0.0 without a throttle, and whenever the breaker is not closed).
    pub reject_probability: f64,
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A thread that exits gives back its own slot and no other: a live thread's slot
    /// stays its own, so no two live threads ever write one stripe with plain stores
    /// (which would lose counts).
    #[test]
    fn a_thread_exiting_gives_back_only_its_own_slot() {
        let (slot_tx, slot_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let live = std::thread::spawn(move || {
            slot_tx.send(SLOT.with(|s| s.0.get())).unwrap();
            done_rx.recv().unwrap();
        });
        let i = slot_rx.recv().unwrap();
        if i != NO_SLOT {
            for _ in 0..4 {
                let other = std::thread::spawn(|| SLOT.with(|s| s.0.get())).join().unwrap();
                assert_ne!(other, i, "a live thread's slot is not handed out");
            }
            assert_ne!(SLOTS.load(Ordering::Relaxed) & (1 << i), 0, "still claimed by the live thread");
        }
        done_tx.send(()).unwrap();
        live.join().unwrap();
    }
}
