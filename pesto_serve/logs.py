"""Log lines of the service: text for people, or one JSON object per line for log collectors.

A line is logged per request, so logging must not cost the request. Records are queued and a
background thread formats and writes them in batches, every FLUSH_SECONDS: a write per line
(a system call, and the GIL handed over and back) cost more than the rest of a small request.
The access line itself skips the `LogRecord` (whose making and formatting cost about as much
as the rest of a small request, measured with callgrind): when only this module's handler
would see it, it is queued as a tuple and formatted in the writer thread exactly as a record
of the `pesto_serve.access` logger would be. `logging.shutdown()`, which runs at exit, writes
what is still queued.
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
ACCESS_LOGGER = "pesto_serve.access"
ACCESS_MESSAGE = "%s %s %d %.1fms"

# Attributes every LogRecord has; anything else was passed with `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
access_log = logging.getLogger(ACCESS_LOGGER)


class TextFormatter(logging.Formatter):
    """`2026-01-31 12:00:00,123 INFO logger: message`, the timestamp made once a second."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._timestamp(record.created)

    def access_line(
        self,
        created: float,
        method: str,
        path: str,
        status: int,
        ms: float,
        correlation_id: str | None = None,
    ) -> str:
        message = ACCESS_MESSAGE % (method, path, status, ms)
        if correlation_id is not None:
            message = f"{message} correlation_id={correlation_id}"
        return f"{self._timestamp(created)} INFO {ACCESS_LOGGER}: {message}"

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((created - second) * 1000):03d}"


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...extra fields, "traceback"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document = self._document(record.created, record.levelname, record.name, record.getMessage())
        document.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)

    def access_line(
        self,
        created: float,
        method: str,
        path: str,
        status: int,
        ms: float,
        correlation_id: str | None = None,
    ) -> str:
        message = ACCESS_MESSAGE % (method, path, status, ms)
        document = self._document(created, "INFO", ACCESS_LOGGER, message)
        document.update(method=method, path=path, status=status, duration_ms=round(ms, 2))
        if correlation_id is not None:
            document["correlation_id"] = correlation_id
        return json.dumps(document)

    @staticmethod
    def _document(created: float, level: str, logger: str, message: str) -> dict:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        return {
            "time": f"{stamp}.{int((created - int(created)) * 1000):03d}Z",
            "level": level,
            "logger": logger,
            "message": message,
        }


class BatchingHandler(logging.Handler):
    """Queues records (no lock, no system call) for a thread that writes them in batches."""

    def __init__(self, stream: TextIO, formatter: TextFormatter | JsonFormatter):
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

    def emit(self, record: logging.LogRecord | tuple) -> None:
        self._queued.append(record)

    def flush(self) -> None:
        """Write every queued record now, in order."""
        with self._writing:
            lines = []
            while True:
                try:
                    item = self._queued.popleft()
                except IndexError:
                    break
                try:
                    if type(item) is tuple:
                        lines.append(self.formatter.access_line(*item))
                    else:
                        lines.append(self.format(item))
                except Exception:  # noqa: BLE001 - a bad record must not stop the others
                    lines.append(f"(unformattable log record: {item!r})")
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


def log_access(
    method: str, path: str, status: int, duration_ms: float, correlation_id: str | None = None
) -> None:
    """The access line of one request: queued as a tuple when only our handler would see it.

    `correlation_id`: the request's X-Correlation-ID, when it sent one.
    """
    handler = _sole_handler()
    if handler is not None:
        handler.emit((time.time(), method, path, status, duration_ms, correlation_id))
    else:
        extra = {"method": method, "path": path, "status": status, "duration_ms": round(duration_ms, 2)}
        if correlation_id is None:
            access_log.info(ACCESS_MESSAGE, method, path, status, duration_ms, extra=extra)
        else:
            access_log.info(
                ACCESS_MESSAGE + " correlation_id=%s",
                method,
                path,
                status,
                duration_ms,
                correlation_id,
                extra={**extra, "correlation_id": correlation_id},
            )


def _sole_handler() -> BatchingHandler | None:
    """Our handler, if an access record would reach it and nothing else (the configured case)."""
    if access_log.filters or not access_log.isEnabledFor(logging.INFO):
        return None
    logger = access_log
    while logger.parent is not None:
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    handlers = logger.handlers
    if len(handlers) == 1 and type(handlers[0]) is BatchingHandler and not handlers[0].filters:
        return handlers[0]
    return None


def configure(log_format: str) -> None:
    """Send every log line (the service's, waitress's, the project's) to stderr in one format.

    The record attributes that no format uses (caller's file and line, thread, process) are
    not collected, as the logging HOWTO's "Optimization" section advises.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    root = logging.getLogger()
    for handler in root.handlers:
        handler.close()
    root.handlers = [BatchingHandler(sys.stderr, formatter)]
    root.setLevel(logging.INFO)
