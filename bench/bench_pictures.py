#!/usr/bin/env python3
"""What the pictures of a failing image cost the harness, beside the comparison it already makes.

    python bench/bench_pictures.py [--repeat N]

With the toolkit's Python (`. scripts/bootstrap`). For a few image sizes and types, each with
a changed patch, it prints the median over N runs of the process's CPU time (steadier than
wall time on a shared machine) and, in brackets, of the wall time, in milliseconds, of:
- compare: `Image.compare` of the two files, what every test folder pays (decode, figures);
- draw: `Image.draw_difference`, what only a failing folder pays on top (decode again,
  the three pictures as PNG);
- sheet: the expected | actual | difference sheet from those pictures;
and the CPU ratio (draw + sheet) / compare, with the PNG sizes written. The images are noise
(the worst case for PNG's compression). Nothing leaves the process.
"""

import argparse
import os
import statistics
import time

import numpy as np

from pesto_pack.types.base import Tolerance
from pesto_pack.types.images import IMAGE
from pytest_pesto.pictures import contact_sheet

CASES = [
    ("photo 451x300 RGB 8-bit", (3, 300, 451), np.uint8),
    ("photo 2000x1333 RGB 8-bit", (3, 1333, 2000), np.uint8),
    ("tile 1500x1500 6-band 16-bit", (6, 1500, 1500), np.uint16),
]


def pair(shape: tuple[int, int, int], dtype) -> tuple[str, str]:
    """Two encoded images (base64, as in an answer): noise, and the same with a brighter patch."""
    rng = np.random.default_rng(0)
    expected = rng.integers(0, 200, size=shape).astype(dtype)
    actual = expected.copy()
    _, height, width = shape
    actual[:, height // 4 : height // 2, width // 4 : width // 2] += 30
    return IMAGE.encode(expected), IMAGE.encode(actual)


def timed(action, repeat: int) -> tuple[float, float, object]:
    """Median CPU and wall time in milliseconds, and the last result."""
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = action()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start_wall) * 1000)
    return statistics.median(cpu), statistics.median(wall), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (default 7)")
    args = parser.parse_args()
    print(
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; median of {args.repeat} runs: CPU ms (wall ms)"
    )
    print(f"{'case':32} {'compare':>16} {'draw':>16} {'sheet':>16} {'ratio':>6}  PNG diff / sheet")
    for name, shape, dtype in CASES:
        print(measure(name, *pair(shape, dtype), args.repeat))


def measure(name: str, expected: str, actual: str, repeat: int) -> str:
    """One line of figures for two encoded images."""
    tolerance = Tolerance()
    compare = timed(lambda: IMAGE.compare(expected, actual, tolerance), repeat)
    draw = timed(lambda: IMAGE.draw_difference(expected, actual, tolerance), repeat)
    (pictures,) = draw[2]
    sheet = timed(lambda: contact_sheet(pictures, "image"), repeat)
    ratio = (draw[0] + sheet[0]) / compare[0]
    cells = [f"{cpu:6.0f} ({wall:5.0f})" for cpu, wall, _ in (compare, draw, sheet)]
    sizes = f"{len(pictures.difference) // 1024} KiB / {len(sheet[2]) // 1024} KiB"
    return f"{name:32} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {ratio:6.2f}  {sizes}"


if __name__ == "__main__":
    main()
