"""Helpers of the hostile suite: its services (the real `pesto-serve`, in a subprocess on a free
loopback port, with `running()` of the runtime's own server tests) and raw HTTP to them.

After every hostile request `Service.still_answers()` proves that the service goes on
answering correctly.
"""

import base64
import http.client
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalogue import MAX_BODY_BYTES, PNG, RGB, b64
from pesto_pack.types.images import decode_image
from subprocess_support import Server, pesto_serve, running

ENVIRONMENT = {"PESTO_MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
JOB_TIMEOUT = 20.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


def send(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One request on a connection of its own, exactly as given (no client-side fixing up)."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def decoded_image(value: str) -> np.ndarray:
    return decode_image(base64.b64decode(value), max_pixels=10**9)


class Service:
    """A running service of the suite, what it must still answer, and its log."""

    def __init__(self, server: Server, project: str):
        self.server = server
        self.project = project
        self.job: str | None = None
        """A finished job of a stateful service, for the job routes' cases."""

    def send(self, method: str, path: str, body: bytes | None = None, headers=None) -> Answer:
        return send(self.server, method, path, body, headers)

    def post(self, value) -> Answer:
        return self.send(
            "POST", "/api/v1/process", json.dumps(value).encode(), {"Content-Type": "application/json"}
        )

    def log_size(self) -> int:
        return self.server.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.server.log, "rb") as stream:
            stream.seek(offset)
            return stream.read().decode("utf-8", "replace")

    def still_answers(self) -> None:
        assert self.server.process.poll() is None, f"the service exited:\n{self.server.log_text()[-3000:]}"
        if self.job is None:
            self._answers_a_request()
        else:
            self._answers_jobs()

    def _answers_a_request(self) -> None:
        if self.project == "template":
            body = {"image": b64(PNG), "integer_parameter": 1, "string_parameter": "abc"}
        else:
            body = {"text": "still here", "count": 3, "image": b64(PNG)}
        answer = self.post(body)
        assert answer.status == 200, answer.body[:500]
        result = answer.json
        image = decoded_image(result["image"])
        if self.project == "template":
            assert (image == 255 - RGB.transpose(2, 0, 1)).all()
            assert (result["integer_output"], result["string_output"]) == (2, "ABC")
        else:
            assert (image == RGB.transpose(2, 0, 1)).all()
            assert (result["text"], result["count"]) == ("still here", 3)

    def _answers_jobs(self) -> None:
        finished = self.send("GET", f"/api/v1/jobs/{self.job}/results/text")
        assert (finished.status, finished.body) == (200, b"done")
        job = submit_and_wait(self, {"text": "new job"})
        assert self.send("GET", f"/api/v1/jobs/{job}/results/text").body == b"new job"


def submit_and_wait(service: Service, value: dict) -> str:
    """A stateful job's id once it is DONE."""
    submitted = service.post(value)
    assert submitted.status == 202, submitted.body[:500]
    job = submitted.json["jobId"]
    deadline = time.monotonic() + JOB_TIMEOUT
    while (status := service.send("GET", f"/api/v1/jobs/{job}/status").json)["status"] != "DONE":
        assert status["status"] != "ERROR", status
        assert time.monotonic() < deadline, f"job {job} still {status['status']} after {JOB_TIMEOUT} s"
        time.sleep(0.01)
    return job


def serve(tmp_path_factory, *command: str):
    """`pesto-serve` of a fixture project with the suite's settings, ready; stopped on exit."""
    folder: Path = tmp_path_factory.mktemp("hostile")
    return running(pesto_serve(*command), folder, {**ENVIRONMENT, "PESTO_JOBS_DIR": str(folder / "jobs")})
