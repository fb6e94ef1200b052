"""Stateful mode, on both job backends (a folder, and a real Redis): jobs answered at once,
polled, cancelled, paginated, their results fetched; the folder's jobs kept across restarts."""

import base64
import dataclasses
import hashlib
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from standardwebhooks import Webhook

from images_support import RGB_CHANNELS_FIRST as RGB
from images_support import png_base64
from pesto_pack.errors import PestoError
from pesto_pack.types.base import Result
from pesto_serve.jobs import CANCELLED, DONE, ERROR, PENDING, RUNNING, Submission
from pesto_serve.jobs.folder import FolderJobs
from pesto_serve.jobs.redis import RedisJobs
from pesto_serve.jobs.volume import ResultVolume
from pesto_serve.logs import JsonFormatter, TextFormatter
from pesto_serve.settings import Settings
from redis_support import free_port
from serve_support import copy_project, error_of, served
from webhook_support import Receiver

BACKENDS = ("folder", "redis")
SECRET = "whsec_" + base64.b64encode(b"a secret of the job tests, 32 by").decode()


def path_of(url: str) -> str:
    return urlsplit(url).path


def wait_for(app, job_id: str, states=(DONE, ERROR, CANCELLED), timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = app.get(f"/api/v1/jobs/{job_id}/status").json
        if status["status"] in states:
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status['status']} after {timeout} s"
        time.sleep(0.01)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> dict:
    """The settings that choose one job backend."""
    if request.param == "redis":
        return {"jobs_url": request.getfixturevalue("redis_url")}
    return {"jobs_dir": tmp_path / "jobs"}


@pytest.fixture
def template(store):
    with served("template", ("stateful",), **store) as served_app:
        yield served_app


@pytest.fixture
def faulty(store):
    with served("faulty", ("stateful",), **store) as served_app:
        yield served_app


@pytest.fixture
def jobs(store, tmp_path, monkeypatch):
    """The `jobs` fixture project (progress, call counting), one slot."""
    monkeypatch.setenv("JOBS_CALLS_FILE", str(tmp_path / "calls"))
    with served("jobs", slots=1, **store) as served_app:
        yield served_app


def calls(tmp_path) -> list[str]:
    path = tmp_path / "calls"
    return [line.split(":")[0] for line in path.read_text().split()] if path.exists() else []


def test_process_answers_at_once_with_the_job_and_its_links(template):
    app, _ = template
    response = app.post_json(
        "/api/v1/process",
        {"image": png_base64(RGB)},
        status=202,
        extra_environ={"HTTP_HOST": "jobs.example:7000"},
    )
    job = response.json
    status_url = f"http://jobs.example:7000/api/v1/jobs/{job['jobId']}/status"
    assert response.headers["Location"] == status_url
    assert job["status"] in (PENDING, RUNNING, DONE) and job["error"] is None
    assert job["link"] == status_url  # what the original's clients read
    assert job["_links"] == {
        "status": {"href": status_url},
        "results": {"href": f"http://jobs.example:7000/api/v1/jobs/{job['jobId']}/results"},
    }


def test_job_ids_are_unguessable(template):
    app, _ = template
    ids = {app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"] for _ in range(3)}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", job_id) for job_id in ids)


def test_a_done_job_answers_each_result_with_its_media_type(template):
    app, _ = template
    body = {"image": png_base64(RGB), "string_parameter": "abc"}
    job_id = app.post_json("/api/v1/process", body).json["jobId"]
    status = wait_for(app, job_id)
    assert status["status"] == DONE and status["error"] is None and status["progress"] == 100
    assert path_of(status["link"]) == f"/api/v1/jobs/{job_id}/results"
    results = app.get(f"/api/v1/jobs/{job_id}/results").json
    assert set(results) == {
        "image",
        "areas",
        "number_output",
        "integer_output",
        "dict_output",
        "string_output",
        "image_list",
        "geojson",
    }
    assert path_of(results["image"]) == f"/api/v1/jobs/{job_id}/results/image"
    assert [path_of(url) for url in results["image_list"]] == [
        f"/api/v1/jobs/{job_id}/results/image_list/0",
        f"/api/v1/jobs/{job_id}/results/image_list/1",
    ]
    image = app.get(path_of(results["image"]))
    assert image.content_type == "image/png"
    assert (np.asarray(Image.open(io.BytesIO(image.body))).transpose(2, 0, 1) == 255 - RGB).all()
    flipped = app.get(path_of(results["image_list"][1]))
    assert (np.asarray(Image.open(io.BytesIO(flipped.body))).transpose(2, 0, 1) == RGB[:, ::-1]).all()
    string = app.get(path_of(results["string_output"]))
    assert (string.content_type, string.text) == ("text/plain", "ABC")
    areas = app.get(path_of(results["areas"]))
    assert areas.content_type == "application/json" and len(areas.json) == 2
    assert app.get(path_of(results["integer_output"])).json == 1
    assert app.get(f"/api/v1/jobs/{job_id}/results/image_list").json == results["image_list"]


