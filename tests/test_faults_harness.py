"""The pytest plugin when what it talks to is wrong: clear errors at once, nothing left behind.

What the plugin's own tests already pin is not repeated here: a container that exits at start
or dies mid-session, one never ready, a missing image, Ctrl-C while waiting or mid-session
(test_pytest_plugin_container.py), on_start() failing in a built image
(test_harness_integration.py), nothing listening at --pesto-url (test_pytest_plugin.py).

With ports the engine picks, two sessions never fight for one; the conflicts left are a
--pesto-url where something else listens (a web server that is not PESTO, a server that does
not speak HTTP), and an engine that does not answer.
"""

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from build_support import build
from pytest_plugin_helpers import PROJECTS, make_folder

pytest_plugins = ["pytester"]

LABEL = "org.pesto.test=true"


@contextmanager
def listening(handle) -> Iterator[str]:
    """A loopback TCP server whose connections `handle(connection)` serves; its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                handle(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def answers_404(connection: socket.socket) -> None:
    connection.recv(65536)
    connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")


def speaks_ssh(connection: socket.socket) -> None:
    connection.recv(65536)
    connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")


def one_folder(pytester) -> None:
    make_folder(pytester.path, "test_1", {"mode.string": "ok"}, {"result.string": "ok", "active.int": "1"})


@pytest.mark.parametrize(
    ("handle", "message"),
    [
        (answers_404, "GET http://127.0.0.1:*/api/v1/ready answered 404: is a PESTO service there?*"),
        (
            speaks_ssh,
            "GET http://127.0.0.1:*/api/v1/ready: the answer is not HTTP (BadStatusLine: SSH-2.0-OpenSSH_9.2);*",
        ),
    ],
    ids=["a web server that is not pesto", "a server that does not speak http"],
)
def test_pesto_url_where_something_else_listens_is_a_clear_error_at_once(pytester, handle, message):
    one_folder(pytester)
    make_folder(pytester.path, "test_2", {"mode.string": "ok"}, {"result.string": "ok"})
    with listening(handle) as url:
        started = time.monotonic()
        result = pytester.runpytest(f"--pesto-url={url}", "--pesto-start-timeout=60")
    assert time.monotonic() - started < 30, "refused at once, not after the start timeout"
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


def test_an_engine_that_does_not_answer_is_a_clear_error(pytester, tmp_path, monkeypatch):
    one_folder(pytester)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    result = pytester.runpytest_subprocess("--pesto-image=faulty:1.0.0")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"no container engine answers at unix://{tmp_path}/no-engine.sock*set DOCKER_HOST*"]
    )


def containers_of(engine, tag: str) -> set[str]:
    return {
        container.id
        for container in engine.containers.list(all=True, filters={"label": LABEL})
        if container.attrs["Config"]["Image"].endswith(tag)
    }


@pytest.mark.engine
@pytest.mark.slow
def test_two_sessions_at_once_each_get_a_port_of_their_own_and_leave_nothing(pytester, engine, base_image):
    tag = build(PROJECTS / "faulty")
    one_folder(pytester)
    before = containers_of(engine, tag)
    command = [sys.executable, "-m", "pytest", f"--pesto-image={tag}", "-p", "no:cacheprovider", "-q"]
    sessions = [
        subprocess.Popen(
            command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [session.communicate(timeout=300)[0] for session in sessions]

    assert [session.returncode for session in sessions] == [0, 0], outputs
    assert containers_of(engine, tag) == before
