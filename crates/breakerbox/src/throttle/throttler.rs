//! The throttle at run time: its window of requests and accepts, the probability word
//! the call path reads, and the per-thread draw.

use std::cell::Cell;

use super::Throttle;
use crate::clock::nanos;
use crate::policy::window::TimeWindow;
use crate::sync::{AtomicU64, Ordering};

/// The throttle's counts live in a [`TimeWindow`]: requests in its `calls` field,
/// accepts in its `failures` field. Its history is the backend's, not one state's, so
/// it is kept under one generation and survives transitions.
const GENERATION: u64 = 0;

/// `p` is recomputed at least this often, in requests counted in one bucket.
const RECOMPUTE_EVERY: u64 = 64;

/// The settings the probability needs, apart from the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rule {
    pub(crate) k: f64,
    pub(crate) padding: f64,
    pub(crate) min_requests: u64,
    /// `1 / aggression`.
    pub(crate) exponent: f64,
    pub(crate) max_reject: f64,
}

impl Rule {
    /// The reject probability for `requests` and `accepts` over the window: the one
    /// formula, pure.
    pub(crate) fn probability(&self, requests: u64, accepts: u64) -> f64 {
        if requests < self.min_requests || requests == 0 {
            return 0.0;
        }
        let r = requests as f64;
        let excess = (r - self.k * accepts as f64).max(0.0);
        if excess == 0.0 {
            return 0.0;
        }
        (excess / (r + self.padding)).powf(self.exponent).min(self.max_reject)
    }
}

/// A throttle's state: see [the module](super).
#[derive(Debug)]
pub(crate) struct Throttler {
    window: TimeWindow,
    rule: Rule,
    count_local_rejections: bool,
    /// `bucket:32 | p:32`: the reject probability as a fraction of 2³², and the low 32
    /// bits of the bucket it was computed in. The call path's one load.
    p: AtomicU64,
}

