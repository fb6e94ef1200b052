"""What a build prepares on the host, before and without the engine."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from pesto_pack import project as project_model
from pesto_pack.build import build, cache, context, wheels
from pesto_pack.build.cache import cache_folder
from pesto_pack.errors import ProjectError

SAMPLE = Path(__file__).parent / "projects" / "resourceful"


class NoEngine:
    """Stands where the engine client goes: any use of it fails the test."""

    def __getattr__(self, name):
        pytest.fail(f"the engine was called ({name}) although the project is broken")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    copy = tmp_path / "resourceful"
    shutil.copytree(SAMPLE, copy)
    return copy


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda p: (p / "pesto/api/description.json").write_text("{ not json"),
            "pesto/api/description.json: line 1, column 3",
        ),
        (
            lambda p: edit_json(p / "pesto/build/build.json", name="My Service"),
            "pesto/build/build.json: name 'My Service' cannot name an image",
        ),
        (
            lambda p: edit_json(p / "pesto/build/build.json", version="1.0+local"),
            "version and profiles make the tag '1.0+local'",
        ),
        (lambda p: shutil.rmtree(p / "algorithm"), "has no algorithm/process.py"),
        (
            lambda p: edit_json(
                p / "pesto/build/requirements.json", requirements={"w": {"from": "w.tar.gz", "to": "/w"}}
            ),
            "resource 'w'",
        ),
        (
            lambda p: (p / "requirements.txt").write_text("this is not a requirement ===\n"),
            "pip could not resolve the project's requirements.txt",
        ),
    ],
)
def test_broken_project_fails_before_the_engine_is_called(sample, tmp_path, breakage, message):
    breakage(sample)
    with pytest.raises(ProjectError) as error:
        build(sample, workspace=tmp_path / "ws" / "n" / "v", client=NoEngine(), log=lambda line: None)
    assert message in str(error.value)


def test_unknown_profile_fails_before_the_engine_is_called(sample, tmp_path):
    with pytest.raises(ProjectError, match="unknown profile 'fast'"):
        build(sample, ["fast"], workspace=tmp_path / "ws", client=NoEngine(), log=lambda line: None)


def test_invalid_tag_option_is_refused(sample, tmp_path):
    with pytest.raises(ProjectError, match="--tag 'Bad Tag' is not a valid image reference"):
        build(sample, tag="Bad Tag", workspace=tmp_path / "ws", client=NoEngine(), log=lambda line: None)


@pytest.fixture(scope="module")
def cache_base(tmp_path_factory) -> Path:
    """A workspace base whose cache (wheels, runtime) the tests of this module share."""
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="module")
def runtime_wheel(cache_base: Path) -> Path:
    return wheels.runtime_wheel(cache_folder(cache_base / "n" / "v"))


def prepare(root: Path, cache_base: Path, runtime_wheel: Path, profiles=()) -> context.Contexts:
    project = project_model.load(root, profiles)
    workspace = cache_base / project.name / project.version
    return context.prepare(project, project.tag, "pesto-base:bookworm", workspace, runtime_wheel)


@pytest.mark.slow
def test_workspace_holds_both_contexts_and_a_script_to_rebuild_by_hand(sample, cache_base, runtime_wheel):
    (sample / "algorithm" / "__pycache__").mkdir()
    (sample / "algorithm" / "__pycache__" / "process.cpython-311.pyc").write_bytes(b"")
    contexts = prepare(sample, cache_base, runtime_wheel, ["stateful"])
    assert contexts.folder == cache_base / "resourceful" / "1.0.0" / "stateful"
    dependencies, service = contexts.dependencies, contexts.service
    assert {p.name for p in (dependencies / "wheels").iterdir()} == {"runtime-deps", "project-deps"}
    project_wheels = {p.name.split("-")[0] for p in (dependencies / "wheels" / "project-deps").iterdir()}
    assert {"humanize", "shout_suffix"} <= project_wheels, "requirements.txt and .whl resources"
    assert (dependencies / "resources" / "0-greeting" / "suffix.txt").read_text() == "(from a resource)\n"
    assert (service / "runtime" / "pesto_serve" / "__main__.py").is_file()
    assert json.loads((service / "etc" / "pesto" / "description.json").read_text())["asynchronous"] is True
    assert (service / "project" / "algorithm" / "process.py").is_file()
    assert not (service / "project" / "algorithm" / "__pycache__").exists()
    assert not (service / "wheels").exists(), "the service context stays small"
    script = (contexts.folder / "build.sh").read_text()
    assert f"docker build -t {contexts.dependencies_tag} dependencies" in script
    assert "docker build -t resourceful:1.0.0-stateful service" in script
    assert f"FROM {contexts.dependencies_tag}" in (service / "Dockerfile").read_text()


@pytest.mark.slow
def test_every_file_is_readable_by_the_service_user_whatever_the_umask(sample, cache_base, runtime_wheel):
    (sample / "algorithm" / "process.py").chmod(0o600)
    previous = os.umask(0o077)
    try:
        contexts = prepare(sample, cache_base, runtime_wheel)
    finally:
        os.umask(previous)
    for path in contexts.service.rglob("*"):
        mode = path.stat().st_mode
        assert mode & stat.S_IROTH, path
        if path.is_dir():
            assert mode & stat.S_IXOTH, path


@pytest.mark.slow
def test_dependencies_tag_changes_with_dependencies_not_with_code(sample, cache_base, runtime_wheel):
    first = prepare(sample, cache_base, runtime_wheel).dependencies_tag
    (sample / "algorithm" / "process.py").write_text(
        (sample / "algorithm" / "process.py").read_text() + "\n# a code change\n"
    )
    edit_json(sample / "pesto" / "api" / "config.json", punctuation="?")
    assert prepare(sample, cache_base, runtime_wheel).dependencies_tag == first
    assert prepare(sample, cache_base, runtime_wheel, ["stateful"]).dependencies_tag != first

    shutil.copy(sample / "resources" / "greeting.tar.gz", sample / "resources" / "copy.tar.gz")
    requirements = sample / "pesto" / "build" / "requirements.json"
    values = json.loads(requirements.read_text())
    values["requirements"]["more"] = {"from": "resources/copy.tar.gz", "to": "/opt/more"}
    requirements.write_text(json.dumps(values))
    assert prepare(sample, cache_base, runtime_wheel).dependencies_tag != first


@pytest.mark.slow
def test_wheels_are_resolved_once_per_requirements(sample, cache_base, runtime_wheel):
    prepare(sample, cache_base, runtime_wheel)
    folders = set((cache_folder(cache_base / "n" / "v") / "wheels").iterdir())
    prepare(sample, cache_base, runtime_wheel)
    assert set((cache_folder(cache_base / "n" / "v") / "wheels").iterdir()) == folders


def planned_inputs(wheel_files=("wheels/runtime-deps/bottle-0.13-py3-none-any.whl",)) -> context.Inputs:
    """Inputs naming folders that do not exist: planning must not look at the disk."""
    return context.Inputs(
        wheel_folders={"wheels/runtime-deps": Path("/nowhere/wheels")},
        wheel_files=tuple(wheel_files),
        resources={"resources/0-model": (Path("/nowhere/model"), "/opt/model/", "ab" * 32)},
        runtime=Path("/nowhere/runtime"),
    )


def test_a_plan_is_made_without_the_disk_and_its_tag_follows_what_the_image_holds(sample):
    project = project_model.load(sample)
    plan = context.plan(project, "svc:1", "pesto-base:bookworm", planned_inputs())
    assert plan.dependencies_tag.startswith("svc-deps:")
    assert plan.dependencies_links == {
        "wheels/runtime-deps": Path("/nowhere/wheels"),
        "resources/0-model": Path("/nowhere/model"),
    }
    assert plan.service_links == {"runtime": Path("/nowhere/runtime")}
    assert f'"org.pesto.dependencies"="{plan.dependencies_tag}"' in plan.service_dockerfile
    assert "COPY resources/0-model/ /opt/model/" in plan.dependencies_dockerfile
    same = context.plan(project, "svc:1", "pesto-base:bookworm", planned_inputs())
    other_wheel = context.plan(
        project,
        "svc:1",
        "pesto-base:bookworm",
        planned_inputs(["wheels/runtime-deps/bottle-0.14-py3-none-any.whl"]),
    )
    other_base = context.plan(project, "svc:1", "other-base:1", planned_inputs())
    assert same.dependencies_tag == plan.dependencies_tag
    assert len({plan.dependencies_tag, other_wheel.dependencies_tag, other_base.dependencies_tag}) == 3


def test_a_cached_folder_is_made_once_and_a_concurrent_winner_is_kept(tmp_path):
    made = []

    def make(staging: Path) -> None:
        made.append(staging)
        (staging / "file").write_text("first")

    folder = cache.cached_folder(tmp_path, "key", make)
    assert (folder / "file").read_text() == "first"
    assert cache.cached_folder(tmp_path, "key", make) == folder and len(made) == 1

    def lose_the_race(staging: Path) -> None:
        (staging / "file").write_text("second")
        shutil.copytree(staging, tmp_path / "raced")  # another build renames its copy first

    assert (cache.cached_folder(tmp_path, "raced", lose_the_race) / "file").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".making-")] == []


def test_a_digest_keeps_part_boundaries():
    assert cache.digest(["ab", "c"]) != cache.digest(["a", "bc"])
    assert cache.digest([b"ab"]) == cache.digest(["ab"])