def test_the_job_list_links_every_job_to_its_status(template):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    listed = app.get("/api/v1/jobs").json
    assert path_of(listed[job_id]["link"]) == f"/api/v1/jobs/{job_id}/status"
    assert listed[job_id]["status"] in (PENDING, RUNNING, DONE)


def test_an_invalid_request_is_refused_at_once_without_a_job(template):
    app, _ = template
    error = error_of(app.post_json("/api/v1/process", {"image": "%%%"}, status=400))
    assert error["field"] == "image"
    assert app.get("/api/v1/jobs").json == {}


def test_a_failing_process_makes_an_error_job_with_its_message(faulty):
    app, _ = faulty
    job_id = app.post_json("/api/v1/process", {"mode": "raise"}).json["jobId"]
    status = wait_for(app, job_id)
    assert status["status"] == ERROR
    assert status["error"] == "the service's process() raised ValueError: the input asked for an error"
    error = error_of(app.get(f"/api/v1/jobs/{job_id}/results", status=409))
    assert "the input asked for an error" in error["message"]


def test_an_answer_breaking_the_output_schema_makes_an_error_job(faulty):
    app, _ = faulty
    job_id = app.post_json("/api/v1/process", {"mode": "bad_output"}).json["jobId"]
    assert "breaks output_schema.json at result" in wait_for(app, job_id)["error"]


def test_results_are_409_until_the_job_is_done(faulty):
    app, _ = faulty
    job_id = app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 1}).json["jobId"]
    error = error_of(app.get(f"/api/v1/jobs/{job_id}/results", status=409))
    assert re.search(r"is (PENDING|RUNNING)", error["message"])
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/result", status=409))
    wait_for(app, job_id)
    assert app.get(f"/api/v1/jobs/{job_id}/results/result").text == "sleep"


@pytest.mark.parametrize("route", ["status", "results", "results/image"])
def test_an_unknown_job_is_404_and_a_malformed_id_400(template, route):
    app, _ = template
    error = error_of(app.get(f"/api/v1/jobs/{'x' * 22}/{route}", status=404))
    assert "no job" in error["message"]
    error_of(app.get(f"/api/v1/jobs/..%2F..%2Fetc/{route}", status=404))
    error = error_of(app.get(f"/api/v1/jobs/not*an*id/{route}", status=400))
    assert error["field"] == "job_id" and "is not a job id" in error["message"]


def test_an_unknown_result_key_or_index_is_404(template):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    wait_for(app, job_id)
    error = error_of(app.get(f"/api/v1/jobs/{job_id}/results/nothing", status=404))
    assert error["field"] == "nothing" and "its results: image, areas" in error["message"]
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/image_list/2", status=404))
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/image/0", status=404))


def test_delete_removes_a_finished_job_and_its_results(template, store):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    wait_for(app, job_id)
    folder = store.get("jobs_dir")
    if folder:
        assert (folder / job_id).is_dir()
    assert app.delete(f"/api/v1/jobs/{job_id}").json == {"jobId": job_id, "deleted": True}
    if folder:
        assert not (folder / job_id).exists()
    error_of(app.get(f"/api/v1/jobs/{job_id}/status", status=404))
    error_of(app.delete(f"/api/v1/jobs/{job_id}", status=404))


def test_delete_removes_one_result(template):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    wait_for(app, job_id)
    app.delete(f"/api/v1/jobs/{job_id}/results/image_list")
    assert "image_list" not in app.get(f"/api/v1/jobs/{job_id}/results").json
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/image_list/0", status=404))
    assert app.get(f"/api/v1/jobs/{job_id}/results/string_output").status_int == 200


