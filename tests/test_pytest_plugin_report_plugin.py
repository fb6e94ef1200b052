"""A third-party payload type draws its own difference, end to end: a `Labels` plugin (a label
mask, a PNG of class numbers) installed as pip would install it, found by the service and by
the harness through the `pesto` entry point, its pictures saved when a folder fails."""

import base64
import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from images_support import png_base64
from pesto_pack.plugins import default_registry
from pytest_plugin_helpers import PROJECTS, make_folder
from subprocess_support import pesto_serve_url

pytest_plugins = ["pytester"]

PLUGIN = '''
"""`Labels`: a label mask (one class number a pixel) as a PNG; drawn as flat class colours."""

import numpy as np

from pesto_pack import hookimpl
from pesto_pack.types.base import DecodeSettings, Pictures
from pesto_pack.types.images import ImageType
from pesto_pack.types.pictures import png

PALETTE = np.array([[0, 0, 0], [0, 120, 255], [255, 200, 0]], np.uint8)


class LabelsType(ImageType):
    """Read, written and compared as an image; its difference drawn class by class."""

    def draw_difference(self, expected, actual, tolerance):
        wanted, got = (self.decode(value, DecodeSettings())[0] for value in (expected, actual))
        changed = np.where((wanted != got)[..., None], 255, PALETTE[wanted] // 3).astype(np.uint8)
        return [Pictures(png(PALETTE[wanted]), png(PALETTE[got]), png(changed), "white: class changed")]


LABELS = LabelsType(
    "Labels",
    definition={"type": "string", "description": "A label mask: a PNG of class numbers"},
    extensions=(".labels",),
    media_type="image/png",
)


@hookimpl
def register_payload_types(register):
    register(LABELS)
'''

LABELS = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [0, 2, 2, 1], [0, 0, 0, 0]], np.uint8)


@pytest.fixture
def labels_plugin(tmp_path, monkeypatch) -> Path:
    """`pesto_labels` installed in a site folder that this process and its children see."""
    site = tmp_path / "site-packages"
    (site / "pesto_labels").mkdir(parents=True)
    (site / "pesto_labels" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist_info = site / "pesto_labels-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: pesto-labels\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[pesto]\nlabels = pesto_labels\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    default_registry.cache_clear()
    yield site
    default_registry.cache_clear()
    sys.modules.pop("pesto_labels", None)


def mirror_with_labels(destination: Path) -> Path:
    """The mirror project with a `labels` input and output of the plugin's type."""
    project = Path(shutil.copytree(PROJECTS / "mirror", destination / "mirror"))
    code = project / "algorithm" / "input_output.py"
    field = '    labels: np.ndarray = definition("Labels", description="Classes", default=None)'
    input_class, output_class = code.read_text().rstrip().split("\n\n\n@dataclass\nclass Output:")
    code.write_text(f"{input_class}\n{field}\n\n\n@dataclass\nclass Output:{output_class}\n{field}\n")
    for schema in ("input", "output"):
        path = project / "pesto" / "api" / f"{schema}_schema.json"
        properties = json.loads(path.read_text())
        properties["labels"] = {"$ref": "#/definitions/Labels", "description": "Classes"}
        path.write_text(json.dumps(properties, indent=2))
    return project


def test_a_plugin_type_draws_its_own_difference_which_the_harness_saves(pytester, tmp_path, labels_plugin):
    changed = LABELS.copy()
    changed[1, 1] = 1
    mask = base64.b64decode(png_base64(LABELS[np.newaxis]))
    moved = base64.b64decode(png_base64(changed[np.newaxis]))
    folder = make_folder(pytester.path, "test_labels", {"labels.labels": mask}, {"labels.labels": moved})

    with pesto_serve_url(mirror_with_labels(tmp_path)) as url:
        result = pytester.runpytest(f"--pesto-url={url}", "-p", "no:randomly", "-p", "no:html")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  labels: 1 of 16 pixels (6.25%) differ by more than the tolerance 0; mean difference 0.0625",
            "  labels: see */actual/labels.sheet.png (expected | actual | difference) and labels.diff.png",
        ]
    )
    difference = np.asarray(Image.open(folder / "actual" / "labels.diff.png"))
    assert difference.shape == (4, 4, 3)  # the plugin's own picture, as it drew it
    assert difference[1, 1].tolist() == [255, 255, 255]
    assert difference[0, 2].tolist() == [0, 40, 85]  # class 1, dimmed: unchanged
    expected_picture = np.asarray(Image.open(folder / "actual" / "labels.sheet.png").convert("RGB"))
    assert (expected_picture == (255, 200, 0)).all(axis=2).any()  # class 2 in the plugin's colour
