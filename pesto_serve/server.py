"""Serve a `Service` with waitress: ready after on_start(), graceful on SIGTERM.

The port opens at once so that `/health` answers while `Process.on_start()` loads a model in
the background; `/ready` and `/process` answer 503 until it has finished. If on_start() fails,
the service logs why and exits non-zero: it never serves half-started. On SIGTERM (or Ctrl-C)
it stops accepting connections, lets running requests finish within the grace period, and
exits 0.
"""

import logging
import os
import resource
import signal
import threading
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel

from pesto_pack.errors import PestoError
from pesto_pack.project import ServiceApi
from pesto_serve.app import make_app
from pesto_serve.front import FrontServer
from pesto_serve.memory import limit_malloc_arenas
from pesto_serve.service import Service
from pesto_serve.settings import Settings

log = logging.getLogger(__name__)

SPARE_THREADS = 4
"""Threads beyond slots and queue, so health, ready, describe and metrics answer under load."""
LOOP_SECONDS = 0.5
RECV_BYTES = 64 * 1024
"""Bytes read from a socket at a time. Waitress reads 8 KiB by default: a 44 MB image request
then takes 5,400 turns of the event loop (a poll, a read and a spool-file write each); 64 KiB
makes that 680 (bench/: about 5% less CPU per 4096² image). Not more: a read buffer of 128 KiB
or more may be mmap'ed and unmapped by malloc on every read, which costs a small request
20 µs."""
EXIT_START_FAILED = 3
FILES_BESIDES_CONNECTIONS = 64
"""Files the process keeps open besides its connections: the listening socket, the trigger,
logs, spooled bodies, the project's own."""


def serve(api: ServiceApi, settings: Settings, check_at_start: str | None = None) -> int:
    """Run the service until SIGTERM; the process exit status (logging is the caller's).

    `check_at_start`: the api folder's name, when the config check was left to the start
    thread (see `Service`): the port then opens before jsonschema is imported, and a failing
    check exits as a failing on_start() does."""
    limit_malloc_arenas()  # before waitress makes its threads
    try:
        service = Service(api, settings, check_at_start=check_at_start)
    except PestoError as error:
        log.error("%s", error)
        return EXIT_START_FAILED
    server = FrontServer(
        make_app(service),
        service,
        header_timeout=settings.header_timeout,
        idle_timeout=settings.idle_timeout,
        host=settings.host,
        port=settings.port,
        # The rest are started by the start thread (_Runner._start_threads): each start waits for
        # the new thread to run, 37 of them cost 4 ms on an idle machine, 50 ms on a busy one.
        threads=SPARE_THREADS,
        # Bodies over our limit are answered by the app with a JSON 413 naming the size;
        # waitress's own (JSON too, front.py) is a backstop for far larger ones, refused from
        # their Content-Length before they are read.
        max_request_body_size=2 * settings.max_body_bytes + 1024 * 1024,
        inbuf_overflow=settings.memory_body_bytes,
        outbuf_overflow=settings.memory_body_bytes,
        connection_limit=_connection_limit(settings.max_connections),
        asyncore_use_poll=True,
        recv_bytes=RECV_BYTES,
        ident="pesto",
    )
    status = _Runner(
        service,
        server,
        settings.grace_period,
        settings.drain_delay,
        threads=settings.slots + settings.queue_size + SPARE_THREADS,
    ).run()
    service.release_jobs()  # stateful: running jobs get the grace period, then go back
    if service.slots.running:
        # A process() call still running cannot be stopped, and would keep the interpreter
        # from exiting (executor threads are joined at exit): leave without waiting for it.
        log.warning("exiting with %d process() call(s) still running", service.slots.running)
        logging.shutdown()
        os._exit(status)
    return status


