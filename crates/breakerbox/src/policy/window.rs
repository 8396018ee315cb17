//! Sliding windows for rate rules: a count window (the last N calls) and a time window
//! (the last T, in buckets). Both are lock-free, O(1) per call, allocate only at build,
//! and are tagged with the closed generation they count for, so a transition empties
//! them without touching them.

use crate::sync::{AtomicU64, Ordering};

/// What a window holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

// ===== count window =====

/// The last `size` calls, one bit per call in two bitmaps (failed, slow).
///
/// `cursor` is `tag:24 | count:40`: the generation's tag and the number of calls
/// recorded in it. A call claims slot `count % size` with a CAS on the cursor, then
/// writes its two bits (a load, and a read-modify-write only if the bit changes). When
/// fewer than `size` calls have been recorded, only the first `count` slots count.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u64,
    cursor: AtomicU64,
    failed: Box<[AtomicU64]>,
    slow: Box<[AtomicU64]>,
}

const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

fn bitmap(size: u64) -> Box<[AtomicU64]> {
    (0..size.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
}

fn set_bit(map: &[AtomicU64], slot: u64, value: bool) {
    let word = &map[(slot / 64) as usize];
    let mask = 1u64 << (slot % 64);
    // Relaxed: the bits are statistics; no other memory is published through them.
    let cur = word.load(Ordering::Relaxed);
    if (cur & mask != 0) != value {
        if value {
            word.fetch_or(mask, Ordering::Relaxed);
        } else {
            word.fetch_and(!mask, Ordering::Relaxed);
        }
    }
}

fn count_bits(map: &[AtomicU64], slots: u64) -> u64 {
    let mut total = 0;
    for (i, word) in map.iter().enumerate() {
        let first = i as u64 * 64;
        if first >= slots {
            break;
        }
        let mut bits = word.load(Ordering::Relaxed);
        if slots - first < 64 {
            bits &= (1u64 << (slots - first)) - 1;
        }
        total += u64::from(bits.count_ones());
    }
    total
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        let size = u64::from(size.max(1));
        Self { size, cursor: AtomicU64::new(0), failed: bitmap(size), slow: bitmap(size) }
    }

    /// Records a call of `generation`. A cursor of another generation is older (start
    /// afresh) or newer (this outcome is late), as `still_current` tells.
    pub(crate) fn record(&self, generation: u64, failed: bool, slow: bool, still_current: impl Fn() -> bool) {
        let tag = generation & TAG_MASK;
        let mut cur = self.cursor.load(Ordering::Relaxed);
        let claimed = loop {
            let t = cur >> COUNT_BITS;
            if t != tag && !still_current() {
                return; // late outcome of an older generation
            }
            let n = if t == tag { cur & COUNT_MASK } else { 0 };
            // Keep the count in [size, 2 * size) once full, so it never overflows and
            // n % size keeps walking the ring.
            let next = if n + 1 >= 2 * self.size { n + 1 - self.size } else { n + 1 };
            match self.cursor.compare_exchange_weak(
                cur,
                (tag << COUNT_BITS) | (next & COUNT_MASK),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break n,
                Err(actual) => cur = actual,
            }
        };
        let slot = claimed % self.size;
        set_bit(&self.failed, slot, failed);
        set_bit(&self.slow, slot, slow);
    }

    pub(crate) fn counts(&self, generation: u64) -> Counts {
        let cur = self.cursor.load(Ordering::Relaxed);
        if cur >> COUNT_BITS != generation & TAG_MASK {
            return Counts::default();
        }
        let calls = (cur & COUNT_MASK).min(self.size);
        Counts { calls, failures: count_bits(&self.failed, calls), slow: count_bits(&self.slow, calls) }
    }

    /// The successes at the newest end of the window (up to its size), walking back
    /// from the last call recorded: for `Metrics`, not for decisions.
    pub(crate) fn trailing_successes(&self, generation: u64) -> u64 {
        let cur = self.cursor.load(Ordering::Relaxed);
        if cur >> COUNT_BITS != generation & TAG_MASK {
            return 0;
        }
        let n = cur & COUNT_MASK;
        let held = n.min(self.size);
        let failed = |slot: u64| self.failed[(slot / 64) as usize].load(Ordering::Relaxed) >> (slot % 64) & 1 == 1;
        (1..=held).take_while(|back| !failed((n - back) % self.size)).count() as u64
    }
}

