"""`pesto-serve run` and `pesto-pack run PROJECT_DIR`: answers with no server, on this machine.

The template project (what `pesto-pack init` makes) answers its own test folders; payloads come
from files, strings, stdin, folders and allow-listed URLs; answers go to stdout, files, folders
and allow-listed URLs; exit codes say 0 done, 2 bad input, 1 process() failed, 3 no start; a
folder of 50 inputs with one broken runs through, and a second run does only what is missing.
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pesto_pack.folders import read_folder
from pesto_pack.plugins import default_registry
from run_support import (
    PESTO_PACK,
    PESTO_SERVE,
    answer_of,
    command,
    differences,
    expected_output,
    folder_of,
    make_template,
    options_sending_test_1,
)

PROJECTS = Path(__file__).parent / "projects"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_template(tmp_path_factory.mktemp("run") / "template", "run-template")


class Web:
    """A loopback HTTP server: GET answers `files`, POST bodies are kept in `posted`."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.posted: dict[str, bytes] = {}
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = web.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def do_POST(self):
                web.posted[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture(scope="session")
def web():
    server = Web()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def serve_run(*arguments, env: dict | None = None, stdin: str | None = None):
    return command(PESTO_SERVE, "run", *arguments, stdin=stdin, env={**os.environ, **(env or {})})


def test_pesto_serve_run_answers_each_test_folder_as_its_output(project, tmp_path):
    for number in (1, 2):
        out = tmp_path / f"answer_{number}"
        done = serve_run(project, folder_of(project, number) / "input", f"{out}/")

        assert done.returncode == 0, done.stderr
        assert "serving on" not in done.stderr  # no port opened
        assert sorted(p.name for p in out.iterdir()) == [
            "image.png",
            "mean.float",
            "stats.json",
            "summary.string",
        ]
        actual = read_folder(out, default_registry())
        assert differences(project, expected_output(project, number), actual) == {}


def test_pesto_pack_run_on_a_project_prints_the_answer_from_i_options(project):
    done = command(PESTO_PACK, "run", project, *options_sending_test_1(project))

    assert differences(project, expected_output(project, 1), answer_of(done)) == {}


def test_pesto_pack_run_o_writes_the_answer_as_a_test_folders_output(project, tmp_path):
    out = tmp_path / "test_3" / "output"
    done = command(PESTO_PACK, "run", project, "--input-dir", folder_of(project, 2), "-o", out)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert differences(project, expected_output(project, 2), read_folder(out, default_registry())) == {}


def test_payload_as_json_string_file_and_stdin_give_the_same_answer(project, tmp_path):
    text = json.dumps({"image": _png_base64(project), "gain": 1})
    (tmp_path / "request.json").write_text(text)

    answers = [
        answer_of(serve_run(project, text)),
        answer_of(serve_run(project, tmp_path / "request.json")),
        answer_of(serve_run(project, "-", stdin=text)),
    ]

    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["summary"] == "image: 16x16, 1 band(s), gain 1"


def test_a_payload_url_is_read_only_under_the_allow_list(project, web):
    web.files["/request.json"] = json.dumps({"image": _png_base64(project), "gain": 2}).encode()
    url = f"{web.url}/request.json"

    allowed = serve_run(project, url, env={"PESTO_URI_ALLOWLIST": f"{web.url}/"})
    refused = serve_run(project, url, env={"PESTO_URI_ALLOWLIST": ""})

    assert answer_of(allowed)["summary"].endswith("gain 2")
    assert refused.returncode == 2
    assert "PESTO_URI_ALLOWLIST" in refused.stderr and refused.stdout == ""


def test_the_answer_is_posted_to_an_allow_listed_url_only(project, web, tmp_path):
    inputs = folder_of(project, 2) / "input"
    posted = serve_run(
        project, inputs, f"{web.url}/answers/2", env={"PESTO_URI_ALLOWLIST": f"{web.url}/answers/"}
    )
    refused = serve_run(
        project, inputs, f"{web.url}/elsewhere", env={"PESTO_URI_ALLOWLIST": f"{web.url}/answers/"}
    )

    assert posted.returncode == 0, posted.stderr
    answer = json.loads(web.posted["/answers/2"])
    assert differences(project, expected_output(project, 2), answer) == {}
    assert refused.returncode == 2
    assert "refusing to POST the answer" in refused.stderr
    assert "/elsewhere" not in web.posted


def test_the_answer_goes_to_a_json_file(project, tmp_path):
    done = serve_run(project, folder_of(project, 2) / "input", tmp_path / "out" / "answer.json")

    assert done.returncode == 0, done.stderr
    answer = json.loads((tmp_path / "out" / "answer.json").read_text())
    assert differences(project, expected_output(project, 2), answer) == {}


@pytest.mark.parametrize(
    "arguments, field",
    [
        (["-i", "gain=loud"], "gain"),
        (['{"image": 3}'], "image"),
        (['{"image": "bm90IGFuIGltYWdl"}'], "image"),
        (["-i", "volume=3"], "volume"),
    ],
)
def test_bad_input_exits_2_naming_the_field(project, arguments, field):
    if arguments[0] == "-i" and not arguments[1].startswith("volume"):
        arguments = [str(folder_of(project, 2) / "input"), "-", *arguments]
    done = serve_run(project, *arguments)

    assert done.returncode == 2, done.stderr
    assert f"field '{field}'" in done.stderr
    assert done.stdout == ""


def test_process_failing_exits_1_and_on_start_failing_exits_3(tmp_path):
    failed = serve_run(PROJECTS / "faulty", '{"mode": "raise"}')
    not_started = serve_run(PROJECTS / "faulty", '{"mode": "ok"}', env={"FAULTY_ON_START": "raise"})
    done = serve_run(PROJECTS / "faulty", '{"mode": "ok"}')

    assert failed.returncode == 1
    assert "process() raised ValueError: the input asked for an error" in failed.stderr
    assert not_started.returncode == 3
    assert "on_start failed on purpose" in not_started.stderr
    assert done.returncode == 0 and json.loads(done.stdout)["result"] == "ok"


def test_a_stateful_project_answers_as_the_stateless_one(project):
    inputs = folder_of(project, 1) / "input"
    done = serve_run(project, inputs, "-", "-p", "stateful")

    assert differences(project, expected_output(project, 1), answer_of(done)) == {}


# -- a folder of inputs ---------------------------------------------------------------------------


@pytest.fixture
def fifty(project, tmp_path) -> Path:
    """50 test folders of the template's image, number 25 holding a file that is no image."""
    folder = tmp_path / "fifty"
    image = folder_of(project, 2) / "input" / "image.png"
    for index in range(1, 51):
        inputs = folder / f"tile_{index:02d}" / "input"
        inputs.mkdir(parents=True)
        shutil.copy(image, inputs / "image.png")
    (folder / "tile_25" / "input" / "image.png").write_bytes(b"not a png")
    return folder


def test_a_batch_goes_past_a_broken_item_and_a_second_run_does_only_what_is_missing(project, fifty, tmp_path):
    out = tmp_path / "answers"
    first = serve_run(project, "--input-dir", fifty, "--output-dir", out)

    assert first.returncode == 2, first.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 49 and "tile_25" not in written
    assert "tile_25: bad input: field 'image'" in first.stderr
    assert "ran 50 item(s)" in first.stderr and "49 done, 1 failed, 0 skipped" in first.stderr
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # no partial answer left
    expected = expected_output(project, 2)
    assert differences(project, expected, read_folder(out / "tile_49" / "output", default_registry())) == {}

    shutil.copy(folder_of(project, 2) / "input" / "image.png", fifty / "tile_25" / "input" / "image.png")
    shutil.rmtree(out / "tile_03")
    kept = out / "tile_04" / "output" / "image.png"
    kept_stamp = kept.stat().st_mtime_ns
    second = serve_run(project, "--input-dir", fifty, "--output-dir", out)

    assert second.returncode == 0, second.stderr
    assert "50 item(s) in" in second.stderr and "2 to run, 48 already answered" in second.stderr
    assert "ran 2 item(s)" in second.stderr and "2 done, 0 failed, 48 skipped" in second.stderr
    assert len(list(out.iterdir())) == 50
    assert kept.stat().st_mtime_ns == kept_stamp

    forced = serve_run(project, "--input-dir", fifty, "--output-dir", out, "--force")
    assert forced.returncode == 0 and "ran 50 item(s)" in forced.stderr
    assert kept.stat().st_mtime_ns != kept_stamp


def test_a_batch_logs_count_rate_and_time_left_when_not_on_a_terminal(project, fifty, tmp_path):
    shutil.rmtree(fifty / "tile_25")
    done = serve_run(project, "--input-dir", fifty, "--output-dir", tmp_path / "out")

    assert done.returncode == 0, done.stderr
    last = [line for line in done.stderr.splitlines() if "49/49" in line]
    assert last and "items/s, about" in last[0] and "left" in last[0]
    assert "\r" not in done.stderr  # no progress bar in a log


def test_each_file_of_a_folder_as_one_input_with_the_others_from_i(project, tmp_path):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(folder_of(project, 2) / "input" / "image.png", tiles / f"{name}.png")
    done = command(
        PESTO_PACK,
        "run",
        project,
        "--input-dir",
        tiles,
        "--each",
        "image",
        "-i",
        "gain=0.5",
        "--output-dir",
        tmp_path / "out",
    )

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a", "b", "c"]
    summary = (tmp_path / "out" / "b" / "summary.string").read_text()
    assert summary == "image: 16x16, 1 band(s), gain 0.5"


def _png_base64(project: Path) -> str:
    import base64

    return base64.b64encode((folder_of(project, 2) / "input" / "image.png").read_bytes()).decode()


def test_the_kubernetes_job_of_the_batch_page_is_a_valid_job_that_runs_a_folder():
    import kubernetes_validate
    import yaml

    page = (Path(__file__).parent.parent / "docs" / "batch.md").read_text()
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    job = yaml.safe_load(block)

    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == ["python", "-m", "pesto_serve", "run"]
    assert "--input-dir" in command and "--output-dir" in command


def test_sigterm_stops_a_batch_between_items_and_the_next_run_does_the_rest(tmp_path):
    inputs = tmp_path / "in"
    for index in range(20):
        folder = inputs / f"item_{index:02d}" / "input"
        folder.mkdir(parents=True)
        (folder / "mode.string").write_text("sleep")
        (folder / "seconds.float").write_text("0.1")
    out = tmp_path / "out"
    running = subprocess.Popen(
        [*PESTO_SERVE, "run", str(PROJECTS / "faulty"), "--input-dir", str(inputs), "--output-dir", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in running.stderr:
            if "20 to run" in line:
                break
        time.sleep(0.5)
        running.send_signal(signal.SIGTERM)
        rest = running.communicate(timeout=60)[1]
    finally:
        if running.poll() is None:
            running.kill()

    assert running.returncode == 130, rest
    assert "interrupted: the answers written so far are kept" in rest
    done = sorted(p.name for p in out.iterdir())
    assert 0 < len(done) < 20
    assert all((out / name / "output" / "result.string").read_text() == "sleep" for name in done)
    assert not list(out.rglob(".*"))  # no partial answer left behind

    again = serve_run(PROJECTS / "faulty", "--input-dir", inputs, "--output-dir", out)
    assert again.returncode == 0, again.stderr
    assert f"{20 - len(done)} to run, {len(done)} already answered" in again.stderr
    assert len(list(out.iterdir())) == 20


def test_an_image_url_is_opened_only_when_e_allows_it(project, web):
    web.files["/cat.png"] = (folder_of(project, 2) / "input" / "image.png").read_bytes()
    url = f"{web.url}/cat.png"

    allowed = command(
        PESTO_PACK, "run", project, "-i", f"image={url}", "-e", f"PESTO_URI_ALLOWLIST={web.url}/"
    )
    refused = command(
        PESTO_PACK, "run", project, "-i", f"image={url}", env={**os.environ, "PESTO_URI_ALLOWLIST": ""}
    )

    assert differences(project, expected_output(project, 2), answer_of(allowed)) == {}
    assert refused.returncode == 2
    assert "field 'image': refusing to open" in refused.stderr
