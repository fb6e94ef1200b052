"""Replicas of a built image behind a real HAProxy, all on 127.0.0.1: a rolling restart under
load drops nothing, a killed replica fails only what it was running and leaves the pool within
the balancer's check interval, and the pytest plugin passes against the balancer.

Each replica runs as the generated Deployment would (its environment, its non-root user, a
read-only root with tmpfs where the manifest has emptyDirs, no capabilities): what would
break on a cluster breaks here first. docs/deploy.md explains the timings.
"""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from balancer_support import (
    CheckTimings,
    as_in_deployment,
    fleet,
    haproxy,
)
from build_support import build
from pesto_pack import deploy, project

ROOT = Path(__file__).parent.parent
SLEEP = ROOT / "bench" / "runtime" / "projects" / "sleep"
"""process() sleeps 50 ms without the GIL: requests are in flight long enough to be caught."""
TEMPLATE = Path(__file__).parent / "projects" / "template"
CONCURRENCY = 8
REPLICAS = 3

pytestmark = pytest.mark.engine


def deployment_of(root: Path, image: str) -> dict:
    """The Deployment `pesto-pack deploy` writes for this project and image."""
    files = deploy.manifests(deploy.plan(project.load(root), deploy.DeployOptions(image=image)))
    return files["deployment.yaml"]


@pytest.fixture(scope="module")
def sleep_image(engine, base_image) -> str:
    return build(SLEEP)


@pytest.fixture(scope="module")
def pool(engine, sleep_image):
    """Three replicas as the Deployment runs them, behind HAProxy; all removed at the end."""
    options = as_in_deployment(
        deployment_of(SLEEP, sleep_image), PESTO_SLOTS="2", PESTO_DRAIN_DELAY=str(CheckTimings().drain_delay)
    )
    with (
        fleet(engine, sleep_image, REPLICAS, options) as replicas,
        haproxy(replicas.replicas) as balancer,
    ):
        yield replicas, balancer


@dataclass
class Load:
    """Clients at constant concurrency on kept-alive connections; every outcome recorded."""

    url: str
    outcomes: list[tuple[float, float, int | str]] = field(default_factory=list)
    """(sent, answered, status or error) of every request."""
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self) -> None:
        import http.client

        address = urlsplit(self.url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                connection.request(
                    "POST", "/api/v1/process", b'{"text": "hello"}', {"Content-Type": "application/json"}
                )
                answer = connection.getresponse()
                answer.read()
                outcome: int | str = answer.status
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
                connection.close()
            self.outcomes.append((sent, time.monotonic(), outcome))

    def failures(self) -> list[tuple[float, float, int | str]]:
        return [o for o in self.outcomes if o[2] != 200]


@contextmanager
def load(url: str, concurrency: int = CONCURRENCY) -> Iterator[Load]:
    running = Load(url)
    clients = [threading.Thread(target=running.client, daemon=True) for _ in range(concurrency)]
    for client in clients:
        client.start()
    try:
        yield running
    finally:
        running.stop.set()
        for client in clients:
            client.join(timeout=60)


def test_a_rolling_restart_under_load_drops_no_request(pool):
    replicas, balancer = pool
    timings = []
    with load(balancer.url) as traffic:
        time.sleep(1)
        for replica in replicas.replicas:
            drained = replicas.terminate(replica)  # SIGTERM: ready answers 503, then drain
            started = time.monotonic()
            replicas.start(replica)
            back = balancer.wait_status(replica.name, "UP")
            timings.append(
                (replica.name, round(drained, 2), round(time.monotonic() - started, 2), round(back, 2))
            )
        time.sleep(1)
    print("replica, SIGTERM to exit, start to ready, ready to UP in haproxy (s):", timings)
    assert len(traffic.outcomes) > 100
    assert traffic.failures() == []
    after = balancer.servers()
    assert all(int(after[r.name]["stot"]) > 0 for r in replicas.replicas)


def test_a_killed_replica_fails_only_its_requests_in_flight_and_leaves_the_pool(pool):
    replicas, balancer = pool
    victim = replicas.replicas[0]
    with load(balancer.url) as traffic:
        time.sleep(1)
        killed = time.monotonic()
        replicas.kill(victim)
        balancer.wait_status(victim.name, "DOWN")
        out_after = time.monotonic() - killed
        sent_to_it = int(balancer.servers()[victim.name]["stot"])
        time.sleep(1.5)
        still = int(balancer.servers()[victim.name]["stot"])
    failures = traffic.failures()
    print(
        f"killed: {len(failures)} failed of {len(traffic.outcomes)}; out of the pool after {out_after:.2f} s"
    )
    assert all(sent < killed for sent, _, _ in failures), "a request sent after the kill failed"
    assert len(failures) <= CONCURRENCY
    assert out_after <= balancer.checks.down_within + balancer.checks.interval_ms / 1000 + 1.0
    assert still == sent_to_it, "the balancer still sent requests to the killed replica"
    assert len(traffic.outcomes) - len(failures) > 50
    replicas.start(victim)  # the pool whole again for the next test
    balancer.wait_status(victim.name, "UP")


@pytest.fixture(scope="module")
def template_pool(engine, base_image):
    image = build(TEMPLATE)
    with (
        fleet(engine, image, 2, as_in_deployment(deployment_of(TEMPLATE, image))) as replicas,
        haproxy(replicas.replicas) as balancer,
    ):
        yield balancer


def test_the_pytest_plugin_passes_against_the_balancer(template_pool, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--pesto-url={template_pool.url}",
            "-n",
            "4",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--rootdir",
            str(tmp_path),
            str(TEMPLATE / "pesto" / "tests" / "resources"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
