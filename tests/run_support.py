"""Helpers of the `run` tests: the template project, its test folders, answers compared."""

import json
import subprocess
import sys
from pathlib import Path

from pesto_pack import init
from pesto_pack.folders import read_folder
from pesto_pack.plugins import default_registry
from pesto_pack.project import load
from pesto_pack.types.base import Tolerance
from pytest_pesto.compare import compare_answers, types_of

PESTO_PACK = (sys.executable, "-m", "pesto_pack.cli")
PESTO_SERVE = (sys.executable, "-m", "pesto_serve.cli")
"""The commands as modules: the same `main()` as the console scripts."""


def make_template(folder: Path, name: str) -> Path:
    """The project `pesto-pack init` makes (the mirror-with-gain template), named `name`."""
    values = init.answers(folder, {"name": name}, ask=None)
    init.create(folder, values)
    return folder


def folder_of(project: Path, number: int) -> Path:
    return project / "pesto" / "tests" / "resources" / f"test_{number}"


def options_sending_test_1(project: Path) -> list[str]:
    """The `-i` options that send the template's test_1 inputs: a file, a number, a text."""
    inputs = folder_of(project, 1) / "input"
    return [
        "-i",
        f"image=@{inputs / 'image.png'}",
        "-i",
        f"gain={(inputs / 'gain.float').read_text().strip()}",
        "-i",
        f"label={(inputs / 'label.string').read_text()}",
    ]


def differences(project: Path, expected: dict, actual: dict) -> dict:
    """Key to how `actual` differs from `expected`, each output compared by its type."""
    output_schema = load(project).api.output_schema
    properties = {k: v for k, v in output_schema.items() if isinstance(v, dict)}
    types = types_of(expected.keys() | actual.keys(), properties, default_registry())
    comparison = compare_answers(expected, actual, types, Tolerance())
    return {
        **{key: ["missing"] for key in comparison.missing},
        **{key: ["unexpected"] for key in comparison.unexpected},
        **comparison.differing,
    }


def expected_output(project: Path, number: int) -> dict:
    return read_folder(folder_of(project, number) / "output", default_registry())


def command(*arguments, stdin: str | None = None, timeout: float = 300, **kwargs):
    """Run a command; its CompletedProcess (text)."""
    flat = [part for a in arguments for part in (a if isinstance(a, tuple) else (a,))]
    return subprocess.run(
        [str(a) for a in flat],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def answer_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)
