"""The project model: a PESTO project folder read once, profiles applied in order, validated."""

import json
from pathlib import Path

import pytest

from pesto_pack import project
from pesto_pack.build.labels import image_labels
from pesto_pack.errors import ProjectError
from pesto_pack.profiles import JOBS_DIR


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


@pytest.fixture
def root(tmp_path) -> Path:
    """A small project shaped like the original's template, with gpu and stateful files."""
    api, build = tmp_path / "pesto" / "api", tmp_path / "pesto" / "build"
    write_json(api / "description.json", {"title": "Service", "name": "svc", "asynchronous": False})
    write_json(api / "description.stateful.json", {"asynchronous": True})
    write_json(
        api / "input_schema.json",
        {
            "image": {"$ref": "#/definitions/Image", "description": "an image"},
            "shape": {"$ref": "#/definitions/box"},
            "count": {"type": "integer"},
            "required": ["image"],
        },
    )
    write_json(
        api / "output_schema.json",
        {"areas": {"type": "array", "items": {"$ref": "#/definitions/Polygon"}}, "required": []},
    )
    write_json(api / "user_definitions.json", {"box": {"type": "object"}})
    write_json(api / "version.json", {"version": "1.0.0"})
    write_json(api / "config.json", {"285": [1, 2], "mode": "fast"})
    write_json(
        api / "config_schema.json",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "285": {"type": "array", "items": {"type": "integer"}},
                "mode": {"enum": ["fast", "slow"]},
            },
        },
    )
    write_json(
        build / "build.json",
        {"name": "svc", "version": "1.0.0", "algorithm_path": "algorithm", "workspace": "~/ws"},
    )
    write_json(
        build / "requirements.json",
        {
            "environments": {"WHO": "base", "KEEP": "yes"},
            "requirements": {"model": {"from": "file:///data/model.tar.gz", "to": "/opt/model"}},
            "dockerBaseImage": "python:3.11-slim",
        },
    )
    write_json(
        build / "requirements.gpu.json",
        {"environments": {"WHO": "gpu"}, "dockerBaseImage": "nvidia/cuda:12.4-runtime"},
    )
    write_json(build / "requirements.stateful.json", {"environments": {"WHO": "stateful"}})
    return tmp_path


def test_load_reads_the_project(root):
    loaded = project.load(root)
    assert (loaded.name, loaded.version, loaded.tag) == ("svc", "1.0.0", "svc:1.0.0")
    assert loaded.api.description["title"] == "Service" and not loaded.api.asynchronous
    assert loaded.build.base_image == "python:3.11-slim"
    assert loaded.build.environments == {"WHO": "base", "KEEP": "yes"}
    assert [(r.name, r.source, r.target) for r in loaded.build.resources] == [
        ("model", "file:///data/model.tar.gz", "/opt/model")
    ]
    assert loaded.tests_dir == root / "pesto" / "tests" / "resources"
    assert loaded.workspace == Path.home() / "ws" / "svc" / "1.0.0"


def test_profiles_apply_in_order_each_top_level_key_replaced(root):
    gpu_then_stateful = project.load(root, ["gpu", "stateful"])
    # requirements.stateful.json's `environments` replaces the whole key, as in the original
    assert gpu_then_stateful.build.environments["WHO"] == "stateful"
    assert "KEEP" not in gpu_then_stateful.build.environments
    assert gpu_then_stateful.build.base_image == "nvidia/cuda:12.4-runtime"
    assert gpu_then_stateful.api.asynchronous
    assert project.load(root, ["stateful", "gpu"]).build.environments["WHO"] == "gpu"


def test_tag_has_one_suffix_per_profile_in_order(root):
    assert project.load(root, ["gpu", "stateful"]).tag == "svc:1.0.0-gpu-stateful"
    assert project.load(root, ["stateful"]).tag == "svc:1.0.0-stateful"


