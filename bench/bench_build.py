"""Benchmark of `pesto-pack build`: cold build, code-only rebuild, their ratio, image size.

    python bench/bench_build.py [--project DIR] [--base-image IMAGE] [--rebuilds N] [--keep]

Times are of the `pesto-pack build` command as a user runs it (process start included).
The cold build starts from an empty workspace (every wheel downloaded, the runtime wheel
built) with `--no-cache` (every layer built again; only the base image exists). Each
code-only rebuild appends a comment to algorithm/process.py of a copy of the project, then
builds again with the runtime wheel of the cold build (`--runtime-wheel`), as a user's
toolkit does not change between two builds (in this checkout, others' edits would).
The project is copied and renamed, so the images are the benchmark's own; they are
removed at the end unless --keep.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from docker.errors import ImageNotFound

from pesto_pack.build.cache import cache_folder
from pesto_pack.engine import connect

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_PROJECT = REPOSITORY / "tests" / "projects" / "resourceful"
PESTO_PACK = Path(sys.executable).with_name("pesto-pack")


def main() -> int:
    args = _arguments()
    client = connect()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        project = _copy(args.project, Path(scratch))
        tag = f"{project.name}:1.0.0"
        try:
            _bench(client, project, Path(scratch), args)
        finally:
            if not args.keep:
                _remove(client, tag)
    return 0


def _bench(client, project: Path, scratch: Path, args: argparse.Namespace) -> None:
    command = [str(PESTO_PACK), "build", str(project)]
    if args.base_image:
        command += ["--base-image", args.base_image]
    cold, tag = _timed(command + ["--no-cache"])
    cache = cache_folder(scratch / "workspace" / "name" / "version")
    runtime = next((cache / "runtime").glob("*/*.whl"))
    command += ["--runtime-wheel", str(runtime)]
    unchanged, _ = _timed(command)
    rebuilds = []
    code = project / "algorithm" / "process.py"
    for round_ in range(args.rebuilds):
        code.write_text(code.read_text() + f"\n# code-only change {round_}\n")
        rebuilds.append(_timed(command)[0])
    image = client.images.get(tag)
    dependencies = client.images.get(image.labels["org.pesto.dependencies"])
    base = client.images.get(
        args.base_image
        or json.loads((project / "pesto/build/requirements.json").read_text())["dockerBaseImage"]
    )
    rebuild = statistics.median(rebuilds)
    print(f"project                  {args.project} (as {tag})")
    print(f"cold build               {cold:6.1f} s   (empty workspace, --no-cache)")
    print(f"unchanged rebuild        {unchanged:6.1f} s")
    print(
        f"code-only rebuild        {rebuild:6.1f} s   (median of {len(rebuilds)}: "
        + ", ".join(f"{r:.1f}" for r in rebuilds)
        + ")"
    )
    print(f"rebuild / cold           {rebuild / cold:6.3f}     (goal: under 0.1)")
    print(
        f"image size               {_mb(image.attrs['Size'])}   (base image {_mb(base.attrs['Size'])}, "
        f"+{_mb(image.attrs['Size'] - base.attrs['Size'])})"
    )
    print(
        f"  of which service layers {_mb(image.attrs['Size'] - dependencies.attrs['Size'])}"
        "   (runtime, api files, code)"
    )


def _remove(client, tag: str) -> None:
    """The benchmark's image and the dependencies image it was built from, if they exist."""
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return
    for reference in filter(None, (tag, image.labels.get("org.pesto.dependencies"))):
        try:
            client.api.remove_image(reference, force=True)
        except ImageNotFound:
            pass


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT, help="project to build")
    parser.add_argument("--base-image", help="base image instead of the project's")
    parser.add_argument("--rebuilds", type=int, default=3, help="code-only rebuilds to time")
    parser.add_argument("--keep", action="store_true", help="keep the images")
    return parser.parse_args()


def _copy(project: Path, scratch: Path) -> Path:
    """The project under a unique name, building into a workspace of its own."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    copy = scratch / name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("__pycache__"))
    build_file = copy / "pesto" / "build" / "build.json"
    settings = json.loads(build_file.read_text())
    build_file.write_text(json.dumps({**settings, "name": name, "workspace": str(scratch / "workspace")}))
    return copy


def _timed(command: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1]


def _mb(size: int) -> str:
    return f"{size / 1e6:6.0f} MB"


if __name__ == "__main__":
    sys.exit(main())
