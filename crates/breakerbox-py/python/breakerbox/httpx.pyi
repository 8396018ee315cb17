"""Type stubs for breakerbox.httpx: sync and async transports with one breaker per host."""

from typing import Any, Callable, Iterable, Optional, Tuple, Union

import httpx

from . import BreakerFamily
from . import CircuitOpenError as _CircuitOpenError

_StatusOutcome = Union[str, bool, None]

__all__ = [
    "AsyncBreakerTransport",
    "BreakerTransport",
    "CircuitOpenError",
    "DEFAULT_FAILURES",
    "default_classify_status",
    "host_key",
]

DEFAULT_FAILURES: Tuple[type, ...]

class CircuitOpenError(_CircuitOpenError, httpx.ConnectError):
    """The host's breaker is open: the request was not sent."""

class BreakerTransport(httpx.BaseTransport):
    family: BreakerFamily
    transport: httpx.BaseTransport
    classify_status: Callable[[int], _StatusOutcome]
    failure_exceptions: Tuple[type, ...]
    def __init__(
        self,
        transport: Optional[httpx.BaseTransport] = None,
        *,
        family: Optional[BreakerFamily] = None,
        classify_status: Optional[Callable[[int], _StatusOutcome]] = None,
        failure_exceptions: Optional[Iterable[type]] = None,
        **options: Any,
    ) -> None: ...
    def handle_request(self, request: httpx.Request) -> httpx.Response: ...
    def close(self) -> None: ...

class AsyncBreakerTransport(httpx.AsyncBaseTransport):
    family: BreakerFamily
    transport: httpx.AsyncBaseTransport
    classify_status: Callable[[int], _StatusOutcome]
    failure_exceptions: Tuple[type, ...]
    def __init__(
        self,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        *,
        family: Optional[BreakerFamily] = None,
        classify_status: Optional[Callable[[int], _StatusOutcome]] = None,
        failure_exceptions: Optional[Iterable[type]] = None,
        **options: Any,
    ) -> None: ...
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response: ...
    async def aclose(self) -> None: ...

def host_key(url: str) -> str: ...
def default_classify_status(status: int) -> _StatusOutcome: ...
