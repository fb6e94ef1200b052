"""The try-it page (`GET /`): served safely, made from the service's own schemas, and used in a
real headless Chromium as a person would: files picked, fields filled, Run pressed, answers read.

The browser tests run against `pesto-serve` on the host (one process per project for the whole
session); tests/test_page_image.py runs the page of a real container. Screenshots of each
state go to the session's `browser_artifacts` folder.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import browser_support
from browser_support import screenshot, wait_for
from page_support import control, expected_pixels, fill, open_page, output, pixels, run_and_wait
from pesto_pack.errors import PestoError
from pesto_pack.types.base import ListType, PayloadType
from pesto_serve.page import CONTENT_SECURITY_POLICY, FILES, field_kinds
from pesto_serve.settings import Settings
from serve_support import PROJECTS, copy_project, error_of, served
from subprocess_support import pesto_serve, running

chromium = browser_support.chromium  # the session's browser (a fixture)
browser_artifacts = browser_support.browser_artifacts  # where screenshots go (a fixture)

TEMPLATE = PROJECTS / "template"
TEMPLATE_TEST = TEMPLATE / "pesto" / "tests" / "resources" / "test_1"
MIRROR_MAX_BODY = 300_000
PAGE_FOLDER = Path(__file__).resolve().parent.parent / "pesto_serve" / "page"


# -- the service side, in-process ---------------------------------------------------------------


def test_page_is_served_with_a_policy_that_allows_no_inline_script_and_no_other_origin():
    with served("mirror") as (app, _):
        page = app.get("/")
        script = app.get("/page/page.js")
        fields = app.get("/page/fields.json")
    assert page.content_type == "text/html"
    for answer in (page, script, fields):
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    html = page.text
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'\bsrc="page/[\w.]+"', tag) for tag in scripts)
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"\son\w+=", html), "no inline event handler"


def test_page_files_name_no_other_origin_and_never_write_html():
    for name in FILES:
        text = (PAGE_FOLDER / name).read_text()
        assert not re.search(
            r"(https?:)?//[\w.-]+\.[a-z]{2,}/", text.replace("http://www.w3.org/2000/svg", "")
        ), name
    script = (PAGE_FOLDER / "page.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, f"page.js uses {sink}"


def test_every_page_file_is_package_data_so_the_image_carries_it():
    import fnmatch
    import tomllib

    pyproject = tomllib.loads((PAGE_FOLDER.parent.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["pesto_serve"]
    files = [
        path.name for path in PAGE_FOLDER.iterdir() if path.suffix not in (".py", ".pyc") and path.is_file()
    ]
    assert set(files) >= set(FILES)
    for name in files:
        assert any(fnmatch.fnmatch(f"page/{name}", pattern) for pattern in patterns), name


def test_fields_json_says_how_to_show_each_input_and_output():
    with served("mirror") as (app, _):
        fields = app.get("/page/fields.json").json
    assert fields["inputs"] == {
        "text": "string",
        "count": "integer",
        "ratio": "number",
        "flag": "boolean",
        "meta": "json",
        "metas": "json",
        "shape": "polygon",
        "shapes": "polygons",
        "image": "image",
        "images": "images",
    }
    assert fields["outputs"] == fields["inputs"]


def test_a_plugin_type_with_an_image_media_type_gets_a_file_picker():
    mask = PayloadType("Mask", definition={"type": "string"}, media_type="image/png")
    masks = ListType("Masks", definition={"type": "array"}, items=mask)
    table = PayloadType("Table", definition={"type": "object"})
    assert field_kinds({"mask": mask, "masks": masks, "table": table}) == {
        "mask": "image",
        "masks": "images",
        "table": "json",
    }


def test_pesto_page_0_turns_the_page_off():
    assert Settings.from_env({}).page is True
    assert Settings.from_env({"PESTO_PAGE": "0"}).page is False
    assert Settings.from_env({"PESTO_PAGE": "off"}).page is False
    assert Settings.from_env({"PESTO_PAGE": "yes"}).page is True
    with pytest.raises(PestoError, match="PESTO_PAGE='maybe' is not valid"):
        Settings.from_env({"PESTO_PAGE": "maybe"})
    with served("echo", page=False) as (app, _):
        answer = app.get("/", status=404)
        assert error_of(answer)["status"] == 404
        app.get("/page/page.js", status=404)
        assert app.get("/api/v1/describe").status_int == 200
        assert "/" not in app.get("/api/v1/openapi.json").json["paths"]


def test_openapi_lists_the_page_routes_when_the_page_is_on():
    with served("echo") as (app, _):
        paths = app.get("/api/v1/openapi.json").json["paths"]
    assert "text/html" in paths["/"]["get"]["responses"]["200"]["content"]
    name = paths["/page/{name}"]["get"]["parameters"][0]
    assert set(name["schema"]["enum"]) == {"page.js", "page.css", "fields.json"}


def test_page_answers_not_modified_to_a_browser_that_has_it():
    with served("echo") as (app, _):
        first = app.get("/page/page.css")
        again = app.get("/page/page.css", headers={"If-None-Match": first.headers["ETag"]}, status=304)
    assert again.body == b""
    assert first.content_type == "text/css"


# -- services on the host, for the browser ------------------------------------------------------


@pytest.fixture(scope="session")
def mirror_url(tmp_path_factory) -> Iterator[str]:
    """The mirror project (every kind of input, answered unchanged), with a small body limit."""
    env = {"PESTO_MAX_BODY_BYTES": str(MIRROR_MAX_BODY)}
    with running(pesto_serve("mirror"), tmp_path_factory.mktemp("mirror"), env=env) as server:
        yield server.url


@pytest.fixture(scope="session")
def template_url(tmp_path_factory) -> Iterator[str]:
    """The original PESTO template's shape: images, polygons, metadata, numbers and text."""
    with running(pesto_serve("template"), tmp_path_factory.mktemp("template")) as server:
        yield server.url


