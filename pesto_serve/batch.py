"""`run --input-dir DIR --output-dir DIR`: a folder of requests through one started service.

The items are every `DIR/*/input/` folder (a test folder's layout: the answer goes to
`OUT/ITEM/output/`, so `--output-dir` may be `DIR` itself to fill a resources folder), or,
with `--each NAME`, every file of `DIR` as the input NAME (the answer goes to `OUT/STEM/`).
The model is loaded once; each item goes through the same `answer()` as one request. A failing
item is reported and the others go on; the exit status is non-zero when any failed.

An answer is written to a hidden `.NAME.partial` folder and renamed into place, so an answer
folder that exists is complete: a second run skips those items (resume) unless `--force`.
Progress is a tqdm bar on a terminal (the `progress` extra: optional, imported only then), and
plain log lines with the count, the rate and the time left otherwise (a Job's log).
"""

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pesto_pack.errors import PayloadError
from pesto_pack.folders import read_folder, read_path, remove, write_answer
from pesto_pack.plugins import default_registry
from pesto_serve.run import (
    EXIT_BAD_INPUT,
    EXIT_DONE,
    EXIT_FAILED,
    BadInput,
    ProcessFailed,
    RunOptions,
    answer,
    as_request,
    input_options,
)
from pesto_serve.service import Service

log = logging.getLogger("pesto_serve.batch")

LOOKAHEAD = 4
"""Items read ahead, and answers being written behind, while process() works on one: file
reads and writes overlap the work, as a client's do beside a server's."""
IO_THREADS = 2
LOG_EVERY_SECONDS = 1.0
"""Plain progress lines: at most one a second (and the last), besides each failure."""


@dataclass(frozen=True)
class Item:
    """One request of a batch: where its inputs are and where its answer goes."""

    name: str
    source: Path
    """Its `input/` folder, or with `--each` its file."""
    output: Path


@dataclass
class Failure:
    item: Item
    status: int
    message: str


def find_items(input_dir: Path, output_dir: Path, each: str | None) -> list[Item]:
    """The batch's items in name order; a BadInput when there are none."""
    if not input_dir.is_dir():
        raise BadInput(f"--input-dir {input_dir} is not a folder")
    entries = sorted(p for p in input_dir.iterdir() if not p.name.startswith("."))
    if each:
        items = [Item(p.stem, p, output_dir / p.stem) for p in entries if p.is_file()]
        names = [item.name for item in items]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise BadInput(
                f"{input_dir}: several files are named {', '.join(twice)} (with other "
                "extensions); their answers would share a folder: rename them"
            )
        what = "file"
    else:
        items = [
            Item(p.name, p / "input", output_dir / p.name / "output")
            for p in entries
            if (p / "input").is_dir()
        ]
        what = "*/input/ folder"
    if not items:
        hint = "" if each else "; to run every file of it as one input, add --each NAME"
        raise BadInput(f"--input-dir {input_dir} holds no {what}{hint}")
    return items


def run_folder(service: Service, options: RunOptions) -> int:
    """Run every item not answered yet; the exit status (non-zero when any item failed)."""
    each_type = None
    if options.each:
        each_type = service.payloads.input_types.get(options.each)
        if each_type is None:
            known = ", ".join(service.payloads.input_types) or "none"
            raise BadInput(f"--each {options.each}: not an input of this service (its inputs: {known})")
    items = find_items(options.input_dir, options.output_dir, options.each)
    base = input_options(options.inputs, service) if options.inputs else {}
    todo = [item for item in items if options.force or not item.output.exists()]
    skipped = len(items) - len(todo)
    log.info(
        "%d item(s) in %s: %d to run, %d already answered%s",
        len(items),
        options.input_dir,
        len(todo),
        skipped,
        " (skipped; --force redoes them)" if skipped else "",
    )
    registry = default_registry()

    def request_for(item: Item) -> Any:
        if each_type is None:
            values = {**read_folder(item.source, registry), **base}
        else:
            read = (
                read_path(item.source, registry) if item.source.is_dir() else each_type.read_file(item.source)
            )
            values = {**base, options.each: read}
        return as_request(values)

    failures: list[Failure] = []

    def finish(item: Item, failure: Failure | None) -> None:
        if failure is not None:
            failures.append(failure)
            log.error("%s: %s", item.name, failure.message)
        progress.step(item.name)

    started, cpu_started = time.perf_counter(), time.process_time()
    with (
        progress_of(len(todo), options.progress) as progress,
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="pesto-batch-io") as io,
    ):
        try:
            reads = deque(io.submit(request_for, item) for item in todo[:LOOKAHEAD])
            writes: deque[tuple[Item, Future]] = deque()
            for index, item in enumerate(todo):
                read = reads.popleft()
                if index + LOOKAHEAD < len(todo):
                    reads.append(io.submit(request_for, todo[index + LOOKAHEAD]))
                written, failure = _attempt(
                    item,
                    lambda item=item, read=read: io.submit(
                        write_item, item, answer(service, read.result()), service
                    ),
                )
                if failure is not None:
                    finish(item, failure)
                else:
                    writes.append((item, written))
                while writes and (len(writes) > LOOKAHEAD or writes[0][1].done()):
                    done_item, future = writes.popleft()
                    finish(done_item, _attempt(done_item, future.result)[1])
            for done_item, future in writes:
                finish(done_item, _attempt(done_item, future.result)[1])
        except BaseException:  # Ctrl-C: what is queued is not started
            io.shutdown(wait=True, cancel_futures=True)
            raise
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    done = len(todo) - len(failures)
    rate = f" ({len(todo) / seconds:.1f} items/s)" if todo and seconds > 0 else ""
    log.info(
        "ran %d item(s) in %.3f s, CPU %.3f s%s: %d done, %d failed, %d skipped",
        len(todo),
        seconds,
        cpu,
        rate,
        done,
        len(failures),
        skipped,
    )
    if not failures:
        return EXIT_DONE
    log.error(
        "%d item(s) failed (their answers are not written; run again to retry only them): %s",
        len(failures),
        ", ".join(failure.item.name for failure in failures),
    )
    return EXIT_FAILED if any(f.status == EXIT_FAILED for f in failures) else EXIT_BAD_INPUT


