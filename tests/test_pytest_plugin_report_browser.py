"""pytest-html's report of a failing image folder, opened in headless Chromium as a person
would: the failing item's pictures render one after another in the report's media viewer,
and its JSON diff reads as text. Screenshots go to the session's artifacts folder."""

import pytest

import browser_support
from browser_support import rendered_images, screenshot, wait_for
from pytest_plugin_helpers import PROJECTS
from report_support import FAILING, failing_folder
from subprocess_support import pesto_serve_url

pytest_plugins = ["pytester"]
chromium = browser_support.chromium  # the session's browser (a fixture)
browser_artifacts = browser_support.browser_artifacts  # where screenshots go (a fixture)

PANELS = ("expected", "actual", "difference")
PICTURED = ("image", "images item 1", "shape")


@pytest.fixture(scope="module")
def mirror():
    with pesto_serve_url(PROJECTS / "mirror") as url:
        yield url


def shown_picture(driver, body) -> dict:
    """The report's media viewer: the picture's name, and the image once the browser has it."""
    name = body.find_element("css selector", ".media__name").text
    (picture,) = wait_for(
        driver,
        lambda d: [i for i in rendered_images(d, f'tbody[id="{FAILING}"] .media img') if i["complete"]],
        message=f"the report's picture {name!r} never finished loading",
    )
    return {"name": name, **picture}


@pytest.mark.parametrize("self_contained", [False, True], ids=["assets", "self-contained"])
def test_the_report_of_a_failing_image_shows_its_three_pictures(
    pytester, mirror, chromium, browser_artifacts, self_contained
):
    failing_folder(pytester.path)
    report = pytester.path / "report.html"
    args = ["--self-contained-html"] if self_contained else []
    pytester.runpytest(f"--pesto-url={mirror}", f"--html={report}", *args, "-p", "no:randomly")
    mode = "self-contained" if self_contained else "assets"

    chromium.get(report.as_uri())
    body = wait_for(
        chromium,
        lambda d: d.find_elements("css selector", f'tbody.failed[id="{FAILING}"]'),
        message="the report shows no failed item for the test folder",
    )[0]
    seen = []
    for index in range(len(PICTURED) * len(PANELS)):
        if index:
            previous = seen[-1]["name"]
            body.find_element("css selector", ".media-container__nav--right").click()
            wait_for(chromium, lambda d, p=previous: shown_picture(d, body)["name"] != p)
        seen.append(shown_picture(chromium, body))
        if seen[-1]["name"] in ("image: difference", "shape: difference"):
            slug = seen[-1]["name"].replace(": ", "-")
            screenshot(chromium, browser_artifacts, f"report-{mode}-{slug}")

    assert [s["name"] for s in seen] == [f"{label}: {panel}" for label in PICTURED for panel in PANELS]
    assert all(s["naturalWidth"] > 0 and s["naturalHeight"] > 0 for s in seen), seen
    differences = body.find_element("css selector", ".pesto-differences").text
    assert '-    "label": "dog",' in differences and '+    "label": "cat",' in differences
    assert "blue: within the tolerance 0" in differences