def test_a_waiting_job_cancelled_never_runs(jobs, tmp_path):
    app, _ = jobs
    running = app.post_json("/api/v1/process", {"tag": "first", "seconds": 0.6}).json["jobId"]
    waiting = app.post_json("/api/v1/process", {"tag": "second"}).json["jobId"]
    wait_for(app, running, states=(RUNNING,))
    answer = app.delete(f"/api/v1/jobs/{waiting}", status=200).json
    assert answer["status"] == CANCELLED and "before it ran" in answer["error"]
    assert wait_for(app, running)["status"] == DONE
    time.sleep(0.2)
    assert calls(tmp_path) == ["first"]
    assert app.get(f"/api/v1/jobs/{waiting}/status").json["status"] == CANCELLED
    error_of(app.get(f"/api/v1/jobs/{waiting}/results", status=409))
    assert app.delete(f"/api/v1/jobs/{waiting}").json == {"jobId": waiting, "deleted": True}


def test_a_running_job_cancelled_stops_at_its_next_progress_report(jobs):
    app, _ = jobs
    job_id = app.post_json("/api/v1/process", {"tag": "long", "seconds": 20, "steps": 100}).json["jobId"]
    deadline = time.monotonic() + 10
    while not (app.get(f"/api/v1/jobs/{job_id}/status").json["progress"] or 0) > 0:
        assert time.monotonic() < deadline, "no progress reported"
        time.sleep(0.05)
    started = time.monotonic()
    answer = app.delete(f"/api/v1/jobs/{job_id}", status=202).json
    assert answer["status"] == RUNNING and answer["cancelRequested"] is True
    status = wait_for(app, job_id, timeout=5)
    assert status["status"] == CANCELLED and 0 < status["progress"] < 100
    assert time.monotonic() - started < 2  # at the next report (every 0.2 s), not after 20 s


def test_a_running_job_without_progress_reports_is_cancelled_when_it_returns(faulty):
    app, _ = faulty
    job_id = app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 0.5}).json["jobId"]
    wait_for(app, job_id, states=(RUNNING,))
    app.delete(f"/api/v1/jobs/{job_id}", status=202)
    status = wait_for(app, job_id)
    assert status["status"] == CANCELLED and "result, if any, was discarded" in status["error"]
    error_of(app.get(f"/api/v1/jobs/{job_id}/results", status=409))


def test_progress_goes_from_0_to_100(jobs):
    app, _ = jobs
    job_id = app.post_json("/api/v1/process", {"tag": "p", "seconds": 1.0, "steps": 10}).json["jobId"]
    seen = set()
    while (status := app.get(f"/api/v1/jobs/{job_id}/status").json)["status"] != DONE:
        seen.add(status["progress"])
        time.sleep(0.05)
    assert status["progress"] == 100
    assert any(value is not None and 0 < value < 100 for value in seen), seen


def test_the_job_list_is_paginated_by_limit_and_cursor(jobs):
    app, _ = jobs
    ids = [app.post_json("/api/v1/process", {"tag": f"t{n}"}).json["jobId"] for n in range(5)]
    first = app.get("/api/v1/jobs?limit=2")
    assert list(first.json) == ids[:2]
    next_url = re.fullmatch(r'<(.+)>; rel="next"', first.headers["Link"]).group(1)
    second = app.get(path_of(next_url) + "?" + urlsplit(next_url).query)
    assert list(second.json) == ids[2:4]
    last = app.get(f"/api/v1/jobs?limit=2&cursor={ids[3]}")
    assert list(last.json) == ids[4:] and "Link" not in last.headers
    assert list(app.get("/api/v1/jobs").json) == ids


@pytest.mark.parametrize(
    "query, status, field, words",
    [
        ("cursor=" + "u" * 22, 404, "cursor", "names no job"),
        ("cursor=no*id", 400, "cursor", "is not a job id"),
        ("limit=0", 400, "limit", "from 1 to 1000"),
        ("limit=many", 400, "limit", "from 1 to 1000"),
    ],
)
def test_a_bad_page_request_is_4xx_naming_the_parameter(jobs, query, status, field, words):
    app, _ = jobs
    app.post_json("/api/v1/process", {"tag": "a"})
    error = error_of(app.get(f"/api/v1/jobs?{query}", status=status))
    assert error["field"] == field and words in error["message"]


