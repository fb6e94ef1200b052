"""`pesto-pack test --html FILE` on a built image: the report, one file, shows a failing
image's pictures; the same folder's pictures are saved beside its actual answer."""

import base64
import io
import json
import shutil
import subprocess

import pytest
from PIL import Image

from build_support import PESTO_PACK, build
from pytest_plugin_helpers import PROJECTS
from report_support import FAILING, extras_of, failing_folder

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_pesto_pack_test_writes_a_self_contained_html_report_with_the_pictures(tmp_path, engine, base_image):
    tag = build(PROJECTS / "mirror")
    project = shutil.copytree(PROJECTS / "mirror", tmp_path / "mirror")
    folder = failing_folder(project)
    report = tmp_path / "reports" / "pesto.html"

    done = subprocess.run(
        [str(PESTO_PACK), "test", str(project), "--image", tag, "--html", str(report),
         "--results", str(tmp_path / "results.json")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pictures of the differences:" in done.stdout
    assert not (report.parent / "assets").exists()  # one file: the pictures are inside it
    extras = extras_of(report, FAILING)
    difference = next(e for e in extras if e["name"] == "image: difference")["content"]
    embedded = base64.b64decode(difference.removeprefix("data:image/png;base64,"))
    assert embedded == (folder / "actual" / "image.diff.png").read_bytes()
    assert Image.open(io.BytesIO(embedded)).size[0] > 16
    results = json.loads((tmp_path / "results.json").read_text())
    assert "KeysNotEqual" in results["test_differs"]
