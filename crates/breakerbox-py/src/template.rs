//! The breaker's options, from Python keyword arguments to a [`BreakerBuilder`]: the
//! one place where `Breaker(...)` and `BreakerFamily(...)` (a family's template) are
//! read, checked and translated.
//!
//! | keyword | core setting |
//! |---|---|
//! | `failure_threshold` | [`Policy::consecutive_failures`] (the default, 5) |
//! | `failure_rate`, `window` / `window_calls`, `min_calls` | [`Policy::failure_rate`] over a time or count window |
//! | `slow_call_duration`, `slow_call_rate` | [`Policy::slow_calls`], a rule beside the policy, over the same window |
//! | `open_wait`, `max_open_wait`, `open_wait_jitter` | [`OpenWait::fixed`], or [`OpenWait::exponential`] from `open_wait` to `max_open_wait`; jitter |
//! | `half_open_probes` | [`BreakerBuilder::half_open_probes`] |
//! | `name` | [`BreakerBuilder::name`] |
//! | `failure_on`, `is_failure` | the [`Classifier`] the bindings apply to a raised exception (not a core setting) |
//! | `on_state_change` | [`BreakerBuilder::on_state_change`], called as `fn(name, old, new)` |
//!
//! A value of `None` is the same as leaving the keyword out. A bad value is a
//! `TypeError` (wrong type) or `ValueError` (out of range) naming the keyword and what
//! it accepts; a range the core checks is reported from its [`ConfigError`] under the
//! keyword's name ([`config_error`]).

use std::sync::Arc;
use std::time::Duration;

use breakerbox::{BreakerBuilder, ConfigError, OpenWait, Policy, RatePolicy, Transition};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::{count, seconds};

/// The keywords [`template`] reads, in the order of the documentation.
pub(crate) const OPTIONS: &[&str] = &[
    "failure_threshold",
    "failure_rate",
    "window",
    "window_calls",
    "min_calls",
    "slow_call_duration",
    "slow_call_rate",
    "open_wait",
    "max_open_wait",
    "open_wait_jitter",
    "half_open_probes",
    "name",
    "failure_on",
    "is_failure",
    "on_state_change",
];

/// The default consecutive-failure threshold and open wait (the Python defaults).
const DEFAULT_THRESHOLD: u32 = 5;
const DEFAULT_OPEN_WAIT: f64 = 30.0;

/// What a raised `Exception` means: a failure, or nothing (ignored). `failure_on`
/// filters by type (default: every `Exception`), then `is_failure` decides (default:
/// yes). A `BaseException` that is not an `Exception` is never classified: the caller
/// gave up (a cancellation).
#[derive(Debug)]
pub(crate) struct Classifier {
    failure_on: Option<Py<PyAny>>,
    is_failure: Option<Py<PyAny>>,
}

impl Classifier {
    /// Whether the exception `exc` counts as a failure. A predicate that raises counts
    /// the call as ignored (a bug in the predicate says nothing about the service) and
    /// goes to `sys.unraisablehook`.
    pub(crate) fn is_failure(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> bool {
        if let Some(types) = &self.failure_on {
            match exc.is_instance(types.bind(py)) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    e.write_unraisable(py, Some(types.bind(py)));
                    return false;
                }
            }
        }
        if let Some(predicate) = &self.is_failure {
            let predicate = predicate.bind(py);
            return match predicate.call1((exc,)).and_then(|r| r.is_truthy()) {
                Ok(failure) => failure,
                Err(e) => {
                    e.write_unraisable(py, Some(predicate));
                    false
                }
            };
        }
        true
    }
}

