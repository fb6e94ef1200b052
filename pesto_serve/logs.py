"""Log lines of the service: text for people, or one JSON object per line for log collectors.

A line is logged per request, so writing must not cost the request: records are queued and a
background thread formats and writes them in batches, every FLUSH_SECONDS. A write per line
(a system call, and the GIL handed over and back) cost more than the rest of a small
request. `logging.shutdown()`, which runs at exit, writes what is still queued.
"""

import collections
import json
import logging
import sys
import threading
import time
from typing import TextIO

FLUSH_SECONDS = 0.1
MAX_QUEUED = 100_000
"""Past this many lines waiting (the output blocked), the oldest are dropped, not the service."""

# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...extra fields, "traceback"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


class BatchingHandler(logging.Handler):
    """Queues records (no lock, no system call) for a thread that writes them in batches."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter):
        super().__init__()
        self.setFormatter(formatter)
        self.stream = stream
        self._queued: collections.deque = collections.deque(maxlen=MAX_QUEUED)
        self._writing = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._write_regularly, name="pesto-log", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """Queue the record: no lock needed, as appending to a deque is atomic."""
        if self.filter(record):
            self.emit(record)
            return True
        return False

    def emit(self, record: logging.LogRecord) -> None:
        self._queued.append(record)

    def flush(self) -> None:
        """Write every queued record now, in order."""
        with self._writing:
            lines = []
            while True:
                try:
                    record = self._queued.popleft()
                except IndexError:
                    break
                try:
                    lines.append(self.format(record))
                except Exception:  # noqa: BLE001 - a bad record must not stop the others
                    lines.append(f"(unformattable log record: {record.msg!r})")
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except (OSError, ValueError):  # the output is gone: nothing left to tell
                    pass

    def close(self) -> None:
        self._closed.set()
        self.flush()
        super().close()

    def _write_regularly(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            self.flush()


def configure(log_format: str) -> None:
    """Send every log line (the service's, waitress's, the project's) to stderr in one format.

    The record attributes that no format uses (caller's file and line, thread, process) are
    not collected, as the logging HOWTO's "Optimization" section advises.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for handler in root.handlers:
        handler.close()
    root.handlers = [BatchingHandler(sys.stderr, formatter)]
    root.setLevel(logging.INFO)
