"""breakerbox.httpx: sync and async transports with one breaker per host, against real servers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest

import breakerbox
from breakerbox import BreakerFamily
from breakerbox.httpx import AsyncBreakerTransport, BreakerTransport, CircuitOpenError, host_key


def key(server) -> str:
    return host_key(server.url)


def dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    return f"http://127.0.0.1:{port}/x"


def test_sync_opens_per_host_and_fails_fast_without_sending(server, other_server):
    transport = BreakerTransport(failure_threshold=2, open_wait=60.0)
    with httpx.Client(transport=transport, timeout=5) as client:
        server.status = 502
        for _ in range(2):
            assert client.get(server.url).status_code == 502
        with pytest.raises(CircuitOpenError) as info:
            client.get(server.url)
        assert server.hits == 2  # not sent
        e = info.value
        assert isinstance(e, breakerbox.CircuitOpenError) and isinstance(e, httpx.TransportError)
        assert e.name == f"httpx/{key(server)}" and e.reason == "open"
        assert str(e.request.url) == server.url
        assert client.get(other_server.url).status_code == 200  # the other host is unaffected
    assert transport.family.states() == {key(server): "open", key(other_server): "closed"}


def test_sync_half_open_one_probe_then_closed(server):
    family = BreakerFamily(failure_threshold=1, open_wait=0.2)
    with httpx.Client(transport=BreakerTransport(family=family), timeout=10) as client:
        server.status = 500
        client.get(server.url)
        with pytest.raises(CircuitOpenError):
            client.get(server.url)
        time.sleep(0.25)
        server.status = 200
        server.gate = threading.Event()
        server.arrived.clear()
        results = []
        probe = threading.Thread(target=lambda: results.append(client.get(server.url).status_code))
        probe.start()
        assert server.arrived.wait(5)
        with pytest.raises(CircuitOpenError) as info:
            client.get(server.url)
        assert info.value.reason == "half_open_full"
        server.gate.set()
        probe.join(10)
        assert results == [200]
        assert family.states() == {key(server): "closed"}
        assert server.hits == 2


def test_sync_transport_errors_and_classifier(server):
    transport = BreakerTransport(
        failure_threshold=1, open_wait=60.0, classify_status=lambda s: "ignore" if s == 503 else s >= 500
    )
    with httpx.Client(transport=transport, timeout=5) as client:
        server.status = 503
        client.get(server.url)
        assert transport.family.get(key(server)).metrics()["ignored"] == 1
        server.status = 404
        client.get(server.url)
        assert transport.family.open_keys() == []
        dead = dead_url()
        with pytest.raises(httpx.ConnectError):
            client.get(dead)
        with pytest.raises(CircuitOpenError):
            client.get(dead)
        assert transport.family.open_keys() == [host_key(dead)]


def test_sync_timeout_is_a_failure(server):
    transport = BreakerTransport(failure_threshold=1, open_wait=60.0)
    with httpx.Client(transport=transport) as client:
        server.gate = threading.Event()
        with pytest.raises(httpx.ReadTimeout):
            client.get(server.url, timeout=0.2)
        server.gate.set()
    assert transport.family.open_keys() == [key(server)]


def test_retry_after_and_mock_transport():
    def answer(request):
        return httpx.Response(429, headers={"Retry-After": "90"})

    transport = BreakerTransport(httpx.MockTransport(answer), failure_threshold=1, open_wait=0.05)
    with httpx.Client(transport=transport) as client:
        assert client.get("https://api.example/x").status_code == 429
        with pytest.raises(CircuitOpenError) as info:
            client.get("https://api.example:443/y")  # the same host and port
        assert 89 < info.value.retry_after <= 90.1
        assert transport.family.open_keys() == ["https://api.example:443"]


def test_async_opens_per_host_then_probes_and_closes(server, other_server):
    transport = AsyncBreakerTransport(failure_threshold=2, open_wait=0.2, name="api")

    async def main():
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            server.status = 503
            for _ in range(2):
                assert (await client.get(server.url)).status_code == 503
            with pytest.raises(CircuitOpenError) as info:
                await client.get(server.url)
            assert info.value.name == f"api/{key(server)}"
            assert server.hits == 2
            assert (await client.get(other_server.url)).status_code == 200
            assert transport.family.open_keys() == [key(server)]

            await asyncio.sleep(0.25)
            server.status = 200
            responses = await asyncio.gather(*(client.get(server.url) for _ in range(3)), return_exceptions=True)
            # One probe went through; the others were refused while it was in flight.
            assert sum(isinstance(r, httpx.Response) and r.status_code == 200 for r in responses) >= 1
            assert all(isinstance(r, (httpx.Response, CircuitOpenError)) for r in responses)
            assert transport.family.states()[key(server)] == "closed"
            assert (await client.get(server.url)).status_code == 200

    asyncio.run(main())


def test_async_cancelled_request_cancels_its_permit(server):
    transport = AsyncBreakerTransport(failure_threshold=1, open_wait=0.05)

    async def main():
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            server.status = 500
            await client.get(server.url)
            await asyncio.sleep(0.07)
            # Half-open: the probe hangs at the server, and its task is cancelled.
            server.status = 200
            server.gate = threading.Event()
            server.arrived.clear()
            task = asyncio.ensure_future(client.get(server.url))
            while not server.arrived.is_set():
                await asyncio.sleep(0.005)
            with pytest.raises(CircuitOpenError) as info:  # the one probe slot is taken
                await client.get(server.url)
            assert info.value.reason == "half_open_full"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            m = transport.family.get(key(server)).metrics()
            assert m["probes_in_flight"] == 0  # released at once, not left to the GC
            server.gate.set()
            server.gate = None
            # The slot is free again: the next request is the probe, and closes it.
            assert (await client.get(server.url)).status_code == 200
            assert transport.family.states() == {key(server): "closed"}

    asyncio.run(main())


def test_async_connect_error_is_a_failure():
    transport = AsyncBreakerTransport(failure_threshold=1, open_wait=60.0)
    dead = dead_url()

    async def main():
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(dead)
            with pytest.raises(CircuitOpenError):
                await client.get(dead)

    asyncio.run(main())
    assert transport.family.get(host_key(dead)).metrics()["failures"] == 1


def test_async_many_tasks_exact_counts(server, other_server):
    transport = AsyncBreakerTransport(failure_threshold=2, open_wait=0.01)
    server.status_for = lambda n: 503 if n % 3 == 0 else 200
    offered = {"ok": 0, "failed": 0, "rejected": 0}

    async def one(client, url):
        try:
            r = await client.get(url)
            offered["failed" if r.status_code >= 500 else "ok"] += 1
        except CircuitOpenError:
            offered["rejected"] += 1

    async def main():
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            # 4 at once: the test server's listen backlog is 5.
            for _ in range(30):
                await asyncio.gather(*(one(client, u) for u in [server.url, other_server.url] * 2))

    asyncio.run(main())
    ms = [transport.family.get(k).metrics() for k in (key(server), key(other_server))]
    assert sum(offered.values()) == 120
    assert (sum(m["successes"] for m in ms), sum(m["failures"] for m in ms), sum(m["rejected"] for m in ms)) == (
        offered["ok"],
        offered["failed"],
        offered["rejected"],
    )
    assert server.hits + other_server.hits == offered["ok"] + offered["failed"]


def test_family_and_options_are_exclusive():
    with pytest.raises(TypeError, match="give a family or breaker options"):
        BreakerTransport(family=BreakerFamily(), failure_threshold=2)