/// What a breaker made from the template reports about its settings, shared by every
/// breaker of a family (and by its permits, for the classifier).
#[derive(Debug)]
pub(crate) struct Info {
    /// `None`: every `Exception` is a failure (no Python code runs to decide).
    pub(crate) classifier: Option<Arc<Classifier>>,
    /// The consecutive-failure threshold, or `None` with a rate policy.
    pub(crate) failure_threshold: Option<u32>,
    /// The failure rate, with a rate policy.
    pub(crate) failure_rate: Option<f64>,
    /// Seconds: the open wait (the first one, with a backoff).
    pub(crate) open_wait: f64,
    /// Seconds: the longest open wait of an exponential backoff.
    pub(crate) max_open_wait: Option<f64>,
    /// The name given (or the core's default, "breaker").
    pub(crate) name: String,
    /// Forwards state changes to the fleets watching these breakers (`fleet.rs`).
    pub(crate) hook: Arc<crate::fleet::Hook>,
    /// `on_state_change`, also held (once) by the core's listener closure.
    listener: Option<Py<PyAny>>,
}

impl Info {
    /// Visits, for the garbage collector, every reference to a Python object the options
    /// hold, so that a cycle through them (a listener that refers to its breaker) is
    /// collected: the classifier's, and the listener twice (this `Info`'s reference and
    /// the core's listener closure's, which lives as long as the breaker or family does).
    ///
    /// Only the one Python object that owns these references may call it: a standalone
    /// `Breaker`, or the `BreakerFamily`, never a handle to a family's member (that
    /// would visit them more often than they are referenced).
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(c) = &self.classifier {
            visit.call(&c.failure_on)?;
            visit.call(&c.is_failure)?;
        }
        if let Some(listener) = &self.listener {
            visit.call(listener)?;
            visit.call(listener)?;
        }
        Ok(())
    }
}

/// A checked template: the builder, and what the bindings keep beside it.
pub(crate) struct Template {
    pub(crate) builder: BreakerBuilder,
    pub(crate) info: Arc<Info>,
}

/// A type name for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A seconds option: an int, a float or a `datetime.timedelta`, finite and above 0.
fn secs(arg: &str, value: &Bound<'_, PyAny>) -> PyResult<(f64, Duration)> {
    let f = if value.is_instance_of::<PyBool>() {
        None
    } else if value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() {
        value.extract::<f64>().ok()
    } else if value.hasattr(pyo3::intern!(value.py(), "total_seconds"))? {
        // A datetime.timedelta (abi3 has no PyDelta).
        value.call_method0(pyo3::intern!(value.py(), "total_seconds"))?.extract::<f64>().ok()
    } else {
        None
    };
    let Some(f) = f else {
        return Err(PyTypeError::new_err(format!(
            "{arg} must be a number of seconds (an int, a float or a datetime.timedelta), got {}",
            type_name(value)
        )));
    };
    Ok((f, seconds(arg, f)?))
}

/// A fraction option: a float or an int from 0.0 to 1.0 (the core checks the range).
fn fraction(arg: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() || !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>()) {
        return Err(PyTypeError::new_err(format!("{arg} must be a float from 0.0 to 1.0, got {}", type_name(value))));
    }
    value.extract::<f64>()
}

/// A callable option.
fn callable(arg: &str, value: &Bound<'_, PyAny>, what: &str) -> PyResult<Py<PyAny>> {
    if !value.is_callable() {
        return Err(PyTypeError::new_err(format!("{arg} must be a callable ({what}), got {}", type_name(value))));
    }
    Ok(value.clone().unbind())
}

/// `failure_on`: an exception type, or a tuple of them (as `except` takes).
fn exception_types(value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let py = value.py();
    let base = py.get_type::<pyo3::exceptions::PyBaseException>();
    let is_exception_type =
        |t: &Bound<'_, PyAny>| t.cast::<PyType>().is_ok_and(|t| t.is_subclass(base.as_any()).unwrap_or(false));
    let ok = if let Ok(tuple) = value.cast::<PyTuple>() {
        !tuple.is_empty() && tuple.iter().all(|t| is_exception_type(&t))
    } else {
        is_exception_type(value)
    };
    if !ok {
        return Err(PyTypeError::new_err(format!(
            "failure_on must be an exception type or a non-empty tuple of exception types (what counts as a failure), got {}",
            value.repr().map_or_else(|_| type_name(value), |r| r.to_string())
        )));
    }
    Ok(value.clone().unbind())
}

