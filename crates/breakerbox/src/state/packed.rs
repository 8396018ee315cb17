//! The packed state word and the packed deadline word.
//!
//! # The state word (`u64`), least significant bit first
//!
//! ```text
//!  bits  0..3   kind         a `Kind`'s discriminant (see kind.rs)
//!  bits  3..13  in_flight    half-open probes admitted and not yet reported (10 bits)
//!  bits 13..23  successes    half-open probes that succeeded in this generation (10 bits)
//!  bits 23..29  opens        consecutive openings since the last close, saturating at 63
//!  bits 29..64  generation   bumped by every transition, wrapping (35 bits)
//! ```
//!
//! Everything the admission decision needs is in this one word, so a decision is one
//! load, and a transition is one compare-and-swap: two threads can never both win the
//! same transition, and a permit stamped with a generation can always tell whether the
//! state it was admitted in still holds.
//!
//! # The deadline word (`u64`)
//!
//! ```text
//!  bits  0..40  deadline     milliseconds since the breaker was built, rounded up
//!                            (34 years; later deadlines saturate)
//!  bits 40..64  tag          the low 24 bits of the generation it belongs to
//! ```
//!
//! While Open it is the end of the open wait; in other states it holds no time, only
//! the tag. (Each half-open probe's lease has the same shape, in the engine's probe
//! slots.) Every transition stores it,
//! so its tag never lags the state word by more than the transitions in flight. The
//! tag lets a reader tell its own generation's deadline from a stale one, and a writer
//! preempted after its transition never overwrite a newer deadline.

use super::kind::Kind;

const KIND_MASK: u64 = 0b111;
const _: () = assert!(Kind::COUNT as u64 <= KIND_MASK + 1, "the kind field has room for every Kind");
const IN_FLIGHT_SHIFT: u32 = 3;
const SUCCESSES_SHIFT: u32 = 13;
const COUNT_MASK: u64 = (1 << 10) - 1;
const OPENS_SHIFT: u32 = 23;
const OPENS_MASK: u64 = (1 << 6) - 1;
const GEN_SHIFT: u32 = 29;

/// The largest number of half-open probes the word can count.
pub(crate) const MAX_PROBES: u32 = COUNT_MASK as u32;
/// Consecutive opens saturate here.
pub(crate) const MAX_OPENS: u32 = OPENS_MASK as u32;

/// A decoded state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) kind: Kind,
    pub(crate) in_flight: u32,
    pub(crate) successes: u32,
    pub(crate) opens: u32,
    pub(crate) generation: u64,
}

impl Word {
    /// The state of a new breaker.
    pub(crate) const INITIAL: u64 = 0;

    #[inline(always)]
    pub(crate) const fn kind_of(raw: u64) -> Kind {
        Kind::from_bits(raw & KIND_MASK)
    }

    /// Whether a word of this kind admits a call as it is: one shift and one test
    /// against `kinds`, a bit set over discriminants (the breaker's own
    /// [`Kind::ADMIT_FREELY`]: see the engine's `admit_freely`), for the call path.
    #[inline(always)]
    pub(crate) const fn admits_in(raw: u64, kinds: u64) -> bool {
        kinds >> (raw & KIND_MASK) & 1 != 0
    }

    #[inline(always)]
    pub(crate) const fn generation_of(raw: u64) -> u64 {
        raw >> GEN_SHIFT
    }

    #[inline]
    pub(crate) const fn unpack(raw: u64) -> Self {
        Self {
            kind: Kind::from_bits(raw & KIND_MASK),
            in_flight: ((raw >> IN_FLIGHT_SHIFT) & COUNT_MASK) as u32,
            successes: ((raw >> SUCCESSES_SHIFT) & COUNT_MASK) as u32,
            opens: ((raw >> OPENS_SHIFT) & OPENS_MASK) as u32,
            generation: raw >> GEN_SHIFT,
        }
    }

    /// Packs the word. Counts are masked, so a caller bug can corrupt a count but never
    /// the kind or the generation.
    #[inline]
    pub(crate) const fn pack(self) -> u64 {
        self.kind.bits()
            | ((self.in_flight as u64 & COUNT_MASK) << IN_FLIGHT_SHIFT)
            | ((self.successes as u64 & COUNT_MASK) << SUCCESSES_SHIFT)
            | ((self.opens as u64 & OPENS_MASK) << OPENS_SHIFT)
            | (self.generation << GEN_SHIFT)
    }

    /// The next state: a new generation of `kind`, with no probes, keeping `opens`.
    /// Only the transition function calls it, and only together with what to publish.
    #[inline]
    pub(crate) const fn next(self, kind: Kind) -> Self {
        Self {
            kind,
            in_flight: 0,
            successes: 0,
            opens: self.opens,
            generation: self.generation.wrapping_add(1) & (u64::MAX >> GEN_SHIFT),
        }
    }
}

const DEADLINE_BITS: u32 = 40;
const DEADLINE_MASK: u64 = (1 << DEADLINE_BITS) - 1;
const TAG_MASK: u64 = (1 << 24) - 1;
const MILLI: u64 = 1_000_000;

/// Packs a deadline (nanoseconds of the breaker's clock) for `generation`, relative to
/// `base` (the clock at build), rounded up to the next millisecond and saturating.
#[inline]
pub(crate) const fn pack_deadline(generation: u64, deadline_nanos: u64, base: u64) -> u64 {
    let millis = deadline_nanos.saturating_sub(base).div_ceil(MILLI);
    let millis = if millis > DEADLINE_MASK { DEADLINE_MASK } else { millis };
    ((generation & TAG_MASK) << DEADLINE_BITS) | millis
}

