//! How long to wait: an open breaker before its trial call ([`OpenWait`]), and any
//! caller between attempts ([`Backoff`], the exponential backoff with jitter that
//! [`OpenWait::exponential`] and breakerbox-http's retries share).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ConfigError;

/// An exponential backoff with jitter: `base` before the first retry, doubling with each
/// attempt up to `max`, each wait shortened by a random fraction of up to `jitter`.
///
/// [`delay`](Self::delay) is a pure function of the attempt number and a random `u64`,
/// so that the caller owns the randomness (a counter mixed by [`mix`](Self::mix), or a
/// fixed value in tests) and the arithmetic never panics: the doubling and a wait near
/// `Duration::MAX` saturate. [`OpenWait::exponential`] waits with it between openings;
/// breakerbox-http's `Retry` between attempts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let waits: Vec<_> = (1..=5).map(|attempt| backoff.delay(attempt, 0).as_millis()).collect();
/// assert_eq!(waits, [100, 200, 400, 800, 1000]);
///
/// // With jitter, each wait is shortened by up to half, depending on `random`.
/// let jittered = backoff.with_jitter(0.5);
/// let random = Backoff::mix(42);
/// let wait = jittered.delay(3, random);
/// assert!(wait <= Duration::from_millis(400) && wait >= Duration::from_millis(200));
/// assert_eq!(wait, jittered.delay(3, random), "the same random, the same wait");
/// ```
///
/// # Default
///
/// No default: `base` and `max` are the caller's. The jitter starts at zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// The step by which to advance a counter between calls of [`mix`](Self::mix)
    /// (splitmix64's golden gamma): `mix(seed)`, `mix(seed + STEP)`, ... look independent.
    pub const STEP: u64 = 0x9E37_79B9_7F4A_7C15;

    /// Waits `base` after the first attempt and doubles with each one, up to `max`
    /// (a `max` below `base` caps every wait at `max`); no jitter.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, jitter: 0.0 }
    }

    /// Shortens each wait by a random fraction of up to `fraction`, so that callers that
    /// failed together do not all try again at the same instant.
    ///
    /// The fraction is meant to be from 0.0 to 1.0, and the types that hold a backoff
    /// reject any other at build time; `delay` never panics on one (NaN, or a fraction
    /// of 0.0 or less, waits the full backoff).
    #[must_use]
    pub const fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Removes the jitter.
    #[must_use]
    pub const fn without_jitter(mut self) -> Self {
        self.jitter = 0.0;
        self
    }

    /// The wait after the first attempt.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The longest wait.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The jitter fraction.
    pub const fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The wait after attempt number `attempt` (from 1; 0 counts as 1): `base * 2^(attempt
    /// - 1)`, at most `max`, shortened by `jitter` times a fraction read from `random`
    /// (a uniform `u64`, for example from [`mix`](Self::mix)).
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let factor = 1u32.checked_shl(attempt.max(1) - 1).unwrap_or(u32::MAX);
        shorten(self.base.saturating_mul(factor).min(self.max), self.jitter, random)
    }

    /// A well-mixed `u64` from `state` (splitmix64), for the `random` of
    /// [`delay`](Self::delay): advance a counter by [`STEP`](Self::STEP) between calls.
    pub const fn mix(state: u64) -> u64 {
        splitmix64(state)
    }
}

/// `wait` shortened by up to `jitter` (a fraction) at random.
fn shorten(wait: Duration, jitter: f64, random: u64) -> Duration {
    if jitter > 0.0 {
        // 53 random bits as a fraction in [0, 1). The product is computed in f64
        // seconds and converted back without panicking (a wait near Duration::MAX
        // saturates, a jitter above 1.0 that would go below zero keeps the wait).
        let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
        Duration::try_from_secs_f64(wait.as_secs_f64() * (1.0 - jitter * unit)).unwrap_or(wait)
    } else {
        wait
    }
}

/// The open wait: how long the breaker stays open before it turns half-open.
///
/// The wait may grow with the number of consecutive openings (an opening that
/// follows a failed half-open trial without a close in between); a close resets it.
/// A failure carrying a retry-after hint (an HTTP `Retry-After`) that trips the breaker
/// lengthens the wait to the hint, up to the breaker's `retry_after_limit`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use breakerbox::OpenWait;
///
/// // The original design: a fixed window.
/// let _fixed = OpenWait::fixed(Duration::from_secs(30));
/// // 1 s, 2 s, 4 s ... up to 1 min, each shortened by up to 20 % at random.
/// let _growing = OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(60)).with_jitter(0.2);
/// // Anything else: a function of the number of consecutive openings (1, 2, 3 ...).
/// let _custom = OpenWait::from_fn(|opens| Duration::from_secs(u64::from(opens) * 10));
/// ```
///
/// # Default
///
/// `OpenWait::fixed(Duration::from_secs(30))`, no jitter.
#[derive(Clone)]
pub struct OpenWait {
    kind: Kind,
    jitter: f64,
}

