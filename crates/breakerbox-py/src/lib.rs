//! `breakerbox._core`: the Rust core's [`breakerbox::Breaker`] for Python.
//!
//! The Python package `breakerbox` (`python/breakerbox/__init__.py`) is the public API:
//! the original `CircuitBreaker(http_client, error_threshold, time_window)` and a
//! Pythonic `Breaker`, both pure-Python glue over the three classes here. This module
//! is private (its name starts with an underscore) and keeps to the state machine:
//!
//! - `Breaker`: a consecutive-failures breaker with a fixed open wait and a bounded
//!   number of half-open probes; `try_acquire()` gives a `Permit` or a `Rejected`.
//! - `Permit`: permission for one call; `success()`, `failure()`, `ignore()`,
//!   `release()` or `cancel()` reports it, once.
//! - `Rejected`: why a call was refused, and when to retry.
//!
//! Nothing here blocks or waits, so nothing detaches from the interpreter: every call is
//! a few atomic operations on the core's state word. No user code runs here, so no lock
//! is ever held while Python code runs. Arguments are checked before they reach the core,
//! and a bad one is a `ValueError` or `TypeError` naming the argument, never a panic.
//!
//! The tests are Python tests (`tests/test_*.py`, run by `ci.sh`): a Rust test binary
//! would have to embed an interpreter.

use std::time::Duration;

use breakerbox::{OpenWait, OwnedPermit, Policy};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A seconds argument as a [`Duration`]: finite and greater than zero.
fn seconds(arg: &str, value: f64) -> PyResult<Duration> {
    if !value.is_finite() || value <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "{arg} must be a finite number of seconds greater than 0, got {value}"
        )));
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{arg} is too long to be a duration: {value} seconds")))
}

/// A count argument: an `int` from 1 to `max`.
fn count(arg: &str, value: &Bound<'_, PyAny>, max: u32) -> PyResult<u32> {
    // `bool` is an `int` in Python: `failure_threshold=True` is a mistake, not a 1.
    if value.is_instance_of::<pyo3::types::PyBool>() || !value.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be an int from 1 to {max}, got {}",
            value.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
        )));
    }
    match value.extract::<i64>() {
        Ok(n) if (1..=i64::from(max)).contains(&n) => Ok(n as u32),
        _ => Err(PyValueError::new_err(format!("{arg} must be an int from 1 to {max}, got {value}"))),
    }
}

/// The `_core` extension module.
#[pymodule]
mod _core {
    #[pymodule_export]
    use super::{Breaker, Permit, Rejected};
}

/// A circuit breaker: opens after `failure_threshold` consecutive failures, stays open
/// `open_wait` seconds, then lets `half_open_probes` trial calls through at a time and
/// closes when they succeed (any failed probe opens it again).
#[pyclass(module = "breakerbox._core", frozen)]
#[derive(Debug)]
pub struct Breaker {
    inner: breakerbox::Breaker,
    failure_threshold: u32,
    open_wait: f64,
}