@pytest.fixture(scope="session")
def stateful_url(tmp_path_factory) -> Iterator[str]:
    """The same template as a stateful service: each run is a job."""
    with running(pesto_serve("template", "-p", "stateful"), tmp_path_factory.mktemp("stateful")) as server:
        yield server.url


# -- using the page -----------------------------------------------------------------------------


def fill_template_inputs(driver) -> None:
    inputs = TEMPLATE_TEST / "input"
    control(driver, "image").send_keys(str(inputs / "image.png"))
    for name in ("dict_parameter", "object_parameter"):
        fill(driver, name, (inputs / f"{name}.json").read_text())
    fill(driver, "integer_parameter", (inputs / "integer_parameter.int").read_text().strip())
    fill(driver, "number_parameter", (inputs / "number_parameter.float").read_text().strip())
    fill(driver, "string_parameter", (inputs / "string_parameter.string").read_text())


def check_template_outputs(driver) -> None:
    """The answer of test_1 as the page shows it: pictures with the expected pixels, polygons
    drawn, numbers and text as text, JSON pretty-printed."""
    expected = TEMPLATE_TEST / "output"
    shown = pixels(driver, output(driver, "image").find_element("tag name", "img"))
    assert np.array_equal(shown, expected_pixels(expected / "image.png"))
    pictures = output(driver, "image_list").find_elements("tag name", "img")
    assert len(pictures) == 2
    for index, picture in enumerate(pictures):
        assert np.array_equal(
            pixels(driver, picture), expected_pixels(expected / "image_list" / f"{index}.png")
        )
    paths = output(driver, "areas").find_elements("css selector", "svg.polygons path")
    assert len(paths) == 2
    first_ring = json.loads((expected / "areas" / "0.geojson").read_text())["coordinates"][0]
    assert paths[0].get_attribute("d").startswith(f"M{first_ring[0][0]} {first_ring[0][1]} L")
    assert output(driver, "string_output").find_element("tag name", "output").text == (
        (expected / "string_output.string").read_text().strip()
    )
    number = float(output(driver, "number_output").find_element("tag name", "output").text)
    assert number == pytest.approx(float((expected / "number_output.float").read_text()))
    assert output(driver, "integer_output").find_element("tag name", "output").text == (
        (expected / "integer_output.int").read_text().strip()
    )
    shown_json = output(driver, "dict_output").find_element("tag name", "pre").text
    assert json.loads(shown_json) == json.loads((expected / "dict_output.json").read_text())
    assert "\n  " in shown_json, "pretty-printed"


