"""Fixtures shared by the toolkit's own tests."""

import os

import pytest

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
