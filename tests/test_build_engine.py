"""`pesto-pack build` against the real engine: images that run and answer over HTTP.

Nothing about the engine is faked. Each module run builds under a unique image name, so
parallel runs do not collide, and removes its containers and images at the end.
"""

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.errors import ImageNotFound, NotFound

from build_support import http, running
from pesto_pack.build import BuildError, build, labels, wheels
from pesto_pack.build.cache import cache_folder
from pesto_pack.build.engine_build import CACHED, STEP

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SAMPLE = Path(__file__).parent / "projects" / "resourceful"
NAME = f"resourceful-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def workspace_base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pesto-workspace")


@pytest.fixture(scope="module")
def runtime_wheel(workspace_base: Path) -> Path:
    """One runtime wheel for the module, so that edits to the toolkit made meanwhile (by
    whoever works in this checkout) cannot change what a rebuild finds in the cache."""
    return wheels.runtime_wheel(cache_folder(workspace_base / "n" / "v"))


@pytest.fixture(scope="module")
def project(tmp_path_factory, workspace_base: Path) -> Path:
    root = tmp_path_factory.mktemp("project") / NAME
    shutil.copytree(SAMPLE, root)
    build_file = root / "pesto" / "build" / "build.json"
    settings = json.loads(build_file.read_text())
    build_file.write_text(json.dumps({**settings, "name": NAME, "workspace": str(workspace_base)}))
    return root


@pytest.fixture(scope="module")
def builder(engine, base_image, project: Path, runtime_wheel: Path):
    """Builds `project` and removes every image it built (and what they were built from)."""
    built: list = []

    def build_image(profiles=(), root: Path = project, **options):
        lines: list[str] = []
        options = {"base_image": base_image, "runtime_wheel": runtime_wheel, **options}
        result = build(root, profiles, client=engine, log=lines.append, **options)
        built.append(result)
        return result, lines

    try:
        yield build_image
    finally:
        for reference in [b.tag for b in built] + [b.dependencies_tag for b in built]:
            try:
                engine.api.remove_image(reference, force=True, noprune=False)
            except (ImageNotFound, NotFound):
                pass


def process(url: str) -> dict:
    status, _, body = http(url, "POST", "/api/v1/process", {"text": "hello", "count": 1234567})
    assert status == 200, body
    return json.loads(body)


EXPECTED = {"text": "HELLO! (from a resource) (and a wheel)", "count": "1,234,567", "style": "loud and clear"}


def test_default_profile_image_answers_over_http(engine, builder):
    result, lines = builder()
    assert result.tag == f"{NAME}:1.0.0" and result.dependencies_built
    image = engine.images.get(result.tag)
    assert image.labels[labels.NAME] == NAME and image.labels[labels.PROFILES] == ""
    assert image.labels[labels.DEPENDENCIES] == result.dependencies_tag
    assert image.attrs["Config"]["User"] == "pesto"
    assert "8080/tcp" in image.attrs["Config"]["ExposedPorts"]
    assert image.attrs["Config"]["Cmd"] == ["python", "-m", "pesto_serve"]
    with running(engine, result.tag) as (url, container):
        assert process(url) == EXPECTED
        assert json.loads(http(url, "GET", "/api/v1/describe")[2])["name"] == "resourceful"
        assert container.exec_run(["id", "-u"]).output.strip() == b"10001"
        probe = json.loads(
            (result.workspace / "dependencies" / "Dockerfile")
            .read_text()
            .split("HEALTHCHECK")[1]
            .split(" CMD ", 1)[1]
            .splitlines()[0]
        )
        assert container.exec_run(probe).exit_code == 0, "the health check passes once ready"
        where = container.exec_run(["python", "-c", "import pesto_serve; print(pesto_serve.__file__)"])
        assert where.output.decode().startswith("/opt/pesto/runtime/"), where.output
        no_wheels = container.exec_run(["sh", "-c", "ls /tmp/wheels /tmp/runtime 2>&1 || true"])
        assert b"No such file" in no_wheels.output, "wheels stay out of the final image"
    assert any(line.startswith("dependencies: stage 1/2, step") for line in lines)


