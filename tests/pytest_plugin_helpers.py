"""Helpers of the pytest plugin's tests: test folders on disk, and real services to test.

`served(project)` runs `pesto-serve PROJECT --port P` in a subprocess on a free loopback port,
as a person does for the quick local loop, and stops it afterwards.
"""

import contextlib
import io
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

PROJECTS = Path(__file__).parent / "projects"
PESTO_SERVE = Path(sys.executable).with_name("pesto-serve")


def png_bytes(pixels) -> bytes:
    """A PNG file of `pixels` (H, W) or (H, W, C), uint8."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


POLYGON = {"type": "Polygon", "coordinates": [[[0, 0], [0, 2], [2, 2], [0, 0]]]}
RGB = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(project: Path, *profiles: str, timeout: float = 60.0) -> Iterator[str]:
    """The base URL of `pesto-serve project -p profiles`, ready; stopped on exit."""
    port = free_port()
    command = [str(PESTO_SERVE), str(project), "--port", str(port)]
    if profiles:
        command += ["-p", *profiles]
    with tempfile.TemporaryFile() as log:  # a pipe nobody reads would block the service
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, url, log, timeout)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, url: str, log, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"pesto-serve exited with {process.returncode}: {log.read().decode()}")
        try:
            with opener.open(f"{url}/api/v1/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pesto-serve at {url} was not ready within {timeout} s")