def test_every_input_gets_a_labelled_control_of_its_kind(chromium, mirror_url, browser_artifacts):
    open_page(chromium, mirror_url)
    assert chromium.find_element("id", "title").text == "mirror"
    assert chromium.find_element("id", "version").text == "version 1.0.0"
    assert "unchanged" in chromium.find_element("id", "description").text
    kinds = {
        "text": ("input", "text"),
        "count": ("input", "number"),
        "ratio": ("input", "number"),
        "flag": ("input", "checkbox"),
        "image": ("input", "file"),
        "images": ("input", "file"),
        "meta": ("textarea", None),
        "metas": ("textarea", None),
        "shape": ("textarea", None),
        "shapes": ("textarea", None),
    }
    for name, (tag, kind) in kinds.items():
        element = control(chromium, name)
        assert element.tag_name == tag, name
        if kind:
            assert element.get_attribute("type") == kind, name
        assert element.get_attribute("aria-describedby"), name
    assert control(chromium, "count").get_attribute("step") == "1"
    assert control(chromium, "ratio").get_attribute("step") == "any"
    assert control(chromium, "images").get_attribute("multiple") == "true"
    assert control(chromium, "image").get_attribute("multiple") is None
    links = {a.text: a.get_attribute("href") for a in chromium.find_elements("css selector", "nav a")}
    assert links["describe"] == f"{mirror_url}/api/v1/describe"
    assert links["openapi.json"] == f"{mirror_url}/api/v1/openapi.json"
    assert links["metrics"] == f"{mirror_url}/metrics"
    screenshot(chromium, browser_artifacts, "page-mirror-form")


BOUNDED_INPUTS = {
    "text": {"type": "string", "description": "A choice", "enum": ["preset", "other"], "default": "preset"},
    "number": {
        "type": "number",
        "description": "A bounded number",
        "minimum": 0,
        "maximum": 10,
        "default": 2.5,
    },
    "required": ["text"],
}


@pytest.fixture(scope="session")
def bounded_url(tmp_path_factory) -> Iterator[str]:
    """The echo project with defaults, bounds and a choice in its input schema."""
    folder = tmp_path_factory.mktemp("bounded")
    project = copy_project("echo", folder)
    (project / "pesto" / "api" / "input_schema.json").write_text(json.dumps(BOUNDED_INPUTS))
    with running(pesto_serve(str(project)), folder) as server:
        yield server.url


def test_defaults_are_filled_and_bounds_checked_before_sending(chromium, bounded_url, browser_artifacts):
    open_page(chromium, bounded_url)
    choice = control(chromium, "text")
    assert choice.tag_name == "select"
    assert [option.text for option in choice.find_elements("tag name", "option")] == ["preset", "other"]
    assert choice.get_attribute("value") == "preset"
    number = control(chromium, "number")
    assert (number.get_attribute("min"), number.get_attribute("max")) == ("0", "10")
    assert number.get_attribute("value") == "2.5"
    assert "at least 0, at most 10" in chromium.find_element("css selector", '[data-field="number"]').text
    fill(chromium, "number", "11")
    chromium.find_element("id", "run").click()
    wait_for(chromium, lambda d: d.find_element("id", "error").is_displayed())
    assert "number: must be at most 10" in chromium.find_element("id", "error").text
    assert not chromium.find_element("id", "outputs").is_displayed()
    screenshot(chromium, browser_artifacts, "page-bounds")
    fill(chromium, "number", "10")
    run_and_wait(chromium)
    assert output(chromium, "text").find_element("tag name", "output").text == "preset"
    assert output(chromium, "number").find_element("tag name", "output").text == "10"


