"""A failing image folder leaves pictures: beside the actual answer, and in pytest-html's report.

The `mirror` project, served by a real `pesto-serve`, answers its inputs unchanged, so an
`output/` that differs from `input/` is a failure whose pictures the plugin must draw.
"""

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_plugin_helpers import PROJECTS
from report_support import FAILING, extras_of, failing_folder
from subprocess_support import pesto_serve_url

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def mirror():
    with pesto_serve_url(PROJECTS / "mirror") as url:
        yield url


def run(pytester, url: str, *args: str):
    return pytester.runpytest(f"--pesto-url={url}", "-p", "no:randomly", "-p", "no:cacheprovider", *args)


def picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# -- files beside the actual answer and the failure message ---------------------------------------
def test_a_failing_folder_saves_a_difference_and_a_sheet_per_differing_picture(pytester, mirror):
    folder = failing_folder(pytester.path)

    result = run(pytester, mirror, "-p", "no:html", f"--pesto-results={pytester.path / 'results.json'}")

    result.assert_outcomes(failed=1)
    actual = folder / "actual"
    unequal = json.loads((pytester.path / "results.json").read_text())["test_differs"]["KeysNotEqual"]
    assert unequal["image"]["pictures"] == [str(actual / "image.sheet.png"), str(actual / "image.diff.png")]
    assert unequal["images"]["pictures"] == [
        str(actual / "images.1.sheet.png"),
        str(actual / "images.1.diff.png"),
    ]
    assert "pictures" not in unequal["meta"]
    assert sorted(p.name for p in actual.iterdir() if ".diff." in p.name or ".sheet." in p.name) == [
        "image.diff.png", "image.sheet.png",
        "images.1.diff.png", "images.1.sheet.png",
        "shape.diff.png", "shape.sheet.png",
    ]  # fmt: skip
    shown = "pesto/tests/resources/test_differs/actual"
    result.stdout.fnmatch_lines(
        [
            "  image: 1 of 256 pixels (0.391%) differ by more than the tolerance 0; mean difference 0.0013",
            "  image: largest pixel difference 1 (band 0, row 5, column 7) is over the tolerance 0: *",
            "  images: item 1: image shapes differ: expected (1, 8, 16) uint8, got (1, 16, 16) uint8",
            "the whole actual answer is saved in pesto/tests/resources/test_differs/actual/",
            "pictures of the differences:",
            f"  image: see {shown}/image.sheet.png (expected | actual | difference) and image.diff.png",
            f"  images item 1: see {shown}/images.1.sheet.png (expected | actual | difference) and images.1.diff.png",
            f"  shape: see {shown}/shape.sheet.png (expected | actual | difference) and shape.diff.png",
            "*pytest --pesto-update*",
        ]
    )
    difference = picture(actual / "image.diff.png")
    factor = difference.shape[0] // 16
    red, _, blue = difference[5 * factor + factor // 2, 7 * factor + factor // 2]
    assert (red, blue) == (255, 0)  # the one-level change, plainly red
    sheet = picture(actual / "image.sheet.png")
    assert sheet.shape[1] > 3 * difference.shape[1] and sheet.shape[0] > difference.shape[0]
    assert "Traceback" not in result.stdout.str()


def test_a_folder_that_passes_again_loses_its_pictures(pytester, mirror):
    folder = failing_folder(pytester.path)
    run(pytester, mirror, "-p", "no:html").assert_outcomes(failed=1)
    assert (folder / "actual" / "image.sheet.png").is_file()

    run(pytester, mirror, "--pesto-update", "-p", "no:html").assert_outcomes(passed=1)
    result = run(pytester, mirror, "-p", "no:html")

    result.assert_outcomes(passed=1)
    assert not (folder / "actual").exists()


def test_a_type_whose_drawing_fails_still_reports_the_mismatch_and_says_why_it_has_no_pictures(
    pytester, mirror
):
    failing_folder(pytester.path)
    pytester.makeconftest(
        """
        from pesto_pack.types.images import ImageType

        def broken(self, expected, actual, tolerance):
            raise RuntimeError("the plugin's drawing broke")

        def pytest_configure(config):
            ImageType.draw_difference = broken

        def pytest_unconfigure(config):
            del ImageType.draw_difference
        """
    )

    result = run(pytester, mirror, "-p", "no:html")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  image: largest pixel difference 1 *",
            "pictures of the differences:",
            "  image: no pictures (RuntimeError: the plugin's drawing broke)",
            "  images: no pictures (RuntimeError: the plugin's drawing broke)",
            "  shape: see */shape.sheet.png (expected | actual | difference) and shape.diff.png",
        ]
    )


def test_without_pytest_html_the_plugin_reports_as_usual_and_says_nothing_more(pytester, mirror):
    failing_folder(pytester.path)

    result = run(pytester, mirror, "-p", "no:html", "-W", "error")

    result.assert_outcomes(failed=1)
    after_the_header = result.stdout.str().split("collected 1 item", 1)[1] + result.stderr.str()
    assert not re.search(r"html|warning|extras", after_the_header, re.IGNORECASE), after_the_header


# -- pytest-html's report ---------------------------------------------------------------------
@pytest.mark.parametrize("self_contained", [False, True], ids=["assets", "self-contained"])
def test_the_html_report_carries_each_failing_pictures_and_the_json_diff(pytester, mirror, self_contained):
    folder = failing_folder(pytester.path)
    report = pytester.path / "report" / "index.html"
    args = ["--self-contained-html"] if self_contained else []

    result = run(pytester, mirror, f"--html={report}", *args, "-W", "error")

    result.assert_outcomes(failed=1)
    extras = extras_of(report, FAILING)
    images = [e for e in extras if e["format_type"] == "image"]
    assert [e["name"] for e in images] == [
        f"{label}: {panel}"
        for label in ("image", "images item 1", "shape")
        for panel in ("expected", "actual", "difference")
    ]
    for extra in images:
        content = extra["content"]
        if self_contained:
            assert content.startswith("data:image/png;base64,")
            data = base64.b64decode(content.split(",", 1)[1])
        else:
            data = (report.parent / content).read_bytes()
        assert Image.open(io.BytesIO(data)).format == "PNG"
    difference = images[2]["content"]
    shown = (
        base64.b64decode(difference.split(",", 1)[1])
        if self_contained
        else (report.parent / difference).read_bytes()
    )
    assert shown == (folder / "actual" / "image.diff.png").read_bytes()
    (notes,) = [e["content"] for e in extras if e["format_type"] == "html"]
    assert "-    &quot;label&quot;: &quot;dog&quot;," in notes
    assert "+    &quot;label&quot;: &quot;cat&quot;," in notes
    assert "&lt;Image: see its pictures or file&gt;" in notes
    assert "blue: within the tolerance 0" in notes


def test_under_xdist_the_workers_pictures_reach_the_controllers_report(pytester, mirror):
    failing_folder(pytester.path)
    report = pytester.path / "report.html"

    run(pytester, mirror, "-n", "2", f"--html={report}").assert_outcomes(failed=1)

    names = [e["name"] for e in extras_of(report, FAILING) if e["format_type"] == "image"]
    assert names[:3] == ["image: expected", "image: actual", "image: difference"]


def test_a_describe_difference_is_a_readable_diff_in_the_html_report(pytester, mirror):
    resources = pytester.path / "pesto" / "tests" / "resources"
    resources.mkdir(parents=True)
    (resources / "expected_describe.json").write_text(json.dumps({"title": "<b>not</b> the mirror"}))
    report = pytester.path / "report.html"

    run(pytester, mirror, f"--html={report}").assert_outcomes(failed=1)

    (notes,) = [e["content"] for e in extras_of(report, "pesto/tests/resources/expected_describe.json")]
    assert "&lt;b&gt;not&lt;/b&gt; the mirror" in notes and "<b>not" not in notes
    assert "+++ GET /api/v1/describe" in notes


def test_pesto_pack_test_html_without_pytest_html_says_how_to_install_it_before_building(tmp_path):
    hide_pytest_html = (
        "import sys; sys.modules['pytest_html'] = None; from pesto_pack.cli import main; "
        f"sys.exit(main(['test', {str(PROJECTS / 'mirror')!r}, '--html', 'report.html']))"
    )

    done = subprocess.run(
        [sys.executable, "-c", hide_pytest_html],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert done.stderr.strip() == (
        "pesto-pack test: error: --html report.html needs pytest-html, which is not installed: "
        "`pip install pytest-html`, then run the tests again"
    )
    assert list(tmp_path.iterdir()) == []
