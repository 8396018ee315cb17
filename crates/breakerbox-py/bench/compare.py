"""breakerbox against pybreaker, circuitbreaker, aiobreaker and purgatory, in one process.

Per-call overhead of a no-op function behind each breaker: a successful call (closed)
and a rejection (the breaker tripped open by `THRESHOLD` failures), from one thread and
from 8 threads sharing one breaker (total throughput; the GIL serialises them), and the
async paths (await a no-op coroutine: one task, and 8 tasks in one event loop). Each
figure is the median of `--repeats` timed runs (`time.perf_counter_ns`), in ns per call
(8 threads/tasks: wall time / total calls). Run it with bench.sh next to it, which makes
the venv and installs the pinned versions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata as md
import os
import platform
import statistics
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

THRESHOLD = 5
TTL = 600  # seconds: a tripped breaker stays open for the whole run
FAIL = False  # the wrapped function raises while this is set (to trip a breaker)


class Boom(Exception):
    pass


def noop():
    if FAIL:
        raise Boom
    return None


async def anoop():
    if FAIL:
        raise Boom
    return None


# ---- builders: each returns a zero-argument callable making one call through a fresh breaker


def sync_builders() -> Dict[str, Callable[[], Callable[[], object]]]:
    import aiobreaker
    import circuitbreaker
    import pybreaker
    import purgatory

    import breakerbox

    def bb_decorator():
        return breakerbox.Breaker(failure_threshold=THRESHOLD, open_wait=TTL)(noop)

    def bb_call():
        b = breakerbox.Breaker(failure_threshold=THRESHOLD, open_wait=TTL)
        call = b.call
        return lambda: call(noop)

    def bb_with():
        b = breakerbox.Breaker(failure_threshold=THRESHOLD, open_wait=TTL)

        def op():
            with b:
                return noop()

        return op

    def pyb():
        return pybreaker.CircuitBreaker(fail_max=THRESHOLD, reset_timeout=TTL)(noop)

    def cb():
        return circuitbreaker.CircuitBreaker(failure_threshold=THRESHOLD, recovery_timeout=TTL)(noop)

    def aiob():
        import datetime

        return aiobreaker.CircuitBreaker(fail_max=THRESHOLD, timeout_duration=datetime.timedelta(seconds=TTL))(noop)

    def purg():
        factory = purgatory.SyncCircuitBreakerFactory(default_threshold=THRESHOLD, default_ttl=TTL)
        return factory("bench")(noop)

    return {
        "breakerbox @breaker": bb_decorator,
        "breakerbox .call(fn)": bb_call,
        "breakerbox with breaker:": bb_with,
        "pybreaker": pyb,
        "circuitbreaker": cb,
        "aiobreaker (sync path)": aiob,
        "purgatory (SyncCircuitBreakerFactory)": purg,
    }


def async_builders() -> Dict[str, Callable[[], Callable[[], object]]]:
    import datetime

    import aiobreaker
    import circuitbreaker
    import purgatory

    import breakerbox

    def bb_decorator():
        return breakerbox.Breaker(failure_threshold=THRESHOLD, open_wait=TTL)(anoop)

    def bb_with():
        b = breakerbox.Breaker(failure_threshold=THRESHOLD, open_wait=TTL)

        async def op():
            async with b:
                return await anoop()

        return op

    def cb():
        return circuitbreaker.CircuitBreaker(failure_threshold=THRESHOLD, recovery_timeout=TTL)(anoop)

    def aiob():
        return aiobreaker.CircuitBreaker(fail_max=THRESHOLD, timeout_duration=datetime.timedelta(seconds=TTL))(anoop)

    def purg():
        factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=THRESHOLD, default_ttl=TTL)
        return factory("bench")(anoop)

    return {
        "breakerbox @breaker (async def)": bb_decorator,
        "breakerbox async with breaker:": bb_with,
        "circuitbreaker (async def)": cb,
        "aiobreaker": aiob,
        "purgatory (AsyncCircuitBreakerFactory)": purg,
    }


# ---- timing


def trip_sync(op: Callable[[], object]) -> None:
    global FAIL
    FAIL = True
    try:
        for _ in range(THRESHOLD * 2):
            try:
                op()
            except Exception:
                pass
    finally:
        FAIL = False
    try:
        op()
    except Exception:
        return
    raise RuntimeError("the breaker did not open")


async def trip_async(op) -> None:
    global FAIL
    FAIL = True
    try:
        for _ in range(THRESHOLD * 2):
            try:
                await op()
            except Exception:
                pass
    finally:
        FAIL = False
    try:
        await op()
    except Exception:
        return
    raise RuntimeError("the breaker did not open")


def loop_ok(op, n):
    for _ in range(n):
        op()


def loop_rejected(op, n):
    for _ in range(n):
        try:
            op()
        except Exception:
            pass


def run_threads(body, op, n_total, threads):
    per = n_total // threads
    barrier = threading.Barrier(threads + 1)
    done = []

    def worker():
        barrier.wait()
        body(op, per)
        done.append(time.perf_counter_ns())

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for t in ts:
        t.join()
    return (max(done) - start) / (per * threads)


def time_sync(op, rejected: bool, threads: int, n: int, repeats: int) -> float:
    body = loop_rejected if rejected else loop_ok
    samples = []
    for _ in range(repeats):
        if threads == 1:
            start = time.perf_counter_ns()
            body(op, n)
            samples.append((time.perf_counter_ns() - start) / n)
        else:
            samples.append(run_threads(body, op, n, threads))
    return statistics.median(samples)


async def aloop_ok(op, n):
    for _ in range(n):
        await op()


async def aloop_rejected(op, n):
    for _ in range(n):
        try:
            await op()
        except Exception:
            pass


async def time_async(op, rejected: bool, tasks: int, n: int, repeats: int) -> float:
    body = aloop_rejected if rejected else aloop_ok
    samples = []
    for _ in range(repeats):
        per = n // tasks
        start = time.perf_counter_ns()
        if tasks == 1:
            await body(op, per)
        else:
            await asyncio.gather(*(body(op, per) for _ in range(tasks)))
        samples.append((time.perf_counter_ns() - start) / (per * tasks))
    return statistics.median(samples)


def calibrate_sync(op, rejected, target_s) -> int:
    body = loop_rejected if rejected else loop_ok
    n = 100
    while True:
        start = time.perf_counter_ns()
        body(op, n)
        took = (time.perf_counter_ns() - start) / 1e9
        if took > target_s / 10 or n >= 10_000_000:
            return max(800, int(n * target_s / max(took, 1e-9)) // 8 * 8)
        n *= 4


async def calibrate_async(op, rejected, target_s) -> int:
    body = aloop_rejected if rejected else aloop_ok
    n = 100
    while True:
        start = time.perf_counter_ns()
        await body(op, n)
        took = (time.perf_counter_ns() - start) / 1e9
        if took > target_s / 10 or n >= 10_000_000:
            return max(800, int(n * target_s / max(took, 1e-9)) // 8 * 8)
        n *= 4


# ---- main


def fmt(ns: Optional[float]) -> str:
    if ns is None:
        return "n/a"
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.1, help="seconds per timed run (default 0.1)")
    parser.add_argument("--only", default="", help="a substring of the rows to run")
    args = parser.parse_args()

    versions = {p: md.version(p) for p in ("breakerbox", "pybreaker", "circuitbreaker", "aiobreaker", "purgatory")}
    print(f"# Python {platform.python_version()} ({sys.implementation.name}), {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}")
    print("# " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"# median of {args.repeats} runs of ~{args.target}s each; ns per call; 8 threads/tasks: wall / total calls")
    print()
    header = "| path | success, 1 thread | success, 8 threads | rejected, 1 thread | rejected, 8 threads |"
    print(header)
    print("|---|---:|---:|---:|---:|")

    rows: List[Tuple[str, List[float]]] = []

    def bare():
        return noop

    sync = {"bare function (no breaker)": bare, **sync_builders()}
    for name, build in sync.items():
        if args.only and args.only not in name:
            continue
        figures: List[Optional[float]] = []
        for rejected in (False, True):
            if rejected and name.startswith("bare"):
                figures += [None, None]
                continue
            op = build()
            if rejected:
                trip_sync(op)
            n = calibrate_sync(op, rejected, args.target)
            for threads in (1, 8):
                figures.append(time_sync(op, rejected, threads, n, args.repeats))
        print(f"| {name} | " + " | ".join(fmt(f) for f in figures) + " |", flush=True)
        rows.append((name, figures))

    async def run_async():
        builders = {"bare coroutine (no breaker)": lambda: anoop, **async_builders()}
        for name, build in builders.items():
            if args.only and args.only not in name:
                continue
            figures: List[Optional[float]] = []
            for rejected in (False, True):
                if rejected and name.startswith("bare"):
                    figures += [None, None]
                    continue
                op = build()
                if rejected:
                    await trip_async(op)
                n = await calibrate_async(op, rejected, args.target)
                for tasks in (1, 8):
                    figures.append(await time_async(op, rejected, tasks, n, args.repeats))
            print(f"| async: {name} | " + " | ".join(fmt(f) for f in figures) + " |", flush=True)

    print("| *async (await; \"threads\" = tasks in one event loop)* | | | | |")
    asyncio.run(run_async())


if __name__ == "__main__":
    main()