// ===== time window =====

/// The last `buckets × width` of time. Bucket `seq = now / width` lives in slot
/// `seq % buckets`. Each slot is two words: `key:24 | calls:20 | failures:20` and
/// `key:24 | slow:20`, where the key mixes the bucket's sequence number and the
/// generation, so a bucket from another generation never matches. Counts saturate at
/// 1,048,575 calls per bucket; a full bucket stops counting failures too, so the rate
/// stays an unbiased sample.
///
/// A 24-bit key repeats every 2^24 buckets (16 s of 1 µs buckets, 4 h 40 min of 1 ms
/// ones), so a slot left unwritten that long would read back as current. `newest`, the
/// highest bucket recorded, keeps every slot younger than that: whoever moves it
/// forward clears the slots of the buckets it skipped (all of them after a whole
/// window of silence), so every slot holds a bucket of the last lap, and keys within a
/// lap are distinct (a window has at most 1,000 buckets). Readers trust no bucket past
/// `newest`, and an outcome older than the window is dropped instead of overwriting a
/// newer bucket in its slot.
///
/// One race is left, on purpose: after a whole window of silence, a call that lands
/// while the first one clears the slots may go uncounted. That loses at most a few of
/// the first calls after the silence, never invents one.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    width: u64,
    newest: AtomicU64,
    counts: Box<[AtomicU64]>,
    slow: Box<[AtomicU64]>,
}

const FIELD_BITS: u32 = 20;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const KEY_SHIFT: u32 = 40;
/// The key of a slot that holds no bucket (`key` never returns it).
const EMPTY: u64 = TAG_MASK;
const EMPTY_WORD: u64 = EMPTY << KEY_SHIFT;

fn key(generation: u64, seq: u64) -> u64 {
    seq.wrapping_add(generation.wrapping_mul(0x9E37_79B9)) % EMPTY
}

impl TimeWindow {
    pub(crate) fn new(span_nanos: u64, buckets: u32) -> Self {
        let buckets = u64::from(buckets.max(1));
        let width = (span_nanos / buckets).max(1);
        let words = || (0..buckets).map(|_| AtomicU64::new(EMPTY_WORD)).collect::<Box<[_]>>();
        Self { width, newest: AtomicU64::new(0), counts: words(), slow: words() }
    }

    fn slots(&self) -> u64 {
        self.counts.len() as u64
    }

    pub(crate) fn record(&self, generation: u64, now: u64, failed: bool, slow: bool) {
        let counted = self.update(generation, now, |calls, failures| {
            // A full bucket stops counting failures too: the rate stays an unbiased sample.
            (calls < FIELD_MASK).then_some((calls + 1, failures + u64::from(failed)))
        });
        if let (true, Some(bucket)) = (slow, counted) {
            bump(&self.slow[bucket.slot], bucket.key, |fields| (fields < FIELD_MASK).then_some(fields + 1));
        }
    }

    /// Changes the two counts of the bucket of `now` (`calls` and `failures`, each saturating
    /// at 2²⁰ − 1) as `change` says; `None` from it leaves them. Returns the bucket as
    /// changed, or `None` if nothing was (the outcome is older than the window, or
    /// `change` declined). The throttle keeps its requests and accepts in these fields.
    pub(crate) fn update(
        &self,
        generation: u64,
        now: u64,
        change: impl Fn(u64, u64) -> Option<(u64, u64)>,
    ) -> Option<Updated> {
        let seq = now / self.width;
        let n = self.slots();
        // Relaxed: statistics; the slots' own CASes order what each slot holds. The
        // newest bucket moves once per bucket width, so a load decides until it must
        // move: a read-modify-write on every call would be a locked instruction on a
        // line every caller shares. A load that lags a move made at this very moment
        // opens no new race: a caller preempted between its `fetch_max` and its slot
        // write meets the same one (an outcome a whole window old, which the lap check
        // below then misses, and which can restart one bucket's count).
        let seen = self.newest.load(Ordering::Relaxed);
        let newest = if seq > seen { self.newest.fetch_max(seq, Ordering::Relaxed) } else { seen };
        if seq.saturating_add(n) <= newest {
            return None; // older than the window: its slot belongs to a newer bucket
        }
        if seq > newest {
            self.clear_skipped(generation, newest, seq);
        }
        let slot = (seq % n) as usize;
        let k = key(generation, seq);
        let fields = bump(&self.counts[slot], k, |fields| {
            let (calls, failures) = change(fields & FIELD_MASK, fields >> FIELD_BITS)?;
            Some((failures.min(FIELD_MASK) << FIELD_BITS) | calls.min(FIELD_MASK))
        })?;
        Some(Updated { slot, key: k, calls: fields & FIELD_MASK })
    }

