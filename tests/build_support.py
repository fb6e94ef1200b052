"""Helpers of the build tests that run images: a ready container and HTTP to it."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from docker.errors import APIError, ImageNotFound

READY_TIMEOUT = 60.0
PESTO_PACK = Path(sys.executable).with_name("pesto-pack")
BUILT_TAGS: set[str] = set()
"""Images that `build()` made in this session: removed when the session ends (conftest.py)."""


def build(project: Path, *profiles: str) -> str:
    """`pesto-pack build PROJECT [-p ...]`; the tag it prints last."""
    command = [str(PESTO_PACK), "build", str(project)] + (["-p", *profiles] if profiles else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}", pytrace=False)
    tag = done.stdout.strip().splitlines()[-1]
    BUILT_TAGS.add(tag)
    return tag


def remove_with_its_dependencies(engine, tag: str) -> None:
    """Remove a service image and the dependencies image it was built on."""
    try:
        image = engine.images.get(tag)
    except ImageNotFound:
        return
    engine.api.remove_image(tag, force=True)
    try:
        engine.api.remove_image(image.labels["org.pesto.dependencies"], force=True)
    except (ImageNotFound, APIError):  # gone already, or another tag still uses it
        pass


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextmanager
def running(engine, tag: str) -> Iterator[tuple[str, object]]:
    """The image's container on a random port of 127.0.0.1, ready; always removed."""
    container = engine.containers.run(tag, detach=True, ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        url = wait_ready(container)
        yield url, container
    finally:
        container.remove(force=True)


def wait_ready(container) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            pytest.fail(f"the container stopped:\n{container.logs().decode()[-3000:]}")
        ports = (container.attrs["NetworkSettings"]["Ports"] or {}).get("8080/tcp")
        if ports:
            url = f"http://127.0.0.1:{ports[0]['HostPort']}"
            try:
                if http(url, "GET", "/api/v1/ready")[0] == 200:
                    return url
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail(f"not ready after {READY_TIMEOUT} s:\n{container.logs().decode()[-3000:]}")


def http(url: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(
        url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    try:
        with NO_PROXY.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
