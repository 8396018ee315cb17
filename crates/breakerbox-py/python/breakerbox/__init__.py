"""breakerbox: a lock-free circuit breaker for Python, on the Rust core.

Two ways in:

- :class:`CircuitBreaker` is the original design, same names and semantics:
  ``CircuitBreaker(http_client, error_threshold, time_window)``, ``do_request(method,
  url)``, the replaceable ``_methods``, ``_status_code`` and ``_empty_response``,
  ``isOpen()`` / ``isHalfOpen()`` / ``isClosed()``, ``clearState()``.
- :class:`Breaker` is a small Pythonic breaker for any callable: ``breaker.call(fn,
  *args)``, or ``@breaker`` on a function.
- :class:`BreakerFamily` is one such breaker per key (per host), on the core's
  ``BreakerBox``; ``breakerbox.requests`` and ``breakerbox.httpx`` put one in front of
  each host an HTTP client talks to.

The state machine is the Rust ``breakerbox::Breaker`` (the private ``_core`` module):
lock-free, so both classes are safe to share between threads, and no lock is ever held
while your code (the request, ``_status_code``, ``_empty_response``) runs.

>>> import breakerbox
>>> breaker = breakerbox.Breaker(failure_threshold=3, open_wait=10.0)
>>> breaker.call(lambda: "ok")
'ok'
>>> breaker.state
'closed'
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import inspect
import math
import threading
from typing import Any, Awaitable, Callable, Dict, Optional, TypeVar

from . import _core

__all__ = [
    "Breaker",
    "BreakerFamily",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitOpenError",
    "Fleet",
    "FleetUnavailable",
    "InvalidMethod",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# The core's limits: a count is a u32, half-open probes go up to 1023.
_MAX_COUNT = 2**32 - 1
_MAX_PROBES = 1023


# ===== errors =====


class CircuitBreakerError(Exception):
    """The base of every error this package raises."""


class CircuitOpenError(CircuitBreakerError):
    """The circuit is open: the call was not made.

    Raised while the breaker is open (it tripped and its wait has not passed), or
    half-open with its one trial call already in flight. Wait :attr:`retry_after`
    seconds and try again, or catch it and answer from elsewhere (with a
    :class:`CircuitBreaker`, assign ``_empty_response`` to return a stand-in instead).

    Attributes:
        name: the breaker's name.
        state: the breaker's state when it refused the call ('open', 'half_open'...).
        reason: why: 'open', 'half_open_full' (a trial call is in flight), 'forced_open'.
        retry_after: seconds until a trial call will be admitted, or None when unknown
            (a trial call is in flight: it decides).
    """

    def __init__(
        self,
        message: str,
        *,
        name: str = "",
        state: str = "open",
        reason: str = "open",
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.state = state
        self.reason = reason
        self.retry_after = retry_after

    # A rejection raised by the Rust core (Breaker.call, call_async, `with`) is built
    # with __new__(cls) and one attribute, `_rejected` (the core's Rejected): its
    # message (str, args) and the four attributes above are made from it on first use,
    # which keeps a rejection, the hot path while a service is down, cheap.
    _LAZY = frozenset(("name", "state", "reason", "retry_after"))

    def __getattr__(self, attr: str) -> Any:
        # Only called when normal lookup fails: for a rejection from the core.
        if attr in CircuitOpenError._LAZY:
            rejected = self.__dict__.get("_rejected")
            if rejected is not None:
                value = getattr(rejected, attr)
                self.__dict__[attr] = value
                return value
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    @property  # type: ignore[override]
    def args(self) -> tuple:
        args = _exception_args.__get__(self)
        if not args:
            rejected = self.__dict__.get("_rejected")
            if rejected is not None:
                args = (_rejection_message(rejected),)
                _exception_args.__set__(self, args)
        return args

    @args.setter
    def args(self, value: Any) -> None:
        _exception_args.__set__(self, value)

    def __str__(self) -> str:
        args = self.args
        return str(args[0]) if len(args) == 1 else str(args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.args!r}" if len(self.args) != 1 else f"{type(self).__name__}({self.args[0]!r})"

    def __reduce__(self) -> Any:
        # Picklable as one built by __init__ (the core's Rejected is not picklable).
        state = {k: v for k, v in self.__dict__.items() if k != "_rejected"}
        state.update({k: getattr(self, k) for k in CircuitOpenError._LAZY})
        return (_rebuild_open_error, (type(self), self.args), state)

    @classmethod
    def _from(cls, rejected: Any, what: str = "the call was not made") -> "CircuitOpenError":
        return cls(
            _rejection_message(rejected, what),
            name=rejected.name,
            state=rejected.state,
            reason=rejected.reason,
            retry_after=rejected.retry_after,
        )


_exception_args = BaseException.__dict__["args"]


def _rejection_message(rejected: Any, what: str = "the call was not made") -> str:
    if rejected.reason == "half_open_full":
        what += " (a trial call is in flight and decides whether the circuit closes: retry shortly)"
    return f"{rejected}: {what}"


def _rebuild_open_error(cls: type, args: tuple) -> CircuitOpenError:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class InvalidMethod(CircuitBreakerError, ValueError):
    """``do_request`` was given a method that is not in the breaker's ``_methods``.

    Attributes:
        method: the method asked for.
        valid: the valid methods (the keys of ``_methods``), sorted.
    """

    def __init__(self, method: str, valid: list) -> None:
        self.method = method
        self.valid = valid
        if valid:
            message = (
                f"{method!r} is not a method of this CircuitBreaker; valid methods: "
                f"{', '.join(m.upper() for m in valid)} (case does not matter). To add one: "
                f"breaker._methods[{method.lower()!r}] = lambda url: ..."
            )
        else:
            message = (
                f"{method!r}: this CircuitBreaker has no methods (its http_client has none of "
                f"{', '.join(_METHOD_NAMES)}); set breaker._methods = "
                "{'get': lambda url: client.get(url)}"
            )
        super().__init__(message)


# ===== argument checks =====


def _count(arg: str, value: Any, what: str, maximum: int = _MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg} must be an int ({what}), got {value!r} of type {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ValueError(f"{arg} must be from 1 to {maximum} ({what}), got {value}")
    return value


def _seconds(arg: str, value: Any, what: str) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{arg} must be a number of seconds, an int, a float or a datetime.timedelta ({what}), "
            f"got {value!r} of type {type(value).__name__}"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{arg} must be a finite number of seconds greater than 0 ({what}), got {value!r}")
    return seconds


def _name(value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"name must be a str or None, got {value!r} of type {type(value).__name__}")
    return value


# The keyword-only options of ``Breaker`` and ``BreakerFamily``: those the core's one
# reader of options (``src/template.rs``) takes besides the original four.
_KEYWORDS = tuple(k for k in _core.OPTIONS if k not in ("failure_threshold", "open_wait", "half_open_probes", "name"))


def _options(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """The keyword arguments of ``_core.Breaker`` and ``_core.BreakerFamily`` from a
    constructor's arguments (its ``locals()``: each constructor spells its signature
    out, for help and type checkers, and hands it here whole). The original four are
    checked here (their messages say what each is for); the others (``_KEYWORDS``) by
    the core. ``None`` leaves one out."""
    failure_threshold = arguments["failure_threshold"]
    if failure_threshold is not None:
        failure_threshold = _count("failure_threshold", failure_threshold, "consecutive failures that open the breaker")
    given = {
        "failure_threshold": failure_threshold,
        "open_wait": _seconds("open_wait", arguments["open_wait"], "how long the breaker stays open"),
        "half_open_probes": _count(
            "half_open_probes", arguments["half_open_probes"], "trial calls at once while half-open", _MAX_PROBES
        ),
        "name": _name(arguments["name"]),
    }
    given.update((k, arguments[k]) for k in _KEYWORDS)
    return {k: v for k, v in given.items() if v is not None}


# ===== the Pythonic breaker =====


async def _awaited(admission: Any, fn: Callable[..., Awaitable[Any]], args: tuple, kwargs: dict) -> Any:
    """Awaits ``fn(*args, **kwargs)`` on an admitted permit and reports it: a success,
    or the exception (a failure, ignored by the classifier, or a cancellation: not an
    ``Exception``), which propagates. ``Breaker.call_async`` and
    ``BreakerFamily.call_async`` both come here."""
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        admission.error(exc)
        raise
    admission.success()
    return result


class Breaker:
    """A circuit breaker for any callable.

    Opens after ``failure_threshold`` consecutive failures (a call that raises an
    ``Exception``), stays open ``open_wait`` seconds rejecting every call with
    :class:`CircuitOpenError` (the callable is not called), then lets
    ``half_open_probes`` trial calls through at a time: it closes when they succeed,
    and opens again if one fails.

    The other options, all keyword-only (``None`` is the same as leaving one out):

    - ``failure_rate`` (0.0 to 1.0), instead of ``failure_threshold``: opens when that
      share of the calls in the window failed, once the window holds ``min_calls``
      calls (default 20). The window is ``window`` seconds (a sliding time window, in
      10 buckets) or the last ``window_calls`` calls (default: the last 100 calls).
      Giving both policies, or a window without ``failure_rate``, is a ``ValueError``.
    - ``slow_call_duration`` (seconds), with ``slow_call_rate`` (0.0 to 1.0, default
      1.0): a rule beside the policy, over the same window: opens when that share of
      the calls took ``slow_call_duration`` or longer, failed or not (a service that is
      drowning before it starts to fail). A slow trial call counts as a failed one.
    - ``max_open_wait`` (seconds): an exponential backoff, ``open_wait`` after the first
      opening, doubling with each reopening (a failed trial call) up to
      ``max_open_wait``; a close starts again from ``open_wait``.
      ``open_wait_jitter`` (0.0 to 1.0): each wait is shortened by up to that fraction,
      at random, so that many breakers that opened together do not probe together.
    - ``failure_on``: an exception type or tuple of types that count as failures;
      another ``Exception`` propagates but counts nothing (it is ignored: neither a
      success nor a failure). ``is_failure``: a predicate on the exception (after
      ``failure_on``, when both are given), true for a failure. A predicate that raises
      counts the call as ignored and goes to ``sys.unraisablehook``.
    - ``on_state_change``: called as ``on_state_change(name, old_state, new_state)``
      after every state change, on the thread that caused it. An exception it raises
      goes to ``sys.unraisablehook``; the breaker carries on.

    Use it as ``breaker.call(fn, *args, **kwargs)``, or as a decorator::

        inventory = Breaker(failure_threshold=3, open_wait=10.0, name="inventory")

        @inventory
        def stock(sku):
            return requests.get(f"http://inventory/stock/{sku}", timeout=2).json()

    A ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``,
    ``SystemExit``) means the caller gave up, not that the service failed: it counts as a
    failure only if the call was in flight a second or more. Thread-safe: share one
    breaker between threads. ``async def`` functions go through :meth:`call_async`
    (the decorator picks it), and ``with breaker:`` / ``async with breaker:`` make a
    block the call.
    """

    __slots__ = ("_core", "_permits", "__weakref__")

    def __init__(
        self,
        failure_threshold: Optional[int] = None,
        open_wait: float = 30.0,
        half_open_probes: int = 1,
        name: Optional[str] = None,
        *,
        failure_rate: Optional[float] = None,
        window: Optional[float] = None,
        window_calls: Optional[int] = None,
        min_calls: Optional[int] = None,
        slow_call_duration: Optional[float] = None,
        slow_call_rate: Optional[float] = None,
        max_open_wait: Optional[float] = None,
        open_wait_jitter: Optional[float] = None,
        failure_on: Any = None,
        is_failure: Optional[Callable[[BaseException], Any]] = None,
        on_state_change: Optional[Callable[[str, str, str], Any]] = None,
    ) -> None:
        # failure_threshold=None: 5, unless failure_rate is given.
        self._core = _core.Breaker(**_options(locals()))
        self._permits: contextvars.ContextVar[tuple] = contextvars.ContextVar("breakerbox.permits", default=())

    @classmethod
    def _wrap(cls, core: Any) -> "Breaker":
        """A ``Breaker`` over an existing ``_core.Breaker`` (a family's member)."""
        self = cls.__new__(cls)
        self._core = core
        self._permits = contextvars.ContextVar("breakerbox.permits", default=())
        return self

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn(*args, **kwargs)`` through the breaker and returns its result.

        Raises :class:`CircuitOpenError` without calling ``fn`` while the breaker is open;
        otherwise whatever ``fn`` raises, unchanged (and counted as a failure). A
        coroutine function is a ``TypeError``: use :meth:`call_async`.
        """
        # The whole call, fn included, is one call into the Rust core: no permit object.
        return self._core.call(fn, *args, **kwargs)

    async def call_async(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Awaits ``fn(*args, **kwargs)`` through the breaker and returns its result.

        As :meth:`call`, for a coroutine function (or any callable returning an
        awaitable). A cancelled task (``asyncio.CancelledError``) gave up: its permit is
        released, and it counts as a failure only if it was in flight a second or more.
        """
        return await _awaited(self._core.acquire(), fn, args, kwargs)  # or CircuitOpenError

    def __call__(self, fn: _F) -> _F:
        """Decorates ``fn``: every call goes through :meth:`call`, or :meth:`call_async`
        for an ``async def``."""
        if not callable(fn):
            raise TypeError(f"@Breaker decorates a function, got {fn!r} of type {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            call_async = self.call_async

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await call_async(fn, *args, **kwargs)

            async_wrapper.breaker = self  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        call = self._core.call

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return call(fn, *args, **kwargs)

        wrapper.breaker = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    # --- as a context manager: `with breaker:` / `async with breaker:` ---

    def _enter(self) -> None:
        admission = self._core.acquire()  # or raises CircuitOpenError
        # A stack per context (thread, asyncio task): nested and concurrent blocks each
        # report their own permit. A tuple, so that a task created inside a block (which
        # copies the context) cannot pop its parent's permit.
        self._permits.set(self._permits.get() + (admission,))

    def _exit(self, exc: Optional[BaseException]) -> bool:
        stack = self._permits.get()
        if not stack:
            return False
        admission = stack[-1]
        self._permits.set(stack[:-1])
        if exc is None:
            admission.success()
        else:
            admission.error(exc)  # a failure, ignored (the classifier), or a cancellation
        return False

    def __enter__(self) -> "Breaker":
        """Admits the block, or raises :class:`CircuitOpenError`. The block is the call:
        it succeeds if it ends normally, fails if it raises an ``Exception`` (which
        propagates), and a ``KeyboardInterrupt`` counts as in :meth:`call`."""
        self._enter()
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        return self._exit(exc)

    async def __aenter__(self) -> "Breaker":
        """As ``with breaker:``, in a coroutine; a cancelled task (``CancelledError``)
        counts as a failure only if the block ran a second or more."""
        self._enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        return self._exit(exc)

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half_open' (an open breaker whose wait has passed reads
        'half_open'); also 'forced_open', 'disabled', 'recovering' for core features not
        exposed yet."""
        return self._core.state

    @property
    def name(self) -> str:
        """The breaker's name ('breaker' unless given)."""
        return self._core.name

    @property
    def failure_threshold(self) -> Optional[int]:
        """Consecutive failures that open the breaker (None with a ``failure_rate``)."""
        return self._core.failure_threshold

    @property
    def failure_rate(self) -> Optional[float]:
        """The share of failed calls that opens the breaker (None without one)."""
        return self._core.failure_rate

    @property
    def open_wait(self) -> float:
        """Seconds the breaker stays open (the first wait, with ``max_open_wait``)."""
        return self._core.open_wait

    @property
    def max_open_wait(self) -> Optional[float]:
        """The longest open wait of the exponential backoff (None: a fixed wait)."""
        return self._core.max_open_wait

    @property
    def half_open_probes(self) -> int:
        """Trial calls admitted at once while half-open."""
        return self._core.half_open_probes

    def is_open(self) -> bool:
        """Whether calls are being rejected."""
        return self._core.is_open()

    def is_half_open(self) -> bool:
        """Whether the breaker is half-open (or open with its wait passed)."""
        return self._core.is_half_open()

    def is_closed(self) -> bool:
        """Whether the breaker is closed."""
        return self._core.is_closed()

    def metrics(self) -> Dict[str, Any]:
        """A snapshot: ``name``, ``state``, ``successes``, ``failures``, ``ignored``,
        ``rejected`` (totals since the breaker was built; :meth:`reset` keeps them),
        ``consecutive_failures``, ``opens``, ``probes_in_flight``, ``time_in_state``
        (seconds)."""
        return self._core.metrics()

    def reset(self) -> None:
        """Closes the breaker and clears its failure streak."""
        self._core.reset()

    def __repr__(self) -> str:
        policy = (
            f"failure_threshold={self.failure_threshold}"
            if self.failure_threshold is not None
            else f"failure_rate={self.failure_rate}"
        )
        backoff = f", max_open_wait={self.max_open_wait}" if self.max_open_wait is not None else ""
        return (
            f"Breaker({policy}, open_wait={self.open_wait}{backoff}, "
            f"half_open_probes={self.half_open_probes}, name={self.name!r})  # {self.state}"
        )


_core._set_open_error(CircuitOpenError)

from ._family import BreakerFamily  # noqa: E402 (uses Breaker and _options, above)


# ===== the original design =====

_NOT_SENT = "the request was not sent"
_METHOD_NAMES = ("get", "post", "put", "patch", "delete", "head", "options")


class _ClientMethod:
    """The default entry of ``_methods``: ``breaker.http_client.<name>(url)``, looked up
    at each call so that assigning ``breaker.http_client`` takes effect."""

    __slots__ = ("_breaker", "_name")

    def __init__(self, breaker: "CircuitBreaker", name: str) -> None:
        self._breaker = breaker
        self._name = name

    def __call__(self, url: str, **kwargs: Any) -> Any:
        return getattr(self._breaker.http_client, self._name)(url, **kwargs)

    def __repr__(self) -> str:
        return f"<http_client.{self._name}>"


def _response_status_code(response: Any) -> Any:
    """The default ``_status_code``: ``response.status_code``."""
    return response.status_code


class _Rejection:
    """What ``_empty_response`` is standing in for: a call the open circuit refused."""

    __slots__ = ("rejected",)

    def __init__(self, rejected: Any) -> None:
        self.rejected = rejected


class _FailedResponse:
    """What ``_empty_response`` is standing in for: a response that was not a success."""

    __slots__ = ("response",)

    def __init__(self, response: Any) -> None:
        self.response = response


class CircuitBreaker:
    """The original circuit breaker for an HTTP client: same names, same semantics.

    ``CircuitBreaker(http_client, error_threshold, time_window)``: requests go through
    :meth:`do_request`; a response whose status (``_status_code``) is not 200 is a
    failure; after ``error_threshold`` consecutive failures the circuit opens for
    ``time_window`` seconds and requests fail fast without reaching the server; then it
    is half-open, one trial request decides: closed on a 200, open again otherwise.

    Replaceable by plain assignment, as in the original:

    - ``_methods``: a dict, method name -> callable taking the url. By default the
      ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``, ``options`` of
      ``http_client`` that exist. Looked up without regard to case.
    - ``_status_code``: response -> status. By default ``response.status_code``.
    - ``_empty_response``: a callable of no arguments whose result ``do_request``
      returns instead, when the request was unsuccessful (its status was not 200) or the
      circuit is open. By default: the failed response itself, and
      :class:`CircuitOpenError` raised when the circuit is open. It may retry with
      ``lambda: breaker.do_request(breaker.prev_method, breaker.prev_url)``.

    Differences from the original (bugs fixed):

    - Thread-safe: the state machine is the lock-free Rust core; ``prev_method`` and
      ``prev_url`` are per thread, so a retry in ``_empty_response`` retries this
      thread's request.
    - Half-open admits ONE trial request at a time; concurrent requests fail fast until
      it has answered (the original let every request through while half-open).
    - A retry from ``_empty_response`` is bounded: inside ``_empty_response``, a
      request refused by the open circuit raises :class:`CircuitOpenError` (the open path,
      not ``_empty_response`` again), and at a depth of ``max_retry_depth`` nested
      retries a failed response is returned as it is.
    - An exception from the client (connection refused, timeout) counts as a failure
      and propagates; an exception from ``_status_code`` counts as nothing.
    - A monotonic clock, not the wall clock.
    """

    #: How many times ``_empty_response`` may call ``do_request`` within itself (nested)
    #: before a failed response is returned as it is instead of going to
    #: ``_empty_response`` again. Assign it on the class or on an instance.
    max_retry_depth: int = 3

    def __init__(self, http_client: Any, error_threshold: int, time_window: float, *, name: Optional[str] = None):
        threshold = _count("error_threshold", error_threshold, "consecutive failures that open the circuit")
        window = _seconds("time_window", time_window, "how long the circuit stays open")
        self.http_client = http_client
        self._error_threshold = threshold
        self._time_window = window
        self._core = _core.Breaker(threshold, window, 1, _name(name) or "http")
        self._local = threading.local()
        self._methods: Dict[str, Callable[..., Any]] = {
            m: _ClientMethod(self, m) for m in _METHOD_NAMES if callable(getattr(http_client, m, None))
        }
        self._status_code: Callable[[Any], Any] = _response_status_code
        self._empty_response: Callable[[], Any] = self._default_empty_response

    # --- the original's attributes ---

    @property
    def error_threshold(self) -> int:
        """Consecutive failures that open the circuit (fixed at construction)."""
        return self._error_threshold

    @property
    def time_window(self) -> float:
        """Seconds the circuit stays open before a trial request (fixed at construction)."""
        return self._time_window

    @property
    def prev_method(self) -> Optional[str]:
        """The method of this thread's latest :meth:`do_request` (None before the first)."""
        return getattr(self._local, "prev_method", None)

    @prev_method.setter
    def prev_method(self, value: Optional[str]) -> None:
        self._local.prev_method = value

    @property
    def prev_url(self) -> Optional[str]:
        """The url of this thread's latest :meth:`do_request` (None before the first)."""
        return getattr(self._local, "prev_url", None)

    @prev_url.setter
    def prev_url(self, value: Optional[str]) -> None:
        self._local.prev_url = value

    # --- requests ---

    def do_request(self, method: str, url: str, **kwargs: Any) -> Any:
        """Sends ``method`` to ``url`` with the method's entry in ``_methods`` and returns
        the response, or what ``_empty_response()`` returns if the status was not 200 or
        the circuit is open (by default: the failed response; :class:`CircuitOpenError`
        raised when open). Keyword arguments go to the method's callable.

        Raises :class:`InvalidMethod` if ``method`` is not in ``_methods`` (the breaker is
        not asked, nothing is counted), and whatever the client raises (counted as a
        failure).
        """
        send = self._lookup(method)
        local = self._local
        local.prev_method = method
        local.prev_url = url
        depth = getattr(local, "depth", 0)

        admission = self._core.try_acquire()
        if isinstance(admission, _core.Rejected):
            if depth:
                # A retry from inside _empty_response while the circuit is open: the open
                # path, not _empty_response again (which would retry again, unbounded).
                raise CircuitOpenError._from(admission, _NOT_SENT)
            return self._fallback(depth, _Rejection(admission))

        # No lock is held from here on: user code may call back into this breaker.
        try:
            response = send(url, **kwargs) if kwargs else send(url)
        except Exception:
            admission.failure()
            raise
        except BaseException:
            admission.cancel()
            raise
        try:
            status = self._status_code(response)
        except BaseException:
            # The request was answered, but its status could not be read: a bug in
            # _status_code, which says nothing about the server.
            admission.ignore()
            raise
        if status == 200:
            admission.success()
            return response
        admission.failure()
        if depth >= self.max_retry_depth:
            return response
        return self._fallback(depth, _FailedResponse(response))

    def _lookup(self, method: Any) -> Callable[..., Any]:
        if not isinstance(method, str):
            raise TypeError(f"method must be a str such as 'GET', got {method!r} of type {type(method).__name__}")
        methods = self._methods
        send = methods.get(method)
        if send is None:
            send = methods.get(method.lower())
        if send is None:
            lowered = method.lower()
            for key, value in list(methods.items()):
                if isinstance(key, str) and key.lower() == lowered:
                    return value
            raise InvalidMethod(method, sorted(str(k) for k in methods))
        return send

    def _fallback(self, depth: int, failure: Any) -> Any:
        local = self._local
        saved = getattr(local, "failure", None)
        local.depth = depth + 1
        local.failure = failure
        try:
            return self._empty_response()
        finally:
            local.depth = depth
            local.failure = saved

    def _default_empty_response(self) -> Any:
        """The default ``_empty_response``: the failed response as it is, or
        :class:`CircuitOpenError` raised when the circuit is open."""
        failure = getattr(self._local, "failure", None)
        if isinstance(failure, _Rejection):
            raise CircuitOpenError._from(failure.rejected, _NOT_SENT)
        if isinstance(failure, _FailedResponse):
            return failure.response
        return None

    # --- the state ---

    def isOpen(self) -> bool:  # noqa: N802 (the original's name)
        """Whether the circuit is open: requests fail fast."""
        return self._core.is_open()

    def isHalfOpen(self) -> bool:  # noqa: N802
        """Whether the circuit is half-open (or open with its time window passed): the
        next request is the trial request."""
        return self._core.is_half_open()

    def isClosed(self) -> bool:  # noqa: N802
        """Whether the circuit is closed: requests flow."""
        return self._core.is_closed()

    def clearState(self) -> None:  # noqa: N802
        """Closes the circuit by hand and clears the failure count."""
        self._core.reset()

    is_open = isOpen
    is_half_open = isHalfOpen
    is_closed = isClosed
    clear_state = clearState

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half_open'."""
        return self._core.state

    def metrics(self) -> Dict[str, Any]:
        """A snapshot of the state and counters, as :meth:`Breaker.metrics`."""
        return self._core.metrics()

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker error_threshold={self._error_threshold} time_window={self._time_window} "
            f"state={self.state}>"
        )


from .fleet import Fleet, FleetUnavailable  # noqa: E402 (uses Breaker and CircuitBreakerError, above)
