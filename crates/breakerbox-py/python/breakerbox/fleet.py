"""``Fleet``: breakers sharing trips through Redis, on the Rust ``breakerbox-redis``.

Every replica of a service (a process, a pod) keeps its own breakers, and every call is
still decided locally, by the breaker, in microseconds: the fleet never runs on a call.
A background thread (one per process, Rust, with no GIL) pushes each watched breaker's
trips and call counts to Redis, where atomic Lua scripts decide for the whole fleet, and
applies the fleet's decisions back: one replica's trip opens the breaker of the same
name on every replica within about a millisecond (a pub/sub push; at worst one
``refresh_interval``), and after the open wait one replica probes for the whole fleet.

::

    from breakerbox import Breaker, Fleet

    fleet = Fleet("checkout", "redis://127.0.0.1:6379", min_replicas=2)
    payments = fleet.breaker(name="payments", failure_threshold=5, open_wait=30.0)
    payments.call(charge, order)      # as without a fleet: never waits on Redis
    fleet.status()                    # {'joined': True, 'degraded': False, ...}
    fleet.close()                     # or: with Fleet(...) as fleet:
"""

from __future__ import annotations

import atexit
import datetime
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import Breaker, CircuitBreakerError, _core, _seconds

__all__ = ["Fleet", "FleetUnavailable"]

#: The Redis a fleet connects to when given neither ``url``, ``sentinel`` nor ``cluster``.
DEFAULT_URL = "redis://127.0.0.1:6379"

_Seconds = Union[int, float, datetime.timedelta]


class FleetUnavailable(CircuitBreakerError, ConnectionError):
    """:meth:`Fleet.sync` could not reach Redis (down, slow, partitioned away, or the
    address is wrong). The fleet is degraded meanwhile: its breakers decide as
    ``when_unreachable`` says, and it rejoins on its own when Redis answers."""


def _secs(arg: str, value: Any) -> Optional[float]:
    """A duration argument: None, or seconds (int, float, timedelta), finite and > 0."""
    return None if value is None else _seconds(arg, value, "a fleet setting")