def test_gpu_profile_builds_with_an_overridden_base_image(engine, builder):
    result, lines = builder(["gpu"])
    assert result.tag == f"{NAME}:1.0.0-gpu"
    image = engine.images.get(result.tag)
    assert image.labels[labels.GPUS] == "true" and image.labels[labels.PROFILES] == "gpu"
    assert "NVIDIA_VISIBLE_DEVICES=all" in image.attrs["Config"]["Env"]
    assert f"dependencies: {result.dependencies_tag} is up to date" in lines, (
        "the gpu profile changes no dependency, so the default profile's image serves"
    )
    with running(engine, result.tag) as (url, _):
        assert process(url) == EXPECTED


def test_stateful_profile_answers_with_jobs_kept_in_a_volume(engine, builder):
    result, _ = builder(["stateful"])
    image = engine.images.get(result.tag)
    assert "/var/lib/pesto/jobs" in (image.attrs["Config"].get("Volumes") or {})
    with running(engine, result.tag) as (url, _):
        status, headers, body = http(url, "POST", "/api/v1/process", {"text": "hello", "count": 1234567})
        assert status == 202, body
        job = json.loads(body)
        deadline = time.monotonic() + 30
        while True:
            state = json.loads(http(url, "GET", f"/api/v1/jobs/{job['jobId']}/status")[2])
            if state["status"] in ("DONE", "ERROR") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert state["status"] == "DONE", state
        links = json.loads(http(url, "GET", f"/api/v1/jobs/{job['jobId']}/results")[2])
        assert set(links) == set(EXPECTED)
        status, headers, text = http(url, "GET", f"/api/v1/jobs/{job['jobId']}/results/text")
        assert status == 200 and text.decode() == EXPECTED["text"], headers


def cache_use(build_log: str, label: str) -> list[tuple[str, bool]]:
    """(step, used the cache) for each step of one build in the engine's raw log."""
    section = build_log.split(f"==== {label}:", 1)[1].split("\n==== ", 1)[0]
    steps: list[tuple[str, bool]] = []
    for line in section.splitlines():
        if STEP.match(line):
            steps.append((STEP.match(line)["instruction"], False))
        elif CACHED.match(line) and steps:
            steps[-1] = (steps[-1][0], True)
    return steps


def test_code_only_change_rebuilds_from_the_cache(engine, builder, project):
    first, _ = builder()
    code = project / "algorithm" / "process.py"
    code.write_text(code.read_text().replace("input.text.upper()", "input.text.upper()[::-1]"))
    second, lines = builder()
    assert not second.dependencies_built
    assert f"dependencies: {second.dependencies_tag} is up to date" in lines
    steps = cache_use((second.workspace / "build.log").read_text(), "service")
    assert steps[-1] == ("COPY project/ /opt/pesto/project/", False), steps
    assert all(cached for _, cached in steps[1:-1]), steps
    assert "service: step 6/6: COPY project/ /opt/pesto/project/" in lines
    with pytest.raises(ImageNotFound):
        engine.images.get(first.image_id)  # the image the rebuild untagged is gone...
    engine.images.get(second.dependencies_tag)  # ...not what the new one is built from
    with running(engine, second.tag) as (url, _):
        assert process(url)["text"] == "OLLEH! (from a resource) (and a wheel)"


@pytest.fixture
def image_without_python(engine, tmp_path) -> Iterator[str]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (tmp_path / "marker").write_text("no shell, no python\n")
    tag = f"pesto-test-no-python:{uuid.uuid4().hex[:8]}"
    engine.images.build(path=str(tmp_path), tag=tag, rm=True)
    try:
        yield tag
    finally:
        engine.api.remove_image(tag, force=True)


def test_failing_step_is_named_with_the_engine_error(builder, image_without_python):
    with pytest.raises(BuildError) as error:
        builder(base_image=image_without_python, tag=f"{NAME}-broken:1")
    message = str(error.value)
    assert f"building the dependencies image {NAME}-broken-deps:" in message
    assert "stage 1/2, step 3/" in message and "(RUN python3 -m venv /opt/pesto/venv" in message
    assert "/bin/sh" in message, "the engine's own error is shown"
