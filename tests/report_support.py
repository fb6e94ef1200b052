"""A failing test folder with pictures to draw, and pytest-html's report read back: shared by
the plugin's report tests (pytester, `pesto-pack test --html`, the browser)."""

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from images_support import png_base64
from pytest_plugin_helpers import make_folder

RGB = (np.arange(3 * 16 * 16) % 256).astype(np.uint8).reshape(3, 16, 16)
"""A 16x16 RGB image, channels first."""
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [0, 2], [2, 2], [2, 0], [0, 0]]]}
MOVED = {"type": "Polygon", "coordinates": [[[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]]]}
FAILING = "pesto/tests/resources/test_differs"
"""The node id of `failing_folder`."""


def png(channels_first: np.ndarray) -> bytes:
    return base64.b64decode(png_base64(channels_first))


def brighter_at(row: int, column: int, by: int = 1) -> np.ndarray:
    changed = RGB.copy()
    changed[0, row, column] += by
    return changed


def failing_folder(root: Path) -> Path:
    """For the `mirror` project: a folder whose image differs by one level at (5, 7), whose
    second image is cut in half, whose polygon moved and whose metadata changed."""
    return make_folder(
        root,
        "test_differs",
        {
            "image.png": png(RGB),
            "images/0.png": png(RGB),
            "images/1.png": png(RGB[:1]),
            "shape.geojson": json.dumps(SQUARE),
            "meta.json": json.dumps({"label": "cat", "score": 0.5}),
        },
        {
            "image.png": png(brighter_at(5, 7)),
            "images/0.png": png(RGB),
            "images/1.png": png(RGB[:1, :8]),
            "shape.geojson": json.dumps(MOVED),
            "meta.json": json.dumps({"label": "dog", "score": 0.5}),
        },
    )


class _DataBlob(HTMLParser):
    """The JSON that pytest-html 4 keeps in `<div id="data-container" data-jsonblob=...>`."""

    blob: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id") == "data-container":
            self.blob = json.loads(attributes["data-jsonblob"])


def report_data(path: Path) -> dict:
    parser = _DataBlob()
    parser.feed(path.read_text(encoding="utf-8"))
    assert parser.blob is not None, "pytest-html's data container is missing"
    return parser.blob


def extras_of(report: Path, nodeid: str) -> list[dict]:
    """The extras of `nodeid`'s failed call in a pytest-html report."""
    (result,) = [r for r in report_data(report)["tests"][nodeid] if r["result"] == "Failed"]
    return result["extras"]
