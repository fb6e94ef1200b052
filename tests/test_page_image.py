"""The page of a real image: the example classifier built as a user builds it, its container's
`GET /` used in headless Chromium: pick the cat photo, press Run, read `Egyptian_cat`.

This also shows that the page's files travel in the image (package data of the runtime wheel,
unpacked into /opt/pesto/runtime). The image and its dependencies image (torch, about 1 GB;
the wheels come from the build cache) are removed when the session ends.
"""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

import browser_support
from browser_support import screenshot, wait_for
from build_support import BUILT_TAGS
from page_support import control, open_page, output
from pesto_pack import containers, project
from pesto_pack.build import build

chromium = browser_support.chromium  # the session's browser (a fixture)
browser_artifacts = browser_support.browser_artifacts  # where screenshots go (a fixture)

pytestmark = [pytest.mark.engine, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
CAT = EXAMPLE / "pesto" / "tests" / "resources" / "test_1" / "input" / "image.png"
START_SECONDS = 120.0
THREADS = {"OMP_NUM_THREADS": "1"}
"""torch's threads collapse when other jobs share the cores (example_project/README.md)."""


@pytest.fixture(scope="module")
def example_url(engine, base_image):
    """The example's default image (its own tag, never a person's), running on loopback."""
    subprocess.run(
        [sys.executable, str(EXAMPLE / "scripts" / "make_checkpoint.py")],
        check=True,
        capture_output=True,
        timeout=600,
    )
    tag = f"{project.load(EXAMPLE).tag}-page-{secrets.token_hex(4)}"
    BUILT_TAGS.add(tag)  # removed with its dependencies image when the session ends
    build(EXAMPLE, tag=tag, log=print)
    service = containers.start(tag, start_timeout=START_SECONDS, environment=THREADS)
    try:
        yield service.url
    finally:
        service.remove()


def test_the_example_image_page_sees_the_cat(chromium, example_url, browser_artifacts):
    open_page(chromium, example_url)
    assert chromium.find_element("id", "title").text == "image-classifier"
    assert "ImageNet" in chromium.find_element("id", "description").text
    control(chromium, "image").send_keys(str(CAT))
    wait_for(chromium, lambda d: d.find_elements("css selector", ".previews canvas"), message="no preview")
    screenshot(chromium, browser_artifacts, "page-example-cat-picked")
    chromium.find_element("id", "run").click()
    category = wait_for(
        chromium,
        lambda d: d.find_elements("css selector", '[data-output="category"] output'),
        timeout=START_SECONDS,
        message="no category shown",
    )[0]
    assert category.text == "Egyptian_cat"
    assert not chromium.find_element("id", "error").is_displayed()
    assert output(chromium, "category").find_element("tag name", "h3").text == "category"
    screenshot(chromium, browser_artifacts, "page-example-cat")
