"""Processing slots: N requests run at once, a bounded number wait, the rest are told to retry.

The original answered 429 as soon as one request was running. Here a request past the running
ones waits in a bounded queue; past the queue it gets 503 with Retry-After at once, so a burst
neither piles up unbounded memory nor fails requests that a short wait would have served.
"""

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from pesto_serve.errors import ServiceError

T = TypeVar("T")
RETRY_AFTER_SECONDS = "1"


class Slots:
    """At most `count` pieces of work run at once, and at most `queue_size` more wait.

    Work runs in the caller's thread when nobody waits for it with a timeout (the fast path of
    a stateless request); otherwise on one of `count` threads, so that the caller can stop
    waiting (a timeout) or not wait at all (a stateful job).
    """

    def __init__(self, count: int, queue_size: int):
        self.count = count
        self.queue_size = queue_size
        self._executor: ThreadPoolExecutor | None = None
        # A lock is a semaphore of one, implemented in C: the common case costs less.
        self._semaphore = threading.Lock() if count == 1 else threading.Semaphore(count)
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._admitted - self._running

    def run(self, work: Callable[[], T], timeout: float = 0.0) -> T:
        """Run `work` in a slot and return its result; a 504 after `timeout` seconds (0: never).

        Python cannot stop a running thread: work that times out while running keeps its slot
        until it returns (so `process()` is still never run twice at once), and its answer is
        dropped. Work that times out while still waiting is cancelled and never runs.
        """
        if not timeout:
            self._admit()
            return self._run(work, release=True)
        ticket = _Ticket()
        future = self._submit(work, ticket)
        try:
            return future.result(timeout)
        except FutureTimeout:
            with self._lock:
                ticket.abandoned = not ticket.started
            if ticket.abandoned:
                future.cancel()
                detail = "it was still waiting for a processing slot (it will not run)"
            else:
                detail = (
                    "process() is still running; its answer will be dropped and its slot stays "
                    "busy until it returns"
                )
            raise ServiceError(
                504,
                f"no answer within PESTO_PROCESS_TIMEOUT ({timeout:g} s): {detail}",
            ) from None

    def submit(self, work: Callable[[], T]) -> Future:
        """Queue `work` for the next free slot and return at once; a 503 when the queue is full."""
        return self._submit(work, _Ticket())

    def _submit(self, work: Callable[[], T], ticket: "_Ticket") -> Future:
        self._admit()
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.count, thread_name_prefix="pesto-slot")
        future = self._executor.submit(self._run, work, ticket)
        future.add_done_callback(lambda _: self._release())
        return future

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.count + self.queue_size:
                raise ServiceError(
                    503,
                    f"the service is busy ({self._running} request(s) processing, "
                    f"{self.waiting} waiting, the queue holds {self.queue_size}); retry later",
                    headers={"Retry-After": RETRY_AFTER_SECONDS},
                )
            self._admitted += 1

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def _run(self, work: Callable[[], T], ticket: "_Ticket | None" = None, release: bool = False) -> T | None:
        """Run `work` once a slot is free; `release`: also end its admission when it is done."""
        with self._semaphore:
            with self._lock:
                if ticket is not None:
                    if ticket.abandoned:
                        return None  # its caller gave up while it waited
                    ticket.started = True
                self._running += 1
            try:
                return work()
            finally:
                with self._lock:
                    self._running -= 1
                    if release:
                        self._admitted -= 1


class _Ticket:
    """Whether queued work has started, or was given up by its caller before it could."""

    started = False
    abandoned = False