def test_answers_are_shown_as_text_never_as_html(chromium, mirror_url, browser_artifacts):
    open_page(chromium, mirror_url)
    hostile = '<img src=x id=injected onerror="document.title=1">&amp; "quoted"'
    fill(chromium, "text", hostile)
    fill(chromium, "count", "7")
    fill(chromium, "ratio", "0.5")
    control(chromium, "flag").click()
    fill(chromium, "meta", '{"name": "<b>bold</b>", "n": [1, 2]}')
    fill(chromium, "shape", '{"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 3], [0, 0]]]}')
    run_and_wait(chromium)
    assert output(chromium, "text").find_element("tag name", "output").text == hostile
    assert not chromium.find_elements("id", "injected")
    assert output(chromium, "count").find_element("tag name", "output").text == "7"
    assert output(chromium, "ratio").find_element("tag name", "output").text == "0.5"
    assert output(chromium, "flag").find_element("tag name", "output").text == "true"
    assert json.loads(output(chromium, "meta").find_element("tag name", "pre").text) == {
        "name": "<b>bold</b>",
        "n": [1, 2],
    }
    path = output(chromium, "shape").find_element("css selector", "svg.polygons path")
    assert path.get_attribute("d") == "M0 0 L4 0 L4 3 L0 0 Z"
    screenshot(chromium, browser_artifacts, "page-mirror-answer")


def test_several_images_go_in_and_come_back_as_pictures(chromium, mirror_url):
    photos = [TEMPLATE_TEST / "input" / "image.png", TEMPLATE_TEST.parent / "test_2" / "input" / "image.png"]
    open_page(chromium, mirror_url)
    control(chromium, "images").send_keys("\n".join(str(photo) for photo in photos))
    wait_for(
        chromium,
        lambda d: len(d.find_elements("css selector", '[data-field="images"] canvas')) == 2,
        message="not two previews",
    )
    run_and_wait(chromium)
    pictures = output(chromium, "images").find_elements("tag name", "img")
    assert len(pictures) == 2
    for picture, photo in zip(pictures, photos, strict=True):
        assert np.array_equal(pixels(chromium, picture), expected_pixels(photo))


def test_the_form_is_used_with_the_keyboard_alone(chromium, mirror_url):
    from selenium.webdriver.common.keys import Keys

    open_page(chromium, mirror_url)
    chromium.find_element("tag name", "body").send_keys(Keys.TAB)
    visited = []
    for _ in range(30):
        focused = chromium.switch_to.active_element
        visited.append(focused.get_attribute("id") or focused.text)
        if focused.get_attribute("id") == "input-0":
            break
        focused.send_keys(Keys.TAB)
    assert visited[-1] == "input-0", f"Tab never reached the first input: {visited}"
    chromium.switch_to.active_element.send_keys("typed", Keys.TAB, "3", Keys.ENTER)
    wait_for(chromium, lambda d: d.find_element("id", "outputs").is_displayed(), message="Enter did not run")
    assert output(chromium, "text").find_element("tag name", "output").text == "typed"
    assert output(chromium, "count").find_element("tag name", "output").text == "3"


def test_a_json_editor_says_what_is_wrong_before_anything_is_sent(chromium, mirror_url, browser_artifacts):
    open_page(chromium, mirror_url)
    fill(chromium, "meta", "{not json")
    check = control(chromium, "meta").find_element("xpath", "following-sibling::p[@class='json-check bad']")
    assert "not valid JSON" in check.text
    fill(chromium, "shapes", '{"type": "Polygon"}')
    chromium.find_element("id", "run").click()
    wait_for(chromium, lambda d: d.find_element("id", "error").is_displayed())
    message = chromium.find_element("id", "error").text
    assert "meta: not valid JSON" in message
    assert "shapes: must be a JSON array, this is a JSON object" in message
    assert control(chromium, "meta").get_attribute("aria-invalid") == "true"
    assert chromium.switch_to.active_element == control(chromium, "meta")
    assert not chromium.find_element("id", "outputs").is_displayed()
    screenshot(chromium, browser_artifacts, "page-mirror-json-error")


