"""PESTO_DRAIN_DELAY: after SIGTERM, ready answers 503 while requests are still answered, so
that a balancer's health checks take the replica out before it refuses connections."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from balancer_support import free_port, get

ECHO = Path(__file__).parent / "projects" / "echo"
PESTO_SERVE = Path(sys.executable).with_name("pesto-serve")


def post(url: str) -> int:
    import urllib.request

    request = urllib.request.Request(
        url + "/api/v1/process",
        data=json.dumps({"text": "a", "number": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as answer:
        return answer.status


def test_ready_answers_503_first_while_work_is_still_answered(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = os.environ | {"PESTO_DRAIN_DELAY": "1.5", "PESTO_GRACE_PERIOD": "5"}
    with (tmp_path / "serve.log").open("wb") as log:
        service = subprocess.Popen(
            [str(PESTO_SERVE), str(ECHO), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(url + "/api/v1/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert get(url + "/api/v1/ready")[0] == 200
        service.send_signal(signal.SIGTERM)
        time.sleep(0.7)  # the signal is seen within the event loop's 0.5 s
        assert get(url + "/api/v1/ready")[0] == 503
        assert post(url) == 200  # still in the pool for whoever has not noticed yet
        assert get(url + "/api/v1/health")[0] == 200
        assert service.wait(timeout=10) == 0
        try:
            get(url + "/api/v1/ready", timeout=1)
            refused = False
        except OSError:
            refused = True
        assert refused, "the port still answers after the service exited"
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert "ready answers 503 for 1.5 s" in (tmp_path / "serve.log").read_text()
