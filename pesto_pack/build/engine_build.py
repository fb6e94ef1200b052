"""One image build through the engine's API, its log streamed to the user as it happens.

The low-level `client.api.build(..., decode=True)` yields the engine's JSON log lines as
they come. Each step is shown on one line, with `(cached)` when the engine reused its
layer: the engine says so right after the step's line, so a step is shown once that next
line arrives, or after a moment without one (a long step is shown while it runs). A step's
own output is kept and shown only if that step fails. Docker
writes `Step 3/9 : COPY ...` and ` ---> Using cache`, Podman `[1/2] STEP 3/9: COPY ...`
and `--> Using cache`: both are understood. The whole log goes to a file beside the
contexts.
"""

import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError

from pesto_pack.errors import PestoError

STEP = re.compile(r"^(?:\[(?P<stage>\d+/\d+)\] )?(?:STEP|Step) (?P<step>\d+/\d+) ?: (?P<instruction>.*)$")
CACHED = re.compile(r"^\s*-+> Using cache")
ENGINE_NOTE = re.compile(r"^\s*-+> |^(Successfully (built|tagged)|COMMIT|\[\d+/\d+\] COMMIT)|^[0-9a-f]{64}$")
SHOWN_WIDTH = 110
FAILED_OUTPUT_LINES = 25
LOST_CACHE = "checking if cached image exists"
"""Podman's words when a layer it was checking for reuse was removed meanwhile."""
PATIENCE = 1.0
"""Seconds a step's line waits for the engine to say whether it used the cache."""


class BuildError(PestoError):
    """The engine could not build an image; the message names the step and the error."""


class Progress:
    """Turns the engine's log lines into one line per step, remembering the current step."""

    def __init__(self, label: str, log: Callable[[str], None]):
        self.label = label
        self.log = log
        self.step = "before the first step"
        self.step_line = ""
        self.pending = False
        """The current step's line is not shown yet."""
        self.fresh = False
        """Nothing but the step's line has come yet: a cache note would be about this step."""
        self.output: list[str] = []

    def line(self, text: str) -> None:
        match = STEP.match(text)
        if match:
            self.flush()
            stage = f"stage {match['stage']}, " if match["stage"] else ""
            instruction = " ".join(match["instruction"].split())
            if len(instruction) > SHOWN_WIDTH:
                instruction = instruction[: SHOWN_WIDTH - 3] + "..."
            self.step = f"{stage}step {match['step']} ({instruction})"
            self.step_line = f"{self.label}: {stage}step {match['step']}: {instruction}"
            self.pending = self.fresh = True
            self.output = []
        elif CACHED.match(text) and self.fresh:
            # Shown already when the engine took longer than PATIENCE to say it: shown again.
            self.log(self.step_line + "  (cached)")
            self.pending = self.fresh = False
        else:
            self.flush()
            self.fresh = False
            if not ENGINE_NOTE.match(text):
                self.output.append(text)

    def flush(self) -> None:
        if self.pending:
            self.log(self.step_line)
            self.pending = False


@dataclass(frozen=True)
class BuildStep:
    """One image to build: which (`dependencies` or `service`), from where, as what."""

    label: str
    context: Path
    tag: str
    log: Callable[[str], None]
    log_file: Path
    no_cache: bool = False


def run_build(client: docker.DockerClient, step: BuildStep) -> str:
    """Build `step.context` as `step.tag` and return the image's id; BuildError names the failed step.

    A build that Podman failed because another client removed a layer while this build
    looked its cache up is tried once more: nothing was wrong with the project.
    """
    try:
        return _build_once(client, step)
    except BuildError as error:
        if LOST_CACHE not in str(error):
            raise
    step.log(
        f"{step.label}: the engine lost a cached layer (another client removed images meanwhile); building again"
    )
    return _build_once(client, step)


def _build_once(client: docker.DockerClient, step: BuildStep) -> str:
    label, tag, log = step.label, step.tag, step.log
    progress = Progress(label, log)
    image_id = None
    with step.log_file.open("a") as record:
        record.write(f"==== {label}: {tag} from {step.context}\n")
        try:
            chunks = client.api.build(
                path=str(step.context),
                tag=tag,
                decode=True,
                rm=True,
                forcerm=True,
                nocache=step.no_cache,
                pull=False,
                timeout=None,
            )
            for chunk in _with_pauses(chunks, PATIENCE):
                if chunk is None:
                    progress.flush()
                    continue
                for text in chunk.get("stream", "").splitlines():
                    record.write(text + "\n")
                    if text.strip():
                        progress.line(text.rstrip())
                if "error" in chunk:
                    record.write(f"ERROR: {chunk['error']}\n")
                    progress.flush()
                    raise BuildError(_failure(label, tag, progress, chunk["error"].strip()))
                image_id = chunk.get("aux", {}).get("ID", image_id)
        except APIError as error:
            progress.flush()
            raise BuildError(_failure(label, tag, progress, error.explanation or str(error))) from None
    progress.flush()
    return image_id or client.images.get(tag).id


def _with_pauses(chunks: Iterable[dict], seconds: float) -> Iterator[dict | None]:
    """The engine's chunks, and None each time `seconds` pass without one."""
    received: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for chunk in chunks:
                received.put((chunk, None))
        except Exception as error:  # re-raised in the caller's thread
            received.put((None, error))
        received.put((None, None))

    threading.Thread(target=pump, daemon=True, name="engine-build-log").start()
    while True:
        try:
            chunk, error = received.get(timeout=seconds)
        except queue.Empty:
            yield None
            continue
        if error is not None:
            raise error
        if chunk is None:
            return
        yield chunk


def _failure(label: str, tag: str, progress: Progress, error: str) -> str:
    output = progress.output[-FAILED_OUTPUT_LINES:]
    shown = ("\n  ".join(["", "last output of that step:", *output])) if output else ""
    hint = ""
    if "(FROM " in progress.step:
        hint = (
            "\n  The base image must be in the engine or pullable from a registry it reaches: "
            "pull or import it, or choose another with --base-image or PESTO_BASE_IMAGE."
        )
    return f"building the {label} image {tag} failed at {progress.step}: {error}{shown}{hint}"
