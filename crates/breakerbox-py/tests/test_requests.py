"""breakerbox.requests: a transport adapter with one breaker per host, against real servers."""

from __future__ import annotations

import threading
import time

import pytest
import requests

import breakerbox
from breakerbox import BreakerFamily
from breakerbox.requests import BreakerAdapter, CircuitOpenError, host_key, session


def key(server) -> str:
    return host_key(server.url)


def test_host_key():
    assert host_key("http://API.example/x") == "http://api.example:80"
    assert host_key("HTTPS://api.example/x?y") == "https://api.example:443"
    assert host_key("https://api.example:8443/") == "https://api.example:8443"
    assert host_key("http://[::1]:8080/") == "http://[::1]:8080"
    assert host_key("http://127.0.0.1:5000/stock") == "http://127.0.0.1:5000"
    assert host_key("http://127.0.0.1:443/") != host_key("https://127.0.0.1:443/")


def test_opens_per_host_and_fails_fast_without_sending(server, other_server):
    http = session(failure_threshold=3, open_wait=60.0)
    server.status = 503
    for _ in range(3):
        assert http.get(server.url, timeout=5).status_code == 503  # the response, as it came
    with pytest.raises(CircuitOpenError) as info:
        http.get(server.url, timeout=5)
    assert server.hits == 3  # not sent
    e = info.value
    assert isinstance(e, breakerbox.CircuitOpenError) and isinstance(e, requests.ConnectionError)
    assert e.name == f"requests/{key(server)}" and e.reason == "open" and 59 < e.retry_after <= 60.1
    assert e.request.url == server.url
    assert "the request was not sent" in str(e)
    # The other host is unaffected.
    assert http.get(other_server.url, timeout=5).status_code == 200
    assert http.breakers.open_keys() == [key(server)]
    assert http.breakers.states() == {key(server): "open", key(other_server): "closed"}


def test_half_open_one_probe_then_closed(server):
    http = session(failure_threshold=1, open_wait=0.2)
    server.status = 500
    http.get(server.url, timeout=5)
    with pytest.raises(CircuitOpenError):
        http.get(server.url, timeout=5)
    time.sleep(0.25)
    server.status = 200
    server.gate = threading.Event()  # hold the probe at the server
    server.arrived.clear()
    results = []
    probe = threading.Thread(target=lambda: results.append(http.get(server.url, timeout=10).status_code))
    probe.start()
    assert server.arrived.wait(5)
    with pytest.raises(CircuitOpenError) as info:  # only one trial request at a time
        http.get(server.url, timeout=5)
    assert info.value.reason == "half_open_full"
    server.gate.set()
    probe.join(10)
    assert results == [200]
    assert http.breakers.states() == {key(server): "closed"}
    assert http.get(server.url, timeout=5).status_code == 200
    assert server.hits == 3


def test_a_failed_probe_opens_again(server):
    http = session(failure_threshold=1, open_wait=0.1)
    server.status = 503
    http.get(server.url, timeout=5)
    time.sleep(0.15)
    http.get(server.url, timeout=5)  # the probe fails
    with pytest.raises(CircuitOpenError):
        http.get(server.url, timeout=5)
    assert server.hits == 2


def test_default_classifier_statuses(server):
    http = session(failure_threshold=1, open_wait=60.0)
    for status in (200, 201, 204, 301, 400, 404, 409):
        server.status = status
        http.get(server.url, timeout=5, allow_redirects=False)
    assert http.breakers.open_keys() == []
    server.status = 429
    http.get(server.url, timeout=5)
    assert http.breakers.open_keys() == [key(server)]


def test_custom_classifier(server):
    outcomes = {404: "failure", 503: "ignore", 500: None}
    adapter = BreakerAdapter(
        BreakerFamily(failure_threshold=2, open_wait=60.0), classify_status=lambda s: outcomes.get(s, "success")
    )
    s = requests.Session()
    s.mount("http://", adapter)
    for status in (503, 503, 500, 500):
        server.status = status
        s.get(server.url, timeout=5)
    m = adapter.family.get(key(server)).metrics()
    assert (m["state"], m["ignored"], m["failures"]) == ("closed", 4, 0)
    server.status = 404
    s.get(server.url, timeout=5)
    s.get(server.url, timeout=5)
    assert adapter.family.open_keys() == [key(server)]