#[pymethods]
impl Breaker {
    /// Builds a breaker. `failure_threshold`: an int from 1 to 2**32 - 1;
    /// `open_wait`: seconds, finite and greater than 0; `half_open_probes`: an int from
    /// 1 to 1023; `name`: for messages.
    #[new]
    #[pyo3(signature = (failure_threshold, open_wait, half_open_probes = None, name = None))]
    fn new(
        failure_threshold: &Bound<'_, PyAny>,
        open_wait: f64,
        half_open_probes: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
    ) -> PyResult<Self> {
        let threshold = count("failure_threshold", failure_threshold, u32::MAX)?;
        let wait = seconds("open_wait", open_wait)?;
        let probes = half_open_probes.map(|p| count("half_open_probes", p, 1023)).transpose()?.unwrap_or(1);
        let mut builder = breakerbox::Breaker::builder()
            .policy(Policy::consecutive_failures(threshold))
            .open_wait(OpenWait::fixed(wait))
            .half_open_probes(probes)
            // A Python caller that gives up (KeyboardInterrupt) calls `cancel()`: count
            // it as a failure only if it was in flight a second or more, as in Rust.
            .cancel_counts_after(Duration::from_secs(1));
        if let Some(name) = name {
            builder = builder.name(name);
        }
        // The core checks again; its error names the setting and what it expects.
        let inner = builder.build().map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { inner, failure_threshold: threshold, open_wait })
    }

    /// Asks to make a call: a `Permit` if admitted (make the call, then report it on
    /// the permit), a `Rejected` if not (do not make the call).
    fn try_acquire(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self.inner.try_acquire_owned() {
            Ok(permit) => Py::new(py, Permit { inner: Some(permit) })?.into_any(),
            Err(rejected) => Py::new(py, Rejected { inner: rejected })?.into_any(),
        })
    }

    /// The state: 'closed', 'open', 'half_open', 'forced_open', 'disabled' or
    /// 'recovering'. An open breaker whose wait has passed reads 'half_open'.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Whether calls are being rejected (open, or forced open).
    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    /// Whether the breaker is half-open (or open with its wait passed).
    fn is_half_open(&self) -> bool {
        self.inner.is_half_open()
    }

    /// Whether the breaker is closed.
    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Closes the breaker and clears its failure streak. Outcomes of calls admitted
    /// before the reset no longer count.
    fn reset(&self) {
        self.inner.reset();
    }

    /// The breaker's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// Consecutive failures that open the breaker.
    #[getter]
    fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    /// Seconds the breaker stays open.
    #[getter]
    fn open_wait(&self) -> f64 {
        self.open_wait
    }

    /// Trial calls admitted at once while half-open.
    #[getter]
    fn half_open_probes(&self) -> u32 {
        self.inner.half_open_probes()
    }

    /// A snapshot of the state and counters, as a dict: `state`, `successes`,
    /// `failures`, `ignored`, `rejected` (totals since the breaker was built),
    /// `consecutive_failures`, `opens`, `probes_in_flight`, `time_in_state` (seconds).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics();
        let d = PyDict::new(py);
        d.set_item("name", self.inner.name())?;
        d.set_item("state", m.state.as_str())?;
        d.set_item("successes", m.successes)?;
        d.set_item("failures", m.failures)?;
        d.set_item("ignored", m.ignored)?;
        d.set_item("rejected", m.rejected)?;
        d.set_item("consecutive_failures", m.consecutive_failures)?;
        d.set_item("opens", m.opens)?;
        d.set_item("probes_in_flight", m.probes_in_flight)?;
        d.set_item("time_in_state", m.time_in_state.as_secs_f64())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "<breakerbox._core.Breaker {:?} state={} failure_threshold={} open_wait={}>",
            self.inner.name(),
            self.inner.state().as_str(),
            self.failure_threshold,
            self.open_wait
        )
    }
}

/// Permission to make one call. Report how it went once: `success()`, `failure()`,
/// `ignore()` (the outcome says nothing about the service), `release()` (the call never
/// reached the service) or `cancel()` (the caller gave up: a failure if it was in flight
/// a second or more). Each returns whether it reported: a second report does nothing.
/// A permit garbage-collected without a report counts as `cancel()`.
#[pyclass(module = "breakerbox._core")]
#[derive(Debug)]
pub struct Permit {
    inner: Option<OwnedPermit>,
}

#[pymethods]
impl Permit {
    /// The call succeeded.
    fn success(&mut self) -> bool {
        self.inner.take().map(OwnedPermit::success).is_some()
    }

    /// The call failed.
    fn failure(&mut self) -> bool {
        self.inner.take().map(OwnedPermit::failure).is_some()
    }

    /// The call's outcome says nothing about the service: counts nothing, frees a
    /// half-open slot without closing.
    fn ignore(&mut self) -> bool {
        self.inner.take().map(OwnedPermit::ignore).is_some()
    }

    /// The call never reached the service: counts nothing, however long it was held.
    fn release(&mut self) -> bool {
        self.inner.take().map(OwnedPermit::release).is_some()
    }

    /// The caller gave up on the call: a failure if it was in flight a second or more,
    /// nothing otherwise.
    fn cancel(&mut self) -> bool {
        self.inner.take().map(drop).is_some()
    }

    /// The state the call was admitted in: 'closed', or 'half_open' for a probe.
    #[getter]
    fn admitted_in(&self) -> Option<&'static str> {
        self.inner.as_ref().map(|p| p.admitted_in().as_str())
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            Some(p) => format!("<breakerbox._core.Permit admitted_in={}>", p.admitted_in().as_str()),
            None => "<breakerbox._core.Permit reported>".to_owned(),
        }
    }
}

/// Why a call was refused; it was not made.
#[pyclass(module = "breakerbox._core", frozen)]
#[derive(Debug)]
pub struct Rejected {
    inner: breakerbox::Rejected,
}

#[pymethods]
impl Rejected {
    /// The name of the breaker that refused the call.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The breaker's state: 'open', 'half_open' (every probe slot taken),
    /// 'forced_open'...
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Why: 'open', 'half_open_full', 'forced_open', 'throttled' or 'recovering'.
    #[getter]
    fn reason(&self) -> &'static str {
        self.inner.reason().as_str()
    }

    /// Seconds until the breaker admits a trial call, when known (None when half-open
    /// with every probe slot taken).
    #[getter]
    fn retry_after(&self) -> Option<f64> {
        self.inner.retry_after().map(|d| d.as_secs_f64())
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<breakerbox._core.Rejected {:?}>", self.inner.to_string())
    }
}
