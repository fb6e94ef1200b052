#!/usr/bin/env python3
"""A folder of small images through `pesto-serve run --input-dir` against the same through HTTP.

    python bench/bench_run.py [--items 200] [--size 64] [--rounds 3]

Run it with the toolkit's Python (`pip install -e '.[all]'`); no engine needed. The project is
the template `pesto-pack init` makes (mirror an image, times a gain: numpy work of a few
hundred microseconds), the inputs `--items` random RGB PNGs of `--size` pixels square, each in
a test folder's `input/` layout. Both sides load the model once and write every answer as
files through the output types (`image.png`, `mean.float`, ...):

- `run`: `pesto-serve run PROJECT --input-dir IN --output-dir OUT` in a child process; the
  figures are its own "ran N item(s) in S s, CPU C s" line (start-up and on_start() excluded;
  the child's whole wall time is printed beside it);
- `HTTP`: `pesto-serve PROJECT` on a free 127.0.0.1 port, started for each round (as `run`
  is, so that both pay the first request's imports and warm-ups) and ready before the clock
  starts; one
  client reads each `input/` folder, POSTs it on one keep-alive connection and writes the
  answer's files, as a user's script would. Its CPU time is the client's and the server's
  (from /proc) over the loop.

Rounds alternate the two sides, so a burst of load from elsewhere does not hit one side
only; the best and the median round of each side are printed, and every round on stderr. The machine's load (`/proc/loadavg`) is printed with the figures.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import numpy as np
from PIL import Image

from pesto_pack import init
from pesto_pack.folders import read_folder, write_answer
from pesto_pack.plugins import default_registry
from pesto_pack.project import load

RAN = re.compile(r"ran (\d+) item\(s\) in ([\d.]+) s, CPU ([\d.]+) s")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--size", type=int, default=64, help="pixels on a side (default 64)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
        root = Path(scratch)
        project = root / "project"
        init.create(project, init.answers(project, {"name": "bench-run"}, ask=None))
        inputs = make_inputs(root / "in", args.items, args.size)
        rounds: dict[str, list[tuple[float, float]]] = {"run": [], "HTTP": []}
        walls = []
        for round_number in range(args.rounds):
            seconds, cpu, wall = run_batch(project, inputs, root / f"run-{round_number}")
            walls.append(wall)
            rounds["run"].append((seconds, cpu))
            with http_service(project) as service:  # as fresh as run's: first uses cost alike
                rounds["HTTP"].append(run_http(project, service, inputs, root / f"http-{round_number}"))
            (http_seconds, http_cpu) = rounds["HTTP"][-1]
            print(
                f"round {round_number + 1}: run {seconds:.3f} s (CPU {cpu:.3f} s), HTTP "
                f"{http_seconds:.3f} s (CPU {http_cpu:.3f} s)",
                file=sys.stderr,
            )
            same_answers(project, root / f"run-{round_number}", root / f"http-{round_number}", inputs)
        report(args, rounds, min(walls))
    return 0


def make_inputs(folder: Path, count: int, size: int) -> list[Path]:
    """`count` test folders, each with one random RGB PNG as `input/image.png`."""
    generator = np.random.default_rng(7)
    folders = []
    for index in range(count):
        inputs = folder / f"tile_{index:04d}" / "input"
        inputs.mkdir(parents=True)
        pixels = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(inputs / "image.png")
        folders.append(inputs)
    return folders


def run_batch(project: Path, inputs: list[Path], out: Path) -> tuple[float, float, float]:
    """The batch's own processing time and CPU time, and the child's wall time (start-up
    included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pesto_serve.cli",
            "run",
            str(project),
            "--input-dir",
            str(inputs[0].parent.parent),
            "--output-dir",
            str(out),
            "--progress",
            "lines",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    found = RAN.search(done.stderr)
    if done.returncode != 0 or not found or int(found[1]) != len(inputs):
        sys.exit(f"pesto-serve run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return float(found[2]), float(found[3]), wall


class http_service:
    """`pesto-serve PROJECT` on a free loopback port, ready; stopped on exit."""

    def __init__(self, project: Path):
        self.project = project

    def __enter__(self) -> Self:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.child = subprocess.Popen(
            [sys.executable, "-m", "pesto_serve.cli", str(self.project), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/api/v1/ready")
                if connection.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.__exit__()
        sys.exit("pesto-serve was not ready in time")

    def __exit__(self, *_) -> None:
        self.child.terminate()
        try:
            self.child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.child.kill()


def run_http(project: Path, service: http_service, inputs: list[Path], out: Path) -> tuple[float, float]:
    """Seconds to read, POST and write every item over one keep-alive connection, and the CPU
    seconds of the client (this process) and the server together."""
    registry = default_registry()
    types = output_types(project)
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    server_ticks, cpu_started = cpu_ticks(service.child.pid), time.process_time()
    started = time.perf_counter()
    for folder in inputs:
        body = json.dumps(read_folder(folder, registry)).encode()
        connection.request("POST", "/api/v1/process", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        content = response.read()
        if response.status != 200:
            sys.exit(f"POST answered {response.status}: {content[:300]!r}")
        write_answer(out / folder.parent.name / "output", json.loads(content), types)
    seconds = time.perf_counter() - started
    server_cpu = (cpu_ticks(service.child.pid) - server_ticks) / CLOCK_TICKS
    cpu = time.process_time() - cpu_started + server_cpu
    connection.close()
    return seconds, cpu


def cpu_ticks(pid: int) -> int:
    """A process's user + system CPU time, all threads, in clock ticks (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def output_types(project: Path) -> dict:
    schema = load(project).api.output_schema
    registry = default_registry()
    return {k: registry.type_for_property(v) for k, v in schema.items() if isinstance(v, dict)}


def same_answers(project: Path, run_out: Path, http_out: Path, inputs: list[Path]) -> None:
    """The two sides wrote the same files, byte for byte (a bench of different work is moot)."""
    for folder in inputs:
        name = folder.parent.name
        for written in sorted((run_out / name / "output").iterdir()):
            twin = http_out / name / "output" / written.name
            if written.read_bytes() != twin.read_bytes():
                sys.exit(f"{written} and {twin} differ: the two sides did not answer the same")
    shutil.rmtree(run_out)
    shutil.rmtree(http_out)


def report(args, rounds: dict[str, list[tuple[float, float]]], run_wall: float) -> None:
    load_average = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"{args.items} images of {args.size}x{args.size} RGB, {args.rounds} rounds; "
        f"load average {' '.join(load_average)} on {os.cpu_count()} CPUs"
    )
    print(f"{'side':<6} {'statistic':<9} {'seconds':>8} {'items/s':>8} {'ms/item':>8} {'CPU ms/item':>12}")
    figures = {}
    for side, measured in rounds.items():
        for name, pick in (("best", min), ("median", statistics.median)):
            seconds, cpu = pick(m[0] for m in measured), pick(m[1] for m in measured)
            figures[side, name] = seconds, cpu
            print(
                f"{side:<6} {name:<9} {seconds:>8.3f} {args.items / seconds:>8.1f} "
                f"{1000 * seconds / args.items:>8.2f} {1000 * cpu / args.items:>12.2f}"
            )
    for name in ("best", "median"):
        run, http = figures["run", name], figures["HTTP", name]
        print(
            f"run / HTTP ({name}): time {run[0] / http[0]:.2f}, CPU {run[1] / http[1]:.2f} "
            "(below 1: run is faster, or cheaper)"
        )
    print(f"run's whole command, start-up and on_start() included: {run_wall:.2f} s (best round)")


if __name__ == "__main__":
    sys.exit(main())
