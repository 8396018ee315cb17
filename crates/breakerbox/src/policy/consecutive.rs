//! The consecutive-failure streak: one word, tagged with the generation it counts for.

use crate::sync::{AtomicU64, CachePadded, Ordering};

/// `tag:32 | streak:32`. The tag is the low 32 bits of the closed generation the streak
/// belongs to, so a transition resets the streak without touching this word: the first
/// failure of a new generation finds an older tag and starts again from zero.
#[derive(Debug)]
pub(crate) struct Streak {
    threshold: u32,
    word: CachePadded<AtomicU64>,
}

const fn tag(generation: u64) -> u64 {
    generation & 0xffff_ffff
}

impl Streak {
    pub(crate) fn new(threshold: u32) -> Self {
        Self { threshold, word: CachePadded(AtomicU64::new(0)) }
    }

    /// Records a success: clears the streak. The common case (no streak) is one load.
    #[inline]
    pub(crate) fn success(&self, generation: u64) {
        // Relaxed: the streak publishes nothing; the decision it feeds is made by the
        // CAS on the state word.
        let mut cur = self.word.load(Ordering::Relaxed);
        while cur >> 32 == tag(generation) && cur & 0xffff_ffff != 0 {
            match self.word.compare_exchange_weak(cur, tag(generation) << 32, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Records a failure; returns whether the streak has reached the threshold.
    ///
    /// A word of another generation is either older (start a new streak) or newer (this
    /// outcome is late): `still_current` tells which, by reading the state word. The
    /// tag is only a cache of that answer, so no number of transitions can confuse it.
    #[inline]
    pub(crate) fn failure(&self, generation: u64, still_current: impl Fn() -> bool) -> bool {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            let t = cur >> 32;
            if t != tag(generation) && !still_current() {
                return false; // a late outcome from an older generation
            }
            let streak = if t == tag(generation) { cur & 0xffff_ffff } else { 0 };
            let streak = (streak + 1).min(u64::from(u32::MAX));
            match self.word.compare_exchange_weak(
                cur,
                (tag(generation) << 32) | streak,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return streak >= u64::from(self.threshold),
                Err(actual) => cur = actual,
            }
        }
    }

    /// The current streak of `generation`.
    pub(crate) fn current(&self, generation: u64) -> u32 {
        let cur = self.word.load(Ordering::Relaxed);
        if cur >> 32 == tag(generation) { (cur & 0xffff_ffff) as u32 } else { 0 }
    }
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;

    #[test]
    fn trips_on_the_nth_consecutive_failure() {
        let s = Streak::new(3);
        assert!(!s.failure(0, || true));
        assert!(!s.failure(0, || true));
        assert!(s.failure(0, || true));
    }

    #[test]
    fn success_resets_and_generations_isolate() {
        let s = Streak::new(2);
        assert!(!s.failure(0, || true));
        s.success(0);
        assert!(!s.failure(0, || true));
        assert_eq!(s.current(0), 1);
        // A new generation starts from zero without any reset.
        assert_eq!(s.current(1), 0);
        assert!(!s.failure(1, || true));
        // A late failure from generation 0 neither counts nor resets generation 1.
        assert!(!s.failure(0, || false));
        assert_eq!(s.current(1), 1);
        assert!(s.failure(1, || true));
    }

    #[test]
    fn a_late_success_leaves_a_newer_streak_alone() {
        let s = Streak::new(3);
        assert!(!s.failure(1, || true));
        assert!(!s.failure(1, || true));
        // A success of generation 0, completing after the transition to 1.
        s.success(0);
        assert_eq!(s.current(1), 2);
        assert!(s.failure(1, || true), "the third failure of generation 1 trips");
    }

    #[test]
    fn a_success_keeps_its_generations_tag() {
        // After a success in generation 5, a late failure of generation 0 must still be
        // told apart from generation 5's own (the cleared word keeps generation 5's tag).
        let s = Streak::new(2);
        assert!(!s.failure(5, || true));
        s.success(5);
        assert!(!s.failure(0, || false));
        assert!(!s.failure(0, || false), "late failures of generation 0 never trip");
    }

    #[test]
    fn generations_past_2_pow_32_count_too() {
        let g = (1u64 << 32) | 7;
        let s = Streak::new(2);
        assert!(!s.failure(g, || true));
        assert!(s.failure(g, || true));
    }
}
