"""The server's front door: what is decided in waitress's I/O thread, before a worker or the app.

- Refusals come early. A `POST /api/v1/process` that finds every slot and queue place taken
  is answered 503 as soon as its body has arrived, by the I/O thread itself: it waits for no
  worker thread, and its body is neither read into memory nor parsed. A flood of large images
  then holds at most `slots + queue` bodies in memory, not one per connection.
- Stalled clients are dropped. A connection that has not finished its request's headers
  `header_timeout` seconds after it began them (or after connecting) is closed, and idle
  keep-alive connections after `idle_timeout`; waitress alone frees either only after its
  `channel_timeout` (120 s), and stops accepting at 100 connections: 100 stalled clients took
  a service down. Slow bodies keep their connection (they are sending), but cost only a socket
  and a buffer: no worker thread is held until a request is complete.
- Waitress's own refusals (a Content-Length that is not a number, headers too large, a body
  over the backstop limit, an unknown Transfer-Encoding) get the service's JSON error shape
  instead of waitress's plain text.
"""

import logging
import threading
import time

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import BadRequest, Error, RequestEntityTooLarge, RequestHeaderFieldsTooLarge

from pesto_serve.errors import error_json
from pesto_serve.logs import log_access
from pesto_serve.slots import RETRY_AFTER_SECONDS

log = logging.getLogger(__name__)

PROCESS_PATH = "/api/v1/process"
CLEANUP_SECONDS = 1.0
"""How often open connections are checked against the timeouts."""
NEVER = 10**9
"""A timeout of 0 (no limit), in waitress's terms: seconds beyond any uptime."""


class Busy(Error):
    code = 503
    reason = "Service Unavailable"


class JsonErrorTask(ErrorTask):
    """Waitress's error answers in the service's shape: `{"error": {status, field, message}}`."""

    def execute(self):
        error = self.request.error
        body = error_json(error.code, _message(error)).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        if isinstance(error, Busy):
            self.response_headers.append(("Retry-After", RETRY_AFTER_SECONDS))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def _message(error: Error) -> str:
    detail = str(error.body)
    if isinstance(error, Busy):
        return detail
    if isinstance(error, RequestEntityTooLarge):
        return (
            f"the body is too large for this service ({detail} bytes); send smaller inputs or "
            "ask the operator to raise PESTO_MAX_BODY_BYTES"
        )
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return f"the request's line and headers are too large ({detail} bytes); send fewer or shorter headers"
    if isinstance(error, BadRequest):
        if "Content-Length" in detail:
            return "the Content-Length header is not a number; send the body's length in bytes"
        return f"the request is not valid HTTP/1.1: {detail}; check the client"
    if error.code == 501:
        return (
            f"{detail}: this service reads bodies sent with a Content-Length or "
            "Transfer-Encoding: chunked only"
        )
    return "internal error of the service; its log has the details"


class FrontChannel(HTTPChannel):
    """A connection that knows when its current request began, and counts admitted work."""

    error_task_class = JsonErrorTask

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        self.request_began = time.monotonic()
        """When the request being read began (its first byte, or the connection)."""
        self.received_any = False

    def received(self, data):
        if self.request is None and self.received_any:
            self.request_began = time.monotonic()
        self.received_any = True
        return super().received(data)

    def service(self):
        request = self.requests[0]
        try:
            super().service()
        finally:
            if getattr(request, "pesto_admitted", False):
                request.pesto_admitted = False
                self.server.gate.leave()

    def headers_overdue(self, cutoff: float) -> bool:
        """Still reading the headers of a request begun before `cutoff` (nothing in service)."""
        if self.requests or self.will_close or self.close_when_flushed:
            return False
        request = self.request
        reading_headers = request is None or not request.headers_finished
        return (
            reading_headers and self.request_began < cutoff and (request is not None or not self.received_any)
        )


class Gate:
    """How many `POST /process` requests are in the workers' hands; past `limit`, refused.

    The limit is the slots plus the queue: what the slots would admit. A request counts from
    the moment it is handed to a worker until its answer is written, so the count is never
    below what the slots hold, and a refusal here is one the slots would make later, after a
    JSON parse and a wait for a worker thread.
    """

    def __init__(self, service):
        self.service = service
        self.limit = service.slots.count + service.slots.queue_size
        self.in_flight = 0
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def busy_message(self) -> str:
        slots = self.service.slots
        running = slots.running
        return (
            f"the service is busy ({running} request(s) processing, {self.in_flight - running} "
            f"waiting, the queue holds {slots.queue_size}); retry later"
        )


class FrontServer(TcpWSGIServer):
    """Waitress's TCP server with the front door above: early refusals and connection timeouts."""

    channel_class = FrontChannel

    def __init__(self, application, service, header_timeout: float, idle_timeout: float, **adjustments):
        self.gate = Gate(service)
        self.service = service
        self.header_timeout = header_timeout
        self.gated = service.jobs is None
        """Stateless services only: a stateful submission returns at once, its job waits in the
        slots' queue, which refuses past the queue itself."""
        self._refusals: list[HTTPChannel] = []
        self._refusals_lock = threading.Lock()
        super().__init__(
            application,
            channel_timeout=idle_timeout or NEVER,
            cleanup_interval=min(CLEANUP_SECONDS, max(header_timeout / 2, 0.1)) if header_timeout > 0 else 30,
            **adjustments,
        )

    def add_task(self, channel) -> None:
        """Called when a request is complete (under the channel's lock, in any thread)."""
        request = channel.requests[0]
        if (
            self.gated
            and request.error is None
            and request.command == "POST"
            and request.path == PROCESS_PATH
        ):
            if not self.gate.admit():
                request.error = Busy(self.gate.busy_message())
                request.pesto_refused_at = time.perf_counter()
                with self._refusals_lock:
                    self._refusals.append(channel)
                self.pull_trigger()  # answered by the I/O thread at its next turn
                return
            request.pesto_admitted = True
        super().add_task(channel)

    def readable(self):
        self.answer_refusals()
        return super().readable()

    def answer_refusals(self) -> None:
        """Answer the refusals decided since the last turn of the loop (in the I/O thread).
        Called before each poll while the server listens, and by the runner's loop while it
        drains (the listening socket, and so this `readable()`, is gone by then)."""
        if not self._refusals:
            return
        with self._refusals_lock:
            channels, self._refusals = self._refusals, []
        for channel in channels:
            request = channel.requests[0] if channel.requests else None
            channel.service()  # the JSON 503 error task: a few microseconds, no worker thread
            if request is not None:
                self._observe(request)

    def _observe(self, request) -> None:
        """The access line and the request metric that the app's middleware writes for others."""
        milliseconds = (time.perf_counter() - request.pesto_refused_at) * 1000
        self.service.metrics.count_request((PROCESS_PATH, "POST", 503))
        log_access("POST", PROCESS_PATH, 503, milliseconds, request.headers.get("X_CORRELATION_ID"))

    def maintenance(self, now: float) -> None:
        """Waitress closes idle connections; also close those stalled in their headers."""
        super().maintenance(now)
        if self.header_timeout <= 0:
            return
        cutoff = time.monotonic() - self.header_timeout
        stalled = 0
        for channel in list(self.active_channels.values()):
            if isinstance(channel, FrontChannel) and channel.headers_overdue(cutoff):
                channel.will_close = True
                stalled += 1
        if stalled:
            log.info(
                "closed %d connection(s) that had not sent their request's headers within "
                "PESTO_HEADER_TIMEOUT (%g s)",
                stalled,
                self.header_timeout,
            )
