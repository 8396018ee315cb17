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

mod family;
mod fleet;
mod template;

use std::sync::Arc;
use std::time::Duration;

use breakerbox::{OwnedPermit, Report};
use pyo3::exceptions::{PyException, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// The Python package's `CircuitOpenError` and its `__new__`, set once at its import:
/// what `Breaker.call` and `Breaker.acquire` raise for a rejected call.
static OPEN_ERROR: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

/// `inspect.isawaitable`, for a result whose type is not one of the common plain ones.
static ISAWAITABLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Sets the exception class a rejection raises (`breakerbox.CircuitOpenError`).
#[pyfunction]
fn _set_open_error(py: Python<'_>, cls: Bound<'_, PyAny>) -> PyResult<()> {
    let new = cls.getattr("__new__")?.unbind();
    // A second import (importlib.reload) keeps the first class.
    let _ = OPEN_ERROR.set(py, (cls.unbind(), new));
    Ok(())
}

/// The `CircuitOpenError` for a rejected call. Built with `__new__(cls)` and one
/// attribute, `_rejected` (this module's `Rejected`), not the class's Python `__init__`:
/// its message and its `name`, `state`, `reason`, `retry_after` are made from
/// `_rejected` when first read (`CircuitOpenError.__getattr__`, `__str__`, `args`).
/// A rejection is the hot path while a service is down.
fn rejection(py: Python<'_>, rejected: breakerbox::Rejected) -> PyErr {
    let Some((cls, new)) = OPEN_ERROR.get(py) else {
        return PyRuntimeError::new_err(format!("{rejected} (breakerbox._core used without breakerbox)"));
    };
    let build = move || -> PyResult<Bound<'_, PyAny>> {
        let exc = new.bind(py).call1((cls.bind(py),))?;
        exc.setattr(pyo3::intern!(py, "_rejected"), Py::new(py, Rejected { inner: rejected })?)?;
        Ok(exc)
    };
    match build() {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Whether a result is awaitable; the common plain results skip `inspect.isawaitable`.
fn is_awaitable(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_none()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyBool>()
        || value.is_exact_instance_of::<PyDict>()
        || value.is_exact_instance_of::<PyList>()
        || value.is_exact_instance_of::<PyTuple>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyBytes>()
    {
        return Ok(false);
    }
    let check = ISAWAITABLE.get_or_try_init(py, || py.import("inspect")?.getattr("isawaitable").map(Bound::unbind))?;
    check.bind(py).call1((value,))?.is_truthy()
}

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
    use super::family::BreakerFamily;
    #[pymodule_export]
    use super::fleet::Fleet;
    #[pymodule_export]
    use super::{_set_open_error, Breaker, Permit, Rejected};

    /// `OPTIONS`: the keywords the options reader takes, so that the Python side forwards
    /// the same ones (its constructors spell their signatures out).
    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods as _;
        m.add("OPTIONS", pyo3::types::PyTuple::new(m.py(), super::template::OPTIONS)?)
    }
}

/// A circuit breaker: opens after `failure_threshold` consecutive failures (or at a
/// `failure_rate` over a window), stays open `open_wait` seconds (growing to
/// `max_open_wait`), then lets `half_open_probes` trial calls through at a time and
/// closes when they succeed (any failed probe opens it again). The options are read by
/// `template::template`.
#[pyclass(module = "breakerbox._core", frozen)]
#[derive(Debug)]
pub struct Breaker {
    pub(crate) inner: breakerbox::Breaker,
    pub(crate) info: Arc<template::Info>,
    /// Whether this object owns the options' Python references (a standalone breaker),
    /// and so reports them to the garbage collector; not a handle to a family's member.
    pub(crate) owns_options: bool,
}

/// How a call through a breaker went, to report on its permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    Failure,
    Ignore,
    /// The call never ran as a call (an awaitable was returned): counts nothing.
    Release,
    /// The caller gave up (a `BaseException` that is not an `Exception`).
    Cancel,
}

impl Verdict {
    /// Reports on a permit borrowed from a breaker.
    pub(crate) fn report(self, permit: breakerbox::Permit<'_>) {
        match self {
            Self::Success => permit.success(),
            Self::Failure => permit.failure(),
            Self::Ignore => permit.ignore(),
            Self::Release => permit.release(),
            Self::Cancel => drop(permit),
        }
    }

