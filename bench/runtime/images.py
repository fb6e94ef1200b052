"""Test images for the image benchmark, and the floor any Image-in/Image-out service stands on.

Run with a Python that has Pillow and numpy (the benchmark's pesto-serve virtualenv):

    python images.py make DIR SIZE...          # DIR/SIZE.png and DIR/SIZE.json (a request body)
    python images.py floor PNG      # one round trip per line read, one JSON line of times each
    python images.py check PNG ANSWER_JSON     # the answer holds the same pixels

The floor is the work no such service can skip, with no HTTP and no JSON: base64-decode the
request's string, decode the PNG, encode a PNG with Pillow's defaults, base64-encode it.
"""

import argparse
import base64
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make(folder: Path, sizes: list[int]) -> None:
    """Smooth gradients with a little noise: compresses about as well as a photo, not better."""
    folder.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        ramp = np.linspace(0, 255, size, dtype=np.float32)
        noise = np.random.default_rng(size).integers(0, 24, (size, size, 3), dtype=np.uint8)
        pixels = np.stack(
            [
                np.broadcast_to(ramp, (size, size)),
                np.broadcast_to(ramp[:, None], (size, size)),
                127 + 100 * np.sin(np.add.outer(ramp, ramp) / 16),
            ],
            axis=-1,
        ).astype(np.uint8)
        pixels = np.minimum(pixels.astype(np.uint16) + noise, 255).astype(np.uint8)
        png = folder / f"{size}.png"
        Image.fromarray(pixels, "RGB").save(png)
        body = {"image": base64.b64encode(png.read_bytes()).decode("ascii")}
        (folder / f"{size}.json").write_text(json.dumps(body))


def round_trip(encoded: str) -> str:
    """What the floor measures: one image in as base64 PNG, the same out."""
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    image.load()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def floor(png: Path) -> None:
    """A round trip of the image for each line on stdin, so the caller can interleave the
    floor with requests to the services; prints {"wall_s", "cpu_s"} for each."""
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    round_trip(encoded)
    for _ in sys.stdin:
        wall, cpu = time.perf_counter(), time.process_time()
        round_trip(encoded)
        times = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        print(json.dumps(times), flush=True)


def check(png: Path, answer: Path) -> None:
    expected = np.asarray(Image.open(png))
    encoded = json.loads(answer.read_bytes())["image"]
    actual = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
    if actual.shape != expected.shape or not np.array_equal(actual, expected):
        sys.exit(f"{answer}: the image out differs from {png} (shape {actual.shape})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make_parser = commands.add_parser("make")
    make_parser.add_argument("folder", type=Path)
    make_parser.add_argument("sizes", type=int, nargs="+")
    floor_parser = commands.add_parser("floor")
    floor_parser.add_argument("png", type=Path)
    check_parser = commands.add_parser("check")
    check_parser.add_argument("png", type=Path)
    check_parser.add_argument("answer", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.folder, args.sizes)
    elif args.command == "floor":
        floor(args.png)
    else:
        check(args.png, args.answer)


if __name__ == "__main__":
    main()
