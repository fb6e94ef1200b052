"""`pesto-pack init`: a project that loads, whose schemas and expected describe are its own."""

import base64
import json
import uuid
from pathlib import Path

import pytest

from build_support import http, running
from pesto_pack import init, project, schemagen
from pesto_pack.build import build
from pesto_pack.errors import PestoError
from pesto_serve.describe import with_links
from pesto_serve.service import Service
from pesto_serve.settings import Settings
from pytest_pesto.compare import without_link_hosts

VALUES = {
    "name": "edge-finder",
    "version": "0.3.1",
    "description": 'Finds "edges" \\ corners',
    "organization": "ACME Vision",
    "email": "vision@example.com",
}


@pytest.fixture
def created(tmp_path: Path) -> Path:
    target = tmp_path / "edge-finder"
    init.create(target, VALUES)
    return target


def test_project_loads_with_every_profile(created):
    for profiles in ([], ["gpu"], ["stateful"], ["gpu", "stateful"]):
        loaded = project.load(created, profiles)
        assert loaded.name == "edge-finder" and loaded.version == "0.3.1"
    assert project.load(created, ["stateful"]).api.asynchronous
    assert project.load(created, ["gpu"]).build.gpus
    assert project.available_profiles(created) == ["gpu", "stateful"]


def test_values_are_written_escaped_into_json_files(created):
    description = json.loads((created / "pesto" / "api" / "description.json").read_text())
    assert description["description"] == 'Finds "edges" \\ corners'
    assert description["organization"] == "ACME Vision" and description["email"] == "vision@example.com"
    assert "edge-finder" in (created / "README.md").read_text()


def test_schema_files_are_what_schemagen_makes_of_the_dataclasses(created):
    input_schema, output_schema = schemagen.generate(created)
    api = created / "pesto" / "api"
    assert json.loads((api / "input_schema.json").read_text()) == input_schema
    assert json.loads((api / "output_schema.json").read_text()) == output_schema
    assert all("up to date" in line for line in schemagen.write(created))


def test_expected_describe_is_what_the_runtime_answers(created):
    """The template's expected_describe.json must follow the runtime's describe."""
    loaded = project.load(created)
    service = Service(loaded.api, Settings(project_dir=created))
    actual = with_links(service.describe, "http://127.0.0.1:1234")
    expected = json.loads((created / "pesto" / "tests" / "resources" / "expected_describe.json").read_text())
    assert without_link_hosts(expected) == without_link_hosts(actual)


def test_every_test_folder_has_an_input_and_an_expected_output(created):
    folders = sorted((created / "pesto" / "tests" / "resources").glob("test_*"))
    assert [f.name for f in folders] == ["test_1", "test_2"]
    for folder in folders:
        assert any((folder / "input").iterdir()) and any((folder / "output").iterdir())


def test_defaults_come_from_the_folder_name(tmp_path):
    values = init.answers(tmp_path / "My Fancy_Service", {}, ask=None)
    assert values["name"] == "my-fancy-service" and values["version"] == "1.0.0"


def test_prompts_offer_defaults_and_ask_again_after_a_refused_answer(tmp_path, capsys):
    replies = iter(["Not Valid", "", "2.0.0", "My service", "", ""])
    prompts = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    values = init.answers(tmp_path / "svc", {"email": "me@example.com"}, ask)
    assert values == {
        "name": "svc",
        "version": "2.0.0",
        "description": "My service",
        "organization": "",
        "email": "me@example.com",
    }
    assert prompts[0] == "Service name [svc]: " and prompts[1] == "Service name [svc]: "
    assert not any(p.startswith("Contact e-mail") for p in prompts), "options are not asked again"
    assert "use lowercase letters" in capsys.readouterr().out


def test_invalid_option_is_refused_without_prompting(tmp_path):
    with pytest.raises(PestoError, match="version '1 0': use letters, digits"):
        init.answers(tmp_path / "svc", {"version": "1 0"}, ask=None)


def test_a_folder_that_is_not_empty_is_left_alone(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(PestoError, match="not an empty folder"):
        init.create(tmp_path, VALUES)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.engine
@pytest.mark.slow
def test_the_project_builds_and_serves(tmp_path, engine, base_image):
    name = f"init-{uuid.uuid4().hex[:8]}"
    target = tmp_path / name
    init.create(target, {**VALUES, "name": name})
    built = build(target, workspace=tmp_path / "ws" / name / "0.3.1", client=engine, log=lambda line: None)
    try:
        with running(engine, built.tag) as (url, _):
            status, _, body = http(url, "GET", "/api/v1/describe")
            expected = json.loads((target / "pesto/tests/resources/expected_describe.json").read_text())
            assert status == 200
            assert without_link_hosts(json.loads(body)) == without_link_hosts(expected)
            summary = (target / "pesto/tests/resources/test_2/output/summary.string").read_text()
            image = (target / "pesto/tests/resources/test_2/input/image.png").read_bytes()
            status, _, body = http(
                url, "POST", "/api/v1/process", {"image": base64.b64encode(image).decode()}
            )
            assert status == 200 and json.loads(body)["summary"] == summary
    finally:
        for reference in (built.tag, built.dependencies_tag):
            engine.api.remove_image(reference, force=True)