/// The deadline (nanoseconds of the breaker's clock) if the word belongs to `generation`.
#[inline]
pub(crate) const fn deadline_for(raw: u64, generation: u64, base: u64) -> Option<u64> {
    if raw >> DEADLINE_BITS == generation & TAG_MASK {
        Some(base.saturating_add((raw & DEADLINE_MASK) * MILLI))
    } else {
        None
    }
}

/// What the deadline word says about `generation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// The deadline of this generation, in nanoseconds.
    At(u64),
    /// The word still holds an older generation's deadline: the thread that made this
    /// generation has not stored its own yet.
    Pending,
    /// The word holds a newer generation's deadline: the state word this generation
    /// came from may be stale; load it again.
    Stale,
}

/// Reads the deadline word `raw` for `generation`.
#[inline]
pub(crate) const fn read_deadline(raw: u64, generation: u64, base: u64) -> Deadline {
    match deadline_for(raw, generation, base) {
        Some(d) => Deadline::At(d),
        None if deadline_is_older(raw, generation) => Deadline::Pending,
        None => Deadline::Stale,
    }
}

/// Whether the tag of `raw` is older than `generation` (serial-number arithmetic on
/// 24 bits): a writer may replace only a deadline that is older than its own.
#[inline]
pub(crate) const fn deadline_is_older(raw: u64, generation: u64) -> bool {
    let tag = raw >> DEADLINE_BITS;
    let diff = (generation & TAG_MASK).wrapping_sub(tag) & TAG_MASK;
    diff != 0 && diff < 1 << 23
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn word_roundtrips(kind in proptest::sample::select(Kind::ALL.to_vec()), in_flight in 0u32..=MAX_PROBES, successes in 0u32..=MAX_PROBES,
                           opens in 0u32..=MAX_OPENS, generation in 0u64..(1 << 35)) {
            let w = Word { kind, in_flight, successes, opens, generation };
            prop_assert_eq!(Word::unpack(w.pack()), w);
            prop_assert_eq!(Word::kind_of(w.pack()), kind);
            prop_assert_eq!(Word::generation_of(w.pack()), generation);
        }

        #[test]
        fn deadline_roundtrips_to_the_millisecond(generation in any::<u64>(), base in any::<u64>(), offset in 0u64..(1 << 39) * MILLI) {
            let nanos = base.saturating_add(offset);
            let raw = pack_deadline(generation, nanos, base);
            let back = deadline_for(raw, generation, base).unwrap();
            prop_assert!(back >= nanos && back - nanos < MILLI || back == u64::MAX);
            prop_assert!(deadline_for(raw, generation.wrapping_add(1), base).is_none());
        }
    }

    #[test]
    fn generation_wraps_without_touching_other_fields() {
        let top = Word { kind: Kind::Open, in_flight: 3, successes: 2, opens: 7, generation: u64::MAX >> GEN_SHIFT };
        let next = top.next(Kind::HalfOpen);
        assert_eq!(next.generation, 0);
        assert_eq!(next.opens, 7);
        assert_eq!(Word::unpack(next.pack()), next);
    }

    #[test]
    fn deadline_saturates_instead_of_overflowing() {
        let raw = pack_deadline(1, u64::MAX, 0);
        assert_eq!(deadline_for(raw, 1, 0), Some(DEADLINE_MASK * MILLI));
        assert_eq!(deadline_for(pack_deadline(1, u64::MAX, u64::MAX - 5), 1, u64::MAX - 5), Some(u64::MAX));
    }

    #[test]
    fn deadlines_far_from_the_clock_origin_keep_their_value() {
        let base = 10 * 365 * 86_400 * 1_000_000_000u64; // a clock 10 years past its origin
        let raw = pack_deadline(3, base + 30 * MILLI * 1000, base);
        assert_eq!(deadline_for(raw, 3, base), Some(base + 30 * MILLI * 1000));
    }

    #[test]
    fn older_tags_are_detected_across_the_wrap() {
        assert!(deadline_is_older(pack_deadline(5, 0, 0), 6));
        assert!(!deadline_is_older(pack_deadline(6, 0, 0), 6));
        assert!(!deadline_is_older(pack_deadline(7, 0, 0), 6));
        assert!(deadline_is_older(pack_deadline(TAG_MASK, 0, 0), TAG_MASK + 1));
    }

    /// Half the tag space is the edge of serial-number arithmetic: a tag `2^23 - 1`
    /// behind is older, one exactly `2^23` behind is not (it reads as ahead).
    #[test]
    fn older_stops_half_the_tag_space_behind() {
        let generation = 1 << 24 | 5;
        assert!(deadline_is_older(pack_deadline(generation - ((1 << 23) - 1), 0, 0), generation));
        assert!(!deadline_is_older(pack_deadline(generation - (1 << 23), 0, 0), generation));
    }

    #[test]
    fn a_deadline_word_reads_as_this_generations_an_older_ones_or_a_newer_ones() {
        let base = 1_000 * MILLI;
        assert_eq!(read_deadline(pack_deadline(6, base + 7 * MILLI, base), 6, base), Deadline::At(base + 7 * MILLI));
        assert_eq!(read_deadline(pack_deadline(5, base, base), 6, base), Deadline::Pending, "not stored yet");
        assert_eq!(read_deadline(pack_deadline(7, base, base), 6, base), Deadline::Stale, "a newer generation's");
    }
}
