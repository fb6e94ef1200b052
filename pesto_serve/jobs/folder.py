"""The embedded job backend: a folder, one replica, no server needed.

Layout: `<folder>/<job id>/job.json` (the record), `input.json` (the request body, kept until
the job finishes) and `results/<n>` (one file per result document). Every file is written to a
temporary name and renamed into place, so a crash never leaves a half-written one; the input
is on disk (fsync'ed) before the 202, and a job's results before the `job.json` that says DONE.
A restarted service queues again the jobs its previous run left PENDING or RUNNING (each run
counts as an attempt). Job ids come from `secrets.token_urlsafe`: a caller cannot guess
another caller's job.
"""

import collections
import itertools
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from pesto_pack.types.base import Result
from pesto_serve.jobs.model import (
    CANCELLED,
    CANCELLED_WAITING,
    CANCELLED_WHILE_RUNNING,
    DONE,
    ERROR,
    JOB_ID,
    PENDING,
    RUNNING,
    STATES,
    Claimed,
    Job,
    JobBackend,
    Page,
    StoredResult,
    Submission,
    check_same_body,
    now,
    queue_full,
    too_many_attempts,
    unknown_cursor,
)

log = logging.getLogger(__name__)

INPUT = "input.json"


class FolderJobs(JobBackend):
    """The jobs of one service: on disk for durability, indexed in memory for fast reads."""

    def __init__(self, folder: Path, retention: float, visibility_timeout: float, max_attempts: int):
        self.folder = Path(folder)
        self.retention = retention
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self._jobs: dict[str, Job] = {}
        self._keys: dict[str, str] = {}
        """Idempotency key → job id."""
        self._queue: collections.deque[str] = collections.deque()
        self._lock = threading.Condition()
        self._leases: dict[str, float] = {}
        """Job id → until when a sender holds its webhook delivery."""
        self._deliveries: set[str] = set()
        """Jobs whose webhook is still to be delivered (their state is in their job.json)."""

    def recover(self) -> int:
        """Index the jobs on disk; queue again those a previous run left unfinished.

        Returns how many were queued again.
        """
        found = []
        for job_file in self.folder.glob("*/job.json"):
            try:
                found.append(Job.from_json(json.loads(job_file.read_text())))
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("ignoring unreadable job %s: %s", job_file, error)
        requeued = 0
        for job in sorted(found, key=lambda j: (j.created, j.id)):
            if job.status in (PENDING, RUNNING):
                if not (self.folder / job.id / INPUT).is_file():
                    job = self._finish(
                        job,
                        ERROR,
                        (
                            "the job's stored inputs are gone (a job of an older version, or the "
                            "folder was edited); submit the job again"
                        ),
                    )
                elif job.status == RUNNING and job.attempts >= self.max_attempts:
                    job = self._finish(job, ERROR, too_many_attempts(job.attempts))
                else:
                    job = self._write(replace(job, status=PENDING))
                    self._queue.append(job.id)
                    requeued += 1
            self._index(job)
        return requeued

    # -- submit and run ------------------------------------------------------------------
    def submit(self, submission: Submission, limit: int) -> tuple[Job, bool]:
        with self._lock:
            known = self._by_key(submission)
            if known is not None:
                return known, False
            unfinished = sum(1 for job in self._jobs.values() if job.status in (PENDING, RUNNING))
            if unfinished >= limit:
                raise queue_full(unfinished)
            stamp = now()
            job = Job(
                id=secrets.token_urlsafe(16),
                status=PENDING,
                created=stamp,
                updated=stamp,
                correlation_id=submission.correlation_id,
                idempotency_key=submission.idempotency_key,
                body_digest=submission.body_digest,
                webhook=submission.webhook,
                base_url=submission.base_url,
            )
            (self.folder / job.id).mkdir(parents=True)
            _write_atomically(self.folder / job.id / INPUT, submission.body)
            self._write(job)
            self._index(job)
            self._queue.append(job.id)
            self._lock.notify()
            return job, True

    def claim(self, wait: float) -> Claimed | None:
        with self._lock:
            if not self._queue:
                self._lock.wait(wait)
            while self._queue:
                job = self._jobs.get(self._queue.popleft())
                if job is None or job.status != PENDING:
                    continue  # deleted or cancelled while it waited
                if job.attempts >= self.max_attempts:
                    self._finish(job, ERROR, too_many_attempts(job.attempts))
                    continue
                try:
                    body = (self.folder / job.id / INPUT).read_bytes()
                except OSError as error:
                    self._finish(job, ERROR, f"its stored inputs cannot be read: {error}")
                    continue
                # Not fsync'ed: a killed process leaves the file to the OS all the same; only a
                # crash of the machine may lose this attempt's count (never the job).
                job = self._write(
                    replace(job, status=RUNNING, attempts=job.attempts + 1, updated=now()), durable=False
                )
                return Claimed(job, body, token=job.id)
        return None

    def heartbeat(self, claims: list[Claimed]) -> None:
        """Nothing to do: one process runs this folder's jobs, and knows what it runs."""

    def report_progress(self, job_id: str, percent: int) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.is_finished:
                return True
            self._write(replace(job, progress=percent, updated=now()), durable=False)
            return job.cancel_requested

    def finish(self, claimed, documents, error=None, cancelled=False) -> Job | None:
        with self._lock:
            job = self._jobs.get(claimed.job.id)
            if job is None or job.is_finished:
                return None
            if cancelled or job.cancel_requested:
                return self._finish(job, CANCELLED, CANCELLED_WHILE_RUNNING)
            if error is not None:
                return self._finish(job, ERROR, error)
            results = self._store_results(job.id, documents or {})
            return self._finish(job, DONE, None, results=results, progress=100)

    def _store_results(self, job_id: str, documents: dict) -> dict:
        folder = self.folder / job_id / "results"
        folder.mkdir(parents=True, exist_ok=True)
        numbers = itertools.count()

        def store(document: Result) -> StoredResult:
            name = str(next(numbers))
            _write_atomically(folder / name, document.content)
            return StoredResult(f"results/{name}", document.media_type)

        return {
            key: [store(d) for d in value] if isinstance(value, list) else store(value)
            for key, value in documents.items()
        }

    def _finish(self, job: Job, status: str, error: str | None, **changes) -> Job:
        stamp = now()
        delivery = {"state": "pending", "attempts": 0} if job.webhook else None
        job = self._write(
            replace(
                job, status=status, error=error, finished=stamp, updated=stamp, delivery=delivery, **changes
            )
        )
        self._index(job)
        (self.folder / job.id / INPUT).unlink(missing_ok=True)
        return job

    # -- read ----------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id) if JOB_ID.match(job_id) else None

    def page(self, limit: int, cursor: str | None) -> Page:
        ids = list(self._jobs)
        start = 0
        if cursor is not None:
            try:
                start = ids.index(cursor) + 1
            except ValueError:
                raise unknown_cursor(cursor) from None
        chosen = ids[start : start + limit]
        jobs = [self._jobs[i] for i in chosen if i in self._jobs]
        more = start + limit < len(ids)
        return Page(jobs, chosen[-1] if more and chosen else None)

    def read(self, job: Job, stored: StoredResult) -> Result:
        return Result((self.folder / job.id / stored.file).read_bytes(), stored.media_type)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for job in list(self._jobs.values()):
            counts[job.status] += 1
        return counts

    def waiting(self) -> int:
        return sum(1 for job in list(self._jobs.values()) if job.status == PENDING)

    def check(self) -> None:
        """The folder was checked writable at start; nothing can go away meanwhile."""

    # -- change --------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job | None:
        with self._lock:
            job = self.get(job_id)
            if job is None or job.is_finished:
                return job
            if job.status == PENDING:
                return self._finish(job, CANCELLED, CANCELLED_WAITING)
            job = self._write(replace(job, cancel_requested=True, updated=now()))
            self._index(job)
            return job

    def delete(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is not None and job.idempotency_key:
                self._keys.pop(job.idempotency_key, None)
            self._leases.pop(job_id, None)
            self._deliveries.discard(job_id)
        shutil.rmtree(self.folder / job_id, ignore_errors=True)

    def delete_result(self, job: Job, key: str) -> Job:
        stored = job.results[key]
        for item in stored if isinstance(stored, list) else [stored]:
            (self.folder / job.id / item.file).unlink(missing_ok=True)
        with self._lock:
            job = self._jobs[job.id]
            results = {k: v for k, v in job.results.items() if k != key}
            return self._index(self._write(replace(job, results=results, updated=now())))

    def expire(self, at: float | None = None) -> int:
        cutoff = (at or now()) - self.retention
        old = [
            job.id for job in list(self._jobs.values()) if job.finished is not None and job.finished < cutoff
        ]
        for job_id in old:
            self.delete(job_id)
        return len(old)

    # -- webhooks ------------------------------------------------------------------------
    def due_delivery(self, lease: float) -> Job | None:
        stamp = now()
        with self._lock:
            for job_id in list(self._deliveries):
                job = self._jobs[job_id]
                delivery = job.delivery
                due = max(delivery.get("nextAttempt") or 0.0, self._leases.get(job.id, 0.0))
                if due <= stamp:
                    self._leases[job.id] = stamp + lease
                    return job
        return None

    def set_delivery(self, job_id: str, delivery: dict, next_attempt: float | None) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            self._leases.pop(job_id, None)
            self._index(self._write(replace(job, delivery=delivery)))

    # -- storage -------------------------------------------------------------------------
    def _by_key(self, submission: Submission) -> Job | None:
        if not submission.idempotency_key:
            return None
        job = self._jobs.get(self._keys.get(submission.idempotency_key, ""))
        if job is not None:
            check_same_body(job, submission)
        return job

    def _index(self, job: Job) -> Job:
        self._jobs[job.id] = job
        if job.idempotency_key:
            self._keys[job.idempotency_key] = job.id
        if job.delivery and job.delivery.get("state") in ("pending", "retrying"):
            self._deliveries.add(job.id)
        else:
            self._deliveries.discard(job.id)
        return job

    def _write(self, job: Job, durable: bool = True) -> Job:
        folder = self.folder / job.id
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / "job.json", json.dumps(job.to_json(), indent=1).encode(), durable)
        self._jobs[job.id] = job
        return job


def _write_atomically(path: Path, content: bytes, durable: bool = True) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
