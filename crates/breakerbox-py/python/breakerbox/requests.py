"""breakerbox for requests: a transport adapter with one breaker per host.

::

    from breakerbox.requests import session

    http = session(failure_threshold=5, open_wait=30.0)   # a requests.Session
    http.get("https://api.example/stock/42")              # or raises CircuitOpenError

or mount the adapter on a session of your own::

    from breakerbox.requests import BreakerAdapter

    s = requests.Session()
    adapter = BreakerAdapter(max_retries=2)               # HTTPAdapter's arguments
    s.mount("https://", adapter)
    s.mount("http://", adapter)

Each host (``scheme://host:port``, the scheme's default port when the URL has none) has its own
breaker in a :class:`~breakerbox.BreakerFamily`, so one host going down never fails
requests to another. A response is classified by its status (default: a 5xx or a 429
is a failure, anything else a success; a failure's ``Retry-After`` keeps the breaker
open at least that long, up to 5 minutes); a connection error or a timeout is a
failure; any other exception (an invalid URL) counts nothing. While a host's breaker is
open, its requests raise :class:`CircuitOpenError` without being sent.

Importing this module imports requests; ``import breakerbox`` does not.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import requests
import requests.adapters
import requests.exceptions

from . import BreakerFamily, _core
from . import CircuitOpenError as _CircuitOpenError
from ._http import StatusOutcome, default_classify_status, family_for, host_key, report_error, report_response

__all__ = ["BreakerAdapter", "CircuitOpenError", "DEFAULT_FAILURES", "default_classify_status", "host_key", "session"]

#: The exceptions of a request that count as failures of its host: it could not be
#: reached, or did not answer in time, or broke off its answer.
DEFAULT_FAILURES: tuple = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class CircuitOpenError(_CircuitOpenError, requests.exceptions.ConnectionError):
    """The host's breaker is open: the request was not sent.

    Both a :class:`breakerbox.CircuitOpenError` (``name``, ``state``, ``reason``,
    ``retry_after``; the breaker's name is ``"{family name}/{host}:{port}"``) and a
    ``requests.exceptions.ConnectionError`` (``request`` is the request that was not
    sent), so code that handles an unreachable host handles an open circuit too.
    """


class BreakerAdapter(requests.adapters.HTTPAdapter):
    """An ``HTTPAdapter`` that sends each request through its host's breaker.

    Args:
        family: the :class:`~breakerbox.BreakerFamily` to take breakers from; default: a
            new one named ``"requests"`` with the default options (5 consecutive
            failures, 30 s open).
        classify_status: ``status -> "success" | "failure" | "ignore"`` (or True for a
            failure, False for a success, None for ignore); default
            :func:`default_classify_status`.
        failure_exceptions: the exception types of ``send`` that count as failures;
            default :data:`DEFAULT_FAILURES`.
        **adapter_kwargs: ``HTTPAdapter``'s own (``pool_connections``, ``pool_maxsize``,
            ``max_retries``, ``pool_block``). urllib3's retries happen inside one call
            through the breaker.
    """

    def __init__(
        self,
        family: Optional[BreakerFamily] = None,
        *,
        classify_status: Optional[Callable[[int], StatusOutcome]] = None,
        failure_exceptions: Optional[Iterable[type]] = None,
        **adapter_kwargs: Any,
    ) -> None:
        self.family = family_for(family, "requests", {})
        self.classify_status = classify_status or default_classify_status
        self.failure_exceptions = tuple(failure_exceptions) if failure_exceptions is not None else DEFAULT_FAILURES
        super().__init__(**adapter_kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Sends ``request`` through its host's breaker (``HTTPAdapter.send``'s
        arguments); raises :class:`CircuitOpenError` without sending it while the host's
        breaker is open."""
        admission = self.family.try_acquire(host_key(request.url or ""))
        if isinstance(admission, _core.Rejected):
            exc = CircuitOpenError._from(admission, "the request was not sent")
            exc.request = request
            raise exc
        try:
            response = super().send(request, *args, **kwargs)
        except BaseException as exc:
            report_error(admission, exc, self.failure_exceptions)
            raise
        report_response(admission, self.classify_status, response.status_code, response.headers)
        return response


def session(
    family: Optional[BreakerFamily] = None,
    *,
    classify_status: Optional[Callable[[int], StatusOutcome]] = None,
    failure_exceptions: Optional[Iterable[type]] = None,
    **options: Any,
) -> requests.Session:
    """A ``requests.Session`` with a :class:`BreakerAdapter` mounted for ``http://``
    and ``https://``; the family is ``session.breakers``.

    ``options`` are the breaker options of a new family (``failure_threshold``,
    ``open_wait``, ``failure_rate``, ``max_breakers``... as :class:`~breakerbox.BreakerFamily`;
    its name defaults to ``"requests"``), or give a ``family``.
    """
    adapter = BreakerAdapter(
        family_for(family, "requests", options),
        classify_status=classify_status,
        failure_exceptions=failure_exceptions,
    )
    s = requests.Session()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.breakers = adapter.family  # type: ignore[attr-defined]
    return s
