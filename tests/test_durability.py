"""Stateful jobs on the real engine: none lost under a burst, none lost when the container dies.

The image is what `pesto-pack build -p stateful` makes of the `faulty` project, whose
`process()` answers its `mode` (so each job's result names the job) or sleeps on request. The
jobs folder is a named volume, so that a second container takes over the first one's jobs,
and runs again those the first one left unfinished (their inputs are in the folder).
Timings are printed (`-s`) for RELIABILITY.md.
"""

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from build_support import build, http, wait_ready
from pytest_plugin_helpers import PROJECTS

pytestmark = [pytest.mark.engine, pytest.mark.slow]

JOBS_DIR = "/var/lib/pesto/jobs"
JOBS = 200
DEADLINE = 120.0


@pytest.fixture(scope="module")
def image(engine, base_image) -> str:
    return build(PROJECTS / "faulty", "stateful")


@pytest.fixture
def volume(engine) -> Iterator[str]:
    created = engine.volumes.create(f"pesto-durability-{uuid.uuid4().hex[:8]}")
    try:
        yield created.name
    finally:
        created.remove(force=True)


@contextmanager
def service(engine, image: str, volume: str) -> Iterator[tuple[str, object]]:
    """A container of `image` with `volume` as its jobs folder, ready; always removed."""
    container = engine.containers.run(
        image,
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={volume: {"bind": JOBS_DIR, "mode": "rw"}},
        environment={"PESTO_QUEUE_SIZE": str(JOBS + 50)},
        labels={"org.pesto.test": "true"},
    )
    try:
        yield wait_ready(container), container
    finally:
        container.remove(force=True)


def submit(url: str, mode: str, seconds: float = 0.0) -> str:
    status, _, body = http(url, "POST", "/api/v1/process", {"mode": mode, "seconds": seconds})
    assert status == 202, body
    return json.loads(body)["jobId"]


def states(url: str) -> dict[str, str]:
    status, _, body = http(url, "GET", "/api/v1/jobs?limit=1000")
    assert status == 200, body
    return {job_id: job["status"] for job_id, job in json.loads(body).items()}


def wait_until(condition, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def result(url: str, job_id: str) -> bytes:
    status, _, body = http(url, "GET", f"/api/v1/jobs/{job_id}/results/result")
    assert status == 200, body
    return body


def test_200_jobs_submitted_at_once_all_reach_done_with_their_own_results(engine, image, volume):
    with service(engine, image, volume) as (url, _):
        started = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(lambda n: submit(url, f"job-{n}"), range(JOBS)))
        submitted = time.monotonic() - started
        wait_until(lambda: set(states(url).values()) == {"DONE"}, f"{JOBS} jobs DONE")
        done = time.monotonic() - started
        assert len(set(ids)) == JOBS and set(states(url)) == set(ids)
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda job_id: result(url, job_id), ids))
    assert results == [f"job-{n}".encode() for n in range(JOBS)]
    print(f"\n{JOBS} jobs: submitted in {submitted:.2f} s, all DONE {done:.2f} s after the first")


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_container_stopped_mid_run_leaves_no_job_lost_on_restart(engine, image, volume, stop):
    with service(engine, image, volume) as (url, container):
        finished = [submit(url, f"finished-{n}") for n in range(20)]
        wait_until(lambda: set(states(url).values()) == {"DONE"}, "the first jobs DONE")
        interrupted = [submit(url, "sleep", seconds=3) for _ in range(5)]
        wait_until(lambda: "RUNNING" in states(url).values(), "a sleeping job RUNNING")
        if stop == "SIGKILL":
            container.kill("SIGKILL")
        else:
            container.stop(timeout=30)  # SIGTERM: the running job finishes in the grace period
        exit_code = container.wait(timeout=60)["StatusCode"]
    assert exit_code == (137 if stop == "SIGKILL" else 0)

    started = time.monotonic()
    with service(engine, image, volume) as (url, container):
        ready = time.monotonic() - started
        after = states(url)
        assert set(after) == set(finished) | set(interrupted), "a job was lost"
        assert {after[job_id] for job_id in finished} == {"DONE"}
        assert [result(url, job_id) for job_id in finished] == [f"finished-{n}".encode() for n in range(20)]
        # SIGKILL: the running job and the 4 waiting are queued again. SIGTERM: the running
        # job (3 s) finished within the grace period; the 4 waiting are queued again.
        unfinished = 5 if stop == "SIGKILL" else 4
        queued = f"{unfinished} job(s) a previous run left unfinished are queued again"
        assert queued in container.logs().decode()
        wait_until(lambda: set(states(url).values()) == {"DONE"}, "the interrupted jobs run again")
        attempts = []
        for job_id in interrupted:
            status = json.loads(http(url, "GET", f"/api/v1/jobs/{job_id}/status")[2])
            attempts.append(status["attempts"])
            assert result(url, job_id) == b"sleep"
        ran_twice = 1 if stop == "SIGKILL" else 0
        assert sorted(attempts) == [1] * (5 - ran_twice) + [2] * ran_twice
    print(f"\n{stop}: a new container on the same jobs was ready in {ready:.2f} s")
