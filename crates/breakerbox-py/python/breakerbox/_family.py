"""``BreakerFamily``: one breaker per key (per host), on the core's ``BreakerBox``."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, Optional

from . import Breaker, _awaited, _core, _options

__all__ = ["BreakerFamily"]


class BreakerFamily:
    """A family of breakers, one per key (a host, an endpoint, a tenant), each created
    on first use from the same options as :class:`Breaker`, at most ``max_breakers``
    of them (default 10,000: a new key past the bound evicts the least recently used
    idle breaker; an open one is never evicted, so a known outage is not forgotten).

    One failing key never opens another::

        hosts = BreakerFamily(failure_threshold=3, open_wait=10.0, name="upstream")
        hosts.call("a.example:443", fetch, "/stock/42")   # or raises CircuitOpenError
        hosts.open_keys()                                 # ['a.example:443']
        hosts.get("a.example:443").state                  # 'open'

    Each breaker is named ``"{name}/{key}"`` (``name`` defaults to ``"breaker"``), which
    is the name ``on_state_change`` and :class:`CircuitOpenError` carry. Thread-safe;
    a lookup of a known key takes no lock. The Rust object is ``family._core``
    (``breakerbox._core.BreakerFamily``).
    """

    __slots__ = ("_core", "__weakref__")

    def __init__(
        self,
        failure_threshold: Optional[int] = None,
        open_wait: float = 30.0,
        half_open_probes: int = 1,
        name: Optional[str] = None,
        *,
        max_breakers: int = 10_000,
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
        self._core = _core.BreakerFamily(max_breakers=max_breakers, **_options(locals()))

    def call(self, key: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn(*args, **kwargs)`` through the breaker for ``key``, as
        :meth:`Breaker.call`: :class:`CircuitOpenError` without calling ``fn`` while it
        is open."""
        return self._core.call(key, fn, *args, **kwargs)

    async def call_async(self, key: str, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Awaits ``fn(*args, **kwargs)`` through the breaker for ``key``, as
        :meth:`Breaker.call_async` (a cancelled task releases its permit)."""
        return await _awaited(self._core.acquire(key), fn, args, kwargs)  # or CircuitOpenError

    def acquire(self, key: str) -> Any:
        """A permit for one call through the breaker for ``key``, or
        :class:`CircuitOpenError`. Report it once: ``success()``, ``failure()``,
        ``error(exc)`` (classified as the breaker's calls are), ``ignore()``,
        ``release()`` or ``cancel()``."""
        return self._core.acquire(key)

    def try_acquire(self, key: str) -> Any:
        """As :meth:`acquire`, but a rejection is returned (a ``Rejected``: ``name``,
        ``state``, ``reason``, ``retry_after``), not raised."""
        return self._core.try_acquire(key)

    def get(self, key: str) -> Breaker:
        """The :class:`Breaker` for ``key`` (created on first use): the family's own,
        so its state, calls and ``reset()`` are the family's."""
        return Breaker._wrap(self._core.get(key))

    def remove(self, key: str) -> bool:
        """Forgets the breaker for ``key``; whether there was one."""
        return self._core.remove(key)

    def open_keys(self) -> List[str]:
        """The keys whose breakers are open, sorted."""
        return self._core.open_keys()

    def states(self) -> Dict[str, str]:
        """``{key: state}`` for every breaker of the family."""
        return self._core.states()

    def reset_all(self) -> None:
        """Closes every breaker of the family."""
        self._core.reset_all()

    def __len__(self) -> int:
        return len(self._core)

    def len(self) -> int:
        """How many breakers the family holds (as ``len(family)``)."""
        return len(self._core)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._core

    @property
    def name(self) -> str:
        """The family's name: each breaker is named ``"{name}/{key}"``."""
        return self._core.name

    @property
    def max_breakers(self) -> int:
        """The most breakers the family keeps."""
        return self._core.max_breakers

    def __repr__(self) -> str:
        return f"BreakerFamily(name={self.name!r}, max_breakers={self.max_breakers})  # {len(self)} breakers"