#[derive(Clone)]
enum Kind {
    Fixed(Duration),
    /// A backoff without jitter: the open wait's own jitter applies to every kind.
    Exponential(Backoff),
    Custom(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl OpenWait {
    /// Always waits `wait` (greater than zero).
    pub const fn fixed(wait: Duration) -> Self {
        Self { kind: Kind::Fixed(wait), jitter: 0.0 }
    }

    /// Waits `base` after the first opening and doubles with each consecutive opening,
    /// up to `max` (`base` greater than zero, `max` at least `base`).
    pub const fn exponential(base: Duration, max: Duration) -> Self {
        Self { kind: Kind::Exponential(Backoff::new(base, max)), jitter: 0.0 }
    }

    /// Waits `f(opens)`, where `opens` counts consecutive openings from 1.
    pub fn from_fn(f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        Self { kind: Kind::Custom(Arc::new(f)), jitter: 0.0 }
    }

    /// Shortens each wait by a random fraction of up to `fraction` (0.0 to 1.0), so that
    /// many clients that opened together do not all probe at the same instant.
    #[must_use]
    pub const fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Removes the jitter.
    #[must_use]
    pub const fn without_jitter(mut self) -> Self {
        self.jitter = 0.0;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match &self.kind {
            Kind::Fixed(d) if d.is_zero() => {
                return Err(ConfigError::new("open_wait", d, "a duration greater than zero"));
            }
            Kind::Exponential(b) if b.base.is_zero() => {
                return Err(ConfigError::new("open_wait.base", b.base, "a duration greater than zero"));
            }
            Kind::Exponential(b) if b.max < b.base => {
                return Err(ConfigError::new("open_wait.max", b.max, format!("at least the base wait ({:?})", b.base)));
            }
            _ => {}
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::new("open_wait.jitter", self.jitter, "a fraction from 0.0 to 1.0 (not NaN)"));
        }
        Ok(())
    }

    /// The wait after a first opening, without jitter (the default probe lease).
    pub(crate) fn first(&self) -> Duration {
        self.wait(1, 0).max(Duration::from_millis(1))
    }

    /// The wait after the `opens`-th consecutive opening; `random` is a uniform `u64`.
    pub(crate) fn wait(&self, opens: u32, random: u64) -> Duration {
        let opens = opens.max(1);
        let wait = match &self.kind {
            Kind::Fixed(d) => *d,
            Kind::Exponential(b) => b.delay(opens, 0),
            // User code runs after the transition is published: a panic there must not
            // leave the breaker without a deadline. It falls back to the default wait.
            Kind::Custom(f) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(opens))).unwrap_or(Duration::from_secs(30))
            }
        };
        shorten(wait, self.jitter, random)
    }
}

impl Default for OpenWait {
    fn default() -> Self {
        Self::fixed(Duration::from_secs(30))
    }
}

impl fmt::Debug for OpenWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OpenWait");
        match &self.kind {
            Kind::Fixed(w) => d.field("fixed", w),
            Kind::Exponential(b) => d.field("base", &b.base).field("max", &b.max),
            Kind::Custom(_) => d.field("custom", &"Fn(u32) -> Duration"),
        };
        d.field("jitter", &self.jitter).finish()
    }
}

