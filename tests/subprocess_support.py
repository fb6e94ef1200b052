"""`pesto-serve` in a subprocess on a free loopback port, spoken to over HTTP: the helpers of
the tests that need the real server (waitress, signals, the access log), not the WSGI app.

`running` polls /ready and never sleeps a fixed time; it always stops the process.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from serve_support import PROJECTS

PESTO_SERVE = Path(sys.executable).parent / "pesto-serve"
START_TIMEOUT = 30.0


class Server:
    """A service process and where it listens."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if self.get("/api/v1/ready").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        pytest.fail(f"the service was not ready in {START_TIMEOUT} s:\n{self.log_text()}")

    def wait_until_busy(self, slots: int = 1, timeout: float = 10.0) -> None:
        """Until `slots` slots run a request, as `/metrics` says."""
        deadline = time.monotonic() + timeout
        while f"pesto_slots_busy {float(slots)}" not in self.get("/metrics").text:
            assert time.monotonic() < deadline, f"no {slots} busy slot(s) within {timeout} s"
            time.sleep(0.01)

    def sleeping_request(self, seconds: float, answers: list) -> threading.Thread:
        """A `faulty` project's request that sleeps `seconds`, sent in a thread once started;
        its answer (or the exception it met) is appended to `answers`. Returns once it runs."""

        def send() -> None:
            try:
                answers.append(self.post("/api/v1/process", json={"mode": "sleep", "seconds": seconds}))
            except requests.RequestException as error:
                answers.append(error)

        thread = threading.Thread(target=send)
        thread.start()
        self.wait_until_busy()
        return thread

    def exit_status(self, timeout: float = 20.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the service did not exit in {timeout} s:\n{self.log_text()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(
    command: list[str], tmp_path: Path, env: dict | None = None, ready: bool = True, port: int | None = None
) -> Iterator[Server]:
    port = port or free_port()
    log = tmp_path / f"service-{port}.log"
    environment = {**os.environ, "PESTO_JOBS_DIR": str(tmp_path / "jobs"), **(env or {})}
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [*command, *(["--port", str(port)] if command[0] == str(PESTO_SERVE) else [])],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    server = Server(process, port, log)
    try:
        if ready:
            server.wait_until_ready()
        yield server
    finally:
        if process.poll() is None:
            process.terminate()  # graceful: the queued log lines are written
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def pesto_serve(project: str, *options: str) -> list[str]:
    return [str(PESTO_SERVE), str(PROJECTS / project), *options]


@contextmanager
def pesto_serve_url(project: Path, *profiles: str, timeout: float = 60.0) -> Iterator[str]:
    """The base URL of `pesto-serve project -p profiles`, ready; stopped on exit."""
    port = free_port()
    command = [str(PESTO_SERVE), str(project), "--port", str(port)]
    if profiles:
        command += ["-p", *profiles]
    with tempfile.TemporaryFile() as log:  # a pipe nobody reads would block the service
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, url, log, timeout)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, url: str, log, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"pesto-serve exited with {process.returncode}: {log.read().decode()}")
        try:
            with opener.open(f"{url}/api/v1/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pesto-serve at {url} was not ready within {timeout} s")
