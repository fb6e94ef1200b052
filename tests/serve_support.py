"""Helpers of the pesto_serve tests: a fixture project served in-process through WebTest."""

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import webtest

from pesto_serve.app import make_app
from pesto_serve.host import project_on_host
from pesto_serve.service import Service
from pesto_serve.settings import Settings

PROJECTS = Path(__file__).parent / "projects"


@contextmanager
def served(
    project: str | Path, profiles: tuple[str, ...] = (), start: bool = True, **settings
) -> Iterator[tuple[webtest.TestApp, Service]]:
    """A fixture project (a name under tests/projects, or a folder) as a WebTest app."""
    folder = project if isinstance(project, Path) else PROJECTS / project
    with project_on_host(folder, profiles, replace(Settings(), **settings)) as (loaded, merged):
        service = Service(loaded.api, merged)
        try:
            if start:
                service.start()
            yield webtest.TestApp(make_app(service)), service
        finally:
            service.close()


def copy_project(name: str, destination: Path) -> Path:
    """A fixture project copied to change its files in a test."""
    return Path(shutil.copytree(PROJECTS / name, destination / name))


def error_of(response) -> dict:
    """The `error` object of a JSON error answer, checking the shape on the way."""
    assert response.content_type == "application/json"
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "field", "message"}
    assert body["error"]["status"] == response.status_int
    return body["error"]
