"""Fixtures shared by the toolkit's own tests."""

import http.server
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from redis_support import redis_server, redis_url  # noqa: F401 - fixtures of the job tests

BASE_IMAGE = os.environ.get("PESTO_BASE_IMAGE", "pesto-base:bookworm")


@pytest.fixture(scope="session")
def engine():
    """A docker SDK client of the container engine; the test errors clearly when none answers."""
    from pesto_pack.engine import connect

    try:
        return connect()
    except Exception as error:  # the engine's own message says what is wrong
        pytest.fail(
            f"no container engine answers ({error}). Run `scripts/setup-engine` (Debian, root) "
            "or start Docker, then run the tests again.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def base_image(engine) -> str:
    """The Python 3.11 base image that test builds start from (made by scripts/setup-engine)."""
    from docker.errors import ImageNotFound

    try:
        engine.images.get(BASE_IMAGE)
    except ImageNotFound:
        pytest.fail(f"base image {BASE_IMAGE} is missing; run `scripts/setup-engine`", pytrace=False)
    return BASE_IMAGE


@dataclass
class FileServer:
    """A loopback HTTP server of one folder: what a URL in a request or a resource points to."""

    folder: Path
    url: str
    requests: list[str] = field(default_factory=list)
    """The paths asked for, in order."""
    redirects: dict[str, str] = field(default_factory=dict)
    """Path prefix to the `Location` of a 302 answered instead of the file."""


@pytest.fixture
def file_server(tmp_path: Path):
    """A `FileServer` on 127.0.0.1 serving `tmp_path / "served"`, stopped after the test."""
    folder = tmp_path / "served"
    folder.mkdir()
    server_state = FileServer(folder, "")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            server_state.requests.append(self.path)
            for prefix, location in server_state.redirects.items():
                if self.path.startswith(prefix):
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                    return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def pytest_sessionfinish(session) -> None:
    """Remove the images that the tests built with `build_support.build()`, and their
    dependencies images: a test run leaves the engine as it found it."""
    from build_support import BUILT_TAGS, remove_with_its_dependencies

    if not BUILT_TAGS:
        return
    from pesto_pack.engine import connect

    engine = connect()
    for tag in sorted(BUILT_TAGS):
        remove_with_its_dependencies(engine, tag)
