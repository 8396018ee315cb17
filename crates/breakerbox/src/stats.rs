//! Call counters, striped across cache lines so that threads never write the same line.

use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
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
}

/// Per-breaker counters: two stripes per core (rounded up to a power of two, at most
/// 32), each on its own cache line. Threads take stripes in the order they first
/// record, so up to that many threads never share a line. A snapshot sums them.
#[derive(Debug)]
pub(crate) struct Stats {
    stripes: Box<[Stripe]>,
}

fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    if cfg!(breakerbox_loom) {
        return 1;
    }
    *COUNT.get_or_init(|| {
        (std::thread::available_parallelism().map_or(4, |n| n.get()) * 2).next_power_of_two().clamp(2, 32)
    })
}

thread_local! {
    static THREAD_INDEX: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    };
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self { stripes: (0..stripe_count()).map(|_| Stripe::default()).collect() }
    }

    #[inline(always)]
    fn stripe(&self) -> &Stripe {
        let i = THREAD_INDEX.try_with(|i| *i).unwrap_or(0);
        // The length is a power of two, so the mask keeps the index in bounds.
        &self.stripes[i & (self.stripes.len() - 1)]
    }

    // Relaxed throughout: counters are statistics. A snapshot is a sum of independent
    // counters, exact once calls quiesce, and never torn within one counter.
    #[inline(always)]
    pub(crate) fn outcome(&self, outcome: Outcome, slow: bool) {
        let s = self.stripe();
        let counter = match outcome {
            Outcome::Success => &s.successes,
            Outcome::Failure => &s.failures,
            Outcome::Ignored => &s.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if slow {
            s.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    pub(crate) fn rejected(&self) {
        self.stripe().rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn totals(&self) -> [u64; 5] {
        let mut t = [0u64; 5];
        for s in self.stripes.iter() {
            t[0] += s.successes.load(Ordering::Relaxed);
            t[1] += s.failures.load(Ordering::Relaxed);
            t[2] += s.ignored.load(Ordering::Relaxed);
            t[3] += s.rejected.load(Ordering::Relaxed);
            t[4] += s.slow.load(Ordering::Relaxed);
        }
        t
    }
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
    /// Calls a slow-call rule found slow.
    pub slow_calls: u64,
    /// The current failure rate of the first failure-rate rule, if the policy has one.
    pub failure_rate: Option<f64>,
    /// The current slow-call rate of the first slow-call rule, if the policy has one.
    pub slow_call_rate: Option<f64>,
    /// The current streak of consecutive failures (0 if the policy has no such rule).
    pub consecutive_failures: u32,
    /// How long the breaker has been in its current state.
    pub time_in_state: Duration,
    /// How many times the breaker has opened (by its policy or a failed probe).
    pub opens: u64,
    /// Half-open probes admitted and not yet reported.
    pub probes_in_flight: u32,
}
