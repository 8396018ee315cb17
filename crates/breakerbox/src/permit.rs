//! Permits: permission to make one call, and the duty to say how it went.
//!
//! [`Permit`] borrows its breaker, [`OwnedPermit`] holds a handle (`'static`, for
//! spawned tasks); both are one `Held` ticket, which reports exactly once: by
//! `record`, or, when dropped without a report, by the engine's `abandon`.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;

use crate::engine::{Engine, Ticket};
use crate::{Outcome, Report, State};

/// A ticket and what holds its engine (a reference or an `Arc`): what both permits are.
/// Each permit reports exactly once, by `record` or, dropped without a report, by the
/// engine's `abandon`: [`Permit`] skips its drop with `ManuallyDrop` (it stays two
/// words and a ticket, passed in registers on the call path), [`OwnedPermit`] takes
/// its `Held` out of an `Option` (it must drop its `Arc`).
struct Held<E: Deref<Target = Engine>> {
    engine: E,
    ticket: Ticket,
}

impl<E: Deref<Target = Engine>> Held<E> {
    #[inline(always)]
    fn record(&self, report: Report) {
        self.engine.complete(self.ticket, report);
    }

    fn abandon(&self) {
        self.engine.abandon(self.ticket);
    }

    fn release(&self) {
        self.engine.release(self.ticket);
    }

    fn admitted_in(&self) -> State {
        self.ticket.admitted_in()
    }

    fn fmt(&self, f: &mut fmt::Formatter<'_>, type_name: &str) -> fmt::Result {
        f.debug_struct(type_name).field("breaker", &self.engine.name).field("admitted_in", &self.admitted_in()).finish()
    }
}

/// Permission to make one call. Report how it went with [`success`](Self::success),
/// [`failure`](Self::failure), [`ignore`](Self::ignore) or [`record`](Self::record).
///
/// A permit remembers the state it was admitted in: if the breaker has changed state
/// since (it opened, closed, was reset), the report is counted in the metrics but
/// cannot change the state. Dropping a permit without a report (a cancelled future, an
/// early return) records nothing and frees its half-open slot; dropping it while the
/// thread panics records a failure.
#[must_use = "a permit dropped without a report records nothing: call success(), failure() or ignore()"]
pub struct Permit<'a> {
    held: Held<&'a Engine>,
}

impl<'a> Permit<'a> {
    #[inline(always)]
    pub(crate) fn new(engine: &'a Engine, ticket: Ticket) -> Self {
        Self { held: Held { engine, ticket } }
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    #[inline]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// The call's outcome says nothing about the service: touch no counter.
    #[inline]
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records an outcome, or a [`Report`] with the call's duration and a retry-after hint.
    #[inline]
    pub fn record(self, report: impl Into<Report>) {
        let this = ManuallyDrop::new(self);
        this.held.record(report.into());
    }

    /// Gives the permit back without a report: the call never reached the service (the
    /// caller's own mistake, such as a request its client could not build). It counts
    /// nothing, however long it was held (unlike a dropped permit, which the
    /// cancellation rule may count as a failure), and frees its half-open slot.
    pub fn release(self) {
        let this = ManuallyDrop::new(self);
        this.held.release();
    }

    /// The state the call was admitted in ([`State::Closed`], [`State::HalfOpen`] for a
    /// probe, [`State::Recovering`] along a ramp, or [`State::Disabled`]; in
    /// [shadow mode](crate::BreakerBuilder::shadow), [`State::Open`] for a call the
    /// breaker would have rejected).
    pub fn admitted_in(&self) -> State {
        self.held.admitted_in()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.held.abandon();
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.held.fmt(f, "Permit")
    }
}

/// A [`Permit`] that owns a handle to its breaker (`'static`), from
/// [`Breaker::try_acquire_owned`](crate::Breaker::try_acquire_owned).
#[must_use = "a permit dropped without a report records nothing: call success(), failure() or ignore()"]
pub struct OwnedPermit {
    held: Option<Held<Arc<Engine>>>,
}

impl OwnedPermit {
    pub(crate) fn new(engine: Arc<Engine>, ticket: Ticket) -> Self {
        Self { held: Some(Held { engine, ticket }) }
    }

    /// The call succeeded.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// The call's outcome says nothing about the service.
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records an outcome or a [`Report`].
    pub fn record(mut self, report: impl Into<Report>) {
        if let Some(held) = self.held.take() {
            held.record(report.into());
        }
    }

    /// As [`Permit::release`]: back without a report, counting nothing.
    pub fn release(mut self) {
        if let Some(held) = self.held.take() {
            held.release();
        }
    }

    /// The state the call was admitted in.
    pub fn admitted_in(&self) -> State {
        self.held.as_ref().map_or(State::Closed, Held::admitted_in)
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.abandon();
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.held {
            Some(held) => held.fmt(f, "OwnedPermit"),
            None => f.debug_struct("OwnedPermit").finish_non_exhaustive(),
        }
    }
}
