"""Breaker's options beyond the original four: each one changes what the breaker does.

The options are read in one place (src/template.rs), for Breaker and BreakerFamily alike.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import threading
import time

import pytest

from breakerbox import Breaker, BreakerFamily, CircuitOpenError, _core


class Boom(Exception):
    pass


class NotFound(Exception):
    code = 404


class Unavailable(Exception):
    code = 503


def fail(exc: BaseException = None):
    raise exc if exc is not None else Boom("down")


def failing(b, n=1, exc=None):
    for _ in range(n):
        with pytest.raises(BaseException):
            b.call(fail, exc)


def ok():
    return "ok"


def retry_after(b) -> float:
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    return info.value.retry_after


@pytest.fixture
def unraisable(monkeypatch):
    """The reports sys.unraisablehook receives."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: seen.append(report))
    return seen


# ===== the failure-rate policy =====


def test_failure_rate_trips_on_a_share_a_streak_never_reaches():
    # Every other call fails: a streak of 2 never happens, a rate of 50 % does.
    streak = Breaker(failure_threshold=2)
    rate = Breaker(failure_rate=0.5, window_calls=10, min_calls=6)
    assert (rate.failure_threshold, rate.failure_rate) == (None, 0.5)
    for _ in range(10):
        streak.call(ok)
        failing(streak)
    assert streak.state == "closed"
    for _ in range(2):
        rate.call(ok)
        failing(rate)
    assert rate.state == "closed"  # 4 calls, fewer than min_calls: never trips
    rate.call(ok)
    failing(rate)  # 6 calls, 3 failed
    assert rate.state == "open"
    assert "failure_rate=0.5" in repr(rate)


def test_min_calls_holds_the_rate_back():
    low = Breaker(failure_rate=0.5, window_calls=100, min_calls=2)
    high = Breaker(failure_rate=0.5, window_calls=100, min_calls=10)
    for b in (low, high):
        failing(b, 3)
    assert low.state == "open" and high.state == "closed"


def test_count_window_forgets_old_calls():
    # The last 4 calls: 4 old failures scroll out behind 4 successes.
    b = Breaker(failure_rate=0.75, window_calls=4, min_calls=4)
    failing(b, 2)
    for _ in range(4):
        b.call(ok)
    failing(b, 2)  # the window holds s, s, f, f: 50 %
    assert b.state == "closed"
    failing(b)  # s, f, f, f: 75 %
    assert b.state == "open"


def test_time_window_forgets_old_failures():
    b = Breaker(failure_rate=1.0, window=datetime.timedelta(milliseconds=200), min_calls=2)
    failing(b)
    time.sleep(0.3)  # the first failure has left the window
    failing(b)
    assert b.state == "closed"
    failing(b)  # two failures inside 200 ms
    assert b.state == "open"


def test_policy_errors_name_the_argument():
    with pytest.raises(ValueError, match="give one policy, failure_threshold .* or failure_rate"):
        Breaker(failure_threshold=3, failure_rate=0.5)
    with pytest.raises(ValueError, match=r"failure_rate must be a rate from 0.0 to 1.0 \(not NaN\), got 1.5"):
        Breaker(failure_rate=1.5)
    with pytest.raises(ValueError, match="failure_rate must be a rate from 0.0 to 1.0"):
        Breaker(failure_rate=float("nan"))
    with pytest.raises(TypeError, match="failure_rate must be a float from 0.0 to 1.0, got str"):
        Breaker(failure_rate="half")
    with pytest.raises(ValueError, match=r"window applies to a failure_rate \(or slow_call_duration\) policy only"):
        Breaker(window=30.0)
    with pytest.raises(ValueError, match=r"min_calls applies to a failure_rate \(or slow_call_duration\) policy only"):
        Breaker(failure_threshold=3, min_calls=5)
    with pytest.raises(ValueError, match="give one window"):
        Breaker(failure_rate=0.5, window=1.0, window_calls=10)
    with pytest.raises(ValueError, match="window must be a finite number of seconds greater than 0, got -1"):
        Breaker(failure_rate=0.5, window=-1)
    with pytest.raises(ValueError, match="window_calls must be an int from 1 to 1048576, got 0"):
        Breaker(failure_rate=0.5, window_calls=0)
    with pytest.raises(ValueError, match=r"min_calls must be from 1 to the window's 4 calls .*got 5"):
        Breaker(failure_rate=0.5, window_calls=4, min_calls=5)
    with pytest.raises(ValueError, match="min_calls must be an int from 1"):
        Breaker(failure_rate=0.5, min_calls=0)
    with pytest.raises(TypeError, match="unexpected keyword argument \"bogus\""):
        _core.Breaker(bogus=1)


