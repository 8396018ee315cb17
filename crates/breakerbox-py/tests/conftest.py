"""A real HTTP server on 127.0.0.1 whose status the test controls, counting its hits."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Iterator, List, Optional

import pytest


class Server:
    """The state a test controls: the status to answer (or a function of the hit
    number, from 1), an optional gate every request waits on, and the hits received."""

    def __init__(self) -> None:
        self.status = 200
        self.status_for: Optional[Callable[[int], int]] = None
        self.gate: Optional[threading.Event] = None
        self.arrived = threading.Event()
        self.methods: List[str] = []
        self.headers: Dict[str, str] = {}  # sent with every response
        self._lock = threading.Lock()
        self.url = ""

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.methods)

    def hit(self, method: str) -> int:
        with self._lock:
            self.methods.append(method)
            n = len(self.methods)
        self.arrived.set()
        gate = self.gate
        if gate is not None:
            gate.wait(10)
        return self.status_for(n) if self.status_for else self.status


def _handler(server: Server) -> type:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status = server.hit(self.command)
            body = b"" if self.command == "HEAD" else f"{status}\n".encode()
            self.send_response(status)
            for name, value in server.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


class _Quiet(ThreadingHTTPServer):
    """A client that gave up (a timeout, a cancelled task) closes its connection before
    the answer: not worth a traceback on stderr."""

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture
def server():
    with _serve() as state:
        yield state


@pytest.fixture
def other_server():
    """A second server, on another port: another host for a per-host breaker."""
    with _serve() as state:
        yield state


@contextlib.contextmanager
def _serve() -> Iterator[Server]:
    state = Server()
    httpd = _Quiet(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/stock/42"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.gate is not None:
            state.gate.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
