"""Processing slots: a bounded queue instead of 429, 503 past it, timeouts, thread safety."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pesto_serve.errors import ServiceError
from pesto_serve.slots import Slots
from serve_support import error_of, served


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def post_in_background(pool, app, body, status=200):
    return pool.submit(app.post_json, "/api/v1/process", body, status=status)


def test_requests_past_the_slots_wait_instead_of_failing():
    with served("faulty", slots=1, queue_size=2) as (app, service), ThreadPoolExecutor(3) as pool:
        running = post_in_background(pool, app, {"mode": "sleep", "seconds": 2})
        wait_until(lambda: service.slots.running == 1)
        waiting = [post_in_background(pool, app, {"mode": "ok"}) for _ in range(2)]
        wait_until(lambda: service.slots.waiting == 2)
        assert running.result().json["result"] == "sleep"
        assert [future.result().json["result"] for future in waiting] == ["ok", "ok"]


def test_a_full_queue_is_503_with_retry_after():
    with served("faulty", slots=1, queue_size=1) as (app, service), ThreadPoolExecutor(2) as pool:
        running = post_in_background(pool, app, {"mode": "sleep", "seconds": 2})
        wait_until(lambda: service.slots.running == 1)
        waiting = post_in_background(pool, app, {"mode": "ok"})
        wait_until(lambda: service.slots.running == 1 and service.slots.waiting == 1)
        response = app.post_json("/api/v1/process", {"mode": "ok"}, status=503)
        assert response.headers["Retry-After"] == "1"
        assert "busy" in error_of(response)["message"]
        assert app.get("/metrics").text.count("pesto_queue_depth 1.0") == 1
        assert running.result().json["result"] == "sleep"
        assert waiting.result().json["result"] == "ok"
        assert app.post_json("/api/v1/process", {"mode": "ok"}).json["result"] == "ok"


def test_process_is_never_concurrent_unless_thread_safe():
    with served("faulty", slots=3) as (app, service), ThreadPoolExecutor(3) as pool:
        answers = [post_in_background(pool, app, {"mode": "sleep", "seconds": 0.5}) for _ in range(3)]
        wait_until(lambda: service.slots.running == 3)  # all in a slot, process() one at a time
        assert [future.result().json["active"] for future in answers] == [1, 1, 1]


def test_a_thread_safe_process_runs_in_every_slot(monkeypatch):
    monkeypatch.setenv("FAULTY_THREAD_SAFE", "1")
    with served("faulty", slots=3) as (app, service), ThreadPoolExecutor(3) as pool:
        answers = [post_in_background(pool, app, {"mode": "sleep", "seconds": 1.5}) for _ in range(3)]
        wait_until(lambda: service.slots.running == 3)
        assert sorted(future.result().json["active"] for future in answers)[-1] >= 2


def test_a_timeout_is_504_and_the_slot_stays_busy_until_process_returns():
    with served("faulty", slots=1, queue_size=1, process_timeout=0.2) as (app, service):
        error = error_of(app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 2}, status=504))
        assert "PESTO_PROCESS_TIMEOUT (0.2 s)" in error["message"]
        assert "still running" in error["message"]
        assert service.slots.running == 1
        wait_until(lambda: service.slots.running == 0)
        assert app.post_json("/api/v1/process", {"mode": "ok"}).json["active"] == 1


@pytest.mark.parametrize("first_timeout", [0, 10], ids=["in-thread", "on-a-slot-thread"])
def test_a_request_timing_out_while_waiting_never_runs(first_timeout):
    slots = Slots(count=1, queue_size=1)
    release = threading.Event()
    ran = []
    with ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(slots.run, release.wait, first_timeout)
            wait_until(lambda: slots.running == 1)
            with pytest.raises(ServiceError) as raised:
                slots.run(lambda: ran.append(True), timeout=0.05)
        finally:
            release.set()
        assert raised.value.status == 504 and "will not run" in raised.value.message
        first.result()
    wait_until(lambda: slots.waiting == 0 and slots.running == 0)
    assert ran == []


def test_health_answers_while_every_slot_is_busy():
    with served("faulty", slots=1, queue_size=0) as (app, service), ThreadPoolExecutor(1) as pool:
        running = post_in_background(pool, app, {"mode": "sleep", "seconds": 1.5})
        wait_until(lambda: service.slots.running == 1)
        assert app.get("/api/v1/health").text == "OK"
        assert app.get("/api/v1/ready").text == "OK"
        running.result()
