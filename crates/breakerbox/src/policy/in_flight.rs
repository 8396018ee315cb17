//! Calls in flight by age: a call still running longer than a threshold counts as a
//! failure, once, so that a backend that hangs trips the breaker before the callers'
//! own timeouts fire (gobreaker#91, envoy#288). Outcomes alone see a hang only when the
//! timeouts expire, all at once and late; this sees it one threshold after it starts.
//!
//! # The rule
//!
//! Time is cut into epochs of one bucket, `epoch = now / width`, with
//! `width = max(threshold / 4, MIN_WIDTH)`. A call admitted in epoch `e` is *due* once
//! `now >= (e + 1) × width + threshold`, and the first [`InFlight::sweep`] at or after
//! that instant (or the racing one that claimed that pass) counts it as aged if it is
//! still in flight. When it then completes,
//! [`InFlight::complete`] returns `false`, and its own outcome must not count again.
//! A call that completes before a sweep counts it is never counted here. Every call is
//! counted exactly once: by a sweep, or by its completion returning `true`.
//!
//! **Lateness.** A call admitted at `a` in epoch `e` (`e × width <= a < (e+1) × width`)
//! is due `threshold` after the end of its epoch, so at that instant its age is more
//! than `threshold` and at most `threshold + width`: never early, and at most one width
//! (25 %, for thresholds of 1.05 ms and more) late. Sweeps run on admissions, so a
//! count also waits for the next admission at or after that instant.
//!
//! # Design
//!
//! A ring of 8 words, one per epoch modulo 8, each `tag:43 | swept:1 | count:20`: the
//! epoch the slot holds (`epoch / 8`; the slot's index gives the low 3 bits), whether
//! that epoch was counted, and how many calls admitted in it are still in flight and
//! uncounted. Every change to what a call counts as is one CAS on that one word:
//!
//! - [`admit`](InFlight::admit) adds 1 to its epoch's slot;
//! - [`complete`](InFlight::complete) takes 1 away if the slot still holds its epoch,
//!   unswept (then `true`), and otherwise touches nothing (`false`: a sweep took it);
//! - a sweep *pass* sets every slot whose epoch is due to the latest due epoch of that
//!   slot, swept, count 0, and returns the counts it took.
//!
//! A slot's tag only ever grows and `swept` is never cleared under one tag, so a call
//! that finds its epoch gone or swept knows a sweep took it, and a tag never comes back
//! (no ABA). A slot's count never goes negative: a completion finds a count that
//! includes its own call, or does not decrement.
//!
//! `sweep` runs on every admission, so its common case is one relaxed load: a cursor,
//! `swept_below`, the highest limit a pass was claimed for (every epoch below it is
//! swept, or being swept by the pass that claimed it). Only when `now` makes a new epoch
//! due does one sweeper (the one whose `fetch_max` raises the cursor) run a pass over
//! the 8 slots: once per width, O(8) however long the silence before it was.
//!
//! **Why 8 slots.** At most 6 epochs are ever in flight and not due (`threshold` spans
//! at most 5 widths), so the slot an admission needs holds an epoch at least 8 older:
//! due for certain. If no pass has swept that old epoch yet (no sweep for a while), the
//! admission takes the slot over anyway: its CAS takes the old epoch's uncounted calls
//! out of the slot, and it adds them to `carried`, which the next pass returns. Nothing
//! not yet due is ever evicted, and nothing is lost or counted twice.
//!
//! **Preempted callers.** A caller that read `now`, was preempted, and admits into an
//! epoch that a pass already swept (its slot is swept, or holds a later epoch) is
//! counted as aged at once: it goes to `carried`, the cursor is rewound so that the
//! caller's own next sweep (the engine sweeps right after admitting) runs a pass and
//! returns it (if its `now` makes any epoch due at all; else the first sweep that
//! does), and its completion returns `false`. By its own clock reading it is
//! already past due, and the engine times the call from that reading too. Moving it to
//! the current epoch instead would make its epoch no longer `now / width`, which the
//! engine may recompute at completion instead of storing it. A caller that admits into
//! a due epoch whose slot the pass has not reached yet is simply counted by that pass.
//!
//! # Limits
//!
//! - **Width.** A `u64` clock has epochs below `2⁶⁴ / width`; with `width >= 2¹⁸ ns`
//!   (262 µs) every epoch fits the 43-bit tag, so tags never wrap, whatever the clock's
//!   origin. Thresholds under 1.05 ms get 262 µs buckets, so more than 25 % lateness.
//! - **Saturation.** A slot holds up to 2²⁰ − 1 (1,048,575) calls of one epoch in
//!   flight; a call beyond that is counted as aged at once, like a preempted one.
//!   Counts stay exact: the extra completion of that epoch finds the count spent and
//!   returns `false`.
//!
//! # Memory orderings
//!
//! The tracker publishes nothing but its own counts, so the slots and counters are
//! `Relaxed`. Exactly-once needs no fence: each call's fate is decided by read-modify-
//! writes on one slot word, which are totally ordered and each read the latest value,
//! and `carried` is handed over by a `swap`. A stale plain load only makes a CAS fail:
//! a slot's state only moves forward (tags grow, `swept` stays), so a stale value that
//! says "swept" or "gone" is still true. [`InFlight::complete`] must run after its
//! [`InFlight::admit`] (a permit moved between threads is moved through something that
//! synchronizes), so its load sees its own call's increment.
//!
//! The one pair that is not `Relaxed` is only about lateness: the cursor's rewind (a
//! `swap`, `Release`) and a pass's claim (`fetch_max`, `Acquire`). Both are RMWs, so one
//! is ordered before the other: either the rewind comes after the claim (the cursor
//! stays rewound, and the next sweep claims a pass), or the claim reads the rewind and,
//! through the pair, sees the `carried` added before it. So a call counted at once is
//! returned by the next pass, never a width later; the loom models fail with `Relaxed`
//! there. [`InFlight::aged_in_flight`] is a snapshot, exact when nothing runs
//! concurrently.

