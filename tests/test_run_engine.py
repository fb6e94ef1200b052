"""`pesto-pack run IMAGE`: one request through a container, a batch in a container, on the engine.

One template image (and its stateful profile) is built for the module. Every run must leave no
container behind, whether it ends well, badly, or by Ctrl-C / SIGTERM.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from build_support import build
from pesto_pack.folders import read_folder
from pesto_pack.plugins import default_registry
from run_support import (
    PESTO_PACK,
    answer_of,
    command,
    differences,
    expected_output,
    folder_of,
    make_template,
    options_sending_test_1,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]
RUN_LABEL = "org.pesto.run=true"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_template(tmp_path_factory.mktemp("run-engine") / "template", "pesto-run-test")


@pytest.fixture(scope="module")
def image(project, base_image) -> str:
    return build(project)


def run_containers(engine) -> list[str]:
    """Names of the containers `pesto-pack run` started that still exist."""
    return [c.name for c in engine.containers.list(all=True, filters={"label": RUN_LABEL})]


def items(project: Path, folder: Path, count: int, broken: int | None = None) -> Path:
    image = folder_of(project, 2) / "input" / "image.png"
    for index in range(1, count + 1):
        inputs = folder / f"item_{index:02d}" / "input"
        inputs.mkdir(parents=True)
        shutil.copy(image, inputs / "image.png")
    if broken is not None:
        (folder / f"item_{broken:02d}" / "input" / "image.png").write_bytes(b"not a png")
    return folder


def test_one_request_against_the_image_answers_its_test_folder(project, image, engine):
    done = command(PESTO_PACK, "run", image, *options_sending_test_1(project))

    assert differences(project, expected_output(project, 1), answer_of(done)) == {}
    assert run_containers(engine) == []


def test_a_stateful_image_is_followed_through_its_job(project, image, engine):
    stateful = build(project, "stateful")
    done = command(PESTO_PACK, "run", stateful, "--input-dir", folder_of(project, 1))

    assert differences(project, expected_output(project, 1), answer_of(done)) == {}
    assert run_containers(engine) == []


def test_o_makes_a_new_test_folder_that_pytest_passes(project, image, engine):
    new = folder_of(project, 3)
    shutil.copytree(folder_of(project, 2) / "input", new / "input")
    written = command(PESTO_PACK, "run", image, "--input-dir", new / "input", "-o", new / "output")

    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in (new / "output").iterdir()) == [
        "image.png",
        "mean.float",
        "stats.json",
        "summary.string",
    ]
    tested = command(
        sys.executable,
        "-m",
        "pytest",
        f"--pesto-image={image}",
        "pesto/tests/resources/test_3",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=project,
    )
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "1 passed" in tested.stdout
    assert run_containers(engine) == []


def test_bad_input_is_the_services_error_naming_the_field_and_exit_2(project, image, engine):
    not_an_image = project / "requirements.txt"
    refused = command(PESTO_PACK, "run", image, "-i", f"image=@{not_an_image}")
    mistyped = command(PESTO_PACK, "run", image, "--input-dir", folder_of(project, 2), "-i", "gain=loud")

    assert refused.returncode == 2, refused.stderr
    assert "answered 400: field 'image': not a decodable image" in refused.stderr
    assert refused.stdout == ""
    assert mistyped.returncode == 2 and "field 'gain': 'loud' is not a JSON number" in mistyped.stderr
    assert run_containers(engine) == []


def test_e_sets_the_containers_environment(project, image, engine):
    inputs = folder_of(project, 2) / "input"
    refused = command(PESTO_PACK, "run", image, "--input-dir", inputs, "-e", "PESTO_MAX_IMAGE_PIXELS=10")
    batch = command(
        PESTO_PACK,
        "run",
        image,
        "--input-dir",
        folder_of(project, 2).parent,
        "--output-dir",
        project.parent / "json-log",
        "-e",
        "PESTO_LOG_FORMAT=json",
    )

    assert refused.returncode == 2 and "field 'image'" in refused.stderr and "10" in refused.stderr
    assert batch.returncode == 0, batch.stderr
    lines = [json.loads(line) for line in batch.stderr.splitlines() if line.startswith("{")]
    summary = [line for line in lines if line["message"].startswith("ran ")]
    assert summary and summary[0]["logger"] == "pesto_serve.batch"
    assert "0 failed" in summary[0]["message"]
    assert run_containers(engine) == []


def test_a_batch_in_a_container_writes_as_the_caller_and_goes_past_a_broken_item(
    project, image, engine, tmp_path
):
    inputs = items(project, tmp_path / "in", 6, broken=3)
    before = sorted(str(p.relative_to(inputs)) for p in inputs.rglob("*"))
    out = tmp_path / "out"
    first = command(PESTO_PACK, "run", image, "--input-dir", inputs, "--output-dir", out)

    assert first.returncode == 2, first.stderr
    assert "item_03: bad input: field 'image'" in first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["item_01", "item_02", "item_04", "item_05", "item_06"]
    answer = read_folder(out / "item_05" / "output", default_registry())
    assert differences(project, expected_output(project, 2), answer) == {}
    # The image's user is uid 10001: the answers are the caller's all the same.
    assert {p.stat().st_uid for p in out.rglob("*")} == {os.getuid()}
    assert sorted(str(p.relative_to(inputs)) for p in inputs.rglob("*")) == before

    shutil.copy(folder_of(project, 2) / "input" / "image.png", inputs / "item_03" / "input" / "image.png")
    second = command(PESTO_PACK, "run", image, "--input-dir", inputs, "--output-dir", out)

    assert second.returncode == 0, second.stderr
    assert "1 to run, 5 already answered" in second.stderr
    assert len(list(out.iterdir())) == 6
    assert run_containers(engine) == []


def test_a_batch_with_the_same_input_and_output_folder_fills_in_each_test_folders_output(
    project, image, engine, tmp_path
):
    resources = tmp_path / "resources"
    shutil.copytree(project / "pesto" / "tests" / "resources", resources)
    for number in (1, 2):
        shutil.rmtree(resources / f"test_{number}" / "output")
    done = command(PESTO_PACK, "run", image, "--input-dir", resources, "--output-dir", resources)

    assert done.returncode == 0, done.stderr
    for number in (1, 2):
        answer = read_folder(resources / f"test_{number}" / "output", default_registry())
        assert differences(project, expected_output(project, number), answer) == {}
    assert run_containers(engine) == []


@pytest.mark.parametrize("how", ["batch, Ctrl-C", "one request, SIGTERM"])
def test_the_container_is_removed_when_the_run_is_interrupted(project, image, engine, tmp_path, how):
    if how.startswith("batch"):
        arguments = ["--input-dir", items(project, tmp_path / "in", 50), "--output-dir", tmp_path / "out"]
        signum = signal.SIGINT
    else:
        arguments = ["--input-dir", folder_of(project, 2)]
        signum = signal.SIGTERM
    running = subprocess.Popen(
        [*PESTO_PACK, "run", image, *map(str, arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = _wait_for_a_run_container(engine, running)
        running.send_signal(signum)
        _, stderr = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()

    assert running.returncode == 130, stderr
    assert "interrupted" in stderr
    assert seen not in run_containers(engine)
    assert run_containers(engine) == []
    if how.startswith("batch"):  # stopped between two items: no half-written answer
        assert not list((tmp_path / "out").rglob(".*"))


def _wait_for_a_run_container(engine, running: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = run_containers(engine)
        if names:
            return names[0]
        if running.poll() is not None:
            pytest.fail(f"pesto-pack run ended before its container was seen: {running.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("no container of pesto-pack run appeared within 60 s")


def test_a_missing_image_says_how_to_build_it(engine):
    done = command(PESTO_PACK, "run", "pesto-no-such-image:0.0", "-i", "image=x")

    assert done.returncode == 1
    assert "is not in the container engine" in done.stderr and "pesto-pack build" in done.stderr
    assert json.dumps(run_containers(engine)) == "[]"
