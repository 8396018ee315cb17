"""breakerbox for httpx: sync and async transports with one breaker per host.

::

    import httpx
    from breakerbox.httpx import AsyncBreakerTransport, BreakerTransport

    client = httpx.Client(transport=BreakerTransport(failure_threshold=5, open_wait=30.0))
    client.get("https://api.example/stock/42")            # or raises CircuitOpenError

    async with httpx.AsyncClient(transport=AsyncBreakerTransport()) as client:
        await client.get("https://api.example/stock/42")

Each transport wraps an inner one (default ``httpx.HTTPTransport()`` /
``httpx.AsyncHTTPTransport()``; pass your own for its options, or a
``httpx.MockTransport``). Each host (``scheme://host:port``, the scheme's default port when the
URL has none) has its own breaker in a :class:`~breakerbox.BreakerFamily`. A response is
classified by its status when its headers arrive (default: a 5xx or a 429 is a
failure, anything else a success; a failure's ``Retry-After`` keeps the breaker open
at least that long, up to 5 minutes); a transport error (a connection error, a
timeout, a broken answer) is a failure; any other exception counts nothing. A task
cancelled while its request is in flight cancels its permit: a half-open trial slot is
freed at once, and it counts as a failure only if it was in flight a second or more.
While a host's breaker is open, its requests raise :class:`CircuitOpenError` without
being sent.

Importing this module imports httpx; ``import breakerbox`` does not.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import httpx

from . import BreakerFamily, _core
from . import CircuitOpenError as _CircuitOpenError
from ._http import StatusOutcome, default_classify_status, family_for, host_key, report_error, report_response

__all__ = [
    "AsyncBreakerTransport",
    "BreakerTransport",
    "CircuitOpenError",
    "DEFAULT_FAILURES",
    "default_classify_status",
    "host_key",
]

#: The exceptions of a request that count as failures of its host: it could not be
#: reached, did not answer in time, or broke the protocol.
DEFAULT_FAILURES: tuple = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


class CircuitOpenError(_CircuitOpenError, httpx.ConnectError):
    """The host's breaker is open: the request was not sent.

    Both a :class:`breakerbox.CircuitOpenError` (``name``, ``state``, ``reason``,
    ``retry_after``; the breaker's name is ``"{family name}/{host}:{port}"``) and an
    ``httpx.ConnectError`` (a ``TransportError``; ``request`` is the request that was
    not sent), so code that handles an unreachable host handles an open circuit too.
    """


class _Base:
    def __init__(
        self,
        family: Optional[BreakerFamily],
        classify_status: Optional[Callable[[int], StatusOutcome]],
        failure_exceptions: Optional[Iterable[type]],
        options: Any,
    ) -> None:
        self.family = family_for(family, "httpx", options)
        self.classify_status = classify_status or default_classify_status
        self.failure_exceptions = tuple(failure_exceptions) if failure_exceptions is not None else DEFAULT_FAILURES

    def _admit(self, request: httpx.Request) -> Any:
        url = request.url
        admission = self.family.try_acquire(host_key(str(url)))
        if isinstance(admission, _core.Rejected):
            exc = CircuitOpenError._from(admission, "the request was not sent")
            exc.request = request
            raise exc
        return admission


class BreakerTransport(_Base, httpx.BaseTransport):
    """An httpx transport that sends each request through its host's breaker.

    Args:
        transport: the inner transport; default ``httpx.HTTPTransport()``.
        family: the :class:`~breakerbox.BreakerFamily` to take breakers from; default: a
            new one from ``options`` (named ``"httpx"``).
        classify_status: ``status -> "success" | "failure" | "ignore"`` (or True, False,
            None); default :func:`default_classify_status`.
        failure_exceptions: the exception types that count as failures; default
            :data:`DEFAULT_FAILURES`.
        **options: the breaker options of a new family (``failure_threshold``,
            ``open_wait``, ``failure_rate``, ``max_breakers``... as
            :class:`~breakerbox.BreakerFamily`); not with ``family``.
    """

    def __init__(
        self,
        transport: Optional[httpx.BaseTransport] = None,
        *,
        family: Optional[BreakerFamily] = None,
        classify_status: Optional[Callable[[int], StatusOutcome]] = None,
        failure_exceptions: Optional[Iterable[type]] = None,
        **options: Any,
    ) -> None:
        super().__init__(family, classify_status, failure_exceptions, options)
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        admission = self._admit(request)
        try:
            response = self.transport.handle_request(request)
        except BaseException as exc:
            report_error(admission, exc, self.failure_exceptions)
            raise
        report_response(admission, self.classify_status, response.status_code, response.headers)
        return response

    def close(self) -> None:
        self.transport.close()


class AsyncBreakerTransport(_Base, httpx.AsyncBaseTransport):
    """As :class:`BreakerTransport`, for ``httpx.AsyncClient`` (inner transport
    default ``httpx.AsyncHTTPTransport()``). A cancelled request (its task cancelled,
    ``asyncio.CancelledError``) cancels its permit."""

    def __init__(
        self,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        *,
        family: Optional[BreakerFamily] = None,
        classify_status: Optional[Callable[[int], StatusOutcome]] = None,
        failure_exceptions: Optional[Iterable[type]] = None,
        **options: Any,
    ) -> None:
        super().__init__(family, classify_status, failure_exceptions, options)
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        admission = self._admit(request)
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException as exc:
            # asyncio.CancelledError (a BaseException): the permit is cancelled, not
            # left to the garbage collector.
            report_error(admission, exc, self.failure_exceptions)
            raise
        report_response(admission, self.classify_status, response.status_code, response.headers)
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()