def test_a_large_photo_is_previewed_small_and_a_413_is_a_message(
    chromium, mirror_url, tmp_path, browser_artifacts
):
    noise = np.random.default_rng(16).integers(0, 256, (1800, 2400, 3), dtype=np.uint8)
    photo = tmp_path / "large.png"
    Image.fromarray(noise).save(photo, compress_level=1)
    assert photo.stat().st_size > MIRROR_MAX_BODY
    open_page(chromium, mirror_url)
    control(chromium, "image").send_keys(str(photo))
    canvas = wait_for(
        chromium, lambda d: d.find_elements("css selector", ".previews canvas"), message="no preview"
    )[0]
    assert int(canvas.get_attribute("width")) == 320 and int(canvas.get_attribute("height")) == 240
    assert "2400 × 1800" in chromium.find_element("css selector", ".previews figcaption").text
    # Far over the limit: the server's own backstop answers 413 before the app reads it.
    run_and_wait(chromium, "error")
    message = chromium.find_element("id", "error").text
    assert "413" in message and (
        "larger than this service accepts" in message or "PESTO_MAX_BODY_BYTES" in message
    )
    assert chromium.find_element("id", "title").text == "mirror", "the page is still there"
    # Over PESTO_MAX_BODY_BYTES: the service's JSON 413, which says what to do.
    medium = tmp_path / "medium.png"
    Image.fromarray(noise[:400, :400]).save(medium, compress_level=1)
    control(chromium, "image").clear()
    control(chromium, "image").send_keys(str(medium))
    run_and_wait(chromium, "error")
    message = chromium.find_element("id", "error").text
    assert "413" in message and "PESTO_MAX_BODY_BYTES" in message
    screenshot(chromium, browser_artifacts, "page-mirror-413")


def test_template_image_output_shows_the_expected_pixels(chromium, template_url, tmp_path, browser_artifacts):
    open_page(chromium, template_url)
    image = control(chromium, "image")
    assert image.get_attribute("required") == "true"
    assert "required" in chromium.find_element("xpath", "//label[span[text()='image']]").text
    fill_template_inputs(chromium)
    wait_for(chromium, lambda d: d.find_elements("css selector", ".previews canvas"), message="no preview")
    run_and_wait(chromium)
    check_template_outputs(chromium)
    screenshot(chromium, browser_artifacts, "page-template-answer")


def test_template_bad_input_shows_its_error_beside_the_field(
    chromium, template_url, tmp_path, browser_artifacts
):
    open_page(chromium, template_url)
    chromium.find_element("id", "run").click()
    wait_for(chromium, lambda d: d.find_element("id", "error").is_displayed())
    assert "image: is required: choose a file" in chromium.find_element("id", "error").text
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are notes, not a picture")
    fill_template_inputs(chromium)
    control(chromium, "image").clear()
    control(chromium, "image").send_keys(str(not_an_image))
    run_and_wait(chromium, "error")
    field_error = chromium.find_element("css selector", '[data-field="image"] .field-error')
    assert field_error.is_displayed() and field_error.text
    assert "400" in chromium.find_element("id", "error").text
    assert field_error.text in chromium.find_element("id", "error").text
    assert control(chromium, "image").get_attribute("aria-invalid") == "true"
    screenshot(chromium, browser_artifacts, "page-template-bad-input")


def test_stateful_job_moves_to_done_and_its_results_appear(
    chromium, stateful_url, tmp_path, browser_artifacts
):
    open_page(chromium, stateful_url)
    assert "stateful" in chromium.find_element("id", "mode").text
    fill_template_inputs(chromium)
    run_and_wait(chromium)
    status = chromium.find_element("id", "job-status")
    assert status.get_attribute("data-status") == "DONE"
    assert re.fullmatch(r"Job \S+: DONE.*", status.text)
    check_template_outputs(chromium)
    assert not chromium.find_element("id", "cancel").is_displayed()
    screenshot(chromium, browser_artifacts, "page-stateful-done")


