"""Type stubs for breakerbox.fleet: breakers sharing trips through Redis."""

import datetime
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, TypeVar, Union

from . import Breaker, CircuitBreakerError

__all__ = ["Fleet", "FleetUnavailable"]

DEFAULT_URL: str
_Seconds = Union[int, float, datetime.timedelta]
_B = TypeVar("_B")

class FleetUnavailable(CircuitBreakerError, ConnectionError):
    """`Fleet.sync` could not reach Redis; the fleet is degraded meanwhile."""

class Fleet:
    """Shares the trips of this replica's breakers with every replica of `service`, through Redis."""

    def __init__(
        self,
        service: str,
        url: str = ...,
        *,
        min_replicas: Optional[int] = None,
        min_calls: Optional[int] = None,
        replica_id: Optional[str] = None,
        key_prefix: Optional[str] = None,
        sync_interval: Optional[_Seconds] = None,
        refresh_interval: Optional[_Seconds] = None,
        window: Optional[_Seconds] = None,
        probe_lease: Optional[_Seconds] = None,
        key_ttl: Optional[_Seconds] = None,
        operation_timeout: Optional[_Seconds] = None,
        when_unreachable: Optional[str] = None,
        sentinel: Optional[Tuple[str, Sequence[str]]] = None,
        cluster: Optional[Sequence[str]] = None,
        on_event: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> None: ...
    def watch(self, breaker: _B) -> _B: ...
    def watch_family(self, family: _B) -> _B: ...
    def breaker(self, name: str, **options: Any) -> Breaker: ...
    def sync(self, timeout: _Seconds = 5.0) -> None: ...
    def status(self) -> Dict[str, Any]: ...
    def view(self, name: str) -> Optional[Dict[str, Any]]: ...
    def watched(self) -> List[str]: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def service(self) -> str: ...
    @property
    def replica_id(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Fleet": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...