    /// Reports on an owned permit.
    pub(crate) fn report_owned(self, permit: OwnedPermit) {
        match self {
            Self::Success => permit.success(),
            Self::Failure => permit.failure(),
            Self::Ignore => permit.ignore(),
            Self::Release => permit.release(),
            Self::Cancel => drop(permit),
        }
    }
}

/// What a raised exception says: a failure or ignored for an `Exception` (by the
/// classifier, if any), a cancellation for any other `BaseException`.
pub(crate) fn verdict_of(py: Python<'_>, exc: &Bound<'_, PyAny>, classifier: Option<&template::Classifier>) -> Verdict {
    if !exc.is_instance_of::<PyException>() {
        return Verdict::Cancel;
    }
    match classifier {
        Some(c) if !c.is_failure(py, exc) => Verdict::Ignore,
        _ => Verdict::Failure,
    }
}

/// Calls `f(*args, **kwargs)` for a call admitted through a breaker: its result (or
/// exception, unchanged) and the verdict to report. A result that is awaitable is a
/// `TypeError` (a coroutine is closed): use `call_async`.
pub(crate) fn run_call<'py>(
    py: Python<'py>,
    f: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
    classifier: Option<&template::Classifier>,
) -> (Verdict, PyResult<Bound<'py, PyAny>>) {
    match f.call(args, kwargs) {
        Ok(result) => match is_awaitable(py, &result) {
            Ok(false) => (Verdict::Success, Ok(result)),
            Ok(true) => (Verdict::Release, Err(awaitable_error(py, f, &result))),
            Err(e) => (Verdict::Release, Err(e)),
        },
        Err(err) => (verdict_of(py, err.value(py).as_any(), classifier), Err(err)),
    }
}

/// The `TypeError` for an awaitable returned to `call`; closes a coroutine.
fn awaitable_error(py: Python<'_>, f: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyErr {
    let close = || -> PyResult<()> {
        if result.hasattr("close")? && py.import("inspect")?.getattr("iscoroutine")?.call1((result,))?.is_truthy()? {
            result.call_method0("close")?;
        }
        Ok(())
    };
    if let Err(e) = close() {
        return e;
    }
    let name = f
        .getattr("__qualname__")
        .map_or_else(|_| f.repr().map(|r| r.to_string()).unwrap_or_default(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "{name:?} returned an awaitable: use call_async (or decorate the async def) for a coroutine function"
    ))
}

/// A new `Permit` for Python, carrying the breaker's classifier.
pub(crate) fn new_permit(py: Python<'_>, permit: OwnedPermit, info: &template::Info) -> PyResult<Py<Permit>> {
    Py::new(py, Permit { inner: Some(permit), classifier: info.classifier.clone() })
}

#[pymethods]
impl Breaker {
    /// Builds a breaker. `failure_threshold`: an int from 1 to 2**32 - 1;
    /// `open_wait`: seconds, finite and greater than 0; `half_open_probes`: an int from
    /// 1 to 1023; `name`: for messages; the other options as keywords (see
    /// `template.rs`: `failure_rate`, `window`, `window_calls`, `min_calls`,
    /// `slow_call_duration`, `slow_call_rate`, `max_open_wait`, `open_wait_jitter`,
    /// `failure_on`, `is_failure`, `on_state_change`).
    #[new]
    #[pyo3(signature = (failure_threshold = None, open_wait = None, half_open_probes = None, name = None, **options))]
    fn new(
        py: Python<'_>,
        failure_threshold: Option<&Bound<'_, PyAny>>,
        open_wait: Option<&Bound<'_, PyAny>>,
        half_open_probes: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let all = match options {
            Some(o) => o.copy()?,
            None => PyDict::new(py),
        };
        for (key, value) in [
            ("failure_threshold", failure_threshold),
            ("open_wait", open_wait),
            ("half_open_probes", half_open_probes),
            ("name", name),
        ] {
            if let Some(value) = value {
                all.set_item(key, value)?;
            }
        }
        let t = template::template(Some(&all))?;
        // The template was checked: the core's error cannot happen, but is mapped anyway.
        let inner = t.builder.build().map_err(|e| template::config_error(&e))?;
        Ok(Self { inner, info: t.info, owns_options: true })
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if self.owns_options { self.info.traverse(&visit) } else { Ok(()) }
    }

