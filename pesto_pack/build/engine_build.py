"""One image build through the engine's API, its log streamed to the user as it happens.

The low-level `client.api.build(..., decode=True)` yields the engine's JSON log lines as
they come. Each step is shown on one line when it starts, with `(cached)` when the engine
reused its layer; a step's own output is kept and shown only if that step fails. Docker
writes `Step 3/9 : COPY ...` and ` ---> Using cache`, Podman `[1/2] STEP 3/9: COPY ...`
and `--> Using cache`: both are understood. The whole log goes to a file beside the
contexts.
"""

import re
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import APIError

from pesto_pack.errors import PestoError

STEP = re.compile(
    r"^(?:\[(?P<stage>\d+/\d+)\] )?(?:STEP|Step) (?P<step>\d+/\d+) ?: (?P<instruction>.*)$"
)
CACHED = re.compile(r"^\s*-+> Using cache")
ENGINE_NOTE = re.compile(r"^\s*-+> |^(Successfully (built|tagged)|COMMIT|\[\d+/\d+\] COMMIT)|^[0-9a-f]{64}$")
SHOWN_WIDTH = 110
FAILED_OUTPUT_LINES = 25


class BuildError(PestoError):
    """The engine could not build an image; the message names the step and the error."""


class Progress:
    """Turns the engine's log lines into one line per step, remembering the current step."""

    def __init__(self, label: str, log: Callable[[str], None]):
        self.label = label
        self.log = log
        self.step = "before the first step"
        self.pending: str | None = None
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
            self.pending = f"{self.label}: {stage}step {match['step']}: {instruction}"
            self.output = []
        elif CACHED.match(text) and self.pending:
            self.log(self.pending + "  (cached)")
            self.pending = None
        else:
            self.flush()
            if not ENGINE_NOTE.match(text):
                self.output.append(text)

    def flush(self) -> None:
        if self.pending:
            self.log(self.pending)
            self.pending = None


def run_build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    label: str,
    log: Callable[[str], None],
    log_file: Path,
    no_cache: bool = False,
) -> str:
    """Build `context` as `tag` and return the image's id; BuildError names the failed step."""
    progress = Progress(label, log)
    image_id = None
    with log_file.open("a") as record:
        record.write(f"==== {label}: {tag} from {context}\n")
        try:
            chunks = client.api.build(
                path=str(context), tag=tag, decode=True, rm=True, forcerm=True,
                nocache=no_cache, pull=False, timeout=None,
            )
            for chunk in chunks:
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
