"""Type stubs for breakerbox.requests: a transport adapter with one breaker per host."""

from typing import Any, Callable, Iterable, Optional, Tuple, Union

import requests
import requests.adapters
import requests.exceptions

from . import BreakerFamily
from . import CircuitOpenError as _CircuitOpenError

_StatusOutcome = Union[str, bool, None]

__all__ = ["BreakerAdapter", "CircuitOpenError", "DEFAULT_FAILURES", "default_classify_status", "host_key", "session"]

DEFAULT_FAILURES: Tuple[type, ...]

class CircuitOpenError(_CircuitOpenError, requests.exceptions.ConnectionError):
    """The host's breaker is open: the request was not sent."""

class BreakerAdapter(requests.adapters.HTTPAdapter):
    family: BreakerFamily
    classify_status: Callable[[int], _StatusOutcome]
    failure_exceptions: Tuple[type, ...]
    def __init__(
        self,
        family: Optional[BreakerFamily] = None,
        *,
        classify_status: Optional[Callable[[int], _StatusOutcome]] = None,
        failure_exceptions: Optional[Iterable[type]] = None,
        **adapter_kwargs: Any,
    ) -> None: ...
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response: ...

def session(
    family: Optional[BreakerFamily] = None,
    *,
    classify_status: Optional[Callable[[int], _StatusOutcome]] = None,
    failure_exceptions: Optional[Iterable[type]] = None,
    **options: Any,
) -> requests.Session: ...
def host_key(url: str) -> str: ...
def default_classify_status(status: int) -> _StatusOutcome: ...
