"""The `pesto-pack` command: readable help, errors without tracebacks, results on stdout."""

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from build_support import remove_with_its_dependencies
from pesto_pack.build import wheels
from pesto_pack.build.cache import cache_folder
from pesto_pack.cli import main

SAMPLE = Path(__file__).parent / "projects" / "resourceful"
PESTO_PACK = Path(sys.executable).with_name("pesto-pack")


@pytest.mark.parametrize("command", [[], ["init"], ["schemagen"], ["build"], ["list"], ["test"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    assert "usage: pesto-pack" in capsys.readouterr().out


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_an_error_is_one_message_on_stderr_without_traceback(tmp_path):
    done = subprocess.run(
        [str(PESTO_PACK), "build", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("pesto-pack build: error: ")
    assert "is not a PESTO project" in done.stderr and "pesto-pack init" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_engine_error_is_one_message_too(monkeypatch, capsys):
    from docker.errors import APIError

    def engine_refuses(args):
        raise APIError("500 Server Error: image is in use by a container")

    monkeypatch.setattr("pesto_pack.cli._list", engine_refuses)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pesto-pack list: error: the container engine answered: 500 Server Error")


def test_init_without_input_then_schemagen(tmp_path, capsys):
    target = tmp_path / "new-service"
    assert main(["init", str(target), "--no-input", "--version", "0.1.0"]) == 0
    assert json.loads((target / "pesto/build/build.json").read_text())["version"] == "0.1.0"
    assert main(["schemagen", str(target)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "pesto/api/input_schema.json is up to date; left as is",
        "pesto/api/output_schema.json is up to date; left as is",
    ]


def test_init_refuses_a_bad_name(tmp_path, capsys):
    assert main(["init", str(tmp_path / "x"), "--no-input", "--name", "Bad Name"]) == 1
    assert "name 'Bad Name': use lowercase letters" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_init_asks_with_defaults(tmp_path, monkeypatch):
    replies = iter(["", "", "Mirrors images", "", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(replies))
    assert main(["init", str(tmp_path / "asked")]) == 0
    description = json.loads((tmp_path / "asked/pesto/api/description.json").read_text())
    assert description["name"] == "asked" and description["description"] == "Mirrors images"


@pytest.mark.engine
@pytest.mark.slow
def test_build_prints_the_tag_last_and_list_shows_the_image(tmp_path, engine, base_image, capsys):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    shutil.copytree(SAMPLE, root)
    build_file = root / "pesto" / "build" / "build.json"
    build_file.write_text(
        json.dumps(
            {
                **json.loads(build_file.read_text()),
                "name": name,
                "workspace": str(tmp_path / "ws"),
            }
        )
    )
    wheel = wheels.runtime_wheel(cache_folder(tmp_path / "ws" / "n" / "v"))
    tag = f"{name}:1.0.0-stateful"
    try:
        assert (
            main(
                [
                    "build",
                    str(root),
                    "-p",
                    "stateful",
                    "--base-image",
                    base_image,
                    "--runtime-wheel",
                    str(wheel),
                ]
            )
            == 0
        )
        out, err = capsys.readouterr()
        assert out.splitlines()[-1] == tag
        assert "service: step" in err and f"built {tag}" in err

        assert main(["list"]) == 0
        listing = capsys.readouterr().out.splitlines()
        assert listing[0].split() == ["NAME", "TAG", "PROFILES", "SIZE", "CREATED"]
        row = next(line.split() for line in listing if line.startswith(name + " "))
        assert row[:3] == [name, "1.0.0-stateful", "stateful"]
    finally:
        remove_with_its_dependencies(engine, tag)
