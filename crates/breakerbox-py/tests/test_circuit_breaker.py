"""The original design, CircuitBreaker(http_client, error_threshold, time_window), against
a real HTTP server on 127.0.0.1 with `requests` as the client."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from breakerbox import CircuitBreaker, CircuitBreakerError, CircuitOpenError, InvalidMethod

WINDOW = 0.2  # seconds open; the only sleeps are WINDOW and a little more


def wait_out_window() -> None:
    time.sleep(WINDOW + 0.05)


def trip(breaker: CircuitBreaker, server, n: int) -> None:
    server.status = 500
    for _ in range(n):
        assert breaker.do_request("GET", server.url).status_code == 500
    assert breaker.isOpen()


def test_the_original_story(server):
    breaker = CircuitBreaker(requests, 3, WINDOW)
    assert breaker.http_client is requests
    assert (breaker.error_threshold, breaker.time_window) == (3, WINDOW)
    assert breaker.isClosed() and not breaker.isOpen() and not breaker.isHalfOpen()

    # Closed: requests flow.
    for _ in range(2):
        assert breaker.do_request("GET", server.url).status_code == 200
    assert server.hits == 2

    # The server fails: by default do_request returns the failed response; the third
    # consecutive failure opens the circuit.
    server.status = 503
    for n in range(3):
        assert breaker.isClosed(), n
        assert breaker.do_request("GET", server.url).status_code == 503
    assert breaker.isOpen() and not breaker.isClosed()
    assert server.hits == 5

    # Open: fail fast, without reaching the server.
    for _ in range(5):
        with pytest.raises(CircuitOpenError) as info:
            breaker.do_request("GET", server.url)
        assert info.value.state == "open" and info.value.reason == "open"
        assert 0 < info.value.retry_after <= WINDOW + 0.05
    assert "is open" in str(info.value) and "retry after" in str(info.value) and "not sent" in str(info.value)
    assert server.hits == 5

    # The window passes: half-open; one trial request succeeds and closes the circuit.
    server.status = 200
    wait_out_window()
    assert breaker.isHalfOpen() and not breaker.isOpen()
    assert breaker.do_request("get", server.url).status_code == 200
    assert breaker.isClosed()
    assert server.hits == 6
    assert breaker.do_request("GET", server.url).status_code == 200

    m = breaker.metrics()
    assert (m["successes"], m["failures"], m["rejected"], m["opens"]) == (4, 3, 5, 1)
    assert m["state"] == "closed"


def test_a_failed_trial_request_opens_again(server):
    breaker = CircuitBreaker(requests, 2, WINDOW)
    trip(breaker, server, 2)
    wait_out_window()
    assert breaker.isHalfOpen()
    assert breaker.do_request("GET", server.url).status_code == 500  # the trial, failed
    assert breaker.isOpen()
    with pytest.raises(CircuitOpenError):
        breaker.do_request("GET", server.url)
    assert server.hits == 3


def test_half_open_admits_one_trial_request_at_a_time(server):
    breaker = CircuitBreaker(requests, 1, WINDOW)
    trip(breaker, server, 1)
    wait_out_window()
    server.status = 200
    server.gate = threading.Event()
    server.arrived.clear()
    answers = []
    probe = threading.Thread(target=lambda: answers.append(breaker.do_request("GET", server.url)))
    probe.start()
    assert server.arrived.wait(5)  # the trial request is at the server, held there

    # The original let every request through while half-open; here they fail fast.
    for _ in range(5):
        with pytest.raises(CircuitOpenError) as info:
            breaker.do_request("GET", server.url)
        assert info.value.reason == "half_open_full"
        assert info.value.retry_after is None
    assert "trial call is in flight" in str(info.value)
    assert server.hits == 2
    assert breaker.isHalfOpen()

    server.gate.set()
    probe.join(5)
    assert answers[0].status_code == 200
    assert breaker.isClosed()


def test_clear_state_closes_by_hand(server):
    breaker = CircuitBreaker(requests, 1, 60)
    trip(breaker, server, 1)
    breaker.clearState()
    assert breaker.isClosed()
    server.status = 200
    assert breaker.do_request("GET", server.url).status_code == 200
    breaker.clear_state()  # the snake_case alias
    assert breaker.is_closed()


# ===== the replaceable attributes, assigned as in the original's example =====


def test_methods_replaced_by_assignment(server):
    breaker = CircuitBreaker(requests, 3, WINDOW)
    breaker._methods = {
        "get": lambda url: breaker.http_client.get(url),
        "post": lambda url: breaker.http_client.post(url),
    }
    assert breaker.do_request("POST", server.url).status_code == 200
    assert breaker.do_request("Get", server.url).status_code == 200
    assert server.methods == ["POST", "GET"]
    with pytest.raises(InvalidMethod) as info:
        breaker.do_request("PUT", server.url)
    assert info.value.valid == ["get", "post"]
    assert "GET, POST" in str(info.value)

    # Upper-case keys are found too, and a method can be added.
    breaker._methods["DELETE"] = lambda url: requests.delete(url)
    assert breaker.do_request("delete", server.url).status_code == 200
    assert server.methods[-1] == "DELETE"


def test_default_methods_and_invalid_method(server):
    breaker = CircuitBreaker(requests.Session(), 1, WINDOW)
    assert sorted(breaker._methods) == ["delete", "get", "head", "options", "patch", "post", "put"]
    for method in ["get", "POST", "Put", "pAtCh", "DELETE", "head", "OPTIONS"]:
        assert breaker.do_request(method, server.url).status_code == 200
    assert server.methods == ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    with pytest.raises(InvalidMethod) as info:
        breaker.do_request("FETCH", server.url)
    message = str(info.value)
    assert "'FETCH'" in message and "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT" in message
    assert "breaker._methods['fetch'] = lambda url: ..." in message
    assert info.value.method == "FETCH"
    assert isinstance(info.value, ValueError) and isinstance(info.value, CircuitBreakerError)
    with pytest.raises(TypeError, match="method must be a str"):
        breaker.do_request(None, server.url)
    # An invalid method is the caller's mistake: nothing is counted, nothing sent.
    assert breaker.metrics()["failures"] == 0 and server.hits == 7


def test_a_client_with_no_methods():
    breaker = CircuitBreaker(object(), 1, WINDOW)
    with pytest.raises(InvalidMethod, match="has no methods"):
        breaker.do_request("GET", "http://127.0.0.1:9/")


def test_keyword_arguments_go_to_the_method(server):
    breaker = CircuitBreaker(requests, 1, WINDOW)
    assert breaker.do_request("POST", server.url, json={"sku": 42}, timeout=5).status_code == 200


def test_status_code_replaced_by_assignment(server):
    class Response:
        """A client whose responses have a status_code() method, as in the example."""

        def __init__(self, r):
            self._r = r

        def status_code(self):
            return self._r.status_code

    class Client:
        def get(self, url):
            return Response(requests.get(url))

    breaker = CircuitBreaker(Client(), 2, WINDOW)
    breaker._status_code = lambda response: response.status_code()
    assert breaker.do_request("GET", server.url).status_code() == 200
    server.status = 500
    breaker.do_request("GET", server.url)
    breaker.do_request("GET", server.url)
    assert breaker.isOpen()

    # Another classification: only 5xx are failures.
    breaker = CircuitBreaker(requests, 1, WINDOW)
    breaker._status_code = lambda response: 200 if response.status_code < 500 else response.status_code
    server.status = 404
    assert breaker.do_request("GET", server.url).status_code == 404
    assert breaker.isClosed()


def test_status_code_that_raises_counts_nothing(server):
    breaker = CircuitBreaker(requests, 1, WINDOW)
    breaker._status_code = lambda response: response.no_such_attribute
    with pytest.raises(AttributeError):
        breaker.do_request("GET", server.url)
    assert breaker.isClosed()
    m = breaker.metrics()
    assert (m["successes"], m["failures"], m["ignored"]) == (0, 0, 1)


def test_empty_response_returning_none(server):
    breaker = CircuitBreaker(requests, 2, WINDOW)
    breaker._empty_response = lambda: None
    server.status = 500
    assert breaker.do_request("GET", server.url) is None  # failure 1
    assert breaker.do_request("GET", server.url) is None  # failure 2: opens
    assert breaker.isOpen()
    assert breaker.do_request("GET", server.url) is None  # open: no exception, not sent
    assert server.hits == 2


def test_default_empty_response():
    breaker = CircuitBreaker(requests, 1, WINDOW)
    assert breaker._empty_response() is None  # called by hand, outside do_request


def test_empty_response_retrying_until_success(server):
    breaker = CircuitBreaker(requests, 5, WINDOW)
    breaker._empty_response = lambda: breaker.do_request(breaker.prev_method, breaker.prev_url)
    server.status_for = lambda hit: 500 if hit <= 2 else 200
    assert breaker.do_request("GET", server.url).status_code == 200
    assert server.hits == 3
    assert breaker.isClosed()
    assert (breaker.prev_method, breaker.prev_url) == ("GET", server.url)


def test_empty_response_retrying_ends_on_the_open_path(server):
    # The retries trip the circuit; the retry that finds it open raises CircuitOpenError
    # (the open path, not _empty_response again).
    breaker = CircuitBreaker(requests, 3, 60)
    breaker._empty_response = lambda: breaker.do_request(breaker.prev_method, breaker.prev_url)
    server.status = 500
    with pytest.raises(CircuitOpenError):
        breaker.do_request("GET", server.url)
    assert server.hits == 3
    assert breaker.isOpen()

    # Already open: _empty_response retries once, and that retry gets the open path.
    calls = []

    def retry():
        calls.append(1)
        return breaker.do_request(breaker.prev_method, breaker.prev_url)

    breaker._empty_response = retry
    with pytest.raises(CircuitOpenError):
        breaker.do_request("GET", server.url)
    assert calls == [1]
    assert server.hits == 3


def test_empty_response_retrying_is_bounded(server):
    # A threshold the retries never reach: at max_retry_depth nested retries, the failed
    # response is returned as it is.
    breaker = CircuitBreaker(requests, 1000, WINDOW)
    breaker._empty_response = lambda: breaker.do_request(breaker.prev_method, breaker.prev_url)
    server.status = 500
    assert breaker.do_request("GET", server.url).status_code == 500
    assert server.hits == 1 + CircuitBreaker.max_retry_depth
    breaker.max_retry_depth = 0
    assert breaker.do_request("GET", server.url).status_code == 500
    assert server.hits == 2 + CircuitBreaker.max_retry_depth


def test_empty_response_may_call_back_from_another_thread(server):
    # No lock is held while _empty_response runs: another thread can use the breaker
    # while this one waits for it.
    breaker = CircuitBreaker(requests, 1, 60)
    server.status = 500
    breaker.do_request("GET", server.url)
    assert breaker.isOpen()

    def from_another_thread():
        out = []

        def run():
            breaker.clearState()
            server.status = 200
            out.append(breaker.do_request("GET", server.url))

        t = threading.Thread(target=run)
        t.start()
        t.join(5)
        assert not t.is_alive()
        return out[0]

    breaker._empty_response = from_another_thread
    assert breaker.do_request("GET", server.url).status_code == 200
    assert breaker.isClosed()


def test_client_errors_count_as_failures_and_propagate():
    breaker = CircuitBreaker(requests, 2, 60)
    dead = "http://127.0.0.1:9/"  # the discard port: nothing listens
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            breaker.do_request("GET", dead)
    assert breaker.isOpen()
    with pytest.raises(CircuitOpenError):
        breaker.do_request("GET", dead)


def test_prev_method_and_url_are_per_thread(server):
    breaker = CircuitBreaker(requests, 5, WINDOW)
    assert breaker.prev_method is None and breaker.prev_url is None
    breaker.do_request("POST", server.url)
    seen = []

    def other():
        seen.append((breaker.prev_method, breaker.prev_url))
        breaker.do_request("PUT", server.url + "?other")
        seen.append((breaker.prev_method, breaker.prev_url))

    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert seen == [(None, None), ("PUT", server.url + "?other")]
    assert (breaker.prev_method, breaker.prev_url) == ("POST", server.url)


def test_eight_threads_exact_counts(server):
    # One breaker, 8 threads, a server that fails one request in three: the breaker
    # opens, half-opens and closes many times; every call is accounted for exactly.
    breaker = CircuitBreaker(requests, 2, 0.02)
    server.status_for = lambda hit: 500 if hit % 3 == 0 else 200
    threads, per_thread = 8, 40
    counts = [[0, 0, 0] for _ in range(threads)]  # successes, failures, rejections
    errors = []
    start = threading.Barrier(threads)

    def work(i):
        start.wait()
        try:
            for _ in range(per_thread):
                try:
                    r = breaker.do_request("GET", server.url)
                except CircuitOpenError:
                    counts[i][2] += 1
                    continue
                counts[i][0 if r.status_code == 200 else 1] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors
    successes, failures, rejections = (sum(c[k] for c in counts) for k in range(3))
    assert successes + failures + rejections == threads * per_thread
    assert successes + failures == server.hits
    m = breaker.metrics()
    assert (m["successes"], m["failures"], m["rejected"]) == (successes, failures, rejections)
    assert m["probes_in_flight"] == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"error_threshold must be from 1 to 4294967295 .*got 0"):
        CircuitBreaker(requests, 0, 1)
    with pytest.raises(ValueError, match=r"error_threshold.*got -3"):
        CircuitBreaker(requests, -3, 1)
    with pytest.raises(TypeError, match=r"error_threshold must be an int.*got '3' of type str"):
        CircuitBreaker(requests, "3", 1)
    with pytest.raises(TypeError, match="error_threshold must be an int"):
        CircuitBreaker(requests, True, 1)
    with pytest.raises(ValueError, match=r"error_threshold.*got 4294967296"):
        CircuitBreaker(requests, 2**32, 1)
    with pytest.raises(ValueError, match=r"time_window must be a finite number of seconds greater than 0.*got -1"):
        CircuitBreaker(requests, 1, -1)
    with pytest.raises(ValueError, match="time_window"):
        CircuitBreaker(requests, 1, 0)
    for bad in [float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="time_window"):
            CircuitBreaker(requests, 1, bad)
    with pytest.raises(TypeError, match=r"time_window must be a number of seconds.*got '1s'"):
        CircuitBreaker(requests, 1, "1s")
    with pytest.raises(TypeError, match="name must be a str"):
        CircuitBreaker(requests, 1, 1, name=5)
    with pytest.raises(AttributeError):
        CircuitBreaker(requests, 1, 1).error_threshold = 2
