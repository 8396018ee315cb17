//! How long an open breaker waits before it lets a trial call through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ConfigError;

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
    Exponential { base: Duration, max: Duration },
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
        Self { kind: Kind::Exponential { base, max }, jitter: 0.0 }
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
            Kind::Exponential { base, .. } if base.is_zero() => {
                return Err(ConfigError::new("open_wait.base", base, "a duration greater than zero"));
            }
            Kind::Exponential { base, max } if max < base => {
                return Err(ConfigError::new("open_wait.max", max, format!("at least the base wait ({base:?})")));
            }
            _ => {}
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::new("open_wait.jitter", self.jitter, "a fraction from 0.0 to 1.0 (not NaN)"));
        }
        Ok(())
    }

    /// The wait after the `opens`-th consecutive opening; `random` is a uniform `u64`.
    pub(crate) fn wait(&self, opens: u32, random: u64) -> Duration {
        let opens = opens.max(1);
        let wait = match &self.kind {
            Kind::Fixed(d) => *d,
            Kind::Exponential { base, max } => {
                let factor = 1u32.checked_shl(opens - 1).unwrap_or(u32::MAX);
                base.saturating_mul(factor).min(*max)
            }
            // User code runs after the transition is published: a panic there must not
            // leave the breaker without a deadline. It falls back to the default wait.
            Kind::Custom(f) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(opens))).unwrap_or(Duration::from_secs(30))
            }
        };
        if self.jitter > 0.0 {
            // 53 random bits as a fraction in [0, 1). The product is computed in f64
            // seconds and converted back without panicking (a wait near Duration::MAX
            // saturates).
            let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
            Duration::try_from_secs_f64(wait.as_secs_f64() * (1.0 - self.jitter * unit)).unwrap_or(wait)
        } else {
            wait
        }
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
            Kind::Exponential { base, max } => d.field("base", base).field("max", max),
            Kind::Custom(_) => d.field("custom", &"Fn(u32) -> Duration"),
        };
        d.field("jitter", &self.jitter).finish()
    }
}

/// splitmix64: a fast, well-mixed sequence from a counter, for jitter.
pub(crate) fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
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
        fn jitter_stays_within_its_fraction(random in any::<u64>(), fraction in 0.0f64..=1.0) {
            let w = OpenWait::fixed(Duration::from_secs(100)).with_jitter(fraction);
            let got = w.wait(1, random).as_secs_f64();
            prop_assert!(got <= 100.0 && got >= 100.0 * (1.0 - fraction) - 1e-9);
        }
    }
}
