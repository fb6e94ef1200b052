"""The job model shared by every backend: states, the record a client reads, and the interface.

A job goes PENDING → RUNNING → DONE, ERROR or CANCELLED. A RUNNING job whose replica died is
run again (RUNNING → RUNNING with one more attempt) after the visibility timeout, up to the
attempts setting; then it ends ERROR naming why. The first run to finish stores the result:
a later duplicate run finds the job finished and its result is dropped.
"""

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from pesto_pack.types.base import Result
from pesto_serve.errors import ServiceError
from pesto_serve.slots import RETRY_AFTER_SECONDS

PENDING, RUNNING, DONE, ERROR, CANCELLED = "PENDING", "RUNNING", "DONE", "ERROR", "CANCELLED"
STATES = (PENDING, RUNNING, DONE, ERROR, CANCELLED)
FINISHED = (DONE, ERROR, CANCELLED)
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_IDEMPOTENCY_KEY = 255
CANCELLED_WHILE_RUNNING = "cancelled while it ran (DELETE); its result, if any, was discarded"
CANCELLED_WAITING = "cancelled before it ran (DELETE)"


def too_many_attempts(attempts: int) -> str:
    return (
        f"the job was started {attempts} time(s) and never finished: the replica running it "
        "stopped each time (killed, out of memory, or restarted); PESTO_JOBS_MAX_ATTEMPTS "
        "bounds the runs. Check the service's logs and memory, then submit the job again"
    )


def unknown_cursor(cursor: str) -> ServiceError:
    """404, as any well-formed job id that names no job (a malformed one is a 400)."""
    return ServiceError(
        404,
        f"cursor {cursor!r} names no job of this list (its job expired or was deleted); "
        "start again without a cursor",
        "cursor",
    )


