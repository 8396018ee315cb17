"""asyncio: call_async, the decorator on async def, and `with` / `async with` blocks."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

from breakerbox import Breaker, CircuitOpenError


def run(coro):
    return asyncio.run(coro)


def test_call_async_counts_successes_and_failures():
    b = Breaker(failure_threshold=2, open_wait=60.0)

    async def ok(x, *, y):
        await asyncio.sleep(0)
        return x + y

    async def boom():
        await asyncio.sleep(0)
        raise ValueError("down")

    async def main():
        assert await b.call_async(ok, 1, y=2) == 3
        for _ in range(2):
            with pytest.raises(ValueError, match="down"):
                await b.call_async(boom)
        assert b.state == "open"
        with pytest.raises(CircuitOpenError) as e:
            await b.call_async(ok, 1, y=2)
        assert e.value.reason == "open" and e.value.retry_after > 0

    run(main())
    m = b.metrics()
    assert (m["successes"], m["failures"], m["rejected"]) == (1, 2, 1)


def test_decorator_on_async_def():
    b = Breaker(failure_threshold=1, open_wait=60.0, name="inv")
    calls = []

    @b
    async def stock(sku):
        calls.append(sku)
        if sku < 0:
            raise LookupError(sku)
        return {"sku": sku}

    assert inspect.iscoroutinefunction(stock)
    assert stock.__name__ == "stock" and stock.breaker is b

    async def main():
        assert await stock(1) == {"sku": 1}
        with pytest.raises(LookupError):
            await stock(-1)
        with pytest.raises(CircuitOpenError):
            await stock(2)

    run(main())
    assert calls == [1, -1]


def test_sync_call_still_refuses_a_coroutine_function():
    b = Breaker()

    async def coro():
        return 1

    with pytest.raises(TypeError, match="call_async"):
        b.call(coro)
    assert b.metrics()["successes"] == 0 and b.metrics()["probes_in_flight"] == 0


def test_cancelled_task_releases_its_permit_without_a_failure():
    b = Breaker(failure_threshold=1, open_wait=60.0, half_open_probes=1)

    async def hang():
        await asyncio.sleep(30)

    async def main():
        task = asyncio.ensure_future(b.call_async(hang))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    m = b.metrics()
    assert b.state == "closed"
    assert (m["failures"], m["successes"]) == (0, 0)


def test_cancelled_after_a_long_time_is_a_failure():
    b = Breaker(failure_threshold=1, open_wait=60.0)

    async def hang():
        await asyncio.sleep(30)

    async def main():
        task = asyncio.ensure_future(b.call_async(hang))
        await asyncio.sleep(1.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert b.metrics()["failures"] == 1 and b.state == "open"


def test_cancelled_probe_frees_the_half_open_slot():
    b = Breaker(failure_threshold=1, open_wait=0.05, half_open_probes=1)
    with pytest.raises(ValueError):
        b.call(lambda: (_ for _ in ()).throw(ValueError()))
    time.sleep(0.08)
    assert b.is_half_open()

    async def hang():
        await asyncio.sleep(30)

    async def ok():
        return "ok"

    async def main():
        task = asyncio.ensure_future(b.call_async(hang))
        await asyncio.sleep(0.01)
        with pytest.raises(CircuitOpenError) as e:  # the one probe slot is taken
            await b.call_async(ok)
        assert e.value.reason == "half_open_full"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await b.call_async(ok) == "ok"  # the slot is free again: this probe closes it

    run(main())
    assert b.state == "closed"


def test_sync_with_block():
    b = Breaker(failure_threshold=2, open_wait=60.0)
    with b as same:
        assert same is b
    for _ in range(2):
        with pytest.raises(KeyError):
            with b:
                raise KeyError("x")
    with pytest.raises(CircuitOpenError):
        with b:
            pytest.fail("the block must not run while open")
    m = b.metrics()
    assert (m["successes"], m["failures"], m["rejected"]) == (1, 2, 1)


def test_with_block_keyboard_interrupt_is_a_cancellation():
    b = Breaker(failure_threshold=1, open_wait=60.0)
    with pytest.raises(KeyboardInterrupt):
        with b:
            raise KeyboardInterrupt
    assert b.state == "closed" and b.metrics()["failures"] == 0 and b.metrics()["probes_in_flight"] == 0


def test_nested_blocks_report_their_own_permits():
    outer = Breaker(failure_threshold=5, open_wait=60.0)
    with pytest.raises(ValueError):
        with outer:
            with outer:
                pass  # inner: a success
            raise ValueError  # outer: a failure
    m = outer.metrics()
    assert (m["successes"], m["failures"]) == (1, 1)


def test_with_blocks_in_threads():
    b = Breaker(failure_threshold=1000, open_wait=60.0)
    barrier = threading.Barrier(8)

    def worker(i):
        barrier.wait()
        for _ in range(200):
            try:
                with b:
                    if i % 2:
                        raise RuntimeError
            except RuntimeError:
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = b.metrics()
    assert (m["successes"], m["failures"]) == (800, 800)


def test_async_with_blocks_in_concurrent_tasks():
    b = Breaker(failure_threshold=1000, open_wait=60.0)

    async def one(i):
        try:
            async with b:
                await asyncio.sleep(0.001 * (i % 3))
                if i % 2:
                    raise OSError("down")
        except OSError:
            pass

    async def main():
        await asyncio.gather(*(one(i) for i in range(100)))

    run(main())
    m = b.metrics()
    assert (m["successes"], m["failures"]) == (50, 50)


def test_async_with_cancelled_task_is_not_a_failure():
    b = Breaker(failure_threshold=1, open_wait=60.0)

    async def guarded():
        async with b:
            await asyncio.sleep(30)

    async def main():
        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert b.state == "closed" and b.metrics()["failures"] == 0
    assert b.metrics()["probes_in_flight"] == 0


def test_async_with_rejects_while_open():
    b = Breaker(failure_threshold=1, open_wait=60.0)

    async def main():
        with pytest.raises(ZeroDivisionError):
            async with b:
                1 / 0
        with pytest.raises(CircuitOpenError):
            async with b:
                pytest.fail("must not run")

    run(main())


def test_a_rejection_from_the_core_reads_like_one_built_by_init():
    import pickle

    b = Breaker(failure_threshold=1, open_wait=60.0, name="inv")
    with pytest.raises(OSError):
        b.call(lambda: (_ for _ in ()).throw(OSError()))
    for attempt in (lambda: b.call(print), lambda: b.__enter__(), lambda: run(b.call_async(asyncio.sleep, 0))):
        with pytest.raises(CircuitOpenError) as e:
            attempt()
        exc = e.value
        assert (exc.name, exc.state, exc.reason) == ("inv", "open", "open")
        assert 0 < exc.retry_after <= 61
        assert "the call was not made" in str(exc) and "inv" in str(exc)
        assert exc.args == (str(exc),) and repr(exc) == f"CircuitOpenError({str(exc)!r})"
        with pytest.raises(AttributeError):
            exc.nope
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is CircuitOpenError and str(back) == str(exc)
        assert (back.name, back.reason, back.retry_after) == (exc.name, exc.reason, exc.retry_after)
    built = CircuitOpenError("m", name="n", reason="forced_open")
    assert (str(built), built.args, built.name, built.state, built.retry_after) == ("m", ("m",), "n", "open", None)
    assert pickle.loads(pickle.dumps(built)).reason == "forced_open"
