//! The kind of state a breaker is in: the one list of states that everything else
//! (the state word, [`State`], rejections, telemetry) derives from.
//!
//! Every `match` on a [`Kind`] is exhaustive, so adding a kind makes the compiler
//! point at each place that must decide what it means: its [`State`], whether it
//! admits calls without looking further, and its rules in
//! [`transition`](super::transition).

use crate::State;

/// The kind field of the state word (3 bits: up to eight kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Kind {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
    ForcedOpen = 3,
    Disabled = 4,
    Recovering = 5,
}

impl Kind {
    /// The kind after `self` in discriminant order, `None` after the last one. The
    /// exhaustive match is what makes [`ALL`](Self::ALL) complete: a new kind must say
    /// where it stands.
    const fn successor(self) -> Option<Self> {
        match self {
            Self::Closed => Some(Self::Open),
            Self::Open => Some(Self::HalfOpen),
            Self::HalfOpen => Some(Self::ForcedOpen),
            Self::ForcedOpen => Some(Self::Disabled),
            Self::Disabled => Some(Self::Recovering),
            Self::Recovering => None,
        }
    }

    /// How many kinds there are.
    pub(crate) const COUNT: usize = {
        let mut n = 1;
        let mut k = Self::Closed;
        while let Some(next) = k.successor() {
            k = next;
            n += 1;
        }
        n
    };

    /// Every kind, in discriminant order (`ALL[k as usize] == k`).
    pub(crate) const ALL: [Self; Self::COUNT] = {
        let mut all = [Self::Closed; Self::COUNT];
        let mut i = 1;
        let mut k = Self::Closed;
        while let Some(next) = k.successor() {
            all[i] = next;
            k = next;
            i += 1;
        }
        all
    };

    /// The kind whose discriminant is `bits`. Only a kind's own discriminant is ever
    /// packed (see `packed.rs`), so any other value is a corrupted word; it reads as
    /// `ForcedOpen`, the state that admits nothing, rather than panicking on a call path.
    #[inline(always)]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        // A match, not a lookup in `ALL`: the compiler turns it into the identity on
        // the discriminants, so matching on the result is one jump on the bits. The
        // test `all_lists_every_kind_at_its_discriminant` keeps it in step with `ALL`.
        match bits {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::ForcedOpen,
            4 => Self::Disabled,
            5 => Self::Recovering,
            _ => Self::ForcedOpen,
        }
    }

    /// The discriminant, as packed in the state word.
    #[inline(always)]
    pub(crate) const fn bits(self) -> u64 {
        self as u64
    }

    /// The public state of this kind (before the open-wait view of
    /// [`Breaker::state`](crate::Breaker::state)).
    pub(crate) const fn state(self) -> State {
        match self {
            Self::Closed => State::Closed,
            Self::Open => State::Open,
            Self::HalfOpen => State::HalfOpen,
            Self::ForcedOpen => State::ForcedOpen,
            Self::Disabled => State::Disabled,
            Self::Recovering => State::Recovering,
        }
    }

    /// The kind of a public state.
    #[cfg(any(feature = "metrics", test))]
    pub(crate) const fn of(state: State) -> Self {
        match state {
            State::Closed => Self::Closed,
            State::Open => Self::Open,
            State::HalfOpen => Self::HalfOpen,
            State::ForcedOpen => Self::ForcedOpen,
            State::Disabled => Self::Disabled,
            State::Recovering => Self::Recovering,
        }
    }

    /// The kinds that admit every call without reading the clock or changing the word,
    /// as a bit set over discriminants: the call path's one test.
    pub(crate) const ADMIT_FREELY: u64 = {
        let mut set = 0;
        let mut i = 0;
        while i < Self::COUNT {
            if super::transition::admits_freely(Self::ALL[i]) {
                set |= 1 << i;
            }
            i += 1;
        }
        set
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_at_its_discriminant() {
        assert_eq!(Kind::COUNT, 6);
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert_eq!(Kind::from_bits(i as u64), k);
            assert_eq!(Kind::of(k.state()), k);
        }
    }

    #[test]
    fn corrupted_bits_admit_nothing() {
        for bits in Kind::COUNT as u64..8 {
            assert_eq!(Kind::from_bits(bits), Kind::ForcedOpen);
        }
    }

    #[test]
    fn closed_and_disabled_admit_freely() {
        let free: Vec<Kind> = Kind::ALL.into_iter().filter(|k| Kind::ADMIT_FREELY >> k.bits() & 1 == 1).collect();
        assert_eq!(free, [Kind::Closed, Kind::Disabled]);
    }
}