SLOW_PROCESS = """import time

from algorithm.input_output import Input, Output


class Process:
    @staticmethod
    def process(input: Input, progress) -> Output:
        if input.text == "fail":
            raise ValueError("this text cannot be processed")
        for percent in range(100):
            progress(percent)
            time.sleep(0.1)
        return Output(text=input.text, number=input.number)
"""


@pytest.fixture(scope="session")
def slow_stateful_url(tmp_path_factory) -> Iterator[str]:
    """A stateful service whose process() takes 10 s and reports its progress (or fails at once
    on the text `fail`)."""
    folder = tmp_path_factory.mktemp("slow")
    project = copy_project("echo", folder)
    (project / "algorithm" / "process.py").write_text(SLOW_PROCESS)
    with running(pesto_serve(str(project), "-p", "stateful"), folder) as server:
        yield server.url


def test_a_running_job_shows_its_progress_and_is_cancelled(chromium, slow_stateful_url, browser_artifacts):
    open_page(chromium, slow_stateful_url)
    fill(chromium, "text", "slow")
    chromium.find_element("id", "run").click()
    wait_for(
        chromium,
        lambda d: re.search(r"RUNNING, [1-9]\d* %", d.find_element("id", "job-status").text),
        message="no progress above 0 % shown",
    )
    bar = chromium.find_element("id", "job-progress")
    assert bar.is_displayed() and 0 < float(bar.get_attribute("value")) < 1
    assert not chromium.find_element("id", "run").is_enabled()
    screenshot(chromium, browser_artifacts, "page-stateful-progress")
    chromium.find_element("id", "cancel").click()
    wait_for(
        chromium,
        lambda d: d.find_element("id", "job-status").get_attribute("data-status") == "CANCELLED",
        message="the job never ended CANCELLED",
    )
    assert "CANCELLED" in chromium.find_element("id", "page-status").text
    assert not chromium.find_element("id", "outputs").is_displayed()
    assert not chromium.find_element("id", "cancel").is_displayed()
    assert chromium.find_element("id", "run").is_enabled()
    screenshot(chromium, browser_artifacts, "page-stateful-cancelled")


def test_a_failed_job_shows_why(chromium, slow_stateful_url, browser_artifacts):
    open_page(chromium, slow_stateful_url)
    fill(chromium, "text", "fail")
    run_and_wait(chromium, "error")
    assert chromium.find_element("id", "job-status").get_attribute("data-status") == "ERROR"
    message = chromium.find_element("id", "error").text
    assert "failed" in message and "ValueError: this text cannot be processed" in message
    assert not chromium.find_element("id", "outputs").is_displayed()
    screenshot(chromium, browser_artifacts, "page-stateful-error")


def test_an_image_the_browser_cannot_show_is_offered_as_a_file(chromium, mirror_url, tmp_path):
    import tifffile

    bands = np.linspace(0, 1, 2 * 8 * 12, dtype=np.float32).reshape(2, 8, 12)
    photo = tmp_path / "bands.tif"
    tifffile.imwrite(photo, bands, photometric="minisblack", planarconfig="separate")
    open_page(chromium, mirror_url)
    control(chromium, "image").send_keys(str(photo))
    caption = wait_for(
        chromium, lambda d: d.find_elements("css selector", '[data-field="image"] figcaption')
    )[0]
    wait_for(chromium, lambda d: "no preview" in caption.text, message="no word about the missing preview")
    run_and_wait(chromium)
    link = output(chromium, "image").find_element("tag name", "a")
    assert "image/tiff" in link.text
    assert link.get_attribute("download") == "image.tiff"
    assert link.get_attribute("href").startswith("blob:")
    assert not output(chromium, "image").find_elements("tag name", "img")
