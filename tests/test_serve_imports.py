"""The runtime stays small: importing it pulls in no docker, pytest or deepdiff."""

import json
import subprocess
import sys
from pathlib import Path

ECHO = Path(__file__).parent / "projects" / "echo"
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


def test_a_served_service_imports_jsonschema_and_prometheus_only_in_its_start_thread():
    # jsonschema is a third of a start's imports, prometheus_client a tenth: a served service
    # opens its port without them and builds its config check, validators and metrics in
    # start(), ready only after them.
    code = (
        "import sys, json\n"
        "from pesto_serve import cli, server\n"
        "from pesto_serve.app import make_app\n"
        "from pesto_serve.host import project_on_host\n"
        "from pesto_serve.service import Service\n"
        "from pesto_serve.settings import Settings\n"
        "from pesto_serve.errors import ServiceError\n"
        f"with project_on_host({str(ECHO)!r}, (), Settings(), check_config=False) as (p, s):\n"
        "    service = Service(p.api, s, check_at_start='pesto/api')\n"
        "    make_app(service)\n"
        "    before = 'jsonschema' in sys.modules or 'prometheus_client' in sys.modules\n"
        "    try:\n"
        "        service.check_listed()\n"
        "        starting = None\n"
        "    except ServiceError as error:\n"
        "        starting = error.status\n"
        "    validators = service.payloads.input_validator\n"
        "    service.start()\n"
        "    print(json.dumps([before, starting, validators is None, 'jsonschema' in sys.modules,\n"
        "                      service.payloads.input_validator is not None, service.ready]))\n"
        "    service.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, 503, True, True, True, True]