/// splitmix64: a fast, well-mixed sequence from a counter, for jitter (public as
/// [`Backoff::mix`]).
pub(crate) const fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(Backoff::STEP);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(all(test, not(breakerbox_loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exponential_doubles_then_caps() {
        let w = OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<_> = (1..=6).map(|n| w.wait(n, 0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(w.wait(u32::MAX, 0), Duration::from_secs(10));
    }

    #[test]
    fn backoff_doubles_then_caps_and_saturates() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let waits: Vec<_> = (0..=5).map(|n| b.delay(n, u64::MAX).as_millis()).collect();
        assert_eq!(waits, [100, 100, 200, 400, 500, 500], "attempt 0 counts as 1; no jitter, no effect of random");
        let huge = Backoff::new(Duration::MAX / 2, Duration::MAX).with_jitter(0.5);
        assert_eq!(huge.delay(u32::MAX, 0), Duration::MAX);
        assert!(huge.delay(2, u64::MAX) <= Duration::MAX);
        let inverted = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(inverted.delay(1, 0), Duration::from_secs(1), "a max below the base caps every wait");
    }

    #[test]
    fn a_backoff_reads_back_its_settings() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(3)).with_jitter(0.25);
        assert_eq!((b.base(), b.max(), b.jitter()), (Duration::from_millis(100), Duration::from_secs(3), 0.25));
        assert_eq!(b.without_jitter().jitter(), 0.0);
    }

    #[test]
    fn an_open_wait_debugs_as_its_settings() {
        let shown = |w: OpenWait| format!("{w:?}");
        assert_eq!(
            shown(OpenWait::fixed(Duration::from_secs(3)).with_jitter(0.2)),
            "OpenWait { fixed: 3s, jitter: 0.2 }"
        );
        assert_eq!(
            shown(OpenWait::exponential(Duration::from_secs(1), Duration::from_secs(8))),
            "OpenWait { base: 1s, max: 8s, jitter: 0.0 }"
        );
        assert!(shown(OpenWait::from_fn(|_| Duration::ZERO)).contains("custom"));
    }

    #[test]
    fn no_jitter_keeps_a_wait_to_the_nanosecond() {
        // 10^7 s and 1 ns: as f64 seconds the nanosecond is lost, so a jitter of 0 must
        // not take the floating-point path at all.
        let odd = Duration::new(10_000_000, 1);
        assert_eq!(Backoff::new(odd, Duration::MAX).delay(1, u64::MAX), odd);
        assert_eq!(OpenWait::fixed(odd).wait(1, u64::MAX), odd);
    }

    #[test]
    fn backoff_never_panics_on_a_bad_jitter() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        for jitter in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 1.5, 1e300] {
            for random in [0, 1 << 11, u64::MAX / 2, u64::MAX] {
                let wait = b.with_jitter(jitter).delay(3, random);
                assert!(wait <= Duration::from_secs(4), "{jitter} {random}: {wait:?}");
            }
        }
        assert_eq!(b.with_jitter(f64::NAN).delay(3, u64::MAX), Duration::from_secs(4));
        assert_eq!(b.with_jitter(0.9).without_jitter().delay(3, u64::MAX), Duration::from_secs(4));
    }

    #[test]
    fn mix_is_splitmix64() {
        // The first outputs of the reference splitmix64 seeded with 0.
        assert_eq!(Backoff::mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(Backoff::mix(Backoff::STEP), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(Backoff::mix(12345), splitmix64(12345));
    }

    #[test]
    fn invalid_waits_name_their_field() {
        let cases = [
            (OpenWait::fixed(Duration::ZERO), "open_wait"),
            (OpenWait::exponential(Duration::ZERO, Duration::from_secs(1)), "open_wait.base"),
            (OpenWait::exponential(Duration::from_secs(2), Duration::from_secs(1)), "open_wait.max"),
            (OpenWait::fixed(Duration::from_secs(1)).with_jitter(f64::NAN), "open_wait.jitter"),
            (OpenWait::fixed(Duration::from_secs(1)).with_jitter(1.5), "open_wait.jitter"),
        ];
        for (w, field) in cases {
            assert_eq!(w.validate().unwrap_err().field(), field);
        }
    }

    proptest! {
        #[test]
        fn waits_are_monotone_and_bounded(base_ms in 1u64..10_000, extra_ms in 0u64..100_000, opens in 1u32..200) {
            let base = Duration::from_millis(base_ms);
            let max = base + Duration::from_millis(extra_ms);
            let w = OpenWait::exponential(base, max);
            let a = w.wait(opens, 0);
            let b = w.wait(opens + 1, 0);
            prop_assert!(a <= b && b <= max && a >= base);
        }

        #[test]
        fn backoff_is_monotone_bounded_and_jitters_within_its_fraction(
            base_ms in 0u64..10_000, extra_ms in 0u64..100_000, attempt in 0u32..200,
            random in any::<u64>(), fraction in 0.0f64..=1.0,
        ) {
            let base = Duration::from_millis(base_ms);
            let max = base + Duration::from_millis(extra_ms);
            let b = Backoff::new(base, max);
            let (a, next) = (b.delay(attempt, random), b.delay(attempt + 1, random));
            prop_assert!(a <= next && next <= max && a >= base);
            let jittered = b.with_jitter(fraction).delay(attempt, random).as_secs_f64();
            prop_assert!(jittered <= a.as_secs_f64() + 1e-9 && jittered >= a.as_secs_f64() * (1.0 - fraction) - 1e-9);
        }

        #[test]
        fn an_exponential_open_wait_is_its_backoff(
            base_ms in 1u64..10_000, extra_ms in 0u64..100_000, opens in 0u32..200,
            random in any::<u64>(), fraction in 0.0f64..=1.0,
        ) {
            let (base, max) = (Duration::from_millis(base_ms), Duration::from_millis(base_ms + extra_ms));
            let wait = OpenWait::exponential(base, max).with_jitter(fraction);
            let backoff = Backoff::new(base, max).with_jitter(fraction);
            prop_assert_eq!(wait.wait(opens, random), backoff.delay(opens, random));
        }

        #[test]
        fn jitter_stays_within_its_fraction(random in any::<u64>(), fraction in 0.0f64..=1.0) {
            let w = OpenWait::fixed(Duration::from_secs(100)).with_jitter(fraction);
            let got = w.wait(1, random).as_secs_f64();
            prop_assert!(got <= 100.0 && got >= 100.0 * (1.0 - fraction) - 1e-9);
        }
    }
}