def _attempt(item: Item, work: Callable[[], Any]) -> tuple[Any, Failure | None]:
    """`work()`'s value, or the Failure it raised for this item: one item's failure must not
    stop the batch."""
    try:
        return work(), None
    except (BadInput, PayloadError) as error:
        return None, Failure(item, EXIT_BAD_INPUT, f"bad input: {error}")
    except ProcessFailed as error:
        return None, Failure(item, EXIT_FAILED, str(error))
    except Exception as error:
        log.exception("%s: failed", item.name)
        return None, Failure(item, EXIT_FAILED, f"{type(error).__name__}: {error}")


def write_item(item: Item, result: dict, service: Service) -> None:
    """Write the answer folder whole, or not at all (see the module's docstring)."""
    partial = item.output.with_name(f".{item.output.name}.partial")
    try:
        if partial.exists():
            remove(partial)
        partial.mkdir(parents=True)
        write_answer(partial, result, service.payloads.output_types, fresh=True)
        if item.output.exists():
            remove(item.output)
        partial.rename(item.output)
    except OSError as error:
        raise ProcessFailed(f"its answer could not be written to {item.output}: {error}") from None
    finally:
        if partial.exists():
            remove(partial)


class LogProgress:
    """Progress as log lines: count, rate and time left, at most once a second."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0
        self.started = time.monotonic()
        self.logged = self.started

    def step(self, name: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged < LOG_EVERY_SECONDS and self.count < self.total:
            return
        self.logged = now
        rate = self.count / max(now - self.started, 1e-9)
        left = (self.total - self.count) / rate
        log.info(
            "%d/%d (%s): %.1f items/s, about %s left", self.count, self.total, name, rate, _duration(left)
        )


class BarProgress:
    """A tqdm bar on stderr; log lines are written above it rather than through it."""

    def __init__(self, total: int, tqdm):
        try:
            sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
        except OSError:
            sized = False
        # A terminal that reports no width (a pty made by `script`) would get an empty bar.
        self.bar = tqdm(
            total=total, unit="item", file=sys.stderr, dynamic_ncols=sized, ncols=None if sized else 100
        )

    def step(self, name: str) -> None:
        self.bar.set_postfix_str(name, refresh=False)
        self.bar.update(1)


@contextmanager
def progress_of(total: int, mode: str) -> Iterator[LogProgress | BarProgress]:
    """A bar when asked (`bar`) or on a terminal (`auto`) and tqdm is installed, else lines."""
    tqdm = None
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        try:
            from tqdm import tqdm
        except ImportError:
            if mode == "bar":
                log.warning(
                    "no progress bar: tqdm is not installed (pip install "
                    "'pesto-toolkit[progress]'); log lines instead"
                )
    if tqdm is None:
        yield LogProgress(total)
        return
    progress = BarProgress(total, tqdm)
    streams = _log_streams_above(progress.bar)
    try:
        yield progress
    finally:
        for handler, stream in streams:
            handler.flush()
            handler.stream = stream
        progress.bar.close()


class _AboveTheBar:
    """A stream for log handlers that prints each line above tqdm's bar."""

    def __init__(self, bar):
        self.bar = bar

    def write(self, text: str) -> None:
        for line in text.rstrip("\n").split("\n"):
            self.bar.write(line, file=sys.stderr)

    def flush(self) -> None:
        pass


def _log_streams_above(bar) -> list:
    """Point the root logger's stderr handlers above the bar; their old streams, to restore."""
    swapped = []
    for handler in logging.getLogger().handlers:
        if getattr(handler, "stream", None) is sys.stderr:
            handler.flush()
            swapped.append((handler, handler.stream))
            handler.stream = _AboveTheBar(bar)
    return swapped


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