def _str(arg: str, value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, got {value!r} of type {type(value).__name__}")
    return value


def _urls(arg: str, value: Any) -> List[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{arg} must be a list of Redis URLs (['redis://host:port', ...]), got {value!r}")
    for url in value:
        _str(arg, url)
    if not value:
        raise ValueError(f"{arg} must name at least one Redis URL, got an empty list")
    return list(value)


# Fleets still open, closed at interpreter exit: their event threads stop before the
# interpreter goes away.
_open: "weakref.WeakSet[Fleet]" = weakref.WeakSet()
_open_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    with _open_lock:
        fleets = list(_open)
    for fleet in fleets:
        fleet.close()


class Fleet:
    """Shares the trips of this replica's breakers with every replica of ``service``,
    through Redis.

    Watch breakers with :meth:`watch` (any :class:`Breaker` or
    :class:`CircuitBreaker`), :meth:`watch_family` (a :class:`BreakerFamily`: each
    member under its own name), or build and watch one with :meth:`breaker`. Breakers
    are shared **by name**: the ``payments`` breaker of every replica of ``checkout``
    is one fleet breaker. Configure them alike on every replica.

    Calls never wait on Redis, whether it is up, down, slow or frozen: the breaker
    decides each call on its own. While Redis cannot be reached the fleet is
    *degraded*: with ``when_unreachable="local"`` (the default) every breaker decides
    on its own policy, as without a fleet (one the fleet held open waits out what was
    left of the fleet's wait, then probes on its own); with ``"open"`` every watched
    breaker is held open (fail closed) until Redis answers. The fleet rejoins on its
    own, and reconciles: what tripped meanwhile is voted, what the fleet opened
    meanwhile is applied.

    Arguments (all but ``service`` and ``url`` keyword-only; ``None`` takes the default;
    seconds are an int, a float or a ``datetime.timedelta``):

    - ``service``: namespaces the Redis keys (no ``:``, ``{`` or ``}``).
    - ``url``: one Redis node, ``redis://[user:password@]host:port[/db]`` (default
      ``redis://127.0.0.1:6379``). Or ``sentinel=(master_name, [sentinel_urls])``: the
      master found through Redis Sentinel, followed across failovers; or
      ``cluster=[seed_urls]``: a Redis Cluster. One of the three.
    - ``min_replicas`` (2): replicas whose own breaker must have tripped within
      ``window`` before the fleet opens: one bad replica alone cannot trip the fleet
      (unless 1). Below the quorum a replica that tripped stays open on its own.
    - ``min_calls`` (10): calls the fleet must have seen within ``window`` before it
      opens.
    - ``replica_id``: this replica's id in votes and probe leases (default
      ``<hostname>-<pid>-<random>``); unique per process.
    - ``key_prefix`` (``"breakerbox"``): the first part of every key.
    - ``sync_interval`` (0.1 s): how often call counts are pushed (trips are pushed at
      once). ``refresh_interval`` (1 s): how often every breaker is read again, in case
      a push was lost. ``window`` (10 s): how long votes and counts count.
      ``probe_lease`` (10 s): how long the replica probing for the fleet may take
      before another may. ``key_ttl`` (1 day): abandoned keys expire.
      ``operation_timeout`` (0.1 s): every Redis operation; past it the fleet is
      degraded.
    - ``when_unreachable`` (``"local"``): ``"local"`` or ``"open"``, above.
    - ``on_event``: called with a dict for everything the fleet does (``kind``:
      ``joined``, ``degraded``, ``rejoined``, ``opened``, ``closed``, ``recovering``,
      ``probe_lease``, ``data_lost``, ``stale_ignored``; and the event's fields), from
      a thread of the fleet's own, one event at a time. Keep it short. An exception it
      raises goes to ``sys.unraisablehook``; the fleet carries on.

    A bad setting is a ``ValueError`` (or ``TypeError``) naming it. The constructor
    returns at once (the GIL released while the background thread starts): the fleet
    connects in the background, so it may start before Redis does (degraded until
    then). :meth:`sync` waits for an exchange with Redis.

    ``close()`` (or leaving a ``with`` block) stops it; it is also closed at exit and
    when garbage-collected. After ``os.fork()``, create fleets in the child: a fleet
    started in the parent raises ``RuntimeError`` there.
    """

    __slots__ = ("_core", "__weakref__")

    def __init__(
        self,
        service: str,
        url: str = DEFAULT_URL,
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
    ) -> None:
        _str("service", service)
        if service is None:
            raise TypeError("service must be a str (it namespaces the keys), got None")
        _str("url", url)
        if sentinel is not None and cluster is not None:
            raise ValueError("give one of url, sentinel or cluster, not several")
        if sentinel is not None or cluster is not None:
            if url != DEFAULT_URL:
                raise ValueError("give one of url, sentinel or cluster, not several")
            url = None  # type: ignore[assignment]
        if sentinel is not None:
            if isinstance(sentinel, (str, bytes)) or not isinstance(sentinel, (tuple, list)) or len(sentinel) != 2:
                raise TypeError(
                    "sentinel must be (master_name, [sentinel_urls]), such as "
                    f"('mymaster', ['redis://10.0.0.1:26379']), got {sentinel!r}"
                )
            sentinel = (_str("sentinel", sentinel[0]), _urls("sentinel", sentinel[1]))  # type: ignore[assignment]
        if cluster is not None:
            cluster = _urls("cluster", cluster)
        if on_event is not None and not callable(on_event):
            raise TypeError(f"on_event must be a callable taking one dict, got {on_event!r}")
        self._core = _core.Fleet(
            service,
            url,
            sentinel=sentinel,
            cluster=cluster,
            replica_id=_str("replica_id", replica_id),
            key_prefix=_str("key_prefix", key_prefix),
            min_replicas=min_replicas,
            min_calls=min_calls,
            sync_interval=_secs("sync_interval", sync_interval),
            refresh_interval=_secs("refresh_interval", refresh_interval),
            window=_secs("window", window),
            probe_lease=_secs("probe_lease", probe_lease),
            key_ttl=_secs("key_ttl", key_ttl),
            operation_timeout=_secs("operation_timeout", operation_timeout),
            when_unreachable=_str("when_unreachable", when_unreachable),
            on_event=on_event,
        )
        with _open_lock:
            _open.add(self)

    # --- breakers ---

    def watch(self, breaker: Any) -> Any:
        """Shares ``breaker`` (a :class:`Breaker` or :class:`CircuitBreaker`) with the
        fleet, under its name, and returns it. Its trips from now on are voted, and the
        fleet's decisions applied to it within a ``sync_interval``. Watching the same
        breaker again does nothing; another breaker of the same name is a
        ``ValueError`` (breakers are shared by name)."""
        core = getattr(breaker, "_core", breaker)
        if not isinstance(core, _core.Breaker):
            raise TypeError(
                f"Fleet.watch takes a breakerbox.Breaker or CircuitBreaker, got {breaker!r} of type "
                f"{type(breaker).__name__} (a BreakerFamily goes to watch_family)"
            )
        self._core.watch(core)
        return breaker

    def watch_family(self, family: Any) -> Any:
        """Shares every breaker of ``family`` (a :class:`BreakerFamily`), present and
        future, each under its own name (``"{name}/{key}"``), and returns it. A key this
        replica has not used yet has no breaker here: the fleet's state for it is
        applied when it is first used (within a ``sync_interval``)."""
        core = getattr(family, "_core", family)
        if not isinstance(core, _core.BreakerFamily):
            raise TypeError(
                f"Fleet.watch_family takes a breakerbox.BreakerFamily, got {family!r} of type {type(family).__name__}"
            )
        self._core.watch_family(core)
        return family

    def breaker(self, name: str, **options: Any) -> Breaker:
        """A new :class:`Breaker` named ``name`` (required: the fleet shares breakers
        by name), built from ``options`` exactly as ``Breaker(**options)``, and
        watched."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str (the fleet shares breakers by name), got {name!r}")
        return self.watch(Breaker(name=name, **options))

    # --- the fleet ---

    def sync(self, timeout: _Seconds = 5.0) -> None:
        """Pushes every watched breaker's counts and votes now, reads the fleet's state
        and applies it; returns when done. Not needed in normal operation (the
        background thread syncs every ``sync_interval``); useful at startup, in tests
        and before shutdown. Waits at most ``timeout`` seconds, the GIL released.

        Raises :class:`FleetUnavailable` if Redis could not be reached (the fleet is
        then degraded), ``RuntimeError`` if the fleet is closed.
        """
        error = self._core.sync(_secs("timeout", timeout))
        if error is not None:
            raise FleetUnavailable(f"fleet {self.service!r}: {error}")

    def status(self) -> Dict[str, Any]:
        """The fleet's health, as a dict: ``service``, ``replica_id``, ``closed``,
        ``when_unreachable``, and while open (or as it was when closed): ``joined``
        (Redis answered once), ``degraded`` (Redis unreachable now: breakers deciding as
        ``when_unreachable`` says), ``sync_lag`` (seconds since the last exchange with
        Redis, None before any), ``breakers`` (synced), ``ops`` (store operations),
        ``errors`` (failed or timed out), ``applied`` (fleet decisions applied to local
        breakers), ``stale_ignored``, ``data_losses`` (breakers whose keys Redis lost),
        ``probe_leases`` (granted to this replica)."""
        return self._core.status()

    def view(self, name: str) -> Optional[Dict[str, Any]]:
        """What this replica knows of the fleet's state of the breaker ``name``, as a
        dict: ``name``, ``state`` (the fleet's: 'closed', 'open', 'half_open' (its wait
        passed: probing through the lease), 'recovering'), ``epoch`` (+1 on every
        fleet-wide transition), ``held`` (this replica's breaker is held open by the
        fleet, rather than by its own policy), ``probing`` (this replica holds the probe
        lease). None for a breaker not watched, or once closed."""
        return self._core.view(_str("name", name))

    def watched(self) -> List[str]:
        """The names of the breakers watched, sorted (families' current members
        included)."""
        return self._core.watched()

    @property
    def config(self) -> Dict[str, Any]:
        """The settings, defaults filled in, durations in seconds."""
        return self._core.config()

    @property
    def service(self) -> str:
        """The service, as given."""
        return self._core.service

    @property
    def replica_id(self) -> str:
        """This replica's id."""
        return self._core.replica_id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._core.closed

    def close(self) -> None:
        """Stops the fleet: its breakers are unplugged and decide locally from now on
        (one the fleet held open waits out its hold, then probes on its own), no event
        is delivered after this returns (one already being delivered finishes), and
        :meth:`watch`, :meth:`breaker` and :meth:`sync` raise ``RuntimeError``.
        :meth:`status` still answers, as of the close. Idempotent."""
        self._core.close()
        with _open_lock:
            _open.discard(self)

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self._core.status()
        state = "closed" if s["closed"] else ("degraded" if s.get("degraded") else "running")
        return f"<breakerbox.Fleet {s['service']!r} replica_id={s['replica_id']!r} {state}>"
