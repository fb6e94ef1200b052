"""Slow and stalled clients do not starve the others (the real server, over loopback sockets).

Waitress alone stops accepting at 100 open connections and frees a connection stalled in its
headers only after 120 s: 150 such clients made /health time out. Here 500 stalled clients
plus 50 that send their body a byte a second leave a normal request answered at once, and
the stalled ones are closed after PESTO_HEADER_TIMEOUT while the slow bodies keep theirs.
"""

import socket
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from subprocess_support import pesto_serve, running

STALLED = 500
SLOW_BODIES = 50
HEADER_TIMEOUT = 2.0
ANSWER_WITHIN = 1.0


def open_connections(port: int, count: int, first_bytes: bytes, stack: ExitStack) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"PESTO_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    with running(pesto_serve("echo"), tmp_path_factory.mktemp("slow"), env) as server:
        yield server


def test_stalled_and_slow_clients_leave_a_normal_request_answered_at_once(server):
    port = int(server.url.rsplit(":", 1)[1])
    headers_begun = b"POST /api/v1/process HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body_begun = headers_begun + b"Content-Length: 1000\r\n\r\n{"
    with ExitStack() as stack:
        stalled = open_connections(port, STALLED, headers_begun, stack)
        slow = open_connections(port, SLOW_BODIES, body_begun, stack)
        stop = threading.Event()

        def trickle():  # a byte a second on every slow body
            while not stop.wait(1.0):
                for sock in slow:
                    sock.send(b" ")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            deadline = time.monotonic() + 10
            while open_fds(server.process.pid) < STALLED + SLOW_BODIES:  # all accepted
                assert time.monotonic() < deadline, "the server did not accept every connection"
                time.sleep(0.05)
            began = time.monotonic()
            health = requests.get(f"{server.url}/api/v1/health", timeout=10)
            answer = requests.post(f"{server.url}/api/v1/process", json={"text": "hi"}, timeout=10)
            took = time.monotonic() - began
            assert health.status_code == 200 and answer.json()["text"] == "hi"
            assert took < ANSWER_WITHIN, f"a normal request took {took:.2f} s behind slow clients"

            deadline = time.monotonic() + HEADER_TIMEOUT + 5
            while not all(closed_by_server(sock) for sock in stalled):
                assert time.monotonic() < deadline, (
                    f"{sum(not closed_by_server(s) for s in stalled)} stalled connections still "
                    f"open {HEADER_TIMEOUT + 5:g} s after PESTO_HEADER_TIMEOUT={HEADER_TIMEOUT:g}"
                )
                time.sleep(0.2)
            assert not any(closed_by_server(sock) for sock in slow), "a slow body (still sending) was cut"
        finally:
            stop.set()
            trickler.join(5)
    assert "PESTO_HEADER_TIMEOUT" in server.log_text()


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server):
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        began = time.monotonic()
        silent.settimeout(HEADER_TIMEOUT + 5)
        assert silent.recv(1) == b""
        assert HEADER_TIMEOUT - 0.1 <= time.monotonic() - began < HEADER_TIMEOUT + 4
