"""Classify photos with algorithm.process directly, no service: category and time per image.

    python scripts/classify_local.py PHOTO...          # category, decode and process times
    python scripts/classify_local.py --repeat 20 PHOTO # process() timed 20 times: median, p99
    python scripts/classify_local.py --tests           # every pesto/tests/resources/test_*,
                                                       # checked against output/category.string

Files are decoded by the service's own decoder (pesto_pack.types.images), so process() gets
what it gets in the service: a numpy array in channel-first (C, H, W) order, grayscale as
(1, H, W), palettes expanded to RGB, 16-bit samples as uint16. The class index is read from this project's
pesto/api/config.json (PESTO_CONFIG_DIR), the weights as process.py finds them.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
TESTS = PROJECT / "pesto" / "tests" / "resources"


def read_image(path: Path) -> np.ndarray:
    """An image file as process() gets it: the service's own decoder, (C, H, W)."""
    from pesto_pack.types.base import DecodeSettings
    from pesto_pack.types.images import decode_image

    return decode_image(path.read_bytes(), DecodeSettings().max_image_pixels)


def test_folders() -> list[tuple[Path, str]]:
    """(input photo, expected category) of every test folder, in numeric order."""
    folders = sorted(TESTS.glob("test_*"), key=lambda folder: int(folder.name.split("_")[1]))
    return [
        (next((folder / "input").glob("image.*")), (folder / "output" / "category.string").read_text())
        for folder in folders
    ]


def import_process():
    os.environ.setdefault("PESTO_CONFIG_DIR", str(PROJECT / "pesto" / "api"))
    sys.path.insert(0, str(PROJECT))
    from algorithm.input_output import Input
    from algorithm.process import Process

    return Process, Input


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--tests", action="store_true", help="run the test folders and check them")
    parser.add_argument("--repeat", type=int, default=1, help="process() calls per photo (timing)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    work = [(photo, None) for photo in args.photos] + (test_folders() if args.tests else [])
    if not work:
        parser.error("give photos, or --tests")

    Process, Input = import_process()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    Process.on_start()
    print(
        f"on_start {1000 * (time.perf_counter() - started):.0f} ms, "
        f"{torch.get_num_threads()} threads, device {next(Process.model.parameters()).device}"
    )

    failures = 0
    for photo, expected in work:
        started = time.perf_counter()
        image = read_image(photo)
        decode_ms = 1000 * (time.perf_counter() - started)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            category = Process.process(Input(image=image)).category
            times.append(1000 * (time.perf_counter() - started))
        verdict = ""
        if expected is not None:
            verdict = "ok" if category == expected else f"FAIL, expected {expected}"
            failures += category != expected
        timing = f"{statistics.median(times):6.1f} ms"
        if args.repeat > 1:
            timing += f" (p99 {np.percentile(times, 99):.1f} ms over {args.repeat})"
        shape = "x".join(map(str, image.shape))
        print(
            f"{photo.relative_to(PROJECT) if photo.is_relative_to(PROJECT) else photo}: "
            f"{category}  process {timing}, decode {decode_ms:.1f} ms, {shape} {image.dtype} {verdict}"
        )
    if args.tests:
        print(f"{len(work) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
