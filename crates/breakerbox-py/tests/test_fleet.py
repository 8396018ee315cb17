"""breakerbox.Fleet against real redis-server processes (never a mock).

Each test that needs Redis starts its own ``redis-server`` on 127.0.0.1 at a free port,
without persistence, and kills it at teardown. The binary is $BREAKERBOX_REDIS_SERVER,
else ``redis-server`` on PATH (``cargo xtask test`` puts it there, installing it if it
must); without one those tests are skipped, saying how to install it. Replicas are
separate ``Fleet`` objects with replica ids of their own (their own connections), in
this process, and in one test a second Python process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any, Callable, Dict, List

import pytest

import breakerbox
from breakerbox import Breaker, BreakerFamily, CircuitOpenError, Fleet, FleetUnavailable

REDIS_SERVER = os.environ.get("BREAKERBOX_REDIS_SERVER") or shutil.which("redis-server")


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1, killed on :meth:`stop`."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="breakerbox-py-redis-")
        self.proc: subprocess.Popen = None  # type: ignore[assignment]
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at startup: {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")
            time.sleep(0.01)

    def command(self, *args: str) -> bytes:
        """One command, its raw reply's first line (enough for PING and integers)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args))
            return s.makefile("rb").readline().rstrip(b"\r\n")

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing saved."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        """Killed, then started again on the same port, empty."""
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a stalled host)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.thaw()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis():
    if REDIS_SERVER is None:
        pytest.skip(
            "redis-server not found (not on PATH, BREAKERBOX_REDIS_SERVER unset): the fleet tests start a real "
            "one. Install it (apt-get install -y redis-server, brew install redis), or run `cargo xtask test`, "
            "which installs it"
        )
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


# Fast settings: short intervals; one replica and one call are enough to trip the fleet.
FAST: Dict[str, Any] = dict(
    sync_interval=0.02,
    refresh_interval=0.1,
    operation_timeout=0.1,
    probe_lease=1.0,
    window=5.0,
    min_replicas=1,
    min_calls=1,
)


class Events:
    """An ``on_event`` that records the events, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: List[Dict[str, Any]] = []

    def __call__(self, event: Dict[str, Any]) -> None:
        with self.lock:
            self.seen.append(event)

    def kinds(self) -> List[str]:
        with self.lock:
            return [e["kind"] for e in self.seen]

    def saw(self, kind: str, **fields: Any) -> bool:
        with self.lock:
            return any(e["kind"] == kind and all(e.get(k) == v for k, v in fields.items()) for e in self.seen)


@pytest.fixture
def replicas(redis):
    """Starts replicas of one service on the test's Redis: ``replicas("a")`` is a Fleet
    with replica id ``a``, the fast settings (overridable) and an ``Events`` recorder
    at ``fleet.events``. All closed at teardown."""
    started: List[Fleet] = []
    recorders: Dict[str, Events] = {}

    def start(replica_id: str, **settings: Any) -> Fleet:
        events = Events()
        options = dict(FAST, replica_id=replica_id, on_event=events)
        options.update(settings)
        fleet = Fleet("checkout", redis.url, **options)
        recorders[replica_id] = events
        started.append(fleet)
        return fleet

    start.events = recorders  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for fleet in started:
            fleet.close()


