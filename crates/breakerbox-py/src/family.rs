//! `BreakerFamily`: the core's [`BreakerBox<String>`], one breaker per key (per host),
//! every one built from the same options as a `Breaker` (`template.rs`), bounded by
//! `max_breakers`.
//!
//! A lookup of a known key takes no lock, so the call path runs attached to the
//! interpreter, as `Breaker`'s does. The first use of a key takes the family's
//! insertion lock (and may evict): that is the one place the core can wait, so a miss
//! detaches from the interpreter (releases the GIL) while it looks up and inserts.
//! Another thread holding that lock (the fleet's watcher, or a thread in a miss) never
//! waits for the GIL while it holds it, so this cannot deadlock.

use std::sync::Arc;

use breakerbox::{BreakerBox, OwnedPermit};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyTuple};

use crate::template::{self, Info};
use crate::{Breaker, Permit, Rejected, new_permit, rejection, run_call};

/// A family of breakers, one per key, created on first use from one template (the same
/// options as `Breaker`), at most `max_breakers` of them (idle ones are evicted first;
/// an open one never is). Each breaker is named `"{name}/{key}"`.
#[pyclass(module = "breakerbox._core", name = "BreakerFamily", frozen)]
pub(crate) struct BreakerFamily {
    /// The core's family: shared with whoever watches it (the fleet).
    pub(crate) inner: BreakerBox<String>,
    pub(crate) info: Arc<Info>,
    max_breakers: usize,
}

impl BreakerFamily {
    /// Runs `f` on the breaker for `key`: attached on a hit (no lock), detached on a
    /// miss (the insertion lock).
    fn with_member<R: Send>(&self, py: Python<'_>, key: &str, f: impl FnOnce(&breakerbox::Breaker) -> R + Send) -> R {
        if self.inner.get_existing(key).is_some() {
            self.inner.with_breaker(key, f)
        } else {
            py.detach(|| self.inner.with_breaker(key, f))
        }
    }

    fn permit(&self, py: Python<'_>, key: &str) -> Result<OwnedPermit, breakerbox::Rejected> {
        self.with_member(py, key, breakerbox::Breaker::try_acquire_owned)
    }
}

#[pymethods]
impl BreakerFamily {
    /// Builds a family from the breaker options (see `Breaker`) and `max_breakers`
    /// (an int from 1; default 10,000).
    #[new]
    #[pyo3(signature = (*, max_breakers = None, **options))]
    fn new(max_breakers: Option<&Bound<'_, PyAny>>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let max = match max_breakers {
            None => 10_000,
            Some(m) => {
                let bad = || {
                    PyErr::new::<pyo3::exceptions::PyValueError, _>(format!(
                        "max_breakers must be an int from 1 (the most breakers the family keeps), got {m}"
                    ))
                };
                if m.is_instance_of::<pyo3::types::PyBool>() || !m.is_instance_of::<PyInt>() {
                    return Err(PyTypeError::new_err(format!(
                        "max_breakers must be an int from 1 (the most breakers the family keeps), got {}",
                        m.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
                    )));
                }
                match m.extract::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(bad()),
                }
            }
        };
        let t = template::template(options)?;
        let inner = BreakerBox::builder(t.builder).max_breakers(max).build().map_err(|e| template::config_error(&e))?;
        Ok(Self { inner, info: t.info, max_breakers: max })
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.info.traverse(&visit)
    }

    /// Calls `f(*args, **kwargs)` through the breaker for `key` (as `Breaker.call`).
    #[pyo3(signature = (key, f, /, *args, **kwargs))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        f: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let permit = self.permit(py, key).map_err(|r| rejection(py, r))?;
        let (verdict, result) = run_call(py, f, args, kwargs, self.info.classifier.as_deref());
        verdict.report_owned(permit);
        result
    }

    /// A `Permit` from the breaker for `key`, or a `Rejected`.
    fn try_acquire(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        Ok(match self.permit(py, key) {
            Ok(permit) => new_permit(py, permit, &self.info)?.into_any(),
            Err(rejected) => Py::new(py, Rejected { inner: rejected })?.into_any(),
        })
    }

    /// A `Permit` from the breaker for `key`; a rejection raises `CircuitOpenError`.
    fn acquire(&self, py: Python<'_>, key: &str) -> PyResult<Py<Permit>> {
        match self.permit(py, key) {
            Ok(permit) => new_permit(py, permit, &self.info),
            Err(rejected) => Err(rejection(py, rejected)),
        }
    }

    /// The breaker for `key` (created on first use), as a `_core.Breaker` sharing its
    /// state with the family.
    fn get(&self, py: Python<'_>, key: &str) -> Breaker {
        let inner = self.with_member(py, key, breakerbox::Breaker::clone);
        Breaker { inner, info: self.info.clone(), owns_options: false }
    }

    /// Whether the family holds a breaker for `key` (does not create one).
    fn __contains__(&self, key: &str) -> bool {
        self.inner.get_existing(key).is_some()
    }

    /// Removes the breaker for `key`; whether there was one.
    fn remove(&self, key: &str) -> bool {
        self.inner.remove(key).is_some()
    }

    /// The keys whose breakers are open (or forced open), sorted.
    fn open_keys(&self) -> Vec<String> {
        let mut keys = self.inner.open_keys();
        keys.sort_unstable();
        keys
    }

    /// `{key: state}` for every breaker of the family.
    fn states<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut states = self.inner.states();
        states.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let d = PyDict::new(py);
        for (key, state) in states {
            d.set_item(key, state.as_str())?;
        }
        Ok(d)
    }

    /// How many breakers the family holds.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Resets (closes) every breaker of the family.
    fn reset_all(&self) {
        self.inner.reset_all();
    }

    /// The template's name: each breaker is named `"{name}/{key}"`.
    #[getter]
    fn name(&self) -> &str {
        &self.info.name
    }

    /// The most breakers the family keeps.
    #[getter]
    fn max_breakers(&self) -> usize {
        self.max_breakers
    }

    fn __repr__(&self) -> String {
        format!(
            "<breakerbox._core.BreakerFamily {:?} breakers={} open={}>",
            self.info.name,
            self.inner.len(),
            self.inner.open_keys().len()
        )
    }
}
