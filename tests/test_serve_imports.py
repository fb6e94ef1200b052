"""The runtime stays small: importing it pulls in no docker, pytest or deepdiff."""

import subprocess
import sys

HEAVY = ("docker", "pytest", "deepdiff", "_pytest")


def test_pesto_serve_imports_no_build_or_test_tooling():
    code = (
        "import sys, pesto_serve, pesto_serve.__main__, pesto_serve.cli, pesto_serve.server\n"
        "from pesto_pack.plugins import default_registry\n"
        "default_registry()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