/// The core's [`ConfigError`] as a `ValueError` naming the Python keyword, e.g.
/// ``failure_rate must be a rate from 0.0 to 1.0 (not NaN), got 1.5``.
pub(crate) fn config_error(e: &ConfigError) -> PyErr {
    let arg = match e.field() {
        "policy.consecutive_failures" => "failure_threshold",
        "policy.failure_rate.threshold" => "failure_rate",
        "policy.failure_rate.window" | "policy.slow_calls.window" => "window (or window_calls)",
        "policy.failure_rate.min_calls" | "policy.slow_calls.min_calls" => "min_calls",
        "policy.slow_calls.threshold" => "slow_call_rate",
        "policy.slow_calls.slower_than" => "slow_call_duration",
        "open_wait" | "open_wait.base" => "open_wait",
        "open_wait.max" => "max_open_wait",
        "open_wait.jitter" => "open_wait_jitter",
        other => other,
    };
    PyValueError::new_err(format!("{arg} must be {}, got {}", e.expected(), e.value()))
}

/// Reads the options in `options` (keyword → value; see [`OPTIONS`]) into a checked
/// template. Unknown keywords are a `TypeError`; `None` values count as absent.
pub(crate) fn template(options: Option<&Bound<'_, PyDict>>) -> PyResult<Template> {
    let mut given: [Option<Bound<'_, PyAny>>; OPTIONS.len()] = Default::default();
    if let Some(options) = options {
        for (key, value) in options.iter() {
            let key = key.cast::<PyString>().map_err(|_| PyTypeError::new_err("option names must be str"))?;
            let key = key.to_cow()?;
            let Some(i) = OPTIONS.iter().position(|o| *o == &*key) else {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument {key:?}; the options are {}",
                    OPTIONS.join(", ")
                )));
            };
            if !value.is_none() {
                given[i] = Some(value);
            }
        }
    }
    let [
        failure_threshold,
        failure_rate,
        window,
        window_calls,
        min_calls,
        slow_call_duration,
        slow_call_rate,
        open_wait,
        max_open_wait,
        open_wait_jitter,
        half_open_probes,
        name,
        failure_on,
        is_failure,
        on_state_change,
    ] = given;

    // --- the policy: exactly one of consecutive failures or a failure rate, and the
    // slow-call rule beside it; the window is the rate rules' ---
    let threshold = failure_threshold.as_ref().map(|v| count("failure_threshold", v, u32::MAX)).transpose()?;
    let rate = failure_rate.as_ref().map(|v| fraction("failure_rate", v)).transpose()?;
    let slow = slow_call_duration.as_ref().map(|v| secs("slow_call_duration", v)).transpose()?;
    let slow_rate = slow_call_rate.as_ref().map(|v| fraction("slow_call_rate", v)).transpose()?;
    if threshold.is_some() && rate.is_some() {
        return Err(PyValueError::new_err(
            "give one policy, failure_threshold (consecutive failures) or failure_rate (a share of failed calls \
             over a window), not both",
        ));
    }
    if slow_rate.is_some() && slow.is_none() {
        return Err(PyValueError::new_err(
            "slow_call_rate applies with slow_call_duration only: give slow_call_duration too (how long a slow call takes)",
        ));
    }
    if rate.is_none() && slow.is_none() {
        for (arg, v) in [("window", &window), ("window_calls", &window_calls), ("min_calls", &min_calls)] {
            if v.is_some() {
                return Err(PyValueError::new_err(format!(
                    "{arg} applies to a failure_rate (or slow_call_duration) policy only: give failure_rate too \
                     (or leave {arg} out)"
                )));
            }
        }
    }
    let windowed = |mut p: RatePolicy| -> PyResult<RatePolicy> {
        match (&window, &window_calls) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give one window, window (seconds: a time window) or window_calls (the last N calls), not both",
                ));
            }
            (Some(w), None) => p = p.over_time(secs("window", w)?.1),
            (None, Some(n)) => p = p.over_calls(count("window_calls", n, 1 << 20)?),
            (None, None) => {}
        }
        if let Some(n) = &min_calls {
            p = p.min_calls(count("min_calls", n, u32::MAX)?);
        }
        Ok(p)
    };
    let mut policy: Policy = match rate {
        None => Policy::consecutive_failures(threshold.unwrap_or(DEFAULT_THRESHOLD)),
        Some(rate) => windowed(Policy::failure_rate(rate))?.into(),
    };
    if let Some((_, slower_than)) = slow {
        policy = policy.or(windowed(Policy::slow_calls(slower_than, slow_rate.unwrap_or(1.0)))?);
    }

    // --- the open wait: fixed, or an exponential backoff ---
    let (wait_s, wait) = match &open_wait {
        Some(v) => secs("open_wait", v)?,
        None => (DEFAULT_OPEN_WAIT, Duration::from_secs_f64(DEFAULT_OPEN_WAIT)),
    };
    let max = max_open_wait.as_ref().map(|v| secs("max_open_wait", v)).transpose()?;
    let mut open = match max {
        Some((max_s, _)) if max_s < wait_s => {
            return Err(PyValueError::new_err(format!(
                "max_open_wait must be at least open_wait ({wait_s} seconds: the first wait of the backoff), got {max_s}"
            )));
        }
        Some((_, max)) => OpenWait::exponential(wait, max),
        None => OpenWait::fixed(wait),
    };
    if let Some(j) = &open_wait_jitter {
        open = open.with_jitter(fraction("open_wait_jitter", j)?);
    }

    let probes = half_open_probes.as_ref().map(|p| count("half_open_probes", p, 1023)).transpose()?.unwrap_or(1);
    let mut builder = breakerbox::Breaker::builder()
        .policy(policy)
        .open_wait(open)
        .half_open_probes(probes)
        // A Python caller that gives up (KeyboardInterrupt, a cancelled task) calls
        // `cancel()`: a failure only if it was in flight a second or more, as in Rust.
        .cancel_counts_after(Duration::from_secs(1));
    let name = match &name {
        Some(n) => {
            let n = n
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("name must be a str or None, got {}", type_name(n))))?;
            let n = n.to_cow()?.into_owned();
            builder = builder.name(n.clone());
            n
        }
        None => "breaker".to_owned(),
    };

    // --- the classifier ---
    let failure_on = failure_on.as_ref().map(exception_types).transpose()?;
    let is_failure = is_failure
        .as_ref()
        .map(|f| callable("is_failure", f, "a predicate on the exception: true if it is a failure"))
        .transpose()?;
    let classifier =
        (failure_on.is_some() || is_failure.is_some()).then(|| Arc::new(Classifier { failure_on, is_failure }));

    // --- listeners ---
    let listener = match &on_state_change {
        Some(f) => {
            let listener = callable("on_state_change", f, "called as fn(name, old_state, new_state)")?;
            let held = listener.clone_ref(f.py());
            builder = builder.on_state_change(move |t: &Transition<'_>| state_changed(&held, t));
            Some(listener)
        }
        None => None,
    };

    // The fleet's hook: a fleet watching the breaker (or family) later plugs into it.
    let (builder, hook) = crate::fleet::Hook::install(builder);

    // The core checks the ranges (a rate in 0..=1, min_calls within a count window...).
    builder.build().map_err(|e| config_error(&e))?;
    Ok(Template {
        builder,
        info: Arc::new(Info {
            classifier,
            failure_threshold: if rate.is_some() { None } else { Some(threshold.unwrap_or(DEFAULT_THRESHOLD)) },
            failure_rate: rate,
            open_wait: wait_s,
            max_open_wait: max.map(|(s, _)| s),
            name,
            hook,
            listener,
        }),
    })
}

/// Calls a Python `on_state_change(name, old, new)` from the core's listener, on the
/// thread that changed the state (attaching it to the interpreter if it is not, e.g. a
/// background thread of the core or of the fleet). A listener that raises is reported to
/// `sys.unraisablehook` and the breaker carries on; during interpreter shutdown it is
/// not called.
fn state_changed(listener: &Py<PyAny>, t: &Transition<'_>) {
    let _ = Python::try_attach(|py| {
        let listener = listener.bind(py);
        if let Err(e) = listener.call1((t.breaker, t.from.as_str(), t.to.as_str())) {
            e.write_unraisable(py, Some(listener));
        }
    });
}