# ===== the slow-call rule =====


def test_slow_calls_open_a_breaker_that_never_failed():
    def slow():
        time.sleep(0.06)
        return "late"

    b = Breaker(slow_call_duration=0.05, slow_call_rate=0.5, window_calls=4, min_calls=4)
    fast = Breaker(failure_threshold=1)
    for x in (b, fast):
        x.call(ok)
        x.call(ok)
        assert x.call(slow) == "late"  # a success, but slow
    assert b.state == "closed" and fast.state == "closed"  # 3 calls, fewer than min_calls
    b.call(slow)  # 2 of 4 slow: 50 %
    assert b.state == "open" and b.metrics()["failures"] == 0
    assert b.failure_threshold == 5  # the policy is still there, beside the rule


def test_slow_calls_beside_a_failure_rate():
    b = Breaker(failure_rate=0.5, slow_call_duration=0.03, window=10.0, min_calls=2)
    b.call(time.sleep, 0.04)
    failing(b)  # 1 of 2 failed (50 %), 1 of 2 slow (below the default 100 %)
    assert b.state == "open"
    with pytest.raises(ValueError, match="slow_call_rate applies with slow_call_duration only"):
        Breaker(slow_call_rate=0.5)
    with pytest.raises(ValueError, match=r"slow_call_rate must be a rate from 0.0 to 1.0 \(not NaN\), got 2.0"):
        Breaker(slow_call_duration=1.0, slow_call_rate=2.0)
    with pytest.raises(ValueError, match="slow_call_duration must be a finite number of seconds greater than 0"):
        Breaker(slow_call_duration=0)
    Breaker(slow_call_duration=1.0, window_calls=10)  # a window for the slow rule alone


# ===== the open wait: exponential backoff, jitter =====


def test_max_open_wait_doubles_the_wait_at_each_reopening():
    b = Breaker(failure_threshold=1, open_wait=0.2, max_open_wait=0.5)
    fixed = Breaker(failure_threshold=1, open_wait=0.2)
    assert (b.max_open_wait, fixed.max_open_wait) == (0.5, None)
    for x in (b, fixed):
        failing(x)
        assert retry_after(x) <= 0.21  # the clock ticks coarsely
    time.sleep(0.25)
    for x in (b, fixed):
        failing(x)  # the trial call fails: open again
    assert 0.3 < retry_after(b) <= 0.41  # 0.4: doubled
    assert retry_after(fixed) <= 0.21
    time.sleep(0.45)
    failing(b)
    assert 0.41 < retry_after(b) <= 0.51  # 0.8, capped at 0.5
    time.sleep(0.55)
    b.call(ok)  # a successful trial closes it, and the backoff starts again
    failing(b)
    assert retry_after(b) <= 0.21
    assert "max_open_wait=0.5" in repr(b)


def test_open_wait_jitter_shortens_the_waits_at_random():
    plain = [Breaker(failure_threshold=1, open_wait=10.0) for _ in range(10)]
    jittered = [Breaker(failure_threshold=1, open_wait=10.0, open_wait_jitter=0.9) for _ in range(10)]
    for b in plain + jittered:
        failing(b)
    assert all(retry_after(b) > 9.9 for b in plain)
    waits = [retry_after(b) for b in jittered]
    assert all(0.9 <= w <= 10.0 for w in waits)
    assert min(waits) < 9.0 and len({round(w, 2) for w in waits}) > 1


def test_open_wait_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"max_open_wait must be at least open_wait \(1 seconds"):
        Breaker(open_wait=1.0, max_open_wait=0.5)
    with pytest.raises(ValueError, match="max_open_wait must be a finite number of seconds"):
        Breaker(max_open_wait=float("inf"))
    with pytest.raises(ValueError, match=r"open_wait_jitter must be a fraction from 0.0 to 1.0 \(not NaN\), got 1.5"):
        Breaker(open_wait_jitter=1.5)
    with pytest.raises(TypeError, match="open_wait_jitter must be a float"):
        Breaker(open_wait_jitter="some")


# ===== the classifier: failure_on, is_failure =====


def test_failure_on_counts_only_those_types():
    b = Breaker(failure_threshold=2, failure_on=(Boom, OSError))
    for _ in range(5):
        with pytest.raises(KeyError):  # propagates, counts nothing
            b.call(fail, KeyError("sku"))
    m = b.metrics()
    assert (b.state, m["failures"], m["ignored"]) == ("closed", 0, 5)
    failing(b, 1, ConnectionRefusedError())  # an OSError
    failing(b, 1, Boom())
    assert b.state == "open" and b.metrics()["failures"] == 2


