#!/usr/bin/env python3
"""The pytest plugin's overhead: a session of N test folders against a no-op service.

    python bench/bench_harness.py [--folders N] [--rounds R]

Run it with the Python that has the toolkit installed (`.venv/bin/python` or the dev venv).
It serves `tests/projects/echo` (answers its inputs unchanged) with `pesto-serve` on a free
loopback port, so no container start is counted, writes N test folders (`text.string`,
`number.float` in, the same out) to a temporary directory, and measures, each the median
of R rounds:

- the wall time of `pytest --pesto-url=URL DIR` with N folders and with one folder; the one-
  folder session is the fixed cost (pytest's start-up, the plugin's and the payload types'
  imports), their difference over N - 1 the cost of one more test folder as the plugin runs
  it (read and check at collection, read again, send, compare through the types, report);
- the same N requests sent by a plain loop: read the two files, POST the JSON with urllib
  (a new connection each time, as the plugin's client does), compare the answer with `==`.

The difference per folder is what the harness adds on top of talking to the service.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from pytest_plugin_helpers import PROJECTS, make_folder, served  # noqa: E402


def write_folders(root: Path, count: int) -> None:
    for index in range(count):
        files = {"text.string": f"folder {index}", "number.float": f"{index / 7:.6f}"}
        make_folder(root, f"test_{index}", files, dict(files))


def pytest_session(root: Path, url: str) -> float:
    """Seconds for one `pytest --pesto-url` run over `root`; every item must pass."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--pesto-url={url}",
        "-q",
        "-p",
        "no:cacheprovider",
        str(root),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest failed:\n{done.stdout[-2000:]}")
    return elapsed


def plain_client(root: Path, url: str) -> float:
    """Seconds to send every folder's request with urllib and compare the answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    folders = sorted((root / "pesto/tests/resources").iterdir())
    started = time.perf_counter()
    for folder in folders:
        payload = {
            "text": (folder / "input/text.string").read_text(),
            "number": float((folder / "input/number.float").read_text()),
        }
        expected = {
            "text": (folder / "output/text.string").read_text(),
            "number": float((folder / "output/number.float").read_text()),
        }
        request = urllib.request.Request(
            f"{url}/api/v1/process",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with opener.open(request) as response:
            if json.loads(response.read()) != expected:
                raise SystemExit(f"{folder}: the echo service answered something else")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", type=int, default=200, help="test folders (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the median is kept (default 5)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pesto-bench-harness-"))
    try:
        full, single = work / "full", work / "single"
        write_folders(full, args.folders)
        write_folders(single, 1)
        with served(PROJECTS / "echo") as url:
            plain_client(full, url)  # warm the service up
            session = statistics.median(pytest_session(full, url) for _ in range(args.rounds))
            fixed = statistics.median(pytest_session(single, url) for _ in range(args.rounds))
            plain = statistics.median(plain_client(full, url) for _ in range(args.rounds))
    finally:
        shutil.rmtree(work)

    per_folder = (session - fixed) / (args.folders - 1)
    per_request = plain / args.folders
    print(f"pytest-pesto harness overhead: {args.folders} test folders against the echo service")
    print(f"(pesto-serve on the host, container start excluded), median of {args.rounds} rounds\n")
    print("| measure | seconds | per folder (ms) |")
    print("| --- | ---: | ---: |")
    print(f"| pytest session, {args.folders} folders | {session:.2f} | {session / args.folders * 1000:.2f} |")
    print(f"| pytest session, 1 folder (fixed cost) | {fixed:.2f} | |")
    print(f"| one more folder in a session | | {per_folder * 1000:.2f} |")
    print(f"| plain urllib loop, the same requests | {plain:.2f} | {per_request * 1000:.2f} |")
    print(f"| harness overhead per folder | | {(per_folder - per_request) * 1000:.2f} |")


if __name__ == "__main__":
    main()
