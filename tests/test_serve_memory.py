"""Memory under large images: a service answering big images one after another stays flat.

Without a cap on glibc's malloc arenas every waitress thread that takes a request gets an
arena of its own and keeps what it freed: 2048x2048 images grew a one-slot service to 407-481
MB after 8 requests, whose first peaked at 123 MB (4096x4096 ones: 1.6 GB after 16). The test reads
the real server's resident memory (VmRSS) from /proc.
"""

import base64
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from pesto_pack.build.dockerfile import SERVICE_ENVIRONMENT
from pesto_serve.memory import ARENAS, limit_malloc_arenas
from subprocess_support import pesto_serve, running

SIZE = 2048
"""11 MB of base64: large enough that each request's buffers go to its thread's arena (the
4096² run shows the same growth, 4 times slower), small enough for seconds per request."""
REQUESTS = 8
GROWTH_ALLOWED = 1.6
"""RSS after all requests over the first request's peak (VmHWM): at most 1.3 measured with the
arenas capped (at 1 or 2), 3.3 to 3.9 without (the RSS after the first requests is no base: it varies with which
arena served them)."""


def noisy_png_base64(size: int) -> str:
    """Gradients with noise: compresses about as a photo does (a flat image would be tiny)."""
    ramp = np.linspace(0, 230, size, dtype=np.float32)
    noise = np.random.default_rng(size).integers(0, 24, (size, size, 3), dtype=np.uint8)
    pixels = (
        np.stack(
            [
                np.broadcast_to(ramp, (size, size)),
                np.broadcast_to(ramp[:, None], (size, size)),
                np.full((size, size), 120, np.float32),
            ],
            axis=-1,
        ).astype(np.uint8)
        + noise
    )
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def pixels(encoded: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))


def rss_mb(pid: int, key: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def test_large_images_one_after_another_leave_memory_flat(tmp_path):
    body = {"image": noisy_png_base64(SIZE)}
    with running(pesto_serve("mirror"), tmp_path) as server, requests.Session() as session:
        after = []
        for _ in range(REQUESTS):
            answer = session.post(f"{server.url}/api/v1/process", json=body, timeout=120)
            assert answer.status_code == 200, answer.text[:300]
            after.append(rss_mb(server.process.pid))
            if len(after) == 1:
                single_peak = rss_mb(server.process.pid, "VmHWM:")
                assert np.array_equal(pixels(answer.json()["image"]), pixels(body["image"]))
        peak = rss_mb(server.process.pid, "VmHWM:")
    growth = after[-1] / single_peak
    assert growth <= GROWTH_ALLOWED, (
        f"RSS after {REQUESTS} requests is {after[-1]:.0f} MB, {growth:.2f} x the peak of the first "
        f"request ({single_peak:.0f} MB; after each: {[round(r) for r in after]}): malloc arenas "
        "are growing again"
    )
    assert peak < 2 * single_peak, f"peak {peak:.0f} MB against {single_peak:.0f} MB for the first request"


def test_the_operators_malloc_arena_max_wins():
    assert limit_malloc_arenas(environ={"MALLOC_ARENA_MAX": "4"}) == 4


def test_pesto_serve_caps_the_arenas_itself_on_glibc():
    """In a child process: mallopt() would change this test process's allocator for good."""
    if not list(Path("/lib").glob("*/libc.so.6")) and not Path("/lib64/libc.so.6").exists():
        pytest.skip("not a glibc system")
    code = "from pesto_serve.memory import limit_malloc_arenas; print(limit_malloc_arenas(environ={}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(ARENAS)


def test_every_image_sets_the_arena_cap():
    assert SERVICE_ENVIRONMENT["MALLOC_ARENA_MAX"] == str(ARENAS)