def test_a_raising_classifier_counts_nothing(server):
    def broken(status):
        raise LookupError("bug")

    s = requests.Session()
    adapter = BreakerAdapter(BreakerFamily(failure_threshold=1), classify_status=broken)
    s.mount("http://", adapter)
    with pytest.raises(LookupError):
        s.get(server.url, timeout=5)
    m = adapter.family.get(key(server)).metrics()
    assert (m["ignored"], m["failures"], m["state"]) == (1, 0, "closed")


def test_connection_errors_and_timeouts_are_failures(server):
    http = session(failure_threshold=2, open_wait=60.0)
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    dead = f"http://127.0.0.1:{port}/x"
    with pytest.raises(requests.ConnectionError):
        http.get(dead, timeout=5)
    server.gate = threading.Event()  # the server never answers in time
    with pytest.raises(requests.Timeout):
        http.get(server.url, timeout=0.2)
    server.gate.set()
    assert http.breakers.get(f"http://127.0.0.1:{port}").metrics()["failures"] == 1
    with pytest.raises(requests.ConnectionError):
        http.get(dead, timeout=5)
    with pytest.raises(CircuitOpenError):  # raised before any connection is tried
        http.get(dead, timeout=5)
    assert http.breakers.get(key(server)).metrics()["failures"] == 1


def test_failure_exceptions_choose_what_counts():
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/x"
    sock.close()
    s = requests.Session()
    adapter = BreakerAdapter(BreakerFamily(failure_threshold=1), failure_exceptions=(requests.Timeout,))
    s.mount("http://", adapter)
    for _ in range(3):
        with pytest.raises(requests.ConnectionError):  # not a failure here: ignored
            s.get(dead, timeout=5)
    m = adapter.family.get(host_key(dead)).metrics()
    assert (m["state"], m["ignored"], m["failures"]) == ("closed", 3, 0)


def test_retry_after_keeps_the_breaker_open(server):
    http = session(failure_threshold=1, open_wait=0.05)
    server.status = 503
    server.headers = {"Retry-After": "120"}
    http.get(server.url, timeout=5)
    with pytest.raises(CircuitOpenError) as info:
        http.get(server.url, timeout=5)
    assert 119 < info.value.retry_after <= 120.1


def test_shared_family_and_errors(server):
    family = BreakerFamily(failure_threshold=1, name="shop")
    a, b = session(family), session(family)
    server.status = 500
    a.get(server.url, timeout=5)
    with pytest.raises(CircuitOpenError) as info:  # one family: both sessions see the host open
        b.get(server.url, timeout=5)
    assert info.value.name == f"shop/{key(server)}"
    with pytest.raises(TypeError, match="give a family or breaker options"):
        session(family, failure_threshold=3)
    with pytest.raises(TypeError, match="family must be a breakerbox.BreakerFamily"):
        BreakerAdapter("nope")


def test_threads_exact_counts(server, other_server):
    http = session(failure_threshold=2, open_wait=0.01)
    server.status_for = lambda n: 503 if n % 3 == 0 else 200
    offered = {"ok": 0, "failed": 0, "rejected": 0}
    lock = threading.Lock()

    def work():
        for i in range(40):
            url = server.url if i % 2 else other_server.url
            try:
                status = http.get(url, timeout=10).status_code
                outcome = "failed" if status >= 500 else "ok"
            except CircuitOpenError:
                outcome = "rejected"
            with lock:
                offered[outcome] += 1

    pool = [threading.Thread(target=work) for _ in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    ms = [http.breakers.get(k).metrics() for k in (key(server), key(other_server))]
    assert sum(offered.values()) == 240
    assert sum(m["successes"] for m in ms) == offered["ok"]
    assert sum(m["failures"] for m in ms) == offered["failed"]
    assert sum(m["rejected"] for m in ms) == offered["rejected"]
    assert server.hits + other_server.hits == offered["ok"] + offered["failed"]