def test_an_idempotency_key_answers_the_same_job(jobs, tmp_path):
    app, _ = jobs
    headers = {"Idempotency-Key": "order-42"}
    first = app.post_json("/api/v1/process", {"tag": "once"}, headers=headers, status=202).json
    again = app.post_json("/api/v1/process", {"tag": "once"}, headers=headers, status=200).json
    assert again["jobId"] == first["jobId"]
    wait_for(app, first["jobId"])
    assert (
        app.post_json("/api/v1/process", {"tag": "once"}, headers=headers, status=200).json["jobId"]
        == first["jobId"]
    )
    assert calls(tmp_path) == ["once"]
    error = error_of(app.post_json("/api/v1/process", {"tag": "other"}, headers=headers, status=409))
    assert error["field"] == "Idempotency-Key" and "another body" in error["message"]
    error = error_of(
        app.post_json("/api/v1/process", {"tag": "x"}, headers={"Idempotency-Key": "k" * 256}, status=400)
    )
    assert error["field"] == "Idempotency-Key" and "1 to 255" in error["message"]
    assert len(app.get("/api/v1/jobs").json) == 1


def test_the_correlation_id_is_echoed_and_kept_in_the_job(jobs):
    app, _ = jobs
    headers = {"X-Correlation-ID": "req-7f3a"}
    response = app.post_json("/api/v1/process", {"tag": "c"}, headers=headers)
    assert response.headers["X-Correlation-ID"] == "req-7f3a"
    assert response.json["correlationId"] == "req-7f3a"
    status = app.get(f"/api/v1/jobs/{response.json['jobId']}/status", headers={"X-Correlation-ID": "poll-1"})
    assert status.headers["X-Correlation-ID"] == "poll-1" and status.json["correlationId"] == "req-7f3a"
    assert "X-Correlation-ID" not in app.get("/api/v1/health").headers
    error = error_of(app.get("/api/v1/health", headers={"X-Correlation-ID": "x" * 201}, status=400))
    assert error["field"] == "X-Correlation-ID"


def test_a_webhook_is_refused_unless_allowed(store, tmp_path):
    with served("jobs", **store) as (app, _):
        error = error_of(
            app.post_json(
                "/api/v1/process",
                {"tag": "w"},
                status=400,
                headers={"X-Webhook-URL": "http://127.0.0.1:9/hook"},
            )
        )
        assert error["field"] == "X-Webhook-URL" and "PESTO_WEBHOOK_ALLOWLIST" in error["message"]
    allowed = {"webhook_allowlist": ("http://127.0.0.1:9/hooks/",), "webhook_secret": "whsec_" + "A" * 32}
    with served("jobs", **store, **allowed) as (app, _):
        for url in (
            "http://127.0.0.1:9/other",
            "http://127.0.0.1:9/hooks/../admin",
            "file:///etc/passwd",
            "http://127.0.0.2:9/hooks/x",
        ):
            error = error_of(
                app.post_json("/api/v1/process", {"tag": "w"}, status=400, headers={"X-Webhook-URL": url})
            )
            assert error["field"] == "X-Webhook-URL", url
        job = app.post_json(
            "/api/v1/process",
            {"tag": "w"},
            status=202,
            headers={"X-Webhook-URL": "http://127.0.0.1:9/hooks/a"},
        ).json
        assert job["webhook"]["url"] == "http://127.0.0.1:9/hooks/a"
        assert app.get("/api/v1/jobs").json.keys() == {job["jobId"]}


def test_finished_jobs_expire_after_the_retention(jobs):
    app, service = jobs
    done = app.post_json("/api/v1/process", {"tag": "old"}).json["jobId"]
    wait_for(app, done)
    assert service.jobs.expire(time.time() + 10) == 0
    assert service.jobs.expire(time.time() + service.settings.jobs_retention + 1) == 1
    error_of(app.get(f"/api/v1/jobs/{done}/status", status=404))
    assert app.get("/api/v1/jobs").json == {}


def test_metrics_count_jobs_by_state(jobs):
    app, _ = jobs
    job_id = app.post_json("/api/v1/process", {"tag": "m", "fail": True}).json["jobId"]
    wait_for(app, job_id)
    text = app.get("/metrics").text
    assert 'pesto_jobs{state="ERROR"} 1.0' in text and 'pesto_jobs{state="PENDING"} 0.0' in text
    assert "pesto_jobs_waiting 0.0" in text