use crate::sync::{AtomicU64, CachePadded, Ordering};

/// Slots in the ring; a power of two, at least the 6 epochs that can be in flight and
/// not due.
const SLOTS: u64 = 8;
const SLOT_BITS: u32 = SLOTS.trailing_zeros();
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const SWEPT: u64 = 1 << COUNT_BITS;
const TAG_SHIFT: u32 = COUNT_BITS + 1;
/// The narrowest bucket, 2¹⁸ ns (262 µs): every epoch of a `u64` clock, `now / width`,
/// then fits the tag and the slot index (43 + 3 bits), so tags never wrap.
pub(crate) const MIN_WIDTH: u64 = 1 << (TAG_SHIFT - SLOT_BITS);
const _: () = assert!((u64::MAX / MIN_WIDTH) >> SLOT_BITS <= u64::MAX >> TAG_SHIFT);

/// One slot word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// The slot's epoch, divided by [`SLOTS`].
    tag: u64,
    /// The epoch was counted: its calls were returned by a sweep.
    swept: bool,
    /// Calls admitted in the epoch, still in flight and not counted (0 once swept).
    count: u64,
}

impl Slot {
    fn unpack(word: u64) -> Self {
        Self { tag: word >> TAG_SHIFT, swept: word & SWEPT != 0, count: word & COUNT_MAX }
    }

    fn pack(self) -> u64 {
        (self.tag << TAG_SHIFT) | if self.swept { SWEPT } else { 0 } | self.count
    }
}

/// Counts the calls still in flight past a threshold, each once; see the module docs.
#[derive(Debug)]
pub(crate) struct InFlight {
    threshold: u64,
    width: u64,
    /// The highest limit a pass was claimed for: epochs below it are swept, or being
    /// swept. Read on every admission, written about once a width: its own line.
    swept_below: CachePadded<AtomicU64>,
    /// One word per epoch modulo 8 (see [`Slot`]). Written on every admission and
    /// completion.
    slots: CachePadded<[AtomicU64; SLOTS as usize]>,
    tallies: CachePadded<Tallies>,
}

/// Counters touched only when calls age.
#[derive(Debug)]
struct Tallies {
    /// Calls counted outside a pass (an evicted epoch's, preempted or overflowing
    /// admissions), not yet returned by a sweep.
    carried: AtomicU64,
    /// Calls ever counted as aged (for [`InFlight::aged_in_flight`]).
    counted: AtomicU64,
    /// Completions that returned `false`: counted calls no longer in flight.
    done: AtomicU64,
}

impl InFlight {
    /// A tracker that counts calls in flight longer than `threshold_nanos`.
    pub(crate) fn new(threshold_nanos: u64) -> Self {
        Self {
            threshold: threshold_nanos,
            width: (threshold_nanos / 4).max(MIN_WIDTH),
            swept_below: CachePadded(AtomicU64::new(0)),
            // All zero: slot `i` holds epoch `i`, unswept and empty.
            slots: CachePadded(std::array::from_fn(|_| AtomicU64::new(0))),
            tallies: CachePadded(Tallies {
                carried: AtomicU64::new(0),
                counted: AtomicU64::new(0),
                done: AtomicU64::new(0),
            }),
        }
    }