def eventually(cond: Callable[[], bool], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def fail() -> None:
    raise ConnectionError("down")


def trip(breaker: Breaker) -> None:
    while breaker.state == "closed":
        with pytest.raises(ConnectionError):
            breaker.call(fail)


def timed_calls(breaker: Breaker, seconds: float, midway: Callable[[], None] = lambda: None) -> List[float]:
    """Calls through ``breaker`` for ``seconds`` (the service answers), timing each;
    ``midway`` runs halfway through."""
    samples: List[float] = []
    start = time.monotonic()
    midway_done = False
    while time.monotonic() - start < seconds:
        t = time.perf_counter()
        try:
            breaker.call(lambda: None)
        except CircuitOpenError:
            pass
        samples.append(time.perf_counter() - t)
        if not midway_done and time.monotonic() - start > seconds / 2:
            midway_done = True
            midway()
    return samples


def assert_no_call_waited(samples: List[float], what: str) -> None:
    """No call waited on Redis. One that did would take the operation timeout (100 ms)
    or the whole fault, and so would every call during the fault: thousands here. A few
    isolated stalls are a thread descheduled on a loaded machine (a breaker without a
    fleet, in the same loop, sees the same), so: at most 3 calls over 20 ms, and the
    99.9th percentile under 1 ms."""
    samples = sorted(samples)
    worst, p999 = samples[-1], samples[int((len(samples) - 1) * 0.999)]
    stalls = sum(1 for d in samples if d > 0.02)
    print(
        f"{what}: {len(samples)} calls, median {samples[len(samples) // 2] * 1e6:.1f} us, "
        f"p99.9 {p999 * 1e6:.1f} us, worst {worst * 1e3:.2f} ms, {stalls} over 20 ms"
    )
    assert len(samples) > 1000, f"{what}: only {len(samples)} calls"
    assert stalls <= 3, f"{what}: {stalls} calls over 20 ms (worst {worst * 1e3:.1f} ms)"
    assert p999 < 0.001, f"{what}: p99.9 {p999 * 1e3:.2f} ms"


# ===== shared trips =====


def test_a_trip_on_one_replica_opens_the_other_within_the_bound(replicas):
    a, b = replicas("a"), replicas("b")
    delays = []
    for trial in range(5):
        name = f"payments-{trial}"
        mine = a.breaker(name, failure_threshold=2, open_wait=60.0)  # built and watched
        theirs = b.watch(Breaker(failure_threshold=2, open_wait=60.0, name=name))  # built first, then watched
        a.sync()
        b.sync()
        assert mine.state == theirs.state == "closed"

        trip(mine)
        t0 = time.monotonic()
        assert eventually(lambda: theirs.state == "open", within=1.0), b.view(name)
        delays.append(time.monotonic() - t0)
        # The bound: one pub/sub push; without it, the next refresh (100 ms here).
        assert delays[-1] < 0.5, f"trial {trial}: {delays[-1] * 1e3:.1f} ms"

        with pytest.raises(CircuitOpenError) as e:
            theirs.call(lambda: "never runs")
        assert e.value.name == name
        assert b.view(name)["state"] == "open" and b.view(name)["held"] is True
        assert eventually(lambda: replicas.events["b"].saw("opened", breaker=name))
        assert all(e["service"] == "checkout" for e in replicas.events["b"].seen)
    delays.sort()
    print(f"trip propagation over {len(delays)} trials: median {delays[len(delays) // 2] * 1e3:.2f} ms, "
          f"worst {delays[-1] * 1e3:.2f} ms")  # fmt: skip


def test_calls_never_wait_on_redis_while_trips_propagate(replicas):
    a, b = replicas("a"), replicas("b")
    mine = a.breaker("search", failure_threshold=1, open_wait=60.0)
    theirs = b.breaker("search", failure_threshold=1, open_wait=60.0)
    b.sync()
    # The other replica calls all along; midway, this one trips.
    samples = timed_calls(theirs, 0.6, midway=lambda: trip(mine))
    assert theirs.state == "open"
    assert_no_call_waited(samples, "calls while a trip propagated")


def test_a_lone_replica_cannot_trip_the_fleet_below_min_replicas(replicas):
    a, b, c = (replicas(r, min_replicas=2) for r in "abc")
    breakers = [f.breaker("ledger", failure_threshold=1, open_wait=60.0) for f in (a, b, c)]
    for f in (a, b, c):
        f.sync()
    trip(breakers[0])
    time.sleep(0.3)  # several syncs and refreshes: the vote is in, the fleet stays closed
    assert breakers[0].state == "open"
    assert breakers[1].state == breakers[2].state == "closed"
    assert c.view("ledger")["state"] == "closed"
    trip(breakers[1])
    assert eventually(lambda: breakers[2].state == "open"), "the second vote opens the fleet"


def test_two_processes_share_a_trip(redis, tmp_path):
    script = tmp_path / "replica.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from breakerbox import Fleet
            settings = dict(sync_interval=0.02, refresh_interval=0.1, operation_timeout=0.1, min_replicas=1, min_calls=1)
            with Fleet("checkout", sys.argv[1], replica_id="other-process", **settings) as fleet:
                b = fleet.breaker("inventory", failure_threshold=1, open_wait=60.0)
                fleet.sync()
                print("ready", flush=True)
                deadline = time.monotonic() + 5
                while b.state != "open" and time.monotonic() < deadline:
                    time.sleep(0.001)
                print(b.state, fleet.view("inventory")["held"], flush=True)
            """
        )
    )
    other = subprocess.Popen(
        [sys.executable, str(script), redis.url], stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(__file__)
    )
    try:
        assert other.stdout.readline().strip() == "ready"
        with Fleet("checkout", redis.url, **{**FAST, "replica_id": "this-process"}) as f:
            trip(f.breaker("inventory", failure_threshold=1, open_wait=60.0))
            assert other.stdout.readline().split() == ["open", "True"]
    finally:
        other.wait(10)
    assert other.returncode == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_fleet_started_before_a_fork_refuses_to_run_in_the_child(redis, tmp_path):
    # In a process of its own: pytest's threads have no business in a fork.
    script = tmp_path / "fork.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from breakerbox import Fleet
            settings = dict(sync_interval=0.02, operation_timeout=0.1, min_replicas=1, min_calls=1)
            parent = Fleet("checkout", sys.argv[1], replica_id="parent", **settings)
            b = parent.breaker("payments", failure_threshold=1, open_wait=60.0)
            parent.sync()
            pid = os.fork()
            if pid == 0:
                try:
                    parent.status()
                    os._exit(3)
                except RuntimeError as e:
                    assert "fork" in str(e), e
                parent.close()  # the parent's fleet, forgotten here (at exit, too)
                assert parent.closed
                b.call(lambda: None)  # the breaker works; its parent's fleet is skipped
                with Fleet("checkout", sys.argv[1], replica_id="child", **settings) as child:
                    child.watch(b)
                    child.sync()
                    assert child.status()["joined"]
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            parent.sync()
            parent.close()
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        )
    )
    done = subprocess.run([sys.executable, str(script), redis.url], cwd=os.path.dirname(__file__), timeout=30)
    assert done.returncode == 0


# ===== recovery =====


def test_recovery_one_probe_for_the_fleet_then_both_close(replicas):
    a, b = replicas("a"), replicas("b")
    breakers = [f.breaker("inventory", failure_threshold=1, open_wait=0.3, half_open_probes=1) for f in (a, b)]
    a.sync()
    b.sync()
    trip(breakers[0])
    assert eventually(lambda: all(x.state == "open" for x in breakers), within=1.0)

    # Both replicas call the (recovered) service every 2 ms until the whole fleet closes.
    probes = []
    deadline = time.monotonic() + 5
    while not all(x.state == "closed" for x in breakers) and time.monotonic() < deadline:
        for i, x in enumerate(breakers):
            permit = x._core.try_acquire()
            if isinstance(permit, breakerbox._core.Permit):
                if permit.admitted_in == "half_open":
                    probes.append(i)
                permit.success()
        time.sleep(0.002)
    assert [x.state for x in breakers] == ["closed", "closed"]
    assert len(probes) == 1, f"one probe for the fleet, got {probes}"
    leases = [f.status()["probe_leases"] for f in (a, b)]
    assert sorted(leases) == [0, 1], leases
    prober, other = (a, b) if leases[0] else (b, a)
    assert replicas.events[prober.replica_id].saw("probe_lease", breaker="inventory")
    assert eventually(lambda: replicas.events[other.replica_id].saw("closed", breaker="inventory"))
    assert other.view("inventory")["state"] == "closed"


# ===== Redis down, frozen, back =====


def test_redis_killed_calls_decided_locally_then_the_fleet_rejoins(redis, replicas):
    a, b = replicas("a"), replicas("b")
    mine = a.breaker("payments", failure_threshold=3, open_wait=60.0)
    theirs = b.breaker("payments", failure_threshold=3, open_wait=60.0)
    a.sync()
    b.sync()

    samples = timed_calls(theirs, 0.6, midway=redis.kill)
    assert_no_call_waited(samples, "calls while Redis was killed")
    assert eventually(lambda: a.status()["degraded"] and b.status()["degraded"])
    assert eventually(lambda: replicas.events["b"].saw("degraded", when_unreachable="local"))
    with pytest.raises(FleetUnavailable):
        b.sync(timeout=1.0)

    # Degraded, "local": each breaker decides on its own; a trip stays on its replica.
    trip(mine)
    time.sleep(0.3)
    assert mine.state == "open" and theirs.state == "closed"
    assert theirs.call(lambda: "served") == "served"

    # Redis back (empty): both rejoin, and the trip made meanwhile reaches the other.
    redis.start()
    assert eventually(lambda: not a.status()["degraded"] and not b.status()["degraded"], within=3.0)
    # The status flips before the event reaches the listener (another thread).
    assert eventually(lambda: replicas.events["b"].saw("rejoined"))
    assert eventually(lambda: theirs.state == "open", within=2.0), b.view("payments")


def test_frozen_redis_never_stalls_a_call(redis, replicas):
    a = replicas("a")
    b = a.breaker("search", failure_threshold=3, open_wait=60.0)
    a.sync()
    try:
        samples = timed_calls(b, 0.8, midway=redis.freeze)
        assert eventually(lambda: a.status()["degraded"])
        samples += timed_calls(b, 0.2)
        assert_no_call_waited(samples, "calls while Redis was frozen")
    finally:
        redis.thaw()
    assert eventually(lambda: not a.status()["degraded"], within=3.0)
    a.sync()


def test_when_unreachable_open_holds_breakers_open_until_redis_answers(redis, replicas):
    a = replicas("a", when_unreachable="open")
    b = a.breaker("payments", failure_threshold=3, open_wait=60.0)
    a.sync()
    assert a.status()["when_unreachable"] == "open"
    redis.kill()
    assert eventually(lambda: b.state == "open"), "fail closed while Redis is down"
    t = time.perf_counter()
    with pytest.raises(CircuitOpenError):
        b.call(lambda: "never runs")
    assert time.perf_counter() - t < 0.02
    assert eventually(lambda: replicas.events["a"].saw("degraded", when_unreachable="open"))
    redis.start()
    assert eventually(lambda: b.state == "closed", within=3.0), a.view("payments")


# ===== status, view, events, close =====


def test_status_and_view(replicas):
    a = replicas("a")
    fresh = a.status()
    assert fresh["joined"] is False and fresh["sync_lag"] is None and fresh["breakers"] == 0
    assert a.view("payments") is None
    b = a.breaker("payments", failure_threshold=2, open_wait=60.0)
    a.sync()

    s = a.status()
    assert set(s) == {
        "service", "replica_id", "closed", "when_unreachable", "joined", "degraded", "sync_lag", "breakers",
        "ops", "errors", "applied", "stale_ignored", "data_losses", "probe_leases",
    }  # fmt: skip
    assert s["service"] == "checkout" and s["replica_id"] == "a" == a.replica_id
    assert s["closed"] is False and s["joined"] is True and s["degraded"] is False
    assert s["when_unreachable"] == "local"
    assert isinstance(s["sync_lag"], float) and 0 <= s["sync_lag"] < 5
    assert s["breakers"] == 1 and s["ops"] >= 1 and s["errors"] == 0 and s["applied"] == 0
    assert eventually(lambda: replicas.events["a"].kinds()[:1] == ["joined"])

    v = a.view("payments")
    assert v == {"name": "payments", "state": "closed", "epoch": v["epoch"], "held": False, "probing": False}
    assert isinstance(v["epoch"], int)
    trip(b)
    assert eventually(lambda: a.view("payments")["state"] == "open")
    assert a.view("payments")["epoch"] > v["epoch"]
    assert a.watched() == ["payments"]

    c = a.config
    assert c["min_replicas"] == 1 and c["min_calls"] == 1 and c["sync_interval"] == pytest.approx(0.02)
    assert c["key_prefix"] == "breakerbox" and c["key_ttl"] == 86400.0 and c["when_unreachable"] == "local"
    assert "running" in repr(a) and "checkout" in repr(a)


def test_close_and_context_manager(redis, replicas):
    a = replicas("a")
    events = Events()
    with Fleet("checkout", redis.url, **{**FAST, "replica_id": "b", "on_event": events}) as b:
        mine = a.breaker("payments", failure_threshold=1, open_wait=60.0)
        theirs = b.breaker("payments", failure_threshold=1, open_wait=60.0)
        a.sync()
        b.sync()
        assert not b.closed
    assert b.closed
    assert b.status()["closed"] is True and b.status()["joined"] is True  # as of the close
    assert b.view("payments") is None and b.watched() == []
    with pytest.raises(RuntimeError, match="closed"):
        b.watch(Breaker(name="other"))
    with pytest.raises(RuntimeError, match="closed"):
        b.sync()
    b.close()  # idempotent
    assert "closed" in repr(b)

    # Closed: its breaker decides locally, and hears nothing of the fleet.
    seen = len(events.seen)
    trip(mine)
    time.sleep(0.3)
    assert theirs.state == "closed"
    assert theirs.call(lambda: "served") == "served"
    assert len(events.seen) == seen, "no event after close()"
    # The breaker can join another fleet.
    with Fleet("checkout", redis.url, **{**FAST, "replica_id": "c"}) as c:
        c.watch(theirs)
        assert eventually(lambda: theirs.state == "open")


def test_a_raising_on_event_does_not_break_the_fleet(redis, replicas, monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    calls = []

    def on_event(event: Dict[str, Any]) -> None:
        calls.append(event["kind"])
        raise RuntimeError("a bug in the callback")

    a = replicas("a")
    b = replicas("b", on_event=on_event)
    mine = a.breaker("payments", failure_threshold=1, open_wait=60.0)
    theirs = b.breaker("payments", failure_threshold=1, open_wait=60.0)
    a.sync()
    b.sync()
    trip(mine)
    assert eventually(lambda: theirs.state == "open")
    assert eventually(lambda: "opened" in calls)
    assert calls[0] == "joined", "every event is delivered, the one after a raise too"
    assert eventually(lambda: len(unraisable) >= 2)
    assert isinstance(unraisable[0].exc_value, RuntimeError)
    assert unraisable[0].object is on_event
    assert b.status()["degraded"] is False


def test_watch_rules(replicas):
    a = replicas("a")
    b = a.breaker("payments")
    assert a.watch(b) is b  # the same breaker again: nothing
    with pytest.raises(ValueError, match="payments"):
        a.watch(Breaker(name="payments"))
    with pytest.raises(TypeError, match="Breaker"):
        a.watch(object())
    with pytest.raises(TypeError, match="name"):
        a.breaker(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="failure_threshold"):
        a.breaker("x", failure_threshold=0)
    assert a.watched() == ["payments"]


def test_watch_family_shares_each_key(replicas):
    a, b = replicas("a"), replicas("b")
    mine = a.watch_family(BreakerFamily(failure_threshold=1, open_wait=60.0, name="hosts"))
    theirs = b.watch_family(BreakerFamily(failure_threshold=1, open_wait=60.0, name="hosts"))
    assert theirs.call("x.example", lambda: "ok") == "ok"  # its breaker exists on both
    assert theirs.call("y.example", lambda: "ok") == "ok"
    mine.call("x.example", lambda: "ok")
    a.sync()
    b.sync()
    assert sorted(b.watched()) == ["hosts/x.example", "hosts/y.example"]
    trip(mine.get("x.example"))
    assert eventually(lambda: theirs.get("x.example").state == "open", within=1.0), b.view("hosts/x.example")
    assert theirs.get("y.example").state == "closed", "one key's trip never opens another"
    assert b.view("hosts/x.example")["held"] is True


# ===== settings =====


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"service": ""}, "service"),
        ({"service": "a:b"}, "service"),
        ({"min_replicas": 0}, "min_replicas"),
        ({"min_calls": -1}, "min_calls"),
        ({"sync_interval": 0}, "sync_interval"),
        ({"refresh_interval": -1.0}, "refresh_interval"),
        ({"operation_timeout": float("nan")}, "operation_timeout"),
        ({"probe_lease": 0.0001}, "probe_lease"),
        ({"window": 0.001}, "window"),
        ({"key_ttl": 1.0}, "key_ttl"),
        ({"replica_id": ""}, "replica_id"),
        ({"replica_id": "a:b"}, "replica_id"),
        ({"key_prefix": "{x}"}, "key_prefix"),
        ({"when_unreachable": "sometimes"}, "when_unreachable"),
        ({"url": "not a url"}, "url"),
        ({"cluster": []}, "cluster"),
        ({"sentinel": ("mymaster", [])}, "sentinel"),
        ({"sentinel": ("", ["redis://127.0.0.1:26379"])}, "sentinel"),
        ({"url": "redis://127.0.0.1:1", "cluster": ["redis://127.0.0.1:7000"]}, "url, sentinel or cluster"),
    ],
)
def test_invalid_settings_raise_value_error_naming_the_field(settings, field):
    settings = dict(settings)
    service = settings.pop("service", "checkout")
    url = settings.pop("url", breakerbox.fleet.DEFAULT_URL)
    with pytest.raises(ValueError, match=field.replace("{", r"\{")):
        Fleet(service, url, **settings)


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"min_replicas": True}, "min_replicas"),
        ({"min_replicas": 1.5}, "min_replicas"),
        ({"min_calls": "10"}, "min_calls"),
        ({"sync_interval": "fast"}, "sync_interval"),
        ({"replica_id": 7}, "replica_id"),
        ({"cluster": "redis://127.0.0.1:7000"}, "cluster"),
        ({"sentinel": "mymaster"}, "sentinel"),
        ({"on_event": "print"}, "on_event"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(settings, field):
    with pytest.raises(TypeError, match=field):
        Fleet("checkout", **settings)


def test_settings_accept_timedelta_and_report_defaults():
    import datetime

    # No Redis needed: the fleet connects in the background (degraded meanwhile).
    with Fleet("checkout", "redis://127.0.0.1:1", sync_interval=datetime.timedelta(milliseconds=50)) as f:
        c = f.config
        assert c["sync_interval"] == pytest.approx(0.05)
        assert (c["min_replicas"], c["min_calls"], c["window"], c["probe_lease"]) == (2, 10, 10.0, 10.0)
        assert (c["refresh_interval"], c["operation_timeout"], c["key_prefix"]) == (1.0, 0.1, "breakerbox")
        assert f.replica_id and ":" not in f.replica_id
        b = f.breaker("payments")
        with pytest.raises(FleetUnavailable, match="checkout"):
            f.sync(timeout=2.0)
        assert f.status()["degraded"] is True
        assert b.call(lambda: "decided locally") == "decided locally"