def test_a_full_queue_refuses_a_job_without_leaving_it_behind(store):
    with served("faulty", ("stateful",), slots=1, queue_size=0, **store) as (app, _):
        first = app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 1}).json["jobId"]
        response = app.post_json("/api/v1/process", {"mode": "ok"}, status=503)
        assert response.headers["Retry-After"] and "queue is full" in error_of(response)["message"]
        assert list(app.get("/api/v1/jobs").json) == [first]
        wait_for(app, first)


# -- the folder backend across restarts ------------------------------------------------------


def submission(body: dict) -> Submission:
    raw = json.dumps(body).encode()
    return Submission(body=raw, body_digest=hashlib.sha256(raw).hexdigest())


def test_a_restarted_service_answers_for_finished_jobs_and_runs_interrupted_ones(tmp_path):
    jobs = tmp_path / "jobs"
    with served("template", ("stateful",), jobs_dir=jobs) as (app, _):
        body = {"image": png_base64(RGB), "string_parameter": "x"}
        done = app.post_json("/api/v1/process", body).json["jobId"]
        wait_for(app, done)
    store = FolderJobs(jobs, retention=60, visibility_timeout=1, max_attempts=2)
    store.recover()
    waiting, _ = store.submit(submission({"image": png_base64(RGB), "string_parameter": "w"}), 10)
    interrupted, _ = store.submit(submission({"image": png_base64(RGB), "string_parameter": "i"}), 10)
    assert store.claim(0.1).job.id == waiting.id and store.claim(0.1).job.id == interrupted.id
    # the process dies here: both are RUNNING on disk, one attempt each
    with served("template", ("stateful",), jobs_dir=jobs) as (app, _):
        assert app.get(f"/api/v1/jobs/{done}/status").json["status"] == DONE
        results = app.get(f"/api/v1/jobs/{done}/results").json
        assert app.get(path_of(results["string_output"])).text == "X"
        for job_id, text in ((waiting.id, "W"), (interrupted.id, "I")):
            status = wait_for(app, job_id)
            assert (status["status"], status["attempts"]) == (DONE, 2)
            assert app.get(f"/api/v1/jobs/{job_id}/results/string_output").text == text


def test_a_job_interrupted_as_often_as_allowed_ends_error_naming_why(tmp_path):
    store = FolderJobs(tmp_path, retention=60, visibility_timeout=1, max_attempts=1)
    job, _ = store.submit(submission({"tag": "x"}), 10)
    assert store.claim(0.1).job.attempts == 1
    again = FolderJobs(tmp_path, retention=60, visibility_timeout=1, max_attempts=1)
    assert again.recover() == 0
    failed = again.get(job.id)
    assert failed.status == ERROR and "started 1 time(s) and never finished" in failed.error
    assert not (tmp_path / job.id / "input.json").exists()


def test_job_files_are_written_whole(tmp_path):
    store = FolderJobs(tmp_path, retention=60, visibility_timeout=1, max_attempts=1)
    job, created = store.submit(submission({"tag": "x"}), 10)
    assert created
    assert json.loads((tmp_path / job.id / "job.json").read_text())["status"] == PENDING
    assert json.loads((tmp_path / job.id / "input.json").read_text()) == {"tag": "x"}
    assert sorted(p.name for p in (tmp_path / job.id).iterdir()) == ["input.json", "job.json"]


# -- webhooks, settings, imports, OpenAPI ----------------------------------------------------


def test_webhook_retries_are_kept_in_the_store_and_survive_a_restart(store, tmp_path):
    port = free_port()  # nothing listens there yet: the first delivery fails
    hooks = f"http://127.0.0.1:{port}/hooks/"
    settings = {"webhook_allowlist": (hooks,), "webhook_secret": SECRET, "webhook_backoff": 0.2, **store}
    with served("jobs", **settings) as (app, _):
        job_id = app.post_json(
            "/api/v1/process", {"tag": "hook"}, headers={"X-Webhook-URL": hooks + "done"}
        ).json["jobId"]
        wait_for(app, job_id)
        deadline = time.monotonic() + 10
        while (delivery := app.get(f"/api/v1/jobs/{job_id}/status").json["webhook"])["state"] != "retrying":
            assert time.monotonic() < deadline, delivery
            time.sleep(0.05)
        assert "Connection refused" in delivery["lastError"] or "refused" in delivery["lastError"]
    with Receiver(failures=0, port=port) as receiver, served("jobs", **settings) as (app, _):
        deadline = time.monotonic() + 10
        while (delivery := app.get(f"/api/v1/jobs/{job_id}/status").json["webhook"])["state"] != "delivered":
            assert time.monotonic() < deadline, delivery
            time.sleep(0.05)
        assert delivery["attempts"] >= 2
        assert len(receiver.calls) == 1
        _, headers, body = receiver.calls[0]
        assert Webhook(SECRET).verify(body, headers)["data"]["jobId"] == job_id


