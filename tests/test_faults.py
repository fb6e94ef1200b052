"""Faults of the service's own code, met by the real server: it answers, reports, and goes on.

`process()` raising or breaking its output schema is a 500 naming what went wrong, and the
next request is answered. `process()` hanging past PESTO_PROCESS_TIMEOUT is a 504; Python
cannot stop it, so while every call the service can run at once is overdue, /ready answers
503 (the image's health check fails, an orchestrator restarts it) and requests are refused at
once; once the call returns, the service is ready again. SIGTERM under load: every request the
service answered reached its client, then exit 0. (on_start() failing: test_serve_server.py on
the host, test_harness_integration.py in a real container.)
"""

import http.client
import re
import signal
import threading
import time

from subprocess_support import Server, pesto_serve, running

WAIT = 15.0


def wait_for(condition, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def ready_status(server: Server) -> int:
    return server.get("/api/v1/ready").status_code


def test_process_raising_or_breaking_its_schema_is_a_500_and_the_next_request_is_answered(tmp_path):
    with running(pesto_serve("faulty"), tmp_path) as server:
        raised = server.post("/api/v1/process", json={"mode": "raise"})
        broken = server.post("/api/v1/process", json={"mode": "bad_output"})
        undeclared = server.post("/api/v1/process", json={"mode": "undeclared_output"})
        answered = server.post("/api/v1/process", json={"mode": "ok"})
    assert raised.status_code == 500
    assert (
        raised.json()["error"]["message"]
        == "the service's process() raised ValueError: the input asked for an error"
    )
    assert (broken.status_code, broken.json()["error"]["field"]) == (500, "result")
    assert "breaks output_schema.json at result" in broken.json()["error"]["message"]
    assert (undeclared.status_code, undeclared.json()["error"]["field"]) == (500, "surprise")
    assert answered.json() == {"result": "ok", "active": 1}
    assert server.log_text().count("Traceback") == 1, "the raising process() is logged with its traceback"


def test_a_hanging_process_is_a_504_then_the_service_says_unready_until_it_returns(tmp_path):
    environment = {"PESTO_PROCESS_TIMEOUT": "0.5"}
    with running(pesto_serve("faulty"), tmp_path, environment) as server:
        started = time.monotonic()
        hung = server.post("/api/v1/process", json={"mode": "sleep", "seconds": 3})
        assert hung.status_code == 504 and time.monotonic() - started < 2.5
        assert "PESTO_PROCESS_TIMEOUT (0.5 s)" in hung.json()["error"]["message"]

        unready = server.get("/api/v1/ready")
        refused = server.post("/api/v1/process", json={"mode": "ok"})
        assert unready.status_code == 503 and unready.headers["Retry-After"]
        assert "restart the service" in unready.json()["error"]["message"]
        assert refused.status_code == 503, "refused at once rather than queued behind the hung call"
        assert server.get("/api/v1/health").text == "OK"

        wait_for(lambda: ready_status(server) == 200, "ready again once process() returned")
        assert server.post("/api/v1/process", json={"mode": "ok"}).json()["result"] == "ok"


def test_one_hanging_call_of_a_thread_safe_process_leaves_the_other_slot_serving(tmp_path):
    environment = {"PESTO_PROCESS_TIMEOUT": "0.5", "PESTO_SLOTS": "2", "FAULTY_THREAD_SAFE": "1"}
    with running(pesto_serve("faulty"), tmp_path, environment) as server:
        hang = {"mode": "sleep", "seconds": 30}  # never awaited: the server is killed at the end
        assert server.post("/api/v1/process", json=hang).status_code == 504
        assert ready_status(server) == 200
        assert server.post("/api/v1/process", json={"mode": "ok"}).json()["result"] == "ok"
        assert server.post("/api/v1/process", json=hang).status_code == 504
        assert ready_status(server) == 503, "both slots are held by overdue calls"


class Load:
    """Client threads sending requests on keep-alive connections until told to stop."""

    def __init__(self, server: Server, clients: int, body: bytes):
        self.port = int(server.url.rsplit(":", 1)[1])
        self.body = body
        self.statuses: list[int] = []
        self.unanswered = 0
        """Requests that got no answer at all: the port was closed, or the connection was
        closed or reset with no answer. The test tells a request the service never took (a
        keep-alive connection it was closing) from a dropped one by its log: every answer
        the service logged must have arrived."""
        self.broken: list[str] = []
        """Answers cut short or malformed."""
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(WAIT)

    def _client(self) -> None:
        connection = None
        while not self.stop.is_set():
            connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
            try:
                connection.request("POST", "/api/v1/process", self.body, {"Content-Type": "application/json"})
            except OSError:
                self.unanswered += 1
                connection.close()
                connection = None
                time.sleep(0.01)
                continue
            try:
                response = connection.getresponse()
                response.read()
                self.statuses.append(response.status)
                if response.will_close:
                    connection.close()
                    connection = None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.unanswered += 1
                connection.close()
                connection = None
            except (OSError, http.client.HTTPException) as error:
                self.broken.append(repr(error))
                connection.close()
                connection = None


def test_sigterm_under_load_answers_every_admitted_request_then_exits_zero(tmp_path):
    body = b'{"mode": "sleep", "seconds": 0.02}'
    with running(pesto_serve("faulty"), tmp_path, {"PESTO_GRACE_PERIOD": "10"}) as server:
        with Load(server, clients=8, body=body) as load:
            wait_for(lambda: len(load.statuses) >= 30, "30 answers under load")
            server.process.send_signal(signal.SIGTERM)
            status = server.exit_status()
            wait_for(lambda: load.unanswered >= len(load.threads), "every client refused after the exit")
    assert status == 0
    log = server.log_text()
    assert "all requests answered; exiting" in log
    answered = {code: len(re.findall(rf"POST /api/v1/process {code} ", log)) for code in (200, 503)}
    assert answered[200] >= 30
    assert load.statuses.count(200) == answered[200], "an answer the service sent did not arrive"
    assert load.statuses.count(503) == answered[503]
    assert set(load.statuses) <= {200, 503} and load.broken == []