def test_an_ignored_exception_neither_breaks_nor_resets_a_streak():
    b = Breaker(failure_threshold=2, failure_on=Boom)
    failing(b)
    failing(b, 1, KeyError())  # ignored: the streak stays at 1
    assert b.metrics()["consecutive_failures"] == 1
    failing(b)
    assert b.state == "open"


def test_is_failure_predicate_on_the_exception():
    b = Breaker(failure_threshold=1, is_failure=lambda e: getattr(e, "code", 500) >= 500)
    for _ in range(3):
        failing(b, 1, NotFound())
    assert b.state == "closed" and b.metrics()["ignored"] == 3
    failing(b, 1, Unavailable())
    assert b.state == "open"


def test_failure_on_then_is_failure():
    seen = []

    def is_failure(e):
        seen.append(type(e))
        return e.code >= 500

    b = Breaker(failure_threshold=1, failure_on=(NotFound, Unavailable), is_failure=is_failure)
    failing(b, 1, KeyError())  # not in failure_on: the predicate is not asked
    failing(b, 1, NotFound())
    assert b.state == "closed" and seen == [NotFound]
    failing(b, 1, Unavailable())
    assert b.state == "open"


def test_a_raising_predicate_ignores_the_call_and_is_reported(unraisable):
    def broken(e):
        raise RuntimeError("bug in the predicate")

    b = Breaker(failure_threshold=1, is_failure=broken)
    with pytest.raises(Boom):  # the call's own exception, unchanged
        b.call(fail)
    assert b.state == "closed" and b.metrics()["ignored"] == 1
    assert len(unraisable) == 1 and isinstance(unraisable[0].exc_value, RuntimeError)
    assert unraisable[0].object is broken


def test_the_classifier_applies_to_call_async_and_with_blocks():
    b = Breaker(failure_threshold=1, failure_on=Boom)

    async def raises(exc):
        raise exc

    async def main():
        with pytest.raises(KeyError):
            await b.call_async(raises, KeyError())
        with pytest.raises(KeyError):
            async with b:
                raise KeyError()
        assert b.state == "closed"
        with pytest.raises(Boom):
            async with b:
                raise Boom()

    with pytest.raises(KeyError):
        with b:
            raise KeyError()
    assert b.metrics()["ignored"] == 1
    asyncio.run(main())
    assert b.state == "open" and b.metrics()["ignored"] == 3


def test_a_cancellation_is_not_classified():
    # KeyboardInterrupt is not an Exception: the caller gave up (counts nothing if
    # quick), whatever failure_on says.
    b = Breaker(failure_threshold=1, failure_on=BaseException)
    with pytest.raises(KeyboardInterrupt):
        b.call(fail, KeyboardInterrupt())
    assert b.state == "closed" and b.metrics()["failures"] == 0


def test_permit_error_classifies():
    core = _core.Breaker(1, 60.0, failure_on=Boom)
    permit = core.acquire()
    assert permit.error(KeyError()) is True  # ignored
    assert permit.error(Boom()) is False  # reported already
    assert core.state == "closed" and core.metrics()["ignored"] == 1
    core.acquire().error(Boom())
    assert core.state == "open"
    core.reset()
    with pytest.raises(TypeError):
        core.acquire().error("not an exception")


def test_classifier_errors_name_the_argument():
    with pytest.raises(TypeError, match="failure_on must be an exception type or a non-empty tuple"):
        Breaker(failure_on="ValueError")
    with pytest.raises(TypeError, match="failure_on must be"):
        Breaker(failure_on=(ValueError, int))
    with pytest.raises(TypeError, match="failure_on must be"):
        Breaker(failure_on=())
    with pytest.raises(TypeError, match=r"is_failure must be a callable \(a predicate on the exception"):
        Breaker(is_failure=True)


# ===== listeners =====


def test_on_state_change_sees_every_transition():
    changes = []
    b = Breaker(failure_threshold=1, open_wait=0.05, name="inv", on_state_change=lambda *a: changes.append(a))
    failing(b)
    time.sleep(0.07)
    b.call(ok)
    b.reset()  # already closed: no change
    failing(b)
    b.reset()
    assert changes == [
        ("inv", "closed", "open"),
        ("inv", "open", "half_open"),
        ("inv", "half_open", "closed"),
        ("inv", "closed", "open"),
        ("inv", "open", "closed"),
    ]