    /// Asks to make a call: a `Permit` if admitted (make the call, then report it on
    /// the permit), a `Rejected` if not (do not make the call).
    fn try_acquire(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self.inner.try_acquire_owned() {
            Ok(permit) => new_permit(py, permit, &self.info)?.into_any(),
            Err(rejected) => Py::new(py, Rejected { inner: rejected })?.into_any(),
        })
    }

    /// As `try_acquire`, but a rejection raises the package's `CircuitOpenError`: a
    /// `Permit` or an exception.
    fn acquire(&self, py: Python<'_>) -> PyResult<Py<Permit>> {
        match self.inner.try_acquire_owned() {
            Ok(permit) => new_permit(py, permit, &self.info),
            Err(rejected) => Err(rejection(py, rejected)),
        }
    }

    /// Calls `fn(*args, **kwargs)` through the breaker and returns its result: raises
    /// the package's `CircuitOpenError` without calling `fn` when rejected. An
    /// `Exception` from `fn` is a failure (or ignored, by the classifier: `failure_on`,
    /// `is_failure`), any other `BaseException` (`KeyboardInterrupt`) a cancellation;
    /// either propagates unchanged. A result that is awaitable is a `TypeError` (the
    /// permit is released, a coroutine closed): use `call_async`.
    #[pyo3(signature = (f, /, *args, **kwargs))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        f: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let permit = match self.inner.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => return Err(rejection(py, rejected)),
        };
        let (verdict, result) = run_call(py, f, args, kwargs, self.info.classifier.as_deref());
        verdict.report(permit);
        result
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

    /// Consecutive failures that open the breaker (None with a rate policy).
    #[getter]
    fn failure_threshold(&self) -> Option<u32> {
        self.info.failure_threshold
    }

    /// The share of failed calls that opens the breaker (None without a rate policy).
    #[getter]
    fn failure_rate(&self) -> Option<f64> {
        self.info.failure_rate
    }

    /// Seconds the breaker stays open (the first wait, with a backoff).
    #[getter]
    fn open_wait(&self) -> f64 {
        self.info.open_wait
    }

    /// The longest open wait of the exponential backoff (None: a fixed wait).
    #[getter]
    fn max_open_wait(&self) -> Option<f64> {
        self.info.max_open_wait
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
        let policy = match (self.info.failure_threshold, self.info.failure_rate) {
            (Some(n), _) => format!("failure_threshold={n}"),
            (None, Some(r)) => format!("failure_rate={r}"),
            (None, None) => String::new(),
        };
        format!(
            "<breakerbox._core.Breaker {:?} state={} {policy} open_wait={}>",
            self.inner.name(),
            self.inner.state().as_str(),
            self.info.open_wait
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
    /// The breaker's classifier, for `error(exc)`; `None`: every `Exception` fails.
    classifier: Option<Arc<template::Classifier>>,
}

#[pymethods]
impl Permit {
    /// The call succeeded.
    fn success(&mut self) -> bool {
        self.inner.take().map(OwnedPermit::success).is_some()
    }

    /// The call failed. `retry_after`: seconds the service asked to be left alone (an
    /// HTTP `Retry-After`): if this failure opens the breaker, it stays open at least
    /// that long (up to 5 minutes).
    #[pyo3(signature = (retry_after = None))]
    fn failure(&mut self, retry_after: Option<f64>) -> bool {
        let Some(permit) = self.inner.take() else { return false };
        match retry_after.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
            Some(d) => permit.record(Report::failure().with_retry_after(d)),
            None => permit.failure(),
        }
        true
    }

    /// The call raised `exc`: a failure, or ignored if the breaker's classifier
    /// (`failure_on`, `is_failure`) says it is not one; a `BaseException` that is not an
    /// `Exception` (`KeyboardInterrupt`, `asyncio.CancelledError`) is a `cancel()`.
    fn error(&mut self, py: Python<'_>, exc: &Bound<'_, pyo3::exceptions::PyBaseException>) -> bool {
        let Some(permit) = self.inner.take() else { return false };
        verdict_of(py, exc.as_any(), self.classifier.as_deref()).report_owned(permit);
        true
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
