//! Classifiers: what a call's result means for the breaker.

use crate::{Outcome, Report};

/// Maps a call's result to a [`Report`]: success, failure or ignored, with an optional
/// duration and retry-after hint.
///
/// Any `Fn(&Result<T, E>) -> R` where `R: Into<Report>` (for example a closure returning
/// an [`Outcome`]) is a classifier. [`OkIsSuccess`] is the default: `Ok` is a success,
/// `Err` a failure.
///
/// # Examples
///
/// ```
/// use breakerbox::{Classify, Outcome};
///
/// // A 404 says nothing about the service's health.
/// let classify = |r: &Result<u16, std::io::Error>| match r {
///     Ok(500..) | Err(_) => Outcome::Failure,
///     Ok(404) => Outcome::Ignored,
///     Ok(_) => Outcome::Success,
/// };
/// assert_eq!(classify.classify(&Ok(404)).outcome(), Outcome::Ignored);
/// ```
pub trait Classify<T, E> {
    /// What `result` means.
    fn classify(&self, result: &Result<T, E>) -> Report;
}

impl<T, E, F, R> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> R,
    R: Into<Report>,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Report {
        self(result).into()
    }
}

/// The default classifier: `Ok` is a success, `Err` a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct OkIsSuccess;

impl<T, E> Classify<T, E> for OkIsSuccess {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Report {
        Report::new(if result.is_ok() { Outcome::Success } else { Outcome::Failure })
    }
}
