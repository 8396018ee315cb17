"""BreakerFamily: one breaker per key, on the core's BreakerBox; and thread safety."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import requests

from breakerbox import Breaker, BreakerFamily, CircuitOpenError, _core


class Boom(Exception):
    pass


def fail():
    raise Boom("down")


def test_one_key_opening_leaves_the_others_closed(server, other_server):
    hosts = BreakerFamily(failure_threshold=2, open_wait=60.0, name="up")
    server.status = 503

    def get(url):
        r = requests.get(url, timeout=5)
        r.raise_for_status()
        return r.status_code

    a, b = server.url, other_server.url
    for _ in range(2):
        with pytest.raises(requests.HTTPError):
            hosts.call("a", get, a)
    with pytest.raises(CircuitOpenError) as info:
        hosts.call("a", get, a)
    assert info.value.name == "up/a" and info.value.reason == "open"
    assert server.hits == 2  # the rejected call never reached the server
    assert hosts.call("b", get, b) == 200
    assert other_server.hits == 1
    assert hosts.open_keys() == ["a"]
    assert hosts.states() == {"a": "open", "b": "closed"}
    assert len(hosts) == hosts.len() == 2 and "a" in hosts and "c" not in hosts and 3 not in hosts


def test_get_is_the_familys_own_breaker():
    hosts = BreakerFamily(failure_threshold=1, open_wait=60.0)
    member = hosts.get("x")
    assert isinstance(member, Breaker) and member.name == "breaker/x" and member.failure_threshold == 1
    with pytest.raises(Boom):
        member.call(fail)  # through the handle...
    assert hosts.open_keys() == ["x"]  # ...the family's breaker opened
    with pytest.raises(CircuitOpenError):
        with hosts.get("x"):
            pass
    hosts.get("x").reset()
    assert hosts.states() == {"x": "closed"}


def test_acquire_and_try_acquire():
    hosts = BreakerFamily(failure_threshold=1, open_wait=60.0)
    permit = hosts.acquire("k")
    assert isinstance(permit, _core.Permit) and permit.admitted_in == "closed"
    permit.failure()
    rejected = hosts.try_acquire("k")
    assert isinstance(rejected, _core.Rejected) and rejected.reason == "open"
    with pytest.raises(CircuitOpenError):
        hosts.acquire("k")
    other = hosts.try_acquire("other")
    assert isinstance(other, _core.Permit) and other.success()


def test_half_open_one_probe_then_closed():
    hosts = BreakerFamily(failure_threshold=1, open_wait=0.05)
    with pytest.raises(Boom):
        hosts.call("k", fail)
    time.sleep(0.07)
    probe = hosts.acquire("k")
    assert probe.admitted_in == "half_open"
    assert hosts.try_acquire("k").reason == "half_open_full"  # one probe at a time
    probe.success()
    assert hosts.states() == {"k": "closed"}


def test_reset_all_and_remove():
    hosts = BreakerFamily(failure_threshold=1, open_wait=60.0)
    for key in "abc":
        with pytest.raises(Boom):
            hosts.call(key, fail)
    assert hosts.open_keys() == ["a", "b", "c"]
    hosts.reset_all()
    assert hosts.open_keys() == [] and set(hosts.states().values()) == {"closed"}
    assert hosts.remove("a") is True and hosts.remove("a") is False
    assert len(hosts) == 2


def test_max_breakers_bounds_the_family_but_keeps_open_ones():
    hosts = BreakerFamily(failure_threshold=1, open_wait=60.0, max_breakers=3)
    assert hosts.max_breakers == 3
    with pytest.raises(Boom):
        hosts.call("down", fail)
    for i in range(20):
        hosts.call(f"k{i}", lambda: None)
    assert len(hosts) <= 3
    assert "down" in hosts and hosts.open_keys() == ["down"]  # an open breaker is never evicted


def test_family_arguments():
    with pytest.raises(ValueError, match=r"max_breakers must be an int from 1 .*got 0"):
        BreakerFamily(max_breakers=0)
    with pytest.raises(TypeError, match="max_breakers must be an int"):
        BreakerFamily(max_breakers=2.5)
    with pytest.raises(ValueError, match=r"failure_threshold must be from 1 to 4294967295 \(consecutive"):
        BreakerFamily(failure_threshold=0)
    with pytest.raises(TypeError):
        hosts = BreakerFamily()
        hosts.call(42, lambda: None)  # keys are str
    assert BreakerFamily(name="svc").name == "svc"
    assert "BreakerFamily(name='svc'" in repr(BreakerFamily(name="svc"))


def test_call_async_through_a_family():
    hosts = BreakerFamily(failure_threshold=1, open_wait=60.0)

    async def ok(x):
        await asyncio.sleep(0)
        return x

    async def boom():
        raise Boom()

    async def hang():
        await asyncio.sleep(30)

    async def main():
        assert await hosts.call_async("a", ok, 7) == 7
        with pytest.raises(Boom):
            await hosts.call_async("a", boom)
        with pytest.raises(CircuitOpenError):
            await hosts.call_async("a", ok, 1)
        task = asyncio.ensure_future(hosts.call_async("b", hang))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    m = hosts.get("b").metrics()
    assert (m["failures"], m["probes_in_flight"]) == (0, 0) and hosts.states()["b"] == "closed"


# ===== thread safety: exact counts =====


def _hammer(call, threads: int, per_thread: int):
    """Runs call(i, n) per_thread times on each of `threads` threads; returns the
    (successes, failures, rejected) the callers saw."""
    counts = [[0, 0, 0] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(i):
        start.wait()
        for n in range(per_thread):
            try:
                call(i, n)
                counts[i][0] += 1
            except Boom:
                counts[i][1] += 1
            except CircuitOpenError:
                counts[i][2] += 1

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    return tuple(sum(c[k] for c in counts) for k in range(3))


def flaky(n):
    if n % 3 == 0:
        raise Boom()
    return n


def test_threads_exact_counts_on_one_breaker_with_a_rate_policy():
    b = Breaker(failure_rate=0.3, window_calls=20, open_wait=0.002, half_open_probes=2)
    threads, per_thread = 8, 1500
    s, f, r = _hammer(lambda i, n: b.call(flaky, n), threads, per_thread)
    assert s + f + r == threads * per_thread
    assert f > 0 and r > 0  # it opened and rejected along the way
    m = b.metrics()
    assert (m["successes"], m["failures"], m["rejected"], m["ignored"]) == (s, f, r, 0)
    assert m["probes_in_flight"] == 0


def test_threads_exact_counts_on_a_family():
    changes = []
    hosts = BreakerFamily(
        failure_threshold=2, open_wait=0.002, max_breakers=64, on_state_change=lambda *a: changes.append(a)
    )
    threads, per_thread, keys = 8, 1500, 12
    # Threads share keys, and first uses of a key race (the insertion path).
    s, f, r = _hammer(lambda i, n: hosts.call(f"host{(i + n) % keys}", flaky, n), threads, per_thread)
    assert s + f + r == threads * per_thread
    assert len(hosts) == keys
    totals = [0, 0, 0]
    for key in hosts.states():
        m = hosts.get(key).metrics()
        assert m["probes_in_flight"] == 0
        for k, name in enumerate(("successes", "failures", "rejected")):
            totals[k] += m[name]
    assert tuple(totals) == (s, f, r)
    assert f > 0 and r > 0 and changes  # breakers opened, rejected, and told the listener


def test_threads_with_blocks_and_permits_on_a_family():
    hosts = BreakerFamily(failure_threshold=3, open_wait=0.002, failure_on=Boom)

    def call(i, n):
        key = f"k{n % 4}"
        if n % 2:
            with hosts.get(key):
                flaky(n)
        else:
            permit = hosts.acquire(key)
            try:
                flaky(n)
            except BaseException as exc:
                permit.error(exc)
                raise
            permit.success()

    threads, per_thread = 6, 1000
    s, f, r = _hammer(call, threads, per_thread)
    assert s + f + r == threads * per_thread
    totals = [sum(hosts.get(k).metrics()[name] for k in hosts.states()) for name in ("successes", "failures", "rejected")]
    assert tuple(totals) == (s, f, r)
