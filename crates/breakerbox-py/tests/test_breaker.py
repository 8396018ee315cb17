"""The Pythonic Breaker: call(), the decorator, state, metrics(), reset()."""

from __future__ import annotations

import threading
import time

import pytest
import requests

import breakerbox
from breakerbox import Breaker, CircuitOpenError, _core


class Boom(Exception):
    pass


def fail():
    raise Boom("down")


def test_defaults():
    b = Breaker()
    assert (b.failure_threshold, b.open_wait, b.half_open_probes, b.name) == (5, 30.0, 1, "breaker")
    assert b.state == "closed" and b.is_closed()
    assert "Breaker(failure_threshold=5" in repr(b)


def test_call_counts_and_opens():
    b = Breaker(failure_threshold=2, open_wait=0.2, name="inventory")
    assert b.call(lambda x, y=0: x + y, 1, y=2) == 3
    for _ in range(2):
        with pytest.raises(Boom):  # the callable's own exception, unchanged
            b.call(fail)
    assert b.state == "open" and b.is_open()
    ran = []
    with pytest.raises(CircuitOpenError) as info:
        b.call(ran.append, 1)
    assert ran == []
    assert info.value.name == "inventory"
    assert str(info.value).startswith("circuit breaker `inventory` is open; retry after")
    assert "the call was not made" in str(info.value)

    time.sleep(0.25)
    assert b.state == "half_open"
    assert b.call(lambda: "back") == "back"
    assert b.state == "closed"
    m = b.metrics()
    assert isinstance(m, dict)
    assert (m["successes"], m["failures"], m["rejected"], m["opens"], m["state"]) == (2, 2, 1, 1, "closed")
    assert m["name"] == "inventory" and m["time_in_state"] >= 0


def test_reset():
    b = Breaker(failure_threshold=1, open_wait=60)
    with pytest.raises(Boom):
        b.call(fail)
    assert b.state == "open"
    b.reset()
    assert b.state == "closed"
    assert b.call(lambda: 1) == 1
    assert b.metrics()["failures"] == 1  # totals survive a reset


def test_decorator(server):
    b = Breaker(failure_threshold=2, open_wait=60)

    @b
    def fetch(url, *, timeout=5):
        """Fetches url."""
        r = requests.get(url, timeout=timeout)
        r.raise_for_status()
        return r.status_code

    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetches url." and fetch.breaker is b
    assert fetch(server.url) == 200
    server.status = 502
    for _ in range(2):
        with pytest.raises(requests.HTTPError):
            fetch(server.url)
    with pytest.raises(CircuitOpenError):
        fetch(server.url)
    assert server.hits == 3


def test_decorator_rejects_what_it_cannot_wrap():
    b = Breaker()
    with pytest.raises(TypeError, match="decorates a function"):
        b(42)

    async def coro():
        return 1

    with pytest.raises(TypeError, match="returned an awaitable"):
        b.call(coro)
    assert b.metrics()["successes"] == 0 and b.metrics()["failures"] == 0


def test_keyboard_interrupt_is_not_a_failure():
    b = Breaker(failure_threshold=1, open_wait=60)

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.call(interrupted)
    assert b.state == "closed" and b.metrics()["failures"] == 0


def test_half_open_probes():
    b = Breaker(failure_threshold=1, open_wait=0.2, half_open_probes=2)
    with pytest.raises(Boom):
        b.call(fail)
    time.sleep(0.25)
    gate, inside = threading.Event(), threading.Barrier(3)

    def probe():
        inside.wait(5)
        gate.wait(5)
        return "ok"

    threads = [threading.Thread(target=b.call, args=(probe,)) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait(5)  # both probes admitted and running
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: "third")
    assert info.value.reason == "half_open_full"
    gate.set()
    for t in threads:
        t.join(5)
    assert b.state == "closed"


def test_threads_exact_counts():
    b = Breaker(failure_threshold=3, open_wait=0.005)
    threads, per_thread = 8, 2000
    counts = [[0, 0, 0] for _ in range(threads)]
    seq = iter(range(10**9))
    lock = threading.Lock()

    def flaky():
        with lock:
            n = next(seq)
        if n % 4 == 0:
            raise Boom
        return n

    def work(i):
        for _ in range(per_thread):
            try:
                b.call(flaky)
                counts[i][0] += 1
            except Boom:
                counts[i][1] += 1
            except CircuitOpenError:
                counts[i][2] += 1

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    s, f, r = (sum(c[k] for c in counts) for k in range(3))
    assert s + f + r == threads * per_thread
    m = b.metrics()
    assert (m["successes"], m["failures"], m["rejected"]) == (s, f, r)
    assert m["probes_in_flight"] == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"failure_threshold must be from 1 to 4294967295 \(consecutive failures"):
        Breaker(failure_threshold=0)
    with pytest.raises(TypeError, match=r"failure_threshold must be an int .*got 2.5 of type float"):
        Breaker(failure_threshold=2.5)
    with pytest.raises(ValueError, match=r"open_wait must be a finite number of seconds greater than 0 .*got -0.5"):
        Breaker(open_wait=-0.5)
    with pytest.raises(ValueError, match=r"half_open_probes must be from 1 to 1023"):
        Breaker(half_open_probes=1024)
    with pytest.raises(TypeError, match="name must be a str"):
        Breaker(name=b"x")
    import datetime

    assert Breaker(open_wait=datetime.timedelta(milliseconds=1500)).open_wait == 1.5


def test_the_core_checks_its_arguments_too():
    # The private core, called directly with what the glue would refuse: a clear
    # ValueError or TypeError, never a panic (PanicException) or an abort.
    with pytest.raises(ValueError, match="failure_threshold must be an int from 1 to 4294967295, got 0"):
        _core.Breaker(0, 1.0)
    with pytest.raises(ValueError, match="failure_threshold"):
        _core.Breaker(-1, 1.0)
    with pytest.raises(ValueError, match="failure_threshold"):
        _core.Breaker(2**70, 1.0)
    with pytest.raises(TypeError, match="failure_threshold must be an int from 1 to 4294967295, got bool"):
        _core.Breaker(True, 1.0)
    with pytest.raises(ValueError, match="open_wait must be a finite number of seconds greater than 0, got -1"):
        _core.Breaker(1, -1.0)
    for bad in [0.0, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="open_wait"):
            _core.Breaker(1, bad)
    with pytest.raises(ValueError, match="open_wait is too long"):
        _core.Breaker(1, 1e300)
    with pytest.raises(TypeError):
        _core.Breaker(1, "1s")
    with pytest.raises(ValueError, match="half_open_probes must be an int from 1 to 1023, got 0"):
        _core.Breaker(1, 1.0, 0)


def test_core_permit_reports_once():
    core = _core.Breaker(1, 60.0, 1, "p")
    permit = core.try_acquire()
    assert isinstance(permit, _core.Permit) and permit.admitted_in == "closed"
    assert permit.failure() is True
    assert permit.success() is False  # already reported: nothing more
    rejected = core.try_acquire()
    assert isinstance(rejected, _core.Rejected)
    assert (rejected.name, rejected.state, rejected.reason) == ("p", "open", "open")
    assert 0 < rejected.retry_after <= 60.1  # the clock ticks coarsely
    assert "circuit breaker `p` is open" in str(rejected)


def test_public_names():
    assert set(breakerbox.__all__) >= {
        "Breaker",
        "BreakerFamily",
        "CircuitBreaker",
        "CircuitBreakerError",
        "CircuitOpenError",
        "InvalidMethod",
    }
    assert all(hasattr(breakerbox, name) for name in breakerbox.__all__)