def queue_full(unfinished: int) -> ServiceError:
    return ServiceError(
        503,
        f"the job queue is full ({unfinished} jobs not finished; PESTO_QUEUE_SIZE plus "
        "PESTO_SLOTS bounds them); retry later",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def check_same_body(job: "Job", submission: "Submission") -> None:
    """An Idempotency-Key names one request: the same key with another body is refused."""
    if job.body_digest and job.body_digest != submission.body_digest:
        raise ServiceError(
            409,
            f"Idempotency-Key {submission.idempotency_key!r} was used for job {job.id} with "
            "another body; use a new key for new inputs",
            "Idempotency-Key",
        )


@dataclass(frozen=True)
class StoredResult:
    """Where one result document is (a name the backend resolves), and its media type."""

    file: str
    media_type: str


@dataclass(frozen=True)
class Job:
    """A job as a client sees it (status, progress, results, webhook delivery)."""

    id: str
    status: str
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0
    finished: float | None = None
    results: dict[str, StoredResult | list[StoredResult]] = field(default_factory=dict)
    progress: int | None = None
    attempts: int = 0
    cancel_requested: bool = False
    correlation_id: str | None = None
    idempotency_key: str | None = None
    body_digest: str | None = None
    """sha256 of the request body: an Idempotency-Key reused with another body is refused."""
    webhook: str | None = None
    delivery: dict[str, Any] | None = None
    """The webhook's delivery state: {"state", "attempts", "lastError", "nextAttempt"}."""
    base_url: str = ""
    """Where the job was submitted: the webhook's links point there."""

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict:
        def stored(value):
            if isinstance(value, list):
                return [vars(item) for item in value]
            return vars(value)

        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["results"] = {key: stored(value) for key, value in self.results.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        def stored(value):
            if isinstance(value, list):
                return [StoredResult(**item) for item in value]
            return StoredResult(**value)

        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["results"] = {k: stored(v) for k, v in (data.get("results") or {}).items()}
        return cls(**known)


@dataclass(frozen=True)
class Submission:
    """What a POST asks for, besides its inputs."""

    body: bytes
    body_digest: str
    correlation_id: str | None = None
    idempotency_key: str | None = None
    webhook: str | None = None
    base_url: str = ""


@dataclass(frozen=True)
class Claimed:
    """A job this replica now runs, with the request body it was submitted with."""

    job: Job
    body: bytes
    token: str
    """The backend's handle of this run (the stream entry on Redis)."""


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None


class JobCancelled(BaseException):
    """Raised by the progress callback in `process()` when its job was cancelled.

    A BaseException, as asyncio's CancelledError: a `process()` that catches `Exception`
    around its work does not swallow the cancel by mistake.
    """


class StoreUnavailable(ServiceError):
    """The job store cannot be reached now: a 503 the client retries."""

    def __init__(self, message: str):
        super().__init__(503, message, headers={"Retry-After": RETRY_AFTER_SECONDS})


class JobBackend(ABC):
    """One job store and queue; `folder.FolderJobs` and `redis.RedisJobs` implement it."""

    retention: float
    visibility_timeout: float
    max_attempts: int

    # -- submit and run ------------------------------------------------------------------
    @abstractmethod
    def submit(self, submission: Submission, limit: int) -> tuple[Job, bool]:
        """Store the inputs and the PENDING job, then queue it; (job, True) once durable.

        With an idempotency key already used, (that job, False). Past `limit` unfinished jobs,
        a 503: the queue is full.
        """

    @abstractmethod
    def claim(self, wait: float) -> Claimed | None:
        """The next job to run (waiting, or stalled past the visibility timeout), RUNNING now."""

    @abstractmethod
    def heartbeat(self, claims: list[Claimed]) -> None:
        """These runs are alive: keep them from being claimed by another replica."""

    def release(self, claims: list[Claimed]) -> None:  # noqa: B027 - optional: nothing to hand back by default
        """This replica exits with these runs unfinished: let another replica take them now
        rather than after the visibility timeout (the folder: its next start runs them)."""

    @abstractmethod
    def report_progress(self, job_id: str, percent: int) -> bool:
        """Store the job's progress; True when a cancel was asked for."""

    @abstractmethod
    def finish(
        self,
        claimed: Claimed,
        documents: dict[str, Result | list[Result]] | None,
        error: str | None = None,
        cancelled: bool = False,
    ) -> Job | None:
        """Store the outcome of a run unless the job is already finished (then None).

        A job with a cancel asked for ends CANCELLED whatever the run gave.
        """

    # -- read ----------------------------------------------------------------------------
    @abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def page(self, limit: int, cursor: str | None) -> Page:
        """Jobs oldest first; a cursor is the last job id of the previous page."""

    @abstractmethod
    def read(self, job: Job, stored: StoredResult) -> Result: ...

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Jobs by state, across every replica of this store."""

    @abstractmethod
    def waiting(self) -> int:
        """Jobs accepted and not yet started (the queue's depth, shared)."""

    @abstractmethod
    def check(self) -> None:
        """A `StoreUnavailable` unless the store answers now."""

    # -- change --------------------------------------------------------------------------
    @abstractmethod
    def cancel(self, job_id: str) -> Job | None:
        """A PENDING job ends CANCELLED; a RUNNING one gets a cancel request. None: no job."""

    @abstractmethod
    def delete(self, job_id: str) -> None: ...

    @abstractmethod
    def delete_result(self, job: Job, key: str) -> Job: ...

    @abstractmethod
    def expire(self, now: float | None = None) -> int:
        """Delete finished jobs older than the retention; how many."""

    # -- webhooks ------------------------------------------------------------------------
    @abstractmethod
    def due_delivery(self, lease: float) -> Job | None:
        """A job whose webhook is due, leased to this replica for `lease` seconds."""

    @abstractmethod
    def set_delivery(self, job_id: str, delivery: dict, next_attempt: float | None) -> None:
        """Record a delivery attempt; `next_attempt` None: no more attempts."""

    def close(self) -> None:  # noqa: B027 - optional: a backend may hold nothing
        """Release connections and threads."""


def now() -> float:
    return time.time()
