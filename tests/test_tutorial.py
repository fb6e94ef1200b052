"""docs/tutorial.md, run: its commands in order, so that the tutorial cannot go stale.

A marker, an HTML comment that the rendered page does not show, stands on the line before a
fenced block and says what the test does with it:

    <!-- tutorial: run -->                  a shell block: run it
    <!-- tutorial: run engine -->           ... only in the test that has a container engine
    <!-- tutorial: write PATH -->           the block is the content of PATH (the reader's editor)
    <!-- tutorial: compare PATH -->         the block shows the JSON document that PATH holds then
    <!-- tutorial: compare engine PATH -->  ... checked only in the test with an engine
    <!-- tutorial: skip (REASON) -->        a shell block the test does not run (installs, GPUs)

Every shell block carries one, so that no command escapes the test by accident. The blocks
become one bash script (`set -euo pipefail`) run in an empty temporary folder, as a reader
types them into one terminal: the working folder, variables and background jobs carry from
block to block. Two substitutions keep runs apart from each other and from the reader's own
services: the project's name gets a random suffix (its images, containers and build
workspace are then this run's alone) and the host port 8080 becomes a free one. Whatever the
run made is removed afterwards, pass or fail; a run that leaves a process or a container
behind fails, since the reader would be left with it too.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from docker.errors import ImageNotFound

from pesto_pack.engine import DOCKER_SOCKET, PODMAN_SOCKET

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
SHOWN_AS = "docs/tutorial.md"
NAME = "colour-classifier"
PORT = "8080"
MARKER = re.compile(
    r"^<!-- tutorial: (?P<action>run|write|compare|skip)(?P<engine> engine)?"
    r"(?: (?P<argument>.+?))? -->$"
)
"""The argument is the file's path for `write` and `compare`, the reason for `skip`."""
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")
SHELL_LANGUAGES = {"shell", "sh", "bash"}
END_OF_FILE = "__TUTORIAL_EOF__"
BANNER = "### tutorial block at "
COMPARE_JSON = r"""
import json, sys
shown = json.load(sys.stdin)
with open(sys.argv[1], encoding="utf-8") as stream:
    held = json.load(stream)
if shown != held:
    sys.exit(f"the tutorial shows for {sys.argv[1]}:\n{json.dumps(shown, indent=2)}\n"
             f"but the file holds:\n{json.dumps(held, indent=2)}")
"""
COMPARE_COMMAND = f"{shlex.quote(sys.executable)} -c {shlex.quote(COMPARE_JSON)}"
TIMEOUT = {False: 300, True: 900}
"""Seconds for the whole script, without and with the engine steps (a loaded machine is slow)."""
ENGINE_TEST = "test_the_tutorial_runs_with_the_engine"
GRACE = 5.0
"""Seconds that processes of the script get to exit, before and after they are told to."""


@dataclass(frozen=True)
class Block:
    line: int
    """Line of the opening fence in the tutorial, counted from 1."""
    language: str
    text: str
    action: str | None
    engine: bool
    argument: str | None


def read_blocks(markdown: str) -> list[Block]:
    """The fenced blocks at the start of a line, each with the marker on the line before it."""
    lines = markdown.splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == opening["fence"]), None)
        assert end is not None, f"{SHOWN_AS}:{index + 1}: this fence is never closed"
        marker = MARKER.match(lines[index - 1]) if index else None
        blocks.append(
            Block(
                line=index + 1,
                language=(opening["info"].split() or [""])[0],
                text="".join(line + "\n" for line in lines[index + 1 : end]),
                action=marker["action"] if marker else None,
                engine=bool(marker and marker["engine"]),
                argument=marker["argument"] if marker else None,
            )
        )
        index = end + 1
    return blocks


def script(blocks: list[Block], with_engine: bool) -> str:
    """One bash script of the blocks that this test runs, each announced in the output."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        if block.action in (None, "skip") or (block.engine and not with_engine):
            continue
        where = f"{SHOWN_AS}:{block.line}"
        parts.append(f"printf '\\n{BANNER}%s (%ss into the run)\\n' '{where}' \"$SECONDS\"")
        if block.action == "run":
            parts.append(block.text)
        else:
            command = "cat >" if block.action == "write" else COMPARE_COMMAND
            parts.append(f"{command} {block.argument} <<'{END_OF_FILE}'\n{block.text}{END_OF_FILE}")
    return "\n".join(parts) + "\n"


def substituted(markdown: str, name: str, port: int) -> str:
    return (
        markdown.replace(NAME, name)
        .replace(f"127.0.0.1:{PORT}", f"127.0.0.1:{port}")
        .replace(f"--port {PORT}", f"--port {port}")
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment() -> dict[str, str]:
    """The reader's shell: this toolkit's commands first on PATH, the docker CLI at the engine."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if "DOCKER_HOST" not in env and not DOCKER_SOCKET.exists() and PODMAN_SOCKET.exists():
        env["DOCKER_HOST"] = f"unix://{PODMAN_SOCKET}"
    return env