    /// The width of a bucket, in nanoseconds.
    pub(crate) fn bucket_width(&self) -> u64 {
        self.width
    }

    /// Empties the slots of the buckets after `newest` and before `seq`, which no call
    /// will ever write now.
    fn clear_skipped(&self, generation: u64, newest: u64, seq: u64) {
        let n = self.slots();
        if seq - newest >= n {
            // A whole window of silence: nothing in any slot is current.
            for word in self.counts.iter().chain(self.slow.iter()) {
                word.store(EMPTY_WORD, Ordering::Relaxed);
            }
            return;
        }
        for skipped in newest + 1..seq {
            let slot = (skipped % n) as usize;
            let k = key(generation, skipped);
            for word in [&self.counts[slot], &self.slow[slot]] {
                let cur = word.load(Ordering::Relaxed);
                // A late call may just have opened this bucket: keep it.
                if cur >> KEY_SHIFT != k {
                    let _ = word.compare_exchange(cur, EMPTY_WORD, Ordering::Relaxed, Ordering::Relaxed);
                }
            }
        }
    }

    pub(crate) fn counts(&self, generation: u64, now: u64) -> Counts {
        let seq = now / self.width;
        let n = self.slots();
        let newest = self.newest.load(Ordering::Relaxed);
        let mut total = Counts::default();
        // Buckets past `newest` hold nothing yet, whatever their slots say.
        let Some(back_from) = seq.checked_sub(newest).map_or(Some(0), |ahead| (ahead < n).then_some(ahead)) else {
            return total;
        };
        for back in back_from..n.min(seq + 1) {
            let s = seq - back;
            let slot = (s % n) as usize;
            let k = key(generation, s);
            let c = self.counts[slot].load(Ordering::Relaxed);
            if c >> KEY_SHIFT == k {
                total.calls += c & FIELD_MASK;
                total.failures += (c >> FIELD_BITS) & FIELD_MASK;
            }
            let w = self.slow[slot].load(Ordering::Relaxed);
            if w >> KEY_SHIFT == k {
                total.slow += w & FIELD_MASK;
            }
        }
        total
    }
}

/// A bucket that [`TimeWindow::update`] changed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Updated {
    slot: usize,
    key: u64,
    /// Its `calls` count after the change.
    pub(crate) calls: u64,
}

