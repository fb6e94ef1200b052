"""The real server: `pesto-serve` and `python -m pesto_serve` in a subprocess, spoken to over HTTP.

Each test starts waitress on a free loopback port and polls /ready; none sleeps a fixed time.
"""

import io
import json
import signal
import socket
import sys
import time

import numpy as np
import pytest
import requests
from PIL import Image

from images_support import RGB_CHANNELS_FIRST as RGB
from images_support import decode_png as decode
from images_support import png_base64
from pesto_pack.plugins import default_registry
from pesto_pack.project import load
from pesto_pack.types.base import Tolerance
from pesto_serve.server import EXIT_START_FAILED
from serve_support import PROJECTS, copy_project
from subprocess_support import PESTO_SERVE, START_TIMEOUT, free_port, pesto_serve, running


def test_pesto_serve_answers_a_real_image_over_http(tmp_path):
    with running(pesto_serve("template"), tmp_path) as server:
        assert server.get("/api/v1/health").text == "OK"
        answer = server.post("/api/v1/process", json={"image": png_base64(RGB), "integer_parameter": 1})
        assert answer.status_code == 200, answer.text
        assert (decode(answer.json()["image"]) == 255 - RGB).all()
        assert answer.json()["integer_output"] == 2
        describe = server.get("/api/v1/describe").json()
        assert describe["_links"]["self"]["href"] == f"{server.url}/api/v1/describe"
        error = server.post("/api/v1/process", json={"image": "file:///etc/passwd"})
        assert error.status_code == 400 and error.json()["error"]["field"] == "image"
    assert "POST /api/v1/process 200" in server.log_text()


