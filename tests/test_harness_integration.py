"""The plugin against real images that `pesto-pack build` makes, on the real engine.

Stateless and stateful images answer the same test folders; a service whose `on_start()`
fails is a clear error with nothing left running; the project `pesto-pack init` makes passes
out of the box, as `pytest --pesto-image` in its folder and as `pesto-pack test` runs it.
"""

import json
import shutil
import subprocess
import sys

import pytest

from build_support import PESTO_PACK, build
from pesto_pack.project_tests import run_project_tests
from pytest_plugin_helpers import PROJECTS, every_file_type, make_folder, same

pytestmark = [pytest.mark.engine, pytest.mark.slow]
pytest_plugins = ["pytester"]


def containers_of(engine, tag: str) -> list[str]:
    return [
        container.name
        for container in engine.containers.list(all=True, filters={"label": "org.pesto.test=true"})
        if container.attrs["Config"]["Image"].endswith(tag)
    ]


@pytest.fixture(scope="module")
def mirror_images(engine, base_image) -> dict[str, str]:
    return {"stateless": build(PROJECTS / "mirror"), "stateful": build(PROJECTS / "mirror", "stateful")}


@pytest.mark.parametrize("kind", ["stateless", "stateful"])
def test_built_images_answer_every_file_type_and_report_differences(pytester, engine, mirror_images, kind):
    make_folder(pytester.path, "test_every_type", *same(every_file_type()))
    make_folder(pytester.path, "test_differs", {"count.int": "1"}, {"count.int": "2"})

    result = pytester.runpytest(f"--pesto-image={mirror_images[kind]}", "-v")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_every_type PASSED*", "  count: expected 2, got 1"])
    assert containers_of(engine, mirror_images[kind]) == []


def test_an_image_whose_on_start_fails_is_an_error_with_its_log_and_nothing_runs_on(
    pytester, engine, base_image
):
    tag = build(PROJECTS / "faulty")
    make_folder(pytester.path, "test_1", {"mode.string": "ok"}, {"result.string": "ok"})

    result = pytester.runpytest(f"--pesto-image={tag}", "--pesto-env=FAULTY_ON_START=raise")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"{tag} did not start: the container * exited with code *", "*on_start failed on purpose*"]
    )
    assert containers_of(engine, tag) == []


def test_the_project_that_init_makes_passes_out_of_the_box(tmp_path, engine, base_image):
    project = tmp_path / "fresh"
    subprocess.run([str(PESTO_PACK), "init", str(project), "--no-input"], check=True, capture_output=True)
    tag = build(project)

    as_a_user = subprocess.run(
        [sys.executable, "-m", "pytest", f"--pesto-image={tag}", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results_path = tmp_path / "results.json"
    status = run_project_tests(project, [], tag, results_path)

    assert as_a_user.returncode == 0, as_a_user.stdout[-3000:]
    assert status == 0
    results = json.loads(results_path.read_text())
    assert set(results) >= {"describe", "test_1"}
    assert all(entry == {"NoDifference": True} for entry in results.values())
    assert containers_of(engine, tag) == []


def test_pesto_pack_test_passes_the_template_projects_folders_and_writes_results(
    tmp_path, engine, base_image
):
    project = tmp_path / "template"
    shutil.copytree(PROJECTS / "template", project)
    tag = build(project)

    status = run_project_tests(project, [], tag, tmp_path / "results.json")

    assert status == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == {
        "describe": {"NoDifference": True},
        "test_1": {"NoDifference": True},
        "test_2": {"NoDifference": True},
    }