def run_tutorial(workdir: Path, engine=None) -> None:
    """Run the tutorial's blocks in `workdir` (the engine's too when `engine`, a docker client,
    is given); fail naming the block that failed, with its output."""
    name = f"{NAME}-{uuid.uuid4().hex[:8]}"
    port = free_port()
    blocks = read_blocks(substituted(TUTORIAL.read_text(encoding="utf-8"), name, port))
    script_path, log_path = workdir / "tutorial.sh", workdir / "tutorial.log"
    script_path.write_text(script(blocks, with_engine=engine is not None))
    try:
        with log_path.open("w") as log:
            process = subprocess.Popen(
                ["bash", str(script_path)],
                cwd=workdir,
                env=environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                status = process.wait(timeout=TIMEOUT[engine is not None])
            except subprocess.TimeoutExpired:
                status = None
            left = _stop_group(process.pid)
        if status != 0:
            pytest.fail(_report(log_path, status, name, port), pytrace=False)
        assert not left, f"the tutorial left processes running: {left}; stop them in a block"
        if engine is not None:
            running = [c.name for c in engine.containers.list(all=True) if c.name.startswith(name)]
            assert not running, f"the tutorial left containers: {running}; stop them in a block"
    finally:
        if engine is not None:
            _remove_engine_leftovers(engine, name)
        _remove_build_files(name)


def _stop_group(group: int) -> list[str]:
    """Stop what the script left running in its process group; their command lines.

    A process the script stopped itself (`kill %1`) is given a few seconds to exit first.
    """
    left = _wait_for_exits(group, patience=GRACE)
    if left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        if _wait_for_exits(group, patience=GRACE):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
    return left


def _wait_for_exits(group: int, patience: float) -> list[str]:
    deadline = time.monotonic() + patience
    while (running := _group_commands(group)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def _group_commands(group: int) -> list[str]:
    """The command lines of the live (not zombie) processes of a process group, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
        except (OSError, IndexError):
            continue
    return found


def _report(log_path: Path, status: int | None, name: str, port: int) -> str:
    output = log_path.read_text(errors="replace")
    start = output.rfind(BANNER)
    if start >= 0:
        block, _, since = output[start + len(BANNER) :].partition("\n")
    else:
        block, since = "(none: the script stopped before its first block)", output
    tail = "\n".join(since.splitlines()[-80:])
    outcome = f"exit status {status}" if status is not None else "timed out"
    return (
        f"the tutorial's block at {block} failed ({outcome}); its output (last 80 lines):\n{tail}\n"
        f"(in this run the project is named {name} and the host's port {PORT} is {port}; "
        f"the script and its whole output are in {log_path.parent})"
    )


def _remove_engine_leftovers(engine, name: str) -> None:
    """This run's containers, then its images: service images before dependencies images."""
    for container in engine.containers.list(all=True):
        if container.name.startswith(name):
            container.remove(force=True, v=True)
    tags = [
        tag
        for image in engine.images.list()
        for tag in image.tags
        if _local_name(tag).startswith((f"{name}:", f"{name}-"))
    ]
    for tag in sorted(tags, key=lambda tag: "-deps:" in tag):
        with contextlib.suppress(ImageNotFound):
            engine.api.remove_image(tag, force=True)


def _local_name(tag: str) -> str:
    """Podman's Docker API names local images `docker.io/library/NAME:TAG` or `localhost/...`."""
    for prefix in ("docker.io/library/", "localhost/"):
        tag = tag.removeprefix(prefix)
    return tag


def _remove_build_files(name: str) -> None:
    """The run's build workspace and test results, in ~/.pesto."""
    base = Path.home() / ".pesto"
    for folder in (base / name, base / "tests" / name):
        shutil.rmtree(folder, ignore_errors=True)


# -- the tests -------------------------------------------------------------------------------
def test_every_shell_block_is_run_or_says_why_not():
    blocks = read_blocks(TUTORIAL.read_text(encoding="utf-8"))
    unmarked = [b.line for b in blocks if b.language in SHELL_LANGUAGES and b.action is None]
    assert not unmarked, (
        f"{SHOWN_AS}: the shell blocks at lines {unmarked} have no marker; put "
        "`<!-- tutorial: run -->` (or `run engine`, or `skip (REASON)`) "
        "on the line before each"
    )
    for block in blocks:
        if block.action in ("run", "skip"):
            assert block.language in SHELL_LANGUAGES, f"{SHOWN_AS}:{block.line}: not a shell block"
        if block.action in ("write", "compare"):
            assert block.argument, f"{SHOWN_AS}:{block.line}: `{block.action}` needs a path"
        if block.action == "skip":
            assert block.argument, f"{SHOWN_AS}:{block.line}: say why the block is skipped"


def test_the_tutorial_keeps_its_runs_apart():
    """The substitutions must find what they replace, or runs would share names and ports."""
    text = TUTORIAL.read_text(encoding="utf-8")
    runnable = "".join(b.text for b in read_blocks(text) if b.action in ("run", "write", "compare"))
    for used in (NAME, f"127.0.0.1:{PORT}", f"--port {PORT}"):
        assert used in runnable, f"{SHOWN_AS} no longer uses {used!r}; update {Path(__file__).name}"


def test_the_tutorial_runs_on_the_host(tmp_path, request):
    """Every block that needs no container engine: the project, its code, pesto-serve, pytest.

    Where the engine test runs too (CI), it runs these blocks first: this one then steps aside.
    """
    if any(item.name == ENGINE_TEST for item in request.session.items):
        pytest.skip(f"{ENGINE_TEST} runs these blocks too")
    run_tutorial(tmp_path)


@pytest.mark.engine
@pytest.mark.slow
def test_the_tutorial_runs_with_the_engine(tmp_path, engine, base_image):
    """Every block, the builds, containers and image tests included."""
    run_tutorial(tmp_path, engine)