def test_pesto_serve_runs_stateful_jobs_with_a_real_image(tmp_path):
    with running(pesto_serve("template", "-p", "stateful"), tmp_path) as server:
        submitted = server.post("/api/v1/process", json={"image": png_base64(RGB)})
        assert submitted.status_code == 202, submitted.text
        status_url = submitted.headers["Location"]
        assert status_url.startswith(server.url)
        deadline = time.monotonic() + 10
        while (status := requests.get(status_url, timeout=10).json())["status"] not in ("DONE", "ERROR"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert status["status"] == "DONE", status
        results = requests.get(status["link"], timeout=10).json()
        image = requests.get(results["image"], timeout=10)
        assert image.headers["Content-Type"] == "image/png"
        assert (np.asarray(Image.open(io.BytesIO(image.content))).transpose(2, 0, 1) == 255 - RGB).all()
        assert len(results["image_list"]) == 2
    assert any((tmp_path / "jobs").glob("*/results/*"))


def test_pesto_serve_answers_the_template_test_folders(tmp_path):
    registry = default_registry()
    project = load(PROJECTS / "template")
    folders = sorted(project.tests_dir.glob("test_*"))
    assert len(folders) == 2
    with running(pesto_serve("template"), tmp_path) as server:
        describe = server.get("/api/v1/describe").json()
        inputs, outputs = describe["input"]["properties"], describe["output"]["properties"]
        for folder in folders:
            payload = {
                path.stem: registry.type_for_property(inputs[path.stem]).read_file(path)
                for path in (folder / "input").iterdir()
            }
            answer = server.post("/api/v1/process", json=payload).json()
            expected_files = {path.name.split(".")[0]: path for path in (folder / "output").iterdir()}
            assert set(answer) == set(expected_files), folder.name
            for key, path in expected_files.items():
                payload_type = registry.type_for_property(outputs[key])
                differences = payload_type.compare(payload_type.read_file(path), answer[key], Tolerance())
                assert differences == [], f"{folder.name}/{key}: {differences}"


def test_python_m_pesto_serve_reads_the_environment_and_etc_pesto(tmp_path):
    config_dir = tmp_path / "etc-pesto"
    load(PROJECTS / "echo").api.write(config_dir)
    port = free_port()
    env = {
        "PESTO_PROJECT_DIR": str(PROJECTS / "echo"),
        "PESTO_CONFIG_DIR": str(config_dir),
        "PESTO_HOST": "127.0.0.1",
        "PESTO_PORT": str(port),
        "PESTO_LOG_FORMAT": "json",
    }
    with running([sys.executable, "-m", "pesto_serve"], tmp_path, env, port=port) as server:
        answer = server.post("/api/v1/process", json={"text": "in image"}).json()
        assert answer == {"text": "in image", "number": 0.0}
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    request = next(line for line in lines if line.get("path") == "/api/v1/process")
    assert (request["method"], request["status"], request["level"]) == ("POST", 200, "INFO")
    assert request["duration_ms"] >= 0 and request["message"].startswith("POST /api/v1/process 200")


def test_a_body_over_the_limit_is_a_json_413_from_the_real_server(tmp_path):
    with running(pesto_serve("echo"), tmp_path, {"PESTO_MAX_BODY_BYTES": "1000"}) as server:
        response = server.post("/api/v1/process", json={"text": "x" * 5000})
        assert response.status_code == 413
        assert response.json()["error"]["status"] == 413
        assert server.post("/api/v1/process", json={"text": "small"}).status_code == 200


def test_health_answers_while_on_start_runs_and_ready_after(tmp_path):
    with running(pesto_serve("faulty"), tmp_path, {"FAULTY_ON_START": "sleep:1.5"}, ready=False) as server:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                health = server.get("/api/v1/health")
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert health.text == "OK"
        assert server.get("/api/v1/ready").status_code == 503
        assert server.post("/api/v1/process", json={"mode": "ok"}).status_code == 503
        server.wait_until_ready()
        assert server.post("/api/v1/process", json={"mode": "ok"}).json()["result"] == "ok"


def test_on_start_failing_exits_non_zero_with_the_error_logged(tmp_path):
    with running(pesto_serve("faulty"), tmp_path, {"FAULTY_ON_START": "raise"}, ready=False) as server:
        status = server.exit_status()
    assert status != 0
    log = server.log_text()
    assert "the service cannot start: Process.on_start() raised RuntimeError" in log
    assert "on_start failed on purpose" in log and "Traceback" in log


def test_a_project_that_cannot_load_exits_non_zero_saying_why(tmp_path):
    with running([str(PESTO_SERVE), str(tmp_path)], tmp_path, ready=False) as server:
        assert server.exit_status() != 0
    assert "is not a PESTO project" in server.log_text()


def _broken_echo(tmp_path, file_name: str, content: dict):
    project = copy_project("echo", tmp_path)
    (project / "pesto" / "api" / file_name).write_text(json.dumps(content))
    return project


@pytest.mark.parametrize(
    ("api_file", "content", "message"),
    [
        (
            "config_schema.json",
            {"type": "object", "required": ["mode"]},
            "pesto/api/config.json does not match config_schema.json at $: 'mode' is a required property",
        ),
        (
            "input_schema.json",
            {"text": {"type": "dictionary"}},
            "input_schema.json (with the definitions and user_definitions.json) is not a valid JSON schema",
        ),
    ],
    ids=["config breaks its schema", "input schema jsonschema refuses"],
)
def test_a_broken_api_file_stops_the_start_with_the_loads_message(tmp_path, api_file, content, message):
    # Checked in the start thread (after the port opened, jsonschema being a third of a
    # start): the service exits as when on_start() fails, with the load's own message.
    project = _broken_echo(tmp_path, api_file, content)
    with running([str(PESTO_SERVE), str(project)], tmp_path, ready=False) as server:
        assert server.exit_status() == EXIT_START_FAILED
    assert f"the service cannot start: {message}" in server.log_text()


def test_python_m_pesto_serve_names_etc_pesto_when_its_config_breaks_its_schema(tmp_path):
    config_dir = tmp_path / "etc-pesto"
    load(PROJECTS / "echo").api.write(config_dir)
    (config_dir / "config.json").write_text(json.dumps({"mode": 1}))
    (config_dir / "config_schema.json").write_text(json.dumps({"properties": {"mode": {"type": "string"}}}))
    port = free_port()
    env = {
        "PESTO_PROJECT_DIR": str(PROJECTS / "echo"),
        "PESTO_CONFIG_DIR": str(config_dir),
        "PESTO_HOST": "127.0.0.1",
        "PESTO_PORT": str(port),
    }
    with running([sys.executable, "-m", "pesto_serve"], tmp_path, env, ready=False, port=port) as server:
        assert server.exit_status() == EXIT_START_FAILED
    assert (
        f"the service cannot start: {config_dir}/config.json does not match "
        "config_schema.json at $.mode: 1 is not of type 'string'"
    ) in server.log_text()


def test_sigterm_finishes_running_requests_then_exits_zero(tmp_path):
    with running(pesto_serve("faulty"), tmp_path, {"PESTO_GRACE_PERIOD": "10"}) as server:
        answers = []
        request = server.sleeping_request(1.0, answers)
        server.process.send_signal(signal.SIGTERM)
        assert server.exit_status() == 0
        request.join(10)
    assert answers[0].status_code == 200 and answers[0].json()["result"] == "sleep"
    with pytest.raises(requests.ConnectionError):
        server.get("/api/v1/health")
    assert "all requests answered" in server.log_text()


def test_sigterm_gives_up_after_the_grace_period(tmp_path):
    with running(pesto_serve("faulty"), tmp_path, {"PESTO_GRACE_PERIOD": "0.2"}) as server:
        answers = []
        request = server.sleeping_request(30, answers)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.exit_status() == 0
        assert time.monotonic() - started < 10
        request.join(10)
    assert isinstance(answers[0], requests.ConnectionError), answers
    assert "still running are dropped" in server.log_text()


def test_a_request_past_the_queue_is_refused_before_its_body_is_parsed(tmp_path):
    """The 503 comes from waitress's I/O thread once the body has arrived: a body that is not
    even JSON gets the 503, not a 400, while the one slot is taken and the queue is 0."""
    env = {"PESTO_QUEUE_SIZE": "0"}
    with running(pesto_serve("faulty"), tmp_path, env) as server:
        answers = []
        busy = server.sleeping_request(2.0, answers)
        began = time.monotonic()
        refused = server.post(
            "/api/v1/process", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert time.monotonic() - began < 1.0
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.headers["Content-Type"] == "application/json"
        assert "the service is busy" in refused.json()["error"]["message"]
        busy.join(10)
        assert answers[0].status_code == 200
        assert server.post("/api/v1/process", data=b"{not json").status_code == 400  # free again
        metrics = server.get("/metrics").text
    assert 'pesto_http_requests_total{method="POST",route="/api/v1/process",status="503"} 1.0' in metrics
    assert "POST /api/v1/process 503" in server.log_text()


def test_waitress_own_refusals_are_in_the_json_error_shape(tmp_path):
    """Refused by waitress before the app sees them (issue 13): headers too large (431), an
    unknown Transfer-Encoding (501), a Content-Length that is not a number (400)."""
    # Exactly waitress's header limit (256 KiB): it answers once it has read that much, and
    # closes; bytes sent past it would be left unread, and the close would reset the connection
    # before the client reads the answer.
    big_start = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: "
    cases = [
        (big_start + b"a" * (256 * 1024 - len(big_start)), 431, "headers are too large"),
        (
            b"POST /api/v1/process HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "Transfer-Encoding",
        ),
        (b"POST /api/v1/process HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400, "not a number"),
    ]
    with running(pesto_serve("echo"), tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        for raw, status, words in cases:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(raw)
                answer = sock.makefile("rb").read()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split()[1] == str(status).encode(), head
            assert b"Content-Type: application/json" in head
            error = json.loads(body)["error"]
            assert error["status"] == status and words in error["message"], error
        assert server.get("/api/v1/health").status_code == 200