def _connection_limit(wanted: int) -> int:
    """`wanted`, within what the process may open: the soft file limit is raised to the hard
    one if need be (containers often start at 1024), and the limit kept below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FILES_BESIDES_CONNECTIONS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = max(soft - FILES_BESIDES_CONNECTIONS, 1)
        log.warning(
            "PESTO_MAX_CONNECTIONS=%d is over what this process may open (%d files): "
            "serving at most %d connections; raise `ulimit -n`",
            wanted,
            soft,
            limit,
        )
        return limit
    return wanted


class _Runner:
    """The main loop: waitress's event loop plus start-up and shutdown."""

    def __init__(
        self,
        service: Service,
        server,
        grace_period: float,
        drain_delay: float = 0.0,
        threads: int = SPARE_THREADS,
    ):
        self.threads = threads
        """Waitress's worker threads once started: SPARE_THREADS answer until then."""
        self.service = service
        self.server = server
        self.grace_period = grace_period
        self.drain_delay = drain_delay
        self.start_error: BaseException | None = None
        self.stop_requested = threading.Event()

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        log.info("serving on http://%s:%s", self.server.effective_host, self.server.effective_port)
        threading.Thread(target=self._start, name="pesto-start", daemon=True).start()
        while not self.stop_requested.is_set() and self.start_error is None:
            self._loop_once()
        if self.start_error is not None:
            self._close()
            return EXIT_START_FAILED
        self._leave()
        log.info("stop requested: finishing running requests (grace period %g s)", self.grace_period)
        self._drain()
        return 0

    def _start(self) -> None:
        try:
            self.service.start(before_on_start=self._start_threads)
        except BaseException as error:  # noqa: BLE001 - any failure means: do not serve
            if isinstance(error, PestoError):
                log.error("the service cannot start: %s", error)
            else:
                log.exception("the service cannot start: Process.on_start() raised %s", type(error).__name__)
            self.start_error = error
            self.server.pull_trigger()

    def _start_threads(self) -> None:
        """The worker threads past the spare ones, one at a time (waitress holds its task lock
        while it starts threads), before the service is ready."""
        dispatcher = self.server.task_dispatcher
        for count in range(len(dispatcher.threads) + 1, self.threads + 1):
            if self.stop_requested.is_set():
                break
            dispatcher.set_thread_count(count)

    def _on_signal(self, _signum, _frame) -> None:
        # Only set a flag: the loop wakes within LOOP_SECONDS. Logging or pulling waitress's
        # trigger here could deadlock on a lock the interrupted main thread holds.
        self.stop_requested.set()

    def _loop_once(self) -> None:
        self.server.asyncore.loop(timeout=LOOP_SECONDS, map=self.server._map, use_poll=True, count=1)
        self.server.answer_refusals()

    def _leave(self) -> None:
        """For the drain delay, ready answers 503 while requests are still accepted and
        answered: a balancer's health checks take this replica out before it refuses them."""
        if self.drain_delay <= 0:
            return
        self.service.leave()
        log.info(
            "stop requested: ready answers 503 for %g s before connections are refused", self.drain_delay
        )
        deadline = time.monotonic() + self.drain_delay
        while time.monotonic() < deadline:
            self._loop_once()

    def _drain(self) -> None:
        """Stop accepting, serve what is in flight until done or out of time, then close."""
        self.service.stop()
        wasyncore.dispatcher.close(self.server)  # the listening socket only; the trigger stays
        deadline = time.monotonic() + self.grace_period
        while self._busy_channels() and time.monotonic() < deadline:
            self._loop_once()
        left = self._busy_channels()
        if left:
            log.warning("grace period over: %d request(s) still running are dropped", left)
        else:
            log.info("all requests answered; exiting")
        self._close()

    def _busy_channels(self) -> int:
        busy = 0
        for channel in list(self.server._map.values()):
            if isinstance(channel, HTTPChannel):
                if channel.requests or channel.total_outbufs_len:
                    busy += 1
                else:
                    channel.will_close = True  # idle keep-alive connections are closed
        return busy

    def _close(self) -> None:
        self.service.stop()
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(self.server._map)