def test_a_webhook_allowlist_without_a_secret_stops_the_service_at_start(tmp_path):
    allowlist = ("http://127.0.0.1:9/",)
    with (
        pytest.raises(PestoError, match="PESTO_WEBHOOK_SECRET"),
        served("jobs", jobs_dir=tmp_path, webhook_allowlist=allowlist),
    ):
        pass


def test_the_jobs_url_setting_names_a_folder_or_redis(tmp_path):
    env = {
        "PESTO_JOBS_URL": f"file://{tmp_path}/j",
        "PESTO_JOBS_RETENTION": "60",
        "PESTO_JOBS_MAX_ATTEMPTS": "5",
        "PESTO_JOBS_VISIBILITY_TIMEOUT": "7",
    }
    settings = Settings.from_env(env)
    assert settings.jobs_folder() == tmp_path / "j" and settings.jobs_store_url.startswith("file:")
    assert (settings.jobs_retention, settings.jobs_max_attempts) == (60, 5)
    assert settings.jobs_visibility_timeout == 7
    redis_settings = Settings.from_env(
        {
            "PESTO_JOBS_URL": "rediss://:pw@cache:6380/2",
            "PESTO_JOBS_DIR": "/ignored",
            "PESTO_JOBS_RESULTS_DIR": "/mnt/results",
            "PESTO_JOBS_INLINE_BYTES": "65536",
        }
    )
    assert redis_settings.jobs_store_url == "rediss://:pw@cache:6380/2"
    assert redis_settings.jobs_results_dir == Path("/mnt/results")
    assert redis_settings.jobs_inline_bytes == 65536
    assert Settings.from_env({"PESTO_JOBS_DIR": str(tmp_path)}).jobs_store_url == f"file://{tmp_path}"
    for bad in ("http://cache:6379", "redis://", "/var/lib/jobs"):
        with pytest.raises(PestoError, match="PESTO_JOBS_URL"):
            Settings.from_env({"PESTO_JOBS_URL": bad})