/// Applies `add` to the 40 bits of fields of a bucket word keyed `k`, starting from zero
/// if the word holds another key. Returns the fields after, or `None` if `add` declined
/// (a full bucket: nothing added).
fn bump(word: &AtomicU64, k: u64, add: impl Fn(u64) -> Option<u64>) -> Option<u64> {
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        let fields = if cur >> KEY_SHIFT == k { cur & ((1 << KEY_SHIFT) - 1) } else { 0 };
        let next = add(fields)?;
        // Relaxed: statistics only.
        match word.compare_exchange_weak(cur, (k << KEY_SHIFT) | next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(next),
            Err(actual) => cur = actual,
        }
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;

    /// Keys repeat every `EMPTY` = 2^24 − 1 buckets, a multiple of 3: with 3 buckets, a
    /// bucket and the one `EMPTY` later share their slot and their key.
    const ALIAS: u64 = 1 + EMPTY;

    #[test]
    fn count_window_slides() {
        let w = CountWindow::new(4);
        for failed in [true, true, false, false] {
            w.record(0, failed, false, || true);
        }
        assert_eq!(w.counts(0), Counts { calls: 4, failures: 2, slow: 0 });
        w.record(0, false, true, || true); // evicts the first failure
        assert_eq!(w.counts(0), Counts { calls: 4, failures: 1, slow: 1 });
        for _ in 0..100 {
            w.record(0, false, false, || true);
        }
        assert_eq!(w.counts(0), Counts { calls: 4, failures: 0, slow: 0 });
    }

    #[test]
    fn count_window_partial_fill_counts_only_recorded_slots() {
        let w = CountWindow::new(100);
        w.record(3, true, false, || true);
        w.record(3, false, false, || true);
        assert_eq!(w.counts(3), Counts { calls: 2, failures: 1, slow: 0 });
        // A new generation starts empty, even though the bits are still set.
        assert_eq!(w.counts(4), Counts::default());
        w.record(4, false, false, || true);
        assert_eq!(w.counts(4), Counts { calls: 1, failures: 0, slow: 0 });
        // A late record from generation 3 is dropped.
        w.record(3, true, true, || false);
        assert_eq!(w.counts(4), Counts { calls: 1, failures: 0, slow: 0 });
    }

    #[test]
    fn count_window_partial_fill_past_one_word_ignores_an_older_generations_bits() {
        // 128 slots are two bitmap words. Generation 1 fills the window with failures;
        // generation 2 records 70 successes, which overwrite slots 0..70 only. Slots
        // 70..128 still hold generation 1's failures and must not count: the mask of the
        // second word is cut at the 6 slots of it that generation 2 recorded.
        let w = CountWindow::new(128);
        for _ in 0..128 {
            w.record(1, true, true, || true);
        }
        // Full, and a whole number of words: every bit of both counts, none masked.
        assert_eq!(w.counts(1), Counts { calls: 128, failures: 128, slow: 128 });
        for _ in 0..70 {
            w.record(2, false, false, || true);
        }
        assert_eq!(w.counts(2), Counts { calls: 70, failures: 0, slow: 0 });
        w.record(2, true, false, || true);
        assert_eq!(w.counts(2), Counts { calls: 71, failures: 1, slow: 0 });
    }

    #[test]
    fn count_window_cursor_stays_within_two_sizes_as_it_walks_the_ring() {
        // The count is kept in [size, 2 * size) once full: it never reaches the 40 bits
        // of the cursor, where a wrap would drop the window back to partly filled.
        let w = CountWindow::new(3);
        for k in 1..=1_000u64 {
            w.record(7, k % 5 == 0, false, || true);
            let count = w.cursor.load(Ordering::Relaxed) & COUNT_MASK;
            assert!(count < 2 * 3, "count {count} after {k} records");
            assert_eq!(count % 3, k % 3, "the ring's next slot after {k} records");
            // The last three calls: failures where k % 5 == 0.
            let failures = (k.saturating_sub(2)..=k).filter(|j| *j > 0 && j % 5 == 0).count() as u64;
            assert_eq!(w.counts(7), Counts { calls: k.min(3), failures, slow: 0 }, "after {k} records");
        }
    }

    #[test]
    fn trailing_successes_walk_back_from_the_newest_call() {
        let w = CountWindow::new(4);
        assert_eq!(w.trailing_successes(0), 0);
        for failed in [true, false, false] {
            w.record(0, failed, false, || true);
        }
        // Slot 3 is not recorded yet, and the walk stops at the failure in slot 0.
        assert_eq!(w.trailing_successes(0), 2);
        // Once full, the ring wraps: the newest call (slot 1, the sixth) walks back
        // through slot 0 (the fifth) to the failure in slot 3 (the fourth).
        for failed in [true, false, false] {
            w.record(0, failed, false, || true);
        }
        assert_eq!(w.trailing_successes(0), 2);
        w.record(0, true, false, || true);
        assert_eq!(w.trailing_successes(0), 0);
        assert_eq!(w.trailing_successes(1), 0, "another generation's window is empty");
    }

    #[test]
    fn time_window_forgets_old_buckets() {
        let w = TimeWindow::new(10_000, 10); // 10 buckets of 1,000 ns
        w.record(1, 500, true, false);
        w.record(1, 5_500, false, true);
        assert_eq!(w.counts(1, 5_500), Counts { calls: 2, failures: 1, slow: 1 });
        // At 10,999 the bucket of t=500 (seq 0) has slid out: seq 1..=10 remain.
        assert_eq!(w.counts(1, 10_999), Counts { calls: 1, failures: 0, slow: 1 });
        assert_eq!(w.counts(1, 100_000), Counts::default());
        assert_eq!(w.counts(2, 5_500), Counts::default());
    }

    #[test]
    fn time_window_keys_do_not_alias_after_2_pow_24_buckets() {
        let w = TimeWindow::new(8, 8); // 8 buckets of 1 ns
        for _ in 0..4 {
            w.record(1, 0, true, false);
        }
        let later = 1 << 24; // the same 24-bit key as bucket 0
        assert_eq!(w.counts(1, later), Counts::default());
        w.record(1, later, true, false);
        assert_eq!(w.counts(1, later), Counts { calls: 1, failures: 1, slow: 0 });
    }

    #[test]
    fn time_window_clears_buckets_that_calls_skipped() {
        // Calls in every bucket but those of slot 1 (t % 3 == 1) never write slot 1;
        // each skips one bucket of it, within the window, and must empty it. Else slot 1
        // keeps bucket 1 until bucket `ALIAS`, which shares its key, reads it back.
        let w = TimeWindow::new(3, 3);
        w.record(1, 1, true, false);
        for t in (2..ALIAS).filter(|t| t % 3 != 1) {
            w.record(1, t, false, false);
        }
        w.record(1, ALIAS, false, false);
        assert_eq!(w.counts(1, ALIAS).failures, 0);
    }

    #[test]
    fn time_window_clears_every_slot_after_a_whole_window_of_silence() {
        let w = TimeWindow::new(3, 3); // 3 buckets of 1 ns
        w.record(1, 1, true, false);
        assert_eq!((ALIAS % 3, key(1, ALIAS)), (1, key(1, 1)), "bucket 1's slot and key");
        // One call just before the alias: a jump of more than the window, which
        // empties every slot, bucket 1's too.
        w.record(1, ALIAS - 1, false, false);
        w.record(1, ALIAS, false, false);
        assert_eq!(w.counts(1, ALIAS), Counts { calls: 2, failures: 0, slow: 0 });
    }

    #[test]
    fn time_window_clears_the_slot_of_a_bucket_skipped_within_the_window() {
        // Generation G's bucket 7 has the key of generation 1's bucket 1 (keys are 24
        // bits), in the same slot. Skipping bucket 4 (the slot's bucket in between) must
        // empty the slot, so that bucket 7 starts from zero.
        const G: u64 = 880_572;
        assert_eq!((key(G, 7), key(G, 4) == key(1, 1)), (key(1, 1), false));
        let w = TimeWindow::new(3, 3);
        w.record(1, 1, true, true);
        for now in [3, 5, 6, 7] {
            w.record(G, now, false, false);
        }
        assert_eq!(w.counts(G, 7), Counts { calls: 3, failures: 0, slow: 0 });
    }

    #[test]
    fn clearing_keeps_a_skipped_bucket_that_a_late_call_opened() {
        // The interleaving, replayed in order: caller B (bucket 5) moves `newest` from
        // 1 to 5 and is preempted before clearing buckets 2 to 4; caller A (bucket 3,
        // its clock read earlier) counts its failure in bucket 3, within the window;
        // then B clears. A's call must stay counted.
        let w = TimeWindow::new(8, 8);
        w.record(1, 1, false, false);
        assert_eq!(w.newest.fetch_max(5, Ordering::Relaxed), 1); // B
        w.record(1, 3, true, false); // A
        w.clear_skipped(1, 1, 5); // B, resumed
        w.record(1, 5, false, false);
        assert_eq!(w.counts(1, 5), Counts { calls: 3, failures: 1, slow: 0 });
    }

    #[test]
    fn a_full_bucket_stops_counting_failures_too() {
        let w = TimeWindow::new(1_000, 1);
        for _ in 0..FIELD_MASK {
            w.record(0, 0, false, false);
        }
        w.record(0, 0, true, true);
        // Counting the failure but not the call would bias the rate upward.
        assert_eq!(w.counts(0, 0), Counts { calls: FIELD_MASK, failures: 0, slow: 0 });
    }

    #[test]
    fn time_window_drops_an_outcome_older_than_the_window() {
        let w = TimeWindow::new(4_000, 4); // 4 buckets of 1,000 ns
        w.record(0, 8_500, true, false);
        // A caller that read the clock at 500 and was preempted reports late: its
        // bucket (0) is gone, and it must not overwrite bucket 8 in the same slot.
        w.record(0, 500, false, false);
        assert_eq!(w.counts(0, 8_500), Counts { calls: 1, failures: 1, slow: 0 });
    }

    #[test]
    fn time_window_reuses_a_slot_for_a_new_bucket() {
        let w = TimeWindow::new(4_000, 4);
        w.record(0, 0, true, false);
        w.record(0, 4_000, false, false); // same slot, next lap
        assert_eq!(w.counts(0, 4_000), Counts { calls: 1, failures: 0, slow: 0 });
    }
}
