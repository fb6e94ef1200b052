"""The hostile suite's services, each started once for the session (see hostile_support.py)."""

import pytest

from catalogue import PNG, b64
from hostile_support import Service, serve, submit_and_wait


@pytest.fixture(scope="session")
def mirror(tmp_path_factory):
    """Every payload type, answered unchanged."""
    with serve(tmp_path_factory, "mirror") as server:
        yield Service(server, "mirror")


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """A required image and the template's outputs."""
    with serve(tmp_path_factory, "template") as server:
        yield Service(server, "template")


@pytest.fixture(scope="session")
def jobs(tmp_path_factory):
    """The mirror, stateful, with one finished job holding a text and a list of two images."""
    with serve(tmp_path_factory, "mirror", "-p", "stateful") as server:
        service = Service(server, "mirror")
        service.job = submit_and_wait(service, {"text": "done", "images": [b64(PNG), b64(PNG)]})
        yield service
