"""What the HTTP adapters share: the per-host key, the status classifier, Retry-After."""

from __future__ import annotations

import datetime
import email.utils
import urllib.parse
from typing import Any, Callable, Mapping, Optional, Union

from . import BreakerFamily

#: What a status classifier returns: "success", "failure" or "ignore" (True is a
#: failure, False a success, None ignored).
StatusOutcome = Union[str, bool, None]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def host_key(url: str) -> str:
    """The breaker key of a URL: ``scheme://host:port``, scheme and host lowercased (an
    IPv6 address in brackets), the port the scheme's default when the URL has none (80
    for http, 443 for https): ``https://API.example/x`` and ``https://api.example:443/y``
    share a breaker. The Rust crate's per-host breakers (``breakerbox-http``) key hosts
    the same way, so a dashboard reads one set of names from both.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    key = f"{host}:{port}" if port else host
    return f"{scheme}://{key}" if scheme else key


def default_classify_status(status: int) -> StatusOutcome:
    """The default status classifier: a 5xx or a 429 (Too Many Requests) is a failure,
    any other status a success (a 404 is the service working)."""
    return "failure" if status >= 500 or status == 429 else "success"


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """A ``Retry-After`` header in seconds: delay-seconds or an HTTP date; None if
    absent, unreadable or in the past."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value) or None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return seconds if seconds > 0 else None


def report_response(
    admission: Any, classify_status: Callable[[int], StatusOutcome], status: int, headers: Mapping[str, str]
) -> None:
    """Reports an answered request on its permit, by its status. A failure carries the
    response's ``Retry-After``: if it opens the breaker, it stays open at least that long
    (up to 5 minutes). A classifier that raises counts nothing (a bug in it says nothing
    about the server) and its exception propagates."""
    try:
        outcome = classify_status(status)
    except BaseException:
        admission.ignore()
        raise
    if outcome is True or outcome == "failure":
        admission.failure(retry_after_seconds(headers.get("Retry-After")))
    elif outcome is False or outcome == "success":
        admission.success()
    elif outcome is None or outcome == "ignore":
        admission.ignore()
    else:
        admission.ignore()
        raise ValueError(
            f"classify_status must return 'success', 'failure' or 'ignore' (or True, False, None), "
            f"got {outcome!r} for status {status}"
        )


def report_error(admission: Any, exc: BaseException, failures: tuple) -> None:
    """Reports a request that raised: a failure for the transport errors in
    ``failures`` (connection errors, timeouts), a cancellation for a
    ``BaseException`` that is not an ``Exception`` (a cancelled task, a
    ``KeyboardInterrupt``: a failure only if it ran a second or more), ignored
    otherwise (an invalid URL, a bug: nothing about the server)."""
    if isinstance(exc, failures):
        admission.failure()
    elif isinstance(exc, Exception):
        admission.ignore()
    else:
        admission.cancel()


def family_for(family: Optional[BreakerFamily], default_name: str, options: Mapping[str, Any]) -> BreakerFamily:
    """The adapter's family: the one given, or a new one from the breaker options."""
    if family is not None:
        if options:
            raise TypeError(
                f"give a family or breaker options ({', '.join(sorted(options))}), not both: "
                "the family already has its options"
            )
        if not isinstance(family, BreakerFamily):
            raise TypeError(f"family must be a breakerbox.BreakerFamily, got {type(family).__name__}")
        return family
    return BreakerFamily(**{"name": default_name, **options})