def test_a_raising_listener_does_not_break_the_breaker(unraisable):
    def listener(name, old, new):
        raise RuntimeError(f"listener bug at {old}->{new}")

    b = Breaker(failure_threshold=1, open_wait=0.05, on_state_change=listener)
    with pytest.raises(Boom):  # the call's exception, not the listener's
        b.call(fail)
    assert b.state == "open"
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    time.sleep(0.07)
    assert b.call(ok) == "ok" and b.state == "closed"
    assert [str(r.exc_value) for r in unraisable] == [
        "listener bug at closed->open",
        "listener bug at open->half_open",
        "listener bug at half_open->closed",
    ]
    assert all(r.object is listener for r in unraisable)


def test_listener_may_call_back_into_the_breaker():
    seen = []
    b = None

    def listener(name, old, new):
        seen.append((new, b.state, b.metrics()["opens"]))

    b = Breaker(failure_threshold=1, on_state_change=listener)
    failing(b)
    assert seen == [("open", "open", 1)]


def test_listener_runs_on_the_thread_that_changed_the_state():
    threads = []
    b = Breaker(failure_threshold=1, on_state_change=lambda *a: threads.append(threading.current_thread().name))
    t = threading.Thread(target=failing, args=(b,), name="worker")
    t.start()
    t.join(5)
    assert threads == ["worker"]


def test_listener_error_is_a_type_error():
    with pytest.raises(TypeError, match="on_state_change must be a callable"):
        Breaker(on_state_change="print")


# ===== families take the same options =====


def test_family_members_take_every_option():
    changes = []
    hosts = BreakerFamily(
        failure_rate=0.5,
        window_calls=4,
        open_wait=0.1,
        max_open_wait=0.4,
        failure_on=Boom,
        on_state_change=lambda *a: changes.append(a),
        name="up",
    )
    for _ in range(6):
        with pytest.raises(KeyError):
            hosts.call("a:80", fail, KeyError())
    assert hosts.states() == {"a:80": "closed"}
    for _ in range(4):
        with pytest.raises(Boom):
            hosts.call("a:80", fail)
    assert hosts.open_keys() == ["a:80"]
    assert changes == [("up/a:80", "closed", "open")]
    member = hosts.get("a:80")
    assert (member.failure_rate, member.open_wait, member.max_open_wait) == (0.5, 0.1, 0.4)
    with pytest.raises(ValueError, match="failure_rate must be a rate"):
        BreakerFamily(failure_rate=2.0)


def test_a_listener_that_refers_to_its_breaker_is_collected():
    import gc
    import weakref

    def make(cls):
        b = None

        def listener(name, old, new):
            b.state  # a cycle: the breaker holds the listener, the listener the breaker

        def predicate(exc):
            return b is not None

        b = cls(failure_threshold=1, on_state_change=listener, is_failure=predicate)
        if cls is BreakerFamily:
            b.get("k")  # a member's handle must not count the references again
        else:
            failing(b)
        return weakref.ref(b), weakref.ref(listener), weakref.ref(predicate)

    for cls in (Breaker, BreakerFamily):
        refs = make(cls)
        gc.collect()
        assert [r() for r in refs] == [None, None, None], cls

    # What the collector is told: each reference once (the listener is held twice: by
    # the options and by the core's listener closure); a member's handle tells nothing.
    def listener(*a):
        pass

    def referents(core):
        return sorted(id(o) for o in gc.get_referents(core) if o is not type(core))  # the heap type's own

    b = Breaker(on_state_change=listener, failure_on=KeyError)
    assert referents(b._core) == sorted(map(id, [listener, listener, KeyError]))
    hosts = BreakerFamily(on_state_change=listener)
    assert referents(hosts._core) == sorted(map(id, [listener, listener]))
    assert referents(hosts.get("k")._core) == []


def test_every_keyword_of_both_constructors_reaches_the_core():
    # Each constructor spells its signature out and hands its arguments to one reader
    # (`_options`): a keyword in a signature that the reader does not know would be
    # accepted and ignored.
    import inspect

    import breakerbox

    original = {"self", "failure_threshold", "open_wait", "half_open_probes", "name"}
    for cls, extra in ((Breaker, set()), (BreakerFamily, {"max_breakers"})):
        keywords = set(inspect.signature(cls.__init__).parameters) - original - extra
        assert keywords == set(breakerbox._KEYWORDS), cls
    # And each of them changes the breaker: a failure rate is taken, not dropped.
    b = Breaker(failure_rate=0.5, window_calls=4, min_calls=4)
    for outcome in (True, False, True, False):
        try:
            b.call(lambda ok=outcome: None if ok else 1 / 0)
        except ZeroDivisionError:
            pass
    assert b.state == "open"
