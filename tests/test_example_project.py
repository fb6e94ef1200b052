"""The example project end to end: built as `pesto-pack build` builds it, tested by `pytest --pesto-image`.

The tutorial's image classifier is built as a user builds it (default, stateful, and the gpu
profile on the local base image, since CI has no GPU and no registry), its test folders are
run against each container by the plugin in a pytest of their own, and the cat is asserted to
come out as Egyptian_cat. The three builds share one dependencies layer (torch, about 1 GB),
and the wheels are downloaded once into the build cache (`~/.pesto/.cache`).

Each run tags its images `image-classifier:1.0.0[-PROFILE]-test-<random>`, so that it never
replaces a person's `image-classifier:1.0.0` (`scripts/demo`) nor another run's images. They
are removed at the end, with the dependencies images this run created (shared by the demo's
and other runs' images: one still in use is left); set PESTO_KEEP_EXAMPLE_IMAGES=1 to keep
them, e.g. so that `scripts/demo` or bench/bench_example.py reuses the dependencies image.
"""

import json
import os
import secrets
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from docker.errors import APIError

from pesto_pack import containers, project
from pesto_pack.build import BuiltImage
from pesto_pack.build import build as pesto_build
from pesto_pack.build.labels import GPUS
from pesto_pack.client import PestoClient
from pesto_pack.plugins import default_registry
from pesto_pack.types.base import Tolerance
from pytest_pesto.compare import compare_describe
from pytest_pesto.payload import read_folder

pytestmark = [pytest.mark.engine, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
RESOURCES = EXAMPLE / "pesto" / "tests" / "resources"
DESCRIBE = RESOURCES / "expected_describe.json"
CAT = RESOURCES / "test_1"
KEEP = "PESTO_KEEP_EXAMPLE_IMAGES"
START_TIMEOUT = 120.0
THREADS = {"OMP_NUM_THREADS": "1"}
"""torch's threads collapse when other jobs share the cores (example_project/README.md)."""


def build(run: str, profiles: tuple[str, ...] = (), base_image: str | None = None) -> BuiltImage:
    """What `pesto-pack build example_project [-p PROFILES] [--base-image IMAGE] --tag ...`
    does; its progress is printed (pytest shows it when the test fails)."""
    started = time.monotonic()
    tag = f"{project.load(EXAMPLE, profiles).tag}-test-{run}"
    built = pesto_build(EXAMPLE, profiles, base_image=base_image, tag=tag, log=print)
    print(f"built {built.tag} in {time.monotonic() - started:.0f} s")
    return built


@pytest.fixture(scope="module")
def images(engine, base_image) -> dict[str, str]:
    """The example's three images, built from its folder; removed afterwards unless KEEP,
    with the dependencies images that these builds made."""
    subprocess.run(
        [sys.executable, str(EXAMPLE / "scripts" / "make_checkpoint.py")],
        check=True,
        capture_output=True,
        timeout=600,
    )
    run = secrets.token_hex(4)
    built: dict[str, BuiltImage] = {}
    try:  # a failed build still removes the images built before it
        built["default"] = build(run)
        built["stateful"] = build(run, ("stateful",))
        built["gpu"] = build(run, ("gpu",), base_image)
        yield {profile: image.tag for profile, image in built.items()}
    finally:
        if not os.environ.get(KEEP):
            remove(engine, built.values())


def remove(engine, built) -> None:
    """The images, then the dependencies images their builds made (not one still in use)."""
    for image in built:
        engine.images.remove(image.tag)
    for dependencies in {image.dependencies_tag for image in built if image.dependencies_built}:
        try:
            engine.images.remove(dependencies)
        except APIError:  # another run's image is built on it: that run removes it
            pass


def run_test_folders(tag: str, report: Path, *options: str) -> dict[str, str]:
    """`pytest --pesto-image=TAG` on the example's resources folder, in a pytest of its own;
    the outcome of each item (from the junit XML written to `report`), by item name."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--pesto-image={tag}",
        "-p",
        "no:cacheprovider",
        *(f"--pesto-env={key}={value}" for key, value in THREADS.items()),
        f"--rootdir={EXAMPLE}",
        f"--junitxml={report}",
        *options,
        str(RESOURCES),
    ]
    done = subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        problems = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        name = case.get("name").removeprefix("pesto.tests.resources.")  # junit: dotted paths
        outcomes[name] = problems[0] if problems else "passed"
    return outcomes


def folder_names() -> list[str]:
    return sorted(folder.name for folder in RESOURCES.glob("test_*"))


def containers_of(engine, tag: str) -> list[str]:
    return [
        c.name
        for c in engine.containers.list(all=True)
        if c.attrs["Config"]["Image"].rsplit("/", 1)[-1] == tag
    ]


def expected_describe(**changes) -> dict:
    return {**json.loads(DESCRIBE.read_text()), **changes}


def check_service(tag: str, describe: dict) -> None:
    """Start the image, check its describe, and classify the cat through it."""
    service = containers.start(tag, start_timeout=START_TIMEOUT, environment=THREADS)
    try:
        client = PestoClient(service.url)
        comparison = compare_describe(describe, client.describe(), default_registry(), Tolerance())
        assert comparison.matches, comparison
        answer = client.process(read_folder(CAT / "input", default_registry()))
    finally:
        service.remove()
    assert answer == {"category": "Egyptian_cat"}


def test_the_default_image_passes_its_test_folders_and_sees_the_cat(engine, images, tmp_path):
    tag = images["default"]

    outcomes = run_test_folders(tag, tmp_path / "junit.xml")

    assert outcomes == {name: "passed" for name in ["expected_describe.json", *folder_names()]}
    check_service(tag, expected_describe())
    assert containers_of(engine, tag) == []


def test_the_stateful_image_passes_the_same_folders_through_the_jobs_api(engine, images, tmp_path):
    tag = images["stateful"]

    # expected_describe.stateful.json adds `"asynchronous": true` over expected_describe.json
    outcomes = run_test_folders(tag, tmp_path / "junit.xml", "--pesto-profile=stateful")

    assert outcomes == {name: "passed" for name in ["expected_describe.json", *folder_names()]}
    check_service(tag, expected_describe(asynchronous=True))
    assert containers_of(engine, tag) == []


def test_the_gpu_image_built_on_the_local_base_answers_on_the_cpu(engine, images):
    tag = images["gpu"]

    assert engine.images.get(tag).labels[GPUS] == "true"
    check_service(tag, expected_describe())
    assert containers_of(engine, tag) == []


@pytest.mark.parametrize("profile", ["default", "stateful"])
def test_pesto_pack_run_classifies_the_cat_in_one_line(engine, images, profile):
    """The README's `pesto-pack run IMAGE -i image=@PHOTO`: the answer printed, no container left."""
    photo = CAT / "input" / "image.png"
    command = [
        str(Path(sys.executable).with_name("pesto-pack")), "run", images[profile],
        "-i", f"image=@{photo}", *(f"-e={key}={value}" for key, value in THREADS.items()),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"category": "Egyptian_cat"}
    assert engine.containers.list(all=True, filters={"label": containers.RUN_LABEL}) == []
