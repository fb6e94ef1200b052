"""Stateful mode: jobs answered at once, polled, their results fetched, kept across restarts."""

import io
import json
import re
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from pesto_serve.jobs import ERROR, INTERRUPTED, PENDING, RUNNING, JobStore
from serve_support import error_of, served
from images_support import RGB_CHANNELS_FIRST as RGB
from images_support import png_base64


def path_of(url: str) -> str:
    return urlsplit(url).path


def wait_for(app, job_id: str, states=("DONE", "ERROR"), timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = app.get(f"/api/v1/jobs/{job_id}/status").json
        if status["status"] in states:
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status['status']} after {timeout} s"
        time.sleep(0.01)


@pytest.fixture
def template(tmp_path):
    with served("template", ("stateful",), jobs_dir=tmp_path / "jobs") as served_app:
        yield served_app


@pytest.fixture
def faulty(tmp_path):
    with served("faulty", ("stateful",), jobs_dir=tmp_path / "jobs") as served_app:
        yield served_app


def test_process_answers_at_once_with_the_job_and_its_links(template):
    app, _ = template
    response = app.post_json(
        "/api/v1/process", {"image": png_base64(RGB)}, status=202,
        extra_environ={"HTTP_HOST": "jobs.example:7000"},
    )
    job = response.json
    status_url = f"http://jobs.example:7000/api/v1/jobs/{job['jobId']}/status"
    assert response.headers["Location"] == status_url
    assert job["status"] == PENDING and job["error"] is None
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
    assert status["status"] == "DONE" and status["error"] is None
    assert path_of(status["link"]) == f"/api/v1/jobs/{job_id}/results"
    results = app.get(f"/api/v1/jobs/{job_id}/results").json
    assert set(results) == {
        "image", "areas", "number_output", "integer_output", "dict_output", "string_output",
        "image_list", "geojson",
    }
    assert path_of(results["image"]) == f"/api/v1/jobs/{job_id}/results/image"
    assert [path_of(url) for url in results["image_list"]] == [
        f"/api/v1/jobs/{job_id}/results/image_list/0", f"/api/v1/jobs/{job_id}/results/image_list/1"
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
    assert listed[job_id]["status"] in ("PENDING", "RUNNING", "DONE")


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
    job_id = app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 2}).json["jobId"]
    error = error_of(app.get(f"/api/v1/jobs/{job_id}/results", status=409))
    assert re.search(r"is (PENDING|RUNNING)", error["message"])
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/result", status=409))
    wait_for(app, job_id)
    assert app.get(f"/api/v1/jobs/{job_id}/results/result").text == "sleep"


@pytest.mark.parametrize("route", ["status", "results", "results/image"])
def test_an_unknown_job_is_404(template, route):
    app, _ = template
    error = error_of(app.get(f"/api/v1/jobs/{'x' * 22}/{route}", status=404))
    assert "no job" in error["message"]
    error_of(app.get(f"/api/v1/jobs/..%2F..%2Fetc/{route}", status=404))


def test_an_unknown_result_key_or_index_is_404(template):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    wait_for(app, job_id)
    error = error_of(app.get(f"/api/v1/jobs/{job_id}/results/nothing", status=404))
    assert error["field"] == "nothing" and "its results: image, areas" in error["message"]
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/image_list/2", status=404))
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/image/0", status=404))


def test_delete_removes_a_job_and_its_files(template, tmp_path):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    wait_for(app, job_id)
    assert (tmp_path / "jobs" / job_id).is_dir()
    assert app.delete(f"/api/v1/jobs/{job_id}").json == {"jobId": job_id, "deleted": True}
    assert not (tmp_path / "jobs" / job_id).exists()
    error_of(app.get(f"/api/v1/jobs/{job_id}/status", status=404))
    error_of(app.delete(f"/api/v1/jobs/{job_id}", status=404))


def test_delete_removes_one_result(template):
    app, _ = template
    job_id = app.post_json("/api/v1/process", {"image": png_base64(RGB)}).json["jobId"]
    wait_for(app, job_id)
    app.delete(f"/api/v1/jobs/{job_id}/results/image_list")
    assert "image_list" not in app.get(f"/api/v1/jobs/{job_id}/results").json
    error_of(app.get(f"/api/v1/jobs/{job_id}/results/image_list/0", status=404))


def test_a_running_job_cannot_be_deleted_but_a_waiting_one_is_cancelled(tmp_path):
    with served("faulty", ("stateful",), jobs_dir=tmp_path / "jobs", slots=1) as (app, service):
        running = app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 2}).json["jobId"]
        waiting = app.post_json("/api/v1/process", {"mode": "ok"}).json["jobId"]
        wait_for(app, running, states=(RUNNING,))
        assert "is running" in error_of(app.delete(f"/api/v1/jobs/{running}", status=409))["message"]
        app.delete(f"/api/v1/jobs/{waiting}")
        assert wait_for(app, running)["status"] == "DONE"
        assert service.jobs.get(waiting) is None


def test_a_restarted_service_answers_for_finished_jobs_and_marks_interrupted_ones(tmp_path):
    jobs = tmp_path / "jobs"
    with served("template", ("stateful",), jobs_dir=jobs) as (app, _):
        body = {"image": png_base64(RGB), "string_parameter": "x"}
        done = app.post_json("/api/v1/process", body).json["jobId"]
        wait_for(app, done)
    store = JobStore(jobs)
    store.recover()
    interrupted = store.create().id
    with served("template", ("stateful",), jobs_dir=jobs) as (app, _):
        assert app.get(f"/api/v1/jobs/{done}/status").json["status"] == "DONE"
        results = app.get(f"/api/v1/jobs/{done}/results").json
        assert app.get(path_of(results["string_output"])).text == "X"
        status = app.get(f"/api/v1/jobs/{interrupted}/status").json
        assert (status["status"], status["error"]) == (ERROR, INTERRUPTED)


def test_job_files_are_written_whole(tmp_path):
    store = JobStore(tmp_path)
    job = store.create()
    assert json.loads((tmp_path / job.id / "job.json").read_text())["status"] == PENDING
    assert [p.name for p in (tmp_path / job.id).iterdir()] == ["job.json"]  # no temporary left


def test_a_full_queue_refuses_a_job_without_leaving_it_behind(tmp_path):
    with served("faulty", ("stateful",), jobs_dir=tmp_path / "jobs", slots=1, queue_size=0) as (app, _):
        first = app.post_json("/api/v1/process", {"mode": "sleep", "seconds": 2}).json["jobId"]
        response = app.post_json("/api/v1/process", {"mode": "ok"}, status=503)
        assert response.headers["Retry-After"]
        assert list(app.get("/api/v1/jobs").json) == [first]
        wait_for(app, first)