def test_profile_plugins_change_the_build_settings_after_the_files(root):
    settings = project.load(root, ["gpu", "stateful"]).build
    assert settings.gpus
    assert settings.environments["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert settings.environments["PESTO_JOBS_DIR"] == JOBS_DIR
    assert settings.volumes == (JOBS_DIR,)
    labels = image_labels(project.load(root, ["gpu", "stateful"]), "svc-deps:0123")
    assert labels["org.pesto.profiles"] == "gpu stateful" and labels["org.pesto.gpus"] == "true"
    assert labels["org.pesto.dependencies"] == "svc-deps:0123"
    assert not project.load(root).build.gpus


def test_a_profile_file_overrides_what_a_profile_plugin_would_default(root):
    write_json(root / "pesto" / "build" / "requirements.gpu.json", {"environments": {
        "NVIDIA_VISIBLE_DEVICES": "0"}})  # fmt: skip
    assert project.load(root, ["gpu"]).build.environments["NVIDIA_VISIBLE_DEVICES"] == "0"


def test_a_profile_with_files_only_is_known(root):
    write_json(root / "pesto" / "api" / "description.cpu.json", {"title": "CPU"})
    assert project.available_profiles(root) == ["cpu", "gpu", "stateful"]
    assert project.load(root, ["cpu"]).api.description["title"] == "CPU"


def test_definitions_are_the_builtins_then_the_user_definitions(root):
    definitions = project.load(root).api.definitions()
    assert list(definitions)[:6] == ["Image", "Images", "Polygon", "Polygons", "Metadata",
                                     "Metadatas"]  # fmt: skip
    assert definitions["box"] == {"type": "object"}


def test_a_user_definition_does_not_replace_a_builtin_one(root):
    user_definitions = {"Image": {"type": "integer"}, "box": {"type": "object"}}
    write_json(root / "pesto" / "api" / "user_definitions.json", user_definitions)
    definitions = project.load(root).api.definitions()
    assert definitions["Image"]["type"] == "string" and list(definitions)[-1] == "box"


def test_written_api_files_load_back_as_the_same_api(root, tmp_path):
    api = project.load(root, ["stateful"]).api
    api.write(tmp_path / "etc")
    assert project.load_api(tmp_path / "etc") == api


def test_optional_api_files_may_be_missing(root):
    for name in ("user_definitions", "version", "config", "config_schema"):
        (root / "pesto" / "api" / f"{name}.json").unlink()
    write_json(root / "pesto" / "api" / "input_schema.json", {"n": {"type": "number"}})
    api = project.load(root).api
    assert (api.config, api.config_schema, api.user_definitions, api.version) == ({}, {}, {}, {})


# -- errors -----------------------------------------------------------------------------------


def load_error(root: Path, profiles=()) -> str:
    with pytest.raises(ProjectError) as caught:
        project.load(root, profiles)
    return str(caught.value)


@pytest.mark.parametrize("key", ["name", "version"])
def test_a_missing_build_key_is_named(root, key):
    build_file = root / "pesto" / "build" / "build.json"
    values = json.loads(build_file.read_text())
    del values[key]
    write_json(build_file, values)
    assert load_error(root) == f"pesto/build/build.json is missing `{key}`; add it"


def test_a_missing_base_image_is_named(root):
    write_json(root / "pesto" / "build" / "requirements.json", {"environments": {}})
    assert load_error(root) == "pesto/build/requirements.json is missing `dockerBaseImage`; add it"


def test_a_requirement_without_a_source_is_named(root):
    write_json(
        root / "pesto" / "build" / "requirements.json",
        {"requirements": {"model": {"to": "/opt"}}, "dockerBaseImage": "python:3.11"},
    )
    assert "requirement 'model' needs a `from`" in load_error(root)


def test_config_not_matching_its_schema_names_the_json_path(root):
    write_json(root / "pesto" / "api" / "config.json", {"285": [1, "two"], "mode": "fast"})
    assert load_error(root) == (
        "pesto/api/config.json does not match config_schema.json at $.285[1]: 'two' is not of type 'integer'"
    )


def test_a_config_from_a_profile_is_validated_too(root):
    write_json(root / "pesto" / "api" / "config.gpu.json", {"mode": "turbo"})
    project.load(root)
    assert "at $.mode: 'turbo' is not one of ['fast', 'slow']" in load_error(root, ["gpu"])


def test_an_invalid_config_schema_is_reported(root):
    write_json(root / "pesto" / "api" / "config_schema.json", {"type": "dictionary"})
    assert load_error(root).startswith("pesto/api/config_schema.json is not a valid JSON schema")


def test_unreadable_json_names_the_file_line_and_column(root):
    (root / "pesto" / "api" / "input_schema.json").write_text('{\n  "a": {"type": "integer"},\n}')
    assert load_error(root).startswith("pesto/api/input_schema.json: line 3, column 1: ")


def test_unreadable_json_in_a_profile_file_is_named(root):
    (root / "pesto" / "build" / "requirements.gpu.json").write_text("{oops")
    message = load_error(root, ["gpu"])
    assert message.startswith("pesto/build/requirements.gpu.json: line 1, column 2:")


def test_a_required_api_file_that_is_missing_is_named(root):
    (root / "pesto" / "api" / "description.json").unlink()
    assert load_error(root) == "pesto/api/description.json is missing"


def test_a_file_that_is_not_an_object_is_named(root):
    write_json(root / "pesto" / "api" / "description.stateful.json", ["asynchronous"])
    assert load_error(root, ["stateful"]) == ("pesto/api/description.stateful.json must hold a JSON object")


def test_an_unknown_profile_lists_the_projects_profiles(root):
    assert load_error(root, ["gpu", "cuda"]) == ("unknown profile 'cuda'; this project has: gpu, stateful")


@pytest.mark.parametrize("schema_file", ["input_schema.json", "output_schema.json"])
def test_an_unknown_definition_reference_is_named(root, schema_file):
    path = root / "pesto" / "api" / schema_file
    schema = json.loads(path.read_text())
    schema["mask"] = {"type": "array", "items": {"$ref": "#/definitions/Mask"}}
    write_json(path, schema)
    message = load_error(root)
    assert message.startswith(
        f"pesto/api/{schema_file}: property 'mask' refers to '#/definitions/Mask', "
        "which is not a known definition; known: Image, Images, Metadata"
    )
    assert "box" in message and "install the plugin that provides it" in message


def test_a_folder_that_is_not_a_project_is_refused(tmp_path):
    message = load_error(tmp_path)
    assert message == (
        f"{tmp_path} is not a PESTO project: it has no pesto/api and pesto/build folders "
        "(create one with `pesto-pack init`)"
    )


def test_json_paths_read_like_the_document():
    assert project.json_path(["285", 1, "mode"]) == "$.285[1].mode"
    assert project.json_path(["a b", 0]) == "$['a b'][0]"


def test_load_api_names_the_folder_it_reads(root, tmp_path):
    api = project.load(root).api
    api.write(tmp_path / "etc")
    write_json(tmp_path / "etc" / "config.json", {"mode": "turbo"})
    with pytest.raises(ProjectError, match=f"^{tmp_path / 'etc'}/config.json does not match"):
        project.load_api(tmp_path / "etc")
