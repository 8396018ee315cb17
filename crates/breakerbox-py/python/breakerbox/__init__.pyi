"""Type stubs for breakerbox: a lock-free circuit breaker for Python, on the Rust core."""

import datetime
from types import TracebackType
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Type, TypeVar, Union

from . import _core

_F = TypeVar("_F", bound=Callable[..., Any])
_Seconds = Union[int, float, datetime.timedelta]

__all__ = ["Breaker", "BreakerFamily", "CircuitBreaker", "CircuitBreakerError", "CircuitOpenError", "InvalidMethod"]

class CircuitBreakerError(Exception):
    """The base of every error this package raises."""

class CircuitOpenError(CircuitBreakerError):
    """The circuit is open: the call was not made. Retry after `retry_after` seconds."""

    name: str
    state: str
    reason: str
    retry_after: Optional[float]
    def __init__(
        self,
        message: str,
        *,
        name: str = ...,
        state: str = ...,
        reason: str = ...,
        retry_after: Optional[float] = ...,
    ) -> None: ...

class InvalidMethod(CircuitBreakerError, ValueError):
    """`do_request` was given a method that is not in `_methods`."""

    method: str
    valid: List[str]
    def __init__(self, method: str, valid: List[str]) -> None: ...

_ExceptionTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]
_OnStateChange = Callable[[str, str, str], Any]

class Breaker:
    """A circuit breaker for any callable: `call(fn, *args, **kwargs)` or `@breaker`."""

    def __init__(
        self,
        failure_threshold: Optional[int] = None,
        open_wait: _Seconds = 30.0,
        half_open_probes: int = 1,
        name: Optional[str] = None,
        *,
        failure_rate: Optional[float] = None,
        window: Optional[_Seconds] = None,
        window_calls: Optional[int] = None,
        min_calls: Optional[int] = None,
        slow_call_duration: Optional[_Seconds] = None,
        slow_call_rate: Optional[float] = None,
        max_open_wait: Optional[_Seconds] = None,
        open_wait_jitter: Optional[float] = None,
        failure_on: Optional[_ExceptionTypes] = None,
        is_failure: Optional[Callable[[BaseException], Any]] = None,
        on_state_change: Optional[_OnStateChange] = None,
    ) -> None: ...
    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...
    async def call_async(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any: ...
    def __call__(self, fn: _F) -> _F: ...
    def __enter__(self) -> "Breaker": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    async def __aenter__(self) -> "Breaker": ...
    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def failure_threshold(self) -> Optional[int]: ...
    @property
    def failure_rate(self) -> Optional[float]: ...
    @property
    def open_wait(self) -> float: ...
    @property
    def max_open_wait(self) -> Optional[float]: ...
    @property
    def half_open_probes(self) -> int: ...
    def is_open(self) -> bool: ...
    def is_half_open(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def metrics(self) -> Dict[str, Any]: ...
    def reset(self) -> None: ...

class BreakerFamily:
    """One breaker per key (per host), each built from the same options as `Breaker`."""

    def __init__(
        self,
        failure_threshold: Optional[int] = None,
        open_wait: _Seconds = 30.0,
        half_open_probes: int = 1,
        name: Optional[str] = None,
        *,
        max_breakers: int = 10_000,
        failure_rate: Optional[float] = None,
        window: Optional[_Seconds] = None,
        window_calls: Optional[int] = None,
        min_calls: Optional[int] = None,
        slow_call_duration: Optional[_Seconds] = None,
        slow_call_rate: Optional[float] = None,
        max_open_wait: Optional[_Seconds] = None,
        open_wait_jitter: Optional[float] = None,
        failure_on: Optional[_ExceptionTypes] = None,
        is_failure: Optional[Callable[[BaseException], Any]] = None,
        on_state_change: Optional[_OnStateChange] = None,
    ) -> None: ...
    def call(self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...
    async def call_async(self, key: str, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any: ...
    def acquire(self, key: str) -> _core.Permit: ...
    def try_acquire(self, key: str) -> Union[_core.Permit, _core.Rejected]: ...
    def get(self, key: str) -> Breaker: ...
    def remove(self, key: str) -> bool: ...
    def open_keys(self) -> List[str]: ...
    def states(self) -> Dict[str, str]: ...
    def reset_all(self) -> None: ...
    def len(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def max_breakers(self) -> int: ...

class CircuitBreaker:
    """The original design: `CircuitBreaker(http_client, error_threshold, time_window)`."""

    max_retry_depth: int
    http_client: Any
    _methods: Dict[str, Callable[..., Any]]
    _status_code: Callable[[Any], Any]
    _empty_response: Callable[[], Any]
    def __init__(
        self,
        http_client: Any,
        error_threshold: int,
        time_window: _Seconds,
        *,
        name: Optional[str] = None,
    ) -> None: ...
    @property
    def error_threshold(self) -> int: ...
    @property
    def time_window(self) -> float: ...
    @property
    def prev_method(self) -> Optional[str]: ...
    @prev_method.setter
    def prev_method(self, value: Optional[str]) -> None: ...
    @property
    def prev_url(self) -> Optional[str]: ...
    @prev_url.setter
    def prev_url(self, value: Optional[str]) -> None: ...
    def do_request(self, method: str, url: str, **kwargs: Any) -> Any: ...
    def isOpen(self) -> bool: ...
    def isHalfOpen(self) -> bool: ...
    def isClosed(self) -> bool: ...
    def clearState(self) -> None: ...
    def is_open(self) -> bool: ...
    def is_half_open(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def clear_state(self) -> None: ...
    @property
    def state(self) -> str: ...
    def metrics(self) -> Dict[str, Any]: ...

from .fleet import Fleet as Fleet, FleetUnavailable as FleetUnavailable

__all__ += ["Fleet", "FleetUnavailable"]