    /// The width of an epoch, in nanoseconds: an admission at `now` is in epoch
    /// `now / bucket_nanos()`.
    pub(crate) fn bucket_nanos(&self) -> u64 {
        self.width
    }

    /// Records a call admitted at `now`; returns its epoch (`now / bucket_nanos()`), to
    /// give back to [`complete`](Self::complete).
    pub(crate) fn admit(&self, now: u64) -> u64 {
        let epoch = now / self.width;
        let (slot, tag) = self.slot(epoch);
        // Relaxed throughout: see the module docs.
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let s = Slot::unpack(cur);
            let (next, evicted) = if s.tag == tag && !s.swept && s.count < COUNT_MAX {
                (Slot { count: s.count + 1, ..s }, 0)
            } else if s.tag < tag {
                // An epoch at least 8 older, so due: take the slot over, and its calls
                // that no pass counted yet are counted now.
                (Slot { tag, swept: false, count: 1 }, if s.swept { 0 } else { s.count })
            } else {
                // The epoch was swept already (a preempted caller), or its slot is full:
                // counted as aged at once. `complete` will find the epoch swept, or gone,
                // or (when full) one call too many, and return `false`.
                self.carry(1);
                return epoch;
            };
            match slot.compare_exchange_weak(cur, next.pack(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if evicted > 0 {
                        self.carry(evicted);
                    }
                    return epoch;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Records the end (completion or drop) of a call admitted in `epoch`. Returns
    /// `true` if the call was not counted as aged, so its outcome counts as usual, or
    /// `false` if a sweep counted it (or will, by the next pass), so its outcome must
    /// not count again.
    pub(crate) fn complete(&self, epoch: u64) -> bool {
        let (slot, tag) = self.slot(epoch);
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let s = Slot::unpack(cur);
            debug_assert!(s.tag >= tag, "complete({epoch}) of an epoch never admitted");
            // A swept slot's count is 0, so `s.swept` only says why; a count of 0 under
            // the right tag means a full slot counted this call at once.
            if s.tag != tag || s.swept || s.count == 0 {
                self.tallies.done.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let next = Slot { count: s.count - 1, ..s };
            match slot.compare_exchange_weak(cur, next.pack(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Counts the calls that are due at `now` and were not counted yet; returns how many
    /// (0, after one relaxed load, unless `now` made a new epoch due).
    #[cfg(test)]
    pub(crate) fn sweep(&self, now: u64) -> u64 {
        self.sweep_since(now, 0)
    }

    /// As `sweep`, but returns only the calls of epochs `from` and later (and those
    /// counted at once, outside a pass): the engine's current closed generation began in
    /// epoch `from`, and the older calls it counts belong to an earlier one. Those are
    /// counted all the same (their completions say so), just not returned.
    pub(crate) fn sweep_since(&self, now: u64, from: u64) -> u64 {
        let limit = self.limit(now);
        if self.swept_below.load(Ordering::Relaxed) >= limit {
            return 0;
        }
        // Claim the pass; a racing sweeper with the same or a later `now` may win it.
        // Acquire: pairs with the Release of a rewind, so `carried` below includes what
        // was carried before it.
        if self.swept_below.fetch_max(limit, Ordering::Acquire) >= limit {
            return 0;
        }
        let (mut taken, mut aged) = (0, 0);
        for (index, slot) in (0..).zip(self.slots.iter()) {
            let (epoch, calls) = Self::sweep_slot(slot, index, limit);
            taken += calls;
            if epoch >= from {
                aged += calls;
            }
        }
        if taken > 0 {
            self.tallies.counted.fetch_add(taken, Ordering::Relaxed);
        }
        if self.tallies.carried.load(Ordering::Relaxed) > 0 {
            aged += self.tallies.carried.swap(0, Ordering::Relaxed);
        }
        aged
    }

    /// Calls in flight past the threshold at `now`, counted by a sweep or not yet.
    pub(crate) fn aged_in_flight(&self, now: u64) -> u64 {
        let limit = self.limit(now);
        let mut uncounted = 0;
        for (index, slot) in (0..).zip(self.slots.iter()) {
            let s = Slot::unpack(slot.load(Ordering::Relaxed));
            if !s.swept && s.tag * SLOTS + index < limit {
                uncounted += s.count;
            }
        }
        let counted = self.tallies.counted.load(Ordering::Relaxed);
        let done = self.tallies.done.load(Ordering::Relaxed);
        // A racing completion may be tallied before the pass that counted its call.
        counted.saturating_sub(done) + uncounted
    }

    /// Epochs below this are due at `now`: `(e + 1) × width + threshold <= now`.
    fn limit(&self, now: u64) -> u64 {
        now.saturating_sub(self.threshold) / self.width
    }

    fn slot(&self, epoch: u64) -> (&AtomicU64, u64) {
        (&self.slots[(epoch % SLOTS) as usize], epoch / SLOTS)
    }

    /// Counts calls carried outside a pass, and rewinds the cursor so that the next
    /// sweep runs a pass that returns them.
    fn carry(&self, calls: u64) {
        self.tallies.carried.fetch_add(calls, Ordering::Relaxed);
        self.tallies.counted.fetch_add(calls, Ordering::Relaxed);
        // Release: a pass claimed from this value sees the `carried` above. A swap, not a
        // store: two RMWs on the cursor are ordered one way or the other, so either the
        // claim of a racing pass reads this rewind, or the rewind comes after that claim
        // and the next sweep claims a pass again. (loom also lets a plain store land
        // between the read and the write of a racing RMW, tokio-rs/loom#254.)
        self.swept_below.swap(0, Ordering::Release);
    }

    /// Sweeps one slot for a pass up to `limit`: moves it to its latest due epoch,
    /// swept, and returns the epoch whose calls it took, and how many.
    fn sweep_slot(slot: &AtomicU64, index: u64, limit: u64) -> (u64, u64) {
        // The latest due epoch of this slot: the last one below `limit` that is
        // `index` modulo 8, if any.
        let Some(below) = limit.checked_sub(index + 1) else {
            return (0, 0);
        };
        let tag = below / SLOTS;
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let s = Slot::unpack(cur);
            if s.tag > tag || (s.tag == tag && s.swept) {
                return (0, 0); // not due yet, or swept already
            }
            let next = Slot { tag, swept: true, count: 0 };
            match slot.compare_exchange_weak(cur, next.pack(), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (s.tag * SLOTS + index, if s.swept { 0 } else { s.count }),
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;

    /// A threshold of 4 minimum widths: the width is exactly `MIN_WIDTH`.
    const T: u64 = 4 * MIN_WIDTH;
    const W: u64 = MIN_WIDTH;

    /// When a call of `epoch` is due.
    fn due(epoch: u64) -> u64 {
        (epoch + 1) * W + T
    }

    #[test]
    fn the_width_is_a_quarter_of_the_threshold_and_at_least_the_minimum() {
        assert_eq!(InFlight::new(4_000_000_000).bucket_nanos(), 1_000_000_000);
        assert_eq!(InFlight::new(4_000_000_003).bucket_nanos(), 1_000_000_000);
        assert_eq!(InFlight::new(T).bucket_nanos(), W);
        assert_eq!(InFlight::new(1).bucket_nanos(), MIN_WIDTH);
        assert_eq!(InFlight::new(0).bucket_nanos(), MIN_WIDTH);
    }

    #[test]
    fn admit_returns_the_epoch_of_now() {
        let t = InFlight::new(T);
        assert_eq!(t.admit(0), 0);
        assert_eq!(t.admit(W - 1), 0);
        assert_eq!(t.admit(W), 1);
        assert_eq!(t.admit(123 * W + 5), 123);
        assert_eq!(t.admit(u64::MAX), u64::MAX / W);
    }

    #[test]
    fn a_call_that_completes_in_time_counts_normally() {
        let t = InFlight::new(T);
        let e = t.admit(10);
        assert_eq!(t.sweep(due(e) - 1), 0);
        assert!(t.complete(e));
        assert_eq!(t.sweep(due(e)), 0);
        assert_eq!(t.sweep(u64::MAX), 0);
        assert_eq!(t.aged_in_flight(u64::MAX), 0);
    }

    #[test]
    fn a_hung_call_is_counted_once_when_due() {
        let t = InFlight::new(T);
        let e = t.admit(3 * W + 7);
        assert_eq!(t.sweep(due(e) - 1), 0, "not before it is due");
        assert_eq!(t.aged_in_flight(due(e) - 1), 0);
        assert_eq!(t.aged_in_flight(due(e)), 1, "due, not counted yet");
        assert_eq!(t.sweep(due(e)), 1);
        assert_eq!(t.sweep(due(e)), 0, "never twice");
        assert_eq!(t.sweep(due(e) + 100 * W), 0);
        assert_eq!(t.sweep(u64::MAX), 0);
        assert_eq!(t.aged_in_flight(due(e)), 1, "counted, still in flight");
        assert!(!t.complete(e), "its outcome must not count again");
        assert_eq!(t.aged_in_flight(u64::MAX), 0);
    }

    #[test]
    fn lateness_is_more_than_the_threshold_and_at_most_one_width_more() {
        for threshold in [T, 4_000_000_000, 1_234_567_891] {
            let w = InFlight::new(threshold).bucket_nanos();
            for admitted in [0, 1, w / 2, w - 1, w, 77 * w + 13, 1_000_000 * w - 1] {
                let t = InFlight::new(threshold);
                let e = t.admit(admitted);
                // The first `now` at which a sweep counts it: before it, none does.
                let at = (e + 1) * w + threshold;
                assert_eq!(t.sweep(at - 1), 0, "early: admitted {admitted}, threshold {threshold}");
                assert_eq!(t.sweep(at), 1, "late: admitted {admitted}, threshold {threshold}");
                let age = at - admitted;
                assert!(age > threshold && age <= threshold + w, "age {age}, threshold {threshold}");
                assert!(age - threshold <= (threshold / 4).max(MIN_WIDTH), "at most 25 % late");
                assert!(!t.complete(e));
            }
        }
    }

    #[test]
    fn a_sweep_counts_every_due_call_and_nothing_else() {
        let t = InFlight::new(T);
        let old: Vec<u64> = (0..3).map(|_| t.admit(W)).collect(); // epoch 1
        let done = t.admit(W + 1);
        assert!(t.complete(done));
        let young = t.admit(2 * W); // epoch 2, due one width later
        assert_eq!(t.sweep(due(1)), 3);
        assert_eq!(t.sweep(due(1)), 0);
        assert_eq!(t.sweep(due(2) - 1), 0);
        assert!(t.complete(young), "not due yet");
        assert_eq!(t.sweep(due(2)), 0);
        for e in old {
            assert!(!t.complete(e));
        }
        assert_eq!(t.sweep(u64::MAX), 0);
    }

    #[test]
    fn a_call_admitted_into_a_swept_epoch_counts_as_aged_at_once() {
        let t = InFlight::new(T);
        let first = t.admit(due(0) + 5); // the admission whose sweep swept epoch 0
        assert_eq!(t.sweep(due(0) + 5), 0);
        // A caller read `now = 10` (epoch 0), was preempted past epoch 0's sweep, and
        // admits only now. The engine sweeps right after: it is counted there.
        let e = t.admit(10);
        assert_eq!(e, 0);
        assert_eq!(t.aged_in_flight(due(0) + 5), 1);
        assert_eq!(t.sweep(10), 0, "a sweep with the stale `now`: nothing is due by it");
        assert_eq!(t.sweep(due(0) + 5), 1);
        assert!(t.complete(first));
        assert_eq!(t.sweep(u64::MAX), 0);
        assert!(!t.complete(e));
        assert_eq!(t.aged_in_flight(u64::MAX), 0);
    }

    #[test]
    fn a_preempted_call_into_a_reused_slot_counts_as_aged_at_once() {
        let t = InFlight::new(T);
        let now = 20 * W; // epoch 20, slot 4, which epoch 12 had
        let fresh = t.admit(now);
        assert_eq!(t.sweep(now), 0, "nothing admitted before: nothing due");
        let stale = t.admit(12 * W + 1); // preempted: epoch 12, whose slot holds 20 now
        assert_eq!(t.sweep(now), 1);
        assert!(!t.complete(stale));
        assert!(t.complete(fresh), "the call of epoch 20 is not touched");
        assert_eq!(t.sweep(u64::MAX), 0);
    }

    #[test]
    fn a_preempted_call_into_a_swept_epoch_nobody_admitted_in_counts_at_once() {
        let t = InFlight::new(T);
        let now = 100 * W;
        let fresh = t.admit(now);
        assert_eq!(t.sweep(now), 0, "a pass up to epoch 96: every slot moves to its latest due epoch");
        // Epoch 89 (slot 1) is due and was never admitted in: the pass marked it swept.
        let stale = t.admit(89 * W + 1);
        assert_eq!(t.sweep(now), 1);
        assert!(!t.complete(stale));
        assert!(t.complete(fresh));
        assert_eq!(t.sweep(u64::MAX), 0);
    }

    #[test]
    fn a_slot_needed_again_before_its_epoch_was_swept_carries_its_calls() {
        let t = InFlight::new(T);
        let old = [t.admit(0), t.admit(1)]; // epoch 0, slot 0; no sweep runs
        let done = t.admit(2);
        assert!(t.complete(done));
        let now = 8 * W; // epoch 8 needs slot 0
        let new = t.admit(now);
        assert_eq!(t.aged_in_flight(now), 2);
        assert_eq!(t.sweep(now), 2, "epoch 0's two calls, carried");
        assert_eq!(t.sweep(now), 0);
        for e in old {
            assert!(!t.complete(e));
        }
        assert!(t.complete(new), "epoch 8 starts with its own call only");
        assert_eq!(t.sweep(u64::MAX), 0);
        assert_eq!(t.aged_in_flight(u64::MAX), 0);
    }

    #[test]
    fn a_pass_after_a_long_silence_sweeps_every_slot_once() {
        let t = InFlight::new(T);
        let calls: Vec<u64> = (0..8).map(|e| t.admit(e * W)).collect();
        let later = 1_000_000_007 * W;
        assert_eq!(t.sweep(later), 8);
        let e = t.admit(later);
        assert_eq!(t.sweep(later), 0);
        for c in calls {
            assert!(!t.complete(c));
        }
        assert_eq!(t.sweep(due(e) - 1), 0);
        assert_eq!(t.sweep(due(e)), 1);
        assert_eq!(t.sweep(u64::MAX), 0);
        let last = t.admit(u64::MAX);
        assert_eq!(t.sweep(u64::MAX), 0, "the last epoch of the clock is never due");
        assert!(t.complete(last));
    }

    #[test]
    fn a_full_slot_counts_the_overflow_as_aged_at_once_and_stays_exact() {
        let t = InFlight::new(T);
        let now = 10 * W + 5;
        for _ in 0..COUNT_MAX + 2 {
            assert_eq!(t.admit(now), 10);
        }
        assert_eq!(t.sweep(now), 2, "the two overflowing calls, counted at once");
        let trues = (0..COUNT_MAX + 2).filter(|_| t.complete(10)).count() as u64;
        assert_eq!(trues, COUNT_MAX, "one completion too many finds the count spent");
        assert_eq!(t.sweep(u64::MAX), 0);
        assert_eq!(t.aged_in_flight(u64::MAX), 0);
    }

    /// A deterministic xorshift64* generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A call of the model.
    struct Call {
        epoch: u64,
        counted: bool,
    }

    /// Random admissions (some with a stale `now`), completions and sweeps (sometimes
    /// none for many epochs, so that slots are reused unswept), one thread, against a
    /// model: each sweep returns exactly the calls due and not yet counted, each
    /// completion returns whether its call was not counted, and `aged_in_flight` is
    /// exact.
    #[test]
    fn matches_a_model_across_many_epochs() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for quiet in [false, true] {
            let t = InFlight::new(T + 12_345);
            let w = t.bucket_nanos();
            let threshold = T + 12_345;
            let limit = |now: u64| now.saturating_sub(threshold) / w;
            let mut now = 0;
            let mut calls: Vec<Call> = Vec::new();
            let mut pending = 0; // counted at admission, not returned yet
            let mut max_limit = 0;
            let (mut swept, mut trues, mut admitted) = (0, 0, 0);
            for step in 0..200_000u64 {
                now += rng.below(w / 3);
                match rng.below(20) {
                    0..=7 => {
                        // Preempted callers read `now` up to 6 widths before (under 8, so
                        // that a stale epoch's slot never holds a later admitted one).
                        let at = if rng.below(8) == 0 { now.saturating_sub(rng.below(6 * w)) } else { now };
                        let epoch = t.admit(at);
                        assert_eq!(epoch, at / w);
                        // Into a swept epoch: counted at once.
                        let counted = epoch < max_limit;
                        pending += u64::from(counted);
                        // Its slot's older epoch, if no pass swept it: counted now.
                        for c in calls.iter_mut().filter(|c| !c.counted && c.epoch % 8 == epoch % 8 && c.epoch < epoch)
                        {
                            c.counted = true;
                            pending += 1;
                        }
                        calls.push(Call { epoch, counted });
                        admitted += 1;
                    }
                    8..=15 if !calls.is_empty() => {
                        // Mostly recent calls; some hang for long.
                        let n = calls.len() as u64;
                        let i = if rng.below(4) == 0 { rng.below(n) } else { n - 1 - rng.below(n.min(8)) };
                        let call = calls.swap_remove(i as usize);
                        let got = t.complete(call.epoch);
                        assert_eq!(got, !call.counted, "step {step}: complete({})", call.epoch);
                        trues += u64::from(got);
                    }
                    16 => {
                        let m = limit(now);
                        let aged = calls.iter().filter(|c| c.counted || c.epoch < m).count() as u64;
                        assert_eq!(t.aged_in_flight(now), aged, "step {step}");
                    }
                    _ if quiet && (now / (20 * w)) % 2 == 1 => {} // no sweeps for 20 epochs
                    _ => {
                        let m = limit(now);
                        let mut expected = std::mem::take(&mut pending);
                        for c in calls.iter_mut().filter(|c| !c.counted && c.epoch < m) {
                            c.counted = true;
                            expected += 1;
                        }
                        max_limit = max_limit.max(m);
                        let got = t.sweep(now);
                        assert_eq!(got, expected, "step {step}: sweep({now})");
                        swept += got;
                    }
                }
            }
            for call in calls.drain(..) {
                let got = t.complete(call.epoch);
                assert_eq!(got, !call.counted);
                trues += u64::from(got);
            }
            swept += t.sweep(u64::MAX);
            assert_eq!(swept + trues, admitted);
            assert!(swept > 1_000 && trues > 1_000, "both fates were exercised: {swept}, {trues}");
            assert_eq!(t.aged_in_flight(u64::MAX), 0);
        }
    }

    /// 4 threads × 500,000 calls on a shared clock that each call moves on, and a thread
    /// that only sweeps, with random hangs, immediate completions and stale `now` readings: every call is
    /// counted exactly once, by a sweep or by its completion returning `true`.
    #[test]
    fn every_call_counts_exactly_once_under_threads() {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        use std::sync::Barrier;
        use std::sync::atomic::{AtomicBool, AtomicU64 as StdU64};

        const THREADS: u64 = 4;
        const CALLS: u64 = 500_000;
        let t = InFlight::new(T);
        let clock = StdU64::new(0);
        let stop = AtomicBool::new(false);
        let swept = StdU64::new(0);
        let trues = StdU64::new(0);
        let start = Barrier::new(THREADS as usize + 1);
        std::thread::scope(|s| {
            let (t, clock, stop, swept, trues, start) = (&t, &clock, &stop, &swept, &trues, &start);
            s.spawn(move || {
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let now = clock.load(Ordering::Relaxed);
                    swept.fetch_add(t.sweep(now), Ordering::Relaxed);
                    std::thread::yield_now();
                }
            });
            let workers: Vec<_> = (0..THREADS)
                .map(|id| {
                    s.spawn(move || {
                        let mut rng = Rng(0x1234_5678_9ABC_DEF1 ^ (id + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                        // (complete at call #, epoch), soonest first.
                        let mut hung = BinaryHeap::new();
                        let (mut my_swept, mut my_trues) = (0, 0);
                        start.wait();
                        for i in 0..CALLS {
                            // Every call moves the clock on, so that calls age however
                            // the threads are scheduled.
                            let mut now = clock.fetch_add(W / 128, Ordering::Relaxed);
                            if rng.below(16) == 0 {
                                now = now.saturating_sub(rng.below(6 * W)); // preempted
                            }
                            let epoch = t.admit(now);
                            my_swept += t.sweep(now);
                            if rng.below(2) == 0 {
                                my_trues += u64::from(t.complete(epoch));
                            } else {
                                hung.push(Reverse((i + rng.below(3_000), epoch)));
                            }
                            while let Some(&Reverse((at, epoch))) = hung.peek()
                                && at <= i
                            {
                                hung.pop();
                                my_trues += u64::from(t.complete(epoch));
                            }
                        }
                        for Reverse((_, epoch)) in hung {
                            my_trues += u64::from(t.complete(epoch));
                        }
                        swept.fetch_add(my_swept, Ordering::Relaxed);
                        trues.fetch_add(my_trues, Ordering::Relaxed);
                    })
                })
                .collect();
            // Stop the sweeper before a worker's panic goes on, or the scope never ends.
            let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
            stop.store(true, Ordering::Relaxed);
            for r in results {
                if let Err(panic) = r {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        let swept = swept.into_inner() + t.sweep(u64::MAX);
        let trues = trues.into_inner();
        assert_eq!(swept + trues, THREADS * CALLS, "swept {swept}, completed {trues}");
        assert!(swept > 1_000 && trues > 1_000, "both fates were exercised: {swept}, {trues}");
        assert_eq!(t.aged_in_flight(u64::MAX), 0);
    }
}

#[cfg(all(test, breakerbox_loom))]
mod loom_tests {
    //! Run with `RUSTFLAGS="--cfg breakerbox_loom" LOOM_MAX_PREEMPTIONS=3
    //! CARGO_TARGET_DIR=target/loom cargo test -p breakerbox --release --lib in_flight`.

    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    const T: u64 = 4 * MIN_WIDTH;
    const W: u64 = MIN_WIDTH;

    /// Two calls of one epoch complete while a third thread sweeps that epoch, just due:
    /// each call is counted once, by the sweep or by its completion.
    #[test]
    fn loom_two_completions_race_a_sweep_of_their_epoch() {
        loom::model(|| {
            let t = Arc::new(InFlight::new(T));
            assert_eq!(t.bucket_nanos(), W);
            let e = t.admit(W / 2);
            assert_eq!(t.admit(W / 2), e);
            let completes: Vec<_> = (0..2)
                .map(|_| {
                    let t = t.clone();
                    thread::spawn(move || t.complete(e))
                })
                .collect();
            let sweeper = {
                let t = t.clone();
                thread::spawn(move || t.sweep(W + T))
            };
            let trues: u64 = completes.into_iter().map(|h| u64::from(h.join().unwrap())).sum();
            let swept = sweeper.join().unwrap();
            assert_eq!(swept + trues, 2, "swept {swept}, completed {trues}");
            assert_eq!(t.sweep(u64::MAX), 0, "the sweep at the due time took all that was left");
            assert_eq!(t.aged_in_flight(u64::MAX), 0);
        });
    }

    /// An admission races a sweep at the boundary of its epoch: once with a `now` of the
    /// epoch the sweep makes due (a preempted caller: counted by that sweep or at once),
    /// once with the next epoch's (never counted by it). Either way the call is counted
    /// exactly once, and a due call by a sweep at the due time at the latest.
    #[test]
    fn loom_admission_races_a_sweep_at_an_epoch_boundary() {
        for (admitted_at, due) in [(W - 1, true), (W, false)] {
            loom::model(move || {
                let t = Arc::new(InFlight::new(T));
                let sweep_at = W + T; // epoch 0 is due, epoch 1 is not
                let admitter = {
                    let t = t.clone();
                    thread::spawn(move || {
                        let e = t.admit(admitted_at);
                        (e, t.sweep(admitted_at)) // the engine sweeps after admitting
                    })
                };
                let sweeper = {
                    let t = t.clone();
                    thread::spawn(move || t.sweep(sweep_at))
                };
                let (e, by_admitter) = admitter.join().unwrap();
                let by_sweeper = sweeper.join().unwrap();
                let afterwards = t.sweep(sweep_at);
                let swept = by_admitter + by_sweeper + afterwards;
                assert_eq!(swept, u64::from(due), "counted at the due time: {by_admitter} {by_sweeper} {afterwards}");
                assert_eq!(t.complete(e), !due);
                assert_eq!(t.sweep(u64::MAX), 0);
                assert_eq!(t.aged_in_flight(u64::MAX), 0);
            });
        }
    }

    /// A call of epoch 0 hangs with no sweep until epoch 8 needs its slot: the admission
    /// that takes the slot over races a sweep and the old call's own completion. The old
    /// call is counted exactly once (and by a sweep at that time at the latest), the new
    /// one is untouched.
    #[test]
    fn loom_slot_reuse_races_a_sweep_and_the_old_call() {
        loom::model(|| {
            let t = Arc::new(InFlight::new(T));
            let old = t.admit(0);
            let now = 8 * W; // epoch 8, slot 0; epoch 0 is due
            let admitter = {
                let t = t.clone();
                thread::spawn(move || {
                    let e = t.admit(now);
                    (e, t.sweep(now))
                })
            };
            let sweeper = {
                let t = t.clone();
                thread::spawn(move || t.sweep(now))
            };
            let completer = {
                let t = t.clone();
                thread::spawn(move || t.complete(old))
            };
            let (new, by_admitter) = admitter.join().unwrap();
            let by_sweeper = sweeper.join().unwrap();
            let completed = completer.join().unwrap();
            let afterwards = t.sweep(now);
            let swept = by_admitter + by_sweeper + afterwards;
            assert_eq!(swept + u64::from(completed), 1, "{by_admitter} {by_sweeper} {afterwards} {completed}");
            assert!(t.complete(new), "epoch 8 is not due");
            assert_eq!(t.sweep(u64::MAX), 0);
            assert_eq!(t.aged_in_flight(u64::MAX), 0);
        });
    }
}