/// A probability as a fraction of 2³² (below 1: `max_reject` is).
fn fixed(p: f64) -> u32 {
    (p * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32
}

/// A fraction of 2³² as a probability.
#[cfg(all(test, not(breakerbox_loom)))]
fn unfixed(p: u32) -> f64 {
    f64::from(p) / 4_294_967_296.0
}

impl Throttler {
    pub(crate) fn new(t: &Throttle) -> Self {
        Self {
            window: TimeWindow::new(nanos(t.window), t.buckets),
            rule: Rule {
                k: t.k,
                padding: t.padding,
                min_requests: u64::from(t.min_requests),
                exponent: 1.0 / t.aggression,
                max_reject: t.max_reject,
            },
            count_local_rejections: t.count_local_rejections,
            p: AtomicU64::new(0),
        }
    }

    /// The width of a bucket, in nanoseconds: a throttled call's `retry_after`.
    pub(crate) fn bucket_nanos(&self) -> u64 {
        self.window.bucket_width()
    }

    /// Decides a call at `now`: admitted (and counted as a request), or rejected with
    /// the reject probability (a fraction of 2³²).
    #[inline]
    pub(crate) fn admit(&self, now: u64) -> Result<(), u32> {
        let p = self.current(now);
        if p != 0 && draw() < p {
            if self.count_local_rejections {
                self.count_request(now);
            }
            return Err(p);
        }
        self.count_request(now);
        Ok(())
    }

    /// The probability word's `p`, if it was computed in the bucket of `now`;
    /// recomputed otherwise.
    #[inline]
    fn current(&self, now: u64) -> u32 {
        // Relaxed: `p` is a statistic; nothing else is published with it.
        let word = self.p.load(Ordering::Relaxed);
        let bucket = (now / self.window.bucket_width()) as u32;
        if (word >> 32) as u32 == bucket { word as u32 } else { self.recompute(now) }
    }

    #[inline]
    fn count_request(&self, now: u64) {
        let counted = self.window.update(GENERATION, now, |requests, accepts| Some((requests + 1, accepts)));
        if counted.is_some_and(|b| b.calls % RECOMPUTE_EVERY == 0) {
            self.recompute(now);
        }
    }

    /// Sums the window and stores the new `p`. Racing recomputations store what each
    /// computed; any of them is a fair reading of the window.
    #[inline(never)]
    fn recompute(&self, now: u64) -> u32 {
        let p = fixed(self.probability(now));
        let bucket = now / self.window.bucket_width();
        self.p.store((bucket & u64::from(u32::MAX)) << 32 | u64::from(p), Ordering::Relaxed);
        p
    }

    /// The reject probability of the window as it stands at `now`.
    pub(crate) fn probability(&self, now: u64) -> f64 {
        let c = self.window.counts(GENERATION, now);
        self.rule.probability(c.calls, c.failures)
    }

    /// The backend answered a call, with anything but an overload.
    pub(crate) fn accept(&self, now: u64) {
        self.window.update(GENERATION, now, |requests, accepts| Some((requests, accepts + 1)));
    }

    /// A call ended without a word from the backend (dropped, cancelled): its request is
    /// given back, from the newest bucket.
    pub(crate) fn refund(&self, now: u64) {
        self.window.update(GENERATION, now, |requests, accepts| (requests > 0).then(|| (requests - 1, accepts)));
    }
}

thread_local! {
    /// Each thread's draw state: no call ever writes memory another thread reads.
    static DRAW: Cell<u64> = const { Cell::new(0) };
}

/// A uniform draw in `0..2³²` from the thread's own xorshift64* generator, seeded on
/// first use from a process-wide sequence.
fn draw() -> u32 {
    DRAW.with(|cell| {
        let mut x = cell.get();
        if x == 0 {
            static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let seed = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            x = crate::backoff::splitmix64(seed) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        cell.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    })
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECOND: u64 = 1_000_000_000;

    fn rule() -> Rule {
        Rule { k: 2.0, padding: 1.0, min_requests: 20, exponent: 1.0, max_reject: 0.9 }
    }

    #[test]
    fn the_formula() {
        let r = rule();
        assert_eq!(r.probability(0, 0), 0.0);
        // Below the minimum volume: nothing, however bad.
        assert_eq!(r.probability(19, 0), 0.0);
        // At the minimum it acts: (20 − 2·5) / 21, and 20 / 21 capped.
        assert!((r.probability(20, 5) - 10.0 / 21.0).abs() < 1e-12);
        assert_eq!(r.probability(20, 0), 0.9);
        // Healthy: R ≤ k·A.
        assert_eq!(r.probability(100, 100), 0.0);
        assert_eq!(r.probability(100, 50), 0.0);
        // (100 − 2·30) / 101.
        assert!((r.probability(100, 30) - 40.0 / 101.0).abs() < 1e-12);
        // Capped.
        assert_eq!(r.probability(1000, 0), 0.9);
        // Aggression 2: the square root of the ratio.
        let a = Rule { exponent: 0.5, ..r };
        assert!((a.probability(100, 30) - (40.0f64 / 101.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn fixed_point_roundtrips_within_one_part_in_four_billion() {
        for p in [0.0, 0.25, 0.5, 0.9, 0.999_999] {
            assert!((unfixed(fixed(p)) - p).abs() < 1e-9);
        }
    }

    #[test]
    fn draws_are_uniform_enough() {
        let below_half = (0..100_000).filter(|_| draw() < u32::MAX / 2).count();
        assert!((49_000..51_000).contains(&below_half), "{below_half}");
        // 16 equal bins, and pairs of consecutive draws (each half then each half), by
        // chi-square: 50 with 15 degrees of freedom and 30 with 3 are each about one in
        // 100,000 for a uniform, independent draw.
        let draws: Vec<u32> = (0..65_536).map(|_| draw()).collect();
        let chi_square = |bins: &[u32], total: usize| {
            let expected = total as f64 / bins.len() as f64;
            bins.iter().map(|&b| (f64::from(b) - expected).powi(2) / expected).sum::<f64>()
        };
        let mut bins = [0u32; 16];
        draws.iter().for_each(|d| bins[(d >> 28) as usize] += 1);
        assert!(chi_square(&bins, draws.len()) < 50.0, "{bins:?}");
        let mut pairs = [0u32; 4];
        draws.windows(2).for_each(|w| pairs[((w[0] >> 31) * 2 + (w[1] >> 31)) as usize] += 1);
        assert!(chi_square(&pairs, draws.len() - 1) < 30.0, "{pairs:?}");
    }

    #[test]
    fn each_thread_draws_its_own_sequence() {
        // Threads on one sequence would reject in lock-step. 4 threads × 16 draws of 32
        // bits: a value in common by chance is about one in two million.
        let draws: Vec<Vec<u32>> = (0..4)
            .map(|_| std::thread::spawn(|| (0..16).map(|_| draw()).collect()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let mut all: Vec<u32> = draws.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 64, "{draws:?}");
    }

    #[test]
    fn p_is_recomputed_in_each_new_bucket() {
        let t = Throttler::new(&Throttle::new().window(Duration::from_secs(10)).buckets(10));
        // 30 requests, no accepts, all in bucket 0: still p = 0 for the rest of
        // bucket 0 until the 64th request.
        for _ in 0..30 {
            assert_eq!(t.admit(0), Ok(()));
        }
        assert_eq!(t.current(0), 0);
        // In bucket 1 it is recomputed: (30 − 0) / 31, capped at 0.9.
        assert_eq!(t.current(SECOND), fixed(0.9));
        // And kept for the rest of bucket 1, though 30 accepts would now make it 0.
        for _ in 0..30 {
            t.accept(SECOND + 1);
        }
        assert_eq!(t.probability(SECOND + 1), 0.0);
        assert_eq!(t.current(SECOND + 1), fixed(0.9));
        assert_eq!(t.current(2 * SECOND), 0, "recomputed in bucket 2");
    }

    #[test]
    fn p_is_recomputed_at_every_64th_request_of_a_bucket() {
        let t = Throttler::new(&Throttle::new().window(Duration::from_secs(10)).buckets(10));
        assert_eq!(t.current(0), 0); // computed, and stored for bucket 0
        for _ in 0..RECOMPUTE_EVERY - 1 {
            t.count_request(0);
        }
        assert_eq!(t.current(0), 0, "63 requests: still the p of bucket 0's start");
        t.count_request(0);
        // The 64th: (64 − 0) / 65, capped at 0.9.
        assert_eq!(t.current(0), fixed(0.9));
    }

    #[test]
    fn accepts_and_refunds_move_the_counts() {
        let t = Throttler::new(&Throttle::new().min_requests(1));
        t.count_request(0);
        t.count_request(0);
        assert!(t.probability(0) > 0.0);
        t.accept(0);
        assert_eq!(t.probability(0), 0.0); // 2 − 2·1 = 0
        t.refund(0);
        t.refund(0);
        t.refund(0); // never below zero
        assert_eq!(t.window.counts(GENERATION, 0).calls, 0);
    }
}
