"""The code is formatted and linted by ruff as pyproject.toml configures it: CI fails otherwise.

Run `ruff format . && ruff check --fix .` to fix what this reports.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("ruff", reason="ruff comes with the dev extra: pip install -e '.[dev]'")


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_has_nothing_to_say(command):
    done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"`ruff {' '.join(command)}` found:\n{done.stdout}{done.stderr}"
