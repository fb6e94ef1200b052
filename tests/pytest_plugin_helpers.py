"""Helpers of the pytest plugin's tests: test folders on disk, in every file type.

The services they test run through `subprocess_support.pesto_serve_url` (a real `pesto-serve`).
"""

import io
import json
from pathlib import Path

import tifffile
from PIL import Image

from images_support import RGB_CHANNELS_LAST as RGB
from images_support import png_bytes

PROJECTS = Path(__file__).parent / "projects"
POLYGON = {"type": "Polygon", "coordinates": [[[0, 0], [0, 2], [2, 2], [0, 0]]]}


def every_file_type() -> dict:
    """Input files of the `mirror` project in every extension the built-in types read."""
    jpeg, tiff = io.BytesIO(), io.BytesIO()
    Image.fromarray(RGB).save(jpeg, "JPEG", quality=95)
    tifffile.imwrite(tiff, RGB.transpose(2, 0, 1), photometric="minisblack", planarconfig="separate")
    return {
        "text.string": "a text",
        "count.int": "3",
        "ratio.float": "0.25",
        "flag.bool": "true",
        "meta.json": json.dumps({"a": [1, 2], "b": {"c": None}}),
        "metas/0.json": json.dumps({"k": 1}),
        "metas/1.json": json.dumps({"k": 2}),
        "shape.geojson": json.dumps(POLYGON),
        "shapes.json": json.dumps([POLYGON, POLYGON]),
        "image.png": png_bytes(RGB),
        "images/0.jpg": jpeg.getvalue(),
        "images/1.tif": tiff.getvalue(),
        "images/2.png": png_bytes(RGB[:, :, 0]),
    }


def same(files: dict) -> tuple[dict, dict]:
    """Input and output of a `mirror` test folder that must pass."""
    return files, dict(files)


def make_folder(root: Path, name: str, inputs: dict | None, outputs: dict | None = None) -> Path:
    """`root/pesto/tests/resources/<name>/{input,output}/` holding the files given as
    `{relative path: str or bytes}`; None leaves that part out."""
    folder = root / "pesto" / "tests" / "resources" / name
    for part, files in (("input", inputs), ("output", outputs)):
        if files is None:
            continue
        (folder / part).mkdir(parents=True, exist_ok=True)
        for relative, content in files.items():
            path = folder / part / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder
