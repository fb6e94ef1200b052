"""The threads of one replica that run jobs: they claim, run, heartbeat and sweep.

`count` workers each claim one job at a time from the backend (so a replica never holds more
jobs than it can run: the others stay in the shared queue for other replicas) and hand it to
`run`. A keeper thread heartbeats the running jobs (so no other replica takes them) and, now
and then, deletes the finished jobs past their retention. While the store is unreachable they
wait and try again; they never stop the service.
"""

import logging
import threading
import time
from collections.abc import Callable

from pesto_serve.jobs.model import Claimed, JobBackend, StoreUnavailable

log = logging.getLogger(__name__)

CLAIM_WAIT = 1.0
"""Seconds a worker waits for a job before it looks again (and checks it should stop)."""
SWEEP_EVERY = 60.0


class Workers:
    def __init__(self, jobs: JobBackend, run: Callable[[Claimed], None], count: int):
        self.jobs = jobs
        self.run = run
        self.count = count
        self.running: dict[str, Claimed] = {}
        """Job id → the claim this replica runs now."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unavailable_since: float | None = None

    def start(self) -> None:
        for number in range(self.count):
            self._threads.append(threading.Thread(target=self._work, name=f"pesto-job-{number}", daemon=True))
        self._threads.append(threading.Thread(target=self._keep, name="pesto-jobs-keeper", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 0.0) -> None:
        """Claim no more jobs; wait up to `timeout` seconds for the threads to end."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.jobs.claim(CLAIM_WAIT)
                self._available()
            except StoreUnavailable as error:
                self._unavailable(error)
                self._stop.wait(CLAIM_WAIT)
                continue
            except Exception:
                log.exception("claiming a job failed")
                self._stop.wait(CLAIM_WAIT)
                continue
            if claimed is None:
                continue
            self.running[claimed.job.id] = claimed
            try:
                self.run(claimed)
            except Exception:
                log.exception("job %s: running it failed", claimed.job.id)
            finally:
                self.running.pop(claimed.job.id, None)

    def _keep(self) -> None:
        beat = max(0.2, min(self.jobs.visibility_timeout / 3, 10.0))
        next_sweep = 0.0
        while not self._stop.wait(beat):
            try:
                self.jobs.heartbeat(list(self.running.values()))
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + min(SWEEP_EVERY, max(1.0, self.jobs.retention / 4))
                    expired = self.jobs.expire()
                    if expired:
                        log.info("deleted %d finished job(s) past their retention", expired)
            except StoreUnavailable as error:
                self._unavailable(error)
            except Exception:
                log.exception("the jobs keeper failed; it goes on")

    def _unavailable(self, error: StoreUnavailable) -> None:
        if self._unavailable_since is None:
            self._unavailable_since = time.monotonic()
            log.error("%s; jobs wait until it answers", error.message)

    def _available(self) -> None:
        if self._unavailable_since is not None:
            log.info("the job store answers again after %.1f s", time.monotonic() - self._unavailable_since)
            self._unavailable_since = None
