"""Containers left by a killed session are removed by the next one, and no other container is."""

import subprocess
import sys

import pytest

from pesto_pack import containers

pytestmark = pytest.mark.engine


def test_an_owner_is_alive_while_its_process_runs_and_gone_after():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = f"{containers.current_owner().split(':')[0]}:{child.pid}:{containers._started(child.pid)}"
        assert containers.owner_alive(owner)
        assert containers.owner_alive(containers.current_owner())
    finally:
        child.kill()
        child.wait()
    assert not containers.owner_alive(owner)
    assert containers.owner_alive(f"another-host:{child.pid}:1"), (
        "another host's processes are not ours to judge"
    )
    assert not containers.owner_alive(owner.rpartition(":")[0] + ":1"), "a reused pid is another process"


def test_the_next_start_removes_the_containers_of_a_killed_owner(engine, base_image):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_owner = f"{containers.current_owner().split(':')[0]}:{dead.pid}:{containers._started(dead.pid)}"
    dead.wait()
    orphan = engine.containers.run(
        base_image,
        ["sleep", "300"],
        detach=True,
        name="pesto-test-orphan-" + str(dead.pid),
        labels={containers.TEST_LABEL: "true", containers.OWNER_LABEL: dead_owner},
    )
    ours = engine.containers.run(
        base_image,
        ["sleep", "300"],
        detach=True,
        labels={containers.TEST_LABEL: "true", containers.OWNER_LABEL: containers.current_owner()},
    )
    try:
        assert orphan.name in containers.reap_orphans(engine)
        names = {c.name for c in engine.containers.list(all=True)}
        assert orphan.name not in names and ours.name in names
    finally:
        for container in (orphan, ours):
            try:
                container.remove(force=True)
            except Exception:
                pass