def test_a_folder_service_imports_neither_redis_nor_standardwebhooks(tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from serve_support import served\n"
        f"with served('jobs', jobs_dir=Path({str(tmp_path)!r})) as (app, _):\n"
        "    app.post_json('/api/v1/process', {'tag': 'a'})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'standardwebhooks')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_openapi_document_describes_cancel_progress_webhooks_and_pages(jobs, tmp_path):
    app, _ = jobs
    document = app.get("/api/v1/openapi.json").json
    post = document["paths"]["/api/v1/process"]["post"]
    assert {p["name"] for p in post["parameters"]} == {"Idempotency-Key", "X-Correlation-ID"}
    assert {"200", "202", "409"} <= set(post["responses"])
    listing = document["paths"]["/api/v1/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "cursor", "X-Correlation-ID"}
    delete = document["paths"]["/api/v1/jobs/{job_id}"]["delete"]
    assert "202" in delete["responses"] and "CANCELLED" in delete["description"]
    job = document["components"]["schemas"]["Job"]["properties"]
    assert "CANCELLED" in job["status"]["enum"] and job["progress"]["maximum"] == 100
    assert {"webhook", "cancelRequested", "correlationId", "attempts"} <= set(job)
    status = document["paths"]["/api/v1/jobs/{job_id}/status"]["get"]
    assert "X-Correlation-ID" in status["responses"]["200"]["headers"]
    hooks = ("http://127.0.0.1:9/hooks/",)
    with served("jobs", jobs_dir=tmp_path / "j", webhook_allowlist=hooks, webhook_secret=SECRET) as (
        with_hooks,
        _,
    ):
        post = with_hooks.get("/api/v1/openapi.json").json["paths"]["/api/v1/process"]["post"]
    header = next(p for p in post["parameters"] if p["name"] == "X-Webhook-URL")
    assert header["schema"]["pattern"] == "^(http://127\\.0\\.0\\.1:9/hooks/)"


# -- the Redis backend's queue, without HTTP ---------------------------------------------------


def redis_jobs(url: str, max_attempts: int = 3) -> RedisJobs:
    return RedisJobs(url, retention=60, visibility_timeout=0.3, max_attempts=max_attempts)


def test_a_stalled_job_runs_again_elsewhere_and_the_late_run_stores_nothing(redis_url):
    stalled, other = redis_jobs(redis_url), redis_jobs(redis_url)
    job, _ = stalled.submit(submission({"tag": "x"}), 10)
    slow = stalled.claim(1.0)  # its replica stops heartbeating
    assert other.claim(0.1) is None, "not before the visibility timeout"
    time.sleep(0.4)
    fast = other.claim(1.0)
    assert (fast.job.id, fast.job.attempts, fast.body) == (job.id, 2, slow.body)
    assert other.finish(fast, {"result": Result(b"second run", "text/plain")}).status == DONE
    assert stalled.finish(slow, {"result": Result(b"first run", "text/plain")}) is None
    stored = other.get(job.id)
    assert other.read(stored, stored.results["result"]).content == b"second run"
    assert other.counts() == {"PENDING": 0, "RUNNING": 0, "DONE": 1, "ERROR": 0, "CANCELLED": 0}
    assert other.client.xlen(other.queue) == 0, "the entry is acknowledged and deleted"
    assert other.client.exists(f"pesto:input:{job.id}") == 0, "the inputs go when the job ends"


def test_a_job_whose_runs_all_stall_ends_error_naming_why(redis_url):
    first, second, third = (redis_jobs(redis_url, max_attempts=2) for _ in range(3))
    job, _ = first.submit(submission({"tag": "x"}), 10)
    assert first.claim(1.0).job.attempts == 1
    time.sleep(0.4)
    assert second.claim(1.0).job.attempts == 2
    time.sleep(0.4)
    assert third.claim(1.0) is None
    failed = third.get(job.id)
    assert failed.status == ERROR and "started 2 time(s) and never finished" in failed.error


def test_the_access_line_carries_the_correlation_id():
    line = TextFormatter().access_line(0.0, "GET", "/api/v1/jobs", 200, 1.0, "req-1")
    assert line.endswith("GET /api/v1/jobs 200 1.0ms correlation_id=req-1")
    document = json.loads(JsonFormatter().access_line(0.0, "GET", "/x", 200, 1.0, "req-1"))
    assert document["correlation_id"] == "req-1"


def test_a_redis_refusing_writes_is_a_503_not_a_500(redis_url, redis_server):
    with served("jobs", jobs_url=redis_url) as (app, _), redis_server.client() as client:
        client.config_set("maxmemory", "1")  # full: under noeviction every write is refused
        try:
            response = app.post_json("/api/v1/process", {"tag": "full"}, status=503)
        finally:
            client.config_set("maxmemory", "0")
        assert response.headers["Retry-After"] and "refuses writes" in error_of(response)["message"]
        job_id = app.post_json("/api/v1/process", {"tag": "room"}, status=202).json["jobId"]
        assert wait_for(app, job_id)["status"] == DONE


@pytest.mark.parametrize("secret", ["not base64 at all!", "whsec_c2hvcnQ=", "whsec_"])
def test_a_webhook_secret_that_is_not_24_random_bytes_stops_the_service_at_start(tmp_path, secret):
    with (
        pytest.raises(PestoError, match="whsec_ followed by the base64 of 24"),
        served("jobs", jobs_dir=tmp_path, webhook_allowlist=("http://127.0.0.1:9/",), webhook_secret=secret),
    ):
        pass


def test_progress_reaches_a_keyword_process_and_a_stateless_one_gets_a_no_op(tmp_path):
    project = copy_project("jobs", tmp_path)
    (project / "algorithm" / "process.py").write_text(
        "from algorithm.input_output import Output\n\n\n"
        "class Process:\n"
        "    def process(self, tag, seconds=0.0, steps=0, size=0, fail=False, progress=None):\n"
        "        progress(50)\n"
        "        return Output(result=f'{tag}:{callable(progress)}')\n"
    )
    with served(project, jobs_dir=tmp_path / "jobs") as (app, service):
        assert service._process.takes_progress
        job_id = app.post_json("/api/v1/process", {"tag": "kw"}).json["jobId"]
        assert wait_for(app, job_id)["status"] == DONE
        assert app.get(f"/api/v1/jobs/{job_id}/results/result").text == "kw:True"
    description = project / "pesto" / "api" / "description.json"
    description.write_text(description.read_text().replace('"asynchronous": true', '"asynchronous": false'))
    with served(project) as (app, _):
        assert app.post_json("/api/v1/process", {"tag": "now"}).json == {"result": "now:True"}


# -- large results on a shared volume (Redis) ---------------------------------------------------


def test_results_over_the_inline_size_go_to_the_shared_volume(redis_url, redis_server, tmp_path):
    volume = tmp_path / "results"
    settings = {"jobs_url": redis_url, "jobs_results_dir": volume, "jobs_inline_bytes": 1000}
    with served("jobs", **settings) as (app, _), redis_server.client() as client:
        big = app.post_json("/api/v1/process", {"tag": "big", "size": 5000}).json["jobId"]
        small = app.post_json("/api/v1/process", {"tag": "small"}).json["jobId"]
        wait_for(app, big), wait_for(app, small)
        assert app.get(f"/api/v1/jobs/{big}/results/result").text == "x" * 5000
        assert app.get(f"/api/v1/jobs/{small}/results/result").text == "SMALL"
        assert [f.stat().st_size for f in (volume / big).iterdir()] == [5000]
        assert not (volume / small).exists()
        assert (client.hlen(f"pesto:result:{big}"), client.hlen(f"pesto:result:{small}")) == (0, 1)
        app.delete(f"/api/v1/jobs/{big}")
        assert not (volume / big).exists()
    with served("jobs", jobs_url=redis_url) as (app, _):  # a replica without the volume
        job_id = app.post_json("/api/v1/process", {"tag": "other", "size": 5000}).json["jobId"]
        wait_for(app, job_id)
        assert len(app.get(f"/api/v1/jobs/{job_id}/results/result").body) == 5000  # in Redis
    with served("jobs", jobs_url=redis_url, jobs_results_dir=volume, jobs_inline_bytes=10) as (app, _):
        job_id = app.post_json("/api/v1/process", {"tag": "far", "size": 50}).json["jobId"]
        wait_for(app, job_id)
    with served("jobs", jobs_url=redis_url) as (app, _):
        error = error_of(app.get(f"/api/v1/jobs/{job_id}/results/result", status=503))
        assert "PESTO_JOBS_RESULTS_DIR" in error["message"]


def test_a_late_run_removes_its_own_files_from_the_volume(redis_url, tmp_path):
    volume = ResultVolume(tmp_path, inline_bytes=0)
    stalled, other = (
        RedisJobs(redis_url, retention=60, visibility_timeout=0.3, max_attempts=3, volume=volume)
        for _ in range(2)
    )
    job, _ = stalled.submit(submission({"tag": "x"}), 10)
    slow = stalled.claim(1.0)
    time.sleep(0.4)
    fast = other.claim(1.0)
    assert other.finish(fast, {"result": Result(b"second", "text/plain")}).status == DONE
    assert stalled.finish(slow, {"result": Result(b"first", "text/plain")}) is None
    assert [f.read_bytes() for f in (tmp_path / job.id).iterdir()] == [b"second"]


def test_an_unwritable_results_volume_stops_the_service_at_start(redis_url, tmp_path):
    (tmp_path / "a-file").write_text("")
    with (
        pytest.raises(PestoError, match="PESTO_JOBS_RESULTS_DIR"),
        served("jobs", jobs_url=redis_url, jobs_results_dir=tmp_path / "a-file" / "results"),
    ):
        pass


def test_a_job_that_ends_while_a_delete_cancels_it_is_deleted(jobs, monkeypatch):
    app, service = jobs
    job_id = app.post_json("/api/v1/process", {"tag": "racing"}).json["jobId"]
    wait_for(app, job_id)
    as_read = dataclasses.replace(service.jobs.get(job_id), status=RUNNING)
    monkeypatch.setattr(service, "job", lambda _: as_read)  # the DELETE read it just before it ended
    assert service.delete_job(job_id)[1] is True
    assert service.jobs.get(job_id) is None
