"""Loading a project's Process as users write it, and refusing one that cannot serve."""

import pytest

from pesto_pack.errors import ProjectError
from pesto_serve.loader import load_process
from serve_support import PROJECTS, copy_project, served

ECHO_INPUTS = ("text", "number")


def write_process(project, code: str) -> None:
    (project / "algorithm/process.py").write_text(code)


def test_static_methods_and_the_input_dataclass():
    loaded = load_process(PROJECTS / "echo", ECHO_INPUTS)
    assert loaded.input_class.__name__ == "Input"
    assert loaded.thread_safe is True
    assert loaded.process({"text": "a"}).number == 0.0


def test_instance_methods_on_one_instance():
    loaded = load_process(PROJECTS / "faulty", ("mode", "seconds"))
    assert loaded.has_on_start and not loaded.thread_safe
    assert loaded.process({"mode": "ok"}).active == 1
    assert loaded.instance.active == 0  # the same instance kept its state


def test_keyword_arguments_when_process_takes_the_inputs_one_by_one(tmp_path):
    project = copy_project("echo", tmp_path)
    write_process(
        project,
        (
            "class Process:\n"
            "    def process(self, text, number=7):\n"
            "        return {'text': text, 'number': number}\n"
        ),
    )
    with served(project) as (app, _):
        assert app.post_json("/api/v1/process", {"text": "a"}).json == {"text": "a", "number": 7}


def test_inputs_without_a_default_are_passed_as_none_when_not_sent(tmp_path):
    project = copy_project("echo", tmp_path)
    write_process(
        project,
        (
            "class Process:\n"
            "    @staticmethod\n"
            "    def process(text, number):\n"
            "        return {'text': f'{text} {number}'}\n"
        ),
    )
    with served(project) as (app, _):
        assert app.post_json("/api/v1/process", {"text": "a"}).json == {"text": "a None"}


def test_a_project_without_process_py_is_refused(tmp_path):
    project = copy_project("echo", tmp_path)
    (project / "algorithm/process.py").unlink()
    with pytest.raises(ProjectError, match="has no algorithm/process.py"):
        load_process(project, ECHO_INPUTS)


def test_a_process_py_without_a_process_class_is_refused(tmp_path):
    project = copy_project("echo", tmp_path)
    write_process(project, "class Processor:\n    pass\n")
    with pytest.raises(ProjectError, match="no class `Process`"):
        load_process(project, ECHO_INPUTS)


def test_an_import_error_names_the_file(tmp_path):
    project = copy_project("echo", tmp_path)
    write_process(project, "import no_such_module_anywhere\n")
    with pytest.raises(ProjectError, match=r"importing .*process.py failed: ModuleNotFoundError"):
        load_process(project, ECHO_INPUTS)


def test_an_input_schema_property_missing_from_input_is_refused(tmp_path):
    project = copy_project("echo", tmp_path)
    with pytest.raises(ProjectError, match=r"'extra'.*pesto-pack schemagen"):
        load_process(project, (*ECHO_INPUTS, "extra"))


def test_a_process_not_taking_an_input_property_is_refused(tmp_path):
    project = copy_project("echo", tmp_path)
    write_process(project, "class Process:\n    def process(self, text):\n        return {}\n")
    with pytest.raises(ProjectError, match=r"takes no argument 'number'"):
        load_process(project, ECHO_INPUTS)


def test_loading_again_imports_the_project_afresh(tmp_path):
    project = copy_project("echo", tmp_path)
    first = load_process(project, ECHO_INPUTS)
    write_process(
        project,
        ("class Process:\n    def process(self, text, number=0):\n        return {'text': 'changed'}\n"),
    )
    second = load_process(project, ECHO_INPUTS)
    assert first.process({"text": "a"}).text == "a"
    assert second.process({"text": "a"}) == {"text": "changed"}


def test_an_invalid_schema_file_is_refused_saying_where(tmp_path):
    project = copy_project("echo", tmp_path)
    (project / "pesto/api/input_schema.json").write_text(
        '{"text": {"type": "text"}, "number": {"type": "number"}, "required": []}'
    )
    with pytest.raises(ProjectError, match=r"input_schema.json .* at properties/text/type"):
        with served(project, start=False):
            pass
